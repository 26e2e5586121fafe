r"""Galerkin reduction of affine linear ODEs y' = Σ_k c_k(t) A_k y.

POD-Galerkin ROM of Gulsun, Alpman, Saritas (Int. J. Magn. Part. Imaging 2026), Sec. II; the
basis minimises the projection error of eq. (1) there (:func:`llgfem.rom.pod`).

With an orthonormal basis U ∈ R^{N×r} (Uᵀ U = I) and y ≈ U a:

    a' = Σ_k c_k(t) Â_k a,   Â_k = Uᵀ A_k U   (projected once, from the same PETSc matrices)
    a(0) = Uᵀ y(0),          ŷ = U a  (``reconstruct``)

If the symmetric part of F(t) = Σ c_k A_k is ≤ κ (as for the dynamic Brown–Néel formulation,
κ = its constant shift), then the symmetric part of Uᵀ F U = Uᵀ sym(F) U is ≤ κ too: the reduced
model inherits the energy bound ‖a(t)‖ ≤ e^{κt}‖a(0)‖ for every r.

Error metric of the observed signal (documented in ``nrmse``):

    NRMSE = RMS(s_ROM − s_FOM) / RMS(s_FOM),  RMS(v) = sqrt(mean_i v_i²)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["GalerkinReductor", "ReducedModel", "nrmse"]


def nrmse(approx: np.ndarray, reference: np.ndarray) -> float:
    """Normalised RMS error RMS(approx − reference)/RMS(reference) over all samples."""
    approx, reference = np.asarray(approx, float), np.asarray(reference, float)
    if approx.shape != reference.shape:
        raise ValueError(f"shape mismatch {approx.shape} vs {reference.shape}")
    den = np.sqrt(np.mean(reference**2))
    if den == 0:
        raise ValueError("reference signal is identically zero")
    return float(np.sqrt(np.mean((approx - reference) ** 2)) / den)


def _to_petsc(a, comm):
    from petsc4py import PETSc

    if isinstance(a, PETSc.Mat):
        return a
    import scipy.sparse as sp

    a = sp.csr_matrix(a)
    mat = PETSc.Mat().createAIJ(size=a.shape, csr=(a.indptr, a.indices, a.data), comm=comm)
    mat.assemble()
    return mat


@dataclass
class ReducedModel:
    """Reduced operators Â_k (dense) and the basis U used to build them."""

    matrices: list[np.ndarray]
    basis: np.ndarray

    @property
    def rank(self) -> int:
        return self.basis.shape[1]

    def project_state(self, y: np.ndarray) -> np.ndarray:
        """a = Uᵀ y."""
        return self.basis.T @ y

    def reconstruct(self, a: np.ndarray) -> np.ndarray:
        """ŷ = U a (columns of a are reduced states)."""
        return self.basis @ a

    def petsc_matrices(self, comm=None) -> list:
        """Â_k as sequential dense PETSc matrices."""
        from petsc4py import PETSc

        comm = comm or PETSc.COMM_SELF
        out = []
        for a in self.matrices:
            mat = PETSc.Mat().createDense(size=a.shape, array=np.array(a, order="F"),
                                          comm=comm)
            mat.assemble()
            out.append(mat)
        return out

    def max_symmetric_eigenvalue(self, coefficients: np.ndarray) -> float:
        """Largest eigenvalue of sym(Σ c_k Â_k): a bound of the growth rate of ‖a‖."""
        f = sum(c * a for c, a in zip(coefficients, self.matrices, strict=True))
        return float(np.linalg.eigvalsh(0.5 * (f + f.T))[-1])

    def solve(self, coefficients: Callable[[float], np.ndarray], a0: np.ndarray,
              s_out: np.ndarray, settings=None, backend: str = "petsc"):
        """Integrate the reduced model (same integrators as the FOM)."""
        from llgfem.brownneel.integrate import TSSettings, integrate_petsc, integrate_scipy

        settings = settings or TSSettings()
        if backend == "petsc":
            return integrate_petsc(self.petsc_matrices(), coefficients, a0, s_out, settings,
                                   prefix="llgfem_rom_ts_")
        return integrate_scipy(self.matrices, coefficients, a0, s_out, settings)


class GalerkinReductor:
    """Projects every affine term A_k once: Â_k = Uᵀ A_k U.

    Args:
        matrices: the FOM terms A_k (PETSc AIJ matrices or SciPy sparse).
    """

    def __init__(self, matrices: list):
        from petsc4py import PETSc

        self.comm = PETSc.COMM_SELF
        self.matrices = [_to_petsc(a, self.comm) for a in matrices]

    def reduce(self, basis: np.ndarray) -> ReducedModel:
        """Galerkin projection onto the columns of ``basis`` (assumed orthonormal)."""
        from petsc4py import PETSc

        t0 = time.perf_counter()
        u = PETSc.Mat().createDense(size=basis.shape, array=np.array(basis, order="F"),
                                    comm=self.comm)
        u.assemble()
        reduced = []
        for a in self.matrices:
            au = a.matMult(u)
            red = u.transposeMatMult(au)
            reduced.append(np.array(red.getDenseArray(), copy=True))
            au.destroy(), red.destroy()
        u.destroy()
        model = ReducedModel(reduced, np.asarray(basis))
        model.seconds = time.perf_counter() - t0
        return model
