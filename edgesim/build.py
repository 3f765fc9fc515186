"""Turn scenario sections into networks, tasks and initial conductances."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np

from . import network as nets
from . import tasks
from . import hardware as hw
from .rules import TapLadder
from .scenario import NetworkSection, Scenario, ScenarioError, TaskSection
from .seeding import stream

__all__ = ["build_network", "build_task", "initial_conductance", "build_hardware", "build_engine_config"]


def build_network(section: NetworkSection, realization: int = 0) -> nets.Network:
    """The network of realization ``realization`` (0-based) of a scenario."""
    kind = section.kind
    if kind == "jammed":
        available = nets.jammed_realizations(section.size)
        index = section.realization + realization
        if index > available:
            raise ScenarioError(
                f"network.realization = {section.realization} with {realization + 1} realizations needs "
                f"jammed network {index}, but only {available} of size {section.size} are shipped")
        return nets.jammed_network(section.size, index)
    if kind == "square_lattice":
        return nets.square_lattice(section.nx, section.ny or section.nx, periodic=section.periodic)
    if kind == "divider":
        return nets.voltage_divider()
    if kind == "lab":
        return nets.lab_network()
    if kind == "transistor_lattice":
        return nets.transistor_lattice()
    if kind == "edge_list":
        path = Path(section.path)
        if not path.is_file():
            raise ScenarioError(f"network.path {path} does not exist or is not a file")
        try:
            graph = nx.read_edgelist(path, nodetype=int)
        except (TypeError, ValueError) as exc:
            raise ScenarioError(f"network.path {path}: not an edge list of integer node pairs ({exc})") from None
        return nets.from_networkx(graph, name=f"edge list {path.name}")
    raise ScenarioError(f"unknown network.kind {kind!r}")  # pragma: no cover - checked earlier


def build_task(section: TaskSection, network: nets.Network, seed: int, realization: int) -> tasks.Task:
    """The task of one realization; its random draws come from ``(seed, realization)``."""
    rng = stream(seed, realization, "task")
    try:
        if section.kind == "edge_regression":
            return tasks.edge_regression(network, rng, section.n_sources, section.n_targets, section.n_train,
                                         section.n_test, (section.coefficient_min, section.coefficient_max),
                                         (section.input_min, section.input_max))
        if section.kind == "node_regression":
            return tasks.node_regression(network, section.input_nodes, section.output_nodes, section.ground,
                                         section.coefficients, rng, section.n_train, section.n_test,
                                         (section.input_min, section.input_max))
        if section.kind == "allostery":
            return tasks.node_allostery(network, dict(zip(section.input_nodes, section.input_voltages)),
                                        dict(zip(section.output_nodes, section.output_voltages)), section.ground)
        if section.kind == "iris":
            return tasks.iris_classification(network, section.input_nodes, section.output_nodes, section.ground,
                                             rng, section.train_per_class)
        if section.kind == "divider":
            if network.n_nodes != 3 or network.n_edges != 2:
                raise ScenarioError("task.kind = 'divider' needs network.kind = 'divider' (3 nodes, 2 edges)")
            return tasks.divider_tracking(section.targets, section.steps_per_target, section.input_voltage,
                                          network=network)
    except ValueError as exc:
        raise ScenarioError(f"[task] does not fit the network: {exc}") from exc
    raise ScenarioError(f"unknown task.kind {section.kind!r}")  # pragma: no cover


def initial_conductance(scenario: Scenario, network: nets.Network, kappa: float, realization: int) -> np.ndarray:
    """Initial conductances: ``kappa`` times a uniform relative spread (same draw for every kappa)."""
    spread = scenario.learning.initial_spread
    rng = stream(scenario.run.seed, realization, "initial")
    factor = 1.0 + spread * rng.uniform(-1.0, 1.0, network.n_edges)
    return kappa * factor


def _given(section, overrides: dict) -> dict:
    """Keys of a hardware section set in the scenario (or by a sweep), without the unset ones."""
    values = {k: v for k, v in vars(section).items() if v is not None}
    values.update(overrides)
    return values


def build_hardware(scenario: Scenario, sweep_values: dict | None = None) -> hw.HardwareSpec:
    """The edges' hardware: a preset, then the scenario's [clock], [comparator], [memory] keys.

    Without ``engine.hardware`` the memory follows ``learning.rule`` (coupled:
    ideal, sign: taps) and the clock period is ``run.step_duration``.  The tap
    ladder, conductance range and dead band come from ``[learning]`` when the
    scenario gives them (or no preset is used), else from the preset.
    """
    sweep_values = dict(sweep_values or {})
    name = scenario.engine.hardware
    base = hw.preset(name) if name else hw.preset("ideal")
    ls = scenario.learning
    clock = _given(scenario.clock, {k: v for k, v in sweep_values.items() if k in hw.ClockSpec.__dataclass_fields__})
    if "period" not in clock and not name:
        clock["period"] = scenario.run.step_duration
    comparator = _given(scenario.comparator,
                        {k: v for k, v in sweep_values.items() if k in hw.ComparatorSpec.__dataclass_fields__})
    given = scenario.source.get("learning", {})
    if "deadband" in given or not name:
        comparator["deadband"] = ls.deadband
    memory = _given(scenario.memory, {k: v for k, v in sweep_values.items() if k in hw.MemorySpec.__dataclass_fields__})
    if "kind" not in memory and not name:
        memory["kind"] = "taps" if ls.rule == "sign" else "ideal"
    # [learning] sets the conductance range and tap ladder when given (or when no preset is used);
    # otherwise the preset's values stand.
    for key in ("k_min", "k_max"):
        if key in given or not name:
            memory[key] = getattr(ls, key)
    if "taps" in given or not name:
        t = ls.taps
        memory["taps"] = TapLadder(t.n_taps, t.low, t.high, t.quantity, t.spacing)
    spec = hw.with_overrides(base, clock, comparator, memory)
    kind = spec.memory.kind
    if (kind == "taps") != (ls.rule == "sign"):
        raise ScenarioError(f"hardware memory kind '{kind}' does not match learning.rule = '{ls.rule}' "
                            "(taps learn by the sign rule; ideal and capacitor elements by coupled learning)")
    return spec


def build_engine_config(scenario: Scenario, sweep_values: dict | None = None):
    """The :class:`~edgesim.engine.simulate.EngineConfig` of a scenario."""
    from .engine.simulate import EngineConfig

    es, ls = scenario.engine, scenario.learning
    settle = (sweep_values or {}).get("settle_time", es.settle_time)
    return EngineConfig(kind=es.kind, settle_time=settle, max_rank=es.max_rank, cohorts=es.cohorts,
                        supervisor_period=es.supervisor_period or scenario.run.step_duration, batch=ls.batch,
                        class_margin=ls.class_margin, epoch_steps=ls.epoch_steps or None)
