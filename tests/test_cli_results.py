"""Tests of the command line (edgesim.cli) and of the result files (edgesim.results, edgesim.runner).

The result file layout is a contract (README, "Result files"): dimensions,
variables, coordinates, CF attributes and the scenario stored as JSON.  A run
is a pure function of scenario and seed; stacking systems (a sweep) must not
change any system's results; the energy bookkeeping must match the recorded
power; a failed run or write never leaves a (partial) result file behind.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import edgesim
from edgesim.cli import main
from edgesim.results import VARIABLES, open_result, write_netcdf
from edgesim.runner import run_scenario
from edgesim.scenario import apply_overrides, load_scenario, parse_scenario

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
QUICKSTART = SCENARIOS / "quickstart.toml"
ALLOSTERY = SCENARIOS / "dillavou2022_allostery.toml"

SERIES = ("error_train", "error_test", "free_power", "clamped_power", "training_energy",
          "training_energy_total")

#: A small quickstart: 2 lambdas x 2 realizations x 40 steps.
QUICK_SET = ["run.steps=40", "run.realizations=2", "run.step_duration=0.5", "run.record_points=15",
             "sweep.lambda=[0.0, 1e-2]"]


def _sets(overrides):
    out = []
    for o in overrides:
        out += ["--set", o]
    return out


def _cli_run(scenario, output, overrides=(), *extra) -> int:
    return main(["run", str(scenario), "--output", str(output), "--quiet", *_sets(overrides), *extra])


def _leftovers(folder: Path) -> list[str]:
    """Every file under ``folder`` (recursively), as relative names."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _no_history(ds: xr.Dataset) -> xr.Dataset:
    ds = ds.copy()
    ds.attrs.pop("history", None)
    return ds


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """(path, dataset) of a small quickstart run through the CLI."""
    path = tmp_path_factory.mktemp("quick") / "quick.nc"
    assert _cli_run(QUICKSTART, path, QUICK_SET) == 0
    return path, open_result(path)


# --------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------

def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"edgesim {edgesim.__version__}"


def test_command_required(capsys):
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "required" in capsys.readouterr().err


def test_run_output_required(capsys):
    with pytest.raises(SystemExit) as info:
        main(["run", str(QUICKSTART)])
    assert info.value.code == 2
    assert "--output" in capsys.readouterr().err


def test_run_prints_summary_and_writes_file(tmp_path, capsys):
    out = tmp_path / "sub" / "run.nc"  # the parent folder is created
    rc = _cli_run(QUICKSTART, out, ["run.steps=20", "run.realizations=2"])
    assert rc == 0
    captured = capsys.readouterr()
    title = tomllib.loads(QUICKSTART.read_text())["title"]
    assert title in captured.out
    assert "training error" in captured.out and "free power" in captured.out
    assert "steps: 20" in captured.out and "systems: 6" in captured.out  # 3 lambdas x 2 realizations
    assert f"wrote {out}" in captured.out
    assert _leftovers(tmp_path) == ["sub/run.nc"]  # no *.part left behind
    ds = open_result(out)
    assert int(ds.step[-1]) == 20 and ds.sizes["realization"] == 2 and ds.sizes["lambda"] == 3


def test_inspect_prints_dataset_and_summary(quick, capsys):
    path, ds = quick
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "<xarray.Dataset>" in out
    assert ds.attrs["title"] in out
    assert "training error" in out and "training energy" in out
    assert "steps: 40" in out and "systems: 4" in out


def test_inspect_missing_file(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "missing.nc")]) == 2
    assert "edgesim: error" in capsys.readouterr().err


BAD_RUNS = {
    "unknown key": (QUICKSTART, ["run.stepz=10"], r"run.stepz"),
    "unknown section": (QUICKSTART, ["bogus.key=1"], r"bogus"),
    "bad sweep value": (QUICKSTART, ["sweep.kappa=[-1.0]"], r"kappa"),
    "k_min >= k_max": (QUICKSTART, ["learning.k_min=10.0", "learning.k_max=1.0"], r"k_min"),
    "node not in network": (ALLOSTERY, ["task.output_nodes=[3, 5, 42]", "run.steps=5"], r"42"),
    "ground is input": (ALLOSTERY, ["task.ground=0", "run.steps=5"], r"both ground and input"),
    "jammed beyond shipped": (QUICKSTART, ["network.realization=50", "run.realizations=2", "run.steps=5"],
                              r"only 50"),
    "jammed size not shipped": (QUICKSTART, ["network.size=100", "run.steps=5"], r"100"),
    "missing scenario file": (SCENARIOS / "no_such_scenario.toml", [], r"does not exist"),
}


