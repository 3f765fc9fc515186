"""The solver interface of the engines: low-rank equilibria stay exact, and guard their own accuracy.

A :class:`~edgesim.solvers.LowRankEquilibrium` keeps one factorization and
corrects it (Woodbury identity) for the edges changed since.  These tests
compare every state it produces with a fresh, independent factorization of
the same conductances (:class:`~edgesim.physics.TwinSolver`), over conductances
spanning the whole default range ``[k_min, k_max] = [1e-4, 1e6]``.
"""

import numpy as np
import pytest

from edgesim.network import jammed_network, lab_network
from edgesim.physics import TwinSolver, free_solution, mean_square_drops
from edgesim.solvers import LowRankEquilibrium, kirchhoff_residual, make_equilibrium
from edgesim.tasks import edge_regression, node_allostery


def relative_error(x, reference):
    return np.abs(x - reference).max() / np.abs(reference).max()


def differences(resp, reference, task):
    """Relative differences (outputs, free power, mean squared drops) of two responses of one state."""
    X = task.train_inputs[None]
    currents, out, power = free_solution(resp, X)
    currents_ref, out_ref, power_ref = free_solution(reference, X)
    return np.array([relative_error(out, out_ref), relative_error(power, power_ref),
                     relative_error(mean_square_drops(resp, currents), mean_square_drops(reference, currents_ref))])


def fresh(eq, task, backend="dense"):
    return TwinSolver([task.network], [task.boundary], backend=backend).response(eq.conductance[None].copy(),
                                                                                 eq.alive[None].copy())


def compare_with_fresh(eq, task):
    """Largest relative difference of outputs, power and mean squared drops from a fresh factorization."""
    return differences(eq.response(), fresh(eq, task), task).max()


def residual_of(eq, task):
    """Relative Kirchhoff residual of the state the equilibrium hands out, computed independently."""
    solver = TwinSolver([task.network], [task.boundary])
    solver.response(eq.conductance[None].copy())  # the gauge plan and constraint rows of this network
    return kirchhoff_residual(eq.response(), task.network.incidence.T.tocsr(), eq.conductance,
                              solver.constraint_matrix()[0], solver.gauge_mask()[0])


@pytest.mark.parametrize("backend, n_updates", [("dense", 104_000), ("sparse", 22_000)])
def test_long_run_of_low_rank_updates_agrees_with_fresh_solves(backend, n_updates):
    """1e5 low-rank states of a network whose conductances span 1e-4..1e6, every 97th compared
    with fresh factorizations of the same conductances.

    Conductances start log-uniform over [1e-4, 1e6] and each update multiplies one edge's
    conductance by a factor in [1/2, 2] (clipped to the range), as learning does.

    * The guard checks every state against Kirchhoff's law and refactors those past its tolerance.
    * The free power and the mean squared drops (what edges learn from) agree with a fresh
      solve to 1e-9 relative.
    * The outputs agree to 1e-9 relative, or as closely as two exact direct solvers (Cholesky
      and sparse LU) agree with each other where the conditioning of a 10-decade network
      allows no better (see docs/architecture.md).
    """
    rng = np.random.default_rng(0)
    task = edge_regression(jammed_network(64, 1), rng)
    E = task.network.n_edges
    eq = LowRankEquilibrium(task.network, task.boundary, 10 ** rng.uniform(-4, 6, E), backend=backend,
                            max_rank=32)
    low_rank = np.zeros(3)
    exact_pair = np.zeros(3)
    worst_accepted = 0.0
    edges = rng.integers(E, size=n_updates)
    factors = 2.0 ** rng.uniform(-1, 1, n_updates)
    for i in range(n_updates):
        e = edges[i]
        eq.set_conductance([e], np.clip(eq.conductance[e] * factors[i], 1e-4, 1e6))
        eq.response()
        if i % 97 == 0:
            worst_accepted = max(worst_accepted, residual_of(eq, task))
            dense, sparse = fresh(eq, task, "dense"), fresh(eq, task, "sparse")
            low_rank = np.maximum(low_rank, differences(eq.response(), dense, task))
            exact_pair = np.maximum(exact_pair, differences(sparse, dense, task))
    stats = eq.stats
    print(f"\n{backend}: {stats}\n  low rank vs fresh Cholesky (outputs, power, drops): {low_rank}"
          f"\n  fresh sparse LU vs fresh Cholesky:                  {exact_pair}")
    assert eq.conductance.min() <= 1.1e-4 and eq.conductance.max() >= 1e5  # the span really is 10 decades
    assert stats.low_rank_updates >= 0.95 * n_updates >= 20_000
    assert stats.refactorizations > 100  # max_rank bounds every correction
    assert 0 < stats.largest_residual  # the guard checked the states (refused ones included)
    assert worst_accepted <= eq.tolerance  # every state handed out satisfies Kirchhoff's law to the tolerance
    assert low_rank[1] < 1e-9 and low_rank[2] < 1e-9
    assert low_rank[0] < max(1e-9, exact_pair[0])


