r"""Spherical-harmonic product basis for the coupled Brown–Néel Fokker–Planck equation.

The density p(m, n, t) on S² × S² is expanded in products of orthonormal complex spherical
harmonics (Condon–Shortley phase, scipy ``sph_harm_y`` convention)

    p = Σ c_{lμ;LM} Y_l^μ(m) Y_L^M(n),   l ≤ N_m, L ≤ N_n

with single-sphere index k(l, μ) = l² + l + μ.  All single-sphere blocks have closed forms
: Λ = diag(l(l+1)), multiplication by m_z, m_± = m_x ± i m_y and the angular momentum
L_z, L_±.  Products of multiplications (m_a m_b, …) are built *exactly*: every factor is
assembled on degree N + k − 1 and the product is cut back to degree N.

Product-space operators are sums of Kronecker terms A ⊗ B.  With the index lists (ka, kb) of
the kept product functions, the restricted Kronecker product is the Hadamard product
A[ka][:, ka] ∘ B[kb][:, kb], so no full (N_m+1)²(N_n+1)² matrix is ever formed.

Two index sets are provided:

* ``sector``: μ + M = 0 and L even — exact for a field along z and an isotropic/Boltzmann
  start (F commutes with J_z = L_z^m + L_z^n and with n → −n);
* ``full``: every product function (arbitrary 3-D fields).

Real coordinates.  Coefficients of a real p obey c_{l,−μ;L,−M} = (−1)^{μ+M} c*_{lμ;LM}.
In the sector the pair z = c_{l,k;L,−k}, z̄ = c_{l,−k;L,k} (k > 0) is replaced by
r₁ = (z + z̄)/√2, r₂ = i(z − z̄)/√2; in the full basis the real harmonics
S_l^m = (Y_l^{−m} + (−1)^m Y_l^m)/√2, S_l^{−m} = i(Y_l^{−m} − (−1)^m Y_l^m)/√2 are used on each
sphere.  Either way r = Q c with Q unitary and every operator becomes Q F Q^H, real.

Notation: N_m, N_n truncation degrees of the moment (m) and easy-axis (n) spheres;
ops ``"z"``, ``"+"``, ``"-"`` multiplication by m_z, m_+, m_−.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp

__all__ = [
    "ProductBasis",
    "angular_momentum",
    "lam",
    "monomial",
    "multiplication",
    "single_index",
    "single_real_transform",
]


def single_index(lmax: int) -> tuple[np.ndarray, np.ndarray]:
    """Degree l and order μ of every single-sphere index k = l² + l + μ, l ≤ lmax."""
    l = np.concatenate([np.full(2 * j + 1, j) for j in range(lmax + 1)])
    mu = np.concatenate([np.arange(-j, j + 1) for j in range(lmax + 1)])
    return l, mu


def _k(l: np.ndarray, mu: np.ndarray) -> np.ndarray:
    return l * l + l + mu


def lam(lmax: int) -> sp.csr_matrix:
    """Λ = diag(l(l+1)), so that the Laplace–Beltrami operator is Δ = −Λ."""
    l, _ = single_index(lmax)
    return sp.diags((l * (l + 1)).astype(float)).tocsr()


def _shift(lmax, rows_l, rows_mu, cols, vals) -> sp.csr_matrix:
    """Sparse matrix with entries vals at (k(rows_l, rows_mu), cols), dropping l' > lmax."""
    keep = (rows_l >= 0) & (rows_l <= lmax) & (np.abs(rows_mu) <= rows_l) & (vals != 0)
    n = (lmax + 1) ** 2
    rows = _k(rows_l[keep], rows_mu[keep])
    return sp.csr_matrix((vals[keep], (rows, cols[keep])), shape=(n, n))