@pytest.mark.parametrize("case", list(BAD_RUNS))
def test_bad_scenario_exit_code_and_no_output(case, tmp_path, capsys):
    scenario, overrides, fragment = BAD_RUNS[case]
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    rc = _cli_run(scenario, out_dir / "result.nc", overrides)
    captured = capsys.readouterr()
    assert rc == 2
    assert captured.err.startswith("edgesim: error:")
    assert fragment in captured.err
    assert "wrote" not in captured.out
    assert _leftovers(out_dir) == []


def test_bad_scenario_file_exit_code(tmp_path, capsys):
    path = tmp_path / "typo.toml"
    path.write_text('[network]\nkind = "divider"\n[task]\nkind = "divider"\ntargets = [1.0]\n'
                    '[learning]\nkapa = 1.0\n')
    out = tmp_path / "out.nc"
    assert _cli_run(path, out) == 2
    err = capsys.readouterr().err
    assert "learning.kapa" in err and "kappa" in err  # names the key and lists the allowed ones
    assert not out.exists() and not list(tmp_path.glob("*.part"))


@pytest.mark.parametrize("scenario, overrides", [
    (ALLOSTERY, ["task.ground='2'"]),
    (ALLOSTERY, ["network.kind=edge_list", "network.path=3"]),
    (SCENARIOS / "dillavou2022_regression.toml", ["task.coefficients=[0.1, 0.2]"]),
], ids=["ground-string", "path-int", "coefficients-flat"])
def test_untyped_values_exit_code(scenario, overrides, tmp_path, capsys):
    assert _cli_run(scenario, tmp_path / "out.nc", overrides + ["run.steps=5"]) == 2


def test_directory_as_scenario_exit_code(tmp_path, capsys):
    assert _cli_run(SCENARIOS, tmp_path / "out.nc") == 2


# --------------------------------------------------------------------------
# result file contents
# --------------------------------------------------------------------------

def test_result_dimensions_and_variables(quick):
    _, ds = quick
    lead = ("lambda", "realization")
    assert dict(ds.sizes) == {"lambda": 2, "realization": 2, "step": ds.sizes["step"],
                              "conductance_step": ds.sizes["conductance_step"], "edge": ds.sizes["edge"]}
    for name in SERIES:
        assert ds[name].dims == lead + ("step",), name
        assert ds[name].dtype == np.float64
        assert np.isfinite(ds[name].values).all(), name
    assert ds.conductance.dims == lead + ("conductance_step", "edge")
    assert ds.n_edges.dims == ("realization",)
    assert ds.edge_from.dims == ds.edge_to.dims == ("realization", "edge")
    # lambda is swept: a coordinate, not a data variable.
    assert "lambda" in ds.coords and "lambda" not in ds.data_vars
    # Regression with 20 training examples: no accuracy, no per-example outputs.
    for name in ("accuracy_train", "accuracy_test", "output_free", "output_desired"):
        assert name not in ds
    assert ds.sizes["edge"] == int(ds.n_edges.max())


def test_result_coordinates(quick):
    _, ds = quick
    step = ds.step.values
    assert step[0] == 0 and step[-1] == 40 and np.all(np.diff(step) > 0)
    assert np.issubdtype(step.dtype, np.integer)
    np.testing.assert_array_equal(ds.time.values, step * 0.5)
    assert ds.time.dims == ("step",)
    np.testing.assert_array_equal(ds.conductance_time.values, ds.conductance_step.values * 0.5)
    np.testing.assert_array_equal(ds.realization.values, [0, 1])
    np.testing.assert_array_equal(ds.edge.values, np.arange(ds.sizes["edge"]))
    np.testing.assert_array_equal(ds["lambda"].values, [0.0, 1e-2])
    # conductance_every = 1: a snapshot at every record step.
    np.testing.assert_array_equal(ds.conductance_step.values, step)


