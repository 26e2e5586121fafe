"""Linear solver presets (issue 16): the automatic choice, user overrides, iterative solves and
transposed solves against the direct ones, and the adjoint dot test with iterative step solves.
"""

import dolfinx.mesh as dm
import numpy as np
import pytest
import ufl
from mpi4py import MPI
from petsc4py import PETSc

from llgfem.operators.observation import Coil, Observation
from llgfem.operators.reduced import ReducedOperator
from llgfem.physics import FieldSpec, LLGParameters
from llgfem.problem import LLGProblem
from llgfem.solvers.heat import HeatSolver, assemble_matrix
from llgfem.solvers.linear import (
    NATIVE_LU_LIMIT,
    LinearSolver,
    direct_limit,
    preset_options,
)
from llgfem.solvers.llg import LLGSolver, newton_linear_options
from llgfem.spacetime import TimeGrid, create_vector_space, global_dot
from llgfem.verification import dot_test

A = np.array([1.0, 0.5])
FIELD = FieldSpec(kind="ffp", gradient=2.0, amplitude=1.0, frequency=1.0,
                  direction=(1.0, 0.0, 0.0))


def test_auto_preset_depends_on_size_dimension_ranks_and_reuse():
    assert preset_options("auto", 1000, 1, tdim=2)["ksp_type"] == "preonly"
    assert preset_options("auto", 10**6, 1, tdim=2)["ksp_type"] == "cg"
    # 3-D fill: the factorisation stops paying off much earlier, earlier still when it is
    # redone every solve (Newton)
    n3 = direct_limit(3, 1, reuse=True)
    assert direct_limit(3, 1, reuse=False) < n3 < direct_limit(2, 1, reuse=True)
    assert preset_options("auto", n3 + 1, 1, tdim=3)["pc_type"] != "lu"
    assert direct_limit(2, 2) < direct_limit(2, 1)
    newton = preset_options("auto", 10**6, 2, tdim=3, symmetric=False, reuse=False)
    assert (newton["ksp_type"], newton["pc_type"]) == ("gmres", "bjacobi")
    # one rank, small: PETSc's own LU; several ranks: MUMPS
    assert preset_options("direct", 100, 1)["pc_factor_mat_solver_type"] == "petsc"
    assert preset_options("direct", NATIVE_LU_LIMIT + 1, 1)["pc_factor_mat_solver_type"] == "mumps"
    assert preset_options("direct", 100, 2)["pc_factor_mat_solver_type"] == "mumps"
    with pytest.raises(ValueError, match="preset"):
        preset_options("fast", 10)


def test_landau_lifshitz_block_system_no_longer_forces_mumps_on_one_rank():
    mesh = dm.create_unit_interval(MPI.COMM_SELF, 50)
    V = create_vector_space(mesh)
    opts = newton_linear_options("auto", V, 2, 1)
    assert opts["pc_factor_mat_solver_type"] == "petsc"
    assert newton_linear_options("auto", V, 2, 2)["pc_factor_mat_solver_type"] == "mumps"


def elliptic_and_jacobian(comm=MPI.COMM_WORLD):
    mesh = dm.create_unit_square(comm, 8, 8)
    V = create_vector_space(mesh)
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    K = assemble_matrix((ufl.inner(ufl.grad(u), ufl.grad(v)) + ufl.inner(u, v)) * ufl.dx)
    b = ufl.as_vector((0.3, -1.0, 0.5))  # a cross-product term: not symmetric
    J = assemble_matrix((10 * ufl.inner(u, v) + ufl.inner(ufl.cross(b, u), v)
                         + 0.1 * ufl.inner(ufl.grad(u), ufl.grad(v))) * ufl.dx)
    return V, K, J


def rel(a, b):
    d = a - b
    return np.sqrt(global_dot(MPI.COMM_WORLD, d, d) / global_dot(MPI.COMM_WORLD, b, b))


