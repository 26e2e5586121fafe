"""Extrapolation (momentum) rules of accelerated Landweber iterations ("beyond the paper").

Two-point gradient iterations (Hubmer & Ramlau 2017) replace the Landweber step (13) by

    z_k     = x_k + lambda_k (x_k - x_{k-1}),
    x_{k+1} = z_k - mu_k F'(z_k)*(F(z_k) - y^delta),

stopped by the discrepancy principle at x_k. Rules for lambda_k:

* :class:`NoMomentum` -- lambda_k = 0: plain Landweber (13)/(14).
* :class:`NesterovMomentum` -- lambda_k = (k - 1)/(k + alpha - 1), alpha >= 3 (Nesterov's
  choice; Neubauer 2017 analyses it for Landweber iteration of linear ill-posed problems).
* :class:`TwoPointMomentum` -- the discrete backtracking search (DBTS) of Hubmer & Ramlau:
  lambda_k = min(q(i_{k-1} + l) / ||x_k - x_{k-1}||_X, (k - 1)/(k + alpha - 1)) for the
  first l = 1, ..., l_max with ||F(z_k) - y^delta|| > tau delta (else lambda_k = 0), with
  a summable, non-increasing q(i) = q_scale * i^(-q_power), q_power > 1; then
  sum_k lambda_k ||x_k - x_{k-1}|| < infinity, the condition of their convergence analysis.

Each rule returns an :class:`Extrapolation` (z_k with F(z_k) - y^delta, reusing the residual
at x_k when lambda_k = 0) and exposes ``state_dict``/``load_state_dict`` for checkpoints.

Notation:
    k          iteration index (sub-step index for Kaczmarz variants)
    lambda_k   extrapolation (combination) weight
    alpha      Nesterov parameter, alpha >= 3
    i_k        DBTS counter; q(i) its summable weight sequence
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Extrapolation", "Momentum", "NesterovMomentum", "NoMomentum", "TwoPointMomentum"]


@dataclass(frozen=True)
class Extrapolation:
    """The extrapolated point z_k and its residual.

    Attributes:
        z: Extrapolated point.
        weight: lambda_k.
        residual: F(z) - y^delta.
        residual_norm: Its range norm.
    """

    z: np.ndarray
    weight: float
    residual: np.ndarray
    residual_norm: float


@dataclass(frozen=True)
class MomentumContext:
    """Inputs of a momentum rule at iteration k.

    Attributes:
        k: Iteration index.
        x: x_k.
        x_prev: x_{k-1} (equal to x_0 at k = 0, and to x_k after a skipped sub-step).
        residual: F(x_k) - y^delta.
        residual_norm: Its norm.
        evaluate: x -> (F(x) - y^delta, norm).
        within: residual norm -> True if within the discrepancy tau delta.
        norm_domain: Global norm of X.
    """

    k: int
    x: np.ndarray
    x_prev: np.ndarray
    residual: np.ndarray
    residual_norm: float
    evaluate: Callable[[np.ndarray], tuple[np.ndarray, float]]
    within: Callable[[float], bool]
    norm_domain: Callable[[np.ndarray], float]


class Momentum:
    """Base class of extrapolation rules."""

    def extrapolate(self, ctx: MomentumContext) -> Extrapolation:
        """Return z_k for the context."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Return the JSON-serialisable state for checkpoints."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the state from :meth:`state_dict`."""


def _stay(ctx: MomentumContext) -> Extrapolation:
    return Extrapolation(ctx.x, 0.0, ctx.residual, ctx.residual_norm)


def _nesterov_weight(k: int, alpha: float) -> float:
    return max(k - 1.0, 0.0) / (k + alpha - 1.0)


def _check_alpha(alpha: float) -> float:
    if not (math.isfinite(alpha) and alpha >= 3.0):
        raise ValueError(f"alpha must be a finite number >= 3, got {alpha}")
    return float(alpha)


class NoMomentum(Momentum):
    """lambda_k = 0 (plain Landweber / Landweber-Kaczmarz)."""

    def extrapolate(self, ctx: MomentumContext) -> Extrapolation:
        """Return z_k = x_k."""
        return _stay(ctx)


class NesterovMomentum(Momentum):
    """Nesterov extrapolation lambda_k = (k - 1)/(k + alpha - 1), with optional restart.

    Args:
        alpha: Parameter >= 3 (3 is Nesterov's choice).
        restart: Adaptive (function-value) restart: when the extrapolated point has a larger
            residual than x_k, the momentum sequence starts again (lambda = 0 for this step).
            A heuristic (O'Donoghue and Candes) without regularisation theory, but it keeps
            the acceleration from stalling on nearly linear problems.
    """

    def __init__(self, alpha: float = 3.0, restart: bool = False):
        self.alpha = _check_alpha(alpha)
        self.restart = bool(restart)
        self.k0 = 0

    def extrapolate(self, ctx: MomentumContext) -> Extrapolation:
        """Return z_k = x_k + lambda_k (x_k - x_{k-1}) with its residual."""
        lam = _nesterov_weight(ctx.k - self.k0, self.alpha)
        if lam == 0.0:
            return _stay(ctx)
        z = ctx.x + lam * (ctx.x - ctx.x_prev)
        r, rn = ctx.evaluate(z)
        if self.restart and not rn <= ctx.residual_norm:
            self.k0 = ctx.k
            return _stay(ctx)
        return Extrapolation(z, lam, r, rn)

    def state_dict(self) -> dict[str, Any]:
        """Return the restart offset."""
        return {"k0": self.k0}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the restart offset."""
        self.k0 = int(state.get("k0", 0))


class TwoPointMomentum(Momentum):
    """Discrete backtracking search (DBTS) of the two-point gradient method.

    Args:
        alpha: Nesterov parameter >= 3 bounding lambda_k by (k - 1)/(k + alpha - 1).
        q_scale: Scale of q(i) = q_scale * i**(-q_power), > 0.
        q_power: Exponent > 1 (summability).
        l_max: Maximum number of backtracking trials per iteration (each costs one forward
            evaluation).
    """

    def __init__(self, alpha: float = 3.0, *, q_scale: float = 1.0, q_power: float = 1.1,
                 l_max: int = 10):
        self.alpha = _check_alpha(alpha)
        if not (math.isfinite(q_scale) and q_scale > 0.0):
            raise ValueError(f"q_scale must be a finite number > 0, got {q_scale}")
        if not (math.isfinite(q_power) and q_power > 1.0):
            raise ValueError(f"q_power must be a finite number > 1, got {q_power}")
        if int(l_max) != l_max or l_max < 1:
            raise ValueError(f"l_max must be an integer >= 1, got {l_max}")
        self.q_scale, self.q_power, self.l_max = float(q_scale), float(q_power), int(l_max)
        self.counter = 0

    def q(self, i: int) -> float:
        """Return q(i) = q_scale * i**(-q_power)."""
        return self.q_scale * float(i) ** (-self.q_power)

    def extrapolate(self, ctx: MomentumContext) -> Extrapolation:
        """Backtrack lambda_k until the residual at z_k stays above tau delta."""
        lam_max = _nesterov_weight(ctx.k, self.alpha)
        d = ctx.x - ctx.x_prev
        dn = ctx.norm_domain(d) if lam_max > 0.0 else 0.0
        if dn == 0.0:
            return _stay(ctx)
        for trial in range(1, self.l_max + 1):
            lam = min(self.q(self.counter + trial) / dn, lam_max)
            z = ctx.x + lam * d
            r, rn = ctx.evaluate(z)
            if math.isfinite(rn) and not ctx.within(rn):
                self.counter += trial
                return Extrapolation(z, lam, r, rn)
        self.counter += self.l_max
        return _stay(ctx)

    def state_dict(self) -> dict[str, Any]:
        """Return the DBTS counter i_k."""
        return {"counter": self.counter}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the DBTS counter."""
        self.counter = int(state["counter"])
