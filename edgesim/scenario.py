"""Typed scenario configuration: TOML in, validated frozen dataclasses out.

A scenario file has the sections ``[run]``, ``[network]``, ``[task]``,
``[learning]`` (with an optional ``[learning.taps]``) and ``[sweep]``, plus
an optional top-level ``title``.  Every key is checked: unknown keys, wrong
types and out-of-range values raise :class:`ScenarioError` naming the key.
See ``docs/scenarios.md`` for the full reference.
"""

from __future__ import annotations

import copy
import json
import math
import tomllib
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = ["Scenario", "ScenarioError", "load_scenario", "parse_scenario", "apply_overrides",
           "SWEEPABLE"]


class ScenarioError(ValueError):
    """A scenario file or override is invalid; the message names the key."""


NETWORK_KINDS = ("jammed", "square_lattice", "divider", "lab", "transistor_lattice", "edge_list")
TASK_KINDS = ("edge_regression", "node_regression", "allostery", "iris", "divider")
ENGINE_KINDS = ("synchronous", "per_edge", "vectorized", "auto")
PRESET_NAMES = ("ideal", "digipot2022", "transistor2024")
#: Scenario keys that may be swept, with the section they live in.
SWEEPABLE = {"lambda": "learning", "kappa": "learning", "alpha": "learning", "eta": "learning",
             "update_probability": "clock", "jitter_std": "clock", "drift_std": "clock",
             "noise_std": "comparator", "offset_std": "comparator", "leak_time": "memory",
             "twin_mismatch_std": "memory", "settle_time": "engine"}


def _number(section, key, value, *, integer=False, positive=False, nonneg=False, unit=None):
    kind = "an integer" if integer else "a number"
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if not ok or isinstance(value, bool):
        raise ScenarioError(f"{section}.{key} must be {kind}, got {value!r}")
    if not math.isfinite(value):
        raise ScenarioError(f"{section}.{key} must be finite, got {value!r}")
    if positive and value <= 0:
        raise ScenarioError(f"{section}.{key} must be > 0{' ' + unit if unit else ''}, got {value!r}")
    if nonneg and value < 0:
        raise ScenarioError(f"{section}.{key} must be >= 0{' ' + unit if unit else ''}, got {value!r}")
    return value


def _int_list(section, key, value, length=None):
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ScenarioError(f"{section}.{key} must be a list of integers (node indices), got {value!r}")
    if length is not None and len(value) != length:
        raise ScenarioError(f"{section}.{key} must list {length} nodes, got {len(value)}")
    return tuple(value)


def _float_list(section, key, value, allow_inf=False):
    if not isinstance(value, list) or not value:
        raise ScenarioError(f"{section}.{key} must be a non-empty list of numbers, got {value!r}")
    return tuple(float(v) if allow_inf and v == math.inf else float(_number(section, key, v)) for v in value)


def _choice(section, key, value, options):
    if value not in options:
        raise ScenarioError(f"{section}.{key} must be one of {', '.join(map(repr, options))}; got {value!r}")
    return value


@dataclass(frozen=True)
class RunSection:
    """``[run]``: length, recording and seed of a run."""

    seed: int = 0
    steps: int = 1000
    step_duration: float = 1.0
    record_points: int = 100
    record_every: int = 0
    conductance_every: int = 1
    realizations: int = 1
    max_stack: int = 256

    def check(self):
        s = "run"
        _number(s, "seed", self.seed, integer=True, nonneg=True)
        _number(s, "steps", self.steps, integer=True, nonneg=True)
        _number(s, "step_duration", self.step_duration, positive=True, unit="s")
        _number(s, "record_points", self.record_points, integer=True, positive=True)
        _number(s, "record_every", self.record_every, integer=True, nonneg=True)
        _number(s, "conductance_every", self.conductance_every, integer=True, positive=True)
        _number(s, "realizations", self.realizations, integer=True, positive=True)
        _number(s, "max_stack", self.max_stack, integer=True, positive=True)


