"""Time per synchronous learning step on large square lattices, for every solver backend (issue 9).

For open and periodic square lattices of about 1e3, 1e4, 1e5 and 1e6 edges
(1e7 with ``--huge``), each backend (``lu``: the exact sparse LU, the
baseline; ``cg``: conjugate gradients preconditioned by a kept LU; ``amg``:
the same with a multigrid preconditioner; ``auto``: what edgesim picks) runs
one system learning one edge-regression example (free + clamped solve and
update per step) in a fresh process; ``cholmod`` (CHOLMOD's Cholesky) and
``cg-cholmod`` (CG with a kept CHOLMOD factor) run when scikit-sparse is
installed.  The ``auto`` rows say whether the targets of issue 9 are met.  Printed: seconds per step after the
first (which pays the set-up and the first factorization), the first step's
time, and the process's peak memory.

Run: ``python benchmarks/bench_scale.py [--sizes 1e3 1e4 1e5] [--huge] [--backends lu cg cg-cholmod auto]``
(the default sizes take about 10 minutes; ``--huge`` adds about an hour and needs 10 to 13 GB for ``lu``).
"""

from __future__ import annotations

import argparse
import json
import sys

from child_process import run_measured

CHILD = r"""
import json, sys, time
import numpy as np
from edgesim.config import LearningConfig
from edgesim.network import square_lattice
from edgesim.seeding import stream
from edgesim.tasks import edge_regression
from edgesim.trainer import SynchronousTraining
side, periodic, backend, steps = int(sys.argv[1]), sys.argv[2] == "periodic", sys.argv[3], int(sys.argv[4])
net = square_lattice(side, side, periodic=periodic)
task = edge_regression(net, stream(0, 0, "task"), n_train=1, n_test=1)
k0 = [np.exp(np.random.default_rng(0).normal(0, 0.5, net.n_edges))]
t0 = time.perf_counter()
run = SynchronousTraining([task], LearningConfig(alpha=0.5, eta=1e-3), steps + 1, k0, record_at=[0, steps + 1],
                          solver_backend=backend)
run.advance(1)
first = time.perf_counter() - t0
t0 = time.perf_counter()
run.advance(steps + 1)
rest = (time.perf_counter() - t0) / steps
print(json.dumps({"edges": net.n_edges, "first": first, "per_step": rest, "backend": run.solver.backend,
                  "stats": run.solver.linear_stats}))
"""

STEPS = {1e3: 200, 1e4: 40, 1e5: 10, 1e6: 3, 1e7: 2}
#: Targets of issue 9 on this machine: seconds per step at most, and peak MB below (None: no bound).
TARGETS = {1e5: (0.1, None), 1e6: (2.0, None), 1e7: (30.0, 8192)}


def available_backends() -> list[str]:
    """Every backend this installation can run, the exact LU first (the baseline), then ``auto``."""
    names = ["lu", "cg"]
    try:
        import sksparse.cholmod  # noqa: F401

        names += ["cholmod", "cg-cholmod"]
    except ImportError:
        print("scikit-sparse not installed: no cholmod or cg-cholmod rows (see docs/solvers.md)")
    try:
        import pyamg  # noqa: F401

        names.append("amg")
    except ImportError:
        print("pyamg not installed: no amg rows")
    return names + ["auto"]


def verdict(size: float, per_step: float, peak_mb: float) -> str:
    if size not in TARGETS:
        return ""
    seconds, megabytes = TARGETS[size]
    ok = per_step <= seconds and (megabytes is None or peak_mb < megabytes)
    bound = f"<= {seconds:g} s/step" + (f", < {megabytes / 1024:g} GB" if megabytes else "")
    return f"  target {bound}: {'OK' if ok else 'MISSED'}"


def measure(side: int, kind: str, backend: str, steps: int) -> dict:
    code, peak, _, out, err = run_measured([sys.executable, "-c", CHILD, str(side), kind, backend, str(steps)])
    if code != 0:
        return {"error": (err.strip().splitlines() or ["failed"])[-1][:100]}
    result = json.loads(out)
    result["peak_mb"] = peak
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", type=float, default=[1e3, 1e4, 1e5, 1e6])
    parser.add_argument("--huge", action="store_true", help="also 1e7 edges (lu needs 10 to 13 GB)")
    parser.add_argument("--backends", nargs="+", default=None, help="default: every installed backend and auto")
    parser.add_argument("--kinds", nargs="+", default=["open", "periodic"])
    args = parser.parse_args(argv)
    sizes = args.sizes + ([1e7] if args.huge else [])
    backends = args.backends or available_backends()
    print(f"{'lattice':9s} {'edges':>9s} {'backend':10s} {'s/step':>9s} {'first s':>8s} {'peak MB':>8s}  notes")
    for size in sizes:
        side = round((size / 2) ** 0.5)
        for kind in args.kinds:
            for backend in backends:
                r = measure(side, kind, backend, STEPS.get(size, 2))
                if "error" in r:
                    print(f"{kind:9s} {'':>9s} {backend:10s} failed: {r['error']}")
                    continue
                stats = r["stats"][0] if r["stats"] else {}
                note = (f"{stats.get('factorizations', 0)} factorizations, {stats.get('iterations', 0)} iterations"
                        if stats else "dense")
                if backend == "auto":
                    note = f"picked {r['backend']}" + verdict(size, r["per_step"], r["peak_mb"])
                print(f"{kind:9s} {r['edges']:9d} {backend:10s} {r['per_step']:9.3f} {r['first']:8.2f} "
                      f"{r['peak_mb']:8.0f}  {note}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
