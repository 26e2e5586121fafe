"""Reduced operator: dot and Taylor tests, and convergence of the discrete adjoint to (25)-(30).

1. ``F'(a)`` (linearised LLG steps) and ``F'(a)*`` (transposed steps, backward in time) are
   exact transposes: ``<F'(a) b, r>_Y = (b, F'(a)* r)_X`` to round-off (dot test).
2. ``|F(a + e b) - F(a) - e F'(a) b| = O(e^2)`` (Taylor test, slope 2).
3. Optimise-then-discretise: the paper's continuous adjoint equation (26)-(28) with the sources
   (29)-(30), written by hand in UFL below (only the Laplacians integrated by parts) and
   discretised *independently* (Crank-Nicolson at the time levels, backward from the terminal
   condition (28)), gives the gradient (25) by the midpoint rule.  Its difference to the
   discrete (discretise-then-optimise) gradient ``F'(a)* r`` must vanish under refinement of h
   and dt together at a clear rate.

Paper 002 Test 2 (h = -(cos x, cos x, 0), homogeneous Neumann data) at a = (2, 0.4), two coils:
``a~ = 1`` with ``p = (1, 1, 1)`` (paper §4.3: only the terminal source (30) is active) and a
delta transfer with ``p = (1, -0.5, 0.2)`` (the time-dependent source (29)); smooth residuals
``r_kl(t)``.  Notation as in :mod:`llgfem.operators.reduced`.
"""

import dolfinx.fem as fem
import dolfinx.fem.petsc as fem_petsc
import dolfinx.mesh as dm
import numpy as np
import pytest
import ufl
from mpi4py import MPI

from llgfem.operators.observation import Coil, Observation
from llgfem.operators.reduced import ReducedOperator
from llgfem.paper_cases import paper_case
from llgfem.problem import LLGProblem
from llgfem.solvers.llg import LLGSolver
from llgfem.spacetime import (
    TimeGrid,
    array_to_function,
    create_vector_space,
    interpolate_levels,
)
from llgfem.verification import convergence_rate, dot_test, taylor_test

A = np.array([2.0, 0.4])
T = 0.2
P_CONST, P_DELTA = (1.0, 1.0, 1.0), (1.0, -0.5, 0.2)


def reduced(cells: int, n_t: int, case_number: int = 2, comm=MPI.COMM_WORLD):
    case = paper_case(case_number)
    V = create_vector_space(dm.create_interval(comm, cells, [0.0, 2 * np.pi]))
    grid = TimeGrid(T, n_t)
    solver = LLGSolver(V, grid, case.params, case.field, g=case.g)
    m0 = interpolate_levels(V, case.exact_np, [0.0])[0]
    obs = Observation(V, grid, 1.0, [Coil(P_CONST, ("constant", 1.0)), Coil(P_DELTA)],
                      mu0=1.0)
    return ReducedOperator(LLGProblem(solver, m0, obs)), case


@pytest.mark.parametrize("case_number", [2, 3])
def test_dot_and_taylor(case_number):
    F, _ = reduced(16, 11, case_number)
    L = F.derivative(A)
    rng = np.random.default_rng(7)
    n = F.data_shape[0] * F.data_shape[1] * F.data_shape[2]
    for _ in range(3):
        res = dot_test(L.apply, L.adjoint, rng.standard_normal(2), rng.standard_normal(n),
                       F.inner_domain, F.inner_range)
        assert res.relative_error < 1e-10
    t = taylor_test(F, L.apply, A, np.array([0.3, -0.2]), lambda y: np.sqrt(F.inner_range(y, y)),
                    eps=(4e-2, 2e-2, 1e-2, 5e-3))
    assert np.all(np.abs(t.slopes1 - 2.0) < 0.1), t.slopes1
    assert np.all(np.abs(t.slopes0 - 1.0) < 0.1), t.slopes0


# ---- optimise-then-discretise: the paper's adjoint equation (26)-(30) -------------------------
def residual_functions(t):
    """Smooth r_kl(t) for the two coils (k = 0): values, integrals over (0, T), derivatives."""
    w = np.pi / T
    r = (np.cos(w * t + 0.3), 0.5 + np.sin(w * t))
    integral = ((np.sin(w * T + 0.3) - np.sin(0.3)) / w, 0.5 * T + (1 - np.cos(w * T)) / w)
    derivative = (-w * np.sin(w * t + 0.3), w * np.cos(w * t))
    return r, integral, derivative


