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

import numpy as np

from edgesim.analysis import final, geometric_mean, normalized_error, power_gain
from edgesim.results import open_result


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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("control", help="result with control.kind = 'feedback'")
    parser.add_argument("early_stop", help="the same scenario with control.early_stop = true")
    parser.add_argument("--out", help="figure file (PNG)")
    args = parser.parse_args(argv)
    control, early = open_result(args.control), open_result(args.early_stop)
    for ds, path in ((control, args.control), (early, args.early_stop)):
        if "tolerance" not in ds.dims or "training_energy_to_tolerance" not in ds:
            raise SystemExit(f"{path}: needs a [control] run with a tolerance sweep "
                             "(scenarios/stern2024_lambda_control.toml)")
    print("tolerance  error(ctrl)  error(stop)  P_F(ctrl)   P_F(stop)   gain G   E ratio  E-to-tol ratio")
    for r in summary(control, early):
        print(f"{r['tolerance']:9.0e}  {r['error_control']:11.3g}  {r['error_early']:11.3g}  {r['power_control']:10.4g}"
              f"  {r['power_early']:10.4g}  {r['gain']:7.3f}  {r['energy_ratio']:7.3f}  {r['energy_to_tolerance_ratio']:8.3f}")
    if args.out:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 3, figsize=(14, 4))
        colours = plt.cm.viridis(np.linspace(0, 0.85, control.sizes["tolerance"]))
        t = control.time.values[1:]
        for i, tol in enumerate(control["tolerance"].values):
            c, e = control.isel(tolerance=i), early.isel(tolerance=i)
            label = f"L_tol = {tol:.0e}"
            axes[0].loglog(t, normalized_error(c).median("realization").values[1:], color=colours[i], label=label)
            axes[0].loglog(t, normalized_error(e).median("realization").values[1:], color=colours[i], ls="--")
            axes[0].axhline(tol, color=colours[i], lw=0.6, ls=":")
            axes[1].loglog(t, c["lambda"].median("realization").values[1:], color=colours[i], label=label)
            axes[2].loglog(t, c.free_power.median("realization").values[1:], color=colours[i], label=label)
            axes[2].loglog(t, e.free_power.median("realization").values[1:], color=colours[i], ls="--")
        axes[0].set(xlabel="time (s)", ylabel="normalised training error")
        axes[1].set(xlabel="time (s)", ylabel="lambda (controller)")
        axes[2].set(xlabel="time (s)", ylabel="free power")
        axes[0].legend(fontsize=7, title="solid: controller, dashed: early stop", title_fontsize=7)
        fig.suptitle("Lambda feedback vs early stopping (medians over realizations)", fontsize=10)
        fig.tight_layout()
        fig.savefig(args.out, dpi=120)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
