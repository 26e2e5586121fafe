"""The cheaper LLG sweeps of issue 16: per-term quadrature degrees, the chord forward sweep with
its sensitivities (``LLGSolver.forward_linearised``) and the reduced operator built on it.

Each is compared with the reference computation it replaces (merged-degree forms; SNES Newton
forward + separate linearised sweep), serially and on 2 ranks.
"""

import dolfinx.fem as fem
import dolfinx.fem.petsc as fem_petsc
import dolfinx.mesh as dm
import numpy as np
import pytest
import ufl
from mpi4py import MPI

from llgfem.forms.llg import llg_step_residual
from llgfem.operators.observation import Coil, Observation
from llgfem.operators.reduced import ReducedOperator
from llgfem.physics import FieldSpec, LLGParameters
from llgfem.problem import LLGProblem
from llgfem.regularisation.gauss_newton import levenberg_marquardt
from llgfem.solvers.llg import LLGSolver, assemble_owned
from llgfem.spacetime import TimeGrid, create_vector_space, interpolate_levels
from llgfem.verification import dot_test

FFP = FieldSpec(kind="ffp", gradient=2.0, amplitude=1.0, frequency=1.0,
                direction=(1.0, 0.0, 0.0), offset=(0.0, 0.0, 0.5))
A = np.array([1.2, 0.4])


def _m0(x, t=0.0):
    m = np.stack([0.6 + 0.2 * np.sin(3 * x[0]), 0.2 * np.cos(2 * x[1]), 0.8 + 0 * x[0]])
    return m / np.linalg.norm(m, axis=0)


def cube_problem(n=3, n_t=5, linear="auto"):
    mesh = dm.create_unit_cube(MPI.COMM_WORLD, n, n, n)
    V = create_vector_space(mesh)
    grid = TimeGrid(0.3, n_t)
    solver = LLGSolver(V, grid, LLGParameters(a1=A[0], a2=A[1], exchange=0.05), FFP,
                       linear=linear)
    obs = Observation(V, grid, [1.0, lambda x: 1.0 + x[0]],
                      [Coil((1.0, 0.0, 0.0)), Coil((0.0, 1.0, 0.2))], mu0=1.0)
    return LLGProblem(solver, interpolate_levels(V, _m0, [0.0])[0], obs)


def rel(a, b) -> float:
    comm = MPI.COMM_WORLD
    num = comm.allreduce(float(np.sum((np.asarray(a) - b) ** 2)))
    return float(np.sqrt(num / comm.allreduce(float(np.sum(np.asarray(b) ** 2)))))


def test_per_term_quadrature_gives_the_same_forms():
    """Residual and both step Jacobians of the per-term-degree form equal those of the merged
    (degree 4) form to rounding, with the FFP field (a degree-4 data term)."""
    problem = cube_problem()
    s = problem.solver
    m = s.solve(problem.m0)
    s.set_step(2, m[2], m[3] + 0.01 * m[1])  # not a converged step: R != 0
    merged = llg_step_residual(s.m0, s.m1, s.v, s.grid.dt, s.coefficients)
    degrees = {i.metadata().get("quadrature_degree") for i in s.residual_ufl.integrals()}
    assert degrees == {0, 2, 3, 4}  # exchange, mass/gradient terms, gyro, data terms
    for unknown in (s.m1, s.m0):
        mats = []
        for form in (s.residual_ufl, merged):
            J = fem_petsc.assemble_matrix(fem.form(ufl.derivative(form, unknown)))
            J.assemble()
            mats.append(J)
        scale = mats[1].norm()
        mats[0].axpy(-1.0, mats[1])
        assert mats[0].norm() <= 1e-13 * scale
    r_split = s.step_residual(2, m[2], m[3] + 0.01 * m[1])
    r_merged = assemble_owned(fem.form(merged))
    assert rel(r_split, r_merged) < 1e-13


@pytest.mark.parametrize("linear", ["direct", "iterative"])
def test_chord_sweep_matches_newton_and_linearised(linear):
    """forward_linearised: the trajectory agrees with the SNES Newton one to the Newton
    tolerance and the sensitivities with the separate linearised sweep, with one Jacobian
    assembly per step."""
    problem = cube_problem(linear=linear)
    s = problem.solver
    betas = np.array([[1.0, 0.5], [0.0, -2.0]])
    m_ref = problem.forward(A)
    u_ref = problem.linearised(A, m_ref, betas)
    m, u = s.forward_linearised(A, problem.m0, betas)
    assert rel(m, m_ref) <= 1e-10
    assert rel(u, u_ref) <= 1e-8
    assert s.jacobian_assemblies == s.grid.n_t  # the first step's guess + one per step
    assert max(s.newton_iterations) <= 8
    m_warm, _ = s.forward_linearised(A * 1.01, problem.m0, betas[:, :0], warm_start=m)
    assert rel(m_warm, problem.forward(A * 1.01)) <= 1e-10


def test_tangents_in_levenberg_marquardt_and_dot_test():
    """ReducedOperator(tangents=True): the same Jacobian, the same LM iterates, and the cached
    sensitivities pass the dot-product test against the adjoint sweep."""
    ref, fused = (ReducedOperator(cube_problem(), tangents=t) for t in (False, True))
    x0 = np.array([1.4, 0.2])
    y = ref(A)
    fused(A)
    J_ref, J = ref.derivative(x0).sensitivities(), fused.derivative(x0).sensitivities()
    assert rel(J, J_ref) <= 1e-8
    counts = dict(fused.counters)
    fused.derivative(x0).apply(np.array([0.3, -1.0]))
    assert fused.counters == counts  # no further sweep
    res_ref = levenberg_marquardt(ref, y, x0, tau=1.5, delta=0.0, max_iter=1)
    res = levenberg_marquardt(fused, y, x0, tau=1.5, delta=0.0, max_iter=1)
    np.testing.assert_allclose(res.x, res_ref.x, rtol=1e-8)
    L = fused.derivative(res.x)
    rng = np.random.default_rng(4)
    out = dot_test(L.apply, L.adjoint, rng.standard_normal(2),
                   rng.standard_normal(y.size), fused.inner_domain, fused.inner_range)
    assert out.relative_error < 1e-8


def test_tangents_need_the_gilbert_form():
    mesh = dm.create_unit_interval(MPI.COMM_WORLD, 8)
    V = create_vector_space(mesh)
    grid = TimeGrid(0.1, 3)
    solver = LLGSolver(V, grid, LLGParameters(a1=1.0, a2=0.5), form="landau_lifshitz")
    obs = Observation(V, grid, [1.0], [Coil((1.0, 0.0, 0.0))], mu0=1.0)
    problem = LLGProblem(solver, interpolate_levels(V, _m0, [0.0])[0], obs)
    with pytest.raises(ValueError, match="tangents"):
        ReducedOperator(problem, tangents=True)


def test_tangent_prediction_saves_iterations():
    """With tangents the next forward solve starts from S(x) + S'(x) dx: fewer chord
    iterations than from S(x) alone, and the same trajectory."""
    op = ReducedOperator(cube_problem(), tangents=True)
    op(A)
    s, x = op.solver, A + np.array([0.02, -0.01])
    m_last, _ = s.forward_linearised(x, op.problem.m0, np.eye(2), warm_start=op.cache.last)
    plain = sum(s.newton_iterations)
    m_pred = op.state(x)  # from the prediction
    assert sum(s.newton_iterations) < plain, (s.newton_iterations, plain)
    assert rel(m_pred, m_last) <= 1e-9
