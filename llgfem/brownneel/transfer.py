r"""Transfer of POD snapshots between particles by the ratio of Boltzmann weights.

In the dynamic (time-dependent symmetrised) formulation the state is q = p / w with
w = exp(½(ξ(t) m_z + σ x²)), x = m·n (the dynamic formulation of
:mod:`llgfem.brownneel.operators`).  The weight depends on the particle
(σ, and ξ per tesla), so snapshots q_A(t) of particle A are, even for identical densities p, a
*different* function than the states of particle B: a POD basis of A's snapshots reused directly
for B (the paper's experiment, done there in the unsymmetrised formulation) does not contain B's
quasi-static states and the reduced model fails (measured NRMSE 0.1–100, |⟨m_z⟩| > 1).

The map below rewrites each snapshot in B's variables under the assumption that both particles
are near their instantaneous Boltzmann state p ∝ w²:

    q_A(t_k)  ↦  exp(½[(σ_B − σ_A) X2 + (ξ_B(t_k) − ξ_A(t_k)) M_z]) q_A(t_k),

with X2 = [x²] and M_z = [m_z] the (exact) multiplication matrices, applied on a basis extended
by ``extra`` degrees and truncated back (M_z diagonalised once per (μ, L, M) block, so every
ξ difference costs only small dense products).  If q_A(t_k) = c·w_A(t_k) (equilibrium), the
image is c·w_B(t_k), B's equilibrium state, up to the truncation of that function; the
non-equilibrium part is carried along approximately.  No FOM
run of B is needed: the POD basis of the mapped snapshots is still built from A's data only,
and B's reduced operators are projected from B's matrices as usual.

Notation: σ = K V_c/(k_B T), ξ = μ B/(k_B T) (field along z), snapshots as columns.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import expm_multiply

from llgfem.brownneel.basis import ProductBasis, multiplication
from llgfem.brownneel.model import BrownNeelModel
from llgfem.brownneel.observables import EXTRA_DEGREES
from llgfem.brownneel.operators import _Builder, x_power

__all__ = ["TRANSFERS", "boltzmann_transfer", "boltzmann_transfer_3d", "transfer_snapshots"]

TRANSFERS = ("direct", "boltzmann")


def _embedding(basis: ProductBasis, ext: ProductBasis) -> sp.csr_matrix:
    """Real coordinates of ``basis`` -> real coordinates of the larger ``ext`` (orthonormal
    columns, so its transpose is the truncation back)."""
    lookup = {tuple(r): i for i, r in enumerate(ext.index.tolist())}
    pos = np.array([lookup[tuple(r)] for r in basis.index.tolist()])
    inject = sp.csr_matrix((np.ones(basis.size), (pos, np.arange(basis.size))),
                           shape=(ext.size, basis.size))
    emb = (ext.real_transform @ inject @ basis.real_transform.conj().T).tocsr()
    out = sp.csr_matrix(emb.real)
    out.eliminate_zeros()
    return out


class _WeightRatio:
    """exp(½[Δσ X2 + Δξ M_z]) on an extended basis, M_z diagonalised block by block."""

    def __init__(self, basis: ProductBasis, extra: int):
        ext = ProductBasis(basis.n_m + extra, basis.n_n + extra, basis.kind)
        self.emb = _embedding(basis, ext)
        self.x2 = sp.csr_matrix(ext.to_real(_Builder(ext).poly(x_power(2))))
        eye_n = sp.identity((ext.n_n + 1) ** 2, format="csr")
        mz = sp.csr_matrix(ext.to_real(ext.kron(multiplication("z", ext.n_m), eye_n)))
        # M_z only couples l -> l ± 1 inside one (μ, L, M) block: eigendecompose each block
        n_blocks, labels = connected_components(abs(mz) + sp.identity(ext.size), directed=False)
        self.blocks = []
        for b in range(n_blocks):
            idx = np.flatnonzero(labels == b)
            d, v = np.linalg.eigh(mz[idx][:, idx].toarray())
            self.blocks.append((idx, d, v))

    def apply(self, y: np.ndarray, dsigma: float, dxi: np.ndarray) -> np.ndarray:
        z = self.emb @ y
        if dsigma:
            z = expm_multiply(0.5 * dsigma * self.x2, z)
        if np.any(dxi):
            for idx, d, v in self.blocks:
                z[idx] = v @ (np.exp(0.5 * d[:, None] * dxi[None, :]) * (v.T @ z[idx]))
        return self.emb.T @ z


def boltzmann_transfer(source: BrownNeelModel, target: BrownNeelModel, snapshots: np.ndarray,
                       xi_source: np.ndarray, xi_target: np.ndarray,
                       extra: int = EXTRA_DEGREES) -> np.ndarray:
    """Map snapshots of ``source`` to ``target`` variables by the Boltzmann weight ratio.

    The exponential is applied on a basis extended by ``extra`` degrees in both spheres and
    the result truncated back, so an equilibrium state is mapped to the target's equilibrium
    state up to the truncation of the final function (not of every factor).

    Args:
        source, target: dynamic-formulation models with the same z-sector truncation.
        snapshots: states of ``source``, shape (n, n_t).
        xi_source, xi_target: ξ_z of each snapshot's time for the two particles, shape (n_t,).
        extra: extension degrees.

    Returns:
        The mapped snapshots, shape (n, n_t).
    """
    for m in (source, target):
        if m.formulation != "dynamic" or m.basis.kind != "sector":
            raise ValueError("boltzmann_transfer needs dynamic-formulation z-sector models")
    if (source.basis.n_m, source.basis.n_n) != (target.basis.n_m, target.basis.n_n):
        raise ValueError("source and target must share the truncation (N_m, N_n)")
    y = np.asarray(snapshots, float)
    if y.ndim != 2 or y.shape[0] != target.size or not (
            y.shape[1] == len(xi_source) == len(xi_target)):
        raise ValueError(f"shape mismatch: snapshots {y.shape}, {len(xi_source)} source and "
                         f"{len(xi_target)} target field values, n = {target.size}")
    dsigma = target.params.sigma - source.params.sigma
    dxi = np.asarray(xi_target, float) - np.asarray(xi_source, float)
    return _WeightRatio(target.basis, extra).apply(y, dsigma, dxi)


def transfer_snapshots(source_run, target_model: BrownNeelModel, target_drive,
                       kind: str = "boltzmann") -> np.ndarray:
    """Snapshots of a FOM run (``studies.FomRun``) expressed for another particle/drive.

    Args:
        source_run: the run whose states are the snapshots.
        target_model: the particle the basis will be used for.
        target_drive: its drive (ξ_B(t) is evaluated at the snapshot times).
        kind: ``direct`` (no change, the paper's reuse) or ``boltzmann``.
    """
    if kind not in TRANSFERS:
        raise ValueError(f"transfer must be one of {TRANSFERS}, got {kind!r}")
    y = source_run.traj.y
    if kind == "direct":
        return y
    t = source_run.traj.t
    return boltzmann_transfer(source_run.model, target_model, y,
                              source_run.model.xi_z(source_run.drive, t),
                              target_model.xi_z(target_drive, t))


def boltzmann_transfer_3d(source, target, snapshots: np.ndarray, fields: np.ndarray,
                          extra: int = EXTRA_DEGREES) -> np.ndarray:
    """The Boltzmann-ratio map for fields of any direction (``lissajous.LissajousModel``).

    q_A(t_k) ↦ exp(½[(σ_B − σ_A) X2 + (ξ_B(t_k) − ξ_A(t_k))·M]) q_A(t_k),  ξ_P = (μ_P/k_BT) B,

    on the even-L basis extended by ``extra`` degrees, truncated back.  X2 and M_a are
    multiplication operators and commute; the σ factor is one ``expm_multiply`` for all
    snapshots, the field factor acts on the m-sphere only (one dense single-sphere exponential
    of Σ_a Δξ_a M_a per snapshot, real coordinates).

    Args:
        source, target: Lissajous models with the same truncation.
        snapshots: states of ``source``, shape (n, n_t).
        fields: B(t_k) [T] of each snapshot, shape (n_t, 3).
        extra: extension degrees.

    Returns:
        The snapshots in ``target``'s variables, shape (n, n_t).
    """
    from scipy.linalg import expm

    from llgfem.brownneel.lissajous import EvenBasis

    if source.truncation != target.truncation:
        raise ValueError("source and target must share the truncation (N_m, N_n)")
    y = np.asarray(snapshots, float)
    b = np.atleast_2d(np.asarray(fields, float))
    if y.ndim != 2 or y.shape[0] != target.size or y.shape[1] != b.shape[0]:
        raise ValueError(f"shape mismatch: snapshots {y.shape}, fields {b.shape}, "
                         f"n = {target.size}")
    basis = target.basis
    ext = EvenBasis(basis.n_m + extra, basis.n_n + extra)
    emb = _embedding(basis, ext)
    z = emb @ y
    dsigma = target.params.sigma - source.params.sigma
    if dsigma:
        x2 = sp.csr_matrix(ext.to_real(_Builder(ext).poly(x_power(2))))
        z = expm_multiply(0.5 * dsigma * x2, z)
    dxi = (target.params.xi_per_tesla - source.params.xi_per_tesla) * b
    if np.any(dxi):
        t_m = ProductBasis(ext.n_m, 0, "full").real_transform  # single-sphere transform
        mult = []
        for op in ({"+": 0.5, "-": 0.5}, {"+": -0.5j, "-": 0.5j}, {"z": 1.0}):
            m = sum(c * multiplication(o, ext.n_m) for o, c in op.items())
            mult.append(np.real((t_m @ m @ t_m.conj().T).toarray()))
        nm = (ext.n_m + 1) ** 2
        zz = z.reshape(nm, -1, z.shape[1])
        for k in range(z.shape[1]):
            if np.any(dxi[k]):
                e = expm(0.5 * sum(d * m for d, m in zip(dxi[k], mult, strict=True)))
                zz[:, :, k] = e @ zz[:, :, k]
        z = zz.reshape(z.shape)
    return emb.T @ z
