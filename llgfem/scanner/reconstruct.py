r"""Closing the loop: simulated measurement of a phantom and its reconstruction.

Measurement of a concentration c (relative to the calibration voxel, one value per position)
with the system matrix S (P, C, K) and white receive noise (standard deviation σ_l per time
sample → complex standard deviation σ_l √V per rfft bin):

    v[l, k] = Σ_p S[p, l, k] c_p + ε[l, k].

The frequencies used are those with SNR[l, k] >= ``snr_threshold`` and f_k >= ``min_frequency``
(the drive feed-through band is filtered in real scanners).  With A the real form of the
selected rows (real and imaginary parts stacked, M × P) the Tikhonov problem is

    min_c ||A c − b||² + λ ||c||²,    λ = ``regularisation`` · ||A||_F² / P

(MPIReco's relative scaling).  The regularised Kaczmarz method (Dax's augmented system) sweeps
the rows j = 1..M with an auxiliary u ∈ R^M:

    β = (b_j − a_j·c − √λ u_j) / (||a_j||² + λ),   c ← c + β a_j,   u_j ← u_j + √λ β,

which converges to the Tikhonov solution; ``nonnegative`` projects c onto c >= 0 after every
sweep (as MPI reconstructions do).  The direct solution (AᵀA + λI) c = Aᵀb and a Landweber
iteration on the stacked operator [A; √λ I] (:func:`llgfem.regularisation.landweber`) are the
cross-checks.

Notation: ``A`` real system matrix rows, ``b`` data, ``c`` concentration, ``lam`` λ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llgfem.config import ConfigError

__all__ = ["ReconstructionConfig", "kaczmarz_tikhonov", "landweber_tikhonov", "phantom",
           "real_rows", "relative_error", "select_rows", "simulate_measurement",
           "tikhonov_direct"]

PHANTOMS = ("dots", "cross", "ring")
METHODS = ("kaczmarz", "direct", "landweber")


@dataclass(frozen=True)
class ReconstructionConfig:
    """The ``[reconstruction]`` table.

    Attributes:
        enabled: simulate and reconstruct a phantom.
        phantom: ``dots``, ``cross`` or ``ring`` (shapes scaled to the field of view).
        method: ``kaczmarz`` (default), ``direct`` or ``landweber``.
        snr_threshold: use frequencies with SNR >= this.
        min_frequency: and f >= this [Hz].
        regularisation: relative Tikhonov parameter (λ = value · ||A||_F²/P).
        iterations: Kaczmarz sweeps / Landweber iterations.
        nonnegative: project onto c >= 0 after every sweep.
        noise_level: measurement noise as a multiple of the calibration noise σ.
        seed: noise seed.
    """

    enabled: bool = True
    phantom: str = "dots"
    method: str = "kaczmarz"
    snr_threshold: float = 5.0
    min_frequency: float = 30e3
    regularisation: float = 1e-3
    iterations: int = 20
    nonnegative: bool = True
    noise_level: float = 1.0
    seed: int = 0

    def validate(self, where: str) -> None:
        if self.phantom not in PHANTOMS:
            raise ConfigError(f"{where}.phantom: {self.phantom!r} not in {list(PHANTOMS)}")
        if self.method not in METHODS:
            raise ConfigError(f"{where}.method: {self.method!r} not in {list(METHODS)}")
        for key in ("snr_threshold", "min_frequency", "regularisation", "noise_level"):
            if not getattr(self, key) >= 0:
                raise ConfigError(f"{where}.{key}: must be >= 0")
        if self.iterations < 1:
            raise ConfigError(f"{where}.iterations: must be >= 1")


def phantom(kind: str, positions: np.ndarray, fov, center) -> np.ndarray:
    """Concentration (P,) of a simple phantom on the calibration positions (values 0 or 1)."""
    w = np.where(np.asarray(fov, float) > 0, fov, 1.0)
    r = (np.asarray(positions, float) - np.asarray(center, float)) / w  # in [-1/2, 1/2]
    x, y = r[:, 0], r[:, 1]
    flat = np.ptp(positions[:, 1]) == 0
    if kind == "dots":
        if flat:
            return ((np.abs(x + 0.2) < 0.08) | (np.abs(x - 0.18) < 0.12)).astype(float)
        return ((np.hypot(x + 0.18, y + 0.12) < 0.13)
                | (np.hypot(x - 0.2, y - 0.18) < 0.09)).astype(float)
    if kind == "cross":
        return ((np.abs(x) < 0.07) | (np.abs(y) < 0.07) & ~flat).astype(float)
    rad = np.hypot(x, 0 if flat else y)
    return ((rad > 0.18) & (rad < 0.3)).astype(float)


def select_rows(snr: np.ndarray, frequencies: np.ndarray, threshold: float,
                min_frequency: float) -> np.ndarray:
    """Boolean mask (C, K) of the frequencies used."""
    return (snr >= threshold) & (frequencies[None, :] >= min_frequency)


def real_rows(S: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A (M, P): real and imaginary parts of the selected rows of S (P, C, K)."""
    rows = S[:, mask].T  # (n_sel, P)
    return np.vstack([rows.real, rows.imag])


