"""Transistor networks through scenarios, the trainer and the engines: configuration, errors, learning."""

import pickle
from pathlib import Path

import numpy as np
import pytest

from edgesim.analysis import xor_solved
from edgesim.build import build_system, initial_conductance
from edgesim.config import LearningConfig
from edgesim.edgelaws import TransistorLaw
from edgesim.network import transistor_lattice
from edgesim.nonlinear import NewtonError, make_twin_solver
from edgesim.physics import free_solution
from edgesim.runner import RunPlan, run_scenario
from edgesim.scenario import ScenarioError, load_scenario, parse_scenario
from edgesim.network import Network
from edgesim.tasks import best_linear_error, linear_classifier_accuracy, xor_task
from edgesim.trainer import SynchronousTraining, train_synchronous

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
XOR = SCENARIOS / "dillavou2024_xor.toml"
XOR_ENGINE = SCENARIOS / "transistor_xor_engine.toml"


def test_the_xor_scenario_round_trips_and_builds_transistor_networks():
    s = load_scenario(XOR, ["run.realizations=2"])
    assert parse_scenario(s.to_dict()) == s
    tasks = [build_system(s, r) for r in range(2)]
    law = tasks[0].network.law
    assert isinstance(law, TransistorLaw) and law.subthreshold
    assert np.all(law.transconductance == 8.5e-4) and (law.gate_min, law.gate_max) == (0.0, 8.0)
    assert tasks[0].n_train == 4 and tasks[0].boundary.outputs == ((6, 2),)  # a differential output


def test_transistor_mismatch_is_drawn_per_edge_and_seed():
    s = load_scenario(XOR, ["run.realizations=2", "edge.transconductance_spread=0.1", "edge.threshold_spread=0.02"])
    a, b = (build_system(s, r).network.law for r in range(2))
    assert a.transconductance.std() / 8.5e-4 == pytest.approx(0.1, rel=0.35)
    assert a.threshold.std() == pytest.approx(0.02, rel=0.35)
    assert not np.array_equal(a.transconductance, b.transconductance)
    np.testing.assert_array_equal(build_system(s, 0).network.law.transconductance, a.transconductance)


# -- bad input ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("override, message", [
    ("learning.kappa=1e-2", r"needs a gate voltage of .* V \(V_T \+ k / S\), outside the gate range"),
    ("edge.transconductance=-8.5e-4", r"edge.transconductance must be > 0 A/V2"),
    ("edge.transconductance=0.0", r"edge.transconductance must be > 0 A/V2"),
    ("edge.leakage_conductance=-1e-9", r"edge.leakage_conductance must be >= 0 S"),
    ("edge.gate_min=9.0", r"edge.gate_min must be below edge.gate_max"),
    ("edge.gate_max=0.5", r"edge.gate_max = 0.5 V is not above the threshold edge.threshold = 0.65 V"),
    ("edge.law='linear'", r"task.kind = 'xor' needs nonlinear edges, but edge.law is 'linear'"),
    ("edge.law='diode'", r"edge.law must be one of"),
    ("solver.backend='cg'", r"solver.backend = 'cg' cannot solve transistor networks"),
    ("edge.slope_factor=0.5", r"edge.slope_factor \(n\) must be >= 1"),
    ("task.output_nodes=[10, 11, 12]", r"task.output_nodes needs 1 or 2 node\(s\)"),
    ("task.bias_nodes=[15]", r"task.bias_voltages needs one voltage per bias node"),
    ("task.targets=[0.5]", r"task.targets must give the 2 desired output voltages of XOR"),
    ("task.input_nodes=[1, 8]", r"the ground, input, bias and output nodes must all differ"),
    ("edge.wrong=1", r"unknown key 'edge.wrong'"),
])
def test_bad_transistor_scenarios_are_refused_with_the_key_named(override, message):
    with pytest.raises(ScenarioError, match=message):
        load_scenario(XOR, [override])


def test_engine_gate_values_outside_the_gate_range_are_refused():
    with pytest.raises(ScenarioError, match=r"memory.bias_voltage = -1 V .* outside the gate range"):
        load_scenario(XOR_ENGINE, ["memory.bias_voltage=-1.0"])
    with pytest.raises(ScenarioError, match=r"memory.transconductance = 0.001 differs from edge.transconductance"):
        load_scenario(XOR_ENGINE, ["memory.transconductance=1e-3"])


