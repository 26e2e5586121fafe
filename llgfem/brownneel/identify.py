r"""Identification of (d_c, K) from a noisy signal with a parametric POD-Galerkin ROM.

In units of τ_N the dynamic-formulation operators depend on the particle only through σ and
τ_N/τ_B (constant for d_h = d_c, since τ_N/τ_B = M_S(1+α²)/(6αγη) is size independent):

    A_0(σ) = P_00 + σ P_01 + σ² P_02,   A_z(σ) = P_10 + σ P_11,   A_zz, A_ξ̇ constant,

so every term is projected once (Uᵀ P_kj U, with P_kj recovered exactly from three assemblies
at different σ); a candidate (d_c, K) costs only the reduced integration and the
σ-dependent output weights.  The signal is s(t) = d⟨m_z⟩/dt over the recorded period, the data
s_δ = s_true + δ·RMS(s_true)·N(0, 1), and the misfit J = ‖s(d_c, K) − s_δ‖/‖s_δ‖ is minimised
by a dictionary search on a grid followed by Nelder–Mead refinement.

A global POD basis is built from FOM runs at the corners and the centre of the search box.
"""

from __future__ import annotations

import time

import numpy as np
from scipy.optimize import minimize

from llgfem.brownneel.integrate import TSSettings
from llgfem.brownneel.model import BrownNeelModel
from llgfem.brownneel.observables import DynamicWeights
from llgfem.brownneel.operators import assemble_operator
from llgfem.brownneel.params import ParticleParameters, SinusoidalDrive
from llgfem.brownneel.studies import run_fom
from llgfem.rom import ReducedModel, pod

__all__ = ["ParametricROM", "identify_particle"]


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


def identify_particle(truth: tuple[float, float] = (20.6, 6.7),
                      truncation: tuple[int, int] = (12, 10),
                      box: tuple[tuple[float, float], tuple[float, float]] = ((19, 22), (5, 8)),
                      frequency: float = 5e3, noise: float = 0.01, grid: int = 6,
                      rank: int = 120, settings: TSSettings = TSSettings(rtol=1e-8, atol=1e-13),
                      seed: int = 0) -> dict:
    """Recover (d_c [nm], K [kJ/m³]) of a simulated noisy signal with the ROM.

    Returns:
        A JSON-ready dictionary with ``true``, ``recovered``, ``seconds`` (identification
        only), offline seconds (training FOMs + POD + projections) and diagnostics.
    """
    t_off = time.perf_counter()
    (d0, d1), (k0, k1) = box
    train = [(d0, k0), (d0, k1), (d1, k0), (d1, k1), (0.5 * (d0 + d1), 0.5 * (k0 + k1))]
    snaps = []
    for d, k in train:
        model = BrownNeelModel(_particle(d, k), *truncation, "dynamic")
        run = run_fom(model, frequency, settings=settings)
        snaps.append(run.traj.y / np.linalg.norm(run.traj.y))
    basis = pod(np.hstack(snaps), rank=rank)
    prom = ParametricROM(basis.modes, truncation)
    offline = time.perf_counter() - t_off

    truth_model = BrownNeelModel(_particle(*truth), *truncation, "dynamic")
    true_run = run_fom(truth_model, frequency, settings=settings)
    clean = true_run.recorded.dmz
    rng = np.random.default_rng(seed)
    data = clean + noise * np.sqrt(np.mean(clean**2)) * rng.standard_normal(clean.size)
    drive, t, start = true_run.drive, true_run.traj.t, true_run.start
    calls = {"n": 0}

    def misfit(x):
        d, k = x
        if not (d0 <= d <= d1 and k0 <= k <= k1):
            return 10.0
        calls["n"] += 1
        try:
            s = prom.signal(_particle(d, k), drive, t, start, settings)
        except RuntimeError:
            return 10.0
        return float(np.linalg.norm(s - data) / np.linalg.norm(data))

    t0 = time.perf_counter()
    cands = [(d, k) for d in np.linspace(d0, d1, grid) for k in np.linspace(k0, k1, grid)]
    values = [misfit(c) for c in cands]
    best = cands[int(np.argmin(values))]
    dictionary_seconds = time.perf_counter() - t0
    res = minimize(misfit, np.array(best), method="Nelder-Mead",
                   options={"xatol": 1e-3, "fatol": 1e-6, "maxfev": 40,
                            "initial_simplex": [best, (best[0] + 0.4, best[1]),
                                                (best[0], best[1] + 0.4)]})
    seconds = time.perf_counter() - t0
    return {
        "true": list(truth), "recovered": [float(res.x[0]), float(res.x[1])],
        "units": ["nm", "kJ/m3"], "seconds": seconds,
        "dictionary_seconds": dictionary_seconds, "dictionary_best": list(best),
        "rom_evaluations": calls["n"], "offline_seconds": offline,
        "fom_seconds_one_run": true_run.traj.seconds, "rank": basis.rank,
        "truncation": list(truncation), "noise_relative": noise,
        "misfit_at_recovered": float(res.fun), "misfit_of_truth_data": float(
            np.linalg.norm(clean - data) / np.linalg.norm(data)),
        "relative_error": [abs(res.x[0] - truth[0]) / truth[0],
                           abs(res.x[1] - truth[1]) / truth[1]],
        "method": f"dictionary {grid}x{grid} + Nelder-Mead on the parametric POD-Galerkin ROM",
    }
