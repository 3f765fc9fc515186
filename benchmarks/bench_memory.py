"""Peak memory of recording every edge's conductance of a 1e4-edge network over 1e4 samples (issue 8).

A periodic 71 x 71 square lattice (10,082 edges) learns one edge-regression
example for 1e4 steps with every step recorded, every conductance kept
(``run.record_every = 1``, ``run.conductance_every = 1``): 1e4 x 1e4 float64
conductances, 0.8 GB of records.  Measured in the same run, each in a fresh
process (peak resident set size, ``ru_maxrss``):

* ``edgesim run`` (streamed: records written segment by segment) — target < 500 MB;
* the baseline: the same scenario through ``run_scenario`` in memory and one
  ``write_netcdf`` at the end (what every run did before streaming).

Run: ``python benchmarks/bench_memory.py [--quick]`` (quick: 1e3 samples).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from child_process import LATTICE_REGRESSION, run_measured

SCENARIO_HEAD = """
title = "bench_memory: every conductance of a 1e4-edge lattice at every step"
[run]
seed = 1
steps = {steps}
record_every = 1
conductance_every = 1
[network]
kind = "square_lattice"
nx = 71
periodic = true
"""
SCENARIO = SCENARIO_HEAD + LATTICE_REGRESSION

IN_MEMORY = """
import sys
from edgesim.results import write_netcdf
from edgesim.runner import run_scenario
from edgesim.scenario import load_scenario
write_netcdf(run_scenario(load_scenario(sys.argv[1]), progress=False), sys.argv[2])
"""


def peak_of(command: list[str]) -> tuple[float, float]:
    """(peak RSS in MB, wall seconds) of a child process."""
    code, peak, wall, _, err = run_measured(command)
    if code != 0:
        raise SystemExit(f"failed: {' '.join(command)}: {err.strip()[-300:]}")
    return peak, wall


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1e3 samples instead of 1e4")
    parser.add_argument("--no-baseline", action="store_true", help="skip the in-memory baseline")
    args = parser.parse_args(argv)
    steps = 999 if args.quick else 9999  # steps + 1 samples
    with tempfile.TemporaryDirectory() as folder:
        scenario = Path(folder) / "memory.toml"
        scenario.write_text(SCENARIO.format(steps=steps))
        streamed = Path(folder) / "streamed.nc"
        peak, wall = peak_of([sys.executable, "-m", "edgesim.cli", "run", str(scenario), "-o", str(streamed),
                              "--quiet"])
        size = streamed.stat().st_size / 1e6
        print(f"samples: {steps + 1}, edges: 10082, file: {size:.0f} MB")
        print(f"edgesim run (streamed)      : peak {peak:7.0f} MB, {wall:6.1f} s   "
              f"(target < 500 MB: {'OK' if peak < 500 else 'MISSED'})")
        if not args.no_baseline:
            streamed.unlink()
            base_peak, base_wall = peak_of([sys.executable, "-c", IN_MEMORY, str(scenario),
                                            str(Path(folder) / "memory.nc")])
            print(f"in memory, one write (base) : peak {base_peak:7.0f} MB, {base_wall:6.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
