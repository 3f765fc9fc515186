"""Shared helpers of the engine tests: run one system and read its history without the system axis."""

from __future__ import annotations

import numpy as np

from edgesim.config import LearningConfig
from edgesim.engine.simulate import simulate


class OneSystem:
    """A one-system History read without its leading system axis (``rec.error_train[-1]``)."""

    def __init__(self, history):
        self.history = history

    def __getattr__(self, name):
        value = getattr(self.history, name)
        return value if value is None or name in ("step", "conductance_step") else value[0]


def run_engine(task, hardware, engine, k0, times, *, seed, alpha=0.5, eta=1e-3, lam=0.0, batch="full",
               k_min=None, k_max=None, deadband=0.0, progress=None, processes=()):
    """:func:`simulate` with the learning settings as keywords; returns (OneSystem, info)."""
    kinds = {"taps": "sign"}
    extra = {k: v for k, v in (("k_min", k_min), ("k_max", k_max)) if v is not None}
    learning = LearningConfig(rule=kinds.get(hardware.memory.kind, "coupled"), batch=batch, alpha=alpha, eta=eta,
                              lambda_=lam, deadband=deadband, **extra)
    history, info = simulate(task, learning, hardware, engine, k0, np.asarray(times, dtype=float), seed=seed,
                             progress=progress, processes=processes)
    return OneSystem(history), info
