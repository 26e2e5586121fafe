"""The batched all-at-once kernels (serial fast path) against the FFCx/PETSc path.

Both paths evaluate the same discrete objects: the space-time residual F0, its linearisation and
transpose (Algorithm 3.1, A.3), the W Gram map (A.1-A.2), the U Riesz map and inner products.
They must agree to round-off on the paper cases (Test 2's field cos(x) makes the projection term
non-polynomial: quadrature degree 6) and on a 2-D triangle mesh; the fast path keeps the exact
adjoint (dot test) and a second-order Taylor remainder; a few Landweber steps give the same
iterates.  Under MPI the operator falls back to the FFCx path.  The cached level errors used by
the relative-error stopping rule equal direct integration.
"""

import dolfinx.fem as fem
import dolfinx.mesh as dm
import numpy as np
import pytest
import ufl
from mpi4py import MPI

from llgfem.operators.all_at_once import AllAtOnceOperator
from llgfem.operators.all_at_once_fast import (
    P1Tables,
    fast_path_reason,
    field_parts,
    from_nodes,
    to_nodes,
)
from llgfem.operators.observation import Coil, Concentration, Observation
from llgfem.paper_cases import paper_case
from llgfem.problem import LLGProblem
from llgfem.regularisation import AdaptiveStep, MaxIterations, landweber
from llgfem.solvers.heat import HeatSolver
from llgfem.solvers.llg import LLGSolver
from llgfem.spacetime import (
    TimeGrid,
    array_to_function,
    create_vector_space,
    interpolate_levels,
    l2_errors_levels,
)
from llgfem.verification import dot_test, taylor_test

COMM = MPI.COMM_WORLD
serial_only = pytest.mark.skip_in_parallel


def build(number=2, cells=24, n_t=9, observe=True, dim=1, estimate=True):
    """Fast and FFCx operators on one problem (sharing the heat solver)."""
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
    problem = LLGProblem(solver, m0, obs)
    heat = HeatSolver(V, grid)
    kw = {"estimate_parameters": estimate, "param_weight": 0.7, "model_weight": 3.0}
    slow = AllAtOnceOperator(problem, heat, fast=False, **kw)
    fast = AllAtOnceOperator(problem, heat, fast=None, **kw)
    return slow, fast, case


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


