"""Operator protocols seen by the regularisation drivers.

The Landweber-type drivers in :mod:`llgfem.regularisation` need only the following of a
forward operator F: X -> Y (paper eqs. (13), (14)):

    F(x)                      nonlinear forward map,
    F.derivative(x) = L       Frechet derivative F'(x), a linear operator with
    L(dx) = L.apply(dx)       the directional derivative F'(x) dx and
    L.adjoint(r)              the Hilbert-space adjoint F'(x)* r, taken in the operator's own
                              inner products (not the Euclidean transpose),
    F.inner_domain(x1, x2)    the inner product of X,
    F.inner_range(y1, y2)     the inner product of Y.

MPI contract: vectors are plain 1-D NumPy arrays holding the *local* part of a distributed
vector; the inner products are *global* (the operator performs the allreduce), so that every
norm computed through them is identical on all ranks. Drivers never compute norms with NumPy
and never branch on the rank.

Notation:
    x, dx   element (local part) of the domain X (e.g. (m_hat, a1, a2) all-at-once, (a1, a2)
            reduced)
    y, r    element of the range Y (data, residual r = F(x) - y_delta)
    L       F'(x); L.adjoint = F'(x)*
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = [
    "ForwardOperator",
    "LinearOperator",
    "domain_norm",
    "range_norm",
]


@runtime_checkable
class LinearOperator(Protocol):
    """A bounded linear operator L: X -> Y with its Hilbert-space adjoint L*: Y -> X."""

    def __call__(self, dx: np.ndarray) -> np.ndarray:
        """Return L dx (same as :meth:`apply`)."""
        ...

    def apply(self, dx: np.ndarray) -> np.ndarray:
        """Return L dx."""
        ...

    def adjoint(self, r: np.ndarray) -> np.ndarray:
        """Return L* r, the adjoint in the operator's inner products of X and Y."""
        ...


@runtime_checkable
class ForwardOperator(Protocol):
    """A (nonlinear) forward operator F: X -> Y with derivative and inner products."""

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Return F(x)."""
        ...

    def derivative(self, x: np.ndarray) -> LinearOperator:
        """Return the Frechet derivative F'(x) as a :class:`LinearOperator`."""
        ...

    def inner_domain(self, x1: np.ndarray, x2: np.ndarray) -> float:
        """Return the global inner product (x1, x2)_X (identical on all ranks)."""
        ...

    def inner_range(self, y1: np.ndarray, y2: np.ndarray) -> float:
        """Return the global inner product (y1, y2)_Y (identical on all ranks)."""
        ...


def _sqrt_inner(value: float) -> float:
    """Square root of a self inner product; round-off negatives clip to 0, NaN stays NaN."""
    value = float(value)
    if math.isnan(value):
        return math.nan
    return math.sqrt(max(value, 0.0))


def domain_norm(op: ForwardOperator, x: np.ndarray) -> float:
    """Return ||x||_X through ``op.inner_domain`` (global under MPI).

    Args:
        op: Operator providing the domain inner product.
        x: Local part of a domain vector.

    Returns:
        The norm; NaN if the inner product is NaN.
    """
    return _sqrt_inner(op.inner_domain(x, x))


def range_norm(op: ForwardOperator, y: np.ndarray) -> float:
    """Return ||y||_Y through ``op.inner_range`` (global under MPI).

    Args:
        op: Operator providing the range inner product.
        y: Local part of a range vector.

    Returns:
        The norm; NaN if the inner product is NaN.
    """
    return _sqrt_inner(op.inner_range(y, y))
