"""Result datasets: names, units and CF attributes, and safe netCDF writing.

The variable names are a contract shared by every engine, the analysis
scripts and users (see the README's "Result files" section).
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import xarray as xr

from . import __version__
from .config import DAMAGE_MODES
from .history import HISTORY_DIMS, History

__all__ = ["VARIABLES", "DATASET_NAMES", "annotate", "build_dataset", "write_netcdf", "open_result", "check_output_path",
           "estimate_result_bytes", "package_versions", "add_history", "edgesim_result", "combine_parts",
           "storage_encoding"]

#: History fields stored under another name (``lambda`` is a Python keyword).
DATASET_NAMES = {"lambda_": "lambda"}

#: name -> (units, long_name)
VARIABLES = {
    "error_train": ("V2", "mean squared error of the free outputs on the training set"),
    "error_test": ("V2", "mean squared error of the free outputs on the test set"),
    "accuracy_train": ("1", "classification accuracy on the training set"),
    "accuracy_test": ("1", "classification accuracy on the test set"),
    "free_power": ("W", "power dissipated by the free network, mean over training examples"),
    "clamped_power": ("W", "power dissipated by the clamped network, mean over training examples"),
    "training_energy": ("J", "integral of the free power over training time"),
    "training_energy_total": ("J", "integral of the free plus clamped power over training time"),
    "lambda": ("1", "power-efficiency amplitude lambda"),
    "kappa": ("S", "initial conductance scale"),
    "alpha": ("S V-2", "learning rate"),
    "eta": ("1", "nudge amplitude"),
    "conductance": ("S", "edge conductance"),
    "output_free": ("V", "free value of each output (node voltage or edge drop)"),
    "output_desired": ("V", "desired value of each output"),
    "n_edges": ("1", "number of edges of the realization's network"),
    "time": ("s", "simulated time"),
    "conductance_time": ("s", "simulated time of the conductance snapshots"),
    "step": ("1", "learning step"),
    "conductance_step": ("1", "learning step of the conductance snapshots"),
    "realization": ("1", "realization index (network and task draw)"),
    "edge": ("1", "edge index"),
    "alive_edges": ("1", "number of edges present in the circuit"),
    "edge_events": ("1", "edge clock ticks processed so far"),
    "update_count": ("1", "updates made by each edge so far"),
    "clock_period": ("s", "clock period of each edge (with frequency mismatch)"),
    "clock_phase": ("s", "clock phase of each edge"),
    "comparator_offset": ("V", "fixed comparator offset of each edge"),
    "edge_leak_time": ("s", "gate-capacitor leak time constant of each edge"),
    "leak_time": ("s", "gate-capacitor leak time constant"),
    "update_probability": ("1", "probability that an edge acts on a clock tick"),
    "jitter_std": ("s", "standard deviation of the clock jitter"),
    "drift_std": ("1", "relative standard deviation of the clock frequency mismatch"),
    "noise_std": ("V", "standard deviation of the comparator noise"),
    "offset_std": ("V", "standard deviation of the comparator offsets"),
    "twin_mismatch_std": ("1", "relative standard deviation of the free/clamped twin mismatch"),
    "settle_time": ("s", "network settling time"),
    "edge_from": ("1", "first node of each edge (-1: no such edge in this realization)"),
    "edge_to": ("1", "second node of each edge; drop = V[edge_from] - V[edge_to]"),
    "tolerance_time": ("s", "time at which the error estimate first reached the control tolerance (NaN: never)"),
    "training_energy_to_tolerance": ("J", "training energy spent until the error first reached the tolerance"),
    "phase": ("1", "protocol phase of each record step (index into phase_name)"),
    "phase_end_step": ("1", "last step of each phase"),
    "phase_error_start": ("V2", "training error at the first record of each phase"),
    "phase_error_end": ("V2", "training error at the end of each phase"),
    "damage_time": ("s", "time of the failure"),
    "damage_edge": ("1", "edge that failed (-1: no event in this row)"),
    "damage_mode": ("1", "failure mode (flag_meanings)"),
    "damage_error_before": ("V2", "training error just before the failure"),
    "damage_error_after": ("V2", "training error just after the failure"),
    "damage_recovery_time": ("s", "time until the recorded training error is back below damage.recovery_multiple "
                                  "times its pre-damage value (NaN: never)"),
}


def build_dataset(scenario, networks, tasks, histories: list[tuple[list, History]], engine: str) -> xr.Dataset:
    """The result dataset of a run.

    Parameters
    ----------
    scenario : edgesim.scenario.Scenario
    networks, tasks : list
        The network and task of every realization.
    histories : list of (systems, History)
        Each history holds the systems listed beside it, in order; a system
        is ``(sweep index, sweep values, realization)``.
    engine : str
        Name of the engine that ran (stored in the attributes).
    """
    sweep_names = list(scenario.stacked_sweep)  # scenario-wide keys: see combine_parts
    lead = tuple(len(scenario.sweep[n]) for n in sweep_names) + (len(networks),)
    lead_dims = tuple(sweep_names) + ("realization",)
    E = max(n.n_edges for n in networks)
    first = histories[0][1]
    arrays: dict[str, np.ndarray] = {}
    for name, value in first.recorded().items():
        # padded to the widest system (edges of smaller networks, damage events of less damaged systems)
        shape = lead + tuple(E if d == "edge" else max(h.recorded()[name].shape[1 + i] for _, h in histories)
                             for i, d in enumerate(HISTORY_DIMS[name]))
        integer = value.dtype.kind in "iu"
        arrays[name] = np.full(shape, -1 if integer else np.nan, dtype=value.dtype if integer else float)
    for systems, hist in histories:
        recorded = hist.recorded()
        for i, (idx, _, r) in enumerate(systems):
            at = tuple(idx) + (r,)
            for name, arr in arrays.items():
                value = recorded[name][i]
                arr[at + tuple(slice(0, n) for n in np.shape(value))] = value  # narrower networks leave padding
    data_vars = {DATASET_NAMES.get(name, name): (lead_dims + HISTORY_DIMS[name], arr) for name, arr in arrays.items()}
    n_rec = len(first.step)
    if "lambda" not in sweep_names and "lambda" not in data_vars:
        data_vars["lambda"] = (lead_dims + ("step",), np.full(lead + (n_rec,), scenario.learning.lambda_))
    edge_from = np.full((len(networks), E), -1)
    edge_to = np.full((len(networks), E), -1)
    for r, net in enumerate(networks):
        edge_from[r, :net.n_edges] = net.edges[:, 0]
        edge_to[r, :net.n_edges] = net.edges[:, 1]
    data_vars["n_edges"] = (("realization",), np.array([n.n_edges for n in networks]))
    data_vars["edge_from"] = (("realization", "edge"), edge_from)
    data_vars["edge_to"] = (("realization", "edge"), edge_to)
    step_duration = scenario.run.step_duration
    coords = {
        "step": ("step", first.step),
        "time": ("step", first.step * step_duration),
        "conductance_step": ("conductance_step", first.conductance_step),
        "conductance_time": ("conductance_step", first.conductance_step * step_duration),
        "realization": ("realization", np.arange(len(networks))),
        "edge": ("edge", np.arange(E)),
    }
    for name in sweep_names:
        coords[name] = (name, np.array(scenario.sweep[name]))
    if scenario.phases:
        ends = np.cumsum([p.steps for p in scenario.phases])
        coords["phase"] = ("step", np.searchsorted(ends, first.step, side="left"))
        coords["phase_name"] = ("phase_index", np.array(scenario.phase_names))
        coords["phase_end_step"] = ("phase_index", ends)
        # per-phase summary: the training error at the first record of each phase and at its end
        at_start = [int(np.flatnonzero(coords["phase"][1] == i)[0]) for i in range(len(ends))]
        at_end = [int(np.searchsorted(first.step, e)) for e in ends]
        err = data_vars["error_train"][1]
        data_vars["phase_error_start"] = (lead_dims + ("phase_index",), err[..., at_start])
        data_vars["phase_error_end"] = (lead_dims + ("phase_index",), err[..., at_end])
    ds = xr.Dataset(data_vars, coords=coords)
    run = scenario.run
    if run.conductance_edges:
        if max(run.conductance_edges) >= E:
            raise ValueError(f"run.conductance_edges: edge {max(run.conductance_edges)} does not exist (the networks "
                             f"have edges 0..{E - 1})")
        ds = ds.isel(edge=list(run.conductance_edges))
    storage_encoding(ds, run)
    ds.attrs["network"] = networks[0].name
    ds.attrs["task"] = tasks[0].name
    ds.attrs["learning_rule"] = scenario.learning.rule
    ds.attrs["edge_law"] = scenario.edge.law
    if scenario.edge.law == "transistor" and "conductance" in ds:
        # what the trainer and engines carry for a transistor edge (docs/nonlinear.md)
        ds["conductance"].attrs["comment"] = ("transistor edges: k = S (V_G - V_T), the ohmic conductance at 0 V; "
                                              "the gate voltage is V_T + k / S")
    if "damage_mode" in ds:
        ds["damage_mode"].attrs.update(flag_values=np.arange(len(DAMAGE_MODES)), flag_meanings=" ".join(DAMAGE_MODES))
    return annotate(ds, scenario.title, scenario.to_json(), scenario.run.seed, engine)


def storage_encoding(ds: xr.Dataset, run) -> xr.Dataset:
    """Set the netCDF encoding the scenario's ``[run]`` asks for (float32 conductances, compression)."""
    if run.conductance_dtype == "float32" and "conductance" in ds:
        ds["conductance"].encoding["dtype"] = "float32"
    if run.compress:
        for name in ds.data_vars:
            ds[name].encoding.update(zlib=True, complevel=4)
    return ds


