"""Simulated time on simpy: event order, the context scenario processes act through, supervisor, recorder.

Order of events at one instant (simpy priorities, lower first):

1. ``DAMAGE`` — damage and other scenario processes that change the network;
2. ``SUPERVISOR`` — presents an example and sets the clamps from the free outputs;
3. ``RECORDER`` — samples the state (so a record at ``t`` shows the
   conductances after every update strictly before ``t``);
4. ``EDGE_READ`` — edges that tick read the visible equilibrium and decide;
5. ``EDGE_COMMIT`` — all decisions of the instant are committed together, so
   ticks at the same instant all read the same equilibrium;
6. ``CONTROL`` — the lambda controller takes the error the supervisor
   measured at this instant; lambda changes continuously from then on (edges
   ticking at this instant used the value before it).

Events of the same phase at the same instant touch disjoint state, so their
relative order does not matter.
"""

from __future__ import annotations

import numpy as np
import simpy

from ..damage import MODE_CODES, damaged_edges, training_error
from ..history import History
from ..measure import class_targets, clamp_values, measure, presented, scheduled_targets
from ..nonlinear import make_twin_solver
from ..tasks import Task
from .edges import EdgeModel, EdgeState
from .shared_physics import SharedPhysics

__all__ = ["DAMAGE", "SUPERVISOR", "RECORDER", "EDGE_READ", "EDGE_COMMIT", "CONTROL", "at", "EngineContext",
           "Supervisor", "Recorder", "Controller", "DamageProcess"]

DAMAGE, SUPERVISOR, RECORDER, EDGE_READ, EDGE_COMMIT, CONTROL = 10, 20, 30, 40, 50, 60


class _At(simpy.Event):
    # simpy has no public call that schedules an event at a delay with a priority; like simpy.Timeout,
    # this event marks itself triggered and schedules itself with the public Environment.schedule.
    def __init__(self, env: simpy.Environment, delay: float, priority: int):
        super().__init__(env)
        self._ok = True
        self._value = None
        env.schedule(self, priority, delay)


def at(env: simpy.Environment, time: float, priority: int) -> simpy.Event:
    """An event that fires at absolute ``time`` with the given phase priority."""
    if time < env.now:
        raise ValueError(f"cannot schedule an event in the past ({time} < {env.now})")
    return _At(env, time - env.now, priority)


class EngineContext:
    """Everything the processes of one run share, and the API scenario processes act through.

    Scenario processes (damage schedules, controllers, tests) change edges
    only with :meth:`set_conductance` and :meth:`set_alive`: a conductance is
    written into the edge's memory, which is the only source of an edge's
    conductance, so the edge's next update starts from it.
    """

    def __init__(self, env: simpy.Environment, physics: SharedPhysics, model: EdgeModel, state: EdgeState):
        self.env = env
        self.physics = physics
        self.model = model
        self.state = state
        self.events = 0
        self._staged: list[np.ndarray] = []
        self._staged_time = np.inf

    # -- the scenario-process API -------------------------------------------------------------
    @property
    def conductance(self) -> np.ndarray:
        """Committed conductances (a copy, S)."""
        return self.physics.k.copy()

    @property
    def alive(self) -> np.ndarray:
        """Edges present in the circuit (a copy)."""
        return self.physics.alive.copy()

    def set_conductance(self, edges, values) -> None:
        """Set the memories of ``edges`` to ``values`` now (taps snap to the ladder, values are clipped)."""
        edges = np.atleast_1d(np.asarray(edges, dtype=np.int64))
        values = np.broadcast_to(np.asarray(values, dtype=float), edges.shape)
        if not np.isfinite(values).all() or (values <= 0).any():
            raise ValueError(f"conductances must be positive and finite, got {values}")
        self.model.write(self.state, edges, values)
        self.physics.commit(edges, self.env.now)

    def set_alive(self, edges, alive: bool) -> None:
        """Remove (``alive=False``) or restore edges now; removed edges stop learning."""
        self.physics.set_alive(np.atleast_1d(np.asarray(edges, dtype=np.int64)), alive, self.env.now)

    # -- the engines' commit of edge updates ------------------------------------------------------
    def stage(self, edges: np.ndarray, time: float) -> None:
        """Queue memories updated at ``time``; they are committed at the end of the instant."""
        if edges.size == 0:
            return
        if not self._staged:
            at(self.env, self.env.now, EDGE_COMMIT).callbacks.append(self._commit)
        self._staged.append(edges)
        self._staged_time = min(self._staged_time, time)

    def _commit(self, _event) -> None:
        edges = self._staged[0] if len(self._staged) == 1 else np.unique(np.concatenate(self._staged))
        self.physics.commit(edges, self._staged_time)
        self._staged_time = np.inf
        self._staged.clear()


