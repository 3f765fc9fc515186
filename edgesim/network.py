"""Network topologies: lattices, published jammed networks, laboratory networks.

Every constructor returns a :class:`Network`, an immutable description of an
undirected graph with integer nodes ``0 .. n_nodes-1`` and an oriented edge
list.  Edge ``e = (a, b)`` has voltage drop ``dV_e = V_a - V_b``.  Networks are
validated on construction: connected, no self-loops, no duplicate edges.
"""

from __future__ import annotations

import re
from pathlib import Path
from dataclasses import dataclass, field
from importlib import resources

import networkx as nx
import numpy as np
import scipy.sparse as sp

__all__ = [
    "Network",
    "NetworkError",
    "read_edge_list",
    "square_lattice",
    "jammed_network",
    "jammed_realizations",
    "voltage_divider",
    "lab_network",
    "transistor_lattice",
    "from_networkx",
]


class NetworkError(ValueError):
    """A network is not a valid resistor network (disconnected, self-loop, ...)."""


@dataclass(frozen=True, eq=False)
class Network:
    """An undirected resistor network.

    Parameters
    ----------
    n_nodes : int
        Number of nodes; nodes are ``0 .. n_nodes-1``.
    edges : ndarray of int, shape (n_edges, 2)
        Oriented edge list; the drop of edge ``e`` is ``V[edges[e,0]] - V[edges[e,1]]``.
    positions : ndarray, shape (n_nodes, 2), optional
        Node coordinates for plotting (arbitrary units).
    name : str
        Human-readable description, stored in result files.
    law : EdgeLaw or None
        The current law of the edges (:mod:`edgesim.edgelaws`); ``None`` means
        linear resistors, solved by the fast linear path of :mod:`edgesim.physics`.
        A network with a nonlinear law is solved by :mod:`edgesim.nonlinear`.
    """

    n_nodes: int
    edges: np.ndarray
    positions: np.ndarray | None = None
    name: str = "network"
    _incidence: dict = field(default_factory=dict, repr=False, compare=False)
    law: object = None

    def __post_init__(self):
        edges = np.asarray(self.edges, dtype=np.int64).reshape(-1, 2)
        edges.setflags(write=False)
        object.__setattr__(self, "edges", edges)
        _validate(self.n_nodes, edges, self.name)
        if self.law is not None:
            self.law.check(len(edges))

    def with_law(self, law) -> "Network":
        """The same graph with edge law ``law`` (``None``: linear resistors)."""
        return Network(self.n_nodes, self.edges, self.positions, self.name, law=law)

    @property
    def n_edges(self) -> int:
        return len(self.edges)

    @property
    def incidence(self) -> sp.csr_matrix:
        """Signed incidence matrix ``B`` (n_edges x n_nodes): ``dV = B @ V``."""
        if "B" not in self._incidence:
            e = np.arange(self.n_edges)
            rows = np.concatenate([e, e])
            cols = np.concatenate([self.edges[:, 0], self.edges[:, 1]])
            vals = np.concatenate([np.ones(self.n_edges), -np.ones(self.n_edges)])
            B = sp.csr_matrix((vals, (rows, cols)), shape=(self.n_edges, self.n_nodes))
            self._incidence["B"] = B
        return self._incidence["B"]

    def to_networkx(self) -> nx.Graph:
        """The network as a :class:`networkx.Graph` with edge attribute ``index``."""
        g = nx.Graph()
        g.add_nodes_from(range(self.n_nodes))
        for i, (a, b) in enumerate(self.edges):
            g.add_edge(int(a), int(b), index=i)
        return g

    def edge_index(self, a: int, b: int) -> int:
        """Index of the edge joining nodes ``a`` and ``b`` (either orientation)."""
        hit = np.flatnonzero(
            ((self.edges[:, 0] == a) & (self.edges[:, 1] == b))
            | ((self.edges[:, 0] == b) & (self.edges[:, 1] == a))
        )
        if hit.size == 0:
            raise NetworkError(f"{self.name}: no edge between nodes {a} and {b}")
        return int(hit[0])