def rel(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


@serial_only
@pytest.mark.parametrize(("number", "dim", "estimate"),
                         [(1, 1, True), (2, 1, True), (3, 1, True), (2, 2, True), (1, 1, False)])
def test_fast_path_equals_ffcx_path(number, dim, estimate):
    slow, fast, _ = build(number, dim=dim, estimate=estimate)
    assert fast.fast is not None
    assert slow.fast is None
    x, dx, r = random_point(slow, 1), random_point(slow, 2, 1.0), random_range(slow, 3)
    assert rel(fast(x), slow(x)) < 1e-12
    Ls, Lf = slow.derivative(x), fast.derivative(x)
    assert rel(Lf.apply(dx), Ls.apply(dx)) < 1e-12
    assert rel(Lf.adjoint(r), Ls.adjoint(r)) < 1e-11
    r0 = r[: slow.N * slow.n].reshape(slow.N, slow.n)
    assert rel(fast.gram_W(r0), slow.gram_W(r0)) < 1e-11
    for a, b in ((r, r), (r, random_range(slow, 4))):
        assert abs(fast.inner_range(a, b) - slow.inner_range(a, b)) < 1e-11 * abs(
            slow.inner_range(a, a))
    for a, b in ((dx, dx), (dx, x)):
        assert abs(fast.inner_domain(a, b) - slow.inner_domain(a, b)) < 1e-11 * abs(
            slow.inner_domain(a, a))


@serial_only
def test_riesz_map_equals_heat_solver():
    """The modal U Riesz map is the heat solver's backward + forward sweep."""
    slow, fast, _ = build(1, observe=False)
    rng = np.random.default_rng(7)
    load = rng.standard_normal((slow.N + 1, slow.n))
    expected = slow.heat.riesz_U(load)
    ours = from_nodes(fast.fast.heat.riesz_U(to_nodes(load, fast.fast.nn)))
    assert rel(ours, expected) < 1e-11


@serial_only
def test_projection_term_needs_the_ffcx_quadrature_degree():
    """Test 2's (m.h)(m.v) with h = -(cos x, cos x, 0) is integrated by FFCx at the estimated
    degree 6: the fast path matches it, a degree-3 rule does not (the comparison can fail)."""
    slow, fast, _ = build(2, observe=False)
    kernels = fast.fast
    assert kernels.degree == 6
    x = random_point(slow, 5)
    assert rel(fast(x), slow(x)) < 1e-12
    kernels.tables = P1Tables(kernels.solver.V, 3)  # wrong rule, same everything else
    kernels.hq = None
    kernels.hq = kernels._field_at_points()
    fast._last = None
    assert rel(fast(x), slow(x)) > 1e-8


@pytest.mark.parametrize("number", [2, 3])
def test_fast_adjoint_is_exact_and_taylor_second_order(number):
    """On one rank the fast path (else the FFCx path) has the exact adjoint and slope 2."""
    _, F, _ = build(number)
    x, dx, r = random_point(F, 11), random_point(F, 12, 1.0), random_range(F, 13)
    L = F.derivative(x)
    res = dot_test(L.apply, L.adjoint, dx, r, F.inner_domain, F.inner_range)
    assert res.relative_error < 1e-10, (res.lhs, res.rhs)
    tay = taylor_test(F, L.apply, x, dx, lambda y: np.sqrt(F.inner_range(y, y)))
    assert np.all(np.abs(tay.slopes1 - 2.0) < 0.1), tay.slopes1


@serial_only
def test_landweber_iterates_agree():
    """Remark 1 (Test 2, model part only): 8 adaptive Landweber steps, same iterates."""
    slow, fast, case = build(2, observe=False, estimate=False, n_t=11)
    V, grid = slow.solver.V, slow.grid
    guess = interpolate_levels(V, case.initial_guess_np, grid.times)
    guess[0] = 0.0
    x0 = slow.join(guess, [case.params.a1, case.params.a2])
    runs = [landweber(F, F.data(), x0, step=AdaptiveStep(75.0), stop=MaxIterations(8))
            for F in (slow, fast)]
    assert runs[0].iterations == runs[1].iterations == 8
    assert rel(runs[1].x, runs[0].x) < 1e-11
    assert abs(runs[1].residual_norm - runs[0].residual_norm) < 1e-10 * runs[0].residual_norm


def test_fast_path_only_on_one_rank():
    slow, fast, _ = build(3, observe=False)
    reason = fast_path_reason(slow.solver)
    if COMM.size > 1:
        assert fast.fast is None
        assert "MPI" in reason
        with pytest.raises(ValueError, match="MPI"):
            AllAtOnceOperator(slow.problem, slow.heat, fast=True)
    else:
        assert reason is None
        assert fast.fast is not None


@pytest.mark.parametrize("scale", [0.0, 1e-5, 1e-2])
def test_cached_level_errors_equal_direct_integration(scale):
    """l2_errors_levels (projection + remainder, cached) = int |u_h - u|^2 assembled directly."""
    case = paper_case(2)
    V = create_vector_space(dm.create_interval(COMM, 20, [0.0, 2 * np.pi]))
    grid = TimeGrid(0.2, 6)
    rng = np.random.default_rng(3 + COMM.rank)
    m = interpolate_levels(V, case.exact_np, grid.times)
    m += scale * rng.standard_normal(m.shape)
    t = fem.Constant(V.mesh, 0.0)
    uh = fem.Function(V)
    e = uh - case.exact_ufl(ufl.SpatialCoordinate(V.mesh), t)
    form = fem.form(ufl.inner(e, e) * ufl.dx(metadata={"quadrature_degree": 5}))
    direct = []
    for i, ti in enumerate(grid.times):
        t.value = ti
        array_to_function(m[i], uh)
        direct.append(COMM.allreduce(fem.assemble_scalar(form), op=MPI.SUM))
    for _ in range(2):  # first call builds the cache, the second uses it
        ours = l2_errors_levels(V, m, case.exact_ufl, grid.times)
        assert np.allclose(ours, direct, rtol=1e-9, atol=1e-14 * max(direct)), (ours, direct)


@serial_only
def test_linear_part_follows_the_parameters():
    """The cached linear part ``[K1; K0]`` (built for the last ``a1``) is rebuilt when ``a1``
    changes: F, F' and F'* at two parameter values equal the FFCx path at each."""
    slow, fast, _ = build(3, observe=False)
    dx, r = random_point(slow, 22, 1.0), random_range(slow, 23)
    for a in ([1.3, 0.0], [0.6, -0.4], [1.3, 0.0]):
        x = random_point(slow, 21)
        x[-2:] = a
        assert rel(fast(x), slow(x)) < 1e-12
        Ls, Lf = slow.derivative(x), fast.derivative(x)
        assert rel(Lf.apply(dx), Ls.apply(dx)) < 1e-12
        assert rel(Lf.adjoint(r), Ls.adjoint(r)) < 1e-11


@serial_only
def test_field_parts_drop_only_exact_zeros_and_repeats():
    """A field with a zero component, one constant in time and one constant in space and time
    is stored compressed, and ``v . h`` equals the full product."""
    rng = np.random.default_rng(5)
    Q, N = 7, 4
    hq = np.zeros((3, Q, N))
    hq[1] = rng.standard_normal((Q, 1))  # constant in time
    hq[2] = 0.4  # constant in space and time
    parts = field_parts(hq)
    assert [(k, h.shape) for k, h in parts] == [(1, (Q, 1)), (2, (1, 1))]
    hq[2, 3, 1] = 0.5  # no longer constant: kept in full
    assert [(k, h.shape) for k, h in field_parts(hq)] == [(1, (Q, 1)), (2, (Q, N))]
    slow, fast, _ = build(2, observe=False)
    kernels = fast.fast
    vq = rng.standard_normal(kernels.hq.shape)
    full = np.einsum("kqn,kqn->qn", vq, kernels.hq)
    assert np.allclose(kernels.field_dot(vq), full, rtol=1e-14, atol=1e-14)
    assert [k for k, _ in kernels.field_parts] == [0, 1]  # Test 2: h_z = 0
    assert all(h.shape[1] == 1 for _, h in kernels.field_parts)  # Test 2: h constant in time
