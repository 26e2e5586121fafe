"""Landweber and Landweber-Kaczmarz iterations (paper §3, eqs. (13)-(17)).

    x_{k+1} = x_k - mu_k F'(x_k)*(F(x_k) - y^delta)                                    (13)
    x_{k+1} = x_k - w_k mu_k F_j'(x_k)*(F_j(x_k) - y_j^delta),  j = j(k)        (14), (15)

with w_k = 0 (skip) if ||F_j(x_k) - y_j^delta|| <= tau delta_j (16) and the stop after a
whole cycle of skips (17) when ``stop`` contains a
:class:`~llgfem.regularisation.stopping.DiscrepancyPrinciple`. The adjoint F'(x)* is always
``F.derivative(x).adjoint`` in the operator's inner products; norms come from
``F.inner_range``/``F.inner_domain`` (global under MPI), so every rank takes the same
decisions.

Notation:
    F, F_j      forward operator, Kaczmarz sub-problems j = 0, ..., n-1
    y_delta     noisy data y^delta (y_j^delta per sub-problem)
    mu_k        step size (from a step rule), tau, delta: discrepancy principle
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from ..operators.protocols import ForwardOperator
from ._engine import Problem, build_engine
from .checkpoint import Checkpoint
from .core import Result
from .momentum import Momentum, NoMomentum
from .steps import StepRule
from .stopping import StoppingRule

__all__ = ["landweber", "landweber_kaczmarz"]


def landweber(F: ForwardOperator, y_delta: np.ndarray, x0: np.ndarray, *, step: StepRule,
              stop: StoppingRule, callbacks: Iterable = (),
              checkpoint: Checkpoint | None = None) -> Result:
    """Nonlinear Landweber iteration (13).

    Args:
        F: Forward operator (see :mod:`llgfem.operators.protocols`).
        y_delta: Data (local part).
        x0: Initial guess (local part); not modified.
        step: Step-size rule, e.g. ``ConstantStep(mu)`` or ``AdaptiveStep(mu)``.
        stop: Stopping rule, e.g. ``DiscrepancyPrinciple(tau, delta) | MaxIterations(n)``.
        callbacks: Callables ``cb(info)``; the first :class:`History` is ``Result.history``.
        checkpoint: Optional :class:`Checkpoint` (periodic save, resume).

    Returns:
        The :class:`Result`.

    Raises:
        RuntimeError: If a residual norm or the iterate becomes NaN/Inf.
    """
    return _run(Problem([F], [y_delta]), x0, step=step, stop=stop, momentum=NoMomentum(),
                callbacks=callbacks, checkpoint=checkpoint, driver="landweber")


def landweber_kaczmarz(subproblems: Sequence[ForwardOperator], data: Sequence[np.ndarray],
                       x0: np.ndarray, *, step: StepRule, stop: StoppingRule,
                       callbacks: Iterable = (), checkpoint: Checkpoint | None = None,
                       shuffle_seed: int | None = None,
                       momentum: Momentum | None = None) -> Result:
    """Landweber-Kaczmarz iteration (14) with the skip rule (15)-(17).

    Sub-problems are swept cyclically (Algorithms 3.3 and 3.4 of the paper: time segments or
    data selection). Every sub-step counts as an iteration, skipped ones included. Give
    ``DiscrepancyPrinciple(tau, [delta_0, ..., delta_{n-1}])`` in ``stop`` for the skip rule.

    Args:
        subproblems: Operators F_0, ..., F_{n-1} on a common domain.
        data: Data y_0^delta, ..., y_{n-1}^delta (local parts).
        x0: Initial guess; not modified.
        step: Step-size rule (its state, e.g. the adaptive mu, is shared by all sub-problems).
        stop: Stopping rule.
        callbacks: Callables ``cb(info)``; the first :class:`History` is ``Result.history``.
        checkpoint: Optional :class:`Checkpoint`.
        shuffle_seed: None for the cyclic order 0, 1, ..., n-1; else a fresh random order per
            cycle, determined by (seed, cycle) (identical on all ranks, stored in checkpoints).
        momentum: Optional extrapolation rule (e.g. ``NesterovMomentum()``) for an accelerated
            Kaczmarz variant. It acts once per cycle c, at its first sub-step:
            z = x_c + lambda_c (x_c - x_{c-1}) with x_c the iterate at the start of cycle c
            (extrapolating at every sub-step mixes the sub-problems' directions and diverged
            in our tests). A heuristic without convergence theory; on the squared
            integration operator split into 4 blocks it saved ~20% of the sub-steps.

    Returns:
        The :class:`Result`; ``subproblem_residual_norms`` holds ||F_j(x) - y_j|| at the end.

    Raises:
        RuntimeError: If a residual norm or the iterate becomes NaN/Inf.
    """
    return _run(Problem(subproblems, data, seed=shuffle_seed), x0, step=step, stop=stop,
                momentum=NoMomentum() if momentum is None else momentum,
                callbacks=callbacks, checkpoint=checkpoint, driver="landweber_kaczmarz")


def _run(problem: Problem, x0: np.ndarray, *, step, stop, momentum, callbacks, checkpoint,
         driver: str) -> Result:
    engine = build_engine(problem, step=step, stop=stop, momentum=momentum,
                          callbacks=callbacks, checkpoint=checkpoint, driver=driver)
    return engine.run(x0)