def test_result_units_and_long_names(quick):
    _, ds = quick
    expected_units = {"error_train": "V2", "error_test": "V2", "free_power": "W", "clamped_power": "W",
                      "training_energy": "J", "training_energy_total": "J", "conductance": "S",
                      "time": "s", "conductance_time": "s", "lambda": "1", "n_edges": "1", "step": "1"}
    for name, units in expected_units.items():
        assert ds[name].attrs["units"] == units, name
    for name in (*SERIES, "conductance", "n_edges", "step", "time", "conductance_step",
                 "conductance_time", "realization", "lambda", "edge_from", "edge_to"):
        assert ds[name].attrs.get("long_name"), name
    for name in ds.variables:
        if name in VARIABLES:
            assert (ds[name].attrs["units"], ds[name].attrs["long_name"]) == VARIABLES[name]


def test_every_variable_has_units_and_long_name(quick):
    _, ds = quick
    missing = [n for n in ds.variables if not ({"units", "long_name"} <= set(ds[n].attrs))]
    assert missing == []


def test_result_global_attributes(quick):
    _, ds = quick
    a = ds.attrs
    assert a["Conventions"] == "CF-1.8"
    assert a["title"] == tomllib.loads(QUICKSTART.read_text())["title"]
    assert a["source"] == f"edgesim {edgesim.__version__}"
    assert edgesim.__version__ in a["history"] and "created" in a["history"]
    assert a["edgesim_version"] == edgesim.__version__
    assert a["engine"] == "synchronous"
    assert int(a["seed"]) == 1
    assert a["network"].startswith("jammed network") and a["task"] == "edge regression"
    assert a["learning_rule"] == "coupled"


def test_result_scenario_json_round_trips(quick):
    _, ds = quick
    source = json.loads(ds.attrs["scenario"])
    assert isinstance(source, dict)
    assert source["run"]["steps"] == 40 and source["run"]["seed"] == 1
    assert source["sweep"]["lambda"] == [0.0, 1e-2]
    # The stored scenario is the scenario that ran: re-parsing it gives the same configuration.
    assert parse_scenario(source) == load_scenario(QUICKSTART, QUICK_SET)


def test_result_padding_and_network(quick):
    """Realizations with fewer edges are padded with NaN conductances and -1 edge ends."""
    _, ds = quick
    n_edges = ds.n_edges.values
    assert n_edges[0] != n_edges[1]  # the first two shipped N = 64 networks differ in size
    for r, n in enumerate(n_edges):
        k = ds.conductance.isel(realization=r).values
        assert np.isfinite(k[..., :n]).all()
        assert np.isnan(k[..., n:]).all()
        assert (ds.edge_from.values[r, n:] == -1).all() and (ds.edge_to.values[r, n:] == -1).all()
        assert (ds.edge_from.values[r, :n] >= 0).all() and (ds.edge_to.values[r, :n] >= 0).all()
        # initial_spread = 0: every edge starts at kappa = 1.
        np.testing.assert_array_equal(k[:, 0, :n], 1.0)
        # The learning changed the conductances.
        assert np.any(k[:, -1, :n] != 1.0)


def test_result_without_sweep_has_lambda_variable_and_outputs(tmp_path):
    """No sweep: lambda is a data variable; one training example: per-example outputs are kept."""
    out = tmp_path / "allostery.nc"
    assert _cli_run(ALLOSTERY, out, ["run.steps=20", "run.realizations=2", "learning.lambda=0.25"]) == 0
    ds = open_result(out)
    assert ds.error_train.dims == ("realization", "step")
    assert ds["lambda"].dims == ("realization", "step") and "lambda" in ds.data_vars
    assert (ds["lambda"].values == 0.25).all()
    assert ds.output_free.dims == ("realization", "step", "output", "example")
    assert ds.output_free.shape[2:] == (3, 1)
    np.testing.assert_array_equal(ds.output_desired.values[..., 0], 3.0)  # output_voltages = [3, 3, 3]
    # error_train is the mean squared difference of these outputs.
    np.testing.assert_allclose(ds.error_train.values,
                               ((ds.output_free - ds.output_desired) ** 2).mean(("output", "example")).values,
                               rtol=1e-12)
    np.testing.assert_array_equal(ds.time.values, ds.step.values * 0.25)
    assert ds.attrs["learning_rule"] == "sign"


