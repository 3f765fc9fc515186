"""Throughput of the synchronous trainer against the published algorithm (issue: physics core).

Prints, in one run:

* a faithfulness check of the baseline (:mod:`published_baseline`, a
  reimplementation of the training loop of Stern et al. 2024's published code:
  dense bordered inverses, re-inverted only when ``|dk| > 1e-4`` or every 1000
  steps, first-order inverse updates otherwise) against edgesim's synchronous
  trainer, on the N = 64 Stern et al. 2024 task (20 examples, full batch,
  alpha = 0.5, eta = 1e-3, k0 = 1, k in [1e-4, 1e6]);
* realization-steps per second of that task over a full 1e5-step run, for
  edgesim's trainer with a stack of 50 realizations and for the published
  algorithm on the first 20 of them, one at a time; the ratio (target >= 10x)
  and how many steps of the baseline re-inverted;
* steps per second on periodic square lattices of about 1e3, 1e4 and 1e5 edges
  (one example; target >= 1 step/s at 1e5 edges).

The published loop speeds up as training converges (it re-inverts at every
step while the conductances move fast, then mostly applies the cheaper
first-order update), so both are timed over the whole run: the stack runs its
1e5 steps in 10 chunks of 1e4 (each chunk resumes from the conductances the
last one ended with, which is the same training) and one baseline realization
runs after each chunk, so that a shared machine whose speed drifts affects
both alike.  Wall-clock and CPU (process) time are both reported.  The full
run takes 10-12 minutes on 2 cores; ``--quick`` (about 15 s) runs
1e4 steps on 10 and 2 realizations and is a smoke run only.

Run: ``python benchmarks/bench_sync.py [--quick] [--lam LAMBDA]``.
"""

from __future__ import annotations

import os
import sys

# Small dense kernels: two BLAS threads on two cores give erratic timings.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from published_baseline import train_published  # noqa: E402

from edgesim.network import jammed_network, square_lattice  # noqa: E402
from edgesim.seeding import stream  # noqa: E402
from edgesim.tasks import edge_regression  # noqa: E402
from edgesim.trainer import LearningConfig, train_synchronous  # noqa: E402

CONFIG = LearningConfig()  # alpha 0.5, eta 1e-3, k in [1e-4, 1e6]: the published values
K0 = 1.0
ROUNDING = 1e-13  # relative rounding level of the N = 64 states (see faithfulness)


def stern_tasks(n):
    """The N = 64 edge-regression task on the first ``n`` shipped jammed networks."""
    return [edge_regression(jammed_network(64, r + 1), stream(0, r, "task")) for r in range(n)]


def published(task, steps, lam, **kw):
    return train_published(task, steps, alpha=CONFIG.alpha, eta=CONFIG.eta, lam=lam, k0=kw.pop("k0", K0),
                           k_min=CONFIG.k_min, k_max=CONFIG.k_max, **kw)


def edgesim_run(task, steps, lam, k0):
    h = train_synchronous([task], CONFIG, steps, [k0], lam=lam, record_at=np.arange(steps + 1))
    return h.error_train[0], h.conductance[0, -1]


def deviation(run, errors, k):
    """Largest relative deviation of the error trajectory and of the final conductances."""
    return np.max(np.abs(run.errors - errors) / errors), np.max(np.abs(run.conductance - k) / k)


