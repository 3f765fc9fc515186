"""Sweeps as many independent runs: one result file per sweep point, on a process pool or a dask cluster.

``edgesim sweep SCENARIO --out DIR`` splits a scenario's ``[sweep]`` into its
points (the Cartesian product of every swept key; the realizations of a
point stay stacked in one process) and runs each point as a *part* through
a :class:`concurrent.futures.Executor`: a local process pool, or a
``dask.distributed`` cluster.  Each part writes ``DIR/part-NNNN.nc``
atomically, so a part file exists only when it is complete; a sweep
started again skips the parts already there.  ``DIR/sweep.json`` holds the
resolved scenario, so a folder cannot silently mix two sweeps.

A part's numbers depend only on the scenario, its seed and the part's
sweep values (each realization's seed comes from the master seed and the
realization index, :func:`edgesim.seeding.realization_seed`), never on the
executor, the number of workers or the order in which parts finish:
:func:`collect` of a sweep equals :func:`edgesim.runner.run_scenario` of the
same scenario in one process.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import xarray as xr
from tqdm.auto import tqdm

from .results import add_history, combine_parts, edgesim_result, open_result, write_netcdf
from .runner import run_scenario, sweep_points
from .scenario import Scenario, parse_scenario

__all__ = ["Part", "sweep_parts", "run_sweep", "run_sweeps", "collect", "run_part", "worker_count", "SWEEP_FILE"]

#: The file in a sweep folder that names the sweep (its resolved scenario).
SWEEP_FILE = "sweep.json"


@dataclass(frozen=True)
class Part:
    """One point of a sweep: its index, its sweep values (key -> value) and its file name."""

    index: int
    values: dict

    @property
    def name(self) -> str:
        return f"part-{self.index:04d}.nc"


def sweep_parts(scenario: Scenario) -> list[Part]:
    """The parts of ``scenario``'s sweep, the last key varying fastest (one part if nothing is swept)."""
    return [Part(i, values) for i, values in enumerate(sweep_points(scenario.sweep))]


def run_part(scenario_json: str, values: dict, path: str) -> str:
    """Run one part and write its result to ``path`` (the function the executors run)."""
    scenario = parse_scenario(json.loads(scenario_json))
    started = time.perf_counter()
    ds = run_scenario(scenario.point(values), progress=False)
    ds.attrs["sweep_part"] = json.dumps(values, sort_keys=True)
    ds.attrs["part_seconds"] = round(time.perf_counter() - started, 3)  # compute time, for reports
    add_history(ds, f"edgesim sweep part {Path(path).name}")
    write_netcdf(ds, path)
    return path


