"""The autonomous-edge engines: one semantics, two implementations, and the synchronous limit.

* the per-edge engine (one simpy process per edge) and the vectorised engine
  (edge arrays, batched settle windows, cohorts) give bit-identical records
  with every hardware imperfection switched on, with and without settling;
* with ideal synchronous clocks both reproduce the plain synchronous trainer;
* results do not depend on how edges are split into cohorts, on the order in
  which simpy runs same-instant events, nor on the order of random draws;
* the scenario path (TOML -> run_scenario) gives the same dataset for both
  engines and matches the synchronous trainer.
"""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import edgesim.engine.per_edge as per_edge_mod
import edgesim.engine.simulate as simulate_mod
import edgesim.engine.vectorized as vectorized_mod
from edgesim import seeding
from edgesim.engine.edges import EdgeModel
from edgesim.config import EngineConfig
from edgesim.hardware import ClockSpec, ComparatorSpec, HardwareSpec, MemorySpec, preset, with_overrides
from edgesim.network import jammed_network, lab_network
from edgesim.rules import TapLadder
from edgesim.runner import run_scenario
from edgesim.scenario import ScenarioError, load_scenario
from edgesim.tasks import edge_regression, node_allostery, node_regression
from edgesim.trainer import LearningConfig, train_synchronous
from engine_support import run_engine

ALLOSTERY = "scenarios/dillavou2022_allostery.toml"
#: Every field of an EngineRecord that depends on the dynamics.
FIELDS = ("error_train", "error_test", "conductance", "update_count", "training_energy", "training_energy_total",
          "free_power", "clamped_power", "edge_events", "alive_edges", "output_free", "output_desired")


def lab_allostery():
    return node_allostery(lab_network(), {0: 5.0, 8: 1.0}, {3: 3.0, 5: 3.0, 7: 3.0}, ground=2)


def lab_regression(n_train=4, n_test=4):
    return node_regression(lab_network(), [0, 8], [3, 5], 2, [[0.15, 0.2], [0.25, 0.1]],
                           np.random.default_rng(1), n_train=n_train, n_test=n_test)


def assert_identical(a, b, fields=FIELDS):
    for name in fields:
        x, y = getattr(a, name), getattr(b, name)
        if x is None or y is None:
            assert x is None and y is None, name
            continue
        assert np.array_equal(x, y, equal_nan=True), f"{name} differs"


# ---------------------------------------------------------------------------
# 1. per-edge == vectorised, bit for bit
# ---------------------------------------------------------------------------

def scenario_clock():
    """Ideal memory, every clock imperfection, noisy comparators, desynchronous gating.

    Gating at p = 0.2 keeps the run fast: a tick that does not act changes
    nothing, so the shared solver refreshes only after the ~2000 updates.
    """
    hw = HardwareSpec(clock=ClockSpec(period=1.0, drift_std=0.05, phase="random", jitter_std=0.1,
                                      update_probability=0.2),
                      comparator=ComparatorSpec(offset_std=0.005, noise_std=0.005))
    return dict(task=lab_regression(), hw=hw, k0=np.ones(16), period=1.0, max_rank=4,
                learning=dict(alpha=0.01, eta=0.1, lam=1e-3))


def scenario_taps():
    """Digital potentiometers with ladder mismatch, twin mismatch, comparator offsets and noise, gating.

    Synchronous clocks: every instant has 16 simultaneous ticks reading one equilibrium.
    """
    hw = HardwareSpec(clock=ClockSpec(period=1.0, update_probability=0.5),
                      comparator=ComparatorSpec(offset_std=0.01, noise_std=0.01),
                      memory=MemorySpec(kind="taps", step_mismatch_std=0.03, twin_mismatch_std=0.02))
    return dict(task=lab_allostery(), hw=hw, k0=np.full(16, 1.25e-5), period=1.0, max_rank=16,
                learning=dict(alpha=0.5, eta=0.1, lam=0.0, deadband=0.002))


