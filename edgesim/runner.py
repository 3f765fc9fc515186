"""Run a scenario end to end and return its result :class:`xarray.Dataset`."""

from __future__ import annotations

import itertools

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from .build import build_network, build_task, initial_conductance
from .results import annotate
from .rules import TapLadder
from .scenario import Scenario
from .trainer import History, LearningConfig, record_steps, train_synchronous

__all__ = ["run_scenario", "learning_config"]

_SERIES = ("error_train", "error_test", "accuracy_train", "accuracy_test", "free_power", "clamped_power",
           "training_energy", "training_energy_total")


def learning_config(scenario: Scenario) -> LearningConfig:
    """The trainer's :class:`LearningConfig` for a scenario."""
    ls = scenario.learning
    t = ls.taps
    return LearningConfig(rule=ls.rule, batch=ls.batch, k_min=ls.k_min, k_max=ls.k_max,
                          taps=TapLadder(t.n_taps, t.low, t.high, t.quantity, t.spacing),
                          deadband=ls.deadband, class_margin=ls.class_margin,
                          epoch_steps=ls.epoch_steps or None)


def _systems(scenario: Scenario):
    """Every (sweep index, sweep values, realization) of the run, realization varying fastest."""
    names = list(scenario.sweep)
    grids = [range(len(scenario.sweep[n])) for n in names]
    for idx in itertools.product(*grids):
        values = {n: scenario.sweep[n][i] for n, i in zip(names, idx)}
        for r in range(scenario.run.realizations):
            yield idx, values, r


def run_scenario(scenario: Scenario, progress: bool | None = None) -> xr.Dataset:
    """Run ``scenario`` with the engine it names (``engine.kind``).

    Parameters
    ----------
    scenario : Scenario
    progress : bool or None
        Show a progress bar (None: only on an interactive terminal).

    Returns
    -------
    xarray.Dataset
        See the README's "Result files" section for the variables.
    """
    if scenario.engine.kind != "synchronous":
        return _run_engine(scenario, progress)
    run = scenario.run
    n_real, networks, task_list, rec, systems, sweep_names, sweep_shape, E = _setup(scenario)
    config = learning_config(scenario)

    histories: list[tuple[list, History]] = []
    bar = tqdm(total=run.steps * len(systems), unit="system-step", unit_scale=True,
               disable=(None if progress is None else not progress), desc="edgesim")
    for start in range(0, len(systems), run.max_stack):
        chunk = systems[start:start + run.max_stack]
        params = {name: np.array([_system_parameter(scenario, v, name) for _, v, _ in chunk])
                  for name in ("alpha", "eta", "lambda", "kappa")}
        chunk_tasks = [task_list[r] for _, _, r in chunk]
        k0 = [initial_conductance(scenario, task_list[r].network, params["kappa"][i], r)
              for i, (_, _, r) in enumerate(chunk)]
        hist = train_synchronous(chunk_tasks, config, run.steps, k0, alpha=params["alpha"], eta=params["eta"],
                                 lam=params["lambda"], record_at=rec, conductance_every=run.conductance_every,
                                 step_duration=run.step_duration,
                                 progress=lambda n, size=len(chunk): bar.update(n * size))
        histories.append((chunk, hist))
    bar.close()
    return _dataset(scenario, histories, sweep_names, sweep_shape, n_real, E, networks, task_list, rec,
                    "synchronous")


def _setup(scenario: Scenario):
    """What every engine needs: realizations' networks and tasks, record steps, the systems to run."""
    run = scenario.run
    n_real = run.realizations
    networks = [build_network(scenario.network, r) for r in range(n_real)]
    task_list = [build_task(scenario.task, networks[r], run.seed, r) for r in range(n_real)]
    rec = record_steps(run.steps, run.record_points, run.record_every or None)
    sweep_names = list(scenario.sweep)
    sweep_shape = tuple(len(scenario.sweep[n]) for n in sweep_names)
    E = max(n.n_edges for n in networks)
    return n_real, networks, task_list, rec, list(_systems(scenario)), sweep_names, sweep_shape, E


def _system_parameter(scenario, values, name):
    return values.get(name, getattr(scenario.learning, "lambda_" if name == "lambda" else name))


def _run_engine(scenario: Scenario, progress) -> xr.Dataset:
    """Every system of the scenario through the autonomous-edge engine, one after the other."""
    from .build import build_engine_config, build_hardware
    from .engine.simulate import simulate

    run = scenario.run
    n_real, networks, task_list, rec, systems, sweep_names, sweep_shape, E = _setup(scenario)
    duration = run.steps * run.step_duration
    bar = tqdm(total=duration * len(systems), unit="s", unit_scale=True, desc="edgesim (simulated time)",
               disable=(None if progress is None else not progress))
    histories = []
    kinds = set()
    for idx, values, r in systems:
        hardware = build_hardware(scenario, values)
        engine = build_engine_config(scenario, values)
        task = task_list[r]
        kappa = _system_parameter(scenario, values, "kappa")
        k0 = initial_conductance(scenario, task.network, kappa, r)
        # Each realization has its own hardware draws: its seed mixes the run seed and the realization.
        seed = int(np.random.SeedSequence([run.seed, r]).generate_state(1, np.uint64)[0])
        record, info = simulate(task, hardware, engine, k0, rec * run.step_duration, seed=seed,
                                alpha=_system_parameter(scenario, values, "alpha"),
                                eta=_system_parameter(scenario, values, "eta"),
                                lam=_system_parameter(scenario, values, "lambda"),
                                conductance_every=run.conductance_every, progress=bar.update)
        kinds.add(info["engine"])
        histories.append(([(idx, values, r)], _engine_history(record, info, rec)))
    bar.close()
    return _dataset(scenario, histories, sweep_names, sweep_shape, n_real, E, networks, task_list, rec,
                    "+".join(sorted(kinds)))


