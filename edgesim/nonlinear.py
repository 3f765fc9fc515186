"""Equilibria of networks of nonlinear edges (transistors): Newton's method on the sparse Jacobian.

The node voltages ``V`` of a network whose edges follow an :class:`~edgesim.edgelaws.EdgeLaw` satisfy
Kirchhoff's current law at every node that no boundary condition holds,

    ``F_a(V) = sum_e (+-) I_e(k_e, V_u, V_v) = (current injected at a by the sources)``,

with the input (and, in the clamped twin, output) rows of a :class:`~edgesim.physics.Boundary` as
constraints.  Node rows and the ground *pin* a voltage; an edge row ``V_a - V_b = c`` adds a source
current ``mu`` (a Lagrange multiplier) at ``a`` and ``b``.  Each (system, example) is one column of
unknowns ``[V (N); mu (m)]``; Newton's step solves

    ``[J  -C^T; C  0] [dV; dmu] = -[F(V) - C^T mu; C V - c]``

where ``J`` is the Laplacian of the edges' *differential* conductances ``dI/dV_a``, ``-dI/dV_b``
(not symmetric for a transistor: its current depends on both terminal voltages, not only on the
drop), pinned nodes' rows replaced by the identity.  The first step from ``V = 0`` solves the linear
network of the small-signal conductances (:meth:`~edgesim.edgelaws.EdgeLaw.small_signal`).

Robustness
    Backtracking line search on the scaled residual (steps halved until it falls); warm starts from
    the previous equilibrium of the same twin, and for the clamped twin from the free equilibrium of
    the same examples; convergence when the largest KCL residual is below ``newton_tolerance`` times
    the largest edge current and the constraints hold to ``newton_tolerance`` times the voltage scale.
    A column that does not converge within ``max_iterations`` raises :class:`NewtonError` naming the
    system, example, node and edges and what to try.
Linear algebra
    Stacks of small networks (at most :data:`~edgesim.physics.DENSE_MAX_NODES` nodes): one batched
    LAPACK LU (``gesv``) per iteration for every column still iterating.  Larger networks: a sparse
    LU (SuperLU, the ``lu`` backend of :mod:`edgesim.linalg`) of each column's Jacobian.  The symmetric
    backends (CHOLMOD, conjugate gradients, multigrid) do not apply: the Jacobian is not symmetric.
Determinism
    Columns iterate independently (a converged column is never touched again), so a system's numbers
    do not depend on what it is stacked with; what a solve returns depends only on the sequence of
    solves asked of the solver (the warm starts), as with :class:`~edgesim.solvers.LowRankEquilibrium`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .edgelaws import KINK_SMOOTHING
from .linalg import factor_lu
from .network import Network
from .physics import DENSE_MAX_NODES, Boundary, TwinSolver, check_stack

__all__ = ["NewtonError", "NonlinearTwinSolver", "NonlinearState", "NonlinearSolution", "make_twin_solver",
           "is_nonlinear", "NEWTON_BACKENDS"]

#: Conductance added to every edge in the Newton Jacobian only (not in the currents), relative to the largest
#: small-signal conductance of the network: see :meth:`NonlinearTwinSolver._newton`.
JACOBIAN_FLOOR = 1e-10

#: Voltage error (relative to the column's voltage scale, in units of ``newton_tolerance``) that a node's
#: residual may imply at convergence: 100 x 1e-12 x 1..5 V, i.e. 1e-10 to 5e-10 V by default.
VOLTAGE_ERROR = 100.0

#: Sparse Newton steps: GMRES preconditioned by a kept LU stops at this relative residual; it restarts never
#: (one cycle of KRYLOV_REFRESH iterations), and a step that needs half of them refreshes the LU.
KRYLOV_TOLERANCE = 1e-10
KRYLOV_REFRESH = 16

#: Linear solvers of the Newton step (``solver.backend``): ``auto`` picks ``dense`` for small networks.
NEWTON_BACKENDS = ("auto", "dense", "lu")


class NewtonError(RuntimeError):
    """Newton's method did not find the equilibrium of a nonlinear network."""


def is_nonlinear(network: Network) -> bool:
    """Whether ``network`` has a nonlinear edge law (one that is not ``None`` or linear)."""
    law = getattr(network, "law", None)
    return law is not None and getattr(law, "name", "") != "linear"


