"""Check that a code change leaves every quick shipped scenario's results unchanged.

Two uses:

* ``python analysis/compare_results.py BEFORE.nc AFTER.nc`` (or two folders of
  ``.nc`` files with the same names) compares result files: every variable,
  coordinate and attribute must be identical, bit for bit (NaNs compare
  equal), apart from the ``history`` attribute (creation time and command) and
  ``package_versions`` (the environment, absent from older files).  The stored
  ``scenario`` texts must describe the same scenario: both are parsed and
  resolved with the current code and compared (older files store the
  scenario as written, newer ones the resolved scenario).
* ``python analysis/compare_results.py --before REV`` runs every quick
  shipped scenario with the code of git revision ``REV`` (checked out into a
  temporary worktree) and with the working tree, then compares the files.
  ``--scenarios a b ...`` picks scenarios, ``--keep DIR`` keeps the files.

Exit status 0 when everything is identical, 1 otherwise; each difference is
printed with its largest absolute and relative size.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr

#: Shipped scenarios that run in seconds (the long published-scale studies are left out).
QUICK_SCENARIOS = ("quickstart", "dillavou2022_divider", "dillavou2022_allostery", "dillavou2022_regression",
                   "dillavou2022_iris", "desync", "desync_taps", "jitter_noise", "leaky_memory")
#: history: creation time and command; package_versions: the environment; scenario: compared after resolution
IGNORED_ATTRS = {"history", "scenario", "package_versions"}
ROOT = Path(__file__).resolve().parent.parent


def same_scenario(before: str, after: str) -> bool:
    """Whether two stored scenario texts resolve to the same scenario."""
    import json

    from edgesim.scenario import parse_scenario

    if before == after:
        return True
    return parse_scenario(json.loads(before)).to_dict() == parse_scenario(json.loads(after)).to_dict()


def compare_datasets(before: xr.Dataset, after: xr.Dataset) -> list[str]:
    """Differences between two result datasets (empty: identical)."""
    problems = []
    if not same_scenario(before.attrs.get("scenario", "{}"), after.attrs.get("scenario", "{}")):
        problems.append("attribute 'scenario': the stored scenarios resolve to different scenarios")
    names_b, names_a = set(before.variables), set(after.variables)
    for name in sorted(names_b ^ names_a):
        problems.append(f"variable {name} only in {'before' if name in names_b else 'after'}")
    for name in sorted(names_b & names_a):
        a, b = before[name], after[name]
        if a.dims != b.dims or a.shape != b.shape:
            problems.append(f"{name}: dims/shape {a.dims}{a.shape} != {b.dims}{b.shape}")
            continue
        x, y = np.asarray(a.values), np.asarray(b.values)
        if x.dtype.kind in "fc" or y.dtype.kind in "fc":
            same = np.array_equal(x, y, equal_nan=True)
        else:
            same = np.array_equal(x, y)
        if not same:
            diff = np.abs(x.astype(float) - y.astype(float))
            scale = np.maximum(np.abs(x.astype(float)), np.abs(y.astype(float)))
            with np.errstate(invalid="ignore", divide="ignore"):
                rel = np.nanmax(np.where(scale > 0, diff / scale, 0.0))
            problems.append(f"{name}: values differ (max abs {np.nanmax(diff):.3g}, max rel {rel:.3g}, "
                            f"{int(np.sum(~((x == y) | (np.isnan(x.astype(float)) & np.isnan(y.astype(float))))))}"
                            f" of {x.size} entries)")
        for key in sorted(set(a.attrs) | set(b.attrs)):
            if a.attrs.get(key) != b.attrs.get(key):
                problems.append(f"{name}.attrs[{key!r}]: {a.attrs.get(key)!r} != {b.attrs.get(key)!r}")
    for key in sorted((set(before.attrs) | set(after.attrs)) - IGNORED_ATTRS):
        x, y = before.attrs.get(key), after.attrs.get(key)
        if not (np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y):
            problems.append(f"attribute {key!r}: {x!r} != {y!r}")
    return problems


def compare_paths(before: Path, after: Path) -> int:
    pairs = [(before, after)] if before.is_file() else [
        (f, after / f.name) for f in sorted(before.glob("*.nc"))]
    failed = 0
    for b, a in pairs:
        if not a.exists():
            print(f"{a}: missing")
            failed += 1
            continue
        with xr.open_dataset(b) as x, xr.open_dataset(a) as y:
            problems = compare_datasets(x.load(), y.load())
        print(f"{b.name}: {'identical' if not problems else 'DIFFERENT'}")
        for p in problems:
            print(f"    {p}")
        failed += bool(problems)
    return 1 if failed else 0


def run_scenarios(code_root: Path, out: Path, scenarios) -> None:
    """Run ``scenarios`` with the package at ``code_root`` (its own scenario files), writing ``out/NAME.nc``."""
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(code_root), OPENBLAS_NUM_THREADS="1")
    for name in scenarios:
        cmd = [sys.executable, "-m", "edgesim.cli", "run", str(code_root / "scenarios" / f"{name}.toml"),
               "--output", str(out / f"{name}.nc"), "--quiet"]
        subprocess.run(cmd, check=True, env=env, cwd=code_root, stdout=subprocess.DEVNULL)
        print(f"  ran {name} ({code_root.name})")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", help="BEFORE AFTER (files or folders)")
    parser.add_argument("--before", metavar="REV", help="git revision to compare the working tree against")
    parser.add_argument("--scenarios", nargs="+", default=list(QUICK_SCENARIOS))
    parser.add_argument("--keep", metavar="DIR", help="keep the result files here")
    args = parser.parse_args(argv)
    if args.before is None:
        if len(args.paths) != 2:
            parser.error("give BEFORE and AFTER, or --before REV")
        return compare_paths(Path(args.paths[0]), Path(args.paths[1]))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        out = Path(args.keep) if args.keep else tmp
        tree = tmp / "before-tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), args.before],
                       check=True, stdout=subprocess.DEVNULL)
        try:
            run_scenarios(tree, out / "before", args.scenarios)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)
        run_scenarios(ROOT, out / "after", args.scenarios)
        return compare_paths(out / "before", out / "after")


if __name__ == "__main__":
    sys.exit(main())
