"""Command line: ``edgesim run | sweep | collect | rerun | inspect | reproduce`` and ``edgesim --version``."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys

import numpy as np

from . import __version__
from .network import NetworkError
from .nonlinear import NewtonError
from .physics import BoundaryError
from .results import (add_history, check_output_path, edgesim_result, estimate_result_bytes, open_result,
                      write_netcdf)
from .scenario import ScenarioError, load_scenario

__all__ = ["main"]


def _summary(ds, max_lines: int = 40) -> str:
    """What a run did: one line per sweep value (pooled over realizations), errors with units."""
    law = " (transistor edges)" if ds.attrs.get("edge_law") == "transistor" else ""
    lines = [f"{ds.attrs.get('title', 'edgesim run')}",
             f"  network: {ds.attrs.get('network')}{law}, task: {ds.attrs.get('task')}, "
             f"rule: {ds.attrs.get('learning_rule')}, engine: {ds.attrs.get('engine')}",
             f"  steps: {int(ds.step[-1])}, systems: {int(np.prod([ds.sizes[d] for d in ds.error_train.dims[:-1]]))}"]
    sweep = [d for d in ds.error_train.dims if d not in ("realization", "step")]
    points = list(np.ndindex(*[ds.sizes[d] for d in sweep]))
    if len(points) > max_lines:
        lines.append(f"  ({len(points)} sweep points: showing the pooled medians; see the file for each)")
        points, sweep = [()], []
    for point in points:
        one = ds.isel(dict(zip(sweep, point)))
        label = ", ".join(f"{d} = {_value(ds[d].values[i])}" for d, i in zip(sweep, point))
        lines.append(f"  {label + ': ' if label else ''}" + _figures(one))
    tracking = _before_target_changes(ds)
    if tracking:
        lines.append(tracking)
    return "\n".join(lines)


def _value(v) -> str:
    return f"{v:g}" if isinstance(v, (int, float, np.number)) and not isinstance(v, bool) else str(v)


def _figures(ds) -> str:
    """Median training error, accuracy, power and energy of a (part of a) result."""
    e0, e1 = ds.error_train.isel(step=0), ds.error_train.isel(step=-1)
    text = (f"training error {float(e0.median()):.3g} -> {float(e1.median()):.3g} V^2 "
            f"(median ratio {float((e1 / e0).median()):.3g})")
    if "accuracy_test" in ds:
        # a protocol may start with a task that has no classes: from the first record that has an accuracy
        measured = ds.accuracy_test.dropna("step", how="all")
        if measured.sizes["step"]:
            text += (f", test accuracy {float(measured.isel(step=0).median()):.3f} -> "
                     f"{float(measured.isel(step=-1).median()):.3f}")
    return (text + f"; free power {float(ds.free_power.isel(step=0).median()):.3g} -> "
            f"{float(ds.free_power.isel(step=-1).median()):.3g} W, training energy "
            f"{float(ds.training_energy.isel(step=-1).median()):.3g} J")


def _before_target_changes(ds) -> str:
    """Tracking tasks (the divider): the error at the last record before each target change."""
    try:
        task = json.loads(ds.attrs["scenario"])["task"]
    except (KeyError, ValueError):
        return ""
    if task.get("kind") != "divider":
        return ""
    every = int(task["steps_per_target"])
    steps = ds.step.values
    ends = [int(np.searchsorted(steps, c, side="left")) - 1 for c in range(every, int(steps[-1]) + 1, every)]
    ends = [i for i in ends if i >= 0]
    if not ends:
        return ""
    values = ", ".join(f"{float(ds.error_train.isel(step=i).median()):.2g}" for i in ends)
    return f"  error just before each target change (V^2): {values}"


def _run(args) -> int:
    from .runner import RunPlan

    scenario = load_scenario(args.scenario, args.set or [], args.seed)
    output = _check_outputs(args.output, args.overwrite, args.resume, scenario)  # before any work
    _refuse_oversized_lattices(scenario)
    _check_memory(scenario, RunPlan.of(scenario), output)
    return _execute(scenario, output, args, "edgesim " + " ".join(shlex.quote(a) for a in args.argv))


def _rerun(args) -> int:
    """Run a result file's stored (resolved) scenario again: the same numbers, a new file."""
    from .scenario import parse_scenario

    source = edgesim_result(open_result(args.file), args.file)
    scenario = parse_scenario(json.loads(source.attrs["scenario"]))
    output = _check_outputs(args.output, args.overwrite, args.resume, scenario)
    return _execute(scenario, output, args, f"edgesim rerun of {args.file}")


