"""Lambda feedback against early stopping (Stern et al. 2024, Fig. 4) from two edgesim result files.

Usage::

    edgesim run scenarios/stern2024_lambda_control.toml -o control.nc
    edgesim run scenarios/stern2024_lambda_control.toml -o early_stop.nc \\
        --set control.kind="'constant'" --set control.early_stop=true --set learning.lambda=0.0
    python analysis/plot_lambda_control.py control.nc early_stop.nc --out lambda_control.png

For each tolerance prints the final normalised error of both runs, their
trained free power, the power gain ``G = 1 - P_F / P_F,ref`` of the
controller against early stopping, and the ratio of their training energies
(total, and until the tolerance was first reached); the figure shows error,
lambda and free power over time (medians over realizations).
Needs matplotlib for the figure (``pip install -e .[plot]``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared loading module
import loading  # noqa: E402

from edgesim.analysis import final, geometric_mean, normalized_error, power_gain  # noqa: E402

SCRIPT = Path(__file__).name
MADE_BY = "a [control] run with a tolerance sweep (scenarios/stern2024_lambda_control.toml)"
# docs/experiments.md (Stern et al. 2024, Fig. 4) runs 1e5 steps: the controller needs that long to
# settle at the smaller tolerances (p = 0.02 is slow), so a shorter run cannot show the power gain.
PUBLISHED_STEPS = 100_000


def _geometric_nanmean(values) -> float:
    """Geometric mean over the finite values (NaN: the tolerance was never reached)."""
    finite = values[np.isfinite(values)]
    return float(np.exp(np.log(finite).mean())) if finite.size else float("nan")


def summary(control, early):
    """Per tolerance: errors, powers, gain and energy ratios (geometric means over realizations)."""
    rows = []
    for i, tol in enumerate(control["tolerance"].values):
        c, e = control.isel(tolerance=i), early.isel(tolerance=i)
        p_c, p_e = geometric_mean(final(c.free_power)), geometric_mean(final(e.free_power))
        rows.append(dict(
            tolerance=float(tol),
            error_control=float(geometric_mean(final(normalized_error(c)))),
            error_early=float(geometric_mean(final(normalized_error(e)))),
            power_control=float(p_c), power_early=float(p_e),
            gain=float(power_gain(p_c, p_e)),
            energy_ratio=float(geometric_mean(final(c.training_energy) / final(e.training_energy))),
            energy_to_tolerance_ratio=_geometric_nanmean(
                c.training_energy_to_tolerance.values / e.training_energy_to_tolerance.values)))
    return rows


@loading.command
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("control", help="result with control.kind = 'feedback'")
    parser.add_argument("early_stop", help="the same scenario with control.early_stop = true")
    parser.add_argument("--out", help="figure file (PNG)")
    args = parser.parse_args(argv)
    control, early = loading.open_result(args.control), loading.open_result(args.early_stop)
    for ds in (control, early):
        loading.require(ds, "error_train", "lambda", "free_power", "training_energy", "training_energy_to_tolerance",
                        script=SCRIPT, made_by=MADE_BY, dims=("tolerance",))
    if control.sizes["tolerance"] != early.sizes["tolerance"]:
        raise loading.AnalysisError(f"{args.control} and {args.early_stop} sweep different tolerances "
                                    f"({control.sizes['tolerance']} and {early.sizes['tolerance']} values)")
    control, dropped = loading.first_of_others(control, keep=("tolerance",))
    early, _ = loading.first_of_others(early, keep=("tolerance",))
    print("tolerance  error(ctrl)  error(stop)  P_F(ctrl)   P_F(stop)   gain G   E ratio  E-to-tol ratio")
    for r in summary(control, early):
        print(f"{r['tolerance']:9.0e}  {r['error_control']:11.3g}  {r['error_early']:11.3g}  {r['power_control']:10.4g}"
              f"  {r['power_early']:10.4g}  {r['gain']:7.3f}  {r['energy_ratio']:7.3f}  {r['energy_to_tolerance_ratio']:8.3f}")
    if not args.out:
        return 0
    plt = loading.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    points = list(loading.sweep_points(control, ["tolerance"]))
    t = control.time.values
    pos = t > 0
    for (label, sel), c in zip(points, loading.colours(len(points))):
        ctrl, stop = control.isel(sel), early.isel(sel)
        tol = float(control.tolerance.values[sel["tolerance"]])
        text = f"L_tol = {tol:.0e}"
        axes[0].loglog(t[pos], normalized_error(ctrl).median("realization").values[pos], color=c, label=text)
        axes[0].loglog(t[pos], normalized_error(stop).median("realization").values[pos], color=c, ls="--")
        axes[0].axhline(tol, color=c, lw=0.6, ls=":")
        axes[1].loglog(t[pos], ctrl["lambda"].median("realization").values[pos], color=c, label=text)
        axes[2].loglog(t[pos], ctrl.free_power.median("realization").values[pos], color=c, label=text)
        axes[2].loglog(t[pos], stop.free_power.median("realization").values[pos], color=c, ls="--")
    axes[0].set(xlabel=loading.axis_label(control, "time"), ylabel="normalised training error (median)")
    axes[1].set(xlabel=loading.axis_label(control, "time"),
                ylabel=loading.axis_label(control, "lambda", "lambda set by the controller (median)"))
    axes[2].set(xlabel=loading.axis_label(control, "time"),
                ylabel=loading.axis_label(control, "free_power", "free power (median)"))
    loading.legend(axes[0], title="solid: controller, dashed: early stop; dotted: L_tol")
    loading.title(fig, control, "Lambda feedback vs early stopping (medians over realizations)"
                  + (f"; {dropped}" if dropped else ""))
    fig.tight_layout()
    loading.note_if_shortened(fig, control, PUBLISHED_STEPS,
                              "docs/experiments.md compares the controller with early stopping after 1e5 steps; "
                              "before that the smaller tolerances are not reached yet.")
    loading.save(fig, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