def test_a_nonlinear_task_on_a_linear_network_is_refused_by_the_task_itself():
    s = load_scenario(XOR)
    with pytest.raises(ValueError, match="cannot learn"):
        parse_scenario({**s.to_dict(), "edge": {"law": "linear"}})


def test_newton_that_cannot_converge_stops_the_run_with_a_clear_message():
    s = load_scenario(XOR, ["run.steps=2", "run.realizations=1", "solver.newton_max_iterations=1"])
    with pytest.raises(NewtonError, match=r"did not converge .*Try: smaller input voltages"):
        run_scenario(s, progress=False)


# -- the trainer -------------------------------------------------------------------------------------------------
def test_gate_learning_moves_each_k_by_its_own_transconductance():
    """dk_e = S_e dV_G: with the same drops, an edge with twice the S moves twice as far."""
    rng = np.random.default_rng(0)
    S = 8.5e-4 * np.where(np.arange(32) % 2 == 0, 0.8, 1.2)
    net = transistor_lattice().with_law(TransistorLaw(transconductance=S, subthreshold=True))
    task = xor_task(net, [1, 4], [10, 11], 0, {15: 5.0}, (0.0, 5.0), (0.0, 0.5))
    k0 = 2e-3 * (1 + 0.3 * rng.uniform(-1, 1, 32))
    config = LearningConfig(alpha=1e-6, eta=0.1, k_min=1e-7, k_max=6e-3)
    h = train_synchronous([task], config, 1, [k0], record_at=np.array([0, 1]))
    dk = h.conductance[0, 1] - h.conductance[0, 0]
    state = make_twin_solver([net], [task.boundary]).response(k0[None])
    free, out, _ = free_solution(state, task.train_inputs[None])
    from edgesim.measure import clamp_values
    from edgesim.physics import clamped_solution, mean_square_drops
    clamped, _ = clamped_solution(state, np.concatenate([task.train_inputs[None],
                                                          clamp_values(out, task.train_targets[None], 0.1)], 1))
    signal = mean_square_drops(state, free)[0] - mean_square_drops(state, clamped)[0]
    np.testing.assert_allclose(dk, 1e-5 * signal * S / S.mean(), rtol=1e-9, atol=1e-20)


def test_the_gate_range_bounds_what_k_can_learn():
    net = transistor_lattice().with_law(TransistorLaw(gate_min=0.0, gate_max=3.0, subthreshold=True))
    task = xor_task(net, [1, 4], [10, 11], 0, {15: 5.0}, (0.0, 5.0), (0.0, 0.5))
    config = LearningConfig(alpha=1e-2, eta=0.1, k_min=1e-7, k_max=1.0)
    h = train_synchronous([task], config, 20, [np.full(32, 1.9e-3)], record_at=np.arange(21))
    assert np.nanmax(h.conductance) <= 8.5e-4 * (3.0 - 0.65) * (1 + 1e-12)
    assert np.nanmin(h.conductance) >= 1e-7


@pytest.mark.parametrize("backend", ["dense", "lu"])
def test_pickled_transistor_training_resumes_to_the_same_records(backend):
    """Pickled between segments (as checkpoints are), a transistor run records what one pass records: the warm
    starts travel with it, and the sparse steps' kept LU factors are factored again from their matrices."""
    s = load_scenario(XOR, ["run.steps=60", "run.realizations=2", "run.record_every=1"])
    plan = RunPlan.of(s)
    k0 = [initial_conductance(s.learning, t.network, s.run.seed, r) for r, t in enumerate(plan.tasks)]
    whole = train_synchronous(plan.tasks, s.learning, s.run.steps, k0, record_at=plan.record_steps,
                              solver_backend=backend)
    training = SynchronousTraining(plan.tasks, s.learning, s.run.steps, k0, record_at=plan.record_steps,
                                   solver_backend=backend)
    pieces = []
    for until in (7, 30, 61):
        pieces.append(training.advance(until))
        training = pickle.loads(pickle.dumps(training))
    np.testing.assert_array_equal(np.concatenate([p.error_train for p in pieces], 1), whole.error_train)
    np.testing.assert_array_equal(np.concatenate([p.free_power for p in pieces], 1), whole.free_power)