def scenario_capacitor():
    """Transistor edges: leaky gate capacitors (spread of leak times and biases), jitter, drift,
    random phases, gating, comparator offsets and twin mismatch."""
    hw = with_overrides(preset("transistor2024"),
                        dict(phase="random", jitter_std=5e-5, drift_std=0.01, update_probability=0.3),
                        dict(offset_std=0.002),
                        dict(leak_time=0.02, leak_time_spread=0.3, bias_voltage=1.5, bias_spread=0.05,
                             twin_mismatch_std=0.02))
    return dict(task=lab_allostery(), hw=hw, k0=np.full(16, 5e-4), period=1e-3, max_rank=0,
                learning=dict(alpha=0.5, eta=0.1, lam=0.0, k_min=1e-7, k_max=1e-2))


SCENARIOS = {"clock": scenario_clock, "taps": scenario_taps, "capacitor": scenario_capacitor}


def run_scenario_engine(sc, kind, settle_periods, *, periods=650, n_rec=66, seed=7, cohorts=1):
    P = sc["period"]
    config = EngineConfig(kind=kind, settle_time=settle_periods * P, supervisor_period=P,
                          max_rank=sc["max_rank"], cohorts=cohorts)
    return run_engine(sc["task"], sc["hw"], config, sc["k0"], np.linspace(0.0, periods * P, n_rec), seed=seed,
                      **sc["learning"])


@pytest.mark.parametrize("name, settle_periods", [
    ("clock", 0.0), ("clock", 0.5),
    ("taps", 0.0), ("taps", 2.5),
    ("capacitor", 0.0), ("capacitor", 1.5),
])
def test_per_edge_and_vectorized_engines_are_bit_identical(name, settle_periods):
    sc = SCENARIOS[name]()
    rec_p, info_p = run_scenario_engine(sc, "per_edge", settle_periods)
    rec_v, info_v = run_scenario_engine(sc, "vectorized", settle_periods)
    assert info_p["engine"] == "per_edge" and info_v["engine"] == "vectorized"
    assert info_p["events"] == info_v["events"] >= 10_000
    assert_identical(rec_p, rec_v)
    # The solver did the same work, so the two engines saw the same sequence of equilibria.
    assert info_p["refactorizations"] == info_v["refactorizations"]
    assert info_p["low_rank_updates"] == info_v["low_rank_updates"]
    # Not a trivial run: edges updated (gated), and the network learned something.
    p = sc["hw"].clock.update_probability
    updates = rec_p.update_count[-1].sum()
    assert abs(updates / info_p["events"] - p) < 0.05
    assert rec_p.error_train[-1] < 0.9 * rec_p.error_train[0]


def test_settling_changes_the_trajectory():
    """settle_time is not a no-op: stale reads give a different (but engine-independent) trajectory."""
    sc = scenario_clock()
    fast, _ = run_scenario_engine(sc, "vectorized", 0.0, periods=200, n_rec=11)
    slow, _ = run_scenario_engine(sc, "vectorized", 3.0, periods=200, n_rec=11)
    assert not np.array_equal(fast.conductance[-1], slow.conductance[-1])
    # Same ticks, same gate draws: the number of updates does not depend on settling.
    assert np.array_equal(fast.update_count, slow.update_count)


# ---------------------------------------------------------------------------
# 2. Ideal synchronous clocks reproduce the synchronous trainer
# ---------------------------------------------------------------------------

def sync_case(name):
    if name == "stern_coupled_full":
        task = edge_regression(jammed_network(64, 1), np.random.default_rng(0))
        return (task, LearningConfig(), HardwareSpec(), np.ones(task.network.n_edges), "full", 60,
                dict(alpha=0.5, eta=1e-3, lam=0.0))
    if name == "lab_sign_rule":
        ladder = TapLadder()
        return (lab_allostery(), LearningConfig(rule="sign", taps=ladder),
                HardwareSpec(memory=MemorySpec(kind="taps")), np.full(16, 1.25e-5), "full", 150,
                dict(alpha=0.5, eta=0.1, lam=0.0))
    if name == "lab_online_regression":
        return (lab_regression(n_train=5, n_test=4), LearningConfig(batch="online"), HardwareSpec(), np.ones(16),
                "online", 100, dict(alpha=0.05, eta=0.1, lam=1e-3))
    raise KeyError(name)