def _check_outputs(path, overwrite: bool, resume: bool, scenario):
    """The output path, checked before any work; an interrupted run into it must be resumed or replaced."""
    from .streaming import checkpoint_path, partial_path, stream_obstacle

    if resume:
        why = stream_obstacle(scenario)
        if why:
            raise ValueError(f"--resume: this run cannot be resumed: {why}")
        output = check_output_path(path, overwrite=True)
        if output.exists() and not overwrite:
            raise ValueError(f"--resume: {output} is already finished; nothing to resume")
        return output
    output = check_output_path(path, overwrite)
    pending = [p for p in (partial_path(output), checkpoint_path(output)) if p.exists()]
    if pending and not overwrite:
        raise ValueError(f"an interrupted run into {output} exists ({pending[0].name}): continue it with --resume, "
                         "or start again with --overwrite")
    for stale in pending:  # --overwrite: the interrupted run is abandoned, whichever way this one runs
        stale.unlink()
    return output


def _execute(scenario, output, args, command: str) -> int:
    """Run ``scenario`` into ``output``: streamed (and checkpointed) when it can be, else in memory."""
    import xarray as xr

    from .runner import run_scenario
    from .streaming import partial_path, run_streaming, streamable

    progress = None if not args.quiet else False
    if streamable(scenario):
        partial = partial_path(output)
        args.interrupted = lambda: (f"the records so far are in {partial}; continue with the same command and "
                                    "--resume" if partial.exists() else f"{output} was not written")
        run_streaming(scenario, output, resume=args.resume, checkpoint_interval=args.checkpoint_every,
                      progress=progress, command=command)
        with xr.open_dataset(output, engine="netcdf4") as ds:
            print(_summary(ds))
    else:
        ds = run_scenario(scenario, progress=progress)
        add_history(ds, command)
        write_netcdf(ds, output)
        print(_summary(ds))
    print(f"  wrote {output}")
    return 0


def _sweep(args) -> int:
    """Run a scenario's sweep points as separate parts, in parallel; finished parts are skipped."""
    from .sweep import run_sweep

    scenario = load_scenario(args.scenario, args.set or [], args.seed)
    if args.scheduler is None:  # a cluster's workers have their own memory
        _check_sweep_memory(scenario, args.jobs)
    args.interrupted = f"finished parts are kept in {args.out}; run the same command again to continue"
    paths = run_sweep(scenario, args.out, jobs=args.jobs, scheduler=args.scheduler,
                      progress=None if not args.quiet else False)
    print(f"{scenario.title or 'edgesim sweep'}: {len(paths)} parts in {args.out}")
    print(f"  combine them with: edgesim collect {shlex.quote(str(args.out))} -o ALL.nc")
    return 0


def _reproduce(args) -> int:
    """Run reproductions of published results and write the validation report."""
    from .reproduce import reproduce

    args.interrupted = f"finished parts are kept in {args.out}; run the same command again to continue"
    report = reproduce(args.names, args.out, jobs=args.jobs, quick=args.quick,
                       progress=None if not args.quiet else False,
                       command="edgesim " + " ".join(shlex.quote(a) for a in args.argv))
    print(f"wrote {report}")
    return 0


def _collect(args) -> int:
    """Combine a sweep folder's parts into one result file."""
    from .sweep import collect

    output = check_output_path(args.output, args.overwrite)
    ds = collect(args.dir)
    add_history(ds, "edgesim " + " ".join(shlex.quote(a) for a in args.argv))
    path = write_netcdf(ds, output)
    print(_summary(ds))
    print(f"  wrote {path}")
    return 0


def _available_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 2**62


def _memory_need(scenario, plan) -> tuple[int, int, int]:
    """(bytes of the records, bytes of the solver, bytes of the solver with the lightest backend) of a run, over
    every point of its scenario-wide keys."""
    from .history import conductance_records
    from .physics import estimate_solver_bytes
    from .runner import RunPlan, sweep_points

    need = solver_need = lighter_need = 0
    for values in sweep_points(scenario.dotted_sweep):  # one run per point of the scenario-wide keys
        point = scenario.point(values) if values else scenario
        point_plan = RunPlan.of(point) if values else plan
        run = point.run
        n_rec = len(point_plan.record_steps)
        nets = point_plan.networks
        need += estimate_result_bytes(
            len(point_plan.systems), n_rec, len(conductance_records(n_rec, run.conductance_every)),
            max(net.n_edges for net in nets), len(point_plan.tasks[0].boundary.outputs),
            point_plan.tasks[0].n_train, point.engine.kind != "synchronous")
        stack = min(len(point_plan.systems), run.max_stack) if point.engine.kind == "synchronous" else 1
        size = (max(n.n_nodes for n in nets), max(n.n_edges for n in nets), stack)
        solver_need = max(solver_need, estimate_solver_bytes(*size, point.solver.backend))
        lighter_need = max(lighter_need, estimate_solver_bytes(*size, LIGHTEST_BACKEND))
    return need, solver_need, lighter_need


