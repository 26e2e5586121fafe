"""PETSc KSP wrappers: one factorisation/preconditioner, reused for every solve.

Solver choice is by PETSc options under a deterministic prefix ``llgfem_<component>_<role>_``.
Presets (:func:`preset_options`):

* ``"direct"`` -- ``-ksp_type preonly -pc_type lu``: PETSc's own sparse LU on one rank for up
  to :data:`NATIVE_LU_LIMIT` unknowns, MUMPS otherwise;
* ``"iterative"`` -- symmetric positive definite operators (heat step ``M/dt + A/2``, mass,
  elliptic ``A + M`` of (21)): CG + GAMG (``hypre`` BoomerAMG instead when the PETSc build has
  it); non-symmetric operators (the LLG Newton and step Jacobians): GMRES(100) + block Jacobi
  with ILU(0) per rank (the Jacobians are dominated by ``M/dt``; AMG does not converge on the
  cross-product terms: 316 GMRES iterations per solve measured on a 3-D cube, against 7);
  relative tolerance :data:`ITERATIVE_RTOL`;
* ``"auto"`` -- ``direct`` for at most :func:`direct_limit` global unknowns, else ``iterative``.
  The limit depends on the topological dimension (LU fill grows like ``n^{3/2}`` in 2-D and
  ``n^2`` in 3-D), on whether one factorisation serves many solves (heat sweeps: factor once)
  or the operator changes every solve (Newton steps: factor every time), and on the number of
  ranks (MUMPS hardly gains on two ranks at these sizes).  The numbers are measurements
  (docs/cluster.md).

Any PETSc option given by the user (command line or ``options``) overrides the preset; a user
``ksp_type``/``pc_type`` replaces every ``ksp_*``/``pc_*`` preset (:func:`apply_options`).

Transposed solves (:meth:`LinearSolver.solve_transpose_array`) use ``KSPSolveTranspose`` with
the same operator and preconditioner: exact transposes for the direct preset, and to
:data:`ITERATIVE_RTOL` (relative, unpreconditioned residual) for the iterative one -- tight
enough that the adjoint dot-product tests hold to <= 1e-8 (measured ~1e-11).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from petsc4py import PETSc

__all__ = ["ITERATIVE_RTOL", "NATIVE_LU_LIMIT", "LinearSolver", "SolverError", "apply_options",
           "direct_limit", "preset_options"]

#: One rank, at most this many unknowns: PETSc's own LU instead of MUMPS (less overhead).
NATIVE_LU_LIMIT = 20_000
#: Relative residual tolerance of the iterative presets.
ITERATIVE_RTOL = 1e-12
#: ``(reuse, tdim) -> unknowns``: the largest direct solve on one rank.  ``reuse``: one
#: factorisation serves many solves (heat sweeps, (21)); otherwise it is redone every solve.
SERIAL_DIRECT_LIMITS = {(True, 1): 10**7, (True, 2): 200_000, (True, 3): 60_000,
                        (False, 1): 10**7, (False, 2): 30_000, (False, 3): 1_500}
#: The same on several ranks (MUMPS).
PARALLEL_DIRECT_LIMITS = {(True, 1): 10**7, (True, 2): 50_000, (True, 3): 10_000,
                          (False, 1): 10**7, (False, 2): 10_000, (False, 3): 1_500}


class SolverError(RuntimeError):
    """A linear or nonlinear solver did not converge (raised on every rank)."""


def direct_limit(tdim: int, comm_size: int, reuse: bool = True) -> int:
    """The ``auto`` preset's largest direct solve (global unknowns); see module docstring."""
    table = SERIAL_DIRECT_LIMITS if comm_size == 1 else PARALLEL_DIRECT_LIMITS
    return table[(bool(reuse), min(max(int(tdim), 1), 3))]


def _amg() -> dict[str, Any]:
    if PETSc.Sys.hasExternalPackage("hypre"):
        return {"pc_type": "hypre", "pc_hypre_type": "boomeramg"}
    return {"pc_type": "gamg"}


def preset_options(kind: str, n_global: int, comm_size: int = 1, *, tdim: int = 2,
                   symmetric: bool = True, reuse: bool = True) -> dict[str, Any]:
    """PETSc options of a preset (see module docstring).

    Args:
        kind: ``auto``, ``direct`` or ``iterative``.
        n_global: global number of unknowns.
        comm_size: number of ranks.
        tdim: topological dimension of the mesh (1, 2, 3).
        symmetric: the operator is symmetric positive definite (CG) or not (GMRES).
        reuse: one operator for many solves (factor once) or a new operator every solve.
    """
    if kind == "auto":
        kind = "direct" if n_global <= direct_limit(tdim, comm_size, reuse) else "iterative"
    if kind == "direct":
        package = "petsc" if comm_size == 1 and n_global <= NATIVE_LU_LIMIT else "mumps"
        return {"ksp_type": "preonly", "pc_type": "lu", "pc_factor_mat_solver_type": package}
    if kind == "iterative":
        common = {"ksp_rtol": ITERATIVE_RTOL, "ksp_atol": 1e-50, "ksp_max_it": 3000}
        if symmetric:
            return {"ksp_type": "cg", **_amg(), **common}
        return {"ksp_type": "gmres", "ksp_gmres_restart": 100, "ksp_pc_side": "right",
                "pc_type": "bjacobi", "sub_pc_type": "ilu", **common}
    raise ValueError(f"unknown linear solver preset {kind!r} (auto, direct, iterative)")


