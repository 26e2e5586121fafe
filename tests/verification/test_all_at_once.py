"""All-at-once operator (10): exact adjoint (dot test), Taylor test, consistency with the
forward solver, the time Gram matrix of (12), and Remark 1 (the iteration solves the LLG)."""

import dolfinx.mesh as dm
import numpy as np
import pytest
from mpi4py import MPI

from llgfem.operators.all_at_once import AllAtOnceOperator, time_gram_I2
from llgfem.operators.observation import Coil, Concentration, Observation
from llgfem.paper_cases import paper_case, relative_error
from llgfem.problem import LLGProblem
from llgfem.regularisation import AdaptiveStep, Checkpoint, MaxIterations, landweber
from llgfem.solvers.heat import HeatSolver
from llgfem.solvers.llg import LLGSolver
from llgfem.spacetime import TimeGrid, create_vector_space, interpolate_levels
from llgfem.verification import dot_test, taylor_test

COMM = MPI.COMM_WORLD


def build(number=3, cells=16, n_t=9, observe=True, estimate=True, dim=1):
    case = paper_case(number)
    if dim == 1:
        mesh = dm.create_interval(COMM, cells, [0.0, 2 * np.pi])
    else:
        mesh = dm.create_rectangle(COMM, [[0.0, 0.0], [2 * np.pi, 1.0]], [cells, 3])
    V = create_vector_space(mesh)
    grid = TimeGrid(0.2, n_t)
    solver = LLGSolver(V, grid, case.params, case.field, g=case.g)
    obs = None
    if observe:
        obs = Observation(V, grid, [Concentration(1.0), Concentration(lambda x: 1 + x[0])],
                          [Coil((1.0, 1.0, 1.0), ("constant", 1.0)), Coil((0.0, 1.0, 0.5))],
                          mu0=1.0)
    m0 = interpolate_levels(V, case.exact_np, [0.0])[0]
    F = AllAtOnceOperator(LLGProblem(solver, m0, obs), HeatSolver(V, grid),
                          estimate_parameters=estimate)
    return F, case, V, grid


def random_point(F, seed, scale=0.1):
    rng = np.random.default_rng(seed + 101 * COMM.rank)
    x = scale * rng.standard_normal(F.domain_size)
    x[-2:] = COMM.bcast(np.array([1.2, -0.3]) + scale * rng.standard_normal(2))
    return x


def random_range(F, seed):
    rng = np.random.default_rng(seed + 101 * COMM.rank)
    r = rng.standard_normal(F.N * F.n + F.n_obs)
    r[F.N * F.n:] = COMM.bcast(r[F.N * F.n:])
    return r


@pytest.mark.parametrize(("observe", "estimate", "dim"),
                         [(True, True, 1), (False, True, 1), (True, False, 1), (True, True, 2)])
def test_adjoint_is_exact(observe, estimate, dim):
    F, *_ = build(observe=observe, estimate=estimate, dim=dim)
    x, dx, r = random_point(F, 1), random_point(F, 2, 1.0), random_range(F, 3)
    if not estimate:
        dx[-2:] = 0.0
    L = F.derivative(x)
    res = dot_test(L.apply, L.adjoint, dx, r, F.inner_domain, F.inner_range)
    assert res.relative_error < 1e-10, (res.lhs, res.rhs)


def test_taylor_remainder_is_second_order():
    F, *_ = build()
    x, dx = random_point(F, 4), random_point(F, 5, 1.0)
    res = taylor_test(F, F.derivative(x).apply, x, dx,
                      lambda y: np.sqrt(F.inner_range(y, y)))
    assert np.all(np.abs(res.slopes1 - 2.0) < 0.1), res.slopes1


def test_model_residual_vanishes_on_the_forward_solution():
    """F0(S(a) - m0, a) = 0: both settings discretise the same equation."""
    F, case, *_ = build(observe=False, n_t=11)
    m = F.solver.solve(F.m0)
    x = F.join(m - F.m0, [case.params.a1, case.params.a2])
    r = F(x)
    scale = F.solver.residual_scale(m)
    assert np.sqrt(COMM.allreduce(float(r @ r))) < 1e-10 * scale


def test_time_gram_is_the_discrete_I2():
    """G = I1^T Omega I1 is SPD and (G w)(t) -> I2[w](t) = int_t^T (I1 w)(s) ds for smooth w."""
    errs = []
    for n_t in (11, 21, 41):
        grid = TimeGrid(1.0, n_t)
        G = time_gram_I2(grid)
        assert np.allclose(G, G.T)
        assert np.linalg.eigvalsh(G).min() > 0
        t = grid.midpoints
        w = np.cos(3 * t)
        # exact: I1 w = W - mean(W), W = sin(3t)/3, mean = (1 - cos 3)/9; I2 = int_t^1 (I1 w)
        mean = (1 - np.cos(3.0)) / 9
        exact = (np.cos(3 * t) - np.cos(3.0)) / 9 - mean * (1 - t)
        errs.append(np.max(np.abs(G @ w / grid.dt - exact)))
    rates = np.log2(np.array(errs[:-1]) / errs[1:])
    assert rates[-1] > 0.9, (errs, rates)


def test_remark1_iteration_solves_the_llg_equation(mpi_tmp_path):
    """With a fixed and no data, Landweber on F0 reduces the error to the exact solution;
    a checkpointed, resumed run ends at the identical iterate."""
    F, case, V, grid = build(observe=False, estimate=False, cells=20, n_t=11)
    guess = interpolate_levels(V, case.initial_guess_np, grid.times)
    guess[0] = 0.0
    x0 = F.join(guess, [case.params.a1, case.params.a2])
    e0 = relative_error(V, grid, F.state(x0), case.exact_ufl)
    straight = landweber(F, F.data(), x0, step=AdaptiveStep(300.0), stop=MaxIterations(30))
    e1 = relative_error(V, grid, F.state(straight.x), case.exact_ufl)
    assert e1 < 0.5 * e0
    ck = mpi_tmp_path / "aao"
    kw = {"rank": COMM.rank, "size": COMM.size}
    landweber(F, F.data(), x0, step=AdaptiveStep(300.0), stop=MaxIterations(12),
              checkpoint=Checkpoint(ck, every=5, **kw))
    resumed = landweber(F, F.data(), x0, step=AdaptiveStep(300.0), stop=MaxIterations(30),
                        checkpoint=Checkpoint(ck, every=5, resume=True, **kw))
    assert resumed.iterations == straight.iterations
    assert np.array_equal(resumed.x, straight.x)
