"""Leaky gate capacitors: final training error against the leak time, from an edgesim result file.

Usage::

    edgesim run scenarios/leaky_memory.toml -o leaky.nc
    python analysis/plot_leaky_memory.py leaky.nc --out leaky.png

Left: the final training error (geometric mean over realizations, the
markers: each realization) against the gate-capacitor leak time, log axes,
with the leak time also in clock periods on the top axis; ``leak_time = inf``
(no leak) is the dashed level.  Right: the training error over time, one
line per leak time.  Prints the final error per leak time.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared loading module
import loading  # noqa: E402

from edgesim.analysis import final, geometric_mean  # noqa: E402

SCRIPT = Path(__file__).name
MADE_BY = "a leak-time sweep of capacitor memories (scenarios/leaky_memory.toml)"
# Learning fails once the leak time nears ~1000 clock periods (README).  A gate decays by
# exp(-T / leak_time) over a run of duration T, so a run shorter than 1000 clock periods cannot tell a
# leak time of ~1000 periods from no leak at all: the figure then says that it cannot locate the failure.
FAILURE_PERIODS = 1000


def clock_period(ds) -> float:
    """The nominal clock period of the stored scenario (s); ``run.step_duration`` without a [clock]."""
    sc = loading.scenario(ds)
    return float(sc.get("clock", {}).get("period") or sc["run"]["step_duration"])


@loading.command
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", help="result of scenarios/leaky_memory.toml")
    parser.add_argument("--out", required=True, help="figure file (PNG)")
    args = parser.parse_args(argv)
    ds = loading.open_result(args.file)
    loading.require(ds, "error_train", script=SCRIPT, made_by=MADE_BY, dims=("leak_time",))
    ds, dropped = loading.first_of_others(ds, keep=("leak_time",))
    period = clock_period(ds)
    leak = ds.leak_time.values.astype(float)
    end = final(ds.error_train)
    mean = geometric_mean(end).values
    print("leak time (s)  clock periods  final training error (geometric mean)")
    for v, m in zip(leak, mean):
        print(f"{v:<13g}  {v / period:<13g}  {m:.3g}")
    plt = loading.pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12.5, 4.8))
    finite = np.isfinite(leak)
    order = np.argsort(leak[finite])
    left.plot(leak[finite][order], mean[finite][order], "o-", color="k", lw=1.3, label="geometric mean")
    if ds.sizes["realization"] > 1:
        for r in range(ds.sizes["realization"]):
            left.plot(leak[finite], end.isel(realization=r).values[finite], ".", color="0.55", ms=5,
                      label="each realization" if r == 0 else None)
    for m in mean[~finite]:
        left.axhline(m, color="tab:blue", ls="--", lw=1.0, label="no leak (leak_time = inf)")
    left.axvline(FAILURE_PERIODS * period, color="firebrick", ls=":", lw=1.0,
                 label=f"{FAILURE_PERIODS} clock periods")
    left.set_xscale("log")
    loading.log_if_decades(left, np.concatenate([mean, end.values.ravel()]), "y", decades=0.5)
    left.set(xlabel=loading.axis_label(ds, "leak_time"),
             ylabel=loading.axis_label(ds, "error_train", "final training error"))
    top = left.secondary_xaxis("top", functions=(lambda x: x / period, lambda x: x * period))
    top.set_xlabel(f"leak time / clock period ({period:g} s)")
    loading.legend(left, loc="best")
    points = list(loading.sweep_points(ds, ["leak_time"]))
    curves = loading.log_floor(right, np.array([ds.error_train.isel(sel).median("realization").values
                                                for _, sel in points]))
    for (label, sel), c, curve in zip(points, loading.colours(len(points), cmap="cividis"), curves):
        right.plot(ds.time.values, curve, color=c, lw=1.3, label=label)
    right.set(xlabel=loading.axis_label(ds, "time"),
              ylabel=loading.axis_label(ds, "error_train", "training error (median over realizations)"))
    loading.legend(right, title=loading.dim_label(ds, "leak_time"))
    dt = float(loading.scenario(ds)["run"]["step_duration"])
    loading.title(fig, ds, f"{ds.sizes['realization']} realization(s), {loading.run_steps(ds):g} steps of {dt:g} s"
                  + (f"; {dropped}" if dropped else ""))
    fig.tight_layout()
    loading.note_if_shortened(fig, ds, np.ceil(FAILURE_PERIODS * period / dt),
                              f"the run lasts {loading.run_steps(ds) * dt:g} s, shorter than {FAILURE_PERIODS} clock "
                              f"periods ({FAILURE_PERIODS * period:g} s): leak times near that cannot act within "
                              "it, so it cannot locate where leakage starts to destroy learning.")
    loading.save(fig, args.out)


if __name__ == "__main__":
    sys.exit(main())
