"""Tests of edgesim.physics: the twin-network solver against circuit theory.

Covers analytic circuits (divider, series/parallel, Wheatstone bridge, source
edges), Kirchhoff's current law and power balance, dense == sparse backends,
stacks of padded systems, parts cut off by dead edges, and error messages.
A row ``(a, -1)`` fixes ``V_a``; a row ``(a, b)`` fixes ``V_a - V_b``; the
multiplier of a row is the current its source injects (at ``a``, drawn at ``b``).
"""

import networkx as nx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from edgesim.network import Network, NetworkError, from_networkx, jammed_network, lab_network, \
    square_lattice, voltage_divider
from edgesim.physics import (
    DENSE_MAX_NODES,
    Boundary,
    BoundaryError,
    TwinSolver,
    clamped_solution,
    free_solution,
    mean_square_drops,
    node_voltages,
)
from edgesim.trainer import LearningConfig

BACKENDS = ["dense", "sparse"]
by_backend = pytest.mark.parametrize("backend", BACKENDS)
HYPOTHESIS = settings(max_examples=30, deadline=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
#: The random-circuit property tests: 10 decades of conductance need more draws to reach the extremes.
RANDOM_CIRCUITS = settings(HYPOTHESIS, max_examples=300)


# -- helpers -------------------------------------------------------------------

def solve(net, bc, k, x, backend, alive=None, clamp=None):
    """Solve one network; ``x`` are input values (n_in, n_ex) or (n_in,).

    Returns a dict with the multipliers, outputs, power, node voltages and drops
    of the free twin, or of the clamped twin when ``clamp`` (output values) is given.
    """
    x = np.asarray(x, float)
    if x.ndim == 1:
        x = x[:, None]
    solver = TwinSolver([net], [bc], backend=backend)
    resp = solver.response(np.asarray(k, float)[None],
                           None if alive is None else np.asarray(alive, bool)[None])
    if clamp is None:
        lam, out, power = free_solution(resp, x[None])
        values = x[None]
    else:
        values = np.concatenate([x, np.asarray(clamp, float).reshape(-1, x.shape[1])])[None]
        lam, power = clamped_solution(resp, values)
        out = None
    V = node_voltages(resp, lam, values)[0]
    drops = np.einsum("em,mx->ex", resp.drop[0][:, :lam.shape[1]], lam[0])
    return dict(lam=lam[0], out=None if out is None else out[0], power=power[0], V=V,
                drops=drops, values=values[0], resp=resp)


def row_values_from_voltages(rows, V):
    """Value of every row (node voltage or edge drop) read from node voltages ``V`` (N, n_ex)."""
    return np.array([V[a] if b < 0 else V[a] - V[b] for a, b in rows])


def injected_currents(n_nodes, rows, lam):
    """``C^T lam``: net current injected into each node by the row sources."""
    inj = np.zeros((n_nodes, lam.shape[-1]))
    for r, (a, b) in enumerate(rows):
        inj[a] += lam[r]
        if b >= 0:
            inj[b] -= lam[r]
    return inj


def assert_circuit_laws(net, bc, k, sol, rows, alive=None, rtol=1e-10):
    """KCL at free nodes, source currents at constrained nodes, power balance, rows met."""
    k_eff = np.asarray(k, float) if alive is None else np.where(alive, k, 0.0)
    V = sol["V"]
    dV = net.incidence @ V
    live = np.ones(net.n_edges, bool) if alive is None else np.asarray(alive, bool)
    # reported drops: the voltage differences across live edges, zero on dead edges
    np.testing.assert_allclose(sol["drops"][live], dV[live], rtol=0, atol=1e-12 * max(1.0, np.abs(V).max()))
    np.testing.assert_array_equal(sol["drops"][~live], 0.0)
    current = k_eff[:, None] * dV
    scale = max(np.abs(current).max(), 1e-300)
    net_out = net.incidence.T @ current  # current leaving each node through the edges
    fixed = {bc.ground} | {a for a, b in rows} | {b for a, b in rows if b >= 0}
    free_nodes = [v for v in range(net.n_nodes) if v not in fixed]
    if free_nodes:
        assert np.abs(net_out[free_nodes]).max() / scale < rtol, "KCL violated at a free node"
    # at constrained nodes the edge currents are fed by the sources (multipliers)
    inj = injected_currents(net.n_nodes, rows, sol["lam"])
    not_ground = np.arange(net.n_nodes) != bc.ground
    assert np.abs(net_out[not_ground] - inj[not_ground]).max() / scale < rtol
    # the ground sinks the net current the sources inject (edge rows inject none)
    ground_current = -inj.sum(0)
    assert np.abs(net_out[bc.ground] - inj[bc.ground] - ground_current).max() / scale < rtol
    # power: dissipated == reported == delivered by the sources
    dissipated = (k_eff[:, None] * dV**2).sum(0)
    delivered = (sol["values"] * sol["lam"]).sum(0)
    np.testing.assert_allclose(sol["power"], dissipated, rtol=rtol, atol=1e-300)
    np.testing.assert_allclose(delivered, dissipated, rtol=rtol, atol=1e-300)
    # every enforced row holds: node voltages and edge drops
    vscale = max(np.abs(sol["values"]).max(), 1e-300)
    np.testing.assert_allclose(row_values_from_voltages(rows, V), sol["values"], rtol=0, atol=1e-12 * vscale)
    assert np.abs(V[bc.ground]).max() == 0.0


# -- analytic circuits ---------------------------------------------------------

@by_backend
@pytest.mark.parametrize("k1, k2", [(1.0, 1.0), (1.0, 3.0), (2e-3, 5e-6), (7.0, 0.25)])
def test_voltage_divider(backend, k1, k2):
    net = voltage_divider()  # 0 (in) -k1- 1 (out) -k2- 2 (ground)
    bc = Boundary(2, [(0, -1)], [(1, -1)])
    vin = np.array([[2.0, -0.5, 1e-3]])
    sol = solve(net, bc, [k1, k2], vin, backend)
    np.testing.assert_allclose(sol["out"][0], vin[0] * k1 / (k1 + k2), rtol=1e-12)
    k_series = k1 * k2 / (k1 + k2)
    np.testing.assert_allclose(sol["lam"][0], vin[0] * k_series, rtol=1e-12)  # source current
    np.testing.assert_allclose(sol["power"], vin[0] ** 2 * k_series, rtol=1e-12)
    np.testing.assert_allclose(sol["V"], [vin[0], vin[0] * k1 / (k1 + k2), 0 * vin[0]], rtol=1e-12, atol=0)
    assert_circuit_laws(net, bc, [k1, k2], sol, bc.inputs)


@by_backend
@pytest.mark.parametrize("n", [2, 3, 7])
def test_series_chain_effective_conductance(backend, n):
    k = np.array([0.5, 2.0, 3.0, 0.1, 10.0, 4.0, 1.5])[:n]
    net = Network(n + 1, [[i, i + 1] for i in range(n)])
    bc = Boundary(n, [(0, -1)], [(1, -1)])
    sol = solve(net, bc, k, [1.5], backend)
    k_eff = 1.0 / (1.0 / k).sum()
    np.testing.assert_allclose(sol["power"], 1.5**2 * k_eff, rtol=1e-12)
    # equal current through every series resistor
    np.testing.assert_allclose(k * sol["drops"][:, 0], 1.5 * k_eff, rtol=1e-12)
    assert_circuit_laws(net, bc, k, sol, bc.inputs)


@by_backend
def test_parallel_branches_effective_conductance(backend):
    # input node 0, ground node 1: a direct edge and two two-edge branches in parallel
    net = Network(4, [[0, 1], [0, 2], [2, 1], [0, 3], [3, 1]])
    k = np.array([0.3, 2.0, 5.0, 1e-2, 4e-2])
    bc = Boundary(1, [(0, -1)], [(2, -1)])
    sol = solve(net, bc, k, [2.0], backend)
    k_eff = k[0] + k[1] * k[2] / (k[1] + k[2]) + k[3] * k[4] / (k[3] + k[4])
    np.testing.assert_allclose(sol["power"], 4.0 * k_eff, rtol=1e-12)
    np.testing.assert_allclose(sol["lam"][0], 2.0 * k_eff, rtol=1e-12)
    np.testing.assert_allclose(sol["out"][0], 2.0 * k[1] / (k[1] + k[2]), rtol=1e-12)
    assert_circuit_laws(net, bc, k, sol, bc.inputs)


def _bridge():
    # 0 top (input), 1 left, 2 right, 3 bottom (ground); edges: 0-1, 1-3, 0-2, 2-3, bridge 1-2
    return Network(4, [[0, 1], [1, 3], [0, 2], [2, 3], [1, 2]])


@by_backend
@pytest.mark.parametrize("k5", [0.1, 1.0, 100.0])
def test_balanced_wheatstone_bridge_has_no_bridge_current(backend, k5):
    k1, k2, k3, k4 = 1.0, 3.0, 0.02, 0.06  # k1/k2 == k3/k4
    k = np.array([k1, k2, k3, k4, k5])
    bc = Boundary(3, [(0, -1)], [(1, 2)])  # output: the bridge drop V_1 - V_2
    sol = solve(_bridge(), bc, k, [5.0], backend)
    assert abs(sol["drops"][4, 0]) < 1e-13 * 5.0
    assert abs(sol["out"][0, 0]) < 1e-13 * 5.0
    # the bridge does not load the arms: power as two independent series pairs
    k_eff = k1 * k2 / (k1 + k2) + k3 * k4 / (k3 + k4)
    np.testing.assert_allclose(sol["power"], 25.0 * k_eff, rtol=1e-12)
    assert_circuit_laws(_bridge(), bc, k, sol, bc.inputs)


@by_backend
@pytest.mark.parametrize("k", [[1.0, 2.0, 3.0, 0.5, 0.7], [1e-3, 1.0, 2.0, 1e-2, 10.0]])
def test_unbalanced_wheatstone_bridge_textbook_current(backend, k):
    k1, k2, k3, k4, k5 = k
    V = 3.0
    bc = Boundary(3, [(0, -1)], [(1, 2)])
    sol = solve(_bridge(), bc, k, [V], backend)
    # Thevenin equivalent seen by the bridge edge
    v_th = V * k1 / (k1 + k2) - V * k3 / (k3 + k4)
    r_th = 1.0 / (k1 + k2) + 1.0 / (k3 + k4)
    i_bridge = v_th / (r_th + 1.0 / k5)
    np.testing.assert_allclose(k5 * sol["drops"][4, 0], i_bridge, rtol=1e-12)
    np.testing.assert_allclose(sol["out"][0, 0], i_bridge / k5, rtol=1e-12)
    assert_circuit_laws(_bridge(), bc, k, sol, bc.inputs)


@by_backend
def test_source_edge_imposes_drop(backend):
    # triangle, ground 0; a source across edge (1, 2) imposes V_1 - V_2 = c
    net = Network(3, [[0, 1], [1, 2], [2, 0]])
    k10, k12, k20 = 2.0, 0.5, 6.0
    k = np.array([k10, k12, k20])
    bc = Boundary(0, [(1, 2)], [(1, -1)])
    c = np.array([[1.2, -0.4]])
    sol = solve(net, bc, k, c, backend)
    np.testing.assert_allclose(sol["V"][1] - sol["V"][2], c[0], rtol=0, atol=1e-14)
    np.testing.assert_allclose(sol["out"][0], c[0] * k20 / (k10 + k20), rtol=1e-12)
    k_eff = k12 + k10 * k20 / (k10 + k20)
    np.testing.assert_allclose(sol["lam"][0], c[0] * k_eff, rtol=1e-12)
    np.testing.assert_allclose(sol["power"], c[0] ** 2 * k_eff, rtol=1e-12)
    assert_circuit_laws(net, bc, k, sol, bc.inputs)


@by_backend
def test_source_edge_orientation(backend):
    # (2, 1) imposes V_2 - V_1; reversing the row orientation flips the voltages
    net = Network(3, [[0, 1], [1, 2], [2, 0]])
    k = np.array([1.0, 2.0, 3.0])
    a = solve(net, Boundary(0, [(1, 2)], [(1, -1)]), k, [1.0], backend)
    b = solve(net, Boundary(0, [(2, 1)], [(1, -1)]), k, [1.0], backend)
    np.testing.assert_allclose(b["V"], -a["V"], rtol=1e-13, atol=1e-15)


@by_backend
def test_clamped_twin_meets_all_rows_exactly(backend):
    net = lab_network()
    k = np.random.default_rng(5).uniform(0.1, 10, net.n_edges)
    bc = Boundary(0, [(8, -1), (2, 5)], [(4, -1), (6, 7)])
    x = np.array([[1.0, -2.0, 0.3], [0.5, 0.1, -1.0]])
    free = solve(net, bc, k, x, backend)
    eta = 0.3
    desired = np.array([[0.2, 0.4, -0.1], [0.0, 1.0, 0.5]])
    clamp = free["out"] + eta * (desired - free["out"])
    cl = solve(net, bc, k, x, backend, clamp=clamp)
    np.testing.assert_allclose(row_values_from_voltages(bc.rows, cl["V"]), np.concatenate([x, clamp]),
                               rtol=0, atol=1e-12)
    assert_circuit_laws(net, bc, k, cl, bc.rows)
    assert_circuit_laws(net, bc, k, free, bc.inputs)
    # the free outputs are what the free voltages show
    np.testing.assert_allclose(row_values_from_voltages(bc.outputs, free["V"]), free["out"], atol=1e-12)
    # clamping at the free response reproduces the free state (output multipliers vanish)
    same = solve(net, bc, k, x, backend, clamp=free["out"])
    np.testing.assert_allclose(same["V"], free["V"], atol=1e-12)
    np.testing.assert_allclose(same["lam"][2:], 0, atol=1e-12)
    np.testing.assert_allclose(same["power"], free["power"], rtol=1e-12)
    # the free state minimises power: any clamp away from it costs more
    assert (cl["power"] > free["power"]).all()


@by_backend
def test_free_state_minimises_power(backend):
    net = square_lattice(4, 4)
    rng = np.random.default_rng(2)
    k = 10 ** rng.uniform(-1, 1, net.n_edges)
    bc = Boundary(0, [(15, -1), (5, -1)], [(10, -1)])
    sol = solve(net, bc, k, [1.0, 0.4], backend)
    fixed = [0, 15, 5]
    for _ in range(5):
        dV = rng.normal(size=net.n_nodes) * 1e-3
        dV[fixed] = 0
        V = sol["V"][:, 0] + dV
        assert (k * (net.incidence @ V) ** 2).sum() > sol["power"][0]


@by_backend
@pytest.mark.parametrize("k", [[1.0, 2.0, 3.0, 0.5, 0.7, 1.5], [1e-3, 1.0, 2.0, 1e-2, 10.0, 0.05]])
def test_two_source_bridge_matches_nodal_analysis(backend, k):
    """A Wheatstone bridge driven by two sources, against hand-written nodal analysis.

    Nodes: 0 top (source V_a), 1 left, 2 right, 3 bottom (ground), 4 a second
    source V_b feeding node 2 through k6; the bridge edge 1-2 (k5) is the output.
    Nodal equations at 1 and 2, solved by Cramer's rule:
    ``(k1+k2+k5) V1 - k5 V2 = k1 V_a`` and ``-k5 V1 + (k3+k4+k5+k6) V2 = k3 V_a + k6 V_b``.
    The third example sets V_b to the value that nulls the bridge current (then
    the left arm is an unloaded divider), a balance only the second source can reach.
    """
    k1, k2, k3, k4, k5, k6 = k
    net = Network(5, [[0, 1], [1, 3], [0, 2], [2, 3], [1, 2], [4, 2]])
    bc = Boundary(3, [(0, -1), (4, -1)], [(1, 2)])
    va = 3.0
    v1_null = va * k1 / (k1 + k2)
    vb_null = v1_null + (k3 * (v1_null - va) + k4 * v1_null) / k6  # KCL at node 2 with V2 = V1
    Va = np.array([va, 0.0, va])
    Vb = np.array([0.0, -2.0, vb_null])
    sol = solve(net, bc, k, np.stack([Va, Vb]), backend)
    a11, a22 = k1 + k2 + k5, k3 + k4 + k5 + k6
    det = a11 * a22 - k5**2
    V1 = (k1 * Va * a22 + k5 * (k3 * Va + k6 * Vb)) / det
    V2 = (a11 * (k3 * Va + k6 * Vb) + k5 * k1 * Va) / det
    np.testing.assert_allclose(sol["V"], np.stack([Va, V1, V2, 0 * Va, Vb]), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(sol["out"][0], V1 - V2, rtol=1e-10, atol=1e-13)
    # source currents and the power they deliver
    Ia = k1 * (Va - V1) + k3 * (Va - V2)
    Ib = k6 * (Vb - V2)
    np.testing.assert_allclose(sol["lam"], np.stack([Ia, Ib]), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(sol["power"], Va * Ia + Vb * Ib, rtol=1e-12)
    # the second source balances the bridge: no bridge current, left node at the divider voltage
    assert abs(sol["drops"][4, 2]) < 1e-13 * va
    np.testing.assert_allclose(sol["V"][1, 2], v1_null, rtol=1e-12)
    assert abs(sol["drops"][4, 0]) > 1e-3 * va and abs(sol["drops"][4, 1]) > 1e-3  # unbalanced otherwise
    assert_circuit_laws(net, bc, k, sol, bc.inputs)


@by_backend
def test_scaling_all_conductances_keeps_voltages(backend):
    net = lab_network()
    k = np.random.default_rng(9).uniform(0.2, 3, net.n_edges)
    bc = Boundary(0, [(8, -1)], [(4, -1)])
    a = solve(net, bc, k, [1.0], backend)
    b = solve(net, bc, 1e3 * k, [1.0], backend)
    np.testing.assert_allclose(b["V"], a["V"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(b["power"], 1e3 * a["power"], rtol=1e-12)


@by_backend
def test_mean_square_drops_matches_explicit_drops(backend):
    net = lab_network()
    k = np.random.default_rng(4).uniform(0.5, 2, net.n_edges)
    bc = Boundary(0, [(8, -1), (3, 4)], [(5, -1)])
    x = np.random.default_rng(5).normal(size=(2, 9))
    solver = TwinSolver([net], [bc], backend=backend)
    resp = solver.response(k[None])
    lam, out, _ = free_solution(resp, x[None])
    V = node_voltages(resp, lam)[0]
    expected = ((net.incidence @ V) ** 2).mean(1)
    np.testing.assert_allclose(mean_square_drops(resp, lam)[0], expected, rtol=1e-12, atol=1e-15)
    lam_c, _ = clamped_solution(resp, np.concatenate([x, out[0] + 0.1], 0)[None])
    Vc = node_voltages(resp, lam_c)[0]
    np.testing.assert_allclose(mean_square_drops(resp, lam_c)[0], ((net.incidence @ Vc) ** 2).mean(1),
                               rtol=1e-12, atol=1e-15)


def test_auto_backend_choice():
    small = TwinSolver([lab_network()], [Boundary(0, [(8, -1)], [(4, -1)])])
    assert small.backend == "dense"
    n = int(np.ceil(np.sqrt(DENSE_MAX_NODES + 1)))
    big = TwinSolver([square_lattice(n, n)], [Boundary(0, [(n * n - 1, -1)], [(1, -1)])])
    assert big.backend == "lu"


@by_backend
def test_response_cache_follows_conductance_changes(backend):
    net = voltage_divider()
    solver = TwinSolver([net], [Boundary(2, [(0, -1)], [(1, -1)])], backend=backend)
    k = np.array([[1.0, 1.0]])
    r1 = solver.response(k)
    assert solver.response(k.copy()) is r1  # same state: cached
    k[0, 1] = 3.0  # mutate in place
    r2 = solver.response(k)
    _, out, _ = free_solution(r2, np.ones((1, 1, 1)))
    assert out[0, 0, 0] == pytest.approx(0.25, rel=1e-14)


@pytest.mark.parametrize("realization", [1, 7])
def test_dense_equals_sparse_on_jammed_network(realization):
    net = jammed_network(64, realization)
    rng = np.random.default_rng(realization)
    k = 10 ** rng.uniform(-2, 2, net.n_edges)
    nodes = rng.permutation(net.n_nodes)
    e = net.edges[rng.integers(net.n_edges)]
    rest = [v for v in nodes if v not in e][:6]
    bc = Boundary(rest[0], [(rest[1], -1), (rest[2], -1), (int(e[0]), int(e[1]))],
                  [(rest[3], -1), (rest[4], -1)])
    x = rng.normal(size=(3, 4))
    d = solve(net, bc, k, x, "dense")
    s = solve(net, bc, k, x, "sparse")
    scale = np.abs(d["V"]).max()
    np.testing.assert_allclose(s["V"], d["V"], rtol=0, atol=1e-10 * scale)
    np.testing.assert_allclose(s["power"], d["power"], rtol=1e-10)
    np.testing.assert_allclose(s["lam"], d["lam"], rtol=1e-9, atol=1e-12 * np.abs(d["lam"]).max())
    assert_circuit_laws(net, bc, k, d, bc.inputs)
    assert_circuit_laws(net, bc, k, s, bc.inputs)


# -- random circuits (hypothesis) ----------------------------------------------

class _UnionFind:
    def __init__(self, n):
        self.p = list(range(n))

    def find(self, a):
        while self.p[a] != a:
            self.p[a] = self.p[self.p[a]]
            a = self.p[a]
        return a

    def union(self, a, b):
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        self.p[ra] = rb
        return True


#: log10 of the default conductance range of an element, ``[k_min, k_max] = [1e-4, 1e6]``.
LOG_K_RANGE = tuple(float(v) for v in np.log10([LearningConfig().k_min, LearningConfig().k_max]))

#: Voltages drawn for the random circuits: [-2, 2] V, values below 1 uV set to 0 (a power
#: k V^2 of a subnormal voltage underflows, which says nothing about the solver).
volts = st.floats(-2, 2).map(lambda v: v if abs(v) >= 1e-6 else 0.0)


@st.composite
def random_circuits(draw, n_in=None, n_out=None, max_nodes=24, log_k_range=LOG_K_RANGE):
    """A random connected network with consistent rows; ``log10 k`` uniform in ``log_k_range``
    (default the full element range, 10 decades).

    Spanning tree from a Pruefer sequence plus extra chords; rows are node rows
    and (optionally) edge rows, chosen so that no row is redundant: fixed nodes
    and the ground are merged into one node and the edge rows must form a forest.
    """
    n_in = draw(st.integers(1, 3)) if n_in is None else n_in
    n_out = draw(st.integers(1, 2)) if n_out is None else n_out
    n = draw(st.integers(n_in + n_out + 1, max_nodes))
    prufer = draw(st.lists(st.integers(0, n - 1), min_size=n - 2, max_size=n - 2))
    g = nx.from_prufer_sequence(prufer) if n > 2 else nx.path_graph(2)
    chords = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=2 * n))
    g.add_edges_from((a, b) for a, b in chords if a != b)
    net = from_networkx(g)
    log_k = draw(st.lists(st.floats(*log_k_range), min_size=net.n_edges, max_size=net.n_edges))
    k = 10.0 ** np.array(log_k)
    order = draw(st.permutations(range(n)))
    ground = order[0]
    n_rows = n_in + n_out
    n_edge_rows = draw(st.integers(0, n_rows))
    uf = _UnionFind(n)
    rows = []
    node_pool = list(order[1:])
    edge_order = draw(st.permutations(range(net.n_edges)))
    edge_rows_wanted = n_edge_rows
    # node rows first, merging fixed nodes with the ground
    for v in node_pool[:n_rows - n_edge_rows]:
        rows.append((v, -1))
        uf.union(v, ground)
    for e in edge_order:
        if edge_rows_wanted == 0:
            break
        a, b = map(int, net.edges[e])
        if uf.union(a, b):
            flip = draw(st.booleans())
            rows.append((b, a) if flip else (a, b))
            edge_rows_wanted -= 1
    # too few independent edges: fill with node rows on still-free nodes
    for v in node_pool[n_rows - n_edge_rows:]:
        if len(rows) == n_rows:
            break
        if uf.union(v, ground):
            rows.append((v, -1))
    if len(rows) < n_rows:
        reject()
    rows = draw(st.permutations(rows))
    bc = Boundary(ground, rows[:n_in], rows[n_in:])
    n_ex = draw(st.integers(1, 3))
    x = np.array(draw(st.lists(volts, min_size=n_in * n_ex, max_size=n_in * n_ex)))
    return net, bc, k, x.reshape(n_in, n_ex)


def rounding_tolerance(net, k):
    """Relative accuracy a double-precision nodal solve can promise for conductances ``k``.

    Eliminating a node forms sums such as ``k_small + k_big - k_big``, which keep
    ``k_small`` only to ``eps * k_big``: the computed solution is the exact
    solution of a circuit whose conductances are off by a relative amount of
    order ``eps * k_max / k_min`` per elimination, ``n_nodes`` of them at most.
    Voltages (relative to the largest imposed voltage), currents (relative to
    ``conductance x voltage`` at a node) and power (relative to itself) of a
    resistor network are well conditioned under relative changes of its
    conductances, so they carry that error.  The factor 4 covers the small
    constants of the rounding-error bounds: over ~5000 random circuits with 10
    decades of conductance the worst error measured was 0.85 of
    ``n_nodes * eps * k_max / k_min`` (1.7 for the dense/sparse Gram difference,
    checked against twice the bound).
    """
    return 4 * net.n_nodes * np.finfo(float).eps * k.max() / k.min()


def _within(err, bound, what):
    """Every ``err <= bound`` (so a zero bound demands an exact zero); report the worst ratio."""
    err, bound = np.broadcast_arrays(np.abs(err), bound)
    bad = err > bound
    if bad.any():
        ratio = np.where(bound > 0, err / np.where(bound > 0, bound, 1), np.inf)
        worst = np.unravel_index(np.argmax(ratio), ratio.shape)
        raise AssertionError(f"{what}: error {err[worst]:.3g} exceeds its rounding bound {bound[worst]:.3g} "
                             f"({ratio[worst]:.3g} times) at index {tuple(int(i) for i in worst)}")


def assert_circuit_laws_to_rounding(net, bc, k, sol, rows):
    """The circuit laws of :func:`assert_circuit_laws`, each at its own physical scale.

    With ``tol = rounding_tolerance`` and ``V_s`` the largest imposed voltage of
    an example: every row holds to ``tol V_s``; KCL holds at every node to
    ``tol V_s`` times the node's total conductance (so weak nodes are held to
    weak currents); dissipated, reported and delivered power agree to ``tol``
    relative to the power.  An example with no imposed voltage must be exactly dead.
    """
    tol = rounding_tolerance(net, k)
    V, lam, values = sol["V"], sol["lam"], sol["values"]
    v_scale = np.abs(values).max(0)  # (n_ex,)
    B = net.incidence
    dV = B @ V
    assert (V[bc.ground] == 0.0).all()
    _within(sol["drops"] - dV, tol * v_scale, "reported drops vs voltage differences")
    _within(row_values_from_voltages(rows, V) - values, tol * v_scale, "rows")
    # KCL, node by node, on the scale of the node's own conductance
    node_conductance = abs(B).T @ k  # (N,)
    inj = injected_currents(net.n_nodes, rows, lam)
    imbalance = B.T @ (k[:, None] * dV) - inj
    not_ground = np.arange(net.n_nodes) != bc.ground
    _within(imbalance[not_ground], tol * node_conductance[not_ground, None] * v_scale, "KCL")
    # the ground sinks what the sources inject; it balances the rounding of every other node
    _within(imbalance[bc.ground] + inj.sum(0), tol * node_conductance.sum() * v_scale, "ground current")
    # power: dissipated in the edges == reported == delivered by the sources
    dissipated = (k[:, None] * dV**2).sum(0)
    assert (dissipated[v_scale > 0] > 0).all()
    _within(sol["power"] - dissipated, tol * dissipated, "reported power")
    _within((values * lam).sum(0) - dissipated, tol * dissipated, "delivered power")


@RANDOM_CIRCUITS
@given(random_circuits(), st.sampled_from(BACKENDS))
def test_random_circuit_kcl_and_power_balance(circuit, backend):
    net, bc, k, x = circuit
    sol = solve(net, bc, k, x, backend)
    assert_circuit_laws_to_rounding(net, bc, k, sol, bc.inputs)
    _within(row_values_from_voltages(bc.outputs, sol["V"]) - sol["out"],
            rounding_tolerance(net, k) * np.abs(x).max(0), "free outputs vs node voltages")


@RANDOM_CIRCUITS
@given(random_circuits(), st.sampled_from(BACKENDS), st.data())
def test_random_circuit_clamped_twin(circuit, backend, data):
    net, bc, k, x = circuit
    clamp = np.array(data.draw(st.lists(volts, min_size=x.shape[1] * len(bc.outputs),
                                        max_size=x.shape[1] * len(bc.outputs))))
    sol = solve(net, bc, k, x, backend, clamp=clamp.reshape(len(bc.outputs), x.shape[1]))
    assert_circuit_laws_to_rounding(net, bc, k, sol, bc.rows)


@RANDOM_CIRCUITS
@given(random_circuits())
def test_random_circuit_dense_equals_sparse(circuit):
    """Each backend is within ``rounding_tolerance`` of the exact solution, so they agree to twice that."""
    net, bc, k, x = circuit
    d = solve(net, bc, k, x, "dense")
    s = solve(net, bc, k, x, "sparse")
    tol2 = 2 * rounding_tolerance(net, k)
    v_scale = np.abs(x).max(0)
    _within(s["V"] - d["V"], tol2 * v_scale, "node voltages")
    _within(s["out"] - d["out"], tol2 * v_scale, "outputs")
    _within(s["power"] - d["power"], tol2 * d["power"], "power")
    _within(s["lam"] - d["lam"], tol2 * np.abs(d["lam"]).max(0), "source currents")
    rd, rs = d["resp"], s["resp"]
    _within(rs.gram - rd.gram, tol2 * np.abs(rd.gram).max(), "Gram matrix")


@st.composite
def random_stacks(draw):
    # Four decades of conductance, as this stacking test has always drawn: its fixed 1e-10
    # tolerances are not rounding bounds (at 10 decades stacked and single solves differ by
    # up to ~1e-9 relative, within rounding_tolerance, because padding changes the matrix size).
    n_in = draw(st.integers(1, 3))
    n_out = draw(st.integers(1, 2))
    n_sys = draw(st.integers(2, 4))
    return [draw(random_circuits(n_in=n_in, n_out=n_out, max_nodes=draw(st.integers(n_in + n_out + 1, 24)),
                                 log_k_range=(-2.0, 2.0)))
            for _ in range(n_sys)]


@HYPOTHESIS
@given(random_stacks(), st.sampled_from(BACKENDS), st.integers(1, 3))
def test_stack_of_systems_equals_each_alone(stack, backend, n_ex):
    nets = [c[0] for c in stack]
    bcs = [c[1] for c in stack]
    n_in, n_out = len(bcs[0].inputs), len(bcs[0].outputs)
    solver = TwinSolver(nets, bcs, backend=backend)
    R, E, N = len(stack), solver.n_edges, solver.n_nodes
    k = np.ones((R, E))
    rng = np.random.default_rng(len(nets) * 7 + N)
    x = rng.normal(size=(R, n_in, n_ex))
    y = rng.normal(size=(R, n_out, n_ex))
    for r, (net, _, kr, _) in enumerate(stack):
        k[r, :net.n_edges] = kr
    resp = solver.response(k)
    lam, out, power = free_solution(resp, x)
    V = node_voltages(resp, lam, x)
    lam_c, power_c = clamped_solution(resp, np.concatenate([x, y], 1))
    Vc = node_voltages(resp, lam_c, np.concatenate([x, y], 1))
    msd = mean_square_drops(resp, lam)
    assert resp.row_connected.all()
    for r, (net, bc, kr, _) in enumerate(stack):
        alone = solve(net, bc, kr, x[r], backend)
        scale = max(np.abs(alone["V"]).max(), 1e-300)
        np.testing.assert_allclose(V[r, :net.n_nodes], alone["V"], rtol=0, atol=1e-10 * scale)
        np.testing.assert_array_equal(V[r, net.n_nodes:], 0.0)  # padding nodes
        np.testing.assert_allclose(out[r], alone["out"], rtol=0, atol=1e-10 * scale)
        np.testing.assert_allclose(power[r], alone["power"], rtol=1e-10, atol=1e-300)
        np.testing.assert_allclose(lam[r], alone["lam"], rtol=0,
                                   atol=1e-10 * max(np.abs(alone["lam"]).max(), 1e-300))
        # mean_square_drops is a quadratic form in the multipliers: its rounding error scales
        # as eps (|D| |lam|)^2, which exceeds eps * drop^2 when source currents cancel
        bound = (np.abs(alone["resp"].drop).max() * np.abs(alone["lam"]).max()) ** 2
        np.testing.assert_allclose(msd[r, :net.n_edges], (alone["drops"] ** 2).mean(1),
                                   rtol=1e-9, atol=1e-13 * bound)
        np.testing.assert_allclose(msd[r, :net.n_edges],
                                   mean_square_drops(alone["resp"], alone["lam"][None])[0],
                                   rtol=1e-9, atol=1e-14 * bound)
        np.testing.assert_array_equal(msd[r, net.n_edges:], 0.0)
        clamped = solve(net, bc, kr, x[r], backend, clamp=y[r])
        np.testing.assert_allclose(Vc[r, :net.n_nodes], clamped["V"], rtol=0,
                                   atol=1e-10 * max(np.abs(clamped["V"]).max(), 1e-300))
        np.testing.assert_allclose(power_c[r], clamped["power"], rtol=1e-10, atol=1e-300)


# -- parts cut off by dead edges -----------------------------------------------

def _island_network():
    """Main part 0-1-2-3 (a chain with a chord 0-2), island 4-5-6-7 (a chain with a chord 4-6).

    Edge 3-4 (index 2) is the only link between them; killing it cuts the island off.
    """
    edges = [[0, 1], [1, 2], [3, 4], [2, 3], [0, 2], [4, 5], [5, 6], [6, 7], [4, 6]]
    return Network(8, edges, name="two parts joined by edge 3-4")


ISLAND_EDGES = [5, 6, 7, 8]
MAIN_EDGES = [0, 1, 3, 4]
LINK = 2


def _alive():
    alive = np.ones(9, bool)
    alive[LINK] = False
    return alive


def _assert_finite(sol):
    resp = sol["resp"]
    for arr in (sol["lam"], sol["power"], sol["V"], sol["drops"], resp.gram, resp.drop, resp.node):
        assert np.isfinite(arr).all()
    if sol["out"] is not None:
        assert np.isfinite(sol["out"]).all()


@by_backend
def test_cut_off_part_without_input_is_dead_and_reads_zero(backend):
    net = _island_network()
    k = np.array([1.0, 2.0, 5.0, 0.5, 3.0, 1.0, 2.0, 4.0, 0.7])
    bc = Boundary(0, [(3, -1)], [(1, -1), (6, -1), (5, 4)])
    x = np.array([[2.0, -1.0]])
    sol = solve(net, bc, k, x, backend, alive=_alive())
    _assert_finite(sol)
    np.testing.assert_array_equal(sol["resp"].row_connected[0], [True, True, False, False])
    np.testing.assert_array_equal(sol["out"][1:], 0.0)
    np.testing.assert_array_equal(sol["V"][4:], 0.0)
    np.testing.assert_array_equal(sol["drops"][ISLAND_EDGES], 0.0)
    np.testing.assert_array_equal(sol["drops"][LINK], 0.0)  # a dead edge shows no drop
    # the main part is solved as if the island did not exist
    main = Network(4, [[0, 1], [1, 2], [2, 3], [0, 2]])
    ref = solve(main, Boundary(0, [(3, -1)], [(1, -1)]), k[MAIN_EDGES], x, backend)
    np.testing.assert_allclose(sol["V"][:4], ref["V"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(sol["out"][0], ref["out"][0], rtol=1e-12)
    np.testing.assert_allclose(sol["power"], ref["power"], rtol=1e-12)
    assert_circuit_laws(net, bc, k, sol, bc.inputs, alive=_alive())


@by_backend
def test_clamping_a_dead_output_keeps_island_current_free(backend):
    net = _island_network()
    k = np.linspace(0.5, 3.0, 9)
    bc = Boundary(0, [(3, -1)], [(6, -1)])
    x = np.array([[1.0]])
    free = solve(net, bc, k, x, backend, alive=_alive())
    cl = solve(net, bc, k, x, backend, alive=_alive(), clamp=[[0.8]])
    _assert_finite(cl)
    # a single fixed voltage in the island: it floats to that voltage, no current
    np.testing.assert_allclose(cl["V"][4:], 0.8, rtol=1e-13)
    np.testing.assert_allclose(cl["drops"][ISLAND_EDGES], 0.0, atol=1e-14)
    np.testing.assert_allclose(cl["power"], free["power"], rtol=1e-12)
    np.testing.assert_allclose(cl["V"][:4], free["V"][:4], rtol=1e-12, atol=1e-15)


@by_backend
def test_cut_off_part_with_one_input_floats_at_its_voltage(backend):
    net = _island_network()
    k = np.linspace(0.5, 3.0, 9)
    bc = Boundary(0, [(3, -1), (5, -1)], [(7, -1), (1, -1)])
    x = np.array([[1.0, 2.0], [3.0, -0.5]])
    sol = solve(net, bc, k, x, backend, alive=_alive())
    _assert_finite(sol)
    assert sol["resp"].row_connected.all()
    np.testing.assert_allclose(sol["V"][4:], np.broadcast_to(x[1], (4, 2)), rtol=1e-13)
    np.testing.assert_allclose(sol["out"][0], x[1], rtol=1e-13)
    np.testing.assert_allclose(sol["drops"][ISLAND_EDGES], 0.0, atol=1e-14)
    np.testing.assert_allclose(sol["lam"][1], 0.0, atol=1e-14)  # the island source delivers nothing
    assert_circuit_laws(net, bc, k, sol, bc.inputs, alive=_alive())


def _two_input_island(backend, x):
    # island: 4-5 (k=1), 5-6 (k=2), 6-7 (k=4), chord 4-6 (k=0.7); inputs 4 and 7, output 5
    net = _island_network()
    k = np.array([1.0, 2.0, 5.0, 0.5, 3.0, 1.0, 2.0, 4.0, 0.7])
    bc = Boundary(0, [(2, -1), (4, -1), (7, -1)], [(5, -1)])
    return net, k, bc, solve(net, bc, k, x, backend, alive=_alive())


def _two_input_island_reference(x):
    """Hand solution of the island with V_4 = x[1], V_7 = x[2] (nodal analysis at 5 and 6)."""
    k45, k56, k67, k46 = 1.0, 2.0, 4.0, 0.7
    V4, V7 = x[1], x[2]
    # node 5: k45 (V5 - V4) + k56 (V5 - V6) = 0 ; node 6: k56 (V6 - V5) + k67 (V6 - V7) + k46 (V6 - V4) = 0
    A = np.array([[k45 + k56, -k56], [-k56, k56 + k67 + k46]])
    V5, V6 = np.linalg.solve(A, np.stack([k45 * V4, k67 * V7 + k46 * V4]))
    power = k45 * (V4 - V5) ** 2 + k56 * (V5 - V6) ** 2 + k67 * (V6 - V7) ** 2 + k46 * (V4 - V6) ** 2
    return V5, V6, power


@by_backend
def test_cut_off_part_with_two_inputs_gets_absolute_voltages_and_current(backend):
    x = np.array([[1.0, 1.0], [5.0, -2.0], [2.0, -2.0]])
    net, k, bc, sol = _two_input_island(backend, x)
    _assert_finite(sol)
    assert sol["resp"].row_connected.all()
    V5, V6 = _two_input_island_reference(x)[:2]
    np.testing.assert_allclose(sol["V"][4], x[1], rtol=1e-13)
    np.testing.assert_allclose(sol["V"][7], x[2], rtol=1e-13)
    np.testing.assert_allclose(sol["V"][5], V5, rtol=1e-12)
    np.testing.assert_allclose(sol["V"][6], V6, rtol=1e-12)
    np.testing.assert_allclose(sol["out"][0], V5, rtol=1e-12)
    # first example: different voltages -> current in the island; second: equal -> none
    assert np.abs(sol["drops"][ISLAND_EDGES, 0]).min() > 0.1
    np.testing.assert_allclose(sol["drops"][ISLAND_EDGES, 1], 0.0, atol=1e-13)
    # main part: V_2 = 1 V over 0-1-2 and the chord, node 3 is a dead end
    k01, k12, k02 = k[0], k[1], k[4]
    main_power = x[0] ** 2 * (k01 * k12 / (k01 + k12) + k02)
    island_power = _two_input_island_reference(x)[2]
    np.testing.assert_allclose(sol["power"], main_power + island_power, rtol=1e-12)
    alive = _alive()
    dissipated = (np.where(alive, k, 0)[:, None] * (net.incidence @ sol["V"]) ** 2).sum(0)
    np.testing.assert_allclose(dissipated, sol["power"], rtol=1e-12)
    # KCL at the free nodes
    current = np.where(alive, k, 0)[:, None] * (net.incidence @ sol["V"])
    net_out = net.incidence.T @ current
    np.testing.assert_allclose(net_out[[1, 3, 5, 6]], 0.0, atol=1e-12 * np.abs(current).max())


@by_backend
def test_cut_off_part_with_source_edge(backend):
    # island driven only by a source across edge 5-6; the absolute level is free, drops are not
    net = _island_network()
    k = np.array([1.0, 2.0, 5.0, 0.5, 3.0, 1.0, 2.0, 4.0, 0.7])
    bc = Boundary(0, [(2, -1), (5, 6)], [(1, -1), (4, 6)])
    x = np.array([[1.0], [0.6]])
    sol = solve(net, bc, k, x, backend, alive=_alive())
    _assert_finite(sol)
    assert sol["resp"].row_connected.all()
    V = sol["V"][:, 0]
    np.testing.assert_allclose(V[5] - V[6], 0.6, rtol=1e-13)
    # V_5 - V_6 = 0.6 across k56 = 2 in parallel with 5-4-6 (k45 = 1 in series with k46 = 0.7)
    k_ser = 1.0 * 0.7 / 1.7
    np.testing.assert_allclose(V[4] - V[6], 0.6 * k_ser / 0.7, rtol=1e-12)
    np.testing.assert_allclose(sol["out"][1, 0], 0.6 * k_ser / 0.7, rtol=1e-12)
    np.testing.assert_allclose(V[7] - V[6], 0.0, atol=1e-13)
    main_power = 1.0 * (k[0] * k[1] / (k[0] + k[1]) + k[4])
    np.testing.assert_allclose(sol["power"][0], main_power + 0.36 * (2.0 + k_ser), rtol=1e-12)
    np.testing.assert_allclose(sol["lam"][1, 0], 0.6 * (2.0 + k_ser), rtol=1e-12)


@by_backend
def test_dead_edge_conductance_is_irrelevant(backend):
    net = lab_network()
    bc = Boundary(0, [(8, -1)], [(4, -1)])
    alive = np.ones(net.n_edges, bool)
    alive[[3, 12]] = False
    k = np.random.default_rng(1).uniform(0.5, 2, net.n_edges)
    ref = solve(net, bc, k, [1.0], backend, alive=alive)
    for dead in (0.0, -5.0, 1e9):
        k2 = k.copy()
        k2[[3, 12]] = dead
        sol = solve(net, bc, k2, [1.0], backend, alive=alive)
        np.testing.assert_allclose(sol["V"], ref["V"], rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(ref["drops"][[3, 12]], 0.0)
    # and killing edges is the same as removing them from the network
    keep = np.flatnonzero(alive)
    pruned = Network(net.n_nodes, net.edges[keep])
    p = solve(pruned, bc, k[keep], [1.0], backend)
    np.testing.assert_allclose(ref["V"], p["V"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ref["power"], p["power"], rtol=1e-12)


@by_backend
def test_stack_with_alive_masks_and_padding(backend):
    a, b = voltage_divider(), _island_network()
    bca = Boundary(2, [(0, -1)], [(1, -1)])
    bcb = Boundary(0, [(3, -1)], [(6, -1)])
    solver = TwinSolver([a, b], [bca, bcb], backend=backend)
    k = np.ones((2, 9))
    k[1] = np.linspace(0.5, 3.0, 9)
    alive = np.ones((2, 9), bool)
    alive[1, LINK] = False
    resp = solver.response(k, alive)
    x = np.array([[[1.0]], [[2.0]]])
    lam, out, power = free_solution(resp, x)
    np.testing.assert_array_equal(resp.row_connected, [[True, True], [True, False]])
    assert out[0, 0, 0] == pytest.approx(0.5, rel=1e-13)
    assert out[1, 0, 0] == 0.0
    ref = solve(b, bcb, k[1], [2.0], backend, alive=alive[1])
    np.testing.assert_allclose(power[1], ref["power"], rtol=1e-12)
    assert power[0, 0] == pytest.approx(0.5, rel=1e-13)


@by_backend
def test_padding_slot_values_are_ignored(backend):
    a, b = voltage_divider(), lab_network()
    solver = TwinSolver([a, b], [Boundary(2, [(0, -1)], [(1, -1)]), Boundary(0, [(8, -1)], [(4, -1)])],
                        backend=backend)
    k = np.ones((2, 16))
    k[0, 2:] = np.nan  # slots 2..15 of the divider do not exist
    _, out, power = free_solution(solver.response(k), np.ones((2, 1, 1)))
    assert out[0, 0, 0] == pytest.approx(0.5)
    assert np.isfinite(power).all()


# -- errors --------------------------------------------------------------------

def _divider_solver(backend="dense"):
    return TwinSolver([voltage_divider()], [Boundary(2, [(0, -1)], [(1, -1)])], backend=backend)


def test_disconnected_network_raises():
    with pytest.raises(NetworkError, match="disconnected"):
        Network(5, [[0, 1], [1, 2], [3, 4]])


def test_self_loop_and_duplicate_edge_raise():
    with pytest.raises(NetworkError, match="self-loop"):
        Network(3, [[0, 1], [1, 1], [1, 2]])
    with pytest.raises(NetworkError, match="duplicate edge"):
        Network(3, [[0, 1], [1, 2], [2, 1]])


@pytest.mark.parametrize("bc, message", [
    (Boundary(0, [(0, -1)], [(1, -1)]), "node 0 is both ground and input"),
    (Boundary(2, [(0, -1)], [(2, -1)]), "node 2 is both ground and output"),
    (Boundary(2, [(0, -1)], [(0, -1)]), "node 0 is both input and output"),
    (Boundary(2, [(0, -1), (0, -1)], [(1, -1)]), "node 0 is both input and input"),
    (Boundary(2, [(0, -1)], [(99, -1)]), "output node 99 does not exist"),
    (Boundary(2, [(-3, -1)], [(1, -1)]), "input node -3 does not exist"),
    (Boundary(7, [(0, -1)], [(1, -1)]), "ground node 7 does not exist"),
    (Boundary(2, [(0, -1)], []), "at least one output"),
    (Boundary(2, [(0, 1)], [(1, 0)]), r"edge \(1, 0\) is both input and output"),
    (Boundary(2, [(0, -1)], [(1, 1)]), "joins a node to itself"),
])
def test_bad_boundary_raises(bc, message):
    with pytest.raises(BoundaryError, match=message):
        TwinSolver([voltage_divider()], [bc])


def test_edge_row_on_missing_edge_raises():
    with pytest.raises(NetworkError, match="no edge between nodes 0 and 2"):
        TwinSolver([voltage_divider()], [Boundary(1, [(0, 2)], [(1, -1)])])


def test_stack_with_different_row_counts_raises():
    with pytest.raises(BoundaryError, match="same numbers of inputs and outputs"):
        TwinSolver([voltage_divider(), lab_network()],
                   [Boundary(2, [(0, -1)], [(1, -1)]), Boundary(0, [(8, -1), (2, -1)], [(4, -1)])])


def test_solver_argument_errors():
    with pytest.raises(ValueError, match="one boundary per network"):
        TwinSolver([voltage_divider()], [])
    with pytest.raises(ValueError, match="unknown solver backend 'superlu'"):
        TwinSolver([voltage_divider()], [Boundary(2, [(0, -1)], [(1, -1)])], backend="superlu")


@by_backend
@pytest.mark.parametrize("bad, message", [
    (-1.0, "must be positive"),
    (0.0, "must be positive"),
    (np.nan, "not a finite number"),
    (np.inf, "not a finite number"),
])
def test_bad_conductance_raises(backend, bad, message):
    solver = _divider_solver(backend)
    with pytest.raises(ValueError, match=message) as info:
        solver.response(np.array([[1.0, bad]]))
    assert "edge 1" in str(info.value)


def test_bad_conductance_in_second_system_names_it():
    solver = TwinSolver([voltage_divider(), voltage_divider()], [Boundary(2, [(0, -1)], [(1, -1)])] * 2)
    with pytest.raises(ValueError, match=r"edge 0 \(system 1\).*must be positive"):
        solver.response(np.array([[1.0, 1.0], [-2.0, 1.0]]))


def test_conductance_shape_mismatch_raises():
    with pytest.raises(ValueError, match=r"conductance must have shape \(1, 2\)"):
        _divider_solver().response(np.ones(2))


def test_redundant_rows_raise_boundary_error():
    with pytest.raises(BoundaryError):
        TwinSolver([lab_network()], [Boundary(0, [(8, -1), (3, 4)], [(4, -1), (3, -1)])])
