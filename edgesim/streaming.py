"""Long synchronous runs: records streamed to the netCDF file as they are made, checkpoints, resume.

``edgesim run`` takes this path for every synchronous run without damage or
phases (the long studies).  The run advances segment by segment
(:class:`edgesim.trainer.SynchronousTraining`); after each segment its
records are written to ``NAME.partial.nc`` (``step`` and
``conductance_step`` are unlimited dimensions), so memory stays bounded by
one segment, whatever the run length.  The file is closed between writes,
so a killed run leaves a readable file holding every record written so far
(later records are missing from the unlimited dimensions).

Every ``checkpoint_interval`` seconds of wall time, and when a stack of
systems ends, the whole state of the run (conductances, energies,
controller, targets, step counter: the pickled training) goes to
``NAME.nc.checkpoint``, written atomically.  ``resume=True`` continues from
it; records made after the checkpoint are computed again and overwrite the
same places, so the finished file holds exactly the values of an
uninterrupted run.  When the run ends, the partial file becomes ``NAME.nc``
and the checkpoint is removed.
"""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path

import netCDF4
import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from .history import HISTORY_DIMS, conductance_records
from .results import DATASET_NAMES, add_history, build_dataset
from .runner import RunPlan, initial_conductances
from .scenario import Scenario
from .seeding import realization_seed
from .trainer import SynchronousTraining

__all__ = ["streamable", "stream_obstacle", "run_streaming", "partial_path", "checkpoint_path"]

#: Records kept in memory before they are written (bytes of conductance records per segment).
SEGMENT_BYTES = 32 * 2**20
#: Longest segment (steps): bounds the time between chances to checkpoint.
SEGMENT_STEPS = 2000


def streamable(scenario: Scenario) -> bool:
    """Whether ``scenario`` is run streamed, with checkpoints (see :func:`stream_obstacle`)."""
    return not stream_obstacle(scenario)


def stream_obstacle(scenario: Scenario) -> str:
    """Why ``scenario`` cannot be streamed and resumed ('' if it can)."""
    if scenario.engine.kind != "synchronous":
        return "the autonomous-edge engines run in memory (their event queues are not checkpointed)"
    if scenario.phases:
        return "protocols ([[phase]]) run in memory"
    if scenario.damage.active:
        return "runs with [damage] run in memory (the damage table needs the whole run)"
    if scenario.dotted_sweep:
        return "scenario-wide sweep keys run as separate parts: use edgesim sweep"
    return ""


def partial_path(output: Path) -> Path:
    """Where a streamed run writes until it is complete: ``NAME.partial.nc``."""
    return output.with_name(f"{output.stem}.partial{output.suffix or '.nc'}")


def checkpoint_path(output: Path) -> Path:
    return output.with_name(output.name + ".checkpoint")


def run_streaming(scenario: Scenario, output, *, resume: bool = False, checkpoint_interval: float = 300.0,
                  progress: bool | None = None, command: str = "") -> Path:
    """Run a streamable scenario into ``output``, writing records as it goes.

    Parameters
    ----------
    scenario : Scenario
        A scenario :func:`streamable` accepts.
    output : path
        The finished result file.
    resume : bool
        Continue from the checkpoint of an interrupted run of the same scenario.
    checkpoint_interval : float
        Wall-clock seconds between checkpoints (0: after every segment).
    progress : bool or None
    command : str
        Line appended to the ``history`` attribute (the command that ran).

    Returns
    -------
    Path
        ``output``.
    """
    why = stream_obstacle(scenario)
    if why:
        raise ValueError(f"this run cannot be streamed: {why}")
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial, checkpoint = partial_path(output), checkpoint_path(output)
    plan = RunPlan.of(scenario)
    run = scenario.run
    stacks = [plan.systems[i:i + run.max_stack] for i in range(0, len(plan.systems), run.max_stack)]
    first_stack, training = 0, None
    if resume:
        first_stack, training = _load_checkpoint(scenario, output)
        if progress is not False:
            at = f"at step {training.step}" if training is not None else "at its start"
            where = f"stack {first_stack + 1} of {len(stacks)}, {at}" if first_stack < len(stacks) else \
                "every stack done, writing the file"
            print(f"resuming {output}: {where}")
    else:
        for stale in (partial, checkpoint, checkpoint.with_name(checkpoint.name + ".tmp")):
            stale.unlink(missing_ok=True)
    writer = _Writer(partial, scenario, plan)
    disable = None if progress is None else not progress
    done_steps = run.steps * sum(len(c) for c in stacks[:first_stack])
    done_steps += 0 if training is None else min(training.step, run.steps) * len(stacks[first_stack])
    try:
        with tqdm(total=run.steps * len(plan.systems), initial=done_steps, unit="system-step", unit_scale=True,
                  disable=disable, desc="edgesim") as bar:
            _run_stacks(scenario, plan, stacks[first_stack:], first_stack, training, writer, checkpoint,
                        checkpoint_interval, bar)
    except BaseException:
        if not checkpoint.exists():  # nothing to resume from: a partial file alone is of no use
            partial.unlink(missing_ok=True)
        raise
    writer.finish(command)
    os.replace(partial, output)
    checkpoint.unlink(missing_ok=True)
    return output