#: Variables that depend on the network only: a sweep adds a dimension to them only for ``network.*`` keys.
_PER_NETWORK = ("n_edges", "edge_from", "edge_to")


def combine_parts(parts: list[tuple[dict, xr.Dataset]], scenario) -> xr.Dataset:
    """One dataset from the results of the points of a sweep.

    Parameters
    ----------
    parts : list of (dict, Dataset)
        Each result with the sweep values it was run at (key -> value); every
        key of ``scenario.sweep`` a part does not fix must be a dimension of it.
    scenario : edgesim.scenario.Scenario
        The whole swept scenario: it orders the dimensions (one per swept key,
        in the file's order, then ``realization``) and is stored in the attributes.

    Returns
    -------
    xarray.Dataset
        Networks of different sizes are padded (NaN; -1 for edge nodes), as in one run.
    """
    keys = [k for k in scenario.sweep if k in parts[0][0]]
    first = dict(parts[0][1].attrs)
    first.pop("sweep_part", None)
    first.pop("part_seconds", None)  # one part's compute time, not the combined result's
    for name in ("network", "task"):  # a swept network or task: name every one
        names = list(dict.fromkeys(str(ds.attrs.get(name, "")) for _, ds in parts))
        first[name] = "; ".join(names) if len(names) <= 4 else f"{names[0]}; ... ({len(names)} kinds)"
    if not keys:  # nothing swept across parts
        combined = parts[0][1].copy()
        combined.attrs = first
        return annotate(combined, scenario.title, scenario.to_json(), scenario.run.seed, first.get("engine", ""))
    for values, _ in parts:
        if sorted(values) != sorted(keys):
            raise ValueError(f"sweep parts fix different keys: {sorted(values)} and {sorted(keys)}")
    grid = {}
    for values, ds in parts:
        if "lambda" in values and "lambda" in ds.data_vars:
            ds = ds.drop_vars("lambda")  # a constant series in the part, the coordinate in the sweep
        ds = ds.copy()
        for key in reversed(keys):
            for name in list(ds.data_vars):
                if name in _PER_NETWORK and not key.startswith("network."):
                    continue
                ds[name] = ds[name].expand_dims({key: [values[key]]})
        grid[tuple(values[k] for k in keys)] = ds
    nested = _nest(grid, [list(scenario.sweep[k]) for k in keys])
    fill = {name: -1 for name, v in parts[0][1].data_vars.items() if v.dtype.kind in "iu"}
    combined = xr.combine_nested(nested, concat_dim=keys, data_vars="minimal", coords="minimal", compat="override",
                                 join="outer", fill_value=fill or xr.core.dtypes.NA, combine_attrs="override")
    order = [k for k in scenario.sweep if k in combined.dims] + ["realization"]
    combined = combined.transpose(*order, ...)
    # the parts' steps may differ (a swept run.steps): times follow the combined steps, not the first part's
    dt = scenario.run.step_duration
    combined = combined.assign_coords(time=("step", combined.step.values * dt),
                                      conductance_time=("conductance_step", combined.conductance_step.values * dt))
    for name, values in scenario.sweep.items():
        if name in combined.coords:
            combined[name].attrs.setdefault("long_name", f"swept scenario value {name}")
    storage_encoding(combined, scenario.run)
    combined.attrs = first
    return annotate(combined, scenario.title, scenario.to_json(), scenario.run.seed, first.get("engine", ""))