@dataclass(frozen=True)
class NetworkSection:
    """``[network]``: which network to build."""

    kind: str = "lab"
    size: int = 64
    realization: int = 1
    nx: int = 10
    ny: int = 0
    periodic: bool = False
    path: str = ""

    def check(self):
        s = "network"
        _choice(s, "kind", self.kind, NETWORK_KINDS)
        _number(s, "size", self.size, integer=True, positive=True)
        _number(s, "realization", self.realization, integer=True, positive=True)
        _number(s, "nx", self.nx, integer=True, positive=True)
        _number(s, "ny", self.ny, integer=True, nonneg=True)
        if not isinstance(self.path, str):
            raise ScenarioError(f"network.path must be a file name (string), got {self.path!r}")
        if not isinstance(self.periodic, bool):
            raise ScenarioError(f"network.periodic must be true or false, got {self.periodic!r}")
        if self.kind == "edge_list" and not self.path:
            raise ScenarioError("network.path is required for kind = 'edge_list'")


@dataclass(frozen=True)
class TaskSection:
    """``[task]``: what the network learns."""

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

    def check(self):
        s = "task"
        _choice(s, "kind", self.kind, TASK_KINDS)
        for key in ("n_sources", "n_targets", "n_train", "n_test", "train_per_class", "steps_per_target"):
            _number(s, key, getattr(self, key), integer=True, positive=True)
        for key in ("coefficient_min", "coefficient_max", "input_min", "input_max", "input_voltage"):
            _number(s, key, getattr(self, key))
        _number(s, "ground", self.ground, integer=True)
        if self.coefficient_min > self.coefficient_max:
            raise ScenarioError(f"task.coefficient_min must not exceed task.coefficient_max, got "
                                f"{self.coefficient_min} > {self.coefficient_max}")
        if self.input_min >= self.input_max:
            raise ScenarioError(f"task.input_min must be below task.input_max, got {self.input_min} >= {self.input_max}")
        node_kinds = ("node_regression", "allostery", "iris")
        if self.kind in node_kinds:
            if self.ground < 0:
                raise ScenarioError(f"task.ground (the 0 V node) is required for task kind {self.kind!r}")
            _int_list(s, "input_nodes", list(self.input_nodes), 4 if self.kind == "iris" else None)
            _int_list(s, "output_nodes", list(self.output_nodes), 3 if self.kind == "iris" else None)
            if not self.input_nodes or not self.output_nodes:
                raise ScenarioError(f"task.input_nodes and task.output_nodes are required for task kind {self.kind!r}")
            roles = [(self.ground, "ground")] + [(v, "input") for v in self.input_nodes] \
                + [(v, "output") for v in self.output_nodes]
            for node in dict.fromkeys(v for v, _ in roles):
                held = [r for v, r in roles if v == node]
                if len(held) > 1:
                    raise ScenarioError(f"task: node {node} is both {held[0]} and {held[1]}; a node can be "
                                        "fixed by only one condition")
        if self.kind == "iris" and self.train_per_class >= 50:
            raise ScenarioError("task.train_per_class must be below 50 (Iris has 50 flowers per species; "
                                "the rest form the test set)")
        if self.kind == "allostery":
            if len(self.input_voltages) != len(self.input_nodes):
                raise ScenarioError("task.input_voltages needs one voltage per input node")
            if len(self.output_voltages) != len(self.output_nodes):
                raise ScenarioError("task.output_voltages needs one voltage per output node")
        if self.kind == "node_regression":
            shape = (len(self.output_nodes), len(self.input_nodes))
            rows = self.coefficients
            if len(rows) != shape[0] or any(not isinstance(r, tuple) or len(r) != shape[1] for r in rows) \
                    or any(isinstance(v, bool) or not isinstance(v, (int, float)) for r in rows for v in r):
                raise ScenarioError(f"task.coefficients must be a {shape[0]} x {shape[1]} list of lists "
                                    "(one row per output node)")
        if self.kind == "divider" and not self.targets:
            raise ScenarioError("task.targets (list of desired output voltages) is required for task kind 'divider'")


