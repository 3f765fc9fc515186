"""Chip-sized runs end to end: a 1e6-edge lattice for 100 steps and a 1e7-edge lattice for 10 (issue 9).

Each is an ``edgesim run`` of a generated scenario (open square lattice,
one edge-regression example, ``solver.backend = "auto"`` or ``--backend``), recorded to
netCDF with the per-edge conductances subsampled (1000 edges, first and
last snapshots); printed: wall time, peak memory of the process and the
size of the result file.

Run: ``python benchmarks/bench_big_runs.py [--sizes 1e6 1e7] [--backend cg-cholmod]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from child_process import LATTICE_REGRESSION, run_measured

SCENARIO = """
title = "bench_big_runs: {edges:.0e}-edge open lattice"
[run]
seed = 1
steps = {steps}
record_points = 20
conductance_every = 1000
conductance_edges = {subset}
[network]
kind = "square_lattice"
nx = {side}
[solver]
backend = "{backend}"
""" + LATTICE_REGRESSION

STEPS = {1e6: 100, 1e7: 10}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", type=float, default=[1e6, 1e7])
    parser.add_argument("--backend", default="auto", help="solver.backend of the runs (default auto)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes:
            side = round((size / 2) ** 0.5)
            path = Path(folder) / "big.toml"
            subset = list(range(0, int(size) - 2 * side, int(size) // 1000))[:1000]
            path.write_text(SCENARIO.format(edges=size, steps=STEPS.get(size, 10), side=side, subset=subset,
                                            backend=args.backend))
            out = Path(folder) / "big.nc"
            code, peak, wall, stdout, _ = run_measured([sys.executable, "-m", "edgesim.cli", "run", str(path), "-o",
                                                         str(out), "--quiet", "--overwrite"])
            summary = stdout.strip().splitlines()
            if code != 0:
                print(f"{size:.0e} edges: failed")
                continue
            print(f"{size:.0e} edges ({side} x {side} open lattice), {STEPS.get(size, 10)} steps, "
                  f"solver.backend = {args.backend}: {wall:.0f} s, "
                  f"peak {peak / 1024:.2f} GB, file {out.stat().st_size / 1e6:.1f} MB")
            print("   " + next(line for line in summary if "training error" in line).strip())
            out.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