class Supervisor:
    """Presents training examples on its own clock and computes the clamps.

    Online: one example per presentation, cycling through the training set.
    Full batch: every example at once.  Classification targets are reset at
    the start of every epoch (``epoch_steps`` presentations), as in the
    synchronous trainer, unless the task fixes them (``task.class_values``).
    """

    def __init__(self, task: Task, physics: SharedPhysics, eta: float, batch: str, period: float,
                 class_margin: float, epoch_steps: int):
        self.task = task
        self.physics = physics
        self.eta = eta
        self.batch = batch
        self.period = period
        # fixed class values (task.class_values) are their own class means, pushed apart by nothing
        self.margin = 0.0 if task.class_values is not None else class_margin
        self.epoch_steps = epoch_steps or task.n_train
        self.count = 0
        self.desired = task.train_targets.copy()
        self.means = None
        self.error = np.nan  # mean squared error of the free outputs on the examples last presented

    def process(self, env):
        while True:
            yield at(env, self.count * self.period, SUPERVISOR)
            self.present(env.now)
            self.count += 1

    def present(self, t: float) -> None:
        task, s = self.task, self.count
        X = task.train_inputs
        if task.class_values is not None:
            self.means = task.class_values[None]
        elif task.kind == "classification" and s % self.epoch_steps == 0:
            out_all = self.physics.free_outputs(t, X)
            means, desired = class_targets(out_all[None], task.train_labels[None], task.n_classes, self.margin)
            self.means, self.desired = means, desired[0]
        if task.target_schedule is not None:
            self.desired = scheduled_targets(task.target_schedule, task.steps_per_target, s, task.n_train)
        ex = presented(self.batch, s, task.n_train)
        x, y = X[:, ex], self.desired[:, ex]
        out = self.physics.free_outputs(t, x)
        self.error = float(((out - y) ** 2).mean())
        self.physics.set_boundary(t, x, clamp_values(out, y, self.eta))