def multiplication(op: str, lmax: int) -> sp.csr_matrix:
    """Matrix of multiplication by m_z (``"z"``), m_+ (``"+"``) or m_− (``"-"``), degree ≤ lmax.

    Closed forms (checked by quadrature in the tests); rows of degree lmax + 1 are dropped
    (exact truncation of a degree-1 multiplication).
    """
    l, mu = single_index(lmax)
    lf, mf = l.astype(float), mu.astype(float)
    cols = np.arange(l.size)
    with np.errstate(invalid="ignore", divide="ignore"):
        if op == "z":
            up = np.sqrt(((lf + 1) ** 2 - mf**2) / ((2 * lf + 1) * (2 * lf + 3)))
            dn = np.sqrt(np.maximum(lf**2 - mf**2, 0) / ((2 * lf - 1) * (2 * lf + 1)))
            ds = 0
        elif op == "+":
            up = -np.sqrt((lf + mf + 1) * (lf + mf + 2) / ((2 * lf + 1) * (2 * lf + 3)))
            dn = np.sqrt(np.maximum((lf - mf) * (lf - mf - 1), 0) / ((2 * lf - 1) * (2 * lf + 1)))
            ds = 1
        elif op == "-":
            up = np.sqrt((lf - mf + 1) * (lf - mf + 2) / ((2 * lf + 1) * (2 * lf + 3)))
            dn = -np.sqrt(np.maximum((lf + mf) * (lf + mf - 1), 0) / ((2 * lf - 1) * (2 * lf + 1)))
            ds = -1
        else:
            raise ValueError(f"unknown multiplication {op!r}; use 'z', '+' or '-'")
    dn = np.nan_to_num(dn)
    a = _shift(lmax, l + 1, mu + ds, cols, up)
    b = _shift(lmax, l - 1, mu + ds, cols, dn)
    return (a + b).tocsr()


def monomial(ops: str, lmax: int) -> sp.csr_matrix:
    """Exact matrix of the product of multiplications ``ops`` (e.g. ``"z+-"``) on degree ≤ lmax.

    Every factor is built on degree lmax + len(ops) − 1 and the product is cut back, which is
    exact (a product of already truncated matrices is wrong in the last row blocks).
    """
    n = (lmax + 1) ** 2
    if not ops:
        return sp.identity(n, format="csr")
    big = lmax + len(ops) - 1
    out = sp.identity((big + 1) ** 2, format="csr")
    for op in ops:
        out = multiplication(op, big) @ out
    return out[:n, :n].tocsr()


def angular_momentum(op: str, lmax: int) -> sp.csr_matrix:
    """L_z (``"z"``), L_+ (``"+"``) or L_− (``"-"``); R_a = i L_a is the rotation generator."""
    l, mu = single_index(lmax)
    lf, mf = l.astype(float), mu.astype(float)
    cols = np.arange(l.size)
    if op == "z":
        return sp.diags(mf.astype(float)).tocsr()
    if op == "+":
        return _shift(lmax, l, mu + 1, cols, np.sqrt((lf - mf) * (lf + mf + 1)))
    if op == "-":
        return _shift(lmax, l, mu - 1, cols, np.sqrt((lf + mf) * (lf - mf + 1)))
    raise ValueError(f"unknown angular momentum {op!r}; use 'z', '+' or '-'")


def single_real_transform(lmax: int) -> sp.csr_matrix:
    """Unitary T with real-harmonic coefficients r = T c on one sphere."""
    l, mu = single_index(lmax)
    rows, cols, vals = [], [], []
    s2 = 1 / np.sqrt(2)
    for k in range(l.size):
        lk, m = int(l[k]), int(mu[k])
        if m == 0:
            rows.append(k), cols.append(k), vals.append(1.0)
            continue
        a = abs(m)
        kp, kn = _k(lk, a), _k(lk, -a)  # S = A Y with A rows below; T = conj(A)
        sign = (-1) ** a
        if m > 0:
            entries = [(kn, s2), (kp, sign * s2)]
        else:
            entries = [(kn, 1j * s2), (kp, -1j * sign * s2)]
        for c, v in entries:
            rows.append(k), cols.append(c), vals.append(np.conj(v))
    n = l.size
    return sp.csr_matrix((np.array(vals, complex), (rows, cols)), shape=(n, n))