@dataclass(frozen=True)
class TapsSection:
    """``[learning.taps]``: the digital potentiometer of the sign rule."""

    n_taps: int = 128
    low: float = 100e3 / 128
    high: float = 100e3
    quantity: str = "resistance"
    spacing: str = "linear"

    def check(self):
        s = "learning.taps"
        _number(s, "n_taps", self.n_taps, integer=True, positive=True)
        _number(s, "low", self.low, positive=True)
        _number(s, "high", self.high, positive=True)
        _choice(s, "quantity", self.quantity, ("resistance", "conductance"))
        _choice(s, "spacing", self.spacing, ("linear", "log"))
        if self.n_taps < 2 or self.low >= self.high:
            raise ScenarioError("learning.taps needs n_taps >= 2 and low < high")


@dataclass(frozen=True)
class LearningSection:
    """``[learning]``: the rule and the edge element."""

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
    taps: TapsSection = field(default_factory=TapsSection)

    def check(self):
        s = "learning"
        _choice(s, "rule", self.rule, ("coupled", "sign"))
        _choice(s, "batch", self.batch, ("full", "online"))
        _number(s, "alpha", self.alpha, nonneg=True)
        _number(s, "eta", self.eta, positive=True)
        if self.eta > 1:
            raise ScenarioError(f"learning.eta (the nudge) must satisfy 0 < eta <= 1, got {self.eta}")
        _number(s, "lambda", self.lambda_)
        if not 0 <= self.lambda_ <= 1:
            raise ScenarioError(f"learning.lambda must lie in [0, 1] (1 = directed aging), got {self.lambda_}")
        _number(s, "kappa", self.kappa, positive=True, unit="S")
        _number(s, "initial_spread", self.initial_spread, nonneg=True)
        if self.initial_spread >= 1:
            raise ScenarioError("learning.initial_spread must be below 1 (relative spread of initial conductances)")
        _number(s, "k_min", self.k_min, positive=True, unit="S")
        _number(s, "k_max", self.k_max, positive=True, unit="S")
        if self.k_min >= self.k_max:
            raise ScenarioError(f"learning.k_min must be below learning.k_max, got {self.k_min} >= {self.k_max}")
        _number(s, "deadband", self.deadband, nonneg=True, unit="V")
        _number(s, "class_margin", self.class_margin, nonneg=True, unit="V")
        _number(s, "epoch_steps", self.epoch_steps, integer=True, nonneg=True)
        self.taps.check()


@dataclass(frozen=True)
class EngineSection:
    """``[engine]``: which engine runs the scenario."""

    kind: str = "synchronous"
    settle_time: float = 0.0
    max_rank: int = 16
    cohorts: int = 1
    supervisor_period: float = 0.0
    hardware: str = ""

    def check(self):
        s = "engine"
        _choice(s, "kind", self.kind, ENGINE_KINDS)
        _number(s, "settle_time", self.settle_time, nonneg=True, unit="s")
        _number(s, "max_rank", self.max_rank, integer=True, nonneg=True)
        _number(s, "cohorts", self.cohorts, integer=True, positive=True)
        _number(s, "supervisor_period", self.supervisor_period, nonneg=True, unit="s")
        if self.hardware:
            _choice(s, "hardware", self.hardware, PRESET_NAMES)


@dataclass(frozen=True)
class ClockSection:
    """``[clock]``: edge clocks (unset keys come from the hardware preset)."""

    period: float | None = None
    drift_std: float | None = None
    phase: Any = None
    jitter_std: float | None = None
    update_probability: float | None = None

    def check(self):
        s = "clock"
        if self.period is not None:
            _number(s, "period", self.period, positive=True, unit="s")
        for key in ("drift_std", "jitter_std"):
            if getattr(self, key) is not None:
                _number(s, key, getattr(self, key), nonneg=True)
        if self.update_probability is not None:
            _number(s, "update_probability", self.update_probability)
            if not 0 <= self.update_probability <= 1:
                raise ScenarioError(f"clock.update_probability must lie in [0, 1], got {self.update_probability}")
        if self.phase is not None and not isinstance(self.phase, tuple):
            _choice(s, "phase", self.phase, ("synchronous", "random"))
        if isinstance(self.phase, tuple):
            for v in self.phase:
                _number(s, "phase", v, nonneg=True, unit="s")


