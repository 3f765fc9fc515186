"""Edge hardware physics in the engines: leaky capacitors, clocks, comparator noise,
desynchronous gating and learning, twin mismatch, and validation of hardware inputs."""

import tomllib

import numpy as np
import pytest

from edgesim.engine.edges import EdgeModel
from edgesim.config import EngineConfig, LearningConfig
from edgesim.hardware import (PRESETS, ClockSpec, ComparatorSpec, HardwareSpec, MemorySpec, acts, edge_parameters,
                              preset, tick_times, with_overrides)
from edgesim.network import lab_network
from edgesim.scenario import ScenarioError, apply_overrides, load_scenario, parse_scenario
from engine_support import run_engine

#: The conductance range of the transistor2024 element (edgesim.config.PRESET_LEARNING).
TRANSISTOR_RANGE = dict(k_min=1e-7, k_max=1e-2)

ALLOSTERY = "scenarios/dillavou2022_allostery.toml"


def lab_allostery():
    from edgesim.tasks import node_allostery
    return node_allostery(lab_network(), {0: 5.0, 8: 1.0}, {3: 3.0, 5: 3.0, 7: 3.0}, ground=2)


def all_ticks(params, jitter_std, seed, n_edges, n_ticks):
    """Times of ticks 0..n_ticks-1 of every edge; a tick before t = 0 never happens (NaN)."""
    t = tick_times(params, jitter_std, seed, np.arange(n_edges)[:, None], np.arange(n_ticks)[None, :])
    return np.where(t >= 0, t, np.nan)


# ---------------------------------------------------------------------------
# 4a. Leaky gate capacitor
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["per_edge", "vectorized"])
@pytest.mark.parametrize("clock", ["synchronous", "random_jittered"])
def test_leaky_capacitor_relaxes_with_its_time_constant(kind, clock):
    """No learning signal (pump gain 1e-300): each gate voltage relaxes to its bias,
    ``V(t) = V_b + (V0 - V_b) exp(-t / tau)``, so ``k = S (V - V_T)``.

    The state changes at the edge's ticks; a record at ``t`` shows the state
    after the last tick strictly before ``t``.
    """
    P = 1e-3
    clock_keys = dict(phase="synchronous") if clock == "synchronous" else \
        dict(phase="random", jitter_std=0.1 * P, drift_std=0.02)
    hw = with_overrides(preset("transistor2024"), clock_keys, {},
                        dict(leak_time=20 * P, leak_time_spread=0.3, bias_voltage=1.5, bias_spread=0.05,
                             pump_gain=1e-300))
    seed, E = 3, 16
    k0 = np.linspace(2e-4, 1.6e-3, E)
    # Synchronous: records exactly at tick times (they show the previous tick).
    times = np.arange(61) * P if clock == "synchronous" else np.linspace(0.0, 60 * P, 121)
    rec, info = run_engine(lab_allostery(), hw, EngineConfig(kind=kind, supervisor_period=P), k0, times, seed=seed,
                         alpha=0.5, eta=0.1, lam=0.0, **TRANSISTOR_RANGE)
    mem = hw.memory
    params = edge_parameters(hw, seed, E)
    tau, bias = params.leak_time, params.bias
    np.testing.assert_array_equal(rec.edge_leak_time, tau)
    assert tau.std() > 0 and bias.std() > 0  # per-edge spreads are in play
    v0 = mem.threshold + k0 / mem.transconductance
    ticks = all_ticks(params, hw.clock.jitter_std, seed, E, 80)
    expected = np.empty((len(times), E))
    for i, t in enumerate(times):
        last = np.where(ticks < t, ticks, -np.inf).max(1)  # last tick strictly before t (-inf: none yet)
        v = np.where(np.isfinite(last), bias + (v0 - bias) * np.exp(-np.maximum(last, 0) / tau), v0)
        expected[i] = mem.transconductance * (v - mem.threshold)
    np.testing.assert_allclose(rec.conductance, expected, rtol=1e-9, atol=0)
    # The relaxation is large: after ~3 leak times most of the way to S (V_b - V_T).
    k_inf = mem.transconductance * (bias - mem.threshold)
    assert (np.abs(rec.conductance[-1] - k_inf) < 0.2 * np.abs(k0 - k_inf)).all()


