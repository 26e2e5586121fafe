"""Heat-type solvers on space-time arrays (paper 002, eqs. (18), (19), (21)).

Discretisation: P1 (vector) finite elements in space, Crank-Nicolson in time on the uniform
grid ``t_i = i dt`` (second order in ``dt``).  With mass ``M``, Neumann stiffness ``A`` and

    B = M/dt + A/2,        C = M/dt - A/2,

the *space-time heat operator* ``H`` maps a trajectory ``u = (u_0 = 0, u_1, ..., u_N)`` to its
Crank-Nicolson residuals at the ``N = n_t - 1`` midpoints (dual vectors)::

    (H u)_n = B u_{n+1} - C u_n = M (u_{n+1} - u_n)/dt + A (u_{n+1} + u_n)/2.

Everything else is built from ``H``, ``H^T`` and their inverses (one factorisation of ``B``):

* forward heat (18): ``z = H^{-1} P v`` with the trapezoidal source map
  ``(P v)_n = M (v_n + v_{n+1})/2``;
* backward heat (19): the exact transpose of (18) in the trapezoidal space-time inner product
  ``<u, w> = sum_i omega_i u_i^T M w_i``: ``<S v, f> + z_N^T M g = <v, S^*(f, g)>`` with
  ``S^*(f, g) = diag(omega)^{-1} P^T H^{-T} (omega f, g)``.  Unrolled, ``x = H^{-T} l`` is
  Crank-Nicolson for ``-p_t - Laplace p = f`` on the staggered midpoint grid, and the returned
  level values are averages of neighbouring midpoint values.  Consequence (documented, tested):
  interior levels are second order; the two end levels ``p_0``, ``p_N`` carry the midpoint
  values at ``dt/2`` and ``T - dt/2``, i.e. they approximate ``p(dt/2)`` and ``p(T - dt/2)``
  (first order as approximations of ``p(0)`` and ``g``);
* the space-time ``U``-inner product ``(u1, u2)_U = sum_n dt (H u1)_n^T M^{-1} (H u2)_n`` (the
  discrete ``int int (u1_t - Laplace u1).(u2_t - Laplace u2)``) and its Riesz map
  ``u = H^{-1} (M/dt) H^{-T} l`` -- a backward then a forward sweep, exact;
* the elliptic problem (21): ``(A + M) y_i = M w_i`` at every level.

Linear solvers (:mod:`llgfem.solvers.linear`, preset ``kind``): ``B``, ``A + M`` and ``M`` are
symmetric positive definite and fixed, so ``auto`` factorises them once when small and uses
CG + AMG (CG + Jacobi for ``M``) otherwise; the iterative sweeps start every step from the
previous level (fewer iterations).  The transposes stay exact to the iterative tolerance
(relative 1e-12): ``B`` is symmetric, so ``H^T`` needs only solves with ``B`` again.

Notation: ``n_t`` levels, ``N = n_t - 1`` steps, arrays of shape ``(n_t, n_owned)`` (levels) or
``(N, n_owned)`` (midpoints); see :mod:`llgfem.spacetime`.
"""

from __future__ import annotations

import dolfinx.fem as fem
import dolfinx.fem.petsc as fem_petsc
import numpy as np
from petsc4py import PETSc

from llgfem.forms.heat import elliptic_form, mass_form, stiffness_form
from llgfem.solvers.linear import LinearSolver, preset_options
from llgfem.spacetime import TimeGrid, global_dot, n_owned

__all__ = ["HeatSolver", "assemble_matrix"]


def assemble_matrix(form) -> PETSc.Mat:
    """Assemble a bilinear UFL form into a finalised PETSc matrix."""
    A = fem_petsc.assemble_matrix(fem.form(form))
    A.assemble()
    return A