def faithfulness(task, steps, warm, lam):
    """Baseline vs edgesim over ``steps`` steps: from k0, and from edgesim's state after ``warm`` steps.

    Tolerance.  If the states (node voltages) of both twins carry a relative
    error ``delta``, the update ``dk = -(alpha/eta) mean(dV_C^2 - (1-lambda) dV_F^2)``
    is off by at most ``(alpha/eta) * 2 (dV_C^2 + dV_F^2) delta <= 4 (alpha/eta) delta``
    (drops are below 1 V here), and these errors add up over the window, so
    conductances and errors may deviate by ``tau = 4 (alpha/eta) steps delta``.
    ``delta`` is the larger of the rounding level of the states (1e-13: the two
    codes solve the same equations by different factorizations of matrices
    with condition numbers ~1e3) and the measured drift of the published
    rule's maintained inverses from the exact ones.  The learning rule thus
    amplifies state errors by ``alpha/eta = 500`` per step: the first-order
    update's ~1e-9 inverse drift shows as ~1e-4..1e-3 in a 2000-step window.

    From k0 the conductances move by more than the threshold at every step, so
    the published rule re-inverts exactly at every step (rounding only).  After
    ``warm`` steps it runs on first-order inverse updates; the same window is
    also run re-inverted at every step (rounding only) and with exact
    inversions 10x as often (every 100 steps), where the deviation must shrink
    with ``delta``: the difference is the published approximation, not a
    different algorithm.
    """
    print(f"faithfulness: published algorithm vs edgesim train_synchronous, {task.network.name}, "
          f"lambda = {lam:g}, {steps} steps")
    E = task.network.n_edges
    ok = True

    def line(label, run, errors, k, tol):
        nonlocal ok
        de, dk = deviation(run, errors, k)
        good = max(de, dk) <= tol
        ok &= good
        print(f"  {label:50s}: exact inversions {run.inversions:5d}, first-order {run.first_order:5d}; "
              f"max rel. deviation error {de:.2e}, conductance {dk:.2e}  (tolerance {tol:.1e}: "
              f"{'OK' if good else 'FAILED'})")
        return de, dk

    def tau(run):
        return 4 * CONFIG.alpha / CONFIG.eta * steps * max(ROUNDING, run.inverse_drift)

    errors, k = edgesim_run(task, steps, lam, np.full(E, K0))
    run = published(task, steps, lam, track_drift=True)
    line(f"steps 0-{steps} from k0 = 1", run, errors, k, tau(run))

    start = train_synchronous([task], CONFIG, warm, [np.full(E, K0)], lam=lam, record_at=[0, warm])
    k_start = start.conductance[0, -1]
    errors, k = edgesim_run(task, steps, lam, k_start)
    label = f"steps {warm}-{warm + steps}"
    run_exact = published(task, steps, lam, k0=k_start, refresh_threshold=-1.0)
    line(label + ", re-inverted every step", run_exact,
         errors, k, tau(run_exact))
    run = published(task, steps, lam, k0=k_start, track_drift=True)
    print(f"  {label}: inverse drift delta = {run.inverse_drift:.2e}, "
          f"tau = 4 (alpha/eta) steps delta = {tau(run):.1e}")
    dev = line(label + ", published rule", run, errors, k, tau(run))
    finer = published(task, steps, lam, k0=k_start, refresh_every=100, track_drift=True)
    dev_f = line(label + ", exact inversion every 100 steps", finer, errors, k, tau(finer))
    if run.first_order:
        shrinks = finer.inverse_drift < run.inverse_drift and max(dev_f) < max(dev)
        ok &= shrinks
        print(f"  deviation / delta: {max(dev) / run.inverse_drift:.2e} (exact every 1000 steps), "
              f"{max(dev_f) / max(finer.inverse_drift, 1e-300):.2e} (every 100); "
              f"shrinks with delta: {'OK' if shrinks else 'FAILED'}")
    else:
        print("  (no first-order updates in this window: the approximation was not exercised)")
    print(f"  faithfulness: {'OK' if ok else 'FAILED'}")
    return ok