def test_capacitor_without_leak_holds_its_charge():
    P = 1e-3
    hw = with_overrides(preset("transistor2024"), dict(phase="random", jitter_std=0.1 * P), {},
                        dict(pump_gain=1e-300))
    k0 = np.linspace(2e-4, 1.6e-3, 16)
    rec, info = run_engine(lab_allostery(), hw, EngineConfig(kind="vectorized", supervisor_period=P), k0,
                         np.linspace(0, 30 * P, 4), seed=1, alpha=0.5, eta=0.1, lam=0.0, **TRANSISTOR_RANGE)
    assert np.isinf(rec.edge_leak_time).all()
    np.testing.assert_allclose(rec.conductance, np.broadcast_to(k0, rec.conductance.shape), rtol=1e-12)
    assert (rec.update_count[-1] >= 29).all()


def test_capacitor_leaks_on_ticks_where_the_edge_does_not_act():
    P = 1e-3
    hw = with_overrides(preset("transistor2024"), dict(update_probability=0.2), {},
                        dict(leak_time=10 * P, bias_voltage=1.5, pump_gain=1e-300))
    seed, E = 3, 16
    k0 = np.linspace(2e-4, 1.6e-3, E)
    times = (np.arange(40) + 0.5) * P
    rec, _ = run_engine(lab_allostery(), hw, EngineConfig(kind="vectorized", supervisor_period=P), k0, times,
                      seed=seed, alpha=0.5, eta=0.1, lam=0.0, **TRANSISTOR_RANGE)
    mem = hw.memory
    v0 = mem.threshold + k0 / mem.transconductance
    last_tick = np.floor(times / P) * P  # synchronous clocks: ticks at n P, acting or not
    v = 1.5 + (v0[None] - 1.5) * np.exp(-last_tick[:, None] / (10 * P))
    np.testing.assert_allclose(rec.conductance, mem.transconductance * (v - mem.threshold), rtol=1e-6)


# ---------------------------------------------------------------------------
# 4b. Clocks
# ---------------------------------------------------------------------------

def test_tick_statistics_match_period_drift_and_jitter():
    P, drift, jitter = 2e-3, 0.03, 1e-4
    spec = HardwareSpec(clock=ClockSpec(period=P, drift_std=drift, phase="random", jitter_std=jitter))
    E, N, seed = 400, 2000, 17
    params = edge_parameters(spec, seed, E)
    t = tick_times(params, jitter, seed, np.arange(E)[:, None], np.arange(N + 1)[None, :])
    intervals = np.diff(t, axis=1)
    assert (intervals > 0).all()
    # Per-edge period: drift is a per-edge frequency mismatch of relative std drift_std.
    rel = params.period / P - 1
    assert abs(rel.mean()) < 4 * drift / np.sqrt(E)
    assert abs(rel.std() / drift - 1) < 4 / np.sqrt(2 * E)
    # Measured mean interval of each edge is its own period (endpoint jitter / N only).
    np.testing.assert_allclose(intervals.mean(1), params.period, rtol=0, atol=6 * np.sqrt(2) * jitter / N)
    # Independent jitter: interval std sqrt(2) * jitter, neighbouring intervals correlated -1/2.
    dev = intervals - params.period[:, None]
    assert abs(dev.std() / (np.sqrt(2) * jitter) - 1) < 0.02
    lag1 = np.mean(dev[:, 1:] * dev[:, :-1]) / dev.var()
    assert abs(lag1 + 0.5) < 0.02
    # Jitter of the tick times themselves.
    nominal = params.phase[:, None] + np.arange(N + 1)[None, :] * params.period[:, None]
    assert abs((t - nominal).std() / jitter - 1) < 0.02
    # Random phases: uniform within each edge's own period.
    assert ((params.phase >= 0) & (params.phase < params.period)).all()
    assert abs((params.phase / params.period).mean() - 0.5) < 4 * np.sqrt(1 / 12 / E)


