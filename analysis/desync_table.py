"""Desynchronous learning: error at equal expected numbers of updates per edge.

Usage::

    edgesim run scenarios/desync.toml -o desync.nc
    python analysis/desync_table.py desync.nc [--plot desync.png]

Prints, for each update probability p, the normalised training error after
the edges have made U updates on average (p times the clock ticks), so that
desynchronous edges are compared at equal learning effort (Wycoff et al. 2022).
"""

from __future__ import annotations

import argparse

import numpy as np

from edgesim.analysis import error_at_updates, normalized_error
from edgesim.results import open_result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file")
    parser.add_argument("--updates", type=float, nargs="+", default=[25, 50, 100, 200])
    parser.add_argument("--plot", help="write a figure of error against expected updates per edge")
    args = parser.parse_args(argv)
    ds = open_result(args.file)
    table = error_at_updates(ds, args.updates).median("realization")
    print("normalised training error (median over realizations) at equal expected updates per edge")
    print("p       " + "".join(f"U={u:<10g}" for u in args.updates))
    for i, p in enumerate(table.update_probability.values):
        print(f"{p:<8g}" + "".join(f"{v:<12.3g}" for v in table.values[i]))
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        err = normalized_error(ds).median("realization")
        fig, ax = plt.subplots(figsize=(5, 4))
        for i, p in enumerate(ds.update_probability.values):
            ax.loglog(np.maximum(ds.step.values * p, 1e-1), err.isel(update_probability=i), label=f"p = {p:g}")
        ax.set(xlabel="expected updates per edge", ylabel="normalised training error")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
