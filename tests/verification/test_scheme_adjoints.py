"""Exact linearisation and discrete adjoint of every fixed-step LLG scheme (issue 11, item 2).

For implicit midpoint on the Gilbert form (6) and the length-preserving Landau-Lifshitz /
Bartels-Prohl scheme ((m, H) block step), with uniaxial anisotropy (item 5) and a field-free
point sweeping through the domain with NO bias field (item 3):

* dot test ``<F'(a) b, r>_Y = (b, F'(a)* r)_X`` to <= 1e-10 relative;
* Taylor test ``|F(a + e b) - F(a) - e F'(a) b| = O(e^2)``: slope 2.00 +- 0.05;
* the Bartels-Prohl scheme keeps ``|m_j| = 1`` at every node through the zero field.

Both schemes get their derivatives from the step residual alone (``StepDerivatives``).
"""

import numpy as np
import pytest
from _small_llg import small_reduced  # tests/verification (on sys.path)
from mpi4py import MPI

from llgfem.verification import dot_test, taylor_test

A = np.array([1.0, 0.5])


def reduced(form: str, anisotropy: float = 0.5):
    """FFP drive without bias: h = 0 on a moving line through the domain."""
    return small_reduced(form, *A, anisotropy, cells=6, n_t=7)


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
