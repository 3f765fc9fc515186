"""Reproductions of the published simulations and experiments, reduced to run in CI.

Each test uses the paper's own criterion where the reduced scale can show it
and says in its docstring what the full run shows; the full published-scale
runs are ``edgesim reproduce`` (tests/test_reproduce.py, ``-m slow``), whose
last report is docs/validation.md.
"""

from pathlib import Path

import numpy as np
import pytest

from edgesim.analysis import final, geometric_mean, loglog_slope, normalized_error
from edgesim.runner import run_scenario
from edgesim.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


def run(name, *overrides):
    return run_scenario(load_scenario(SCENARIOS / name, list(overrides)), progress=False)


# --- Stern et al. 2024 ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stern_lambda_reduced():
    return run("stern2024_lambda.toml", "run.steps=20000", "run.realizations=5",
               "sweep.lambda=[0.0, 1e-5, 3e-5, 1e-4, 1e-3]")


def test_stern_lambda_zero_learns(stern_lambda_reduced):
    """Stern et al. 2024, Fig. 2 at lambda = 0: the error falls below 1e-10 in 1e5 steps.  The reduced run
    (5 networks, 2e4 steps) is too short for 1e-10 and asserts that every network learns; the full run
    (50 networks, 1e5 steps) has 39 of 50 below 1e-10, median 2e-24 (docs/validation.md)."""
    err = final(normalized_error(stern_lambda_reduced)).sel({"lambda": 0.0})
    assert float(err.median()) < 1e-3
    assert (err < 0.1).all()


def test_stern_error_grows_as_lambda_squared(stern_lambda_reduced):
    """Stern et al. 2024, Fig. 2: error ~ lambda^2 at small lambda, with the report's criterion (the exponent
    within 20 %).  The full run gives 1.98 over lambda = 1e-10..1e-4."""
    # Errors of single realizations scatter over decades: average them geometrically.
    err = geometric_mean(final(normalized_error(stern_lambda_reduced)))
    lam = stern_lambda_reduced["lambda"].values
    small = (lam > 0) & (lam <= 1e-4)
    slope = loglog_slope(lam[small], err.values[small])
    assert 1.6 <= slope <= 2.4, slope


def test_stern_free_power_falls_with_lambda(stern_lambda_reduced):
    """Stern et al. 2024, Fig. 2: the trained free power falls with lambda.  The reduced lambda grid has no
    point in the linear regime; the full run shows the reduction ~ lambda^0.99 there (lambda <= 3e-8) and a
    factor 29 at lambda = 1e-5, where the paper says about 10 (its own code gives 49: docs/validation.md)."""
    power = geometric_mean(final(stern_lambda_reduced.free_power)).values
    assert (np.diff(power) < 0).all(), power


def test_stern_kappa_study_with_the_published_parameters():
    """Stern et al. 2024, Fig. 1: conductances in [1e-3, 10] starting at kappa, alpha = 0.5 kappa^0.5,
    each network trained until its error reaches L = 1e-4.  Reduced to 3 networks and kappa = 0.01, 0.1,
    1 (2e4 steps): every network reaches 1e-4, the trained free power falls with kappa, and training
    takes longer near k_min (kappa = 0.01) than at kappa = 0.1.  The full run (11 kappa from 1e-3 to
    10, 10 networks, 1e6 steps) gives the exponent near k_min and the energy minimum
    (docs/validation.md)."""
    sets = []
    for kappa in (0.01, 0.1, 1.0):
        sets.append(run("stern2024_kappa.toml", f"sweep.kappa=[{kappa}]", f"learning.alpha={0.5 * kappa ** 0.5}",
                        "learning.k_min=1e-3", "learning.k_max=10.0", "run.steps=20000", "run.realizations=3",
                        "control.early_stop=true", "control.tolerance=1e-4").isel(kappa=0))
    times = np.array([ds.tolerance_time.values for ds in sets])
    assert np.isfinite(times).all(), times
    power = np.array([final(ds.free_power).median("realization") for ds in sets])
    assert (np.diff(power) > 0).all(), power
    assert np.median(times[0]) > np.median(times[1]), times


def _times_at_high_kappa(exponent):
    kappas = (0.1, 0.3, 1.0)
    times = [np.median(run("stern2024_kappa.toml", f"sweep.kappa=[{kappa}]", f"learning.alpha={0.5 * kappa ** exponent}",
                           "run.steps=40000", "run.realizations=4").tolerance_time.values) for kappa in kappas]
    return loglog_slope(kappas, times)