def test_large_jitter_is_truncated_and_ticks_stay_in_order():
    P = 1.0
    spec = HardwareSpec(clock=ClockSpec(period=P, jitter_std=2.0 * P))
    params = edge_parameters(spec, 0, 50)
    t = tick_times(params, 2.0 * P, 0, np.arange(50)[:, None], np.arange(500)[None, :])
    offset = t - np.arange(500)[None, :] * P
    assert np.abs(offset).max() <= 0.45 * P * (1 + 1e-12)
    assert np.mean(np.isclose(np.abs(offset), 0.45 * P)) > 0.7  # 2 sigma jitter: mostly truncated
    assert (np.diff(t, axis=1) >= 0.1 * P - 1e-12).all()


@pytest.mark.parametrize("kind", ["per_edge", "vectorized"])
def test_engines_tick_at_the_hardware_clock_times(monkeypatch, kind):
    """Every edge ticks exactly at tick_times(n) for n = 0, 1, 2, ... (skipping a tick before t = 0)."""
    P = 1.0
    hw = HardwareSpec(clock=ClockSpec(period=P, drift_std=0.05, phase="random", jitter_std=0.2 * P,
                                      update_probability=0.3))
    seen = []
    original = EdgeModel.tick

    def tick(self, state, edges, times, physics):
        seen.append((edges.copy(), state.tick[edges].copy(), np.array(times, dtype=float)))
        return original(self, state, edges, times, physics)

    monkeypatch.setattr(EdgeModel, "tick", tick)
    seed, end = 4, 60.0
    rec, info = run_engine(lab_allostery(), hw, EngineConfig(kind=kind, settle_time=0.7), np.ones(16),
                         np.array([0.0, end]), seed=seed, alpha=0.01, eta=0.1, lam=0.0)
    edges = np.concatenate([s[0] for s in seen])
    counters = np.concatenate([s[1] for s in seen])
    times = np.concatenate([s[2] for s in seen])
    params = edge_parameters(hw, seed, 16)
    np.testing.assert_array_equal(times, tick_times(params, hw.clock.jitter_std, seed, edges, counters))
    expected = all_ticks(params, hw.clock.jitter_std, seed, 16, 100)
    for e in range(16):
        mine = np.sort(times[edges == e])
        due = expected[e][expected[e] < end]
        np.testing.assert_array_equal(mine, due[~np.isnan(due)])
    assert info["events"] == rec.edge_events[-1] == len(times)


def test_first_tick_interval_is_the_clock_interval():
    spec = HardwareSpec(clock=ClockSpec(period=1.0, jitter_std=0.3),
                        memory=MemorySpec(kind="capacitor"))
    params = edge_parameters(spec, 0, 32)
    model = EdgeModel(spec, params, 0, LearningConfig(alpha=0.5, eta=0.1, **TRANSISTOR_RANGE))
    state, _ = model.initial_state(np.full(32, 5e-4))
    e = np.arange(32)
    skipped = state.tick == 1
    assert skipped.any()
    t0 = tick_times(params, 0.3, 0, e, np.zeros(32, np.int64))
    # The clock tick before the first one the engine processes is tick 0 (at t < 0).
    np.testing.assert_allclose(state.last_tick[skipped], t0[skipped])


# ---------------------------------------------------------------------------
# 4c. Comparator noise sets an error floor
# ---------------------------------------------------------------------------

