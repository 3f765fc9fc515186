"""Damage schedules: which edges fail, when and how (pure functions, shared by the trainer and the engines).

A schedule is a list of *actions* in time order, each resolved to concrete
edges when it happens:

* explicit events (``[[damage.event]]``) name their edges;
* Poisson failures (``[damage.random]``): edge ``e`` fails once, at
  ``T_e = -ln(U_e) / rate`` steps, ``U_e`` a counter-based uniform draw of
  ``(seed, "edge failure", e)``, so every engine sees the same failures;
* random removals (``[[damage.removal]]``): the ``round(fraction * n_present)``
  edges still in the circuit with the smallest counter-based draws of
  ``(seed, "edge removal", e, index)``;
* targeted pruning (``[[damage.pruning]]``): the ``n`` edges ranked first by a
  criterion of the current state (:func:`pruning_ranking`).

Modes: ``open`` removes the edge from the circuit; ``short`` pins it at a high
conductance and freezes it; ``stuck`` freezes it at its present value;
``degraded`` multiplies its update step (or, in the engines, its comparator
noise or its gate's leak time: ``damage.degrade``) by ``damage.degrade_factor``.
Damage that cuts part of the network off is allowed: the physics flags
disconnected outputs (they read 0 V) and the run goes on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.csgraph  # noqa: F401  (sp.csgraph)

from .config import DAMAGE_MODES, DamageConfig
from .nonlinear import make_twin_solver
from .physics import Boundary, free_solution, mean_square_drops
from .seeding import uniform

__all__ = ["DamageAction", "damage_schedule", "removal_choice", "pruning_ranking", "recovery_times", "training_error",
           "MODE_CODES", "damaged_edges", "store_recovery", "boundary_connected", "degraded_gate",
           "removal_errors"]

#: Integer codes of the modes in result files (``flag_values`` / ``flag_meanings``).
MODE_CODES = {mode: i for i, mode in enumerate(DAMAGE_MODES)}


@dataclass(frozen=True)
class DamageAction:
    """One scheduled failure: at ``time`` (s), ``kind`` in {"event", "removal", "pruning"}."""

    time: float
    kind: str
    mode: str
    edges: tuple = ()  # explicit events and Poisson failures
    fraction: float = 0.0  # removals
    n: int = 0  # pruning
    fraction_pruned: float | None = None
    criterion: str = ""
    keep_connected: bool = True
    index: int = 0  # removal number (its random draws)


def damage_schedule(config: DamageConfig, n_edges: int, seed: int, step_duration: float,
                    end_time: float) -> list[DamageAction]:
    """Every failure of a run in time order (ties keep the order: events, Poisson, removals, pruning)."""
    actions = [DamageAction(e.step * step_duration, "event", e.mode, edges=tuple(e.edges)) for e in config.event]
    if config.random.rate > 0:
        t = -np.log(uniform(seed, "edge failure", np.arange(n_edges), 0)) / config.random.rate * step_duration
        for e in np.flatnonzero(t <= end_time):
            actions.append(DamageAction(float(t[e]), "event", config.random.mode, edges=(int(e),)))
    actions += [DamageAction(r.step * step_duration, "removal", r.mode, fraction=r.fraction, index=i)
                for i, r in enumerate(config.removal)]
    actions += [DamageAction(p.step * step_duration, "pruning", p.mode, n=p.n, fraction_pruned=p.fraction,
                             criterion=p.criterion, keep_connected=p.keep_connected) for p in config.pruning]
    return sorted(actions, key=lambda a: a.time)  # sorted() is stable


def removal_choice(present: np.ndarray, fraction: float, seed: int, index: int) -> np.ndarray:
    """The ``round(fraction * n_present)`` present edges with the smallest draws (order-free)."""
    candidates = np.flatnonzero(present)
    n = int(round(fraction * candidates.size))
    draws = uniform(seed, "edge removal", candidates, index)
    return np.sort(candidates[np.argsort(draws, kind="stable")[:n]])


def training_error(network, boundary: Boundary, k, alive, X, Y) -> float:
    """Mean squared error of the free outputs on (X, Y) with conductances ``k`` and edges ``alive`` present."""
    resp = make_twin_solver([network], [boundary]).response(k[None], alive[None])
    _, out, _ = free_solution(resp, X[None])
    return float(((out[0] - Y) ** 2).mean())


def boundary_connected(network, boundary: Boundary, present: np.ndarray) -> bool:
    """Whether the ground, input and output nodes all lie in one connected part of the present edges."""
    edges = network.edges[present]
    adjacency = sp.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])),
                              shape=(network.n_nodes, network.n_nodes))
    _, part = sp.csgraph.connected_components(adjacency, directed=False)
    nodes = [boundary.ground] + [v for row in boundary.rows for v in row if v >= 0]
    return len(set(part[nodes])) == 1


def _without(present: np.ndarray, edge: int) -> np.ndarray:
    trial = present.copy()
    trial[edge] = False
    return trial


def removal_errors(network, boundary: Boundary, k: np.ndarray, present: np.ndarray, X: np.ndarray, Y: np.ndarray,
                   edges) -> np.ndarray:
    """Training error after removing each of ``edges`` alone (exact trials; inf when no edge would be left)."""
    out = np.empty(len(edges))
    for i, e in enumerate(edges):
        trial = _without(present, e)
        out[i] = training_error(network, boundary, k, trial, X, Y) if trial.any() else np.inf
    return out


def pruning_ranking(criterion: str, network, boundary: Boundary, k: np.ndarray, present: np.ndarray,
                    X: np.ndarray, Y: np.ndarray, keep_connected: bool = False) -> np.ndarray:
    """Present edges, most important first, by ``criterion``.

    ``error``: the training error after removing the edge alone (exact
    removal trials, one solve each), largest first; ``current``: the mean
    squared free current ``k_e^2 <dV_e^2>`` over the training inputs, largest
    first; ``conductance``: smallest conductance first.  Ties keep the edge order.
    With ``keep_connected``, edges whose removal would cut a boundary node off
    (:func:`boundary_connected`) are left out.
    """
    candidates = np.flatnonzero(present)
    if keep_connected:
        candidates = np.array([e for e in candidates if boundary_connected(network, boundary, _without(present, e))],
                              dtype=np.int64)
    if criterion == "conductance":
        score = k[candidates]
    elif criterion == "current":
        resp = make_twin_solver([network], [boundary]).response(k[None], present[None])
        currents, _, _ = free_solution(resp, X[None])
        score = -(k ** 2 * mean_square_drops(resp, currents)[0])[candidates]
    elif criterion == "error":
        score = -removal_errors(network, boundary, k, present, X, Y, candidates)
    else:
        raise ValueError(f"unknown pruning criterion {criterion!r}")
    return candidates[np.argsort(score, kind="stable")]


def recovery_times(times: np.ndarray, error: np.ndarray, event_times: np.ndarray, error_before: np.ndarray,
                   multiple: float) -> np.ndarray:
    """Time from each damage event until the recorded error is back below ``multiple`` x its pre-damage value.

    Read from the recorded error series (resolution: the record interval).
    The error must come back before the next damage event (a later event's
    effect is not counted as recovery); NaN if it does not.
    """
    out = np.full(len(event_times), np.nan)
    later_events = np.unique(event_times[np.isfinite(event_times)])
    for i, (t0, before) in enumerate(zip(event_times, error_before)):
        if not np.isfinite(t0):
            continue
        following = later_events[later_events > t0]
        end = following[0] if following.size else np.inf
        back = (times >= t0) & (times < end) & (error <= multiple * before)
        if back.any():
            out[i] = times[np.argmax(back)] - t0
    return out


def damaged_edges(action: DamageAction, present: np.ndarray, seed: int, network, boundary: Boundary,
                  k: np.ndarray, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """The edges an action hits, given the edges ``present`` now (explicit edges already removed are skipped)."""
    if action.kind == "event":
        edges = np.array(action.edges, dtype=np.int64)
        return edges[present[edges]]
    if action.kind == "removal":
        return removal_choice(present, action.fraction, seed, action.index)
    n = action.n if action.fraction_pruned is None else int(round(action.fraction_pruned * present.sum()))
    if n == 0:
        return np.zeros(0, np.int64)
    ranking = pruning_ranking(action.criterion, network, boundary, k, present, X, Y, action.keep_connected)
    if not action.keep_connected:
        return np.sort(ranking[:n])
    # take edges in rank order, skipping any whose removal together with those already taken would cut a
    # boundary node off (the ranking's own filter only looks at each edge alone)
    left, chosen = present.copy(), []
    for e in ranking:
        left[e] = False
        if boundary_connected(network, boundary, left):
            chosen.append(e)
            if len(chosen) == n:
                break
        else:
            left[e] = True
    return np.sort(np.array(chosen, dtype=np.int64))


def store_recovery(history, record_times: np.ndarray, multiple: float, systems=None) -> None:
    """Fill ``history.damage_recovery_time`` (of ``systems``, default all) from the recorded training error
    (see :func:`recovery_times`)."""
    for r in range(history.damage_time.shape[0]) if systems is None else systems:
        history.damage_recovery_time[r] = recovery_times(record_times, history.error_train[r], history.damage_time[r],
                                                         history.damage_error_before[r], multiple)


def degraded_gate(seed: int, edges: np.ndarray, counter, factor: np.ndarray) -> np.ndarray:
    """Potentiometers: a degraded edge moves on a ``factor`` share of its ticks (order-free draws)."""
    gate = np.ones(np.shape(edges), bool)
    weak = factor < 1
    if weak.any():
        counters = np.broadcast_to(counter, np.shape(edges))[weak]
        gate[weak] = uniform(seed, "degraded gate", np.asarray(edges)[weak], counters) < factor[weak]
    return gate