@dataclass(frozen=True)
class ComparatorSection:
    """``[comparator]``: comparator imperfections in volts."""

    offset_std: float | None = None
    noise_std: float | None = None

    def check(self):
        for key in ("offset_std", "noise_std"):
            if getattr(self, key) is not None:
                _number("comparator", key, getattr(self, key), nonneg=True, unit="V")


@dataclass(frozen=True)
class MemorySection:
    """``[memory]``: the element that stores each edge's conductance."""

    kind: str | None = None
    step_mismatch_std: float | None = None
    leak_time: float | None = None
    leak_time_spread: float | None = None
    bias_voltage: float | None = None
    bias_spread: float | None = None
    transconductance: float | None = None
    threshold: float | None = None
    pump_gain: float | None = None
    window: float | None = None
    twin_mismatch_std: float | None = None

    def check(self):
        s = "memory"
        if self.kind is not None:
            _choice(s, "kind", self.kind, ("ideal", "taps", "capacitor"))
        for key in ("step_mismatch_std", "leak_time_spread", "bias_spread", "twin_mismatch_std"):
            if getattr(self, key) is not None:
                _number(s, key, getattr(self, key), nonneg=True)
        for key, unit in (("leak_time", "s"), ("transconductance", "A/V2"), ("pump_gain", "1/(V s)"),
                          ("window", "s")):
            value = getattr(self, key)
            if value is not None:
                if isinstance(value, (int, float)) and not isinstance(value, bool) and value == float("inf"):
                    continue
                _number(s, key, value, positive=True, unit=unit)
        for key in ("bias_voltage", "threshold"):
            if getattr(self, key) is not None:
                _number(s, key, getattr(self, key), unit="V")


_SECTIONS = {"run": RunSection, "network": NetworkSection, "task": TaskSection, "learning": LearningSection,
             "engine": EngineSection, "clock": ClockSection, "comparator": ComparatorSection,
             "memory": MemorySection}
_RENAMED = {"lambda": "lambda_"}  # TOML key -> dataclass field (lambda is a Python keyword)


def _build(cls, section: str, data: dict):
    if not isinstance(data, dict):
        raise ScenarioError(f"[{section}] must be a table, got {data!r}")
    names = {f.name for f in fields(cls)}
    public = sorted("lambda" if n == "lambda_" else n for n in names)
    kwargs = {}
    for key, value in data.items():
        attr = _RENAMED.get(key, key)
        if attr not in names or key.endswith("_"):
            raise ScenarioError(f"unknown key '{section}.{key}'; allowed keys: {', '.join(public)}")
        if attr == "taps":
            value = _build(TapsSection, "learning.taps", value)
        elif isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        kwargs[attr] = value
    # Integers are fine where floats are expected.
    for f in fields(cls):
        wants_float = (f.default is not MISSING and isinstance(f.default, float)) or "float" in str(f.type)
        if f.name in kwargs and wants_float and isinstance(kwargs[f.name], int) \
                and not isinstance(kwargs[f.name], bool):
            kwargs[f.name] = float(kwargs[f.name])
    obj = cls(**kwargs)
    obj.check()
    return obj


@dataclass(frozen=True)
class Scenario:
    """A validated scenario.

    Attributes
    ----------
    run, network, task, learning : section dataclasses
    sweep : dict
        Swept parameter name -> tuple of values (ordered as in the file).
    title : str
    source : dict
        The scenario as plain data (after overrides), stored in result files.
    """

    run: RunSection
    network: NetworkSection
    task: TaskSection
    learning: LearningSection
    engine: EngineSection
    clock: ClockSection
    comparator: ComparatorSection
    memory: MemorySection
    sweep: dict
    title: str = ""
    source: dict = field(default_factory=dict, compare=False)

    def to_json(self) -> str:
        return json.dumps(self.source, sort_keys=True)


