"""Learning curves of allostery and regression runs (Dillavou et al. 2022) from edgesim result files.

Usage::

    edgesim run scenarios/dillavou2022_allostery.toml -o allostery.nc
    edgesim run scenarios/dillavou2022_regression.toml -o regression.nc
    python analysis/plot_allostery_regression.py allostery.nc regression.nc --out learning.png

One panel per file: training error (solid) and test error (dashed) against
the learning step, log axes, medians over realizations (the band: the
range of the training error).  An allostery task has one example, so its test set is its training
set and only one curve is drawn.  A swept result gets one colour per sweep
value.  Prints the error at the first and last record and the drop.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared loading module
import loading  # noqa: E402

SCRIPT = Path(__file__).name
MADE_BY = ("a training run, e.g. scenarios/dillavou2022_allostery.toml or "
           "scenarios/dillavou2022_regression.toml")
# Steps the shipped scenarios need for the published drop (Dillavou et al. 2022), measured with their
# settings (seed 1): allostery, training error down by > 1e3 from step 105 on; regression, test error
# down by > 1e2 from step 200 on (online, one example per step).  With a margin of two, a run shorter
# than this stops on the way down, so its drop is not the published one and the figure says so.
PUBLISHED = {"allostery": (200, "the published allostery error drop (> 1e3) needs ~100-200 steps"),
             "node_regression": (400, "the published regression test-error drop (> 1e2) needs ~200-400 "
                                      "online steps")}


def _panel(ax, ds):
    loading.require(ds, "error_train", "error_test", script=SCRIPT, made_by=MADE_BY)
    step = ds.step.values
    pos = step > 0
    points = list(loading.sweep_points(ds))
    same = bool(np.allclose(ds.error_train.values, ds.error_test.values, equal_nan=True))
    kind = loading.scenario(ds).get("task", {}).get("kind", "")
    curves = [(name, ds[name]) for name in (("error_train",) if same else ("error_train", "error_test"))]
    for (label, sel), c in zip(points, loading.colours(len(points))):
        for name, da in curves:
            one = da.isel(sel)
            med = one.median("realization").values
            which = "training = test error (one example)" if same and kind == "allostery" else \
                ("training error" if name == "error_train" else "test error")
            text = f"{label}: {which}" if label else which
            ax.plot(step[pos], med[pos], color=c, lw=1.3, ls="-" if name == "error_train" else "--", label=text)
            if one.sizes["realization"] > 1 and name == "error_train":
                ax.fill_between(step[pos], one.min("realization").values[pos], one.max("realization").values[pos],
                                color=c, alpha=0.15, lw=0)
            print(f"  {text}: {med[0]:.3g} -> {med[-1]:.3g} V^2 (drop x{med[0] / med[-1]:.3g})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set(xlabel=loading.axis_label(ds, "step"),
           ylabel=loading.axis_label(ds, "error_train", "error (median over realizations)"))
    loading.legend(ax, title=loading.sweep_title(ds))
    loading.title(ax, ds, f"{Path(loading.source(ds)).name}: {ds.sizes['realization']} realization(s), "
                  f"{loading.run_steps(ds):g} steps", width=55)
    return kind


@loading.command
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", help="results of allostery or regression scenarios")
    parser.add_argument("--out", required=True, help="figure file (PNG)")
    args = parser.parse_args(argv)
    results = [loading.open_result(path) for path in args.files]
    for ds in results:
        loading.require(ds, "error_train", "error_test", script=SCRIPT, made_by=MADE_BY)
    plt = loading.pyplot()
    n = len(results)
    fig, axes = plt.subplots(1, n, figsize=(6.2 * n, 4.6), squeeze=False)
    short = []
    for ds, ax in zip(results, axes[0]):
        print(loading.source(ds))
        kind = _panel(ax, ds)
        if kind in PUBLISHED:
            short.append((ds, *PUBLISHED[kind]))
    fig.tight_layout()
    for ds, steps, reason in short:
        loading.note_if_shortened(fig, ds, steps, f"{Path(loading.source(ds)).name}: {reason}.")
    loading.save(fig, args.out)


if __name__ == "__main__":
    sys.exit(main())
