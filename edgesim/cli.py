"""Command line: ``edgesim run | inspect`` and ``edgesim --version``."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from . import __version__
from .network import NetworkError
from .physics import BoundaryError
from .results import open_result, write_netcdf
from .scenario import ScenarioError, load_scenario

__all__ = ["main"]


def _summary(ds) -> str:
    lines = [f"{ds.attrs.get('title', 'edgesim run')}",
             f"  network: {ds.attrs.get('network')}, task: {ds.attrs.get('task')}, "
             f"rule: {ds.attrs.get('learning_rule')}, engine: {ds.attrs.get('engine')}",
             f"  steps: {int(ds.step[-1])}, systems: {int(np.prod([ds.sizes[d] for d in ds.error_train.dims[:-1]]))}"]
    err = ds.error_train
    e0, e1 = err.isel(step=0), err.isel(step=-1)
    ratio = (e1 / e0).median().item()
    lines.append(f"  training error: {float(e0.median()):.3g} -> {float(e1.median()):.3g} "
                 f"(median ratio {ratio:.3g})")
    if "accuracy_test" in ds:
        lines.append(f"  test accuracy: {float(ds.accuracy_test.isel(step=0).median()):.3f} -> "
                     f"{float(ds.accuracy_test.isel(step=-1).median()):.3f}")
    lines.append(f"  free power: {float(ds.free_power.isel(step=0).median()):.3g} -> "
                 f"{float(ds.free_power.isel(step=-1).median()):.3g} W; training energy "
                 f"{float(ds.training_energy.isel(step=-1).median()):.3g} J")
    return "\n".join(lines)


def _run(args) -> int:
    from .runner import run_scenario

    scenario = load_scenario(args.scenario, args.set or [], args.seed)
    ds = run_scenario(scenario, progress=None if not args.quiet else False)
    path = write_netcdf(ds, args.output)
    print(_summary(ds))
    print(f"  wrote {path}")
    return 0


def _inspect(args) -> int:
    ds = open_result(args.file)
    print(ds)
    print()
    print(_summary(ds))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgesim", description="Simulate self-learning electrical networks.")
    parser.add_argument("--version", action="version", version=f"edgesim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a scenario and write a netCDF result file")
    run.add_argument("scenario", help="scenario TOML file")
    run.add_argument("--output", "-o", required=True, help="result file (.nc)")
    run.add_argument("--seed", type=int, help="master seed (overrides run.seed)")
    run.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                     help="override a scenario value (TOML syntax), e.g. --set run.steps=100; repeatable")
    run.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    run.set_defaults(func=_run)
    inspect = sub.add_parser("inspect", help="describe a result file")
    inspect.add_argument("file")
    inspect.set_defaults(func=_inspect)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ScenarioError, NetworkError, BoundaryError, ValueError, OSError) as exc:
        print(f"edgesim: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