def simulate_measurement(S: np.ndarray, c: np.ndarray, sigma: np.ndarray, num_samples: int,
                         rng: np.random.Generator) -> np.ndarray:
    """v[l, k] = Σ_p S[p, l, k] c_p + ε, ε complex normal with std σ_l √V, shape (C, K)."""
    v = np.einsum("plk,p->lk", S, c)
    scale = (np.asarray(sigma) * np.sqrt(num_samples / 2))[:, None]
    return v + scale * (rng.standard_normal(v.shape) + 1j * rng.standard_normal(v.shape))


def tikhonov_lambda(A: np.ndarray, relative: float) -> float:
    """λ = relative · ||A||_F² / P."""
    return relative * float(np.sum(A * A)) / A.shape[1]


def kaczmarz_tikhonov(A: np.ndarray, b: np.ndarray, lam: float, sweeps: int,
                      nonnegative: bool = False) -> np.ndarray:
    """Regularised Kaczmarz (augmented system); converges to the Tikhonov solution."""
    m, n = A.shape
    c, u = np.zeros(n), np.zeros(m)
    norms = np.einsum("ij,ij->i", A, A) + lam
    sq = np.sqrt(lam)
    for _ in range(sweeps):
        for j in range(m):
            if norms[j] == 0:
                continue
            beta = (b[j] - A[j] @ c - sq * u[j]) / norms[j]
            c += beta * A[j]
            u[j] += sq * beta
        if nonnegative:
            np.maximum(c, 0.0, out=c)
    return c


def tikhonov_direct(A: np.ndarray, b: np.ndarray, lam: float) -> np.ndarray:
    """(AᵀA + λI)⁻¹ Aᵀb."""
    n = A.shape[1]
    return np.linalg.solve(A.T @ A + lam * np.eye(n), A.T @ b)


def landweber_tikhonov(A: np.ndarray, b: np.ndarray, lam: float, iterations: int) -> np.ndarray:
    """Landweber (:func:`llgfem.regularisation.landweber`) on [A; √λ I] c = [b; 0]."""
    from llgfem.regularisation import ConstantStep, MaxIterations, landweber
    from llgfem.regularisation.testing import MatrixOperator

    n = A.shape[1]
    aug = np.vstack([A, np.sqrt(lam) * np.eye(n)])
    op = MatrixOperator(aug)
    mu = 1.0 / np.linalg.norm(aug, 2) ** 2
    res = landweber(op, np.concatenate([b, np.zeros(n)]), np.zeros(n), step=ConstantStep(mu),
                    stop=MaxIterations(iterations))
    return res.x


def relative_error(c: np.ndarray, ref: np.ndarray) -> float:
    """||c − ref|| / ||ref||."""
    return float(np.linalg.norm(c - ref) / np.linalg.norm(ref))


def reconstruct(S: np.ndarray, snr_: np.ndarray, frequencies: np.ndarray, sigma: np.ndarray,
                num_samples: int, positions: np.ndarray, fov, center,
                cfg: ReconstructionConfig) -> dict:
    """Phantom → noisy measurement → reconstruction; returns arrays and the relative error."""
    c_true = phantom(cfg.phantom, positions, fov, center)
    if not c_true.any():
        raise ConfigError(f"reconstruction.phantom: {cfg.phantom!r} covers no calibration "
                          "position of this grid (refine calibration.size)")
    mask = select_rows(snr_, frequencies, cfg.snr_threshold, cfg.min_frequency)
    if not mask.any():
        raise ConfigError("reconstruction.snr_threshold: no frequency passes the SNR threshold "
                          "and min_frequency")
    rng = np.random.default_rng(cfg.seed)
    v = simulate_measurement(S, c_true, cfg.noise_level * np.asarray(sigma), num_samples, rng)
    A = real_rows(S, mask)
    b = np.concatenate([v[mask].real, v[mask].imag])
    scale = np.abs(A).max()
    A, b = A / scale, b / scale
    lam = tikhonov_lambda(A, cfg.regularisation)
    if cfg.method == "kaczmarz":
        c = kaczmarz_tikhonov(A, b, lam, cfg.iterations, cfg.nonnegative)
    elif cfg.method == "landweber":
        c = landweber_tikhonov(A, b, lam, cfg.iterations)
    else:
        c = tikhonov_direct(A, b, lam)
    return {"c_true": c_true, "c": c, "rel_error": relative_error(c, c_true),
            "frequencies_used": int(mask.sum()), "rows": int(A.shape[0]), "lambda": lam}
