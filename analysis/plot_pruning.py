"""Pruning robustness from edgesim result files of scenarios/pruning_sweep.toml (any number of them).

Usage::

    python analysis/plot_pruning.py random.nc targeted.nc [jammed_random.nc ...] --out pruning.png

For every file (one network family, random or targeted removal) prints, per
removed fraction, the training error right after the removal (no
retraining) and at the end of the run (after retraining), both relative to
the error just before the removal: geometric means over realizations.  The
fraction 0 row is the undamaged baseline (its training simply goes on).  The
figure plots both against the fraction.  Needs matplotlib for the figure.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from edgesim.analysis import geometric_mean
from edgesim.results import open_result


def pruning_curves(ds):
    """(fractions, after-removal ratio, after-retraining ratio), geometric means over realizations."""
    if "fraction" not in ds.dims or "damage_error_before" not in ds:
        raise SystemExit("needs a result of scenarios/pruning_sweep.toml (a sweep over fraction with [damage])")
    damage = json.loads(ds.attrs["scenario"])["damage"]
    step = (damage["removal"] or damage["pruning"])[0]["step"]
    # a system that lost no edge (fraction 0) has no damage row: its error at the damage step stands in
    undamaged = ds.error_train.sel(step=step, method="nearest")
    before = ds.damage_error_before.isel(damage_event=0).fillna(undamaged)
    after = ds.damage_error_after.isel(damage_event=0).fillna(undamaged) / before
    final = ds.error_train.isel(step=-1) / before
    return ds["fraction"].values, geometric_mean(after).values, geometric_mean(final).values


def label(ds) -> str:
    scenario = json.loads(ds.attrs["scenario"])
    damage, net = scenario.get("damage", {}), scenario["network"]
    how = f"targeted ({damage['pruning'][0]['criterion']})" if damage.get("pruning") else "random"
    if net["kind"] == "jammed":
        name = f"jammed N = {net['size']}"
    elif net["kind"] == "square_lattice":
        name = f"{'periodic ' if net['periodic'] else ''}square lattice {net['nx']}x{net['ny'] or net['nx']}"
    else:
        name = net["kind"]
    return f"{name} ({ds.sizes['realization']} networks), {how}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--out", help="figure file (PNG)")
    args = parser.parse_args(argv)
    curves = []
    for path in args.files:
        ds = open_result(path)
        f, after, final = pruning_curves(ds)
        curves.append((label(ds), f, after, final))
        print(label(ds))
        print("  fraction  error after removal / before  after retraining / before")
        for row in zip(f, after, final):
            print("  %8.2f  %29.3g  %27.3g" % row)
    if args.out:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
        colours = plt.cm.tab10(np.arange(len(curves)))
        for (name, f, after, final), c in zip(curves, colours):
            axes[0].semilogy(f, after, "o-", color=c, label=name)
            axes[1].semilogy(f, final, "o-", color=c, label=name)
        axes[0].set(xlabel="fraction of edges removed", ylabel="error / error before removal",
                    title="right after the removal")
        axes[1].set(xlabel="fraction of edges removed", title="after retraining")
        axes[0].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(args.out, dpi=120)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