def _validate(n_nodes: int, edges: np.ndarray, name: str) -> None:
    if n_nodes < 2:
        raise NetworkError(f"{name}: a network needs at least 2 nodes, got {n_nodes}")
    if edges.size == 0:
        raise NetworkError(f"{name}: the network has no edges")
    if edges.min() < 0 or edges.max() >= n_nodes:
        raise NetworkError(
            f"{name}: edge endpoints must lie in 0..{n_nodes - 1}, "
            f"got {edges.min()}..{edges.max()}"
        )
    loops = np.flatnonzero(edges[:, 0] == edges[:, 1])
    if loops.size:
        raise NetworkError(f"{name}: self-loop at node {edges[loops[0], 0]} (edge {loops[0]})")
    key = np.sort(edges, axis=1)
    _, first, counts = np.unique(key, axis=0, return_index=True, return_counts=True)
    if (counts > 1).any():
        a, b = key[first[np.argmax(counts > 1)]]
        raise NetworkError(f"{name}: duplicate edge between nodes {a} and {b}")
    adj = sp.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n_nodes, n_nodes))
    n_comp, labels = sp.csgraph.connected_components(adj, directed=False)
    if n_comp > 1:
        cut = np.flatnonzero(labels != labels[0])
        raise NetworkError(
            f"{name}: network is disconnected ({n_comp} components; "
            f"e.g. node {cut[0]} is not connected to node 0)"
        )


def square_lattice(nx_: int, ny: int | None = None, periodic: bool = False) -> Network:
    """Square lattice of ``nx_ x ny`` nodes with nearest-neighbour edges.

    With ``periodic=True`` both directions wrap around, giving ``2 nx ny`` edges
    (requires ``nx, ny >= 3`` so that no duplicate edges appear).
    """
    ny = nx_ if ny is None else ny
    if periodic and (nx_ < 3 or ny < 3):
        raise NetworkError("a periodic square lattice needs at least 3 nodes per side")
    if nx_ < 1 or ny < 1 or nx_ * ny < 2:
        raise NetworkError(f"square lattice {nx_}x{ny} is too small")
    idx = np.arange(nx_ * ny).reshape(ny, nx_)
    right = np.stack([idx[:, :-1].ravel(), idx[:, 1:].ravel()], axis=1)
    up = np.stack([idx[:-1, :].ravel(), idx[1:, :].ravel()], axis=1)
    parts = [right, up]
    if periodic:
        parts += [np.stack([idx[:, -1], idx[:, 0]], axis=1), np.stack([idx[-1, :], idx[0, :]], axis=1)]
    ys, xs = np.divmod(np.arange(nx_ * ny), nx_)
    kind = "periodic" if periodic else "open"
    return Network(nx_ * ny, np.concatenate(parts), np.stack([xs, ys], 1).astype(float),
                   name=f"square lattice {nx_}x{ny} ({kind})")


def transistor_lattice() -> Network:
    """The 4x4 periodic square lattice (16 nodes, 32 edges) of Dillavou et al. 2024."""
    return square_lattice(4, 4, periodic=True)


def voltage_divider() -> Network:
    """Two edges in series: node 0 (input) - node 1 (output) - node 2 (ground)."""
    return Network(3, [[0, 1], [1, 2]], np.array([[0.0, 0], [1, 0], [2, 0]]), name="voltage divider")


def lab_network() -> Network:
    """A 16-edge laboratory-style network (9 nodes: 3x3 grid plus 4 diagonals).

    The breadboard network of Dillavou et al. 2022 has 16 variable-resistor
    edges; this layout has the same edge count and a similar mix of short
    and crossing paths.  Nodes are numbered row by row::

        6 - 7 - 8
        | X | X |
        3 - 4 - 5
        | X | X |
        0 - 1 - 2

    where each ``X`` is one diagonal (alternating orientation).
    """
    grid = square_lattice(3, 3)
    diagonals = [[0, 4], [2, 4], [4, 6], [4, 8]]
    return Network(9, np.concatenate([grid.edges, diagonals]), grid.positions,
                   name="laboratory network (16 edges)")


_JAMMED = re.compile(r"data_N(\d+)_Lp[\d.]+_r(\d+)\.txt$")


def _jammed_files() -> dict[int, list]:
    folder = resources.files("edgesim") / "data" / "jammed_networks"
    found: dict[int, list] = {}
    for entry in folder.iterdir():
        m = _JAMMED.search(entry.name)
        if m:
            found.setdefault(int(m.group(1)), []).append((int(m.group(2)), entry))
    return {n: [e for _, e in sorted(v, key=lambda t: t[0])] for n, v in found.items()}


def jammed_realizations(size: int) -> int:
    """Number of shipped jammed-network realizations of nominal size ``size``."""
    files = _jammed_files()
    if size not in files:
        raise NetworkError(f"no jammed networks of size {size}; available: {sorted(files)}")
    return len(files[size])