def test_stern_training_time_is_flat_at_high_kappa_only_when_alpha_scales_with_kappa():
    """Why edgesim's Fig. 1 training time is not flat at high kappa (docs/validation.md): the update
    dk does not depend on kappa, so the relative rate alpha / kappa sets the speed.  With alpha ~ kappa
    the dynamics are scale invariant and the time to L = 1e-4 is flat (kappa = 0.1..1); with the
    alpha ~ kappa^0.5 of the reproduction it grows as kappa^0.5."""
    assert abs(_times_at_high_kappa(1.0)) < 0.1
    assert 0.4 < _times_at_high_kappa(0.5) < 0.6


def test_stern_power_reduction_scales_with_kappa_as_published():
    """Stern et al. 2024, Fig. 6: the power reduction P_F(0) - P_F(lambda) grows as kappa^0.5 at lambda = 1e-8
    and as kappa at lambda = 1e-4.  Reduced to 3 kappa, 2 networks and 5000 steps (the full run: 6 kappa,
    10 networks, 1e5 steps); the exponents within 20 %, the report's criterion."""
    kappas = (0.03, 0.3, 3.0)
    reduction = {1e-8: [], 1e-4: []}
    for kappa in kappas:
        ds = run("stern2024_lambda.toml", f"learning.kappa={kappa}", f"learning.alpha={0.5 * kappa ** 0.5}",
                 "learning.k_min=1e-3", "learning.k_max=10.0", "run.steps=5000", "run.realizations=2",
                 "sweep.lambda=[0.0, 1e-8, 1e-4]")
        power = final(ds.free_power)
        for lam in reduction:
            reduction[lam].append(float((power.sel({"lambda": 0.0}) - power.sel({"lambda": lam})).median()))
    assert 0.4 <= loglog_slope(kappas, reduction[1e-8]) <= 0.6, reduction
    assert 0.8 <= loglog_slope(kappas, reduction[1e-4]) <= 1.2, reduction


# --- Dillavou et al. 2022 (discrete sign rule) --------------------------------------------------


def test_dillavou_divider_tracks_changing_target():
    ds = run("dillavou2022_divider.toml")
    out = ds.output_free.isel(realization=0, output=0, example=0)
    want = ds.output_desired.isel(realization=0, output=0, example=0)
    steps = ds.step.values
    per = 100
    for phase_end in range(per, int(steps[-1]) + 1, per):
        # the step just before the target switches: the divider has settled on the target
        i = int(np.searchsorted(steps, phase_end - 2))
        assert abs(float(out[i] - want[i])) < 0.05, (phase_end, float(out[i]), float(want[i]))


@pytest.mark.xfail(strict=True, reason="edgesim's noise-free sign rule with 128 taps on its 16-edge layout stalls at "
                                        "3.2e-4 (tap quantisation; docs/validation.md)")
def test_dillavou_allostery_error_falls_four_orders():
    """Dillavou et al. 2022: the laboratory allostery error fell by more than four orders of magnitude.

    This is the published scale (400 steps), and edgesim does not reach it: the error stops at
    3.2e-4 of its initial value after about 200 steps.  The next test shows why.
    """
    ds = run("dillavou2022_allostery.toml")
    assert final(normalized_error(ds)).item() < 1e-4


def test_dillavou_allostery_floor_is_the_tap_quantisation():
    """Why the allostery test above falls short: with 128 taps the sign rule reaches a floor (the same
    error at 400 and at 1000 steps, 3.5 orders down); with 8x finer taps (1024, same range) the same
    network passes the paper's four orders by 1000 steps."""
    coarse = normalized_error(run("dillavou2022_allostery.toml", "run.steps=1000")).isel(realization=0)
    assert float(coarse.sel(step=400)) == float(coarse.sel(step=1000))
    assert float(coarse.sel(step=1000)) < 1e-3
    fine = run("dillavou2022_allostery.toml", "run.steps=1000", "learning.taps.n_taps=1024",
               "learning.taps.low=97.65625")
    assert final(normalized_error(fine)).item() < 1e-4


def test_dillavou_regression_test_error_falls_1e2():
    """Dillavou et al. 2022: the test error of the 400/20 regression fell by more than two orders
    (the published scale: 2000 online steps; the full run gives 5e-3)."""
    ds = run("dillavou2022_regression.toml")
    ratio = final(normalized_error(ds, "error_test")).item()
    assert ratio < 1e-2, ratio


