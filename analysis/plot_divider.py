"""Voltage-divider target tracking (Dillavou et al. 2022) from an edgesim result file.

Usage::

    edgesim run scenarios/dillavou2022_divider.toml -o divider.nc
    python analysis/plot_divider.py divider.nc --out divider.png

Top: the free output voltage and the desired one over time; bottom: the
training error over time (log scale).  Every target change (each
``task.steps_per_target`` steps, cycling through ``task.targets``) is marked,
and the error just before each change is printed.  A swept result gets one
line per sweep value (medians over realizations).  Needs matplotlib.
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
MADE_BY = "a divider-tracking scenario (task.kind = 'divider', scenarios/dillavou2022_divider.toml)"


def target_changes(ds):
    """(steps, new target values) of every target change within the run."""
    sc = loading.scenario(ds)
    task = sc["task"]
    if task.get("kind") != "divider":
        raise loading.AnalysisError(
            f"{loading.source(ds)}: {SCRIPT} needs a result of {MADE_BY} (its targets change during the run); "
            f"this file has not ({loading.describe(ds)})")
    every, targets = int(task["steps_per_target"]), list(task["targets"])
    steps = np.arange(every, int(sc["run"]["steps"]) + 1, every)  # the last record may show a new target
    return steps, [targets[(s // every) % len(targets)] for s in steps]


@loading.command
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", help="result of scenarios/dillavou2022_divider.toml")
    parser.add_argument("--out", required=True, help="figure file (PNG)")
    args = parser.parse_args(argv)
    ds = loading.open_result(args.file)
    loading.require(ds, "error_train", "output_free", "output_desired", script=SCRIPT, made_by=MADE_BY)
    changes, new_targets = target_changes(ds)
    sc = loading.scenario(ds)
    dt = float(sc["run"]["step_duration"])
    task = sc["task"]
    t = ds.time.values
    points = list(loading.sweep_points(ds))
    plt = loading.pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6.2), sharex=True, gridspec_kw=dict(height_ratios=[1, 1.4]))
    cols = loading.colours(len(points))
    errors = [ds.isel(sel).error_train.median("realization") for _, sel in points]
    errors = loading.log_floor(bottom, np.array(errors))
    for (label, sel), c, err_plot in zip(points, cols, errors):
        one = ds.isel(sel)
        out_free = one.output_free.isel(output=0, example=0).median("realization")
        out_want = one.output_desired.isel(output=0, example=0).median("realization")
        err = one.error_train.median("realization")
        name = f"{label}: " if label else ""
        top.plot(t, out_free, color=c, lw=1.3, label=f"{name}free output")
        top.step(t, out_want, where="post", color=c, lw=1.0, ls="--", label=f"{name}desired")
        bottom.plot(t, err_plot, color=c, lw=1.2, label=f"{name}training error" if label else "training error")
        ends = [int(np.searchsorted(ds.step.values, s, side="left")) - 1 for s in changes]
        print(f"{label or 'error'} just before each target change (V^2): "
              + ", ".join(f"{float(err.isel(step=i)):.2g}" for i in ends if i >= 0))
    for s, v in zip(changes, new_targets):
        for ax in (top, bottom):
            ax.axvline(s * dt, color="gray", lw=0.8, ls=":")
        top.annotate(f"{v:g} V", (s * dt, 1.0), xycoords=("data", "axes fraction"), xytext=(2, -2),
                     textcoords="offset points", va="top", fontsize=7, color="dimgray")
    top.set(ylabel=loading.axis_label(ds, "output_free", "output voltage"),
            ylim=(0, float(task.get("input_voltage", np.nanmax(ds.output_free.values)))))
    bottom.set(xlabel=loading.axis_label(ds, "time"), ylabel=loading.axis_label(ds, "error_train", "training error"))
    loading.legend(top, title=loading.sweep_title(ds), loc="lower right")
    loading.legend(bottom, title=loading.sweep_title(ds), loc="upper right")
    loading.title(top, ds, f"target changes (dotted) every {int(task['steps_per_target'])} steps = "
                  f"{int(task['steps_per_target']) * dt:g} s")
    fig.tight_layout()
    # The published behaviour is tracking every target of the list in turn, steps_per_target steps
    # each; a run shorter than the whole list shows only the first targets (and none change below one
    # period), so the figure says how many it shows.
    n = len(task["targets"])
    shown = 1 + int((changes < loading.run_steps(ds)).sum())
    loading.note_if_shortened(fig, ds, n * int(task["steps_per_target"]),
                              f"shows {shown} of the {n} targets of the scenario.")
    loading.save(fig, args.out)


if __name__ == "__main__":
    sys.exit(main())
