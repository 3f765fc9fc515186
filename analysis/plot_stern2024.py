"""Plot the Stern et al. 2024 reproductions (lambda and kappa sweeps) from edgesim result files.

Usage::

    edgesim run scenarios/stern2024_lambda.toml -o lambda.nc
    edgesim run scenarios/stern2024_kappa.toml -o kappa.nc
    python analysis/plot_stern2024.py lambda.nc kappa.nc --out stern2024.png

Any result swept over ``lambda`` (``stern2024_lambda.toml``, ``quickstart.toml``)
or ``kappa`` (``stern2024_kappa.toml``) can be given, in any order: each file is
one row of the figure.  A lambda row shows the final normalised error and the
trained free power against lambda (with the log-log slope of the error for
0 < lambda <= 1e-3; theory: 2) and the error curves; a kappa row the trained
free power and final error against kappa and the error curves.  The numbers
behind them are printed.  ``--lambda-file``/``--kappa-file`` name a file of
that kind (the former interface); an ``--out`` that is a folder gets
``stern2024.png`` in it.  Needs matplotlib (``pip install -e .[plot]``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared loading module
import loading  # noqa: E402

from edgesim.analysis import final, geometric_mean, loglog_slope, normalized_error  # noqa: E402

SCRIPT = Path(__file__).name
MADE_BY = {"lambda": "a lambda sweep (scenarios/stern2024_lambda.toml or quickstart.toml)",
           "kappa": "a kappa sweep (scenarios/stern2024_kappa.toml)"}
# Stern et al. 2024 train for 1e5 full-batch steps.  Before that the error at small lambda is still
# set by the unfinished training, not by lambda, so neither the error ~ lambda^2 scaling nor the trained
# power of converged networks can show; below 1e5 steps the figure says so.
PUBLISHED_STEPS = 100_000


def lambda_summary(ds):
    """(lambda values, final normalised error and free power (geometric means over realizations),
    log-log slope of the error over 0 < lambda <= 1e-3 (NaN with fewer than two such values))."""
    err = geometric_mean(final(normalized_error(ds)))
    power = geometric_mean(final(ds.free_power))
    lam = ds["lambda"].values
    small = (lam > 0) & (lam <= 1e-3)
    slope = loglog_slope(lam[small], err.values[small]) if small.sum() >= 2 else float("nan")
    return lam, err.values, power.values, slope


def kappa_summary(ds):
    """(kappa values, final normalised error, trained free power), medians over realizations."""
    err = final(normalized_error(ds)).median("realization")
    power = final(ds.free_power).median("realization")
    return ds["kappa"].values, err.values, power.values


def sweep_kind(ds) -> str:
    """``"lambda"`` or ``"kappa"``: which Stern et al. sweep a result is (one-line error if neither)."""
    loading.require(ds, "error_train", "free_power", script=SCRIPT, made_by=MADE_BY["lambda"])
    dims = loading.sweep_dims(ds)
    for kind in ("lambda", "kappa"):
        if kind in dims:
            return kind
    raise loading.AnalysisError(
        f"{loading.source(ds)}: {SCRIPT} needs the sweep dimension 'lambda' or 'kappa', which a result of "
        f"{MADE_BY['lambda']} or {MADE_BY['kappa']} has; this file has not ({loading.describe(ds)})")


def _curves(ax, ds, dim):
    """Normalised training error against step, one line per value of ``dim`` (medians)."""
    curves = normalized_error(ds).median("realization")
    step = ds.step.values
    pos = step > 0
    labels = list(loading.sweep_points(ds, [dim]))
    for (label, sel), c in zip(labels, loading.colours(len(labels))):
        ax.loglog(step[pos], curves.isel(sel).values[pos], color=c, lw=1.2, label=label)
    ax.set(xlabel=loading.axis_label(ds, "step"),
           ylabel="normalised training error\n(median over realizations)")
    loading.legend(ax, title=loading.dim_label(ds, dim), outside=True)


def _lambda_row(axes, ds):
    lam, err, power, slope = lambda_summary(ds)
    print("lambda        norm. error   free power")
    for row in zip(lam, err, power):
        print("%-12.3g  %-12.3g  %-12.4g" % row)
    print(f"log-log slope of the error for 0 < lambda <= 1e-3: {slope:.2f} (theory: 2)")
    pos = lam > 0
    slope_text = f"slope {slope:.2f} (0 < lambda <= 1e-3; theory 2)" if np.isfinite(slope) else \
        "slope: needs two lambda values in (0, 1e-3]"
    axes[0].loglog(lam[pos], err[pos], "o-", label=slope_text)
    if (~pos).any():
        axes[0].axhline(err[~pos][0], ls="--", c="gray", label="lambda = 0")
    axes[0].set(xlabel=loading.axis_label(ds, "lambda"),
                ylabel="final normalised training error\n(geometric mean over realizations)")
    loading.legend(axes[0])
    axes[1].semilogx(lam[pos], power[pos], "o-", label="lambda > 0")
    if (~pos).any():
        axes[1].axhline(power[~pos][0], ls="--", c="gray", label="lambda = 0")
    loading.log_if_decades(axes[1], power, "y")
    axes[1].set(xlabel=loading.axis_label(ds, "lambda"),
                ylabel=loading.axis_label(ds, "free_power", "trained free power (geometric mean)"))
    loading.legend(axes[1])
    _curves(axes[2], ds, "lambda")


def _kappa_row(axes, ds):
    kappa, err, power = kappa_summary(ds)
    print("kappa         norm. error   free power")
    for row in zip(kappa, err, power):
        print("%-12.3g  %-12.3g  %-12.4g" % row)
    axes[0].loglog(kappa, power, "o-")
    axes[0].set(xlabel=loading.axis_label(ds, "kappa"),
                ylabel=loading.axis_label(ds, "free_power", "trained free power (median)"))
    axes[1].loglog(kappa, err, "o-")
    axes[1].set(xlabel=loading.axis_label(ds, "kappa"), ylabel="final normalised training error (median)")
    _curves(axes[2], ds, "kappa")


@loading.command
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", help="results swept over lambda or kappa")
    parser.add_argument("--lambda-file", help="a result of scenarios/stern2024_lambda.toml")
    parser.add_argument("--kappa-file", help="a result of scenarios/stern2024_kappa.toml")
    parser.add_argument("--out", required=True, help="figure file (PNG); a folder gets stern2024.png")
    args = parser.parse_args(argv)
    given = [(p, None) for p in args.files] + [(p, k) for k, p in (("lambda", args.lambda_file),
                                                                    ("kappa", args.kappa_file)) if p]
    if not given:
        parser.error("give at least one result file (a lambda or kappa sweep)")
    rows = []
    for path, want in given:
        ds = loading.open_result(path)
        kind = sweep_kind(ds)
        if want and kind != want:
            loading.require(ds, script=SCRIPT, made_by=MADE_BY[want], dims=(want,))
        rows.append((kind, ds))
    plt = loading.pyplot()
    fig, axes = plt.subplots(len(rows), 3, figsize=(15.5, 4.3 * len(rows)), squeeze=False)
    for (kind, ds), row in zip(rows, axes):
        one, dropped = loading.first_of_others(ds, keep=(kind,))
        print(f"{loading.source(ds)} ({kind} sweep{', ' + dropped if dropped else ''}):")
        (_lambda_row if kind == "lambda" else _kappa_row)(row, one)
        loading.title(row[0], ds, f"{Path(loading.source(ds)).name}, {ds.sizes['realization']} realizations, "
                      f"{loading.run_steps(ds):g} steps" + (f"; {dropped}" if dropped else ""), width=60,
                      loc="left")
    fig.tight_layout()
    shortest = min((ds for _, ds in rows), key=loading.run_steps)  # one note (each row's title gives its steps)
    loading.note_if_shortened(
        fig, shortest, PUBLISHED_STEPS,
        "Stern et al. 2024 train for 1e5 steps; before that the error at small lambda is set by the "
        "unfinished training, so the error ~ lambda^2 scaling and the trained powers cannot show yet.")
    out = Path(args.out)
    if out.is_dir() or args.out.endswith(("/", "\\")):
        out = out / "stern2024.png"
    loading.save(fig, out)


if __name__ == "__main__":
    sys.exit(main())
