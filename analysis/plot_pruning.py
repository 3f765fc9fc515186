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
import sys
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared loading module
import loading  # noqa: E402

from edgesim.analysis import geometric_mean  # noqa: E402

SCRIPT = Path(__file__).name
MADE_BY = "scenarios/pruning_sweep.toml (a sweep over fraction with a [[damage.removal]] or [[damage.pruning]])"
# docs/experiments.md retrains for 2000 steps after the removal; with fewer, the "after retraining"
# panel shows networks still relearning, not the published recovery, and the figure says so.
RETRAIN_STEPS = 2000


def removal_step(ds) -> int:
    """The step of the (first) removal or pruning of a pruning sweep."""
    damage = loading.scenario(ds).get("damage", {})
    actions = damage.get("removal") or damage.get("pruning")
    if not actions:
        raise loading.AnalysisError(f"{loading.source(ds)}: {SCRIPT} needs a result of {MADE_BY}; this file has "
                                    f"no removal or pruning ({loading.describe(ds)})")
    return int(actions[0]["step"])


def pruning_curves(ds):
    """(fractions, after-removal ratio, after-retraining ratio), geometric means over realizations."""
    loading.require(ds, "error_train", "damage_error_before", "damage_error_after", script=SCRIPT, made_by=MADE_BY,
                    dims=("fraction",))
    ds, _ = loading.first_of_others(ds, keep=("fraction",))
    step = removal_step(ds)
    # a system that lost no edge (fraction 0) has no damage row: its error at the damage step stands in
    undamaged = ds.error_train.sel(step=step, method="nearest")
    before = ds.damage_error_before.isel(damage_event=0).fillna(undamaged)
    after = ds.damage_error_after.isel(damage_event=0).fillna(undamaged) / before
    final = ds.error_train.isel(step=-1) / before
    return ds["fraction"].values, geometric_mean(after).values, geometric_mean(final).values


def label(ds) -> str:
    """Network family, number of realizations and removal kind of a pruning result."""
    scenario = loading.scenario(ds)
    damage, net = scenario.get("damage", {}), scenario["network"]
    how = f"targeted ({damage['pruning'][0]['criterion']})" if damage.get("pruning") else "random"
    if net["kind"] == "jammed":
        name = f"jammed N = {net['size']}"
    elif net["kind"] == "square_lattice":
        name = f"{'periodic ' if net['periodic'] else ''}square lattice {net['nx']}x{net['ny'] or net['nx']}"
    else:
        name = net["kind"]
    return f"{name} ({ds.sizes['realization']} networks), {how}"


@loading.command
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--out", help="figure file (PNG)")
    args = parser.parse_args(argv)
    curves, results = [], []
    for path in args.files:
        ds = loading.open_result(path)
        f, after, final = pruning_curves(ds)
        curves.append((label(ds), f, after, final))
        results.append(ds)
        print(label(ds))
        print("  fraction  error after removal / before  after retraining / before")
        for row in zip(f, after, final):
            print("  %8.2f  %29.3g  %27.3g" % row)
    if not args.out:
        return 0
    plt = loading.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for (name, f, after, final), c in zip(curves, loading.colours(len(curves))):
        axes[0].plot(f, after, "o-", color=c, label=name)
        axes[1].plot(f, final, "o-", color=c, label=name)
    loading.log_if_decades(axes[0], [v for c in curves for a in c[2:] for v in a], "y", decades=0.5)
    for ax in axes:
        ax.axhline(1.0, color="0.6", lw=0.7, ls=":")
    axes[0].set(xlabel="fraction of edges removed", ylabel="training error / error just before the removal\n"
                "(geometric mean over realizations)", title="right after the removal")
    axes[1].set(xlabel="fraction of edges removed", title="after retraining")
    loading.legend(axes[1], outside=True)
    fig.tight_layout()
    for ds in results:
        retrain = loading.run_steps(ds) - removal_step(ds)
        loading.note_if_shortened(fig, ds, removal_step(ds) + RETRAIN_STEPS,
                                  f"{Path(loading.source(ds)).name} retrains for {retrain} steps after the removal, "
                                  f"not {RETRAIN_STEPS} as in docs/experiments.md.")
    loading.save(fig, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