SYNC_SERIES = ("error_train", "error_test", "free_power", "clamped_power", "training_energy",
               "training_energy_total")


@pytest.mark.parametrize("name", ["stern_coupled_full", "lab_sign_rule", "lab_online_regression"])
def test_ideal_synchronous_clocks_reproduce_the_trainer(name):
    """Record time t = s * period is trainer step s (state after s updates, energy over s steps).

    ``max_rank = 0`` refactors after every change, as the trainer does; see
    the next test for the low-rank path.
    """
    task, config, hw, k0, batch, steps, kw = sync_case(name)
    assert hw.clock == ClockSpec(period=1.0)  # ideal: period 1 s, synchronous phase, no jitter/drift/gating
    h = train_synchronous([task], config, steps, [k0], record_at=np.arange(steps + 1), **kw)
    records = {}
    for kind in ("per_edge", "vectorized"):
        engine = EngineConfig(kind=kind, supervisor_period=1.0, max_rank=0)
        rec, info = run_engine(task, hw, engine, k0, np.arange(steps + 1) * 1.0, seed=11, batch=batch, **kw)
        assert info["events"] == steps * task.network.n_edges
        for series in SYNC_SERIES:
            np.testing.assert_allclose(getattr(rec, series), getattr(h, series)[0], rtol=1e-12, atol=0,
                                       err_msg=f"{kind}: {series}")
        np.testing.assert_allclose(rec.conductance, h.conductance[0], rtol=1e-12, atol=0)
        # Every edge updates on every tick.
        assert (rec.update_count == np.arange(steps + 1)[:, None]).all()
        records[kind] = rec
    assert_identical(records["per_edge"], records["vectorized"])
    # Not trivial: it learned.
    assert h.error_train[0, -1] < 0.9 * h.error_train[0, 0]


@pytest.mark.parametrize("name, settle_time, periods", [
    ("stern_coupled_full", 0.0, 10), ("stern_coupled_full", 0.05, 20),
    ("lab_sign_rule", 0.0, 150), ("lab_online_regression", 0.05, 100)])
def test_low_rank_updates_match_refactoring_every_state(name, settle_time, periods):
    """Random phases: edges tick one at a time, so each state differs from the last factorization in a
    few edges and is kept as a Woodbury correction (max_rank = 16); the trajectory equals the one that
    refactors every state (max_rank = 0) to round-off.  (Synchronous clocks change every edge at once,
    past max_rank, so they never take the low-rank path.)"""
    task, _, hw, k0, batch, _, kw = sync_case(name)
    hw = HardwareSpec(clock=ClockSpec(period=1.0, phase="random"), memory=hw.memory)
    times = np.arange(periods + 1) * 1.0
    low, info_low = run_engine(task, hw, EngineConfig(kind="vectorized", settle_time=settle_time), k0, times,
                               seed=11, batch=batch, **kw)
    ref, info_ref = run_engine(task, hw, EngineConfig(kind="vectorized", settle_time=settle_time, max_rank=0),
                               k0, times, seed=11, batch=batch, **kw)
    assert info_ref["low_rank_updates"] == 0
    assert info_low["low_rank_updates"] > info_low["refactorizations"] > 0
    assert info_low["refactorizations"] < info_ref["refactorizations"]
    assert info_low["guard_refactorizations"] == 0 and info_low["largest_residual"] < 1e-12
    assert info_low["events"] == info_ref["events"] == periods * task.network.n_edges
    for series in ("error_train", "error_test", "free_power", "clamped_power", "training_energy"):
        np.testing.assert_allclose(getattr(low, series), getattr(ref, series), rtol=1e-10, atol=0, err_msg=series)
    np.testing.assert_allclose(low.conductance, ref.conductance, rtol=1e-9, atol=0)
    np.testing.assert_array_equal(low.update_count, ref.update_count)
    np.testing.assert_array_equal(low.edge_events, ref.edge_events)
    assert ref.error_train[-1] < 0.99 * ref.error_train[0]  # it learned (Stern: ~1.5 % in 10 periods)


