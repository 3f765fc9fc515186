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
    the same examples, moved along the tangent of the equilibrium to the new edge parameters and
    boundary values (an Euler predictor); an exact Jacobian (the square law's conductance is
    continuous at the threshold), with a curvature-corrected step at weakly held nodes; convergence
    when the largest KCL residual is below ``newton_tolerance`` times the largest edge current, the
    constraints hold to ``newton_tolerance`` times the voltage scale, and no node's implied voltage
    error or last step exceeds ``VOLTAGE_ERROR * newton_tolerance`` times the voltage scale.  A column
    that does not converge within ``max_iterations`` raises :class:`NewtonError` naming the system,
    example, node and edges and what to try.
Linear algebra
    Stacks of small networks (at most :data:`~edgesim.physics.DENSE_MAX_NODES` nodes): one batched
    LAPACK LU (``gesv``) per iteration for every column still iterating.  Larger networks: an inexact
    Newton method, each step solved by GMRES preconditioned on the right by a kept sparse LU (SuperLU)
    of an earlier Jacobian of the same column, refactored when the Jacobian has moved too far.  The
    symmetric backends (CHOLMOD, conjugate gradients, multigrid) do not apply: the Jacobian is not
    symmetric.
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

from .linalg import OrderedLU, factor_lu, right_preconditioned_gmres
from .network import Network
from .physics import DENSE_MAX_NODES, Boundary, TwinSolver, check_stack

__all__ = ["NewtonError", "NonlinearTwinSolver", "NonlinearState", "NonlinearSolution", "make_twin_solver",
           "is_nonlinear", "NEWTON_BACKENDS"]

#: Conductance added to every edge in the Newton Jacobian only (not in the currents), relative to the largest
#: small-signal conductance of the network: see :meth:`NonlinearTwinSolver._floor`.
JACOBIAN_FLOOR = 1e-10

#: Voltage error (relative to the column's voltage scale, in units of ``newton_tolerance``) that a node's
#: residual may imply at convergence: 100 x 1e-12 x 1..5 V, i.e. 1e-10 to 5e-10 V by default.
VOLTAGE_ERROR = 100.0

#: Sparse Newton steps: GMRES preconditioned by a kept LU stops at this relative residual near the solution;
#: it restarts never (one cycle of KRYLOV_REFRESH iterations), and a step that needs half of them refreshes
#: the LU.
KRYLOV_TOLERANCE = 1e-10
KRYLOV_REFRESH = 16

#: Sparse Newton steps far from the solution are solved only to a relative residual of 0.1 x (last step /
#: voltage scale), at most FORCING_CAP and at least KRYLOV_TOLERANCE (an inexact Newton method: the forcing
#: term shrinks with the error, so convergence stays quadratic).  At LOOSE_FORCING and above GMRES with the
#: kept LU is tried even after many regime changes (it reaches such loose tolerances in a few iterations).
LOOSE_FORCING = 5e-3
FORCING_CAP = 0.1

