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

    from .build import build_network, build_task
    from .damage import removal_errors, training_error
    from .scenario import parse_scenario

    scenario = parse_scenario(json.loads(ds.attrs["scenario"]))
    network = build_network(scenario.network, realization)
    task = build_task(scenario.task, network, scenario.run.seed, realization)
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
