"""Sparse linear solvers for the grounded Laplacian of one network: the backends of the physics layer.

Every backend solves ``A X = B`` for the grounded (gauge-pinned), symmetric
positive-definite Laplacian ``A`` of one network and a few right-hand sides
``B`` (one column per boundary row), once per conductance state:

``lu``
    SuperLU with a fill-reducing ordering: the exact reference.
``cg``
    Conjugate gradients preconditioned by a *kept* factorization of an
    earlier matrix and warm-started from the previous solution.  A learning
    step changes every conductance a little, so the kept factorization is a
    nearly exact inverse and a handful of iterations (each one sparse
    product and one pair of triangular solves) replaces a refactorization.
    The factorization is refreshed when the iterations needed exceed
    ``refresh_iterations``.  Above :data:`SINGLE_PRECISION_NODES` nodes it is
    factored in single precision (memory); the iteration still reaches the
    double-precision tolerance (no refinement with such a factor: it could
    diverge on badly conditioned networks, which then raise instead).
``cholmod``
    CHOLMOD's supernodal Cholesky factorization (scikit-sparse, an optional
    extra): exact like ``lu``, about half its memory (one triangular factor),
    with the symbolic analysis (ordering) done once and reused for every
    refactorization.
``cg-cholmod``
    ``cg`` with a kept CHOLMOD factorization as the preconditioner: the
    iterative backend for the largest networks (the fastest at 1e7 edges).
``amg``
    The same iteration preconditioned by an algebraic multigrid hierarchy
    (pyamg, smoothed aggregation) instead of a factorization.

Iterative backends stop when every column's normwise backward error
``max|B - A X| / (|A| max|X| + max|B|)`` (infinity norms; a stable direct
solve leaves about 1e-16) is below ``tolerance``, and check it again with
the true residual of the returned solution; a solve that does not converge within
``max_iterations`` falls back to a fresh preconditioner once and then
raises :class:`numpy.linalg.LinAlgError`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

__all__ = ["LinearBackend", "DirectLU", "DirectCholesky", "PreconditionedCG", "make_backend", "BACKENDS",
           "factor_lu", "OrderedLU", "CholmodFactorizer",
           "right_preconditioned_gmres"]

#: A refinement correction this small (relative to the solution, normwise) is rounding noise: 64 ulp.
_ROUNDING_LEVEL = 64 * np.finfo(float).eps

#: Above this many nodes the kept LU of ``cg`` is factored in single precision: about two thirds of the
#: memory of a double-precision factor (1e7 edges: the difference between fitting in 8 GB and not), and the
#: iteration still converges to the double-precision tolerance.
SINGLE_PRECISION_NODES = 1_000_000

#: Backends of :func:`make_backend`.
BACKENDS = ("lu", "cholmod", "cg", "cg-cholmod", "amg")

#: How to get CHOLMOD (scikit-sparse needs SuiteSparse's headers; on Debian 12, SuiteSparse 5 needs
#: scikit-sparse < 0.5).
CHOLMOD_INSTALL = ("CHOLMOD needs scikit-sparse: apt-get install libsuitesparse-dev, then pip install -e "
                   "'.[cholmod]' in the edgesim folder (on Debian 12 / SuiteSparse 5: pip install "
                   "'scikit-sparse<0.5')")


class OrderedLU:
    """SuperLU factors of ``A[order][:, order]`` (factored in its natural order) that solve ``A x = b``."""

    def __init__(self, lu, order: np.ndarray):
        self.lu, self.order = lu, order

    def solve(self, b: np.ndarray) -> np.ndarray:
        x = np.empty_like(b, dtype=float)
        x[self.order] = self.lu.solve(np.ascontiguousarray(b[self.order]))
        return x


def factor_lu(A: sp.spmatrix, symmetric: bool = True, permuted: sp.csc_matrix | None = None,
              order: np.ndarray | None = None):
    """SuperLU factors of a grounded Laplacian (symmetric mode, no pivoting needed: it is positive definite).

    ``symmetric=False`` factors a general square matrix (a Newton Jacobian of nonlinear edges, with its
    constraint rows) with the same ordering and threshold pivoting.  Given ``permuted = A[order][:, order]``
    for a fill-reducing ``order`` found before (the ``perm_c`` of an earlier factorization of the same pattern,
    inverted), it factors that in its natural order and returns an :class:`OrderedLU`: the same factors
    without SuperLU's minimum-degree ordering (15-20 % of the factorization time).
    """
    try:
        if not symmetric:
            # panel_size 8, relax 1: 1.3-1.8x faster than SuperLU's defaults on Newton Jacobians of 1e3-1e5
            # nodes (measured on lattices; same fill)
            if permuted is not None:
                return OrderedLU(spla.splu(permuted, permc_spec="NATURAL", diag_pivot_thresh=0.1,
                                           options={"SymmetricMode": True}, panel_size=8, relax=1), order)
            return spla.splu(sp.csc_matrix(A), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.1,
                             options={"SymmetricMode": True}, panel_size=8, relax=1)
        return spla.splu(_as_csc(A), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                         options={"SymmetricMode": True})
    except RuntimeError as exc:  # SuperLU reports a singular matrix this way
        raise np.linalg.LinAlgError(f"the reduced Laplacian could not be factored ({exc}); "
                                    "check conductance values") from None


def right_preconditioned_gmres(matvec, precondition, rhs: np.ndarray, tolerance: float, max_iterations: int,
                               weights: np.ndarray | None = None):
    """GMRES from ``x = 0`` with right preconditioning, one cycle of at most ``max_iterations``.

    Minimizes the true residual ``|w * (rhs - A x)|`` (2-norm, rows weighted by ``weights``) over
    ``x = M^-1 (Krylov space)`` and stops once it is at most ``tolerance * |w * rhs|``.  Right
    preconditioning keeps the stopping test on the residual itself (scipy's ``gmres`` preconditions on
    the left, so a preconditioner made from another matrix can meet its test while the true residual
    does not), and each iteration costs one ``precondition`` and one ``matvec``, nothing more.

    Parameters
    ----------
    matvec, precondition : callable
        ``v -> A v`` and ``v -> M^-1 v`` (e.g. the solve of a kept LU of a nearby matrix).
    rhs : ndarray (n,)
    tolerance : float
        Relative residual to reach.
    max_iterations : int
    weights : ndarray (n,), optional
        Positive row weights of the residual norm (default 1).

    Returns
    -------
    x : ndarray (n,)
    iterations : int
    converged : bool
    """
    n = rhs.size
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    b = w * rhs
    beta = np.linalg.norm(b)
    if beta == 0.0 or not np.isfinite(beta):
        return np.zeros(n), 0, beta == 0.0
    m = int(max_iterations)
    basis = np.empty((m + 1, n))
    directions = np.empty((m, n))  # M^-1 of each basis vector: the solution is their combination
    hessenberg = np.zeros((m + 1, m))
    cosines, sines = np.zeros(m), np.zeros(m)
    g = np.zeros(m + 1)
    basis[0], g[0] = b / beta, beta
    for j in range(m):
        directions[j] = precondition(basis[j] / w)
        v = w * matvec(directions[j])
        # classical Gram-Schmidt, twice (as stable as modified Gram-Schmidt, two matrix products)
        h = basis[:j + 1] @ v
        v -= h @ basis[:j + 1]
        correction = basis[:j + 1] @ v
        v -= correction @ basis[:j + 1]
        h += correction
        norm = np.linalg.norm(v)
        column = np.concatenate([h, [norm]])
        for i in range(j):  # the earlier Givens rotations
            column[i], column[i + 1] = (cosines[i] * column[i] + sines[i] * column[i + 1],
                                        -sines[i] * column[i] + cosines[i] * column[i + 1])
        radius = np.hypot(column[j], column[j + 1])
        cosines[j], sines[j] = (column[j] / radius, column[j + 1] / radius) if radius else (1.0, 0.0)
        column[j], column[j + 1] = radius, 0.0
        g[j], g[j + 1] = cosines[j] * g[j], -sines[j] * g[j]
        hessenberg[:j + 1, j] = column[:j + 1]
        done = abs(g[j + 1]) <= tolerance * beta
        if done or norm == 0.0 or j == m - 1:
            k = j + 1
            y = np.linalg.solve(np.triu(hessenberg[:k, :k]), g[:k]) if radius else np.zeros(k)
            x = y @ directions[:k]
            return x, k, bool(done or norm == 0.0) and bool(np.isfinite(x).all())
        basis[j + 1] = v / norm
    raise AssertionError("unreachable")


def _as_csr(A) -> sp.csr_matrix:
    """``A`` in CSR form; a symmetric CSC matrix's arrays already are its CSR form (no copy)."""
    if sp.issparse(A) and A.format == "csc":
        return sp.csr_matrix((A.data, A.indices, A.indptr), shape=A.shape)
    return sp.csr_matrix(A)