#: Nodes whose differential conductance is below this fraction of the network's conductance scale take the
#: curvature-corrected step (NonlinearTwinSolver._curvature_step): fewer cold-start iterations on 5,000-edge
#: lattices (tests/test_nonlinear.py: 76 against 92 on six).
WEAK_NODE = 0.01

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
        self._patterns: dict = {}  # system -> where its Jacobian entries sit (_sparse_jacobian)
        self._masks: dict = {}  # (system, pins, constraint rows) -> _jacobian_masks
        self._structures: dict = {}  # system -> _jacobian_structure
        self._orders: dict = {}  # system -> the fill-reducing order of its first factorization (_factor)
        self._kept: dict = {}  # (twin, n_examples, column) -> (Jacobian, its LU): the sparse steps' preconditioners
        self.krylov_iterations = 0
        self.iterations = 0  # Newton iterations so far (all columns)
        self.solves = 0  # columns solved so far
        self.factorizations = 0
        self.predictions = 0  # Euler predictor steps (warm starts, one per column)

    @property
    def stats(self) -> dict:
        """Columns solved, Newton iterations and sparse factorizations so far."""
        return {"solves": self.solves, "iterations": self.iterations, "factorizations": self.factorizations,
                "krylov_iterations": self.krylov_iterations, "predictions": self.predictions}

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
        elif len(start) == 2:  # an equilibrium of these edge parameters (the free twin for the clamped one)
            start = (start[0], start[1], k, alive)
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
        V, mu = V.reshape(R * n_ex, N), mu.reshape(R * n_ex, m)
        target = target.reshape(R * n_ex, N)
        # where Newton fails (stalls) from a start, the failed columns try the next one without the curvature
        # step: the old equilibrium itself, then the small-signal guess (a rare network stalls from one start
        # and not from another; benchmarks/stress_newton.py)
        fallbacks = [(np.zeros_like(V), np.zeros_like(mu))]
        moved = residual = None
        if start is not None and np.array_equal(start[3], alive):
            fallbacks.insert(0, (V.copy(), mu.copy()))
            V, mu, moved, residual = self._predict(k, start[2], alive, start[0].reshape(R * n_ex, N),
                                                   start[1].reshape(R * n_ex, m), V, mu, target, full, plan,
                                                   edge_row, n_ex, twin)
        currents = np.zeros((R * n_ex, self.n_edges))
        columns = np.arange(R * n_ex)
        for attempt in range(len(fallbacks) + 1):
            if attempt:
                V[columns], mu[columns] = fallbacks[attempt - 1][0][columns], fallbacks[attempt - 1][1][columns]
                V[columns] = np.where(plan.pinned[columns // n_ex], target[columns], V[columns])
                moved = residual = None
            columns = self._newton(k, alive, V, mu, currents, full, plan, edge_row, n_ex, twin, columns, moved,
                                   residual, last_chance=attempt == len(fallbacks), curvature=attempt == 0)
            if columns.size == 0:
                break
        V, mu = V.reshape(R, n_ex, N), mu.reshape(R, n_ex, m)
        self._warm[(twin, n_ex)] = (V.copy(), mu.copy(), k.copy(), alive.copy())
        Vt = V.transpose(0, 2, 1)
        ri = np.arange(R)[:, None]
        drops = (Vt[ri, self.edge_u] - Vt[ri, self.edge_v]) * (alive & self.edge_valid)[:, :, None]
        return NonlinearSolution(np.ascontiguousarray(Vt), drops, mu.transpose(0, 2, 1),
                                 currents.reshape(R, n_ex, -1).transpose(0, 2, 1))

    def edge_currents(self, k, alive, V, system):
        """Currents of every edge for columns ``V`` (B, N) of the systems ``system`` (B,), and their derivatives
        ``dI/dV_a``, ``dI/dV_b`` (:meth:`~edgesim.edgelaws.EdgeLaw.current`)."""
        u, v = self.edge_u[system], self.edge_v[system]
        rows = np.arange(len(system))[:, None]
        va, vb = V[rows, u], V[rows, v]
        live = (alive & self.edge_valid)[system]
        I, GA, GB = np.zeros(va.shape), np.zeros(va.shape), np.zeros(va.shape)
        for r in np.unique(system):
            sel = system == r
            I[sel], GA[sel], GB[sel] = self.laws[r].current(k[r][None, :], va[sel], vb[sel])
        return I * live, GA * live, GB * live

    def _predict(self, k, k_old, alive, V_old, mu_old, V, mu, target, full, plan, edge_row, n_ex, twin):
        """Euler predictor: the start ``V_old``, ``mu_old`` (an equilibrium at edge parameters ``k_old``) moved
        along the tangent of the equilibrium to the new parameters ``k`` and boundary values,

            ``J(V_old, k_old) [dV; dmu] = -[dF/dk (k - k_old); C V_old - c]``, pinned nodes moved to their values.

        Starting Newton from the old equilibrium instead costs several iterations wherever a node hangs on a
        transistor near pinch-off (its current is quadratic in the voltage there, and Newton only halves the
        distance per step until it is close); the tangent moves such a node with its gate.  Each column keeps
        whichever start, predicted or ``V``, ``mu`` (the old equilibrium with the new pinned values), has the
        smaller residual."""
        N = self.n_nodes
        B = V.shape[0]
        system, example, vscale, gscale = self._columns(k, full, n_ex)
        kcl, cons, _, GA, GB = self._residual(k_old, alive, V_old, mu_old, full, plan, edge_row, system, example)
        change = (k - k_old)[system] * (alive & self.edge_valid)[system]
        if change.any():
            u, v = self.edge_u[system], self.edge_v[system]
            rows = np.arange(B)[:, None]
            flow = np.zeros(change.shape)
            for r in np.unique(system[change.any(1)]):
                sel = system == r
                flow[sel] = self.laws[r].parameter_derivative(k_old[r][None, :], V_old[rows[sel], u[sel]],
                                                              V_old[rows[sel], v[sel]]) * change[sel]
            base = (np.arange(B) * N)[:, None]
            shift = (np.bincount((base + u).ravel(), flow.ravel(), B * N)
                     - np.bincount((base + v).ravel(), flow.ravel(), B * N)).reshape(B, N)
            kcl = kcl + shift
        pinned = plan.pinned[system]
        kcl = np.where(pinned, V_old - target, kcl)  # the step moves each pinned node onto its value
        floor = self._floor(gscale, alive, system)
        active = np.arange(B)
        dV, dmu = self._step(active, system, kcl, cons, GA + floor, GB - floor, plan, edge_row, gscale,
                             [(twin, n_ex, int(c)) for c in active] if self.backend != "dense" else ())
        V_pred = np.where(pinned, V, V_old + dV)
        mu_pred = np.where(edge_row[system], mu_old + dmu, 0.0)
        self.predictions += B
        plain, predicted = (self._residual(k, alive, a, b, full, plan, edge_row, system, example)
                            for a, b in ((V, mu), (V_pred, mu_pred)))
        better = self._merit(*predicted[:2], vscale, gscale) < self._merit(*plain[:2], vscale, gscale)
        moved = np.where(better, np.abs(V_pred - V_old).max(1), 0.0)
        pick = lambda new, old: np.where(better[:, None], new, old)  # noqa: E731
        residual = tuple(pick(a, b) for a, b in zip(predicted, plain))
        return pick(V_pred, V), pick(mu_pred, mu), moved, residual

    def _columns(self, k, full, n_ex):
        """For the B = R x n_ex columns: their system and example, their voltage scale (the largest boundary value,
        at least 1 V) and their conductance scale (the network's largest small-signal conductance)."""
        R = self.n_systems
        system = np.repeat(np.arange(R), n_ex)
        example = np.tile(np.arange(n_ex), R)
        vscale = np.maximum(np.abs(full[system, :, example]).max(1, initial=0.0), 1.0)
        gscale = np.array([np.max(self.laws[r].small_signal(k[r])[self.edge_valid[r]]) for r in range(R)])[system]
        return system, example, vscale, gscale

    def _floor(self, gscale, alive, system):
        """The Jacobian's conductance floor on every live edge (JACOBIAN_FLOOR x the conductance scale): a
        transistor at its threshold has no differential conductance, and a Jacobian that sees none there steps
        far off (a node looks floating); the floor keeps the direction sensible and costs at most that factor in
        the rate."""
        return (JACOBIAN_FLOOR * gscale)[:, None] * (alive & self.edge_valid)[system]

    def _residual(self, k, alive, V, mu, full, plan, edge_row, system, example):
        """KCL residual at unpinned nodes (A), constraint residual (V), the edge currents and Jacobian derivatives."""
        B, N = V.shape
        I, GA, GB = self.edge_currents(k, alive, V, system)
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

    def _newton(self, k, alive, V, mu, currents, full, plan, edge_row, n_ex, twin, columns, moved=None,
                residual=None, last_chance=True, curvature=True):
        """Newton iterations of the ``columns`` (of B = R x n_ex) from ``V``, ``mu`` (B, ...), updated in place
        with the converged values and ``currents`` with the edge currents there.  Returns the columns that did
        not converge within ``max_iterations`` (none if ``last_chance``: then a failure raises NewtonError).
        ``moved``: how far the predictor moved each column's start (V), counted as its last step; ``residual``:
        _residual at the start, where the predictor has it; ``curvature``: whether weakly held nodes take the
        curvature-corrected step.

        The Jacobian is exact (the square law's conductance is continuous at the threshold, so Newton converges
        quadratically near the solution); sparse steps are inexact far from it (the forcing term)."""
        system, example, vscale, gscale = self._columns(k, full, n_ex)
        tol = self.newton_tolerance
        active = np.asarray(columns)
        # largest voltage change of the last step (none yet: the start may already hold)
        last_step = np.zeros(active.size) if moved is None else moved[active]
        if residual is None:
            residual = self._residual(k, alive, V[active], mu[active], full, plan, edge_row, system[active],
                                      example[active])
        else:
            residual = tuple(part[active] for part in residual)
        kcl, cons, I, GA, GB = residual
        node_step, last_diagonal = np.zeros((active.size, V.shape[1])), np.zeros((active.size, V.shape[1]))
        for iteration in range(self.max_iterations + 1):
            done = self._converged(kcl, cons, I, GA, GB, system[active], vscale[active], tol)
            done &= last_step <= VOLTAGE_ERROR * tol * vscale[active]
            currents[active[done]] = I[done]
            last_step = last_step[~done]
            active = active[~done]
            kcl, cons, I, GA, GB = kcl[~done], cons[~done], I[~done], GA[~done], GB[~done]
            node_step, last_diagonal = node_step[~done], last_diagonal[~done]
            if active.size == 0:
                break
            if iteration == self.max_iterations:
                if not last_chance:
                    break
                self._fail(active, kcl, I, k, V, system, example, twin)
            self.iterations += active.size
            floor = self._floor(gscale[active], alive, system[active])
            # inexact Newton: far from the solution (a long last step) the linear solve need not be exact
            forcing = np.clip(0.1 * last_step / vscale[active], KRYLOV_TOLERANCE, FORCING_CAP)
            dV, dmu = self._step(active, system[active], kcl, cons, GA + floor, GB - floor, plan, edge_row,
                                 gscale[active],
                                 [(twin, n_ex, int(c)) for c in active] if self.backend != "dense" else (), forcing)
            # nodes held by little conductance (below WEAK_NODE of the network's scale: a source follower near
            # pinch-off, a node held by leakage) take the step of their own quadratic model (_curvature_step)
            diagonal = self._node_diagonal(system[active], GA + floor, GB - floor)
            weak = diagonal < (WEAK_NODE if curvature else 0.0) * gscale[active][:, None]
            plain_dV = dV
            dV = np.where(weak, self._curvature_step(dV, diagonal, last_diagonal, node_step), dV)
            curved = (dV != plain_dV).any(1)
            last_diagonal = diagonal
            step = np.abs(dV).max(1)
            # a step within the convergence bound is taken whole: the merit only shows rounding noise there
            negligible = step <= VOLTAGE_ERROR * tol * vscale[active]
            merit0 = self._merit(kcl, cons, vscale[active], gscale[active])
            t = np.ones(active.size)
            trial_V, trial_mu = V[active], mu[active]
            pending = np.arange(active.size)
            new = [None] * 5
            for _ in range(40):
                cols = active[pending]
                tv = trial_V[pending] + t[pending, None] * dV[pending]
                tm = trial_mu[pending] + t[pending, None] * dmu[pending]
                res = self._residual(k, alive, tv, tm, full, plan, edge_row, system[cols], example[cols])
                merit = self._merit(res[0], res[1], vscale[cols], gscale[cols])
                ok = merit <= (1.0 - 1e-4 * t[pending]) * merit0[pending]
                ok |= (merit0[pending] == 0) | negligible[pending]
                accept = pending[ok]
                V[cols[ok]], mu[cols[ok]] = tv[ok], tm[ok]
                last_step[accept] = t[accept] * np.abs(dV[accept]).max(1)
                node_step[accept] = t[accept, None] * dV[accept]
                for slot, arr in enumerate(res):
                    if new[slot] is None:
                        new[slot] = np.zeros((active.size,) + arr.shape[1:])
                    new[slot][accept] = arr[ok]
                pending = pending[~ok]
                if pending.size == 0:
                    break
                # a curvature-corrected step that fails is retried as the plain Newton step, then halved
                retry = pending[curved[pending]]
                dV[retry], curved[retry] = plain_dV[retry], False
                t[np.setdiff1d(pending, retry)] *= 0.5
            if pending.size:  # no decrease along the Newton direction: take the smallest step and go on
                cols = active[pending]
                last_step[pending] = t[pending] * np.abs(dV[pending]).max(1)
                node_step[pending] = t[pending, None] * dV[pending]
                V[cols] = trial_V[pending] + t[pending, None] * dV[pending]
                mu[cols] = trial_mu[pending] + t[pending, None] * dmu[pending]
                res = self._residual(k, alive, V[cols], mu[cols], full, plan, edge_row, system[cols], example[cols])
                for slot, arr in enumerate(res):
                    new[slot][pending] = arr
            kcl, cons, I, GA, GB = new
        self.solves += len(columns) - active.size
        return active

    def _node_diagonal(self, system, GA, GB):
        """Each node's differential conductance ``dF_a/dV_a`` (the Jacobian's diagonal) for columns of ``system``."""
        B, N = len(system), self.n_nodes
        base = (np.arange(B) * N)[:, None]
        return (np.bincount((base + self.edge_u[system]).ravel(), GA.ravel(), B * N)
                - np.bincount((base + self.edge_v[system]).ravel(), GB.ravel(), B * N)).reshape(B, N)

    @staticmethod
    def _curvature_step(dV, diagonal, last_diagonal, last_step):
        """Newton's step ``dV`` with each node's own curvature: ``D d + c d^2 / 2 = D dV`` per node, ``c`` the
        change of its diagonal ``D`` over its last step (a secant estimate of ``d^2 F_a / dV_a^2``), the step
        lengthened up to twice Newton's, never shortened.

        Why: a node that hangs on one transistor near pinch-off (a source follower whose other terminals are cut
        off) carries a current quadratic in its voltage, ``S/2 (V_G - V_T - V)^2``, balanced by leakage a
        millivolt or so from the double root at the threshold; Newton only halves its distance to that root per
        iteration (five or six iterations from tens of millivolts), the quadratic model lands on it."""
        moved = last_step != 0
        curvature = np.where(moved, (diagonal - last_diagonal) / np.where(moved, last_step, 1.0), 0.0)
        discriminant = diagonal ** 2 + 2.0 * curvature * diagonal * dV
        with np.errstate(invalid="ignore", divide="ignore"):
            step = np.where(discriminant > 0, 2.0 * diagonal * dV / (diagonal + np.sqrt(np.maximum(discriminant, 0))),
                            2.0 * dV)
            ratio = np.where(dV != 0, step / dV, 1.0)
        ratio = np.where(np.isfinite(ratio), np.clip(ratio, 1.0, 2.0), 1.0)
        return np.where(moved & (diagonal > 0), ratio * dV, dV)

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
        conductance = self._node_diagonal(system, GA, GB)
        flow = (np.bincount((base + u).ravel(), np.abs(I).ravel(), B * N)
                + np.bincount((base + v).ravel(), np.abs(I).ravel(), B * N))
        residual = np.abs(kcl)
        node_ok = (residual <= VOLTAGE_ERROR * tol * vscale[:, None] * conductance) | \
            (residual <= 256 * np.finfo(float).eps * flow.reshape(B, N))
        return ok & node_ok.all(1)

    @staticmethod
    def _merit(kcl, cons, vscale, gscale):
        return ((kcl / (gscale * vscale)[:, None]) ** 2).sum(1) + ((cons / vscale[:, None]) ** 2).sum(1)

    def _jacobian_structure(self, r):
        """Row and column of every Jacobian entry of system ``r`` (n = N + m unknowns): the four derivatives of
        each edge, then -C^T in the KCL rows, C in the constraint rows, and a diagonal entry for every constraint
        slot and every node (1 where unused or pinned).  Fixed per system; the values depend on the plan."""
        if r in self._structures:
            return self._structures[r]
        N, m = self.n_nodes, self.n_rows
        u, v = self.edge_u[r], self.edge_v[r]
        a, b = self.rows[r, :, 0], np.maximum(self.rows[r, :, 1], 0)
        slot = N + np.arange(m)
        rows = np.concatenate([u, u, v, v, a, b, slot, slot, slot, np.arange(N)])
        cols = np.concatenate([u, v, u, v, slot, slot, a, b, slot, np.arange(N)])
        self._structures[r] = (rows, cols)
        return rows, cols

    def _jacobian_masks(self, r, plan, edge_row):
        """For system ``r`` under ``plan``: which edge entries count (not in a pinned node's row), and the values
        of the fixed entries (constraints, unused slots, pinned identity rows)."""
        key = (r, plan.pinned[r].tobytes(), edge_row[r].tobytes())
        masks = self._masks.get(key)
        if masks is None:
            if len(self._masks) > 64:
                self._masks.clear()
            pin = plan.pinned[r]
            u, v = self.edge_u[r], self.edge_v[r]
            keep = np.concatenate([~pin[u], ~pin[u], ~pin[v], ~pin[v]]).astype(float)
            a, b = self.rows[r, :, 0], np.maximum(self.rows[r, :, 1], 0)
            erf = edge_row[r].astype(float)
            fixed = np.concatenate([-erf * ~pin[a], erf * ~pin[b], erf, -erf, 1.0 - erf, pin.astype(float)])
            masks = self._masks[key] = (keep, fixed)
        return masks

    def _jacobian_values(self, system, GA, GB, plan, edge_row):
        """Values of every Jacobian entry of each column (B, entries), in the order of _jacobian_structure."""
        # KCL row a (outflow): dI/dV_a = GA, dI/dV_b = GB (negative); row b gets the opposite signs
        vals = np.concatenate([GA, GB, -GA, -GB], 1)
        fixed = []
        for i, r in enumerate(system):
            keep, fix = self._jacobian_masks(int(r), plan, edge_row)
            vals[i] *= keep
            fixed.append(fix)
        return np.concatenate([vals, np.array(fixed)], 1)

    def _step(self, active, system, kcl, cons, GA, GB, plan, edge_row, gscale, keys=(), forcing=None):
        """Newton's step of each column; sparse columns solve to the relative residual ``forcing`` (default
        KRYLOV_TOLERANCE) in the merit's norm (voltage rows weighted by ``gscale``)."""
        N = self.n_nodes
        n = N + self.n_rows
        vals = self._jacobian_values(system, GA, GB, plan, edge_row)
        rhs = -np.concatenate([kcl, cons], 1)
        B = len(active)
        if self.backend == "dense":
            structure = [self._jacobian_structure(int(r)) for r in system]
            rows, cols = np.array([st[0] for st in structure]), np.array([st[1] for st in structure])
            flat = (np.arange(B)[:, None] * n + rows) * n + cols
            J = np.bincount(flat.ravel(), vals.ravel(), B * n * n).reshape(B, n, n)
            try:
                x = np.linalg.solve(J, rhs[:, :, None])[:, :, 0]
            except np.linalg.LinAlgError:
                x = np.stack([self._solve_one(Jb, rb) for Jb, rb in zip(J, rhs)])
        else:
            x = np.empty((B, n))
            volts = np.concatenate([plan.pinned[system], np.ones((B, n - N), bool)], 1)
            for i in range(B):
                J = self._sparse_jacobian(int(system[i]), vals[i], n)
                # the merit's norm (amperes: voltage rows times the conductance scale), so that a step that meets
                # the forcing term lowers the merit the line search asks to fall
                weights = np.where(volts[i], gscale[i], 1.0)
                x[i] = self._sparse_step(keys[i], J, rhs[i], KRYLOV_TOLERANCE if forcing is None else forcing[i],
                                         weights)
        # pinned nodes stay where they are: their identity rows hold only to the forcing term in a sparse step
        return np.where(plan.pinned[system], 0.0, x[:, :N]), x[:, N:] * edge_row[system]

    def _sparse_jacobian(self, system, vals, n):
        """The CSC Jacobian of one column from its entry values.  Where the entries sit depends only on the
        system's edges and boundary rows, so the pattern (and where each entry adds into it) is worked out once
        per system; every Jacobian of a system then has the same pattern (explicit zeros included)."""
        pattern = self._patterns.get(system)
        if pattern is None:
            rows, cols = self._jacobian_structure(system)
            flat, position = np.unique(cols.astype(np.int64) * n + rows, return_inverse=True)
            indptr = np.searchsorted(flat // n, np.arange(n + 1)).astype(np.int32)
            pattern = self._patterns[system] = ((flat % n).astype(np.int32), indptr, position.ravel())
        indices, indptr, position = pattern
        data = np.bincount(position, vals, len(indices))
        return sp.csc_matrix((data, indices, indptr), shape=(n, n))

    def _sparse_step(self, key, J, rhs, tolerance, weights):
        """Solve ``J x = rhs`` for one column to the relative residual ``tolerance``: GMRES preconditioned by the
        LU kept from an earlier Jacobian of the same column (a learning step or a Newton step changes the
        Jacobian little), or a fresh LU, kept for the next steps, when there is none, when the Jacobian has
        changed in many places since and the tolerance is tight, or when GMRES needs more than KRYLOV_REFRESH
        iterations."""
        kept = self._kept.get(key)
        if kept is None:  # the clamped twin's first solve: the free twin's factors differ only at the outputs
            kept = self._kept.get(("free" if key[0] == "clamped" else "clamped",) + tuple(key[1:]))
        if kept is not None and tolerance < LOOSE_FORCING and \
                self._changed_columns(kept[0], J) > KRYLOV_REFRESH // 2:
            kept = None  # many regimes changed since (a cold start): GMRES would fail, factor right away
        if kept is not None:
            matrix, lu = kept
            if isinstance(lu, bool):  # after unpickling: the same factors again, from the same matrix
                lu = self._factor(key, matrix, ordered=lu)
            x, count, converged = right_preconditioned_gmres(J.__matmul__, lu.solve, rhs, tolerance,
                                                             KRYLOV_REFRESH, weights)
            self.krylov_iterations += count
            if converged:
                if count >= KRYLOV_REFRESH // 2:
                    self._kept.pop(key, None)  # converging slowly: factor afresh next time
                else:
                    self._kept[key] = (matrix, lu)
                return x
        lu = self._factor(key, J)
        self.factorizations += 1
        self._kept[key] = (J, lu)
        return lu.solve(rhs)

    def _factor(self, key, J, ordered=None):
        """LU factors of a sparse Jacobian of the column ``key`` = (twin, examples, column): the first one of each
        system with SuperLU's minimum-degree ordering, the later ones in the order found then (the pattern is
        fixed per system, so the order is too).  Which of the two a factorization took depends only on the
        system's own sequence of solves (the same alone or stacked); a pickled solver records it with each kept
        matrix (``ordered``) and factors it again the same way."""
        system = key[2] // key[1]
        ordering = self._orders.get(system)
        if ordering is None or ordered is False:
            lu = factor_lu(J, symmetric=False)
            if ordering is not None:
                return lu
            order = np.argsort(lu.perm_c)
            # where each entry of J lands in J[order][:, order] (the pattern is fixed, so this is done once)
            marked = sp.csc_matrix((np.arange(1.0, J.nnz + 1), J.indices, J.indptr), shape=J.shape)[order][:, order]
            marked = sp.csc_matrix(marked)
            marked.sort_indices()
            self._orders[system] = (order, marked.data.astype(np.int64) - 1, marked.indices, marked.indptr, J.nnz)
            return lu
        order, source, indices, indptr, nnz = ordering
        if J.nnz != nnz:
            raise AssertionError("a column's Jacobian pattern changed")
        permuted = sp.csc_matrix((J.data[source], indices, indptr), shape=J.shape)
        return factor_lu(J, symmetric=False, permuted=permuted, order=order)

    @staticmethod
    def _changed_columns(kept, J):
        """How many columns of ``J`` differ from the ``kept`` Jacobian by more than 10 % of their largest entry
        (roughly the rank of the change that matters, hence the GMRES iterations a preconditioner made from
        ``kept`` needs; a learning step changes none or one, the first steps of a cold start thousands)."""
        if kept.shape != J.shape or kept.nnz != J.nnz or not np.array_equal(kept.indices, J.indices) \
                or not np.array_equal(kept.indptr, J.indptr):
            return J.shape[1]
        if J.nnz == 0:
            return 0
        lengths = np.diff(J.indptr)
        starts = J.indptr[:-1][lengths > 0]
        largest = np.zeros(J.shape[1])
        largest[lengths > 0] = np.maximum.reduceat(np.abs(J.data), starts)
        moved = np.abs(J.data - kept.data) > 0.1 * np.repeat(largest, lengths)
        return int(np.count_nonzero(np.add.reduceat(moved, starts)))

    def __getstate__(self):
        # SuperLU factors do not pickle: keep the matrices they came from and factor them again when needed
        state = dict(self.__dict__)
        # (and whether they were factored in the kept order, to factor them again exactly the same way)
        state["_kept"] = {key: (matrix, isinstance(lu, OrderedLU)) for key, (matrix, lu) in self._kept.items()}
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
            f"{at.tolist()} with k = [{', '.join(f'{v:.3g}' for v in k[r, at])}] S.  Try: smaller input voltages, more "
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
