r"""Proper orthogonal decomposition of a snapshot matrix (paper 000, eq. (1)).

Given snapshots Y = [y_1 … y_M] ∈ R^{N×M} and an optional symmetric positive definite inner
product matrix W (default I), the POD basis U_r = [φ_1 … φ_r] minimises

    Σ_k ‖y_k − Σ_i (φ_iᵀ W y_k) φ_i‖²_W   subject to  U_rᵀ W U_r = I.

With W = L Lᵀ (Cholesky), the thin SVD L^T Y = Ũ Σ Vᵀ gives U = L^{-T} Ũ; for W = I this is
the SVD of Y itself (LAPACK gesdd through SciPy).  Truncation by rank r, by a relative singular
value tolerance (σ_i > rtol σ_1) or by energy (smallest r with Σ_{i≤r} σ_i² ≥ energy Σ σ_i²);
the discarded energy Σ_{i>r} σ_i² / Σ σ_i² is returned.

Notation: N state dimension, M number of snapshots, r POD rank, σ_i singular values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

__all__ = ["PODResult", "pod"]


@dataclass(frozen=True)
class PODResult:
    """POD modes and spectrum.

    Attributes:
        modes: U_r, shape (N, r), orthonormal in the chosen inner product.
        singular_values: all singular values σ_i (descending).
        rank: r.
        discarded_energy: Σ_{i>r} σ_i² / Σ σ_i².
    """

    modes: np.ndarray
    singular_values: np.ndarray
    rank: int
    discarded_energy: float

    def truncate(self, rank: int) -> PODResult:
        """The leading ``rank`` modes of this basis."""
        if not 1 <= rank <= self.rank:
            raise ValueError(f"rank must be in [1, {self.rank}], got {rank}")
        s2 = self.singular_values**2
        disc = float(s2[rank:].sum() / s2.sum()) if s2.sum() > 0 else 0.0
        return PODResult(self.modes[:, :rank], self.singular_values, rank, disc)


def _choose_rank(s: np.ndarray, rank, rtol, energy) -> int:
    r = s.size
    if rank is not None:
        if rank < 1:
            raise ValueError(f"rank must be >= 1, got {rank}")
        r = min(r, int(rank))
    if rtol is not None:
        r = min(r, max(1, int(np.count_nonzero(s > rtol * s[0]))))
    if energy is not None:
        if not 0 < energy <= 1:
            raise ValueError(f"energy must be in (0, 1], got {energy}")
        cum = np.cumsum(s**2) / np.sum(s**2)
        r = min(r, int(np.searchsorted(cum, energy * (1 - 1e-15)) + 1))
    return r


def pod(
    snapshots: np.ndarray,
    rank: int | None = None,
    rtol: float | None = None,
    energy: float | None = None,
    inner: np.ndarray | sp.spmatrix | None = None,
) -> PODResult:
    """POD basis of a snapshot matrix.

    Args:
        snapshots: Y, shape (N, M), one snapshot per column.
        rank: keep at most this many modes.
        rtol: keep modes with σ_i > rtol·σ_1.
        energy: keep the fewest modes capturing this fraction of Σσ².
        inner: SPD inner-product matrix W (N×N, dense or sparse); default Euclidean.

    Returns:
        The modes (orthonormal in W), all singular values, the rank and the discarded energy.
        With no criterion, every mode with a numerically non-zero singular value is kept.
    """
    y = np.asarray(snapshots, dtype=float)
    if y.ndim != 2 or y.size == 0:
        raise ValueError(f"snapshots must be a non-empty 2-D array, got shape {y.shape}")
    chol = None
    if inner is not None:
        w = inner.toarray() if sp.issparse(inner) else np.asarray(inner, dtype=float)
        chol = sla.cholesky(w, lower=True)
        y = chol.T @ y
    u, s, _ = sla.svd(y, full_matrices=False, lapack_driver="gesdd")
    if rank is None and rtol is None and energy is None:
        rtol = max(y.shape) * np.finfo(float).eps
    r = _choose_rank(s, rank, rtol, energy)
    modes = u[:, :r]
    if chol is not None:
        modes = sla.solve_triangular(chol.T, modes, lower=False)
    s2 = s**2
    disc = float(s2[r:].sum() / s2.sum()) if s2.sum() > 0 else 0.0
    return PODResult(modes, s, r, disc)