def test_dillavou_iris_accuracy_over_95_percent():
    """Dillavou et al. 2022: over 95 % test accuracy with 30 training flowers.  The published protocol
    (100 epochs of 30 flowers) on 5 random draws of the training flowers: the median test accuracy
    is over 0.95 (the full run's 10 draws: median 0.958, range 0.933-0.967)."""
    ds = run("dillavou2022_iris.toml", "run.realizations=5")
    assert float(final(ds.accuracy_test).median()) > 0.95
    assert float(final(ds.accuracy_train).median()) > 0.95


def test_dillavou_seven_tasks_in_succession_are_each_learned():
    """Dillavou et al. 2022: one network learns task after task without a reset.  Seven allostery tasks
    (as shipped, 400 steps each; the paper's own tasks are not in the sources available to edgesim):
    every task's error falls by more than two orders of magnitude.  The allostery criterion of four
    orders is not met by any of them, for the reason the allostery tests below show (the tap floor)."""
    ds = run("dillavou2022_seven_tasks.toml")
    ratio = (ds.phase_error_end / ds.phase_error_start).values.ravel()
    assert ratio.size == 7
    assert (ratio < 1e-2).all(), ratio


def test_stern_iris_accuracy_unaffected_at_lambda_1e7_with_twice_lower_power():
    """Stern et al. 2024, Fig. 7: Iris on N = 64 networks keeps its accuracy up to lambda ~ 1e-7 while the
    free power falls about 2x.  Reduced to 5 of the 100 networks (2e4 steps, as the full run): the
    median test accuracy at lambda = 1e-7 equals lambda = 0's within one flower in 100, and lambda
    lowers the free power of every network.  The gain of single networks scatters from 1.03 to 2.7
    here, too widely for 5 networks to test "about 2"; the full run's median over 100 networks is in
    docs/validation.md."""
    ds = run("stern2024_iris.toml", "run.realizations=5", "sweep.lambda=[0.0, 1e-7]")
    acc = final(ds.accuracy_test).median("realization")
    assert float(acc.sel({"lambda": 1e-7})) >= float(acc.sel({"lambda": 0.0})) - 0.01
    assert float(acc.sel({"lambda": 0.0})) > 0.9
    gain = (final(ds.free_power).sel({"lambda": 0.0}) / final(ds.free_power).sel({"lambda": 1e-7})).values
    assert (gain > 1).all(), gain


# --- autonomous edges (engine scenarios) ---------------------------------------------------------


def test_leaky_memory_destroys_learning_when_leak_is_fast():
    ds = run("leaky_memory.toml", "engine.kind=vectorized", "sweep.leak_time=[inf, 10.0, 0.01]")
    err = final(normalized_error(ds)).isel(realization=0).values
    assert err[0] < 1e-12  # no leak: learns to machine precision
    assert err[1] < 1e-4  # slow leak: a small error floor
    assert err[2] > 0.5  # fast leak: nothing is learned
    # the fast leak drains every gate: conductances collapse toward k_min
    k = ds.conductance.isel(realization=0, conductance_step=-1)
    assert float(k.isel(leak_time=2).max()) < 0.1 * float(k.isel(leak_time=0).median())


@pytest.mark.parametrize("scenario", ["desync.toml", "desync_taps.toml"])
def test_desynchronous_edges_learn_as_well_at_equal_updates(scenario):
    """Wycoff et al. 2022: desynchronous edges (each acting with probability p per tick) reach the
    synchronous error at equal updates per edge.  1500 of the published 2000 ticks, compared at 100-150
    expected updates per edge as the full run (whose ratios are 0.99-1.64, docs/validation.md)."""
    from edgesim.analysis import error_at_updates

    ds = run(scenario, "run.steps=1500", "engine.kind=vectorized")
    # Sign-rule trajectories jump by whole taps: average the error geometrically over a range of effort.
    table = geometric_mean(error_at_updates(ds, [100, 125, 150]).isel(realization=0), "updates")
    print(scenario, dict(zip(ds.update_probability.values, table.values)))
    assert (table < 0.02).all(), table.values  # every update probability learns
    synchronous = float(table.sel(update_probability=1.0))
    for p in (0.5, 0.1):
        # at equal expected updates per edge: the synchronous error within a factor 2 (the report's criterion)
        assert float(table.sel(update_probability=p)) <= 2 * synchronous, table.values
