"""The analysis/ scripts: every one writes a figure from a small result of its scenario family, and a
wrong kind of file is a one-line error naming the variable the script needs (no traceback)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from edgesim.results import write_netcdf
from edgesim.runner import run_scenario
from edgesim.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent
ANALYSIS = ROOT / "analysis"
SCENARIOS = ROOT / "scenarios"

#: name -> (scenario, overrides): small runs of every shipped family (a few seconds in all)
RUNS = {
    "lambda": ("stern2024_lambda", ["run.steps=200", "run.realizations=2", "run.record_points=20",
                                    "sweep.lambda=[0.0, 1e-4, 1e-3, 1e-2]"]),
    "kappa": ("stern2024_kappa", ["run.steps=200", "run.realizations=2", "run.record_points=20",
                                  "sweep.kappa=[0.1, 1.0, 10.0]"]),
    "quickstart": ("quickstart", ["run.steps=200", "run.realizations=2"]),
    "divider": ("dillavou2022_divider", ["run.steps=300"]),
    "allostery": ("dillavou2022_allostery", ["run.steps=200"]),
    "regression": ("dillavou2022_regression", ["run.steps=300", "run.record_every=10"]),
    "iris": ("dillavou2022_iris", ["run.steps=300"]),
    "desync": ("desync", ["run.steps=200", "run.record_points=30"]),
    "desync_taps": ("desync_taps", ["run.steps=200", "run.record_points=30"]),
    "jitter": ("jitter_noise", ["run.steps=100"]),
    "leaky": ("leaky_memory", ["run.steps=200"]),
    "damage": ("dillavou2022_damage", ["run.steps=300", "damage.event=[{step=100, edges=[8]}, {step=200, edges=[7]}]"]),
    "pruning": ("pruning_sweep", ["run.steps=60", "run.realizations=2", "run.record_every=10",
                                  "sweep.fraction=[0.0, 0.5]", "damage.removal=[{step=30, fraction=0.1}]"]),
    "control": ("stern2024_lambda_control", ["run.steps=300", "run.realizations=1", "sweep.tolerance=[1e-2]",
                                             "run.record_points=20"]),
}
RUNS["xor"] = ("dillavou2024_xor", ["run.steps=100", "run.realizations=2", "run.record_every=10"])
RUNS["early_stop"] = (RUNS["control"][0], RUNS["control"][1] + [
    "control.kind='constant'", "control.early_stop=true", "learning.lambda=0.0"])


def script(name):
    """An analysis script loaded from its path (as the other tests load them)."""
    spec = importlib.util.spec_from_file_location(f"analysis_{name}", ANALYSIS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    """``result(name)``: the path of the small result ``name`` of RUNS, made once per module."""
    folder = tmp_path_factory.mktemp("results")
    made = {}

    def get(name):
        if name not in made:
            scenario, overrides = RUNS[name]
            ds = run_scenario(load_scenario(SCENARIOS / f"{scenario}.toml", overrides), progress=False)
            made[name] = write_netcdf(ds, folder / f"{name}.nc")
        return str(made[name])

    return get


#: script, the results it is given, extra arguments
FIGURES = [
    ("plot_stern2024", ["lambda", "kappa", "quickstart"], []),
    ("plot_divider", ["divider"], []),
    ("plot_allostery_regression", ["allostery", "regression"], []),
    ("plot_iris", ["iris"], []),
    ("desync_table", ["desync"], []),
    ("desync_table", ["desync_taps"], ["--updates", "5", "10"]),
    ("plot_jitter_noise", ["jitter"], []),
    ("plot_leaky_memory", ["leaky"], []),
    ("plot_damage", ["damage"], []),
    ("plot_pruning", ["pruning"], []),
    ("plot_lambda_control", ["control", "early_stop"], []),
    ("plot_xor", ["xor"], []),
]


@pytest.mark.parametrize("name, inputs, extra", FIGURES, ids=[f"{f[0]}-{f[1][0]}" for f in FIGURES])
def test_every_analysis_script_writes_a_figure(name, inputs, extra, result, tmp_path, capsys):
    out = tmp_path / "figure.png"
    assert script(name).main([result(i) for i in inputs] + extra + ["--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 10_000
    assert f"wrote {out}" in capsys.readouterr().out


#: script, a result of the wrong kind, arguments after it, what the one-line error must name
WRONG = [
    ("plot_stern2024", "iris", [], "'lambda' or 'kappa'"),
    ("plot_divider", "iris", [], "'output_desired'"),
    ("plot_divider", "allostery", [], "task.kind = 'divider'"),
    ("plot_iris", "allostery", [], "'accuracy_test'"),
    ("plot_xor", "allostery", [], "task.kind = 'xor'"),
    ("desync_table", "quickstart", [], "'update_probability'"),
    ("plot_jitter_noise", "desync", [], "'noise_std'"),
    ("plot_leaky_memory", "jitter", [], "'leak_time'"),
    ("plot_damage", "allostery", [], "'damage_time'"),
    ("plot_pruning", "damage", [], "'fraction'"),
    ("plot_lambda_control", "desync", ["early_stop"], "'training_energy_to_tolerance'"),
]


@pytest.mark.parametrize("name, wrong, more, needs", WRONG, ids=[f"{w[0]}-{w[1]}" for w in WRONG])
def test_a_wrong_kind_of_file_is_a_one_line_error_naming_the_variable(name, wrong, more, needs, result, tmp_path,
                                                                       capsys):
    out = tmp_path / "figure.png"
    code = script(name).main([result(wrong)] + [result(m) for m in more] + ["--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"{name}.py: error: ")
    assert needs in err and "needs" in err and f"{wrong}.nc" in err
    assert not out.exists()


def test_allostery_regression_script_accepts_any_training_run_but_not_another_netcdf(result, tmp_path, capsys):
    """Every result has training and test errors; a netCDF file that edgesim did not write is refused."""
    other = tmp_path / "other.nc"
    xr.Dataset({"x": ("t", np.arange(3.0))}).to_netcdf(other)
    mod = script("plot_allostery_regression")
    assert mod.main([str(other), "--out", str(tmp_path / "a.png")]) == 2
    assert "not an edgesim result" in capsys.readouterr().err
    text = tmp_path / "notes.nc"
    text.write_text("not netCDF\n")
    assert mod.main([str(text), "--out", str(tmp_path / "a.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot be read" in err
    assert mod.main([str(tmp_path / "missing.nc"), "--out", str(tmp_path / "a.png")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_command_line_error_has_no_traceback(result, tmp_path):
    out = tmp_path / "iris.png"
    proc = subprocess.run([sys.executable, str(ANALYSIS / "plot_iris.py"), result("allostery"), "--out", str(out)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and "'accuracy_train'" in proc.stderr and "iris" in proc.stderr
    assert not out.exists()


def test_command_line_figure(result, tmp_path):
    """Run as ``python analysis/NAME.py RESULT.nc --out FIG.png`` from anywhere."""
    out = tmp_path / "figs" / "divider.png"
    proc = subprocess.run([sys.executable, str(ANALYSIS / "plot_divider.py"), result("divider"), "--out", str(out)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 10_000


def test_desync_table_still_prints_without_a_figure(result, capsys):
    assert script("desync_table").main([result("desync"), "--updates", "5", "10"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["p", "U=5", "U=10"]
    assert [float(line.split()[0]) for line in lines[2:5]] == [1.0, 0.5, 0.1]


def test_stern_script_keeps_its_former_options(result, tmp_path):
    """``--lambda-file``/``--kappa-file`` and an ``--out`` folder (the former interface)."""
    folder = tmp_path / "figures"
    folder.mkdir()
    mod = script("plot_stern2024")
    assert mod.main(["--lambda-file", result("lambda"), "--kappa-file", result("kappa"), "--out", str(folder)]) == 0
    assert (folder / "stern2024.png").stat().st_size > 10_000
    assert mod.main(["--lambda-file", result("kappa"), "--out", str(folder)]) == 2


def test_short_runs_are_noted_on_the_figure(result, tmp_path, capsys):
    """A shortened Stern lambda sweep cannot show the lambda^2 scaling: the script says so."""
    script("plot_stern2024").main([result("lambda"), "--out", str(tmp_path / "s.png")])
    assert "note: Shortened run (200 steps, fewer than 100000)" in capsys.readouterr().out
    script("plot_allostery_regression").main([result("allostery"), "--out", str(tmp_path / "a.png")])
    assert "Shortened run" not in capsys.readouterr().out  # 200 steps show the published drop


# ---------------------------------------------------------------------------
# The shared loading module
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def loading():
    """The module the scripts share (the copy they import)."""
    script("plot_iris")
    return sys.modules["loading"]


def test_sweep_dims_and_labels_are_generic(loading):
    """Any dimension before ``realization`` is a sweep, dotted names included; labels come from the
    long_name and units attributes, or the name itself."""
    ds = xr.Dataset(
        {"error_train": (("network.size", "noise_std", "realization", "step"), np.ones((2, 3, 1, 4)),
                         {"units": "V2", "long_name": "mean squared error"})},
        coords={"network.size": [64, 128], "noise_std": ("noise_std", [0.0, 0.01, 0.1], {"units": "V"}),
                "step": np.arange(4)})
    assert loading.sweep_dims(ds) == ["network.size", "noise_std"]
    assert loading.axis_label(ds, "error_train") == "mean squared error (V$^{2}$)"
    assert loading.axis_label(ds, "error_train", "training error") == "training error (V$^{2}$)"
    assert loading.axis_label(ds, "network.size") == "network.size"
    assert loading.dim_label(ds, "noise_std") == "noise_std (V)"
    assert loading.units_text("S V-2") == "S V$^{-2}$" and loading.units_text("1") == ""
    labels = [label for label, _ in loading.sweep_points(ds)]
    assert labels[0] == "network.size = 64, noise_std = 0" and len(labels) == 6
    assert [label for label, _ in loading.sweep_points(ds, ["noise_std"])] == ["0", "0.01", "0.1"]
    one, note = loading.first_of_others(ds, keep=("noise_std",))
    assert "network.size" not in one.dims and note.startswith("network.size = 64")


def test_require_names_the_missing_variables_and_dims(loading):
    ds = xr.Dataset({"error_train": (("realization", "step"), np.ones((1, 2)))},
                    attrs={"scenario": '{"task": {"kind": "allostery"}}'})
    ds.encoding["source"] = "x.nc"
    with pytest.raises(loading.AnalysisError) as info:
        loading.require(ds, "error_train", "accuracy_test", script="plot_iris.py", made_by="an Iris run",
                        dims=("lambda",))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("x.nc: plot_iris.py needs the variable 'accuracy_test' and the sweep dimension "
                               "'lambda', which a result of an Iris run has")
    assert "task.kind = 'allostery'" in message
    assert loading.require(ds, "error_train", script="s", made_by="m") is ds


def test_many_sweep_values_get_distinct_colours(loading):
    for n in (3, 18):
        colours = loading.colours(n)
        assert len({tuple(np.round(c, 6)) for c in colours}) == n
