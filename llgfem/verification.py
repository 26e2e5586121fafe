"""Verification tools shipped with the library: dot-product, Taylor and convergence-rate tests.

Used by the test suite, the demos and users checking their own operators.

* :func:`dot_test` -- ``<L x, y>_Y`` versus ``<x, L* y>_X`` for a linear map ``L`` and its adjoint
  ``L*`` taken in the given (discrete) inner products.
* :func:`taylor_test` -- for a differentiable map ``F`` with derivative ``F'``, the remainders
  ``r0(eps) = |F(x + eps dx) - F(x)|`` and ``r1(eps) = |F(x + eps dx) - F(x) - eps F'(x) dx|``
  decay like ``eps`` and ``eps**2``; the observed slopes are returned.
* :func:`convergence_rate` -- observed rates ``log(e_i / e_{i+1}) / log(h_i / h_{i+1})``.
* :func:`manufactured_source` -- the source ``f = L(u_exact)`` of a manufactured solution for a
  UFL operator ``L`` (pure UFL, no assembly).

Every function is collective-safe: the inner products and norms passed in are expected to be
global (MPI-reduced), so all ranks compute identical values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "DotTestResult",
    "TaylorTestResult",
    "convergence_rate",
    "dot_test",
    "manufactured_source",
    "taylor_test",
]


@dataclass(frozen=True)
class DotTestResult:
    """Outcome of a dot-product test: ``lhs = <L x, y>``, ``rhs = <x, L* y>``."""

    lhs: float
    rhs: float

    @property
    def relative_error(self) -> float:
        scale = max(abs(self.lhs), abs(self.rhs), np.finfo(float).tiny)
        return abs(self.lhs - self.rhs) / scale


def dot_test(
    apply: Callable[[Any], Any],
    adjoint: Callable[[Any], Any],
    x: Any,
    y: Any,
    inner_domain: Callable[[Any, Any], float],
    inner_range: Callable[[Any, Any], float],
) -> DotTestResult:
    """Compare ``<L x, y>_range`` with ``<x, L* y>_domain``.

    Args:
        apply: ``x -> L x``.
        adjoint: ``y -> L* y`` (the adjoint in the given inner products).
        x, y: test vectors in the domain and range.
        inner_domain, inner_range: (global) inner products.

    Returns:
        Both sides; ``relative_error`` should be at round-off level.
    """
    lhs = float(inner_range(apply(x), y))
    rhs = float(inner_domain(x, adjoint(y)))
    return DotTestResult(lhs, rhs)


@dataclass(frozen=True)
class TaylorTestResult:
    """Remainders of a Taylor test and their observed slopes in ``eps``."""

    eps: np.ndarray
    r0: np.ndarray
    r1: np.ndarray

    @property
    def slopes0(self) -> np.ndarray:
        return _slopes(self.eps, self.r0)

    @property
    def slopes1(self) -> np.ndarray:
        return _slopes(self.eps, self.r1)


def _slopes(eps: np.ndarray, r: np.ndarray) -> np.ndarray:
    return np.log(r[:-1] / r[1:]) / np.log(eps[:-1] / eps[1:])


def taylor_test(
    F: Callable[[Any], Any],
    dF: Callable[[Any], Any],
    x: Any,
    dx: Any,
    norm: Callable[[Any], float],
    eps: Sequence[float] = (1e-1, 5e-2, 2.5e-2, 1.25e-2, 6.25e-3),
    axpy: Callable[[Any, float, Any], Any] | None = None,
) -> TaylorTestResult:
    """Taylor remainders of ``F`` at ``x`` in direction ``dx``.

    Args:
        F: the map.
        dF: ``dx -> F'(x) dx`` at the fixed ``x``.
        x, dx: point and direction (NumPy arrays unless ``axpy`` is given).
        norm: (global) norm on the range.
        eps: decreasing step lengths.
        axpy: ``(x, e, dx) -> x + e dx`` for non-array types.

    Returns:
        The remainders; ``slopes1`` should approach 2 (and ``slopes0`` 1).
    """
    axpy = axpy or (lambda a, e, b: a + e * b)
    fx = F(x)
    dfx = dF(dx)
    eps = np.asarray(eps, dtype=float)
    r0, r1 = [], []
    for e in eps:
        fe = F(axpy(x, e, dx))
        r0.append(norm(fe - fx))
        r1.append(norm(fe - fx - e * dfx))
    return TaylorTestResult(eps, np.asarray(r0), np.asarray(r1))


def convergence_rate(h: Sequence[float], errors: Sequence[float]) -> np.ndarray:
    """Observed convergence rates between successive refinements.

    Args:
        h: mesh sizes (or time steps), any order.
        errors: the matching errors.

    Returns:
        ``log(e_i/e_{i+1}) / log(h_i/h_{i+1})`` for consecutive pairs.
    """
    h = np.asarray(h, dtype=float)
    e = np.asarray(errors, dtype=float)
    if h.shape != e.shape or h.size < 2:
        raise ValueError("convergence_rate: need matching h and errors with at least 2 entries")
    if np.any(e <= 0) or np.any(h <= 0):
        raise ValueError("convergence_rate: h and errors must be positive")
    return np.log(e[:-1] / e[1:]) / np.log(h[:-1] / h[1:])


def manufactured_source(operator: Callable[[Any], Any], u_exact: Any) -> Any:
    """The right-hand side ``f = operator(u_exact)`` of a manufactured solution (UFL).

    Example (heat equation ``z_t - Laplace z = f``; ``t`` a ``ufl.variable``)::

        f = manufactured_source(lambda z: ufl.diff(z, t) - ufl.div(ufl.grad(z)), z_exact)
    """
    return operator(u_exact)
