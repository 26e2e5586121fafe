"""The adaptive L-stable scheme (PETSc TS ARKIMEX on the Landau-Lifshitz DAE; issue 11, item 2).

* our own ESDIRK stage recursion (``replay``) on the accepted steps reproduces PETSc's trajectory
  to the Newton tolerance (cross-check of the tableau and of the stage equations);
* dot test of the discrete tangent and adjoint in ``a = (a1, a2)`` to <= 1e-10 relative;
* Taylor test of ``a -> (m_n, m_t,n)`` on the frozen step sequence: slope 2.00 +- 0.05;
* the real drive regime (item 4) on a small mesh and a short interval: the same checks, and the
  FEM run against the independent nodal DOP853 reference.
"""

import numpy as np
import pytest
import ufl
from dolfinx import fem, mesh
from mpi4py import MPI

from llgfem.forms.llg import LLGCoefficients
from llgfem.solvers.adaptive import AdaptiveLL, AdaptiveOptions, esdirk_tableau
from llgfem.solvers.adaptive_drive import (
    DriveRegime,
    coil_signal,
    drive_problem,
    mean_magnetisation,
    nodal_reference,
    relative_error,
)
from llgfem.verification import dot_test, taylor_test

COMM = MPI.COMM_WORLD


def small_problem(tstype: str = "4", anisotropy: float = 0.0, max_steps: int = 100000
                  ) -> AdaptiveLL:
    """8 P1 cells, exchange, a rotating-in-time field; ``a = (0.5, -1)``, ``T = 5``."""
    msh = mesh.create_interval(COMM, 8, [-1.0, 1.0])
    V = fem.functionspace(msh, ("Lagrange", 1, (3,)))
    t = fem.Constant(msh, 0.0)
    x = ufl.SpatialCoordinate(msh)
    c = LLGCoefficients(
        a1=fem.Constant(msh, 0.5), a2=fem.Constant(msh, -1.0),
        exchange=fem.Constant(msh, 0.01), h=ufl.as_vector((x[0] + ufl.sin(0.4 * np.pi * t),
                                                           0.3, 0.2 * ufl.cos(t))),
        anisotropy=fem.Constant(msh, anisotropy),
        easy_axis=(0.0, 0.6, 0.8) if anisotropy else None)
    m0 = fem.Function(V)
    m0.interpolate(lambda X: np.vstack([np.cos(X[0]), np.sin(X[0]), 0.2 + 0 * X[0]])
                   / np.sqrt(1.04))
    n = V.dofmap.index_map.size_local * 3
    return AdaptiveLL(V, c, t, m0.x.array[:n].copy(), 5.0,
                      AdaptiveOptions(tstype=tstype, max_steps=max_steps))


def global_max(x: np.ndarray) -> float:
    return COMM.allreduce(float(np.abs(x).max()) if x.size else 0.0, op=MPI.MAX)


def global_inner(x: np.ndarray, y: np.ndarray) -> float:
    return COMM.allreduce(float(np.sum(x * y)))


def check_derivatives(problem: AdaptiveLL, traj, da, eps) -> None:
    """Dot test (<= 1e-10) and Taylor test (slope 2 +- 0.05) on the frozen step sequence."""
    rng = np.random.default_rng(7 + COMM.rank)
    a = np.array(traj.a)

    def tangent(d):
        return np.concatenate(problem.tangent(traj, d))

    def adjoint(r):
        half = r.shape[0] // 2
        return problem.adjoint(traj, r[:half], r[half:])

    r = rng.standard_normal((2 * (traj.steps + 1), problem.n))
    res = dot_test(tangent, adjoint, np.asarray(da), r, lambda x, y: float(x @ y), global_inner)
    assert res.relative_error < 1e-10, res.relative_error

    def F(a_):
        run = problem.replay(traj.times, a_)
        return np.concatenate([run.m, run.mdot])

    out = taylor_test(F, tangent, a, np.asarray(da),
                      lambda y: np.sqrt(global_inner(y, y)), eps=eps)
    assert np.all(np.abs(out.slopes1 - 2.0) < 0.05), out.slopes1