def _prepare(scenario: Scenario, folder: Path) -> None:
    """Make ``folder`` hold this sweep, or refuse one holding another."""
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"sweep output {folder} is a file; give a folder")
    marker = folder / SWEEP_FILE
    text = json.dumps({"scenario": json.loads(scenario.to_json()), "parts": len(sweep_parts(scenario))},
                      sort_keys=True, indent=1)
    if marker.exists():
        try:
            stored = json.loads(marker.read_text())["scenario"]
        except (ValueError, KeyError, OSError):
            raise ValueError(f"{marker} is not an edgesim sweep description; use another --out folder") from None
        if stored != json.loads(scenario.to_json()):
            raise ValueError(f"{folder} holds the parts of a different sweep (its {SWEEP_FILE} differs from this "
                             "scenario); use another --out folder")
        return
    if folder.exists() and any(folder.glob("part-*.nc")):
        raise ValueError(f"{folder} holds part files but no {SWEEP_FILE}; use another --out folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot make the sweep output folder {folder} ({exc.strerror})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"sweep output folder {folder} is not writable")
    tmp = marker.with_suffix(".json.part")
    tmp.write_text(text)
    os.replace(tmp, marker)


def _quiet_worker() -> None:  # Ctrl-C is the parent's to handle: workers are shut down, not interrupted
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_sweep(scenario: Scenario, folder, *, jobs: int | None = None, scheduler: str | None = None,
              progress: bool | None = None) -> list[Path]:
    """Run every part of ``scenario``'s sweep not yet in ``folder``.

    Parameters
    ----------
    scenario : Scenario
    folder : path
        Where the part files and ``sweep.json`` go (made if needed).
    jobs : int, optional
        Worker processes of the local pool (default: all cores).
    scheduler : str, optional
        Address of a ``dask.distributed`` scheduler (e.g. ``tcp://host:8786``)
        to run the parts on instead of the local pool.
    progress : bool or None
        Progress bar over the parts (None: only on an interactive terminal).

    Returns
    -------
    list of Path
        The part files, in part order.
    """
    return run_sweeps([(scenario, Path(folder))], jobs=jobs, scheduler=scheduler, progress=progress)[0]


def run_sweeps(sweeps: list, *, jobs: int | None = None, scheduler: str | None = None,
               progress: bool | None = None, description: str = "edgesim sweep") -> list[list[Path]]:
    """Run the unfinished parts of several sweeps on one executor (the parts of all of them share the workers).

    Parameters
    ----------
    sweeps : list of (Scenario, path)
        Each sweep and its folder, as in :func:`run_sweep`.
    jobs, scheduler, progress
        As in :func:`run_sweep`.
    description : str
        Label of the progress bar.

    Returns
    -------
    list of list of Path
        For each sweep, its part files in part order.
    """
    disable = None if progress is None else not progress
    plans = [(scenario, Path(folder), sweep_parts(scenario)) for scenario, folder in sweeps]
    n_parts = sum(len(parts) for _, _, parts in plans)
    todo = []
    with _executor(jobs, scheduler, n_parts) as executor:  # a scheduler is reached before anything is written
        for scenario, folder, parts in plans:
            _prepare(scenario, folder)
            for stale in folder.glob("*.nc.part"):  # temporary files of parts killed while writing
                stale.unlink(missing_ok=True)
            missing = [p for p in parts if not (folder / p.name).exists()]
            if len(missing) < len(parts) and disable is not True:
                print(f"{len(parts) - len(missing)} of {len(parts)} parts are already in {folder}: skipped")
            text, cost = scenario.to_json(), scenario.run.realizations * scenario.run.steps
            todo += [(text, p, folder, cost) for p in missing]
        # the longest parts first (by realizations x steps), so that no long part is left to run alone at the end
        todo.sort(key=lambda item: -item[3])
        with tqdm(total=n_parts, initial=n_parts - len(todo), unit="part", disable=disable,
                  desc=description) as bar:
            futures = [executor.submit(run_part, text, p.values, str(folder / p.name)) for text, p, folder, _ in todo]
            try:
                for future in cf.as_completed(futures):
                    future.result()
                    bar.update(1)
            except BaseException:
                for future in futures:
                    future.cancel()
                if not scheduler:  # the pool's workers ignore Ctrl-C: stop their parts now (none is written)
                    for child in multiprocessing.active_children():
                        child.terminate()
                raise
    return [[folder / p.name for p in parts] for _, folder, parts in plans]


class _DaskExecutor:
    """A dask.distributed client as a context-managed executor."""

    def __init__(self, address: str):
        try:
            from distributed import Client
        except ImportError:
            raise ValueError("--scheduler needs the dask.distributed package: pip install -e '.[dask]' in the edgesim folder "
                             "(or pip install distributed)") from None
        try:
            self.client = Client(address, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise ValueError(f"cannot reach the dask scheduler at {address} ({exc.__class__.__name__})") from None
        self.executor = self.client.get_executor(pure=False)

    def __enter__(self):
        return self.executor

    def __exit__(self, *exc):
        self.executor.shutdown(wait=False)
        self.client.close()


def worker_count(jobs: int | None, n_parts: int) -> int:
    """Local worker processes for ``n_parts`` parts: ``jobs`` (default all cores), never more than the parts."""
    if jobs is not None and jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {jobs}")
    return max(1, min(jobs or os.cpu_count() or 1, n_parts))


def _executor(jobs: int | None, scheduler: str | None, n_parts: int):
    if scheduler:
        return _DaskExecutor(scheduler)
    workers = worker_count(jobs, n_parts)
    # Workers stopped by Ctrl-C leave their queue semaphores to multiprocessing's resource tracker, which would
    # print a warning about them after edgesim's one-line message; the tracker takes its -W options from here.
    if "ignore::UserWarning:multiprocessing.resource_tracker" not in sys.warnoptions:
        sys.warnoptions.append("ignore::UserWarning:multiprocessing.resource_tracker")
    # spawn: the parent may hold threads (progress bar, BLAS) that a fork would copy mid-state
    return cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                  initializer=_quiet_worker)


def collect(folder) -> xr.Dataset:
    """Combine a sweep folder's parts into one dataset: one dimension per swept key, then ``realization``.

    Raises
    ------
    ValueError
        If ``folder`` is not a sweep folder, a part is missing, or a part file
        is not an edgesim result of this sweep (each message names the file).
    """
    folder = Path(folder)
    marker = folder / SWEEP_FILE
    if not marker.is_file():
        raise ValueError(f"{folder} is not an edgesim sweep folder (no {SWEEP_FILE}; make one with edgesim sweep)")
    try:
        scenario = parse_scenario(json.loads(marker.read_text())["scenario"])
    except (ValueError, KeyError) as exc:
        raise ValueError(f"{marker} is not a valid sweep description ({exc.__class__.__name__})") from None
    parts = sweep_parts(scenario)
    missing = [p.name for p in parts if not (folder / p.name).exists()]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise ValueError(f"{folder}: {len(missing)} of {len(parts)} parts are not finished ({shown}); run the same "
                         "edgesim sweep command again to finish them")
    results = []
    for part in parts:
        path = folder / part.name
        ds = edgesim_result(open_result(path), path)
        if json.loads(ds.attrs.get("sweep_part", "null")) != json.loads(json.dumps(part.values, sort_keys=True)):
            raise ValueError(f"{path} is not part {part.index} of this sweep (its sweep values differ)")
        results.append((part.values, ds))
    ds = combine_parts(results, scenario)
    return add_history(ds, f"edgesim collect {folder}")