def test_write_then_open_is_identical(tmp_path):
    ds = run_scenario(load_scenario(ALLOSTERY, ["run.steps=10"]), progress=False)
    path = write_netcdf(ds, tmp_path / "a" / "b.nc")
    assert path == tmp_path / "a" / "b.nc"
    back = open_result(path)
    xr.testing.assert_identical(back, ds)
    assert _leftovers(tmp_path) == ["a/b.nc"]


# --------------------------------------------------------------------------
# reproducibility
# --------------------------------------------------------------------------

def test_same_seed_identical_results(quick, tmp_path):
    path, first = quick
    again = tmp_path / "again.nc"
    assert _cli_run(QUICKSTART, again, QUICK_SET) == 0
    second = open_result(again)
    assert _no_history(first).identical(_no_history(second))
    xr.testing.assert_identical(_no_history(first), _no_history(second))


def test_different_seed_changes_task_and_results(quick, tmp_path):
    _, first = quick
    other = tmp_path / "seed7.nc"
    assert _cli_run(QUICKSTART, other, QUICK_SET, "--seed", "7") == 0
    ds = open_result(other)
    assert int(ds.attrs["seed"]) == 7
    assert json.loads(ds.attrs["scenario"])["run"]["seed"] == 7
    # Same networks, different edge-regression draws (source/target edges, ground, data):
    np.testing.assert_array_equal(ds.n_edges.values, first.n_edges.values)
    np.testing.assert_array_equal(ds.edge_from.values, first.edge_from.values)
    e0_new = ds.error_train.isel(step=0).values
    e0_old = first.error_train.isel(step=0).values
    assert np.all(e0_new != e0_old)
    assert not np.allclose(ds.error_train.values, first.error_train.values)
    assert not np.allclose(ds.free_power.values, first.free_power.values)


def _toml(lam_line: str, sweep: str = "") -> str:
    """A small edge-regression scenario (2 jammed networks, 40 steps) as TOML text."""
    return f"""
title = "stacking test"
[run]
seed = 3
steps = 40
realizations = 2
record_points = 12
step_duration = 0.5
[network]
kind = "jammed"
size = 64
realization = 1
[task]
kind = "edge_regression"
n_train = 20
n_test = 30
[learning]
rule = "coupled"
alpha = 0.5
eta = 1e-3
kappa = 1.0
{lam_line}
{sweep}
"""


def test_sweep_equals_single_runs(tmp_path):
    """A lambda sweep gives, slice by slice, the results of separate single-lambda runs.

    Here exact equality is expected in practice: the sweep's stack contains
    the same networks as each single run, so every system is padded to the
    same size and sees the same floating-point operations (per-system dense
    solves, per-system reductions).  We still compare with a 1e-12 relative
    tolerance, because bitwise equality across different stack sizes is not
    part of the contract (BLAS may block a batched product differently) and
    a change of that kind would not be a physics bug.
    """
    lambdas = [0.0, 1e-2]
    sweep_file = tmp_path / "sweep.toml"
    sweep_file.write_text(_toml("", f"[sweep]\nlambda = {lambdas!r}\n"))
    assert _cli_run(sweep_file, tmp_path / "sweep.nc") == 0
    swept = open_result(tmp_path / "sweep.nc")
    assert swept.error_train.dims == ("lambda", "realization", "step")
    for lam in lambdas:
        single_file = tmp_path / f"single_{lam}.toml"
        single_file.write_text(_toml(f"lambda = {lam!r}"))
        assert _cli_run(single_file, tmp_path / f"single_{lam}.nc") == 0
        single = open_result(tmp_path / f"single_{lam}.nc")
        part = swept.sel({"lambda": lam})
        assert (single["lambda"].values == lam).all()
        for coord in ("step", "time", "conductance_step", "realization", "edge"):
            np.testing.assert_array_equal(part[coord].values, single[coord].values)
        for name in (*SERIES, "conductance"):
            a, b = part[name].values, single[name].values
            assert a.shape == b.shape, name
            np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=0, equal_nan=True, err_msg=name)
        for name in ("n_edges", "edge_from", "edge_to"):
            np.testing.assert_array_equal(part[name].values, single[name].values)


