"""The learned XOR response surface of a transistor network (Dillavou et al., PNAS 2024) from an edgesim result.

Usage::

    edgesim run scenarios/dillavou2024_xor.toml -o xor.nc
    python analysis/plot_xor.py xor.nc --out xor.png [--realization R]

Left: the free output of the trained network (one realization: by default
the first that solves XOR) over a grid
of the two input voltages, with the four XOR examples marked and labelled
with their outputs.  Right: the training error against the learning step for
every realization, the ones that separate XOR (both true outputs above both
false outputs) drawn solid.  Prints the fraction of realizations that solved
XOR.  The network is rebuilt from the scenario stored in the result (its
edge law and per-edge transistor parameters included) at the last recorded
conductances.
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
MADE_BY = "an XOR scenario (task.kind = 'xor', e.g. scenarios/dillavou2024_xor.toml)"


@loading.command
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", help="result of scenarios/dillavou2024_xor.toml")
    parser.add_argument("--out", required=True, help="figure file (PNG)")
    parser.add_argument("--realization", type=int, default=None,
                        help="realization whose surface is drawn (default: the first that solves XOR, else 0)")
    parser.add_argument("--grid", type=int, default=41, help="grid points per input")
    args = parser.parse_args(argv)
    ds = loading.open_result(args.file)
    loading.require(ds, "conductance", "error_train", script=SCRIPT, made_by=MADE_BY)
    from edgesim.analysis import final_outputs, solves_xor
    from edgesim.build import build_system
    from edgesim.scenario import parse_scenario

    scenario = parse_scenario(loading.scenario(ds))
    if scenario.task.kind != "xor":
        raise loading.AnalysisError(f"{loading.source(ds)}: {SCRIPT} needs {MADE_BY}, not task.kind = "
                                    f"'{scenario.task.kind}'")
    n = ds.sizes["realization"]
    if args.realization is not None and not 0 <= args.realization < n:
        raise loading.AnalysisError(f"--realization {args.realization}: the result has realizations 0..{n - 1}")
    lo, hi = scenario.task.input_min, scenario.task.input_max
    corners = np.array([[lo, lo, hi, hi], [lo, hi, lo, hi]])
    solved, corner_outputs = [], []
    for r in range(n):
        out = final_outputs(ds, r, corners)[0]
        corner_outputs.append(out)
        solved.append(solves_xor(out))
    if args.realization is None:
        args.realization = solved.index(True) if any(solved) else 0
    span = hi - lo
    grid = np.linspace(lo - 0.1 * span, hi + 0.1 * span, args.grid)
    g1, g2 = np.meshgrid(grid, grid)
    surface = final_outputs(ds, args.realization, np.vstack([g1.ravel(), g2.ravel()]))[0].reshape(g1.shape)
    task = build_system(scenario, args.realization)
    plt = loading.pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    image = left.pcolormesh(g1, g2, surface, shading="auto", cmap="viridis")
    fig.colorbar(image, ax=left, label="free output (V)")
    out = corner_outputs[args.realization]
    target = task.train_targets[0]
    for j in range(4):
        left.plot(corners[0, j], corners[1, j], "o", ms=9, mfc="white" if target[j] > target.min() else "black",
                  mec="red")
        left.annotate(f"{out[j]:.3g} V\n(target {target[j]:.3g})", (corners[0, j], corners[1, j]),
                      textcoords="offset points", xytext=(8 if corners[0, j] == lo else -75,
                                                          8 if corners[1, j] == lo else -30),
                      color="white", fontsize=8)
    nodes = scenario.task.input_nodes
    left.set(xlabel=f"input 1: node {nodes[0]} (V)", ylabel=f"input 2: node {nodes[1]} (V)",
             title=f"realization {args.realization}: {'solves' if solved[args.realization] else 'does not solve'} "
                   "XOR (white: true, black: false)")
    step = ds.step.values
    errors = ds.error_train
    for dim in [d for d in errors.dims if d not in ("realization", "step")]:
        errors = errors.isel({dim: 0})
    for r in range(n):
        right.plot(step, errors.isel(realization=r).values, lw=1.2 if solved[r] else 0.8,
                   ls="-" if solved[r] else ":", alpha=0.9)
    loading.log_if_decades(right, [errors.values], "y")
    right.set(xlabel=loading.axis_label(ds, "step"),
              ylabel=loading.axis_label(ds, "error_train", "mean squared output error"),
              title=f"solved XOR: {sum(solved)} of {n} realizations (solid)")
    loading.title(fig, ds, f"{n} realization(s), {loading.run_steps(ds):g} steps")
    fig.tight_layout()
    print(f"solved XOR in {sum(solved)} of {n} realizations: {[int(s) for s in solved]}")
    loading.save(fig, args.out)


if __name__ == "__main__":
    sys.exit(main())