def _run_stacks(scenario, plan, stacks, first_index, training, writer, checkpoint, interval, bar) -> None:
    """Train the stacks one after the other, writing every segment and checkpointing every ``interval`` s."""
    saved = -np.inf  # the first segment is checkpointed at once: an interrupted run can always resume
    for index, chunk in enumerate(stacks, start=first_index):
        if training is None:
            training = _training(scenario, plan, chunk, index * scenario.run.max_stack)
        while not training.done:
            history = training.advance(_segment_end(training, writer.edges),
                                       lambda n, size=len(chunk): bar.update(n * size))
            writer.write(chunk, history)
            if training.done or time.monotonic() - saved >= interval:
                _save_checkpoint(checkpoint, scenario, index + training.done, None if training.done else training)
                saved = time.monotonic()
        training = None


def _training(scenario: Scenario, plan: RunPlan, chunk, start: int) -> SynchronousTraining:
    run = scenario.run
    resolved = [scenario.with_values(values) for _, values, _ in chunk]
    return SynchronousTraining(
        [plan.tasks[r] for _, _, r in chunk], scenario.learning, run.steps,
        initial_conductances(scenario, plan, range(start, start + len(chunk))),
        alpha=[s.learning.alpha for s in resolved], eta=[s.learning.eta for s in resolved],
        lam=[s.learning.lambda_ for s in resolved], record_at=plan.record_steps,
        conductance_every=run.conductance_every, step_duration=run.step_duration, control=scenario.control,
        solver_backend=scenario.solver.backend, solver_tolerance=scenario.solver.tolerance,
        newton_tolerance=scenario.solver.newton_tolerance, newton_max_iterations=scenario.solver.newton_max_iterations,
        tolerance=[s.control.tolerance for s in resolved],
        seeds=[realization_seed(run.seed, r) for _, _, r in chunk])


