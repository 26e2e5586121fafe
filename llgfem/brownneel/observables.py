r"""Observables ⟨m⟩(t), d⟨m⟩/dt and initial states from the spectral coefficients.

For coefficients c of p in an orthonormal basis, ∫ f p = f̂ᴴ c with f̂ the coefficient vector of
f; in real coordinates ∫ f p = f̂_realᵀ r.  With the substitution p = w q:

* plain:   w = 1,                    ⟨m_a⟩ = g_aᵀ y,   g_a = coeff(m_a)
* static:  w = e^{σx²/2},            ⟨m_a⟩ = g_aᵀ q,   g_a = coeff(w m_a)
* dynamic: w = e^{(ξ(t) m_z + σx²)/2},  ⟨m_z⟩ = g_z(ξ)ᵀq / g_1(ξ)ᵀq  (mass-normalised)

Rates are exact: d(gᵀy)/dt = gᵀF(t)y, and for the dynamic weights
d(g(ξ)ᵀq)/dt = ξ̇ (∂_ξ g)ᵀq + g(ξ)ᵀ F(t) q.  The weights are the coefficients of
exp(½ξ[m_z] + sσX2) applied to the constant function on a basis extended by ``extra`` degrees.
For the ξ-dependence, [m_z]⊗I is block-tridiagonal (one block per (μ, L)) and is diagonalised
once: g(ξ) = Σ_blocks V e^{ξD/2} Vᵀ h, so g and ∂_ξ g are exact for every ξ.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.linalg import eigh_tridiagonal
from scipy.sparse.linalg import expm_multiply

from llgfem.brownneel.basis import ProductBasis, multiplication
from llgfem.brownneel.params import ParticleParameters

__all__ = ["DynamicWeights", "extended_function", "weight_vector"]

EXTRA_DEGREES = 10


def _extended(basis: ProductBasis, extra: int) -> ProductBasis:
    return ProductBasis(basis.n_m + extra, basis.n_n + extra, basis.kind)


def extended_function(
    params: ParticleParameters, basis: ProductBasis, sigma_factor: float, extra: int
) -> np.ndarray:
    """Complex coefficients of e^{sσx²} on the extended basis (s = sigma_factor)."""
    from llgfem.brownneel.operators import _Builder, x_power

    ext = _extended(basis, extra)
    c = np.zeros(ext.size)
    c[ext.position(0, 0, 0, 0)] = 4 * np.pi  # 1 = 4π Y_0^0 Y_0^0
    if sigma_factor == 0 or params.sigma == 0:
        return c.astype(complex)
    x2 = _Builder(ext).poly(x_power(2))
    return expm_multiply(sigma_factor * params.sigma * x2, c.astype(complex))


def _truncate(ext: ProductBasis, basis: ProductBasis, c_ext: np.ndarray) -> np.ndarray:
    lookup = {tuple(r): i for i, r in enumerate(ext.index.tolist())}
    pos = np.array([lookup[tuple(r)] for r in basis.index.tolist()])
    return c_ext[pos]


def _cart_mult(f0: str, lmax: int) -> sp.csr_matrix:
    mp, mm = multiplication("+", lmax), multiplication("-", lmax)
    return {
        "x": 0.5 * (mp + mm),
        "y": (mp - mm) / 2j,
        "z": multiplication("z", lmax),
    }[f0]


def weight_vector(
    params: ParticleParameters,
    basis: ProductBasis,
    f0: str = "1",
    xi: float = 0.0,
    sigma_factor: float = 0.0,
    extra: int = EXTRA_DEGREES,
) -> np.ndarray:
    """Real coordinates of f0 · exp(½ ξ m_z + sσ x²), f0 ∈ {"1", "x", "y", "z"}.

    Args:
        params: particle (for σ).
        basis: target basis.
        f0: ``"1"`` or a moment component.
        xi: field along z entering the weight.
        sigma_factor: s in e^{sσx²} (½ for the symmetrised weights, 1 for p_eq).
        extra: extension degrees used for the exponentials.
    """
    ext = _extended(basis, extra)
    c = extended_function(params, basis, sigma_factor, extra)
    eye_n = sp.identity((ext.n_n + 1) ** 2, format="csr")
    if xi != 0.0:
        mz = ext.kron(multiplication("z", ext.n_m), eye_n)
        c = expm_multiply(0.5 * xi * mz, c)
    if f0 != "1":
        c = ext.kron(_cart_mult(f0, ext.n_m), eye_n) @ c
    return basis.vector_to_real(_truncate(ext, basis, c))


class DynamicWeights:
    """Exact ξ-dependent weights g_1(ξ), g_z(ξ) of the dynamic formulation (sector basis)."""

    def __init__(self, params: ParticleParameters, basis: ProductBasis, extra: int = EXTRA_DEGREES):
        if basis.kind != "sector":
            raise ValueError("the dynamic formulation is implemented for the z-sector only")
        self.basis = basis
        ext = _extended(basis, extra)
        h = np.real(extended_function(params, basis, 0.5, extra))
        target = {tuple(r): i for i, r in enumerate(basis.index.tolist())}
        idx = ext.index
        keys = sorted({(int(r[1]), int(r[2])) for r in idx if r[2] <= basis.n_n})
        nl = ext.n_m + 1
        nb = len(keys)
        self.vt = np.zeros((nb, nl, nl))
        self.d = np.zeros((nb, nl))
        self.ch = np.zeros((nb, nl))
        self.pos = np.full((nb, nl), basis.size)  # points at an appended zero row
        for b, (mu, big_l) in enumerate(keys):
            ls = np.arange(abs(mu), ext.n_m + 1)
            lf, mf = ls[:-1].astype(float), float(mu)
            off = np.sqrt(((lf + 1) ** 2 - mf**2) / ((2 * lf + 1) * (2 * lf + 3)))
            d, v = eigh_tridiagonal(np.zeros(ls.size), off)
            rows = [ext.position(int(l), mu, big_l, -mu) for l in ls]
            k = ls.size
            self.vt[b, :k, :k] = v.T
            self.d[b, :k] = d
            self.ch[b, :k] = v.T @ h[rows]
            for j, l in enumerate(ls):
                self.pos[b, j] = target.get((int(l), mu, big_l, -mu), basis.size)

    def project(self, r: np.ndarray) -> np.ndarray:
        """Z[t, b, j] = (Vᵀ c)_bj for real coordinates r of shape (n, n_t)."""
        c = self.basis.vector_from_real(r)
        c = np.vstack([c, np.zeros((1, c.shape[1]))])
        return np.einsum("bjl,blt->tbj", self.vt, c[self.pos], optimize=True)

    def moments(self, xi: np.ndarray, r: np.ndarray, rdot: np.ndarray | None = None,
                dxi: np.ndarray | None = None, chunk: int = 256):
        """Mass a1, a_z and (optionally) their time derivatives for every column of r.

        Args:
            xi: ξ(t_i), shape (n_t,).
            r: real coordinates of q(t_i), shape (n, n_t).
            rdot: dq/dt at t_i (same shape), for the rates.
            dxi: dξ/dt at t_i, for the rates.

        Returns:
            (a1, az) or (a1, az, da1, daz), real arrays of shape (n_t,).
        """
        out = [[], [], [], []]
        for s in range(0, r.shape[1], chunk):
            sl = slice(s, s + chunk)
            e = np.exp(0.5 * xi[sl, None, None] * self.d[None]) * self.ch[None]
            z = self.project(r[:, sl])
            out[0].append(np.einsum("tbj,tbj->t", e, z).real)
            out[1].append(np.einsum("tbj,tbj->t", e * self.d[None], z).real)
            if rdot is not None:
                zd = self.project(rdot[:, sl])
                half = 0.5 * dxi[sl, None, None] * self.d[None]
                dz = half * z + zd
                out[2].append(np.einsum("tbj,tbj->t", e, dz).real)
                out[3].append(np.einsum("tbj,tbj->t", e * self.d[None], dz).real)
        res = [np.concatenate(o) for o in out if o]
        return tuple(res)


class BoltzmannWeights3D:
    """ξ-vector-dependent weights in the full product basis (fields of any direction).

    The coefficients of f0 · exp(s_ξ ξ·m + s_σ σ x²) for f0 ∈ {1, m_x, m_y, m_z} and any field
    vector ξ: the factor exp(s_ξ ξ·m) acts on the m-sphere only, so with H the coefficient
    array of exp(s_σ σx²) on the extended basis (m index × n index) it is E H with
    E = expm(s_ξ Σ_a ξ_a M_a) a small dense single-sphere matrix; products with m_a and the
    ξ-derivatives ∂/∂ξ_b = s_ξ M_b are exact on the extended basis and truncated last.

    Used for the dynamic formulation (s_ξ = s_σ = ½: mass-normalised outputs g_aᵀq/g_1ᵀq and
    the initial state w(0)) and for Boltzmann initial states of the other formulations.
    """

    def __init__(self, params: ParticleParameters, basis: ProductBasis,
                 sigma_factor: float = 0.5, xi_factor: float = 0.5,
                 extra: int = EXTRA_DEGREES):
        if basis.kind != "full":
            raise ValueError("BoltzmannWeights3D works on the full product basis")
        ext = _extended(basis, extra)
        self.nm, self.nn = (basis.n_m + 1) ** 2, (basis.n_n + 1) ** 2
        h = extended_function(params, basis, sigma_factor, extra)
        # E(ξ) acts on the m index only: the n index can be truncated at once
        self.h = h.reshape((ext.n_m + 1) ** 2, (ext.n_n + 1) ** 2)[:, : self.nn]
        mult = [_cart_mult(a, ext.n_m).toarray() for a in "xyz"]
        self.mult = mult
        self.rows = [m[: self.nm] for m in mult]  # only l <= N_m survives the truncation
        self.rows2 = [[(a @ b)[: self.nm] for b in mult] for a in mult]
        self.q = basis.real_transform
        self.xi_factor = xi_factor

    def _real(self, g: np.ndarray) -> np.ndarray:
        """Real coordinates of a truncated (nm × nn) coefficient array."""
        return np.real(self.q @ g.reshape(-1))

    def arrays(self, xi: np.ndarray) -> np.ndarray:
        """E(ξ) H: the weight on the extended m-sphere, n truncated (m_ext × nn)."""
        from scipy.linalg import expm

        gen = self.xi_factor * sum(x * m for x, m in zip(xi, self.mult, strict=True))
        return expm(gen) @ self.h

    def vectors(self, xi: np.ndarray) -> np.ndarray:
        """Real coordinates of (w, w m_x, w m_y, w m_z) at ξ, shape (4, n)."""
        g = self.arrays(np.asarray(xi, float))
        return np.stack([self._real(g[: self.nm])] + [self._real(r @ g) for r in self.rows])

    def moments(self, xi: np.ndarray, r: np.ndarray, rdot: np.ndarray | None = None,
                dxi: np.ndarray | None = None):
        """(a1, a (n_t, 3)) or (a1, a, da1, da): mass and moment integrals per column.

        Args:
            xi: ξ(t_i), shape (n_t, 3).
            r: states, shape (n, n_t); rdot and dxi (n_t, 3) for the exact rates.
        """
        n_t = r.shape[1]
        a1, a = np.empty(n_t), np.empty((n_t, 3))
        da1, da = np.empty(n_t), np.empty((n_t, 3))
        s = self.xi_factor
        for i in range(n_t):
            g = self.arrays(xi[i])
            v1 = self._real(g[: self.nm])
            va = [self._real(rw @ g) for rw in self.rows]
            a1[i] = v1 @ r[:, i]
            a[i] = [v @ r[:, i] for v in va]
            if rdot is not None:
                d = dxi[i]
                # ∂/∂ξ_b of (w, w m_a) = s (w m_b, w m_a m_b)
                dv1 = s * sum(db * vb for db, vb in zip(d, va, strict=True))
                da1[i] = dv1 @ r[:, i] + v1 @ rdot[:, i]
                for k in range(3):
                    dvk = sum((d[b] * self._real(self.rows2[k][b] @ g) for b in range(3)
                               if d[b] != 0), np.zeros_like(v1))
                    da[i, k] = s * (dvk @ r[:, i]) + va[k] @ rdot[:, i]
        return (a1, a) if rdot is None else (a1, a, da1, da)
