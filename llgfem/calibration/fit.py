r"""Least-squares fit with the exact Jacobian (Levenberg--Marquardt) for few parameters.

Minimises :math:`\Phi(x) = \tfrac12 \|r(x)\|^2`, :math:`r(x) = F(x) - y`, with the damped
Gauss--Newton step in column-scaled variables (scale :math:`s_j = \max(|x_j|, \mathrm{floor}_j)`):

.. math::  (J_s^T J_s + \lambda\,\mathrm{diag}(J_s^T J_s)) \, d_s = -J_s^T r, \qquad
           x \leftarrow x + S d_s,

accepted when :math:`\Phi` decreases (then :math:`\lambda \leftarrow \lambda / 3`), else
:math:`\lambda \leftarrow 4 \lambda` and retried.  It stops when the scaled step is below
``xtol``, or the relative decrease of :math:`\Phi` is below ``tol`` with a scaled step below
``sqrt(tol)``, or after ``max_iter`` accepted steps.  Unlike
the regularising drivers of :mod:`llgfem.regularisation` (stopped early by the discrepancy
principle) it converges to the least-squares point, where the Fisher-information intervals of
:mod:`llgfem.calibration.uncertainty` apply.  Directions the data do not determine have
:math:`J_s^T J_s` singular; the damping keeps the step bounded there (the parameter then stays
near its start and is reported as not identified).

Pure NumPy; callers pass replicated ``residual(x)`` and ``jacobian(x)`` (every rank takes the
same decisions from the same numbers).

Notation: ``x`` parameters (p), ``r`` residual (n, real or complex), ``J = dr/dx`` (n, p).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["FitResult", "least_squares_fit"]


@dataclass
class FitResult:
    """Outcome of :func:`least_squares_fit`."""

    x: np.ndarray
    residual: np.ndarray
    jacobian: np.ndarray
    iterations: int
    reason: str
    history: list[dict] = field(default_factory=list)


def _real(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if np.iscomplexobj(a):
        return np.concatenate([a.real, a.imag], axis=0)
    return np.asarray(a, dtype=float)


def _step(jac: np.ndarray, res: np.ndarray, scale: np.ndarray, lam: float) -> np.ndarray:
    js = _real(jac) * scale
    g = js.T @ js
    rhs = -js.T @ _real(res)
    damp = lam * np.diag(np.where(np.diag(g) > 0, np.diag(g), 1.0))
    return scale * np.linalg.lstsq(g + damp, rhs, rcond=None)[0]


def least_squares_fit(residual: Callable[[np.ndarray], np.ndarray],
                      jacobian: Callable[[np.ndarray], np.ndarray], x0: Sequence[float], *,
                      max_iter: int = 30, tol: float = 1e-10, xtol: float = 1e-9,
                      lam0: float = 1e-3, floor: Sequence[float] | float = 1.0,
                      max_retries: int = 8,
                      callback: Callable[[dict], None] | None = None,
                      initial_callback: bool = False) -> FitResult:
    """Levenberg--Marquardt with the exact Jacobian (module docstring).

    Args:
        residual: ``r(x) = F(x) - y`` (real or complex; NaN entries count as a failed trial).
        jacobian: ``J(x)``, shape ``(n, p)``.
        x0: Start.
        max_iter: Maximal accepted steps.
        tol: Stop when the relative decrease of ``||r||^2`` is below it and the scaled step
            below its square root.
        xtol: Stop when the scaled step ``max_j |dx_j| / s_j`` is below it.
        lam0: Initial damping.
        floor: Lower bound of the column scales (a parameter near 0 is scaled by it).
        max_retries: Maximal rejected trials per step.
        callback: Called with a record ``{iteration, x, residual_norm, lambda}`` per step.
        initial_callback: Also call it for the start (iteration 0).

    Returns:
        The :class:`FitResult` (``residual`` and ``jacobian`` at the final ``x``).
    """
    x = np.asarray(x0, dtype=float).copy()
    floor = np.broadcast_to(np.asarray(floor, dtype=float), x.shape)
    r = np.asarray(residual(x))
    phi = float(np.vdot(r, r).real)
    if not math.isfinite(phi):
        raise ValueError("least_squares_fit: the residual at the start is not finite")
    lam, history, reason = lam0, [], f"max_iter = {max_iter} reached"
    if callback is not None and initial_callback:
        callback({"iteration": 0, "x": x.tolist(), "residual_norm": math.sqrt(phi),
                  "lambda": lam})
    jac = np.asarray(jacobian(x))
    it = 0
    for it in range(1, max_iter + 1):
        scale = np.maximum(np.abs(x), floor)
        small = False
        for _ in range(max_retries):
            dx = _step(jac, r, scale, lam)
            if float(np.max(np.abs(dx) / scale)) < xtol:  # converged: no trial solve needed
                small = True
                break
            r_new = np.asarray(residual(x + dx))
            phi_new = float(np.vdot(r_new, r_new).real)
            if math.isfinite(phi_new) and phi_new <= phi:
                break
            lam *= 4.0
        else:
            reason = "no decrease in max_retries damped trials (converged to round-off)"
            it -= 1
            break
        if small:
            reason = f"converged (next scaled step below xtol = {xtol:.0e})"
            it -= 1
            break
        x, r, decrease = x + dx, r_new, (phi - phi_new) / max(phi, 1e-300)
        phi, lam = phi_new, max(lam / 3.0, 1e-12)
        jac = np.asarray(jacobian(x))
        rec = {"iteration": it, "x": x.tolist(), "residual_norm": math.sqrt(phi), "lambda": lam}
        history.append(rec)
        if callback is not None:
            callback(rec)
        step = float(np.max(np.abs(dx) / scale))
        if step < xtol or (decrease < tol and step < math.sqrt(tol)):
            reason = f"converged (scaled step {step:.1e}, relative decrease {decrease:.1e})"
            break
    return FitResult(x=x, residual=r, jacobian=jac, iterations=it, reason=reason,
                     history=history)
