"""Equilibria of one system whose conductances change edge by edge: the solver interface of the engines.

An :class:`Equilibrium` is the physics layer's answer to "what are the twin
networks doing now?" for a network whose conductances and alive edges are
edited over time.  It owns everything about *how* that is computed: which
factorization is kept, low-rank (Woodbury) corrections, when to refactor,
gauges of parts cut off by removed edges, and accuracy checks.  Callers (the
engines) only edit the state and read solutions:

>>> eq = make_equilibrium(network, boundary, conductance)           # doctest: +SKIP
>>> eq.set_conductance(edges, values); eq.set_alive(removed, False)  # doctest: +SKIP
>>> resp = eq.response()   # linear response of the current state    # doctest: +SKIP

Adding a backend
----------------
Subclass :class:`Equilibrium` and implement :meth:`~Equilibrium.set_conductance`,
:meth:`~Equilibrium.set_alive`, :meth:`~Equilibrium.response` and
:attr:`~Equilibrium.stats`; then return it from :func:`make_equilibrium` for
the ``backend`` name that selects it.  An iterative or CHOLMOD/AMG backend
returns the same :class:`~edgesim.physics.Response` computed another way.  A
nonlinear network (one with an edge law, ``network.law``) has no linear
response: :class:`NonlinearEquilibrium` returns a
:class:`~edgesim.nonlinear.NonlinearState` instead, which the same functions
of :mod:`edgesim.physics` (``free_solution``, ``clamped_solution``,
``mean_square_drops``) solve by Newton's method, so the engines do not
change.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .config import EngineConfig
from .linalg import BACKENDS
from .network import Network
from .nonlinear import NonlinearTwinSolver, is_nonlinear
from .physics import Boundary, Response, TwinSolver

__all__ = ["Equilibrium", "LowRankEquilibrium", "NonlinearEquilibrium", "SolverStats", "make_equilibrium",
           "kirchhoff_residual"]

_DEFAULT = EngineConfig()  # the solver policy's defaults are the engine settings' defaults


@dataclass(frozen=True)
class SolverStats:
    """What an equilibrium did so far.

    Attributes
    ----------
    refactorizations : int
        Full solves, the first one included: a fresh factorization with the direct backends, an
        iterative solve warm-started from the previous one with ``cg`` and ``amg``.
    low_rank_updates : int
        States computed as a low-rank correction of a kept factorization
        (states with at least one changed edge).
    guard_refactorizations : int
        Refactorizations forced because a low-rank state failed the accuracy check.
    largest_residual : float
        Largest relative Kirchhoff residual of a low-rank state seen so far.
    factorizations : int
        Matrix factorizations actually computed (with ``cg`` and ``amg``: preconditioner builds, far
        fewer than full solves).
    """

    refactorizations: int = 0
    low_rank_updates: int = 0
    guard_refactorizations: int = 0
    largest_residual: float = 0.0
    factorizations: int = 0


class Equilibrium(ABC):
    """Twin networks of one system in a conductance state that is edited over time (subclasses keep the
    state in ``_k`` and ``_alive``)."""

    _k: np.ndarray
    _alive: np.ndarray

    @property
    def conductance(self) -> np.ndarray:
        """Current conductances (read-only view, S)."""
        return _read_only(self._k)

    @property
    def alive(self) -> np.ndarray:
        """Edges present in the circuit (read-only view)."""
        return _read_only(self._alive)

    @abstractmethod
    def set_conductance(self, edges: np.ndarray, values: np.ndarray) -> None:
        """Set the conductances of ``edges`` (positive, finite)."""

    @abstractmethod
    def set_alive(self, edges: np.ndarray, flag: bool) -> None:
        """Remove (``False``) or restore (``True``) edges."""

    @abstractmethod
    def response(self) -> Response:
        """Linear response of the current state (see :func:`edgesim.physics.free_solution`)."""

    @property
    @abstractmethod
    def stats(self) -> SolverStats:
        """Counts and accuracy of the work done so far."""


def _read_only(array: np.ndarray) -> np.ndarray:
    """A view of ``array`` that cannot be written through."""
    view = array.view()
    view.flags.writeable = False
    return view


def kirchhoff_residual(resp: Response, incidence_t: sp.csr_matrix, conductance: np.ndarray,
                       constraint: np.ndarray, gauge: np.ndarray) -> float:
    """Largest relative Kirchhoff residual of a response (one system).

    For each boundary row ``j`` the response's edge drops must carry currents
    ``k_e dV_e`` whose net outflow at every non-gauge node equals the row's
    injection ``C_j``.  The residual is the largest imbalance divided by the
    largest edge current (or injection) of that row: about 1e-16 for an exact
    solve, growing as a low-rank correction loses accuracy.  ``incidence_t``
    is the transposed incidence matrix (nodes x edges).
    """
    currents = resp.drop_t[0] * conductance[None, :]  # (m, E)
    outflow = (incidence_t @ currents.T).T  # (m, N)
    imbalance = np.abs(outflow - constraint)[:, ~gauge]
    scale = np.maximum(np.abs(currents).max(1), np.abs(constraint).max(1))
    scale = np.where(scale > 0, scale, 1.0)
    return float((imbalance.max(1, initial=0.0) / scale).max(initial=0.0))


class LowRankEquilibrium(Equilibrium):
    """A kept direct factorization corrected by the Woodbury identity for the edges changed since.

    The edges changed since the last factorization form a growing list (in
    order of first change); their solve columns ``A0^-1 b_e`` and the small
    matrices built from them are kept, so a new state costs one solve per
    newly changed edge plus an ``r x r`` system.  It refactors when ``r``
    would exceed ``max_rank`` (or a quarter of the edges), when edges are
    removed or restored, and when a corrected state fails the accuracy guard:
    its relative Kirchhoff residual (:func:`kirchhoff_residual`) above
    ``tolerance``.

    What a state computes depends only on the sequence of states asked for,
    so two callers that ask for the same sequence get identical numbers.

    Parameters
    ----------
    network : Network
    boundary : Boundary
    conductance : ndarray (E,)
        Initial conductances (S).
    backend : {"auto", "dense", "lu", "cg", "amg"}
        Direct solver of :class:`~edgesim.physics.TwinSolver`.
    max_rank : int
        Changed edges kept as a correction before refactoring (0: always refactor).
    tolerance : float
        Accuracy guard on the relative Kirchhoff residual of corrected states.
    """

    def __init__(self, network: Network, boundary: Boundary, conductance: np.ndarray, *, backend: str = "auto",
                 max_rank: int = _DEFAULT.max_rank, tolerance: float = _DEFAULT.lowrank_tolerance,
                 solver_tolerance: float = 1e-14):
        self._solver = TwinSolver([network], [boundary], backend=backend, tolerance=solver_tolerance)
        self._edges = network.edges
        E = network.n_edges
        self._k = np.array(conductance, dtype=float)
        if self._k.shape != (E,):
            raise ValueError(f"conductance must have one value per edge ({E}), got shape {self._k.shape}")
        self._check(np.arange(E), self._k)
        self._alive = np.ones(E, bool)
        self.max_rank = int(max_rank)
        self.tolerance = float(tolerance)
        self._incidence_t = network.incidence.T.tocsr()
        self._base_k = None
        self._base_alive = None
        self._response = None
        self._counts = {"refactorizations": 0, "low_rank_updates": 0, "guard_refactorizations": 0}
        self._largest_residual = 0.0

    # -- state ---------------------------------------------------------------------------------
    @staticmethod
    def _check(edges, values):
        bad = ~np.isfinite(values) | (values <= 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"conductance of edge {int(np.asarray(edges)[i])} is {values[i]}: conductances must "
                             "be positive and finite (remove an edge with set_alive instead)")

    def set_conductance(self, edges, values) -> None:
        edges = np.asarray(edges, dtype=np.int64)
        values = np.broadcast_to(np.asarray(values, dtype=float), edges.shape)
        if edges.size:
            self._check(edges, values)
            self._k[edges] = values
            self._response = None

    def set_alive(self, edges, flag: bool) -> None:
        edges = np.asarray(edges, dtype=np.int64)
        if edges.size:
            self._alive[edges] = bool(flag)
            self._response = None

    @property
    def stats(self) -> SolverStats:
        linear = self._solver.linear_stats
        factorizations = linear[0]["factorizations"] if linear else self._counts["refactorizations"]
        return SolverStats(largest_residual=self._largest_residual, factorizations=factorizations, **self._counts)

    # -- solving -------------------------------------------------------------------------------
    def response(self) -> Response:
        if self._response is None:
            self._response = self._update()
        return self._response

    def _update(self) -> Response:
        k, alive = self._k, self._alive
        if self._base_k is not None and np.array_equal(alive, self._base_alive):
            # removed edges are outside the circuit: their values do not matter
            changed = np.flatnonzero((k != self._base_k) & alive)
            new = changed[~self._in_list[changed]]
            # Low rank only while few edges changed: past a quarter of them, refactoring is cheaper.
            if self._rank + new.size <= min(self.max_rank, len(self._edges) // 4):
                resp = self._correct(new, k)
                if resp is None:
                    return self._base
                residual = kirchhoff_residual(resp, self._incidence_t, np.where(alive, k, 0.0), self._constraint,
                                              self._gauge)
                self._largest_residual = max(self._largest_residual, residual)
                if residual <= self.tolerance:
                    self._counts["low_rank_updates"] += 1
                    return resp
                self._counts["guard_refactorizations"] += 1
        return self._refactor(k, alive)

    def _refactor(self, k, alive) -> Response:
        resp = self._solver.response(k[None, :], alive[None, :])
        self._counts["refactorizations"] += 1
        self._base_k = k.copy()
        self._base_alive = alive.copy()
        self._base = resp
        self._gauge = self._solver.gauge_mask()[0]
        self._constraint = self._solver.constraint_matrix()[0]
        E, N, m, cap = len(self._edges), self._solver.n_nodes, self._solver.n_rows, max(self.max_rank, 1)
        self._keep_u = (~self._gauge[self._edges[:, 0]]).astype(float)
        self._keep_v = (~self._gauge[self._edges[:, 1]]).astype(float)
        self._in_list = np.zeros(E, bool)
        self._list = np.zeros(cap, np.int64)
        self._rank = 0
        self._Y = np.zeros((N, cap))
        self._UtY = np.zeros((cap, cap))
        self._UtZ0 = np.zeros((cap, m))
        self._CY = np.zeros((m, cap))
        return resp

    def _correct(self, new, k) -> Response | None:
        """The response at ``k`` as the base plus a Woodbury correction (None: nothing changed)."""
        u_all, v_all = self._edges[:, 0], self._edges[:, 1]
        for e in new:  # extend the list of changed edges, one solve each
            j = self._rank
            b = np.zeros((self._solver.n_nodes, 1))
            b[u_all[e], 0] += self._keep_u[e]
            b[v_all[e], 0] -= self._keep_v[e]
            self._Y[:, j] = self._solver.solve_last(0, b)[:, 0]
            self._list[j] = e
            self._in_list[e] = True
            self._rank = j + 1
            listed = self._list[:j + 1]
            Y = self._Y[:, :j + 1]
            self._UtY[j, :j + 1] = Y[u_all[e]] * self._keep_u[e] - Y[v_all[e]] * self._keep_v[e]
            self._UtY[:j + 1, j] = (self._Y[u_all[listed], j] * self._keep_u[listed]
                                    - self._Y[v_all[listed], j] * self._keep_v[listed])
            Z0 = self._base.node[0]
            self._UtZ0[j] = Z0[u_all[e]] * self._keep_u[e] - Z0[v_all[e]] * self._keep_v[e]
            self._CY[:, j] = self._constraint @ self._Y[:, j]
        r = self._rank
        if r == 0:
            return None
        listed = self._list[:r]
        delta = (k[listed] - self._base_k[listed])[:, None]
        # Z = Z0 - Y (I + diag(delta) U^T Y)^-1 diag(delta) U^T Z0
        W = np.linalg.solve(np.eye(r) + delta * self._UtY[:r, :r], delta * self._UtZ0[:r])  # (r, m)
        base = self._base
        gram = base.gram[0] - self._CY[:, :r] @ W
        Y = self._Y[:, :r]
        Yd = Y[u_all] - Y[v_all]  # (E, r)
        drop_t = base.drop_t - (W.T @ Yd.T)[None]
        if not self._base_alive.all():
            drop_t *= self._base_alive[None, None, :]
        node = base.node - (Y @ W)[None]
        return Response(gram[None], drop_t.transpose(0, 2, 1), node, base.offset, base.node_offset,
                        base.row_connected, base.n_inputs, drop_t)


class NonlinearEquilibrium(Equilibrium):
    """The equilibrium of one network of nonlinear edges (:class:`~edgesim.nonlinear.NonlinearTwinSolver`).

    Every state is solved afresh by Newton's method, warm-started from the previous equilibrium of the same
    twin: there is nothing to correct at low rank.  ``stats.refactorizations`` counts the states solved and
    ``stats.factorizations`` the Newton iterations (each a linear solve with the Jacobian: a dense LU, or for
    large networks GMRES on a kept sparse LU).
    """

    def __init__(self, network: Network, boundary: Boundary, conductance: np.ndarray, *, backend: str = "auto",
                 newton_tolerance: float = 1e-12, max_iterations: int = 100):
        self._solver = NonlinearTwinSolver([network], [boundary], backend, newton_tolerance, max_iterations)
        E = network.n_edges
        self._k = np.array(conductance, dtype=float)
        if self._k.shape != (E,):
            raise ValueError(f"conductance must have one value per edge ({E}), got shape {self._k.shape}")
        self._alive = np.ones(E, bool)
        self._states = 0
        self._key = None

    def set_conductance(self, edges, values) -> None:
        self._k[np.asarray(edges, dtype=np.int64)] = values

    def set_alive(self, edges, flag: bool) -> None:
        self._alive[np.asarray(edges, dtype=np.int64)] = flag

    def response(self):
        key = (self._k.tobytes(), self._alive.tobytes())
        if key != self._key:
            self._states += 1
            self._key = key
        return self._solver.response(self._k[None].copy(), self._alive[None].copy())

    @property
    def stats(self) -> SolverStats:
        return SolverStats(refactorizations=self._states, factorizations=self._solver.iterations)


def make_equilibrium(network: Network, boundary: Boundary, conductance: np.ndarray, *, backend: str = "auto",
                     max_rank: int = _DEFAULT.max_rank, tolerance: float = _DEFAULT.lowrank_tolerance,
                     solver_tolerance: float = 1e-14, newton_tolerance: float = 1e-12,
                     newton_max_iterations: int = 100) -> Equilibrium:
    """The equilibrium of one system for a solver ``backend`` (see :class:`LowRankEquilibrium`); networks of
    nonlinear edges get a :class:`NonlinearEquilibrium`."""
    if is_nonlinear(network):
        return NonlinearEquilibrium(network, boundary, conductance, backend=backend,
                                    newton_tolerance=newton_tolerance, max_iterations=newton_max_iterations)
    if backend in ("auto", "dense", "sparse") + BACKENDS:
        return LowRankEquilibrium(network, boundary, conductance, backend=backend, max_rank=max_rank,
                                  tolerance=tolerance, solver_tolerance=solver_tolerance)
    raise ValueError(f"unknown solver backend {backend!r}; use 'auto', 'dense' or one of {', '.join(BACKENDS)}")
