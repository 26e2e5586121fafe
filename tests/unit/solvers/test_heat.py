"""Heat-type solvers: exact discrete transposes, Riesz maps and serial/parallel agreement."""

import dolfinx.mesh as dm
import numpy as np
import pytest
from mpi4py import MPI

from llgfem.solvers.heat import HeatSolver
from llgfem.spacetime import TimeGrid, create_vector_space, interpolate_levels
from llgfem.verification import dot_test

ROUNDOFF = 1e-12


def solver(comm=MPI.COMM_WORLD, dim=1, n=12, n_t=11, T=0.7):
    mesh = {
        1: lambda: dm.create_interval(comm, n, [0.0, 2.0]),
        2: lambda: dm.create_rectangle(comm, [[0, 0], [1, 2]], [n, n]),
        3: lambda: dm.create_unit_cube(comm, n // 2, n // 2, n // 2),
    }[dim]()
    return HeatSolver(create_vector_space(mesh), TimeGrid(T, n_t))


def random_levels(hs, rng, k=None):
    return rng.standard_normal((k or hs.grid.n_t, hs.n))


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_backward_is_exact_transpose_of_forward(dim):
    hs = solver(dim=dim)
    rng = np.random.default_rng(1 + MPI.COMM_WORLD.rank)
    v, f = random_levels(hs, rng), random_levels(hs, rng)
    g = rng.standard_normal(hs.n)

    def pair(z, fg):  # <z, f> + z_N^T M g
        return hs.inner(z, fg[0]) + hs.dot(z[-1], hs.mult(hs.M, fg[1]))

    res = dot_test(hs.solve_forward, lambda fg: hs.solve_backward(*fg), v, (f, g),
                   hs.inner, pair)
    assert res.relative_error < ROUNDOFF


def test_H_transpose_and_inverse():
    hs = solver(dim=2)
    rng = np.random.default_rng(7 + MPI.COMM_WORLD.rank)
    u = random_levels(hs, rng)
    u[0] = 0.0
    x = random_levels(hs, rng, hs.grid.n_t - 1)
    res = dot_test(hs.apply_H, hs.apply_HT, u, x, hs.dot, hs.dot)
    assert res.relative_error < ROUNDOFF
    r = hs.apply_H(u)
    assert np.sqrt(hs.dot(hs.solve_H(r) - u, hs.solve_H(r) - u)) < ROUNDOFF * np.sqrt(hs.dot(u, u))
    l = random_levels(hs, rng)
    l[0] = 0.0
    back = hs.apply_HT(hs.solve_HT(l))
    assert np.sqrt(hs.dot(back - l, back - l)) < ROUNDOFF * np.sqrt(hs.dot(l, l))


def test_riesz_map_of_U_inner_product():
    hs = solver(dim=1, n=20)
    rng = np.random.default_rng(3 + MPI.COMM_WORLD.rank)
    l, w = random_levels(hs, rng), random_levels(hs, rng)
    l[0] = w[0] = 0.0
    u = hs.riesz_U(l)
    lhs, rhs = hs.inner_U(u, w), hs.dot(l, w)
    # inner_U applies M^{-1} by a direct solve: round-off times cond(M) (~10 for P1 mass)
    assert abs(lhs - rhs) < 100 * ROUNDOFF * abs(rhs)
    assert hs.inner_U(w, w) > 0


def test_elliptic_solves_every_level():
    hs = solver(dim=2)
    rng = np.random.default_rng(5 + MPI.COMM_WORLD.rank)
    w = random_levels(hs, rng)
    y = hs.solve_elliptic(w)
    resid = hs.mult_levels(hs.K, y) - hs.mult_levels(hs.M, w)
    assert np.sqrt(hs.dot(resid, resid)) < ROUNDOFF * np.sqrt(hs.dot(w, w)) * 1e2


def smooth(x, t):
    return np.stack([np.cos(x[0]) * (1 + t), np.sin(x[1] + t), x[0] * x[1] * t])


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_serial_and_parallel_agree(dim):
    """Global norms of (18), (19), (21) on COMM_WORLD equal those of a one-rank run."""
    norms = []
    for comm in (MPI.COMM_WORLD, MPI.COMM_SELF):
        hs = solver(comm=comm, dim=dim, n=8, n_t=6)
        v = interpolate_levels(hs.V, smooth, hs.grid.times)
        z = hs.solve_forward(v)
        p = hs.solve_backward(v, v[-1])
        y = hs.solve_elliptic(v)
        norms.append([hs.inner(a, a) for a in (z, p, y)])
    a, b = np.array(norms)
    assert np.all(np.abs(a - b) <= 1e-10 * np.abs(b)), (a, b)


def test_solver_prefix_options_override_preset():
    from petsc4py import PETSc

    opts = PETSc.Options()
    opts["llgfem_test_heat_step_ksp_type"] = "cg"
    opts["llgfem_test_heat_step_pc_type"] = "jacobi"
    opts["llgfem_test_heat_step_ksp_rtol"] = 1e-13
    try:
        mesh = dm.create_interval(MPI.COMM_WORLD, 10, [0.0, 1.0])
        hs = HeatSolver(create_vector_space(mesh), TimeGrid(1.0, 5), prefix="llgfem_test_heat_")
        assert hs.step_solver.ksp.getType() == "cg"
        ref = solver(n=10, n_t=5, T=1.0)
        v = np.ones((5, hs.n))
        za, zb = hs.solve_forward(v), ref.solve_forward(v)
        assert np.allclose(za, zb, rtol=1e-9, atol=1e-12)
    finally:
        for k in ("ksp_type", "pc_type", "ksp_rtol"):
            opts.delValue("llgfem_test_heat_step_" + k)
