"""Every configuration of a run, as validated frozen dataclasses.

This module is the one place where each setting, its default, its unit and
its allowed values are defined.  The scenario parser (:mod:`edgesim.scenario`)
builds these objects directly from TOML; the trainer, the engines and the
hardware models take them as they are.  Each dataclass checks its own values
when it is made, so an invalid configuration cannot exist; the error names the
scenario key (``learning.eta``, ``clock.period``, ...).

Who owns what
-------------
* :class:`LearningConfig` — the learning rule and the edge element's range:
  ``alpha``, ``eta``, ``lambda``, the initial conductances (``kappa``,
  ``initial_spread``), the conductance range ``[k_min, k_max]``, the tap ladder
  of the sign rule and the comparator dead band.
* :class:`HardwareSpec` — the imperfections of autonomous edges: clocks
  (:class:`ClockSpec`), comparators (:class:`ComparatorSpec`) and memory
  elements (:class:`MemorySpec`).  Presets are in :data:`PRESETS`.
* :class:`EngineConfig` — how the simulation runs (engine kind, settling,
  low-rank solver policy, supervisor clock).
* :class:`RunConfig`, :class:`NetworkConfig`, :class:`TaskConfig` — length and
  recording, the network, the task.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "ConfigError", "RunConfig", "NetworkConfig", "TaskConfig", "TapLadder", "LearningConfig", "EngineConfig",
    "ClockSpec", "ComparatorSpec", "MemorySpec", "HardwareSpec", "PRESETS", "PRESET_LEARNING", "preset",
    "EdgeConfig", "EDGE_LAWS", "NONLINEAR_TASK_KINDS",
    "NETWORK_KINDS", "TASK_KINDS", "ENGINE_KINDS", "RULES", "BATCH_MODES", "MEMORY_KINDS",
    "AUTO_PER_EDGE_MAX_EDGES", "ControlConfig", "DamageEvent", "RandomFailures", "Removal", "Pruning",
    "DamageConfig", "DAMAGE_MODES", "PRUNING_CRITERIA", "CONTROL_KINDS", "PhaseConfig",
]


class ConfigError(ValueError):
    """An invalid setting; the message names the scenario key."""


NETWORK_KINDS = ("jammed", "square_lattice", "divider", "lab", "transistor_lattice", "edge_list")
TASK_KINDS = ("edge_regression", "node_regression", "allostery", "iris", "divider", "xor", "nonlinear_regression",
              "nonlinear_classification")
#: Task kinds only a network of nonlinear edges can learn (a linear network's outputs are linear in its inputs).
NONLINEAR_TASK_KINDS = ("xor", "nonlinear_regression", "nonlinear_classification")
#: Edge current laws (``edge.law``): see :mod:`edgesim.edgelaws`.
EDGE_LAWS = ("linear", "transistor")
#: ``synchronous`` is the plain trainer; the others are the autonomous-edge engines.
ENGINE_KINDS = ("synchronous", "per_edge", "vectorized", "auto")
RULES = ("coupled", "sign")
BATCH_MODES = ("full", "online")
MEMORY_KINDS = ("ideal", "taps", "capacitor")
CLOCK_PHASES = ("synchronous", "random")
TAP_QUANTITIES = ("resistance", "conductance")
TAP_SPACINGS = ("linear", "log")
CONTROL_KINDS = ("constant", "feedback")
#: How an edge fails: removed from the circuit, pinned at a high conductance, frozen, or weakened.
DAMAGE_MODES = ("open", "short", "stuck", "degraded")
#: What a degraded edge loses: its update step, its comparator's precision, or its memory's retention.
DEGRADE_QUANTITIES = ("step", "noise", "leak")
#: How targeted pruning ranks the edges it removes.
PRUNING_CRITERIA = ("error", "current", "conductance")
#: ``engine.kind = "auto"`` uses the per-edge engine up to this many edges.
AUTO_PER_EDGE_MAX_EDGES = 64


# -- value checks (each raises ConfigError naming section.key) -------------------------------------
def _number(section, key, value, *, integer=False, positive=False, nonneg=False, unit=None, allow_inf=False):
    kind = "an integer" if integer else "a number"
    ok = isinstance(value, (int, np.integer)) if integer else isinstance(value, (int, float, np.integer, np.floating))
    if not ok or isinstance(value, bool):
        raise ConfigError(f"{section}.{key} must be {kind}, got {value!r}")
    if math.isnan(value) or (math.isinf(value) and not (allow_inf and value > 0)):
        raise ConfigError(f"{section}.{key} must be finite, got {value!r}")
    suffix = f" {unit}" if unit else ""
    if positive and value <= 0:
        raise ConfigError(f"{section}.{key} must be > 0{suffix}, got {value!r}")
    if nonneg and value < 0:
        raise ConfigError(f"{section}.{key} must be >= 0{suffix}, got {value!r}")
    return value


def _in_range(section, key, value, low, high, what=""):
    _number(section, key, value)
    if not low <= value <= high:
        raise ConfigError(f"{section}.{key} must lie in [{low:g}, {high:g}]{what}, got {value!r}")


def _choice(section, key, value, options):
    if value not in options:
        raise ConfigError(f"{section}.{key} must be one of {', '.join(map(repr, options))}; got {value!r}")
    return value


def _int_list(section, key, value, length=None):
    if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
        raise ConfigError(f"{section}.{key} must be a list of integers (node indices), got {value!r}")
    if length is not None and len(value) != length:
        raise ConfigError(f"{section}.{key} must list {length} nodes, got {len(value)}")


# -- run, network, task ---------------------------------------------------------------------------
@dataclass(frozen=True)
class RunConfig:
    """``[run]``: length, recording and seed of a run.

    Attributes
    ----------
    seed : int
        Master seed of every random draw.
    steps : int
        Learning steps (the engines run ``steps * step_duration`` seconds).
    step_duration : float
        Simulated seconds per step (s).
    record_points, record_every : int
        Log-spaced record points, or a record every ``record_every`` steps (if > 0).
    conductance_every : int
        Conductances are kept at every ``conductance_every``-th record.
    realizations : int
        Network and task draws.
    max_stack : int
        Systems the synchronous trainer stacks into one solve.
    conductance_edges : tuple of int
        Store the per-edge variables of only these edges (empty: every edge).
    conductance_dtype : {"float64", "float32"}
        Storage type of the conductance snapshots in the result file.
    compress : bool
        Compress the result file's variables (zlib, level 4; lossless).
    """

    seed: int = 0
    steps: int = 1000
    step_duration: float = 1.0
    record_points: int = 100
    record_every: int = 0
    conductance_every: int = 1
    realizations: int = 1
    max_stack: int = 256
    conductance_edges: tuple = ()
    conductance_dtype: str = "float64"
    compress: bool = False

    def __post_init__(self):
        s = "run"
        _int_list(s, "conductance_edges", self.conductance_edges)
        if any(e < 0 for e in self.conductance_edges) or len(set(self.conductance_edges)) != len(self.conductance_edges):
            raise ConfigError(f"run.conductance_edges must list distinct edge indices >= 0, got {self.conductance_edges}")
        _choice(s, "conductance_dtype", self.conductance_dtype, ("float64", "float32"))
        if not isinstance(self.compress, bool):
            raise ConfigError(f"run.compress must be true or false, got {self.compress!r}")
        _number(s, "seed", self.seed, integer=True, nonneg=True)
        _number(s, "steps", self.steps, integer=True, positive=True)
        _number(s, "step_duration", self.step_duration, positive=True, unit="s")
        _number(s, "record_points", self.record_points, integer=True, positive=True)
        _number(s, "record_every", self.record_every, integer=True, nonneg=True)
        _number(s, "conductance_every", self.conductance_every, integer=True, positive=True)
        _number(s, "realizations", self.realizations, integer=True, positive=True)
        _number(s, "max_stack", self.max_stack, integer=True, positive=True)


@dataclass(frozen=True)
class NetworkConfig:
    """``[network]``: which network to build (see :mod:`edgesim.network`)."""

    kind: str = "lab"
    size: int = 64
    realization: int = 1
    nx: int = 10
    ny: int = 0
    periodic: bool = False
    path: str = ""

    def __post_init__(self):
        s = "network"
        _choice(s, "kind", self.kind, NETWORK_KINDS)
        _number(s, "size", self.size, integer=True, positive=True)
        _number(s, "realization", self.realization, integer=True, positive=True)
        _number(s, "nx", self.nx, integer=True, positive=True)
        _number(s, "ny", self.ny, integer=True, nonneg=True)
        if not isinstance(self.path, str):
            raise ConfigError(f"network.path must be a file name (string), got {self.path!r}")
        if not isinstance(self.periodic, bool):
            raise ConfigError(f"network.periodic must be true or false, got {self.periodic!r}")
        if self.kind == "edge_list" and not self.path:
            raise ConfigError("network.path is required for kind = 'edge_list'")


@dataclass(frozen=True)
class TaskConfig:
    """``[task]``: what the network learns (see :mod:`edgesim.tasks`).

    Besides each kind's nodes, voltages and data sizes: ``random_nodes``
    (Iris only) draws the ground, the 4 input and the 3 output nodes at random
    for every realization, for networks without a laboratory layout;
    ``label_noise`` (regression only) adds Gaussian noise of that standard
    deviation (V) to the training targets (Stern et al. 2024, App. C);
    ``feature_min`` and ``feature_max`` (Iris, V) are the voltages the range
    of each feature is scaled to (default 0-5 V, the laboratory's).  The
    nonlinear kinds (``xor``, ``nonlinear_regression``,
    ``nonlinear_classification``; transistor edges only) add ``bias_nodes`` and
    ``bias_voltages`` (nodes held at fixed voltages), and for the
    classification ``dataset`` ("moons" or "circles") and
    ``complementary_inputs``; ``targets`` are XOR's [false, true] outputs or
    the fixed class targets (docs/scenarios.md).
    """

    kind: str = "allostery"
    ground: int = -1
    input_nodes: tuple = ()
    output_nodes: tuple = ()
    input_voltages: tuple = ()
    output_voltages: tuple = ()
    coefficients: tuple = ()
    n_sources: int = 2
    n_targets: int = 2
    n_train: int = 20
    n_test: int = 100
    coefficient_min: float = 0.1
    coefficient_max: float = 0.5
    input_min: float = 0.0
    input_max: float = 1.0
    train_per_class: int = 10
    targets: tuple = ()
    steps_per_target: int = 100
    input_voltage: float = 5.0
    random_nodes: bool = False
    label_noise: float = 0.0
    feature_min: float = 0.0
    feature_max: float = 5.0
    bias_nodes: tuple = ()
    bias_voltages: tuple = ()
    dataset: str = "moons"
    complementary_inputs: bool = False

    def __post_init__(self):
        s = "task"
        if self.kind in NONLINEAR_TASK_KINDS:
            self._check_nonlinear()
        elif self.bias_nodes or self.bias_voltages:
            raise ConfigError(f"task.bias_nodes and task.bias_voltages apply to the nonlinear task kinds "
                              f"({', '.join(NONLINEAR_TASK_KINDS)}), not {self.kind!r}")
        elif self.dataset != "moons" or self.complementary_inputs:
            raise ConfigError(f"task.dataset and task.complementary_inputs apply to task kind "
                              f"'nonlinear_classification', not {self.kind!r}")
        if not isinstance(self.random_nodes, bool):
            raise ConfigError(f"task.random_nodes must be true or false, got {self.random_nodes!r}")
        _number(s, "label_noise", self.label_noise, nonneg=True, unit="V")
        _number(s, "feature_min", self.feature_min, unit="V")
        _number(s, "feature_max", self.feature_max, unit="V")
        if self.feature_min >= self.feature_max:
            raise ConfigError(f"task.feature_min must be below task.feature_max, got {self.feature_min} >= "
                              f"{self.feature_max}")
        if self.label_noise and self.kind not in ("edge_regression", "node_regression", "nonlinear_regression"):
            raise ConfigError(f"task.label_noise applies to regression tasks, not task kind {self.kind!r}")
        if self.random_nodes:
            if self.kind != "iris":
                raise ConfigError(f"task.random_nodes applies to task kind 'iris', not {self.kind!r}")
            if self.input_nodes or self.output_nodes or self.ground >= 0:
                raise ConfigError("task.random_nodes = true draws the ground, input and output nodes: leave "
                                  "task.ground, task.input_nodes and task.output_nodes out")
        _choice(s, "kind", self.kind, TASK_KINDS)
        for key in ("n_sources", "n_targets", "n_train", "n_test", "train_per_class", "steps_per_target"):
            _number(s, key, getattr(self, key), integer=True, positive=True)
        for key in ("coefficient_min", "coefficient_max", "input_min", "input_max", "input_voltage"):
            _number(s, key, getattr(self, key))
        _number(s, "ground", self.ground, integer=True)
        if self.coefficient_min > self.coefficient_max:
            raise ConfigError(f"task.coefficient_min must not exceed task.coefficient_max, got "
                              f"{self.coefficient_min} > {self.coefficient_max}")
        if self.input_min >= self.input_max:
            raise ConfigError(f"task.input_min must be below task.input_max, got {self.input_min} >= {self.input_max}")
        if self.kind in ("node_regression", "allostery", "iris") and not self.random_nodes:
            self._check_nodes()
        if self.kind == "iris" and self.train_per_class >= 50:
            raise ConfigError("task.train_per_class must be below 50 (Iris has 50 flowers per species; "
                              "the rest form the test set)")
        if self.kind == "allostery":
            if len(self.input_voltages) != len(self.input_nodes):
                raise ConfigError("task.input_voltages needs one voltage per input node")
            if len(self.output_voltages) != len(self.output_nodes):
                raise ConfigError("task.output_voltages needs one voltage per output node")
        if self.kind == "node_regression":
            shape = (len(self.output_nodes), len(self.input_nodes))
            rows = self.coefficients
            if len(rows) != shape[0] or any(not isinstance(r, tuple) or len(r) != shape[1] for r in rows) \
                    or any(isinstance(v, bool) or not isinstance(v, (int, float)) for r in rows for v in r):
                raise ConfigError(f"task.coefficients must be a {shape[0]} x {shape[1]} list of lists "
                                  "(one row per output node)")
        if self.kind == "divider" and not self.targets:
            raise ConfigError("task.targets (list of desired output voltages) is required for task kind 'divider'")

    def _check_nonlinear(self):
        """Nodes, bias and targets of the nonlinear task kinds (xor, nonlinear_regression, nonlinear_classification)."""
        fixed = self.kind == "nonlinear_classification" and bool(self.targets)
        n_in, n_out = {"xor": (2, (1, 2)), "nonlinear_regression": (1, (1,)),
                       "nonlinear_classification": (4 if self.complementary_inputs else 2, (1,) if fixed else (2,))
                       }[self.kind]
        if self.ground < 0:
            raise ConfigError(f"task.ground (the 0 V node) is required for task kind {self.kind!r}")
        _int_list("task", "input_nodes", self.input_nodes, n_in)
        _int_list("task", "output_nodes", self.output_nodes)
        if (self.dataset != "moons" or self.complementary_inputs) and self.kind != "nonlinear_classification":
            raise ConfigError("task.dataset and task.complementary_inputs apply to task kind 'nonlinear_classification'")
        if len(self.output_nodes) not in n_out:
            raise ConfigError(f"task.output_nodes needs {' or '.join(map(str, n_out))} node(s) for task kind "
                              f"{self.kind!r}, got {len(self.output_nodes)}")
        _int_list("task", "bias_nodes", self.bias_nodes)
        if len(self.bias_voltages) != len(self.bias_nodes):
            raise ConfigError("task.bias_voltages needs one voltage per bias node (task.bias_nodes)")
        for v in self.bias_voltages:
            _number("task", "bias_voltages", v, unit="V")
        nodes = [self.ground, *self.input_nodes, *self.bias_nodes, *self.output_nodes]
        if len(set(nodes)) != len(nodes):
            raise ConfigError(f"task: the ground, input, bias and output nodes must all differ, got ground "
                              f"{self.ground}, inputs {list(self.input_nodes)}, bias {list(self.bias_nodes)}, outputs "
                              f"{list(self.output_nodes)}")
        if self.kind == "xor" or fixed:
            if len(self.targets) != 2:
                what = "XOR: [false, true]" if self.kind == "xor" else "each class (fixed targets): [class 0, class 1]"
                raise ConfigError(f"task.targets must give the 2 desired output voltages of {what}")
            for v in self.targets:
                _number("task", "targets", v, unit="V")
        if self.kind == "nonlinear_classification":
            _choice("task", "dataset", self.dataset, ("moons", "circles"))
            if not isinstance(self.complementary_inputs, bool):
                raise ConfigError(f"task.complementary_inputs must be true or false, got {self.complementary_inputs!r}")
        if self.kind == "nonlinear_regression":
            c = self.coefficients
            if len(c) < 2 or any(isinstance(v, (bool, tuple)) or not isinstance(v, (int, float)) for v in c):
                raise ConfigError("task.coefficients must list the polynomial coefficients c0, c1, c2, ... of "
                                  "V_out = c0 + c1 x + c2 x^2 + ... (at least 2 numbers)")

    def _check_nodes(self):
        if self.ground < 0:
            raise ConfigError(f"task.ground (the 0 V node) is required for task kind {self.kind!r}")
        _int_list("task", "input_nodes", self.input_nodes, 4 if self.kind == "iris" else None)
        _int_list("task", "output_nodes", self.output_nodes, 3 if self.kind == "iris" else None)
        if not self.input_nodes or not self.output_nodes:
            raise ConfigError(f"task.input_nodes and task.output_nodes are required for task kind {self.kind!r}")
        roles = [(self.ground, "ground")] + [(v, "input") for v in self.input_nodes] \
            + [(v, "output") for v in self.output_nodes]
        for node in dict.fromkeys(v for v, _ in roles):
            held = [r for v, r in roles if v == node]
            if len(held) > 1:
                raise ConfigError(f"task: node {node} is both {held[0]} and {held[1]}; a node can be "
                                  "fixed by only one condition")


# -- learning ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TapLadder:
    """``[learning.taps]``: the discrete conductance values of a digital potentiometer.

    Parameters
    ----------
    n_taps : int
        Number of wiper positions (AD5220: 128).
    low, high : float
        Range of the controlled quantity: resistances in ohms when
        ``quantity="resistance"``, conductances in siemens otherwise.
    quantity : {"resistance", "conductance"}
        Which quantity the taps step in.
    spacing : {"linear", "log"}
        Equal steps or equal ratios between taps.

    Notes
    -----
    Taps are indexed in order of increasing conductance, so a +1 sign-rule
    step always raises the conductance.
    """

    n_taps: int = 128
    low: float = 100e3 / 128
    high: float = 100e3
    quantity: str = "resistance"
    spacing: str = "linear"

    def __post_init__(self):
        s = "learning.taps"
        _number(s, "n_taps", self.n_taps, integer=True, positive=True)
        _number(s, "low", self.low, positive=True)
        _number(s, "high", self.high, positive=True)
        _choice(s, "quantity", self.quantity, TAP_QUANTITIES)
        _choice(s, "spacing", self.spacing, TAP_SPACINGS)
        if self.n_taps < 2:
            raise ConfigError(f"learning.taps.n_taps: a tap ladder needs at least 2 taps, got {self.n_taps}")
        if not self.low < self.high:
            raise ConfigError(f"learning.taps: the range must satisfy low < high, got low={self.low}, "
                              f"high={self.high}")

    @property
    def conductances(self) -> np.ndarray:
        """Conductance of every tap, ascending (siemens if ``low``/``high`` are SI)."""
        if self.spacing == "linear":
            values = np.linspace(self.low, self.high, self.n_taps)
        else:
            values = np.geomspace(self.low, self.high, self.n_taps)
        k = 1.0 / values if self.quantity == "resistance" else values
        return np.sort(k)

    def nearest_tap(self, conductance) -> np.ndarray:
        """Index of the tap whose conductance is closest to ``conductance``."""
        k = self.conductances
        c = np.asarray(conductance, dtype=float)
        idx = np.clip(np.searchsorted(k, c), 1, len(k) - 1)
        lower_closer = np.abs(c - k[idx - 1]) <= np.abs(k[idx] - c)
        return np.where(lower_closer, idx - 1, idx).astype(np.int64)

    def step(self, tap, direction) -> np.ndarray:
        """Move each tap index by ``direction`` (+1/0/-1), staying on the ladder."""
        return np.clip(np.asarray(tap) + np.asarray(direction, dtype=np.int64), 0, self.n_taps - 1)


@dataclass(frozen=True)
class LearningConfig:
    """``[learning]``: how edges learn, and the range of the element that learns.

    Attributes
    ----------
    rule : {"coupled", "sign"}
        Continuous (power-efficient) coupled learning, or the discrete sign
        rule on a tap ladder.
    batch : {"full", "online"}
        Mean update over all training examples per step, or one example per
        step (cycling through the training set).
    alpha : float
        Learning rate (conductance units per V^2 per unit nudge).
    eta : float
        Nudge, ``0 < eta <= 1``.
    lambda_ : float
        Power-efficiency amplitude lambda in [0, 1] (TOML key ``lambda``).
    kappa : float
        Initial conductance scale (S).
    initial_spread : float
        Relative spread of the initial conductances, in [0, 1).
    k_min, k_max : float
        Conductance range of the element (S).
    deadband : float
        Comparator dead band of the sign rule (V).
    class_margin : float
        Separation pushed into the classification targets (V).
    epoch_steps : int
        Steps between classification target resets (0: the training-set size).
    taps : TapLadder
        Tap ladder of the sign rule.
    """

    rule: str = "coupled"
    batch: str = "full"
    alpha: float = 0.5
    eta: float = 1e-3
    lambda_: float = 0.0
    kappa: float = 1.0
    initial_spread: float = 0.0
    k_min: float = 1e-4
    k_max: float = 1e6
    deadband: float = 0.0
    class_margin: float = 0.5
    epoch_steps: int = 0
    taps: TapLadder = field(default_factory=TapLadder)

    def __post_init__(self):
        s = "learning"
        _choice(s, "rule", self.rule, RULES)
        _choice(s, "batch", self.batch, BATCH_MODES)
        _number(s, "alpha", self.alpha, nonneg=True)
        _number(s, "eta", self.eta, positive=True)
        if self.eta > 1:
            raise ConfigError(f"learning.eta (the nudge) must satisfy 0 < eta <= 1, got {self.eta}")
        _in_range(s, "lambda", self.lambda_, 0.0, 1.0, " (1 = directed aging)")
        _number(s, "kappa", self.kappa, positive=True, unit="S")
        _number(s, "initial_spread", self.initial_spread, nonneg=True)
        if self.initial_spread >= 1:
            raise ConfigError("learning.initial_spread must be below 1 (relative spread of initial conductances)")
        _number(s, "k_min", self.k_min, positive=True, unit="S")
        _number(s, "k_max", self.k_max, positive=True, unit="S")
        if self.k_min >= self.k_max:
            raise ConfigError(f"learning.k_min must be below learning.k_max, got {self.k_min} >= {self.k_max}")
        _number(s, "deadband", self.deadband, nonneg=True, unit="V")
        _number(s, "class_margin", self.class_margin, nonneg=True, unit="V")
        _number(s, "epoch_steps", self.epoch_steps, integer=True, nonneg=True)
        if not isinstance(self.taps, TapLadder):
            raise ConfigError(f"learning.taps must be a tap ladder table, got {self.taps!r}")


# -- engine -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EngineConfig:
    """``[engine]``: which engine runs the scenario and how.

    Attributes
    ----------
    kind : {"synchronous", "per_edge", "vectorized", "auto"}
        ``synchronous`` is the plain trainer; ``auto`` picks the per-edge
        engine up to :data:`AUTO_PER_EDGE_MAX_EDGES` edges.
    settle_time : float
        Seconds after a conductance change before the network shows the new
        equilibrium (0: exact).
    max_rank : int
        Changed edges kept as a low-rank correction of the last factorization
        before refactoring (at most a quarter of the edges).
    lowrank_tolerance : float
        Largest relative Kirchhoff residual a low-rank state may have; past it
        the solver refactors (see :class:`edgesim.solvers.LowRankEquilibrium`).
    cohorts : int
        Vectorised cohorts (results do not depend on it).
    supervisor_period : float
        Seconds between presentations (the scenario default is ``run.step_duration``).
    hardware : str
        Name of the hardware preset the scenario started from ("" for none);
        informational once the scenario is resolved.
    """

    kind: str = "synchronous"
    settle_time: float = 0.0
    max_rank: int = 16
    lowrank_tolerance: float = 1e-10
    cohorts: int = 1
    supervisor_period: float = 1.0
    hardware: str = ""

    def __post_init__(self):
        s = "engine"
        _choice(s, "kind", self.kind, ENGINE_KINDS)
        _number(s, "settle_time", self.settle_time, nonneg=True, unit="s")
        _number(s, "max_rank", self.max_rank, integer=True, nonneg=True)
        _number(s, "lowrank_tolerance", self.lowrank_tolerance, positive=True)
        _number(s, "cohorts", self.cohorts, integer=True, positive=True)
        _number(s, "supervisor_period", self.supervisor_period, positive=True, unit="s")
        if self.hardware:
            _choice(s, "hardware", self.hardware, tuple(PRESETS))

    def resolved_kind(self, n_edges: int) -> str:
        """The engine that runs a network of ``n_edges`` edges."""
        if self.kind == "auto":
            return "per_edge" if n_edges <= AUTO_PER_EDGE_MAX_EDGES else "vectorized"
        return self.kind


#: Solver backends (``solver.backend``): see :mod:`edgesim.linalg`.
SOLVER_BACKENDS = ("auto", "dense", "lu", "cholmod", "cg", "cg-cholmod", "amg")


@dataclass(frozen=True)
class SolverConfig:
    """``[solver]``: how the network equations are solved, for the trainer and the engines.

    Attributes
    ----------
    backend : {"auto", "dense", "lu", "cholmod", "cg", "cg-cholmod", "amg"}
        ``dense``: batched Cholesky of small networks; ``lu``: sparse LU (the
        exact reference); ``cholmod``: CHOLMOD's Cholesky (exact, half the memory;
        needs scikit-sparse); ``cg``: conjugate gradients preconditioned by a kept
        LU of an earlier state; ``cg-cholmod``: the same with a kept CHOLMOD factor
        (the largest networks); ``amg``: the same with an algebraic multigrid
        preconditioner (needs pyamg).  ``auto``: ``dense`` up to 400 nodes, ``lu`` up to
        20,000 nodes, else ``cg`` (from the measurements of ``benchmarks/bench_scale.py``).
    tolerance : float
        Normwise backward error at which the iterative backends stop, in (0, 1e-2].
    newton_tolerance : float
        Nonlinear edges: Newton's method stops when the largest Kirchhoff residual at a node is below this
        fraction of the largest edge current, in (0, 1e-3].
    newton_max_iterations : int
        Nonlinear edges: Newton iterations per solve before it reports that it did not converge.
    """

    backend: str = "auto"
    tolerance: float = 1e-14
    newton_tolerance: float = 1e-12
    newton_max_iterations: int = 100

    def __post_init__(self):
        _choice("solver", "backend", self.backend, SOLVER_BACKENDS)
        _number("solver", "tolerance", self.tolerance, positive=True)
        if not 0 < self.tolerance <= 1e-2:
            raise ConfigError(f"solver.tolerance must lie in (0, 0.01], got {self.tolerance!r}")
        _number("solver", "newton_tolerance", self.newton_tolerance, positive=True)
        if self.newton_tolerance > 1e-3:
            raise ConfigError(f"solver.newton_tolerance must lie in (0, 0.001], got {self.newton_tolerance!r}")
        _number("solver", "newton_max_iterations", self.newton_max_iterations, integer=True, positive=True)


@dataclass(frozen=True)
class EdgeConfig:
    """``[edge]``: the current law of the edges (:mod:`edgesim.edgelaws`).

    ``law = "linear"`` (the default) makes every edge a resistor of conductance
    ``k``.  ``law = "transistor"`` makes it the square-law MOSFET of the 2024
    laboratory networks (:class:`edgesim.edgelaws.TransistorLaw`), whose
    learning degree of freedom is the gate voltage ``V_G`` with
    ``k = S (V_G - V_T)``; the other keys apply to it.

    Attributes
    ----------
    law : {"linear", "transistor"}
    transconductance : float
        ``S`` (A/V^2); Dillavou et al. (PNAS 2024) fitted 8.5e-4 A/V^2.
    threshold : float
        ``V_T`` (V); about 0.62-0.7 V in the laboratory (0.65).
    transconductance_spread : float
        Relative standard deviation of ``S`` from edge to edge (mismatch).
    threshold_spread : float
        Standard deviation of ``V_T`` from edge to edge (V).
    gate_min, gate_max : float
        Range of the gate voltage (V); the laboratory gates reach 8 V.
    channel_length_modulation : float
        ``lambda`` (1/V) of the factor ``1 + lambda |V_DS|``.
    subthreshold : bool
        Conduction below threshold (EKV interpolation) instead of a hard cut-off.
    slope_factor : float
        Subthreshold slope factor ``n``.
    thermal_voltage : float
        ``kT/q`` (V).
    leakage_conductance : float
        Conductance (S) in parallel with every edge (SPICE's ``gmin``); keeps nodes whose transistors are all
        cut off defined.
    """

    law: str = "linear"
    transconductance: float = 8.5e-4
    threshold: float = 0.65
    transconductance_spread: float = 0.0
    threshold_spread: float = 0.0
    gate_min: float = 0.0
    gate_max: float = 8.0
    channel_length_modulation: float = 0.0
    subthreshold: bool = False
    slope_factor: float = 1.5
    thermal_voltage: float = 0.02585
    leakage_conductance: float = 1e-9

    def __post_init__(self):
        s = "edge"
        _choice(s, "law", self.law, EDGE_LAWS)
        _number(s, "transconductance", self.transconductance, positive=True, unit="A/V2")
        _number(s, "threshold", self.threshold, unit="V")
        _number(s, "transconductance_spread", self.transconductance_spread, nonneg=True)
        if self.transconductance_spread >= 0.3:
            raise ConfigError("edge.transconductance_spread must be below 0.3 (a relative spread; larger ones give "
                              "edges a transconductance that is not positive)")
        _number(s, "threshold_spread", self.threshold_spread, nonneg=True, unit="V")
        _number(s, "gate_min", self.gate_min, unit="V")
        _number(s, "gate_max", self.gate_max, unit="V")
        if self.gate_min >= self.gate_max:
            raise ConfigError(f"edge.gate_min must be below edge.gate_max, got {self.gate_min} >= {self.gate_max} V")
        if self.law == "transistor" and self.gate_max <= self.threshold:
            raise ConfigError(f"edge.gate_max = {self.gate_max:g} V is not above the threshold edge.threshold = "
                              f"{self.threshold:g} V: every transistor would be off (k = S (V_G - V_T) <= 0)")
        _number(s, "channel_length_modulation", self.channel_length_modulation, nonneg=True, unit="1/V")
        if not isinstance(self.subthreshold, bool):
            raise ConfigError(f"edge.subthreshold must be true or false, got {self.subthreshold!r}")
        _number(s, "slope_factor", self.slope_factor, positive=True)
        if self.slope_factor < 1:
            raise ConfigError(f"edge.slope_factor (n) must be >= 1, got {self.slope_factor}")
        _number(s, "thermal_voltage", self.thermal_voltage, positive=True, unit="V")
        _number(s, "leakage_conductance", self.leakage_conductance, nonneg=True, unit="S")

    @property
    def nonlinear(self) -> bool:
        return self.law != "linear"



# -- hardware ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClockSpec:
    """``[clock]``: edge clocks.

    Attributes
    ----------
    period : float
        Nominal tick period (s).
    drift_std : float
        Relative standard deviation of the per-edge frequency mismatch.
    phase : str or tuple
        ``"synchronous"`` (all at 0), ``"random"`` (uniform in one period) or
        one phase per edge (s).
    jitter_std : float
        Per-tick timing jitter (s).
    update_probability : float
        Probability that an edge acts on a tick (desynchronous learning).
    """

    period: float = 1.0
    drift_std: float = 0.0
    phase: str | tuple = "synchronous"
    jitter_std: float = 0.0
    update_probability: float = 1.0

    def __post_init__(self):
        s = "clock"
        _number(s, "period", self.period, positive=True, unit="s")
        _number(s, "drift_std", self.drift_std, nonneg=True)
        _number(s, "jitter_std", self.jitter_std, nonneg=True, unit="s")
        _in_range(s, "update_probability", self.update_probability, 0.0, 1.0)
        if isinstance(self.phase, tuple):
            for v in self.phase:
                _number(s, "phase", v, nonneg=True, unit="s")
        elif self.phase not in CLOCK_PHASES:
            raise ConfigError(f"clock.phase must be 'synchronous', 'random' or one value per edge, "
                              f"got {self.phase!r}")


@dataclass(frozen=True)
class ComparatorSpec:
    """``[comparator]``: comparator imperfections (V)."""

    offset_std: float = 0.0
    noise_std: float = 0.0

    def __post_init__(self):
        for key in ("offset_std", "noise_std"):
            _number("comparator", key, getattr(self, key), nonneg=True, unit="V")


@dataclass(frozen=True)
class MemorySpec:
    """``[memory]``: the element that stores an edge's learning degree of freedom.

    Attributes
    ----------
    kind : {"ideal", "taps", "capacitor"}
        Continuous conductance, digital potentiometer, or transistor with a
        gate capacitor.
    step_mismatch_std : float
        Taps: relative per-edge mismatch of the ladder.
    leak_time, leak_time_spread : float
        Capacitor: leak time constant (s, inf = no leak) and its log-normal spread.
    bias_voltage, bias_spread : float
        Capacitor: voltage the gate leaks toward (V) and its per-edge spread.
    transconductance, threshold : float
        Capacitor: ``S`` (A/V^2) and ``V_T`` (V) of ``k = S (V_G - V_T)``.
    pump_gain, window : float
        Capacitor: charge-pump gain (1/(V s)) and learning window (s).
    twin_mismatch_std : float
        Relative mismatch of each edge's free and clamped copies.
    """

    kind: str = "ideal"
    step_mismatch_std: float = 0.0
    leak_time: float = float("inf")
    leak_time_spread: float = 0.0
    bias_voltage: float = 0.0
    bias_spread: float = 0.0
    transconductance: float = 8.5e-4
    threshold: float = 0.65
    pump_gain: float = 1.0 / (1e3 * 2.2e-6)
    window: float = 100e-6
    twin_mismatch_std: float = 0.0

    def __post_init__(self):
        s = "memory"
        _choice(s, "kind", self.kind, MEMORY_KINDS)
        for key in ("step_mismatch_std", "leak_time_spread", "bias_spread", "twin_mismatch_std"):
            _number(s, key, getattr(self, key), nonneg=True)
        _number(s, "leak_time", self.leak_time, positive=True, unit="s (inf: no leak)", allow_inf=True)
        _number(s, "transconductance", self.transconductance, positive=True, unit="A/V2")
        _number(s, "pump_gain", self.pump_gain, nonneg=True, unit="1/(V s)")
        _number(s, "window", self.window, positive=True, unit="s")
        for key in ("bias_voltage", "threshold"):
            _number(s, key, getattr(self, key), unit="V")


@dataclass(frozen=True)
class HardwareSpec:
    """The hardware of autonomous edges: clocks, comparators, memory elements."""

    clock: ClockSpec = field(default_factory=ClockSpec)
    comparator: ComparatorSpec = field(default_factory=ComparatorSpec)
    memory: MemorySpec = field(default_factory=MemorySpec)


#: Hardware presets (``engine.hardware``).  Sources:
#:
#: ``ideal`` — noiseless synchronous edges with continuous conductance (the
#: idealised simulations of Stern et al., APL Mach. Learn. 2, 016114 (2024)
#: and Wycoff et al., J. Chem. Phys. 156, 144903 (2022)).
#:
#: ``digipot2022`` — Dillavou et al., Phys. Rev. Applied 18, 014040 (2022):
#: AD5220 100 kOhm digital potentiometers with 128 taps (the default
#: :class:`TapLadder`), comparator noise about 0.01 V, a 3-5 Hz clock (4 Hz here).
#:
#: ``transistor2024`` — Dillavou et al., PNAS (2024): MOSFET edges in the ohmic
#: region, S = 8.5e-4 A/V^2, V_T about 0.62-0.7 V (0.65 V), gate capacitor
#: 2.2 uF charged through 1 kOhm (pump gain 1/RC), 100 us learning window,
#: conductances in [1e-7, 1e-2] S (see :data:`PRESET_LEARNING`).
PRESETS = {
    "ideal": HardwareSpec(),
    "digipot2022": HardwareSpec(
        clock=ClockSpec(period=0.25),
        comparator=ComparatorSpec(noise_std=0.01),
        memory=MemorySpec(kind="taps"),
    ),
    "transistor2024": HardwareSpec(
        clock=ClockSpec(period=1e-3),
        memory=MemorySpec(kind="capacitor", transconductance=8.5e-4, threshold=0.65,
                          pump_gain=1.0 / (1e3 * 2.2e-6), window=100e-6, bias_voltage=0.0),
    ),
}

#: ``[learning]`` values a preset implies unless the scenario gives them (the element's range).
PRESET_LEARNING: dict[str, dict[str, Any]] = {
    "ideal": {},
    "digipot2022": {},
    "transistor2024": {"k_min": 1e-7, "k_max": 1e-2},
}


def preset(name: str) -> HardwareSpec:
    """The named hardware preset (see :data:`PRESETS`); raises ``KeyError`` listing the known names."""
    if name not in PRESETS:
        raise KeyError(f"unknown hardware preset {name!r}; known presets: {', '.join(PRESETS)}")
    return PRESETS[name]


# -- lambda control ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ControlConfig:
    """``[control]``: how lambda (the gain on the free-network measurement) is set.

    ``constant``: lambda is ``learning.lambda`` throughout.  ``feedback``
    (Stern et al. 2024, Sec. IV): ``d(lambda)/dt = rho lambda ((L_tol / L)^p - 1)``
    with ``L`` a running estimate of the training error, bounded to
    ``[lambda_min, lambda_max]`` and starting at ``learning.lambda``.

    Attributes
    ----------
    kind : {"constant", "feedback"}
    tolerance : float
        ``L_tol``; relative to the initial training error when ``relative``.
    relative : bool
        Tolerance relative to the training error at t = 0 (the normalised error).
    rho : float
        Rate of the controller (1/s).
    p : float
        Exponent (small p: slow controller).
    averaging_time : float
        Time constant (s) of the running error estimate (0: the error just measured).
    lambda_min, lambda_max : float
        Bounds of lambda, ``0 <= lambda_min <= lambda_max <= 1``.
    gain_mismatch_std : float
        Engines: relative per-edge error of the lambda gain (imperfect amplifiers).
    early_stop : bool
        Stop learning (every edge freezes) once the error estimate reaches the
        tolerance: plain coupled learning with early stopping, for comparison.
    """

    kind: str = "constant"
    tolerance: float = 1e-3
    relative: bool = True
    rho: float = 1.0
    p: float = 0.02
    averaging_time: float = 0.0
    lambda_min: float = 0.0
    lambda_max: float = 1.0
    gain_mismatch_std: float = 0.0
    early_stop: bool = False

    def __post_init__(self):
        s = "control"
        _choice(s, "kind", self.kind, CONTROL_KINDS)
        _number(s, "tolerance", self.tolerance, positive=True)
        _number(s, "rho", self.rho, nonneg=True, unit="1/s")
        _number(s, "p", self.p, positive=True)
        _number(s, "averaging_time", self.averaging_time, nonneg=True, unit="s")
        _in_range(s, "lambda_min", self.lambda_min, 0.0, 1.0)
        _in_range(s, "lambda_max", self.lambda_max, 0.0, 1.0)
        if self.lambda_min > self.lambda_max:
            raise ConfigError(f"control.lambda_min must not exceed control.lambda_max, got "
                              f"{self.lambda_min} > {self.lambda_max}")
        _number(s, "gain_mismatch_std", self.gain_mismatch_std, nonneg=True)
        for key in ("relative", "early_stop"):
            if not isinstance(getattr(self, key), bool):
                raise ConfigError(f"control.{key} must be true or false, got {getattr(self, key)!r}")
        if self.early_stop and self.kind == "feedback":
            raise ConfigError("control.early_stop is the plain coupled-learning comparison: it needs "
                              "control.kind = 'constant'")

    @property
    def active(self) -> bool:
        """Whether the controller changes anything (feedback or early stopping)."""
        return self.kind == "feedback" or self.early_stop


# -- damage -----------------------------------------------------------------------------------------
def _step(section, value):
    _number(section, "step", value, nonneg=True)


@dataclass(frozen=True)
class DamageEvent:
    """``[[damage.event]]``: edges that fail in ``mode`` at ``step`` (time ``step * run.step_duration``)."""

    step: float = 0.0
    edges: tuple = ()
    mode: str = "open"

    def __post_init__(self):
        s = "damage.event"
        _step(s, self.step)
        _int_list(s, "edges", self.edges)
        if not self.edges:
            raise ConfigError("damage.event.edges must list at least one edge")
        if any(e < 0 for e in self.edges):
            raise ConfigError(f"damage.event.edges: edge indices are >= 0, got {self.edges}")
        _choice(s, "mode", self.mode, DAMAGE_MODES)


@dataclass(frozen=True)
class RandomFailures:
    """``[damage.random]``: each edge fails once, at a Poisson time with ``rate`` (per edge per step)."""

    rate: float = 0.0
    mode: str = "open"

    def __post_init__(self):
        _number("damage.random", "rate", self.rate, nonneg=True, unit="per edge per step")
        _choice("damage.random", "mode", self.mode, DAMAGE_MODES)


@dataclass(frozen=True)
class Removal:
    """``[[damage.removal]]``: a random ``fraction`` of the edges present fails at ``step``."""

    step: float = 0.0
    fraction: float = 0.1
    mode: str = "open"

    def __post_init__(self):
        _step("damage.removal", self.step)
        _in_range("damage.removal", "fraction", self.fraction, 0.0, 1.0)
        _choice("damage.removal", "mode", self.mode, DAMAGE_MODES)


@dataclass(frozen=True)
class Pruning:
    """``[[damage.pruning]]``: at ``step`` remove the ``n`` edges ranked first by ``criterion``.

    ``error``: the edges whose removal raises the training error most
    (exact removal trials); ``current``: the largest mean squared current;
    ``conductance``: the smallest conductance.  With ``keep_connected``
    (default) an edge whose removal would cut a ground, input or output node
    off from the others is never chosen.  ``fraction``, when given, replaces
    ``n`` by ``round(fraction * edges present)``.
    """

    step: float = 0.0
    n: int = 1
    fraction: float | None = None
    criterion: str = "error"
    mode: str = "open"
    keep_connected: bool = True

    def __post_init__(self):
        _step("damage.pruning", self.step)
        _number("damage.pruning", "n", self.n, integer=True, positive=True)
        if self.fraction is not None:
            _in_range("damage.pruning", "fraction", self.fraction, 0.0, 1.0)
        _choice("damage.pruning", "criterion", self.criterion, PRUNING_CRITERIA)
        _choice("damage.pruning", "mode", self.mode, DAMAGE_MODES)
        if not isinstance(self.keep_connected, bool):
            raise ConfigError(f"damage.pruning.keep_connected must be true or false, got {self.keep_connected!r}")


@dataclass(frozen=True)
class DamageConfig:
    """``[damage]``: when and how edges fail.

    Attributes
    ----------
    event, removal, pruning : tuple
        Explicit failures, random removals of a fraction, targeted pruning.
    random : RandomFailures
        Poisson failures of every edge.
    short_conductance : float
        Conductance of a shorted edge (S; 0: ``learning.k_max``).
    degrade_factor : float
        A degraded edge's ``degrade`` quantity is multiplied by this factor.
    degrade : {"step", "noise", "leak"}
        What degrades: the update step, the comparator noise (engines) or the
        gate-capacitor leak time (engines).
    recovery_multiple : float
        Recovery time: until the error is back below this multiple of its pre-damage value.
    """

    event: tuple = ()
    random: RandomFailures = field(default_factory=RandomFailures)
    removal: tuple = ()
    pruning: tuple = ()
    short_conductance: float = 0.0
    degrade_factor: float = 0.1
    degrade: str = "step"
    recovery_multiple: float = 10.0

    def __post_init__(self):
        for key, cls in (("event", DamageEvent), ("removal", Removal), ("pruning", Pruning)):
            if not all(isinstance(v, cls) for v in getattr(self, key)):
                raise ConfigError(f"damage.{key} must be a list of tables ([[damage.{key}]])")
        _number("damage", "short_conductance", self.short_conductance, nonneg=True, unit="S")
        _number("damage", "degrade_factor", self.degrade_factor, nonneg=True)
        _choice("damage", "degrade", self.degrade, DEGRADE_QUANTITIES)
        _number("damage", "recovery_multiple", self.recovery_multiple, positive=True)
        if self.recovery_multiple < 1:
            raise ConfigError(f"damage.recovery_multiple must be >= 1, got {self.recovery_multiple}")

    @property
    def active(self) -> bool:
        return bool(self.event or self.removal or self.pruning or self.random.rate > 0)

    def check_edges(self, n_edges: int) -> None:
        """Explicit failures must name edges that exist."""
        for item in self.event:
            bad = [e for e in item.edges if e >= n_edges]
            if bad:
                raise ConfigError(f"damage.event.edges: edge {bad[0]} does not exist (the network has edges "
                                  f"0..{n_edges - 1})")


# -- protocols ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PhaseConfig:
    """``[[phase]]``: one part of a protocol; the conductances carry over from the phase before.

    Attributes
    ----------
    steps : int
        Duration in steps (> 0).
    name : str
        Label (default: the task kind).
    task : TaskConfig
        The task of this phase (the scenario's ``[task]`` unless the phase gives one).
    learning : LearningConfig
        The scenario's ``[learning]`` with this phase's keys replaced (the rule may not change).
    damage : DamageConfig
        Failures during this phase (``[phase.damage]``; steps count from the phase's start).
        Removed and frozen edges stay so in the phases after.
    """

    steps: int
    task: TaskConfig
    learning: LearningConfig
    name: str = ""
    damage: DamageConfig = field(default_factory=lambda: DamageConfig())

    def __post_init__(self):
        _number("phase", "steps", self.steps, integer=True, positive=True)
        if not isinstance(self.name, str):
            raise ConfigError(f"phase.name must be a string, got {self.name!r}")
