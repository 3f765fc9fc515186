"""Every random stream of a run derives from the master seed here, and only here.

Two kinds of randomness:

* :func:`stream` — a NumPy generator for set-up draws of one realization
  (task data, initial conductances), a pure function of
  ``(seed, realization, purpose)``;
* :func:`uniform` / :func:`normal` — counter-based draws for the engines: each
  value is a pure function of ``(seed, purpose, edge, counter)`` computed by a
  vectorised splitmix64 hash.  No generator state is carried, so a draw does
  not depend on the order in which events run or on how edges are batched.
"""

from __future__ import annotations

import zlib
from functools import lru_cache

import numpy as np
from scipy.special import ndtri

__all__ = ["stream", "realization_seed", "uniform", "normal", "purpose_tag"]

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def stream(seed: int, realization: int, purpose: str) -> np.random.Generator:
    """Independent generator for one purpose ("task", "initial", ...) of one realization."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(realization), purpose_tag(purpose)]))


def realization_seed(seed: int, realization: int) -> int:
    """Master seed of one realization's counter-based draws (the engines' hardware and noise)."""
    return int(np.random.SeedSequence([int(seed), int(realization)]).generate_state(1, np.uint64)[0])


def purpose_tag(purpose: str) -> int:
    """Stable 32-bit tag of a purpose name."""
    return zlib.crc32(purpose.encode())


def _mix(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@lru_cache(maxsize=256)
def _key(seed: int, purpose: str) -> np.ndarray:
    with np.errstate(over="ignore"):
        return _mix(np.asarray([seed & 0xFFFFFFFFFFFFFFFF], np.uint64) * _GAMMA + np.uint64(purpose_tag(purpose)))


def _hash(seed, purpose, edge, counter) -> np.ndarray:
    # uint64 array arithmetic wraps modulo 2**64, as the hash intends.
    edge = np.asarray(edge, dtype=np.uint64)
    counter = np.asarray(counter, dtype=np.uint64)
    shape = np.broadcast_shapes(edge.shape, counter.shape)
    # 1-d arrays: scalar numpy integers would warn about the intended wrap-around.
    edge, counter = np.atleast_1d(edge), np.atleast_1d(counter)
    h = _mix(_key(int(seed), purpose) + (edge + np.uint64(1)) * _GAMMA)
    return _mix(h + (counter + np.uint64(1)) * _GAMMA).reshape(shape)


def uniform(seed: int, purpose: str, edge, counter) -> np.ndarray:
    """Uniform draws in the open interval (0, 1), one per (edge, counter) pair (broadcast)."""
    h = _hash(seed, purpose, edge, counter)
    return ((h >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53


def normal(seed: int, purpose: str, edge, counter) -> np.ndarray:
    """Standard normal draws, one per (edge, counter) pair (inverse-CDF of :func:`uniform`)."""
    return ndtri(uniform(seed, purpose, edge, counter))