def make_twin_solver(networks: Sequence[Network], boundaries: Sequence[Boundary], backend: str = "auto",
                     tolerance: float = 1e-14, newton_tolerance: float = 1e-12, max_iterations: int = 100):
    """The twin solver for a stack: :class:`~edgesim.physics.TwinSolver` for linear networks (the fast path),
    :class:`NonlinearTwinSolver` when the networks have a nonlinear edge law (all or none of them must)."""
    networks = list(networks)
    kinds = {is_nonlinear(n) for n in networks}
    if len(kinds) > 1:
        raise ValueError("a stack mixes networks with linear and nonlinear edges; train them separately")
    if kinds.pop():
        return NonlinearTwinSolver(networks, boundaries, backend, newton_tolerance, max_iterations)
    return TwinSolver(networks, boundaries, backend=backend, tolerance=tolerance)


@dataclass(frozen=True)
class NonlinearSolution:
    """Equilibria of a stack of columns: node voltages (R, N, n_ex), edge drops (R, E, n_ex), the source
    currents of the edge rows (R, m, n_ex) and the edge currents (R, E, n_ex)."""

    voltages: np.ndarray
    drops: np.ndarray
    multipliers: np.ndarray
    currents: np.ndarray


@dataclass
class _Plan:
    """Which nodes each column pins, and the constraint rows of one twin (per system)."""

    pinned: np.ndarray  # (R, N) bool
    pin_row: np.ndarray  # (R, N) int: row whose value a pinned node takes (-1: 0 V)
    edge_row: np.ndarray  # (R, m) bool: row is a drop constraint with a multiplier
    connected: np.ndarray  # (R, m) bool: output rows whose part has a reference


