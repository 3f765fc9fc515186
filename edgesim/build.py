"""Turn a scenario's configuration into networks, tasks, and initial conductances."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import network as nets
from . import tasks
from .config import EdgeConfig, LearningConfig, NetworkConfig, TaskConfig
from .edgelaws import TransistorLaw
from .scenario import ScenarioError
from .seeding import normal, realization_seed, stream

__all__ = ["build_network", "build_task", "build_edge_law", "build_system", "initial_conductance", "read_edge_list"]


def build_system(scenario, realization: int = 0) -> tasks.Task:
    """The task of realization ``realization`` (0-based) of a :class:`~edgesim.scenario.Scenario`, on its network
    with the scenario's edge law: what a run trains and what analysis rebuilds from a stored scenario."""
    network = build_network(scenario.network, realization)
    if scenario.edge.nonlinear:
        seed = realization_seed(scenario.run.seed, realization)
        network = network.with_law(build_edge_law(scenario.edge, seed, network.n_edges))
    return build_task(scenario.task, network, scenario.run.seed, realization)


def build_edge_law(edge: EdgeConfig, seed: int, n_edges: int):
    """The edge law of one realization (``None`` for linear edges).

    Per-edge mismatch of ``S`` (relative) and ``V_T`` (volts) comes from the counter-based draws of
    :mod:`edgesim.seeding` keyed by the realization's seed and the edge: the same edge gets the same transistor
    in every engine and in the trainer.
    """
    if not edge.nonlinear:
        return None
    e = np.arange(n_edges)
    S = edge.transconductance * (1.0 + edge.transconductance_spread * normal(seed, "transconductance mismatch", e, 0))
    S = np.maximum(S, 0.05 * edge.transconductance)  # a 0.3 spread reaches 3.3 sigma: keep S positive
    threshold = edge.threshold + edge.threshold_spread * normal(seed, "threshold mismatch", e, 0)
    return TransistorLaw(transconductance=S, threshold=threshold, gate_min=edge.gate_min, gate_max=edge.gate_max,
                         channel_length_modulation=edge.channel_length_modulation, subthreshold=edge.subthreshold,
                         slope_factor=edge.slope_factor, thermal_voltage=edge.thermal_voltage,
                         leakage_conductance=edge.leakage_conductance)


def build_network(section: NetworkConfig, realization: int = 0) -> nets.Network:
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
        return read_edge_list(section)[0]
    raise ScenarioError(f"unknown network.kind {kind!r}")  # pragma: no cover - checked earlier


def read_edge_list(section: NetworkConfig):
    """The network, node labels and initial conductances (or None) of an ``edge_list`` network."""
    path = Path(section.path)
    if not path.is_file():
        raise ScenarioError(f"network.path {path} does not exist or is not a file")
    try:
        return nets.read_edge_list(path)
    except nets.NetworkError as exc:
        raise ScenarioError(f"network.path: {exc}") from None


def build_task(section: TaskConfig, network: nets.Network, seed: int, realization: int) -> tasks.Task:
    """The task of one realization; its random draws come from ``(seed, realization)``."""
    rng = stream(seed, realization, "task")
    try:
        if section.kind == "edge_regression":
            return tasks.edge_regression(network, rng, section.n_sources, section.n_targets, section.n_train,
                                         section.n_test, (section.coefficient_min, section.coefficient_max),
                                         (section.input_min, section.input_max), section.label_noise)
        if section.kind == "node_regression":
            return tasks.node_regression(network, section.input_nodes, section.output_nodes, section.ground,
                                         section.coefficients, rng, section.n_train, section.n_test,
                                         (section.input_min, section.input_max), section.label_noise)
        if section.kind == "allostery":
            return tasks.node_allostery(network, dict(zip(section.input_nodes, section.input_voltages)),
                                        dict(zip(section.output_nodes, section.output_voltages)), section.ground)
        if section.kind == "iris":
            ground, inputs, outputs = (tasks.random_iris_nodes(network, rng) if section.random_nodes
                                       else (section.ground, section.input_nodes, section.output_nodes))
            return tasks.iris_classification(network, inputs, outputs, ground, rng, section.train_per_class,
                                             (section.feature_min, section.feature_max))
        bias = dict(zip(section.bias_nodes, section.bias_voltages))
        if section.kind == "xor":
            return tasks.xor_task(network, section.input_nodes, section.output_nodes, section.ground, bias,
                                  (section.input_min, section.input_max), section.targets)
        if section.kind == "nonlinear_regression":
            return tasks.nonlinear_regression(network, section.input_nodes[0], section.output_nodes[0], section.ground,
                                              section.coefficients, rng, section.n_train, section.n_test,
                                              (section.input_min, section.input_max), bias, section.label_noise)
        if section.kind == "nonlinear_classification":
            return tasks.nonlinear_classification(network, section.input_nodes, section.output_nodes, section.ground,
                                                  rng, section.train_per_class, section.n_test,
                                                  (section.input_min, section.input_max), bias, section.dataset,
                                                  section.complementary_inputs, section.targets or None)
        if section.kind == "divider":
            if network.n_nodes != 3 or network.n_edges != 2:
                raise ScenarioError("task.kind = 'divider' needs network.kind = 'divider' (3 nodes, 2 edges)")
            return tasks.divider_tracking(section.targets, section.steps_per_target, section.input_voltage,
                                          network=network)
    except ValueError as exc:
        raise ScenarioError(f"[task] does not fit the network: {exc}") from exc
    raise ScenarioError(f"unknown task.kind {section.kind!r}")  # pragma: no cover


def initial_conductance(learning: LearningConfig, network: nets.Network, seed: int, realization: int) -> np.ndarray:
    """Initial conductances: ``learning.kappa`` times a uniform relative spread (same draw for every kappa)."""
    rng = stream(seed, realization, "initial")
    factor = 1.0 + learning.initial_spread * rng.uniform(-1.0, 1.0, network.n_edges)
    return learning.kappa * factor