def apply_options(obj, prefix: str, presets: dict[str, Any]) -> None:
    """Configure a KSP/SNES/TS from preset options unless the user set them under ``prefix``.

    A user-given ``ksp_type`` or ``pc_type`` disables every ``ksp_*``/``pc_*``/``sub_*`` preset
    (the presets belong to another solver).  The presets are inserted, read once by
    ``setFromOptions`` and deleted again, so nothing leaks into the next solver's configuration.
    """
    db = PETSc.Options()
    user_solver = any(db.hasName(prefix + k) for k in ("ksp_type", "pc_type"))
    ours = []
    for key, value in presets.items():
        if db.hasName(prefix + key) or (user_solver and key.startswith(("ksp_", "pc_", "sub_"))):
            continue
        db[prefix + key] = value
        ours.append(prefix + key)
    obj.setFromOptions()
    for name in ours:
        db.delValue(name)


class LinearSolver:
    """A KSP for a fixed matrix ``A``: set up (factorised) once, used for many right-hand sides.

    Args:
        A: the assembled PETSc matrix (kept, not copied).
        prefix: PETSc options prefix, e.g. ``"llgfem_heat_step_"``.
        kind: ``"auto"``, ``"direct"`` or ``"iterative"``.
        options: extra PETSc options (without prefix) overriding the preset.
        tdim: topological dimension of the mesh (for ``auto``).
        symmetric: ``A`` is symmetric positive definite.
        reuse: ``A`` serves many solves (for ``auto``; see :func:`preset_options`).
    """

    def __init__(self, A: PETSc.Mat, prefix: str, kind: str = "auto",
                 options: dict[str, Any] | None = None, *, tdim: int = 2,
                 symmetric: bool = True, reuse: bool = True):
        self.A = A
        self.prefix = prefix
        presets = preset_options(kind, A.getSize()[0], A.getComm().getSize(), tdim=tdim,
                                 symmetric=symmetric, reuse=reuse)
        self.ksp = PETSc.KSP().create(A.getComm())
        self.ksp.setOptionsPrefix(prefix)
        self.ksp.setOperators(A)
        apply_options(self.ksp, prefix, {**presets, **(options or {})})  # the user's win
        self.ksp.setUp()
        self._x, self._b = A.createVecs()

    @property
    def direct(self) -> bool:
        """True if the KSP applies its preconditioner once (a factorisation)."""
        return self.ksp.getType() == "preonly"

    def set_operator(self, A: PETSc.Mat) -> None:
        """Use a new (or re-assembled) matrix with the same layout."""
        self.A = A
        self.ksp.setOperators(A)

    def solve(self, b: PETSc.Vec, x: PETSc.Vec, guess: bool = False) -> PETSc.Vec:
        """Solve ``A x = b`` (``guess``: start from the content of ``x``, iterative solvers);
        raise :class:`SolverError` on every rank if the KSP diverged."""
        self.ksp.setInitialGuessNonzero(bool(guess) and not self.direct)
        self.ksp.solve(b, x)
        reason = self.ksp.getConvergedReason()
        if reason < 0:
            raise SolverError(f"KSP {self.prefix!r} diverged (reason {reason})")
        return x

    def solve_array(self, b, x=None, guess=None):
        """Solve with owned-dof NumPy arrays; returns a new array unless ``x`` is given.

        ``guess``: an initial guess (used by iterative solvers, e.g. the previous time level).
        """
        self._b.array[:] = b
        if guess is not None:
            self._x.array[:] = guess
        self.solve(self._b, self._x, guess is not None)
        if x is None:
            return self._x.array.copy()
        x[:] = self._x.array
        return x

    def solve_many(self, B: np.ndarray) -> np.ndarray:
        """Solve ``A X = B`` for the rows of ``B`` (shape ``(k, n_owned)``) at once.

        Direct solvers use one multi-right-hand-side solve (``KSPMatSolve``); others loop.
        """
        if B.shape[0] == 0:
            return B.copy()
        if not self.direct:
            return np.stack([self.solve_array(b) for b in B])
        comm = self.A.getComm()
        n_loc, n_glob = self.A.getLocalSize()[0], self.A.getSize()[0]
        k = B.shape[0]
        rhs = PETSc.Mat().createDense(((n_loc, n_glob), (PETSc.DECIDE, k)),
                                      array=np.asfortranarray(B.T), comm=comm)
        sol = PETSc.Mat().createDense(((n_loc, n_glob), (PETSc.DECIDE, k)), comm=comm)
        self.ksp.matSolve(rhs, sol)
        if self.ksp.getConvergedReason() < 0:
            raise SolverError(f"KSP {self.prefix!r} diverged (multiple right-hand sides)")
        out = sol.getDenseArray().T.copy()
        rhs.destroy()
        sol.destroy()
        return out

    def solve_transpose_array(self, b, x=None):
        """Solve ``A^T x = b`` (same factorisation/preconditioner) with NumPy arrays."""
        self._b.array[:] = b
        self.ksp.setInitialGuessNonzero(False)
        self.ksp.solveTranspose(self._b, self._x)
        if self.ksp.getConvergedReason() < 0:
            raise SolverError(f"KSP {self.prefix!r} (transpose) diverged")
        if x is None:
            return self._x.array.copy()
        x[:] = self._x.array
        return x

    def destroy(self) -> None:
        for obj in (self.ksp, self._x, self._b):
            obj.destroy()
