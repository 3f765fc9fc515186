"""A plain, slow reference trainer: dense Laplacian, every inverse computed afresh.

Each step builds the dense Laplacian, appends every boundary condition
(ground included) as an extra row and column, and inverts the free and the
clamped constrained matrices separately.  It shares no code with the solver
in :mod:`edgesim.physics`, which makes it an independent check for the tests.
(The speed baseline of ``benchmarks/bench_sync.py`` is the published algorithm
itself, with its first-order inverse updates: ``benchmarks/published_baseline.py``.)
"""

import numpy as np


__all__ = ["train_dense"]


def _constrained_inverse(laplacian, constraint):
    n, m = laplacian.shape[0], constraint.shape[0]
    extended = np.zeros((n + m, n + m))
    extended[:n, :n] = laplacian
    extended[n:, :n] = constraint
    extended[:n, n:] = constraint.T
    return np.linalg.inv(extended)


def train_dense(task, steps, alpha=0.5, eta=1e-3, lam=0.0, k0=1.0, k_min=1e-4, k_max=1e6):
    """Full-batch coupled learning of one task.

    Returns
    -------
    conductance : ndarray (n_edges,)
        Conductances after ``steps`` updates.
    errors : ndarray (steps,)
        Training error (mean squared output error) before each update.
    """
    net, bc = task.network, task.boundary
    B = net.incidence.toarray()
    n = net.n_nodes
    rows = [(bc.ground, -1)] + list(bc.inputs) + list(bc.outputs)
    C = np.zeros((len(rows), n))
    for i, (a, b) in enumerate(rows):
        C[i, a] = 1.0
        if b >= 0:
            C[i, b] = -1.0
    n_in = 1 + len(bc.inputs)
    C_free = C[:n_in]
    x = np.vstack([np.zeros((1, task.n_train)), task.train_inputs])
    y = task.train_targets
    k = np.full(net.n_edges, k0)
    errors = np.empty(steps)
    for s in range(steps):
        L = B.T @ (k[:, None] * B)
        free = _constrained_inverse(L, C_free)[:n, n:] @ x
        out_free = C[n_in:] @ free
        errors[s] = np.mean((out_free - y) ** 2)
        clamp = out_free + eta * (y - out_free)
        clamped = _constrained_inverse(L, C)[:n, n:] @ np.vstack([x, clamp])
        dv_free = B @ free
        dv_clamped = B @ clamped
        dk = -(alpha / eta) * np.mean(dv_clamped**2 - (1 - lam) * dv_free**2, axis=1)
        k = np.clip(k + dk, k_min, k_max)
    return k, errors