def test_xor_is_learned_in_most_realizations():
    """The shipped XOR scenario as it is (10 realizations, 2000 steps, laboratory transistors): more than half of
    the realizations separate XOR (a SPICE-based reproduction of the laboratory XOR solved 2 of 5).  The shipped
    run solves 8 of 10 (20 realizations: 15; at 5000 steps 16 of 20)."""
    ds = run_scenario(load_scenario(XOR), progress=False)
    assert ds.attrs["edge_law"] == "transistor" and "k = S (V_G - V_T)" in ds.conductance.attrs["comment"]
    solved = xor_solved(ds)
    assert solved.sum() > len(solved) / 2, solved
    # the error of every solving realization fell, by more than an order of magnitude in the median
    ratio = ds.error_train.values[solved, -1] / ds.error_train.values[solved, 0]
    assert ratio.max() < 0.5 and np.median(ratio) < 0.1, ratio


def test_nonlinear_regression_beats_every_linear_network():
    """The shipped quadratic regression, shortened to 1000 steps and 3 realizations: every trained transistor
    network ends below the best straight line (what any linear network can at best do), by more than 3x in the
    median on the test set (the shipped 2000 steps: about 10x), and its error fell by more than 30x."""
    s = load_scenario(SCENARIOS / "nonlinear_regression.toml", ["run.steps=1000", "run.realizations=3"])
    ds = run_scenario(s, progress=False)
    floor = np.array([best_linear_error(build_system(s, r)) for r in range(3)])
    train, test = ds.error_train.values, ds.error_test.values
    assert np.all(train[:, -1] < floor) and np.all(test[:, -1] < floor), (floor, train[:, -1], test[:, -1])
    assert np.median(floor / test[:, -1]) > 3
    assert np.all(train[:, -1] < train[:, 0] / 30)


def test_best_linear_error_is_what_a_linear_network_reaches_at_best():
    """A linear network trained on the same regression does not get below the best straight line."""
    s = load_scenario(SCENARIOS / "nonlinear_regression.toml", ["run.realizations=1"])
    task = build_system(s, 0)
    linear = Network(task.network.n_nodes, task.network.edges)
    from edgesim.tasks import Task
    on_linear = Task("linear", linear, task.boundary, task.train_inputs, task.train_targets, task.test_inputs,
                     task.test_targets)
    h = train_synchronous([on_linear], LearningConfig(alpha=0.05, eta=0.5, k_min=1e-7, k_max=6.2e-3), 3000,
                          [np.full(32, 1e-3)], record_at=np.array([0, 3000]))
    assert h.error_train[0, -1] >= best_linear_error(task) * (1 - 1e-9)


# -- the engines ---------------------------------------------------------------------------------------------------
def test_engines_are_bit_identical_on_xor_with_leaky_gates_jitter_and_noise(tmp_path):
    """Both autonomous-edge engines, transistor edges with leaky gate capacitors, jittered clocks with random
    phases and comparator noise and offsets: the same numbers to the last bit."""
    runs = {}
    for kind in ("per_edge", "vectorized"):
        s = load_scenario(XOR_ENGINE, [f"engine.kind='{kind}'", "run.steps=60", "run.record_every=10",
                                       "run.realizations=1"])
        hw = s.hardware
        assert hw.memory.kind == "capacitor" and np.isfinite(hw.memory.leak_time)
        assert hw.clock.jitter_std > 0 and hw.comparator.noise_std > 0 and hw.clock.phase == "random"
        runs[kind] = run_scenario(s, progress=False)
    a, b = runs["per_edge"], runs["vectorized"]
    assert a.attrs["engine"] == "per_edge" and b.attrs["engine"] == "vectorized"
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
    assert float(a.error_train.isel(step=-1).max()) < float(a.error_train.isel(step=0).max())


def test_nonlinear_classification_task_holds_two_interleaved_moons():
    """The task kind builds and trains (the laboratory protocol); its data are not linearly separable: the best
    least-squares linear discriminant misclassifies some points."""
    s = load_scenario(XOR, ["task.kind='nonlinear_classification'", "task.output_nodes=[6, 2]", "task.targets=[]",
                            "task.train_per_class=20", "task.n_test=50", "run.steps=20", "run.realizations=1",
                            "learning.class_margin=0.1"])
    task = build_system(s, 0)
    assert task.kind == "classification" and task.n_train == 40 and task.n_test == 50
    assert set(task.train_labels) == {0, 1} and (task.train_labels == 1).sum() == 20
    assert task.train_inputs.min() >= 0.0 and task.train_inputs.max() <= 1.5
    X = np.vstack([task.train_inputs, np.ones(40)]).T
    w = np.linalg.lstsq(X, 2.0 * task.train_labels - 1, rcond=None)[0]
    assert 0.7 < ((X @ w > 0) == task.train_labels).mean() < 1.0
    ds = run_scenario(s, progress=False)
    assert np.isfinite(ds.accuracy_test.values).all()


