"""The solver backends (edgesim.linalg) against the exact sparse LU.

Contract: every backend gives the voltages of the exact backend to 1e-9
relative, also after many small conductance changes (where the iterative
backends reuse a stale preconditioner and warm starts), and learning curves
of 1e4-edge networks agree to 1e-8 relative over 1000 steps; a solve that
cannot reach its tolerance raises instead of returning a wrong answer.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgesim.config import ConfigError, LearningConfig, SolverConfig
from edgesim.network import jammed_network, square_lattice
from edgesim.physics import Boundary, TwinSolver, free_solution, node_voltages
from edgesim.scenario import load_scenario
from edgesim.seeding import stream
from edgesim.tasks import edge_regression
from edgesim.trainer import train_synchronous


def _voltages(solver, k, x):
    resp = solver.response(k[None])
    lam, _, _ = free_solution(resp, x[None])
    return node_voltages(resp, lam, x[None])[0]


def _boundary(net, rng):
    nodes = rng.choice(np.arange(1, net.n_nodes), 4, replace=False)
    return Boundary(ground=0, inputs=[(int(nodes[0]), -1), (int(nodes[1]), -1)],
                    outputs=[(int(nodes[2]), -1), (int(nodes[3]), -1)])


def _relative(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


@settings(max_examples=15, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31 - 1), kind=st.sampled_from(["lattice", "jammed"]))
def test_cg_agrees_with_lu_over_six_decades_of_conductance(seed, kind):
    """Conductances log-uniform in 1e-3..1e3, then 20 learning-sized changes: voltages to 1e-9 at every state.

    Six decades, not the ten of the range 1e-4..1e6: with eight to ten decades of
    *random* conductance a residual-based iteration cannot reach 1e-9 (its
    attainable accuracy is set by the round-off of ``A x``, ~1e-16 |A| |x|,
    which such graded matrices amplify; the direct solves are componentwise
    stable and do).  Measured: 1e-9..1e-7 at 8-10 decades (docs/solvers.md).
    """
    rng = np.random.default_rng(seed)
    net = square_lattice(25, 25) if kind == "lattice" else jammed_network(256, 1 + seed % 5)
    stats = _agrees_with_lu_over_learning_changes(net, rng)
    assert stats["factorizations"] == 1  # the kept factorization served every state
    assert stats["iterations"] > 0


@pytest.mark.xfail(strict=True, reason="a rare network where cg reaches 1.18e-9, not 1e-9, at six decades "
                                       "(found by hypothesis; three LU refinement steps do not help)")
def test_cg_on_the_rare_six_decade_network_hypothesis_found():
    """Kept as a known limitation: if a solver change fixes it, this test says so (strict xfail)."""
    _agrees_with_lu_over_learning_changes(square_lattice(25, 25), np.random.default_rng(1772))


def _agrees_with_lu_over_learning_changes(net, rng, backend="cg", states=20, decades=(-3, 3), bound=1e-9):
    """``backend`` against a fresh LU on random boundaries, conductances log-uniform over ``decades`` (kept in
    that range) and ``states`` successive learning-sized changes: voltages to ``bound`` at every state.
    Returns its solver stats."""
    low, high = 10.0 ** decades[0], 10.0 ** decades[1]
    bc = _boundary(net, rng)
    k = 10 ** rng.uniform(*decades, net.n_edges)
    x = rng.uniform(-1, 1, (2, 3))
    solver = TwinSolver([net], [bc], backend=backend)
    for _ in range(states):
        exact = _voltages(TwinSolver([net], [bc], backend="lu"), k, x)
        assert _relative(_voltages(solver, k, x), exact) < bound
        k = np.clip(k * (1 + 1e-3 * rng.normal(size=net.n_edges)), low, high)
    return solver.linear_stats[0]


@pytest.mark.parametrize("span", [1.0, 2.0])
def test_amg_agrees_with_lu(span):
    """Multigrid on conductances spanning 2 and 4 decades (random, no structure)."""
    pytest.importorskip("pyamg")
    rng = np.random.default_rng(3)
    net = square_lattice(40, 40)
    bc = _boundary(net, rng)
    k = 10 ** rng.uniform(-span, span, net.n_edges)
    x = rng.uniform(-1, 1, (2, 2))
    amg = TwinSolver([net], [bc], backend="amg")
    for _ in range(5):
        exact = _voltages(TwinSolver([net], [bc], backend="lu"), k, x)
        assert _relative(_voltages(amg, k, x), exact) < 1e-9
        k = k * (1 + 1e-3 * rng.normal(size=net.n_edges))
    assert amg.linear_stats[0]["iterations"] > 0 and amg.linear_stats[0]["factorizations"] == 1  # it iterated


def test_amg_that_cannot_converge_says_so():
    """Ten decades of random conductance defeat smoothed aggregation: an error naming the remedy, not a wrong answer."""
    pytest.importorskip("pyamg")
    rng = np.random.default_rng(1)
    net = square_lattice(40, 40)
    solver = TwinSolver([net], [_boundary(net, rng)], backend="amg")
    with pytest.raises(np.linalg.LinAlgError, match="solver.backend = 'cg' or 'lu'"):
        solver.response(10 ** rng.uniform(-5, 5, net.n_edges)[None])


@pytest.mark.parametrize("backend, steps", [("cg", 1000), ("amg", 100), pytest.param("amg", 1000, marks=pytest.mark.slow)])
def test_learning_curves_of_a_1e4_edge_network_agree_with_lu(backend, steps):
    """Synchronous steps on a 10,082-edge periodic lattice: the error trajectory to 1e-8 relative
    (multigrid: 1000 steps take ~2 minutes, so the default suite runs 100)."""
    pytest.importorskip("pyamg")
    net = square_lattice(71, 71, periodic=True)
    task = edge_regression(net, stream(0, 0, "task"), n_train=1, n_test=1)
    k0 = [np.exp(np.random.default_rng(0).normal(0, 0.5, net.n_edges))]
    config = LearningConfig(alpha=50.0, eta=1e-3)  # large steps: every conductance changes each step
    record = np.arange(0, steps + 1, steps // 20)
    exact = train_synchronous([task], config, steps, k0, record_at=record, solver_backend="lu")
    other = train_synchronous([task], config, steps, k0, record_at=record, solver_backend=backend)
    assert exact.error_train[0, -1] < (0.5 if steps >= 1000 else 0.999) * exact.error_train[0, 0]  # it learns
    np.testing.assert_allclose(other.error_train, exact.error_train, rtol=1e-8, atol=0)
    # conductances near k_min move by absolute amounts of the order of the others' round-off
    np.testing.assert_allclose(other.conductance, exact.conductance, rtol=1e-8,
                               atol=1e-8 * np.median(exact.conductance))


def test_engine_runs_on_the_cg_backend_like_on_lu():
    from edgesim.runner import run_scenario

    base = ["engine.kind='vectorized'", "run.steps=30", "network.kind='square_lattice'", "network.nx=20"]
    lu = run_scenario(load_scenario("scenarios/dillavou2022_allostery.toml", base + ["solver.backend='lu'"]),
                      progress=False)
    cg = run_scenario(load_scenario("scenarios/dillavou2022_allostery.toml", base + ["solver.backend='cg'"]),
                      progress=False)
    np.testing.assert_allclose(cg.error_train.values, lu.error_train.values, rtol=1e-8)


def test_engine_settle_windows_on_cg_keep_one_factorization_and_match_lu():
    """Jittered clocks, windows of ~1 % of the edges: each window is a warm-started solve, not a refactorization."""
    from edgesim.config import EngineConfig
    from edgesim.engine.simulate import simulate
    from edgesim.hardware import HardwareSpec, with_overrides

    net = square_lattice(30, 30)
    task = edge_regression(net, stream(0, 0, "task"), n_train=1, n_test=1)
    hw = with_overrides(HardwareSpec(), dict(phase="random", jitter_std=0.05), {}, {})
    cfg = EngineConfig(kind="vectorized", settle_time=0.01, supervisor_period=1.0)
    runs = {backend: simulate(task, LearningConfig(alpha=0.05, eta=0.1), hw, cfg, np.ones(net.n_edges),
                              np.linspace(0, 3, 7), seed=1, solver=SolverConfig(backend=backend))
            for backend in ("lu", "cg")}
    (lu_history, lu_info), (cg_history, cg_info) = runs["lu"], runs["cg"]
    assert cg_info["refactorizations"] == lu_info["refactorizations"] > 100  # one full solve per window
    assert lu_info["factorizations"] == lu_info["refactorizations"]
    assert cg_info["factorizations"] == 1
    assert cg_info["events"] == lu_info["events"]
    np.testing.assert_allclose(cg_history.error_train, lu_history.error_train, rtol=1e-8)
    np.testing.assert_allclose(cg_history.conductance, lu_history.conductance, rtol=1e-9)


@pytest.mark.parametrize("tolerance", [0.0, -1e-12, 0.02, float("nan")])
def test_tolerance_outside_its_range_is_an_error(tolerance):
    with pytest.raises(ConfigError, match="solver.tolerance"):
        SolverConfig(tolerance=tolerance)


def test_unknown_backend_is_an_error_listing_the_backends():
    with pytest.raises(ConfigError, match="solver.backend must be one of 'auto', 'dense', 'lu', 'cholmod', 'cg', "
                                          "'cg-cholmod', 'amg'"):
        load_scenario("scenarios/quickstart.toml", ["solver.backend='superlu'"])


@settings(max_examples=10, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31 - 1))
def test_cholmod_agrees_with_lu_to_1e9_over_six_decades_and_as_well_as_exact_solvers_can_over_ten(seed):
    """Six decades: voltages to 1e-9 of the LU's.  Ten (1e-4..1e6): to 1e-7, the level at which two exact
    solvers agree there.

    At ten decades of random conductance exact solvers' voltages differ by up to a few 1e-8 (round-off
    amplified by the conditioning; measured over 60 networks: LU vs dense Cholesky 1.1e-8, LU vs CHOLMOD
    2.4e-8, dense vs CHOLMOD 3.6e-8, and 4.1e-8 for one network found by a search; at six decades
    1.1e-11): 1e-9 to "the exact LU" is below the LU's own accuracy there (docs/solvers.md).  Derandomized
    so that the suite is deterministic.
    """
    pytest.importorskip("sksparse.cholmod")
    rng = np.random.default_rng(seed)
    net = square_lattice(25, 25)
    bc = _boundary(net, rng)
    x = rng.uniform(-1, 1, (2, 3))
    cholmod = TwinSolver([net], [bc], backend="cholmod")
    for decades, bound in ((6, 1e-9), (10, 1e-7)):
        k = 10 ** rng.uniform(1 - decades / 2, 1 + decades / 2, net.n_edges)
        exact = _voltages(TwinSolver([net], [bc], backend="lu"), k, x)
        assert _relative(_voltages(cholmod, k, x), exact) < bound, decades
    assert cholmod.linear_stats[0]["factorizations"] == 2


def test_cg_with_a_kept_cholmod_factor_agrees_with_lu_and_survives_pickling():
    """Six decades (see the cg test for why not ten), 20 learning-sized changes, one factorization."""
    pytest.importorskip("sksparse.cholmod")
    import pickle

    rng = np.random.default_rng(5)
    net = jammed_network(256, 2)
    bc = _boundary(net, rng)
    k = 10 ** rng.uniform(-3, 3, net.n_edges)
    x = rng.uniform(-1, 1, (2, 3))
    solver = TwinSolver([net], [bc], backend="cg-cholmod")
    for step in range(20):
        exact = _voltages(TwinSolver([net], [bc], backend="lu"), k, x)
        assert _relative(_voltages(solver, k, x), exact) < 1e-9
        if step == 10:  # a checkpoint: the copy continues exactly as the original
            copy = pickle.loads(pickle.dumps(solver))
            k_next = np.clip(k * (1 + 1e-3 * rng.normal(size=net.n_edges)), 1e-3, 1e3)
            np.testing.assert_array_equal(_voltages(copy, k_next, x), _voltages(solver, k_next, x))
            k = k_next
        k = np.clip(k * (1 + 1e-3 * rng.normal(size=net.n_edges)), 1e-3, 1e3)
    assert solver.linear_stats[0]["factorizations"] == 1


def test_cholmod_learning_curves_of_a_1e4_edge_network_agree_with_lu():
    """As for cg: 1000 synchronous steps on the 10,082-edge periodic lattice, errors to 1e-8 relative."""
    pytest.importorskip("sksparse.cholmod")
    net = square_lattice(71, 71, periodic=True)
    task = edge_regression(net, stream(0, 0, "task"), n_train=1, n_test=1)
    k0 = [np.exp(np.random.default_rng(0).normal(0, 0.5, net.n_edges))]
    config = LearningConfig(alpha=50.0, eta=1e-3)
    record = np.arange(0, 1001, 50)
    exact = train_synchronous([task], config, 1000, k0, record_at=record, solver_backend="lu")
    for backend in ("cg-cholmod", "cholmod"):
        other = train_synchronous([task], config, 1000, k0, record_at=record, solver_backend=backend)
        np.testing.assert_allclose(other.error_train, exact.error_train, rtol=1e-8, atol=0)


def test_cholmod_without_scikit_sparse_names_the_install_step(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_sksparse(name, *args, **kwargs):
        if name.startswith("sksparse"):
            raise ImportError("no scikit-sparse")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sksparse)
    net = square_lattice(5, 5)
    for backend in ("cholmod", "cg-cholmod"):
        with pytest.raises(ValueError, match=r"apt-get install libsuitesparse-dev, then pip install "
                                             r"-e '\.\[cholmod\]' in the edgesim folder"):
            TwinSolver([net], [Boundary(0, [(3, -1)], [(7, -1)])], backend=backend)


def test_amg_without_pyamg_names_the_install_step(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_pyamg(name, *args, **kwargs):
        if name == "pyamg":
            raise ImportError("no pyamg")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyamg)
    net = square_lattice(5, 5)
    with pytest.raises(ValueError, match=r"pip install -e '\.\[amg\]' in the edgesim folder"):
        TwinSolver([net], [Boundary(0, [(3, -1)], [(7, -1)])], backend="amg")


@pytest.mark.parametrize("side, backend", [(15, "dense"), (100, "lu"), (150, "cg")])
def test_auto_picks_the_backend_measured_fastest_for_the_size(side, backend):
    net = square_lattice(side, side)
    assert TwinSolver([net], [Boundary(0, [(3, -1)], [(7, -1)])]).backend == backend


@pytest.mark.parametrize("gib, hint", [(4, False), (8, True)])
def test_a_network_too_large_for_memory_is_refused_before_the_run(tmp_path, capsys, monkeypatch, gib, hint):
    """A 1e7-edge lattice (about 7.5 GiB with the default backend): refused with the estimate, before any network
    is built; the lighter cg-cholmod (5.6 GiB) is suggested only where it would fit."""
    from edgesim.cli import main

    monkeypatch.setattr("edgesim.cli._available_memory", lambda: gib * 2**30)
    out = tmp_path / "big.nc"
    code = main(["run", "scenarios/quickstart.toml", "-o", str(out), "--set", "network.kind='square_lattice'",
                 "--set", "network.nx=2236", "--set", "task.n_train=1", "--set", "task.n_test=1", "--set",
                 "sweep={}", "--set", "run.realizations=1", "--set", "task.n_sources=1", "--set", "task.n_targets=1"])
    err = capsys.readouterr().err
    assert code == 2 and "GiB of memory with solver.backend = 'auto'" in err and "use a smaller network" in err
    assert ("solver.backend = 'cg-cholmod' would need about 5.6 GiB" in err) == hint
    assert not out.exists()


def test_a_lattice_far_too_large_is_refused_before_it_is_built(tmp_path, capsys, monkeypatch):
    """5e7 edges: the estimate comes from nx alone; building the lattice first would take a minute and 7 GB."""
    from edgesim import runner
    from edgesim.cli import main

    def never(*args, **kwargs):
        raise AssertionError("the network was built before the memory check")

    monkeypatch.setattr(runner.RunPlan, "of", never)
    out = tmp_path / "huge.nc"
    code = main(["run", "scenarios/quickstart.toml", "-o", str(out), "--set", "network.kind='square_lattice'",
                 "--set", "network.nx=5000", "--set", "sweep={}", "--set", "run.realizations=1"])
    err = capsys.readouterr().err
    assert code == 2 and "solving this network would need about" in err and not out.exists()


def test_a_single_precision_kept_lu_still_gives_the_double_precision_answer(monkeypatch):
    """Chip-sized networks keep their LU in single precision (memory); CG still reaches the double-precision
    voltages: 1e-9 to lu over six decades and 20 learning-sized changes, one factorization."""
    monkeypatch.setattr("edgesim.linalg.SINGLE_PRECISION_NODES", 100)  # as if this network were chip-sized
    stats = _agrees_with_lu_over_learning_changes(square_lattice(30, 30), np.random.default_rng(11))
    assert stats["factorizations"] == 1 and stats["iterations"] >= 20  # it iterated on every state


def test_a_single_precision_kept_lu_on_ten_decades_stays_at_the_exact_solvers_level(monkeypatch):
    """Badly conditioned (1e-5..1e5, random): no refinement with the coarse factor, so nothing diverges; the
    voltages stay within 1e-7 of the LU's, the level at which exact solvers agree there."""
    monkeypatch.setattr("edgesim.linalg.SINGLE_PRECISION_NODES", 100)
    _agrees_with_lu_over_learning_changes(square_lattice(40, 40), np.random.default_rng(1), states=4,
                                          decades=(-5, 5), bound=1e-7)


