"""The shared physics solver for the twin (free / clamped) networks.

Physics
-------
For conductances ``k`` the node voltages minimise the dissipated power
``P = sum_e k_e dV_e^2`` subject to linear boundary conditions.  One *ground*
node is held at 0 V (it fixes the gauge); every other boundary condition is a
*row* ``r`` of a constraint matrix ``C``:

* a node row ``(a, -1)`` fixes ``V_a = c_r`` (an input or clamped output node);
* an edge row ``(a, b)`` fixes the drop ``V_a - V_b = c_r`` (a source or target edge).

The minimiser is ``V = Z lam`` with ``Z = A^-1 C^T`` (``A`` the Laplacian with
the ground pinned) and ``G lam = c`` where ``G = C Z``.  ``lam_r`` is the
current injected by the source that enforces row ``r`` and the power delivered
by the sources, ``sum_r c_r lam_r``, equals the dissipated power.  (Exception:
in a part cut off from ground, the row that sets the part's absolute voltage
gets ``lam_r = 0``; its true current balances the other rows of that part.)

The free twin enforces the input rows, the clamped twin the input rows plus
the output rows.  Both therefore share one factorization of ``A``: the
:class:`Response` (``G`` and the drop response ``D = B Z``) of one network is
computed once per conductance state, after which either twin, for any number
of examples, costs only small dense algebra.  This is the "one extra solve per
output" structure of the clamped twin.

Parts of the network cut off from the ground (only possible when edges are
removed, ``alive = False``) get a gauge node of their own.  If such a part
holds a node row, the first such row sets its absolute voltage; a part with
no input at all carries no current, its drops are zero and its outputs are
flagged in :attr:`Response.row_connected` instead of producing NaN.

Two backends compute the response: a batched dense Cholesky (LAPACK
``dposv``, one call per system) for small networks stacked into ensembles,
and a sparse LU with a fill-reducing ordering (SuperLU, ``MMD_AT_PLUS_A``)
for large ones.  Both are exact direct solves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from .linalg import BACKENDS, SINGLE_PRECISION_NODES, make_backend
from .network import Network

__all__ = [
    "Boundary",
    "BoundaryError",
    "Response",
    "TwinSolver",
    "check_stack",
    "free_solution",
    "clamped_solution",
    "node_voltages",
    "mean_square_drops",
    "mean_square_from_drops",
    "second_moment",
    "DENSE_MAX_NODES",
    "LU_MAX_NODES",
    "estimate_solver_bytes",
]

#: Networks with at most this many nodes use the batched dense backend.
DENSE_MAX_NODES = 400
#: Up to this many nodes ``auto`` refactors with the sparse LU at every step; above it, conjugate gradients
#: with a kept LU win (``benchmarks/bench_scale.py`` on the 2-core development machine: a tie at 1e4 edges,
#: 1.7x to 2.6x at 1e5 edges and 2.8x to 6x at 1e6 edges; see docs/solvers.md).
LU_MAX_NODES = 20_000


class BoundaryError(ValueError):
    """Boundary conditions that do not make sense for the network."""


@dataclass(frozen=True)
class Boundary:
    """Boundary conditions of a task on a network.

    Parameters
    ----------
    ground : int
        Node held at 0 V in both twins.
    inputs : sequence of (int, int)
        Input rows, enforced in both twins: ``(a, -1)`` fixes node ``a``'s
        voltage, ``(a, b)`` fixes the drop ``V_a - V_b`` (a source edge).
    outputs : sequence of (int, int)
        Output rows, read in the free twin and clamped in the clamped twin,
        in the same notation (output node or target edge).
    """

    ground: int
    inputs: tuple
    outputs: tuple

    def __post_init__(self):
        object.__setattr__(self, "inputs", tuple((int(a), int(b)) for a, b in self.inputs))
        object.__setattr__(self, "outputs", tuple((int(a), int(b)) for a, b in self.outputs))
        object.__setattr__(self, "ground", int(self.ground))

    @property
    def rows(self) -> tuple:
        return self.inputs + self.outputs

    def validate(self, network: Network) -> None:
        """Raise :class:`BoundaryError` if the conditions do not fit ``network``."""
        n = network.n_nodes
        if not 0 <= self.ground < n:
            raise BoundaryError(f"ground node {self.ground} does not exist (nodes 0..{n - 1})")
        if not self.outputs:
            raise BoundaryError("a task needs at least one output")
        seen_nodes: dict[int, str] = {self.ground: "ground"}
        seen_pairs: dict[tuple, str] = {}
        for role, rows in (("input", self.inputs), ("output", self.outputs)):
            for a, b in rows:
                for v in (a, b):
                    if v != -1 and not 0 <= v < n:
                        raise BoundaryError(f"{role} node {v} does not exist (nodes 0..{n - 1})")
                if b == -1:
                    if a in seen_nodes:
                        raise BoundaryError(
                            f"node {a} is both {seen_nodes[a]} and {role}: a node can be "
                            "fixed by only one condition")
                    seen_nodes[a] = role
                else:
                    if a == b:
                        raise BoundaryError(f"{role} edge ({a}, {b}) joins a node to itself")
                    network.edge_index(a, b)  # raises if no such edge
                    key = (min(a, b), max(a, b))
                    if key in seen_pairs:
                        raise BoundaryError(
                            f"edge ({a}, {b}) is both {seen_pairs[key]} and {role}")
                    seen_pairs[key] = role
        self._check_independent(n)


    def _check_independent(self, n_nodes: int) -> None:
        """Rows that over-fix the voltages (e.g. a loop of fixed drops) have no solution."""
        for label, rows in (("inputs", self.inputs), ("inputs and outputs", self.rows)):
            if not rows:
                continue
            C = np.zeros((len(rows), n_nodes))
            for i, (a, b) in enumerate(rows):
                if 0 <= a < n_nodes:
                    C[i, a] += 1.0
                if 0 <= b < n_nodes:
                    C[i, b] -= 1.0
            if 0 <= self.ground < n_nodes:
                C[:, self.ground] = 0.0
            if np.linalg.matrix_rank(C) < len(rows):
                raise BoundaryError(
                    f"the boundary conditions on the {label} are not independent: together they fix "
                    "some voltage twice (e.g. a node fixed both directly and through fixed drops, or a "
                    "loop of fixed drops)")


@dataclass(frozen=True)
class Response:
    """Linear response of a stack of ``R`` networks to their boundary rows.

    Attributes
    ----------
    gram : ndarray (R, m, m)
        ``G = C A^-1 C^T``; rows/columns ordered inputs then outputs.
    drop : ndarray (R, E, m)
        Edge drops per unit multiplier, ``D = B Z``.
    node : ndarray (R, N, m)
        Node voltages per unit multiplier, ``Z``.
    offset : ndarray (R, m, m) or None
        Maps row values to the voltage offsets of ground-free parts (None when
        every row is in the ground's part, the usual case).
    row_connected : ndarray of bool (R, m)
        False for an output row in a part of the network with no input and no
        ground: it is disconnected and reads 0 V.
    n_inputs : int
    drop_t : ndarray (R, m, E)
        Contiguous transpose of ``drop`` (the layout the solver produces).
    """

    gram: np.ndarray
    drop: np.ndarray
    node: np.ndarray
    offset: np.ndarray | None
    node_offset: np.ndarray | None
    row_connected: np.ndarray
    n_inputs: int
    drop_t: np.ndarray | None = None


def _gauge_plan(n_nodes, edges, alive, ground, rows_pos, rows_neg, n_inputs):
    """Gauge nodes and row transforms for one network (see module docstring)."""
    m = len(rows_pos)
    use = edges[alive]
    adj = sp.coo_matrix((np.ones(len(use)), (use[:, 0], use[:, 1])), shape=(n_nodes, n_nodes))
    n_comp, comp = sp.csgraph.connected_components(adj, directed=False)
    gauge = np.zeros(n_nodes, bool)
    gauge[ground] = True
    keep = np.ones((m, n_nodes))  # multiplies C: gauge columns are removed
    keep[:, ground] = 0.0
    offset_row = np.full(n_comp, -1)  # row whose value is the part's absolute voltage
    ground_comp = comp[ground]
    has_reference = np.zeros(n_comp, bool)
    has_reference[ground_comp] = True
    for r in range(m):
        if r < n_inputs:
            has_reference[comp[rows_pos[r]]] = True
            if rows_neg[r] >= 0:
                has_reference[comp[rows_neg[r]]] = True
    for c in range(n_comp):
        if c == ground_comp:
            continue
        members = np.flatnonzero(comp == c)
        node_rows = [r for r in range(m) if rows_neg[r] < 0 and comp[rows_pos[r]] == c]
        if node_rows:
            offset_row[c] = node_rows[0]
            g = rows_pos[node_rows[0]]
        else:
            g = members[0]
        gauge[g] = True
        keep[:, g] = 0.0
        if node_rows:
            keep[node_rows[0], g] = 1.0
    offset = None
    node_offset = None
    if (offset_row >= 0).any():
        offset = np.zeros((m, m))
        for r in range(m):
            ro = offset_row[comp[rows_pos[r]]]
            if ro >= 0:
                offset[r, ro] += 1.0
            if rows_neg[r] >= 0:
                ro = offset_row[comp[rows_neg[r]]]
                if ro >= 0:
                    offset[r, ro] -= 1.0
        node_offset = np.zeros((n_nodes, m))
        has = offset_row[comp] >= 0
        node_offset[np.flatnonzero(has), offset_row[comp[has]]] = 1.0
    connected = np.array([
        has_reference[comp[rows_pos[r]]] and (rows_neg[r] < 0 or has_reference[comp[rows_neg[r]]])
        for r in range(m)
    ], dtype=bool)
    return gauge, keep, offset, node_offset, connected


def check_stack(networks: list, boundaries: list) -> tuple[int, int]:
    """Validate a stack of systems (one boundary per network, equal numbers of rows, each boundary fitting its
    network); returns the numbers of inputs and outputs."""
    if len(networks) != len(boundaries) or not networks:
        raise ValueError("need one boundary per network, and at least one network")
    n_in = {len(b.inputs) for b in boundaries}
    n_out = {len(b.outputs) for b in boundaries}
    if len(n_in) > 1 or len(n_out) > 1:
        raise BoundaryError("all systems of a stack need the same numbers of inputs and outputs")
    for net, bc in zip(networks, boundaries):
        bc.validate(net)
    return n_in.pop(), n_out.pop()


class TwinSolver:
    """Shared solver for a stack of twin networks with equal numbers of rows.

    Parameters
    ----------
    networks : sequence of Network
        One network per system of the stack (they may differ in size: smaller
        ones are padded with isolated nodes and dead edges).
    boundaries : sequence of Boundary
        Matching boundary conditions; all must have the same number of inputs
        and outputs.
    backend : {"auto", "dense", "lu", "cg", "amg"}
        ``auto`` uses the dense batched backend up to :data:`DENSE_MAX_NODES` nodes,
        the sparse LU up to :data:`LU_MAX_NODES`, else ``cg``; ``cg`` and ``amg`` are the iterative backends of
        :mod:`edgesim.linalg` (``sparse`` is another name for ``lu``).
    tolerance : float
        Relative residual of the iterative backends, in (0, 1e-2].

    Notes
    -----
    :meth:`response` caches its result: calling it again with the same
    conductances and alive mask reuses the factorization.
    """

    def __init__(self, networks: Sequence[Network], boundaries: Sequence[Boundary],
                 backend: str = "auto", tolerance: float = 1e-14):
        networks, boundaries = list(networks), list(boundaries)
        self.n_inputs, self.n_outputs = check_stack(networks, boundaries)
        self.networks = networks
        self.boundaries = boundaries
        self.n_systems = len(networks)
        self.n_rows = self.n_inputs + self.n_outputs
        self.n_nodes = max(n.n_nodes for n in networks)
        self.n_edges = max(n.n_edges for n in networks)
        R, E, m = self.n_systems, self.n_edges, self.n_rows
        # Dead padding edges sit on node 0 -> node 0 with zero conductance.
        if R == 1:  # one system: views of its edge list (chip-sized networks need no second copy)
            edges = np.asarray(networks[0].edges, dtype=np.int64)
            self.edge_u, self.edge_v = edges[None, :, 0], edges[None, :, 1]
        else:
            self.edge_u = np.zeros((R, E), np.int64)
            self.edge_v = np.zeros((R, E), np.int64)
        self.edge_valid = np.zeros((R, E), bool)
        self.rows_pos = np.zeros((R, m), np.int64)
        self.rows_neg = np.zeros((R, m), np.int64)
        for r, (net, bc) in enumerate(zip(networks, boundaries)):
            if R > 1:
                self.edge_u[r, :net.n_edges] = net.edges[:, 0]
                self.edge_v[r, :net.n_edges] = net.edges[:, 1]
            self.edge_valid[r, :net.n_edges] = True
            rows = np.array(bc.rows, dtype=np.int64)
            self.rows_pos[r] = rows[:, 0]
            self.rows_neg[r] = rows[:, 1]
        self._padded = not self.edge_valid.all()
        backend = resolve_backend(backend, self.n_nodes)
        self._gather_u = self._gather_v = None
        if backend == "dense":
            # Flat positions of Z[r, j, u_e] in the (R, m, N) solver output: one gather for a stack of small
            # systems (large ones index per system instead: these arrays would be m times the edge list).
            slot = (np.arange(R)[:, None, None] * m + np.arange(m)[None, :, None]) * self.n_nodes
            self._gather_u = slot + self.edge_u[:, None, :]
            self._gather_v = slot + self.edge_v[:, None, :]
        if backend not in ("dense",) + BACKENDS:
            raise ValueError(f"unknown solver backend {backend!r}; use 'auto', 'dense' or one of "
                             f"{', '.join(BACKENDS)}")
        if not 0 < tolerance <= 1e-2:
            raise ValueError(f"solver tolerance must lie in (0, 1e-2], got {tolerance!r}")
        #: "dense" (batched Cholesky) or a sparse backend of :mod:`edgesim.linalg` ("lu", "cg", "amg").
        self.backend = backend
        self._linear = [] if backend == "dense" else [make_backend(backend, tolerance) for _ in networks]
        self._plan_key = None
        self._cache_key = None
        self._cache = None
        self._assembly = None

    def __getstate__(self):
        # the cached response is recomputed on the next call; the backends pickle what they can reuse
        return {**self.__dict__, "_cache_key": None, "_cache": None, "_factors": None, "_assembly": None}

    # -- gauges -----------------------------------------------------------
    def _plan(self, alive: np.ndarray):
        key = "all" if alive is self.edge_valid else alive.tobytes()
        if key != self._plan_key:
            R, N, m = self.n_systems, self.n_nodes, self.n_rows
            gauge = np.zeros((R, N), bool)
            keep = np.zeros((R, m, N))
            offset = np.zeros((R, m, m))
            node_offset = np.zeros((R, N, m))
            any_offset = False
            connected = np.zeros((R, m), bool)
            for r, net in enumerate(self.networks):
                edges = np.stack([self.edge_u[r], self.edge_v[r]], 1)
                g, kp, off, noff, conn = _gauge_plan(
                    N, edges, alive[r] & self.edge_valid[r], self.boundaries[r].ground,
                    self.rows_pos[r], self.rows_neg[r], self.n_inputs)
                gauge[r], keep[r], connected[r] = g, kp, conn
                if off is not None:
                    offset[r], node_offset[r] = off, noff
                    any_offset = True
            C = np.zeros((R, m, N))
            ri = np.arange(R)[:, None]
            mi = np.arange(m)[None, :]
            C[ri, mi, self.rows_pos] += 1.0
            has_neg = self.rows_neg >= 0
            np.subtract.at(C, (np.broadcast_to(ri, (R, m))[has_neg], np.broadcast_to(mi, (R, m))[has_neg],
                                self.rows_neg[has_neg]), 1.0)
            C *= keep
            self._plan_key = key
            self._all_alive = bool((alive == self.edge_valid).all())
            self._gauge = gauge
            self._constraint = C
            self._offset = offset if any_offset else None
            self._node_offset = node_offset if any_offset else None
            self._connected = connected
            self._cache_key = None
            self._assembly = None
        return self._gauge, self._constraint

    # -- response ---------------------------------------------------------
    def response(self, conductance: np.ndarray, alive: np.ndarray | None = None) -> Response:
        """Factor the networks at ``conductance`` (R, E) and return their :class:`Response`.

        ``alive`` (R, E) marks edges present in the circuit (default: all);
        dead edges carry no current whatever their conductance.
        """
        k = np.asarray(conductance, dtype=float)
        if k.shape != (self.n_systems, self.n_edges):
            raise ValueError(f"conductance must have shape {(self.n_systems, self.n_edges)}, got {k.shape}")
        if alive is None:
            alive = self.edge_valid
        else:
            alive = np.asarray(alive, bool) & self.edge_valid
        key = (k.tobytes(), "all" if alive is self.edge_valid else alive.tobytes())
        if key == self._cache_key:
            return self._cache
        if not np.isfinite(k[self.edge_valid] if self._padded else k).all():
            r, e = np.argwhere(~np.isfinite(k) & self.edge_valid)[0]
            raise ValueError(f"conductance of edge {e} (system {r}) is {k[r, e]}: not a finite number")
        if (k[alive] if self._padded or alive is not self.edge_valid else k).min() <= 0:
            r, e = np.argwhere((k <= 0) & alive)[0]
            raise ValueError(
                f"conductance of edge {e} (system {r}) is {k[r, e]}: conductances of edges "
                "in the circuit must be positive (remove an edge with alive=False instead)")
        if not alive.any(axis=1).all():
            raise ValueError("every edge of a network is removed (alive=False): nothing to solve")
        gauge, C = self._plan(alive)
        all_alive = self._all_alive
        # Padding slots and removed edges carry no conductance, whatever value they hold.
        k_eff = k if all_alive and not self._padded else np.where(alive, k, 0.0)
        if self.backend == "dense":
            Zt = self._dense_solve(k_eff, gauge, C)
        else:
            Zt = self._sparse_solve(k_eff, gauge, C)
        # Zt is (R, m, N), contiguous: every product below runs on contiguous blocks.
        gram = C @ Zt.transpose(0, 2, 1)
        if self._gather_u is not None:
            Zflat = Zt.reshape(-1)
            drop_t = Zflat[self._gather_u] - Zflat[self._gather_v]
        else:
            drop_t = np.empty((self.n_systems, self.n_rows, self.n_edges))
            for r in range(self.n_systems):
                for j in range(self.n_rows):  # row by row: temporaries the size of the edge list
                    np.subtract(Zt[r, j][self.edge_u[r]], Zt[r, j][self.edge_v[r]], out=drop_t[r, j])
        if not all_alive:
            drop_t *= alive[:, None, :]
        resp = Response(gram, drop_t.transpose(0, 2, 1), Zt.transpose(0, 2, 1), self._offset,
                        self._node_offset, self._connected, self.n_inputs, drop_t)
        self._cache_key = key
        self._cache = resp
        return resp

    def _dense_assembly(self, gauge):
        """Flat positions and gauge masks of the Laplacian entries (cached per gauge plan)."""
        if self._assembly is None:
            R, N = self.n_systems, self.n_nodes
            u, v = self.edge_u, self.edge_v
            gu = np.take_along_axis(gauge, u, 1)
            gv = np.take_along_axis(gauge, v, 1)
            node_base = (np.arange(R) * N)[:, None]
            base = node_base * N
            # Rows and columns of gauge nodes are dropped: those nodes are pinned to 0 V.
            coupled = ~(gu | gv) & (u != v)
            off_uv = (base + u * N + v)[coupled]
            off_vu = (base + v * N + u)[coupled]
            diag_idx = np.concatenate([(node_base + u).ravel(), (node_base + v).ravel()])
            diag_coef = np.concatenate([(~gu & (u != v)).ravel(), (~gv & (u != v)).ravel()]).astype(float)
            gi = np.nonzero(gauge)
            self._assembly = (coupled, off_uv, off_vu, diag_idx, diag_coef,
                              gi[0] * N * N + gi[1] * (N + 1),
                              (base + np.arange(N)[None, :] * (N + 1)).ravel())
        return self._assembly

    def _dense_solve(self, k, gauge, C):
        R, N = self.n_systems, self.n_nodes
        coupled, off_uv, off_vu, diag_idx, diag_coef, gauge_diag, all_diag = self._dense_assembly(gauge)
        A = np.zeros(R * N * N)
        k_off = -k[coupled]
        A[off_uv] = k_off  # each node pair appears once: no duplicate edges
        A[off_vu] = k_off
        A[all_diag] = np.bincount(diag_idx, np.tile(k.ravel(), 2) * diag_coef, minlength=R * N)
        A[gauge_diag] = 1.0
        A = A.reshape(R, N, N)
        rhs = C.copy()  # (R, m, N): rhs[r].T is the Fortran-ordered N x m block
        dposv = lapack.dposv
        for r in range(R):
            # A is symmetric, so its C-ordered buffer read as Fortran order is A itself.
            _, x, info = dposv(A[r].T, rhs[r].T, lower=0, overwrite_a=1, overwrite_b=1)
            if x.base is not rhs:  # LAPACK wrapper copied instead of solving in place
                rhs[r] = x.T
            if info != 0:
                raise np.linalg.LinAlgError(
                    f"system {r}: the reduced Laplacian is not positive definite (info={info}); "
                    "check conductance values")
        self._factors = A  # Cholesky factors (upper triangle of each A[r].T)
        return rhs

    def _sparse_pattern(self, r, gauge):
        """CSC structure of system ``r``'s grounded Laplacian (cached per gauge plan).

        Off-diagonal entries are one per edge between free nodes and direction (the network has no
        duplicate edges); diagonals are summed with ``bincount``.  ``order`` puts the values
        ``[off-diagonals (u, v), off-diagonals (v, u), diagonal]`` in CSC order.
        """
        if self._assembly is None:
            self._assembly = [None] * self.n_systems
        if self._assembly[r] is None:
            N = self.n_nodes
            u, v = self.edge_u[r], self.edge_v[r]
            gu, gv = gauge[r, u], gauge[r, v]
            coupled = ~(gu | gv) & (u != v)  # u == v: padding slots of stacked systems
            cu, cv = u[coupled], v[coupled]
            diagonal = np.arange(N)
            keys = np.concatenate([cv * N + cu, cu * N + cv, diagonal * N + diagonal])  # column-major
            order = np.argsort(keys, kind="stable")
            keys = keys[order]
            indptr = np.zeros(N + 1, np.int64)
            np.cumsum(np.bincount(keys // N, minlength=N), out=indptr[1:])
            index = np.int32 if keys.size < 2**31 else np.int64
            indices = (keys % N).astype(index)
            del keys
            self._assembly[r] = (coupled, ~gu & (u != v), ~gv & (u != v), gauge[r].copy(), indices,
                                 indptr.astype(index), order.astype(index))
        return self._assembly[r]

    def _sparse_solve(self, k, gauge, C):
        R, N, m = self.n_systems, self.n_nodes, self.n_rows
        out = np.empty((R, m, N))
        for r in range(R):
            coupled, free_u, free_v, pinned, indices, indptr, order = self._sparse_pattern(r, gauge)
            kr, u, v = k[r], self.edge_u[r], self.edge_v[r]
            diagonal = np.bincount(u, kr * free_u, minlength=N) + np.bincount(v, kr * free_v, minlength=N)
            diagonal[pinned] = 1.0  # gauge nodes are pinned to 0 V
            off = -kr[coupled]
            A = sp.csc_matrix((np.concatenate([off, off, diagonal])[order], indices, indptr), shape=(N, N))
            try:
                out[r] = self._linear[r].solve(A, np.ascontiguousarray(C[r].T)).T
            except np.linalg.LinAlgError as exc:
                raise np.linalg.LinAlgError(f"system {r}: {exc}") from None
        return out

    def solve_last(self, system: int, rhs: np.ndarray) -> np.ndarray:
        """Solve ``A x = rhs`` (N x q) with the factorization of the last :meth:`response` call.

        ``A`` is the grounded (gauge-pinned) Laplacian of ``system``; this is how
        low-rank corrections reuse a kept factorization.
        """
        if self.backend == "dense":
            x, info = lapack.dpotrs(self._factors[system].T, rhs, lower=0)
            if info != 0:
                raise np.linalg.LinAlgError(f"system {system}: LAPACK dpotrs failed (info={info})")
            return x
        return self._linear[system].solve_current(np.ascontiguousarray(rhs))

    @property
    def linear_stats(self) -> list[dict]:
        """Per system: solves, factorizations and iterations of its sparse backend so far (dense: empty)."""
        return [backend.stats for backend in self._linear]

    def gauge_mask(self) -> np.ndarray:
        """Nodes pinned by the current gauge plan (R, N)."""
        return self._gauge

    def constraint_matrix(self) -> np.ndarray:
        """Constraint rows ``C`` of the current gauge plan (R, m, N): ``A Z = C^T``, gauge columns removed."""
        return self._constraint


#: Peak memory per edge of one system's sparse solve (bytes), from ``benchmarks/bench_scale.py`` at 1e6
#: edges (1.3 to 1.9 kB) and 1e7 (0.9 kB, issue 9): the LU's fill dominates ``lu`` and ``cg``; CHOLMOD
#: keeps one triangular factor.
SOLVER_BYTES_PER_EDGE = {"lu": 1500, "cg": 1500, "cholmod": 600, "cg-cholmod": 600, "amg": 800}
#: ``cg`` above :data:`~edgesim.linalg.SINGLE_PRECISION_NODES` nodes keeps a single-precision LU: 0.64 and
#: 0.78 kB per edge measured at 1e7 edges (open and periodic lattices).
CG_SINGLE_PRECISION_BYTES_PER_EDGE = 800


def estimate_solver_bytes(n_nodes: int, n_edges: int, n_systems: int = 1, backend: str = "auto") -> int:
    """Memory (bytes) the solver needs for a stack of ``n_systems`` networks of this size, ``backend`` as resolved
    by :class:`TwinSolver` (``auto``: by size)."""
    backend = resolve_backend(backend, n_nodes)
    if backend == "dense":
        return int(n_systems * 8 * n_nodes * n_nodes * 2)  # matrices and factors
    per_edge = SOLVER_BYTES_PER_EDGE.get(backend, 1500)
    if backend == "cg" and n_nodes > SINGLE_PRECISION_NODES:
        per_edge = CG_SINGLE_PRECISION_BYTES_PER_EDGE
    return int(n_systems * per_edge * n_edges)


def resolve_backend(backend: str, n_nodes: int) -> str:
    """The backend a name stands for: ``auto`` by network size, ``sparse`` is ``lu``."""
    if backend == "auto":
        return "dense" if n_nodes <= DENSE_MAX_NODES else "lu" if n_nodes <= LU_MAX_NODES else "cg"
    return "lu" if backend == "sparse" else backend


def _solve_spd(gram: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """``gram^-1 rhs`` for a stack of small (rows x rows) positive-definite matrices.

    One code path whatever the stack size, so a system's numbers do not depend
    on what it is stacked with.  These matrices are a handful of boundary rows
    wide; the big systems are solved by their Cholesky (dense) or LU (sparse)
    factors in :class:`TwinSolver`.  The explicit small inverse is kept on
    purpose: a backward-stable Cholesky solve here changes results at round-off
    level, and the learning dynamics of the shipped scenarios amplify that to
    visibly different trajectories (see the notes of issue 6), so it is a
    separate, deliberate change.  A singular matrix raises ``LinAlgError``.
    """
    dead = np.diagonal(gram, axis1=1, axis2=2) == 0
    if dead.any():
        # A row both of whose ends are pinned (e.g. a source across an edge whose nodes were all cut
        # off) has no response at all: its source delivers no current, so its multiplier is 0.
        gram = gram.copy()
        rhs = np.where(dead[:, :, None], 0.0, rhs)
        r, i = np.nonzero(dead)
        gram[r, i, i] = 1.0
    return np.linalg.inv(gram) @ rhs


def _offsets(resp: Response, values: np.ndarray, rows: slice) -> np.ndarray | None:
    if resp.offset is None:
        return None
    return resp.offset[:, :, rows] @ values


def free_solution(resp: Response, inputs: np.ndarray):
    """Solve the free twin.

    Parameters
    ----------
    resp : Response
        Or the state of a nonlinear network (:class:`edgesim.nonlinear.NonlinearState`, from
        :func:`edgesim.nonlinear.make_twin_solver`): the same functions then solve it by Newton's method,
        and the first value returned is its :class:`~edgesim.nonlinear.NonlinearSolution`.
    inputs : ndarray (R, n_inputs, n_examples)
        Input row values (volts).

    Returns
    -------
    multipliers : ndarray (R, n_inputs, n_examples)
        Source currents of the input rows.
    outputs : ndarray (R, n_outputs, n_examples)
        Free values of the output rows (0 for disconnected outputs).
    power : ndarray (R, n_examples)
        Dissipated free power ``sum_e k_e dV_e^2``.
    """
    if not isinstance(resp, Response):  # a nonlinear network's state (edgesim.nonlinear.NonlinearState)
        return resp.free_solution(inputs)
    ni = resp.n_inputs
    x = inputs
    off = _offsets(resp, x, slice(0, ni))
    xs = x if off is None else x - off[:, :ni]
    lam = _solve_spd(resp.gram[:, :ni, :ni], xs)
    outputs = resp.gram[:, ni:, :ni] @ lam
    if off is not None:
        outputs = outputs + off[:, ni:]
    outputs = np.where(resp.row_connected[:, ni:, None], outputs, 0.0)
    power = np.einsum("rie,rie->re", lam, xs)
    return lam, outputs, power


def clamped_solution(resp: Response, values: np.ndarray):
    """Solve the clamped twin for all row values (R, m, n_examples).

    Returns the multipliers (R, m, n_examples) and the dissipated power (R, n_examples).
    """
    if not isinstance(resp, Response):
        return resp.clamped_solution(values)
    off = _offsets(resp, values, slice(None))
    vs = values if off is None else values - off
    lam = _solve_spd(resp.gram, vs)
    power = np.einsum("rie,rie->re", lam, vs)
    return lam, power


def second_moment(multipliers: np.ndarray) -> np.ndarray:
    """``lam lam^T / n_examples`` (R, n, n): the example average the mean squared drops need."""
    return multipliers @ multipliers.transpose(0, 2, 1) / multipliers.shape[2]


def mean_square_drops(resp: Response, multipliers: np.ndarray) -> np.ndarray:
    """Mean over examples of the squared edge drops, ``mean_x dV_e^2`` (R, E).

    See :func:`mean_square_from_drops`; this uses the drop response of ``resp``.
    ``multipliers`` is the first value :func:`free_solution` or :func:`clamped_solution` returned.
    """
    if not isinstance(resp, Response):
        return resp.mean_square_drops(multipliers)
    return mean_square_from_drops(resp.drop_t, multipliers)


def mean_square_from_drops(drop_t: np.ndarray, multipliers: np.ndarray) -> np.ndarray:
    """Mean over examples of ``dV_e^2`` for drops ``dV = D lam``, with ``drop_t = D^T`` (R, m, E).

    This is the quadratic form ``D_e^T (lam lam^T / n) D_e``, which costs
    ``E m^2`` instead of ``E m n_examples`` per system.  Only the first
    ``multipliers.shape[1]`` rows of ``drop_t`` are used.  The form is
    positive semi-definite; rounding below zero is clipped.
    """
    n = multipliers.shape[1]
    Dt = drop_t[:, :n]
    return np.maximum(((second_moment(multipliers) @ Dt) * Dt).sum(1), 0.0)


def node_voltages(resp: Response, multipliers: np.ndarray, values: np.ndarray | None = None) -> np.ndarray:
    """Node voltages (R, N, n_examples) from row multipliers.

    ``multipliers`` covers the first ``multipliers.shape[1]`` rows (inputs for
    the free twin, all rows for the clamped twin); ``values`` are the matching
    row values, needed only when parts of the network are cut off from ground.
    """
    if not isinstance(resp, Response):
        return resp.node_voltages(multipliers)
    n = multipliers.shape[1]
    V = resp.node[:, :, :n] @ multipliers
    if resp.node_offset is not None and values is not None:
        V = V + resp.node_offset[:, :, :n] @ values
    return V
