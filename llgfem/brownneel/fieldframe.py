r"""Field-frame preconditioner of the Lissajous FOM: exact rotation + axial-symmetry blocks.

Every term of the Brown–Néel operator is invariant under a joint rotation of both spheres
except the field, so for any rotation R (D = D_m(R) ⊗ D_n(R), real Wigner matrices, orthogonal)

    F(Rξ, Rξ̇, κ) = D F(ξ, ξ̇, κ) Dᵀ.

With R ẑ = ξ/|ξ| the BDF matrix becomes a I − F(ξ(t)) = D (a I − F(|ξ|ẑ, Rᵀξ̇, κ)) Dᵀ.  In the
field frame the field and the ξ̇-component along it are symmetric about z, so in complex
coordinates the matrix splits into blocks of fixed K = μ + M (45 blocks of ≤ 608 unknowns at
(12, 10), 11 154 unknowns; 53 of ≤ 959 at (14, 12)).  The preconditioner

    P⁻¹ = D Q (a I − G_c(|ξ|, ξ̇_∥, κ))⁻¹ Qᴴ Dᵀ,   G_c block-diagonal in K,

is exact except for the ξ̇ component perpendicular to the field (−½ ξ̇_⊥·[m], small against a
for the drive frequencies), so GMRES needs a few iterations.  The blocks K ≥ 0 are factorised
(dense complex LU); K < 0 follow from c_{l,−μ;L,−M} = (−1)^{μ+M} c*_{lμ;LM} (real states).
D comes from quadrature of the real harmonics (exact), once per Jacobian; the factorisation is
reused while the BDF shift a, |ξ|, ξ̇_∥ and κ stay close (``reuse``).

Notation: ξ = μB/k_BT, ξ̇ its rate per τ_N, κ the mass shift, a the BDF shift, Q the unitary map
from complex to real coordinates (``EvenBasis.real_transform``), K = μ + M.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.linalg import get_lapack_funcs

from llgfem.brownneel.basis import single_index
from llgfem.brownneel.lissajous import _real_harmonics, sphere_grid

__all__ = ["FieldFramePC", "ReuseRule", "real_rotation", "rotation_to"]


def rotation_to(direction: np.ndarray) -> np.ndarray:
    """A rotation matrix R with R ẑ = direction/|direction| (identity for a zero vector)."""
    d = np.asarray(direction, float)
    norm = np.linalg.norm(d)
    if norm == 0.0:
        return np.eye(3)
    d = d / norm
    theta, phi = np.arccos(np.clip(d[2], -1.0, 1.0)), np.arctan2(d[1], d[0])
    cz, sz, cy, sy = np.cos(phi), np.sin(phi), np.cos(theta), np.sin(theta)
    rz = np.array([[cz, -sz, 0.0], [sz, cz, 0.0], [0.0, 0.0, 1.0]])
    ry = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    return rz @ ry


class _SphereQuadrature:
    """Real harmonics on a sphere grid exact for products of degree ≤ 2·lmax."""

    def __init__(self, lmax: int):
        self.lmax = lmax
        theta, phi, omega, self.nodes = sphere_grid(2 * lmax + 1)
        self.weighted = _real_harmonics(lmax, theta, phi) * omega[:, None]
        degree, _ = single_index(lmax)
        self.same_degree = degree[:, None] == degree[None, :]

    def rotation(self, rot: np.ndarray) -> np.ndarray:
        """D with Σ_k r_k S_k(Rᵀx) = Σ_i (D r)_i S_i(x), block-diagonal by degree."""
        y = self.nodes @ rot  # rows: Rᵀ x_j
        theta = np.arccos(np.clip(y[:, 2], -1.0, 1.0))
        phi = np.arctan2(y[:, 1], y[:, 0])
        d = self.weighted.T @ _real_harmonics(self.lmax, theta, phi)
        return np.where(self.same_degree, d, 0.0)

    def joint(self, rot: np.ndarray, basis) -> tuple[np.ndarray, np.ndarray]:
        """(D_m, D_n) of an ``EvenBasis`` state Y ((N_m+1)², n_even): D y ↔ D_m Y D_nᵀ."""
        d = self.rotation(rot)
        nm, nn = (basis.n_m + 1) ** 2, (basis.n_n + 1) ** 2
        return d[:nm, :nm], d[:nn, :nn][np.ix_(basis.even, basis.even)]


def real_rotation(lmax: int, rot: np.ndarray) -> np.ndarray:
    """Real-harmonic rotation matrix D(R) of one sphere, degrees ≤ lmax (orthogonal)."""
    return _SphereQuadrature(lmax).rotation(np.asarray(rot, float))


@dataclass(frozen=True)
class ReuseRule:
    """When the field-frame factorisation is kept: relative change of a − κ below ``shift``,
    changes of |ξ| and ξ̇_∥ below ``xi`` (absolute) and at most ``max_its`` GMRES iterations
    in the previous solve.  ``shift = 0`` refactorises at every set-up."""

    shift: float = 0.05
    xi: float = 0.05
    max_its: int = 8


class FieldFramePC:
    """Python PC (petsc4py) for a I − F(t) of a :class:`LissajousModel` (module docstring).

    ``update(s, c, a)`` must be called with the coefficients and the BDF shift of every
    Jacobian (``integrate_petsc`` does so).  ``single``: factorise and solve the blocks in single
    precision (half the cost; GMRES restores double-precision residuals).
    """

    def __init__(self, model, reuse: ReuseRule = ReuseRule(), single: bool = True):
        self.model, self.reuse = model, reuse
        dtype = np.complex64 if single else np.complex128
        self._getrf, self._getrs = get_lapack_funcs(("getrf", "getrs"), dtype=dtype)
        basis = model.basis
        self.nm, self.ne = (basis.n_m + 1) ** 2, basis.even.size
        self.quad = _SphereQuadrature(max(basis.n_m, basis.n_n))
        self.table = model.table
        if basis.n_n > basis.n_m:
            raise ValueError("the field-frame preconditioner needs N_n <= N_m")
        self.q = basis.real_transform.tocsr()
        self.qh = self.q.conj().T.tocsr()
        self._sectors(basis)
        self._terms(model, dtype)
        self.restart()

    def restart(self) -> None:
        """Forget the factorisation and the counters (before a new run)."""
        self.outer = None
        self.state: dict = {}
        self.factor_key = None
        self.factorisations = 0
        self.applies = 0

    # -- set-up -----------------------------------------------------------------------------
    def _sectors(self, basis) -> None:
        idx = basis.index
        k_tot = idx[:, 1] + idx[:, 3]
        self.blocks = [np.flatnonzero(k_tot == k) for k in range(int(k_tot.max()) + 1)]
        lookup = {tuple(row): i for i, row in enumerate(idx.tolist())}
        neg = np.flatnonzero(k_tot < 0)
        self.neg = neg
        self.partner = np.array([lookup[(r[0], -r[1], r[2], -r[3])] for r in idx[neg].tolist()],
                                dtype=int)
        self.sign = (-1.0) ** k_tot[neg]

    def _terms(self, model, dtype) -> None:
        """Complex field-frame blocks of the z-terms: 1, ξ_z, ξ_z², ξ̇_z (dense per K ≥ 0)."""
        wanted = {("1", 0, 0): "one", ("xi", 2, 0): "xi", ("xixi", 2, 2): "xixi",
                  ("dxi", 2, 0): "dxi"}
        self.parts: dict[str, list[np.ndarray]] = {}
        for key, a in zip(self.table, model.matrices(), strict=True):
            name = wanted.get(key)
            if name is None:
                continue
            ac = (self.qh @ sp.csr_matrix(a, dtype=complex) @ self.q).tocsr()
            self.parts[name] = [ac[b][:, b].toarray().astype(dtype) for b in self.blocks]
        missing = set(wanted.values()) - set(self.parts)
        if missing:
            raise ValueError(f"operator lacks the field-frame terms {sorted(missing)}")

    # -- coefficients -----------------------------------------------------------------------
    def update(self, s: float, c: np.ndarray, shift: float) -> None:
        """Record the coefficients c_k(s) and the BDF shift a of the next operator."""
        xi, dxi, kappa = np.zeros(3), np.zeros(3), 0.0
        for ck, (kind, a, _) in zip(c, self.table, strict=True):
            if kind == "xi":
                xi[a] = ck
            elif kind == "dxi":
                dxi[a] = ck
            elif kind == "shift":
                kappa = ck
        self.state = {"s": s, "xi": xi, "dxi": dxi, "kappa": kappa, "shift": shift}

    def setUp(self, pc):  # noqa: N802 (petsc4py API)
        if not self.state:
            raise RuntimeError("FieldFramePC.update() was not called before set-up")
        self.prepare(self.state["shift"])

    def prepare(self, shift: float) -> None:
        """Rotation for the recorded field and, if stale, the factorisation for shift a."""
        st = self.state
        rot = rotation_to(st["xi"])
        self.dm, self.dn = self.quad.joint(rot, self.model.basis)
        key = (shift - st["kappa"], float(np.linalg.norm(st["xi"])),
               float(rot[:, 2] @ st["dxi"]))
        if self._stale(key):
            self._factorise(*key)

    def _stale(self, key) -> bool:
        old, rule = self.factor_key, self.reuse
        if old is None:
            return True
        outer = self.outer
        if outer is not None and (outer.getConvergedReason() < 0
                                  or outer.getIterationNumber() > rule.max_its):
            return True
        return (abs(key[0] - old[0]) > rule.shift * abs(old[0])
                or abs(key[1] - old[1]) > rule.xi or abs(key[2] - old[2]) > rule.xi)

    def _factorise(self, shift, b, dxi_par) -> None:
        """LU of a I − G_c per block K ≥ 0 (``shift`` = a − κ)."""
        p = self.parts
        self.lu = []
        for k in range(len(self.blocks)):
            m = p["one"][k] + b * p["xi"][k]
            m += (b * b) * p["xixi"][k]
            m += dxi_par * p["dxi"][k]
            m *= -1.0
            m[np.diag_indices_from(m)] += shift
            lu, piv, info = self._getrf(m, overwrite_a=True)
            if info != 0:
                raise RuntimeError(f"field-frame block K = {k} is singular (getrf info {info})")
            self.lu.append((lu, piv))
        self.factor_key = (shift, b, dxi_par)
        self.factorisations += 1

    # -- application ------------------------------------------------------------------------
    def solve(self, x: np.ndarray) -> np.ndarray:
        """P⁻¹ x for a real vector x."""
        xr = (self.dm.T @ x.reshape(self.nm, self.ne) @ self.dn).ravel()
        c = self.qh @ xr
        y = np.empty_like(c)
        for blk, lu in zip(self.blocks, self.lu, strict=True):
            y[blk] = self._getrs(*lu, c[blk])[0]
        y[self.neg] = self.sign * np.conj(y[self.partner])
        yr = np.real(self.q @ y).reshape(self.nm, self.ne)
        return (self.dm @ yr @ self.dn.T).ravel()

    def apply(self, pc, x, y):
        y.array[:] = self.solve(x.array_r)
        self.applies += 1
