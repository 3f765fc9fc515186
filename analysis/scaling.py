"""Scaling study: learning, power and cost against the number of edges (scenarios/chip_scaling.toml).

Usage::

    edgesim sweep scenarios/chip_scaling.toml --out scaling && edgesim collect scaling -o scaling.nc
    python analysis/scaling.py scaling.nc [hardware.nc] --out scaling.png [--tolerance 0.2]
        [--time-sizes 1e5 1e6] [--chips integrated transistor2024 breadboard2022] [--json scaling.json]

For every network size of each file (a sweep over ``network.nx`` or
``network.size``; a second file, e.g. of scenarios/chip_scaling_hardware.toml,
is drawn alongside) it prints and plots against the edge count:

* steps to reach the tolerance (training error relative to its initial value;
  interpolated log-log between records; median over realizations, missing when
  most realizations never reach it) and the final relative error;
* the trained free power (relative to the initial one) and the training energy;
* the simulation wall time of one synchronous learning step (measured here, now,
  on this machine: a network of each size, the automatic solver, the same task
  shape; ``--time-sizes`` adds square lattices of those edge counts) and the
  projected hardware time per step of each chip model (:mod:`edgesim.chip`),
  with the crossover size where hardware outpaces the simulation marked;
* power-law exponents fitted to each of these (printed, in the legend, and in
  ``--json``).

Chip projections map the simulated conductances onto the chip's range (the
initial conductance ``kappa`` onto the geometric middle of ``[k_min, k_max]``):
a linear network's voltages, and so its learning, do not change when every
conductance and the learning rate are scaled by one factor, while powers scale
with it.  Needs matplotlib for the figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared loading module
import loading  # noqa: E402

from edgesim.analysis import loglog_slope  # noqa: E402
from edgesim.chip import CHIP_PRESETS, chip_estimate, chip_preset  # noqa: E402

SCRIPT = Path(__file__).name
MADE_BY = "scenarios/chip_scaling.toml (a sweep over network.nx or network.size)"
SIZE_DIMS = ("network.nx", "network.size")


def size_dim(ds) -> str:
    for dim in SIZE_DIMS:
        if dim in ds.dims:
            return dim
    raise loading.AnalysisError(f"{loading.source(ds)}: {SCRIPT} needs a sweep over network size ("
                                f"{' or '.join(SIZE_DIMS)}), which a result of {MADE_BY} has; this file has not "
                                f"({loading.describe(ds)})")


def steps_to_tolerance(steps, relative_error, tolerance: float) -> float:
    """First step at which ``relative_error`` reaches ``tolerance``, log-log interpolated between records
    (inf: never reached; 0: reached at the start)."""
    steps, err = np.asarray(steps, dtype=float), np.asarray(relative_error, dtype=float)
    below = np.flatnonzero(err <= tolerance)
    if below.size == 0:
        return np.inf
    i = int(below[0])
    if i == 0:
        return 0.0
    s0, s1, e0, e1 = max(steps[i - 1], 1.0), steps[i], err[i - 1], err[i]
    if e1 <= 0 or e0 <= e1:
        return float(s1)
    frac = np.log(e0 / tolerance) / np.log(e0 / e1)
    return float(np.exp(np.log(s0) + frac * (np.log(s1) - np.log(s0))))


def learning_table(ds, tolerance: float) -> dict:
    """Per size (sorted by edges): edges, steps to tolerance, final relative error, free power and energy."""
    loading.require(ds, "error_train", "free_power", "clamped_power", "training_energy", "n_edges", script=SCRIPT,
                    made_by=MADE_BY)
    dim = size_dim(ds)
    others = [d for d in loading.sweep_dims(ds) if d != dim]
    if others:
        ds = ds.isel({d: 0 for d in others})
    rows = {"size": [], "edges": [], "steps_to_tolerance": [], "final_error": [], "free_power_ratio": [],
            "free_power": [], "clamped_power": [], "training_energy": []}
    steps = ds["step"].values
    for i, value in enumerate(ds[dim].values):
        point = ds.isel({dim: i})
        rel = (point.error_train / point.error_train.isel(step=0)).values  # (realization, step)
        reach = np.array([steps_to_tolerance(steps, r, tolerance) for r in rel])
        rows["size"].append(value.item())
        rows["edges"].append(int(point.n_edges.max()))
        rows["steps_to_tolerance"].append(float(np.median(reach)) if np.isfinite(np.median(reach)) else np.nan)
        rows["final_error"].append(float(np.exp(np.log(rel[:, -1]).mean())))
        free = point.free_power.values
        rows["free_power_ratio"].append(float(np.exp(np.log(free[:, -1] / free[:, 0]).mean())))
        rows["free_power"].append(float(free[:, -1].mean()))
        rows["clamped_power"].append(float(point.clamped_power.values[:, -1].mean()))
        rows["training_energy"].append(float(point.training_energy.values[:, -1].mean()))
    order = np.argsort(rows["edges"])
    return {key: [values[j] for j in order] for key, values in rows.items()}


def time_per_step(network, n_train: int, steps: int | None = None) -> float:
    """Wall seconds of one synchronous learning step (free + clamped solve and update) on ``network``:
    edge regression with the study's task shape, the automatic solver, after a first step that pays the
    set-up."""
    from edgesim.config import LearningConfig
    from edgesim.seeding import stream
    from edgesim.tasks import edge_regression
    from edgesim.trainer import SynchronousTraining

    task = edge_regression(network, stream(0, 0, "task"), n_train=n_train, n_test=1)
    if steps is None:
        steps = int(np.clip(2e5 / network.n_edges, 2, 50))
    run = SynchronousTraining([task], LearningConfig(alpha=5.0, eta=1e-3), steps + 1, [np.ones(network.n_edges)],
                              record_at=[0, steps + 1])
    run.advance(1)
    start = time.perf_counter()
    run.advance(steps + 1)
    return (time.perf_counter() - start) / steps


def fit(x, y) -> tuple[float, float] | None:
    """(exponent, prefactor) of ``y = prefactor x^exponent`` by least squares in log-log; None if < 2 points."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = (x > 0) & (y > 0) & np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 2:
        return None
    slope = loglog_slope(x[ok], y[ok])
    prefactor = float(np.exp(np.mean(np.log(y[ok]) - slope * np.log(x[ok]))))
    return slope, prefactor


