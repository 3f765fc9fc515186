"""Tests of edgesim.network: topology constructors, validation, conversion, incidence.

Every constructor must give a connected, loop-free, duplicate-free graph with
the advertised numbers of nodes and edges; invalid networks must be refused
with a NetworkError that says what is wrong.
"""

from importlib import resources

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp

from edgesim.network import (
    Network,
    NetworkError,
    from_networkx,
    jammed_network,
    jammed_realizations,
    lab_network,
    square_lattice,
    transistor_lattice,
    voltage_divider,
)


def _assert_simple_connected(net: Network):
    """Independent check (via networkx) that ``net`` is a simple connected graph."""
    g = nx.Graph()
    g.add_nodes_from(range(net.n_nodes))
    g.add_edges_from(map(tuple, net.edges))
    assert g.number_of_edges() == net.n_edges, "duplicate edges"
    assert nx.number_of_selfloops(g) == 0
    assert nx.is_connected(g)
    assert net.edges.min() >= 0 and net.edges.max() < net.n_nodes


def _degrees(net: Network) -> np.ndarray:
    return np.bincount(net.edges.ravel(), minlength=net.n_nodes)


# -- square lattices -----------------------------------------------------------

@pytest.mark.parametrize("nx_, ny", [(2, 1), (3, 3), (4, 7), (10, 10), (5, 2)])
def test_open_square_lattice_counts(nx_, ny):
    net = square_lattice(nx_, ny)
    assert net.n_nodes == nx_ * ny
    assert net.n_edges == (nx_ - 1) * ny + nx_ * (ny - 1)
    _assert_simple_connected(net)
    assert net.positions.shape == (nx_ * ny, 2)
    # Every edge joins nearest neighbours (unit distance) on the open lattice.
    d = np.linalg.norm(net.positions[net.edges[:, 0]] - net.positions[net.edges[:, 1]], axis=1)
    np.testing.assert_allclose(d, 1.0)


@pytest.mark.parametrize("n", [3, 4, 5, 8])
def test_periodic_square_lattice_has_2n2_edges_and_degree_4(n):
    net = square_lattice(n, periodic=True)
    assert net.n_nodes == n * n
    assert net.n_edges == 2 * n * n
    _assert_simple_connected(net)
    assert (_degrees(net) == 4).all()


def test_periodic_rectangular_lattice():
    net = square_lattice(3, 5, periodic=True)
    assert net.n_nodes == 15 and net.n_edges == 30
    _assert_simple_connected(net)
    assert (_degrees(net) == 4).all()


def test_square_lattice_matches_networkx_grid():
    net = square_lattice(4, 3)
    ours = {tuple(sorted(map(int, e))) for e in net.edges}
    # networkx grid node (row, col) -> our index row * nx + col
    ref = {tuple(sorted((a[0] * 4 + a[1], b[0] * 4 + b[1])))
           for a, b in nx.grid_2d_graph(3, 4).edges}
    assert ours == ref


@pytest.mark.parametrize("nx_, ny", [(2, 2), (2, 5), (5, 1)])
def test_periodic_lattice_too_small_raises(nx_, ny):
    with pytest.raises(NetworkError, match="at least 3 nodes per side"):
        square_lattice(nx_, ny, periodic=True)


@pytest.mark.parametrize("nx_, ny", [(1, 1), (0, 3), (3, 0)])
def test_square_lattice_too_small_raises(nx_, ny):
    with pytest.raises(NetworkError, match="too small"):
        square_lattice(nx_, ny)


# -- named networks ------------------------------------------------------------

def test_transistor_lattice_is_4x4_periodic():
    net = transistor_lattice()
    assert net.n_nodes == 16
    assert net.n_edges == 32
    _assert_simple_connected(net)
    assert (_degrees(net) == 4).all()


def test_voltage_divider_is_two_edges_in_series():
    net = voltage_divider()
    assert net.n_nodes == 3
    assert net.n_edges == 2
    assert {tuple(sorted(map(int, e))) for e in net.edges} == {(0, 1), (1, 2)}
    _assert_simple_connected(net)


def test_lab_network_has_16_edges():
    net = lab_network()
    assert net.n_edges == 16
    assert net.n_nodes == 9
    _assert_simple_connected(net)
    edges = {tuple(sorted(map(int, e))) for e in net.edges}
    # the 12 grid edges plus the 4 documented diagonals through the centre
    assert {(0, 4), (2, 4), (4, 6), (4, 8)} <= edges
    assert _degrees(net)[4] == 8


# -- jammed networks -----------------------------------------------------------

