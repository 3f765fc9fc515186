"""Edge hardware: clocks, comparators and memory elements as pure functions of arrays.

Every per-edge parameter and per-tick draw comes from the counter-based
generator of :mod:`edgesim.seeding`, keyed by ``(seed, purpose, edge, counter)``,
so an edge's behaviour never depends on the order in which events execute.

Clock
    Tick ``n`` of edge ``e`` happens at ``phase_e + n * period_e + jitter_{e,n}``
    with ``period_e = period * (1 + drift_std * z_e)``; the jitter is normal
    with standard deviation ``jitter_std`` seconds, truncated at
    ``+-0.45 period_e`` so ticks stay in order.  With desynchronous gating the
    edge acts on a tick with probability ``update_probability``.
Comparator
    Measures the drop magnitudes ``|dV_F|`` and ``|dV_C|`` (RMS over the
    examples presented); the clamped reading carries a fixed per-edge offset
    (``offset_std``) and a fresh noise draw per comparison (``noise_std``).
Memory
    ``ideal``: continuous conductance, coupled-learning update, clipped.
    ``taps``: digital potentiometer, one tap per update by the sign rule, with a
    per-edge multiplicative mismatch of the ladder (``step_mismatch_std``).
    ``capacitor``: transistor edge whose gate voltage ``V_G`` is held on a
    leaky capacitor; conductance ``S (V_G - V_T)`` (ohmic region, linear in the
    overdrive), a charge pump adds ``pump_gain * window * signal`` volts per
    update, and between updates ``V_G`` relaxes to the edge's bias voltage
    with time constant ``leak_time``.  The window is the nominal learning
    window scaled by the actual tick interval over the nominal period, so
    clock jitter changes the charge delivered.
Twin mismatch
    The clamped copy of edge ``e`` has conductance ``k_e (1 + twin_mismatch_std z_e)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .rules import TapLadder
from .seeding import normal, uniform

__all__ = ["ClockSpec", "ComparatorSpec", "MemorySpec", "HardwareSpec", "EdgeParameters", "PRESETS",
           "preset", "edge_parameters", "tick_times", "acts", "comparator_noise", "capacitor_conductance",
           "capacitor_relax", "with_overrides"]


@dataclass(frozen=True)
class ClockSpec:
    """Edge clocks.

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
        if not self.period > 0:
            raise ValueError(f"clock.period must be > 0 s, got {self.period}")
        if self.drift_std < 0 or self.jitter_std < 0:
            raise ValueError("clock.drift_std and clock.jitter_std must be >= 0")
        if not 0 <= self.update_probability <= 1:
            raise ValueError(f"clock.update_probability must lie in [0, 1], got {self.update_probability}")
        if isinstance(self.phase, str) and self.phase not in ("synchronous", "random"):
            raise ValueError(f"clock.phase must be 'synchronous', 'random' or one value per edge, got {self.phase!r}")


@dataclass(frozen=True)
class ComparatorSpec:
    """Comparator imperfections (volts)."""

    offset_std: float = 0.0
    noise_std: float = 0.0
    deadband: float = 0.0

    def __post_init__(self):
        for name in ("offset_std", "noise_std", "deadband"):
            if getattr(self, name) < 0:
                raise ValueError(f"comparator.{name} must be >= 0 V, got {getattr(self, name)}")


@dataclass(frozen=True)
class MemorySpec:
    """The element that stores an edge's learning degree of freedom."""

    kind: str = "ideal"
    k_min: float = 1e-4
    k_max: float = 1e6
    taps: TapLadder = field(default_factory=TapLadder)
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
        if self.kind not in ("ideal", "taps", "capacitor"):
            raise ValueError(f"memory.kind must be 'ideal', 'taps' or 'capacitor', got {self.kind!r}")
        if not self.leak_time > 0:
            raise ValueError(f"memory.leak_time must be > 0 s (inf: no leak), got {self.leak_time}")
        if not 0 < self.k_min < self.k_max:
            raise ValueError(f"memory conductance range must satisfy 0 < k_min < k_max, got {self.k_min}, {self.k_max}")
        for name in ("step_mismatch_std", "leak_time_spread", "bias_spread", "twin_mismatch_std"):
            if getattr(self, name) < 0:
                raise ValueError(f"memory.{name} must be >= 0, got {getattr(self, name)}")
        if self.window <= 0 or self.pump_gain < 0 or self.transconductance <= 0:
            raise ValueError("memory.window and memory.transconductance must be > 0 and memory.pump_gain >= 0")


