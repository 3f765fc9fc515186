"""Run a scenario end to end: build its systems, run them on the engine it names, return the result dataset."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from .build import build_system, build_task, initial_conductance, read_edge_list
from .history import HISTORY_DIMS, History, record_steps
from .network import Network
from .results import build_dataset, combine_parts
from .scenario import Scenario, ScenarioError
from .seeding import realization_seed
from .tasks import Task
from .trainer import train_synchronous

__all__ = ["run_scenario", "RunPlan", "sweep_points", "initial_conductances"]


def sweep_points(sweep: dict) -> list[dict]:
    """Every point of the Cartesian product of ``sweep`` (key -> values), the last key varying fastest."""
    names = list(sweep)
    return [dict(zip(names, values)) for values in itertools.product(*(sweep[n] for n in names))]


@dataclass(frozen=True)
class RunPlan:
    """What every engine needs to run a scenario.

    Attributes
    ----------
    networks, tasks : list
        The network and task of every realization.
    record_steps : ndarray of int
        Steps at which the run records.
    systems : list of (tuple, dict, int)
        Every system of the run: (sweep index, sweep values, realization),
        realization varying fastest.
    given_conductance : ndarray or None
        Initial conductances given by an ``edge_list`` file's third column.
    node_labels : list or None
        An ``edge_list`` file's node labels (``node_labels[i]`` is node ``i``).
    """

    networks: list[Network]
    tasks: list[Task]
    record_steps: np.ndarray
    systems: list[tuple[tuple, dict, int]]
    given_conductance: np.ndarray | None = None
    node_labels: list | None = None

    @classmethod
    def of(cls, scenario: Scenario) -> "RunPlan":
        run = scenario.run
        tasks = [build_system(scenario, r) for r in range(run.realizations)]
        networks = [t.network for t in tasks]
        for net in networks:
            for damage in [scenario.damage] + [p.damage for p in scenario.phases]:
                damage.check_edges(net.n_edges)
        largest = max(net.n_edges for net in networks)
        if run.conductance_edges and max(run.conductance_edges) >= largest:
            raise ScenarioError(f"run.conductance_edges: edge {max(run.conductance_edges)} does not exist (the "
                                f"networks have edges 0..{largest - 1})")
        names = list(scenario.stacked_sweep)  # scenario-wide keys: one run each (run_scenario)
        systems = []
        for idx in itertools.product(*(range(len(scenario.sweep[n])) for n in names)):
            values = {n: scenario.sweep[n][i] for n, i in zip(names, idx)}
            systems.extend((idx, values, r) for r in range(run.realizations))
        given, labels = None, None
        if scenario.network.kind == "edge_list":
            _, labels, given = read_edge_list(scenario.network)
        return cls(networks, tasks, record_steps(run.steps, run.record_points, run.record_every or None), systems,
                   given, labels)


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
    if scenario.dotted_sweep:  # scenario-wide keys (network.size ...): one run per point, combined
        points = sweep_points(scenario.dotted_sweep)
        parts = [(values, run_scenario(scenario.point(values), progress)) for values in points]
        return combine_parts(parts, scenario)
    plan = RunPlan.of(scenario)
    disable = None if progress is None else not progress
    if scenario.phases:
        histories, engine = _run_phases(scenario, plan, disable)
    else:
        histories, engine = _run(scenario, plan, disable)
    ds = build_dataset(scenario, plan.networks, plan.tasks, histories, engine)
    if plan.node_labels is not None:
        ds.attrs["node_labels"] = json.dumps([int(v) for v in plan.node_labels])
    return ds


def _run(scenario: Scenario, plan: RunPlan, disable, initial=None, failed=None):
    """Every system of ``plan`` on the scenario's engine; ``initial[i]`` overrides system i's conductances
    and ``failed[i]`` gives its edges already removed or frozen."""
    run = scenario.run
    if scenario.engine.kind == "synchronous":
        total, unit, desc = run.steps * len(plan.systems), "system-step", "edgesim"
    else:
        total, unit, desc = run.steps * run.step_duration * len(plan.systems), "s", "edgesim (simulated time)"
    with tqdm(total=total, unit=unit, unit_scale=True, disable=disable, desc=desc) as bar:
        if scenario.engine.kind == "synchronous":
            return _run_synchronous(scenario, plan, bar, initial, failed)
        return _run_engine(scenario, plan, bar, initial, failed)


def initial_conductances(scenario: Scenario, plan: RunPlan, systems) -> list[np.ndarray]:
    """The initial conductances of the listed systems (indices into ``plan.systems``)."""
    return [_initial(scenario, plan, i, None) for i in systems]


def _initial(scenario, plan, i, initial):
    _, values, r = plan.systems[i]
    if initial is not None:
        return initial[i]
    if plan.given_conductance is not None:
        return plan.given_conductance.copy()
    return initial_conductance(scenario.with_values(values).learning, plan.tasks[r].network, scenario.run.seed, r)


def _run_synchronous(scenario: Scenario, plan: RunPlan, bar, initial=None, failed=None):
    """Every system through the synchronous trainer, in stacks of at most ``run.max_stack``."""
    run = scenario.run
    histories = []
    for start in range(0, len(plan.systems), run.max_stack):
        chunk = plan.systems[start:start + run.max_stack]
        resolved = [scenario.with_values(values) for _, values, _ in chunk]
        k0 = [_initial(scenario, plan, start + i, initial) for i in range(len(chunk))]
        hist = train_synchronous([plan.tasks[r] for _, _, r in chunk], scenario.learning, run.steps, k0,
                                 alpha=[s.learning.alpha for s in resolved], eta=[s.learning.eta for s in resolved],
                                 lam=[s.learning.lambda_ for s in resolved], record_at=plan.record_steps,
                                 conductance_every=run.conductance_every, step_duration=run.step_duration,
                                 solver_backend=scenario.solver.backend, solver_tolerance=scenario.solver.tolerance,
                                 newton_tolerance=scenario.solver.newton_tolerance,
                                 newton_max_iterations=scenario.solver.newton_max_iterations,
                                 control=scenario.control, damage=[s.damage for s in resolved],
                                 tolerance=[s.control.tolerance for s in resolved],
                                 seeds=[realization_seed(run.seed, r) for _, _, r in chunk],
                                 failed=None if failed is None else failed[start:start + len(chunk)],
                                 progress=lambda n, size=len(chunk): bar.update(n * size))
        histories.append((chunk, hist))
    return histories, "synchronous"


def _run_engine(scenario: Scenario, plan: RunPlan, bar, initial=None, failed=None):
    """Every system of the scenario through the autonomous-edge engine, one after the other."""
    from .engine.simulate import simulate

    run = scenario.run
    histories = []
    kinds = set()
    for i, system in enumerate(plan.systems):
        _, values, r = system
        resolved = scenario.with_values(values)
        history, info = simulate(plan.tasks[r], resolved.learning, resolved.hardware, resolved.engine,
                                 _initial(scenario, plan, i, initial), plan.record_steps * run.step_duration,
                                 seed=realization_seed(run.seed, r), record_steps=plan.record_steps,
                                 conductance_every=run.conductance_every, progress=bar.update,
                                 control=resolved.control, damage=resolved.damage, step_duration=run.step_duration,
                                 solver=scenario.solver,
                                 failed=None if failed is None else failed[i])
        kinds.add(info["engine"])
        histories.append(([system], history))
    return histories, "+".join(sorted(kinds))


def _run_phases(scenario: Scenario, plan: RunPlan, disable):
    """A protocol: the phases one after another, each starting from the conductances the last one left.

    Phase ``i`` records its steps ``(start, end]`` (the first phase also its
    step 0); its series continue the previous phase's (training energy adds
    up), and its damage table rows follow the earlier phases' (times from the
    run's start).  Removed and frozen edges stay so; degradation factors,
    the supervisor, the controller and, in the engines, the edges' clocks
    restart at each phase's start.
    """
    run = scenario.run
    ends = np.cumsum([p.steps for p in scenario.phases])
    starts = ends - [p.steps for p in scenario.phases]
    parts, engine, initial, failed = [], None, None, None
    for i, (start, end) in enumerate(zip(starts, ends)):
        sub = scenario.phase(i)
        inside = plan.record_steps[(plan.record_steps >= start) & (plan.record_steps <= end)] - start
        local = np.unique(np.concatenate([[0, end - start], inside]))
        tasks = [build_task(sub.task, plan.networks[r], run.seed, r) for r in range(len(plan.networks))]
        histories, engine = _run(sub, RunPlan(plan.networks, tasks, local, plan.systems, plan.given_conductance),
                                 disable, initial, failed)
        size = [(h, j, plan.tasks[r].network.n_edges) for systems, h in histories for j, (_, _, r) in enumerate(systems)]
        # a removed edge's conductance is recorded as NaN; it stays removed, so its memory's value is moot
        initial = [np.nan_to_num(h.conductance[j, -1, :E], nan=1.0) for h, j, E in size]
        failed = [None if h.final_alive is None else (h.final_alive[j, :E].copy(), h.final_frozen[j, :E].copy())
                  for h, j, E in size]
        parts.append((start, histories))
    return concatenate_phases(parts, run.step_duration), engine


def concatenate_phases(parts, step_duration: float = 1.0):
    """Join per-phase histories (each a list of (systems, History)) along the step axis."""
    merged = []
    for c, (systems, _) in enumerate(parts[0][1]):
        pieces = [(start, histories[c][1]) for start, histories in parts]
        merged.append((systems, _join(pieces, step_duration)))
    return merged


def _join_damage(pieces, name: str, step_duration: float):
    """The damage rows of every phase, one after the other (times from the run's start)."""
    blocks = [(start, getattr(h, name)) for start, h in pieces if getattr(h, name) is not None]
    if not blocks:
        return None
    R = blocks[0][1].shape[0]
    rows = [v + (start * step_duration if name == "damage_time" else 0) for start, v in blocks]
    return np.concatenate([np.zeros((R, 0), rows[0].dtype)] + rows, axis=1)


def _join(pieces, step_duration: float = 1.0) -> History:
    first = pieces[0][1]
    keep = [slice(None)] + [slice(1, None)] * (len(pieces) - 1)  # later phases: drop their step 0
    step = np.concatenate([start + h.step[k] for (start, h), k in zip(pieces, keep)])
    cstep = np.concatenate([start + h.conductance_step[k] for (start, h), k in zip(pieces, keep)])
    fields = {}
    energy = np.zeros(first.error_train.shape[0])
    energy_total = np.zeros_like(energy)
    for name, dims in HISTORY_DIMS.items():
        values = [getattr(h, name) for _, h in pieces]
        if all(v is None for v in values):
            continue
        if "damage_event" in dims:
            fields[name] = _join_damage(pieces, name, step_duration)
            continue
        if "step" in dims or "conductance_step" in dims:
            axis = 1 + dims.index("step" if "step" in dims else "conductance_step")
            template = next(v for v in values if v is not None)
            shapes = {v.shape[axis + 1:] for v in values if v is not None}
            if len(shapes) > 1:  # e.g. outputs of tasks with different numbers of outputs
                continue
            blocks = []
            for (start, h), v, k in zip(pieces, values, keep):
                counts = len(h.step) if "step" in dims else len(h.conductance_step)
                if v is None and name == "alive_edges":  # a phase without damage: its edges all stay
                    present = np.isfinite(h.conductance[:, 0, :]).sum(1)
                    v = np.broadcast_to(present[:, None], (len(present), counts)).astype(template.dtype)
                elif v is None:
                    shape = list(template.shape)
                    shape[axis] = counts
                    v = np.full(shape, np.nan)
                if name == "training_energy":
                    v, energy = v + energy[:, None], energy + v[:, -1]
                elif name == "training_energy_total":
                    v, energy_total = v + energy_total[:, None], energy_total + v[:, -1]
                blocks.append(np.take(v, np.arange(v.shape[axis])[k], axis=axis))
            fields[name] = np.concatenate(blocks, axis=axis)
        else:
            fields[name] = values[-1]
    last = pieces[-1][1]
    return History(step=step, conductance_step=cstep, final_alive=last.final_alive, final_frozen=last.final_frozen,
                   **fields)
