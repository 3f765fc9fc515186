"""Sweeps over any scenario value, run as parts on a process pool or a dask cluster (edgesim.sweep).

Contract: a sweep's parts are a pure function of the scenario, the seed and
the part's sweep values, so the combined result never depends on the
executor, the number of workers, the order in which parts finish or on a
restart after a kill; and it equals the same scenario run in one process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from result_support import assert_same_values, set_options

from edgesim.cli import main
from edgesim.results import open_result
from edgesim.runner import run_scenario
from edgesim.scenario import ScenarioError, load_scenario
from edgesim.sweep import SWEEP_FILE, collect, run_sweep, sweep_parts

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
QUICKSTART = SCENARIOS / "quickstart.toml"
DIVIDER = SCENARIOS / "dillavou2022_divider.toml"

#: 2 lambda x 2 network sizes (4 parts), 2 realizations each, 60 steps.
SMALL = ["run.steps=60", "run.realizations=2", "run.record_points=10", "sweep.lambda=[0.0, 1e-2]",
         "sweep.network.size=[64, 128]"]


@pytest.fixture(scope="module")
def small():
    return load_scenario(QUICKSTART, SMALL)


@pytest.fixture(scope="module")
def pool_sweep(small, tmp_path_factory):
    folder = tmp_path_factory.mktemp("pool") / "parts"
    run_sweep(small, folder, jobs=2, progress=False)
    return folder, collect(folder)


# --------------------------------------------------------------------------
# sweep keys
# --------------------------------------------------------------------------

def test_dotted_keys_in_toml_quoted_and_from_the_command_line(tmp_path):
    text = QUICKSTART.read_text().replace("[sweep]\nlambda = [0.0, 1e-4, 1e-2]",
                                          '[sweep]\nlambda = [0.0]\nnetwork.size = [64, 128]\n"task.n_train" = [5]')
    path = tmp_path / "s.toml"
    path.write_text(text)
    s = load_scenario(path)
    assert s.sweep == {"lambda": (0.0,), "network.size": (64, 128), "task.n_train": (5,)}
    assert load_scenario(QUICKSTART, ["sweep.network.size=[64]"]).sweep["network.size"] == (64,)


def test_section_form_of_an_in_process_key_is_the_short_name():
    s = load_scenario(QUICKSTART, ["sweep={}", "sweep.learning.lambda=[0.0, 1e-3]", "sweep.learning.eta=[0.1]"])
    assert s.sweep == {"lambda": (0.0, 1e-3), "eta": (0.1,)} and s.dotted_sweep == {}


@pytest.mark.parametrize("override, message", [
    ("sweep.network.siz=[64]", "did you mean 'network.size'"),
    ("sweep.netwrk.size=[64]", "did you mean 'sweep.network'"),
    ("sweep.lamda=[0.1]", "did you mean 'sweep.lambda'"),
    ("sweep.network.kind=['jammed', 'bogus']", "sweep.network.kind = 'bogus'"),
    ("sweep.run.seed=[1, 2]", "raise run.realizations"),
    ("sweep.task.n_train=[]", "non-empty list"),
    ("sweep.task.n_train=[[1, 2]]", "single number"),
    ("sweep.comparator.noise_std=[0.1]", "only apply to the autonomous-edge engines"),
])
def test_bad_sweep_keys_and_values_are_clear_errors(override, message):
    with pytest.raises(ScenarioError, match=message.replace(".", r"\.").replace("[", r"\[")):
        load_scenario(QUICKSTART, [override])


def test_a_sweep_over_a_missing_key_is_a_one_line_cli_error(tmp_path, capsys):
    assert main(["sweep", str(QUICKSTART), "--out", str(tmp_path / "d"), "--set", "sweep.network.siz=[64]"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'network.size'" in err and err.count("\n") == 1 and not (tmp_path / "d").exists()


def test_point_sets_the_values_and_drops_them_from_the_sweep(small):
    point = small.point({"lambda": 1e-2, "network.size": 128})
    assert point.sweep == {} and point.learning.lambda_ == 1e-2 and point.network.size == 128
    assert [p.values for p in sweep_parts(small)] == [
        {"lambda": 0.0, "network.size": 64}, {"lambda": 0.0, "network.size": 128},
        {"lambda": 1e-2, "network.size": 64}, {"lambda": 1e-2, "network.size": 128}]


# --------------------------------------------------------------------------
# one process: scenario-wide keys
# --------------------------------------------------------------------------

def test_a_network_size_sweep_is_the_single_runs_side_by_side(small):
    ds = run_scenario(small, progress=False)
    assert ds.error_train.dims == ("lambda", "network.size", "realization", "step")
    assert ds.n_edges.dims == ("network.size", "realization")
    for size in (64, 128):
        single = run_scenario(load_scenario(QUICKSTART, SMALL[:-1] + [f"network.size={size}"]), progress=False)
        part = ds.sel({"network.size": size}).isel(edge=slice(0, single.sizes["edge"]))
        for name in ("error_train", "free_power", "conductance", "n_edges", "edge_from"):
            np.testing.assert_array_equal(part[name].values, single[name].values, err_msg=name)
        # the smaller networks are padded like the narrower realizations of one run
        n = ds.n_edges.sel({"network.size": size}).values
        assert (ds.edge_from.sel({"network.size": size}).values[0, n[0]:] == -1).all()
    # a larger jammed network has more edges: the physics sees the sweep
    assert (ds.n_edges.sel({"network.size": 128}) > 1.8 * ds.n_edges.sel({"network.size": 64})).all()


# --------------------------------------------------------------------------
# parts on executors
# --------------------------------------------------------------------------

def test_collected_pool_sweep_equals_one_process_run(small, pool_sweep):
    folder, collected = pool_sweep
    assert sorted(p.name for p in folder.iterdir()) == [f"part-000{i}.nc" for i in range(4)] + [SWEEP_FILE]
    direct = run_scenario(small, progress=False)
    assert set(collected.variables) == set(direct.variables)
    for name in direct.variables:
        assert collected[name].dims == direct[name].dims, name
        np.testing.assert_allclose(collected[name].values, direct[name].values, rtol=1e-12, atol=0,
                                   equal_nan=True, err_msg=name)
    assert json.loads(collected.attrs["scenario"]) == json.loads(direct.attrs["scenario"])


def test_dask_local_cluster_gives_identical_values_to_the_process_pool(small, pool_sweep, tmp_path):
    """Must show 1: a real dask.distributed LocalCluster, 4 parts, the same values as the local pool."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        run_sweep(small, tmp_path / "dask", scheduler=cluster.scheduler_address, progress=False)
    assert_same_values(collect(tmp_path / "dask"), pool_sweep[1])


