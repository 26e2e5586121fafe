"""The all-at-once forward operator of paper 002, §2.2.2 and Algorithm 3.1, and its adjoint.

Unknowns ``x = (m_hat, a1, a2)`` with ``m = m0 + m_hat``, ``m_hat(0) = 0``; the operator

    F(m_hat, a) = (F0(m_hat, a), (K_kl m_t)_kl) = (0, y)                                (10)

where ``F0`` is the *same* discrete LLG residual the forward solver zeroes
(``LLGSolver.space_time_residual``: implicit-midpoint residuals ``R_n`` at the ``N`` midpoints,
dual vectors tested with the P1 basis) and ``K`` the observation operator (eq. (5)).

Discrete spaces and inner products (SPEC §2; all transposes below are exact):

* ``U`` (``m_hat``): ``(u1, u2)_U = sum_n dt (H u1)_n^T M^{-1} (H u2)_n`` -- the discrete
  ``int int (u_t - Laplace u).(u_t - Laplace u)`` with the Crank-Nicolson heat operator ``H``
  (:class:`~llgfem.solvers.heat.HeatSolver`); its Riesz map is a backward heat solve (19)
  followed by a forward one (18): ``u = H^{-1} (M/dt) H^{-T} l``.
* ``X = R^2`` (``a``): Euclidean, times ``param_weight``.
* ``W`` (``F0``): ``(w1, w2)_W = sum_k omega_k (I1 w1)_k^T (A + M)^{-1} (I1 w2)_k`` (times
  an optional ``model_weight``) with the
  discrete ``I1[w](t_k) = int_0^{t_k} w - mean`` of (12) (midpoint-rule antiderivative, then
  minus the trapezoidal mean), i.e. the Gram matrix ``G_W = (I1^T Omega I1) (x) (A + M)^{-1}``:
  applying it is the elliptic problem (21) at every midpoint (A.1) followed by the discrete
  ``I2 = I1^T Omega I1`` (A.2).
* ``Y`` (data): ``Observation.inner_range`` (midpoint rule in time).

Adjoint ``F'(x)* (r0, r_obs)`` (Algorithm 3.1, steps A-D): ``y = G_W r0`` (A.1-A.2); the
transposed linearisation ``l_k = sum_n (dR_n/dm_k)^T y_n`` assembled per step as
``ufl.action(ufl.adjoint(ufl.derivative(R_n, m_k)), y_n)`` (the discrete ``f^y, g_T^y`` of (20),
A.3) plus the observation part ``K^T r_obs`` (B.1; ``Observation.transpose`` is the transpose
for the pairing ``(K u, r)_Y``); ``u = riesz_U(l)`` (A.4-A.5, B.2-B.3);
``beta_i = sum_n (dR_n/da_i) . y_n / param_weight`` ((22), (23); C, D).

Layout of a domain vector: ``[m_hat_1, ..., m_hat_N, a1, a2]`` (owned dofs; ``a`` replicated on
every rank, counted once in the inner product).  A range vector: ``[F0 (N x n_owned), y_obs]``
(``y_obs`` replicated, counted once).

Evaluation paths: on one rank with vector P1 on affine simplices (the paper's setting) the
operator, its derivative, adjoint and inner products are evaluated by the batched kernels of
:mod:`llgfem.operators.all_at_once_fast` (all time levels at once, matrices and tables built
once, U/W maps in the eigenbasis of ``(A, M)``); otherwise (MPI, other spaces) step by step with
the FFCx forms and PETSc solves below.  Both compute the same discrete objects (tested to
round-off in ``tests/verification/test_all_at_once_fast.py``).

Notation: ``N = n_t - 1`` steps, ``n`` owned dofs, ``m0`` initial state (owned dofs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from mpi4py import MPI

from llgfem.operators.all_at_once_fast import (
    BatchedGilbert,
    fast_path_reason,
    from_nodes,
    time_gram,
    to_nodes,
)
from llgfem.solvers.heat import HeatSolver
from llgfem.spacetime import TimeGrid

if TYPE_CHECKING:
    from llgfem.problem import LLGProblem

__all__ = ["AllAtOnceOperator", "time_gram_I2"]


def time_gram_I2(grid: TimeGrid) -> np.ndarray:
    """The N x N matrix ``I1^T Omega I1`` of the discrete (12) (symmetric positive definite)."""
    return time_gram(grid)


class AllAtOnceOperator:
    """``F(m_hat, a) = (F0, K m)`` with the inner products of the module docstring.

    Args:
        problem: the LLG problem (Gilbert form): its step residual defines ``F0``, its ``m0``
            the initial state, its observation (or None: Remark 1, model part only) the data part.
        heat: heat solver on the same space and grid (U Riesz map, elliptic (21)); built from
            the problem if None.
        estimate_parameters: False freezes ``a`` (Remark 1: the iteration is an LLG solver).
        param_weight: weight of the Euclidean inner product of ``a``.
        model_weight: weight of the W inner product of the model residual ``F0`` relative to
            the data part (the model equation carries no noise; a weight > 1 drives it further
            down before the discrepancy principle stops the iteration).
        fast: use the batched kernels (:mod:`llgfem.operators.all_at_once_fast`): None = when
            they apply (serial, vector P1, Gilbert form), False = never, True = required
            (ValueError naming the reason if they do not apply).

    Attributes:
        fast: the :class:`BatchedGilbert` kernels, or None (FFCx/PETSc path).
    """

    def __init__(self, problem: LLGProblem, heat: HeatSolver | None = None, *,
                 estimate_parameters: bool = True, param_weight: float = 1.0,
                 model_weight: float = 1.0, fast: bool | None = None):
        solver = problem.solver
        self.problem, self.solver, self.obs = problem, solver, problem.observation
        self.heat = heat if heat is not None else HeatSolver(solver.V, solver.grid)
        self.grid, self.comm, self.n = solver.grid, solver.comm, solver.n
        self.N = self.grid.n_t - 1
        self.m0 = np.asarray(problem.m0, dtype=float)
        self.estimate_parameters = estimate_parameters
        self.param_weight = float(param_weight)
        self.model_weight = float(model_weight)
        self.a_fixed = solver.parameters
        self.I2 = time_gram_I2(self.grid)
        self.n_obs = 0 if self.obs is None else int(np.prod(self.obs.signals_shape))
        self.counters = {"F": 0, "adjoint": 0, "apply": 0}
        self.fast = self._batched(fast)
        self._last: tuple | None = None
        self._last_gram: tuple | None = None
        self._m0_nodes = None if self.fast is None else to_nodes(self.m0[None, :], self.fast.nn)

    def fast_state(self, x: np.ndarray):
        """The batched kernels' tabulation of the trajectory and parameters at ``x`` (reused
        from the last ``F(x)`` when ``x`` is unchanged)."""
        if self._last is not None and np.array_equal(self._last[0], x):
            return self._last[1]
        return self._fast_state_of(x)

    def _fast_state_of(self, x: np.ndarray):
        """Tabulate ``m0 + m_hat`` of ``x`` directly from the flat vector (no level copies)."""
        a = self._parameters(np.asarray(x[-2:], dtype=float))
        return self.fast.state_of_increment(self._m0_nodes, x[: self.N * self.n], a)

    def _batched(self, fast: bool | None) -> BatchedGilbert | None:
        if fast is False:
            return None
        reason = fast_path_reason(self.solver)
        if reason is None:
            return BatchedGilbert(self.solver)
        if fast:
            raise ValueError(f"AllAtOnceOperator(fast=True): the problem {reason}")
        return None

    # -- vectors ------------------------------------------------------------------------------
    @property
    def domain_size(self) -> int:
        return self.N * self.n + 2

    def split(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(m_hat (n_t, n) with row 0 = 0, a (2,))``."""
        m_hat = np.zeros((self.N + 1, self.n))
        m_hat[1:] = x[: self.N * self.n].reshape(self.N, self.n)
        return m_hat, np.asarray(x[-2:], dtype=float)

    def join(self, m_hat: np.ndarray, a) -> np.ndarray:
        return np.concatenate([np.asarray(m_hat)[1:].ravel(), np.asarray(a, dtype=float)])

    def split_range(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r0 = y[: self.N * self.n].reshape(self.N, self.n)
        return r0, y[self.N * self.n:]

    def data(self, y_obs: np.ndarray | None = None) -> np.ndarray:
        """The right-hand side ``(0, y_obs)`` of (10) as a range vector."""
        obs = np.zeros(self.n_obs) if y_obs is None else np.asarray(y_obs, dtype=float).ravel()
        return np.concatenate([np.zeros(self.N * self.n), obs])

    def state(self, x: np.ndarray) -> np.ndarray:
        """The magnetisation trajectory ``m = m0 + m_hat``."""
        m_hat, _ = self.split(x)
        return self.m0[None, :] + m_hat

    # -- inner products -------------------------------------------------------------------
    def inner_domain(self, x1: np.ndarray, x2: np.ndarray) -> float:
        if self.fast is not None:
            v1 = self._domain_nodes(x1)
            v2 = v1 if x2 is x1 else self._domain_nodes(x2)
            a1, a2 = x1[-2:], x2[-2:]
            return self.fast.heat.inner_U(v1, v2) + self.param_weight * float(a1 @ a2)
        u1, a1 = self.split(x1)
        u2, a2 = (u1, a1) if x2 is x1 else self.split(x2)
        return self.heat.inner_U(u1, u2) + self.param_weight * float(a1 @ a2)

    def _domain_nodes(self, x: np.ndarray) -> np.ndarray:
        """``m_hat`` of a domain vector as a ``(3, nn, n_t)`` node array (fast path)."""
        nn = self.fast.nn
        out = np.empty((3, nn, self.N + 1))
        out[:, :, 0] = 0.0
        out[:, :, 1:] = x[: self.N * self.n].reshape(self.N, nn, 3).transpose(2, 1, 0)
        return out

    def gram_W(self, r0: np.ndarray) -> np.ndarray:
        """``w G_W r0`` (``w`` = model_weight): elliptic (21) at every midpoint (A.1), then
        ``I2`` in time (A.2)."""
        if self.fast is not None:
            return from_nodes(self._gram_nodes(r0))
        y_tilde = self.heat.solve_elliptic(r0, dual=True)
        return self.model_weight * (self.I2 @ y_tilde)

    def _gram_nodes(self, r0: np.ndarray) -> np.ndarray:
        """:meth:`gram_W` of a ``(N, n)`` array as ``(3, nn, N)`` node arrays (fast path); the
        Gram vector of the last range norm is reused (the adjoint follows ``||F(x) - y||``)."""
        cached = self._last_gram
        if cached is not None and np.array_equal(cached[0], r0):
            g = cached[1]
        else:
            g = self.fast.heat.gram(to_nodes(r0, self.fast.nn))
        return g if self.model_weight == 1.0 else self.model_weight * g

    def inner_range(self, y1: np.ndarray, y2: np.ndarray) -> float:
        r1, o1 = self.split_range(y1)
        r2, o2 = self.split_range(y2)
        if self.fast is not None:
            v2 = to_nodes(r2, self.fast.nn)
            g2 = self.fast.heat.gram(v2)
            if y2 is y1:
                self._last_gram = (np.array(r2, copy=True), g2)
            v1 = v2 if y2 is y1 else to_nodes(r1, self.fast.nn)
            value = self.model_weight * float(np.vdot(v1, g2))
        else:
            value = self.heat.dot(r1, self.gram_W(r2))
        if self.n_obs:
            shape = self.obs.signals_shape
            value += self.obs.inner_range(o1.reshape(shape), o2.reshape(shape))
        return value

    # -- the operator -----------------------------------------------------------------------
    def _parameters(self, a: np.ndarray) -> np.ndarray:
        """The model's parameters: ``a``, or the fixed ones when they are not estimated."""
        return np.asarray(a, dtype=float) if self.estimate_parameters else self.a_fixed

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.counters["F"] += 1
        if self.fast is not None:
            state = self._fast_state_of(x)
            self._last = (np.array(x, copy=True), state)  # F'(x) usually follows F(x)
            parts = [from_nodes(self.fast.residual_nodes(state)).ravel()]
            if self.n_obs:
                parts.append(self.obs.apply(self.state(x)).ravel())
            return np.concatenate(parts) if len(parts) > 1 else parts[0]
        m_hat, a = self.split(x)
        m = self.m0[None, :] + m_hat
        parts = [self.solver.space_time_residual(m, self._parameters(a)).ravel()]
        if self.n_obs:
            parts.append(self.obs.apply(m).ravel())
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def derivative(self, x: np.ndarray) -> AllAtOnceDerivative:
        return AllAtOnceDerivative(self, x)


class AllAtOnceDerivative:
    """``F'(x)`` and its adjoint (Algorithm 3.1, S.2) at a fixed point ``x``."""

    def __init__(self, op: AllAtOnceOperator, x: np.ndarray):
        self.op = op
        self.a = op._parameters(np.asarray(x[-2:], dtype=float))
        self._m = None if op.fast is not None else op.state(x)
        self._x = x
        self.state = None if op.fast is None else op.fast_state(x)

    @property
    def m(self) -> np.ndarray:
        """The trajectory ``m0 + m_hat`` at ``x`` (built on demand on the fast path)."""
        if self._m is None:
            self._m = self.op.state(self._x)
        return self._m

    def __call__(self, dx: np.ndarray) -> np.ndarray:
        return self.apply(dx)

    def apply(self, dx: np.ndarray) -> np.ndarray:
        """``F'(x)(u, beta)``: ``J0_n u_n + J1_n u_{n+1} + sum_i beta_i dR_n/da_i`` and ``K u``."""
        op, s = self.op, self.op.solver
        u, beta = op.split(dx)
        if not op.estimate_parameters:
            beta = np.zeros(2)
        if self.state is not None:
            out = from_nodes(op.fast.apply_nodes(self.state, to_nodes(u, op.fast.nn), beta))
            op.counters["apply"] += 1
            parts = [out.ravel()]
            if op.n_obs:
                parts.append(op.obs.apply(u).ravel())
            return np.concatenate(parts)
        out = np.empty((op.N, op.n))
        x_vec, y_vec = None, None
        for k in range(op.N):
            J0, J1 = s.step_jacobians(k, self.m[k], self.m[k + 1], self.a)
            if x_vec is None:
                x_vec, y_vec = J0.createVecs()
            out[k] = _mult(J0, u[k], x_vec, y_vec) + _mult(J1, u[k + 1], x_vec, y_vec)
            d1, d2 = s.step_parameter_derivatives(k, self.m[k], self.m[k + 1], self.a)
            out[k] += beta[0] * d1 + beta[1] * d2
        op.counters["apply"] += 1
        parts = [out.ravel()]
        if op.n_obs:
            parts.append(op.obs.apply(u).ravel())
        return np.concatenate(parts)

    def adjoint(self, r: np.ndarray) -> np.ndarray:
        """``F'(x)* r`` in the U x R^2 and W x Y inner products (steps A-D)."""
        op, s = self.op, self.op.solver
        r0, r_obs = op.split_range(r)
        if self.state is not None:
            return self._adjoint_fast(r0, r_obs)
        y = op.gram_W(r0)  # A.1, A.2
        load = np.zeros((op.N + 1, op.n))
        beta = np.zeros(2)
        for k in range(op.N):  # A.3 (and C, D): transposed linearisation per step
            l0, l1 = s.transposed_linearisation(k, self.m[k], self.m[k + 1], y[k], self.a)
            load[k] += l0
            load[k + 1] += l1
            if op.estimate_parameters:
                d1, d2 = s.step_parameter_derivatives(k, self.m[k], self.m[k + 1], self.a)
                beta += [float(d1 @ y[k]), float(d2 @ y[k])]
        if op.n_obs:  # B.1: observation sources
            shape = op.obs.signals_shape
            load += op.obs.transpose(r_obs.reshape(shape))  # (K u, r)_Y = transpose(r) . u
        beta = op.comm.allreduce(beta, op=MPI.SUM) / op.param_weight
        u = op.heat.riesz_U(load)  # A.4-A.5 (B.2-B.3)
        op.counters["adjoint"] += 1
        return op.join(u, beta)


    def _adjoint_fast(self, r0: np.ndarray, r_obs: np.ndarray) -> np.ndarray:
        """Steps A-D with the batched kernels (same algebra as :meth:`adjoint`)."""
        op, nn = self.op, self.op.fast.nn
        y = op._gram_nodes(r0)  # A.1, A.2
        load, beta = op.fast.transpose_nodes(self.state, y, op.estimate_parameters)  # A.3, C, D
        if op.n_obs:  # B.1
            load += to_nodes(op.obs.transpose(r_obs.reshape(op.obs.signals_shape)), nn)
        beta = beta / op.param_weight if op.estimate_parameters else np.zeros(2)
        u = op.fast.heat.riesz_levels(load)  # A.4-A.5 (B.2-B.3), levels 1..N
        op.counters["adjoint"] += 1
        out = np.empty(op.domain_size)
        out[: op.N * op.n].reshape(op.N, nn, 3)[...] = u.transpose(2, 1, 0)
        out[-2:] = beta
        return out


def _mult(A, values, x, y) -> np.ndarray:
    x.array[:] = values
    A.mult(x, y)
    return y.array.copy()
