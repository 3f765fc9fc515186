"""Scenario files: TOML in, a validated and fully resolved :class:`Scenario` out.

A scenario file has the sections ``[run]``, ``[network]``, ``[task]``,
``[learning]`` (with an optional ``[learning.taps]``), ``[engine]``,
``[clock]``, ``[comparator]``, ``[memory]`` and ``[sweep]``, plus an optional
top-level ``title``.  The parser builds the runtime configuration objects of
:mod:`edgesim.config` directly, so every default and every allowed value is
defined there once.  Unknown keys, wrong types and out-of-range values raise
:class:`ScenarioError` naming the key.  See ``docs/scenarios.md``.

Resolution: the hardware sections start from the preset ``engine.hardware``
(or, without one, from ideal hardware whose clock period is
``run.step_duration`` and whose memory follows ``learning.rule``); a preset
may also imply ``[learning]`` values (:data:`edgesim.config.PRESET_LEARNING`).
Keys the file gives override both.  :meth:`Scenario.to_dict` returns the
resolved scenario, every default filled in, which is what result files store
and which re-parses to the same :class:`Scenario`.
"""

from __future__ import annotations

import copy
import difflib
import json
import math
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from .config import (NONLINEAR_TASK_KINDS, PRESET_LEARNING, PRESETS, ClockSpec, ComparatorSpec, ConfigError,
                     ControlConfig, DamageConfig, DamageEvent, EdgeConfig, EngineConfig, HardwareSpec, LearningConfig,
                     MemorySpec, NetworkConfig, PhaseConfig, Pruning, RandomFailures, Removal, RunConfig, SolverConfig,
                     TapLadder, TaskConfig)
from .network import NetworkError, jammed_realizations

__all__ = ["Scenario", "ScenarioError", "load_scenario", "parse_scenario", "apply_overrides", "SWEEPABLE"]

#: Invalid scenario (a :class:`~edgesim.config.ConfigError`, itself a ``ValueError``).
ScenarioError = ConfigError

#: Scenario sections and the configuration class each one builds.
SECTIONS = {"run": RunConfig, "network": NetworkConfig, "task": TaskConfig, "learning": LearningConfig,
            "engine": EngineConfig, "clock": ClockSpec, "comparator": ComparatorSpec, "memory": MemorySpec,
            "control": ControlConfig, "damage": DamageConfig, "solver": SolverConfig, "edge": EdgeConfig}
#: Nested tables: (section class, key) -> the class of the table, or [class] for an array of tables.
NESTED = {(LearningConfig, "taps"): TapLadder, (DamageConfig, "random"): RandomFailures,
          (DamageConfig, "event"): [DamageEvent], (DamageConfig, "removal"): [Removal],
          (DamageConfig, "pruning"): [Pruning]}
HARDWARE_SECTIONS = ("clock", "comparator", "memory")
#: Scenario keys that may be swept, with the section they live in.
SWEEPABLE = {"lambda": "learning", "kappa": "learning", "alpha": "learning", "eta": "learning",
             "update_probability": "clock", "jitter_std": "clock", "drift_std": "clock",
             "noise_std": "comparator", "offset_std": "comparator", "leak_time": "memory",
             "twin_mismatch_std": "memory", "settle_time": "engine", "tolerance": "control",
             "fraction": "damage"}
_FIELD = {"lambda": "lambda_"}  # TOML key -> dataclass field (lambda is a Python keyword)
_KEY = {v: k for k, v in _FIELD.items()}


