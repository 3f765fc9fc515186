"""Local learning rules as pure functions of the twins' edge drops.

All functions broadcast over leading axes; the last axis of the drop arrays
is usually the example axis.  Conductance updates are in the units of the
conductance (siemens for SI networks) per update.
"""

from __future__ import annotations

import numpy as np

from .config import TapLadder  # the sign rule's ladder is configuration; re-exported here

__all__ = [
    "coupled_learning_update",
    "coupled_learning_update_squared",
    "sign_rule_direction",
    "clip_conductance",
    "TapLadder",
]


def coupled_learning_update(free_drop, clamped_drop, alpha: float, eta: float, lam=0.0):
    """Power-efficient coupled learning update of every edge.

    ``dk = -(alpha / eta) * [ dV_C^2 - (1 - lambda) dV_F^2 ]``; ``lambda = 0`` is
    plain coupled learning, ``lambda = 1`` directed aging.

    Parameters
    ----------
    free_drop, clamped_drop : array_like
        Edge drops in the free and clamped twins (volts), same shape.
    alpha : float
        Learning rate (conductance units per V^2 per unit nudge).
    eta : float
        Nudge amplitude, ``0 < eta <= 1``.
    lam : float or array_like
        Power-efficiency amplitude lambda (broadcasts against the drops).

    Returns
    -------
    ndarray
        Conductance change per edge (and example).
    """
    return coupled_learning_update_squared(free_drop**2, clamped_drop**2, alpha, eta, lam)


def coupled_learning_update_squared(free_drop_sq, clamped_drop_sq, alpha: float, eta: float, lam=0.0):
    """:func:`coupled_learning_update` from squared drops (e.g. their means over a batch).

    The rule is linear in the squared drops, so the full-batch update (mean over
    examples) is this function applied to the mean squared drops.
    """
    return -(alpha / eta) * (clamped_drop_sq - (1.0 - lam) * free_drop_sq)


def sign_rule_direction(free_drop, clamped_drop, lam=0.0, deadband: float = 0.0, comparator_error=0.0):
    """Tap direction of the discrete sign rule (Dillavou et al. 2022).

    The edge compares ``|dV_F|`` (scaled by the gain ``sqrt(1 - lambda)``) with
    ``|dV_C|``: if the free drop is larger it raises its conductance by one tap,
    if smaller it lowers it, and within ``deadband`` (volts) it holds.  This is
    the sign of the coupled-learning update.  ``comparator_error`` (volts, e.g.
    a comparator's offset plus noise) is added to the clamped reading.

    Returns
    -------
    ndarray of int8
        +1 (more conductance), -1 (less) or 0.
    """
    gain = np.sqrt(np.clip(1.0 - np.asarray(lam, dtype=float), 0.0, None))
    diff = gain * np.abs(free_drop) - (np.abs(clamped_drop) + comparator_error)
    return (np.sign(diff) * (np.abs(diff) > deadband)).astype(np.int8)


def clip_conductance(k, k_min, k_max):
    """Clip conductances to the element's range ``[k_min, k_max]``."""
    return np.minimum(np.maximum(k, k_min), k_max)