def test_stack_size_changes_results_only_by_round_off():
    """run.max_stack splits the systems into separate stacks.

    Each stack is padded to its largest network, so systems of a smaller
    stack are solved with matrices of another size and the floating-point
    summation order changes: agreement is to round-off, not bitwise.
    """
    base = QUICK_SET + ["run.steps=30"]
    stacked = run_scenario(load_scenario(QUICKSTART, base), progress=False)
    split = run_scenario(load_scenario(QUICKSTART, base + ["run.max_stack=1"]), progress=False)
    for name in (*SERIES, "conductance"):
        np.testing.assert_allclose(split[name].values, stacked[name].values, rtol=1e-9, atol=0,
                                   equal_nan=True, err_msg=name)


def test_kappa_sweep_sets_initial_conductance_and_scales_power():
    """Each kappa slice starts at k = kappa; with fixed boundary voltages the power scales with kappa."""
    ds = run_scenario(load_scenario(QUICKSTART, ["run.steps=3", "run.realizations=2",
                                                 "sweep.kappa=[0.1, 3.0]"]), progress=False)
    # The file's lambda sweep stays; kappa becomes a second sweep dimension, in scenario order.
    assert ds.error_train.dims == ("lambda", "kappa", "realization", "step")
    np.testing.assert_array_equal(ds.kappa.values, [0.1, 3.0])
    assert ds.kappa.attrs["units"] == "S"
    n = ds.n_edges.values
    for kappa in (0.1, 3.0):
        k0 = ds.conductance.sel(kappa=kappa).isel(conductance_step=0).values
        for r in range(2):
            np.testing.assert_array_equal(k0[..., r, :n[r]], kappa)
    p = ds.free_power.isel(step=0)
    np.testing.assert_allclose((p.sel(kappa=3.0) / p.sel(kappa=0.1)).values, 30.0, rtol=1e-10)
    e = ds.error_train.isel(step=0)  # node voltages do not depend on a uniform scale of k
    np.testing.assert_allclose(e.sel(kappa=3.0).values, e.sel(kappa=0.1).values, rtol=1e-10)


def test_realization_results_do_not_depend_on_realization_count():
    """Realization r's network, task and initial state depend only on (seed, r)."""
    two = run_scenario(load_scenario(QUICKSTART, QUICK_SET + ["run.steps=20"]), progress=False)
    three = run_scenario(load_scenario(QUICKSTART, QUICK_SET + ["run.steps=20", "run.realizations=3"]),
                         progress=False)
    part = three.isel(realization=slice(0, 2))
    for name in SERIES:
        np.testing.assert_allclose(part[name].values, two[name].values, rtol=1e-9, atol=0, err_msg=name)


# --------------------------------------------------------------------------
# energy bookkeeping
# --------------------------------------------------------------------------

@pytest.mark.parametrize("scenario, overrides", [
    (QUICKSTART, ["run.steps=30", "run.realizations=2", "run.record_every=1", "run.step_duration=0.25",
                  "sweep.lambda=[0.0, 1e-2]"]),
    # Sign rule, full batch (one allostery example).
    (ALLOSTERY, ["run.steps=30", "run.record_every=1"]),
], ids=["coupled", "sign"])
def test_training_energy_is_integral_of_free_power(scenario, overrides):
    """With every step recorded, the training energy is the sum of the free power times step_duration.

    The energy at step s is accumulated over the s updates done so far, i.e.
    over the states at steps 0 .. s-1 (the power of the final state, after
    the last update, is not part of any interval).
    """
    s = load_scenario(scenario, overrides)
    ds = run_scenario(s, progress=False)
    dt = s.run.step_duration
    np.testing.assert_array_equal(ds.step.values, np.arange(s.run.steps + 1))
    free, clamped = ds.free_power.values, ds.clamped_power.values
    energy, total = ds.training_energy.values, ds.training_energy_total.values
    np.testing.assert_allclose(energy[..., -1], free[..., :-1].sum(-1) * dt, rtol=1e-12, atol=0)
    np.testing.assert_allclose(energy[..., 1:], np.cumsum(free[..., :-1], -1) * dt, rtol=1e-12, atol=0)
    np.testing.assert_allclose(total[..., 1:], np.cumsum((free + clamped)[..., :-1], -1) * dt,
                               rtol=1e-12, atol=0)
    assert (energy[..., 0] == 0).all() and (total[..., 0] == 0).all()
    assert (total >= energy).all()
    assert (np.diff(energy, axis=-1) > 0).all()
    assert (free > 0).all() and (clamped > 0).all()


