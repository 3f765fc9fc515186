"""Throughput of the synchronous trainer (issue: physics core).

Prints, in one run:

* realization-steps per second of the N = 64 Stern et al. 2024 task (20
  examples, free + clamped solve, full-batch update) for an ensemble of 50
  realizations trained as one stack;
* the same for a plain per-realization dense-inverse trainer
  (:mod:`edgesim.reference`, the published-code style) and the ratio (target >= 10x);
* steps per second on periodic square lattices of about 1e3, 1e4 and 1e5 edges
  (one example; target >= 1 step/s at 1e5 edges).

Run: ``python benchmarks/bench_sync.py [--quick]``.
"""

from __future__ import annotations

import os

# Small dense kernels: two BLAS threads on two cores give erratic timings.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from edgesim.network import jammed_network, square_lattice  # noqa: E402
from edgesim.reference import train_dense  # noqa: E402
from edgesim.seeding import stream  # noqa: E402
from edgesim.tasks import edge_regression  # noqa: E402
from edgesim.trainer import LearningConfig, train_synchronous  # noqa: E402


def best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def ensemble_and_baseline_rates(n_real, steps, base_real, base_steps, rounds):
    """Realization-steps/s of the stacked trainer and of the dense baseline.

    The two are timed in alternation, best of ``rounds`` each, so that a
    machine whose speed drifts (shared cores) affects both alike.
    """
    tasks = [edge_regression(jammed_network(64, r + 1), stream(0, r, "task")) for r in range(n_real)]
    k0 = [np.ones(t.network.n_edges) for t in tasks]
    ours = lambda: train_synchronous(tasks, LearningConfig(), steps, k0, record_at=[0, steps])
    base = lambda: [train_dense(t, base_steps) for t in tasks[:base_real]]
    ours()  # warm up caches and imports
    t_ours, t_base = [], []
    for _ in range(rounds):
        t_ours.append(best_of(ours, 1))
        t_base.append(best_of(base, 1))
    return n_real * steps / min(t_ours), base_real * base_steps / min(t_base)


def lattice_rate(side, steps):
    net = square_lattice(side, side, periodic=True)
    task = edge_regression(net, stream(0, 0, "task"), n_train=1, n_test=1)
    k0 = [np.ones(net.n_edges)]
    train_synchronous([task], LearningConfig(), 1, k0, record_at=[0, 1])
    t = best_of(lambda: train_synchronous([task], LearningConfig(), steps, k0, record_at=[0, steps]), 1)
    return net.n_edges, steps / t


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (smoke run)")
    args = parser.parse_args(argv)
    q = args.quick
    print(f"numpy {np.__version__}, OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}")
    ours, base = ensemble_and_baseline_rates(50, 100 if q else 500, 2 if q else 5, 50 if q else 200,
                                             1 if q else 5)
    print(f"N=64 Stern task, 50-realization stack : {ours:10.0f} realization-steps/s")
    print(f"N=64 dense-inverse baseline           : {base:10.0f} realization-steps/s")
    ratio = ours / base
    print(f"speed-up over baseline                : {ratio:10.1f}x   (target >= 10x: {'OK' if ratio >= 10 else 'MISSED'})")
    for side, steps in ((22, 200), (71, 30), (224, 3)):
        if q and side > 71:
            continue
        n_edges, rate = lattice_rate(side, max(steps // (10 if q else 1), 1))
        note = f"   (target >= 1 step/s: {'OK' if rate >= 1 else 'MISSED'})" if n_edges >= 1e5 else ""
        print(f"periodic lattice, {n_edges:6d} edges, 1 example : {rate:10.2f} steps/s{note}")


if __name__ == "__main__":
    main()