# ---------------------------------------------------------------------------
# 3. Order independence
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, settle_periods", [("clock", 0.5), ("taps", 0.0), ("capacitor", 1.5)])
def test_cohort_split_does_not_change_the_output(name, settle_periods):
    sc = SCENARIOS[name]()
    base, _ = run_scenario_engine(sc, "vectorized", settle_periods, periods=120, n_rec=13)
    for cohorts in (3, 7):
        split, info = run_scenario_engine(sc, "vectorized", settle_periods, periods=120, n_rec=13, cohorts=cohorts)
        assert_identical(base, split)
    assert base.update_count[-1].sum() > 0


def _tick_log(monkeypatch):
    """Record the order in which edges tick (edge ids per call of EdgeModel.tick)."""
    log = []
    original = EdgeModel.tick

    def tick(self, state, edges, times, physics):
        log.append((float(times[0]), tuple(int(e) for e in edges)))
        return original(self, state, edges, times, physics)

    monkeypatch.setattr(EdgeModel, "tick", tick)
    return log


def _shuffled_per_edge_starter(seed):
    def start(env, ctx):
        for e in np.random.default_rng(seed).permutation(ctx.physics.network.n_edges):
            env.process(per_edge_mod.edge_agent(env, ctx, int(e)))
    return start


def _shuffled_vectorized_starter(seed):
    def start(env, ctx, n_cohorts=1):
        edges = np.random.default_rng(seed).permutation(ctx.physics.network.n_edges)
        for members in np.array_split(edges, max(1, min(n_cohorts, edges.size))):
            env.process(vectorized_mod.cohort(env, ctx, np.sort(members) if seed % 2 else members))
    return start


@pytest.mark.parametrize("settle_periods", [0.0, 2.5])
def test_order_of_same_instant_events_does_not_matter(monkeypatch, settle_periods):
    """Start the edge processes in random orders: simpy then runs the 16 simultaneous ticks
    of every instant in a different order, yet every record is bit-identical."""
    sc = scenario_taps()
    log = _tick_log(monkeypatch)
    base, _ = run_scenario_engine(sc, "per_edge", settle_periods, periods=120, n_rec=13)
    first_instant = [e for t, (e,) in log if t == 0.0]
    assert first_instant == list(range(16))
    for perm_seed in (1, 2):
        log.clear()
        starter = _shuffled_per_edge_starter(perm_seed)
        # simulate() binds start_per_edge at import, so patch the name it uses as well.
        monkeypatch.setattr(per_edge_mod, "start_per_edge", starter)
        monkeypatch.setattr(simulate_mod, "start_per_edge", starter)
        shuffled, _ = run_scenario_engine(sc, "per_edge", settle_periods, periods=120, n_rec=13)
        order = [e for t, (e,) in log if t == 0.0]
        assert sorted(order) == list(range(16)) and order != first_instant  # the order really changed
        assert_identical(base, shuffled)
    assert base.update_count[-1].sum() > 0 and base.error_train[-1] < base.error_train[0]


def test_order_of_cohorts_and_their_members_does_not_matter(monkeypatch):
    """Cohorts of scattered (not contiguous) edges, started in random order, same result."""
    sc = scenario_clock()
    base, _ = run_scenario_engine(sc, "vectorized", 0.5, periods=120, n_rec=7)
    for perm_seed in (3, 4):
        starter = _shuffled_vectorized_starter(perm_seed)
        monkeypatch.setattr(vectorized_mod, "start_vectorized", starter)
        monkeypatch.setattr(simulate_mod, "start_vectorized", starter)
        shuffled, _ = run_scenario_engine(sc, "vectorized", 0.5, periods=120, n_rec=7, cohorts=5)
        assert_identical(base, shuffled)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**64 - 1),
       pairs=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 2**40)), min_size=1, max_size=40),
       perm_seed=st.integers(0, 1000))