def adjoint_forms(V, case, q, m_pair, q_next, dt, a, src, t_mid):
    """Crank-Nicolson step of (26)-(27) for q_i (trial) from q_{i+1}, by hand from the paper."""
    mesh = V.mesh
    x = ufl.SpatialCoordinate(mesh)
    qi, w = ufl.TrialFunction(V), ufl.TestFunction(V)
    m0, m1 = m_pair
    m, mt = 0.5 * (m0 + m1), (m1 - m0) / dt
    qb, qt = 0.5 * (qi + q_next), (q_next - qi) / dt
    h = ufl.as_vector(case.field.expression(x, t_mid))
    G, Q = ufl.grad(m), ufl.grad(qb)
    a1, a2 = float(a[0]), float(a[1])
    strong = (-a1 * qt - a2 * ufl.cross(m, qt) - 2 * a2 * ufl.cross(mt, qb)
              + 2 * G * (G.T * qb) + 2 * G * (Q.T * m)
              + (-ufl.inner(G, G) + ufl.dot(m, h)) * qb + ufl.dot(m, qb) * h)
    form = (ufl.inner(strong, w) + ufl.inner(Q, ufl.grad(w))  # -Laplace q, by parts (27)
            - 2 * ufl.inner(G, ufl.grad(ufl.dot(m, qb) * w))) * ufl.dx  # 2 (m.q) Laplace m
    form -= ufl.inner(src, w) * ufl.dx
    return ufl.lhs(form), ufl.rhs(form)


def continuous_gradient(F, case, m, a):
    """Gradient (25) from the independently discretised adjoint problem (26)-(30)."""
    V, grid = F.solver.V, F.solver.grid
    dt, times = grid.dt, grid.times
    _, integral, _ = residual_functions(0.0)
    mf = [fem.Function(V) for _ in range(2)]
    q, q_next = fem.Function(V), fem.Function(V)
    tc = fem.Constant(V.mesh, 0.0)
    p_c, p_d = (fem.Constant(V.mesh, np.array(p)) for p in (P_CONST, P_DELTA))
    r_val, r_der = fem.Constant(V.mesh, 0.0), fem.Constant(V.mesh, 0.0)
    # (28) with (30): a1 q(T) + a2 m(T) x q(T) = K~_T r = -mu0 c (p_c int r_0 + p_d r_1(T))
    w, qi = ufl.TestFunction(V), ufl.TrialFunction(V)
    array_to_function(m[-1], mf[1])
    terminal = fem_petsc.LinearProblem(
        ufl.inner(float(a[0]) * qi + float(a[1]) * ufl.cross(mf[1], qi), w) * ufl.dx,
        ufl.inner(-(float(integral[0]) * p_c + r_val * p_d), w) * ufl.dx, u=q,
        petsc_options_prefix="test_adj_terminal_",
        petsc_options={"ksp_type": "preonly", "pc_type": "lu"})
    r_val.value = residual_functions(T)[0][1]
    terminal.solve()
    src = r_der * p_d  # (29): K~ r = -d/dt(-mu0 c p_d r_1) (the constant coil: no source)
    lhs, rhs = adjoint_forms(V, case, q, mf, q_next, dt, a, src, tc)
    step = fem_petsc.LinearProblem(lhs, rhs, u=q, petsc_options_prefix="test_adj_step_",
                                   petsc_options={"ksp_type": "preonly", "pc_type": "lu"})
    mb, mt = 0.5 * (mf[0] + mf[1]), (mf[1] - mf[0]) / dt
    g_forms = [fem.form(-ufl.inner(mt, 0.5 * (q + q_next)) * ufl.dx),
               fem.form(ufl.inner(ufl.cross(mb, mt), 0.5 * (q + q_next)) * ufl.dx)]
    grad = np.zeros(2)
    for i in range(grid.n_t - 2, -1, -1):
        q_next.x.array[:] = q.x.array
        array_to_function(m[i], mf[0])
        array_to_function(m[i + 1], mf[1])
        t_mid = times[i] + 0.5 * dt
        tc.value = t_mid
        r_der.value = residual_functions(t_mid)[2][1]
        step.solve()
        grad += [dt * fem.assemble_scalar(f) for f in g_forms]
    return V.mesh.comm.allreduce(grad, op=MPI.SUM)


def discrete_gradient(F, a):
    N = F.solver.grid.n_t - 1
    r_fn, _, _ = residual_functions(F.solver.grid.midpoints)
    r = np.zeros((1, 2, N))
    r[0, 0], r[0, 1] = r_fn
    return F.derivative(a).adjoint(r.ravel())


def test_discrete_adjoint_converges_to_continuous_adjoint():
    diffs, hs = [], []
    for cells, n_t in ((10, 6), (20, 11), (40, 21)):
        F, case = reduced(cells, n_t)
        m = F.state(A)
        g_d = discrete_gradient(F, A)
        g_c = continuous_gradient(F, case, m, A)
        diffs.append(np.linalg.norm(g_d - g_c) / np.linalg.norm(g_c))
        hs.append(2 * np.pi / cells)
    rates = convergence_rate(hs, diffs)
    assert diffs[-1] < 0.02, diffs
    assert np.all(rates > 1.5), (diffs, rates)