def _engine_history(record, info, rec) -> History:
    """An engine record in the trainer's History layout (one system)."""
    one = lambda a: None if a is None else a[None]
    h = History(step=rec, error_train=one(record.error_train), error_test=one(record.error_test),
                free_power=one(record.free_power), clamped_power=one(record.clamped_power),
                training_energy=one(record.training_energy),
                training_energy_total=one(record.training_energy_total),
                conductance_step=rec[record.conductance_index],
                conductance=one(record.conductance), accuracy_train=one(record.accuracy_train),
                accuracy_test=one(record.accuracy_test), output_free=one(record.output_free),
                output_desired=one(record.output_desired))
    h.extra = {
        "alive_edges": (("step",), one(record.alive_edges)),
        "edge_events": (("step",), one(record.events)),
        "update_count": (("conductance_step", "edge"), one(record.updates)),
        "clock_period": (("edge",), one(info["period"])),
        "clock_phase": (("edge",), one(info["phase"])),
        "comparator_offset": (("edge",), one(info["offset"])),
        "edge_leak_time": (("edge",), one(info["leak_time"])),
    }
    return h


def _dataset(scenario, histories, sweep_names, sweep_shape, n_real, E, networks, task_list, rec, engine):
    run = scenario.run
    lead = sweep_shape + (n_real,)
    lead_dims = tuple(sweep_names) + ("realization",)
    first = histories[0][1]
    n_rec, n_crec = len(rec), len(first.conductance_step)
    arrays: dict[str, np.ndarray] = {}
    for name in _SERIES:
        if getattr(first, name) is not None:
            arrays[name] = np.full(lead + (n_rec,), np.nan)
    arrays["conductance"] = np.full(lead + (n_crec, E), np.nan)
    if first.output_free is not None:
        n_out, n_ex = first.output_free.shape[2:]
        arrays["output_free"] = np.full(lead + (n_rec, n_out, n_ex), np.nan)
        arrays["output_desired"] = np.full(lead + (n_rec, n_out, n_ex), np.nan)
    extra_dims = {name: dims for name, (dims, _) in first.extra.items()}
    for name, dims in extra_dims.items():
        sample = first.extra[name][1]
        shape = tuple(E if d == "edge" else sample.shape[1 + i] for i, d in enumerate(dims))
        fill = -1 if sample.dtype.kind in "iu" else np.nan
        arrays[name] = np.full(lead + shape, fill, dtype=sample.dtype if fill == -1 else float)
    for chunk, hist in histories:
        for i, (idx, _, r) in enumerate(chunk):
            at = tuple(idx) + (r,)
            for name in arrays:
                if name in extra_dims:
                    value = hist.extra[name][1][i]
                    region = tuple(slice(0, n) for n in value.shape)
                    arrays[name][at][region] = value
                    continue
                value = getattr(hist, name)
                if name == "conductance":
                    arrays[name][at][:, :value.shape[2]] = value[i]
                else:
                    arrays[name][at] = value[i]

    data_vars = {}
    for name, arr in arrays.items():
        if name in extra_dims:
            dims = lead_dims + tuple(extra_dims[name])
        elif name == "conductance":
            dims = lead_dims + ("conductance_step", "edge")
        elif name.startswith("output_"):
            dims = lead_dims + ("step", "output", "example")
        else:
            dims = lead_dims + ("step",)
        data_vars[name] = (dims, arr)
    if "lambda" not in sweep_names:
        data_vars["lambda"] = (lead_dims + ("step",), np.full(lead + (n_rec,), scenario.learning.lambda_))
    edge_from = np.full((n_real, E), -1)
    edge_to = np.full((n_real, E), -1)
    for r, net in enumerate(networks):
        edge_from[r, :net.n_edges] = net.edges[:, 0]
        edge_to[r, :net.n_edges] = net.edges[:, 1]
    data_vars["n_edges"] = (("realization",), np.array([n.n_edges for n in networks]))
    data_vars["edge_from"] = (("realization", "edge"), edge_from)
    data_vars["edge_to"] = (("realization", "edge"), edge_to)
    coords = {
        "step": ("step", rec),
        "time": ("step", rec * run.step_duration),
        "conductance_step": ("conductance_step", first.conductance_step),
        "conductance_time": ("conductance_step", first.conductance_step * run.step_duration),
        "realization": ("realization", np.arange(n_real)),
        "edge": ("edge", np.arange(E)),
    }
    for name in sweep_names:
        coords[name] = (name, np.array(scenario.sweep[name]))
    ds = xr.Dataset(data_vars, coords=coords)
    ds.attrs["network"] = networks[0].name
    ds.attrs["task"] = task_list[0].name
    ds.attrs["learning_rule"] = scenario.learning.rule
    return annotate(ds, scenario.title, scenario.to_json(), run.seed, engine)