def _as_csc(A) -> sp.csc_matrix:
    """``A`` (symmetric) in CSC form, sharing the arrays of a CSR one."""
    if sp.issparse(A) and A.format == "csr":
        return sp.csc_matrix((A.data, A.indices, A.indptr), shape=A.shape)
    return sp.csc_matrix(A)


def _infinity_norm(A: sp.csr_matrix) -> float:
    """``max_i sum_j |A_ij|`` without a copy of the matrix's structure."""
    if A.nnz == 0:
        return 0.0
    starts = np.minimum(A.indptr[:-1], A.nnz - 1)
    sums = np.add.reduceat(np.abs(A.data), starts)
    sums[np.diff(A.indptr) == 0] = 0.0  # reduceat gives an empty row the next row's first value
    return float(sums.max())


class CholmodFactorizer:
    """CHOLMOD factorizations of matrices with one sparsity pattern: the symbolic analysis is done once."""

    def __init__(self):
        try:
            from sksparse.cholmod import analyze
        except ImportError:
            raise ValueError(CHOLMOD_INSTALL) from None
        self._analyze = analyze
        self._factor = None
        self._pattern = None

    def __call__(self, A):
        """The factor of ``A`` (callable: ``factor(B)`` solves ``A X = B``)."""
        from sksparse.cholmod import CholmodNotPositiveDefiniteError

        A = _as_csc(A)
        try:
            if self._factor is None or not self._same_pattern(A):
                self._factor = self._analyze(A, mode="supernodal")
                self._pattern = (A.shape, A.indptr.copy(), A.indices.copy())
            self._factor.cholesky_inplace(A)
        except CholmodNotPositiveDefiniteError as exc:
            raise np.linalg.LinAlgError(f"the reduced Laplacian could not be factored ({exc}); "
                                        "check conductance values") from None
        return self._factor

    def _same_pattern(self, A) -> bool:
        shape, indptr, indices = self._pattern
        return A.shape == shape and np.array_equal(A.indptr, indptr) and np.array_equal(A.indices, indices)

    def __getstate__(self):  # CHOLMOD factors are not picklable; the next call analyses afresh
        return {"analysed": False}  # (an empty state would skip __setstate__)

    def __setstate__(self, state):
        self.__init__()


