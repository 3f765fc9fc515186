"""The synchronous trainer: the plain clocked loop of the published simulations.

Every edge updates at every step.  A stack of independent systems (network
realizations, lambda values, initial conductance scales ...) is trained at
once: the shared :class:`~edgesim.physics.TwinSolver` factors all of them per
step and each twin is then a few small dense solves, so an ensemble costs
little more than its floating-point work.

Step ``s`` (``s = 0 .. steps``) sees the conductances after ``s`` updates.
Recorded quantities at step ``s`` are measured on that state; the training
energy at step ``s`` is the integral of the free power over the first ``s``
steps.  Targets, clamps and classification follow :mod:`edgesim.measure`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .config import ControlConfig, DamageConfig, LearningConfig
from .control import LambdaController
from .damage import MODE_CODES, damage_schedule, damaged_edges, degraded_gate, store_recovery, training_error
from .history import History, conductance_records, record_steps
from .measure import class_targets, clamp_values, measure, presented, scheduled_targets
from .nonlinear import make_twin_solver
from .physics import clamped_solution, free_solution, mean_square_drops
from .rules import clip_conductance, coupled_learning_update_squared, sign_rule_direction
from .tasks import Task

__all__ = ["LearningConfig", "History", "train_synchronous", "SynchronousTraining", "record_steps"]


@dataclass(frozen=True)
class _Stack:
    """The training data of ``R`` systems, stacked (arrays with the system axis first)."""

    X: np.ndarray
    Y: np.ndarray
    XT: np.ndarray
    YT: np.ndarray
    n_train: int
    labels: np.ndarray | None = None
    test_labels: np.ndarray | None = None
    n_classes: int = 0
    schedules: np.ndarray | None = None  # (R, n_phases, n_out)
    steps_per_target: int = 0
    class_values: np.ndarray | None = None  # (R, n_out, C): fixed class targets (else the laboratory protocol)

    @classmethod
    def of(cls, tasks: Sequence[Task]) -> "_Stack":
        first = tasks[0]
        for t in tasks:
            if (t.n_train, t.n_test, t.kind) != (first.n_train, first.n_test, first.kind):
                raise ValueError("all tasks of a stack need equal training/test sizes and kind")
        stack = lambda name: np.stack([np.asarray(getattr(t, name), dtype=float) for t in tasks])  # noqa: E731
        extra = {}
        if first.kind == "classification":
            extra = dict(labels=np.stack([t.train_labels for t in tasks]),
                         test_labels=np.stack([t.test_labels for t in tasks]),
                         n_classes=max(t.n_classes for t in tasks))
            if any((t.class_values is None) != (first.class_values is None) for t in tasks):
                raise ValueError("all classification tasks of a stack need fixed class values, or none")
            if first.class_values is not None:
                extra["class_values"] = np.stack([t.class_values for t in tasks])
        if first.target_schedule is not None:
            shape = first.target_schedule.shape
            if any(t.target_schedule is None or t.target_schedule.shape != shape for t in tasks):
                raise ValueError("all tasks of a stack need the same target schedule shape")
            extra.update(schedules=np.stack([t.target_schedule for t in tasks]),
                         steps_per_target=first.steps_per_target)
        return cls(stack("train_inputs"), stack("train_targets"), stack("test_inputs"), stack("test_targets"),
                   first.n_train, **extra)

    @property
    def classification(self) -> bool:
        return self.labels is not None


def _per_system(value, R: int, name: str) -> np.ndarray:
    """One value or one per system, as an (R, 1, 1) array."""
    v = np.asarray(value, dtype=float)
    if v.ndim > 1 or v.size not in (1, R):
        raise ValueError(f"{name} must be one value or one per system ({R}), got shape {v.shape}")
    return np.broadcast_to(v.reshape(-1), (R,)).reshape(R, 1, 1)


def _initial_conductance(tasks, initial_conductance, E: int) -> np.ndarray:
    """Initial conductances (R, E); padding slots hold 1."""
    initial_conductance = list(initial_conductance)
    if len(initial_conductance) != len(tasks):
        raise ValueError(f"need one initial conductance array per task ({len(tasks)}), "
                         f"got {len(initial_conductance)}")
    k = np.ones((len(tasks), E))
    for r, k0 in enumerate(initial_conductance):
        k0 = np.asarray(k0, dtype=float)
        if k0.shape != (tasks[r].network.n_edges,):
            raise ValueError(f"system {r}: initial conductance must have one value per edge "
                             f"({tasks[r].network.n_edges}), got shape {k0.shape}")
        if not np.isfinite(k0).all():
            raise ValueError(f"system {r}: initial conductance contains NaN or infinite values")
        if (k0 <= 0).any():
            raise ValueError(f"system {r}: initial conductance must be positive, got min {k0.min()}")
        k[r, :len(k0)] = k0
    return k


class _Element:
    """The edges' memory in the trainer: continuous conductances, or taps of a ladder.

    Transistor edges learn their gate voltage: ``k = S_e (V_G - V_T)`` moves by ``S_e dV_G``, so an edge's step
    is scaled by its ``S_e`` over the mean (``gain``), and ``k`` stays inside what the gate range allows
    (``k_low``, ``k_high`` per edge).
    """

    def __init__(self, config: LearningConfig, valid: np.ndarray, k: np.ndarray, laws=()):
        self.config, self.valid = config, valid
        self.sign_rule = config.rule == "sign"
        self.k_low, self.k_high, self.gain = config.k_min, config.k_max, None
        gates = [law if hasattr(law, "conductance_bounds") else None for law in laws]
        if any(g is not None for g in gates):
            R, E = valid.shape
            self.k_low, self.k_high = np.full((R, E), config.k_min), np.full((R, E), config.k_max)
            self.gain = np.ones((R, E))
            for r, law in enumerate(gates):
                if law is not None:
                    n = int(valid[r].sum())
                    low, high = law.conductance_bounds(config.k_min, config.k_max)
                    self.k_low[r, :n], self.k_high[r, :n] = low, high
                    self.gain[r, :n] = law.learning_gain()
        if self.sign_rule:
            self.ladder = config.taps.conductances
            self.taps = np.where(valid, config.taps.nearest_tap(k), 0)
            self.k = np.where(valid, self.ladder[self.taps], 1.0)
        else:
            self.k = np.where(valid, clip_conductance(k, self.k_low, self.k_high), 1.0)

    def update(self, free_sq, clamped_sq, alpha, eta, lam, damage=None, step: int = 0, stopped=None) -> None:
        """One synchronous update of every edge from the mean squared drops (R, E).

        ``damage`` (a :class:`_DamageState`) freezes failed edges and scales
        degraded ones; systems marked in ``stopped`` (R,) do not learn.
        """
        cfg = self.config
        if damage is not None and not damage.any_failed:
            damage = None
        if self.sign_rule:
            # Comparators see drop magnitudes: RMS over the examples presented.
            direction = sign_rule_direction(np.sqrt(free_sq), np.sqrt(clamped_sq), lam[:, :, 0], cfg.deadband)
            if damage is not None:
                direction = direction * damage.tap_gate(step)
            if stopped is not None:
                direction = direction * ~stopped[:, None]
            self.taps = np.where(self.valid, cfg.taps.step(self.taps, direction), 0)
            self.k = np.where(self.valid, self.ladder[self.taps], 1.0)
        else:
            signal = coupled_learning_update_squared(free_sq, clamped_sq, 1.0, 1.0, lam[:, :, 0])
            if damage is not None:
                signal = np.where(damage.frozen, 0.0, signal * damage.step_factor)
            if stopped is not None:
                signal = np.where(stopped[:, None], 0.0, signal)
            if self.gain is not None:
                signal = signal * self.gain
            # Padding edges have zero drops, so dk = 0 there and they stay at 1.
            self.k = np.where(self.valid, clip_conductance(self.k + (alpha / eta)[:, :, 0] * signal, self.k_low,
                                                           self.k_high), self.k)

    def set(self, r: int, edges: np.ndarray, value: float) -> None:
        """Set edges of system ``r`` to ``value`` (taps: the nearest tap)."""
        if self.sign_rule:
            self.taps[r, edges] = self.config.taps.nearest_tap(value)
            self.k[r, edges] = self.ladder[self.taps[r, edges]]
        else:
            low = self.k_low if np.isscalar(self.k_low) else self.k_low[r, edges]
            high = self.k_high if np.isscalar(self.k_high) else self.k_high[r, edges]
            self.k[r, edges] = clip_conductance(value, low, high)


class _DamageState:
    """Failed edges of every system of the stack, applied at the start of each step (see :mod:`edgesim.damage`)."""

    def __init__(self, configs: list[DamageConfig], tasks, valid: np.ndarray, seeds, step_duration: float,
                 steps: int, k_max: float):
        self.configs, self.tasks, self.seeds = configs, tasks, [int(s) for s in seeds]
        self.valid = valid
        self.alive = valid.copy()
        self.frozen = ~valid
        self.step_factor = np.ones(valid.shape)
        self.short = [c.short_conductance or k_max for c in configs]
        self.schedules = [damage_schedule(c, t.network.n_edges, seed, step_duration, steps * step_duration)
                          for c, t, seed in zip(configs, tasks, self.seeds)]
        self.log = [[] for _ in tasks]

    def apply(self, t: float, element: _Element, data: _Stack, Y) -> None:
        """Every action due by time ``t``, per system, logged with the error just before and after."""
        for r, schedule in enumerate(self.schedules):
            task = self.tasks[r]
            E = task.network.n_edges
            while schedule and schedule[0].time <= t:
                action = schedule.pop(0)
                k, present = element.k[r, :E], self.alive[r, :E]
                edges = damaged_edges(action, present, self.seeds[r], task.network, task.boundary, k, data.X[r], Y[r])
                if edges.size == 0:
                    continue
                before = training_error(task.network, task.boundary, k, present, data.X[r], Y[r])
                self._hit(r, edges, action.mode, element)
                after = training_error(task.network, task.boundary, element.k[r, :E], self.alive[r, :E], data.X[r],
                                       Y[r])
                self.log[r].extend((action.time, int(e), MODE_CODES[action.mode], before, after) for e in edges)

    def _hit(self, r, edges, mode, element):
        if mode == "open":
            self.alive[r, edges] = False
            self.frozen[r, edges] = True
        elif mode == "short":
            element.set(r, edges, self.short[r])
            self.frozen[r, edges] = True
        elif mode == "stuck":
            self.frozen[r, edges] = True
        else:  # degraded
            self.step_factor[r, edges] *= self.configs[r].degrade_factor

    @property
    def any_failed(self) -> bool:
        """Whether any edge has failed in a way that changes how edges learn."""
        return bool((self.frozen & self.valid).any() or (self.step_factor != 1).any())

    def tap_gate(self, step: int) -> np.ndarray:
        """Potentiometers: frozen edges do not move; a degraded one moves on a ``step_factor`` share of its ticks."""
        gate = ~self.frozen
        for r, seed in enumerate(self.seeds):
            weak = np.flatnonzero(self.step_factor[r] < 1)
            gate[r, weak] &= degraded_gate(seed, weak, step, self.step_factor[r, weak])
        return gate


def train_synchronous(tasks: Sequence[Task], config: LearningConfig, steps: int,
                      initial_conductance: Sequence[np.ndarray], *, alpha=None, eta=None, lam=None,
                      record_at: np.ndarray | None = None, conductance_every: int = 1,
                      step_duration: float = 1.0, solver_backend: str = "auto", solver_tolerance: float = 1e-14,
                      control: ControlConfig | None = None, tolerance=None, damage=None,
                      seeds=None, failed=None, progress=None, newton_tolerance: float = 1e-12,
                      newton_max_iterations: int = 100) -> History:
    """Train a stack of systems with synchronous updates of every edge.

    Parameters
    ----------
    tasks : sequence of Task
        One task per system; all need the same numbers of inputs, outputs,
        training and test examples and the same kind.
    config : LearningConfig
        Rule, batch mode, element range, tap ladder, dead band, classification settings.
    steps : int
        Number of learning steps.
    initial_conductance : sequence of ndarray
        Initial conductance of every edge of every system (siemens).
    alpha, eta, lam : float or array_like (R,), optional
        Learning rate, nudge and power-efficiency amplitude lambda, per system
        (default: the values of ``config``).
    record_at : ndarray of int, optional
        Steps to record (default :func:`record_steps` with 100 log-spaced points).
    conductance_every : int
        Record conductances at every ``conductance_every``-th record step
        (the first and last are always kept).
    step_duration : float
        Simulated seconds per step (sets the ``time`` axis and the energy units).
    solver_backend, solver_tolerance
        Solver backend and iterative tolerance (see :class:`edgesim.config.SolverConfig`).
    control : ControlConfig, optional
        Lambda feedback or early stopping (:mod:`edgesim.control`); lambda starts at ``lam``.
        The controller samples the error of the examples presented at each step.
    tolerance : array_like (R,), optional
        Per-system control tolerance (default ``control.tolerance``).
    damage : DamageConfig or sequence of DamageConfig (R,), optional
        Failures applied at the start of the step at or after their time (:mod:`edgesim.damage`).
    seeds : sequence of int, optional
        Seed of each system's damage draws (default 0).
    failed : sequence of (alive, frozen) or None, optional
        Edges already removed or frozen at the start (a protocol's earlier phases), per system.
    progress : callable or None
        ``progress(n)`` is called with the number of steps just completed.
    newton_tolerance, newton_max_iterations
        Networks of nonlinear edges (``network.law``): Newton's tolerance and iteration limit
        (see :class:`edgesim.config.SolverConfig`).

    Returns
    -------
    History
    """
    training = SynchronousTraining(tasks, config, steps, initial_conductance, alpha=alpha, eta=eta, lam=lam,
                                   record_at=record_at, conductance_every=conductance_every,
                                   step_duration=step_duration, solver_backend=solver_backend,
                                   solver_tolerance=solver_tolerance, control=control,
                                   tolerance=tolerance, damage=damage, seeds=seeds, failed=failed,
                                   newton_tolerance=newton_tolerance, newton_max_iterations=newton_max_iterations)
    return training.finish(training.advance(steps + 1, progress))


class SynchronousTraining:
    """A synchronous training run that advances in segments and can be pickled between them.

    :func:`train_synchronous` is ``advance(steps + 1)`` followed by
    :meth:`finish`.  Long runs advance segment by segment, write each
    segment's records and pickle the run between segments (a checkpoint):
    the records do not depend on where the segments end.  The parameters are
    those of :func:`train_synchronous`.
    """

    def __init__(self, tasks: Sequence[Task], config: LearningConfig, steps: int,
                 initial_conductance: Sequence[np.ndarray], *, alpha=None, eta=None, lam=None,
                 record_at: np.ndarray | None = None, conductance_every: int = 1, step_duration: float = 1.0,
                 solver_backend: str = "auto", solver_tolerance: float = 1e-14, control: ControlConfig | None = None,
                 tolerance=None, damage=None,
                 seeds=None, failed=None, newton_tolerance: float = 1e-12, newton_max_iterations: int = 100):
        tasks = list(tasks)
        R = len(tasks)
        self.tasks, self.config, self.steps, self.step_duration = tasks, config, steps, step_duration
        self.solver_backend, self.solver_tolerance = solver_backend, solver_tolerance
        self.data = _Stack.of(tasks)
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        self.solver = make_twin_solver([t.network for t in tasks], [t.boundary for t in tasks], backend=solver_backend,
                                       tolerance=solver_tolerance, newton_tolerance=newton_tolerance,
                                       max_iterations=newton_max_iterations)
        self.alpha = _per_system(config.alpha if alpha is None else alpha, R, "alpha")
        self.eta = _per_system(config.eta if eta is None else eta, R, "eta")
        self.lam = _per_system(config.lambda_ if lam is None else lam, R, "lambda")
        if ((self.eta <= 0) | (self.eta > 1)).any():
            raise ValueError(f"nudge eta must satisfy 0 < eta <= 1, got {np.unique(self.eta)}")
        if not np.isfinite(self.alpha).all() or not np.isfinite(self.lam).all():
            raise ValueError("alpha and lambda must be finite numbers")
        self.element = _Element(config, self.solver.edge_valid,
                                _initial_conductance(tasks, initial_conductance, self.solver.n_edges),
                                [t.network.law for t in tasks])
        rec = record_steps(steps) if record_at is None else np.unique(np.asarray(record_at, dtype=np.int64))
        if rec.size == 0 or rec.min() < 0 or rec.max() > steps:
            raise ValueError(f"record steps must lie in 0..{steps}")
        self.record_at = rec
        self.conductance_at = rec[conductance_records(len(rec), conductance_every)]
        self.energy, self.energy_total = np.zeros(R), np.zeros(R)
        self.controller = None
        if control is not None and control.active:
            self.controller = LambdaController(control, self.lam[:, 0, 0], tolerance)
            self.tolerance_time = np.full(R, np.nan)
            self.energy_to_tolerance = np.full(R, np.nan)
        self.damaged = None
        damage = [damage] * R if isinstance(damage, DamageConfig) else damage
        self.damage = [DamageConfig()] * R if damage is None else list(damage)
        carried = failed is not None and any(f is not None and (not f[0].all() or f[1].any()) for f in failed)
        if carried or any(d.active for d in self.damage):
            self.damaged = _DamageState(self.damage, tasks, self.solver.edge_valid, [0] * R if seeds is None else seeds,
                                        step_duration, steps, config.k_max)
            for r, f in enumerate(failed or []):
                if f is not None:
                    E = len(f[0])
                    self.damaged.alive[r, :E] &= f[0]
                    self.damaged.frozen[r, :E] |= f[1]
        self.Y, self.means = self.data.Y, None
        self.step = 0  # the next step to run

    @property
    def done(self) -> bool:
        return self.step > self.steps

    def advance(self, until: int, progress=None) -> History:
        """Run the steps from :attr:`step` to ``until - 1`` (at most ``steps``, which only measures).

        Returns
        -------
        History
            The records of those steps only.
        """
        until = min(until, self.steps + 1)
        rec = self.record_at[(self.record_at >= self.step) & (self.record_at < until)]
        crec = self.conductance_at[(self.conductance_at >= self.step) & (self.conductance_at < until)]
        data, R = self.data, len(self.tasks)
        h = History.empty(R, rec, crec, self.solver.n_edges, self.solver.n_outputs, data.n_train,
                          classification=data.classification, engine=False)
        if self.controller is not None:
            h.lambda_ = np.zeros((R, len(rec)))
        if self.damaged is not None:
            h.alive_edges = np.zeros((R, len(rec)), np.int64)
        record_index = {int(s): i for i, s in enumerate(rec)}
        conductance_index = {int(s): j for j, s in enumerate(crec)}
        for s in range(self.step, until):
            if self._stationary():
                self._coast(s, until, h, record_index, conductance_index, progress)
                break
            self._step(s, h, record_index.get(s), conductance_index.get(s))
            if progress is not None and s < self.steps:
                progress(1)
        self.step = max(self.step, until)
        if self.controller is not None:
            h.tolerance_time = self.tolerance_time.copy()
            h.training_energy_to_tolerance = self.energy_to_tolerance.copy()
        return h

    def _stationary(self) -> bool:
        """Whether nothing can change any more: every system stopped early, on a full batch with fixed targets."""
        c = self.controller
        return (c is not None and c.config.early_stop and bool(c.stopped.all()) and self.damaged is None
                and self.config.batch == "full" and not self.data.classification and self.data.schedules is None)

    def _coast(self, start: int, until: int, h: History, record_index: dict, conductance_index: dict,
               progress) -> None:
        """Steps ``start .. until - 1`` once the state is stationary: the same records, without the solves.

        The energies still grow by the (now constant) power of every step, added step by step as
        :meth:`_step` adds them, so the result is bit-identical to stepping.
        """
        resp = self.solver.response(self.element.k)
        ex = presented(self.config.batch, start, self.data.n_train)
        x, y = self.data.X[:, :, ex], self.Y[:, :, ex]
        _, out_f, power_f = free_solution(resp, x)
        _, power_c = clamped_solution(resp, np.concatenate([x, clamp_values(out_f, y, self.eta)], 1))
        free_step = power_f.mean(1) * self.step_duration
        total_step = (power_f.mean(1) + power_c.mean(1)) * self.step_duration
        lam = self.controller.lam_at(start * self.step_duration)
        for s in range(start, until):
            i = record_index.get(s)
            if i is not None:
                _record(h, i, conductance_index.get(s), resp, self.data, self.Y, self.means, self.eta, self.config,
                        self.element.k, self.solver.edge_valid, self.energy, self.energy_total)
                h.lambda_[:, i] = lam
            if s == self.steps:
                break
            self.energy += free_step
            self.energy_total += total_step
        if progress is not None:
            progress(min(until, self.steps) - start)

    def _step(self, s: int, h: History, i: int | None, ci: int | None) -> None:
        """Step ``s``: damage, measurement, control, record (at record ``i``), then the update (not at the end)."""
        data, config, element, damaged, controller = self.data, self.config, self.element, self.damaged, \
            self.controller
        t = s * self.step_duration
        if damaged is not None:
            damaged.apply(t, element, data, self.Y)
            resp = self.solver.response(element.k, damaged.alive)
        else:
            resp = self.solver.response(element.k)
        self.Y, self.means = _targets(data, resp, s, self.Y, self.means, config)
        ex = presented(config.batch, s, data.n_train)
        x, y = data.X[:, :, ex], self.Y[:, :, ex]
        free_currents, out_f, power_f = free_solution(resp, x)
        lam_now, stopped = self.lam, None
        if controller is not None:
            # the controller acts after the edges of this step (the engines' CONTROL phase): this step's
            # update uses the lambda and the stop decision from before this error sample
            lam_now = controller.lam_at(t)[:, None, None]
            stopped = controller.stopped.copy() if controller.stopped.any() else None
            reached = np.isnan(controller.tolerance_time)
            controller.observe(t, ((out_f - y) ** 2).mean((1, 2)))
            reached &= ~np.isnan(controller.tolerance_time)
            self.tolerance_time[reached] = t
            self.energy_to_tolerance[reached] = self.energy[reached]
        if i is not None:
            _record(h, i, ci, resp, data, self.Y, self.means, self.eta, config, element.k,
                    self.solver.edge_valid if damaged is None else damaged.alive, self.energy, self.energy_total)
            if controller is not None:
                h.lambda_[:, i] = lam_now[:, 0, 0]
            if damaged is not None:
                h.alive_edges[:, i] = damaged.alive.sum(1)
        if s == self.steps:
            return
        clamped_currents, power_c = clamped_solution(resp, np.concatenate([x, clamp_values(out_f, y, self.eta)], 1))
        mean_free_power = power_f.mean(1)
        self.energy += mean_free_power * self.step_duration
        self.energy_total += (mean_free_power + power_c.mean(1)) * self.step_duration
        if stopped is None or not stopped.all():
            element.update(mean_square_drops(resp, free_currents), mean_square_drops(resp, clamped_currents),
                           self.alpha, self.eta, lam_now, damaged, s, stopped)

    def finish(self, h: History) -> History:
        """Complete the history of the whole run (all records): the damage table and the final failed state."""
        damaged = self.damaged
        if damaged is not None:
            h.store_damage(damaged.log)
            for r, d in enumerate(self.damage):
                store_recovery(h, h.step * self.step_duration, d.recovery_multiple, systems=[r])
            h.final_alive, h.final_frozen = damaged.alive.copy(), damaged.frozen & self.solver.edge_valid
        return h


def _targets(data: _Stack, resp, step: int, Y, means, config: LearningConfig):
    """Desired training outputs at ``step`` (and the class means of classification; fixed class values are
    their own means and never move)."""
    if data.class_values is not None:
        return Y, data.class_values
    if data.classification and step % (config.epoch_steps or data.n_train) == 0:
        _, out_all, _ = free_solution(resp, data.X)
        means, Y = class_targets(out_all, data.labels, data.n_classes, config.class_margin)
    if data.schedules is not None:
        Y = scheduled_targets(data.schedules, data.steps_per_target, step, data.n_train)
    return Y, means


def _record(h: History, i: int, ci: int | None, resp, data: _Stack, Y, means, eta, config, k, valid, energy,
            energy_total) -> None:
    m = measure(resp, data.X, Y, data.XT, data.YT, eta, labels=data.labels, test_labels=data.test_labels,
                means=means, margin=0.0 if data.class_values is not None else config.class_margin,
                tracking=data.schedules is not None)
    h.store(i, m)
    h.training_energy[:, i] = energy
    h.training_energy_total[:, i] = energy_total
    if h.output_free is not None:
        h.output_free[:, i] = m["output_free"]
        h.output_desired[:, i] = Y
    if ci is not None:
        h.conductance[:, ci] = np.where(valid, k, np.nan)