@dataclass(frozen=True)
class HardwareSpec:
    clock: ClockSpec = field(default_factory=ClockSpec)
    comparator: ComparatorSpec = field(default_factory=ComparatorSpec)
    memory: MemorySpec = field(default_factory=MemorySpec)


#: Hardware presets.  Sources:
#:
#: ``ideal`` — noiseless synchronous edges with continuous conductance (the
#: idealised simulations of Stern et al. 2024 and Wycoff et al. 2022).
#:
#: ``digipot2022`` — Dillavou et al., Phys. Rev. Applied 18, 014040 (2022):
#: AD5220 100 kOhm digital potentiometers with 128 taps, comparator noise
#: about 0.01 V, a 3-5 Hz clock (4 Hz here).
#:
#: ``transistor2024`` — Dillavou et al., PNAS (2024): MOSFET edges in the ohmic
#: region, S = 8.5e-4 A/V^2, V_T about 0.62-0.7 V (0.65 V), gate capacitor
#: 2.2 uF charged through 1 kOhm (pump gain 1/RC), 100 us learning window.
PRESETS = {
    "ideal": HardwareSpec(),
    "digipot2022": HardwareSpec(
        clock=ClockSpec(period=0.25),
        comparator=ComparatorSpec(noise_std=0.01),
        memory=MemorySpec(kind="taps", taps=TapLadder(128, 100e3 / 128, 100e3, "resistance", "linear")),
    ),
    "transistor2024": HardwareSpec(
        clock=ClockSpec(period=1e-3),
        memory=MemorySpec(kind="capacitor", k_min=1e-7, k_max=1e-2, transconductance=8.5e-4, threshold=0.65,
                          pump_gain=1.0 / (1e3 * 2.2e-6), window=100e-6, bias_voltage=0.0),
    ),
}


def preset(name: str) -> HardwareSpec:
    """The named hardware preset; raises ``KeyError`` listing the known names.

    ``ideal``
        Noiseless synchronous edges with continuous conductance, the idealised
        simulations of Stern et al., APL Mach. Learn. 2, 016114 (2024) and
        Wycoff et al., J. Chem. Phys. 156, 144903 (2022).
    ``digipot2022``
        Dillavou et al., Phys. Rev. Applied 18, 014040 (2022): AD5220 100 kOhm
        digital potentiometers with 128 taps, comparator noise about 0.01 V,
        a 3-5 Hz clock (4 Hz here).
    ``transistor2024``
        Dillavou et al., PNAS (2024): MOSFET edges in the ohmic region with
        S = 8.5e-4 A/V^2 and V_T about 0.62-0.7 V (0.65 V here), gate capacitor
        2.2 uF charged through 1 kOhm (pump gain 1/RC), 100 us learning window.
    """
    if name not in PRESETS:
        raise KeyError(f"unknown hardware preset {name!r}; known presets: {', '.join(PRESETS)}")
    return PRESETS[name]


@dataclass(frozen=True)
class EdgeParameters:
    """Per-edge hardware parameters (arrays of length n_edges)."""

    period: np.ndarray
    phase: np.ndarray
    offset: np.ndarray
    leak_time: np.ndarray
    bias: np.ndarray
    ladder_scale: np.ndarray
    twin_factor: np.ndarray


