"""The shared physics of the engines: one system's twin networks in simulated time.

:class:`SharedPhysics` holds what the edges have *committed* (conductances
copied from their memories, alive flags), the boundary values set by the
supervisor, and the *visible* equilibrium every edge reads.  How an
equilibrium is computed (factorizations, low-rank corrections, accuracy
guards) is the business of :mod:`edgesim.solvers`.

One owner
    An edge's memory (:class:`~edgesim.engine.edges.EdgeState`) is the only
    source of its conductance: :meth:`SharedPhysics.commit` copies the
    memory's current value, and nothing can write a conductance here directly.
Settling
    Committed changes become visible only through a *refresh*.  A read at
    time ``t`` refreshes when something changed since the last refresh and
    ``t >= first_change + settle_time``, ``first_change`` being the time of the
    earliest change not yet visible; otherwise it sees the previous
    equilibrium.  With ``settle_time = 0`` every read sees the exact current
    state.  Boundary values (inputs, clamps) set by the supervisor apply at
    once: the lab protocol waits for them to settle before edges compare.
Energy
    The free power of the visible equilibrium is integrated piecewise
    constant over simulated time.
"""

from __future__ import annotations

import numpy as np

from ..config import EngineConfig
from ..network import Network
from ..physics import Boundary, clamped_solution, free_solution, mean_square_drops
from ..solvers import SolverStats, make_equilibrium

__all__ = ["SharedPhysics"]

_DEFAULT = EngineConfig()


class SharedPhysics:
    """Twin networks of one system, shared by all its edges (see module docstring).

    Parameters
    ----------
    network, boundary
        The system.
    memory_conductance : ndarray (E,)
        The edges' memory (:attr:`EdgeState.conductance`), read at every commit.
    twin_factor : ndarray (E,)
        Clamped-copy conductance over free-copy conductance of each edge.
    settle_time : float
        s before a change becomes visible (0: at once).
    max_rank, tolerance, backend, solver_tolerance, newton_tolerance, newton_max_iterations
        Solver policy (see :class:`edgesim.solvers.LowRankEquilibrium` and, for nonlinear edges,
        :class:`edgesim.solvers.NonlinearEquilibrium`).
    """

    def __init__(self, network: Network, boundary: Boundary, memory_conductance: np.ndarray,
                 twin_factor: np.ndarray, settle_time: float = 0.0, max_rank: int = _DEFAULT.max_rank,
                 tolerance: float = _DEFAULT.lowrank_tolerance, backend: str = "auto",
                 solver_tolerance: float = 1e-14, newton_tolerance: float = 1e-12, newton_max_iterations: int = 100):
        self.network = network
        self._memory = memory_conductance
        self._k = np.array(memory_conductance, dtype=float)  # committed conductances
        self._alive = np.ones(network.n_edges, bool)
        #: Committed conductances and alive flags, read-only views (written by commit and set_alive only).
        self.k, self.alive = self._k.view(), self._alive.view()
        self.k.flags.writeable = self.alive.flags.writeable = False
        self.all_alive = True
        self.twin_factor = np.asarray(twin_factor, dtype=float)
        self.mismatch = not np.all(self.twin_factor == 1.0)
        self.settle_time = float(settle_time)
        if self.settle_time < 0:
            raise ValueError(f"settle_time must be >= 0 s, got {settle_time}")
        solver = dict(backend=backend, max_rank=max_rank, tolerance=tolerance, solver_tolerance=solver_tolerance,
                      newton_tolerance=newton_tolerance, newton_max_iterations=newton_max_iterations)
        self.free_twin = make_equilibrium(network, boundary, self.k, **solver)
        self.clamped_twin = make_equilibrium(network, boundary, self.k * self.twin_factor, **solver) \
            if self.mismatch else self.free_twin
        self._pending = np.zeros(network.n_edges, bool)  # committed, not yet visible
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

    def commit(self, edges: np.ndarray, t: float) -> None:
        """The memories of ``edges`` changed at time ``t``: take their current conductances."""
        if len(edges):
            self._k[edges] = self._memory[edges]
            self._pending[edges] = True
            self._changed(t)

    def set_alive(self, edges: np.ndarray, alive: bool, t: float) -> None:
        """Remove (``alive=False``) or restore edges at time ``t``."""
        self._alive[edges] = alive
        self._changed(t)
        self.all_alive = bool(self.alive.all())

    def set_boundary(self, t: float, inputs: np.ndarray, clamp_values: np.ndarray | None) -> None:
        """Supervisor: present ``inputs`` (n_in, n_ex) and clamp the outputs to ``clamp_values``.

        Without clamp values the clamped twin holds the inputs only (it is a
        second free twin).
        """
        self.inputs = np.asarray(inputs, dtype=float)
        self.clamp_values = None if clamp_values is None else np.asarray(clamp_values, dtype=float)
        self._bc_version += 1
        self._solve_boundary(t)

    # -- the visible equilibrium ----------------------------------------------
    def view(self, t: float) -> "SharedPhysics":
        """Bring the visible equilibrium up to date for a read at time ``t``."""
        if self.version != self._seen_version and t >= self._first_change + self.settle_time:
            self._push(self.free_twin, 1.0)
            if self.mismatch:
                self._push(self.clamped_twin, self.twin_factor)
            self._pending[:] = False
            self._seen_version = self.version
            self._first_change = None
            self._solve_boundary(t)
        return self

    def _push(self, twin, factor) -> None:
        edges = np.flatnonzero(self._pending)
        twin.set_conductance(edges, self.k[edges] if np.isscalar(factor) else self.k[edges] * factor[edges])
        twin.set_alive(np.flatnonzero(~self.alive & twin.alive), False)
        twin.set_alive(np.flatnonzero(self.alive & ~twin.alive), True)

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
        currents_f, _, power_f = free_solution(self.free_twin.response(), x)
        self.free_currents = currents_f
        if self.clamp_values is not None:
            values = np.concatenate([x, self.clamp_values[None]], 1)
            self.clamped_currents, power_c = clamped_solution(self.clamped_twin.response(), values)
        else:
            self.clamped_currents, _, power_c = free_solution(self.clamped_twin.response(), x)
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

    @property
    def stats(self) -> SolverStats:
        """Solver statistics of the free twin."""
        return self.free_twin.stats

    # -- what an edge measures ---------------------------------------------------
    def mean_square_drops(self, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean squared drops (free, clamped) of ``edges`` over the presented examples.

        Computed once per visible equilibrium for every edge (the same
        computation whichever engine or batch asks first, hence bit-identical
        engines) and served from that cache.
        """
        if self._all_sq is None:
            free_sq = mean_square_drops(self.free_twin.response(), self.free_currents)[0]
            clamped_sq = mean_square_drops(self.clamped_twin.response(), self.clamped_currents)[0]
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