def test_training_energy_total_bounds_training_energy(quick):
    _, ds = quick
    assert (ds.training_energy_total >= ds.training_energy).all()
    assert (ds.training_energy.isel(step=-1) > 0).all()
    assert (ds.training_energy.diff("step") >= 0).all()


def test_energy_scales_with_step_duration():
    a = run_scenario(load_scenario(ALLOSTERY, ["run.steps=15", "run.step_duration=1.0"]), progress=False)
    b = run_scenario(load_scenario(ALLOSTERY, ["run.steps=15", "run.step_duration=0.125"]), progress=False)
    np.testing.assert_array_equal(a.free_power.values, b.free_power.values)
    np.testing.assert_allclose(b.training_energy.values, 0.125 * a.training_energy.values, rtol=1e-14)
    np.testing.assert_array_equal(b.time.values, 0.125 * a.time.values)


# --------------------------------------------------------------------------
# atomic writes
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_ds():
    return run_scenario(load_scenario(ALLOSTERY, ["run.steps=5"]), progress=False)


def _failing_to_netcdf(exc):
    def to_netcdf(self, path=None, *args, **kwargs):
        Path(path).write_bytes(b"CDF\x01 partial")  # the file exists when the write dies
        raise exc
    return to_netcdf


@pytest.mark.parametrize("exc", [OSError("disk full"), RuntimeError("HDF error"), KeyboardInterrupt()],
                         ids=["OSError", "RuntimeError", "KeyboardInterrupt"])
def test_failed_write_leaves_nothing(small_ds, tmp_path, monkeypatch, exc):
    monkeypatch.setattr(xr.Dataset, "to_netcdf", _failing_to_netcdf(exc))
    target = tmp_path / "out" / "result.nc"
    with pytest.raises(type(exc)):
        write_netcdf(small_ds, target)
    assert not target.exists()
    assert _leftovers(tmp_path) == []


def test_failed_write_keeps_previous_file(small_ds, tmp_path, monkeypatch):
    target = tmp_path / "result.nc"
    write_netcdf(small_ds, target)
    before = target.read_bytes()
    monkeypatch.setattr(xr.Dataset, "to_netcdf", _failing_to_netcdf(OSError("disk full")))
    with pytest.raises(OSError):
        write_netcdf(small_ds, target)
    assert target.read_bytes() == before
    assert _leftovers(tmp_path) == ["result.nc"]


def test_failed_write_in_cli_leaves_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(xr.Dataset, "to_netcdf", _failing_to_netcdf(OSError("disk full")))
    out_dir = tmp_path / "out"
    code = _cli_run(ALLOSTERY, out_dir / "result.nc", ["run.steps=5"])
    assert code == 2 and "disk full" in capsys.readouterr().err
    assert _leftovers(out_dir) == []


def test_result_file_permissions_follow_umask(small_ds, tmp_path):
    old = os.umask(0o022)
    try:
        path = write_netcdf(small_ds, tmp_path / "r.nc")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


# --------------------------------------------------------------------------
# safe outputs
# --------------------------------------------------------------------------