def crossover(edges, simulation, hardware, hardware_at=None) -> tuple[float, bool | None] | None:
    """Edge count where the simulation's time per step reaches the hardware's: (edges, extrapolated?).

    Interpolated log-log between measured sizes where the order changes.  Otherwise extrapolated: the
    simulation as its fitted power law, the hardware as ``hardware_at(edges)`` (its own model, e.g. clock
    period plus fitted settling) or, without one, its fitted power law; None if they do not cross below
    1e15 edges.  ``(smallest size, None)``: the hardware is faster at every measured size."""
    e, s, h = (np.asarray(v, dtype=float) for v in (edges, simulation, hardware))
    ratio = np.log(s / h)
    for i in range(len(e) - 1):
        if ratio[i] < 0 <= ratio[i + 1]:
            frac = -ratio[i] / (ratio[i + 1] - ratio[i])
            return float(np.exp(np.log(e[i]) + frac * (np.log(e[i + 1]) - np.log(e[i])))), False
    if ratio[0] >= 0:  # hardware is faster already at the smallest size: the crossover lies below it
        return float(e[0]), None
    fs = fit(e, s)
    if fs is None:
        return None
    if hardware_at is None:
        fh = fit(e, h)
        if fh is None:
            return None
        hardware_at = lambda x: fh[1] * x ** fh[0]  # noqa: E731
    gap = lambda x: np.log(fs[1] * x ** fs[0]) - np.log(hardware_at(x))  # noqa: E731
    low, high = float(e[-1]), 1e15
    if gap(high) < 0:
        return None
    for _ in range(200):  # bisection in log(edges): the gap is monotone for power laws of these kinds
        middle = np.sqrt(low * high)
        low, high = (middle, high) if gap(middle) < 0 else (low, middle)
    return float(high), True


def held_nodes(boundary) -> list[int]:
    """Nodes the free state holds with voltage sources: the ground and single-ended inputs.

    A source between two nodes (an edge source) only ties their difference; leaving that constraint out
    can only slow the slowest mode down, so the settling time stays an upper bound."""
    nodes = [boundary.ground]
    for a, b in boundary.inputs:
        if b < 0:
            nodes.append(a)
        elif a < 0:
            nodes.append(b)
    return nodes


def _plans(ds):
    """The run plan (networks and tasks, realization 0 first) of every size, rebuilt from the scenario."""
    from edgesim.runner import RunPlan
    from edgesim.scenario import parse_scenario

    scenario, dim = parse_scenario(loading.scenario(ds)), size_dim(ds)
    return {value: RunPlan.of(scenario.point({dim: value})) for value in ds[dim].values.tolist()}


