"""Step-size rules: the paper's adaptive bisection (§4.1), growth, steepest descent, min. error."""

from __future__ import annotations

import numpy as np
import pytest

from llgfem.regularisation import (
    AdaptiveStep,
    ConstantStep,
    History,
    MaxIterations,
    MinimalErrorStep,
    RelativeResidual,
    SteepestDescentStep,
    StepSizeFloor,
    landweber,
)
from llgfem.regularisation.testing import MatrixOperator


def test_adaptive_step_bisects_when_the_residual_would_increase():
    # x0 = (1, 0), y = 0: residual |1 - mu| after one step, so mu = 4 (|-3|) and mu = 2 (|-1|,
    # no strict decrease) are rejected and mu = 1 is accepted.
    F = MatrixOperator(np.diag([1.0, 0.5]))
    history = History()
    result = landweber(F, np.zeros(2), np.array([1.0, 0.0]), step=AdaptiveStep(4.0),
                       stop=MaxIterations(1), callbacks=[history])
    assert history.rejections.tolist() == [0, 2]
    assert history.step_sizes[1] == 1.0
    assert result.residual_norm < history.residual_norms[0]


def test_constant_step_would_increase_the_same_residual():
    F = MatrixOperator(np.diag([1.0, 0.5]))
    result = landweber(F, np.zeros(2), np.array([1.0, 0.0]), step=ConstantStep(4.0),
                       stop=MaxIterations(1))
    assert result.residual_norm > 1.0


def test_adaptive_step_keeps_the_residual_monotone_and_mu_nonincreasing(ill_posed):
    y_delta, _ = ill_posed.noisy(1e-3)
    history = History()
    landweber(ill_posed.F, y_delta, np.zeros_like(ill_posed.x_true),
              step=AdaptiveStep(16.0 * ill_posed.mu, armijo=0.5), stop=MaxIterations(200),
              callbacks=[history])
    assert np.all(np.diff(history.residual_norms) < 0)
    mus = history.step_sizes[1:]
    assert np.all(np.diff(mus) <= 0)
    assert mus[0] < 16.0 * ill_posed.mu
    assert history.rejections[1] > 0


def test_paper_rule_stalls_where_armijo_does_not(ill_posed):
    # plain decrease accepts mu = 2/||A||^2: the dominant component oscillates undamped
    y_delta, _ = ill_posed.noisy(1e-3)
    final = {}
    for armijo in (0.0, 0.5):
        result = landweber(ill_posed.F, y_delta, np.zeros_like(ill_posed.x_true),
                           step=AdaptiveStep(16.0 * ill_posed.mu, armijo=armijo),
                           stop=MaxIterations(300))
        final[armijo] = result.residual_norm
    assert final[0.5] < 0.1 * final[0.0]


def test_adaptive_step_grows_after_accepted_steps(ill_posed):
    y_delta, _ = ill_posed.noisy(1e-3)
    history = History()
    landweber(ill_posed.F, y_delta, np.zeros_like(ill_posed.x_true),
              step=AdaptiveStep(0.01 * ill_posed.mu, grow=1.5, armijo=0.5),
              stop=MaxIterations(60),
              callbacks=[history])
    mus = history.step_sizes[1:]
    assert mus[10] > 10.0 * mus[0]  # grows while steps are accepted ...
    assert history.rejections.sum() > 0  # ... until a trial is rejected
    assert np.all(np.diff(history.residual_norms) < 0)


class _WrongAdjoint(MatrixOperator):
    """A deliberately wrong (negated) adjoint: -s is an ascent direction."""

    def derivative(self, x):
        L = super().derivative(x)

        class _Neg:
            apply = __call__ = staticmethod(L.apply)

            @staticmethod
            def adjoint(r):
                return -L.adjoint(r)

        return _Neg()


def test_adaptive_step_stops_at_the_floor_when_no_step_decreases():
    F = _WrongAdjoint(np.eye(3))
    x0 = np.zeros(3)
    history = History()
    result = landweber(F, np.ones(3), x0, step=AdaptiveStep(1.0, mu_min=1e-6),
                       stop=MaxIterations(100), callbacks=[history])
    assert result.reason.startswith("step size floor")
    assert result.iterations == 0
    np.testing.assert_array_equal(result.x, x0)
    assert not history.accepted[-1]
    assert history.rejections[-1] == int(np.ceil(np.log2(1e6)))


def test_step_size_floor_rule_stops_a_shrinking_adaptive_step(ill_posed):
    y_delta, _ = ill_posed.noisy(1e-3)
    result = landweber(ill_posed.F, y_delta, np.zeros_like(ill_posed.x_true),
                       step=AdaptiveStep(64.0 * ill_posed.mu, armijo=0.5),
                       stop=StepSizeFloor(2.0 * ill_posed.mu) | MaxIterations(10_000))
    assert result.iterations == 1
    assert result.reason.startswith("step size floor")
    assert result.history.step_sizes[-1] < 2.0 * ill_posed.mu


def test_steepest_descent_step_minimises_the_linear_residual_along_s():
    rng = np.random.default_rng(6)
    A = rng.standard_normal((8, 5))
    F = MatrixOperator(A)
    x0, y = rng.standard_normal(5), rng.standard_normal(8)
    res = landweber(F, y, x0, step=SteepestDescentStep(), stop=MaxIterations(1))
    mu = res.history.step_sizes[1]
    s = A.T @ (A @ x0 - y)
    for factor in (0.9, 1.1):
        assert np.linalg.norm(A @ (x0 - factor * mu * s) - y) > res.residual_norm


def test_steepest_descent_beats_the_constant_step(ill_posed):
    iterations = []
    for step in (ConstantStep(ill_posed.mu), SteepestDescentStep()):
        result = landweber(ill_posed.F, ill_posed.y, np.zeros_like(ill_posed.x_true), step=step,
                           stop=RelativeResidual(1e-3) | MaxIterations(20_000))
        assert result.reason.startswith("relative residual")
        iterations.append(result.iterations)
    assert iterations[1] < iterations[0]


def test_minimal_error_step_decreases_the_error_monotonically(ill_posed):
    history = History(x_true=ill_posed.x_true, inner=ill_posed.F.inner_domain)
    landweber(ill_posed.F, ill_posed.y, np.zeros_like(ill_posed.x_true),
              step=MinimalErrorStep(), stop=MaxIterations(100), callbacks=[history])
    assert np.all(np.diff(history.errors) < 0)


@pytest.mark.parametrize("bad", [{"omega": 0.0}, {"omega": 2.0}, {"mu_max": 0.0}])
def test_steepest_descent_validates(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        SteepestDescentStep(**bad)


def test_step_rules_are_copied_not_mutated():
    F = MatrixOperator(np.diag([1.0, 0.5]))
    step = AdaptiveStep(4.0)
    landweber(F, np.zeros(2), np.array([1.0, 0.0]), step=step, stop=MaxIterations(3))
    assert step.mu == 4.0
