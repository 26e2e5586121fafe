"""Stopping rules: discrepancy principle with the Kaczmarz skip rule, and safeguards.

Paper eqs. (15)-(17): sub-step k of Landweber-Kaczmarz is skipped (w_k = 0) when

    ||F_j(x_k) - y_j^delta|| <= tau delta_j,                                           (16)

and the iteration stops at the first k_* at which a whole cycle of n consecutive sub-steps
was skipped (17). For plain Landweber (n = 1) this is the discrepancy principle
||F(x_k) - y^delta|| <= tau delta. (The paper's (16) writes w_k = 1 if the residual is >= tau
delta; we skip at equality, so that exact data with delta = 0 skips exact zeros.) The paper
takes tau > 2; the theory needs tau > 2 (1 + eta)/(1 - 2 eta) with the tangential cone
constant eta; we only enforce tau > 1.

Every rule is an object with ``check(info) -> str | None`` (a reason string stops the
iteration) and ``within_discrepancy(j, residual_norm) -> bool`` (the skip test (16); False
for rules that are not a discrepancy principle). Rules compose with ``|`` or :class:`AnyOf`.

Notation:
    tau       safety factor of the discrepancy principle, tau > 1
    delta     noise level ||y - y^delta||_Y (absolute, in the range norm); delta_j per
              sub-problem for Kaczmarz
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .core import IterationInfo

__all__ = [
    "AnyOf",
    "DiscrepancyPrinciple",
    "MaxIterations",
    "RelativeResidual",
    "StepSizeFloor",
    "StoppingRule",
]


class StoppingRule:
    """Base class: never stops, never skips. Subclasses override :meth:`check`."""

    def check(self, info: IterationInfo) -> str | None:
        """Return a reason string to stop at the iterate described by ``info``, else None."""
        return None

    def within_discrepancy(self, subproblem: int, residual_norm: float) -> bool:
        """Return True if sub-step on ``subproblem`` is to be skipped (eq. (16))."""
        return False

    def __or__(self, other: StoppingRule) -> AnyOf:
        return AnyOf(self, other)


class DiscrepancyPrinciple(StoppingRule):
    """Discrepancy principle with the Kaczmarz skip rule, eqs. (15)-(17).

    Args:
        tau: Safety factor, must be > 1 (the paper uses tau > 2).
        delta: Noise level delta >= 0 (absolute, range norm), or one delta_j per sub-problem.

    Raises:
        ValueError: If tau <= 1 or a delta is negative or not finite.
    """

    def __init__(self, tau: float, delta: float | Sequence[float]):
        if not (math.isfinite(tau) and tau > 1.0):
            raise ValueError(f"tau must be a finite number > 1, got {tau}")
        deltas = [float(delta)] if _is_scalar(delta) else [float(d) for d in delta]
        if not deltas or any(not (math.isfinite(d) and d >= 0.0) for d in deltas):
            raise ValueError(f"delta must be finite and >= 0, got {delta}")
        self.tau = float(tau)
        self.deltas = tuple(deltas)

    def threshold(self, subproblem: int = 0) -> float:
        """Return tau * delta_j (one delta applies to every sub-problem)."""
        delta = self.deltas[0] if len(self.deltas) == 1 else self.deltas[subproblem]
        return self.tau * delta

    def within_discrepancy(self, subproblem: int, residual_norm: float) -> bool:
        """Return True if ||F_j(x) - y_j|| <= tau delta_j (eq. (16): w_k = 0)."""
        return residual_norm <= self.threshold(subproblem)

    def check(self, info: IterationInfo) -> str | None:
        """Stop once n consecutive sub-steps were skipped (eq. (17); n = 1 for Landweber)."""
        if len(self.deltas) not in (1, info.n_subproblems):
            raise ValueError(
                f"DiscrepancyPrinciple has {len(self.deltas)} deltas but there are "
                f"{info.n_subproblems} sub-problems"
            )
        if info.consecutive_skips < info.n_subproblems:
            return None
        if info.n_subproblems == 1:
            return (f"discrepancy principle: residual {info.residual_norm:.6e} <= tau*delta "
                    f"= {self.threshold(0):.6e}")
        return (f"discrepancy principle: all {info.n_subproblems} sub-problems within "
                f"tau*delta_j (a whole cycle skipped, eq. (17))")


class MaxIterations(StoppingRule):
    """Stop after ``max_iter`` (sub-)steps (skipped Kaczmarz sub-steps count).

    Args:
        max_iter: Maximum number of iterations, >= 0.

    Raises:
        ValueError: If max_iter is negative.
    """

    def __init__(self, max_iter: int):
        if int(max_iter) != max_iter or max_iter < 0:
            raise ValueError(f"max_iter must be a non-negative integer, got {max_iter}")
        self.max_iter = int(max_iter)

    def check(self, info: IterationInfo) -> str | None:
        """Stop when ``info.iteration >= max_iter``."""
        if info.iteration >= self.max_iter:
            return f"maximum number of iterations reached ({self.max_iter})"
        return None


class StepSizeFloor(StoppingRule):
    """Stop when the accepted step size has fallen below ``mu_min`` (paper §4.1).

    With :class:`~llgfem.regularisation.steps.AdaptiveStep` (no growth) the step size is
    non-increasing, so a tiny step size means the residual can no longer decrease
    significantly.

    Args:
        mu_min: Floor, > 0.

    Raises:
        ValueError: If mu_min <= 0.
    """

    def __init__(self, mu_min: float):
        if not (mu_min > 0.0):
            raise ValueError(f"mu_min must be > 0, got {mu_min}")
        self.mu_min = float(mu_min)

    def check(self, info: IterationInfo) -> str | None:
        """Stop if the last step size is below ``mu_min``."""
        if info.step_size is not None and info.step_size < self.mu_min:
            return f"step size floor: step size {info.step_size:.3e} < mu_min = {self.mu_min:.3e}"
        return None


class RelativeResidual(StoppingRule):
    """Stop when the residual has dropped by a factor ``rtol`` relative to the initial one.

    Uses ``info.total_residual_norm`` (the latest residual of every sub-problem combined).

    Args:
        rtol: Relative tolerance in (0, 1).

    Raises:
        ValueError: If rtol is not in (0, 1).
    """

    def __init__(self, rtol: float):
        if not (0.0 < rtol < 1.0):
            raise ValueError(f"rtol must be in (0, 1), got {rtol}")
        self.rtol = float(rtol)

    def check(self, info: IterationInfo) -> str | None:
        """Stop if total residual <= rtol * initial residual."""
        if info.total_residual_norm <= self.rtol * info.initial_residual_norm:
            return (f"relative residual {info.total_residual_norm:.3e} <= rtol * "
                    f"{info.initial_residual_norm:.3e} (rtol = {self.rtol:.1e})")
        return None


class AnyOf(StoppingRule):
    """Stop as soon as any of the rules stops; skip if any rule skips.

    Args:
        *rules: Stopping rules, checked in order; the first reason is reported.
    """

    def __init__(self, *rules: StoppingRule):
        flat: list[StoppingRule] = []
        for rule in rules:
            flat.extend(rule.rules if isinstance(rule, AnyOf) else [rule])
        self.rules = tuple(flat)

    def check(self, info: IterationInfo) -> str | None:
        """Return the first reason of the composed rules, or None."""
        for rule in self.rules:
            reason = rule.check(info)
            if reason is not None:
                return reason
        return None

    def within_discrepancy(self, subproblem: int, residual_norm: float) -> bool:
        """Return True if any rule skips the sub-step."""
        return any(rule.within_discrepancy(subproblem, residual_norm) for rule in self.rules)


def _is_scalar(value) -> bool:
    return not isinstance(value, Sequence) and getattr(value, "ndim", 0) == 0
