"""Small analysis helpers over result datasets (used by ``analysis/`` scripts and tests)."""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["normalized_error", "final", "loglog_slope", "geometric_mean", "error_at_updates", "power_gain",
           "single_removal_ratios"]


def normalized_error(ds: xr.Dataset, name: str = "error_train") -> xr.DataArray:
    """Error divided by its value at step 0 (the normalisation of Stern et al. 2024)."""
    err = ds[name]
    return err / err.isel(step=0)


def final(da: xr.DataArray) -> xr.DataArray:
    """Value at the last recorded step."""
    return da.isel(step=-1)


def loglog_slope(x, y) -> float:
    """Least-squares slope of ``log y`` against ``log x``."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = (x > 0) & (y > 0) & np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 2:
        raise ValueError("need at least two positive points for a log-log slope")
    return float(np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)[0])


def geometric_mean(da: xr.DataArray, dim: str = "realization") -> xr.DataArray:
    """Geometric mean along ``dim``: the natural average of errors spread over decades."""
    return np.exp(np.log(da).mean(dim))


def error_at_updates(ds: xr.Dataset, updates_per_edge, name: str = "error_train") -> xr.DataArray:
    """Normalised error when edges have made ``updates_per_edge`` updates on average (expected).

    Needs an ``update_probability`` dimension: the expected number of updates
    per edge after ``s`` clock ticks is ``p s``; the error is interpolated
    log-linearly between record steps.  Returns dims (update_probability,
    realization, updates).
    """
    err = normalized_error(ds, name)
    p = ds["update_probability"].values
    steps = ds["step"].values.astype(float)
    updates = np.atleast_1d(np.asarray(updates_per_edge, dtype=float))
    out = np.full((len(p), ds.sizes["realization"], len(updates)), np.nan)
    for i, prob in enumerate(p):
        want = updates / prob
        for r in range(ds.sizes["realization"]):
            y = np.log(err.isel(update_probability=i, realization=r).values)
            ok = want <= steps[-1]
            out[i, r, ok] = np.exp(np.interp(want[ok], steps, y))
    return xr.DataArray(out, dims=("update_probability", "realization", "updates"),
                        coords={"update_probability": p, "updates": updates},
                        attrs={"long_name": f"normalised {name} at equal expected updates per edge", "units": "1"})


def power_gain(free_power, reference_free_power):
    """Power gain of a run against a reference run, ``G = 1 - P_F / P_F,ref`` (Stern et al. 2024)."""
    return 1.0 - free_power / reference_free_power


def single_removal_ratios(ds: xr.Dataset, realization: int, time: float) -> np.ndarray:
    """Training error after removing each present edge alone, over the error before, at the last
    conductance snapshot before ``time`` (needs the scenario stored in ``ds`` to rebuild the task)."""
    import json

    from .build import build_system
    from .damage import removal_errors, training_error
    from .scenario import parse_scenario

    scenario = parse_scenario(json.loads(ds.attrs["scenario"]))
    task = build_system(scenario, realization)
    network = task.network
    snap = ds.conductance.isel(realization=realization)
    for dim in [d for d in snap.dims if d not in ("conductance_step", "edge")]:
        snap = snap.isel({dim: 0})
    i = int(np.searchsorted(ds.conductance_time.values, time, side="left")) - 1
    k = snap.values[max(i, 0), :network.n_edges]
    present = np.isfinite(k)
    X, Y = task.train_inputs, task.train_targets
    k = np.where(present, k, 1.0)
    base = training_error(network, task.boundary, k, present, X, Y)
    return removal_errors(network, task.boundary, k, present, X, Y, np.flatnonzero(present)) / base


def final_outputs(ds: xr.Dataset, realization: int, inputs: np.ndarray) -> np.ndarray:
    """Free outputs (n_out, n_examples) of ``realization`` at its last recorded conductances, for the first input
    rows ``inputs`` (n, n_examples); the task's remaining input rows (bias nodes) keep their training values.

    The network is rebuilt from the scenario stored in ``ds`` with its edge law (:func:`edgesim.build.build_system`).
    """
    import json

    from .build import build_system
    from .nonlinear import make_twin_solver
    from .physics import free_solution
    from .scenario import parse_scenario

    scenario = parse_scenario(json.loads(ds.attrs["scenario"]))
    task = build_system(scenario, realization)
    k = ds.conductance.isel(realization=realization)
    for dim in [d for d in k.dims if d not in ("conductance_step", "edge")]:
        k = k.isel({dim: 0})
    k = k.values[-1, :task.network.n_edges]
    inputs = np.atleast_2d(np.asarray(inputs, dtype=float))
    fixed = task.train_inputs[inputs.shape[0]:, :1]
    x = np.vstack([inputs, np.repeat(fixed, inputs.shape[1], 1)])
    solver = make_twin_solver([task.network], [task.boundary], backend=scenario.solver.backend,
                              newton_tolerance=scenario.solver.newton_tolerance,
                              max_iterations=scenario.solver.newton_max_iterations)
    _, out, _ = free_solution(solver.response(np.where(np.isfinite(k), k, 1.0)[None], np.isfinite(k)[None]), x[None])
    return out[0]


def solves_xor(outputs) -> bool:
    """Whether the outputs of the four XOR examples (0,0), (0,1), (1,0), (1,1) separate XOR: both true outputs
    above both false ones."""
    o = np.ravel(outputs)
    return bool(min(o[1], o[2]) > max(o[0], o[3]))


def xor_solved(ds: xr.Dataset) -> np.ndarray:
    """For every realization of an XOR result, whether its trained network solves XOR (:func:`solves_xor`)."""
    import json

    task = json.loads(ds.attrs["scenario"])["task"]
    lo, hi = task["input_min"], task["input_max"]
    corners = np.array([[lo, lo, hi, hi], [lo, hi, lo, hi]])
    return np.array([solves_xor(final_outputs(ds, r, corners)[0]) for r in range(ds.sizes["realization"])])
