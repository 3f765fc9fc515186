"""The training loop of the published code of Stern et al. 2024, reimplemented.

Reference: the notebook ``PowerEfficientRegression.ipynb`` (with
``FastFlowNets.py``) of github.com/NachiStern/Power-efficient-learning, the
code of "Contrastive power-efficient physical learning in resistor networks"
(Stern, Dillavou, Jayaraman, Durian, Liu).  This module is an independent
numpy reimplementation of its algorithm, written for the speed baseline of
``bench_sync.py``; no code is copied.

The algorithm, per realization and lambda value (full batch):

* The network is the dense incidence matrix ``D`` (edges x nodes).  The free
  twin is the bordered ("Lagrange multiplier") matrix
  ``[[L, C_f^T], [C_f, 0]]`` with ``L = D^T diag(k) D``; the constraint rows
  ``C_f`` are the ground (node ``N - 1``) and the source edges.  The clamped
  twin adds the target-edge rows.  Both bordered matrices are kept as dense
  *inverses*; a state is the inverse times a right-hand side that is zero in
  the node block and holds 0 (ground), the source drops and (clamped) the
  clamp values in the constraint block.
* Each step: free state of the 20 training examples, clamp
  ``V_F + eta (V_D - V_F)`` on the target edges, clamped state, then
  ``k <- clip(k - (alpha/eta) mean_x[dV_C^2 - (1 - lambda) dV_F^2], 1e-4, 1e6)``.
* Inverse maintenance after the update (the point of this baseline): if the
  conductances moved by more than ``1e-4`` (Euclidean norm of ``k_new - k_old``,
  after clipping), or the step number (1-based) is a multiple of 1000, both
  matrices are rebuilt and re-inverted exactly (``numpy.linalg.inv``);
  otherwise both inverses get the first-order (truncated Neumann) update
  ``M^-1 <- M^-1 - M^-1 dM M^-1`` with ``dM = D^T diag(dk) D`` in the node
  block.  Early in training every step re-inverts; once the conductances
  settle the loop runs on the cheap first-order update, so the published code
  speeds up as training converges.

Costs are kept those of the published implementation: dense ``L`` built from
the dense incidence matrix, dense ``inv`` of both bordered matrices, dense
matrix products for the first-order update and for the states (the full
bordered inverse times the full right-hand side).  The published code's
bookkeeping outside the training loop proper (its 400 log-spaced measurements
of train/test/out-of-distribution error and power, the ``i in CompSteps``
membership test and the progress print every 10000 steps) is left out; the
training error of every step is a free by-product and is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PublishedRun", "train_published"]

#: The published code's re-inversion threshold on ``|k_new - k_old|`` and exact-inversion period.
REFRESH_THRESHOLD = 1e-4
REFRESH_EVERY = 1000


@dataclass
class PublishedRun:
    """Result of :func:`train_published`.

    Attributes
    ----------
    conductance : ndarray (n_edges,)
        Conductances after the last update.
    errors : ndarray (steps + 1,)
        Training error (edgesim convention: mean over outputs and examples of
        the squared output error) measured before each update and after the last.
    inversions : int
        Steps whose update was followed by an exact re-inversion.
    first_order : int
        Steps whose update was followed by the first-order inverse update.
    exact : ndarray of bool (steps,)
        Whether the update of each step was followed by an exact re-inversion.
    inverse_drift : float
        Largest relative deviation ``|M^-1_approx - inv(M)|_F / |inv(M)|_F`` of the
        maintained inverses seen at any step (only with ``track_drift``; else nan).
    """

    conductance: np.ndarray
    errors: np.ndarray
    inversions: int
    first_order: int
    exact: np.ndarray
    inverse_drift: float = float("nan")


def _constraint_rows(n_nodes: int, rows) -> np.ndarray:
    """One row per constraint ``(a, b)``: ``V_a - V_b`` (``b = -1``: ``V_a``)."""
    C = np.zeros((len(rows), n_nodes))
    for i, (a, b) in enumerate(rows):
        C[i, a] = 1.0
        if b >= 0:
            C[i, b] = -1.0
    return C


def _bordered(laplacian: np.ndarray, constraints: np.ndarray) -> np.ndarray:
    n, m = laplacian.shape[0], constraints.shape[0]
    M = np.zeros((n + m, n + m))
    M[:n, :n] = laplacian
    M[n:, :n] = constraints
    M[:n, n:] = constraints.T
    return M


def train_published(task, steps: int, alpha: float = 0.5, eta: float = 1e-3, lam: float = 0.0,
                    k0=1.0, k_min: float = 1e-4, k_max: float = 1e6,
                    refresh_threshold: float = REFRESH_THRESHOLD, refresh_every: int = REFRESH_EVERY,
                    ground: int | None = None, track_drift: bool = False) -> PublishedRun:
    """Full-batch power-efficient coupled learning of one task, as the published code runs it.

    Parameters
    ----------
    task : edgesim.tasks.Task
        Its network, source/target rows and training data are used; its
        ground node is not (see ``ground``).
    steps : int
        Number of updates.
    alpha, eta, lam, k0, k_min, k_max : float
        Learning rate, nudge, power-efficiency amplitude lambda, initial
        conductance (one value or one per edge) and the clipping range (published values by default).
    refresh_threshold, refresh_every : float, int
        Re-invert exactly when ``|k_new - k_old| > refresh_threshold`` or at every
        ``refresh_every``-th step; a negative threshold re-inverts every step
        (the exact algorithm, for checks).
    ground : int, optional
        Grounded node (default ``n_nodes - 1`` as in the published code; drops
        do not depend on it).
    track_drift : bool
        Also invert exactly at every step to measure how far the maintained
        inverses drift (slow; checks only).
    """
    net, bc = task.network, task.boundary
    N = net.n_nodes
    D = np.zeros((net.n_edges, N))
    e = np.arange(net.n_edges)
    D[e, net.edges[:, 0]] = 1.0
    D[e, net.edges[:, 1]] = -1.0
    g = N - 1 if ground is None else int(ground)
    C_free = _constraint_rows(N, [(g, -1)] + list(bc.inputs))
    C_out = _constraint_rows(N, list(bc.outputs))
    C_clamp = np.vstack([C_free, C_out])
    nf, nc = N + len(C_free), N + len(C_clamp)
    x, y = task.train_inputs, task.train_targets
    n_ex = x.shape[1]
    rhs_free = np.vstack([np.zeros((N + 1, n_ex)), x])
    rhs_clamp = np.vstack([rhs_free, np.zeros((len(C_out), n_ex))])
    dM_free, dM_clamp = np.zeros((nf, nf)), np.zeros((nc, nc))

    def exact_inverses(k):
        L = (D.T * k) @ D
        return np.linalg.inv(_bordered(L, C_free)), np.linalg.inv(_bordered(L, C_clamp))

    k = np.broadcast_to(np.asarray(k0, dtype=float), (net.n_edges,)).copy()
    inv_free, inv_clamp = exact_inverses(k)
    errors = np.empty(steps + 1)
    exact = np.zeros(steps, dtype=bool)
    drift = 0.0
    rate = alpha / eta
    for step in range(1, steps + 2):
        # free state of every training example and its output error
        p_free = inv_free @ rhs_free
        out = C_out @ p_free[:N]
        errors[step - 1] = np.mean((out - y) ** 2)
        if step == steps + 1:
            break
        # clamped state and the local rule
        rhs_clamp[nf:] = out + eta * (y - out)
        p_clamp = inv_clamp @ rhs_clamp
        dv_free = D @ p_free[:N]
        dv_clamp = D @ p_clamp[:N]
        k_old = k
        k = np.clip(k - rate * np.mean(dv_clamp**2 - (1.0 - lam) * dv_free**2, axis=1), k_min, k_max)
        dk = k - k_old
        if np.linalg.norm(dk) > refresh_threshold or step % refresh_every == 0:
            inv_free, inv_clamp = exact_inverses(k)
            exact[step - 1] = True
        else:
            dL = (D.T * dk) @ D
            dM_free[:N, :N] = dL
            dM_clamp[:N, :N] = dL
            inv_free = inv_free - inv_free @ dM_free @ inv_free
            inv_clamp = inv_clamp - inv_clamp @ dM_clamp @ inv_clamp
            if track_drift:
                exact_free, exact_clamp = exact_inverses(k)
                drift = max(drift,
                            np.linalg.norm(inv_free - exact_free) / np.linalg.norm(exact_free),
                            np.linalg.norm(inv_clamp - exact_clamp) / np.linalg.norm(exact_clamp))
    n_exact = int(exact.sum())
    return PublishedRun(k, errors, n_exact, steps - n_exact, exact, drift if track_drift else float("nan"))
