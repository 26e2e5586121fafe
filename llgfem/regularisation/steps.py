"""Step-size rules for Landweber-type updates x_new = z - mu s, s = F'(z)*(F(z) - y^delta).

Paper eq. (13) with step size mu_k; the classical bound is mu <= 1/||F'(x)||^2. Rules:

* :class:`ConstantStep` -- fixed mu.
* :class:`AdaptiveStep` -- the paper's adaptive bisection (§4.1): try mu; accept if the
  residual decreased, else halve mu and retry; fail (stop) when mu falls below ``mu_min``.
  The accepted mu is kept for the next iteration, so without growth mu is non-increasing as
  in the paper. Option: ``grow > 1`` multiplies mu by ``grow`` after each accepted step (capped
  by ``mu_max``), which recovers from an early unlucky bisection at the price of occasional
  rejected trials (each costs one forward evaluation). Option: ``armijo = c > 0`` demands a
  sufficient decrease ||r_new||^2 < ||r||^2 - 2 c mu ||s||^2 (Armijo's rule for
  (1/2)||F(x) - y||^2). The paper's plain decrease (c = 0) accepts mu just below
  2/||F'||^2, where the dominant singular component oscillates undamped and the iteration
  stalls; c = 1/2 caps mu at about 1/||F'||^2 on that component (the classical bound).
* :class:`SteepestDescentStep` -- mu = ||s||_X^2 / ||F'(z) s||_Y^2, the exact line
  minimiser of the linearised residual (steepest descent / minimal-residual step).
* :class:`MinimalErrorStep` -- mu = ||r||_Y^2 / ||s||_X^2 (minimal-error step of
  Neubauer-Scherzer), scaled by ``omega`` < 1 for safety.

A rule's ``take(trial)`` returns a :class:`StepOutcome`; ``state_dict``/``load_state_dict``
expose its mutable state to checkpoints. Non-finite trial residuals are treated as "no
decrease" by :class:`AdaptiveStep` (bisect); the other rules leave them to the driver, which
raises.

Notation:
    z      base point of the update (x_k, or the extrapolated point of accelerated methods)
    s      Landweber direction F'(z)*(F(z) - y^delta)
    r      residual F(z) - y^delta
    mu     step size
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "AdaptiveStep",
    "ConstantStep",
    "MinimalErrorStep",
    "StepOutcome",
    "StepRule",
    "StepTrial",
    "SteepestDescentStep",
]


@dataclass(frozen=True)
class StepTrial:
    """What a step rule may use to choose mu.

    Attributes:
        z: Base point.
        direction: s = F'(z)*(F(z) - y^delta).
        residual_norm: ||F(z) - y^delta||_Y.
        evaluate: x -> (F(x) - y^delta, its norm); one forward evaluation per call.
        linearised: dx -> F'(z) dx.
        inner_domain: Global inner product of X.
        inner_range: Global inner product of Y.
    """

    z: np.ndarray
    direction: np.ndarray
    residual_norm: float
    evaluate: Callable[[np.ndarray], tuple[np.ndarray, float]]
    linearised: Callable[[np.ndarray], np.ndarray]
    inner_domain: Callable[[np.ndarray, np.ndarray], float]
    inner_range: Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True)
class StepOutcome:
    """Result of a step: the new point and its residual, or a rejection.

    Attributes:
        x: New iterate (equal to the base point if not accepted).
        residual: F(x) - y^delta at the new iterate (None if not accepted).
        residual_norm: Its norm.
        step_size: The step size used (the last one tried if not accepted).
        accepted: False if no admissible step size was found.
        rejections: Number of bisections.
        message: Why the step was not accepted.
    """

    x: np.ndarray
    residual: np.ndarray | None
    residual_norm: float
    step_size: float
    accepted: bool = True
    rejections: int = 0
    message: str = ""


class StepRule:
    """Base class of step-size rules (stateless by default)."""

    def take(self, trial: StepTrial) -> StepOutcome:
        """Compute the new iterate from ``trial``."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Return the mutable state (JSON-serialisable) for checkpoints."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the state returned by :meth:`state_dict`."""


def _positive(name: str, value: float) -> float:
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return float(value)


def _cap(name: str, value: float) -> float:
    if not value > 0.0:
        raise ValueError(f"{name} must be > 0 (or inf), got {value}")
    return float(value)


def _plain_step(trial: StepTrial, mu: float) -> StepOutcome:
    x = trial.z - mu * trial.direction
    r, rn = trial.evaluate(x)
    return StepOutcome(x=x, residual=r, residual_norm=rn, step_size=mu)


class ConstantStep(StepRule):
    """Constant step size mu (paper eq. (13) with mu_k = mu).

    Args:
        mu: Step size > 0; convergence needs mu <= 1/||F'(x)||^2 near the solution.
    """

    def __init__(self, mu: float):
        self.mu = _positive("mu", mu)

    def take(self, trial: StepTrial) -> StepOutcome:
        """Return z - mu s."""
        return _plain_step(trial, self.mu)


class AdaptiveStep(StepRule):
    """The paper's adaptive bisection (§4.1), optionally growing mu after accepted steps.

    Args:
        mu: Initial step size > 0.
        mu_min: Bisection floor > 0: if no mu >= mu_min decreases the residual the step fails
            and the driver stops with a "step size floor" reason.
        shrink: Factor in (0, 1) applied on rejection (0.5 = bisection).
        grow: Factor >= 1 applied after an accepted step (1 = paper, non-increasing mu).
        mu_max: Upper bound for growth.
        armijo: Sufficient-decrease constant c in [0, 1) (0 = paper: any decrease).
    """

    def __init__(self, mu: float, *, mu_min: float = 1e-10, shrink: float = 0.5,
                 grow: float = 1.0, mu_max: float = math.inf, armijo: float = 0.0):
        self.mu = _positive("mu", mu)
        self.mu_min = _positive("mu_min", mu_min)
        if not 0.0 < shrink < 1.0:
            raise ValueError(f"shrink must be in (0, 1), got {shrink}")
        if not (math.isfinite(grow) and grow >= 1.0):
            raise ValueError(f"grow must be a finite number >= 1, got {grow}")
        if not mu_max >= mu:
            raise ValueError(f"mu_max must be >= mu, got {mu_max}")
        if not 0.0 <= armijo < 1.0:
            raise ValueError(f"armijo must be in [0, 1), got {armijo}")
        self.shrink, self.grow, self.mu_max = float(shrink), float(grow), float(mu_max)
        self.armijo = float(armijo)

    def take(self, trial: StepTrial) -> StepOutcome:
        """Try mu, mu*shrink, ... until the residual decreases or mu < mu_min."""
        mu, rejections = self.mu, 0
        s2 = trial.inner_domain(trial.direction, trial.direction) if self.armijo else 0.0
        while mu >= self.mu_min:
            x = trial.z - mu * trial.direction
            r, rn = trial.evaluate(x)
            target = trial.residual_norm**2 - 2.0 * self.armijo * mu * s2
            if rn * rn < target:  # False for NaN: a non-finite trial is rejected
                self.mu = min(mu * self.grow, self.mu_max)
                return StepOutcome(x, r, rn, mu, rejections=rejections)
            mu *= self.shrink
            rejections += 1
        self.mu = mu
        return StepOutcome(
            x=trial.z, residual=None, residual_norm=trial.residual_norm, step_size=mu,
            accepted=False, rejections=rejections,
            message=(f"step size floor: no step size >= mu_min = {self.mu_min:.3e} decreases "
                     f"the residual {trial.residual_norm:.6e}"),
        )

    def state_dict(self) -> dict[str, Any]:
        """Return the current step size."""
        return {"mu": self.mu}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the current step size."""
        self.mu = float(state["mu"])