def test_comparator_noise_raises_the_error_floor():
    """Sign rule on 128-tap potentiometers: the error floor rises with the comparator noise."""
    floors = []
    for noise in (0.0, 0.02, 0.08):
        hw = HardwareSpec(comparator=ComparatorSpec(noise_std=noise), memory=MemorySpec(kind="taps"))
        rec, _ = run_engine(lab_allostery(), hw, EngineConfig(kind="vectorized"), np.full(16, 1.25e-5),
                          np.arange(701) * 1.0, seed=2, alpha=0.5, eta=0.1, lam=0.0)
        assert rec.error_train[300:].max() < 0.2 * rec.error_train[0]  # it learned before reaching the floor
        floors.append(rec.error_train[300:].mean())
    print("\ncomparator noise (V) -> mean error over t = 300..700 s:",
          ", ".join(f"{n}: {f:.2e}" for n, f in zip((0.0, 0.02, 0.08), floors)))
    assert floors[0] < floors[1] < floors[2]
    assert floors[1] > 2 * floors[0] and floors[2] > 1.5 * floors[1]


# ---------------------------------------------------------------------------
# 4d. Desynchronous gating
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["per_edge", "vectorized"])
def test_desynchronous_gating_acts_on_the_drawn_ticks(kind):
    p, seed, end = 0.3, 9, 400.0
    hw = HardwareSpec(clock=ClockSpec(period=1.0, drift_std=0.05, phase="random", update_probability=p))
    rec, info = run_engine(lab_allostery(), hw, EngineConfig(kind=kind, settle_time=0.5), np.ones(16),
                         np.array([0.0, end / 2, end]), seed=seed, alpha=0.01, eta=0.1, lam=0.0)
    params = edge_parameters(hw, seed, 16)
    ticks = all_ticks(params, 0.0, seed, 16, 500)
    n_ticks = np.zeros(16, np.int64)
    n_acts = np.zeros(16, np.int64)
    for e in range(16):
        n = np.flatnonzero(ticks[e] < end)  # ticks that happened before the last record
        n_ticks[e] = n.size
        n_acts[e] = acts(p, seed, np.full(n.size, e), n).sum()
    # Exactly the gated ticks updated ...
    np.testing.assert_array_equal(rec.update_count[-1], n_acts)
    assert info["events"] == rec.edge_events[-1] == n_ticks.sum()
    # ... and their fraction is the update probability (binomial, 4 sigma).
    frac = n_acts.sum() / n_ticks.sum()
    assert abs(frac - p) < 4 * np.sqrt(p * (1 - p) / n_ticks.sum())
    per_edge_frac = n_acts / n_ticks
    assert (np.abs(per_edge_frac - p) < 5 * np.sqrt(p * (1 - p) / n_ticks)).all()


def test_zero_update_probability_freezes_the_network():
    hw = HardwareSpec(clock=ClockSpec(update_probability=0.0))
    k0 = np.linspace(0.5, 1.5, 16)
    rec, info = run_engine(lab_allostery(), hw, EngineConfig(kind="vectorized"), k0, np.arange(21) * 1.0, seed=0,
                         alpha=0.05, eta=0.1, lam=0.0)
    assert info["events"] == 20 * 16
    assert (rec.update_count == 0).all()
    np.testing.assert_array_equal(rec.conductance, np.broadcast_to(k0, rec.conductance.shape))
    assert (rec.error_train == rec.error_train[0]).all()


# ---------------------------------------------------------------------------
# 5. Desynchronous learning (Wycoff et al. 2022)
# ---------------------------------------------------------------------------

def desync_run(p, updates_per_edge, memory, k0, alpha, checkpoints, seed=1):
    hw = HardwareSpec(clock=ClockSpec(update_probability=p), memory=memory)
    times = np.asarray(checkpoints, float) / p  # equal expected number of updates per edge
    rec, info = run_engine(lab_allostery(), hw, EngineConfig(kind="vectorized"), k0, times, seed=seed,
                         alpha=alpha, eta=0.1, lam=0.0)
    return rec


