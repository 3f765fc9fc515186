"""Iris classification (Dillavou et al. 2022) from an edgesim result file.

Usage::

    edgesim run scenarios/dillavou2022_iris.toml -o iris.nc
    python analysis/plot_iris.py iris.nc --out iris.png

Left: classification accuracy on the training (solid) and test (dashed) sets
against the learning step, with chance level; right: training and test error
(log scale where it spans decades).  Medians over realizations; a swept
result gets one colour per sweep value.  Prints the final accuracies.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared loading module
import loading  # noqa: E402

SCRIPT = Path(__file__).name
MADE_BY = "a classification scenario (task.kind = 'iris', e.g. scenarios/dillavou2022_iris.toml)"
# The shipped scenario (seed 1) reaches the published test accuracy (>= 90 %) at step 180 and its
# plateau (95 %) at step 270, i.e. after 9 epochs of 30 flowers; with a margin, a run of fewer than
# 300 steps (10 epochs) may stop before the published accuracy, and the figure says so.
PUBLISHED_STEPS = 300


@loading.command
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", help="result of scenarios/dillavou2022_iris.toml")
    parser.add_argument("--out", required=True, help="figure file (PNG)")
    args = parser.parse_args(argv)
    ds = loading.open_result(args.file)
    loading.require(ds, "accuracy_train", "accuracy_test", "error_train", "error_test", script=SCRIPT,
                    made_by=MADE_BY)
    task = loading.scenario(ds).get("task", {})
    n_classes = len(task.get("output_nodes", [])) or 3
    step = ds.step.values
    points = list(loading.sweep_points(ds))
    plt = loading.pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6))
    errors = []
    for (label, sel), c in zip(points, loading.colours(len(points))):
        one = ds.isel(sel).median("realization")
        name = f"{label}: " if label else ""
        left.plot(step, 100 * one.accuracy_train.values, color=c, lw=1.4, label=f"{name}training set")
        left.plot(step, 100 * one.accuracy_test.values, color=c, lw=1.4, ls="--", label=f"{name}test set")
        right.plot(step, one.error_train.values, color=c, lw=1.4, label=f"{name}training error")
        right.plot(step, one.error_test.values, color=c, lw=1.4, ls="--", label=f"{name}test error")
        errors += [one.error_train.values, one.error_test.values]
        print(f"{name}accuracy train {float(one.accuracy_train[0]):.3f} -> {float(one.accuracy_train[-1]):.3f}, "
              f"test {float(one.accuracy_test[0]):.3f} -> {float(one.accuracy_test[-1]):.3f}")
    left.axhline(100 / n_classes, color="gray", lw=0.8, ls=":", label=f"chance (1/{n_classes})")
    left.set(xlabel=loading.axis_label(ds, "step"), ylabel="classification accuracy (%)", ylim=(0, 102))
    loading.legend(left, title=loading.sweep_title(ds), loc="lower right")
    loading.log_if_decades(right, errors, "y")
    right.set(xlabel=loading.axis_label(ds, "step"),
              ylabel=loading.axis_label(ds, "error_train", "mean squared output error"))
    loading.legend(right, title=loading.sweep_title(ds), loc="upper right")
    loading.title(fig, ds, f"{ds.sizes['realization']} realization(s), {loading.run_steps(ds):g} steps, "
                  "medians over realizations")
    fig.tight_layout()
    loading.note_if_shortened(fig, ds, PUBLISHED_STEPS,
                              "the shipped Iris run reaches the published test accuracy (>= 90 %) only after "
                              "6-10 epochs (180-300 steps).")
    loading.save(fig, args.out)


if __name__ == "__main__":
    sys.exit(main())