@pytest.mark.parametrize("realization", [1, 2, 17, 50])
def test_jammed_network_64_loads(realization):
    net = jammed_network(64, realization)
    assert 62 <= net.n_nodes <= 64
    assert 130 <= net.n_edges <= 150
    _assert_simple_connected(net)
    assert net.positions.shape == (net.n_nodes, 2)
    assert np.isfinite(net.positions).all()
    # near-isostatic disordered network: mean coordination a little above 4
    z = 2 * net.n_edges / net.n_nodes
    assert 4.0 < z < 5.0
    assert _degrees(net).min() >= 2


def test_jammed_network_default_is_size_64_realization_1():
    a, b = jammed_network(), jammed_network(64, 1)
    assert a.n_nodes == b.n_nodes and np.array_equal(a.edges, b.edges)


@pytest.mark.parametrize("size", [128, 256])
def test_jammed_network_larger_sizes(size):
    net = jammed_network(size, 1)
    assert 0.95 * size <= net.n_nodes <= size
    _assert_simple_connected(net)


def test_jammed_realizations_are_ordered_by_r_number():
    """Realization i must be the file with r == i (numeric, not lexicographic, order)."""
    n = jammed_realizations(64)
    assert n >= 10
    folder = resources.files("edgesim") / "data" / "jammed_networks"
    for i in (2, 10, n):
        entry = next(e for e in folder.iterdir() if e.name.endswith(f"_r{i}.txt") and "N00064" in e.name)
        header = entry.read_text().split("\n")[0].split()
        net = jammed_network(64, i)
        assert entry.name in net.name
        assert (net.n_nodes, net.n_edges) == (int(header[0]), int(header[1]))
        L = float(header[2])
        assert net.positions.min() >= 0 and net.positions.max() <= L


def test_jammed_realizations_differ():
    a, b = jammed_network(64, 1), jammed_network(64, 2)
    assert a.n_nodes != b.n_nodes or not np.array_equal(a.edges, b.edges)


@pytest.mark.parametrize("size", [0, 63, 65, 512])
def test_jammed_network_bad_size_raises(size):
    with pytest.raises(NetworkError, match=f"no jammed networks of size {size}"):
        jammed_network(size, 1)
    with pytest.raises(NetworkError, match="available"):
        jammed_realizations(size)


@pytest.mark.parametrize("size", [64, 128, 256])
@pytest.mark.parametrize("offset", [-1000, -1, 0, 1, 1000], ids=["-1000", "-1", "0", "n+1", "n+1000"])
def test_jammed_network_bad_realization_raises(size, offset):
    """Realizations are 1..n, n counted from the shipped files: just outside either end is refused."""
    n = jammed_realizations(size)
    assert n >= 1
    realization = offset if offset <= 0 else n + offset
    with pytest.raises(NetworkError, match=rf"realization must be in 1\.\.{n} for size {size}, got {realization}"):
        jammed_network(size, realization)
    # the ends of the range load
    assert jammed_network(size, n).n_nodes <= size
    assert jammed_network(size, 1).n_nodes <= size


# -- validation ----------------------------------------------------------------

def test_disconnected_network_raises():
    with pytest.raises(NetworkError, match=r"disconnected \(2 components"):
        Network(4, [[0, 1], [2, 3]])


def test_isolated_node_raises():
    with pytest.raises(NetworkError, match="node 3 is not connected to node 0"):
        Network(4, [[0, 1], [1, 2]])


def test_self_loop_raises():
    with pytest.raises(NetworkError, match="self-loop at node 2"):
        Network(3, [[0, 1], [1, 2], [2, 2]])


@pytest.mark.parametrize("dup", [[0, 1], [1, 0]])
def test_duplicate_edge_raises_in_either_orientation(dup):
    with pytest.raises(NetworkError, match="duplicate edge between nodes 0 and 1"):
        Network(3, [[0, 1], [1, 2], dup])


@pytest.mark.parametrize("edges", [[[0, 1], [1, 3]], [[0, 1], [-1, 2], [1, 2]]])
def test_edge_endpoint_out_of_range_raises(edges):
    with pytest.raises(NetworkError, match=r"must lie in 0\.\.2"):
        Network(3, edges)


def test_too_few_nodes_or_no_edges_raise():
    with pytest.raises(NetworkError, match="at least 2 nodes"):
        Network(1, [[0, 0]])
    with pytest.raises(NetworkError, match="no edges"):
        Network(3, np.zeros((0, 2), int))


def test_network_error_is_value_error():
    assert issubclass(NetworkError, ValueError)


def test_edges_are_read_only():
    net = voltage_divider()
    with pytest.raises(ValueError):
        net.edges[0, 0] = 2