def test_counter_based_draws_are_pure_functions_of_edge_and_counter(seed, pairs, perm_seed):
    edges = np.array([p[0] for p in pairs], dtype=np.int64)
    counters = np.array([p[1] for p in pairs], dtype=np.int64)
    for draw in (seeding.uniform, seeding.normal):
        together = draw(seed, "comparator noise", edges, counters)
        one_by_one = np.concatenate([draw(seed, "comparator noise", [e], [c]) for e, c in zip(edges, counters)])
        assert np.array_equal(together, one_by_one)
        perm = np.random.default_rng(perm_seed).permutation(len(pairs))
        assert np.array_equal(draw(seed, "comparator noise", edges[perm], counters[perm]), together[perm])
        # Grid broadcasting gives the same numbers as the flat pairs.
        grid = draw(seed, "comparator noise", edges[:, None], counters[None, :])
        assert np.array_equal(np.diag(grid), together)
    u = seeding.uniform(seed, "clock jitter", edges, counters)
    assert ((u > 0) & (u < 1)).all()


def test_counter_based_draws_depend_on_every_key():
    e, c = np.arange(1000), np.arange(1000)
    base = seeding.uniform(5, "update gate", e, c)
    for other in (seeding.uniform(6, "update gate", e, c), seeding.uniform(5, "comparator noise", e, c),
                  seeding.uniform(5, "update gate", e + 1, c), seeding.uniform(5, "update gate", e, c + 1)):
        assert np.mean(base == other) < 0.01
    # Roughly uniform and independent of neighbouring keys.
    big = seeding.uniform(5, "update gate", np.arange(100)[:, None], np.arange(1000)[None, :])
    assert abs(big.mean() - 0.5) < 0.005 and abs(big.var() - 1 / 12) < 0.002
    assert abs(np.corrcoef(big[:, :-1].ravel(), big[:, 1:].ravel())[0, 1]) < 0.01
    z = seeding.normal(5, "clock jitter", np.arange(100)[:, None], np.arange(1000)[None, :])
    assert abs(z.mean()) < 0.02 and abs(z.std() - 1) < 0.02


def test_same_seed_same_output_and_seed_matters():
    sc = scenario_clock()
    a, _ = run_scenario_engine(sc, "vectorized", 0.5, periods=100, n_rec=6, seed=1)
    b, _ = run_scenario_engine(sc, "vectorized", 0.5, periods=100, n_rec=6, seed=1)
    c, _ = run_scenario_engine(sc, "vectorized", 0.5, periods=100, n_rec=6, seed=2)
    assert_identical(a, b)
    assert not np.array_equal(a.conductance[-1], c.conductance[-1])


@pytest.mark.parametrize("kind", ["per_edge", "vectorized"])
def test_progress_slicing_does_not_change_the_output(kind):
    """A progress callback (called by the recorder at each record) does not change the records."""
    sc = scenario_clock()
    config = EngineConfig(kind=kind, settle_time=0.5, max_rank=sc["max_rank"])
    times = np.linspace(0.0, 97.3, 7)
    plain, _ = run_engine(sc["task"], sc["hw"], config, sc["k0"], times, seed=3, **sc["learning"])
    seen = []
    sliced, _ = run_engine(sc["task"], sc["hw"], config, sc["k0"], times, seed=3, progress=seen.append,
                           **sc["learning"])
    assert_identical(plain, sliced)
    assert len(seen) == len(times) and np.isclose(sum(seen), 97.3)


# ---------------------------------------------------------------------------
# Engine configuration
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    (dict(kind="warp"), "engine.kind"),
    (dict(settle_time=-1e-3), "engine.settle_time"),
    (dict(cohorts=0), "engine.cohorts"),
    (dict(max_rank=-1), "engine.max_rank"),
    (dict(supervisor_period=0.0), "engine.supervisor_period"),
    (dict(lowrank_tolerance=0.0), "engine.lowrank_tolerance"),
])
def test_bad_engine_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EngineConfig(**kwargs)


