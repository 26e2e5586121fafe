r"""A POD-Galerkin ROM of the Brown–Néel model parametric in (d_c, K, d_h), for calibration.

In units of τ_N (s = t/τ_N) the dynamic-formulation operator of a z-drive,

    F(s) = A_0 + ξ(s) A_z + ξ(s)² A_zz + ξ̇(s) A_ξ̇,

depends on the particle only through σ = K V_c/(k_B T) and ρ = τ_N/τ_B (D_B = ρ/2):

    A_0 = P_0 + σ P_1 + σ² P_2 + ρ (P_3 + σ P_4 + σ² P_5),   A_z = Q_0 + σ Q_1,
    A_zz, A_ξ̇ constant

(``operators._dynamic``: the potential term is (D_N + D_B)(σ + (σ² − 3σ)X2 − σ²X4)).  The
nine matrices P_i, Q_i are recovered exactly from assemblies at six (σ, ρ) points and projected
once onto a POD basis U (UᵀU = I): a candidate (d_c, K, d_h) costs a reduced integration only.
The field enters through ξ(t) = (μ/k_BT) B(t) and the time unit τ_N, both functions of d_c.

Outputs (exact, as in ``observables.DynamicWeights``): with the block eigen-decomposition
[m_z] = V D Vᵀ of the extended basis and h(σ) the coefficients of e^{σx²/2},

    g_1(ξ)ᵀq = Σ_bj e^{ξ d_bj/2} (Vᵀh)_bj (Vᵀ q)_bj,    g_z(ξ)ᵀq: the same with a factor d_bj,

and (Vᵀ U a) is precomputed as the reduced projector Π (nb·nl × r), so an output costs
O(n_t nb·nl r); h(σ) = exp(½σ X2) e_0 on the extended basis (one ``expm_multiply``).  The
signal is s(t) = d⟨m_z⟩/dt = (ȧ_z a_1 − a_z ȧ_1)/(a_1² τ_N) with ȧ from F(s)a (exact rates).

Time integration (``integrate_radau``): fixed steps of the two-stage Radau IIA method
(order 3, L-stable, stiffly accurate) on the reduced linear ODE a' = (F(s) + κ I) a,

    (I ⊗ I − h (A ⊗ I) diag(F(s_n + c_1 h), F(s_n + c_2 h))) K = 1 ⊗ a_n,   a_{n+1} = K_2,

with A = [[5/12, −1/12], [3/4, 1/4]], c = (1/3, 1): one 2r × 2r dense solve per step.  The
step is the sample spacing of the data divided by ``substeps``, so the output times are step
points, and the discrete map is a smooth function of the parameters (no adaptive step
sequence): central finite differences of the signal converge at second order in the
parameter step (tested).  The leak shift κ (the truncation's mass-leak rate, from the reduced
F(ξ) at ξ = 0, ξ_ref/2, ξ_ref as ``identify.ParametricROM``) keeps ‖a‖ = O(1) and leaves the
mass-normalised outputs unchanged.

Notation: n full size, r POD rank, σ anisotropy barrier, ρ = τ_N/τ_B, ξ field coupling, s time
in units of τ_N, h step, κ leak shift.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numpy as np
from scipy.sparse.linalg import expm_multiply

from llgfem.brownneel.model import BrownNeelModel
from llgfem.brownneel.observables import EXTRA_DEGREES, DynamicWeights, _extended
from llgfem.brownneel.operators import _Builder, assemble_operator, x_power
from llgfem.brownneel.params import ParticleParameters, SinusoidalDrive

__all__ = ["RADAU_A", "RADAU_C", "BrownNeelFamily", "integrate_radau", "radau_propagators"]

RADAU_A = np.array([[5.0 / 12.0, -1.0 / 12.0], [3.0 / 4.0, 1.0 / 4.0]])
RADAU_C = np.array([1.0 / 3.0, 1.0])
#: (σ, ρ) points of the exact affine recovery (6 monomials 1, σ, σ², ρ, ρσ, ρσ²).
_RECOVERY = ((0.0, 0.1), (4.0, 0.1), (8.0, 0.1), (0.0, 0.6), (4.0, 0.6), (8.0, 0.6))


def _monomials(sigma: float, rho: float) -> np.ndarray:
    return np.array([1.0, sigma, sigma**2, rho, rho * sigma, rho * sigma**2])


def _with_sigma_rho(base: ParticleParameters, sigma: float, rho: float) -> ParticleParameters:
    """A particle with the core of ``base`` and the requested σ and ρ = τ_N/τ_B (via K, η)."""
    k = sigma * base.kT / base.v_core
    p = replace(base, K=k, d_h=0.0)
    eta = p.tau_n * p.kT / (3.0 * p.v_hydro * rho)
    return replace(p, eta=eta)


def radau_propagators(mats: list[np.ndarray], coef: np.ndarray, step: float,
                      chunk: int = 256) -> np.ndarray:
    """One-step propagators P_n (a_{n+1} = P_n a_n) of two-stage Radau IIA, batched.

    For the linear ODE the stage system of step n, M_n K = (a_n, a_n) with
    M_n = I − h (A ⊗ I) diag(F_n1, F_n2), gives a_{n+1} = K_2 = [M_n^{-1}]_{2,:} (I; I) a_n.

    Args:
        mats: the reduced terms M_k (r × r; shift folded into M_0).
        coef: stage coefficients c_k, shape (n_steps, 2, K).
        step: h (units of τ_N).
        chunk: steps per batched solve (memory bound).

    Returns:
        P, shape (n_steps, r, r).
    """
    r = mats[0].shape[0]
    stack = np.stack(mats).reshape(len(mats), -1)  # (K, r*r)
    rhs = np.vstack([np.eye(r), np.eye(r)])
    out = np.empty((coef.shape[0], r, r))
    for lo in range(0, coef.shape[0], chunk):
        c = coef[lo:lo + chunk]
        f = (c.reshape(-1, c.shape[-1]) @ stack).reshape(c.shape[0], 2, r, r)
        m = np.empty((c.shape[0], 2 * r, 2 * r))
        for i in range(2):
            for j in range(2):
                m[:, i * r:(i + 1) * r, j * r:(j + 1) * r] = -step * RADAU_A[i, j] * f[:, j]
        m[:, range(2 * r), range(2 * r)] += 1.0
        out[lo:lo + chunk] = np.linalg.solve(m, rhs[None])[:, r:, :]
    return out


def integrate_radau(mats: list[np.ndarray], coefficients, a0: np.ndarray, s_start: float,
                    step: float, n_steps: int, record: np.ndarray,
                    period_steps: int | None = None) -> np.ndarray:
    """Fixed-step two-stage Radau IIA for a' = Σ_k c_k(s) M_k a (module docstring).

    Args:
        mats: the reduced terms M_k (r × r; the shift folded into M_0).
        coefficients: s -> c_k(s) for an array of times (returns (len(s), K)).
        a0: state at ``s_start``.
        step: h (units of τ_N).
        n_steps: number of steps.
        record: sorted step indices (0..n_steps) at which the state is returned.
        period_steps: steps per period of periodic coefficients (then only one period of
            propagators is formed and reused; ``s_start`` must be a period boundary).

    Returns:
        States (r, len(record)).
    """
    n_prop = n_steps if period_steps is None else min(period_steps, n_steps)
    s_stage = s_start + step * (np.arange(n_prop)[:, None] + RADAU_C[None, :])
    coef = coefficients(s_stage.ravel()).reshape(n_prop, 2, -1)
    prop = radau_propagators(mats, coef, step)
    out = np.empty((a0.size, len(record)))
    want = {int(j): i for i, j in enumerate(record)}
    if 0 in want:
        out[:, want[0]] = a0
    a = a0.copy()
    for n in range(n_steps):
        a = prop[n % n_prop] @ a
        if n + 1 in want:
            out[:, want[n + 1]] = a
    return out


@dataclass
class _Candidate:
    """Derived quantities of one particle."""

    params: ParticleParameters
    sigma: float
    rho: float
    xi_per_tesla: float
    tau_n: float


class BrownNeelFamily:
    """POD-Galerkin ROM for every particle with the fixed properties of ``base``.

    Args:
        basis: orthonormal POD modes U (n × r) in the z-sector coefficient space of
            ``truncation`` (dynamic formulation).
        truncation: (N_m, N_n).
        base: fixed particle properties (M_S, α, γ, T, η); d_c, K, d_h vary.
        b_ref: field amplitude [T] for the leak shift (the drive amplitude).
    """

    def __init__(self, basis: np.ndarray, truncation: tuple[int, int],
                 base: ParticleParameters = ParticleParameters(), b_ref: float = 15e-3):
        t0 = time.perf_counter()
        self.u = np.asarray(basis, float)
        self.truncation = tuple(int(v) for v in truncation)
        self.base = base
        self.b_ref = b_ref
        self.basis = BrownNeelModel.basis_of(self.truncation)
        if self.u.shape[0] != self.basis.size:
            raise ValueError(f"basis has {self.u.shape[0]} rows, the truncation "
                             f"{self.truncation} has {self.basis.size} unknowns")
        self._recover_terms()
        self.weights = None  # output projector: built at the first signal (_output_projector)
        self.offline_seconds = time.perf_counter() - t0

    @property
    def rank(self) -> int:
        return self.u.shape[1]

    # -- offline ---------------------------------------------------------------------------
    def _recover_terms(self) -> None:
        """Reduced P_i (A_0), Q_i (A_z), A_zz, A_ξ̇ from six assemblies (exact)."""
        reduced = []
        for sigma, rho in _RECOVERY:
            p = _with_sigma_rho(self.base, sigma, rho)
            op = assemble_operator(p, self.basis, "dynamic")
            reduced.append([self.u.T @ (a @ self.u) for a in op.matrices])
            self.terms = op.terms
        if self.terms != ["1", "xi_z", "xi_z*xi_z", "dxi_z"]:
            raise ValueError(f"unexpected dynamic z-sector terms {self.terms}")
        vander = np.array([_monomials(s, r) for s, r in _RECOVERY])
        inv = np.linalg.inv(vander)
        self.a0_terms = [sum(inv[j, i] * reduced[i][0] for i in range(6)) for j in range(6)]
        # A_z: affine in σ (ρ-independent); A_zz, A_ξ̇ constant
        self.az_terms = [reduced[0][1], (reduced[1][1] - reduced[0][1]) / 4.0]
        self.azz, self.adxi = reduced[0][2], reduced[0][3]
        for i in (1, 2, 4, 5):  # consistency: the other assemblies satisfy the same model
            s, r = _RECOVERY[i]
            err = np.abs(reduced[i][1] - self.az_terms[0] - s * self.az_terms[1]).max()
            scale = max(np.abs(reduced[i][1]).max(), 1.0)
            if err > 1e-9 * scale:
                raise ValueError(f"A_z is not affine in σ (error {err:.2e})")

    def _output_projector(self) -> None:
        """Π = Vᵀ U per block (the reduced form of DynamicWeights.project) and X2."""
        self.weights = DynamicWeights(self.base, self.basis)
        pr = self.weights.project(self.u)  # (r, nb, nl) complex
        self.proj = pr.reshape(pr.shape[0], -1).T  # (nb*nl, r)
        self.d = self.weights.d.ravel()
        self.ext = _extended(self.basis, EXTRA_DEGREES)
        self.x2 = _Builder(self.ext).poly(x_power(2)).tocsr()
        self.e0 = np.zeros(self.ext.size, dtype=complex)
        self.e0[self.ext.position(0, 0, 0, 0)] = 4 * np.pi
        lookup = {tuple(r): i for i, r in enumerate(self.ext.index.tolist())}
        self.trunc_pos = np.array([lookup[tuple(r)] for r in self.basis.index.tolist()])
        # rows of h entering ch: DynamicWeights stores ch = Vᵀ h[rows]; rebuild the row map
        self._ch_rows = self._block_rows()

    def _block_rows(self) -> np.ndarray:
        """Row indices of h(σ) per (block, level), −1 where unused (as DynamicWeights)."""
        ext, basis = self.ext, self.basis
        keys = sorted({(int(r[1]), int(r[2])) for r in ext.index if r[2] <= basis.n_n})
        nl = ext.n_m + 1
        rows = np.full((len(keys), nl), -1)
        for b, (mu, big_l) in enumerate(keys):
            for j, l_deg in enumerate(range(abs(mu), ext.n_m + 1)):
                rows[b, j] = ext.position(int(l_deg), mu, big_l, -mu)
        return rows

    # -- one candidate ----------------------------------------------------------------------
    def candidate(self, d_c: float, k: float, d_h: float = 0.0) -> _Candidate:
        """Derived quantities of the particle (d_c [m], K [J/m³], d_h [m], 0: = d_c)."""
        p = replace(self.base, d_c=d_c, K=k, d_h=d_h)
        return _Candidate(p, p.sigma, p.tau_n / p.tau_b, p.xi_per_tesla, p.tau_n)

    def _h(self, sigma: float) -> np.ndarray:
        return expm_multiply(0.5 * sigma * self.x2, self.e0)

    def _ch(self, h: np.ndarray) -> np.ndarray:
        """(Vᵀ h[rows]) flattened, as ``DynamicWeights.ch``."""
        hr = np.where(self._ch_rows >= 0, h[np.maximum(self._ch_rows, 0)], 0.0)
        return np.real(np.einsum("bjl,bl->bj", self.weights.vt, hr)).ravel()

    def operators(self, sigma: float, rho: float) -> list[np.ndarray]:
        """Reduced A_0 (with the leak shift), A_z, A_zz, A_ξ̇ of a particle."""
        mono = _monomials(sigma, rho)
        a0 = sum(m * t for m, t in zip(mono, self.a0_terms, strict=True))
        az = self.az_terms[0] + sigma * self.az_terms[1]
        return [a0, az, self.azz, self.adxi]

    def _shift(self, mats: list[np.ndarray], xi_ref: float) -> float:
        leaks = []
        for xi in (0.0, 0.5 * xi_ref, xi_ref):
            lam = np.linalg.eigvals(mats[0] + xi * mats[1] + xi * xi * mats[2])
            leaks.append(-np.real(lam[np.argmin(np.abs(lam))]))
        return float(np.mean(leaks))

    def signal(self, cand: _Candidate, drive: SinusoidalDrive, t_samples: np.ndarray,
               warmup_periods: float = 1, substeps: int = 2) -> np.ndarray:
        """d⟨m_z⟩/dt [1/s] at the sample times (one drive period, t in [0, T)).

        The integration starts at t = −w·T (w = ``warmup_periods`` rounded up to a whole
        number ≥ 1, so the propagators of one period serve every period) from the
        zero-field Boltzmann state, with steps of (sample spacing)/``substeps``;
        ``t_samples`` must be uniformly spaced from 0 and cover one period.
        """
        warmup_periods = max(1, math.ceil(warmup_periods - 1e-9))
        t_samples = np.asarray(t_samples, float)
        dt = t_samples[1] - t_samples[0] if t_samples.size > 1 else drive.period
        n_per_period = int(round(drive.period / dt))
        h_t = dt / substeps
        record = warmup_periods * n_per_period * substeps + np.arange(t_samples.size) * substeps
        n_steps = int(record[-1])
        mats = self.operators(cand.sigma, cand.rho)
        xi_t, tau = cand.xi_per_tesla, cand.tau_n
        kappa = self._shift(mats, xi_t * self.b_ref)
        mats[0] = mats[0] + kappa * np.eye(self.rank)
        t0 = -warmup_periods * n_per_period * dt
        w = 2 * math.pi * drive.frequency

        def coefficients(s):
            t = np.asarray(s) * tau
            xi = xi_t * (drive.offset + drive.amplitude * np.sin(w * t + drive.phase))
            dxi = xi_t * tau * drive.amplitude * w * np.cos(w * t + drive.phase)
            return np.column_stack([np.ones_like(xi), xi, xi * xi, dxi])

        if self.weights is None:
            self._output_projector()
        h = self._h(cand.sigma)
        q0 = self.basis.vector_to_real(h[self.trunc_pos])
        a = integrate_radau(mats, coefficients, self.u.T @ q0, t0 / tau, h_t / tau, n_steps,
                            record, period_steps=n_per_period * substeps)
        c = coefficients(t_samples / tau)
        adot = sum(c[:, k][None, :] * (mats[k] @ a) for k in range(4))
        return self._rate(cand, h, c[:, 1], c[:, 3], a, adot)

    def _rate(self, cand, h, xi, dxi, a, adot) -> np.ndarray:
        """(ȧ_z a_1 − a_z ȧ_1)/(a_1² τ_N) from reduced states (module docstring)."""
        ch = self._ch(h)
        e = np.exp(0.5 * xi[:, None] * self.d[None, :]) * ch[None, :]  # (n_t, nb*nl)
        z = (self.proj @ a).T  # (n_t, nb*nl) complex
        zd = (self.proj @ adot).T + 0.5 * dxi[:, None] * self.d[None, :] * z
        a1 = np.einsum("tk,tk->t", e, z).real
        az = np.einsum("tk,tk->t", e * self.d, z).real
        da1 = np.einsum("tk,tk->t", e, zd).real
        daz = np.einsum("tk,tk->t", e * self.d, zd).real
        return (daz * a1 - az * da1) / a1**2 / cand.tau_n


def reference_check(family: BrownNeelFamily, cand: _Candidate) -> float:
    """max |F_ROM(σ, ρ) − Uᵀ F_FOM U| over the terms (relative): the affine recovery check."""
    op = assemble_operator(cand.params, family.basis, "dynamic")
    mats = family.operators(cand.sigma, cand.rho)
    err = 0.0
    for a, m in zip(op.matrices, mats, strict=True):
        ref = family.u.T @ (a @ family.u)
        err = max(err, float(np.abs(ref - m).max() / max(np.abs(ref).max(), 1e-300)))
    return err

