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
    leaky capacitor; its ``k = S (V_G - V_T)`` is a linear conductance, or, on a
    network with the transistor edge law (:mod:`edgesim.edgelaws`), the
    parameter of the nonlinear square law, with each edge's own ``S`` and
    ``V_T`` and the gate clipped to the law's gate range; a charge pump adds
    ``pump_gain * window * signal`` volts per update, and between updates ``V_G`` relaxes to the edge's bias voltage
    with time constant ``leak_time``.  The window is the nominal learning
    window scaled by the actual tick interval over the nominal period, so
    clock jitter changes the charge delivered.
Twin mismatch
    The clamped copy of edge ``e`` has conductance ``k_e (1 + twin_mismatch_std z_e)``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .config import PRESETS, ClockSpec, ComparatorSpec, HardwareSpec, MemorySpec, preset
from .seeding import normal, uniform

__all__ = ["ClockSpec", "ComparatorSpec", "MemorySpec", "HardwareSpec", "EdgeParameters", "PRESETS",
           "preset", "edge_parameters", "tick_times", "acts", "comparator_noise", "capacitor_conductance",
           "capacitor_gate_voltage", "capacitor_relax", "with_overrides"]


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


def capacitor_conductance(v_gate, transconductance, threshold, k_min: float, k_max: float) -> np.ndarray:
    """Ohmic MOSFET conductance ``S (V_G - V_T)``, clipped to the element range ``[k_min, k_max]``.

    ``transconductance`` (``S``, A/V^2) and ``threshold`` (``V_T``, V) are scalars or per-edge arrays.
    """
    return np.clip(transconductance * (v_gate - threshold), k_min, k_max)


def capacitor_gate_voltage(conductance, transconductance, threshold) -> np.ndarray:
    """Gate voltage at which the transistor has ``conductance`` (the inverse of :func:`capacitor_conductance`)."""
    return threshold + np.asarray(conductance, dtype=float) / transconductance


def capacitor_relax(v_gate, bias, leak_time, elapsed) -> np.ndarray:
    """Gate voltage after leaking toward ``bias`` for ``elapsed`` seconds."""
    return bias + (v_gate - bias) * np.exp(-elapsed / leak_time)


def with_overrides(spec: HardwareSpec, clock: dict, comparator: dict, memory: dict) -> HardwareSpec:
    """A copy of ``spec`` with some fields of each part replaced."""
    return HardwareSpec(replace(spec.clock, **clock), replace(spec.comparator, **comparator),
                        replace(spec.memory, **memory))
