"""Small NumPy operators implementing the operator protocol, for tests and demos.

They implement :class:`llgfem.operators.protocols.ForwardOperator` with optional weighted
inner products (x1, x2)_X = x1^T M x2 and (y1, y2)_Y = y1^T N y2 (M, N symmetric positive
definite). The Hilbert-space adjoint of a matrix A is then A* = M^{-1} A^T N, which differs
from the transpose unless M = N = I; drivers that wrongly use ``A.T`` are caught by tests.

Notation:
    A       matrix of the linear part, shape (m, n)
    M, N    SPD weights of the domain and range inner products (identity if None)
    beta    strength of the cubic nonlinearity in F(x) = A (x + beta x**3)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import scipy.linalg

__all__ = [
    "CubicOperator",
    "MatrixOperator",
    "WeightedSpaces",
    "adjoint_mismatch",
    "blocks_of",
    "integration_matrix",
    "random_spd",
    "split_rows",
]


class WeightedSpaces:
    """Inner products x1^T M x2 on the domain and y1^T N y2 on the range.

    Args:
        n: Domain dimension.
        m: Range dimension.
        domain_weight: SPD matrix M of shape (n, n), or None for the Euclidean product.
        range_weight: SPD matrix N of shape (m, m), or None for the Euclidean product.
    """

    def __init__(self, n: int, m: int, domain_weight=None, range_weight=None):
        self.M = None if domain_weight is None else np.asarray(domain_weight, dtype=float)
        self.N = None if range_weight is None else np.asarray(range_weight, dtype=float)
        if self.M is not None and self.M.shape != (n, n):
            raise ValueError(f"domain_weight must have shape {(n, n)}, got {self.M.shape}")
        if self.N is not None and self.N.shape != (m, m):
            raise ValueError(f"range_weight must have shape {(m, m)}, got {self.N.shape}")
        self._chol_m = None if self.M is None else scipy.linalg.cho_factor(self.M)

    def inner_domain(self, x1: np.ndarray, x2: np.ndarray) -> float:
        """Return x1^T M x2."""
        return float(x1 @ x2) if self.M is None else float(x1 @ (self.M @ x2))

    def inner_range(self, y1: np.ndarray, y2: np.ndarray) -> float:
        """Return y1^T N y2."""
        return float(y1 @ y2) if self.N is None else float(y1 @ (self.N @ y2))

    def riesz_domain(self, v: np.ndarray) -> np.ndarray:
        """Return M^{-1} v (Riesz representative of the functional v^T . in X)."""
        return v.copy() if self._chol_m is None else scipy.linalg.cho_solve(self._chol_m, v)

    def weight_range(self, r: np.ndarray) -> np.ndarray:
        """Return N r."""
        return r.copy() if self.N is None else self.N @ r


class _MatrixDerivative:
    """Linear operator dx -> A D dx with adjoint r -> M^{-1} D A^T N r (D diagonal)."""

    def __init__(self, A: np.ndarray, spaces: WeightedSpaces, diag: np.ndarray | None = None):
        self._A = A
        self._spaces = spaces
        self._diag = diag

    def apply(self, dx: np.ndarray) -> np.ndarray:
        """Return F'(x) dx."""
        return self._A @ (dx if self._diag is None else self._diag * dx)

    __call__ = apply

    def adjoint(self, r: np.ndarray) -> np.ndarray:
        """Return F'(x)* r in the weighted inner products."""
        g = self._A.T @ self._spaces.weight_range(r)
        if self._diag is not None:
            g = self._diag * g
        return self._spaces.riesz_domain(g)