def _nest(grid: dict, axes: list[list]):
    """The parts as nested lists following the sweep's axes (for :func:`xarray.combine_nested`)."""
    def level(prefix, depth):
        if depth == len(axes):
            try:
                return grid[prefix]
            except KeyError:
                raise ValueError(f"sweep point {prefix} has no result") from None
        return [level(prefix + (v,), depth + 1) for v in axes[depth]]
    return level((), 0)


def annotate(ds: xr.Dataset, title: str, scenario_json: str, seed: int, engine: str) -> xr.Dataset:
    """Attach units, long names and CF global attributes."""
    for name, (units, long_name) in VARIABLES.items():
        if name in ds.variables:
            ds[name].attrs.update(units=units, long_name=long_name)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    ds.attrs.update(
        Conventions="CF-1.8",
        title=title or "edgesim run",
        source=f"edgesim {__version__}",
        history=f"{now}: created by edgesim {__version__} ({engine} engine)",
        edgesim_version=__version__,
        engine=engine,
        seed=int(seed),
        scenario=scenario_json,
        units_note=("Units are SI (V, S, W, J, s) when conductances are given in siemens; scenarios in "
                    "natural units (e.g. Stern et al. 2024, k0 = 1) use the same numbers dimensionless."),
        package_versions=json.dumps(package_versions(), sort_keys=True),
    )
    return ds


