"""PETSc KSP wrappers: one factorisation/preconditioner, reused for every solve.

Solver choice is by PETSc options under a deterministic prefix ``llgfem_<component>_<role>_``.
Presets:

* ``"direct"`` -- ``-ksp_type preonly -pc_type lu -pc_factor_mat_solver_type mumps``;
* ``"iterative"`` -- ``-ksp_type cg -pc_type gamg`` with relative tolerance 1e-12 (SPD operators).

``"auto"`` picks ``direct`` below :data:`DIRECT_LIMIT` global unknowns, else ``iterative``.
Any PETSc option given by the user (command line or ``options``) overrides the preset.
"""

from __future__ import annotations

from typing import Any

from petsc4py import PETSc

__all__ = ["DIRECT_LIMIT", "LinearSolver", "SolverError", "preset_options"]

DIRECT_LIMIT = 200_000


class SolverError(RuntimeError):
    """A linear or nonlinear solver did not converge (raised on every rank)."""


def preset_options(kind: str, n_global: int) -> dict[str, Any]:
    """PETSc options of a preset (see module docstring)."""
    if kind == "auto":
        kind = "direct" if n_global <= DIRECT_LIMIT else "iterative"
    if kind == "direct":
        return {"ksp_type": "preonly", "pc_type": "lu", "pc_factor_mat_solver_type": "mumps"}
    if kind == "iterative":
        return {"ksp_type": "cg", "pc_type": "gamg", "ksp_rtol": 1e-12, "ksp_atol": 1e-50,
                "ksp_max_it": 2000}
    raise ValueError(f"unknown linear solver preset {kind!r} (auto, direct, iterative)")


class LinearSolver:
    """A KSP for a fixed matrix ``A``: set up (factorised) once, used for many right-hand sides.

    Args:
        A: the assembled PETSc matrix (kept, not copied).
        prefix: PETSc options prefix, e.g. ``"llgfem_heat_step_"``.
        kind: ``"auto"``, ``"direct"`` or ``"iterative"``.
        options: extra PETSc options (without prefix) overriding the preset.
    """

    def __init__(self, A: PETSc.Mat, prefix: str, kind: str = "auto",
                 options: dict[str, Any] | None = None):
        self.A = A
        self.prefix = prefix
        opts = PETSc.Options()
        ours = []
        for key, value in {**preset_options(kind, A.getSize()[0]), **(options or {})}.items():
            if not opts.hasName(prefix + key):  # the user's command-line options win
                opts[prefix + key] = value
                ours.append(prefix + key)
        self.ksp = PETSc.KSP().create(A.getComm())
        self.ksp.setOptionsPrefix(prefix)
        self.ksp.setOperators(A)
        self.ksp.setFromOptions()
        for name in ours:  # keep the global options database clean for the next solver
            opts.delValue(name)
        self.ksp.setUp()
        self._x, self._b = A.createVecs()

    def solve(self, b: PETSc.Vec, x: PETSc.Vec) -> PETSc.Vec:
        """Solve ``A x = b``; raise :class:`SolverError` on every rank if KSP diverged."""
        self.ksp.solve(b, x)
        reason = self.ksp.getConvergedReason()
        if reason < 0:
            raise SolverError(f"KSP {self.prefix!r} diverged (reason {reason})")
        return x

    def solve_array(self, b, x=None):
        """Solve with owned-dof NumPy arrays; returns a new array unless ``x`` is given."""
        self._b.array[:] = b
        self.solve(self._b, self._x)
        if x is None:
            return self._x.array.copy()
        x[:] = self._x.array
        return x

    def solve_transpose_array(self, b, x=None):
        """Solve ``A^T x = b`` (same factorisation) with NumPy arrays."""
        self._b.array[:] = b
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