def _keys(cls, section: str, data) -> dict:
    """The dataclass fields a scenario table sets, checked and with TOML values converted."""
    if not isinstance(data, dict):
        raise ScenarioError(f"[{section}] must be a table, got {data!r}")
    types = {f.name: str(f.type) for f in fields(cls)}
    kwargs = {}
    for key, value in data.items():
        name = _FIELD.get(key, key)
        if name not in types or key.endswith("_"):
            keys = sorted(_KEY.get(n, n) for n in types)
            raise ScenarioError(f"unknown key '{section}.{key}'{_did_you_mean(key, keys, section)}; "
                                f"allowed keys: {', '.join(keys)}")
        nested = NESTED.get((cls, name))
        if isinstance(nested, list):
            if not isinstance(value, list):
                raise ScenarioError(f"{section}.{key} must be an array of tables ([[{section}.{key}]]), got {value!r}")
            value = tuple(_section(nested[0], f"{section}.{key}", v) for v in value)
        elif nested is not None:
            value = _section(nested, f"{section}.{key}", value)
        elif isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        elif isinstance(value, int) and not isinstance(value, bool) and types[name].startswith("float"):
            value = float(value)  # integers are fine where floats are expected
        kwargs[name] = value
    return kwargs


def _did_you_mean(key: str, candidates, section: str) -> str:
    """`` (did you mean 'section.x'?)`` for the nearest valid key, or nothing."""
    close = difflib.get_close_matches(key.split(".")[-1], candidates, n=1, cutoff=0.6)
    return f" (did you mean '{section}.{close[0]}'?)" if close else ""


def _section(cls, section: str, data, base=None):
    kwargs = _keys(cls, section, data)
    try:
        return cls(**kwargs) if base is None else replace(base, **kwargs)
    except TypeError as exc:  # a value of a type the validation cannot even compare
        raise ScenarioError(f"[{section}]: {exc}") from None