class NonlinearTwinSolver:
    """Twin networks of a stack of systems with nonlinear edges (see module docstring).

    Parameters
    ----------
    networks : sequence of Network
        Networks with an edge law (``network.law``).
    boundaries : sequence of Boundary
        Matching boundary conditions, equal numbers of inputs and outputs.
    backend : {"auto", "dense", "lu"}
        Linear solver of the Newton steps.
    newton_tolerance : float
        Relative KCL residual at convergence, in (0, 1e-3].
    max_iterations : int
        Newton iterations per solve before :class:`NewtonError`.
    """

    def __init__(self, networks: Sequence[Network], boundaries: Sequence[Boundary], backend: str = "auto",
                 newton_tolerance: float = 1e-12, max_iterations: int = 100):
        networks, boundaries = list(networks), list(boundaries)
        if not all(is_nonlinear(n) for n in networks):
            raise ValueError("NonlinearTwinSolver needs networks with a nonlinear edge law (network.law)")
        n_inputs, n_outputs = check_stack(networks, boundaries)
        for net in networks:
            net.law.check(net.n_edges)
        if backend in ("sparse",):
            backend = "lu"
        if backend not in NEWTON_BACKENDS:
            raise ValueError(f"solver backend {backend!r} cannot solve nonlinear networks (their Jacobian is not "
                             f"symmetric); use one of {', '.join(NEWTON_BACKENDS)}")
        if not 0 < newton_tolerance <= 1e-3:
            raise ValueError(f"newton_tolerance must lie in (0, 1e-3], got {newton_tolerance!r}")
        if int(max_iterations) < 1:
            raise ValueError(f"max_iterations must be >= 1, got {max_iterations!r}")
        self.networks, self.boundaries = networks, boundaries
        self.laws = [n.law for n in networks]
        self.n_systems = R = len(networks)
        self.n_inputs, self.n_outputs = n_inputs, n_outputs
        self.n_rows = m = self.n_inputs + self.n_outputs
        self.n_nodes = N = max(n.n_nodes for n in networks)
        self.n_edges = E = max(n.n_edges for n in networks)
        self.edge_u = np.zeros((R, E), np.int64)
        self.edge_v = np.zeros((R, E), np.int64)
        self.edge_valid = np.zeros((R, E), bool)
        self.rows = np.zeros((R, m, 2), np.int64)
        for r, (net, bc) in enumerate(zip(networks, boundaries)):
            self.edge_u[r, :net.n_edges], self.edge_v[r, :net.n_edges] = net.edges[:, 0], net.edges[:, 1]
            self.edge_valid[r, :net.n_edges] = True
            self.rows[r] = np.array(bc.rows, dtype=np.int64)
        self.edge_v[~self.edge_valid] = 1  # padding slots join nodes 0 and 1 and carry nothing
        self.backend = ("dense" if N <= DENSE_MAX_NODES else "lu") if backend == "auto" else backend
        self.newton_tolerance = float(newton_tolerance)
        self.max_iterations = int(max_iterations)
        self._plans: dict = {}
        self._cache_key = None
        self._cache = None
        self._warm: dict = {}  # (twin, n_examples) -> (V, mu) of the last solve
        self._kept: dict = {}  # (twin, n_examples, column) -> (Jacobian, its LU): the sparse steps' preconditioners
        self.krylov_iterations = 0
        self.iterations = 0  # Newton iterations so far (all columns)
        self.solves = 0  # columns solved so far
        self.factorizations = 0

    @property
    def stats(self) -> dict:
        """Columns solved, Newton iterations and sparse factorizations so far."""
        return {"solves": self.solves, "iterations": self.iterations, "factorizations": self.factorizations,
                "krylov_iterations": self.krylov_iterations}

    def has_warm_start(self, twin: str, n_examples: int) -> bool:
        """Whether the next solve of ``twin`` ("free" or "clamped") with ``n_examples`` examples starts from an
        earlier equilibrium."""
        return (twin, n_examples) in self._warm

    def reset_warm_start(self) -> None:
        """Forget the previous equilibria: the next solves start from the small-signal solution."""
        self._warm.clear()

    def response(self, conductance: np.ndarray, alive: np.ndarray | None = None) -> "NonlinearState":
        """The networks at edge parameters ``conductance`` (R, E): an object the twin functions of
        :mod:`edgesim.physics` (``free_solution``, ``clamped_solution``, ``mean_square_drops``) accept."""
        k = np.asarray(conductance, dtype=float)
        if k.shape != (self.n_systems, self.n_edges):
            raise ValueError(f"conductance must have shape {(self.n_systems, self.n_edges)}, got {k.shape}")
        alive = self.edge_valid if alive is None else np.asarray(alive, bool) & self.edge_valid
        key = (k.tobytes(), alive.tobytes())
        if key == self._cache_key:
            return self._cache
        bad = ~np.isfinite(k) & self.edge_valid
        if bad.any():
            r, e = np.argwhere(bad)[0]
            raise ValueError(f"edge parameter k of edge {e} (system {r}) is {k[r, e]}: not a finite number")
        if not alive.any(axis=1).all():
            raise ValueError("every edge of a network is removed (alive=False): nothing to solve")
        state = NonlinearState(self, k.copy(), alive.copy())
        self._cache_key, self._cache = key, state
        return state

    # -- boundary plans ------------------------------------------------------------------------------------------
    def boundary_plan(self, alive: np.ndarray, clamped: bool) -> _Plan:
        key = (alive.tobytes(), clamped)
        if key not in self._plans:
            if len(self._plans) > 8:
                self._plans.clear()
            R, N, m, ni = self.n_systems, self.n_nodes, self.n_rows, self.n_inputs
            used = m if clamped else ni
            pinned = np.zeros((R, N), bool)
            pin_row = np.full((R, N), -1)
            edge_row = np.zeros((R, m), bool)
            connected = np.ones((R, m), bool)
            for r in range(R):
                rows = self.rows[r]
                live = alive[r] & self.edge_valid[r]
                adj = sp.coo_matrix((np.ones(live.sum()), (self.edge_u[r, live], self.edge_v[r, live])),
                                    shape=(N, N))
                _, comp = sp.csgraph.connected_components(adj, directed=False)
                ground = self.boundaries[r].ground
                pinned[r, ground] = True
                referenced = {comp[ground]}
                for i in range(used):
                    a, b = rows[i]
                    if b < 0:
                        pinned[r, a] = True
                        pin_row[r, a] = i
                        referenced.add(comp[a])
                    else:
                        edge_row[r, i] = True
                reference_of_inputs = {comp[ground]} | {comp[rows[i, 0]] for i in range(ni) if rows[i, 1] < 0}
                for i in range(used):
                    a, b = rows[i]
                    if b >= 0 and (comp[a] not in referenced or comp[b] not in referenced):
                        raise NewtonError(
                            f"system {r}: the source across edge ({a}, {b}) sits in a part of the network with no "
                            "fixed voltage (no ground, no input node): with nonlinear edges its absolute voltage "
                            "is undetermined; ground that part or drive it through a node")
                for i in range(ni, m):
                    a, b = rows[i]
                    connected[r, i] = comp[a] in reference_of_inputs and (b < 0 or comp[b] in reference_of_inputs)
                floating = ~np.isin(comp, list(referenced))
                pinned[r, floating] = True  # parts with no reference carry no current: held at 0 V
            self._plans[key] = _Plan(pinned, pin_row, edge_row, connected)
        return self._plans[key]

    # -- Newton ----------------------------------------------------------------------------------------------------
    def solve(self, k: np.ndarray, alive: np.ndarray, values: np.ndarray, clamped: bool,
              start: tuple | None = None) -> NonlinearSolution:
        """Equilibria for row values (R, rows, n_ex): the inputs (free twin) or inputs and outputs (clamped)."""
        values = np.asarray(values, dtype=float)
        R, N, m = self.n_systems, self.n_nodes, self.n_rows
        used = m if clamped else self.n_inputs
        if values.ndim != 3 or values.shape[:2] != (R, used):
            raise ValueError(f"row values must have shape ({R}, {used}, n_examples), got {values.shape}")
        if not np.isfinite(values).all():
            r, i, j = np.argwhere(~np.isfinite(values))[0]
            raise ValueError(f"boundary value of row {i} (system {r}, example {j}) is {values[r, i, j]}: "
                             "inputs and clamps must be finite voltages")
        plan = self.boundary_plan(alive, clamped)
        n_ex = values.shape[2]
        twin = "clamped" if clamped else "free"
        if start is None:
            start = self._warm.get((twin, n_ex))
        V = np.zeros((R, n_ex, N)) if start is None else start[0].copy()
        mu = np.zeros((R, n_ex, m)) if start is None else start[1].copy()
        # pinned nodes take their row's value (or 0 V)
        full = np.zeros((R, m, n_ex))
        full[:, :used] = values
        target = np.zeros((R, n_ex, N))
        rr, nn = np.nonzero(plan.pinned & (plan.pin_row >= 0))
        target[rr, :, nn] = full[rr, plan.pin_row[rr, nn], :]
        pinned = np.broadcast_to(plan.pinned[:, None, :], (R, n_ex, N))
        V = np.where(pinned, target, V)
        edge_row = plan.edge_row.copy()
        edge_row[:, used:] = False
        mu = np.where(edge_row[:, None, :], mu, 0.0)
        V, mu, currents = self._newton(k, alive, V.reshape(R * n_ex, N), mu.reshape(R * n_ex, m), full, plan,
                                       edge_row, n_ex, twin)
        V, mu = V.reshape(R, n_ex, N), mu.reshape(R, n_ex, m)
        self._warm[(twin, n_ex)] = (V.copy(), mu.copy())
        Vt = V.transpose(0, 2, 1)
        ri = np.arange(R)[:, None]
        drops = (Vt[ri, self.edge_u] - Vt[ri, self.edge_v]) * (alive & self.edge_valid)[:, :, None]
        return NonlinearSolution(np.ascontiguousarray(Vt), drops, mu.transpose(0, 2, 1),
                                 currents.reshape(R, n_ex, -1).transpose(0, 2, 1))

    def edge_currents(self, k, alive, V, system, smoothing=None):
        """Currents of every edge for columns ``V`` (B, N) of the systems ``system`` (B,), and the derivatives
        Newton's Jacobian uses (:meth:`~edgesim.edgelaws.EdgeLaw.newton_terms`)."""
        u, v = self.edge_u[system], self.edge_v[system]
        rows = np.arange(len(system))[:, None]
        va, vb = V[rows, u], V[rows, v]
        live = (alive & self.edge_valid)[system]
        I, GA, GB = np.zeros(va.shape), np.zeros(va.shape), np.zeros(va.shape)
        for r in np.unique(system):
            sel = system == r
            law = self.laws[r]
            if smoothing is None:
                I[sel], GA[sel], GB[sel] = law.current(k[r][None, :], va[sel], vb[sel])
                continue
            for scale in np.unique(smoothing[sel]):
                part = np.flatnonzero(sel)[smoothing[sel] == scale]
                I[part], GA[part], GB[part] = law.newton_terms(k[r][None, :], va[part], vb[part], scale)
        return I * live, GA * live, GB * live

    def _residual(self, k, alive, V, mu, full, plan, edge_row, system, example, smoothing=None):
        """KCL residual at unpinned nodes (A), constraint residual (V), the edge currents and Jacobian derivatives."""
        B, N = V.shape
        I, GA, GB = self.edge_currents(k, alive, V, system, smoothing)
        u, v = self.edge_u[system], self.edge_v[system]
        base = (np.arange(B) * N)[:, None]
        outflow = np.bincount((base + u).ravel(), I.ravel(), B * N) - np.bincount((base + v).ravel(), I.ravel(), B * N)
        outflow = outflow.reshape(B, N)
        rows = self.rows[system]  # (B, m, 2)
        er = edge_row[system]
        # a drop source across (a, b) injects mu at a and takes it from b
        inj = np.zeros((B, N))
        bi = np.broadcast_to(np.arange(B)[:, None], er.shape)[er]
        np.add.at(inj, (bi, rows[:, :, 0][er]), mu[er])
        np.add.at(inj, (bi, rows[:, :, 1][er]), -mu[er])
        kcl = np.where(plan.pinned[system], 0.0, outflow - inj)
        column = np.arange(B)[:, None]
        cons = np.where(er, V[column, rows[:, :, 0]] - V[column, np.maximum(rows[:, :, 1], 0)]
                        - full[system, :, example], 0.0)
        return kcl, cons, I, GA, GB

    def _newton(self, k, alive, V, mu, full, plan, edge_row, n_ex, twin):
        """Newton iterations of every column (B = R x n_ex) from ``V``, ``mu``; returns the converged V, mu and
        the edge currents there.

        The Jacobian's threshold kinks are smoothed over KINK_SMOOTHING volts until a step makes slow progress,
        then exact (:meth:`edgesim.edgelaws.EdgeLaw.newton_terms`)."""
        R = self.n_systems
        B = V.shape[0]
        system = np.repeat(np.arange(R), n_ex)
        example = np.tile(np.arange(n_ex), R)
        tol = self.newton_tolerance
        # voltage scale of each column: its largest boundary value (at least 1 V)
        vscale = np.maximum(np.abs(full[system, :, example]).max(1, initial=0.0), 1.0)
        gscale = np.array([np.max(self.laws[r].small_signal(k[r])[self.edge_valid[r]]) for r in range(R)])[system]
        active = np.arange(B)
        smoothing = np.full(B, KINK_SMOOTHING)
        last_step = np.zeros(B)  # largest voltage change of the last step (none yet: the start may already hold)
        kcl, cons, I, GA, GB = self._residual(k, alive, V, mu, full, plan, edge_row, system, example, smoothing)
        currents = np.empty_like(I)
        for iteration in range(self.max_iterations + 1):
            done = self._converged(kcl, cons, I, GA, GB, system[active], vscale[active], tol)
            done &= last_step <= VOLTAGE_ERROR * tol * vscale[active]
            currents[active[done]] = I[done]
            last_step = last_step[~done]
            active = active[~done]
            kcl, cons, I, GA, GB = kcl[~done], cons[~done], I[~done], GA[~done], GB[~done]
            smoothing = smoothing[~done]
            if active.size == 0:
                break
            if iteration == self.max_iterations:
                self._fail(active, kcl, I, k, V, system, example, twin)
            self.iterations += active.size
            # A transistor at its threshold has no differential conductance; a Jacobian that sees none there
            # steps far off (a node looks floating).  A conductance floor of JACOBIAN_FLOOR times the network's
            # conductance scale keeps the direction sensible and costs at most that factor in the rate.
            floor = (JACOBIAN_FLOOR * gscale[active])[:, None] * (alive & self.edge_valid)[system[active]]
            dV, dmu = self._step(active, system[active], kcl, cons, GA + floor, GB - floor, plan, edge_row,
                                 [(twin, n_ex, int(c)) for c in active] if self.backend != "dense" else ())
            merit0 = self._merit(kcl, cons, vscale[active], gscale[active])
            t = np.ones(active.size)
            trial_V, trial_mu = V[active], mu[active]
            pending = np.arange(active.size)
            new = [None] * 5
            for _ in range(40):
                cols = active[pending]
                tv = trial_V[pending] + t[pending, None] * dV[pending]
                tm = trial_mu[pending] + t[pending, None] * dmu[pending]
                res = self._residual(k, alive, tv, tm, full, plan, edge_row, system[cols], example[cols],
                                     smoothing[pending])
                merit = self._merit(res[0], res[1], vscale[cols], gscale[cols])
                # slow progress: the smoothed Jacobian is off near a kink; sharpen it for the next step
                slow = merit > 0.25 * merit0[pending]
                smoothing[pending[slow]] = 0.0
                ok = merit <= (1.0 - 1e-4 * t[pending]) * merit0[pending]
                ok |= merit0[pending] == 0
                accept = pending[ok]
                V[cols[ok]], mu[cols[ok]] = tv[ok], tm[ok]
                last_step[accept] = t[accept] * np.abs(dV[accept]).max(1)
                for slot, arr in enumerate(res):
                    if new[slot] is None:
                        new[slot] = np.zeros((active.size,) + arr.shape[1:])
                    new[slot][accept] = arr[ok]
                pending = pending[~ok]
                if pending.size == 0:
                    break
                t[pending] *= 0.5
            if pending.size:  # no decrease along the Newton direction: take the smallest step and go on
                cols = active[pending]
                last_step[pending] = t[pending] * np.abs(dV[pending]).max(1)
                V[cols] = trial_V[pending] + t[pending, None] * dV[pending]
                mu[cols] = trial_mu[pending] + t[pending, None] * dmu[pending]
                res = self._residual(k, alive, V[cols], mu[cols], full, plan, edge_row, system[cols], example[cols],
                                     smoothing[pending])
                for slot, arr in enumerate(res):
                    new[slot][pending] = arr
            kcl, cons, I, GA, GB = new
        self.solves += B
        return V, mu, currents

    def _converged(self, kcl, cons, I, GA, GB, system, vscale, tol):
        """Columns whose residuals have converged: the largest KCL residual below ``tol`` times the largest edge
        current, the constraints held to ``tol`` times the voltage scale, and at every node the voltage error
        the residual implies (residual over the node's differential conductance) below ``VOLTAGE_ERROR * tol``
        times the voltage scale, or the residual at the rounding level of the currents meeting there.  The
        last condition matters at nodes held only by weak (leakage, pinched-off) conductances, where a residual
        that is small against the largest current still means a voltage error of microvolts.  :meth:`_newton`
        also asks that the last Newton step moved no voltage by more than that (a group of nodes held to the
        rest only by leakage converges as a whole more slowly than any one node shows)."""
        B, N = kcl.shape
        current_scale = np.maximum(np.abs(I).max(1, initial=0.0), 1e-300)
        ok = (np.abs(kcl).max(1, initial=0.0) <= tol * current_scale) & \
            (np.abs(cons).max(1, initial=0.0) <= tol * vscale)
        if not ok.any():
            return ok
        u, v = self.edge_u[system], self.edge_v[system]
        base = (np.arange(B) * N)[:, None]
        flat_u, flat_v = (base + u).ravel(), (base + v).ravel()
        conductance = (np.bincount(flat_u, GA.ravel(), B * N) - np.bincount(flat_v, GB.ravel(), B * N)).reshape(B, N)
        flow = (np.bincount(flat_u, np.abs(I).ravel(), B * N) + np.bincount(flat_v, np.abs(I).ravel(), B * N))
        residual = np.abs(kcl)
        node_ok = (residual <= VOLTAGE_ERROR * tol * vscale[:, None] * conductance) | \
            (residual <= 256 * np.finfo(float).eps * flow.reshape(B, N))
        return ok & node_ok.all(1)

    @staticmethod
    def _merit(kcl, cons, vscale, gscale):
        return ((kcl / (gscale * vscale)[:, None]) ** 2).sum(1) + ((cons / vscale[:, None]) ** 2).sum(1)

    def _jacobian_entries(self, system, GA, GB, plan, edge_row):
        """Row, column and value of every Jacobian entry of each column (flat per column, size n = N + m)."""
        N, m = self.n_nodes, self.n_rows
        n = N + m
        u, v = self.edge_u[system], self.edge_v[system]
        pin = plan.pinned[system]
        # KCL row a (outflow): dI/dV_a = GA, dI/dV_b = GB (negative); row b gets the opposite signs
        rows = np.concatenate([u, u, v, v], 1)
        cols = np.concatenate([u, v, u, v], 1)
        vals = np.concatenate([GA, GB, -GA, -GB], 1)
        keep = ~np.take_along_axis(pin, rows, 1)
        vals = vals * keep
        B = len(system)
        er = edge_row[system]
        rws = self.rows[system]
        a, b = rws[:, :, 0], np.maximum(rws[:, :, 1], 0)
        slot = N + np.arange(m)[None, :].repeat(B, 0)
        erf = er.astype(float)
        # -C^T in the KCL rows (unless pinned), C in the constraint rows, identity for unused slots and pins
        extra_rows = np.concatenate([a, b, slot, slot, slot, np.arange(N)[None, :].repeat(B, 0)], 1)
        extra_cols = np.concatenate([slot, slot, a, b, slot, np.arange(N)[None, :].repeat(B, 0)], 1)
        extra_vals = np.concatenate([-erf * ~np.take_along_axis(pin, a, 1), erf * ~np.take_along_axis(pin, b, 1),
                                     erf, -erf, 1.0 - erf, pin.astype(float)], 1)
        return (np.concatenate([rows, extra_rows], 1), np.concatenate([cols, extra_cols], 1),
                np.concatenate([vals, extra_vals], 1), n)

    def _step(self, active, system, kcl, cons, GA, GB, plan, edge_row, keys=()):
        N = self.n_nodes
        rows, cols, vals, n = self._jacobian_entries(system, GA, GB, plan, edge_row)
        rhs = -np.concatenate([kcl, cons], 1)
        B = len(active)
        if self.backend == "dense":
            flat = (np.arange(B)[:, None] * n + rows) * n + cols
            J = np.bincount(flat.ravel(), vals.ravel(), B * n * n).reshape(B, n, n)
            try:
                x = np.linalg.solve(J, rhs[:, :, None])[:, :, 0]
            except np.linalg.LinAlgError:
                x = np.stack([self._solve_one(Jb, rb) for Jb, rb in zip(J, rhs)])
        else:
            x = np.empty((B, n))
            for i in range(B):
                J = sp.csc_matrix((vals[i], (rows[i], cols[i])), shape=(n, n))
                x[i] = self._sparse_step(keys[i], J, rhs[i])
        return x[:, :N], x[:, N:] * edge_row[system]

    def _sparse_step(self, key, J, rhs):
        """Solve ``J x = rhs`` for one column: GMRES preconditioned by the LU kept from an earlier Jacobian of the
        same column (a learning step or a Newton step changes the Jacobian little), or a fresh LU, kept for the
        next steps, when there is none or GMRES needs more than KRYLOV_REFRESH iterations."""
        kept = self._kept.get(key)
        if kept is not None:
            matrix, lu = kept
            if lu is None:  # after unpickling: the same factors again, from the same matrix
                lu = factor_lu(matrix, symmetric=False)
                self._kept[key] = (matrix, lu)
            count = [0]

            def counted(_):
                count[0] += 1

            preconditioner = spla.LinearOperator(J.shape, lu.solve)
            x, info = spla.gmres(J, rhs, rtol=KRYLOV_TOLERANCE, atol=0.0, restart=KRYLOV_REFRESH,
                                 maxiter=1, M=preconditioner, callback=counted, callback_type="pr_norm")
            self.krylov_iterations += count[0]
            if info == 0 and np.isfinite(x).all():
                if count[0] >= KRYLOV_REFRESH // 2:
                    self._kept.pop(key)  # converging slowly: factor afresh next time
                return x
        lu = factor_lu(J, symmetric=False)
        self.factorizations += 1
        self._kept[key] = (J, lu)
        return lu.solve(rhs)

    def __getstate__(self):
        # SuperLU factors do not pickle: keep the matrices they came from and factor them again when needed
        state = dict(self.__dict__)
        state["_kept"] = {key: (matrix, None) for key, (matrix, _) in self._kept.items()}
        state["_cache_key"] = state["_cache"] = None
        return state

    @staticmethod
    def _solve_one(J, rhs):
        try:
            return np.linalg.solve(J, rhs)
        except np.linalg.LinAlgError:
            return np.linalg.lstsq(J, rhs, rcond=None)[0]

    def _fail(self, active, kcl, I, k, V, system, example, twin):
        worst = int(np.argmax(np.abs(kcl).max(1) / np.maximum(np.abs(I).max(1), 1e-300)))
        col = active[worst]
        r, j = int(system[col]), int(example[col])
        node = int(np.argmax(np.abs(kcl[worst])))
        at = np.flatnonzero(((self.edge_u[r] == node) | (self.edge_v[r] == node)) & self.edge_valid[r])
        scale = max(np.abs(I[worst]).max(), 1e-300)
        raise NewtonError(
            f"Newton's method did not converge for system {r}, example {j} of the {twin} twin after "
            f"{self.max_iterations} iteration(s): Kirchhoff's law fails by {abs(kcl[worst, node]):.3g} A at node "
            f"{node} ({abs(kcl[worst, node]) / scale:.3g} of the largest edge current; tolerance "
            f"{self.newton_tolerance:g}), node voltage {V[col, node]:.4g} V, edges at that node "
            f"{at.tolist()} with k = {np.array2string(k[r, at], precision=3)} S.  Try: smaller input voltages, more "
            "iterations (solver.newton_max_iterations), subthreshold conduction (edge.subthreshold = true) or a "
            "larger edge.leakage_conductance (edges cut off everywhere leave nodes floating), or a looser "
            "solver.newton_tolerance")