def test_auto_engine_choice():
    assert EngineConfig(kind="auto").resolved_kind(16) == "per_edge"
    assert EngineConfig(kind="auto").resolved_kind(143) == "vectorized"


# ---------------------------------------------------------------------------
# 7. The scenario path
# ---------------------------------------------------------------------------

def test_scenario_path_engines_agree_and_match_the_trainer():
    runs = {kind: run_scenario(load_scenario(ALLOSTERY, [f"engine.kind={kind}", "run.steps=100"]))
            for kind in ("per_edge", "vectorized", "synchronous")}
    per_edge, vectorized, sync = runs["per_edge"], runs["vectorized"], runs["synchronous"]
    assert per_edge.attrs["engine"] == "per_edge" and vectorized.attrs["engine"] == "vectorized"
    assert set(per_edge.data_vars) == set(vectorized.data_vars)
    for name in per_edge.data_vars:
        assert np.array_equal(per_edge[name].values, vectorized[name].values, equal_nan=True), name
    for name in sync.data_vars:
        a, b = per_edge[name].values, sync[name].values
        if a.dtype.kind == "f":
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15, err_msg=name)
        else:
            assert np.array_equal(a, b), name
    assert per_edge.error_train[0, -1] < 0.01 * per_edge.error_train[0, 0]
    # Engine-only variables, with units.
    units = {"alive_edges": "1", "update_count": "1", "edge_events": "1", "clock_period": "s",
             "clock_phase": "s", "comparator_offset": "V", "edge_leak_time": "s"}
    for name, unit in units.items():
        assert name in per_edge.data_vars, name
        assert per_edge[name].attrs["units"] == unit, name
        assert "long_name" in per_edge[name].attrs
    assert (per_edge.alive_edges == 16).all()
    assert per_edge.update_count.dims[-2:] == ("conductance_step", "edge")
    # The ideal preset with run.step_duration = 0.25 s: every edge ticked and updated once per step.
    assert np.array_equal(per_edge.update_count[0, :, :].values,
                          np.broadcast_to(per_edge.conductance_step.values[:, None], (len(per_edge.conductance_step), 16)))
    assert np.array_equal(per_edge.edge_events[0].values, 16 * per_edge.step.values)
    np.testing.assert_array_equal(per_edge.clock_period[0], 0.25)
    np.testing.assert_array_equal(per_edge.clock_phase[0], 0.0)
    np.testing.assert_array_equal(per_edge.comparator_offset[0], 0.0)
    assert np.isinf(per_edge.edge_leak_time[0]).all()


def test_scenario_hardware_reaches_the_engine():
    """Scenario [clock]/[comparator]/[memory] keys change the per-edge parameters recorded."""
    ds = run_scenario(load_scenario(ALLOSTERY, [
        "engine.kind=vectorized", "run.steps=40", "engine.hardware=digipot2022", "clock.drift_std=0.02",
        "clock.phase='random'", "comparator.offset_std=0.01", "clock.update_probability=0.5"]))
    period = ds.clock_period[0].values
    assert np.all(period != 0.25) and abs(period.mean() / 0.25 - 1) < 0.02
    assert ((ds.clock_phase[0] >= 0) & (ds.clock_phase[0] < period)).all()
    assert ds.comparator_offset[0].std() > 0
    updates = ds.update_count[0, -1].values
    events = int(ds.edge_events[0, -1])
    assert 0.3 < updates.sum() / events < 0.7


@pytest.mark.parametrize("override", ["sweep.update_probability=[0.1, 1.0]", "comparator.noise_std=0.5",
                                      "memory.leak_time=1.0", "engine.hardware='digipot2022'"])
def test_synchronous_engine_rejects_engine_only_hardware_settings(override):
    with pytest.raises(ScenarioError, match="engine.kind"):
        load_scenario(ALLOSTERY, ["run.steps=20", override])