@dataclass(frozen=True)
class Scenario:
    """A validated, fully resolved scenario.

    Attributes
    ----------
    run, network, task, learning, engine, hardware, control, damage, solver, edge
        The configuration objects of :mod:`edgesim.config`.
    phases : tuple of PhaseConfig
        A protocol of successive phases (empty: one phase, the scenario itself).
    sweep : dict
        Swept parameter (TOML name) -> tuple of values, ordered as in the file.
    title : str
    """

    run: RunConfig
    network: NetworkConfig
    task: TaskConfig
    learning: LearningConfig
    engine: EngineConfig
    hardware: HardwareSpec
    sweep: dict = field(default_factory=dict)
    title: str = ""
    control: ControlConfig = field(default_factory=ControlConfig)
    damage: DamageConfig = field(default_factory=DamageConfig)
    phases: tuple = ()
    solver: SolverConfig = field(default_factory=SolverConfig)
    edge: EdgeConfig = field(default_factory=EdgeConfig)

    def phase(self, i: int) -> "Scenario":
        """The scenario of phase ``i`` alone: its task, learning and length, no phases."""
        p = self.phases[i]
        return replace(self, task=p.task, learning=p.learning, run=replace(self.run, steps=p.steps), damage=p.damage,
                       phases=())

    @property
    def phase_names(self) -> list[str]:
        return [p.name or p.task.kind for p in self.phases]

    @property
    def dotted_sweep(self) -> dict:
        """The swept scenario-wide keys (``section.key``): each value is a separate run (a sweep part)."""
        return {k: v for k, v in self.sweep.items() if _scenario_wide(k)}

    @property
    def stacked_sweep(self) -> dict:
        """The swept in-process parameters (``lambda``, ``noise_std`` ...): one stack of systems for all values."""
        return {k: v for k, v in self.sweep.items() if not _scenario_wide(k)}

    def point(self, values: dict) -> "Scenario":
        """This scenario at one point of its sweep: the keys of ``values`` set and no longer swept.

        In-process keys (``lambda``, ``noise_std`` ...) are set as by :meth:`with_values`;
        scenario-wide keys (``network.size`` ...) are set in the resolved scenario
        (:meth:`to_dict`), which is then validated again.
        """
        dotted = {k: v for k, v in values.items() if _scenario_wide(k)}
        scenario = self
        if dotted:
            data = self.to_dict()
            for key, value in dotted.items():
                _set_path(data, key.split("."), value)
            data["sweep"] = {k: v for k, v in data["sweep"].items() if k not in dotted}
            scenario = parse_scenario(data)
        short = {k: v for k, v in values.items() if not _scenario_wide(k)}
        if short:
            scenario = replace(scenario.with_values(short),
                               sweep={k: v for k, v in scenario.sweep.items() if k not in short})
        return scenario

    def with_values(self, values: dict) -> "Scenario":
        """This scenario with swept parameters set to ``values`` (name -> value)."""
        learning, engine, hardware, control = _with_values(self.learning, self.engine, self.hardware, self.control,
                                                           values)
        damage = self.damage
        if "fraction" in values:  # every removal and pruning of the schedule takes the swept fraction
            f = values["fraction"]
            damage = replace(damage, removal=tuple(replace(r, fraction=f) for r in damage.removal),
                             pruning=tuple(replace(p, fraction=f) for p in damage.pruning))
        return replace(self, learning=learning, engine=engine, hardware=hardware, control=control, damage=damage)

    def to_dict(self) -> dict:
        """The resolved scenario as plain data (TOML key names); :func:`parse_scenario` reads it back."""
        def table(obj):
            return {_KEY.get(k, k): _plain(v) for k, v in asdict(obj).items() if v is not None}

        data = {"title": self.title, "run": table(self.run), "network": table(self.network),
                "task": table(self.task), "learning": table(self.learning), "engine": table(self.engine),
                "control": table(self.control), "damage": table(self.damage), "solver": table(self.solver),
                "edge": table(self.edge),
                "phase": [{"name": p.name, "steps": p.steps, "task": table(p.task), "learning": table(p.learning),
                           "damage": table(p.damage)} for p in self.phases],
                "sweep": {k: list(v) for k, v in self.sweep.items()}}
        if self.engine.kind != "synchronous":  # hardware applies to the engines only
            for name in HARDWARE_SECTIONS:
                data[name] = table(getattr(self.hardware, name))
        else:
            data["engine"] = {k: v for k, v in data["engine"].items() if k not in _ENGINE_ONLY}
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def _with_values(learning: LearningConfig, engine: EngineConfig, hardware: HardwareSpec, control: ControlConfig,
                 values: dict):
    sections = {"learning": learning, "engine": engine, "clock": hardware.clock,
                "comparator": hardware.comparator, "memory": hardware.memory, "control": control}
    for key, value in values.items():
        name = SWEEPABLE.get(key)
        if name in sections:  # damage fractions are set by Scenario.with_values
            sections[name] = replace(sections[name], **{_FIELD.get(key, key): value})
    return (sections["learning"], sections["engine"],
            HardwareSpec(sections["clock"], sections["comparator"], sections["memory"]), sections["control"])


def _plain(value):
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


#: Engine keys that only mean something for the autonomous-edge engines.
_ENGINE_ONLY = ("settle_time", "hardware")