class HeatSolver:
    """Crank-Nicolson heat operators on the space ``V`` and the grid ``grid``.

    Matrices and KSPs are built once; every sweep reuses the factorisation of ``B``.

    Args:
        V: (vector) P1 function space.
        grid: the time grid.
        kind: linear solver preset (``auto``, ``direct``, ``iterative``).
        prefix: PETSc options prefix (``<prefix>step_``, ``<prefix>elliptic_``, ``<prefix>mass_``).
    """

    def __init__(self, V, grid: TimeGrid, kind: str = "auto", prefix: str = "llgfem_heat_"):
        self.V, self.grid = V, grid
        self.comm = V.mesh.comm
        self.n = n_owned(V)
        self.M = assemble_matrix(mass_form(V))
        self.A = assemble_matrix(stiffness_form(V))
        self.K = assemble_matrix(elliptic_form(V))
        dt = grid.dt
        same = PETSc.Mat.Structure.SAME_NONZERO_PATTERN
        self.B = self.M.copy()
        self.B.scale(1.0 / dt)
        self.B.axpy(0.5, self.A, same)
        self.C = self.M.copy()
        self.C.scale(1.0 / dt)
        self.C.axpy(-0.5, self.A, same)
        self._prefix, self._kind = prefix, kind
        self._tdim = V.mesh.topology.dim
        self.step_solver = self._linear_solver(self.B, "step_")
        self._elliptic: LinearSolver | None = None
        self._mass: LinearSolver | None = None
        self._x, self._y = self.M.createVecs()
        self.progress = lambda steps: steps  # e.g. a tqdm wrapper for the sweeps

    # -- small helpers --------------------------------------------------------------------
    def mult(self, mat: PETSc.Mat, values: np.ndarray) -> np.ndarray:
        """``mat @ values`` for one owned-dof array."""
        self._x.array[:] = values
        mat.mult(self._x, self._y)
        return self._y.array.copy()

    def mult_levels(self, mat: PETSc.Mat, values: np.ndarray) -> np.ndarray:
        """``mat`` applied to every row of a ``(k, n)`` array."""
        return np.stack([self.mult(mat, v) for v in values])

    def dot(self, a: np.ndarray, b: np.ndarray) -> float:
        """Global Euclidean inner product."""
        return global_dot(self.comm, a, b)

    def _linear_solver(self, A: PETSc.Mat, role: str, options=None) -> LinearSolver:
        return LinearSolver(A, self._prefix + role, self._kind, options, tdim=self._tdim)

    @property
    def elliptic_solver(self) -> LinearSolver:
        if self._elliptic is None:
            self._elliptic = self._linear_solver(self.K, "elliptic_")
        return self._elliptic

    @property
    def mass_solver(self) -> LinearSolver:
        if self._mass is None:  # the mass matrix is spectrally equivalent to its diagonal
            iterative = preset_options(self._kind, self.M.getSize()[0], self.comm.size,
                                       tdim=self._tdim)["ksp_type"] == "cg"
            self._mass = self._linear_solver(self.M, "mass_",
                                             {"pc_type": "jacobi"} if iterative else None)
        return self._mass

    def _step(self, rhs: np.ndarray, out: np.ndarray, previous: np.ndarray) -> None:
        """``out = B^{-1} rhs`` (an iterative solver starts from ``previous``)."""
        solver = self.step_solver
        solver.solve_array(rhs, out, guess=None if solver.direct else previous)

    def zeros_levels(self) -> np.ndarray:
        return np.zeros((self.grid.n_t, self.n))

    # -- the space-time heat operator H ----------------------------------------------------
    def apply_H(self, u: np.ndarray) -> np.ndarray:
        """Midpoint residuals ``(H u)_n = B u_{n+1} - C u_n`` (``u_0`` is used as given)."""
        Bu = self.mult_levels(self.B, u)
        Cu = self.mult_levels(self.C, u)
        return Bu[1:] - Cu[:-1]

    def solve_H(self, r: np.ndarray, u0: np.ndarray | None = None) -> np.ndarray:
        """Forward sweep: the trajectory ``u`` with ``u_0 = u0`` (default 0) and ``H u = r``."""
        u = self.zeros_levels()
        if u0 is not None:
            u[0] = u0
        for k in self.progress(range(r.shape[0])):
            self._step(r[k] + self.mult(self.C, u[k]), u[k + 1], u[k])
        return u

    def apply_HT(self, x: np.ndarray) -> np.ndarray:
        """``H^T x`` as a functional on levels 1..N (level 0 entry is 0: ``u_0`` is fixed)."""
        out = self.zeros_levels()
        Bx = self.mult_levels(self.B, x)
        Cx = self.mult_levels(self.C, x)
        out[1:] = Bx
        out[1:-1] -= Cx[1:]
        return out

    def solve_HT(self, l: np.ndarray) -> np.ndarray:
        """Backward sweep: ``x`` (midpoints) with ``H^T x = l`` on levels 1..N (``l_0`` unused)."""
        N = self.grid.n_t - 1
        x = np.zeros((N, self.n))
        self._step(l[N], x[N - 1], x[N - 1])
        for k in self.progress(range(N - 1, 0, -1)):
            self._step(l[k] + self.mult(self.C, x[k]), x[k - 1], x[k])
        return x

    # -- (18), (19), (21) --------------------------------------------------------------------
    def source_map(self, v: np.ndarray) -> np.ndarray:
        """``(P v)_n = M (v_n + v_{n+1}) / 2``."""
        Mv = self.mult_levels(self.M, v)
        return 0.5 * (Mv[1:] + Mv[:-1])

    def solve_forward(self, v: np.ndarray) -> np.ndarray:
        """(18): ``z_t - Laplace z = v``, ``dz/dn = 0``, ``z(0) = 0``; ``v`` on levels."""
        return self.solve_H(self.source_map(v))

    def solve_backward(self, f: np.ndarray, g: np.ndarray | None = None) -> np.ndarray:
        """(19): ``-p_t - Laplace p = f``, ``dp/dn = 0``, ``p(T) = g``: exact transpose of (18)."""
        w = self.grid.weights
        load = self.mult_levels(self.M, f * w[:, None])
        if g is not None:
            load[-1] += self.mult(self.M, g)
        # The transpose of P maps to M-weighted level values; dividing by omega_k M
        # is the Riesz map of the trapezoidal inner product (no mass solve needed).
        x = self.solve_HT(load)
        out = self.zeros_levels()
        out[1:] += 0.5 * x
        out[:-1] += 0.5 * x
        return out / w[:, None]

    def solve_elliptic(self, w: np.ndarray, dual: bool = False) -> np.ndarray:
        """(21): ``(-Laplace + I) y_i = w_i`` at every row of ``w`` (``dual``: ``w`` is ``M w``)."""
        rhs = w if dual else self.mult_levels(self.M, w)
        return self.elliptic_solver.solve_many(np.asarray(rhs))

    # -- inner products and Riesz maps --------------------------------------------------------
    def inner(self, u: np.ndarray, w: np.ndarray) -> float:
        """Trapezoidal space-time L2 inner product ``sum_i omega_i u_i^T M w_i``."""
        Mw = self.mult_levels(self.M, w)
        return self.dot(u * self.grid.weights[:, None], Mw)

    def inner_U(self, u1: np.ndarray, u2: np.ndarray) -> float:
        """``(u1, u2)_U = sum_n dt (H u1)_n^T M^{-1} (H u2)_n`` (``u_0 = 0``)."""
        r1, r2 = self.apply_H(u1), self.apply_H(u2)
        Minv_r2 = self.mass_solver.solve_many(r2)
        return self.grid.dt * self.dot(r1, Minv_r2)

    def riesz_U(self, l: np.ndarray) -> np.ndarray:
        """The ``u`` with ``(u, w)_U = l(w)`` for all ``w`` (``u_0 = w_0 = 0``)."""
        x = self.solve_HT(l)
        return self.solve_H(self.mult_levels(self.M, x) / self.grid.dt)

    def destroy(self) -> None:
        for solver in (self.step_solver, self._elliptic, self._mass):
            if solver is not None:
                solver.destroy()
        for obj in (self.M, self.A, self.K, self.B, self.C, self._x, self._y):
            obj.destroy()