def test_a_degraded_low_rank_state_triggers_the_guard_and_a_refactorization(monkeypatch):
    """Corrupt the kept factorization's solves (as a lost-accuracy factor would): the corrected
    state fails the Kirchhoff check, the equilibrium refactors, and the answer is exact again."""
    task = node_allostery(lab_network(), {0: 5.0, 8: 1.0}, {3: 3.0, 5: 3.0, 7: 3.0}, ground=2)
    eq = make_equilibrium(task.network, task.boundary, np.linspace(0.5, 1.5, 16), max_rank=8)
    eq.response()
    eq.set_conductance([3], 2.0)
    eq.response()
    assert eq.stats.low_rank_updates == 1 and eq.stats.guard_refactorizations == 0
    assert compare_with_fresh(eq, task) < 1e-12
    solver = eq._solver  # noqa: SLF001 - the test degrades the equilibrium's own factorization on purpose
    original = solver.solve_last
    monkeypatch.setattr(solver, "solve_last", lambda system, rhs: original(system, rhs) * (1 + 1e-6))
    eq.set_conductance([7], 0.3)
    eq.response()
    stats = eq.stats
    assert stats.guard_refactorizations == 1 and stats.refactorizations == 2
    assert stats.largest_residual > eq.tolerance
    assert compare_with_fresh(eq, task) < 1e-12


def test_kirchhoff_residual_of_an_exact_solve_is_round_off():
    rng = np.random.default_rng(3)
    task = edge_regression(jammed_network(64, 2), rng)
    k = 10 ** rng.uniform(-4, 6, task.network.n_edges)
    solver = TwinSolver([task.network], [task.boundary])
    resp = solver.response(k[None])
    residual = kirchhoff_residual(resp, task.network.incidence.T.tocsr(), k, solver.constraint_matrix()[0],
                                  solver.gauge_mask()[0])
    assert residual < 1e-12
    # ... and it sees a wrong answer: scale one row's currents
    wrong = type(resp)(resp.gram, resp.drop * 1.001, resp.node, resp.offset, resp.node_offset, resp.row_connected,
                       resp.n_inputs, resp.drop_t * 1.001)
    assert kirchhoff_residual(wrong, task.network.incidence.T.tocsr(), k, solver.constraint_matrix()[0],
                              solver.gauge_mask()[0]) > 1e-4


def test_removed_edges_and_refactor_policy():
    task = node_allostery(lab_network(), {0: 5.0, 8: 1.0}, {3: 3.0, 5: 3.0, 7: 3.0}, ground=2)
    eq = make_equilibrium(task.network, task.boundary, np.ones(16), max_rank=2)
    eq.response()
    eq.set_conductance([1], 2.0)
    eq.set_conductance([2], 3.0)
    eq.response()  # two changed edges: still a correction
    assert eq.stats.refactorizations == 1 and eq.stats.low_rank_updates == 1
    eq.set_conductance([5], 0.5)
    eq.response()  # a third: past max_rank, refactor
    assert eq.stats.refactorizations == 2
    eq.set_alive([4], False)
    eq.response()  # removing an edge refactors with the new gauge plan
    assert eq.stats.refactorizations == 3 and not eq.alive[4]
    assert compare_with_fresh(eq, task) < 1e-12
    eq.set_conductance([4], 9.0)  # a removed edge's value does not matter
    eq.response()
    assert compare_with_fresh(eq, task) < 1e-12
    # nothing changed: no new work
    before = eq.stats
    eq.response()
    assert eq.stats == before


@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan, np.inf])
def test_bad_conductance_is_refused_and_names_the_edge(bad):
    task = node_allostery(lab_network(), {0: 5.0, 8: 1.0}, {3: 3.0}, ground=2)
    eq = make_equilibrium(task.network, task.boundary, np.ones(16))
    with pytest.raises(ValueError, match="edge 5"):
        eq.set_conductance([5], bad)
    with pytest.raises(ValueError, match="unknown solver backend"):
        make_equilibrium(task.network, task.boundary, np.ones(16), backend="magic")
    assert not eq.conductance.flags.writeable  # the state changes only through set_conductance