class Recorder:
    """Samples exact metrics of the current state at given times (it never changes the dynamics)."""

    def __init__(self, task: Task, ctx: EngineContext, supervisor: Supervisor, history: History, times: np.ndarray,
                 eta: float, done: simpy.Event, solver_options: dict | None = None):
        solver_options = solver_options or {}
        self.task = task
        self.ctx = ctx
        self.sup = supervisor
        self.history = history
        self.times = np.asarray(times, dtype=float)
        self.eta = eta
        self.cmask = np.zeros(len(self.times), bool)
        self.cmask[np.searchsorted(history.step, history.conductance_step)] = True
        self.done = done
        self.progress = None  # called with the simulated seconds since the previous record
        self.solver = make_twin_solver([task.network], [task.boundary], **solver_options)
        self.clamped_solver = make_twin_solver([task.network], [task.boundary], **solver_options)

    def process(self, env):
        ci = 0
        h = self.history
        for i, t in enumerate(self.times):
            yield at(env, t, RECORDER)
            self.sample(i, t)
            if self.progress is not None:
                self.progress(t - (self.times[i - 1] if i else 0.0))
            if self.cmask[i]:
                h.conductance[0, ci] = np.where(self.ctx.physics.alive, self.ctx.physics.k, np.nan)
                h.update_count[0, ci] = self.ctx.state.updates
                ci += 1
        self.done.succeed()

    def sample(self, i: int, t: float) -> None:
        task, phys, h = self.task, self.ctx.physics, self.history
        resp = self.solver.response(phys.k[None], phys.alive[None])
        clamped_resp = None
        if phys.mismatch:
            clamped_resp = self.clamped_solver.response((phys.k * phys.twin_factor)[None], phys.alive[None])
        X, XT = task.train_inputs[None], task.test_inputs[None]
        Y = self.sup.desired[None]
        cls = task.kind == "classification"
        m = measure(resp, X, Y, XT, task.test_targets[None], self.eta,
                    labels=task.train_labels[None] if cls else None,
                    test_labels=task.test_labels[None] if cls else None, means=self.sup.means if cls else None,
                    margin=self.sup.margin, tracking=task.target_schedule is not None, clamped_resp=clamped_resp)
        h.store(i, m)
        h.training_energy[0, i], h.training_energy_total[0, i] = phys.energy_at(t)
        h.alive_edges[0, i] = int(phys.alive.sum())
        if h.lambda_ is not None:
            h.lambda_[0, i] = float(self.ctx.model.controller.lam_at(t)[0])
        h.edge_events[0, i] = self.ctx.events
        if h.output_free is not None:
            h.output_free[0, i] = m["output_free"][0]
            h.output_desired[0, i] = Y[0]


class Controller:
    """The lambda controller as its own process: one error sample per presentation (:mod:`edgesim.control`)."""

    def __init__(self, controller, supervisor: Supervisor, physics: SharedPhysics, history: History):
        self.controller = controller
        self.sup = supervisor
        self.physics = physics
        self.history = history

    def process(self, env):
        n = 0
        while True:
            yield at(env, n * self.sup.period, CONTROL)
            t = env.now
            waiting = np.isnan(self.controller.tolerance_time)
            self.controller.observe(t, [self.sup.error])
            if waiting[0] and not np.isnan(self.controller.tolerance_time[0]):
                self.history.tolerance_time[0] = t
                self.history.training_energy_to_tolerance[0] = self.physics.energy_at(t)[0]
            n += 1


class DamageProcess:
    """Applies a damage schedule (:func:`edgesim.damage.damage_schedule`) through the context's API."""

    def __init__(self, schedule, config, ctx: EngineContext, supervisor: Supervisor, task: Task, seed: int,
                 short_conductance: float):
        self.schedule = schedule
        self.config = config
        self.ctx = ctx
        self.sup = supervisor
        self.task = task
        self.seed = seed
        self.short = short_conductance
        self.log = []  # (time, edge, mode code, error before, error after)

    def process(self, env):
        for action in self.schedule:
            yield at(env, max(action.time, env.now), DAMAGE)
            self.apply(action, env.now)

    def _error(self):
        phys = self.ctx.physics
        return training_error(self.task.network, self.task.boundary, phys.k, phys.alive, self.task.train_inputs,
                              self.sup.desired)

    def apply(self, action, t: float) -> None:
        ctx, state = self.ctx, self.ctx.state
        edges = damaged_edges(action, ctx.physics.alive.copy(), self.seed, self.task.network, self.task.boundary,
                              ctx.physics.k, self.task.train_inputs, self.sup.desired)
        if edges.size == 0:
            return
        before = self._error()
        ctx.model.damaged = True
        if action.mode == "open":
            ctx.set_alive(edges, False)
        elif action.mode == "short":
            ctx.set_conductance(edges, self.short)
            state.frozen[edges] = True
        elif action.mode == "stuck":
            state.frozen[edges] = True
        else:
            factor = {"step": state.step_factor, "noise": state.noise_factor, "leak": state.leak_factor}
            factor[self.config.degrade][edges] *= self.config.degrade_factor
        after = self._error()
        self.log.extend((t, int(e), MODE_CODES[action.mode], before, after) for e in edges)
