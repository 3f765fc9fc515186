"""Clock jitter and comparator noise: training error over time per noise value, from an edgesim result.

Usage::

    edgesim run scenarios/jitter_noise.toml -o jitter.nc
    python analysis/plot_jitter_noise.py jitter.nc --out jitter.png [--dim noise_std]

Left: training error against time, one line per value of the swept hardware
parameter ``--dim`` (default ``noise_std``, the comparator noise; also e.g.
``jitter_std``, ``drift_std``, ``offset_std``), medians over realizations, log
scale.  Right: the mean error over the second half of the run (the floor the
error wanders around) against that parameter.  Other swept dimensions are
shown at their first value.  Prints the late-time error per value.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared loading module
import loading  # noqa: E402

from edgesim.analysis import geometric_mean  # noqa: E402

SCRIPT = Path(__file__).name
MADE_BY = "an engine scenario sweeping a hardware noise (e.g. scenarios/jitter_noise.toml: sweep.noise_std)"
# The shipped 600-step run is a demonstration (see its comments): at that length the late errors are
# not monotonic in the noise, so the rise of the error floor with the comparator noise cannot show.
# Measured on jitter_noise.toml with 2 realizations, the mean error over the second half (geometric
# mean) for noise_std = 0.003, 0.01, 0.03, 0.1 V was 1.6e-2, 5.8e-3, 1.1e-2, 3.4e-2 V^2 after 600 steps
# and 1.1e-2, 1.5e-2, 1.5e-2, 4.1e-2 V^2 after 2400 steps: the figure notes runs shorter than 2400.
FLOOR_STEPS = 2400


@loading.command
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", help="result of scenarios/jitter_noise.toml (or another hardware sweep)")
    parser.add_argument("--dim", default="noise_std", help="the swept dimension to draw one line per value of")
    parser.add_argument("--out", required=True, help="figure file (PNG)")
    args = parser.parse_args(argv)
    ds = loading.open_result(args.file)
    loading.require(ds, "error_train", script=SCRIPT, made_by=MADE_BY, dims=(args.dim,))
    ds, dropped = loading.first_of_others(ds, keep=(args.dim,))
    t = ds.time.values
    late = ds.error_train.where(ds.time >= t[-1] / 2).mean("step")  # mean over the second half of the run
    floor = geometric_mean(late)
    values = ds[args.dim].values.astype(float)
    plt = loading.pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12.5, 4.6), gridspec_kw=dict(width_ratios=[1.5, 1]))
    points = list(loading.sweep_points(ds, [args.dim]))
    cols = loading.colours(len(points), cmap="plasma")
    curves = loading.log_floor(left, np.array([ds.error_train.isel(sel).median("realization").values
                                               for _, sel in points]))
    print(f"{args.dim}   mean training error over the second half (geometric mean over realizations)")
    for (label, sel), c, curve in zip(points, cols, curves):
        left.plot(t, curve, color=c, lw=1.3, label=label)
        print(f"{label:<10} {float(floor.isel(sel)):.3g}")
    left.set(xlabel=loading.axis_label(ds, "time"),
             ylabel=loading.axis_label(ds, "error_train", "training error (median over realizations)"))
    loading.legend(left, title=loading.dim_label(ds, args.dim))
    pos = values > 0
    right.plot(values[pos], floor.values[pos], "o-", color="k", lw=1.2)
    for v, f, c in zip(values, floor.values, cols):  # each point in its line's colour; 0 as a level
        if v > 0:
            right.plot(v, f, "o", color=c, ms=7, zorder=3)
        else:
            right.axhline(f, color=c, ls="--", lw=0.9, label=f"{args.dim} = {v:g}")
    if pos.sum() >= 2 and values[pos].max() / values[pos].min() > 3:
        right.set_xscale("log")
    loading.log_if_decades(right, floor.values, "y", decades=0.5)
    right.set(xlabel=loading.axis_label(ds, args.dim),
              ylabel="mean training error, second half of the run\n(geometric mean over realizations)")
    loading.legend(right)
    loading.title(fig, ds, f"{ds.sizes['realization']} realization(s), {loading.run_steps(ds):g} steps"
                  + (f"; {dropped}" if dropped else ""))
    fig.tight_layout()
    loading.note_if_shortened(fig, ds, FLOOR_STEPS,
                              "a demonstration, not a measurement of the error floor: at this length the late "
                              "errors need not rise with the noise (see the scenario's comments).")
    loading.save(fig, args.out)


if __name__ == "__main__":
    sys.exit(main())
