"""Parallel speed of ``edgesim sweep``: a shortened Stern et al. 2024 lambda study on 1 and 2 workers (issue 8).

The study is ``scenarios/stern2024_lambda.toml`` shortened (default: 8 of its
18 lambda values, 10 realizations, 15000 steps: 8 parts).  Each round runs it
with ``--jobs 1`` and ``--jobs 2`` into fresh folders (the two alternate, so
a machine whose speed drifts affects both alike), timing the whole command
including process start-up; the speed-up is the ratio of the best times
(target >= 1.8x on 2 workers).  Both runs' collected results are checked to
be identical.  From the 2-worker rate it also extrapolates the wall time of
the full published study (50 x 18 x 1e5 steps), which costs the same per
step at every step; ``--full`` runs that study for real instead.

Run: ``python benchmarks/bench_sweep.py [--rounds 2] [--full]``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "stern2024_lambda.toml"


def sweep(folder: Path, jobs: int, overrides: list[str]) -> float:
    sets = []
    for item in overrides:
        sets += ["--set", item]
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "edgesim.cli", "sweep", str(SCENARIO), "--out", str(folder), "--jobs",
                    str(jobs), "--quiet", *sets], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--lambdas", type=int, default=8, help="how many of the 18 lambda values (parts)")
    parser.add_argument("--realizations", type=int, default=10)
    parser.add_argument("--steps", type=int, default=15000)
    parser.add_argument("--full", action="store_true", help="also run the full published study on 2 workers")
    args = parser.parse_args(argv)
    from edgesim.scenario import load_scenario
    from edgesim.sweep import collect

    lambdas = list(load_scenario(SCENARIO).sweep["lambda"])[-args.lambdas:]
    overrides = [f"run.steps={args.steps}", f"run.realizations={args.realizations}", f"sweep.lambda={lambdas!r}"]
    times = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for jobs in (1, 2):
                times[jobs].append(sweep(Path(tmp) / f"r{round_}-j{jobs}", jobs, overrides))
        runs = [collect(Path(tmp) / f"r{r}-j{j}") for r in range(args.rounds) for j in (1, 2)]
        same = all(np.array_equal(run[n].values, runs[0][n].values, equal_nan=run[n].dtype.kind == "f")
                   for run in runs[1:] for n in runs[0].variables)
        full_time = None
        if args.full:
            full_time = sweep(Path(tmp) / "full", 2, [])
    system_steps = len(lambdas) * args.realizations * args.steps
    t1, t2 = min(times[1]), min(times[2])
    print(f"shortened Stern lambda study: {len(lambdas)} parts x {args.realizations} realizations x "
          f"{args.steps} steps ({system_steps:.3g} system-steps)")
    print(f"  --jobs 1: {', '.join(f'{t:.1f}' for t in times[1])} s")
    print(f"  --jobs 2: {', '.join(f'{t:.1f}' for t in times[2])} s")
    print(f"  speed-up on 2 workers: {t1 / t2:.2f}x   (target >= 1.8x: {'OK' if t1 / t2 >= 1.8 else 'MISSED'}); "
          f"results identical: {same}")
    full = 18 * 50 * 100_000
    print(f"  full study (18 x 50 x 1e5 = {full:.2g} system-steps) on 2 workers, extrapolated: "
          f"{full / system_steps * t2 / 60:.0f} min")
    if full_time is not None:
        print(f"  full study, measured: edgesim sweep --jobs 2 took {full_time / 60:.1f} min")
    return 0 if same else 1  # a sweep whose numbers depend on the worker count is a bug, not a timing


if __name__ == "__main__":
    sys.exit(main())
