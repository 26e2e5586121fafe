r"""Assembled Brown–Néel operators F(t) = Σ_k s_k(t) A_k in plain and stabilised forms.

Time is measured in units of τ_N, so D_N = 1/2, D_B = τ_N/(2τ_B) and the precession rates are
D_N/α (field) and σ/α (anisotropy).  With x = m·n, X2 = [x²], X4 = [x⁴] (exact products),
G = [P₂(x)] = (3/2)X2 − ½ and R = m×∇ = iL:

plain (Galerkin form of Weizenecker 2018), terms (1, ξ_a):
    F0  = −D_N Λ_m − D_B Λ_n + (σ/3)D_N(Λ_m G − GΛ_m + 6G) + (σ/3)D_B(Λ_n G − GΛ_n + 6G)
          − i(σ/α) Σ_ab (M_a L_b)⊗[n_a n_b]
    F_a = [(D_N/2)(ΛM_a − M_aΛ + 2M_a) − i(D_N/α)L_a] ⊗ I

static symmetrisation ("static"), p = e^{σx²/2} q, terms (1, ξ_a), projected with the
rank-one conservation projector P = I − u g₁ᵀ:
    F̃0  = −D_N Λ_m − D_B Λ_n − (D_N + D_B)[σ + (σ² − 3σ)X2 − σ²X4] − i(σ/α)Σ(M_aL_b)⊗[n_a n_b]
    F̃_a = F_a − D_N σ([x n_a] − [x² m_a]) + (σ/(2α))[x (n×m)_a]

time-dependent symmetrisation ("dynamic"), p = e^{(ξ·m + σx²)/2} q,
terms (1, ξ_a, ξ_aξ_b, ξ̇_a):
    Ã0 = F̃0,  Ã_a = −D_N(σ[x n_a] − σ[x² m_a] − [m_a]) − i(D_N/α)L_a,
    Ã_ab = −(D_N/4)(δ_ab − [m_a m_b]),  Ã_ξ̇a = −½[m_a]

Its symmetric part (ξ̇ term aside) is the Galerkin matrix of −(D_N(−Δ_m+V_m) + D_B(−Δ_n+V_n))
and therefore negative semi-definite for every truncation; the precession part is skew.

``precession=False`` drops every i·L term (egg-model / overdamped comparison).  All matrices of
one operator share one sparsity pattern (the union, with the diagonal), so PETSc can form
Σ s_k A_k with MatAXPY(SAME_NONZERO_PATTERN).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import scipy.sparse as sp

from llgfem.brownneel.basis import ProductBasis, angular_momentum, lam, monomial, multiplication
from llgfem.brownneel.params import ParticleParameters

__all__ = ["FORMULATIONS", "AffineOperator", "assemble_operator", "x_power"]

FORMULATIONS = ("plain", "static", "dynamic")

# Cartesian components in the (z, +, -) representation: (coef, op)
_CART = {
    "x": [(0.5, "+"), (0.5, "-")],
    "y": [(-0.5j, "+"), (0.5j, "-")],
    "z": [(1.0, "z")],
}
# x = m·n = m_z n_z + (m_+ n_- + m_- n_+)/2 as (coef, m-ops, n-ops)
_X = [(1.0, "z", "z"), (0.5, "+", "-"), (0.5, "-", "+")]


def _mul(p, q):
    """Product of two polynomials given as lists of (coef, m_ops, n_ops)."""
    out: dict[tuple[str, str], complex] = {}
    for (c1, m1, n1), (c2, m2, n2) in itertools.product(p, q):
        key = ("".join(sorted(m1 + m2)), "".join(sorted(n1 + n2)))
        out[key] = out.get(key, 0.0) + c1 * c2
    return [(c, m, n) for (m, n), c in out.items() if c != 0]


def x_power(k: int):
    """(m·n)^k as a list of (coef, m_ops, n_ops) monomials."""
    poly = [(1.0, "", "")]
    for _ in range(k):
        poly = _mul(poly, _X)
    return poly


def _m(a: str):
    return [(c, op, "") for c, op in _CART[a]]


def _n(a: str):
    return [(c, "", op) for c, op in _CART[a]]


def _cross_nm(a: str):
    """(n × m)_a as a polynomial."""
    axes = "xyz"
    i = axes.index(a)
    e, c = axes[(i + 1) % 3], axes[(i + 2) % 3]
    return _mul(_n(e), _m(c)) + [(-cf, m, n) for cf, m, n in _mul(_n(c), _m(e))]


@dataclass
class _Builder:
    basis: ProductBasis

    def __post_init__(self):
        self._mono = lru_cache(maxsize=None)(self._monomial)

    def _monomial(self, ops: str, sphere: str) -> sp.csr_matrix:
        deg = self.basis.n_m if sphere == "m" else self.basis.n_n
        return monomial(ops, deg)

    def poly(self, poly, m_left=None) -> sp.csr_matrix:
        """Restricted matrix of a polynomial in (m, n); optional m-operator applied first."""
        out = sp.csr_matrix((self.basis.size, self.basis.size), dtype=complex)
        for c, mo, no in poly:
            a = self._mono(mo, "m")
            if m_left is not None:
                a = a @ m_left
            out = out + c * self.basis.kron(a, self._mono(no, "n"))
        return out

    def m_op(self, a) -> sp.csr_matrix:
        return self.basis.kron(a, sp.identity((self.basis.n_n + 1) ** 2, format="csr"))

    def n_op(self, b) -> sp.csr_matrix:
        return self.basis.kron(sp.identity((self.basis.n_m + 1) ** 2, format="csr"), b)

    def ang(self, a: str) -> sp.csr_matrix:
        n = self.basis.n_m
        lp, lm = angular_momentum("+", n), angular_momentum("-", n)
        single = {"x": 0.5 * (lp + lm), "y": (lp - lm) / 2j, "z": angular_momentum("z", n)}[a]
        return single

    def mult(self, a: str) -> sp.csr_matrix:
        n = self.basis.n_m
        return sum(c * multiplication(op, n) for c, op in _CART[a])

    def anisotropy_precession(self) -> sp.csr_matrix:
        """Σ_ab (M_a L_b)⊗[n_a n_b] = [x] ∘ (n·L_m), each piece exact."""
        out = sp.csr_matrix((self.basis.size, self.basis.size), dtype=complex)
        n_dot_l = [(1.0, "z", "z"), (0.5, "+", "-"), (0.5, "-", "+")]
        for c, nop, lop in n_dot_l:
            poly = _mul(_X, [(c, "", nop)])
            out = out + self.poly(poly, m_left=angular_momentum(lop, self.basis.n_m))
        return out


@dataclass
class AffineOperator:
    """F(t) = Σ_k s_k(t) A_k in real coordinates, one shared sparsity pattern.

    Attributes:
        basis: the product basis.
        formulation: ``plain``, ``static`` or ``dynamic``.
        params: particle parameters (time unit τ_N = params.tau_n).
        axes: field components included (``"z"`` in the sector, ``"xyz"`` in the full basis).
        matrices: real CSR matrices A_k (units 1/τ_N).
        terms: label of each A_k: ``"1"``, ``"xi_a"``, ``"xi_a*xi_b"``, ``"dxi_a"``.
        precession: whether the precession terms are included.
        projector: (u, g1) of the conservation projector (static formulation) or None.
    """

    basis: ProductBasis
    formulation: str
    params: ParticleParameters
    axes: str
    matrices: list[sp.csr_matrix]
    terms: list[str]
    precession: bool = True
    projector: tuple[np.ndarray, np.ndarray] | None = None
    _petsc: dict = field(default_factory=dict, repr=False)

    @property
    def size(self) -> int:
        return self.basis.size

    def coefficients(self, xi: np.ndarray, dxi: np.ndarray) -> np.ndarray:
        """s_k for field ξ (3-vector) and dξ/d(t/τ_N) (3-vector)."""
        idx = {"x": 0, "y": 1, "z": 2}
        out = np.empty(len(self.terms))
        for k, term in enumerate(self.terms):
            if term == "1":
                out[k] = 1.0
            elif term.startswith("dxi_"):
                out[k] = dxi[idx[term[4]]]
            elif "*" in term:
                a, b = term.split("*")
                out[k] = xi[idx[a[3]]] * xi[idx[b[3]]]
            else:
                out[k] = xi[idx[term[3]]]
        return out

    def matrix(self, xi: np.ndarray, dxi: np.ndarray | None = None) -> sp.csr_matrix:
        """F for a frozen field ξ (and rate dξ, default 0) as a scipy CSR matrix."""
        s = self.coefficients(np.asarray(xi, float), np.zeros(3) if dxi is None else dxi)
        out = self.matrices[0] * s[0]
        for sk, a in zip(s[1:], self.matrices[1:], strict=True):
            out = out + sk * a
        return out.tocsr()

    def petsc_matrices(self, comm=None):
        """The A_k as PETSc AIJ matrices (same pattern) on ``comm`` (default COMM_SELF)."""
        from petsc4py import PETSc

        comm = comm or PETSc.COMM_SELF
        key = id(comm)
        if key not in self._petsc:
            mats = []
            for a in self.matrices:
                mat = PETSc.Mat().createAIJ(
                    size=a.shape, csr=(a.indptr, a.indices, a.data), comm=comm
                )
                mat.assemble()
                mats.append(mat)
            self._petsc[key] = mats
        return self._petsc[key]


def _common_pattern(mats: list[sp.csr_matrix]) -> list[sp.csr_matrix]:
    """Put every matrix on the union pattern (with the full diagonal), explicit zeros kept."""
    n = mats[0].shape[0]
    pattern = sp.identity(n, format="csr")
    for a in mats:
        pattern = pattern + abs(a)
    pattern = sp.csr_matrix(pattern)
    pattern.sort_indices()
    out = []
    rows = np.repeat(np.arange(n), np.diff(pattern.indptr))
    for a in mats:
        vals = np.asarray(sp.csr_matrix(a)[rows, pattern.indices]).ravel()
        out.append(sp.csr_matrix((vals, pattern.indices.copy(), pattern.indptr.copy()), (n, n)))
    return out


def _plain(b: _Builder, p, axes, dn, db, prec):
    lam_m, lam_n = b.m_op(lam(b.basis.n_m)), b.n_op(lam(b.basis.n_n))
    eye = sp.identity(b.basis.size, format="csr")
    s = p.sigma
    g = 1.5 * b.poly(x_power(2)) - 0.5 * eye
    f0 = -dn * lam_m - db * lam_n
    f0 = f0 + (s / 3) * dn * (lam_m @ g - g @ lam_m + 6 * g)
    f0 = f0 + (s / 3) * db * (lam_n @ g - g @ lam_n + 6 * g)
    if prec:
        f0 = f0 - 1j * (s / p.alpha) * b.anisotropy_precession()
    mats, terms = [f0], ["1"]
    lm = lam(b.basis.n_m)
    for a in axes:
        ma = b.mult(a)
        single = (dn / 2) * (lm @ ma - ma @ lm + 2 * ma)
        if prec:
            single = single - 1j * (dn / p.alpha) * b.ang(a)
        mats.append(b.m_op(single))
        terms.append(f"xi_{a}")
    return mats, terms


def _symmetrised_base(b: _Builder, p, dn, db, prec):
    lam_m, lam_n = b.m_op(lam(b.basis.n_m)), b.n_op(lam(b.basis.n_n))
    eye = sp.identity(b.basis.size, format="csr")
    s = p.sigma
    pot = s * eye + (s * s - 3 * s) * b.poly(x_power(2)) - s * s * b.poly(x_power(4))
    f0 = -dn * lam_m - db * lam_n - (dn + db) * pot
    if prec:
        f0 = f0 - 1j * (s / p.alpha) * b.anisotropy_precession()
    return f0


def _field_potential_terms(b: _Builder, s: float, a: str):
    """σ[x n_a] − σ[x² m_a]."""
    return s * b.poly(_mul(_X, _n(a))) - s * b.poly(_mul(x_power(2), _m(a)))


def _static(b: _Builder, p, axes, dn, db, prec):
    plain, _ = _plain(b, p, axes, dn, db, prec)
    mats, terms = [_symmetrised_base(b, p, dn, db, prec)], ["1"]
    for a, fa in zip(axes, plain[1:], strict=True):
        extra = -dn * _field_potential_terms(b, p.sigma, a)
        if prec:
            extra = extra + (p.sigma / (2 * p.alpha)) * b.poly(_mul(_X, _cross_nm(a)))
        mats.append(fa + extra)
        terms.append(f"xi_{a}")
    return mats, terms


def _dynamic(b: _Builder, p, axes, dn, db, prec):
    mats, terms = [_symmetrised_base(b, p, dn, db, prec)], ["1"]
    for a in axes:
        ma = b.m_op(b.mult(a))
        fa = -dn * (_field_potential_terms(b, p.sigma, a) - ma)
        if prec:
            fa = fa - 1j * (dn / p.alpha) * b.m_op(b.ang(a))
        mats.append(fa)
        terms.append(f"xi_{a}")
    nm = b.basis.n_m
    for a, c in itertools.combinations_with_replacement(axes, 2):
        prod = sum(
            c1 * c2 * monomial(o1 + o2, nm) for (c1, o1), (c2, o2) in
            itertools.product(_CART[a], _CART[c])
        )
        eye = sp.identity((nm + 1) ** 2) if a == c else 0 * prod
        mult = 1.0 if a == c else 2.0  # ξ_aξ_c + ξ_cξ_a
        mats.append(b.m_op(-mult * (dn / 4) * (eye - prod)))
        terms.append(f"xi_{a}*xi_{c}")
    for a in axes:
        mats.append(b.m_op(-0.5 * b.mult(a)))
        terms.append(f"dxi_{a}")
    return mats, terms


def assemble_operator(
    params: ParticleParameters,
    basis: ProductBasis,
    formulation: str = "dynamic",
    precession: bool = True,
) -> AffineOperator:
    """Assemble every affine term of F(t) once for one particle.

    Args:
        params: particle parameters.
        basis: truncation and symmetry sector; the sector implies a field along z.
        formulation: ``plain``, ``static`` (with the conservation projector) or
            ``dynamic`` (see the module docstring).
        precession: include the precession terms.

    Returns:
        The operator with real matrices on one sparsity pattern.
    """
    if formulation not in FORMULATIONS:
        raise ValueError(f"formulation must be one of {FORMULATIONS}, got {formulation!r}")
    dn, db = 0.5, 0.5 * params.tau_n / params.tau_b
    axes = "z" if basis.kind == "sector" else "xyz"
    build = {"plain": _plain, "static": _static, "dynamic": _dynamic}[formulation]
    b = _Builder(basis)
    mats, terms = build(b, params, axes, dn, db, precession)
    real = [basis.to_real(a) for a in mats]
    projector = None
    if formulation == "static":
        from llgfem.brownneel.observables import weight_vector

        g1 = weight_vector(params, basis, "1", xi=0.0, sigma_factor=0.5)
        u = g1 / float(g1 @ g1)
        real, projector = _project(real, u, g1), (u, g1)
    return AffineOperator(
        basis, formulation, params, axes, _common_pattern(real), terms, precession, projector
    )


def _project(mats, u, g1):
    """P A = A − u (g1ᵀ A), kept sparse (u and g1 have few non-zeros)."""
    us = sp.csr_matrix(np.where(np.abs(u) > 1e-300, u, 0.0)[:, None])
    gs = sp.csr_matrix(np.where(np.abs(g1) > 1e-300, g1, 0.0)[None, :])
    return [sp.csr_matrix(a - us @ (gs @ a)) for a in mats]


def scaled_rate(params: ParticleParameters) -> float:
    """Conversion factor from 1/τ_N units to 1/s."""
    return 1.0 / params.tau_n