def test_tableau_is_stiffly_accurate_esdirk():
    for tstype in ("3", "4"):
        tab = esdirk_tableau(tstype)
        A = tab.A
        assert A[0, 0] == 0.0
        assert np.allclose(np.triu(A, 1), 0.0)
        assert np.allclose(np.diag(A)[1:], A[1, 1])  # singly diagonally implicit
        assert np.isclose(tab.c[-1], 1.0)  # stiffly accurate: b = last row, c_s = 1
        # order conditions: sum b = 1, sum b c = 1/2, sum b c^2 = 1/3
        b, c = A[-1], tab.c
        assert np.isclose(b.sum(), 1.0)
        assert np.isclose(b @ c, 0.5)
        assert np.isclose(b @ c**2, 1 / 3)


@pytest.mark.parametrize("tstype", ["3", "4"])
def test_replay_reproduces_ts(tstype):
    problem = small_problem(tstype, anisotropy=0.5)
    ts = problem.forward()
    assert ts.steps >= 5
    assert np.isclose(ts.times[-1], problem.T)
    rp = problem.replay(ts.times)
    # both converge each stage to the Newton tolerance 1e-12; differences stay near it
    assert global_max(rp.m - ts.m) < 1e-9
    assert global_max(rp.mdot - ts.mdot) < 1e-9
    assert global_max(rp.H - ts.H) < 1e-9


def test_stop_times_are_step_times():
    problem = small_problem()
    stops = np.array([1.0, 2.5, 2.5000001])
    ts = problem.forward(stop_times=stops)
    idx = ts.at(stops)
    assert np.array_equal(ts.times[idx], stops)
    assert np.all(np.diff(ts.times) > 0)
    assert global_max(problem.replay(ts.times).m - ts.m) < 1e-9


def test_dot_and_taylor():
    """ARK4(3)6L[2]SA (the recursion is the same code for every tableau)."""
    problem = small_problem("4", anisotropy=0.5)
    traj = problem.replay(problem.forward().times)
    check_derivatives(problem, traj, (0.3, -0.7), eps=(1e-2, 5e-3, 2.5e-3))


def test_drive_regime_against_nodal_reference():
    """Drive regime, 12 cells, start of the drive: FEM + TS against the nodal ODE (DOP853)."""
    regime = DriveRegime(phase=0.0)  # field-free point at the centre, moving fastest
    problem = drive_problem(COMM, 12, T=1000.0, options=AdaptiveOptions(rtol=1e-8, dt0=1.0),
                            regime=regime)
    ts = problem.forward()
    m_ref, mdot_ref = nodal_reference(problem, regime)(ts.times)
    e_m = relative_error(mean_magnetisation(problem, ts.m), mean_magnetisation(problem, m_ref))
    e_s = relative_error(coil_signal(problem, ts.mdot), coil_signal(problem, mdot_ref))
    # measured: 101 steps, 1.1e-6 and 1.7e-4; an error in the IFunction (sign of a2, the field,
    # the lumped scaling) gives O(1) errors
    assert e_m < 1e-3, e_m
    assert e_s < 1e-3, e_s


def test_drive_regime_gradient():
    """The drive regime's map ``a -> (m, m_t)`` passes dot and Taylor tests (6 cells, the
    field-free point crossing the centre node, 1/42 period)."""
    problem = drive_problem(COMM, 6, T=2000.0, options=AdaptiveOptions(rtol=1e-5, dt0=10.0),
                            regime=DriveRegime(phase=0.0))
    traj = problem.replay(problem.forward().times)
    check_derivatives(problem, traj, (0.02, -0.05), eps=(1e-2, 5e-3, 2.5e-3))


def test_bad_options_raise_value_errors_naming_the_key():
    with pytest.raises(ValueError, match="tstype"):
        AdaptiveOptions(tstype="7").validate()
    with pytest.raises(ValueError, match="rtol"):
        AdaptiveOptions(rtol=0.0).validate()
    with pytest.raises(ValueError, match="max_steps"):
        AdaptiveOptions(max_steps=0).validate()


def test_max_steps_reached_is_an_error():
    with pytest.raises(RuntimeError, match="max_steps"):
        small_problem(max_steps=2).forward()
