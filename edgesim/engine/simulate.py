"""Run one system (task + hardware + learning parameters) through an engine."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import simpy

from ..hardware import HardwareSpec, edge_parameters
from ..tasks import Task
from .core import EngineContext, EngineRecord, Recorder, Supervisor
from .edges import EdgeModel
from .equilibrium import SharedPhysics
from .per_edge import start_per_edge
from .vectorized import start_vectorized

__all__ = ["EngineConfig", "simulate", "ENGINE_KINDS", "AUTO_PER_EDGE_MAX_EDGES"]

ENGINE_KINDS = ("per_edge", "vectorized", "auto")
#: ``auto`` uses the per-edge engine up to this many edges.
AUTO_PER_EDGE_MAX_EDGES = 64


@dataclass(frozen=True)
class EngineConfig:
    """How to run the autonomous-edge simulation.

    Attributes
    ----------
    kind : {"per_edge", "vectorized", "auto"}
    settle_time : float
        Seconds after a conductance change before the network shows the new
        equilibrium (0: exact).
    max_rank : int
        Changed edges tolerated as a low-rank correction before refactoring.
    cohorts : int
        Number of vectorised cohorts (results do not depend on it).
    supervisor_period : float
        Seconds between presentations.
    batch : {"full", "online"}
    class_margin : float
    epoch_steps : int or None
    """

    kind: str = "auto"
    settle_time: float = 0.0
    max_rank: int = 16
    cohorts: int = 1
    supervisor_period: float = 1.0
    batch: str = "full"
    class_margin: float = 0.5
    epoch_steps: int | None = None

    def __post_init__(self):
        if self.kind not in ENGINE_KINDS:
            raise ValueError(f"engine.kind must be one of {ENGINE_KINDS}, got {self.kind!r}")
        if self.settle_time < 0:
            raise ValueError(f"engine.settle_time must be >= 0 s, got {self.settle_time}")
        if self.max_rank < 0 or self.cohorts < 1:
            raise ValueError("engine.max_rank must be >= 0 and engine.cohorts >= 1")
        if self.supervisor_period <= 0:
            raise ValueError(f"supervisor period must be > 0 s, got {self.supervisor_period}")

    def resolved_kind(self, n_edges: int) -> str:
        if self.kind == "auto":
            return "per_edge" if n_edges <= AUTO_PER_EDGE_MAX_EDGES else "vectorized"
        return self.kind


def simulate(task: Task, hardware: HardwareSpec, engine: EngineConfig, initial_conductance: np.ndarray,
             record_times: np.ndarray, *, seed: int, alpha: float, eta: float, lam: float,
             conductance_every: int = 1, progress=None, processes=()) -> tuple[EngineRecord, dict]:
    """Simulate one system with autonomous edges.

    ``processes`` are extra scenario processes (damage schedules, lambda
    controllers, ...): callables ``f(env, ctx)`` returning a simpy generator;
    they share the timeline and should wait on :func:`~edgesim.engine.core.at`
    with the :data:`~edgesim.engine.core.DAMAGE` phase (or another documented
    phase) and change the system through ``ctx.physics`` (``set_alive``,
    ``set_conductance``).

    Returns
    -------
    record : EngineRecord
    info : dict
        Per-edge parameters (``period``, ``phase``, ``offset``, ``leak_time``),
        the engine used and solver statistics.
    """
    E = task.network.n_edges
    params = edge_parameters(hardware, seed, E)
    model = EdgeModel(hardware, params, seed, alpha, eta, lam)
    state, k0 = model.initial_state(initial_conductance)
    physics = SharedPhysics(task.network, task.boundary, k0, params.twin_factor, engine.settle_time, engine.max_rank)
    env = simpy.Environment()
    ctx = EngineContext(env, physics, model, state)
    sup = Supervisor(task, physics, eta, engine.batch, engine.supervisor_period, engine.class_margin,
                     engine.epoch_steps)
    n_rec = len(record_times)
    cmask = np.zeros(n_rec, bool)
    cmask[::max(conductance_every, 1)] = True
    cmask[[0, -1]] = True
    done = env.event()
    recorder = Recorder(task, ctx, sup, record_times, eta, cmask, done)
    env.process(sup.process(env))
    env.process(recorder.process(env))
    for make in processes:
        env.process(make(env, ctx))
    kind = engine.resolved_kind(E)
    if kind == "per_edge":
        start_per_edge(env, ctx)
    else:
        start_vectorized(env, ctx, engine.cohorts)
    recorder.progress = progress
    env.run(until=done)
    info = {"engine": kind, "period": params.period, "phase": params.phase, "offset": params.offset,
            "leak_time": params.leak_time, "refactorizations": physics.free_twin.n_refactor,
            "low_rank_refreshes": physics.free_twin.n_lowrank, "events": ctx.events}
    return recorder.rec, info
