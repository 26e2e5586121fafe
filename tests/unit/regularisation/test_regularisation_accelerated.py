"""Nesterov-accelerated Landweber and the two-point gradient method (beyond the paper)."""

from __future__ import annotations

import numpy as np
import pytest

from llgfem.regularisation import (
    ConstantStep,
    DiscrepancyPrinciple,
    History,
    MaxIterations,
    landweber,
    nesterov_landweber,
    two_point_gradient,
)
from llgfem.regularisation.testing import CubicOperator

TAU = 2.0


def _run(driver, problem, y_delta, delta, **kw):
    history = History(x_true=problem.x_true, inner=problem.F.inner_domain)
    result = driver(problem.F, y_delta, np.zeros_like(problem.x_true),
                    step=ConstantStep(problem.mu),
                    stop=DiscrepancyPrinciple(TAU, delta) | MaxIterations(50_000),
                    callbacks=[history], **kw)
    return result, history


def test_accelerated_methods_need_fewer_iterations(ill_posed):
    y_delta, delta = ill_posed.noisy(1e-3)
    plain, plain_history = _run(landweber, ill_posed, y_delta, delta)
    for driver, kw in ((nesterov_landweber, {}), (two_point_gradient, {"q_scale": 100.0})):
        result, history = _run(driver, ill_posed, y_delta, delta, **kw)
        assert result.reason.startswith("discrepancy principle")
        assert result.residual_norm <= TAU * delta
        assert result.iterations < 0.2 * plain.iterations
        # same regularising quality: the error at the stopping index is comparable
        assert history.errors[-1] < 1.5 * plain_history.errors[-1]


def test_nesterov_weights(ill_posed):
    y_delta, delta = ill_posed.noisy(1e-2)
    alpha = 4.0
    _, history = _run(nesterov_landweber, ill_posed, y_delta, delta, alpha=alpha)
    k = history.iteration[1:] - 1  # record k + 1 belongs to step k
    np.testing.assert_allclose(history.momentum[1:], np.maximum(k - 1, 0) / (k + alpha - 1))


def test_two_point_gradient_backtracking_bounds_the_weights(ill_posed):
    y_delta, delta = ill_posed.noisy(1e-3)
    result, history = _run(two_point_gradient, ill_posed, y_delta, delta, q_scale=100.0)
    k = history.iteration[1:] - 1
    lam = history.momentum[1:]
    assert np.all(lam <= np.maximum(k - 1, 0) / (k + 2) + 1e-15)
    assert np.any(lam[k >= 2] == 0.0)  # DBTS switched the momentum off sometimes ...
    assert np.any(lam > 0.5)  # ... but not always
    # with a small q scale the summability bound caps lambda_k well below Nesterov's
    _, capped = _run(two_point_gradient, ill_posed, y_delta, delta, q_scale=1e-3)
    assert capped.momentum.max() < 0.5


def test_accelerated_methods_on_the_nonlinear_operator():
    rng = np.random.default_rng(8)
    n = 12
    A = np.eye(n) + 0.2 * rng.standard_normal((n, n)) / np.sqrt(n)
    F = CubicOperator(A, beta=0.5)
    x_true = 0.5 * rng.standard_normal(n)
    y = F(x_true)
    noise = rng.standard_normal(n)
    delta = 1e-4 * np.linalg.norm(y)
    y_delta = y + delta * noise / np.linalg.norm(noise)
    bound = np.linalg.norm(A, 2) * (1.0 + 3.0 * F.beta * (1.5 * np.abs(x_true).max()) ** 2)
    for driver in (nesterov_landweber, two_point_gradient):
        result = driver(F, y_delta, np.zeros(n), step=ConstantStep(1.0 / bound**2),
                        stop=DiscrepancyPrinciple(2.5, delta) | MaxIterations(20_000))
        assert result.reason.startswith("discrepancy")
        assert result.residual_norm <= 2.5 * delta


@pytest.mark.parametrize("driver", [nesterov_landweber, two_point_gradient])
def test_alpha_is_validated(driver, ill_posed):
    with pytest.raises(ValueError, match="alpha"):
        driver(ill_posed.F, ill_posed.y, np.zeros_like(ill_posed.x_true),
               step=ConstantStep(ill_posed.mu), stop=MaxIterations(1), alpha=2.0)


@pytest.mark.parametrize("bad", [{"q_power": 1.0}, {"q_scale": 0.0}, {"l_max": 0}])
def test_two_point_parameters_are_validated(bad, ill_posed):
    with pytest.raises(ValueError, match=next(iter(bad))):
        two_point_gradient(ill_posed.F, ill_posed.y, np.zeros_like(ill_posed.x_true),
                           step=ConstantStep(ill_posed.mu), stop=MaxIterations(1), **bad)
