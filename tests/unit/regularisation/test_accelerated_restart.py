"""Nesterov with adaptive restart: never worse than the unrestarted run on a problem where the
momentum overshoots, and its restart offset survives a checkpoint."""

import numpy as np

from llgfem.regularisation import AdaptiveStep, MaxIterations, nesterov_landweber
from llgfem.regularisation.momentum import NesterovMomentum
from llgfem.regularisation.testing import MatrixOperator


def test_restart_keeps_the_residual_from_stalling():
    rng = np.random.default_rng(0)
    A = np.diag(np.linspace(0.05, 1.0, 30)) + 0.01 * rng.standard_normal((30, 30))
    F = MatrixOperator(A)
    x_true = rng.standard_normal(30)
    y = A @ x_true
    x0 = np.zeros(30)
    runs = {r: nesterov_landweber(F, y, x0, step=AdaptiveStep(1.9), stop=MaxIterations(300),
                                  restart=r) for r in (False, True)}
    assert runs[True].residual_norm <= runs[False].residual_norm


def test_restart_offset_is_part_of_the_state():
    m = NesterovMomentum(3.0, restart=True)
    m.k0 = 7
    fresh = NesterovMomentum(3.0, restart=True)
    fresh.load_state_dict(m.state_dict())
    assert fresh.k0 == 7
