"""Regularising Levenberg-Marquardt (Gauss-Newton) for few parameters, with the discrepancy stop.

Beyond paper 002 (which uses Landweber, eqs. (13)-(17)): for a low-dimensional parameter
``x in R^p`` (the LLG parameters, p = 2) the whole Jacobian costs p linearised solves, so a
Newton-type iteration is affordable::

    J_k = F'(x_k) = [F'(x_k) e_1, ..., F'(x_k) e_p]          (p linearised solves)
    (G_k + lam_k W) dx_k = -J_k^* r_k,  G_k = J_k^* J_k,  r_k = F(x_k) - y^delta
    x_{k+1} = x_k + dx_k

with ``J^*`` the adjoint in the operator's inner products (``G_ij = (J e_i, J e_j)_Y``,
``(J^* r)_i = (J e_i, r)_Y / w_i`` for ``(x1, x2)_X = sum w_i x1_i x2_i`` -- the Gram matrix is
formed from ``F.inner_range`` and ``F.inner_domain`` only).  The damping follows Hanke's
regularising Levenberg-Marquardt rule (Inverse Problems 13 (1997) 79-95): ``lam_k`` is the
value for which the linearised residual satisfies ``||r_k + J_k dx_k||_Y = q ||r_k||_Y``
(``0 < q < 1``; found by bisection in ``log lam``), or the smallest admissible ``lam`` if even
the Gauss-Newton step cannot reach ``q ||r_k||``.  The step is accepted if the (nonlinear)
residual decreased, else ``q`` is raised towards 1 (stronger damping) and the step retried.
The iteration stops by the discrepancy principle ``||r_k|| <= tau delta`` (15) or after
``max_iter`` steps.

Pure NumPy: sees only the operator protocol of :mod:`llgfem.operators.protocols`; if the
derivative offers ``sensitivities()`` (all columns in one sweep, e.g.
:class:`llgfem.operators.reduced.ReducedDerivative`) it is used instead of p ``apply`` calls.

Notation: ``x`` parameters, ``p = len(x)``, ``J`` Jacobian columns (range vectors), ``G`` Gram
matrix, ``lam`` damping, ``q`` target linearised residual ratio, ``tau, delta`` discrepancy.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from ..operators.protocols import ForwardOperator, range_norm
from .callbacks import History
from .core import IterationInfo, Result, require_finite

__all__ = ["levenberg_marquardt"]


def levenberg_marquardt(F: ForwardOperator, y_delta: np.ndarray, x0: np.ndarray, *,
                        tau: float, delta: float, q: float = 0.7, max_iter: int = 50,
                        max_retries: int = 20, rtol: float = 0.0,
                        callbacks: Iterable = ()) -> Result:
    """Regularising Levenberg-Marquardt iteration with the discrepancy principle.

    Args:
        F: forward operator on a small replicated parameter vector.
        y_delta: data.
        x0: initial guess (not modified).
        tau: discrepancy factor (> 1); ``delta``: absolute noise level (range norm).
        q: target ratio of the linearised residual, in (0, 1).
        max_iter: maximal number of accepted steps.
        max_retries: maximal rejected trials per step (each raises q towards 1).
        rtol: also stop when the residual fell below ``rtol`` times the initial one (for exact
            data, ``delta = 0``).
        callbacks: callables ``cb(info)``; the first :class:`History` is ``Result.history``.

    Returns:
        The :class:`Result` (``iterations`` = accepted steps).

    Raises:
        ValueError: invalid ``tau``, ``delta`` or ``q``.
        RuntimeError: NaN/Inf residual at the initial guess.
    """
    if not (tau > 1 and delta >= 0 and 0 < q < 1):
        raise ValueError(f"need tau > 1, delta >= 0, 0 < q < 1; got {tau}, {delta}, {q}")
    cbs = list(callbacks)
    history = next((cb for cb in cbs if isinstance(cb, History)), None)
    if history is None:
        history = History()
        cbs.insert(0, history)
    x = np.array(x0, dtype=float, copy=True)
    r = np.asarray(F(x), dtype=float) - y_delta
    rn = require_finite(range_norm(F, r), "residual norm", 0)
    _notify(cbs, IterationInfo(0, x, rn))
    k, reason, rn0 = 0, None, rn
    while reason is None:
        reason = _stop_reason(rn, rn0, k, tau * delta, rtol, max_iter)
        if reason is not None:
            break
        step = _step(F, y_delta, x, r, rn, q, max_retries)
        if step is None:
            reason = "no damping decreases the residual (stagnation)"
            _notify(cbs, IterationInfo(k, x, rn, accepted=False))
            break
        x, r, rn, lam, rejections = step
        k += 1
        _notify(cbs, IterationInfo(k, x, rn, step_size=lam, rejections=rejections))
    result = Result(x=x, iterations=k, reason=reason, history=history, residual_norm=rn,
                    subproblem_residual_norms=(rn,))
    for cb in cbs:
        getattr(cb, "finish", lambda _: None)(result)
    return result


def _stop_reason(rn: float, rn0: float, k: int, threshold: float, rtol: float,
                 max_iter: int) -> str | None:
    if rn <= threshold:
        return f"discrepancy principle: residual {rn:.6e} <= tau*delta = {threshold:.6e}"
    if rn <= rtol * rn0:
        return f"relative residual {rn / rn0:.3e} <= rtol = {rtol:.1e}"
    if k >= max_iter:
        return f"maximum number of iterations reached ({max_iter})"
    return None


def _notify(cbs, info: IterationInfo) -> None:
    for cb in cbs:
        cb(info)


def _jacobian(F: ForwardOperator, x: np.ndarray) -> np.ndarray:
    """Columns ``F'(x) e_i`` as an array ``(n_data, p)``."""
    L = F.derivative(x)
    if hasattr(L, "sensitivities"):
        return np.asarray(L.sensitivities(), dtype=float)
    return np.stack([np.asarray(L.apply(e), dtype=float) for e in np.eye(x.size)], axis=1)


