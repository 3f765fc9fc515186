"""Robustness of Newton's method on random hard-threshold transistor networks: how many solves fail.

For each of ``--networks`` random square lattices (``tests/newton_support.py``: 3x3 to 8x8 by default,
``--large``: 20x20 to 45x45; periodic or open; per-edge S with a 10 % spread; gates V_T + 0.3 .. 7 V; 3 examples
of 2 inputs at 0-5 V), the solves a training run asks are made: the free twin, the clamped twin (outputs clamped
up to 1 V off the free output), then three learning steps ``k *= 1 + 1e-2 noise`` (warm starts), for each variant
of the law (square law; with channel-length modulation 0.05/V; without leakage) and each backend of the Newton
steps (dense LAPACK, sparse LU + GMRES).  A network fails when any of its solves raises NewtonError.

Without leakage a node whose transistors are all cut off has no defined voltage, so failures are expected
there; with the default leakage (1e-9 S) there should be none.

Run: ``python benchmarks/stress_newton.py [--networks 1500] [--large]`` (about 3 minutes at the default on
the 2-core development machine).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))  # newton_support
sys.path.insert(0, os.path.dirname(HERE))  # edgesim from this checkout

import numpy as np  # noqa: E402

from edgesim.nonlinear import NewtonError  # noqa: E402

from newton_support import random_transistor_network, solve_like_training  # noqa: E402

VARIANTS = {"square law": {}, "channel-length modulation": {"channel_length_modulation": 0.05},
            "no leakage": {"leakage_conductance": 0.0}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", type=int, default=1500, help="random networks per variant and backend")
    parser.add_argument("--large", action="store_true", help="20x20 to 45x45 lattices instead of 3x3 to 8x8")
    args = parser.parse_args(argv)
    sides = (20, 46) if args.large else (3, 9)
    print(f"{args.networks} random transistor lattices of {sides[0]}x{sides[0]} to {sides[1] - 1}x{sides[1] - 1} per "
          "variant and backend: free, clamped, 3 warm-started learning steps each")
    for variant, options in VARIANTS.items():
        for backend in ("dense", "lu"):
            if args.large and backend == "dense":
                continue
            t0, iterations, failed = time.perf_counter(), 0, []
            for seed in range(args.networks):
                side = int(np.random.default_rng([seed, 1]).integers(*sides)) if args.large else None
                net, bc, k, x = random_transistor_network(seed, n=side, options=options)
                try:
                    iterations += solve_like_training(net, bc, k, x, seed, backend)
                except NewtonError:
                    failed.append(seed)
            print(f"{variant:26s} {backend:5s}: {len(failed):4d} of {args.networks} networks failed "
                  f"(seeds {failed[:8]}{' ...' if len(failed) > 8 else ''}); {iterations} Newton iterations, "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
