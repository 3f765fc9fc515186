"""Local learning rules as pure functions of the twins' edge drops.

All functions broadcast over leading axes; the last axis of the drop arrays
is usually the example axis.  Conductance updates are in the units of the
conductance (siemens for SI networks) per update.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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


@dataclass(frozen=True)
class TapLadder:
    """The discrete conductance values of a digital potentiometer.

    Parameters
    ----------
    n_taps : int
        Number of wiper positions (AD5220: 128).
    low, high : float
        Range of the controlled quantity: resistances in ohms when
        ``quantity="resistance"``, conductances in siemens otherwise.
    quantity : {"resistance", "conductance"}
        Which quantity the taps step in.
    spacing : {"linear", "log"}
        Equal steps or equal ratios between taps.

    Notes
    -----
    Taps are indexed in order of increasing conductance, so a +1 sign-rule
    step always raises the conductance.
    """

    n_taps: int = 128
    low: float = 100e3 / 128
    high: float = 100e3
    quantity: str = "resistance"
    spacing: str = "linear"

    def __post_init__(self):
        if self.n_taps < 2:
            raise ValueError(f"a tap ladder needs at least 2 taps, got n_taps={self.n_taps}")
        if not 0 < self.low < self.high:
            raise ValueError(f"tap range must satisfy 0 < low < high, got low={self.low}, high={self.high}")
        if self.quantity not in ("resistance", "conductance"):
            raise ValueError(f"tap quantity must be 'resistance' or 'conductance', got {self.quantity!r}")
        if self.spacing not in ("linear", "log"):
            raise ValueError(f"tap spacing must be 'linear' or 'log', got {self.spacing!r}")

    @property
    def conductances(self) -> np.ndarray:
        """Conductance of every tap, ascending (siemens if ``low``/``high`` are SI)."""
        if self.spacing == "linear":
            values = np.linspace(self.low, self.high, self.n_taps)
        else:
            values = np.geomspace(self.low, self.high, self.n_taps)
        k = 1.0 / values if self.quantity == "resistance" else values
        return np.sort(k)

    def nearest_tap(self, conductance) -> np.ndarray:
        """Index of the tap whose conductance is closest to ``conductance``."""
        k = self.conductances
        c = np.asarray(conductance, dtype=float)
        idx = np.clip(np.searchsorted(k, c), 1, len(k) - 1)
        lower_closer = np.abs(c - k[idx - 1]) <= np.abs(k[idx] - c)
        return np.where(lower_closer, idx - 1, idx).astype(np.int64)

    def step(self, tap, direction) -> np.ndarray:
        """Move each tap index by ``direction`` (+1/0/-1), staying on the ladder."""
        return np.clip(np.asarray(tap) + np.asarray(direction, dtype=np.int64), 0, self.n_taps - 1)