def parse_scenario(data: dict) -> Scenario:
    """Validate and resolve a scenario given as nested dicts (the parsed TOML)."""
    data = copy.deepcopy(data)
    allowed = set(SECTIONS) | {"sweep", "title", "phase"}
    for key in data:
        if key not in allowed:
            raise ScenarioError(f"unknown key '{key}' at top level; allowed: {', '.join(sorted(allowed))}")
    raw = {name: data.get(name, {}) for name in SECTIONS}
    run = _section(RunConfig, "run", raw["run"])
    network = _section(NetworkConfig, "network", raw["network"])
    task = _section(TaskConfig, "task", raw["task"])
    engine_keys = _keys(EngineConfig, "engine", raw["engine"])
    if not engine_keys.get("supervisor_period"):  # absent or 0: one presentation per step
        engine_keys["supervisor_period"] = run.step_duration
    try:
        engine = EngineConfig(**engine_keys)
    except TypeError as exc:
        raise ScenarioError(f"[engine]: {exc}") from None
    name = engine.hardware
    learning = _section(LearningConfig, "learning", raw["learning"], LearningConfig(**PRESET_LEARNING.get(name, {})))
    hardware = _resolve_hardware(raw, name, run, learning)
    control = _section(ControlConfig, "control", raw["control"])
    sweep = _parse_sweep(data.get("sweep", {}), learning, engine, hardware, control)
    damage = _section(DamageConfig, "damage", raw["damage"])
    phases = _parse_phases(data.get("phase", []), raw, learning)
    if phases:
        total = sum(p.steps for p in phases)
        if "steps" in raw["run"] and raw["run"]["steps"] != total:
            raise ScenarioError(f"run.steps = {raw['run']['steps']} but the phases last {total} steps; leave "
                                "run.steps out (it is the sum of the phases)")
        run = replace(run, steps=total)
        if damage.active:
            raise ScenarioError("a protocol takes its damage per phase: move [damage] into the [phase.damage] of "
                                "the phase it belongs to (steps count from the phase's start)")
    title = data.get("title", "")
    if not isinstance(title, str):
        raise ScenarioError("title must be a string")
    _check_damage(damage, run.steps, engine, "damage", "the run (run.steps")
    for i, phase in enumerate(phases):
        _check_damage(phase.damage, phase.steps, engine, f"phase {i + 1}: phase.damage", "the phase (phase.steps")
    if "fraction" in sweep:
        if phases:
            raise ScenarioError("sweep.fraction cannot be combined with [[phase]] (each phase has its own damage)")
        if not (damage.removal or damage.pruning):
            raise ScenarioError("sweep.fraction sets the fraction of [[damage.removal]] and [[damage.pruning]]: "
                                "the scenario has neither")
    if control.kind == "feedback" and "lambda" in sweep:
        raise ScenarioError("sweep.lambda with control.kind = 'feedback': the controller sets lambda; sweep "
                            "control.tolerance scenarios separately instead")
    if control.kind == "feedback" and learning.lambda_ <= 0:
        raise ScenarioError("control.kind = 'feedback' changes lambda multiplicatively: learning.lambda (its "
                            "starting value) must be > 0")
    solver = _section(SolverConfig, "solver", raw["solver"])
    edge = _section(EdgeConfig, "edge", raw["edge"])
    hardware = _transistor_memory(edge, hardware, raw)
    scenario = Scenario(run, network, task, learning, engine, hardware, sweep, title, control, damage, phases, solver,
                        edge)
    _check_edges(scenario, raw)
    _check_consistency(scenario, raw, sweep)
    _check_dotted_sweep(scenario)
    return scenario


def _check_damage(damage: DamageConfig, steps: int, engine: EngineConfig, where: str, span: str) -> None:
    """Failures inside the run (or phase), and degradations the chosen engine models."""
    for key in ("event", "removal", "pruning"):
        for item in getattr(damage, key):
            if item.step > steps:
                raise ScenarioError(f"{where}.{key}.step = {item.step:g} is after the end of {span} = {steps})")
    degrades = any(item.mode == "degraded" for item in damage.event + damage.removal + damage.pruning) or \
        (damage.random.rate > 0 and damage.random.mode == "degraded")
    if degrades and damage.degrade != "step" and engine.kind == "synchronous":
        raise ScenarioError(f"{where}.degrade = '{damage.degrade}' changes comparator noise or leak, which only the "
                            "autonomous-edge engines model; set engine.kind, or degrade = 'step'")