def parse_scenario(data: dict) -> Scenario:
    """Validate a scenario given as nested dicts (the parsed TOML)."""
    data = copy.deepcopy(data)
    allowed = set(_SECTIONS) | {"sweep", "title"}
    for key in data:
        if key not in allowed:
            raise ScenarioError(f"unknown key '{key}' at top level; allowed: {', '.join(sorted(allowed))}")
    sections = {name: _build(cls, name, data.get(name, {})) for name, cls in _SECTIONS.items()}
    sweep_raw = data.get("sweep", {})
    if not isinstance(sweep_raw, dict):
        raise ScenarioError("[sweep] must be a table of parameter = [values]")
    sweep = {}
    for key, values in sweep_raw.items():
        if key not in SWEEPABLE:
            raise ScenarioError(f"unknown key 'sweep.{key}'; sweepable parameters: {', '.join(SWEEPABLE)}")
        vals = _float_list("sweep", key, values, allow_inf=key == "leak_time")
        for v in vals:  # each value must be valid where it would be set
            section = SWEEPABLE[key]
            patched = dict(data.get(section, {}))
            patched[key] = v
            _build(_SECTIONS[section], section, patched)
        sweep[key] = vals
    title = data.get("title", "")
    if not isinstance(title, str):
        raise ScenarioError("title must be a string")
    _check_engine_consistency(sections, sweep)
    return Scenario(sweep=sweep, title=title, source=data, **sections)


def _check_engine_consistency(sections: dict, sweep: dict) -> None:
    rule, memory = sections["learning"].rule, sections["memory"].kind
    if memory == "taps" and rule != "sign":
        raise ScenarioError("memory.kind = 'taps' learns by the sign rule: set learning.rule = 'sign'")
    if memory in ("ideal", "capacitor") and rule != "coupled":
        raise ScenarioError(f"memory.kind = '{memory}' learns continuously: set learning.rule = 'coupled'")
    if sections["engine"].kind == "synchronous":
        hardware = [f"{name}.{k}" for name in ("clock", "comparator", "memory")
                    for k, v in vars(sections[name]).items() if v is not None]
        hardware += [f"sweep.{k}" for k in sweep if SWEEPABLE[k] in ("clock", "comparator", "memory", "engine")]
        if sections["engine"].hardware:
            hardware.append("engine.hardware")
        if sections["engine"].settle_time:
            hardware.append("engine.settle_time")
        if hardware:
            raise ScenarioError(
                f"{', '.join(hardware)} only apply to the autonomous-edge engines, but engine.kind is "
                "'synchronous' (ideal, clocked edges); set engine.kind = 'per_edge', 'vectorized' or 'auto'")


def _parse_value(text: str):
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # a bare word is a string


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``section.key=value`` overrides (values in TOML syntax) to scenario data."""
    data = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ScenarioError(f"override {item!r} must look like section.key=value")
        path, text = item.split("=", 1)
        parts = path.strip().split(".")
        if len(parts) < 2 and parts[0] != "title":
            raise ScenarioError(f"override {item!r} must name a section and a key, e.g. run.steps=100")
        node = data
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ScenarioError(f"override {item!r}: {p} is not a table")
        node[parts[-1]] = _parse_value(text.strip())
    return data


def load_scenario(path: str | Path, overrides: list[str] | None = None, seed: int | None = None) -> Scenario:
    """Read, override and validate a TOML scenario file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ScenarioError(f"scenario file {path} does not exist") from None
    except IsADirectoryError:
        raise ScenarioError(f"scenario path {path} is a folder, not a TOML file") from None
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"scenario file {path} is not valid TOML: {exc}") from None
    data = apply_overrides(data, overrides or [])
    if seed is not None:
        data.setdefault("run", {})["seed"] = seed
    return parse_scenario(data)

