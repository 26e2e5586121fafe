"""Records shared by the regularisation drivers: per-iteration info and the final result.

Notation (paper eqs. (13)-(17)):
    k           iteration index (for Kaczmarz: sub-step index, skipped sub-steps included)
    j = j(k)    index of the sub-problem F_j treated in sub-step k (0 for plain Landweber)
    x_k         iterate
    mu_k        step size
    r_k         residual F_j(x_k) - y_j^delta, its norm ||r_k||_Y through F_j.inner_range
    w_k         1 - skipped: the Kaczmarz skip weight of eq. (16)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["DivergenceError", "IterationInfo", "Result", "require_finite"]


@dataclass(frozen=True)
class IterationInfo:
    """State of an iteration, passed to stopping rules and callbacks.

    Stopping rules see the info of the current iterate *before* the update of sub-step k;
    callbacks see it *after* the update (``iteration`` = k + 1, ``x`` = x_{k+1}, and
    ``residual_norm`` = ||F_j(x_{k+1}) - y_j||, the residual of the same sub-problem j).
    Callbacks are also called once for the initial iterate (iteration 0, ``step_size`` None).

    Attributes:
        iteration: Number of (sub-)steps performed so far.
        x: Current iterate (do not modify; copy if you keep it).
        residual_norm: ||F_j(x) - y_j||_Y of sub-problem ``subproblem``.
        step_size: Step size of the last accepted step (None before the first step).
        subproblem: Index j of the sub-problem.
        skipped: True if sub-step k was skipped by the Kaczmarz/discrepancy rule (w_k = 0).
        accepted: False only in the last record of a run stopped because the adaptive step
            rule found no step size >= its floor that decreases the residual (that record
            repeats the iteration number of the one before).
        rejections: Number of step-size bisections in this step.
        n_subproblems: Number n of sub-problems (1 for Landweber).
        consecutive_skips: Number of consecutive skipped sub-steps, this one included.
        total_residual_norm: sqrt(sum_j ||F_j(x_{k_j}) - y_j||^2) over the latest residual
            of each sub-problem (inf until all were seen); equals ``residual_norm`` if n = 1.
        initial_residual_norm: ``total_residual_norm`` of the first complete sweep.
        momentum: Extrapolation weight lambda_k of accelerated methods (0 otherwise).
    """

    iteration: int
    x: np.ndarray
    residual_norm: float
    step_size: float | None = None
    subproblem: int = 0
    skipped: bool = False
    accepted: bool = True
    rejections: int = 0
    n_subproblems: int = 1
    consecutive_skips: int = 0
    total_residual_norm: float = math.inf
    initial_residual_norm: float = math.inf
    momentum: float = 0.0


@dataclass
class Result:
    """Outcome of a regularisation driver.

    Attributes:
        x: Final iterate.
        iterations: Number of (sub-)steps performed (skipped Kaczmarz sub-steps included).
        reason: Why the iteration stopped (from the stopping rule or the step rule).
        history: The :class:`~llgfem.regularisation.callbacks.History` of the run.
        residual_norm: sqrt(sum_j ||F_j(x) - y_j||^2) at the final x (||F(x) - y|| for
            Landweber).
        subproblem_residual_norms: ||F_j(x) - y_j|| for each sub-problem at the final x.
    """

    x: np.ndarray
    iterations: int
    reason: str
    history: Any
    residual_norm: float
    subproblem_residual_norms: tuple[float, ...] = field(default_factory=tuple)


class DivergenceError(RuntimeError):
    """A norm of the iteration became NaN or infinite (raised identically on every rank: the
    norms are global).  ``llgfem run`` reports it as a solver failure (exit status 3)."""


def require_finite(value: float, what: str, iteration: int) -> float:
    """Raise a clear error if a (global, rank-identical) norm is NaN or infinite.

    Args:
        value: The norm to check.
        what: Description used in the message (e.g. "residual norm").
        iteration: Current iteration, for the message.

    Returns:
        ``value`` unchanged.

    Raises:
        DivergenceError: If ``value`` is NaN or infinite.
    """
    if not math.isfinite(value):
        raise DivergenceError(
            f"non-finite {what} ({value}) at iteration {iteration}: the iteration diverged "
            "or the operator produced NaN/Inf; reduce the step size or check the operator"
        )
    return value
