"""Tests of edgesim.scenario and edgesim.build: validation of scenarios and overrides.

Every shipped scenario must parse (and build); every invalid value must be
refused with a ScenarioError that names the offending key, whether it comes
from a file or from a ``--set`` override; tasks that do not fit their
network must be refused when they are built.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgesim.build import build_network, build_task, initial_conductance
from edgesim.runner import run_scenario
from edgesim.scenario import (
    SWEEPABLE,
    ScenarioError,
    apply_overrides,
    load_scenario,
    parse_scenario,
)

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
SHIPPED = sorted(SCENARIOS.glob("*.toml"))


def _data(name: str) -> dict:
    """The parsed TOML of a shipped scenario."""
    return tomllib.loads((SCENARIOS / name).read_text())


def _parse(name: str, *overrides: str):
    return parse_scenario(apply_overrides(_data(name), list(overrides)))


def _check_rejected(name: str, overrides: list[str], match: str):
    """The overrides are rejected, both via apply_overrides and via load_scenario."""
    with pytest.raises(ScenarioError, match=match):
        _parse(name, *overrides)
    with pytest.raises(ScenarioError, match=match):
        load_scenario(SCENARIOS / name, overrides)


# --------------------------------------------------------------------------
# shipped scenarios
# --------------------------------------------------------------------------

def test_scenarios_are_shipped():
    names = {p.name for p in SHIPPED}
    assert {"quickstart.toml", "stern2024_lambda.toml", "stern2024_kappa.toml", "dillavou2022_divider.toml",
            "dillavou2022_allostery.toml", "dillavou2022_regression.toml", "dillavou2022_iris.toml"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_scenario_parses(path):
    scenario = load_scenario(path)
    raw = tomllib.loads(path.read_text())
    assert scenario.title == raw["title"]
    assert scenario.run.steps == raw["run"].get("steps", sum(p["steps"] for p in raw.get("phase", [])))
    assert scenario.network.kind == raw["network"]["kind"]
    assert scenario.task.kind == raw["task"]["kind"]
    assert set(scenario.sweep) == set(raw.get("sweep", {}))
    for key, values in scenario.sweep.items():
        assert values == tuple(float(v) for v in raw["sweep"][key])
    # The stored source re-parses to the same scenario (result files can be re-run).
    assert parse_scenario(json.loads(scenario.to_json())) == scenario


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_scenario_builds_and_runs_briefly(path):
    """Every shipped scenario builds its networks and tasks and runs a few steps (a protocol: two
    steps per phase; damage scheduled later than that is moved to step 2)."""
    raw = tomllib.loads(path.read_text())
    raw["run"].update(steps=5, record_every=1, realizations=2)
    if "phase" in raw:
        for phase in raw["phase"]:
            phase["steps"] = 2
        raw["run"]["steps"] = 2 * len(raw["phase"])
    for key in ("event", "removal", "pruning"):
        for item in raw.get("damage", {}).get(key, []):
            item["step"] = 2
    scenario = parse_scenario(raw)
    ds = run_scenario(scenario, progress=False)
    sweep_shape = tuple(len(v) for v in scenario.sweep.values())
    assert ds.error_train.shape == sweep_shape + (2, scenario.run.steps + 1)
    assert np.isfinite(ds.error_train.values).all()
    assert np.isfinite(ds.free_power.values).all()


def test_specific_values_of_shipped_scenarios():
    q = load_scenario(SCENARIOS / "quickstart.toml")
    assert q.sweep == {"lambda": (0.0, 1e-4, 1e-2)}
    assert (q.run.realizations, q.network.size, q.learning.rule) == (4, 64, "coupled")
    lam = load_scenario(SCENARIOS / "stern2024_lambda.toml")
    assert len(lam.sweep["lambda"]) == 18 and lam.run.realizations == 50
    iris = load_scenario(SCENARIOS / "dillavou2022_iris.toml")
    assert iris.task.input_nodes == (0, 2, 6, 8) and iris.task.output_nodes == (1, 5, 7)
    assert iris.learning.taps.n_taps == 128 and iris.learning.batch == "online"
    reg = load_scenario(SCENARIOS / "dillavou2022_regression.toml")
    assert reg.task.coefficients == ((0.15, 0.20), (0.25, 0.10))


def test_defaults_fill_missing_sections():
    s = parse_scenario({"task": {"kind": "divider", "targets": [1.0]}, "network": {"kind": "divider"}})
    assert s.run.steps == 1000 and s.run.seed == 0 and s.learning.rule == "coupled"
    assert s.sweep == {} and s.title == ""


def test_integers_accepted_where_floats_expected():
    s = _parse("quickstart.toml", "learning.kappa=2", "run.step_duration=3", "learning.lambda=0")
    assert s.learning.kappa == 2.0 and isinstance(s.learning.kappa, float)
    assert s.run.step_duration == 3.0 and isinstance(s.run.step_duration, float)
    assert s.learning.lambda_ == 0.0 and isinstance(s.learning.lambda_, float)


# --------------------------------------------------------------------------
# unknown keys
# --------------------------------------------------------------------------

def test_unknown_top_level_key():
    data = _data("quickstart.toml")
    data["bogus"] = 1
    with pytest.raises(ScenarioError, match="unknown key 'bogus'") as info:
        parse_scenario(data)
    assert "allowed" in str(info.value) and "learning" in str(info.value)


@pytest.mark.parametrize("section", ["run", "network", "task", "learning"])
def test_unknown_key_in_section(section):
    data = _data("quickstart.toml")
    data.setdefault(section, {})["frobnicate"] = 1
    with pytest.raises(ScenarioError, match=rf"unknown key '{section}\.frobnicate'") as info:
        parse_scenario(data)
    assert "allowed keys" in str(info.value)


def test_unknown_key_in_taps():
    data = _data("dillavou2022_allostery.toml")
    data["learning"]["taps"]["wiper"] = 3
    with pytest.raises(ScenarioError, match=r"unknown key 'learning\.taps\.wiper'.*n_taps"):
        parse_scenario(data)


def test_python_field_name_is_not_a_key():
    """``lambda`` is stored as ``lambda_`` internally; the TOML key is ``lambda`` only."""
    with pytest.raises(ScenarioError, match=r"learning\.lambda_"):
        _parse("quickstart.toml", "learning.lambda_=0.1")
    assert _parse("quickstart.toml", "learning.lambda=0.1").learning.lambda_ == 0.1


def test_unknown_sweep_parameter():
    data = _data("quickstart.toml")
    data["sweep"]["k_max"] = [1.0, 2.0]
    with pytest.raises(ScenarioError, match=r"sweep\.k_max") as info:
        parse_scenario(data)
    for name in SWEEPABLE:
        assert name in str(info.value)


def test_section_must_be_a_table():
    data = _data("quickstart.toml")
    data["run"] = 5
    with pytest.raises(ScenarioError, match=r"\[run\] must be a table"):
        parse_scenario(data)


def test_title_must_be_a_string():
    data = _data("quickstart.toml")
    data["title"] = 3
    with pytest.raises(ScenarioError, match="title"):
        parse_scenario(data)


# --------------------------------------------------------------------------
# types and ranges
# --------------------------------------------------------------------------

@pytest.mark.parametrize("override, match", [
    ("run.steps='100'", r"run\.steps must be an integer"),
    ("run.steps=100.0", r"run\.steps must be an integer"),
    ("run.steps=10.5", r"run\.steps must be an integer"),
    ("run.realizations=2.0", r"run\.realizations must be an integer"),
    ("run.seed=1.5", r"run\.seed must be an integer"),
    ("run.steps=true", r"run\.steps must be an integer"),
    ("learning.kappa='big'", r"learning\.kappa must be a number"),
    ("learning.alpha=[0.5]", r"learning\.alpha must be a number"),
    ("network.periodic=1", r"network\.periodic must be true or false"),
    ("network.kind='hexagonal'", r"network\.kind must be one of"),
    ("learning.rule='hebbian'", r"learning\.rule must be one of"),
    ("learning.eta=nan", r"learning\.eta must be finite"),
    ("learning.kappa=inf", r"learning\.kappa must be finite"),
])
def test_wrong_types_rejected(override, match):
    _check_rejected("quickstart.toml", [override], match)


@pytest.mark.parametrize("key", ["run.step_duration", "learning.kappa", "learning.k_min"])
@pytest.mark.parametrize("value", ["0.0", "-1.0", "0"])
def test_positive_values_required(key, value):
    _check_rejected("quickstart.toml", [f"{key}={value}"], re.escape(key) + " must be > 0")


@pytest.mark.parametrize("override, match", [
    ("run.steps=-1", r"run\.steps must be > 0"),
    ("run.steps=0", r"run\.steps must be > 0"),
    ("run.realizations=0", r"run\.realizations must be > 0"),
    ("run.record_points=0", r"run\.record_points must be > 0"),
    ("run.seed=-3", r"run\.seed must be >= 0"),
    ("learning.alpha=-0.1", r"learning\.alpha must be >= 0"),
    ("learning.initial_spread=1.0", r"learning\.initial_spread"),
])
def test_out_of_range_values(override, match):
    _check_rejected("quickstart.toml", [override], match)


@pytest.mark.parametrize("k_min, k_max", [(1.0, 1.0), (2.0, 1.0), (1e6, 1e-4)])
def test_k_min_below_k_max(k_min, k_max):
    _check_rejected("quickstart.toml", [f"learning.k_min={k_min}", f"learning.k_max={k_max}"],
                    r"learning\.k_min must be below learning\.k_max")


@pytest.mark.parametrize("eta", ["0.0", "-0.5", "1.0000001", "2"])
def test_eta_outside_unit_interval(eta):
    _check_rejected("quickstart.toml", [f"learning.eta={eta}"], r"learning\.eta")


@pytest.mark.parametrize("eta", ["1", "1.0", "1e-9"])
def test_eta_inside_unit_interval(eta):
    assert _parse("quickstart.toml", f"learning.eta={eta}").learning.eta == float(eta)


def test_taps_range():
    _check_rejected("dillavou2022_allostery.toml", ["learning.taps.n_taps=1"], r"learning\.taps")
    _check_rejected("dillavou2022_allostery.toml", ["learning.taps.low=1e6"], r"learning\.taps")
    _check_rejected("dillavou2022_allostery.toml", ["learning.taps.spacing='cubic'"],
                    r"learning\.taps\.spacing")


def test_input_range_order():
    _check_rejected("quickstart.toml", ["task.input_min=2.0", "task.input_max=1.0"], r"task\.input_min")


# --------------------------------------------------------------------------
# task sections
# --------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["dillavou2022_allostery.toml", "dillavou2022_regression.toml",
                                  "dillavou2022_iris.toml"])
def test_node_tasks_need_a_ground(name):
    data = _data(name)
    del data["task"]["ground"]
    with pytest.raises(ScenarioError, match=r"task\.ground"):
        parse_scenario(data)


def test_iris_needs_four_inputs_and_three_outputs():
    _check_rejected("dillavou2022_iris.toml", ["task.input_nodes=[0, 2, 6]"], r"task\.input_nodes must list 4")
    _check_rejected("dillavou2022_iris.toml", ["task.output_nodes=[1, 5]"], r"task\.output_nodes must list 3")


def test_node_lists_must_be_integers():
    _check_rejected("dillavou2022_allostery.toml", ["task.input_nodes=[0.0, 8.0]"],
                    r"task\.input_nodes must be a list of integers")


def test_allostery_voltage_counts():
    _check_rejected("dillavou2022_allostery.toml", ["task.input_voltages=[5.0]"], r"task\.input_voltages")
    _check_rejected("dillavou2022_allostery.toml", ["task.output_voltages=[3.0, 3.0]"], r"task\.output_voltages")


def test_regression_coefficient_shape():
    _check_rejected("dillavou2022_regression.toml", ["task.coefficients=[[0.1, 0.2]]"], r"task\.coefficients")
    _check_rejected("dillavou2022_regression.toml", ["task.coefficients=[[0.1], [0.2]]"], r"task\.coefficients")


def test_regression_coefficients_flat_list():
    _check_rejected("dillavou2022_regression.toml", ["task.coefficients=[0.1, 0.2]"], r"task\.coefficients")


def test_ground_must_be_an_integer_string():
    _check_rejected("dillavou2022_allostery.toml", ["task.ground='2'"], r"task\.ground")


@pytest.mark.parametrize("value", ["true", "2.0"])
def test_ground_must_be_an_integer(value):
    _check_rejected("dillavou2022_allostery.toml", [f"task.ground={value}"], r"task\.ground")


def test_divider_needs_targets():
    _check_rejected("dillavou2022_divider.toml", ["task.targets=[]"], r"task\.targets")


def test_edge_list_needs_a_path():
    _check_rejected("quickstart.toml", ["network.kind='edge_list'"], r"network\.path")


# --------------------------------------------------------------------------
# overrides
# --------------------------------------------------------------------------

def test_overrides_parse_toml_values():
    data = apply_overrides(_data("dillavou2022_allostery.toml"), [
        "run.steps=25",
        "run.step_duration=0.5",
        "learning.eta = 0.25",
        "task.input_nodes=[0, 8]",
        "task.input_voltages=[4.0, 2.0]",
        "learning.rule=coupled",          # bare word -> string
        "learning.batch='full'",          # quoted string
        "network.periodic=true",
        "learning.taps.n_taps=64",        # nested table
        "title=a new title",
    ])
    assert data["run"]["steps"] == 25 and isinstance(data["run"]["steps"], int)
    assert data["run"]["step_duration"] == 0.5
    assert data["learning"]["eta"] == 0.25
    assert data["task"]["input_nodes"] == [0, 8]
    assert data["task"]["input_voltages"] == [4.0, 2.0]
    assert data["learning"]["rule"] == "coupled" and data["learning"]["batch"] == "full"
    assert data["network"]["periodic"] is True
    assert data["learning"]["taps"]["n_taps"] == 64
    assert data["title"] == "a new title"
    s = parse_scenario(data)
    assert (s.run.steps, s.run.step_duration, s.learning.eta, s.learning.rule) == (25, 0.5, 0.25, "coupled")
    assert s.task.input_voltages == (4.0, 2.0) and s.learning.taps.n_taps == 64
    assert s.title == "a new title"


def test_overrides_do_not_modify_input():
    data = _data("quickstart.toml")
    before = json.dumps(data, sort_keys=True)
    out = apply_overrides(data, ["run.steps=3", "sweep.lambda=[0.5]"])
    assert json.dumps(data, sort_keys=True) == before
    assert out["run"]["steps"] == 3 and out["sweep"]["lambda"] == [0.5]


def test_override_creates_missing_section():
    s = parse_scenario(apply_overrides({"network": {"kind": "divider"}},
                                       ["task.kind=divider", "task.targets=[1.0, 2.0]", "run.steps=7"]))
    assert s.task.targets == (1.0, 2.0) and s.run.steps == 7


def test_override_sweep_list():
    s = _parse("quickstart.toml", "sweep.lambda=[0.0, 1e-4]", "sweep.kappa=[0.5, 2]")
    assert s.sweep == {"lambda": (0.0, 1e-4), "kappa": (0.5, 2.0)}


@pytest.mark.parametrize("override, match", [
    ("run.bogus=1", r"unknown key 'run\.bogus'"),
    ("network.colour=1", r"unknown key 'network\.colour'"),
    ("task.nodes=[1]", r"unknown key 'task\.nodes'"),
    ("learning.beta=0.1", r"unknown key 'learning\.beta'"),
    ("learning.taps.wiper=1", r"unknown key 'learning\.taps\.wiper'"),
    ("bogus.key=1", r"unknown key 'bogus'"),
    ("sweep.k_min=[1.0]", r"sweep\.k_min"),
])
def test_unknown_override_keys_rejected(override, match):
    _check_rejected("quickstart.toml", [override], match)


@pytest.mark.parametrize("override", ["run.steps", "steps=5", "run.steps.deeper=5"])
def test_malformed_overrides(override):
    with pytest.raises(ScenarioError, match=r"override"):
        apply_overrides(_data("quickstart.toml"), [override])


def test_seed_argument_overrides_file_and_set():
    s = load_scenario(SCENARIOS / "quickstart.toml", ["run.seed=5"], seed=11)
    assert s.run.seed == 11
    with pytest.raises(ScenarioError, match=r"run\.seed"):
        load_scenario(SCENARIOS / "quickstart.toml", seed=-1)


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ScenarioError, match="does not exist"):
        load_scenario(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[run\nsteps = 3\n")
    with pytest.raises(ScenarioError, match="not valid TOML"):
        load_scenario(bad)


def test_unknown_key_in_file(tmp_path):
    path = tmp_path / "typo.toml"
    path.write_text('[network]\nkind = "divider"\n[task]\nkind = "divider"\ntargets = [1.0]\n'
                    '[run]\nstpes = 10\n')
    with pytest.raises(ScenarioError, match=r"unknown key 'run\.stpes'.*steps"):
        load_scenario(path)


@settings(max_examples=40, deadline=None)
@given(st.floats(min_value=1e-300, max_value=1e300, allow_nan=False, allow_infinity=False))
def test_override_float_round_trip(x):
    """A float written with repr() in --set reaches the scenario exactly."""
    s = _parse("quickstart.toml", f"learning.kappa={x!r}", f"run.step_duration={x!r}")
    assert s.learning.kappa == x and s.run.step_duration == x


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=2**62))
def test_override_int_round_trip(n):
    s = _parse("quickstart.toml", f"run.steps={n}", f"run.seed={n}")
    assert s.run.steps == n and s.run.seed == n


# --------------------------------------------------------------------------
# sweeps
# --------------------------------------------------------------------------

@pytest.mark.parametrize("override, match", [
    ("sweep.kappa=[-1.0]", r"kappa must be > 0"),
    ("sweep.kappa=[1.0, 0.0]", r"kappa must be > 0"),
    ("sweep.eta=[0.5, 1.5]", r"eta"),
    ("sweep.eta=[0.0]", r"eta"),
    ("sweep.alpha=[-0.1]", r"alpha must be >= 0"),
    ("sweep.lambda=[]", r"sweep\.lambda must be a non-empty list"),
    ("sweep.lambda=0.1", r"sweep\.lambda must be a non-empty list"),
    ("sweep.lambda=['a']", r"sweep\.lambda must be a number"),
    ("sweep.lambda=[nan]", r"sweep\.lambda must be finite"),
])
def test_sweep_values_validated(override, match):
    _check_rejected("quickstart.toml", [override], match)


def test_sweep_must_be_a_table():
    data = _data("quickstart.toml")
    data["sweep"] = [0.0, 1.0]
    with pytest.raises(ScenarioError, match=r"\[sweep\]"):
        parse_scenario(data)


def test_sweep_value_checked_against_section():
    """Valid swept values are accepted and kept in file order (converted to float)."""
    assert _parse("quickstart.toml", "sweep.eta=[0.1, 1.0]").sweep["eta"] == (0.1, 1.0)
    assert _parse("quickstart.toml", "sweep.kappa=[1e-3, 10]").sweep["kappa"] == (1e-3, 10.0)


# --------------------------------------------------------------------------
# building networks and tasks
# --------------------------------------------------------------------------

def test_task_node_missing_from_network():
    s = _parse("dillavou2022_allostery.toml", "task.output_nodes=[3, 5, 42]")
    net = build_network(s.network)
    assert net.n_nodes == 9
    with pytest.raises(ScenarioError, match=r"\b42\b"):
        build_task(s.task, net, s.run.seed, 0)
    with pytest.raises(ScenarioError, match=r"\b42\b"):
        run_scenario(s, progress=False)


@pytest.mark.parametrize("name, override", [
    ("dillavou2022_regression.toml", "task.input_nodes=[0, 42]"),
    ("dillavou2022_iris.toml", "task.ground=9"),
])
def test_other_task_nodes_missing_from_network(name, override):
    s = _parse(name, override)
    with pytest.raises(ScenarioError, match=r"\b(42|9)\b"):
        build_task(s.task, build_network(s.network), s.run.seed, 0)


def test_node_both_ground_and_input():
    with pytest.raises(ScenarioError, match=r"node 0 is both ground and input"):
        _parse("dillavou2022_allostery.toml", "task.ground=0")  # node 0 is also an input


def test_node_both_input_and_output():
    with pytest.raises(ScenarioError, match=r"node 8 is both input and output"):
        _parse("dillavou2022_allostery.toml", "task.output_nodes=[3, 5, 8]")


def test_repeated_input_node_is_rejected():
    with pytest.raises(ScenarioError, match=r"node 0 is both input and input"):
        _parse("dillavou2022_allostery.toml", "task.input_nodes=[0, 0]")


def test_jammed_realizations_beyond_shipped():
    s = _parse("quickstart.toml", "network.realization=50", "run.realizations=1")
    assert build_network(s.network, 0).name.endswith("_r50.txt")
    # refused when the scenario is read, not when a sweep's worker builds the network hours later
    with pytest.raises(ScenarioError, match=r"2 realizations needs jammed network 51, but only 50"):
        _parse("quickstart.toml", "network.realization=50", "run.realizations=2")
    with pytest.raises(ScenarioError, match=r"only 50"):
        build_network(s.network, 1)
    with pytest.raises(ScenarioError, match=r"network\.realization = 51"):
        _parse("quickstart.toml", "network.realization=51", "run.realizations=1")


def test_jammed_size_not_shipped():
    with pytest.raises(ScenarioError, match=r"network\.size: no jammed networks of size 100; available: \[64, 128, 256\]"):
        _parse("quickstart.toml", "network.size=100")


def test_jammed_realizations_are_consecutive():
    s = _parse("quickstart.toml", "network.realization=3")
    names = [build_network(s.network, r).name for r in range(3)]
    assert [n.split("_r")[-1] for n in names] == ["3.txt", "4.txt", "5.txt"]


def test_edge_list_network(tmp_path):
    path = tmp_path / "ring.edges"
    path.write_text("0 1\n1 2\n2 3\n3 0\n0 2\n")
    s = _parse("dillavou2022_allostery.toml", "network.kind=edge_list", f"network.path='{path}'",
               "task.ground=0", "task.input_nodes=[1]", "task.input_voltages=[1.0]",
               "task.output_nodes=[2]", "task.output_voltages=[0.5]")
    net = build_network(s.network)
    assert (net.n_nodes, net.n_edges) == (4, 5)
    with pytest.raises(ScenarioError, match="does not exist"):
        build_network(_parse("quickstart.toml", "network.kind=edge_list",
                             f"network.path='{tmp_path / 'missing'}'").network)


def test_task_draws_depend_on_seed_and_realization_only():
    s = _parse("quickstart.toml")
    net = build_network(s.network, 0)
    a = build_task(s.task, net, 1, 0)
    b = build_task(s.task, net, 1, 0)
    c = build_task(s.task, net, 2, 0)
    d = build_task(s.task, net, 1, 1)
    assert a.boundary.rows == b.boundary.rows and np.array_equal(a.train_inputs, b.train_inputs)
    assert np.array_equal(a.train_targets, b.train_targets)
    for other in (c, d):
        assert not np.array_equal(a.train_inputs, other.train_inputs)


def test_initial_conductance_spread():
    s = _parse("quickstart.toml", "learning.initial_spread=0.5")
    net = build_network(s.network, 0)
    k1 = initial_conductance(s.learning, net, s.run.seed, 0)
    k3 = initial_conductance(replace(s.learning, kappa=3.0), net, s.run.seed, 0)
    assert k1.shape == (net.n_edges,)
    assert np.all((k1 >= 0.5) & (k1 <= 1.5)) and k1.std() > 0
    np.testing.assert_allclose(k3, 3.0 * k1, rtol=1e-15)  # same draw for every kappa
    s0 = _parse("quickstart.toml")
    assert np.all(initial_conductance(replace(s0.learning, kappa=2.0), net, s0.run.seed, 0) == 2.0)
    assert math.isclose(float(initial_conductance(s.learning, net, s.run.seed, 1).mean()), 1.0, abs_tol=0.2)


EDGE_TASK = ["network.kind=edge_list", "task.ground=10", "task.input_nodes=[11]", "task.input_voltages=[1.0]",
             "task.output_nodes=[12]", "task.output_voltages=[0.5]", "run.steps=5"]


def test_edge_list_relative_path_labels_and_conductances(tmp_path):
    """Labels 10..13 become nodes 0..3 (stored in the result); a third column is the initial
    conductance; a relative path is relative to the scenario file."""
    (tmp_path / "nets").mkdir()
    (tmp_path / "nets" / "ring.edges").write_text("# a ring with a chord\n10 11 2.0\n11 12 0.5\n12 13 1.0\n"
                                                 "13 10 4.0   # last side\n10 12 3.0\n")
    scenario_file = tmp_path / "s.toml"
    scenario_file.write_text((SCENARIOS / "dillavou2022_allostery.toml").read_text())
    overrides = [o.replace("=10", "=0").replace("[11]", "[1]").replace("[12]", "[2]") for o in EDGE_TASK]
    s = load_scenario(scenario_file, overrides + ["network.path='nets/ring.edges'", "learning.rule='coupled'"])
    assert s.network.path == str((tmp_path / "nets" / "ring.edges").resolve())
    ds = run_scenario(s, progress=False)
    assert json.loads(ds.attrs["node_labels"]) == [10, 11, 12, 13]
    np.testing.assert_array_equal(ds.conductance.values[0, 0, :5], [2.0, 0.5, 1.0, 4.0, 3.0])


@pytest.mark.parametrize("text, message", [
    ("0 1\n1 2\n2 0\n1 0\n", "line 4: duplicate edge 1 0 \\(first on line 1\\)"),
    ("0 1\n1 1\n", "line 2: self-loop"),
    ("0 1 1.0\n1 2\n", "line 2: expected 3 columns"),
    ("0 1 -2\n", "initial conductance must be positive"),
    ("0 1 x\n", "third column is the initial conductance in siemens"),
    ("a b\n", "node labels must be integers"),
])
def test_bad_edge_lists_name_the_line(tmp_path, text, message):
    path = tmp_path / "bad.edges"
    path.write_text(text)
    with pytest.raises(ScenarioError, match=message):
        build_network(_parse("quickstart.toml", "network.kind=edge_list", f"network.path='{path}'").network)


@pytest.mark.parametrize("override, suggestion", [
    ("sweep.lamda=[0.1]", "did you mean 'sweep.lambda'"),
    ("learning.alpah=0.1", "did you mean 'learning.alpha'"),
    ("clock.jitter=0.1", "did you mean 'clock.jitter_std'"),
])
def test_unknown_keys_suggest_the_nearest_valid_key(override, suggestion):
    with pytest.raises(ScenarioError, match=re.escape(suggestion)):
        _parse("quickstart.toml", override)


#: How the tests cover each shipped scenario: "cli" ones run here as shipped; the other quick ones run as
#: shipped in the named test module; long ones run shortened there (and in full with -m slow).
COVERAGE = {
    "quickstart.toml": "cli", "jitter_noise.toml": "cli", "leaky_memory.toml": "cli",
    "dillavou2022_divider.toml": "test_reproduction", "dillavou2022_allostery.toml": "test_reproduction",
    "dillavou2022_regression.toml": "test_reproduction", "dillavou2022_iris.toml": "test_reproduction",
    "dillavou2022_damage.toml": "test_damage_control", "dillavou2022_task_switching.toml": "test_damage_control",
    "stern2024_lambda.toml": "long", "stern2024_kappa.toml": "long", "stern2024_lambda_control.toml": "long",
    "pruning_sweep.toml": "long", "transistor_lambda_control.toml": "long", "desync.toml": "long", "desync_taps.toml": "long",
    "chip_scaling.toml": "test_scaling", "chip_scaling_hardware.toml": "test_scaling",
    "stern2024_iris.toml": "test_reproduction", "dillavou2022_seven_tasks.toml": "test_reproduction",
    "dillavou2024_xor.toml": "test_transistor_runs", "transistor_xor_engine.toml": "test_transistor_runs",
    "nonlinear_regression.toml": "test_transistor_runs", "nonlinear_classification.toml": "test_transistor_runs",
}


def test_every_shipped_scenario_is_covered():
    assert set(COVERAGE) == {p.name for p in SHIPPED}
    for name, where in COVERAGE.items():
        if where.startswith("test_"):
            text = (Path(__file__).parent / f"{where}.py").read_text()
            assert name.removesuffix(".toml") in text, (name, where)


@pytest.mark.parametrize("name", [n for n, where in COVERAGE.items() if where == "cli"])
def test_quick_shipped_scenarios_run_as_shipped(name, tmp_path):
    from edgesim.cli import main
    from edgesim.results import open_result

    out = tmp_path / "result.nc"
    assert main(["run", str(SCENARIOS / name), "-o", str(out), "--quiet"]) == 0
    ds = open_result(out)
    assert np.isfinite(ds.error_train.values).all()
    assert int(ds.step[-1]) == load_scenario(SCENARIOS / name).run.steps


def test_random_iris_nodes_and_feature_range():
    _check_rejected("dillavou2022_iris.toml", ["task.random_nodes=true"], r"task\.random_nodes = true draws")
    _check_rejected("dillavou2022_allostery.toml", ["task.random_nodes=true"], r"applies to task kind 'iris'")
    _check_rejected("dillavou2022_iris.toml", ["task.feature_min=2.0", "task.feature_max=1.0"],
                    r"task\.feature_min must be below")
    from edgesim.build import build_network, build_task

    scenario = load_scenario(SCENARIOS / "stern2024_iris.toml")
    nets = [build_network(scenario.network, r) for r in range(3)]
    tasks = [build_task(scenario.task, n, scenario.run.seed, r) for r, n in enumerate(nets)]
    held = [tuple(v for v, _ in t.boundary.inputs) + tuple(v for v, _ in t.boundary.outputs) + (t.boundary.ground,)
            for t in tasks]
    assert all(len(set(h)) == 8 for h in held)  # ground, 4 inputs, 3 outputs: all distinct
    assert len(set(held)) == 3  # drawn per realization
    again = build_task(scenario.task, nets[0], scenario.run.seed, 0)
    assert again.boundary.inputs == tasks[0].boundary.inputs  # a pure function of (seed, realization)
    x = np.concatenate([t.train_inputs for t in tasks], 1)
    assert x.min() >= 0.0 and x.max() <= 1.0 and x.max() > 0.9  # features scaled to 0-1 V


def test_label_noise_perturbs_only_the_training_targets():
    _check_rejected("dillavou2022_allostery.toml", ["task.label_noise=0.01"], r"applies to regression tasks")
    _check_rejected("stern2024_lambda.toml", ["task.label_noise=-0.01"], r"task\.label_noise")
    from edgesim.build import build_network, build_task

    clean = load_scenario(SCENARIOS / "stern2024_lambda.toml")
    noisy = load_scenario(SCENARIOS / "stern2024_lambda.toml", ["task.label_noise=0.01"])
    net = build_network(clean.network, 0)
    a = build_task(clean.task, net, 1, 0)
    b = build_task(noisy.task, net, 1, 0)
    np.testing.assert_array_equal(a.train_inputs, b.train_inputs)
    np.testing.assert_array_equal(a.test_targets, b.test_targets)  # the test set stays exact
    noise = b.train_targets - a.train_targets
    assert 0.005 < noise.std() < 0.015 and abs(noise.mean()) < 0.01
