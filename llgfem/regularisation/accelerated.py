"""Accelerated Landweber iterations ("beyond the paper", issue 4).

Two-point gradient form (Hubmer & Ramlau, Inverse Problems 33 (2017) 095004):

    z_k     = x_k + lambda_k (x_k - x_{k-1}),          x_{-1} = x_0,
    x_{k+1} = z_k - mu_k F'(z_k)*(F(z_k) - y^delta),

stopped by the discrepancy principle ||F(x_k) - y^delta|| <= tau delta at x_k.

* :func:`nesterov_landweber` -- lambda_k = (k - 1)/(k + alpha - 1), alpha >= 3 (Neubauer,
  "On Nesterov acceleration for Landweber iteration of linear ill-posed problems", J. Inverse
  Ill-Posed Probl. 25 (2017)); for noisy data the discrepancy principle stops it after about
  the square root of the Landweber iteration count.
* :func:`two_point_gradient` -- lambda_k by the discrete backtracking search of Hubmer-Ramlau
  (:class:`~llgfem.regularisation.momentum.TwoPointMomentum`), which keeps the residual at
  z_k above tau delta and sum_k lambda_k ||x_k - x_{k-1}|| finite (their convergence theory
  for nonlinear problems under the tangential cone condition).

Each step costs two forward evaluations (at z_k and x_{k+1}) instead of one; with
:class:`~llgfem.regularisation.steps.AdaptiveStep` a step from z_k is accepted if the residual
at x_{k+1} is below the residual at z_k. ``step``, ``stop``, ``callbacks`` and ``checkpoint``
are the same objects as for :func:`~llgfem.regularisation.landweber.landweber`.

Notation:
    lambda_k    extrapolation weight (``info.momentum`` in callbacks), alpha: Nesterov parameter
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..operators.protocols import ForwardOperator
from ._engine import Problem, build_engine
from .checkpoint import Checkpoint
from .core import Result
from .momentum import NesterovMomentum, TwoPointMomentum
from .steps import StepRule
from .stopping import StoppingRule

__all__ = ["nesterov_landweber", "two_point_gradient"]


def nesterov_landweber(F: ForwardOperator, y_delta: np.ndarray, x0: np.ndarray, *,
                       step: StepRule, stop: StoppingRule, alpha: float = 3.0,
                       restart: bool = False, callbacks: Iterable = (),
                       checkpoint: Checkpoint | None = None) -> Result:
    """Nesterov-accelerated Landweber iteration (Neubauer's version).

    Args:
        F: Forward operator.
        y_delta: Data (local part).
        x0: Initial guess; not modified.
        step: Step-size rule (``ConstantStep(mu)`` with mu <= 1/||F'||^2 as in theory).
        stop: Stopping rule (``DiscrepancyPrinciple`` is evaluated at x_k).
        alpha: Nesterov parameter >= 3.
        restart: Adaptive restart of the momentum (see :class:`NesterovMomentum`).
        callbacks: Callables ``cb(info)``; the first :class:`History` is ``Result.history``.
        checkpoint: Optional :class:`Checkpoint` (stores x_k and x_{k-1}).

    Returns:
        The :class:`Result`.

    Raises:
        ValueError: If alpha < 3.
        RuntimeError: If a residual norm or the iterate becomes NaN/Inf.
    """
    engine = build_engine(Problem([F], [y_delta]), step=step, stop=stop,
                          momentum=NesterovMomentum(alpha, restart), callbacks=callbacks,
                          checkpoint=checkpoint, driver="nesterov_landweber")
    return engine.run(x0)


def two_point_gradient(F: ForwardOperator, y_delta: np.ndarray, x0: np.ndarray, *,
                       step: StepRule, stop: StoppingRule, alpha: float = 3.0,
                       q_scale: float = 1.0, q_power: float = 1.1, l_max: int = 10,
                       callbacks: Iterable = (),
                       checkpoint: Checkpoint | None = None) -> Result:
    """Two-point gradient (TPG) method with discrete backtracking search (Hubmer-Ramlau).

    Args:
        F: Forward operator.
        y_delta: Data (local part).
        x0: Initial guess; not modified.
        step: Step-size rule.
        stop: Stopping rule; its discrepancy principle also drives the backtracking.
        alpha: Nesterov parameter >= 3 (upper bound of lambda_k).
        q_scale: Scale of the summable sequence q(i) = q_scale * i**(-q_power).
        q_power: Exponent > 1.
        l_max: Maximum backtracking trials per iteration.
        callbacks: Callables ``cb(info)``; the first :class:`History` is ``Result.history``.
        checkpoint: Optional :class:`Checkpoint` (stores x_k, x_{k-1} and the DBTS counter).

    Returns:
        The :class:`Result`.

    Raises:
        ValueError: For invalid alpha, q_scale, q_power or l_max.
        RuntimeError: If a residual norm or the iterate becomes NaN/Inf.
    """
    momentum = TwoPointMomentum(alpha, q_scale=q_scale, q_power=q_power, l_max=l_max)
    engine = build_engine(Problem([F], [y_delta]), step=step, stop=stop, momentum=momentum,
                          callbacks=callbacks, checkpoint=checkpoint,
                          driver="two_point_gradient")
    return engine.run(x0)