def test_the_command_line_applies_the_newton_settings_and_reports_non_convergence(tmp_path, capsys):
    """``edgesim run`` (which streams trainer runs) passes [solver] newton_* on: a Newton that may not iterate
    stops the run with a one-line error naming what to try, and no result file."""
    from edgesim.cli import main

    out = tmp_path / "xor.nc"
    code = main(["run", str(XOR), "-o", str(out), "--quiet", "--set", "run.steps=3", "--set", "run.realizations=1",
                 "--set", "solver.newton_max_iterations=1"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("edgesim: error: Newton's method did not converge") and "Try:" in err
    assert not out.exists()
    assert main(["run", str(XOR), "-o", str(out), "--quiet", "--set", "run.steps=3",
                 "--set", "run.realizations=1"]) == 0


def test_nonlinear_classification_beats_a_linear_classifier_in_most_realizations():
    """The shipped disk-in-a-ring scenario as it is (4 realizations, 4000 online steps): in more than half of the
    realizations the trained network's test accuracy exceeds a linear classifier's fitted to the same points by
    more than 5 points.  (The shipped run: 0.96, 0.75, 0.835 against 0.49-0.50; the fourth collapses to one
    class, 0.5 against 0.6.)"""
    s = load_scenario(SCENARIOS / "nonlinear_classification.toml")
    ds = run_scenario(s, progress=False)
    linear = np.array([linear_classifier_accuracy(build_system(s, r)) for r in range(4)])
    accuracy = ds.accuracy_test.values[:, -1]
    assert (accuracy > linear + 0.05).sum() > 2, (accuracy, linear)
    assert np.all(linear < 0.65)  # no straight line separates a disk from a ring


def test_fixed_class_targets_stay_fixed_on_the_engines_too():
    """With fixed class targets the desired outputs never move (no class-mean protocol), in the trainer and on
    the engines."""
    for kind in ("synchronous", "vectorized"):
        s = load_scenario(SCENARIOS / "nonlinear_classification.toml",
                          [f"engine.kind='{kind}'", "run.steps=30", "run.realizations=1", "run.record_every=10"])
        task = build_system(s, 0)
        np.testing.assert_array_equal(task.class_values, [[0.5, 0.3]])
        np.testing.assert_array_equal(task.train_targets[0], np.where(task.train_labels == 0, 0.5, 0.3))
        ds = run_scenario(s, progress=False)
        assert np.isfinite(ds.accuracy_test.values).all()


def test_even_the_best_straight_line_chosen_on_the_test_points_sorts_under_three_quarters_of_them():
    """The oracle docs/nonlinear.md quotes: over every direction (0.25 degree steps) and offset, the straight line
    in the (x, y) plane that sorts the shipped classification scenario's test points best, chosen with their
    labels, sorts 0.685-0.705 of them in the four realizations (what the trained networks' 0.75-0.96 beat)."""
    s = load_scenario(SCENARIOS / "nonlinear_classification.toml")
    best = []
    for r in range(s.run.realizations):
        task = build_system(s, r)
        x, y, labels = task.test_inputs[0], task.test_inputs[1], task.test_labels.astype(bool)
        accuracy = 0.0
        for angle in np.linspace(0.0, np.pi, 720, endpoint=False):
            order = np.argsort(x * np.cos(angle) + y * np.sin(angle), kind="stable")
            ones_below = np.concatenate([[0], np.cumsum(labels[order])])  # class-1 points at or below each cut
            below = np.arange(len(labels) + 1)
            # a cut after each position: class 0 below and class 1 above (or, flipped, the other way round)
            correct = (below - ones_below) + (labels.sum() - ones_below)
            accuracy = max(accuracy, correct.max() / len(labels), (len(labels) - correct.min()) / len(labels))
        best.append(accuracy)
    assert np.all((np.array(best) >= 0.685 - 1e-9) & (np.array(best) <= 0.705 + 1e-9)), best
