"""The shared physics of the engines: one system's twin networks in simulated time.

:class:`SharedPhysics` owns the conductances, the boundary values set by the
supervisor, and the *visible* equilibrium every edge reads.

Settling
    Conductance changes become visible only through a *refresh*.  A read at
    time ``t`` refreshes when the conductances changed since the last refresh
    and ``t >= first_change + settle_time``, ``first_change`` being the time of
    the earliest change not yet visible; otherwise it sees the previous
    equilibrium.  With ``settle_time = 0`` every read sees the exact current
    state.  Boundary values (inputs, clamps) set by the supervisor apply at
    once: the lab protocol waits for them to settle before edges compare.
Low-rank refresh
    A refresh keeps the factorization of a *base* state and corrects it with
    the Woodbury identity for the ``r`` edges changed since (one solve per
    newly changed edge); when ``r`` would exceed ``max_rank`` (or a quarter of
    the edges) it refactors.
    What a refresh computes depends only on the sequence of refreshed states,
    which both engines share, so both see identical numbers.
Energy
    The free power of the visible equilibrium is integrated piecewise
    constant over simulated time.
"""

from __future__ import annotations

import numpy as np

from ..physics import Boundary, TwinSolver, clamped_solution, free_solution, mean_square_from_drops
from ..network import Network

__all__ = ["LowRankTwin", "SharedPhysics"]