def edge_parameters(spec: HardwareSpec, seed: int, n_edges: int) -> EdgeParameters:
    """Draw every edge's static parameters (pure function of the seed)."""
    e = np.arange(n_edges)
    c, cmp_, mem = spec.clock, spec.comparator, spec.memory
    period = c.period * (1.0 + c.drift_std * normal(seed, "clock drift", e, 0))
    if np.any(period <= 0):
        raise ValueError("clock.drift_std is so large that some edge periods are not positive")
    if isinstance(c.phase, str):
        phase = np.zeros(n_edges) if c.phase == "synchronous" else uniform(seed, "clock phase", e, 0) * period
    else:
        phase = np.asarray(c.phase, dtype=float)
        if phase.shape != (n_edges,):
            raise ValueError(f"clock.phase needs one value per edge ({n_edges}), got {phase.shape}")
    leak = mem.leak_time * np.exp(mem.leak_time_spread * normal(seed, "leak time", e, 0)) \
        if np.isfinite(mem.leak_time) else np.full(n_edges, np.inf)
    ladder_scale = 1.0 + mem.step_mismatch_std * normal(seed, "tap mismatch", e, 0)
    twin_factor = 1.0 + mem.twin_mismatch_std * normal(seed, "twin mismatch", e, 0)
    if np.any(ladder_scale <= 0):
        raise ValueError("memory.step_mismatch_std is so large that some edges get non-positive conductances")
    if np.any(twin_factor <= 0):
        raise ValueError("memory.twin_mismatch_std is so large that some clamped twins get non-positive conductances")
    return EdgeParameters(
        period=period,
        phase=phase,
        offset=cmp_.offset_std * normal(seed, "comparator offset", e, 0),
        leak_time=leak,
        bias=mem.bias_voltage + mem.bias_spread * normal(seed, "bias voltage", e, 0),
        ladder_scale=ladder_scale,
        twin_factor=twin_factor,
    )


def tick_times(params: EdgeParameters, jitter_std: float, seed: int, edges, ticks) -> np.ndarray:
    """Time (s) of tick number ``ticks`` of ``edges`` (arrays of equal shape)."""
    period = params.period[edges]
    t = params.phase[edges] + ticks * period
    if jitter_std > 0:
        jitter = jitter_std * normal(seed, "clock jitter", edges, ticks)
        t = t + np.clip(jitter, -0.45 * period, 0.45 * period)
    return t


def acts(update_probability: float, seed: int, edges, ticks) -> np.ndarray:
    """Whether each edge acts on its tick (desynchronous gating)."""
    if update_probability >= 1.0:
        return np.ones(np.shape(edges), bool)
    if update_probability <= 0.0:
        return np.zeros(np.shape(edges), bool)
    return uniform(seed, "update gate", edges, ticks) < update_probability


def comparator_noise(noise_std: float, seed: int, edges, ticks) -> np.ndarray:
    """Per-comparison comparator noise (V)."""
    if noise_std == 0:
        return np.zeros(np.shape(edges))
    return noise_std * normal(seed, "comparator noise", edges, ticks)


def capacitor_conductance(v_gate, memory: MemorySpec) -> np.ndarray:
    """Ohmic MOSFET conductance ``S (V_G - V_T)``, clipped to ``[k_min, k_max]``."""
    return np.clip(memory.transconductance * (v_gate - memory.threshold), memory.k_min, memory.k_max)


def capacitor_relax(v_gate, bias, leak_time, elapsed) -> np.ndarray:
    """Gate voltage after leaking toward ``bias`` for ``elapsed`` seconds."""
    return bias + (v_gate - bias) * np.exp(-elapsed / leak_time)


def with_overrides(spec: HardwareSpec, clock: dict, comparator: dict, memory: dict) -> HardwareSpec:
    """A copy of ``spec`` with some fields of each part replaced."""
    return HardwareSpec(replace(spec.clock, **clock), replace(spec.comparator, **comparator),
                        replace(spec.memory, **memory))