class SteepestDescentStep(StepRule):
    """mu = omega ||s||_X^2 / ||F'(z) s||_Y^2, the line minimiser of the linearised residual.

    Args:
        omega: Relaxation factor in (0, 2).
        mu_max: Upper bound for mu.
    """

    def __init__(self, omega: float = 1.0, mu_max: float = math.inf):
        if not 0.0 < omega < 2.0:
            raise ValueError(f"omega must be in (0, 2), got {omega}")
        self.omega = float(omega)
        self.mu_max = _cap("mu_max", mu_max)

    def take(self, trial: StepTrial) -> StepOutcome:
        """Return z - mu s with the steepest-descent mu (mu = 0 if s = 0)."""
        s2 = trial.inner_domain(trial.direction, trial.direction)
        ls = trial.linearised(trial.direction)
        ls2 = trial.inner_range(ls, ls)
        mu = 0.0 if s2 == 0.0 else min(self.omega * s2 / ls2, self.mu_max)
        return _plain_step(trial, mu)


class MinimalErrorStep(StepRule):
    """mu = omega ||r||_Y^2 / ||s||_X^2 (minimal-error step), capped by ``mu_max``.

    Args:
        omega: Relaxation factor in (0, 1]; values < 1 are safer for nonlinear problems.
        mu_max: Upper bound for mu.
    """

    def __init__(self, omega: float = 1.0, mu_max: float = math.inf):
        if not 0.0 < omega <= 1.0:
            raise ValueError(f"omega must be in (0, 1], got {omega}")
        self.omega = float(omega)
        self.mu_max = _cap("mu_max", mu_max)

    def take(self, trial: StepTrial) -> StepOutcome:
        """Return z - mu s with the minimal-error mu (mu = 0 if s = 0)."""
        s2 = trial.inner_domain(trial.direction, trial.direction)
        mu = 0.0 if s2 == 0.0 else min(self.omega * trial.residual_norm**2 / s2, self.mu_max)
        return _plain_step(trial, mu)
