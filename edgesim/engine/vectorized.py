"""The vectorised engine: edge state in arrays, one simpy process per cohort of edges.

A cohort wakes at its earliest tick and handles in one batch every tick that
must read the same equilibrium: all ticks at that instant and, with a positive
``settle_time``, every later tick before the equilibrium can next change
(``settle_time`` after the earliest pending change) or another process acts
(``env.peek()``).  Edges that tick more than once in a
window are handled in successive rounds, in order.
"""

from __future__ import annotations

import numpy as np

from .core import EDGE_READ, EngineContext, at

__all__ = ["start_vectorized"]


def cohort(env, ctx: EngineContext, members: np.ndarray):
    model, state, physics = ctx.model, ctx.state, ctx.physics
    times = model.next_times(state, members)
    while True:
        t = float(times.min())
        yield at(env, t, EDGE_READ)
        physics.view(t)
        horizon = min(env.peek(), physics.next_refresh_bound(t))
        due = (times == t) | (times < horizon)
        while due.any():
            batch = members[due]
            ctx.events += batch.size
            updated = model.tick(state, batch, times[due], physics)
            if updated.size:
                # the time of the earliest change, as if each tick had committed on its own
                ctx.stage(updated, float(times[due][np.isin(batch, updated)].min()))
            times[due] = model.next_times(state, batch)
            due = times < horizon


def start_vectorized(env, ctx: EngineContext, n_cohorts: int = 1) -> None:
    edges = np.arange(ctx.physics.network.n_edges)
    for members in np.array_split(edges, max(1, min(n_cohorts, edges.size))):
        env.process(cohort(env, ctx, members))