def test_existing_output_is_refused_without_overwrite(tmp_path, capsys):
    out = tmp_path / "r.nc"
    out.write_text("keep me")
    assert _cli_run(QUICKSTART, out, QUICK_SET) == 2
    err = capsys.readouterr().err
    assert f"output {out} exists; pass --overwrite" in err and err.count("\n") == 1
    assert out.read_text() == "keep me"
    assert _cli_run(QUICKSTART, out, QUICK_SET, "--overwrite") == 0
    assert open_result(out).sizes["realization"] == 2


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "a-folder", "is a folder"),
    (lambda d: d / "file.txt" / "r.nc", "is a file, so the folder"),
    (lambda d: d / "locked" / "r.nc", "is not writable"),
])
def test_bad_output_path_is_refused_before_the_run(tmp_path, capsys, monkeypatch, make, message):
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked").chmod(0o500)
    if message == "is not writable" and os.access(tmp_path / "locked", os.W_OK):
        monkeypatch.setattr(os, "access", lambda p, mode: not str(p).endswith("locked"))  # root can write anyway
    import edgesim.runner
    import edgesim.streaming

    ran = []
    monkeypatch.setattr(edgesim.runner, "run_scenario", lambda *a, **k: ran.append(1))
    monkeypatch.setattr(edgesim.streaming, "run_streaming", lambda *a, **k: ran.append(1))
    monkeypatch.setattr(edgesim.runner.RunPlan, "of", lambda *a, **k: ran.append(1))  # not even the networks
    out = make(tmp_path)
    assert _cli_run(QUICKSTART, out, QUICK_SET) == 2
    err = capsys.readouterr().err
    assert message in err and str(out) in err and ".part" not in err
    assert not ran  # refused before any work


def test_a_run_in_memory_too_big_for_memory_is_refused_with_the_fix(tmp_path, capsys, monkeypatch):
    """Engine runs keep their records in memory: refused when they would not fit."""
    monkeypatch.setattr("edgesim.cli._available_memory", lambda: 2**20)
    out = tmp_path / "big.nc"
    assert _cli_run(SCENARIOS / "desync.toml", out, ["run.record_every=1"]) == 2
    err = capsys.readouterr().err
    assert "GiB of memory" in err and "run.conductance_every" in err and not out.exists()


def test_a_streamed_run_too_big_for_the_disk_is_refused_with_the_fix(tmp_path, capsys):
    """The lambda study recording every step would take ~14 GiB of file; streamed, memory is not the limit."""
    import shutil
    from collections import namedtuple

    out = tmp_path / "big.nc"
    usage = namedtuple("usage", "total used free")
    real = shutil.disk_usage
    shutil.disk_usage = lambda path: usage(2**40, 2**40 - 2**30, 2**30)
    try:
        assert _cli_run(SCENARIOS / "stern2024_lambda.toml", out, ["run.record_every=1"]) == 2
    finally:
        shutil.disk_usage = real
    err = capsys.readouterr().err
    assert "GiB, more than the free space" in err and "run.conductance_every" in err and not out.exists()


