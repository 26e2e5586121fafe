r"""Parameter-affine POD-Galerkin ROMs and greedy selection of training parameters.

Full model y' = F(t; μ) y with F(t; μ) = Σ_k c_k(t; μ) A_k: the matrices A_k do not depend on
the parameter μ (for the Brown–Néel Lissajous model μ is the offset field G x, i.e. the position in
the field of view, and c_k ∈ {1, ξ_a, ξ_aξ_b, ξ̇_a, κ} are functions of ξ(t; μ)).  With an
orthonormal basis U (UᵀU = I):

    Â_k = Uᵀ A_k U   (projected once),   a' = Σ_k c_k(t; μ) Â_k a,   ŷ = U a,

so Uᵀ F(t; μ) U = Σ_k c_k(t; μ) Â_k for every μ and t: one projection serves every parameter.
An optional output map G (n_out × n) is reduced to Ψ = G U alongside.

Residual indicator (offline/online split): with z = (c_1 a, …, c_K a) and the Gram blocks
M_kl = (A_k U)ᵀ(A_l U),

    ‖F U a − U ȧ‖² = zᵀ M z − ‖ȧ‖²,   ȧ = Σ_k c_k Â_k a,

so the residual of a reduced trajectory costs O(K² r²) per sample.  The greedy loop
(``greedy_selection``) starts from one training parameter, builds the POD basis of the
snapshots of the selected parameters, and adds the candidate with the largest indicator until
the indicator falls below ``tol`` or ``max_selected`` are chosen.

Notation: N full size, r reduced size, K number of affine terms, μ parameter.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from llgfem.rom.galerkin import ReducedModel
from llgfem.rom.pod import PODResult, pod

__all__ = [
    "GreedyResult",
    "ParametricReductor",
    "ParametricROM",
    "greedy_selection",
]


@dataclass
class ParametricROM(ReducedModel):
    """Reduced terms Â_k, the basis U, the reduced output map Ψ = G U and residual Gram blocks.

    Attributes:
        psi: Ψ = G U (n_out × r) or None.
        gram: M_kl = (A_k U)ᵀ(A_l U), shape (K, K, r, r), or None.
    """

    psi: np.ndarray | None = None
    gram: np.ndarray | None = None
    seconds: float = 0.0

    def operator(self, c: np.ndarray) -> np.ndarray:
        """Σ_k c_k Â_k for one coefficient vector."""
        return sum(ck * a for ck, a in zip(c, self.matrices, strict=True))

    def rates(self, c: np.ndarray, a: np.ndarray) -> np.ndarray:
        """ȧ(t_i) = Σ_k c_k(t_i) Â_k a(t_i) for c (n_t, K), a (r, n_t)."""
        out = np.zeros_like(a)
        for ck, ak in zip(c.T, self.matrices, strict=True):
            if np.any(ck):
                out += ck[None, :] * (ak @ a)
        return out

    def residual(self, c: np.ndarray, a: np.ndarray) -> np.ndarray:
        """‖F U a − U ȧ‖ at every sample (needs ``gram``), shape (n_t,)."""
        if self.gram is None:
            raise ValueError("this reduced model was built without residual Gram blocks")
        active = np.flatnonzero(np.any(c != 0, axis=0))
        z = c[:, active].T[:, None, :] * a[None, :, :]  # (K', r, n_t)
        m = self.gram[np.ix_(active, active)]
        full = np.einsum("kit,klij,ljt->t", z, m, z, optimize=True)
        adot = self.rates(c, a)
        return np.sqrt(np.maximum(full - np.einsum("it,it->t", adot, adot), 0.0))


class ParametricReductor:
    """Projects every parameter-independent term A_k once (and the output map, if any).

    Args:
        matrices: the A_k (SciPy sparse or dense, N × N).
        output_map: G (n_out × N) or None.
        residual: also build the Gram blocks of the residual indicator.
    """

    def __init__(self, matrices: Sequence, output_map: np.ndarray | None = None,
                 residual: bool = True):
        self.matrices = [sp.csr_matrix(a) for a in matrices]
        self.output_map = output_map
        self.with_residual = residual

    def reduce(self, basis: np.ndarray) -> ParametricROM:
        """Galerkin projection onto the (orthonormal) columns of ``basis``."""
        t0 = time.perf_counter()
        u = np.asarray(basis, float)
        au = [a @ u for a in self.matrices]
        reduced = [u.T @ x for x in au]
        psi = None if self.output_map is None else self.output_map @ u
        gram = None
        if self.with_residual:
            k = len(au)
            gram = np.empty((k, k, u.shape[1], u.shape[1]))
            for i in range(k):
                for j in range(i, k):
                    gram[i, j] = au[i].T @ au[j]
                    gram[j, i] = gram[i, j].T
        return ParametricROM(reduced, u, psi=psi, gram=gram,
                             seconds=time.perf_counter() - t0)


@dataclass
class GreedyResult:
    """Outcome of :func:`greedy_selection`.

    Attributes:
        selected: indices of the chosen training parameters, in order.
        indicators: per iteration, the indicator of every candidate (NaN for selected ones).
        pod: the POD of the final snapshot set.
        rom: the final reduced model.
        seconds: wall time (snapshots, POD, projections, indicators).
    """

    selected: list[int]
    indicators: list[np.ndarray]
    pod: PODResult
    rom: ParametricROM
    seconds: float
    history: list[dict] = field(default_factory=list)


def greedy_selection(n_candidates: int, snapshots: Callable[[int], np.ndarray],
                     indicator: Callable[[ParametricROM, int], float],
                     reductor: ParametricReductor, first: int = 0, max_selected: int = 6,
                     tol: float = 0.0, rank: int | None = None,
                     energy: float | None = None) -> GreedyResult:
    """Greedy choice of training parameters for one POD basis.

    Args:
        n_candidates: number of candidate parameters (indexed 0..n−1).
        snapshots: i -> snapshot matrix (N × n_s) of candidate i (a FOM run).
        indicator: (rom, i) -> error indicator of the ROM at candidate i.
        reductor: projects the affine terms onto a basis.
        first: the first training parameter.
        max_selected: at most this many training parameters.
        tol: stop when the largest indicator is below ``tol``.
        rank, energy: POD truncation (see :func:`llgfem.rom.pod.pod`).

    Returns:
        The selection, the indicator history, the final POD and ROM.
    """
    if not 0 <= first < n_candidates:
        raise ValueError(f"first must be in [0, {n_candidates}), got {first}")
    t0 = time.perf_counter()
    selected, blocks, history, ind_hist = [first], [snapshots(first)], [], []
    while True:
        basis = pod(np.hstack(blocks), rank=rank, energy=energy)
        rom = reductor.reduce(basis.modes)
        values = np.full(n_candidates, np.nan)
        for i in range(n_candidates):
            if i not in selected:
                values[i] = indicator(rom, i)
        ind_hist.append(values)
        worst = int(np.nanargmax(values)) if np.any(np.isfinite(values)) else -1
        history.append({"selected": list(selected), "rank": basis.rank,
                        "max_indicator": float(np.nanmax(values)) if worst >= 0 else 0.0,
                        "argmax": worst})
        if worst < 0 or values[worst] <= tol or len(selected) >= max_selected:
            break
        selected.append(worst)
        blocks.append(snapshots(worst))
    return GreedyResult(selected, ind_hist, basis, rom, time.perf_counter() - t0, history)
