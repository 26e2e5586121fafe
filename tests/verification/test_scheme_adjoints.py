"""Exact linearisation and discrete adjoint of every fixed-step LLG scheme (issue 11, item 2).

For implicit midpoint on the Gilbert form (6) and the length-preserving Landau-Lifshitz /
Bartels-Prohl scheme ((m, H) block step), with uniaxial anisotropy (item 5) and a field-free
point sweeping through the domain with NO bias field (item 3):

* dot test ``<F'(a) b, r>_Y = (b, F'(a)* r)_X`` to <= 1e-10 relative;
* Taylor test ``|F(a + e b) - F(a) - e F'(a) b| = O(e^2)``: slope 2.00 +- 0.05;
* the Bartels-Prohl scheme keeps ``|m_j| = 1`` at every node through the zero field.

Both schemes get their derivatives from the step residual alone (``StepDerivatives``).
"""

import dolfinx.mesh as dm
import numpy as np
import pytest
from mpi4py import MPI

from llgfem.operators.observation import Coil, Observation
from llgfem.operators.reduced import ReducedOperator
from llgfem.physics import FieldSpec, LLGParameters
from llgfem.problem import LLGProblem
from llgfem.solvers.llg import LLGSolver
from llgfem.spacetime import TimeGrid, create_vector_space
from llgfem.verification import dot_test, taylor_test

A = np.array([1.0, 0.5])
# FFP selection gradient + drive along x, no offset: h = 0 on a moving line through the domain
FIELD = FieldSpec(kind="ffp", gradient=2.0, amplitude=1.0, frequency=1.0,
                  direction=(1.0, 0.0, 0.0))


def reduced(form: str, anisotropy: float = 0.5):
    mesh = dm.create_rectangle(MPI.COMM_WORLD, [[-1.0, -1.0], [1.0, 1.0]], [6, 6])
    V = create_vector_space(mesh)
    grid = TimeGrid(0.3, 7)
    params = LLGParameters(a1=A[0], a2=A[1], exchange=0.05, anisotropy=anisotropy,
                           easy_axis=(0.0, 0.6, 0.8))
    solver = LLGSolver(V, grid, params, FIELD, form=form)
    rng = np.random.default_rng(3 + MPI.COMM_WORLD.rank)
    n = solver.n // 3
    m0 = np.tile([0.6, 0.0, 0.8], n) + 0.2 * rng.standard_normal(3 * n)
    m0 = (m0.reshape(-1, 3) / np.linalg.norm(m0.reshape(-1, 3), axis=1)[:, None]).ravel()
    obs = Observation(V, grid, 1.0, [Coil((1.0, 0.0, 0.0)), Coil((0.0, 1.0, 0.3))], mu0=1.0)
    return ReducedOperator(LLGProblem(solver, m0, obs))


@pytest.mark.parametrize("form", ["gilbert", "landau_lifshitz"])
def test_dot_and_taylor(form):
    F = reduced(form)
    L = F.derivative(A)
    rng = np.random.default_rng(11)
    n = int(np.prod(F.data_shape))
    for _ in range(2):
        res = dot_test(L.apply, L.adjoint, rng.standard_normal(2), rng.standard_normal(n),
                       F.inner_domain, F.inner_range)
        assert res.relative_error < 1e-10, res.relative_error
    t = taylor_test(F, L.apply, A, np.array([0.3, -0.2]), lambda y: np.sqrt(F.inner_range(y, y)),
                    eps=(2e-2, 1e-2, 5e-3, 2.5e-3))
    assert np.all(np.abs(t.slopes1 - 2.0) < 0.05), t.slopes1
    F.cache.destroy()


def test_bartels_prohl_keeps_unit_length_through_zero_field():
    F = reduced("landau_lifshitz")
    m = F.state(A)
    dev = np.abs(np.linalg.norm(m.reshape(m.shape[0], -1, 3), axis=2) - 1.0).max(initial=0.0)
    assert MPI.COMM_WORLD.allreduce(dev, op=MPI.MAX) < 1e-9
    F.cache.destroy()


def test_anisotropy_changes_the_signals_and_the_gradient():
    """The anisotropy term is in forward, linearisation and adjoint (not silently dropped)."""
    r = np.random.default_rng(5).standard_normal(int(np.prod(reduced("gilbert", 0.0).data_shape)))
    grads = []
    for k in (0.0, 0.5):
        F = reduced("landau_lifshitz", k)
        grads.append(F.derivative(A).adjoint(r))
        F.cache.destroy()
    assert np.linalg.norm(grads[0] - grads[1]) > 1e-6 * np.linalg.norm(grads[1])
