"""Simulated time on simpy: event order, supervisor, recorder and the engine run.

Order of events at one instant (simpy priorities, lower first):

1. ``DAMAGE`` — damage and other scenario hooks that change the network;
2. ``SUPERVISOR`` — presents an example and sets the clamps from the free outputs;
3. ``RECORDER`` — samples the state (so a record at ``t`` shows the
   conductances after every update strictly before ``t``);
4. ``EDGE_READ`` — edges that tick read the visible equilibrium and decide;
5. ``EDGE_COMMIT`` — all decisions of the instant are committed together, so
   ticks at the same instant all read the same equilibrium.

Events of the same phase at the same instant touch disjoint state, so their
relative order does not matter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import simpy

from ..physics import TwinSolver
from ..tasks import Task
from ..trainer import class_targets, measure
from .edges import EdgeModel, EdgeState
from .equilibrium import SharedPhysics

__all__ = ["DAMAGE", "SUPERVISOR", "RECORDER", "EDGE_READ", "EDGE_COMMIT", "at", "EngineContext",
           "Supervisor", "Recorder", "EngineRecord"]

DAMAGE, SUPERVISOR, RECORDER, EDGE_READ, EDGE_COMMIT = 10, 20, 30, 40, 50


def at(env: simpy.Environment, time: float, priority: int) -> simpy.Event:
    """An event that fires at absolute ``time`` with the given phase priority."""
    if time < env.now:
        raise ValueError(f"cannot schedule an event in the past ({time} < {env.now})")
    event = simpy.Event(env)
    event._ok = True
    event._value = None
    env.schedule(event, priority, time - env.now)
    return event


class EngineContext:
    """Everything the processes of one run share; commits staged edge updates."""

    def __init__(self, env: simpy.Environment, physics: SharedPhysics, model: EdgeModel, state: EdgeState):
        self.env = env
        self.physics = physics
        self.model = model
        self.state = state
        self.events = 0
        self._staged_edges: list[np.ndarray] = []
        self._staged_values: list[np.ndarray] = []
        self._commit_pending = False
        self._staged_time = np.inf

    def stage(self, edges: np.ndarray, values: np.ndarray, time: float) -> None:
        """Queue new conductances decided at ``time``; they are committed at the end of the instant."""
        if edges.size == 0:
            return
        self._staged_edges.append(edges)
        self._staged_values.append(values)
        self._staged_time = min(self._staged_time, time)
        if not self._commit_pending:
            self._commit_pending = True
            at(self.env, self.env.now, EDGE_COMMIT).callbacks.append(self._commit)

    def _commit(self, _event) -> None:
        if len(self._staged_edges) == 1:
            self.physics.set_conductance(self._staged_edges[0], self._staged_values[0], self._staged_time)
        else:
            edges = np.concatenate(self._staged_edges)
            values = np.concatenate(self._staged_values)
            order = np.argsort(edges, kind="stable")
            self.physics.set_conductance(edges[order], values[order], self._staged_time)
        self._staged_time = np.inf
        self._staged_edges.clear()
        self._staged_values.clear()
        self._commit_pending = False


class Supervisor:
    """Presents training examples on its own clock and computes the clamps.

    Online: one example per presentation, cycling through the training set.
    Full batch: every example at once.  Classification targets are reset at
    the start of every epoch (``epoch_steps`` presentations), as in the
    synchronous trainer.
    """

    def __init__(self, task: Task, physics: SharedPhysics, eta: float, batch: str, period: float,
                 class_margin: float, epoch_steps: int | None):
        self.task = task
        self.physics = physics
        self.eta = eta
        self.batch = batch
        self.period = period
        self.margin = class_margin
        self.epoch_steps = epoch_steps or task.n_train
        self.count = 0
        self.desired = task.train_targets.copy()
        self.means = None

    def process(self, env):
        while True:
            yield at(env, self.count * self.period, SUPERVISOR)
            self.present(env.now)
            self.count += 1

    def present(self, t: float) -> None:
        task, s = self.task, self.count
        X = task.train_inputs
        if task.kind == "classification" and s % self.epoch_steps == 0:
            out_all = self.physics.free_outputs(t, X)
            means, desired = class_targets(out_all[None], task.train_labels[None], task.n_classes, self.margin)
            self.means, self.desired = means, desired[0]
        if task.target_schedule is not None:
            phase = (s // task.steps_per_target) % task.target_schedule.shape[0]
            self.desired = np.broadcast_to(task.target_schedule[phase][:, None], task.train_targets.shape)
        if self.batch == "online":
            ex = slice(s % task.n_train, s % task.n_train + 1)
            x, y = X[:, ex], self.desired[:, ex]
        else:
            x, y = X, self.desired
        out = self.physics.free_outputs(t, x)
        self.physics.set_boundary(t, x, out + self.eta * (y - out))


@dataclass
class EngineRecord:
    """Recorded trajectory of one system."""

    time: np.ndarray
    error_train: np.ndarray
    error_test: np.ndarray
    free_power: np.ndarray
    clamped_power: np.ndarray
    training_energy: np.ndarray
    training_energy_total: np.ndarray
    alive_edges: np.ndarray
    conductance: np.ndarray
    updates: np.ndarray
    events: np.ndarray
    conductance_index: np.ndarray
    accuracy_train: np.ndarray | None = None
    accuracy_test: np.ndarray | None = None
    output_free: np.ndarray | None = None
    output_desired: np.ndarray | None = None


class Recorder:
    """Samples exact metrics of the current state at given times (it never changes the dynamics)."""

    def __init__(self, task: Task, ctx: EngineContext, supervisor: Supervisor, times: np.ndarray, eta: float,
                 conductance_mask: np.ndarray, done: simpy.Event):
        self.task = task
        self.ctx = ctx
        self.sup = supervisor
        self.times = np.asarray(times, dtype=float)
        self.eta = eta
        self.cmask = conductance_mask
        self.done = done
        self.progress = None  # called with the simulated seconds since the previous record
        self.solver = TwinSolver([task.network], [task.boundary])
        self.clamped_solver = TwinSolver([task.network], [task.boundary])
        n, E = len(self.times), task.network.n_edges
        cls = task.kind == "classification"
        keep_outputs = task.n_train <= 4
        no = len(task.boundary.outputs)
        self.rec = EngineRecord(
            time=self.times, error_train=np.zeros(n), error_test=np.zeros(n), free_power=np.zeros(n),
            clamped_power=np.zeros(n), training_energy=np.zeros(n), training_energy_total=np.zeros(n),
            alive_edges=np.zeros(n, np.int64), conductance=np.full((int(conductance_mask.sum()), E), np.nan),
            updates=np.zeros((int(conductance_mask.sum()), E), np.int64), events=np.zeros(n, np.int64),
            conductance_index=np.flatnonzero(conductance_mask),
            accuracy_train=np.zeros(n) if cls else None, accuracy_test=np.zeros(n) if cls else None,
            output_free=np.zeros((n, no, task.n_train)) if keep_outputs else None,
            output_desired=np.zeros((n, no, task.n_train)) if keep_outputs else None)

    def process(self, env):
        ci = 0
        for i, t in enumerate(self.times):
            yield at(env, t, RECORDER)
            self.sample(i, t)
            if self.progress is not None:
                self.progress(t - (self.times[i - 1] if i else 0.0))
            if self.cmask[i]:
                self.rec.conductance[ci] = np.where(self.ctx.physics.alive, self.ctx.physics.k, np.nan)
                self.rec.updates[ci] = self.ctx.state.updates
                ci += 1
        self.done.succeed()

    def sample(self, i: int, t: float) -> None:
        task, phys, rec = self.task, self.ctx.physics, self.rec
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
        for name in ("error_train", "error_test", "free_power", "clamped_power", "accuracy_train", "accuracy_test"):
            if name in m:
                getattr(rec, name)[i] = m[name][0]
        out = m["output_free"]
        rec.training_energy[i], rec.training_energy_total[i] = phys.energy_at(t)
        rec.alive_edges[i] = int(phys.alive.sum())
        rec.events[i] = self.ctx.events
        if rec.output_free is not None:
            rec.output_free[i] = out[0]
            rec.output_desired[i] = Y[0]
