"""Desynchronous learning: error at equal expected numbers of updates per edge (table and figure).

Usage::

    edgesim run scenarios/desync.toml -o desync.nc
    python analysis/desync_table.py desync.nc [--updates 25 50 100 200] [--out desync.png]

Prints, for each update probability p, the normalised training error after
the edges have made U updates on average (p times the clock ticks), so that
desynchronous edges are compared at equal learning effort (Wycoff et al. 2022).
With ``--out`` (``--plot`` is the former name) also draws the normalised error
against the expected updates per edge, one line per p (log axes; the table's
U marked).  Works for ``desync.toml`` and ``desync_taps.toml``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared loading module
import loading  # noqa: E402

from edgesim.analysis import error_at_updates, normalized_error  # noqa: E402

SCRIPT = Path(__file__).name
MADE_BY = "a desynchronous-learning sweep (scenarios/desync.toml or desync_taps.toml)"


@loading.command
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", help="result swept over update_probability")
    parser.add_argument("--updates", type=float, nargs="+", default=[25, 50, 100, 200],
                        help="expected updates per edge of the table's columns")
    parser.add_argument("--out", "--plot", dest="out",
                        help="figure file (PNG) of the error against expected updates per edge")
    args = parser.parse_args(argv)
    ds = loading.open_result(args.file)
    loading.require(ds, "error_train", script=SCRIPT, made_by=MADE_BY, dims=("update_probability",))
    ds, dropped = loading.first_of_others(ds, keep=("update_probability",))
    table = error_at_updates(ds, args.updates).median("realization")
    print("normalised training error (median over realizations) at equal expected updates per edge"
          + (f"; {dropped}" if dropped else ""))
    print("p       " + "".join(f"U={u:<10g}" for u in args.updates))
    for i, p in enumerate(table.update_probability.values):
        print(f"{p:<8g}" + "".join(f"{v:<12.3g}" for v in table.values[i]))
    if not args.out:
        return 0
    plt = loading.pyplot()
    err = normalized_error(ds).median("realization")
    step = ds.step.values.astype(float)
    pos = step > 0
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    points = list(loading.sweep_points(ds, ["update_probability"]))
    for (label, sel), c in zip(points, loading.colours(len(points))):
        p = float(ds.update_probability.values[sel["update_probability"]])
        ax.loglog(p * step[pos], err.isel(sel).values[pos], color=c, lw=1.4, label=f"p = {label}")
    for u in args.updates:
        ax.axvline(u, color="0.7", lw=0.7, ls=":")
    ax.set(xlabel="expected updates per edge (p x clock ticks)",
           ylabel="normalised training error\n(median over realizations)")
    loading.legend(ax, title=loading.dim_label(ds, "update_probability"))
    loading.title(ax, ds, f"{ds.sizes['realization']} realization(s), {loading.run_steps(ds):g} ticks; dotted: "
                  "the table's U" + (f"; {dropped}" if dropped else ""), width=70)
    fig.tight_layout()
    # The comparison is at equal expected updates U = p x ticks: the slowest edges (smallest p) reach
    # the table's largest U only after U / p_min ticks (the shipped runs: 200 / 0.1 = 2000).  A shorter
    # run cannot compare the update probabilities there (the table shows nan), and the figure says so.
    p_min = float(ds.update_probability.values.min())
    loading.note_if_shortened(fig, ds, max(args.updates) / p_min,
                              f"the slowest edges (p = {p_min:g}) make only {p_min * loading.run_steps(ds):g} "
                              f"expected updates, fewer than U = {max(args.updates):g}.")
    loading.save(fig, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