def package_versions() -> dict[str, str]:
    """Versions of edgesim and of the packages its numbers depend on."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"edgesim": __version__}
    for name in ("numpy", "scipy", "simpy", "xarray", "netCDF4", "networkx"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover - a dependency is always installed
            found[name] = "unknown"
    return found


def add_history(ds: xr.Dataset, line: str) -> xr.Dataset:
    """Append a dated line (e.g. the command that made the file) to the ``history`` attribute."""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    ds.attrs["history"] = f"{ds.attrs.get('history', '')}\n{now}: {line}".strip()
    return ds


def edgesim_result(ds: xr.Dataset, path) -> xr.Dataset:
    """``ds`` if edgesim wrote it, else a one-line ``ValueError`` naming the file."""
    if "edgesim_version" not in ds.attrs or "scenario" not in ds.attrs:
        raise ValueError(f"{path} is a netCDF file, but not an edgesim result (no edgesim_version/scenario "
                         "attributes)")
    try:
        json.loads(ds.attrs["scenario"])
    except (TypeError, ValueError):
        raise ValueError(f"{path}: its scenario attribute is not valid JSON (the file was edited or damaged)") \
            from None
    return ds


def check_output_path(path: str | Path, overwrite: bool = False) -> Path:
    """Check, before any work, that a result can be written to ``path``; errors name the user's path.

    The folder must exist or be creatable and be writable; ``path`` must not be
    a folder; an existing file is refused unless ``overwrite``.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"output {path} is a folder; give a file name such as {path / 'result.nc'}")
    if path.exists() and not overwrite:
        raise ValueError(f"output {path} exists; pass --overwrite to replace it")
    folder = path.parent
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"output {path}: {existing} is a file, so the folder {folder} cannot be made")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"output {path}: the folder {existing} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"output {path} exists and is not writable")
    return path


def estimate_result_bytes(n_systems: int, n_records: int, n_conductance_records: int, n_edges: int,
                          n_outputs: int, n_examples: int, engine: bool) -> int:
    """Memory the recorded trajectories of a run take (bytes), counted twice: the records and the dataset."""
    per_system = n_records * 16 + n_conductance_records * n_edges * (2 if engine else 1)
    if n_examples <= 4:
        per_system += 2 * n_records * n_outputs * n_examples
    return 2 * 8 * n_systems * per_system


def write_netcdf(ds: xr.Dataset, path: str | Path) -> Path:
    """Write ``ds`` to ``path`` atomically: a failed write leaves no partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".nc.part", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; results are ordinary files
    try:
        ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def open_result(path: str | Path) -> xr.Dataset:
    """Open a result file (loaded into memory, file closed); a file that is not netCDF is a one-line error."""
    if Path(path).is_dir():
        raise ValueError(f"{path} is a folder, not a result file (a sweep folder is combined into one file with "
                         "edgesim collect)")
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            return ds.load()
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} cannot be read as a netCDF result file ({exc.__class__.__name__})") from None