_SHRINK = ("record fewer points (run.record_points or a larger run.record_every), keep fewer conductance "
           "snapshots (a larger run.conductance_every, or run.conductance_edges / run.conductance_dtype = "
           "'float32') or run fewer systems (sweep values x run.realizations)")


#: The backend that needs the least memory at chip sizes and is fast there (with the direct cholmod).
LIGHTEST_BACKEND = "cg-cholmod"


def _lighter_backend(backend: str, lighter_need: float | None, available: float) -> str:
    """A hint naming the lightest backend, if it is not the one refused and would fit."""
    if lighter_need is None or "cholmod" in backend or lighter_need > 0.8 * available:
        return ""
    return (f"solver.backend = '{LIGHTEST_BACKEND}' would need about {lighter_need / 2**30:.1f} GiB (CHOLMOD, from "
            "scikit-sparse: see docs/solvers.md), or ")


def _refuse_if_too_big(need: int, solver_need: int, backend: str, workers: int = 1,
                       lighter_need: int | None = None) -> None:
    """Refuse what would not fit in 80 % of this machine's memory (``workers`` such runs at once)."""
    available = _available_memory()
    if workers * solver_need > 0.8 * available:
        raise ValueError(f"solving this network would need about {workers * solver_need / 2**30:.1f} GiB of memory "
                         f"with solver.backend = '{backend}'{f' on {workers} workers' if workers > 1 else ''}, more "
                         f"than 80 % of this machine's memory ({available / 2**30:.1f} GiB); "
                         f"{_lighter_backend(backend, lighter_need and workers * lighter_need, available)}use a "
                         "smaller network, fewer stacked systems (run.max_stack) or fewer --jobs")
    if workers * (need + solver_need) > 0.8 * available:
        raise ValueError(f"the recorded results would need about {workers * need / 2**30:.1f} GiB of memory"
                         f"{f' on {workers} workers' if workers > 1 else ''}, more than this machine has "
                         f"({available / 2**30:.1f} GiB); {_SHRINK}")


def _refuse_oversized_lattices(scenario, workers: int = 1) -> None:
    """Refuse, before building anything, a square lattice whose solve alone would not fit (one system).

    Building a 5e7-edge lattice to estimate its memory would itself take a minute and gigabytes; a
    lattice's size follows from ``nx``, ``ny`` and ``periodic``."""
    from .physics import estimate_solver_bytes
    from .runner import sweep_points

    for values in sweep_points(scenario.dotted_sweep):
        point = scenario.point(values) if values else scenario
        net = point.network
        if net.kind != "square_lattice":
            continue
        nx, ny = net.nx, net.ny or net.nx
        edges = 2 * nx * ny if net.periodic else nx * (ny - 1) + ny * (nx - 1)
        _refuse_if_too_big(0, estimate_solver_bytes(nx * ny, edges, 1, point.solver.backend), point.solver.backend,
                           workers, estimate_solver_bytes(nx * ny, edges, 1, LIGHTEST_BACKEND))


def _check_memory(scenario, plan, output) -> None:
    """Refuse a run whose records or solver would not fit, naming the settings that shrink them.

    Streamed runs keep one segment of records in memory, so only the disk must
    hold the file; runs in memory must hold all their records (twice: records
    and dataset).
    """
    import shutil

    from .streaming import streamable

    need, solver_need, lighter_need = _memory_need(scenario, plan)
    if streamable(scenario):
        _refuse_if_too_big(0, solver_need, scenario.solver.backend, lighter_need=lighter_need)
        folder = output.parent
        while not folder.exists():
            folder = folder.parent
        usage = shutil.disk_usage(folder)
        if usage.total and need / 2 > 0.9 * usage.free:  # total 0: a pseudo file system, nothing to compare
            raise ValueError(f"the result file would take about {need / 2 / 2**30:.1f} GiB, more than the free "
                             f"space in {folder} ({usage.free / 2**30:.1f} GiB); {_SHRINK}")
        return
    _refuse_if_too_big(need, solver_need, scenario.solver.backend, lighter_need=lighter_need)