def chip_table(ds, table: dict, chips, plans: dict) -> dict:
    """Hardware projections of every size on each chip model (lists per chip; realization 0).

    Sizes that never reach the tolerance get NaN times and training energies."""
    scenario = loading.scenario(ds)
    kappa = float(scenario["learning"]["kappa"])
    max_input = float(scenario["task"].get("input_max", 0.0))
    dim = size_dim(ds)
    index = {v: i for i, v in enumerate(ds[dim].values.tolist())}
    out = {}
    for chip in chips:
        scale = np.sqrt(chip.k_min * chip.k_max) / kappa
        rows = []
        for j, size in enumerate(table["size"]):
            plan = plans[size]
            network, task = plan.networks[0], plan.tasks[0]
            k = ds.conductance.isel({dim: index[size], "realization": 0,
                                     "conductance_step": -1}).values[:network.n_edges]
            est = chip_estimate(chip, network, k * scale, table["steps_to_tolerance"][j],
                                table["free_power"][j] * scale, table["clamped_power"][j] * scale,
                                max_input=max_input, held_nodes=held_nodes(task.boundary))
            rows.append(est.as_dict())
        out[chip.name] = rows
    return out


def _print(tables, names, timing, chips, fits, crossings, tolerance):
    for table, name in zip(tables, names):
        print(f"{name}:")
        print(f"{'edges':>9} {'steps to ' + format(tolerance, 'g'):>13} {'final err':>10} {'free P ratio':>12} "
              f"{'energy':>10}")
        for j in range(len(table["edges"])):
            print(f"{table['edges'][j]:9d} {table['steps_to_tolerance'][j]:13.4g} {table['final_error'][j]:10.3g} "
                  f"{table['free_power_ratio'][j]:12.3g} {table['training_energy'][j]:10.4g}")
        print()
    print(f"{'edges':>9} {'simulation s/step':>18}  " + "  ".join(f"{c + ' s/step':>24}" for c in chips))
    for j, e in enumerate(timing["edges"]):
        hw = "  ".join(f"{timing['hardware'][c][j]:24.3g}" for c in chips)
        print(f"{e:9d} {timing['simulation'][j]:18.3g}  {hw}")
    print("\nfitted exponents (quantity ~ edges^x):")
    for name, value in fits.items():
        print(f"  {name:32s} {'n/a' if value is None else format(value[0], '.2f')}")
    for chip, value in crossings.items():
        if value is None:
            print(f"crossover with {chip}: none (hardware is slower at every size)")
        elif value[1] is None:
            print(f"crossover with {chip}: below {value[0]:.3g} edges (hardware is faster at every size measured)")
        else:
            print(f"crossover with {chip}: hardware outpaces the simulation above about {value[0]:.3g} edges"
                  f"{' (extrapolated)' if value[1] else ''}")


