"""Convergence rates of the heat-type solvers (18), (19), (21) against manufactured solutions.

P1 in space: L2 rate 2 in h.  Crank-Nicolson in time: rate 2 in dt (interior levels of the
backward problem; its end levels approximate p(dt/2) and p(T - dt/2), see llgfem.solvers.heat).
Spatial studies use solutions linear in t, for which the time discretisation is exact, so the
observed rate is purely spatial; temporal studies use self-convergence on a fixed mesh.
"""

import dolfinx.mesh as dm
import numpy as np
import pytest
import ufl
from mpi4py import MPI

from llgfem.solvers.heat import HeatSolver
from llgfem.spacetime import TimeGrid, create_vector_space, interpolate_levels, l2_errors_levels
from llgfem.verification import convergence_rate

AMPL = (1.0, -0.5, 2.0)  # component amplitudes of the manufactured fields


def make_mesh(comm, dim, n):
    if dim == 1:
        return dm.create_interval(comm, n, [0.0, 1.0])
    if dim == 2:
        return dm.create_unit_square(comm, n, n)
    return dm.create_unit_cube(comm, n, n, n)


def phi(x, lib, dim):
    """prod_j cos(pi x_j): satisfies d(phi)/dn = 0 on the unit cube; -Laplace phi = dim pi^2 phi."""
    out = 1.0
    for j in range(dim):
        out = out * lib.cos(np.pi * x[j])
    return out


def vec(scalar_fn, lib):
    comps = [a * scalar_fn for a in AMPL]
    return ufl.as_vector(comps) if lib is ufl else np.stack(comps)


def levels(V, fn, times):
    return interpolate_levels(V, fn, times)


def st_error(V, grid, values, exact, times=None):
    """Trapezoidal L2(0,T;L2) error (and the per-level squared errors)."""
    e2 = l2_errors_levels(V, values, exact, grid.times if times is None else times)
    return np.sqrt(np.dot(grid.weights, e2)), e2


# --- spatial rates (time-exact solutions) -----------------------------------------------------
SPACE_N = {1: (16, 32, 64), 2: (8, 16, 32), 3: (4, 8, 16)}


def forward_space_error(dim, n, comm=MPI.COMM_WORLD):
    """z = t phi(x): source v = phi + t dim pi^2 phi."""
    V = create_vector_space(make_mesh(comm, dim, n))
    grid = TimeGrid(0.5, 3)
    lam = dim * np.pi**2
    v = levels(V, lambda x, t: vec(phi(x, np, dim) * (1 + t * lam), np), grid.times)
    z = HeatSolver(V, grid).solve_forward(v)
    err, _ = st_error(V, grid, z, lambda x, t: vec(phi(x, ufl, dim) * t, ufl))
    return err


def backward_space_error(dim, n, comm=MPI.COMM_WORLD):
    """p = phi(x) (steady): -p_t - Laplace p = lam phi, p(T) = phi; time-exact for the scheme."""
    V = create_vector_space(make_mesh(comm, dim, n))
    grid = TimeGrid(0.5, 3)
    lam = dim * np.pi**2
    f = levels(V, lambda x, t: vec(phi(x, np, dim) * lam, np), grid.times)
    g = levels(V, lambda x, t: vec(phi(x, np, dim), np), [grid.T])[0]
    p = HeatSolver(V, grid).solve_backward(f, g)
    err, _ = st_error(V, grid, p, lambda x, t: vec(phi(x, ufl, dim), ufl))
    return err


def elliptic_space_error(dim, n, comm=MPI.COMM_WORLD):
    """(-Laplace + 1) y = (1 + lam) y for y = phi."""
    V = create_vector_space(make_mesh(comm, dim, n))
    grid = TimeGrid(1.0, 2)
    lam = dim * np.pi**2
    w = levels(V, lambda x, t: vec(phi(x, np, dim) * (1 + lam) * (1 + t), np), grid.times)
    y = HeatSolver(V, grid).solve_elliptic(w)
    err, _ = st_error(V, grid, y, lambda x, t: vec(phi(x, ufl, dim) * (1 + t), ufl))
    return err


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("problem", [forward_space_error, backward_space_error,
                                     elliptic_space_error])
def test_space_rate_p1(problem, dim):
    ns = SPACE_N[dim]
    errors = [problem(dim, n) for n in ns]
    rates = convergence_rate([1.0 / n for n in ns], errors)
    assert abs(rates[-1] - 2.0) < 0.15, (errors, rates)


# --- temporal rates (self-convergence on a fixed mesh) -----------------------------------------
# The backward problem's terminal half step adds an O(dt^3) pre-asymptotic term (rates 1.6, 1.8,
# 1.9, 1.95 from n_t = 9 on), so the temporal study starts at n_t = 33.
TIME_LEVELS = (33, 65, 129, 257)

def time_solutions(direction, n_ts, dim=1, n=8):
    V = create_vector_space(make_mesh(MPI.COMM_WORLD, dim, n))
    out = []
    for n_t in n_ts:
        grid = TimeGrid(1.0, n_t)
        hs = HeatSolver(V, grid)
        src = levels(V, lambda x, t: vec(phi(x, np, dim) * np.cos(3 * t), np), grid.times)
        if direction == "forward":
            out.append((grid, hs, hs.solve_forward(src)))
        else:
            g = levels(V, lambda x, t: vec(phi(x, np, dim), np), [1.0])[0]
            out.append((grid, hs, hs.solve_backward(src, g)))
    return out


@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_time_rate_crank_nicolson(direction):
    n_ts = TIME_LEVELS
    sols = time_solutions(direction, n_ts)
    diffs = []
    for (g1, hs, u1), (_, _, u2) in zip(sols[:-1], sols[1:]):
        d = u1 - u2[::2]
        if direction == "backward":  # interior levels (end levels are half-step values)
            d = d[1:-1]
            w = g1.weights[1:-1]
        else:
            w = g1.weights
        Md = hs.mult_levels(hs.M, d)
        diffs.append(np.sqrt(hs.dot(d * w[:, None], Md)))
    rates = convergence_rate([1.0 / (n - 1) for n in n_ts[:-1]], diffs)
    assert abs(rates[-1] - 2.0) < 0.1, (diffs, rates)


def test_backward_end_levels_are_half_step_values():
    """p_N approximates p(T - dt/2) to second order; it is first order as an approximation of g."""
    sols = time_solutions("backward", TIME_LEVELS)
    end = [u[-1] for _, _, u in sols]
    hs = sols[0][1]

    def norm(a):
        return np.sqrt(hs.dot(a, hs.mult(hs.M, a)))

    # successive differences of p_N: O(dt) (the evaluation point T - dt/2 moves with dt)
    d = [norm(a - b) for a, b in zip(end[:-1], end[1:])]
    rates = convergence_rate([1.0 / (n - 1) for n in TIME_LEVELS[:-1]], d)
    assert abs(rates[-1] - 1.0) < 0.1, rates