def _check_sweep_memory(scenario, jobs) -> None:
    """Each part runs in memory, ``jobs`` at once: the largest part times the workers must fit."""
    from .runner import RunPlan, sweep_points
    from .sweep import sweep_parts, worker_count

    workers = worker_count(jobs, len(sweep_parts(scenario)))
    _refuse_oversized_lattices(scenario, workers)
    largest = (0, 0, 0)
    first_stacked = {k: v[0] for k, v in scenario.stacked_sweep.items()}
    for values in sweep_points(scenario.dotted_sweep):  # parts differ in size only by scenario-wide keys
        part = scenario.point({**values, **first_stacked})
        largest = max(largest, _memory_need(part, RunPlan.of(part)), key=lambda need: need[0] + need[1])
    _refuse_if_too_big(largest[0], largest[1], scenario.solver.backend, workers, largest[2])


def _inspect(args) -> int:
    ds = edgesim_result(open_result(args.file), args.file)
    print(ds)
    print()
    print(_summary(ds))
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _output_options(parser) -> None:
    """Options of the commands that run a scenario into a result file (run, rerun)."""
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run into the same output (same scenario and --set values)")
    parser.add_argument("--checkpoint-every", type=float, default=300.0, metavar="SECONDS",
                        help="wall-clock seconds between checkpoints of a streamed run (default 300)")


def _reproduction_names() -> list[str]:
    from .reproduce import REPRODUCTIONS

    return ["all", *REPRODUCTIONS]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgesim", description="Simulate self-learning electrical networks.")
    parser.add_argument("--version", action="version", version=f"edgesim {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a scenario and write a netCDF result file")
    run.add_argument("scenario", help="scenario TOML file")
    run.add_argument("--output", "-o", required=True, help="result file (.nc)")
    run.add_argument("--seed", type=int, help="master seed (overrides run.seed)")
    run.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                     help="override a scenario value (TOML syntax), e.g. --set run.steps=100; repeatable")
    _output_options(run)
    run.set_defaults(func=_run)
    rerun = sub.add_parser("rerun", help="run a result file's stored scenario again (reproduces it)")
    rerun.add_argument("file", help="an edgesim result (.nc)")
    rerun.add_argument("--output", "-o", required=True, help="new result file (.nc)")
    _output_options(rerun)
    rerun.set_defaults(func=_rerun)
    sweep = sub.add_parser("sweep", help="run a scenario's sweep points as parallel parts (one file each)")
    sweep.add_argument("scenario", help="scenario TOML file")
    sweep.add_argument("--out", required=True, help="folder for the part files (made if needed)")
    sweep.add_argument("--jobs", "-j", type=_positive_int, help="worker processes (default: all cores)")
    sweep.add_argument("--scheduler", metavar="ADDRESS",
                       help="run on a dask.distributed scheduler (e.g. tcp://127.0.0.1:8786) instead of local "
                            "processes")
    sweep.add_argument("--seed", type=int, help="master seed (overrides run.seed)")
    sweep.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                       help="override a scenario value (TOML syntax); repeatable")
    sweep.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    sweep.set_defaults(func=_sweep)
    reproduce = sub.add_parser("reproduce", help="run published results (Stern 2024, Dillavou 2022, Wycoff 2022) "
                                                 "and write a validation report")
    reproduce.add_argument("names", nargs="*", metavar="NAME",
                           help="reproductions to run (default all): " + ", ".join(_reproduction_names()))
    reproduce.add_argument("--out", required=True, help="folder for results, figures and report.md (a run there "
                                                        "is resumed)")
    reproduce.add_argument("--jobs", "-j", type=_positive_int, help="worker processes (default: all cores)")
    reproduce.add_argument("--quick", action="store_true", help="reduced scale: a smoke test of every reproduction")
    reproduce.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    reproduce.set_defaults(func=_reproduce)
    collect = sub.add_parser("collect", help="combine a sweep folder's parts into one result file")
    collect.add_argument("dir", help="the folder given to edgesim sweep --out")
    collect.add_argument("--output", "-o", required=True, help="combined result file (.nc)")
    collect.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    collect.set_defaults(func=_collect)
    inspect = sub.add_parser("inspect", help="describe a result file")
    inspect.add_argument("file")
    inspect.set_defaults(func=_inspect)
    return parser


def _terminate(signum, frame):  # SIGTERM ends a run like Ctrl-C
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        output = getattr(args, "output", None)
        kept = f"; {output} was not written" if output else ""
        note = getattr(args, "interrupted", None)
        if note:
            kept = f"; {note() if callable(note) else note}"
        print(f"edgesim: interrupted{kept}", file=sys.stderr)
        return 130
    except (ScenarioError, NetworkError, BoundaryError, ValueError, OSError, NewtonError) as exc:
        if args.debug:
            raise
        print(f"edgesim: error: {exc}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