def _finite(value):
    """``value`` with NaN and infinite floats as None (JSON has no NaN) and numpy scalars as Python ones."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


@loading.command
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", help="the study's result, optionally a second one (e.g. hardware)")
    parser.add_argument("--out", help="figure file (PNG)")
    parser.add_argument("--tolerance", type=float, default=0.2,
                        help="relative training error that counts as trained (default 0.2)")
    parser.add_argument("--time-sizes", type=float, nargs="*", default=[],
                        help="also time square lattices of about these edge counts (e.g. 1e5 1e6)")
    parser.add_argument("--chips", nargs="+", default=list(CHIP_PRESETS), help="chip models (edgesim.chip)")
    parser.add_argument("--json", help="write the tables, exponents and crossovers to this JSON file")
    args = parser.parse_args(argv)
    if not 0 < args.tolerance < 1:
        raise loading.AnalysisError(f"--tolerance must lie in (0, 1), got {args.tolerance}")
    try:
        chips = [chip_preset(name) for name in args.chips]
    except KeyError as exc:
        raise loading.AnalysisError(exc.args[0]) from None
    datasets = [loading.open_result(path) for path in args.files]
    tables = [learning_table(ds, args.tolerance) for ds in datasets]
    main_ds, table = datasets[0], tables[0]
    n_train = int(loading.scenario(main_ds)["task"].get("n_train", 4))

    from edgesim.network import square_lattice

    plans = _plans(main_ds)
    timing = {"edges": list(table["edges"]), "simulation": []}
    for size in table["size"]:
        timing["simulation"].append(time_per_step(plans[size].networks[0], n_train))
    for target in args.time_sizes:
        side = max(2, round((target / 2) ** 0.5))
        network = square_lattice(side, side)
        timing["edges"].append(network.n_edges)
        timing["simulation"].append(time_per_step(network, n_train, steps=2))
    projections = chip_table(main_ds, table, chips, plans)
    # hardware time per step at the timed sizes: measured sizes from the projections, added ones from
    # the fitted growth of the settling time (it follows tau ~ edges on lattices)
    timing["hardware"], hardware_at = {}, {}
    for chip in chips:
        step_times = [row["step_time_s"] for row in projections[chip.name]]
        settle = fit(table["edges"], [row["settling_time_s"] for row in projections[chip.name]])
        hardware_at[chip.name] = (lambda x, c=chip.clock_period, f=settle:
                                  c + (f[1] * np.asarray(x, dtype=float) ** f[0] if f else 0.0))
        timing["hardware"][chip.name] = step_times + [float(hardware_at[chip.name](e))
                                                      for e in timing["edges"][len(step_times):]]
    fits = {
        "steps to tolerance": fit(table["edges"], table["steps_to_tolerance"]),
        "final relative error": fit(table["edges"], table["final_error"]),
        "trained free power": fit(table["edges"], table["free_power"]),
        "training energy": fit(table["edges"], table["training_energy"]),
        "simulation s/step": fit(timing["edges"], timing["simulation"]),
    }
    for chip in chips:
        fits[f"{chip.name} settling time"] = fit(table["edges"],
                                                 [r["settling_time_s"] for r in projections[chip.name]])
    crossings = {chip.name: crossover(timing["edges"], timing["simulation"], timing["hardware"][chip.name],
                                      hardware_at[chip.name]) for chip in chips}
    _print(tables, args.files, timing, [c.name for c in chips], fits, crossings, args.tolerance)
    if args.json:
        Path(args.json).write_text(json.dumps(_finite({
            "tolerance": args.tolerance, "learning": tables, "timing": timing, "chips": projections,
            "exponents": {k: (None if v is None else v[0]) for k, v in fits.items()},
            "crossover_edges": {k: (None if v is None else {"edges": v[0], "extrapolated": v[1],
                                                            "below_smallest_size": v[1] is None})
                                for k, v in crossings.items()}}), indent=1))
        print(f"wrote {args.json}")
    if args.out:
        figure(datasets, tables, timing, chips, projections, fits, crossings, args)


def figure(datasets, tables, timing, chips, projections, fits, crossings, args):
    plt = loading.pyplot()
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    names = [Path(loading.source(ds)).stem for ds in datasets]
    markers = ["o", "s", "^"]

    def series(ax, key, ylabel, fitted=None):
        for t, name, marker in zip(tables, names, markers):
            ax.loglog(t["edges"], t[key], marker=marker, ls="-", label=name)
        if fitted is not None:
            e = np.array(tables[0]["edges"], dtype=float)
            ax.loglog(e, fitted[1] * e ** fitted[0], "k:", label=f"~ edges^{fitted[0]:.2f}")
        ax.set_xlabel("edges")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)

    series(axes[0, 0], "steps_to_tolerance", f"steps to relative error {args.tolerance:g}",
           fits["steps to tolerance"])
    if not any(np.isfinite(t["steps_to_tolerance"]).any() for t in tables):
        axes[0, 0].text(0.5, 0.5, f"no size reached relative error {args.tolerance:g}\nwithin the run "
                        "(see --tolerance)", transform=axes[0, 0].transAxes, ha="center", va="center")
    series(axes[0, 1], "final_error", "final relative training error", fits["final relative error"])
    series(axes[0, 2], "free_power_ratio", "trained / initial free power")
    series(axes[1, 0], "training_energy", "training energy (simulation units)", fits["training energy"])

    ax = axes[1, 1]
    ax.loglog(timing["edges"], timing["simulation"], "ko-", label="simulation (this machine)")
    for chip, colour in zip(chips, loading.colours(len(chips), "plasma")):
        ax.loglog(timing["edges"], timing["hardware"][chip.name], "--", color=colour, label=f"{chip.name} hardware")
        cross = crossings[chip.name]
        if cross is not None and cross[1] is not None and cross[0] < 1e9:
            ax.axvline(cross[0], color=colour, lw=0.8, alpha=0.7)
            ax.annotate(f"{cross[0]:.2g}{' (extrap.)' if cross[1] else ''}", (cross[0], ax.get_ylim()[0]),
                        rotation=90, fontsize=7, color=colour, va="bottom", ha="right")
    ax.set_xlabel("edges")
    ax.set_ylabel("time per learning step (s)")
    ax.legend(fontsize=7)

    ax = axes[1, 2]
    for chip, colour in zip(chips, loading.colours(len(chips), "plasma")):
        rows = projections[chip.name]
        ax.loglog([r["n_edges"] for r in rows], [r["training_time_s"] for r in rows], "-o", color=colour,
                  label=f"{chip.name}: time to train (s)")
        ax.loglog([r["n_edges"] for r in rows], [r["energy_per_parameter_J"] for r in rows], ":s", color=colour,
                  label=f"{chip.name}: J per parameter per inference")
    ax.set_xlabel("edges")
    ax.set_ylabel("hardware: s to train (solid)\nJ / parameter / inference (dotted)")
    ax.legend(fontsize=6)
    edges = tables[0]["edges"]
    fig.suptitle(f"scaling study: {edges[0]} to {edges[-1]} edges, tolerance {args.tolerance:g} "
                 f"({', '.join(names)})", fontsize=10)
    fig.tight_layout()
    loading.save(fig, args.out)


if __name__ == "__main__":
    sys.exit(main())