def test_desynchronous_coupled_learning_at_equal_expected_updates():
    """Coupled learning of allostery with p = 1, 0.5, 0.1; p = 0.1 runs 10x longer.

    At equal expected updates per edge the learning curves collapse (Wycoff
    et al. 2022): within a factor 3 of each other at 25..100 updates, while
    the error falls by more than two orders of magnitude.
    """
    checkpoints = np.array([0, 25, 50, 75, 100])
    errors = {}
    for p in (1.0, 0.5, 0.1):
        rec = desync_run(p, 100, MemorySpec(), np.ones(16), 0.01, checkpoints)
        assert abs(rec.update_count[-1].mean() / 100 - 1) < 0.1
        errors[p] = rec.error_train
    print("\ncoupled learning, allostery, lab network: training error vs expected updates per edge")
    print("   p   " + "".join(f"{n:>10d}" for n in checkpoints))
    for p, e in errors.items():
        print(f"{p:5.2f}  " + "".join(f"{x:10.2e}" for x in e))
    table = np.array(list(errors.values()))
    assert (table[:, 0] == table[0, 0]).all()  # same start
    assert (table[:, -1] < 1e-2 * table[:, 0]).all()  # all learn
    spread = table[:, 1:].max(0) / table[:, 1:].min(0)
    assert (spread < 3).all(), spread


def test_desynchronous_sign_rule_does_not_hurt():
    """Sign rule on taps: after convergence the error wanders around a floor set by the tap
    size; desynchronous updates (p = 0.5, 0.1) do not raise it (mean over the second half,
    equal expected updates per edge)."""
    n = 300
    checkpoints = np.linspace(0, n, 201)
    floors = {}
    for p in (1.0, 0.5, 0.1):
        rec = desync_run(p, n, MemorySpec(kind="taps"), np.full(16, 1.25e-5), 0.0, checkpoints)
        floors[p] = rec.error_train[100:].mean()
        assert rec.error_train[-1] < 1e-2 * rec.error_train[0]
    print("\nsign rule, allostery: mean error over 150..300 expected updates per edge:",
          ", ".join(f"p={p}: {f:.2e}" for p, f in floors.items()))
    assert floors[0.5] < 2 * floors[1.0]
    assert floors[0.1] < 2 * floors[1.0]


# ---------------------------------------------------------------------------
# Twin mismatch
# ---------------------------------------------------------------------------

def test_twin_mismatch_drives_learning_at_zero_error():
    """Target = the free output: identical twins see no signal; mismatched twins drift."""
    from edgesim.physics import TwinSolver, free_solution
    from edgesim.tasks import node_allostery
    net = lab_network()
    k0 = np.linspace(0.5, 1.5, 16)
    probe = node_allostery(net, {0: 5.0, 8: 1.0}, {3: 3.0, 5: 3.0, 7: 3.0}, ground=2)
    resp = TwinSolver([net], [probe.boundary]).response(k0[None])
    _, out, _ = free_solution(resp, probe.train_inputs[None])
    task = node_allostery(net, {0: 5.0, 8: 1.0}, dict(zip((3, 5, 7), out[0, :, 0])), ground=2)
    change = {}
    for mismatch in (0.0, 0.05):
        hw = HardwareSpec(memory=MemorySpec(twin_mismatch_std=mismatch))
        rec, _ = run_engine(task, hw, EngineConfig(kind="vectorized"), k0, np.arange(31) * 1.0, seed=0,
                          alpha=0.05, eta=0.1, lam=0.0)
        change[mismatch] = np.abs(rec.conductance[-1] / k0 - 1).max()
        assert rec.error_train[0] < 1e-20
    assert change[0.0] < 1e-10
    assert change[0.05] > 1e-3


# ---------------------------------------------------------------------------
# 6. Bad hardware input errors name the key
# ---------------------------------------------------------------------------

def allostery_data():
    with open(ALLOSTERY, "rb") as f:
        return tomllib.load(f)