class NonlinearState:
    """A stack of nonlinear networks at fixed edge parameters: the nonlinear counterpart of
    :class:`~edgesim.physics.Response`, used through :func:`edgesim.physics.free_solution`,
    :func:`~edgesim.physics.clamped_solution`, :func:`~edgesim.physics.mean_square_drops` and
    :func:`~edgesim.physics.node_voltages`.  Solutions are cached per boundary values."""

    def __init__(self, solver: NonlinearTwinSolver, k: np.ndarray, alive: np.ndarray):
        self.solver, self.k, self.alive = solver, k, alive
        self.n_inputs = solver.n_inputs
        self._free: dict = {}
        self._clamped: dict = {}

    @staticmethod
    def _power(sol: NonlinearSolution) -> np.ndarray:
        """Dissipated power ``sum_e I_e dV_e`` (R, n_ex)."""
        # summed over contiguous edge rows, in the order the currents were made
        per_example = lambda a: np.ascontiguousarray(a.transpose(0, 2, 1))  # noqa: E731
        return (per_example(sol.currents) * per_example(sol.drops)).sum(2)

    def free_solution(self, inputs):
        """``(solution, outputs (R, n_out, n_ex), power (R, n_ex))`` of the free twin."""
        inputs = np.asarray(inputs, dtype=float)
        key = (inputs.shape, inputs.tobytes())
        if key not in self._free:
            s = self.solver
            sol = s.solve(self.k, self.alive, inputs, clamped=False)
            plan = s.boundary_plan(self.alive, False)
            rows = s.rows[:, s.n_inputs:]
            R = s.n_systems
            ri = np.arange(R)[:, None]
            out = sol.voltages[ri, rows[:, :, 0]] - np.where((rows[:, :, 1] >= 0)[:, :, None],
                                                              sol.voltages[ri, np.maximum(rows[:, :, 1], 0)], 0.0)
            out = np.where(plan.connected[:, s.n_inputs:, None], out, 0.0)
            self._free[key] = (sol, out, self._power(sol))
        return self._free[key]

    def clamped_solution(self, values):
        """``(solution, power (R, n_ex))`` of the clamped twin for all row values (R, m, n_ex)."""
        values = np.asarray(values, dtype=float)
        key = (values.shape, values.tobytes())
        if key not in self._clamped:
            s = self.solver
            x = np.ascontiguousarray(values[:, :s.n_inputs])
            free = self._free.get((x.shape, x.tobytes()))
            start = None
            if free is not None and not s.has_warm_start("clamped", values.shape[2]):
                # no earlier clamped equilibrium: the clamped twin is the free one nudged, start from it
                start = (free[0].voltages.transpose(0, 2, 1), free[0].multipliers.transpose(0, 2, 1))
            sol = s.solve(self.k, self.alive, values, clamped=True, start=start)
            self._clamped[key] = (sol, self._power(sol))
        return self._clamped[key]

    @staticmethod
    def mean_square_drops(solution: NonlinearSolution) -> np.ndarray:
        """Mean over examples of the squared edge drops (R, E)."""
        return (solution.drops ** 2).mean(2)

    @staticmethod
    def node_voltages(solution: NonlinearSolution) -> np.ndarray:
        """Node voltages (R, N, n_ex)."""
        return solution.voltages
