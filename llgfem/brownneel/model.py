r"""Full-order Brown–Néel model: operators of one particle, stability guard, simulation, outputs.

    dy/ds = F(s) y,  s = t/τ_N,  F(s) = Σ_k c_k(s) A_k  (+ κ I, dynamic formulation only)

The optional constant shift κ = −λ_leak (λ_leak: eigenvalue of F(ξ = 0) nearest 0, the
truncation's mass-leak mode) multiplies the solution by e^{κs}; the outputs of the dynamic
formulation are mass-normalised ratios and therefore unchanged, but the state stays O(1), which
keeps tolerances and POD snapshots well scaled.

Stability guard: before a run the maximum real part of the spectrum of F(ξ) for
ξ ∈ [−ξ_max, ξ_max] is computed (dense eigenvalues, or for the dynamic formulation the exact
bound max eig of the symmetric part); truncations with max Re λ·τ_N > ``tol`` are refused.

Outputs (physical units): ⟨m_z⟩(t) and d⟨m_z⟩/dt [1/s], computed from the coefficients and
F(t)y (no finite differences); mass ∫p (plain/static) or g₁(ξ)ᵀq (dynamic).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from llgfem.brownneel.basis import ProductBasis
from llgfem.brownneel.integrate import (
    IntegrationResult,
    TSSettings,
    integrate_petsc,
    integrate_scipy,
)
from llgfem.brownneel.observables import BoltzmannWeights3D, DynamicWeights, weight_vector
from llgfem.brownneel.operators import AffineOperator, assemble_operator
from llgfem.brownneel.params import ParticleParameters, SinusoidalDrive
from llgfem.solvers.linear import SolverError

__all__ = ["BrownNeelModel", "Trajectory", "UnstableTruncationError", "time_grid"]

DENSE_LIMIT = 2500


class UnstableTruncationError(SolverError):
    """The truncated operator has spurious eigenvalues with positive real part."""


@dataclass
class Trajectory:
    """A simulated run: states and outputs at the output times.

    Attributes:
        t: output times [s].
        y: states (real coordinates), shape (n, n_t).
        mz: ⟨m_z⟩(t).
        dmz: d⟨m_z⟩/dt [1/s].
        mass: ∫p (or the dynamic formulation's g₁ᵀq, scaled by e^{κs}).
        seconds: wall time of the integration.
        steps: number of time steps.
        m, dm: the full vectors ⟨m⟩(t) and d⟨m⟩/dt [1/s], shape (n_t, 3) (m_x = m_y = 0 in
            the z-sector).
    """

    t: np.ndarray
    y: np.ndarray
    mz: np.ndarray
    dmz: np.ndarray
    mass: np.ndarray
    seconds: float
    steps: int
    info: dict = field(default_factory=dict)
    m: np.ndarray | None = None
    dm: np.ndarray | None = None

    def window(self, start: int) -> Trajectory:
        """The part from output index ``start`` on."""
        cut = (lambda a: None if a is None else a[start:])  # noqa: E731
        return Trajectory(
            self.t[start:], self.y[:, start:], self.mz[start:], self.dmz[start:],
            self.mass[start:], self.seconds, self.steps, self.info, cut(self.m), cut(self.dm),
        )


def time_grid(drive: SinusoidalDrive, warmup_periods: float, periods: float,
              samples_per_period: int) -> tuple[np.ndarray, int]:
    """Uniform output grid over warm-up + recorded periods; returns (t, first recorded index)."""
    n = int(round((warmup_periods + periods) * samples_per_period))
    t = np.linspace(0.0, (warmup_periods + periods) * drive.period, n + 1)
    return t, int(round(warmup_periods * samples_per_period))


class BrownNeelModel:
    """The FOM of one particle: operators assembled once, simulations for any drive.

    Args:
        params: particle parameters.
        n_m, n_n: truncation degrees (N_m, N_n).
        formulation: ``plain``, ``static`` or ``dynamic`` (see ``operators``).
        precession: include precession.
        kind: ``sector`` (field along z) or ``full``.
        shift: ``"auto"`` (dynamic z-sector only: κ = mean of −λ_leak(ξ) for B = 0, b_ref/2,
            b_ref; 0 in the full basis),
            a number, or 0.
        b_ref: field amplitude [T] used for the automatic shift.
    """

    def __init__(self, params: ParticleParameters, n_m: int, n_n: int,
                 formulation: str = "dynamic", precession: bool = True, kind: str = "sector",
                 shift: float | str = "auto", b_ref: float = 15e-3):
        self.params = params
        self.basis = ProductBasis(n_m, n_n, kind)
        self.op: AffineOperator = assemble_operator(params, self.basis, formulation, precession)
        self.formulation = formulation
        self.full = self.basis.kind == "full"
        self.weights = None
        if formulation == "dynamic":
            self.weights = (BoltzmannWeights3D(params, self.basis) if self.full
                            else DynamicWeights(params, self.basis))
        else:
            sf = 0.5 if formulation == "static" else 0.0
            self.g_z = weight_vector(params, self.basis, "z", sigma_factor=sf)
            self.g_1 = weight_vector(params, self.basis, "1", sigma_factor=sf)
            self.g_xy = ([weight_vector(params, self.basis, a, sigma_factor=sf) for a in "xy"]
                         if self.full else None)
        if shift == "auto":
            xis = self.params.xi_per_tesla * b_ref * np.array([0.0, 0.5, 1.0])
            # full basis: no shift — sectors the initial state does not excite (odd L,
            # μ + M ≠ 0) may decay more slowly than the leak mode and would grow under it
            shift = (np.mean([self.leak_rate(x) for x in xis])
                     if formulation == "dynamic" and not self.full else 0)
        self.shift = float(shift)

    @property
    def size(self) -> int:
        return self.basis.size

    @staticmethod
    def basis_of(truncation: tuple[int, int]) -> ProductBasis:
        """The z-sector basis of a truncation (N_m, N_n)."""
        return ProductBasis(truncation[0], truncation[1], "sector")

    # -- operators ------------------------------------------------------------------------
    def matrices(self) -> list[sp.csr_matrix]:
        """The A_k with the shift folded into A_0 (real CSR, one pattern)."""
        mats = list(self.op.matrices)
        if self.shift:  # in place on the diagonal entries: keeps the shared pattern
            a0 = mats[0].copy()
            rows = np.repeat(np.arange(self.size), np.diff(a0.indptr))
            a0.data[rows == a0.indices] += self.shift
            mats[0] = a0
        return mats

    def petsc_matrices(self, comm=None) -> list:
        """The A_k (with shift) as PETSc AIJ matrices on ``comm`` (default COMM_SELF)."""
        from petsc4py import PETSc

        comm = comm or PETSc.COMM_SELF
        out = []
        for a in self.matrices():
            mat = PETSc.Mat().createAIJ(size=a.shape, csr=(a.indptr, a.indices, a.data),
                                        comm=comm)
            mat.assemble()
            out.append(mat)
        return out

    def coefficient_function(self, drive):
        """c_k(s) for a field object (``field(t)``, ``field_rate(t)``), s = t/τ_N."""
        tau, xi_t = self.params.tau_n, self.params.xi_per_tesla

        def coefficients(s: float) -> np.ndarray:
            t = s * tau
            return self.op.coefficients(xi_t * drive.field(t), xi_t * tau * drive.field_rate(t))

        return coefficients

    def xi_z(self, drive, t: np.ndarray) -> np.ndarray:
        """ξ_z(t) = μ B_z(t)/(k_B T) of a field object at the times t [s]."""
        return self.params.xi_per_tesla * np.array([drive.field(ti)[2] for ti in t])

    def leak_rate(self, xi: float = 0.0) -> float:
        """−(eigenvalue of F(ξ) nearest zero): the truncation's mass-leak rate (1/τ_N)."""
        a0 = self.op.matrix(np.array([0.0, 0.0, xi])).tocsc()
        n = a0.shape[0]
        if n <= 400:
            lam = sla.eigvals(a0.toarray())
        else:
            lam = spla.eigs(a0, k=3, sigma=0.0, which="LM", return_eigenvectors=False)
        return float(-np.real(lam[np.argmin(np.abs(lam))]))

    # -- stability guard ------------------------------------------------------------------
    def max_real_eigenvalue(self, xi_max: float, n_xi: int = 5) -> float:
        """max Re λ(F(ξ))·τ_N over ξ ∈ [−ξ_max, ξ_max] (field along z), shift excluded."""
        worst = -np.inf
        for xi in np.linspace(-xi_max, xi_max, n_xi):
            f = self.op.matrix(np.array([0.0, 0.0, xi]))
            if self.formulation == "dynamic":  # exact bound: numerical range of F
                sym = 0.5 * (f + f.T)
                if self.size <= 2 * DENSE_LIMIT:
                    lam = sla.eigvalsh(sym.toarray())[-1]
                else:
                    lam = spla.eigsh(sym, k=1, which="LA", return_eigenvectors=False)[0]
            elif self.size <= DENSE_LIMIT:
                lam = np.max(np.real(sla.eigvals(f.toarray())))
            else:
                lam = np.max(np.real(spla.eigs(f, k=6, which="LR", return_eigenvectors=False)))
            worst = max(worst, float(lam))
        return worst

    def check_stability(self, b_max: float, tol: float = 1e-8, n_xi: int = 5) -> float:
        """Refuse a truncation whose operator has spurious growing modes (see the module docstring).

        Returns:
            The maximum real part found (units 1/τ_N).

        Raises:
            UnstableTruncationError: if it exceeds ``tol``.
        """
        worst = self.max_real_eigenvalue(self.params.xi_per_tesla * b_max, n_xi)
        if worst > tol:
            raise UnstableTruncationError(
                f"truncation (N_m, N_n) = ({self.basis.n_m}, {self.basis.n_n}) of the "
                f"{self.formulation} formulation has eigenvalues with Re λ·τ_N = {worst:.3g} > "
                f"{tol:g} for |B| <= {b_max:g} T (spurious growing modes); "
                "increase N_n or use formulation='dynamic'"
            )
        return worst

    # -- simulation -----------------------------------------------------------------------
    def initial_state(self, drive=None) -> np.ndarray:
        """Boltzmann state at the initial field (zero-field equilibrium for a sine drive)."""
        sf = {"plain": 1.0, "static": 0.5, "dynamic": 0.5}[self.formulation]
        xf = 0.5 if self.formulation == "dynamic" else 1.0
        b0 = np.zeros(3) if drive is None else np.asarray(drive.field(0.0), float)
        if self.full:
            xi0 = self.params.xi_per_tesla * b0
            weights = (self.weights if self.formulation == "dynamic"
                       else BoltzmannWeights3D(self.params, self.basis, sf, xf))
            q = weights.vectors(xi0)[0]
            return q / self.mass(q[:, None], xi0[None, :])[0]
        xi0 = self.params.xi_per_tesla * float(b0[2])
        q = weight_vector(self.params, self.basis, "1", xi=2 * xf * xi0, sigma_factor=sf)
        return q / self.mass(q[:, None], np.array([xi0]))[0]

    def mass(self, y: np.ndarray, xi: np.ndarray) -> np.ndarray:
        """∫p of states y (n, n_t) at fields ξ ((n_t,) in the sector, (n_t, 3) full)."""
        if self.formulation == "dynamic":
            return self.weights.moments(xi, y)[0]
        return self.g_1 @ y

    def observe(self, t: np.ndarray, y: np.ndarray, drive) -> tuple[np.ndarray, ...]:
        """(⟨m_z⟩, d⟨m_z⟩/dt [1/s], mass) at times t [s] for states y (n, n_t)."""
        if self.full:
            m, dm, mass = self.observe_vector(t, y, drive)
            return m[:, 2], dm[:, 2], mass
        coef = self.coefficient_function(drive)
        s = t / self.params.tau_n
        c = np.array([coef(si) for si in s])
        mats = self.matrices()
        ydot = sum(ck[None, :] * (a @ y) for ck, a in zip(c.T, mats, strict=True))
        if self.formulation == "dynamic":
            xi_t = self.params.xi_per_tesla
            xi = self.xi_z(drive, t)
            dxi = np.array([xi_t * self.params.tau_n * drive.field_rate(ti)[2] for ti in t])
            a1, az, da1, daz = self.weights.moments(xi, y, ydot, dxi)
            mz = az / a1
            dmz = (daz * a1 - az * da1) / a1**2
            return mz, dmz / self.params.tau_n, a1
        return self.g_z @ y, (self.g_z @ ydot) / self.params.tau_n, self.g_1 @ y

    def observe_vector(self, t: np.ndarray, y: np.ndarray, drive) -> tuple[np.ndarray, ...]:
        """(⟨m⟩ (n_t, 3), d⟨m⟩/dt [1/s] (n_t, 3), mass) for any field direction.

        In the z-sector m_x = m_y = 0 by symmetry; in the full basis the dynamic formulation's
        weights depend on the field vector ξ(t) (:class:`BoltzmannWeights3D`).
        """
        t = np.asarray(t, float)
        if not self.full:
            mz, dmz, mass = self.observe(t, y, drive)
            zeros = np.zeros_like(mz)
            return (np.column_stack([zeros, zeros, mz]), np.column_stack([zeros, zeros, dmz]),
                    mass)
        coef = self.coefficient_function(drive)
        c = np.array([coef(si) for si in t / self.params.tau_n])
        mats = self.matrices()
        ydot = sum(ck[None, :] * (a @ y) for ck, a in zip(c.T, mats, strict=True))
        tau = self.params.tau_n
        if self.formulation == "dynamic":
            xi_t = self.params.xi_per_tesla
            xi = np.array([xi_t * drive.field(ti) for ti in t])
            dxi = np.array([xi_t * tau * drive.field_rate(ti) for ti in t])
            a1, a, da1, da = self.weights.moments(xi, y, ydot, dxi)
            m = a / a1[:, None]
            dm = (da * a1[:, None] - a * da1[:, None]) / a1[:, None] ** 2
            return m, dm / tau, a1
        g = np.stack(self.g_xy + [self.g_z])
        return (g @ y).T, (g @ ydot).T / tau, self.g_1 @ y

    def simulate(self, drive, t: np.ndarray, settings: TSSettings = TSSettings(),
                 backend: str = "petsc", y0: np.ndarray | None = None) -> Trajectory:
        """Integrate from t[0] = 0 and return states and outputs at the times t [s].

        Args:
            drive: field object (e.g. :class:`SinusoidalDrive`).
            t: output times, t[0] is the start time.
            settings: integrator settings.
            backend: ``petsc`` (TS) or ``scipy`` (cross-check).
            y0: initial state (default: Boltzmann state at the initial field).
        """
        y0 = self.initial_state(drive) if y0 is None else y0
        s = np.asarray(t) / self.params.tau_n
        coef = self.coefficient_function(drive)
        if backend == "petsc":
            res: IntegrationResult = integrate_petsc(self.petsc_matrices(), coef, y0, s, settings)
        elif backend == "scipy":
            res = integrate_scipy(self.matrices(), coef, y0, s, settings)
        else:
            raise ValueError(f"backend must be 'petsc' or 'scipy', got {backend!r}")
        m, dm, mass = self.observe_vector(np.asarray(t), res.y, drive)
        return Trajectory(np.asarray(t), res.y, m[:, 2], dm[:, 2], mass, res.seconds, res.steps,
                          res.info, m, dm)