def test_sigterm_ends_a_run_with_one_line_and_exit_130(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "long.nc"
    proc = subprocess.Popen([sys.executable, "-m", "edgesim.cli", "run", str(SCENARIOS / "stern2024_lambda.toml"),
                             "-o", str(out), "--quiet", "--set", "run.max_stack=50"], stderr=subprocess.PIPE,
                            text=True)
    deadline = time.time() + 120
    while not (tmp_path / "long.nc.checkpoint").exists() and time.time() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    partial = tmp_path / "long.partial.nc"
    assert err.strip() == (f"edgesim: interrupted; the records so far are in {partial}; continue with the same "
                           "command and --resume")
    assert not out.exists() and not list(tmp_path.glob("*.part"))
    assert "incomplete" in open_result(partial).attrs["status"]  # kept, readable, and resumable


# --------------------------------------------------------------------------
# provenance and rerun
# --------------------------------------------------------------------------

def test_rerun_reproduces_a_result_made_with_overrides(tmp_path, capsys):
    first, again = tmp_path / "a.nc", tmp_path / "b.nc"
    overrides = QUICK_SET + ["learning.alpha=0.3", "run.seed=5"]
    assert _cli_run(QUICKSTART, first, overrides) == 0
    assert main(["rerun", str(first), "-o", str(again), "--quiet"]) == 0
    a, b = open_result(first), open_result(again)
    assert set(a.variables) == set(b.variables)
    for name in a.variables:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
    assert {k: v for k, v in a.attrs.items() if k != "history"} == {k: v for k, v in b.attrs.items() if k != "history"}
    assert "--set learning.alpha=0.3" in a.attrs["history"] and f"rerun of {first}" in b.attrs["history"]
    versions = json.loads(a.attrs["package_versions"])
    assert versions["edgesim"] == edgesim.__version__ and {"numpy", "scipy", "simpy", "xarray", "netCDF4"} <= set(versions)


@pytest.mark.parametrize("command", ["inspect", "rerun"])
def test_foreign_or_corrupt_files_are_one_line_errors(tmp_path, capsys, command):
    foreign = tmp_path / "foreign.nc"
    xr.Dataset({"x": ("t", np.arange(3.0))}).to_netcdf(foreign)
    corrupt = tmp_path / "corrupt.nc"
    corrupt.write_bytes(b"this is not netCDF")
    for path, message in ((foreign, "not an edgesim result"), (corrupt, "cannot be read as a netCDF result")):
        extra = ["-o", str(tmp_path / "out.nc")] if command == "rerun" else []
        assert main([command, str(path), *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and str(path) in err and err.count("\n") == 1
        assert not (tmp_path / "out.nc").exists()


def test_summary_has_one_line_per_sweep_value_and_units(tmp_path, capsys):
    assert _cli_run(QUICKSTART, tmp_path / "q.nc", QUICK_SET) == 0
    out = capsys.readouterr().out
    assert "lambda = 0: training error" in out and "lambda = 0.01: training error" in out
    assert out.count(" V^2 (median ratio") == 2


def test_summary_of_a_tracking_task_shows_the_error_before_each_target_change(tmp_path, capsys):
    assert _cli_run(SCENARIOS / "dillavou2022_divider.toml", tmp_path / "d.nc", ["run.steps=300"]) == 0
    line = [l for l in capsys.readouterr().out.splitlines() if "before each target change" in l][0]
    values = [float(v) for v in line.split(":")[1].split(",")]
    ds = open_result(tmp_path / "d.nc")
    expected = [float(ds.error_train.sel(step=s, method="pad").isel(realization=0)) for s in (99, 199, 299)]
    np.testing.assert_allclose(values, expected, rtol=0.05, atol=1e-30)


def test_stored_edge_subset_float32_and_compression(tmp_path):
    """run.conductance_edges / conductance_dtype / compress change what is stored, not the run."""
    full, small = tmp_path / "full.nc", tmp_path / "small.nc"
    assert _cli_run(QUICKSTART, full, QUICK_SET) == 0
    assert _cli_run(QUICKSTART, small, QUICK_SET + ["run.conductance_edges=[0, 5, 7]", "run.compress=true",
                                                    "run.conductance_dtype='float32'"]) == 0
    a, b = open_result(full), open_result(small)
    np.testing.assert_array_equal(b.edge.values, [0, 5, 7])
    np.testing.assert_array_equal(b.conductance.values, a.conductance.isel(edge=[0, 5, 7]).values.astype(np.float32))
    np.testing.assert_array_equal(b.error_train.values, a.error_train.values)
    np.testing.assert_array_equal(b.edge_from.values, a.edge_from.isel(edge=[0, 5, 7]).values)
    assert small.stat().st_size < full.stat().st_size
    with xr.open_dataset(small) as stored:
        assert stored.conductance.encoding["dtype"] == np.float32 and stored.error_train.encoding["zlib"]
    with pytest.raises(Exception, match=r"run\.conductance_edges: edge 999 does not exist"):
        run_scenario(load_scenario(QUICKSTART, QUICK_SET + ["run.conductance_edges=[999]"]))


def test_a_folder_or_an_edited_scenario_attribute_is_a_one_line_error(tmp_path, capsys, quick):
    assert main(["inspect", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    ds = open_result(quick[0])
    ds.attrs["scenario"] = "{not json"
    edited = tmp_path / "edited.nc"
    write_netcdf(ds, edited)
    assert main(["rerun", str(edited), "-o", str(tmp_path / "out.nc")]) == 2
    err = capsys.readouterr().err
    assert "scenario attribute is not valid JSON" in err and str(edited) in err and err.count("\n") == 1


def test_summary_of_the_lambda_study_has_a_line_per_lambda(tmp_path, capsys):
    """The published lambda grid (18 values) is summarised value by value, not pooled."""
    assert _cli_run(SCENARIOS / "stern2024_lambda.toml", tmp_path / "l.nc", ["run.steps=3", "run.realizations=1"]) == 0
    out = capsys.readouterr().out
    assert out.count(": training error") == 18 and "pooled" not in out