def test_worker_count_does_not_change_results(small, pool_sweep, tmp_path):
    run_sweep(small, tmp_path / "one", jobs=1, progress=False)
    assert_same_values(collect(tmp_path / "one"), pool_sweep[1])


def test_finished_parts_are_skipped_on_restart(small, tmp_path):
    folder = tmp_path / "parts"
    run_sweep(small, folder, jobs=2, progress=False)
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.glob("part-*.nc")}
    (folder / "part-0002.nc").unlink()
    run_sweep(small, folder, jobs=2, progress=False)
    for name, stamp in stamps.items():
        assert ((folder / name).stat().st_mtime_ns == stamp) == (name != "part-0002.nc"), name


def test_a_folder_of_another_sweep_is_refused(small, pool_sweep):
    other = load_scenario(QUICKSTART, SMALL + ["learning.alpha=0.1"])
    with pytest.raises(ValueError, match="different sweep"):
        run_sweep(other, pool_sweep[0], jobs=1, progress=False)


def test_a_killed_sweep_resumes_skipping_finished_parts(small, pool_sweep, tmp_path):
    """Must show 2 (sweeps): SIGKILL mid-way, run again, finished parts untouched, result identical."""
    folder = tmp_path / "killed"
    sets = set_options(SMALL + ["run.steps=3000"])
    command = [sys.executable, "-m", "edgesim.cli", "sweep", str(QUICKSTART), "--out", str(folder), "--jobs", "1",
               "--quiet", *sets]
    proc = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not list(folder.glob("part-*.nc")) and time.time() < deadline:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)  # the parent and its worker, without warning
    proc.wait()
    done = {p.name: p.stat().st_mtime_ns for p in folder.glob("part-*.nc")}
    assert 1 <= len(done) < 4
    for name in done:
        open_result(folder / name)  # complete, readable files only
    with pytest.raises(ValueError, match="not finished"):
        collect(folder)
    resumed = load_scenario(QUICKSTART, SMALL + ["run.steps=3000"])
    run_sweep(resumed, folder, jobs=2, progress=False)
    assert {n: (folder / n).stat().st_mtime_ns for n in done} == done
    uninterrupted = tmp_path / "whole"
    run_sweep(resumed, uninterrupted, jobs=2, progress=False)
    assert_same_values(collect(folder), collect(uninterrupted))


# --------------------------------------------------------------------------
# the command line
# --------------------------------------------------------------------------

def test_sweep_and_collect_commands(small, pool_sweep, tmp_path, capsys):
    sets = set_options(SMALL)
    assert main(["sweep", str(QUICKSTART), "--out", str(tmp_path / "d"), "--jobs", "2", "--quiet", *sets]) == 0
    assert "4 parts" in capsys.readouterr().out
    assert main(["collect", str(tmp_path / "d"), "-o", str(tmp_path / "all.nc")]) == 0
    out = capsys.readouterr().out
    assert "lambda = 0.01, network.size = 128: training error" in out
    assert_same_values(open_result(tmp_path / "all.nc"), pool_sweep[1])
    assert "edgesim collect" in open_result(tmp_path / "all.nc").attrs["history"]


