"""Run one system (task + learning + hardware) through an autonomous-edge engine."""

from __future__ import annotations

import numpy as np
import simpy

from ..config import ControlConfig, DamageConfig, EngineConfig, HardwareSpec, LearningConfig, SolverConfig
from ..control import LambdaController
from ..damage import damage_schedule, store_recovery
from ..hardware import edge_parameters
from ..seeding import normal
from ..history import History, conductance_records
from ..tasks import Task
from .core import Controller, DamageProcess, EngineContext, Recorder, Supervisor
from .edges import EdgeModel
from .per_edge import start_per_edge
from .shared_physics import SharedPhysics
from .vectorized import start_vectorized

__all__ = ["simulate"]


def simulate(task: Task, learning: LearningConfig, hardware: HardwareSpec, engine: EngineConfig,
             initial_conductance: np.ndarray, record_times: np.ndarray, *, seed: int,
             record_steps: np.ndarray | None = None, conductance_every: int = 1, progress=None,
             processes=(), control: ControlConfig | None = None, damage: DamageConfig | None = None,
             step_duration: float = 1.0, failed=None, solver: SolverConfig | None = None) -> tuple[History, dict]:
    """Simulate one system with autonomous edges.

    Parameters
    ----------
    task : Task
    learning : LearningConfig
        Rule, batch mode, alpha, eta, lambda, the element's range and tap ladder.
    hardware : HardwareSpec
        Clocks, comparators and memory elements.
    engine : EngineConfig
        ``kind`` (``per_edge``, ``vectorized`` or ``auto``), settling, solver policy, supervisor period.
    initial_conductance : ndarray (E,)
        Conductances the memories start from (S).
    record_times : ndarray
        Simulated times (s) of the records; the run ends at the last one.
    seed : int
        Master seed of the counter-based draws.
    record_steps : ndarray of int, optional
        Labels of the records (the ``step`` axis; default ``0, 1, 2, ...``).
    conductance_every : int
        Keep conductances at every ``conductance_every``-th record (and the first and last).
    progress : callable, optional
        Called with the simulated seconds covered since the previous record.
    processes : sequence of callables
        Extra scenario processes ``f(env, ctx)`` returning a simpy generator.
        They share the timeline, should wait on :func:`~edgesim.engine.core.at`
        with the :data:`~edgesim.engine.core.DAMAGE` phase, and change the
        system only through ``ctx.set_conductance`` and ``ctx.set_alive``
        (:class:`~edgesim.engine.core.EngineContext`).
    control : ControlConfig, optional
        Lambda feedback or early stopping; the controller samples the error the
        supervisor measures at each presentation and lambda starts at
        ``learning.lambda``.
    damage : DamageConfig, optional
        Failures (:mod:`edgesim.damage`); steps are converted to seconds with ``step_duration``.
    step_duration : float
        Seconds per step of the damage schedule.
    solver : SolverConfig, optional
        Solver backend and tolerance of the shared physics (default: automatic).
    failed : (alive, frozen), optional
        Edges already removed or frozen at t = 0 (a protocol's earlier phases).

    Returns
    -------
    history : History
        One system's record, with the engine fields filled in.
    info : dict
        The engine used, solver statistics (``refactorizations``,
        ``low_rank_updates``, ``guard_refactorizations``, ``largest_residual``, ``factorizations``;
        see :class:`edgesim.solvers.SolverStats`)
        and ``events``.
    """
    kind = engine.resolved_kind(task.network.n_edges)
    if kind not in ("per_edge", "vectorized"):
        raise ValueError(f"engine.kind = {engine.kind!r} is not an autonomous-edge engine; "
                         "use 'per_edge', 'vectorized' or 'auto' (or the trainer for 'synchronous')")
    E = task.network.n_edges
    params = edge_parameters(hardware, seed, E)
    controller = None
    if control is not None and control.active:
        controller = LambdaController(control, [learning.lambda_])
    gain = None
    if control is not None and control.gain_mismatch_std > 0:
        gain = 1.0 + control.gain_mismatch_std * normal(seed, "lambda gain", np.arange(E), 0)
    model = EdgeModel(hardware, params, seed, learning, controller, gain, gate=task.network.law)
    state, _ = model.initial_state(initial_conductance)
    solver = solver or SolverConfig()
    physics = SharedPhysics(task.network, task.boundary, state.conductance, params.twin_factor, engine.settle_time,
                            engine.max_rank, engine.lowrank_tolerance, solver.backend, solver.tolerance,
                            solver.newton_tolerance, solver.newton_max_iterations)
    if failed is not None and (not failed[0].all() or failed[1].any()):
        physics.set_alive(np.flatnonzero(~failed[0]), False, 0.0)
        state.frozen |= failed[1]
        model.damaged = True
    env = simpy.Environment()
    ctx = EngineContext(env, physics, model, state)
    sup = Supervisor(task, physics, learning.eta, learning.batch, engine.supervisor_period, learning.class_margin,
                     learning.epoch_steps)
    record_times = np.asarray(record_times, dtype=float)
    steps = np.arange(len(record_times)) if record_steps is None else np.asarray(record_steps)
    history = History.empty(1, steps, steps[conductance_records(len(steps), conductance_every)], E,
                            len(task.boundary.outputs), task.n_train, classification=task.kind == "classification",
                            engine=True)
    history.clock_period, history.clock_phase = params.period[None], params.phase[None]
    history.comparator_offset, history.edge_leak_time = params.offset[None], params.leak_time[None]
    if controller is not None:
        history.lambda_ = np.zeros((1, len(steps)))
        history.tolerance_time = np.full(1, np.nan)
        history.training_energy_to_tolerance = np.full(1, np.nan)
        env.process(Controller(controller, sup, physics, history).process(env))
    damager = None
    if damage is not None and damage.active:
        damage.check_edges(E)
        schedule = damage_schedule(damage, E, seed, step_duration, float(record_times[-1]))
        damager = DamageProcess(schedule, damage, ctx, sup, task, seed, damage.short_conductance or learning.k_max)
        env.process(damager.process(env))
    done = env.event()
    recorder = Recorder(task, ctx, sup, history, record_times, learning.eta, done,
                        dict(backend=solver.backend if task.network.law is not None else "auto",
                             newton_tolerance=solver.newton_tolerance, max_iterations=solver.newton_max_iterations))
    env.process(sup.process(env))
    env.process(recorder.process(env))
    for make in processes:
        env.process(make(env, ctx))
    if kind == "per_edge":
        start_per_edge(env, ctx)
    else:
        start_vectorized(env, ctx, engine.cohorts)
    recorder.progress = progress
    env.run(until=done)
    if damager is not None:
        history.store_damage([damager.log])
        store_recovery(history, record_times, damage.recovery_multiple)
    history.final_alive, history.final_frozen = physics.alive[None].copy(), state.frozen[None].copy()
    stats = physics.stats
    info = {"engine": kind, "refactorizations": stats.refactorizations, "low_rank_updates": stats.low_rank_updates,
            "guard_refactorizations": stats.guard_refactorizations, "largest_residual": stats.largest_residual,
            "factorizations": stats.factorizations,
            "events": ctx.events}
    return history, info