def test_edge_index_either_orientation_and_missing():
    net = lab_network()
    e = net.edge_index(4, 8)
    assert set(net.edges[e]) == {4, 8}
    assert net.edge_index(8, 4) == e
    with pytest.raises(NetworkError, match="no edge between nodes 0 and 8"):
        net.edge_index(0, 8)


def test_to_networkx_round_trip():
    net = lab_network()
    g = net.to_networkx()
    assert g.number_of_nodes() == net.n_nodes and g.number_of_edges() == net.n_edges
    for a, b, i in g.edges(data="index"):
        assert {a, b} == set(map(int, net.edges[i]))
    back = from_networkx(g)
    assert back.n_nodes == net.n_nodes
    assert {tuple(sorted(map(int, e))) for e in back.edges} == {tuple(sorted(map(int, e))) for e in net.edges}


# -- from_networkx -------------------------------------------------------------

def test_from_networkx_relabels_in_sorted_order():
    g = nx.Graph()
    g.add_edges_from([("c", "a"), ("a", "b"), ("b", "d")])
    net = from_networkx(g, name="letters")
    assert net.n_nodes == 4 and net.n_edges == 3
    assert net.name == "letters"
    assert {tuple(sorted(map(int, e))) for e in net.edges} == {(0, 2), (0, 1), (1, 3)}


def test_from_networkx_grid_relabels_tuples_and_keeps_positions():
    g = nx.grid_2d_graph(3, 3)
    for v in g.nodes:
        g.nodes[v]["pos"] = (float(v[1]), float(v[0]))
    net = from_networkx(g)
    nodes = sorted(g.nodes)
    label = {v: i for i, v in enumerate(nodes)}
    assert {tuple(sorted(map(int, e))) for e in net.edges} == \
        {tuple(sorted((label[a], label[b]))) for a, b in g.edges}
    np.testing.assert_array_equal(net.positions, [g.nodes[v]["pos"] for v in nodes])


def test_from_networkx_without_positions():
    net = from_networkx(nx.path_graph(5))
    assert net.positions is None
    assert net.n_edges == 4


def test_from_networkx_rejects_directed_graph():
    with pytest.raises(NetworkError, match="undirected"):
        from_networkx(nx.DiGraph([(0, 1), (1, 2)]))


def test_from_networkx_rejects_self_loop():
    g = nx.path_graph(3)
    g.add_edge(1, 1)
    with pytest.raises(NetworkError, match="self-loop at node 1"):
        from_networkx(g)


def test_from_networkx_rejects_disconnected_graph():
    g = nx.path_graph(3)
    g.add_node(7)
    with pytest.raises(NetworkError, match="disconnected"):
        from_networkx(g)


def test_from_networkx_accepts_multigraph_without_parallel_edges():
    net = from_networkx(nx.MultiGraph([(0, 1), (1, 2)]))
    assert net.n_nodes == 3 and net.n_edges == 2


def test_from_networkx_rejects_multigraph_parallel_edges():
    g = nx.MultiGraph([(0, 1), (1, 2), (0, 1)])
    with pytest.raises(ValueError) as info:
        from_networkx(g)
    assert isinstance(info.value, NetworkError), repr(info.value)
    assert "duplicate edge" in str(info.value)


# -- incidence matrix ----------------------------------------------------------

@pytest.mark.parametrize("make", [voltage_divider, lab_network, transistor_lattice,
                                  lambda: jammed_network(64, 3)])
def test_incidence_gives_drops(make):
    net = make()
    B = net.incidence
    assert sp.issparse(B)
    assert B.shape == (net.n_edges, net.n_nodes)
    V = np.random.default_rng(0).normal(size=net.n_nodes)
    np.testing.assert_allclose(B @ V, V[net.edges[:, 0]] - V[net.edges[:, 1]], rtol=0, atol=1e-14)
    dense = B.toarray()
    assert (np.abs(dense).sum(1) == 2).all()
    np.testing.assert_array_equal(dense.sum(1), 0)
    # B^T diag(k) B is the weighted graph Laplacian
    k = np.random.default_rng(1).uniform(0.5, 2.0, net.n_edges)
    g = nx.Graph()
    g.add_nodes_from(range(net.n_nodes))
    for (a, b), w in zip(net.edges, k):
        g.add_edge(int(a), int(b), weight=w)
    L = nx.laplacian_matrix(g, nodelist=range(net.n_nodes), weight="weight").toarray()
    np.testing.assert_allclose((B.T @ sp.diags(k) @ B).toarray(), L, atol=1e-14)