@pytest.mark.parametrize("symmetric", [True, False])
def test_iterative_solves_and_transposed_solves_match_direct(symmetric):
    V, K, J = elliptic_and_jacobian()
    A = K if symmetric else J
    rng = np.random.default_rng(2 + MPI.COMM_WORLD.rank)
    b = rng.standard_normal(A.getLocalSize()[0])
    direct = LinearSolver(A, "llgfem_test_direct_", "direct")
    it = LinearSolver(A, "llgfem_test_iter_", "iterative", symmetric=symmetric)
    assert it.ksp.getType() == ("cg" if symmetric else "gmres")
    assert not it.direct
    assert rel(it.solve_array(b), direct.solve_array(b)) < 1e-9
    assert rel(it.solve_transpose_array(b), direct.solve_transpose_array(b)) < 1e-9
    if not symmetric:  # the transpose really is a different solve
        assert rel(direct.solve_transpose_array(b), direct.solve_array(b)) > 1e-3
    guess = direct.solve_array(b)
    it.solve_array(b, guess=guess)
    assert it.ksp.getIterationNumber() <= 1  # started from the solution
    for s in (direct, it):
        s.destroy()


def test_user_options_override_the_preset():
    V, K, _ = elliptic_and_jacobian()  # keep V: the mesh owns the communicator
    db = PETSc.Options()
    db["llgfem_test_user_ksp_type"] = "minres"
    db["llgfem_test_user_pc_type"] = "jacobi"
    try:
        s = LinearSolver(K, "llgfem_test_user_", "direct")
        assert (s.ksp.getType(), s.ksp.getPC().getType()) == ("minres", "jacobi")
        s.destroy()
    finally:
        db.delValue("llgfem_test_user_ksp_type")
        db.delValue("llgfem_test_user_pc_type")
    s = LinearSolver(K, "llgfem_test_user_", "direct")  # nothing leaked
    assert s.ksp.getType() == "preonly"
    s.destroy()


def test_iterative_heat_sweeps_match_direct():
    mesh = dm.create_unit_square(MPI.COMM_WORLD, 10, 10)
    V = create_vector_space(mesh)
    grid = TimeGrid(0.5, 9)
    d, i = HeatSolver(V, grid, "direct"), HeatSolver(V, grid, "iterative", prefix="llgfem_it_")
    v = np.cos(np.arange(grid.n_t))[:, None] * np.linspace(0, 1, d.n)[None, :]
    assert rel(i.solve_forward(v), d.solve_forward(v)) < 1e-9
    assert rel(i.solve_backward(v, v[-1]), d.solve_backward(v, v[-1])) < 1e-9
    assert rel(i.solve_elliptic(v[:3]), d.solve_elliptic(v[:3])) < 1e-9
    assert abs(i.inner_U(v, v) / d.inner_U(v, v) - 1) < 1e-9
    for s in (d, i):
        s.destroy()


@pytest.mark.parametrize("form", ["gilbert", "landau_lifshitz"])
def test_adjoint_dot_test_with_iterative_step_solves(form):
    """Newton, linearised and adjoint (KSPSolveTranspose) step solves all iterative."""
    mesh = dm.create_rectangle(MPI.COMM_WORLD, [[-1.0, -1.0], [1.0, 1.0]], [6, 6])
    V = create_vector_space(mesh)
    grid = TimeGrid(0.3, 6)
    params = LLGParameters(a1=A[0], a2=A[1], exchange=0.05)
    solver = LLGSolver(V, grid, params, FIELD, form=form, linear="iterative")
    assert solver.problem.solver.getKSP().getType() == "gmres"
    rng = np.random.default_rng(3 + MPI.COMM_WORLD.rank)
    m0 = np.tile([0.6, 0.0, 0.8], solver.n // 3) + 0.1 * rng.standard_normal(solver.n)
    obs = Observation(V, grid, 1.0, [Coil((1.0, 0.0, 0.0)), Coil((0.0, 1.0, 0.3))], mu0=1.0)
    F = ReducedOperator(LLGProblem(solver, m0, obs))
    L = F.derivative(A)
    assert solver.derivatives._solver().ksp.getType() == "gmres"
    r = np.random.default_rng(11)
    res = dot_test(L.apply, L.adjoint, r.standard_normal(2),
                   r.standard_normal(int(np.prod(F.data_shape))), F.inner_domain, F.inner_range)
    assert res.relative_error < 1e-8, res.relative_error
    F.cache.destroy()
