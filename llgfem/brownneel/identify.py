r"""A POD-Galerkin ROM of the Brown–Néel model parametric in (d_c, K) (affine in σ).

In units of τ_N the dynamic-formulation operators depend on the particle only through σ and
τ_N/τ_B (constant for d_h = d_c, since τ_N/τ_B = M_S(1+α²)/(6αγη) is size independent):

    A_0(σ) = P_00 + σ P_01 + σ² P_02,   A_z(σ) = P_10 + σ P_11,   A_zz, A_ξ̇ constant,

so every term is projected once (Uᵀ P_kj U, with P_kj recovered exactly from three assemblies
at different σ); a candidate (d_c, K) costs only the reduced integration and the
σ-dependent output weights; the signal is s(t) = d⟨m_z⟩/dt over the recorded period.  Used
by the Lissajous ROM (:mod:`llgfem.brownneel.lissajous_rom`); the calibration of (d_c, K[, d_h])
from data is :mod:`llgfem.brownneel.calibrate_data` (its ROM: :mod:`.calibrate_rom`).
"""

from __future__ import annotations

import numpy as np

from llgfem.brownneel.integrate import TSSettings
from llgfem.brownneel.model import BrownNeelModel
from llgfem.brownneel.observables import DynamicWeights
from llgfem.brownneel.operators import assemble_operator
from llgfem.brownneel.params import ParticleParameters, SinusoidalDrive
from llgfem.rom import ReducedModel

__all__ = ["ParametricROM"]


def _particle(d_nm: float, k_kj: float) -> ParticleParameters:
    return ParticleParameters(d_c=d_nm * 1e-9, K=k_kj * 1e3)


class ParametricROM:
    """Reduced operators affine in (1, σ, σ²), built once for a basis U.

    Args:
        basis: orthonormal U (n × r) in the coefficient space of ``truncation``.
        truncation: (N_m, N_n).
        shift: constant κ added to A_0 (leak compensation); ``None`` = per candidate, the mean
            of −λ_leak of the reduced F(ξ) for ξ = 0, ξ_ref/2, ξ_ref (as the FOM's ``auto``).
    """

    def __init__(self, basis: np.ndarray, truncation: tuple[int, int],
                 shift: float | None = None, b_ref: float = 15e-3):
        self.u = basis
        self.truncation = truncation
        self.shift = shift
        self.b_ref = b_ref
        sigmas = np.array([0.0, 5.0, 10.0])
        reduced = []
        for s in sigmas:  # particles with the same d_c and the requested σ
            p0 = _particle(20.0, 1.0)
            p = ParticleParameters(d_c=p0.d_c, K=s * p0.kT / p0.v_core)
            op = assemble_operator(p, BrownNeelModel.basis_of(truncation), "dynamic")
            reduced.append([basis.T @ (a @ basis) for a in op.matrices])
        vander = np.vander(sigmas, 3, increasing=True)
        inv = np.linalg.inv(vander)
        # coefficient j of term k: Σ_i inv[j, i] reduced[i][k]
        self.terms = [[sum(inv[j, i] * reduced[i][k] for i in range(3)) for j in range(3)]
                      for k in range(len(reduced[0]))]
        self.term_names = op.terms

    def reduced_model(self, sigma: float, xi_ref: float = 0.0) -> ReducedModel:
        """Reduced operators of a particle with barrier σ (ξ_ref: field for the auto shift)."""
        mats = [c0 + sigma * c1 + sigma**2 * c2 for c0, c1, c2 in self.terms]
        shift = self.shift
        if shift is None:
            leaks = []
            for xi in (0.0, 0.5 * xi_ref, xi_ref):
                lam = np.linalg.eigvals(mats[0] + xi * mats[1] + xi * xi * mats[2])
                leaks.append(-np.real(lam[np.argmin(np.abs(lam))]))
            shift = float(np.mean(leaks))
        mats[0] = mats[0] + shift * np.eye(self.u.shape[1])
        return ReducedModel(mats, self.u)

    def signal(self, params: ParticleParameters, drive: SinusoidalDrive, t: np.ndarray,
               start: int, settings: TSSettings, weights: DynamicWeights | None = None,
               y0: np.ndarray | None = None) -> np.ndarray:
        """d⟨m_z⟩/dt [1/s] over t[start:] from the reduced model of this particle."""
        rom = self.reduced_model(params.sigma, params.xi_per_tesla * self.b_ref)
        model = _ObservationHelper(params, self.truncation, weights)
        coef = model.coefficients(drive)
        y0 = model.initial_state() if y0 is None else y0
        res = rom.solve(coef, rom.project_state(y0), t / params.tau_n, settings)
        cs = np.array([coef(si) for si in t / params.tau_n])
        adot = sum(c[None, :] * (a @ res.y) for c, a in zip(cs.T, rom.matrices, strict=True))
        return model.signal(t, rom.reconstruct(res.y), rom.reconstruct(adot), drive)[start:]


class _ObservationHelper:
    """Output weights and field coefficients of one particle (no FOM assembly)."""

    def __init__(self, params, truncation, weights=None):
        self.params = params
        self.basis = BrownNeelModel.basis_of(truncation)
        self.weights = weights or DynamicWeights(params, self.basis)

    def coefficients(self, drive):
        tau, xt = self.params.tau_n, self.params.xi_per_tesla

        def coef(s):
            t = s * tau
            xi, dxi = xt * drive.field(t)[2], xt * tau * drive.field_rate(t)[2]
            return np.array([1.0, xi, xi * xi, dxi])

        return coef

    def initial_state(self):
        from llgfem.brownneel.observables import weight_vector

        q = weight_vector(self.params, self.basis, "1", sigma_factor=0.5)
        return q / self.weights.moments(np.zeros(1), q[:, None])[0][0]

    def signal(self, t, y, ydot, drive):
        xt, tau = self.params.xi_per_tesla, self.params.tau_n
        xi = np.array([xt * drive.field(ti)[2] for ti in t])
        dxi = np.array([xt * tau * drive.field_rate(ti)[2] for ti in t])
        a1, az, da1, daz = self.weights.moments(xi, y, ydot, dxi)
        return (daz * a1 - az * da1) / a1**2 / tau
