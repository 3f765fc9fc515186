"""Plot the Stern et al. 2024 reproductions from edgesim result files.

Usage::

    edgesim run scenarios/stern2024_lambda.toml -o lambda.nc
    edgesim run scenarios/stern2024_kappa.toml -o kappa.nc
    python analysis/plot_stern2024.py --lambda-file lambda.nc --kappa-file kappa.nc --out figures/

Writes ``stern2024_lambda.png`` (normalised error and free power against
lambda, with the log-log slope of the error at small lambda) and
``stern2024_kappa.png`` (trained free power against kappa), and prints the
numbers behind them.  Needs matplotlib (``pip install -e .[plot]``).
"""

from __future__ import annotations

import argparse
from pathlib import Path


from edgesim.analysis import final, geometric_mean, loglog_slope, normalized_error
from edgesim.results import open_result


def lambda_summary(ds):
    err = geometric_mean(final(normalized_error(ds)))
    power = geometric_mean(final(ds.free_power))
    lam = ds["lambda"].values
    small = (lam > 0) & (lam <= 1e-3)
    slope = loglog_slope(lam[small], err.values[small]) if small.sum() >= 2 else float("nan")
    return lam, err.values, power.values, slope


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lambda-file", help="result of scenarios/stern2024_lambda.toml")
    parser.add_argument("--kappa-file", help="result of scenarios/stern2024_kappa.toml")
    parser.add_argument("--out", default=".", help="folder for the figures")
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.lambda_file:
        ds = open_result(args.lambda_file)
        lam, err, power, slope = lambda_summary(ds)
        print("lambda        norm. error   free power")
        for row in zip(lam, err, power):
            print("%-12.3g  %-12.3g  %-12.4g" % row)
        print(f"log-log slope of the error for 0 < lambda <= 1e-3: {slope:.2f} (theory: 2)")
        fig, axes = plt.subplots(1, 3, figsize=(13, 4))
        curves = normalized_error(ds).median("realization")
        for i, l in enumerate(lam):
            axes[0].loglog(ds.step.values[1:], curves.isel({"lambda": i}).values[1:], label=f"{l:.0e}")
        axes[0].set(xlabel="step", ylabel="normalised training error (median)")
        axes[0].legend(fontsize=6, title="lambda", title_fontsize=7)
        pos = lam > 0
        axes[1].loglog(lam[pos], err[pos], "o-", label=f"slope {slope:.2f}")
        if (~pos).any():
            axes[1].axhline(err[~pos][0], ls="--", c="gray", label="lambda = 0")
        axes[1].set(xlabel="lambda", ylabel="final normalised error (geometric mean)")
        axes[1].legend()
        axes[2].semilogx(lam[pos], power[pos], "o-")
        if (~pos).any():
            axes[2].axhline(power[~pos][0], ls="--", c="gray", label="lambda = 0")
            axes[2].legend()
        axes[2].set(xlabel="lambda", ylabel="trained free power (geometric mean)")
        fig.tight_layout()
        fig.savefig(out / "stern2024_lambda.png", dpi=120)
        print(f"wrote {out / 'stern2024_lambda.png'}")
    if args.kappa_file:
        ds = open_result(args.kappa_file)
        power = final(ds.free_power).median("realization")
        err = final(normalized_error(ds)).median("realization")
        kappa = ds["kappa"].values
        print("kappa         norm. error   free power")
        for row in zip(kappa, err.values, power.values):
            print("%-12.3g  %-12.3g  %-12.4g" % row)
        fig, axes = plt.subplots(1, 2, figsize=(9, 4))
        axes[0].loglog(kappa, power.values, "o-")
        axes[0].set(xlabel="initial conductance scale kappa", ylabel="trained free power (median)")
        axes[1].loglog(kappa, err.values, "o-")
        axes[1].set(xlabel="kappa", ylabel="final normalised error (median)")
        fig.tight_layout()
        fig.savefig(out / "stern2024_kappa.png", dpi=120)
        print(f"wrote {out / 'stern2024_kappa.png'}")
    if not (args.lambda_file or args.kappa_file):
        parser.error("give --lambda-file and/or --kappa-file")


if __name__ == "__main__":
    main()