def _parse_phases(raw_phases, raw: dict, learning: LearningConfig) -> tuple:
    """``[[phase]]`` tables: steps, name, an optional full [task] and [learning] keys over the scenario's."""
    if not isinstance(raw_phases, list) or not all(isinstance(p, dict) for p in raw_phases):
        raise ScenarioError("phase must be an array of tables ([[phase]])")
    phases = []
    for i, item in enumerate(raw_phases):
        unknown = set(item) - {"steps", "name", "task", "learning", "damage"}
        if unknown:
            raise ScenarioError(f"unknown key 'phase.{sorted(unknown)[0]}' in phase {i + 1}; allowed keys: "
                                "damage, learning, name, steps, task")
        if "steps" not in item:
            raise ScenarioError(f"phase {i + 1} has no duration: give phase.steps (> 0)")
        task = _section(TaskConfig, "phase.task", item.get("task", raw["task"]))
        phase_learning = _section(LearningConfig, "phase.learning", item.get("learning", {}), learning)
        if phase_learning.rule != learning.rule:
            raise ScenarioError(f"phase {i + 1}: phase.learning.rule cannot differ from learning.rule (the "
                                "edges' memory carries over)")
        phase_damage = _section(DamageConfig, "phase.damage", item.get("damage", {}))
        try:
            phases.append(PhaseConfig(steps=item["steps"], task=task, learning=phase_learning,
                                      name=item.get("name", ""), damage=phase_damage))
        except ConfigError as exc:
            raise ScenarioError(f"phase {i + 1}: {exc}") from None
    return tuple(phases)


def _resolve_hardware(raw: dict, preset_name: str, run: RunConfig, learning: LearningConfig) -> HardwareSpec:
    base = PRESETS[preset_name] if preset_name else HardwareSpec(
        clock=ClockSpec(period=run.step_duration),
        memory=MemorySpec(kind="taps" if learning.rule == "sign" else "ideal"))
    return HardwareSpec(_section(ClockSpec, "clock", raw["clock"], base.clock),
                        _section(ComparatorSpec, "comparator", raw["comparator"], base.comparator),
                        _section(MemorySpec, "memory", raw["memory"], base.memory))


def _parse_sweep(sweep_raw, learning, engine, hardware, control) -> dict:
    """In-process sweeps are checked here; scenario-wide (dotted) keys by :func:`_check_dotted_sweep`."""
    if not isinstance(sweep_raw, dict):
        raise ScenarioError("[sweep] must be a table of parameter = [values]")
    sweep = {}
    for key, values in _flatten(sweep_raw):
        key = _sweep_key(key)
        if _scenario_wide(key):
            if not isinstance(values, list) or not values:
                raise ScenarioError(f"sweep.{key} must be a non-empty list of values, got {values!r}")
            if any(isinstance(v, (list, dict)) for v in values):
                raise ScenarioError(f"sweep.{key}: each value must be a single number, string or boolean")
            if len(set(map(repr, values))) != len(values):
                raise ScenarioError(f"sweep.{key} lists a value twice: {values!r}")
            sweep[key] = tuple(values)
            continue
        if key == "fraction":
            if not isinstance(values, list) or not all(isinstance(v, (int, float)) and 0 <= v <= 1 for v in values) \
                    or not values:
                raise ScenarioError(f"sweep.fraction must be a non-empty list of numbers in [0, 1], got {values!r}")
            sweep[key] = tuple(float(v) for v in values)
            continue
        if key not in SWEEPABLE:
            raise ScenarioError(f"unknown key 'sweep.{key}'{_did_you_mean(key, list(SWEEPABLE), 'sweep')}; "
                                f"sweepable parameters: {', '.join(SWEEPABLE)}")
        if not isinstance(values, list) or not values:
            raise ScenarioError(f"sweep.{key} must be a non-empty list of numbers, got {values!r}")
        vals = []
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ScenarioError(f"sweep.{key} must be a number in each entry, got {v!r}")
            if not math.isfinite(v) and not (key == "leak_time" and v == math.inf):
                raise ScenarioError(f"sweep.{key} must be finite, got {v!r}")
            _with_values(learning, engine, hardware, control, {key: float(v)})  # each value must be valid there
            vals.append(float(v))
        sweep[key] = tuple(vals)
    return sweep


def _flatten(table: dict, prefix: str = ""):
    """(dotted key, value) of a table: TOML reads ``network.size = [...]`` as a nested table."""
    for key, value in table.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _scenario_wide(key: str) -> bool:
    """Whether a (normalised) sweep key names a scenario value (``network.size``) rather than an in-process
    parameter (``lambda``)."""
    return "." in key