@pytest.mark.parametrize("overrides, match", [
    (["clock.period=0"], r"clock\.period"),
    (["clock.period=-0.25"], r"clock\.period"),
    (["clock.period=nan"], r"clock\.period"),
    (["clock.update_probability=1.5"], r"clock\.update_probability"),
    (["clock.update_probability=-0.1"], r"clock\.update_probability"),
    (["sweep.update_probability=[0.5, 1.5]"], r"clock\.update_probability"),
    (["clock.jitter_std=-1e-3"], r"clock\.jitter_std"),
    (["clock.drift_std=-0.1"], r"clock\.drift_std"),
    (["clock.phase='late'"], r"clock\.phase"),
    (["clock.wobble=1"], r"clock\.wobble"),
    (["comparator.noise_std=-0.01"], r"comparator\.noise_std"),
    (["comparator.offset_std=-0.01"], r"comparator\.offset_std"),
    (["memory.leak_time=-1"], r"memory\.leak_time"),
    (["memory.leak_time=0"], r"memory\.leak_time"),
    (["memory.kind='flash'"], r"memory\.kind"),
    (["memory.kind='taps'", "learning.rule='coupled'"], r"memory\.kind.*learning\.rule"),
    (["memory.kind='capacitor'"], r"memory\.kind.*learning\.rule"),
    (["engine.hardware='nope'"], r"engine\.hardware"),
    (["engine.settle_time=-0.1"], r"engine\.settle_time"),
    (["engine.kind='warp'"], r"engine\.kind"),
    (["engine.cohorts=0"], r"engine\.cohorts"),
])
def test_bad_hardware_input_names_the_key(overrides, match):
    with pytest.raises(ScenarioError, match=match):
        parse_scenario(apply_overrides(allostery_data(), overrides))


@pytest.mark.parametrize("make, match", [
    (lambda: ClockSpec(period=0.0), r"clock\.period"),
    (lambda: ClockSpec(period=-1.0), r"clock\.period"),
    (lambda: ClockSpec(update_probability=1.5), r"clock\.update_probability"),
    (lambda: ClockSpec(update_probability=-0.1), r"clock\.update_probability"),
    (lambda: ClockSpec(phase="late"), r"clock\.phase"),
    (lambda: ComparatorSpec(noise_std=-0.01), r"comparator\.noise_std"),
    (lambda: MemorySpec(leak_time=-1.0), r"memory\.leak_time"),
    (lambda: MemorySpec(kind="flash"), r"memory\.kind"),
])
def test_bad_hardware_spec_names_the_key(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_preset_incompatible_with_rule_names_the_rule():
    with pytest.raises(ScenarioError, match=r"engine\.hardware.*learning\.rule"):
        load_scenario(ALLOSTERY, ["engine.kind=vectorized", "engine.hardware=transistor2024"])


@pytest.mark.parametrize("overrides, match", [
    (["clock.phase=[0.1, 0.2]"], r"clock\.phase"),
    (["clock.drift_std=5.0"], r"clock\.drift_std"),
])
def test_bad_per_edge_hardware_at_run_time_names_the_key(overrides, match):
    from edgesim.runner import run_scenario
    scenario = load_scenario(ALLOSTERY, ["engine.kind=vectorized", "run.steps=2"] + overrides)
    with pytest.raises(ValueError, match=match):
        run_scenario(scenario)


def test_unknown_preset_lists_the_presets():
    with pytest.raises(KeyError) as info:
        preset("nope")
    message = str(info.value)
    assert "nope" in message
    for name in PRESETS:
        assert name in message


def test_presets_and_scenario_hardware():
    assert preset("ideal") == HardwareSpec()
    digipot = preset("digipot2022")
    assert digipot.memory.kind == "taps" and digipot.clock.period == 0.25 and digipot.comparator.noise_std > 0
    assert preset("transistor2024").memory.kind == "capacitor"
    # Scenario keys override the preset; the rest comes from the preset.
    scenario = load_scenario(ALLOSTERY, ["engine.kind=vectorized", "engine.hardware=digipot2022",
                                         "clock.update_probability=0.5", "comparator.offset_std=0.003"])
    spec = scenario.hardware
    assert spec.clock.update_probability == 0.5 and spec.clock.period == 0.25
    assert spec.comparator.offset_std == 0.003 and spec.comparator.noise_std == digipot.comparator.noise_std
    assert spec.memory.kind == "taps"