def jammed_network(size: int = 64, realization: int = 1) -> Network:
    """A published jammed (disordered) network of Stern et al. 2024.

    Parameters
    ----------
    size : {64, 128, 256}
        Nominal number of nodes (a realization may have a few fewer, rattlers
        having been removed).
    realization : int
        1-based index among the shipped realizations of that size, in order of
        the file's ``r`` number.

    Notes
    -----
    File format: first line ``N E L``, then ``N`` lines ``x y``, then ``E``
    lines ``i j`` (0-based node indices).
    """
    files = _jammed_files()
    if size not in files:
        raise NetworkError(f"no jammed networks of size {size}; available: {sorted(files)}")
    if not 1 <= realization <= len(files[size]):
        raise NetworkError(
            f"jammed network realization must be in 1..{len(files[size])} for size {size}, "
            f"got {realization}"
        )
    entry = files[size][realization - 1]
    lines = entry.read_text().split("\n")
    n, e = (int(v) for v in lines[0].split()[:2])
    pos = np.array([[float(v) for v in lines[1 + i].split()] for i in range(n)])
    edges = np.array([[int(v) for v in lines[1 + n + i].split()] for i in range(e)])
    return Network(n, edges, pos, name=f"jammed network {entry.name}")


def from_networkx(graph: nx.Graph, name: str | None = None) -> Network:
    """Convert any undirected networkx graph; nodes are relabelled ``0..n-1`` in sorted order.

    Node attribute ``pos`` (2-tuple), if present on every node, becomes ``positions``.
    """
    if graph.is_directed():
        raise NetworkError("resistor networks are undirected; got a directed graph")
    if graph.is_multigraph():
        simple = nx.Graph(graph)
        if simple.number_of_edges() != graph.number_of_edges():
            raise NetworkError(f"{name or 'graph'}: duplicate edge (parallel edges in a multigraph)")
        graph = simple
    try:
        nodes = sorted(graph.nodes)
    except TypeError:
        nodes = list(graph.nodes)
    label = {v: i for i, v in enumerate(nodes)}
    if nx.number_of_selfloops(graph):
        v = next(iter(nx.selfloop_edges(graph)))[0]
        raise NetworkError(f"{name or 'graph'}: self-loop at node {v!r}")
    edges = np.array([[label[a], label[b]] for a, b in graph.edges], dtype=np.int64).reshape(-1, 2)
    pos = None
    if all("pos" in graph.nodes[v] for v in nodes):
        pos = np.array([graph.nodes[v]["pos"] for v in nodes], dtype=float)
    return Network(len(nodes), edges, pos, name=name or graph.name or "networkx graph")


def read_edge_list(path) -> tuple[Network, list, np.ndarray | None]:
    """Read a text edge list: ``a b`` per line, or ``a b k`` with an initial conductance ``k`` in siemens.

    Node labels are integers, renumbered ``0..n-1`` in increasing order (the
    returned list maps node numbers back to the file's labels).  Blank lines and
    ``#`` comments are skipped.  Duplicate edges (in either orientation), self
    loops, a mix of two- and three-column lines and non-positive conductances
    are errors naming the line.

    Returns
    -------
    network : Network
    labels : list of int
        ``labels[i]`` is the file's label of node ``i``.
    conductance : ndarray or None
        Initial conductances (three-column files).
    """
    rows, values, seen, columns = [], [], {}, None
    with open(path) as f:
        for number, line in enumerate(f, 1):
            fields = line.split("#", 1)[0].split()
            if not fields:
                continue
            where = f"{path}, line {number}"
            if len(fields) not in (2, 3) or (columns is not None and len(fields) != columns):
                expected = "2 or 3" if columns is None else str(columns)
                raise NetworkError(f"{where}: expected {expected} columns (node node [conductance in S]), "
                                   f"got {len(fields)}")
            columns = len(fields)
            try:
                a, b = int(fields[0]), int(fields[1])
            except ValueError:
                raise NetworkError(f"{where}: node labels must be integers, got {fields[0]!r} {fields[1]!r}") from None
            if a == b:
                raise NetworkError(f"{where}: self-loop at node {a}")
            key = (min(a, b), max(a, b))
            if key in seen:
                raise NetworkError(f"{where}: duplicate edge {a} {b} (first on line {seen[key]})")
            seen[key] = number
            if columns == 3:
                try:
                    k = float(fields[2])
                except ValueError:
                    raise NetworkError(f"{where}: the third column is the initial conductance in siemens, got "
                                       f"{fields[2]!r}") from None
                if not (np.isfinite(k) and k > 0):
                    raise NetworkError(f"{where}: the initial conductance must be positive and finite, got {k}")
                values.append(k)
            rows.append((a, b))
    if not rows:
        raise NetworkError(f"{path}: no edges")
    labels = sorted({v for row in rows for v in row})
    number = {v: i for i, v in enumerate(labels)}
    edges = np.array([[number[a], number[b]] for a, b in rows], dtype=np.int64)
    network = Network(len(labels), edges, name=f"edge list {Path(path).name}")
    return network, labels, (np.array(values) if columns == 3 else None)