def _sweep_key(key: str) -> str:
    """A sweep key as stored: ``section.key`` of an in-process parameter becomes its short name."""
    parts = key.split(".")
    if len(parts) == 2 and SWEEPABLE.get(parts[1]) == parts[0]:
        return parts[1]
    return key


#: Scenario-wide keys that cannot be swept, and why.
_NOT_SWEEPABLE = {"run.seed": "each realization already has its own seed: raise run.realizations",
                  "run.realizations": "realizations are a dimension of every result already",
                  # a swept value is set in the resolved scenario, where the values derived from these keys are
                  # already filled in (the preset's hardware and learning values, the clock and supervisor
                  # periods, the memory kind): sweeping them would leave those at the base scenario's values
                  "engine.hardware": "other values derive from it (the preset's sections); sweep it in separate "
                                     "scenarios",
                  "run.step_duration": "other values derive from it (clock and supervisor periods); sweep it in "
                                       "separate scenarios",
                  "learning.rule": "other values derive from it (the memory kind); sweep it in separate scenarios"}


def _check_dotted_sweep(scenario: "Scenario") -> None:
    """Every value of every scenario-wide (dotted) sweep key must make a valid scenario."""
    dotted = scenario.dotted_sweep
    if not dotted:
        return
    base = scenario.to_dict()
    base["sweep"] = {k: v for k, v in base["sweep"].items() if not _scenario_wide(k)}
    for key, values in dotted.items():
        parts = key.split(".")
        if key in _NOT_SWEEPABLE:
            raise ScenarioError(f"sweep.{key} cannot be swept: {_NOT_SWEEPABLE[key]}")
        if parts[0] not in SECTIONS:
            raise ScenarioError(f"unknown key 'sweep.{key}': '{parts[0]}' is not a scenario section"
                                f"{_did_you_mean(parts[0], list(SECTIONS), 'sweep')}; sections: "
                                f"{', '.join(SECTIONS)}")
        if scenario.phases and parts[0] in ("task", "learning", "damage"):
            raise ScenarioError(f"sweep.{key}: a protocol ([[phase]]) takes its {parts[0]} per phase; sweep it "
                                "in separate scenarios")
        for value in values:
            data = copy.deepcopy(base)
            _set_path(data, parts, value)
            try:
                parse_scenario(data)
            except ScenarioError as exc:
                raise ScenarioError(f"sweep.{key} = {value!r}: {exc}") from None


def _set_path(data: dict, parts: list[str], value) -> None:
    node = data
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ScenarioError(f"sweep.{'.'.join(parts)}: {p} is not a table")
    node[parts[-1]] = value


def _transistor_memory(edge: EdgeConfig, hardware: HardwareSpec, raw: dict) -> HardwareSpec:
    """With transistor edges the gate memory converts with the transistor's own ``S`` and ``V_T`` (given once, in
    [edge])."""
    if edge.law != "transistor":
        return hardware
    for key in ("transconductance", "threshold"):
        if key in raw["memory"] and raw["memory"][key] != getattr(edge, key):
            raise ScenarioError(f"memory.{key} = {raw['memory'][key]} differs from edge.{key} = {getattr(edge, key)}: "
                                f"with edge.law = 'transistor' give the transistor's {key} once, as edge.{key}")
    return replace(hardware, memory=replace(hardware.memory, transconductance=edge.transconductance,
                                            threshold=edge.threshold))