def full_run_rates(n_stack, n_base, steps, chunks, lam):
    """Realization-steps/s (wall, CPU) of the edgesim stack and of the published algorithm over ``steps`` steps."""
    tasks = stern_tasks(n_stack)
    k = [np.full(t.network.n_edges, K0) for t in tasks]
    train_synchronous(tasks[:2], CONFIG, 10, k[:2], lam=lam, record_at=[0, 10])  # warm up caches and imports
    chunk = steps // chunks
    wall_ours = cpu_ours = wall_base = cpu_base = 0.0
    runs = []
    for c in range(chunks):
        w, p = time.perf_counter(), time.process_time()
        h = train_synchronous(tasks, CONFIG, chunk, k, lam=lam, record_at=[0, chunk])
        wall_ours += time.perf_counter() - w
        cpu_ours += time.process_time() - p
        k = [h.conductance[r, -1, :t.network.n_edges] for r, t in enumerate(tasks)]
        for r in range(c * n_base // chunks, (c + 1) * n_base // chunks):
            w, p = time.perf_counter(), time.process_time()
            runs.append(published(tasks[r], steps, lam))
            wall_base += time.perf_counter() - w
            cpu_base += time.process_time() - p
    ours = n_stack * chunk * chunks
    base = n_base * steps
    return ((ours / wall_ours, ours / cpu_ours), (base / wall_base, base / cpu_base), runs, h.error_train[:, -1],
            wall_ours + wall_base)


def lattice_rate(side, steps):
    net = square_lattice(side, side, periodic=True)
    task = edge_regression(net, stream(0, 0, "task"), n_train=1, n_test=1)
    k0 = [np.ones(net.n_edges)]
    train_synchronous([task], CONFIG, 1, k0, record_at=[0, 1])
    t0 = time.perf_counter()
    train_synchronous([task], CONFIG, steps, k0, record_at=[0, steps])
    return net.n_edges, steps / (time.perf_counter() - t0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and realizations (smoke run, ~1 min)")
    parser.add_argument("--lam", type=float, default=0.0, help="power-efficiency amplitude lambda (default 0)")
    args = parser.parse_args(argv)
    q, lam = args.quick, args.lam
    t_start = time.perf_counter()
    print(f"numpy {np.__version__}, OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}")
    faithful = faithfulness(stern_tasks(1)[0], 500 if q else 2000, 20000, lam)

    steps, n_stack, n_base = (10_000, 10, 2) if q else (100_000, 50, 20)
    (ours, ours_cpu), (base, base_cpu), runs, final, timed = full_run_rates(n_stack, n_base, steps, 10, lam)
    inv = sum(r.inversions for r in runs)
    fo = sum(r.first_order for r in runs)
    print(f"N=64 Stern task, lambda = {lam:g}, {steps} steps from k0 = 1 ({'smoke run' if q else 'full run'}), "
          f"timed {timed:.0f} s:")
    for label, wall, cpu in ((f"edgesim, {n_stack}-realization stack", ours, ours_cpu),
                             (f"published algorithm, {n_base} realizations", base, base_cpu)):
        print(f"  {label:38s}: {wall:8.0f} realization-steps/s wall, {cpu:8.0f} CPU")
    print(f"    baseline: exact inversions {inv} ({inv / (inv + fo):.1%}), first-order updates {fo}; "
          "per realization: " + " ".join(f"{r.inversions}" for r in runs))
    print(f"    median final training error, same {n_base} tasks: edgesim {np.median(final[:n_base]):.2e}, "
          f"published {np.median([r.errors[-1] for r in runs]):.2e}")
    ratio = ours / base
    print(f"  speed-up over the published algorithm: {ratio:6.1f}x wall, {ours_cpu / base_cpu:6.1f}x CPU   "
          f"(target >= 10x: {'OK' if ratio >= 10 else 'MISSED'})")
    for side, steps in ((22, 200), (71, 30), (224, 3)):
        if q and side > 71:
            continue
        n_edges, rate = lattice_rate(side, max(steps // (10 if q else 1), 1))
        note = f"   (target >= 1 step/s: {'OK' if rate >= 1 else 'MISSED'})" if n_edges >= 1e5 else ""
        print(f"periodic lattice, {n_edges:6d} edges, 1 example : {rate:10.2f} steps/s{note}")
    total = time.perf_counter() - t_start
    print(f"faithfulness check: {'OK' if faithful else 'FAILED'}; total wall time {total:.0f} s")


if __name__ == "__main__":
    main()