class LinearBackend:
    """Solves ``A X = B`` for successive matrices ``A`` of one network; keeps what the next solve can reuse."""

    #: Statistics of the solves so far (``solves``, ``factorizations``, ``iterations``).
    stats: dict

    def solve(self, A: sp.spmatrix, B: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        """``X`` with ``A X = B`` (``B``: N x q); ``A`` becomes the current matrix."""
        raise NotImplementedError

    def solve_current(self, B: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        """``X`` with ``A X = B`` for the current matrix (e.g. low-rank corrections)."""
        raise NotImplementedError


class DirectLU(LinearBackend):
    """A fresh sparse LU per matrix: exact."""

    def __init__(self):
        self.stats = {"solves": 0, "factorizations": 0, "iterations": 0}
        self._lu = None

    def solve(self, A, B):
        self._lu = None  # let the old factors go before the new ones are made: never two in memory
        self._lu = factor_lu(A)
        self.stats["factorizations"] += 1
        return self.solve_current(B)

    def __getstate__(self):  # SuperLU factors are not picklable; the next solve factors afresh anyway
        return {**self.__dict__, "_lu": None}

    def solve_current(self, B):
        self.stats["solves"] += 1
        return self._lu.solve(np.ascontiguousarray(B))


class DirectCholesky(LinearBackend):
    """A fresh CHOLMOD factorization per matrix (symbolic analysis reused): exact."""

    def __init__(self):
        self.stats = {"solves": 0, "factorizations": 0, "iterations": 0}
        self._factorizer = CholmodFactorizer()
        self._factor = None

    def __getstate__(self):
        return {**self.__dict__, "_factor": None}

    def solve(self, A, B):
        self._factor = self._factorizer(A)
        self.stats["factorizations"] += 1
        return self.solve_current(B)

    def solve_current(self, B):
        self.stats["solves"] += 1
        return self._factor(np.ascontiguousarray(B))


class PreconditionedCG(LinearBackend):
    """Block conjugate gradients (independent columns) with a kept preconditioner and warm starts.

    Parameters
    ----------
    tolerance : float
        Normwise backward error at which a column has converged.
    preconditioner : {"lu", "cholmod", "amg"}
        A sparse LU or a CHOLMOD Cholesky factor of an earlier matrix, or a pyamg
        smoothed-aggregation hierarchy of one.
    refresh_iterations : int
        Rebuild the preconditioner from the current matrix when a solve needs more iterations.
    max_iterations : int
    """

    def __init__(self, tolerance: float = 1e-14, preconditioner: str = "lu", refresh_iterations: int = 12,
                 max_iterations: int = 400, single_precision_nodes: int | None = None):
        if preconditioner == "amg":
            try:
                import pyamg  # noqa: F401
            except ImportError:
                raise ValueError("solver.backend = 'amg' needs pyamg: pip install -e '.[amg]' in the edgesim folder "
                                 "(or pip install pyamg)") from None
        self._cholmod = CholmodFactorizer() if preconditioner == "cholmod" else None
        self.tolerance, self.kind = tolerance, preconditioner
        self.refresh_iterations, self.max_iterations = refresh_iterations, max_iterations
        self.stats = {"solves": 0, "factorizations": 0, "iterations": 0}
        self._apply = None
        self._preconditioned = None
        self._A = None
        self._norm_a = None
        self._last = None
        self._fresh_iterations = 0  # what a fresh preconditioner needs (multigrid: its usual iteration count)
        self.single_precision_nodes = SINGLE_PRECISION_NODES if single_precision_nodes is None \
            else single_precision_nodes
        self._exact = True  # the preconditioner solves its own matrix exactly (a double-precision factor)

    def _refresh(self, A) -> None:
        self._build(A)
        self.stats["factorizations"] += 1

    def _build(self, A) -> None:
        """The preconditioner from ``A`` (kept, so that a pickled solver rebuilds exactly the same one)."""
        self._preconditioned = A
        self._apply = None  # the old factors go before the new ones are made
        self._exact = self.kind != "amg"
        if self.kind == "lu" and A.shape[0] > self.single_precision_nodes:
            single = _as_csr(A).astype(np.float32)
            lu = factor_lu(single)
            del single
            self._apply = lambda R: lu.solve(np.ascontiguousarray(R, dtype=np.float32)).astype(float)
            self._exact = False
        elif self.kind == "lu":
            lu = factor_lu(A)
            self._apply = lambda R: lu.solve(np.ascontiguousarray(R))
        elif self.kind == "cholmod":
            factor = self._cholmod(A)
            self._apply = lambda R: factor(np.ascontiguousarray(R))
        else:
            import pyamg

            hierarchy = pyamg.smoothed_aggregation_solver(sp.csr_matrix(A), symmetry="symmetric", max_coarse=500)
            M = hierarchy.aspreconditioner(cycle="V")
            self._apply = lambda R: np.column_stack([M @ R[:, j] for j in range(R.shape[1])])

    def __getstate__(self):  # closures over factors are not picklable: keep the matrix they came from
        return {**self.__dict__, "_apply": None}

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self._preconditioned is not None:
            self._build(self._preconditioned)  # deterministic: the run continues as if never pickled

    def solve(self, A, B):
        A = _as_csr(A)
        B = np.asarray(B, dtype=float)
        self._A, self._norm_a = A, _infinity_norm(A)
        if self._apply is None:
            X = self._fresh(A, B)
        else:
            warm = self._last if self._last is not None and self._last.shape == B.shape else None
            X, iterations, converged = self._cg(A, B, warm)
            if not converged:
                X = self._fresh(A, B, X)
            elif self._exact:  # a single-precision factor could make refinement diverge: CG's answer stands
                X = self._refine(A, B, X)
            if converged and iterations > max(self.refresh_iterations, 1.5 * self._fresh_iterations):
                self._refresh(A)  # the kept preconditioner has gone stale: the next solves start from this matrix
        self._last = X
        return X

    def _refine(self, A, B, X, steps: int = 3):
        """Iterative refinement with the kept LU, for the componentwise accuracy of a direct solve.

        Stops once a correction is at the level of rounding (normwise), where further steps only add noise.
        """
        for _ in range(steps):
            residual = A @ X
            np.subtract(B, residual, out=residual)
            correction = self._apply(residual)
            del residual
            X = X + correction
            scale = np.abs(X).max(0)
            if (np.abs(correction, out=correction).max(0) <= _ROUNDING_LEVEL * np.where(scale > 0, scale, 1.0)).all():
                break
        return X

    def _fresh(self, A, B, X0=None):
        """Solve with a preconditioner built from ``A`` itself (a factorization of ``A`` solves exactly)."""
        self._refresh(A)
        if self._exact:
            self.stats["solves"] += 1
            return self._apply(B)
        X, self._fresh_iterations, converged = self._cg(A, B, X0)
        if not converged:
            remedy = ("multigrid struggles when conductances span many decades without structure; use "
                      "solver.backend = 'cg' or 'lu'") if self.kind == "amg" else (
                "a single-precision factor is too coarse for conductances spanning this many decades; use "
                "solver.backend = 'lu' or 'cg-cholmod'")
            raise np.linalg.LinAlgError(
                f"conjugate gradients did not reach the backward error {self.tolerance:g} in {self.max_iterations} "
                f"iterations with a fresh preconditioner ({remedy})")
        return X

    def solve_current(self, B):
        X, _, converged = self._cg(self._A, np.asarray(B, dtype=float), None)
        if not converged:
            raise np.linalg.LinAlgError("conjugate gradients did not converge for a correction solve")
        return X

    def _cg(self, A, B, X0):
        """Block PCG, each column its own scalars; returns (X, iterations, converged)."""
        self.stats["solves"] += 1
        norm_a = self._norm_a if A is self._A else _infinity_norm(A)
        norm_b = np.abs(B).max(0)

        work = np.empty_like(B)  # scratch: the iteration allocates no block-sized temporaries

        def column_max_abs(M):
            return np.abs(M, out=work).max(0)

        def unconverged(R, X):
            """Relative residual of each column, but never below what a stable solve can reach (~1e-16 normwise)."""
            relative = column_max_abs(R) / np.where(norm_b > 0, norm_b, 1.0)
            attainable = 1e-15 * (norm_a * column_max_abs(X) + norm_b) / np.where(norm_b > 0, norm_b, 1.0)
            return np.where(relative > attainable, relative, 0.0)

        def column_dot(M, N):
            return np.multiply(M, N, out=work).sum(0)

        X = np.zeros_like(B) if X0 is None else X0.copy()
        R = B - A @ X
        active = unconverged(R, X) > self.tolerance
        if not active.any():
            return X, 0, True
        Zr = self._apply(R)
        rz = column_dot(R, Zr)
        P, Zr = Zr, None  # P is updated in place from here on: no copy needed
        for it in range(1, self.max_iterations + 1):
            AP = A @ P
            pap = column_dot(P, AP)
            alpha = np.where(active & (pap > 0), rz / np.where(pap > 0, pap, 1.0), 0.0)
            X += np.multiply(alpha, P, out=work)
            R -= np.multiply(alpha, AP, out=work)
            del AP
            active &= unconverged(R, X) > self.tolerance
            self.stats["iterations"] += 1
            if not active.any():
                # the recursion's residual drifts from the true one: check the true residual once
                R = B - A @ X
                true = unconverged(R, X)
                if (true <= 10 * self.tolerance).all():
                    return X, it, True
                active = true > self.tolerance
            Zr = self._apply(R)
            rz_new = column_dot(R, Zr)
            beta = np.where(rz != 0, rz_new / np.where(rz != 0, rz, 1.0), 0.0)
            P *= beta
            P += Zr
            Zr = None
            rz = rz_new
        return X, self.max_iterations, False


def make_backend(name: str, tolerance: float = 1e-14) -> LinearBackend:
    """A fresh backend by name (see the module docstring)."""
    if name == "lu":
        return DirectLU()
    if name == "cholmod":
        return DirectCholesky()
    if name in ("cg", "cg-cholmod", "amg"):
        return PreconditionedCG(tolerance, preconditioner={"cg": "lu", "cg-cholmod": "cholmod", "amg": "amg"}[name])
    raise ValueError(f"unknown solver backend {name!r}; use one of {', '.join(BACKENDS)}")
