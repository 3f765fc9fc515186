"""Continuous-time lambda feedback (Stern et al. 2024, Sec. IV), shared by the trainer and the engines.

``d(lambda)/dt = rho lambda ((L_tol / L)^p - 1)``, bounded to
``[lambda_min, lambda_max]``.  ``L`` is a running estimate of the training
error, updated whenever an error sample arrives: with averaging time ``tau``
it relaxes toward the sample as ``L <- e + (L - e) exp(-dt / tau)`` (``tau =
0``: ``L = e``).  Between samples ``L`` is constant, so the equation is
integrated exactly: ``lambda(t) = clip(lambda_k exp(rho g_k (t - t_k)))`` with
``g_k = (L_tol / L_k)^p - 1``; the bounds are exact too, because lambda moves
monotonically between samples.

Early stopping (plain coupled learning, for comparison): learning stops for
good once ``L`` first reaches ``L_tol``.  The time of that first crossing is
kept in both modes (``tolerance_time``).

Everything is vectorised over systems (the trainer's stack); an engine run is
one system.
"""

from __future__ import annotations

import numpy as np

from .config import ControlConfig

__all__ = ["LambdaController"]


class LambdaController:
    """Lambda of ``n`` systems as a function of time, driven by error samples.

    Parameters
    ----------
    config : ControlConfig
    lam0 : array_like (n,)
        Lambda at t = 0 (``learning.lambda``).
    tolerance : array_like (n,), optional
        Per-system ``control.tolerance`` (a swept tolerance); default the config's.
    """

    def __init__(self, config: ControlConfig, lam0, tolerance=None):
        self.config = config
        self.tolerance_setting = np.broadcast_to(
            np.asarray(config.tolerance if tolerance is None else tolerance, dtype=float), np.shape(lam0)).reshape(-1)
        self.lam_k = np.array(lam0, dtype=float).reshape(-1)  # lambda at the last sample
        n = self.lam_k.size
        self.t_k = 0.0
        self.rate = np.zeros(n)  # rho g_k
        self.estimate = np.full(n, np.nan)  # L
        self.tolerance = np.full(n, np.nan)  # L_tol in error units
        self.tolerance_time = np.full(n, np.nan)
        self.stopped = np.zeros(n, bool)

    def lam_at(self, t):
        """Lambda at time(s) ``t`` (broadcast against the systems)."""
        cfg = self.config
        if cfg.kind != "feedback":
            return self.lam_k
        return np.clip(self.lam_k * np.exp(self.rate * (np.asarray(t, dtype=float) - self.t_k)),
                       cfg.lambda_min, cfg.lambda_max)

    def observe(self, t: float, error) -> None:
        """An error sample ``error`` (n,) at time ``t``: update L, the tolerance state and the rate."""
        cfg = self.config
        error = np.asarray(error, dtype=float).reshape(-1)
        lam_now = self.lam_at(t)
        first = np.isnan(self.estimate)
        if cfg.averaging_time > 0 and not first.all():
            relax = np.exp(-(t - self.t_k) / cfg.averaging_time)
            self.estimate = np.where(first, error, error + (self.estimate - error) * relax)
        else:
            self.estimate = error.copy()
        if first.any():
            self.tolerance = np.where(first, self.tolerance_setting * (self.estimate if cfg.relative else 1.0),
                                      self.tolerance)
        reached = (self.estimate <= self.tolerance) & np.isnan(self.tolerance_time)
        self.tolerance_time[reached] = t
        if cfg.early_stop:
            self.stopped |= reached
        self.lam_k = np.asarray(lam_now, dtype=float) * np.ones_like(self.estimate)
        self.t_k = float(t)
        if cfg.kind == "feedback":
            # an exact zero error gives a huge but finite rate: lambda then runs to its upper bound
            ratio = self.tolerance / np.maximum(self.estimate, 1e-300)
            self.rate = cfg.rho * (ratio ** cfg.p - 1.0)
