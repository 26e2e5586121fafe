"""The reduced forward operator F(a) = K d_t S(a) of paper 002 (SPEC §2), with F'(a) and F'(a)*.

Continuous setting (paper §2.3): ``S: a = (a1, a2) -> m`` solves the LLG equation and
``F(a) = K m_t`` are the receive-coil signals (9), (5).  The derivative ``F'(a) beta = K u_t``
with the linearised LLG equation for ``u`` (§2.3.2, ``u(0) = 0``, source
``-beta1 m_t + beta2 m x m_t``), and the adjoint (25)::

    F'(a)* z = ( -int int m_t . q dx dt ,  int int (m x m_t) . q dx dt )            (25)

with ``q`` the solution of the backward adjoint LLG equation (26)-(28) driven by the adjoint
observation sources ``K~ z`` (29) and ``K~_T z`` (30).

Discrete setting (what is implemented; *discretise-then-optimise*): the implicit-midpoint
steps of :class:`llgfem.solvers.llg.LLGSolver`, ``R_n(m_n, m_{n+1}; a) = 0``, n = 0..N-1, and
the observation ``O`` of :mod:`llgfem.operators.observation` (``O`` annihilates the constant
``m_0``).  Differentiating the steps gives the linearised stepping (forward in time)::

    J0_n u_n + J1_n u_{n+1} + B_n beta = 0,   u_0 = 0,   F'(a) beta = O u,

``J0_n = dR_n/dm_n``, ``J1_n = dR_n/dm_{n+1}``, ``B_n = (dR_n/da1, dR_n/da2)``.  Its exact
transpose (backward in time; the discrete counterpart of (26)-(28), with ``l = O^T r`` the
discrete ``K~ r``, ``K~_T r`` of (29)-(30))::

    J1_n^T lam_n = l_{n+1} - J0_{n+1}^T lam_{n+1},  n = N-1..0  (J0_N^T lam_N := 0),
    F'(a)* r = -W^{-1} (sum_n B_n^T lam_n)                                      (discrete (25))

follows from ``<O u, r>_Y = sum_i l_i . u_i = -sum_n lam_n . B_n beta``.  ``lam_n`` is a
discrete ``q`` at the midpoint ``t_{n+1/2}`` (see ``tests/verification/test_reduced_adjoint.py``
for the convergence to (26)-(30)).  Every step solve is a PETSc KSP (LU) on the assembled
Jacobian, ``solveTranspose`` for the adjoint.

Inner products: domain ``R^2`` with ``(x1, x2)_X = sum_i w_i x1_i x2_i`` (default ``w = 1``,
Euclidean, as in the paper's update (37)-(38)); range ``(y1, y2)_Y = dt sum y1 y2``
(:meth:`Observation.inner_range`, also for windowed sub-problems).

Sub-problems for Landweber-Kaczmarz share the state cache: :meth:`ReducedOperator.time_segments`
(Algorithm 3.3: data restricted to time windows) and :meth:`ReducedOperator.select`
(Algorithm 3.4: one concentration/coil pair (k, l) through :meth:`Observation.select`).

Warm start (paper §3.2): every forward solve starts Newton from the trajectory of the last
solve (initially ``m_guess``).

Sensitivities with the state (``tangents=True``, for Gauss-Newton/Levenberg-Marquardt): each
forward solve is :meth:`LLGSolver.forward_linearised`, which returns ``S(a)`` and
``S'(a) e_i`` for every parameter from one sweep (one Jacobian assembly per step serves the
chord iteration of the next step and the linearised step); ``F'(a) beta = O sum_i beta_i
S'(a) e_i`` then costs no further sweep, and the next warm start is ``S(a) + S'(a) dx``.

Solve counters (forward, linearised, adjoint, Newton) are in
:attr:`ReducedOperator.counters`, shared by all sub-problems.

Identifiable anisotropy: with a problem built with ``parameters=("a1", "a2", "k")`` the domain
is ``R^3``, ``x = (a1, a2, k)``, ``B_n`` gains the column ``dR_n/dk`` and the Jacobian has three
columns; nothing else changes.

Notation: ``x = a = (a1, a2)`` or ``(a1, a2, k)`` (replicated on all ranks); ``y`` the flattened
data ``(K, L, n_samples)``; ``m, u`` trajectories ``(n_t, n_owned)``; ``lam`` adjoint states
``(N, n_owned)``; ``W = diag(w)``.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from mpi4py import MPI

from llgfem.operators.observation import Observation
from llgfem.solvers.linear import SolverError

if TYPE_CHECKING:
    from llgfem.problem import LLGProblem

__all__ = ["ReducedDerivative", "ReducedOperator", "StateCache"]


class StateCache:
    """Parameter-to-state map ``S(a)`` with warm starts, a small cache and solve counters.

    Args:
        problem: the LLG problem (scheme, ``m0``).
        m_guess: optional trajectory ``(n_t, n_owned)``: Newton guesses of the first solve.
        size: number of cached states.
        newton_atol: after the first solve, the SNES absolute tolerance is set to
            ``newton_atol`` times the per-step residual scale (:meth:`LLGSolver.residual_scale`
            over ``sqrt(N)``): with a purely relative tolerance a warm start saves nothing,
            since Newton must then reduce an already small residual by the same factor.
            ``None`` keeps the solver's tolerances.
        tangents: every forward solve also computes the sensitivities ``S'(a) e_i`` of all
            parameters, in the same sweep (:meth:`LLGSolver.forward_linearised`: one Jacobian
            assembly per step serves the chord iteration of the next step and the linearised
            step); :meth:`tangents` returns them.  For Gauss-Newton/Levenberg-Marquardt, which
            needs the Jacobian at every accepted iterate (Gilbert form only).  The warm start
            of the next solve is then the first-order prediction
            ``S(x_last) + S'(x_last)(x - x_last)`` (Newton starts closer: fewer iterations
            once the absolute tolerance is set; same converged trajectory).
    """

    def __init__(self, problem: LLGProblem, m_guess: np.ndarray | None = None,
                 size: int = 4, newton_atol: float | None = 1e-12, tangents: bool = False):
        self.problem, self.solver = problem, problem.solver
        if tangents and (getattr(self.solver, "form", None) != "gilbert"
                         or not hasattr(self.solver, "forward_linearised")):
            raise ValueError("StateCache: tangents=True needs the implicit-midpoint scheme "
                             "on the Gilbert form")
        self.newton_atol, self._atol_set = newton_atol, False
        self.last = None if m_guess is None else np.asarray(m_guess, dtype=float)
        self._last_x: np.ndarray | None = None
        self.size, self.with_tangents = size, bool(tangents)
        self._states: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._tangents: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self.counters = {"forward": 0, "linearised": 0, "adjoint": 0, "newton": 0}

    def state(self, x: np.ndarray) -> np.ndarray:
        """The trajectory ``S(x)`` (solved with a warm start unless cached)."""
        x = _parameters(x, self.solver.comm, _n_parameters(self.solver))
        key = x.tobytes()
        if key in self._states:
            self._states.move_to_end(key)
            return self._states[key]
        try:
            if self.with_tangents:
                p = x.size
                m, u = self.solver.forward_linearised(x, self.problem.m0, np.eye(p),
                                                      warm_start=self._prediction(x))
                self._tangents[key] = u
                while len(self._tangents) > 2:  # (p, n_t, n) each: keep the last two
                    self._tangents.popitem(last=False)
                self.counters["linearised"] += p
            else:
                m = self.problem.forward(x, warm_start=self.last)
        finally:
            self.counters["newton"] += int(sum(self.solver.newton_iterations))
        self.counters["forward"] += 1
        if self.newton_atol is not None and not self._atol_set:
            scale = self.solver.residual_scale(m) / math.sqrt(m.shape[0] - 1)
            self.solver.set_newton_tolerances(atol=self.newton_atol * scale)
            self._atol_set = True
        self.last, self._last_x = m, x.copy()
        self._states[key] = m
        while len(self._states) > self.size:
            self._states.popitem(last=False)
        return m

    def _prediction(self, x: np.ndarray) -> np.ndarray | None:
        """``S(x_last) + S'(x_last)(x - x_last)`` if the tangents at ``x_last`` are cached,
        else the last trajectory (or None)."""
        u = None if self._last_x is None else self._tangents.get(self._last_x.tobytes())
        if u is None:
            return self.last
        return self.last + np.tensordot(x - self._last_x, u, axes=1)

    def tangents(self, x: np.ndarray) -> np.ndarray | None:
        """The sensitivities ``(S'(x) e_i)_i``, shape ``(p, n_t, n_owned)``, if the forward
        solve at ``x`` computed them (``tangents=True``) and they are still cached."""
        return self._tangents.get(np.asarray(x, dtype=float).tobytes())

    def reset(self, m_guess: np.ndarray | None = None) -> None:
        """Forget the cached states, zero the counters, set the next Newton guess."""
        self._states.clear()
        self._tangents.clear()
        self.last = None if m_guess is None else np.asarray(m_guess, dtype=float)
        self._last_x = None
        for key in self.counters:
            self.counters[key] = 0

    def destroy(self) -> None:
        """Free the solver's derivative objects (collective; call on every rank)."""
        self.problem.destroy()


def _n_parameters(solver) -> int:
    """The number of identifiable parameters of ``solver`` (2 unless it says otherwise)."""
    return int(getattr(solver, "n_parameters", 2))


def _parameters(x: np.ndarray, comm: MPI.Comm, size: int = 2) -> np.ndarray:
    """Validate a replicated parameter vector of ``size`` entries (identical verdict on every
    rank)."""
    x = np.asarray(x, dtype=float)
    code = 2 if x.shape != (size,) else int(not np.all(np.isfinite(x)))
    code = comm.allreduce(code, op=MPI.MAX)
    if code == 2:
        names = "(a1, a2)" if size == 2 else "(a1, a2, k)"
        raise ValueError(f"ReducedOperator: the parameters must be a vector {names}, got shape "
                         f"{x.shape}")
    if code == 1:
        raise ValueError(f"ReducedOperator: the parameters contain NaN/Inf: {x}")
    return x


class ReducedOperator:
    """``F(a) = O S(a)`` for the regularisation drivers (protocol of
    :mod:`llgfem.operators.protocols`).

    Args:
        problem: the :class:`~llgfem.problem.LLGProblem` (scheme, ``m0``, observation).
        observation: the observation operator ``O`` (default: the problem's).
        m_guess: optional Newton guess trajectory of the first forward solve.
        weights: domain weights ``w`` (default all ones: Euclidean; one per parameter).
        samples: optional indices of the time samples observed (a time window).
        failed_solve: ``"raise"`` (a :class:`SolverError` on every rank) or ``"nan"`` (return
            NaN data, so that an adaptive step size rejects the trial and bisects).
        cache: a shared :class:`StateCache` (used by sub-problems).
        tangents: compute the sensitivities with every forward solve (:class:`StateCache`);
            :meth:`ReducedDerivative.sensitivities` and ``apply`` then cost no further sweep.

    Raises:
        ValueError: invalid weights, samples or ``failed_solve``.
    """

    def __init__(self, problem: LLGProblem, observation: Observation | None = None, *,
                 m_guess: np.ndarray | None = None, weights: Sequence[float] | None = None,
                 samples: Sequence[int] | None = None, failed_solve: str = "raise",
                 cache: StateCache | None = None, tangents: bool = False):
        self.problem, self.solver = problem, problem.solver
        self.observation = observation if observation is not None else problem.observation
        if self.observation is None:
            raise ValueError("ReducedOperator: the problem has no observation")
        self.cache = cache or StateCache(problem, m_guess, tangents=tangents)
        p = _n_parameters(self.solver)
        self.weights = np.ones(p) if weights is None else np.asarray(weights, dtype=float)
        if self.weights.shape != (p,) or not np.all(self.weights > 0):
            raise ValueError(f"ReducedOperator: weights must be {p} positive numbers (one per "
                             f"parameter), got {weights}")
        N = self.observation.signals_shape[2]
        self.samples = np.arange(N) if samples is None else np.asarray(samples, dtype=int)
        if self.samples.size == 0 or np.any((self.samples < 0) | (self.samples >= N)):
            raise ValueError(f"ReducedOperator: samples must be non-empty indices in [0, {N})")
        if failed_solve not in ("raise", "nan"):
            raise ValueError(f"failed_solve must be 'raise' or 'nan', got {failed_solve!r}")
        self.failed_solve = failed_solve
        self.dt = problem.grid.dt

    # -- protocol ---------------------------------------------------------------------------
    @property
    def counters(self) -> dict[str, int]:
        """Forward, linearised and adjoint solves and Newton iterations so far (shared)."""
        return self.cache.counters

    @property
    def data_shape(self) -> tuple[int, int, int]:
        """``(K, L, n_samples)`` of this (sub-)problem's data."""
        K, L, _ = self.observation.signals_shape
        return (K, L, self.samples.size)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``F(x)``, flattened (NaN data if the solve failed and ``failed_solve == 'nan'``)."""
        try:
            m = self.state(x)
        except SolverError:
            if self.failed_solve == "raise":
                raise
            return np.full(int(np.prod(self.data_shape)), math.nan)
        return self.restrict(self.observation.apply(m))

    def state(self, x: np.ndarray) -> np.ndarray:
        """The trajectory ``S(x)``."""
        return self.cache.state(x)

    def derivative(self, x: np.ndarray) -> ReducedDerivative:
        """``F'(x)`` at the state ``S(x)``."""
        x = _parameters(x, self.solver.comm, _n_parameters(self.solver))
        return ReducedDerivative(self, x.copy(), self.state(x))

    def inner_domain(self, x1: np.ndarray, x2: np.ndarray) -> float:
        """``sum_i w_i x1_i x2_i`` (replicated: no communication)."""
        return float(np.sum(self.weights * np.asarray(x1) * np.asarray(x2)))

    def inner_range(self, y1: np.ndarray, y2: np.ndarray) -> float:
        """``dt sum y1 y2`` (the midpoint rule of :meth:`Observation.inner_range`)."""
        size = int(np.prod(self.data_shape))
        for name, y in (("y1", y1), ("y2", y2)):
            if np.size(y) != size:
                raise ValueError(f"ReducedOperator: {name} must have {size} entries "
                                 f"(K, L, n_samples) = {self.data_shape}, got {np.size(y)}")
        return self.dt * float(np.vdot(y1, y2))

    # -- data restriction and sub-problems --------------------------------------------------
    def restrict(self, y_full: np.ndarray) -> np.ndarray:
        """This sub-problem's part of data of the full shape ``(K, L, N)`` (flattened)."""
        K, L, N = self.observation.signals_shape
        return np.asarray(y_full, dtype=float).reshape(K, L, N)[:, :, self.samples].ravel()

    def extend(self, r: np.ndarray) -> np.ndarray:
        """Zero-pad flattened sub-problem data to the observation's ``(K, L, N)``."""
        out = np.zeros(self.observation.signals_shape)
        out[:, :, self.samples] = np.asarray(r, dtype=float).reshape(self.data_shape)
        return out

    def _sub(self, observation: Observation, samples) -> ReducedOperator:
        return ReducedOperator(self.problem, observation, weights=self.weights,
                               samples=samples, failed_solve=self.failed_solve, cache=self.cache)

    def time_segments(self, n: int) -> list[ReducedOperator]:
        """``n`` sub-problems on consecutive time windows of the samples (Algorithm 3.3)."""
        if not 1 <= n <= self.samples.size:
            raise ValueError(f"time_segments: n must lie in [1, {self.samples.size}], got {n}")
        return [self._sub(self.observation, s) for s in np.array_split(self.samples, n)]

    def select(self, k: int, l: int) -> ReducedOperator:  # noqa: E741 (the paper's index)
        """The sub-problem of concentration ``k`` and coil ``l`` (Algorithm 3.4)."""
        return self._sub(self.observation.select(k, l), self.samples)

    def select_data(self, y_full: np.ndarray, k: int, l: int) -> np.ndarray:  # noqa: E741
        """The data of :meth:`select` ``(k, l)`` from full ``(K, L, N)`` data (flattened)."""
        K, L, N = self.observation.signals_shape
        y = np.asarray(y_full, dtype=float).reshape(K, L, N)[k:k + 1, l:l + 1]
        return y[:, :, self.samples].ravel()

    def relative_residual(self, x: np.ndarray) -> float:
        """The relative LLG residual of the state ``S(x)`` (:meth:`LLGSolver.relative_residual`)."""
        return self.solver.relative_residual(self.state(x), a=x)


class ReducedDerivative:
    """``F'(a)`` at a fixed state: :meth:`apply` (linearised LLG), :meth:`adjoint` (adjoint LLG).

    Args:
        op: the reduced operator.
        x: the parameters ``a``.
        m: the state ``S(a)``.
    """

    def __init__(self, op: ReducedOperator, x: np.ndarray, m: np.ndarray):
        self.op, self.x, self.m = op, x, m
        self.solver = op.solver

    def __call__(self, beta: np.ndarray) -> np.ndarray:
        return self.apply(beta)

    def apply(self, beta: np.ndarray) -> np.ndarray:
        """``F'(a) beta`` (one linearised solve forward in time)."""
        beta = _parameters(beta, self.solver.comm, _n_parameters(self.solver))
        return self.sensitivities(beta[:, None])[:, 0]

    def sensitivities(self, betas: np.ndarray | None = None) -> np.ndarray:
        """``F'(a) beta_j`` for the columns of ``betas`` (default: the identity, i.e. the
        Jacobian ``(n_data, p)``), all from one sweep (one factorisation per step)."""
        p = _n_parameters(self.solver)
        betas = np.eye(p) if betas is None else np.asarray(betas, dtype=float)
        u = self.op.cache.tangents(self.x)
        if u is not None:  # computed with the state: S'(a) is linear in beta
            u = np.tensordot(betas.T, u, axes=1)
        else:
            u = self.op.problem.linearised(self.x, self.m, betas)
            self.op.counters["linearised"] += betas.shape[1]
        obs = self.op.observation
        cols = [self.op.restrict(obs.apply(u[j])) for j in range(betas.shape[1])]
        return np.stack(cols, axis=1)

    def adjoint(self, r: np.ndarray) -> np.ndarray:
        """``F'(a)* r`` in the inner products of the operator (one backward adjoint solve)."""
        r = np.asarray(r, dtype=float)
        if not np.all(np.isfinite(r)):
            raise ValueError("ReducedDerivative.adjoint: the residual contains NaN/Inf")
        loads = self.op.observation.transpose(self.op.extend(r))
        grad = self.op.problem.adjoint(self.x, self.m, loads)
        self.op.counters["adjoint"] += 1
        return grad / self.op.weights
