"""Run a scenario end to end: build its systems, run them on the engine it names, return the result dataset."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from .build import build_network, build_task, initial_conductance
from .history import record_steps
from .network import Network
from .results import build_dataset
from .scenario import Scenario
from .seeding import realization_seed
from .tasks import Task
from .trainer import train_synchronous

__all__ = ["run_scenario", "RunPlan"]


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
    """

    networks: list[Network]
    tasks: list[Task]
    record_steps: np.ndarray
    systems: list[tuple[tuple, dict, int]]

    @classmethod
    def of(cls, scenario: Scenario) -> "RunPlan":
        run = scenario.run
        networks = [build_network(scenario.network, r) for r in range(run.realizations)]
        tasks = [build_task(scenario.task, networks[r], run.seed, r) for r in range(run.realizations)]
        for net in networks:
            scenario.damage.check_edges(net.n_edges)
        names = list(scenario.sweep)
        systems = []
        for idx in itertools.product(*(range(len(scenario.sweep[n])) for n in names)):
            values = {n: scenario.sweep[n][i] for n, i in zip(names, idx)}
            systems.extend((idx, values, r) for r in range(run.realizations))
        return cls(networks, tasks, record_steps(run.steps, run.record_points, run.record_every or None), systems)


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
    plan = RunPlan.of(scenario)
    disable = None if progress is None else not progress
    if scenario.engine.kind == "synchronous":
        return _run_synchronous(scenario, plan, disable)
    return _run_engine(scenario, plan, disable)


def _run_synchronous(scenario: Scenario, plan: RunPlan, disable) -> xr.Dataset:
    """Every system through the synchronous trainer, in stacks of at most ``run.max_stack``."""
    run = scenario.run
    histories = []
    bar = tqdm(total=run.steps * len(plan.systems), unit="system-step", unit_scale=True, disable=disable,
               desc="edgesim")
    for start in range(0, len(plan.systems), run.max_stack):
        chunk = plan.systems[start:start + run.max_stack]
        learning = [scenario.with_values(values).learning for _, values, _ in chunk]
        k0 = [initial_conductance(ls, plan.tasks[r].network, run.seed, r) for ls, (_, _, r) in zip(learning, chunk)]
        hist = train_synchronous([plan.tasks[r] for _, _, r in chunk], scenario.learning, run.steps, k0,
                                 alpha=[ls.alpha for ls in learning], eta=[ls.eta for ls in learning],
                                 lam=[ls.lambda_ for ls in learning], record_at=plan.record_steps,
                                 conductance_every=run.conductance_every, step_duration=run.step_duration,
                                 control=scenario.control, damage=scenario.damage,
                                 tolerance=[scenario.with_values(v).control.tolerance for _, v, _ in chunk],
                                 seeds=[realization_seed(run.seed, r) for _, _, r in chunk],
                                 progress=lambda n, size=len(chunk): bar.update(n * size))
        histories.append((chunk, hist))
    bar.close()
    return build_dataset(scenario, plan.networks, plan.tasks, histories, "synchronous")


def _run_engine(scenario: Scenario, plan: RunPlan, disable) -> xr.Dataset:
    """Every system of the scenario through the autonomous-edge engine, one after the other."""
    from .engine.simulate import simulate

    run = scenario.run
    bar = tqdm(total=run.steps * run.step_duration * len(plan.systems), unit="s", unit_scale=True,
               desc="edgesim (simulated time)", disable=disable)
    histories = []
    kinds = set()
    for system in plan.systems:
        _, values, r = system
        resolved = scenario.with_values(values)
        task = plan.tasks[r]
        k0 = initial_conductance(resolved.learning, task.network, run.seed, r)
        history, info = simulate(task, resolved.learning, resolved.hardware, resolved.engine, k0,
                                 plan.record_steps * run.step_duration, seed=realization_seed(run.seed, r),
                                 record_steps=plan.record_steps, conductance_every=run.conductance_every,
                                 progress=bar.update, control=resolved.control, damage=scenario.damage,
                                 step_duration=run.step_duration)
        kinds.add(info["engine"])
        histories.append(([system], history))
    bar.close()
    return build_dataset(scenario, plan.networks, plan.tasks, histories, "+".join(sorted(kinds)))