class MatrixOperator(WeightedSpaces):
    """Affine operator F(x) = A x + b with weighted inner products.

    Args:
        A: Matrix of shape (m, n).
        b: Optional offset of shape (m,).
        domain_weight: SPD weight M of the domain inner product (None: identity).
        range_weight: SPD weight N of the range inner product (None: identity).
    """

    def __init__(self, A, b=None, *, domain_weight=None, range_weight=None):
        self.A = np.asarray(A, dtype=float)
        m, n = self.A.shape
        super().__init__(n, m, domain_weight, range_weight)
        self.b = None if b is None else np.asarray(b, dtype=float)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Return A x + b."""
        y = self.A @ x
        return y if self.b is None else y + self.b

    def derivative(self, x: np.ndarray) -> _MatrixDerivative:
        """Return the (constant) derivative A with its weighted adjoint."""
        return _MatrixDerivative(self.A, self)


class CubicOperator(WeightedSpaces):
    """Nonlinear operator F(x) = A (x + beta x**3) (componentwise cube).

    F'(x) dx = A ((1 + 3 beta x**2) dx); for beta >= 0 and A injective F is injective and
    satisfies a tangential cone condition near any point.

    Args:
        A: Matrix of shape (m, n).
        beta: Strength of the cubic term.
        domain_weight: SPD weight M of the domain inner product (None: identity).
        range_weight: SPD weight N of the range inner product (None: identity).
    """

    def __init__(self, A, beta: float = 1.0, *, domain_weight=None, range_weight=None):
        self.A = np.asarray(A, dtype=float)
        m, n = self.A.shape
        super().__init__(n, m, domain_weight, range_weight)
        self.beta = float(beta)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Return A (x + beta x**3)."""
        return self.A @ (x + self.beta * x**3)

    def derivative(self, x: np.ndarray) -> _MatrixDerivative:
        """Return F'(x) = A diag(1 + 3 beta x**2)."""
        return _MatrixDerivative(self.A, self, 1.0 + 3.0 * self.beta * x**2)


def integration_matrix(n: int) -> np.ndarray:
    """Return the midpoint discretisation of (Ax)(s) = int_0^s x(t) dt on [0, 1].

    A compact operator: its singular values decay like 1/k, so A x = y is mildly ill-posed.

    Args:
        n: Number of cells.

    Returns:
        Lower-triangular matrix of shape (n, n), entries h (below the diagonal) and h/2.
    """
    h = 1.0 / n
    return h * (np.tril(np.ones((n, n)), -1) + 0.5 * np.eye(n))


def split_rows(op_factory: Callable[[np.ndarray], object], A: np.ndarray,
               blocks: int) -> tuple[list, list[np.ndarray]]:
    """Split A row-wise into Kaczmarz sub-problems.

    Args:
        op_factory: Builds an operator from a row block (e.g. ``MatrixOperator``).
        A: Matrix of shape (m, n).
        blocks: Number of sub-problems.

    Returns:
        The sub-problem operators and the row-index arrays of each block.
    """
    rows = np.array_split(np.arange(A.shape[0]), blocks)
    return [op_factory(A[idx]) for idx in rows], rows


def adjoint_mismatch(op, x: np.ndarray, dx: np.ndarray, r: np.ndarray) -> float:
    """Relative mismatch of (F'(x) dx, r)_Y and (dx, F'(x)* r)_X (a dot test).

    Args:
        op: Forward operator.
        x: Linearisation point.
        dx: Domain direction.
        r: Range vector.

    Returns:
        |(L dx, r)_Y - (dx, L* r)_X| / max(|(L dx, r)_Y|, tiny).
    """
    L = op.derivative(x)
    lhs = op.inner_range(L(dx), r)
    rhs = op.inner_domain(dx, L.adjoint(r))
    return abs(lhs - rhs) / max(abs(lhs), np.finfo(float).tiny)


def random_spd(n: int, rng: np.random.Generator, cond: float = 10.0) -> np.ndarray:
    """Return a random SPD matrix of size n with condition number ``cond``."""
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (q * np.geomspace(1.0, cond, n)) @ q.T


def blocks_of(data: np.ndarray, rows: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Return the data blocks y[rows_j] matching :func:`split_rows`."""
    return [data[idx] for idx in rows]
