"""Damage and recovery (Dillavou et al. 2022, Fig. 5) from an edgesim result file.

Usage::

    edgesim run scenarios/dillavou2022_damage.toml -o damage.nc
    python analysis/plot_damage.py damage.nc --out damage.png

Plots the training error over time with every failure marked, prints the
damage table (edge, error just before and after, recovery time) and, for the
state just before the first failure, how many of the edges change the error
only modestly (less than ``--modest`` times) when removed alone.
Needs matplotlib for the figure (``pip install -e .[plot]``).
"""

from __future__ import annotations

import argparse
import textwrap

import numpy as np

from edgesim.analysis import single_removal_ratios
from edgesim.results import open_result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file")
    parser.add_argument("--out", help="figure file (PNG)")
    parser.add_argument("--modest", type=float, default=10.0, help="a removal is modest below this error ratio")
    parser.add_argument("--realization", type=int, default=0)
    args = parser.parse_args(argv)
    ds = open_result(args.file)
    for name in ("damage_time", "error_train"):
        if name not in ds:
            raise SystemExit(f"{args.file}: no variable {name!r}; run a scenario with [damage] (e.g. "
                             "scenarios/dillavou2022_damage.toml)")
    one = ds.isel(realization=args.realization)
    for dim in [d for d in one.error_train.dims if d != "step"]:
        one = one.isel({dim: 0})
    events = np.flatnonzero(one.damage_edge.values >= 0)
    print("time (s)  edge  error before  error after  recovery (s)")
    for j in events:
        print(f"{float(one.damage_time[j]):8.2f}  {int(one.damage_edge[j]):4d}  {float(one.damage_error_before[j]):12.3g}"
              f"  {float(one.damage_error_after[j]):11.3g}  {float(one.damage_recovery_time[j]):12.3g}")
    if events.size:
        ratios = single_removal_ratios(ds, args.realization, float(one.damage_time[events[0]]))
        modest = int((ratios < args.modest).sum())
        print(f"before the first failure, {modest} of {ratios.size} edges change the training error by less "
              f"than {args.modest:g}x when removed alone (ratios: {np.array2string(np.sort(ratios), precision=2)})")
    if args.out:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4))
        ax.semilogy(one.time.values, one.error_train.values, lw=1.2, label="training error")
        for j in events:
            t = float(one.damage_time[j])
            ax.axvline(t, color="crimson", lw=0.8, ls="--")
            ax.annotate(f"edge {int(one.damage_edge[j])}", (t, ax.get_ylim()[1]), rotation=90, va="top",
                        ha="right", fontsize=7, color="crimson")
        ax.set(xlabel="time (s)", ylabel="training error (V$^2$)")
        ax.set_title(textwrap.fill(ds.attrs.get("title", ""), 70), fontsize=9)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(args.out, dpi=120)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
