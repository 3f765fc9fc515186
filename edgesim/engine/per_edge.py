"""The per-edge engine: one simpy process per edge (the readable reference)."""

from __future__ import annotations

import numpy as np

from .core import EDGE_READ, EngineContext, at

__all__ = ["start_per_edge"]


def edge_agent(env, ctx: EngineContext, edge: int):
    """One edge: wait for its clock, read the equilibrium, decide, stage its new conductance."""
    me = np.array([edge])
    while True:
        t = float(ctx.model.next_times(ctx.state, me)[0])
        yield at(env, t, EDGE_READ)
        # The tick time itself, not env.now: simpy's clock can differ from it in the last bit.
        ctx.physics.view(t)
        ctx.events += 1
        ctx.stage(ctx.model.tick(ctx.state, me, np.array([t]), ctx.physics), t)


def start_per_edge(env, ctx: EngineContext) -> None:
    for e in range(ctx.physics.network.n_edges):
        env.process(edge_agent(env, ctx, e))
