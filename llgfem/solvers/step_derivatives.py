"""Exact linearisation and discrete adjoint of a one-step LLG time scheme (any block structure).

A one-step scheme advances the level ``m_n`` by solving its step residual for the step unknowns
``z_n`` (``z_n = m_{n+1}`` for implicit midpoint on the Gilbert form (6); ``z_n = (m_{n+1}, H_n)``
for the Landau-Lifshitz / Bartels-Prohl scheme with the nodal field ``H`` as a second block)::

    R_n(m_n, z_n; a) = 0,        n = 0 .. N-1.

Differentiating in the parameters ``a = (a1, a2)`` gives the linearised stepping (forward in time)
and its exact transpose (backward in time, the discrete adjoint (26)-(28) of paper 002)::

    J1_n dz_n = -(J0_n u_n + B_n beta),            u_{n+1} = P dz_n,   u_0 = 0,
    J1_n^T lam_n = P^T (l_{n+1} - J0_{n+1}^T lam_{n+1}),               (J0_N^T lam_N := 0)
    <l, u> = -sum_n lam_n . B_n beta          (so F'(a)* r = -sum_n B_n^T lam_n, l = O^T r),

with ``J0_n = dR_n/dm_n`` (block column), ``J1_n = dR_n/dz_n`` (square block matrix),
``B_n = dR_n/da`` and ``P`` the restriction of ``z_n`` to its ``m_{n+1}`` block.  All three are
obtained from the one step residual by ``ufl.derivative`` (states) and ``ufl.diff`` (the
parameters enter the forms as ``ufl.variable`` wrappers of ``fem.Constant`` s), so every scheme
gets its linearisation and adjoint from its residual alone.

Step solves: ``J1_n`` changes every step, so the ``auto`` preset of
:mod:`llgfem.solvers.linear` factorises it (small problems) or uses GMRES + block Jacobi/ILU(0)
(large ones).  The adjoint solves use the transposed operator itself (``KSPSolveTranspose``
with the same preconditioner), to relative residual ``ITERATIVE_RTOL = 1e-12`` when iterative:
the dot-product test ``<l, u> = -sum_n lam_n . B_n beta`` then holds to ~1e-11 (<= 1e-8 is
required; ``tests/unit/solvers/test_presets.py``).

Block vectors are NumPy arrays of the owned entries, block after block (the local layout of
DOLFINx's blocked ``kind="mpi"`` vectors); ``n`` owned dofs per block.

Notation: ``m`` trajectory ``(n_t, n)``; ``u`` linearised trajectories ``(k, n_t, n)``;
``lam`` adjoint step multipliers ``(N, n_blocks * n)``; ``l`` loads on the levels ``(n_t, n)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import dolfinx.fem as fem
import dolfinx.fem.petsc as fem_petsc
import numpy as np
import ufl
from mpi4py import MPI
from petsc4py import PETSc
from ufl.algorithms import expand_derivatives

from llgfem.solvers.linear import LinearSolver, SolverError
from llgfem.spacetime import array_to_function

__all__ = ["StepDerivatives", "diff_form"]


def diff_form(form: ufl.Form, variable) -> ufl.Form:
    """``d form / d variable`` for a ``ufl.variable`` (integrand by integrand, expanded)."""
    integrals = [i.reconstruct(integrand=ufl.diff(i.integrand(), variable))
                 for i in form.integrals()]
    return expand_derivatives(ufl.Form(integrals))


def _form_or_none(form: ufl.Form, jit_options: dict | None = None):
    return fem.form(form, jit_options=jit_options) if form.integrals() else None


class StepDerivatives:
    """Jacobians ``J0_n, J1_n``, parameter derivatives ``B_n`` and the two sweeps of a scheme.

    Args:
        residuals: the step residual blocks (UFL forms, tested with one test function each).
        unknowns: the step unknowns ``z`` (Functions; the first is ``m_{n+1}``).
        previous: the Function holding ``m_n``.
        parameters: the ``ufl.variable`` s of ``(a1, a2)`` used in the residuals.
        set_step: ``set_step(n, m_n, m_next)`` loads a step's state into the forms' Functions
            (including any auxiliary block such as ``H_n``, computed from the two levels).
        comm: the mesh communicator.
        prefix: PETSc options prefix of the step KSP.
        kind: linear solver preset of the step solves (``auto``: direct when small, else
            GMRES + block Jacobi/ILU to relative residual 1e-12; see module docstring).
        jit_options: DOLFINx JIT options of the forms (compiler flags; None: DOLFINx's).
    """

    def __init__(self, residuals: Sequence[ufl.Form], unknowns: Sequence[fem.Function],
                 previous: fem.Function, parameters: Sequence, set_step: Callable,
                 comm: MPI.Comm, prefix: str = "llgfem_llg_step_", kind: str = "auto",
                 jit_options: dict | None = None):
        self.blocks = len(residuals)
        jit = jit_options
        self._kind, self._tdim = kind, previous.function_space.mesh.topology.dim
        self.comm, self.set_step = comm, set_step
        V = previous.function_space
        self.n = V.dofmap.index_map.size_local * V.dofmap.index_map_bs
        if self.blocks == 1:
            self._J1 = fem.form(ufl.derivative(residuals[0], unknowns[0]), jit_options=jit)
            self._J0 = fem.form(ufl.derivative(residuals[0], previous), jit_options=jit)
        else:
            self._J1 = fem.form([[ufl.derivative(r, z) for z in unknowns] for r in residuals],
                                jit_options=jit)
            self._J0 = fem.form([[ufl.derivative(r, previous)] for r in residuals],
                                jit_options=jit)
        # a block that does not depend on a parameter has an empty derivative form: zeros
        self._B = [[_form_or_none(diff_form(r, a), jit) for r in residuals] for a in parameters]
        # one block: block-AIJ storage (3 x 3 blocks of the vector P1 space); the insertion of
        # the element matrices is ~4x cheaper than into AIJ (measured 1.0 s -> 0.27 s per
        # assembly on the 56 673-vertex phantom), and ILU(0)/LU/MUMPS take it as it is
        kind = "baij" if self.blocks == 1 else None
        self.J0 = fem_petsc.create_matrix(self._J0, kind=kind)
        self.J1 = fem_petsc.create_matrix(self._J1, kind=kind)
        self._work_m, self._work_z = self.J0.createVecs()
        self._prefix = prefix
        self._ksp: LinearSolver | None = None
        from llgfem.solvers.llg import VectorAssembler

        zero = np.zeros(self.n)
        self._assemblers = [[VectorAssembler(f) if f is not None else zero.copy for f in row]
                            for row in self._B]
        # one block: the right-hand side J0_n u + B_n b of a linearised step as one vector
        # assembly (the directional derivative of R_n in (m_n, a) along (u, b); no J0 matrix)
        self._tangent_rhs = None
        if self.blocks == 1:
            self._u = fem.Function(V)
            self._b = fem.Constant(V.mesh, np.zeros(len(parameters)))
            rhs = ufl.derivative(residuals[0], previous, self._u)
            for i, a in enumerate(parameters):
                dR = diff_form(residuals[0], a)
                if dR.integrals():
                    rhs = rhs + self._b[i] * dR
            self._tangent_rhs = VectorAssembler(fem.form(rhs, jit_options=jit))

    # -- one step ---------------------------------------------------------------------------
    def assemble(self, n: int, m_n: np.ndarray, m_next: np.ndarray, load: bool = True):
        """``(J0_n, J1_n)`` (reused storage) at the step ``(m_n, m_{n+1})`` (``load=False``: the
        step is already loaded into the forms)."""
        if load:
            self.set_step(n, m_n, m_next)
        for A, form in ((self.J0, self._J0), (self.J1, self._J1)):
            A.zeroEntries()
            fem_petsc.assemble_matrix(A, form)
            A.assemble()
        return self.J0, self.J1

    def parameter_derivatives(self, n: int, m_n: np.ndarray, m_next: np.ndarray,
                              load: bool = True) -> np.ndarray:
        """``B_n`` as an array ``(n_blocks * n, n_parameters)`` of owned dual entries."""
        if load:
            self.set_step(n, m_n, m_next)
        return np.stack([np.concatenate([a() for a in row]) for row in self._assemblers], axis=1)

    def _solver(self) -> LinearSolver:
        if self._ksp is None:
            self._ksp = LinearSolver(self.J1, self._prefix, self._kind, tdim=self._tdim,
                                     symmetric=False, reuse=False)
        else:
            self._ksp.set_operator(self.J1)
        return self._ksp

    def _mult(self, A, values: np.ndarray, transpose: bool = False) -> np.ndarray:
        x, y = (self._work_z, self._work_m) if transpose else (self._work_m, self._work_z)
        x.array[:] = values
        (A.multTranspose if transpose else A.mult)(x, y)
        return y.array.copy()

    def _checked(self, values: np.ndarray) -> np.ndarray:
        bad = self.comm.allreduce(int(not np.all(np.isfinite(values))), op=MPI.MAX)
        if bad:
            raise SolverError("a step solve of the linearised/adjoint LLG equation returned "
                              "NaN/Inf (singular step Jacobian?)")
        return values

    # -- sweeps -----------------------------------------------------------------------------
    def assemble_step_jacobian(self) -> PETSc.Mat:
        """``J1_n`` (reused storage) at the step already loaded into the forms."""
        self.J1.zeroEntries()
        fem_petsc.assemble_matrix(self.J1, self._J1)
        self.J1.assemble()
        return self.J1

    def tangent_step(self, u_n: np.ndarray, betas: np.ndarray) -> np.ndarray:
        """``u_{n+1}`` of the linearised step ``J1_n dz = -(J0_n u_n + B_n beta_j)`` for the
        columns of ``betas`` (``u_n``: shape ``(k, n)``), at the loaded step, with ``J1_n``
        already assembled there (:meth:`assemble_step_jacobian`).  One block: the right-hand
        side is one vector assembly per column; otherwise ``J0_n`` must be assembled too."""
        ksp = self._solver()
        out = np.empty_like(u_n)
        if self._tangent_rhs is None:
            B = self.parameter_derivatives(0, None, None, load=False)
        for j in range(betas.shape[1]):
            if self._tangent_rhs is None:
                rhs = -(self._mult(self.J0, u_n[j]) + B @ betas[:, j])
            else:
                array_to_function(u_n[j], self._u)
                self._b.value = betas[:, j]
                rhs = -self._tangent_rhs()
            out[j] = self._checked(ksp.solve_array(rhs))[: self.n]
        return out

    def linearised(self, m: np.ndarray, betas: np.ndarray) -> np.ndarray:
        """``u^(j)`` for the columns ``beta_j`` of ``betas``: per step one assembly of ``J1_n``
        and one preconditioner (factorisation) for all columns; ``J0_n u_n + B_n beta_j`` as
        one vector assembly per column (one block: the ``J0_n`` matrix is not assembled;
        measured 5.6 s -> 1.7 s per step on the 56 673-vertex phantom with the per-term
        quadrature of :func:`llgfem.solvers.llg.exact_degree_step_residual`)."""
        betas = np.atleast_2d(np.asarray(betas, dtype=float))
        n_t, n = m.shape
        u = np.zeros((betas.shape[1], n_t, n))
        for k in range(n_t - 1):
            if self._tangent_rhs is None:
                self.assemble(k, m[k], m[k + 1])  # J0 and J1 (loads the step once for both)
            else:
                self.set_step(k, m[k], m[k + 1])
                self.assemble_step_jacobian()
            u[:, k + 1] = self.tangent_step(u[:, k], betas)
        return u

    def adjoint(self, m: np.ndarray, loads: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(lam, g)`` with ``g = sum_n B_n^T lam_n`` (global, replicated) for loads ``l``."""
        n_t, n = m.shape
        lam = np.zeros((n_t - 1, self.blocks * n))
        carry = np.zeros(n)  # J0_{n+1}^T lam_{n+1}
        g = np.zeros(len(self._B))
        rhs = np.zeros(self.blocks * n)
        for k in range(n_t - 2, -1, -1):
            J0, _ = self.assemble(k, m[k], m[k + 1])
            rhs[:n] = loads[k + 1] - carry
            lam[k] = self._checked(self._solver().solve_transpose_array(rhs))
            carry = self._mult(J0, lam[k], transpose=True)
            g += self.parameter_derivatives(k, m[k], m[k + 1], load=False).T @ lam[k]
        return lam, self.comm.allreduce(g, op=MPI.SUM)

    def destroy(self) -> None:
        """Free the PETSc objects (collective)."""
        if self._ksp is not None:
            self._ksp.destroy()
            self._ksp = None
        for obj in (self.J0, self.J1, self._work_m, self._work_z):
            obj.destroy()
