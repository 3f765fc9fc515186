"""Stern et al. 2024, Fig. 2 at lambda = 1e-5: the published algorithm against edgesim, on the same tasks.

The paper's text reports, at lambda = 1e-5, an error still five orders of
magnitude below its initial value while free power falls about 10x.  This
script runs the published training loop (:mod:`published_baseline`, the
reimplementation of github.com/NachiStern/Power-efficient-learning) on the
first realizations of edgesim's Fig. 2 study (``scenarios/stern2024_lambda.toml``:
the same networks, tasks and parameters) for the published 1e5 steps and
prints, for each lambda, the normalised training error and the free-power
factor ``P_F(0) / P_F(lambda)`` (free power ``0.5 sum k dV^2`` averaged over
the training examples).  With ``--edgesim DIR`` (the ``stern2024-fig2/lambda``
folder of an ``edgesim reproduce`` run) it prints edgesim's values for the
same realizations beside them.

Run: ``python benchmarks/published_lambda.py [--realizations 5] [--steps 100000] [--edgesim DIR]``
(about 20 s per realization and lambda on one core).
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from published_baseline import _bordered, _constraint_rows, train_published  # noqa: E402

from edgesim.build import build_network, build_task  # noqa: E402
from edgesim.scenario import load_scenario  # noqa: E402

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "stern2024_lambda.toml"


def free_power(task, k) -> float:
    """``0.5 sum_e k_e dV_e^2`` of the free state, averaged over the training examples."""
    net, bc = task.network, task.boundary
    N = net.n_nodes
    D = np.zeros((net.n_edges, N))
    D[np.arange(net.n_edges), net.edges[:, 0]] = 1.0
    D[np.arange(net.n_edges), net.edges[:, 1]] = -1.0
    C = _constraint_rows(N, [(bc.ground, -1)] + list(bc.inputs))
    rhs = np.vstack([np.zeros((N + 1, task.n_train)), task.train_inputs])
    drops = D @ np.linalg.solve(_bordered((D.T * k) @ D, C), rhs)[:N]
    return float(0.5 * (k[:, None] * drops ** 2).sum(0).mean())


def published(realizations: int, steps: int, lambdas) -> dict:
    """lambda -> (normalised error, free power) per realization, from the published algorithm."""
    scenario = load_scenario(SCENARIO)
    out = {lam: ([], []) for lam in lambdas}
    for r in range(realizations):
        net = build_network(scenario.network, r)
        task = build_task(scenario.task, net, scenario.run.seed, r)
        for lam in lambdas:
            run = train_published(task, steps, alpha=scenario.learning.alpha, eta=scenario.learning.eta, lam=lam,
                                  k0=scenario.learning.kappa, k_min=scenario.learning.k_min,
                                  k_max=scenario.learning.k_max)
            out[lam][0].append(run.errors[-1] / run.errors[0])
            out[lam][1].append(free_power(task, run.conductance))
            print(f"  realization {r}, lambda {lam:g}: error {out[lam][0][-1]:.3g}, P_F {out[lam][1][-1]:.4g}",
                  flush=True)
    return {lam: tuple(np.array(v) for v in values) for lam, values in out.items()}


def edgesim_values(folder, realizations: int, lambdas) -> dict:
    from edgesim.analysis import final, normalized_error
    from edgesim.sweep import collect

    ds = collect(folder).isel(realization=slice(0, realizations))
    err, power = final(normalized_error(ds)), final(ds.free_power)
    return {lam: (err.sel({"lambda": lam}).values, power.sel({"lambda": lam}).values) for lam in lambdas}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--realizations", type=int, default=5)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--lambdas", type=float, nargs="+", default=[0.0, 1e-6, 1e-5])
    parser.add_argument("--edgesim", help="an edgesim reproduce stern2024-fig2/lambda sweep folder")
    args = parser.parse_args(argv)
    lambdas = sorted(set([0.0] + args.lambdas))
    print(f"published algorithm, {args.realizations} realizations x {args.steps} steps:")
    mine = published(args.realizations, args.steps, lambdas)
    theirs = edgesim_values(args.edgesim, args.realizations, lambdas) if args.edgesim else None
    print("\nlambda    published: error (median)  P_F(0)/P_F    edgesim: error (median)  P_F(0)/P_F")
    for lam in lambdas:
        err, power = mine[lam]
        line = f"{lam:<9g} {np.median(err):24.3g}  {np.median(mine[0.0][1] / power):10.3g}"
        if theirs is not None:
            e, p = theirs[lam]
            line += f"    {np.median(e):22.3g}  {np.median(theirs[0.0][1] / p):10.3g}"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