# -- the pieces of the nonlinear (Newton) solver's sparse steps ---------------------------------------------------
def _nonsymmetric_pair(n=300, seed=0):
    """A column-diagonally-dominant nonsymmetric sparse matrix (like a Newton Jacobian of transistor edges) and a
    nearby one (a few columns changed), with their SuperLU factors."""
    import scipy.sparse as sp
    rng = np.random.default_rng(seed)
    off = sp.random(n, n, density=4 / n, random_state=seed, data_rvs=lambda m: -rng.uniform(0.1, 1.0, m))
    off.setdiag(0)
    A = sp.csc_matrix(off + sp.diags(1.0 - np.asarray(off.sum(0)).ravel()))
    B = A.copy().tolil()
    for j in rng.choice(n, 5, replace=False):
        B[j, j] *= 1.8
    return A, sp.csc_matrix(B)


def test_right_preconditioned_gmres_meets_its_tolerance_in_the_true_weighted_residual():
    from edgesim.linalg import factor_lu, right_preconditioned_gmres
    A, nearby = _nonsymmetric_pair()
    lu = factor_lu(nearby, symmetric=False)
    b = np.random.default_rng(1).standard_normal(A.shape[0])
    weights = np.random.default_rng(2).uniform(1e-3, 1e3, A.shape[0])
    for tolerance in (1e-2, 1e-10):
        x, iterations, converged = right_preconditioned_gmres(A.__matmul__, lu.solve, b, tolerance, 30, weights)
        assert converged
        assert np.linalg.norm(weights * (b - A @ x)) <= tolerance * np.linalg.norm(weights * b)
        assert iterations <= 7  # five changed columns: about six iterations reach any tolerance
    exact = factor_lu(A, symmetric=False)
    _, iterations, converged = right_preconditioned_gmres(A.__matmul__, exact.solve, b, 1e-10, 30)
    assert converged and iterations == 1
    _, iterations, converged = right_preconditioned_gmres(A.__matmul__, lambda v: v, b, 1e-10, 3)
    assert not converged and iterations == 3  # says so when it runs out of iterations
    x, iterations, converged = right_preconditioned_gmres(A.__matmul__, lu.solve, np.zeros(A.shape[0]), 1e-10, 3)
    assert converged and iterations == 0 and not x.any()


def test_lu_in_a_kept_order_solves_like_superlus_own_ordering():
    from edgesim.linalg import OrderedLU, factor_lu
    A, _ = _nonsymmetric_pair()
    first = factor_lu(A, symmetric=False)
    order = np.argsort(first.perm_c)
    again = factor_lu(A, symmetric=False, permuted=A[order][:, order].tocsc(), order=order)
    assert isinstance(again, OrderedLU)
    b = np.random.default_rng(3).standard_normal(A.shape[0])
    np.testing.assert_allclose(again.solve(b), first.solve(b), rtol=1e-12, atol=1e-12)
    assert np.abs(A @ again.solve(b) - b).max() < 1e-12 * np.abs(b).max()
