"""Throughput of the autonomous-edge engines (issue: autonomous edges).

For periodic square lattices of about 1e2, 1e3, 1e4 (and 1e5) edges, with one
training example (edge regression) and ideal edges whose clocks have random
phases, so that every tick is an instant of its own:

* edge events per second of the per-edge and the vectorised engine with
  ``settle_time = 0`` (every event needs an exact single-edge update);
* the vectorised engine with jittered clocks and settle windows holding about
  1 % of the edges, on open lattices of 1e4, 1e5 and 1e6 edges, with the
  automatic solver (targets 1.5e4 events/s at 1e5 edges, 3e3 at 1e6; issue: chip
  scale) and with ``lu`` refactoring every window, against the bare LU
  refactorization timed in the same run (the ratio says how much cheaper a
  window update is);
* the bare solver cost of an exact single-edge update at each size (a kept
  factorization with low-rank corrections, refactoring every ``max_rank``
  changes, giving the new drops of every edge), and each engine's throughput as a
  fraction of that limit (target >= 0.5 for the vectorised engine at 1e3 and
  1e4 edges);
* the per-edge engine at 1e2 edges with synchronous clocks (target >= 2e4 events/s).

Run: ``python benchmarks/bench_engine.py [--quick | --windows]`` (a few minutes;
``--quick`` skips the 1e4 edge and window runs, ``--windows`` runs only the
window study, about a minute and 2 GB).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from edgesim.config import EngineConfig, LearningConfig, SolverConfig  # noqa: E402
from edgesim.engine.simulate import simulate  # noqa: E402
from edgesim.hardware import HardwareSpec, with_overrides  # noqa: E402
from edgesim.solvers import LowRankEquilibrium  # noqa: E402
from edgesim.network import square_lattice  # noqa: E402
from edgesim.physics import TwinSolver, resolve_backend  # noqa: E402
from edgesim.seeding import stream  # noqa: E402
from edgesim.tasks import edge_regression  # noqa: E402

SIDES = {100: 7, 1000: 22, 10000: 71, 100000: 224}


def lattice_task(size):
    net = square_lattice(SIDES[size], SIDES[size], periodic=True)
    return edge_regression(net, stream(0, 0, "task"), n_train=1, n_test=1)


def engine_rate(task, kind, periods, phase="random", settle=0.0, max_rank=16):
    hw = with_overrides(HardwareSpec(), dict(phase=phase), {}, {})
    cfg = EngineConfig(kind=kind, settle_time=settle, max_rank=max_rank, supervisor_period=1.0)
    t0 = time.perf_counter()
    _, info = simulate(task, LearningConfig(alpha=0.05, eta=0.1), hw, cfg, np.ones(task.network.n_edges),
                       np.array([0.0, periods]), seed=1)
    return info["events"] / (time.perf_counter() - t0)


def bare_update_cost(task, n_events, max_rank=16):
    """Seconds per exact single-edge update: low-rank refresh of a kept factorization, new drops of all edges."""
    net = task.network
    eq = LowRankEquilibrium(net, task.boundary, np.ones(net.n_edges), max_rank=max_rank)
    eq.response()
    rng = np.random.default_rng(0)
    edges = rng.integers(net.n_edges, size=n_events)
    t0 = time.perf_counter()
    for e in edges:
        eq.set_conductance([e], eq.conductance[e] * 1.001)
        eq.response()  # the corrected response holds the new drops of every edge
    return (time.perf_counter() - t0) / n_events


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (smoke test)")
    parser.add_argument("--windows", action="store_true", help="only the settle-window study (1e4 to 1e6 edges)")
    args = parser.parse_args(argv)
    q = args.quick
    if args.windows:
        return window_study()
    print(f"numpy {np.__version__}, OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}")
    print(f"{'edges':>7} {'engine':>12} {'settle':>10} {'events/s':>10} {'bare limit/s':>13} {'fraction':>9}")
    sizes = [100, 1000] if q else [100, 1000, 10000]
    for size in sizes:
        task = lattice_task(size)
        E = task.network.n_edges
        bare = bare_update_cost(task, 100 if size >= 10000 else 300)
        limit = 1.0 / bare
        periods = {100: 20.0, 1000: 2.0, 10000: 0.1}[size] / (4 if q else 1)
        kinds = ["per_edge", "vectorized"] if size <= 1000 else ["vectorized"]
        if not q and size == 10000:
            kinds = ["per_edge", "vectorized"]
        for kind in kinds:
            rate = engine_rate(task, kind, periods)
            note = ""
            if kind == "vectorized" and size in (1000, 10000):
                note = "  (target >= 0.5: " + ("OK" if rate / limit >= 0.5 else "MISSED") + ")"
            print(f"{E:7d} {kind:>12} {'0':>10} {rate:10.0f} {limit:13.0f} {rate / limit:9.2f}{note}")
        if size == 100:
            rate = engine_rate(task, "per_edge", 50.0 / (4 if q else 1), phase="synchronous")
            note = "  (target >= 2e4 events/s: " + ("OK" if rate >= 2e4 else "MISSED") + ")"
            print(f"{E:7d} {'per_edge':>12} {'sync clk':>10} {rate:10.0f} {'':>13} {'':>9}{note}")
    if not q:
        window_study()


#: Edges of open square lattices (side) for the settle-window study, and simulated clock periods run.
WINDOW_SIDES = {10000: (71, 1.0), 100000: (224, 1.0), 1000000: (708, 0.1)}
WINDOW_TARGETS = {100000: 1.5e4, 1000000: 3e3}  # edge events/s (issue: chip scale)


def window_study(sizes=(10000, 100000, 1000000)):
    """Vectorised engine, jittered clocks of random phase, settle windows holding about 1 % of the edges.

    Each window ends with one solve of the twins at the new conductances: with ``cg`` (the automatic choice
    above :data:`~edgesim.physics.LU_MAX_NODES` nodes) an iterative solve warm-started from the previous
    window and preconditioned by a kept factorization, against ``lu``, which refactors for every window.
    The bare refactorization (an exact LU response of the twins) is timed in the same run.
    """
    print("\nsettle windows of 1 % of the edges (settle_time = 0.01 clock periods), jitter_std = 0.05, "
          "random phases, open lattice")
    print(f"{'edges':>8} {'backend':>8} {'events':>8} {'windows':>8} {'factorized':>10} {'events/s':>9} "
          f"{'s/window':>9} {'LU refactor s':>13} {'ratio':>6}")
    for size in sizes:
        side, periods = WINDOW_SIDES[size]
        net = square_lattice(side, side, periodic=False)
        task = edge_regression(net, stream(0, 0, "task"), n_train=1, n_test=1)
        solver = TwinSolver([net], [task.boundary], backend="lu")
        k = np.ones((1, net.n_edges))
        solver.response(k)
        t0 = time.perf_counter()
        solver.response(k * 1.01)  # a new state: factor and solve
        refactor = time.perf_counter() - t0
        backends = ["auto", "lu"] if size < 1000000 else ["auto"]
        for backend in backends:
            hw = with_overrides(HardwareSpec(), dict(phase="random", jitter_std=0.05), {}, {})
            cfg = EngineConfig(kind="vectorized", settle_time=0.01, supervisor_period=1.0)
            t0 = time.perf_counter()
            _, info = simulate(task, LearningConfig(alpha=0.05, eta=0.1), hw, cfg, np.ones(net.n_edges),
                               np.array([0.0, periods]), seed=1, solver=SolverConfig(backend=backend))
            wall = time.perf_counter() - t0
            rate, per_window = info["events"] / wall, wall / info["refactorizations"]
            note = ""
            if backend == "auto" and size in WINDOW_TARGETS:
                target = WINDOW_TARGETS[size]
                note = f"  (target >= {target:.1e} events/s: " + ("OK" if rate >= target else "MISSED") + ")"
            label = backend if backend != "auto" else f"auto={resolve_backend('auto', net.n_nodes)}"
            print(f"{net.n_edges:8d} {label:>8} {info['events']:8d} {info['refactorizations']:8d} "
                  f"{info['factorizations']:10d} {rate:9.0f} {per_window:9.3f} {refactor:13.3f} "
                  f"{refactor / per_window:6.2f}{note}")

if __name__ == "__main__":
    main()