@dataclass(frozen=True)
class ProductBasis:
    """Truncated product basis (N_m, N_n) restricted to a symmetry ``kind`` (sector/full).

    Attributes:
        n_m: maximal degree on the moment sphere.
        n_n: maximal degree on the easy-axis sphere.
        kind: ``"sector"`` (μ + M = 0, L even; field along z) or ``"full"``.
    """

    n_m: int
    n_n: int
    kind: str = "sector"

    def __post_init__(self):
        if self.n_m < 1 or self.n_n < 0:
            raise ValueError(f"need N_m >= 1 and N_n >= 0, got ({self.n_m}, {self.n_n})")
        if self.kind not in ("sector", "full"):
            raise ValueError(f"kind must be 'sector' or 'full', got {self.kind!r}")

    @cached_property
    def index(self) -> np.ndarray:
        """Rows (l, μ, L, M) of the kept product functions, shape (n, 4)."""
        lm, mm = single_index(self.n_m)
        ln, mn = single_index(self.n_n)
        km, kn = np.meshgrid(np.arange(lm.size), np.arange(ln.size), indexing="ij")
        km, kn = km.ravel(), kn.ravel()
        idx = np.stack([lm[km], mm[km], ln[kn], mn[kn]], axis=1)
        if self.kind == "sector":
            idx = idx[(idx[:, 1] + idx[:, 3] == 0) & (idx[:, 2] % 2 == 0)]
        return idx

    @property
    def size(self) -> int:
        """Number of unknowns n."""
        return int(self.index.shape[0])

    @cached_property
    def ka(self) -> np.ndarray:
        """Single-sphere index on the m-sphere of every kept function."""
        return _k(self.index[:, 0], self.index[:, 1])

    @cached_property
    def kb(self) -> np.ndarray:
        """Single-sphere index on the n-sphere of every kept function."""
        return _k(self.index[:, 2], self.index[:, 3])

    def position(self, l: int, mu: int, big_l: int, big_m: int) -> int:
        """Position of the product function Y_l^μ Y_L^M in this basis (complex coordinates)."""
        hit = np.flatnonzero(
            (self.index[:, 0] == l) & (self.index[:, 1] == mu)
            & (self.index[:, 2] == big_l) & (self.index[:, 3] == big_m)
        )
        if hit.size != 1:
            raise KeyError(f"(l, μ, L, M) = {(l, mu, big_l, big_m)} not in the basis")
        return int(hit[0])

    def kron(self, a: sp.spmatrix, b: sp.spmatrix) -> sp.csr_matrix:
        """Restriction of A ⊗ B to the kept functions: A[ka][:, ka] ∘ B[kb][:, kb]."""
        if self.kind == "full":  # every product is kept, m index outer: the plain Kronecker
            return sp.kron(sp.csr_matrix(a), sp.csr_matrix(b), format="csr")
        a = sp.csr_matrix(a)[self.ka][:, self.ka]
        b = sp.csr_matrix(b)[self.kb][:, self.kb]
        return sp.csr_matrix(a.multiply(b))

    @cached_property
    def real_transform(self) -> sp.csr_matrix:
        """Unitary Q: real coordinates r = Q c of the complex coefficients c."""
        if self.kind == "full":
            return sp.kron(
                single_real_transform(self.n_m), single_real_transform(self.n_n), format="csr"
            )
        return self._sector_transform()

    def _sector_transform(self) -> sp.csr_matrix:
        idx = self.index
        lookup = {tuple(row): i for i, row in enumerate(idx.tolist())}
        rows, cols, vals = [], [], []
        s2 = 1 / np.sqrt(2)
        for i, (l, mu, big_l, big_m) in enumerate(idx.tolist()):
            if mu == 0:
                rows.append(i), cols.append(i), vals.append(1.0)
                continue
            k = abs(mu)
            iz = lookup[(l, k, big_l, -k)]
            izb = lookup[(l, -k, big_l, k)]
            if mu > 0:  # r1 = (z + zbar)/sqrt2 stored at the position of z
                entries = [(iz, s2), (izb, s2)]
            else:  # r2 = i (z - zbar)/sqrt2 stored at the position of zbar
                entries = [(iz, 1j * s2), (izb, -1j * s2)]
            for c, v in entries:
                rows.append(i), cols.append(c), vals.append(v)
        n = idx.shape[0]
        return sp.csr_matrix((np.array(vals, complex), (rows, cols)), shape=(n, n))

    def to_real(self, op: sp.spmatrix, tol: float = 1e-10) -> sp.csr_matrix:
        """Q F Q^H as a real sparse matrix (checks that the imaginary part vanishes)."""
        q = self.real_transform
        out = (q @ sp.csr_matrix(op) @ q.conj().T).tocsr()
        scale = max(abs(out).max(), 1.0) if out.nnz else 1.0
        if out.nnz and np.abs(out.data.imag).max() > tol * scale:
            raise ValueError("operator is not real in the real basis (not a real FPE operator?)")
        res = sp.csr_matrix(out.real)
        res.eliminate_zeros()
        return res

    def vector_to_real(self, c: np.ndarray) -> np.ndarray:
        """Real coordinates Q c of a coefficient vector of a real function."""
        r = self.real_transform @ np.asarray(c, dtype=complex)
        return np.real(r)

    def vector_from_real(self, r: np.ndarray) -> np.ndarray:
        """Complex coefficients Q^H r (works column-wise on arrays of shape (n, k))."""
        return self.real_transform.conj().T @ r
