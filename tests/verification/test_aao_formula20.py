"""The transposed linearisation of the all-at-once operator against the paper's formula (20).

For smooth m, y, u with u(0) = 0 and homogeneous Neumann data, (20) states

    int_0^T int y . F0'(m) u  =  int_0^T int f^y . u  +  int g_T^y . u(T),

    f^y = -a1 y_t - Laplace y - a2 m_t x y + a2 y_t x m + a2 y x m_t
          + 2 (m.y) Laplace m + 2 ((grad m)^T grad y) m + 2 ((grad m)^T grad m) y
          - |grad m|^2 y + (m.h) y + (m.y) h,
    g_T^y = a1 y(T) - a2 y(T) x m(T)

where the two gradient terms are read as ``2 sum_i d_i m (d_i m . y + d_i y . m)`` =
``2 grad m . grad(m . y)``, which is what integrating ``-2 (grad m : grad u)(m . y)`` by parts
gives.  Our discrete functional ``l = sum_n (dR_n/dm)^T y_n`` -- assembled per step from
``ufl.derivative`` of the residual tested with ``y_n`` (the action of
``ufl.adjoint(ufl.derivative(R_n, m))``), exactly as the all-at-once adjoint does -- paired with
u and times dt must converge to the right-hand side as h, dt -> 0.
"""

import dolfinx.fem as fem
import dolfinx.mesh as dm
import numpy as np
import ufl
from mpi4py import MPI

from llgfem.operators.all_at_once import AllAtOnceOperator
from llgfem.physics import FieldSpec, LLGParameters
from llgfem.problem import LLGProblem
from llgfem.solvers.heat import HeatSolver
from llgfem.solvers.llg import LLGSolver
from llgfem.spacetime import TimeGrid, create_vector_space, interpolate_levels
from llgfem.verification import convergence_rate

A1, A2, T = 1.3, 0.6, 0.5
H = (0.3, -0.2, 0.5)


def m_fn(x, t, lib):
    return [lib.cos(x[0]) * (1 + t), lib.sin(2 * x[0]) * 0 + 0.5 * lib.cos(2 * x[0]) * t,
            1 + 0.2 * t * t + 0 * x[0]]


def y_fn(x, t, lib):
    return [lib.cos(x[0]) * (1 - t), 0.3 + 0 * x[0], lib.cos(3 * x[0]) * t]


def u_fn(x, t, lib):
    return [t * lib.cos(2 * x[0]), t * t * (1 + 0 * x[0]), lib.sin(t) * lib.cos(x[0])]


def continuous_pairing(mesh, nq=10):
    """int_0^T int f^y . u + int g_T^y . u(T) by Gauss-Legendre in time, high degree in space."""
    x = ufl.SpatialCoordinate(mesh)
    tc = fem.Constant(mesh, 0.0)
    t = ufl.variable(tc)
    m = ufl.as_vector(m_fn(x, t, ufl))
    y = ufl.as_vector(y_fn(x, t, ufl))
    u = ufl.as_vector(u_fn(x, t, ufl))
    h = ufl.as_vector(H)
    mt, yt = ufl.diff(m, t), ufl.diff(y, t)
    gm, gy = ufl.grad(m), ufl.grad(y)
    lap_m, lap_y = ufl.div(gm), ufl.div(gy)
    f_y = (-A1 * yt - lap_y - A2 * ufl.cross(mt, y) + A2 * ufl.cross(yt, m)
           + A2 * ufl.cross(y, mt) + 2 * ufl.dot(m, y) * lap_m
           + 2 * ufl.dot(gm, ufl.dot(gm.T, y) + ufl.dot(gy.T, m))  # 2 grad m . grad(m.y)
           - ufl.inner(gm, gm) * y + ufl.dot(m, h) * y + ufl.dot(m, y) * h)
    dxq = ufl.dx(metadata={"quadrature_degree": 10})
    volume = fem.form(ufl.dot(f_y, u) * dxq)
    g_t = A1 * y - A2 * ufl.cross(y, m)
    final = fem.form(ufl.dot(g_t, u) * dxq)
    nodes, weights = np.polynomial.legendre.leggauss(nq)
    total = 0.0
    for s, w in zip(nodes, weights):
        tc.value = 0.5 * T * (s + 1)
        total += 0.5 * T * w * fem.assemble_scalar(volume)
    tc.value = T
    total += fem.assemble_scalar(final)
    return mesh.comm.allreduce(total, op=MPI.SUM)


def mesh_of(cells):
    return dm.create_interval(MPI.COMM_WORLD, cells, [0.0, np.pi])  # d/dn of all fields = 0


def discrete_pairing(cells, n_t):
    V = create_vector_space(mesh_of(cells))
    grid = TimeGrid(T, n_t)
    solver = LLGSolver(V, grid, LLGParameters(a1=A1, a2=A2),
                       FieldSpec(kind="static", amplitude=1.0, direction=H))
    m = interpolate_levels(V, lambda x, t: np.stack(m_fn(x, t, np)), grid.times)
    F = AllAtOnceOperator(LLGProblem(solver, m[0]), HeatSolver(V, grid),
                          estimate_parameters=False)
    y = interpolate_levels(V, lambda x, t: np.stack(y_fn(x, t, np)), grid.midpoints)
    u = interpolate_levels(V, lambda x, t: np.stack(u_fn(x, t, np)), grid.times)
    load = np.zeros_like(u)
    for k in range(F.N):  # the transposed linearisation, as in AllAtOnceDerivative.adjoint
        l0, l1 = solver.transposed_linearisation(k, m[k], m[k + 1], y[k])
        load[k] += l0
        load[k + 1] += l1
    return grid.dt * F.heat.dot(load, u)


def test_transposed_linearisation_converges_to_formula_20():
    paper = continuous_pairing(mesh_of(4))  # exact geometry in 1-D: any mesh will do
    errs, hs = [], []
    for cells in (16, 32, 64):
        ours = discrete_pairing(cells, cells + 1)
        errs.append(abs(ours - paper) / abs(paper))
        hs.append(1.0 / cells)
    rates = convergence_rate(hs, errs)
    assert errs[-1] < 1e-2, errs
    assert rates[-1] > 1.5, (errs, rates)