def _segment_end(training: SynchronousTraining, n_edges: int) -> int:
    """The end of the next segment: at most SEGMENT_STEPS steps and SEGMENT_BYTES of conductance records."""
    per_record = max(1, len(training.tasks) * n_edges * 8)
    records = max(1, SEGMENT_BYTES // per_record)
    ahead = training.conductance_at[training.conductance_at >= training.step]
    end = training.step + SEGMENT_STEPS
    if len(ahead) > records:
        end = min(end, int(ahead[records]))
    return max(end, training.step + 1)


def _save_checkpoint(path: Path, scenario: Scenario, stack: int, training) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        pickle.dump({"scenario": scenario.to_json(), "stack": stack, "training": training}, f,
                    protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)


def _load_checkpoint(scenario: Scenario, output: Path):
    path, partial = checkpoint_path(output), partial_path(output)
    if not path.exists() or not partial.exists():
        raise ValueError(f"--resume: there is no interrupted run into {output} ({path.name} or {partial.name} "
                         "is missing); run without --resume")
    try:
        with open(path, "rb") as f:
            state = pickle.load(f)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same thing
        raise ValueError(f"--resume: the checkpoint {path} cannot be read ({exc.__class__.__name__}); start "
                         "again with --overwrite") from None
    if state.get("scenario") != scenario.to_json():
        raise ValueError(f"--resume: {output} was started from a different scenario (the checkpoint {path.name} "
                         "does not match this scenario and its --set/--seed values); give the same scenario, or "
                         "start again with --overwrite")
    return state["stack"], state["training"]


class _Writer:
    """Writes segments of records into the partial file (created by the first segment)."""

    def __init__(self, path: Path, scenario: Scenario, plan: RunPlan):
        self.path, self.scenario, self.plan = path, scenario, plan
        self.records = plan.record_steps
        self.conductance_steps = plan.record_steps[
            conductance_records(len(plan.record_steps), scenario.run.conductance_every)]
        largest = max(net.n_edges for net in plan.networks)
        self.file_edges = np.array(scenario.run.conductance_edges or range(largest))
        self.edges = largest

    def write(self, chunk, history) -> None:
        if not self.path.exists():
            self._create(chunk, history)
            return
        rows = np.searchsorted(self.records, history.step)
        crows = np.searchsorted(self.conductance_steps, history.conductance_step)
        step_duration = self.scenario.run.step_duration
        with netCDF4.Dataset(self.path, "a") as nc:
            nc.set_auto_mask(False)
            if len(rows):
                nc["step"][rows[0]:rows[-1] + 1] = history.step
                nc["time"][rows[0]:rows[-1] + 1] = history.step * step_duration
                if "lambda" in nc.variables and "lambda" not in nc.dimensions and history.lambda_ is None:
                    block = nc["lambda"][..., :1]
                    nc["lambda"][..., rows[0]:rows[-1] + 1] = np.broadcast_to(
                        block, block.shape[:-1] + (len(rows),))
            if len(crows):
                nc["conductance_step"][crows[0]:crows[-1] + 1] = history.conductance_step
                nc["conductance_time"][crows[0]:crows[-1] + 1] = history.conductance_step * step_duration
            for name, value in history.recorded().items():
                self._write_variable(nc, DATASET_NAMES.get(name, name), HISTORY_DIMS[name], value, chunk, rows, crows)
            nc.sync()

    def _write_variable(self, nc, name, dims, value, chunk, rows, crows) -> None:
        where = []
        for d in dims:
            if d == "step":
                if not len(rows):
                    return
                where.append(slice(rows[0], rows[-1] + 1))
            elif d == "conductance_step":
                if not len(crows):
                    return
                where.append(slice(crows[0], crows[-1] + 1))
            else:
                where.append(slice(None))
        if "edge" in dims:  # the stack's edges -> the file's (widest network, or the stored subset)
            axis = 1 + dims.index("edge")
            padded = np.full(value.shape[:axis] + (max(self.edges, value.shape[axis]),) + value.shape[axis + 1:],
                             np.nan if value.dtype.kind == "f" else -1, dtype=value.dtype)
            padded[(slice(None),) * axis + (slice(0, value.shape[axis]),)] = value
            value = np.take(padded, self.file_edges, axis=axis)
        for idx, js, r0, r1 in _blocks(chunk):
            nc[name][tuple(idx) + (slice(r0, r1),) + tuple(where)] = value[js]

    def _create(self, chunk, history) -> None:
        plan = self.plan
        ds = build_dataset(self.scenario, plan.networks, plan.tasks, [(chunk, history)], "synchronous")
        ds.attrs["status"] = "incomplete: a run still going, interrupted or killed (continue it with --resume)"
        ds.to_netcdf(self.path, engine="netcdf4", format="NETCDF4", unlimited_dims=["step", "conductance_step"])

    def finish(self, command: str) -> None:
        with netCDF4.Dataset(self.path, "a") as nc:
            nc.delncattr("status")
            if command:
                ds = add_history(xr.Dataset(attrs={"history": nc.getncattr("history")}), command)
                nc.setncattr("history", ds.attrs["history"])


def _blocks(chunk):
    """Contiguous runs of a stack's systems in the file: (sweep index, stack rows, first, end realization)."""
    blocks = []
    for j, (idx, _, r) in enumerate(chunk):
        if blocks and blocks[-1][0] == tuple(idx) and blocks[-1][3] == r:
            blocks[-1][1].append(j)
            blocks[-1][3] = r + 1
        else:
            blocks.append([tuple(idx), [j], r, r + 1])
    return [(idx, np.array(js), r0, r1) for idx, js, r0, r1 in blocks]