def test_collect_errors_are_one_line(pool_sweep, tmp_path, capsys):
    folder = tmp_path / "copy"
    folder.mkdir()
    for p in pool_sweep[0].iterdir():
        (folder / p.name).write_bytes(p.read_bytes())
    cases = []
    (tmp_path / "empty").mkdir()
    cases.append((tmp_path / "empty", "not an edgesim sweep folder"))
    xr.Dataset({"x": ("t", np.arange(3.0))}).to_netcdf(folder / "part-0001.nc")
    cases.append((folder, "part-0001.nc is a netCDF file, but not an edgesim result"))
    for folder_, message in cases:
        assert main(["collect", str(folder_), "-o", str(tmp_path / "all.nc")]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and not (tmp_path / "all.nc").exists()
    (folder / "part-0001.nc").write_bytes(b"garbage")
    assert main(["collect", str(folder), "-o", str(tmp_path / "all.nc")]) == 2
    assert "cannot be read as a netCDF result" in capsys.readouterr().err
    (folder / "part-0001.nc").unlink()
    assert main(["collect", str(folder), "-o", str(tmp_path / "all.nc")]) == 2
    assert "1 of 4 parts are not finished (part-0001.nc)" in capsys.readouterr().err


def test_a_part_from_another_sweep_is_refused(pool_sweep, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for p in pool_sweep[0].iterdir():
        (folder / p.name).write_bytes(p.read_bytes())
    (folder / "part-0000.nc").write_bytes((pool_sweep[0] / "part-0001.nc").read_bytes())
    with pytest.raises(ValueError, match="part-0000.nc is not part 0 of this sweep"):
        collect(folder)


def test_a_sweep_without_sweep_keys_is_one_part(tmp_path):
    s = load_scenario(DIVIDER, ["run.steps=50"])
    run_sweep(s, tmp_path / "d", jobs=1, progress=False)
    assert_same_values(collect(tmp_path / "d"), run_scenario(s, progress=False))


def test_sigterm_ends_a_sweep_with_one_line_and_no_running_workers(tmp_path):
    folder = tmp_path / "d"
    proc = subprocess.Popen([sys.executable, "-m", "edgesim.cli", "sweep", str(QUICKSTART), "--out", str(folder),
                             "--jobs", "2", "--quiet", "--set", "run.steps=20000"], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (folder / SWEEP_FILE).exists() and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(2)  # the workers are busy with their parts
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err.strip() == (f"edgesim: interrupted; finished parts are kept in {folder}; run the same command again "
                           "to continue")
    assert not list(folder.glob("part-*.nc"))


def test_rerun_of_a_collected_sweep_reproduces_it(pool_sweep, tmp_path, capsys):
    collected = tmp_path / "all.nc"
    assert main(["collect", str(pool_sweep[0]), "-o", str(collected)]) == 0
    assert main(["rerun", str(collected), "-o", str(tmp_path / "again.nc"), "--quiet"]) == 0
    again, first = open_result(tmp_path / "again.nc"), open_result(collected)
    for name in first.variables:
        np.testing.assert_allclose(again[name].values, first[name].values, rtol=1e-12, atol=0, equal_nan=True,
                                   err_msg=name)


@pytest.mark.parametrize("key", ["engine.hardware", "run.step_duration", "learning.rule"])
def test_keys_that_other_values_derive_from_cannot_be_swept(key):
    """A swept value is set in the resolved scenario: keys whose consequences are already resolved are refused."""
    with pytest.raises(ScenarioError, match=f"sweep.{key} cannot be swept: other values derive from it"):
        load_scenario(QUICKSTART, [f"sweep.{key}=['a', 'b']"])


def test_a_sweep_of_run_lengths_has_the_times_of_its_steps(tmp_path):
    """Parts with different record steps: the combined time axis is the combined steps times step_duration."""
    s = load_scenario(DIVIDER, ["run.step_duration=0.25", "sweep.run.steps=[50, 80]"])
    ds = run_scenario(s, progress=False)
    np.testing.assert_array_equal(ds.time.values, ds.step.values * 0.25)
    assert np.isnan(ds.error_train.sel({"run.steps": 50}).sel(step=80).values).all()
    assert np.isfinite(ds.error_train.sel({"run.steps": 80}).sel(step=80).values).all()


def test_a_sweep_whose_parts_would_not_fit_on_its_workers_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("edgesim.cli._available_memory", lambda: 2**20)
    assert main(["sweep", str(QUICKSTART), "--out", str(tmp_path / "d"), "--jobs", "2"]) == 2
    err = capsys.readouterr().err
    assert "GiB of memory on 2 workers" in err and err.count("\n") == 1 and not (tmp_path / "d").exists()