class LowRankTwin:
    """Response of one network kept as a base factorization plus a low-rank correction.

    The edges changed since the base form a growing list (in order of first
    change); their solve columns ``A0^-1 b_e`` and the small matrices built
    from them are kept, so a refresh costs one solve per newly changed edge
    plus an ``r x r`` system.  Past ``max_rank`` changed edges it refactors.
    """

    def __init__(self, network: Network, boundary: Boundary, backend: str = "auto", max_rank: int = 16):
        self.solver = TwinSolver([network], [boundary], backend=backend)
        self.edges = network.edges
        self.max_rank = max_rank
        self.n_refactor = 0
        self.n_lowrank = 0
        self._base_k = None
        self._base_alive = None

    def refresh(self, k: np.ndarray, alive: np.ndarray) -> None:
        """Make the response current for conductances ``k`` and alive mask ``alive``."""
        if self._base_k is not None and np.array_equal(alive, self._base_alive):
            # removed edges are outside the circuit: their values do not matter
            changed = np.flatnonzero((k != self._base_k) & alive)
            new = changed[~self._in_list[changed]]
            # Low rank only while few edges changed: past a quarter of them, refactoring is cheaper.
            if self._rank + new.size <= min(self.max_rank, len(self.edges) // 4):
                self._correct(new, k)
                return
        self._refactor(k, alive)

    def _refactor(self, k, alive):
        resp = self.solver.response(k[None, :], alive[None, :])
        self.n_refactor += 1
        self._base_k = k.copy()
        self._base_alive = alive.copy()
        self.base = resp
        self.gram = resp.gram[0]
        gauge = self.solver.gauge_mask()[0]
        E, N, m, cap = len(self.edges), self.solver.n_nodes, self.solver.n_rows, max(self.max_rank, 1)
        self._keep_u = (~gauge[self.edges[:, 0]]).astype(float)
        self._keep_v = (~gauge[self.edges[:, 1]]).astype(float)
        self._in_list = np.zeros(E, bool)
        self._list = np.zeros(cap, np.int64)
        self._rank = 0
        self._Y = np.zeros((N, cap))
        self._UtY = np.zeros((cap, cap))
        self._UtZ0 = np.zeros((cap, m))
        self._CY = np.zeros((m, cap))
        self._W = None
        self._response = None

    def response(self):
        """The current response for :func:`~edgesim.physics.free_solution` / ``clamped_solution``.

        Its ``gram`` is corrected; ``drop``, ``node`` and ``drop_t`` are None
        (use :meth:`drop_t`).
        """
        if self._response is None:
            # Only what the twin solutions need: the drops live in drop_t() (base + correction).
            base = self.base
            self._response = type(base)(self.gram[None], None, None, base.offset, base.node_offset,
                                        base.row_connected, base.n_inputs, None)
        return self._response

    def _correct(self, new, k):
        self.n_lowrank += 1
        u_all, v_all = self.edges[:, 0], self.edges[:, 1]
        for e in new:  # extend the list of changed edges, one solve each
            j = self._rank
            b = np.zeros((self.solver.n_nodes, 1))
            b[u_all[e], 0] += self._keep_u[e]
            b[v_all[e], 0] -= self._keep_v[e]
            self._Y[:, j] = self.solver.solve_last(0, b)[:, 0]
            self._list[j] = e
            self._in_list[e] = True
            self._rank = j + 1
            listed = self._list[:j + 1]
            Y = self._Y[:, :j + 1]
            self._UtY[j, :j + 1] = Y[u_all[e]] * self._keep_u[e] - Y[v_all[e]] * self._keep_v[e]
            self._UtY[:j + 1, j] = (self._Y[u_all[listed], j] * self._keep_u[listed]
                                    - self._Y[v_all[listed], j] * self._keep_v[listed])
            Z0 = self.base.node[0]
            self._UtZ0[j] = Z0[u_all[e]] * self._keep_u[e] - Z0[v_all[e]] * self._keep_v[e]
            self._CY[:, j] = self.solver._constraint[0] @ self._Y[:, j]
        r = self._rank
        if r == 0:
            return
        listed = self._list[:r]
        delta = (k[listed] - self._base_k[listed])[:, None]
        # Z = Z0 - Y (I + diag(delta) U^T Y)^-1 diag(delta) U^T Z0
        W = np.linalg.solve(np.eye(r) + delta * self._UtY[:r, :r], delta * self._UtZ0[:r])  # (r, m)
        self.gram = self.base.gram[0] - self._CY[:, :r] @ W
        self._W = W
        self._response = None

    def drop_t(self) -> np.ndarray:
        """Drop response of every edge, ``D^T`` as (1, m, E): the base plus the low-rank correction."""
        if self._W is None:
            return self.base.drop_t
        r = self._rank
        u, v = self.edges[:, 0], self.edges[:, 1]
        Yd = self._Y[u, :r] - self._Y[v, :r]  # (E, r)
        return self.base.drop_t - (self._W.T @ Yd.T)[None]


class SharedPhysics:
    """Twin networks of one system, shared by all its edges (see module docstring)."""

    def __init__(self, network: Network, boundary: Boundary, conductance: np.ndarray, twin_factor: np.ndarray,
                 settle_time: float = 0.0, max_rank: int = 16, backend: str = "auto"):
        self.network = network
        self.n_inputs = len(boundary.inputs)
        self.n_outputs = len(boundary.outputs)
        self.k = np.asarray(conductance, dtype=float).copy()
        self.alive = np.ones(network.n_edges, bool)
        self.all_alive = True
        self.twin_factor = np.asarray(twin_factor, dtype=float)
        self.mismatch = not np.all(self.twin_factor == 1.0)
        self.settle_time = float(settle_time)
        if self.settle_time < 0:
            raise ValueError(f"settle_time must be >= 0 s, got {settle_time}")
        self.free_twin = LowRankTwin(network, boundary, backend, max_rank)
        self.clamped_twin = LowRankTwin(network, boundary, backend, max_rank) if self.mismatch else self.free_twin
        self.version = 0  # conductance / alive changes
        self._seen_version = -1
        self._first_change = -np.inf  # earliest change not yet visible (None: none pending)
        self.inputs = None
        self.clamp_values = None
        self._bc_version = 0
        self._solved_key = None
        self.energy = 0.0
        self.energy_total = 0.0
        self._power = (0.0, 0.0)
        self._power_time = 0.0

    # -- state changes -------------------------------------------------------
    def _changed(self, t: float) -> None:
        if self._first_change is None:
            self._first_change = t
        self.version += 1

    def set_conductance(self, edges: np.ndarray, values: np.ndarray, t: float) -> None:
        """Conductances of ``edges`` changed at time ``t``."""
        if len(edges):
            self.k[edges] = values
            self._changed(t)

    def set_alive(self, edges: np.ndarray, alive: bool, t: float) -> None:
        """Remove (``alive=False``) or restore edges at time ``t``."""
        self.alive[edges] = alive
        self._changed(t)
        self.all_alive = bool(self.alive.all())

    def set_boundary(self, t: float, inputs: np.ndarray, clamp_values: np.ndarray | None) -> None:
        """Supervisor: present ``inputs`` (n_in, n_ex) and clamp the outputs to ``clamp_values``."""
        self.inputs = np.asarray(inputs, dtype=float)
        self.clamp_values = None if clamp_values is None else np.asarray(clamp_values, dtype=float)
        self._bc_version += 1
        self._solve_boundary(t)

    # -- the visible equilibrium ----------------------------------------------
    def view(self, t: float) -> "SharedPhysics":
        """Bring the visible equilibrium up to date for a read at time ``t``."""
        if self.version != self._seen_version and t >= self._first_change + self.settle_time:
            self.free_twin.refresh(self.k, self.alive)
            if self.mismatch:
                self.clamped_twin.refresh(self.k * self.twin_factor, self.alive)
            self._seen_version = self.version
            self._first_change = None
            self._solve_boundary(t)
        return self

    def free_outputs(self, t: float, inputs: np.ndarray) -> np.ndarray:
        """Free outputs (n_out, n_ex) for ``inputs`` on the visible equilibrium at ``t``."""
        self.view(t)
        _, out, _ = free_solution(self.free_twin.response(), np.asarray(inputs, float)[None])
        return out[0]

    def _solve_boundary(self, t: float) -> None:
        key = (self._seen_version, self._bc_version)
        if self.inputs is None or key == self._solved_key or self._seen_version < 0:
            return
        x = self.inputs[None]
        lam_f, out_f, power_f = free_solution(self.free_twin.response(), x)
        self.lam_free = lam_f
        power_c = np.zeros(1)
        if self.clamp_values is not None:
            values = np.concatenate([x, self.clamp_values[None]], 1)
            lam_c, power_c = clamped_solution(self.clamped_twin.response(), values)
            self.lam_clamped = lam_c
        self._solved_key = key
        self._all_sq = None
        self._integrate(t, power_f[0].sum() / power_f.shape[1], power_c[0].sum() / power_c.shape[1])

    def _integrate(self, t, power_free, power_clamped):
        dt = t - self._power_time
        self.energy += self._power[0] * dt
        self.energy_total += (self._power[0] + self._power[1]) * dt
        self._power = (power_free, power_clamped)
        self._power_time = t

    def energy_at(self, t: float) -> tuple[float, float]:
        """Training energy (free, free + clamped) integrated up to ``t``."""
        dt = t - self._power_time
        return self.energy + self._power[0] * dt, self.energy_total + (self._power[0] + self._power[1]) * dt

    # -- what an edge measures ---------------------------------------------------
    def mean_square_drops(self, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean squared drops (free, clamped) of ``edges`` over the presented examples.

        Computed once per visible equilibrium for every edge (the same
        computation whichever engine or batch asks first, hence bit-identical
        engines) and served from that cache.
        """
        if self._all_sq is None:
            drop_free = self.free_twin.drop_t()
            drop_clamped = self.clamped_twin.drop_t() if self.mismatch else drop_free
            free_sq = mean_square_from_drops(drop_free, self.lam_free)[0]
            clamped_sq = mean_square_from_drops(drop_clamped, self.lam_clamped)[0]
            if not self.all_alive:
                free_sq, clamped_sq = np.where(self.alive, free_sq, 0.0), np.where(self.alive, clamped_sq, 0.0)
            self._all_sq = (free_sq, clamped_sq)
        return self._all_sq[0][edges], self._all_sq[1][edges]

    def next_refresh_bound(self, t: float) -> float:
        """Earliest time after ``t`` at which a read could see a new equilibrium.

        Changes made at ``t`` or later cannot show before ``t + settle_time``.
        """
        first = t if self._first_change is None else min(self._first_change, t)
        return first + self.settle_time
