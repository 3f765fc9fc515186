"""Streamed synchronous runs: records written as they are made, checkpoints, --resume (edgesim.streaming).

Contract: where the segments end, and whether the run was killed and
resumed, does not change a single recorded value; a killed run leaves a
readable partial file whose records are those of the uninterrupted run.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from result_support import assert_same_values, set_options

from edgesim.build import initial_conductance
from edgesim.cli import main
from edgesim.history import HISTORY_DIMS
from edgesim.results import open_result
from edgesim.runner import RunPlan, run_scenario
from edgesim.scenario import load_scenario
from edgesim.streaming import checkpoint_path, partial_path, run_streaming
from edgesim.trainer import SynchronousTraining, train_synchronous

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
QUICKSTART = SCENARIOS / "quickstart.toml"

#: 3 lambdas x 2 realizations in stacks of 4 (two stacks), every step recorded.
LONG = ["run.steps=16000", "run.realizations=2", "run.record_every=1", "run.conductance_every=50",
        "run.max_stack=4"]


@pytest.mark.parametrize("scenario, overrides", [
    (QUICKSTART, ["run.steps=300", "run.realizations=2"]),
    (SCENARIOS / "dillavou2022_iris.toml", ["run.steps=300"]),
    (SCENARIOS / "stern2024_lambda_control.toml", ["run.steps=300", "run.realizations=1"]),
    # the iterative solver's kept preconditioner and warm start survive the pickle
    (QUICKSTART, ["run.steps=300", "run.realizations=2", "solver.backend='cg'"]),
], ids=["regression", "iris", "lambda-feedback", "cg-solver"])
def test_segments_and_pickling_do_not_change_the_records(scenario, overrides):
    """A run advanced in uneven segments, pickled and restored between them, records what one pass records."""
    s = load_scenario(scenario, overrides)
    plan = RunPlan.of(s)
    tasks = [plan.tasks[r] for _, _, r in plan.systems]
    k0 = [initial_conductance(s.with_values(v).learning, plan.tasks[r].network, s.run.seed, r)
          for _, v, r in plan.systems]
    lam = [s.with_values(v).learning.lambda_ for _, v, _ in plan.systems]
    kwargs = dict(lam=lam, record_at=plan.record_steps, conductance_every=3, control=s.control,
                  solver_backend=s.solver.backend)
    whole = train_synchronous(tasks, s.learning, s.run.steps, k0, **kwargs)
    training = SynchronousTraining(tasks, s.learning, s.run.steps, k0, **kwargs)
    pieces, sizes = [], iter([1, 7, 50, 13, 100, 1000])
    while not training.done:
        pieces.append(training.advance(training.step + next(sizes)))
        training = pickle.loads(pickle.dumps(training))
    for name, value in whole.recorded().items():
        if name in ("tolerance_time", "training_energy_to_tolerance"):
            np.testing.assert_array_equal(getattr(pieces[-1], name), value, err_msg=name)
            continue
        dims = HISTORY_DIMS[name]
        axis = 1 + dims.index("step" if "step" in dims else "conductance_step")
        joined = np.concatenate([getattr(p, name) for p in pieces], axis=axis)
        np.testing.assert_array_equal(joined, value, err_msg=name)


def test_a_streamed_run_equals_the_run_in_memory(tmp_path):
    s = load_scenario(QUICKSTART, ["run.steps=500", "run.realizations=3", "run.max_stack=4",
                                   "run.conductance_edges=[0, 5, 140]", "run.conductance_dtype='float32'"])
    run_streaming(s, tmp_path / "s.nc", progress=False)
    streamed = open_result(tmp_path / "s.nc")
    memory = run_scenario(s, progress=False)
    assert streamed.conductance.dtype == np.float32
    memory["conductance"] = memory.conductance.astype(np.float32)
    assert_same_values(streamed, memory)
    with xr.open_dataset(tmp_path / "s.nc") as ds:
        assert set(ds.encoding["unlimited_dims"]) == {"step", "conductance_step"}


def test_a_killed_run_leaves_valid_records_and_resumes_to_the_same_file(tmp_path):
    """Must show 2: SIGKILL mid-way; the flushed records are there and right; --resume gives the same file."""
    out, whole = tmp_path / "killed.nc", tmp_path / "whole.nc"
    command = [sys.executable, "-m", "edgesim.cli", "run", str(QUICKSTART), "-o", str(out), "--quiet",
               "--checkpoint-every", "0", *set_options(LONG)]
    proc = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if checkpoint_path(out).exists() and pickle.loads(checkpoint_path(out).read_bytes())["training"] is not None \
                and pickle.loads(checkpoint_path(out).read_bytes())["training"].step >= 4000:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists() and partial_path(out).exists()

    assert main(["run", str(QUICKSTART), "-o", str(whole), "--quiet", *set_options(LONG)]) == 0
    reference = open_result(whole)
    partial = open_result(partial_path(out))
    assert "incomplete" in partial.attrs["status"]
    n = partial.sizes["step"]
    assert 4000 <= n < reference.sizes["step"]
    first = partial.isel(realization=slice(0, 1))  # the first stack: lambda 0 and 1e-4 (2 x 2 systems)
    for name in ("error_train", "free_power", "training_energy"):
        np.testing.assert_array_equal(first[name].isel({"lambda": [0, 1]}).values,
                                      reference[name].isel({"lambda": [0, 1], "step": slice(0, n),
                                                            "realization": slice(0, 1)}).values, err_msg=name)
    nc = partial.sizes["conductance_step"]
    np.testing.assert_array_equal(partial.conductance.isel({"lambda": 0}).values,
                                  reference.conductance.isel({"lambda": 0, "conductance_step": slice(0, nc)}).values)

    assert main(["run", str(QUICKSTART), "-o", str(out), "--quiet", "--resume", *set_options(LONG)]) == 0
    assert not partial_path(out).exists() and not checkpoint_path(out).exists()
    assert_same_values(open_result(out), reference)


@pytest.fixture
def interrupted(tmp_path):
    """An output with a partial file and a checkpoint, as a killed run leaves them."""
    out = tmp_path / "r.nc"
    s = load_scenario(QUICKSTART, ["run.steps=50", "run.realizations=1"])
    run_streaming(s, out, progress=False)
    out.rename(partial_path(out))
    checkpoint_path(out).write_bytes(pickle.dumps({"scenario": s.to_json(), "stack": 1, "training": None}))
    return out


def test_resume_of_another_scenario_is_a_one_line_error(interrupted, capsys):
    assert main(["run", str(QUICKSTART), "-o", str(interrupted), "--resume", "--set", "run.steps=60",
                 "--set", "run.realizations=1"]) == 2
    err = capsys.readouterr().err
    assert "started from a different scenario" in err and err.count("\n") == 1


def test_an_interrupted_output_needs_resume_or_overwrite(interrupted, capsys):
    overrides = ["--set", "run.steps=50", "--set", "run.realizations=1", "--quiet"]
    assert main(["run", str(QUICKSTART), "-o", str(interrupted), *overrides]) == 2
    assert "continue it with --resume" in capsys.readouterr().err
    assert main(["run", str(QUICKSTART), "-o", str(interrupted), "--overwrite", *overrides]) == 0
    assert interrupted.exists() and not partial_path(interrupted).exists()


def test_resume_without_an_interrupted_run_is_an_error(tmp_path, capsys):
    assert main(["run", str(QUICKSTART), "-o", str(tmp_path / "x.nc"), "--resume"]) == 2
    assert "no interrupted run" in capsys.readouterr().err


def test_resume_of_an_engine_run_says_why_not(tmp_path, capsys):
    assert main(["run", str(SCENARIOS / "desync.toml"), "-o", str(tmp_path / "x.nc"), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "cannot be resumed" in err and "autonomous-edge engines" in err
