"""What an edge does when its clock ticks, vectorised over any batch of edges.

Both engines call :meth:`EdgeModel.tick` — the per-edge engine with one edge,
the vectorised engine with many.  Every operation is element-wise (or a
gather), so an edge's result does not depend on which other edges share its
batch: that is what makes the two engines bit-identical.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..hardware import (EdgeParameters, HardwareSpec, acts, capacitor_conductance, capacitor_relax,
                        comparator_noise, tick_times)
from ..rules import clip_conductance, coupled_learning_update_squared, sign_rule_direction

__all__ = ["EdgeModel", "EdgeState"]


@dataclass
class EdgeState:
    """Mutable per-edge state (arrays of length n_edges)."""

    tick: np.ndarray  # index of the next tick
    last_tick: np.ndarray  # time of the previous tick (s)
    last_update: np.ndarray  # time of the last update (s), for the capacitor leak
    updates: np.ndarray  # number of updates made
    conductance: np.ndarray  # the element's own conductance (committed to the physics by the engine)
    tap: np.ndarray | None = None
    gate_voltage: np.ndarray | None = None


class EdgeModel:
    """The learning behaviour of every edge of one system.

    Parameters
    ----------
    hardware : HardwareSpec
    params : EdgeParameters
    seed : int
        Master seed of the counter-based draws.
    alpha, eta, lam : float
        Learning rate, nudge and power-efficiency amplitude.
    """

    def __init__(self, hardware: HardwareSpec, params: EdgeParameters, seed: int, alpha: float, eta: float,
                 lam: float):
        self.hw = hardware
        self.params = params
        self.seed = int(seed)
        self.alpha, self.eta, self.lam = float(alpha), float(eta), float(lam)
        self.kind = hardware.memory.kind
        cmp_ = hardware.comparator
        self.ideal_comparator = cmp_.noise_std == 0 and cmp_.offset_std == 0
        self.always_acts = hardware.clock.update_probability >= 1.0
        if self.kind == "taps":
            self.ladder = hardware.memory.taps.conductances

    def initial_state(self, conductance: np.ndarray) -> tuple[EdgeState, np.ndarray]:
        """Initial state and the conductances it realises (taps snap to the ladder)."""
        n = len(conductance)
        state = EdgeState(tick=np.zeros(n, np.int64), last_tick=self.params.phase - self.params.period,
                          last_update=np.zeros(n), updates=np.zeros(n, np.int64), conductance=np.zeros(n))
        k = np.asarray(conductance, dtype=float).copy()
        mem = self.hw.memory
        if self.kind == "taps":
            state.tap = mem.taps.nearest_tap(k / self.params.ladder_scale)
            k = self.ladder[state.tap] * self.params.ladder_scale
        elif self.kind == "capacitor":
            state.gate_voltage = mem.threshold + k / mem.transconductance
            k = capacitor_conductance(state.gate_voltage, mem)
        else:
            k = clip_conductance(k, mem.k_min, mem.k_max)
        state.conductance = k.copy()
        # A jittered first tick can fall before t = 0: such an edge starts with its second tick.
        early = self.next_times(state, np.arange(n)) < 0
        state.tick[early] = 1
        return state, k

    def next_times(self, state: EdgeState, edges: np.ndarray) -> np.ndarray:
        """Time of the next tick of ``edges``."""
        return tick_times(self.params, self.hw.clock.jitter_std, self.seed, edges, state.tick[edges])

    def tick(self, state: EdgeState, edges: np.ndarray, times: np.ndarray, physics) -> tuple[np.ndarray, np.ndarray]:
        """Edges ``edges`` tick at ``times``: measure, decide and update their memory.

        Returns the edges that updated and their new conductances (to be
        committed to the shared physics by the engine).
        """
        ticks = state.tick[edges]
        interval = times - state.last_tick[edges]
        state.tick[edges] = ticks + 1
        state.last_tick[edges] = times
        if self.always_acts:
            active, t_act, n_act = edges, times, ticks
        else:
            act = acts(self.hw.clock.update_probability, self.seed, edges, ticks)
            active = edges[act]
            if active.size == 0:
                return active, np.zeros(0)
            t_act, n_act, interval = times[act], ticks[act], interval[act]
        free_sq, clamped_sq = physics.mean_square_drops(active)
        if not self.ideal_comparator:
            clamped_rms = (np.sqrt(clamped_sq) + self.params.offset[active]
                           + comparator_noise(self.hw.comparator.noise_std, self.seed, active, n_act))
            clamped_sq = clamped_rms * clamped_rms
        mem = self.hw.memory
        if self.kind == "taps":
            direction = sign_rule_direction(np.sqrt(free_sq), np.sqrt(clamped_sq), self.lam,
                                            self.hw.comparator.deadband)
            state.tap[active] = mem.taps.step(state.tap[active], direction)
            k_new = self.ladder[state.tap[active]] * self.params.ladder_scale[active]
        else:
            signal = coupled_learning_update_squared(free_sq, clamped_sq, 1.0, 1.0, self.lam)
            if self.kind == "ideal":
                k_new = clip_conductance(state.conductance[active] + (self.alpha / self.eta) * signal,
                                         mem.k_min, mem.k_max)
            else:
                v = capacitor_relax(state.gate_voltage[active], self.params.bias[active],
                                    self.params.leak_time[active], t_act - state.last_update[active])
                window = mem.window * interval / self.hw.clock.period
                v = v + mem.pump_gain * window * signal
                state.gate_voltage[active] = v
                k_new = capacitor_conductance(v, mem)
        state.last_update[active] = t_act
        state.updates[active] += 1
        state.conductance[active] = k_new
        return active, k_new