def _step(F, y_delta, x, r, rn, q, max_retries):
    """One accepted LM step ``(x, r, rn, lam, rejections)`` or None."""
    J = _jacobian(F, x)
    p = x.size
    G = np.array([[F.inner_range(J[:, i], J[:, j]) for j in range(p)] for i in range(p)])
    b = np.array([F.inner_range(J[:, i], r) for i in range(p)])
    w = np.array([F.inner_domain(e, e) for e in np.eye(p)])
    for rejections in range(max_retries + 1):
        target = 1.0 - (1.0 - q) * 0.5**rejections  # q, then closer to 1
        lam = _damping(F, J, G, b, w, r, rn, target)
        dx = np.linalg.solve(G + lam * np.diag(w), -b)
        x_new = x + dx
        r_new = np.asarray(F(x_new), dtype=float) - y_delta
        rn_new = range_norm(F, r_new)
        if rn_new < rn:  # False for NaN
            return x_new, r_new, rn_new, lam, rejections
    return None


def _damping(F, J, G, b, w, r, rn, target) -> float:
    """``lam`` with ``||r + J dx(lam)|| = target ||r||`` (bisection in log lam)."""
    scale = max(float(np.max(np.diag(G) / w)), 1e-300)

    def linres(lam):
        dx = np.linalg.solve(G + lam * np.diag(w), -b)
        return range_norm(F, r + J @ dx)

    lo, hi = 1e-12 * scale, 1e6 * scale
    if linres(lo) >= target * rn:
        return lo  # the Gauss-Newton step cannot reach the target: least damping
    for _ in range(60):
        mid = math.sqrt(lo * hi)
        if linres(mid) < target * rn:
            lo = mid
        else:
            hi = mid
    return lo
