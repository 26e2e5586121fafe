"""Reduced operator F(a) = O S(a): sub-problems, caching, counters, weights and error paths.

The dot and Taylor tests of F'(a) and F'(a)* are in tests/verification/test_reduced_adjoint.py.
"""

import dolfinx.mesh as dm
import numpy as np
import pytest
from mpi4py import MPI

from llgfem.operators.observation import Coil, Observation
from llgfem.operators.reduced import ReducedOperator
from llgfem.paper_cases import paper_case
from llgfem.problem import LLGProblem
from llgfem.solvers.linear import SolverError
from llgfem.solvers.llg import LLGSolver
from llgfem.spacetime import TimeGrid, create_vector_space, interpolate_levels
from llgfem.verification import dot_test

ROUNDOFF = 1e-10
X = np.array([1.1, 0.3])


def build(comm=MPI.COMM_WORLD, cells=12, n_t=9, max_it=30, **kw):
    case = paper_case(3)
    V = create_vector_space(dm.create_interval(comm, cells, [0.0, 2 * np.pi]))
    grid = TimeGrid(0.2, n_t)
    solver = LLGSolver(V, grid, case.params, case.field, g=case.g, max_it=max_it)
    m0 = interpolate_levels(V, case.exact_np, [0.0])[0]
    obs = Observation(V, grid, [1.0, lambda x: 1.0 + 0.2 * x[0]],
                      [Coil((1.0, 1.0, 1.0), ("constant", 1.0)), Coil((1.0, -0.5, 0.2))],
                      mu0=1.0)
    return ReducedOperator(LLGProblem(solver, m0, obs), **kw)


@pytest.fixture(scope="module")
def F():
    return build()


def test_values_match_observation_of_state(F):
    y = F(X)
    assert y.shape == (2 * 2 * 8,)
    np.testing.assert_allclose(y, F.observation.apply(F.state(X)).ravel(), rtol=0, atol=0)
    assert F.relative_residual(X) < 1e-9


def test_cache_and_counters(F):
    F.cache.reset()
    F(X)
    F(X)
    F.derivative(X).adjoint(np.ones(32))
    assert F.counters["forward"] == 1  # cached state reused
    assert F.counters["adjoint"] == 1
    assert F.counters["newton"] >= F.solver.grid.n_t - 1
    F.derivative(X).sensitivities()
    assert F.counters["linearised"] == 2


def test_warm_start_saves_newton_iterations(F):
    F.cache.reset()
    F(X)
    cold = F.counters["newton"]
    F(X + 1e-7)  # warm start from the trajectory at X: Newton starts next to the solution
    assert F.counters["newton"] - cold < cold


def test_time_segments_split_data_and_adjoint(F):
    r = np.random.default_rng(0).standard_normal(32)
    L = F.derivative(X)
    parts = F.time_segments(3)
    total = sum(P.derivative(X).adjoint(P.restrict(r.reshape(2, 2, 8))) for P in parts)
    np.testing.assert_allclose(total, L.adjoint(r), rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(np.concatenate([P(X).reshape(2, 2, -1) for P in parts], axis=2),
                               F(X).reshape(2, 2, 8), rtol=0, atol=0)
    assert sum(P.inner_range(P.restrict(r), P.restrict(r)) for P in parts) == pytest.approx(
        F.inner_range(r, r), rel=1e-13)


def test_select_pairs_sum_to_full_adjoint(F):
    r = np.random.default_rng(1).standard_normal(32)
    total = np.zeros(2)
    for k, l in F.observation.pairs:  # noqa: E741
        P = F.select(k, l)
        np.testing.assert_allclose(P(X), F.select_data(F(X), k, l), rtol=1e-13, atol=1e-14)
        total += P.derivative(X).adjoint(F.select_data(r, k, l))
    np.testing.assert_allclose(total, F.derivative(X).adjoint(r), rtol=1e-11, atol=1e-13)


def test_weighted_domain_adjoint():
    F = build(weights=(2.0, 0.25))
    L = F.derivative(X)
    rng = np.random.default_rng(2)
    res = dot_test(L.apply, L.adjoint, rng.standard_normal(2), rng.standard_normal(32),
                   F.inner_domain, F.inner_range)
    assert res.relative_error < ROUNDOFF


@pytest.mark.parametrize("bad", [np.array([np.nan, 0.0]), np.array([1.0, 0.0, 0.0])])
def test_invalid_parameters_raise(F, bad):
    with pytest.raises(ValueError, match="parameters"):
        F(bad)


def test_nan_residual_raises(F):
    r = np.zeros(32)
    r[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        F.derivative(X).adjoint(r)


def test_invalid_options():
    with pytest.raises(ValueError, match="weights"):
        build(weights=(1.0, 0.0))
    with pytest.raises(ValueError, match="failed_solve"):
        build(failed_solve="ignore")
    with pytest.raises(ValueError, match="samples"):
        build(samples=[99])


def test_failed_forward_solve_raises_or_returns_nan():
    F = build(max_it=1)  # one Newton step cannot reach rtol 1e-11: SNES fails on every rank
    with pytest.raises(SolverError, match="did not converge"):
        F(X)
    G = build(max_it=1, failed_solve="nan")
    assert np.all(np.isnan(G(X)))


def test_levenberg_marquardt_on_reduced_operator():
    """Exact data of an identifiable 2x2 observation: LM recovers (a1, a2) in a few steps."""
    from llgfem.regularisation.gauss_newton import levenberg_marquardt

    F = build(cells=16, n_t=11)
    a_true = np.array([1.0, 0.3])
    y = F(a_true)
    F.cache.reset()
    res = levenberg_marquardt(F, y, np.array([1.3, 0.0]), tau=2.0, delta=0.0, q=0.3,
                              rtol=1e-8, max_iter=30)
    assert res.reason.startswith("relative residual"), res.reason
    assert res.iterations < 30
    np.testing.assert_allclose(res.x, a_true, atol=1e-4)
    assert F.counters["linearised"] == 2 * res.iterations
    assert np.all(np.diff(res.history.residual_norms) < 0)


def test_levenberg_marquardt_rejects_bad_arguments(F):
    from llgfem.regularisation.gauss_newton import levenberg_marquardt

    with pytest.raises(ValueError, match="tau"):
        levenberg_marquardt(F, F(X), X, tau=0.5, delta=0.0)