def _check_edges(scenario: Scenario, raw: dict) -> None:
    """Tasks that need nonlinear edges, solvers that can solve them, and gate voltages inside the gate range."""
    edge = scenario.edge
    kinds = [scenario.task.kind] + [p.task.kind for p in scenario.phases]
    for kind in kinds:
        if kind in NONLINEAR_TASK_KINDS and not edge.nonlinear:
            raise ScenarioError(
                f"task.kind = '{kind}' needs nonlinear edges, but edge.law is 'linear': the outputs of a linear "
                "resistor network are linear in its inputs, so it cannot learn this task; set [edge] law = "
                "'transistor'")
    if not edge.nonlinear:
        return
    if scenario.solver.backend not in ("auto", "dense", "lu"):
        raise ScenarioError(f"solver.backend = '{scenario.solver.backend}' cannot solve transistor networks (Newton's "
                            "Jacobian is not symmetric); use 'auto', 'dense' or 'lu'")
    low, high = edge.gate_min, edge.gate_max
    learnings = [scenario.learning] + [p.learning for p in scenario.phases]
    kappas = [(lr.kappa, lr.initial_spread) for lr in learnings]
    kappas += [(v, scenario.learning.initial_spread) for v in scenario.sweep.get("kappa", ())]
    for kappa, spread in kappas:
        for k in (kappa * (1 - spread), kappa * (1 + spread)):
            gate = edge.threshold + k / edge.transconductance
            if not low <= gate <= high:
                raise ScenarioError(
                    f"learning.kappa = {kappa:g} S (initial_spread {spread:g}) puts initial conductances at {k:.3g} "
                    f"S, which needs a gate voltage of {gate:.3g} V (V_T + k / S), outside the gate range "
                    f"[edge.gate_min, edge.gate_max] = [{low:g}, {high:g}] V; the gate range allows k between "
                    f"{edge.transconductance * max(low - edge.threshold, 0):.3g} and "
                    f"{edge.transconductance * (high - edge.threshold):.3g} S")
    memory = scenario.hardware.memory
    if scenario.engine.kind != "synchronous" and memory.kind == "capacitor" and not low <= memory.bias_voltage <= high:
        raise ScenarioError(f"memory.bias_voltage = {memory.bias_voltage:g} V (the voltage a leaky gate relaxes to) "
                            f"is outside the gate range [edge.gate_min, edge.gate_max] = [{low:g}, {high:g}] V")


def _check_consistency(scenario: Scenario, raw: dict, sweep: dict) -> None:
    net = scenario.network
    if net.kind == "jammed" and "network.size" not in sweep:  # found now, not in a worker hours later
        try:
            available = jammed_realizations(net.size)
        except NetworkError as exc:
            raise ScenarioError(f"network.size: {exc}") from None
        if net.realization + scenario.run.realizations - 1 > available:
            raise ScenarioError(
                f"network.realization = {net.realization} with {scenario.run.realizations} realizations needs "
                f"jammed network {net.realization + scenario.run.realizations - 1}, but only {available} of size "
                f"{net.size} are shipped")
    rule, memory = scenario.learning.rule, scenario.hardware.memory.kind
    if (memory == "taps") != (rule == "sign"):
        given = "memory.kind" if "kind" in raw["memory"] else f"engine.hardware = '{scenario.engine.hardware}'"
        raise ScenarioError(
            f"{given} gives memory kind '{memory}', which does not match learning.rule = '{rule}' "
            "(taps learn by the sign rule: set learning.rule = 'sign'; ideal and capacitor elements learn "
            "continuously: set learning.rule = 'coupled')")
    if scenario.engine.kind == "synchronous":
        hardware = [f"{name}.{k}" for name in HARDWARE_SECTIONS for k in raw[name]]
        hardware += [f"sweep.{k}" for k in sweep if SWEEPABLE.get(k) in HARDWARE_SECTIONS + ("engine",)]
        hardware += [f"engine.{k}" for k in _ENGINE_ONLY if raw["engine"].get(k)]
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
        if len(parts) < 2 and parts[0] not in ("title", "phase", "sweep"):
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
    network = data.get("network", {})
    if isinstance(network, dict) and isinstance(network.get("path"), str) and network["path"] \
            and not Path(network["path"]).is_absolute():
        network["path"] = str((path.parent / network["path"]).resolve())  # relative to the scenario file
    return parse_scenario(data)
