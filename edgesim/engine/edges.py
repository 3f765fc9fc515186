"""What an edge does when its clock ticks, vectorised over any batch of edges.

Both engines call :meth:`EdgeModel.tick` — the per-edge engine with one edge,
the vectorised engine with many.  Every operation is element-wise (or a
gather), so an edge's result does not depend on which other edges share its
batch: that is what makes the two engines bit-identical.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import HardwareSpec, LearningConfig
from ..hardware import (EdgeParameters, acts, capacitor_conductance, capacitor_gate_voltage, capacitor_relax,
                        comparator_noise, tick_times)
from ..rules import clip_conductance, coupled_learning_update_squared, sign_rule_direction
from ..damage import degraded_gate

__all__ = ["EdgeModel", "EdgeState"]


@dataclass
class EdgeState:
    """Mutable per-edge state (arrays of length n_edges).

    The memory (``tap`` for potentiometers, ``gate_voltage`` for capacitors,
    ``conductance`` itself for ideal elements) is the only source of an
    edge's conductance; ``conductance`` always holds the value the memory
    realises and is written in place only by :class:`EdgeModel`.
    """

    tick: np.ndarray  # index of the next tick
    last_tick: np.ndarray  # time of the previous tick (s)
    last_update: np.ndarray  # time of the last update (s), for the capacitor leak
    updates: np.ndarray  # number of updates made
    conductance: np.ndarray  # what the memory realises (committed to the physics by the engine)
    frozen: np.ndarray | None = None  # failed edges that no longer update (short, stuck)
    step_factor: np.ndarray | None = None  # degraded edges: update step multiplier
    noise_factor: np.ndarray | None = None  # degraded edges: comparator noise multiplier
    leak_factor: np.ndarray | None = None  # degraded edges: leak time multiplier
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
    learning : LearningConfig
        Learning rate, nudge, lambda, the element's conductance range, tap
        ladder and comparator dead band.
    controller : LambdaController, optional
        Lambda feedback or early stopping; lambda is then the controller's
        lambda at the tick time times each edge's gain (``gain``).
    gain : ndarray (E,), optional
        Per-edge gain of the lambda amplifier (1: ideal).
    gate : TransistorLaw, optional
        Capacitor memories of transistor edges: the network's edge law, whose per-edge ``S`` and ``V_T`` convert
        gate voltages to ``k = S (V_G - V_T)`` and whose gate range clips the gate voltage (without it: the
        memory's nominal ``S`` and ``V_T``, no gate range).
    """

    def __init__(self, hardware: HardwareSpec, params: EdgeParameters, seed: int, learning: LearningConfig,
                 controller=None, gain=None, gate=None):
        self.hw = hardware
        self.params = params
        self.seed = int(seed)
        self.learning = learning
        self.alpha, self.eta, self.lam = float(learning.alpha), float(learning.eta), float(learning.lambda_)
        self.k_min, self.k_max = learning.k_min, learning.k_max
        self.kind = hardware.memory.kind
        cmp_ = hardware.comparator
        self.ideal_comparator = cmp_.noise_std == 0 and cmp_.offset_std == 0
        self.leaks = self.kind == "capacitor" and bool(np.isfinite(params.leak_time).any())
        if self.kind == "taps":
            self.ladder = learning.taps.conductances
        self.controller = controller
        self.gain = gain
        mem = hardware.memory
        if gate is not None and hasattr(gate, "gate_voltage"):
            self.S, self.V_T, self.gate_range = gate.transconductance, gate.threshold, (gate.gate_min, gate.gate_max)
        else:
            self.S, self.V_T, self.gate_range = mem.transconductance, mem.threshold, (-np.inf, np.inf)
        self.damaged = False  # set once any edge is degraded or frozen (fast path until then)

    def _lambda(self, edges, times):
        """Lambda each edge applies at its tick: the broadcast value times the edge's amplifier gain."""
        if self.controller is None or self.controller.config.kind != "feedback":
            return self.lam
        lam = self.controller.lam_at(times)
        return lam if self.gain is None else np.clip(lam * self.gain[edges], 0.0, 1.0)

    def initial_state(self, conductance: np.ndarray) -> tuple[EdgeState, np.ndarray]:
        """Initial state and the conductances it realises (taps snap to the ladder)."""
        n = len(conductance)
        state = EdgeState(tick=np.zeros(n, np.int64), last_tick=self.params.phase - self.params.period,
                          last_update=np.zeros(n), updates=np.zeros(n, np.int64), conductance=np.zeros(n),
                          frozen=np.zeros(n, bool), step_factor=np.ones(n), noise_factor=np.ones(n),
                          leak_factor=np.ones(n),
                          tap=np.zeros(n, np.int64) if self.kind == "taps" else None,
                          gate_voltage=np.zeros(n) if self.kind == "capacitor" else None)
        self.write(state, np.arange(n), conductance)
        k = state.conductance.copy()
        # A jittered first tick can fall before t = 0: such an edge starts with its second tick.
        first = self.next_times(state, np.arange(n))
        early = first < 0
        state.tick[early] = 1
        state.last_tick[early] = first[early]
        return state, k

    def write(self, state: EdgeState, edges: np.ndarray, conductance) -> None:
        """Set the memory of ``edges`` to hold ``conductance`` as closely as the element can.

        Taps move to the nearest tap of each edge's ladder, a capacitor's gate
        goes to the voltage that gives the conductance (clipped to the
        element's range), an ideal element clips to ``[k_min, k_max]``.
        """
        k = np.asarray(conductance, dtype=float)
        if self.kind == "taps":
            scale = self.params.ladder_scale[edges]
            state.tap[edges] = self.learning.taps.nearest_tap(k / scale)
            state.conductance[edges] = self.ladder[state.tap[edges]] * scale
        elif self.kind == "capacitor":
            state.gate_voltage[edges] = np.clip(capacitor_gate_voltage(k, self._at(self.S, edges),
                                                                       self._at(self.V_T, edges)), *self.gate_range)
            state.conductance[edges] = self._conductance(state.gate_voltage[edges], edges)
        else:
            state.conductance[edges] = clip_conductance(k, self.k_min, self.k_max)

    def next_times(self, state: EdgeState, edges: np.ndarray) -> np.ndarray:
        """Time of the next tick of ``edges``."""
        return tick_times(self.params, self.hw.clock.jitter_std, self.seed, edges, state.tick[edges])

    def tick(self, state: EdgeState, edges: np.ndarray, times: np.ndarray, physics) -> np.ndarray:
        """Edges ``edges`` tick at ``times``: measure, decide and update their memory.

        Returns the edges whose memory was updated (to be committed to the
        shared physics by the engine).
        """
        ticks = state.tick[edges]
        interval = times - state.last_tick[edges]
        state.tick[edges] = ticks + 1
        state.last_tick[edges] = times
        # removed edges (damage) keep their clocks but take no part in learning
        act = acts(self.hw.clock.update_probability, self.seed, edges, ticks) & physics.alive[edges]
        if self.controller is not None and self.controller.stopped.any():
            act[:] = False  # early stopping: learning has ended
        if self.damaged:
            act &= ~state.frozen[edges] & self._degraded_gate(state, edges, ticks)
        active = edges[act]
        if self.kind == "capacitor" and self.leaks:
            # A passive capacitor leaks on every tick, whether or not its edge acts.
            return self._leaky_capacitor(state, edges, times, interval, act, ticks, physics)
        if active.size == 0:
            return active
        if self.kind == "taps":
            free_sq, clamped_sq = physics.mean_square_drops(active)
            direction = sign_rule_direction(np.sqrt(free_sq), np.sqrt(clamped_sq), self._lambda(active, times[act]),
                                            self.learning.deadband,
                                            self._comparator_error(state, active, ticks[act]))
            state.tap[active] = self.learning.taps.step(state.tap[active], direction)
            k_new = self.ladder[state.tap[active]] * self.params.ladder_scale[active]
        else:
            free_sq, clamped_sq = self._measure(state, active, ticks[act], physics)
            signal = coupled_learning_update_squared(free_sq, clamped_sq, 1.0, 1.0, self._lambda(active, times[act]))
            if self.damaged:
                signal = signal * state.step_factor[active]
            if self.kind == "ideal":
                k_new = clip_conductance(state.conductance[active] + (self.alpha / self.eta) * signal,
                                         self.k_min, self.k_max)
            else:
                state.gate_voltage[active] = np.clip(state.gate_voltage[active] + self._pump(interval[act], signal),
                                                     *self.gate_range)
                k_new = self._conductance(state.gate_voltage[active], active)
        state.last_update[active] = times[act]
        state.updates[active] += 1
        state.conductance[active] = k_new
        return active

    def _degraded_gate(self, state, edges, ticks):
        """Potentiometers: a degraded edge moves on a ``step_factor`` share of its ticks."""
        if self.kind != "taps":
            return True
        return degraded_gate(self.seed, edges, ticks, state.step_factor[edges])

    def _pump(self, interval, signal):
        """Gate-voltage step of the charge pump: the window scales with the actual tick interval."""
        mem = self.hw.memory
        return mem.pump_gain * (mem.window * interval / self.hw.clock.period) * signal

    def _leaky_capacitor(self, state, edges, times, interval, act, ticks, physics):
        leak_time = self.params.leak_time[edges]
        if self.damaged:
            leak_time = leak_time * state.leak_factor[edges]
        v = capacitor_relax(state.gate_voltage[edges], self.params.bias[edges], leak_time,
                            times - state.last_update[edges])
        if self.damaged:  # a failed (frozen) edge keeps its gate voltage
            keep = state.frozen[edges]
            v[keep] = state.gate_voltage[edges][keep]
        active = edges[act]
        if active.size:
            free_sq, clamped_sq = self._measure(state, active, ticks[act], physics)
            signal = coupled_learning_update_squared(free_sq, clamped_sq, 1.0, 1.0, self._lambda(active, times[act]))
            if self.damaged:
                signal = signal * state.step_factor[active]
            v[act] = np.clip(v[act] + self._pump(interval[act], signal), *self.gate_range)
            state.updates[active] += 1
        state.gate_voltage[edges] = v
        state.last_update[edges] = times
        state.conductance[edges] = self._conductance(v, edges)
        return edges

    @staticmethod
    def _at(value, edges):
        return value if np.ndim(value) == 0 else value[edges]

    def _conductance(self, v_gate, edges):
        """``k = S_e (V_G - V_T,e)`` of ``edges``, clipped to the element's range."""
        return capacitor_conductance(v_gate, self._at(self.S, edges), self._at(self.V_T, edges), self.k_min,
                                     self.k_max)

    def _comparator_error(self, state, active, ticks):
        """Offset plus noise of each comparison (V), added to the clamped reading."""
        if self.ideal_comparator:
            return 0.0
        noise = comparator_noise(self.hw.comparator.noise_std, self.seed, active, ticks)
        if self.damaged:
            noise = noise * state.noise_factor[active]
        return self.params.offset[active] + noise

    def _measure(self, state, active, ticks, physics):
        """Mean squared drops (free, clamped) as the squaring circuits of a continuous edge read them.

        The comparator error enters the clamped RMS drop before it is squared.
        """
        free_sq, clamped_sq = physics.mean_square_drops(active)
        if not self.ideal_comparator:
            clamped_rms = np.sqrt(clamped_sq) + self._comparator_error(state, active, ticks)
            clamped_sq = clamped_rms * clamped_rms
        return free_sq, clamped_sq
