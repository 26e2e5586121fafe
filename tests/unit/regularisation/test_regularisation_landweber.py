"""Landweber iteration (paper eq. (13)): convergence, discrepancy principle, adjoints, errors."""

from __future__ import annotations

import numpy as np
import pytest

from llgfem.operators.protocols import range_norm
from llgfem.regularisation import (
    AdaptiveStep,
    Checkpoint,
    ConstantStep,
    DiscrepancyPrinciple,
    History,
    MaxIterations,
    RelativeResidual,
    StepSizeFloor,
    landweber,
)
from llgfem.regularisation.core import IterationInfo
from llgfem.regularisation.testing import CubicOperator, MatrixOperator, random_spd


def _weighted_matrix(op: MatrixOperator) -> np.ndarray:
    """N^{1/2} A M^{-1/2}: the matrix of A between the weighted spaces in Euclidean terms."""
    def sqrtm(S):
        w, V = np.linalg.eigh(S)
        return (V * np.sqrt(w)) @ V.T

    M = np.eye(op.A.shape[1]) if op.M is None else op.M
    N = np.eye(op.A.shape[0]) if op.N is None else op.N
    return sqrtm(N) @ op.A @ np.linalg.inv(sqrtm(M))


@pytest.mark.parametrize("weighted", [False, True])
def test_well_posed_converges_to_least_squares(weighted):
    rng = np.random.default_rng(3)
    A = rng.standard_normal((30, 10))
    y = rng.standard_normal(30)  # inconsistent data: the LS residual is not zero
    M, N = (random_spd(10, rng), random_spd(30, rng)) if weighted else (None, None)
    F = MatrixOperator(A, domain_weight=M, range_weight=N)
    Nw = np.eye(30) if N is None else N
    x_ls = np.linalg.solve(A.T @ Nw @ A, A.T @ Nw @ y)  # minimiser of ||Ax - y||_N
    s = np.linalg.svd(_weighted_matrix(F), compute_uv=False)
    mu = 1.0 / s[0] ** 2
    q = 1.0 - mu * s[-1] ** 2  # contraction factor of the error in the M-norm
    k = int(np.ceil(np.log(1e-9) / np.log(q)))
    result = landweber(F, y, np.zeros(10), step=ConstantStep(mu), stop=MaxIterations(k))
    assert result.iterations == k
    assert "maximum" in result.reason
    e0, ek = x_ls, result.x - x_ls
    bound = q**k * np.sqrt(e0 @ (np.eye(10) if M is None else M) @ e0)
    assert np.sqrt(ek @ (np.eye(10) if M is None else M) @ ek) <= 1.01 * bound + 1e-12
    assert result.residual_norm == pytest.approx(range_norm(F, A @ result.x - y), rel=1e-12)
    if weighted:  # the weighted LS solution differs from the Euclidean one
        assert np.linalg.norm(x_ls - np.linalg.lstsq(A, y, rcond=None)[0]) > 1e-2


def test_update_uses_the_weighted_adjoint_not_the_transpose():
    rng = np.random.default_rng(4)
    A = rng.standard_normal((6, 4))
    M, N = random_spd(4, rng), random_spd(6, rng)
    F = MatrixOperator(A, domain_weight=M, range_weight=N)
    x0, y = rng.standard_normal(4), rng.standard_normal(6)
    mu = 0.01
    result = landweber(F, y, x0, step=ConstantStep(mu), stop=MaxIterations(1))
    expected = x0 - mu * np.linalg.solve(M, A.T @ N @ (A @ x0 - y))
    np.testing.assert_allclose(result.x, expected, rtol=1e-12)
    assert not np.allclose(result.x, x0 - mu * A.T @ (A @ x0 - y))


def test_discrepancy_principle_stops_semiconvergence(ill_posed):
    iterations = {}
    for rel in (1e-2, 1e-3):
        y_delta, delta = ill_posed.noisy(rel)
        tau = 2.0
        history = History(x_true=ill_posed.x_true, inner=ill_posed.F.inner_domain)
        result = landweber(ill_posed.F, y_delta, np.zeros_like(ill_posed.x_true),
                           step=ConstantStep(ill_posed.mu),
                           stop=DiscrepancyPrinciple(tau, delta) | MaxIterations(50_000),
                           callbacks=[history])
        assert result.reason.startswith("discrepancy principle")
        assert result.residual_norm <= tau * delta
        assert history.residual_norms[-2] > tau * delta  # the first such iterate
        assert len(history) == result.iterations + 1
        assert history.errors[-1] < 0.5 * history.errors[0]
        iterations[rel] = result.iterations
    assert iterations[1e-2] < iterations[1e-3]


def test_semiconvergence_error_grows_without_stopping(ill_posed):
    y_delta, delta = ill_posed.noisy(1e-2)
    history = History(x_true=ill_posed.x_true, inner=ill_posed.F.inner_domain)
    from llgfem.regularisation import nesterov_landweber  # fast way to iterate far

    nesterov_landweber(ill_posed.F, y_delta, np.zeros_like(ill_posed.x_true),
                       step=ConstantStep(ill_posed.mu), stop=MaxIterations(3000),
                       callbacks=[history])
    assert history.errors[-1] > 2.0 * history.errors.min()


def test_nonlinear_operator_exact_and_noisy_data():
    rng = np.random.default_rng(5)
    n = 12
    A = np.eye(n) + 0.2 * rng.standard_normal((n, n)) / np.sqrt(n)
    F = CubicOperator(A, beta=0.5)
    x_true = 0.5 * rng.standard_normal(n)
    y = F(x_true)
    history = History(x_true=x_true, inner=F.inner_domain)
    result = landweber(F, y, np.zeros(n), step=AdaptiveStep(1.0, grow=1.2),
                       stop=RelativeResidual(1e-10) | MaxIterations(5000), callbacks=[history])
    assert result.reason.startswith("relative residual")
    assert history.errors[-1] < 1e-8 * history.errors[0]
    assert np.all(np.diff(history.residual_norms) < 0)  # the adaptive step is monotone
    noise = rng.standard_normal(n)
    delta = 1e-3 * np.linalg.norm(y)
    y_delta = y + delta * noise / np.linalg.norm(noise)
    # mu <= 1/||F'(x)||^2 on the ball {|x_i| <= 1.5 max|x_true_i|} that the iterates stay in
    bound = np.linalg.norm(A, 2) * (1.0 + 3.0 * F.beta * (1.5 * np.abs(x_true).max()) ** 2)
    result = landweber(F, y_delta, np.zeros(n), step=ConstantStep(1.0 / bound**2),
                       stop=DiscrepancyPrinciple(2.5, delta) | MaxIterations(5000))
    assert result.reason.startswith("discrepancy")
    assert result.residual_norm <= 2.5 * delta


class _NaNAfter(MatrixOperator):
    def __init__(self, A, calls):
        super().__init__(A)
        self.calls = calls

    def __call__(self, x):
        self.calls -= 1
        return super().__call__(x) * (np.nan if self.calls < 0 else 1.0)


def test_nan_residual_raises():
    F = _NaNAfter(np.eye(3), calls=4)
    with pytest.raises(RuntimeError, match="non-finite residual norm"):
        landweber(F, np.ones(3), np.zeros(3), step=ConstantStep(0.1), stop=MaxIterations(50))


def test_nan_initial_guess_raises():
    F = MatrixOperator(np.eye(3))
    with pytest.raises(RuntimeError, match="non-finite norm of the initial guess"):
        landweber(F, np.ones(3), np.array([0.0, np.nan, 0.0]), step=ConstantStep(0.1),
                  stop=MaxIterations(5))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_divergence_raises_instead_of_returning_inf():
    F = MatrixOperator(np.diag([1.0, 100.0]))
    with pytest.raises(RuntimeError, match="non-finite"):
        landweber(F, np.ones(2), np.zeros(2), step=ConstantStep(1.0),
                  stop=MaxIterations(10_000))


def test_initial_guess_is_not_modified():
    F = MatrixOperator(np.eye(3))
    x0 = np.zeros(3)
    landweber(F, np.ones(3), x0, step=ConstantStep(0.5), stop=MaxIterations(3))
    assert np.all(x0 == 0.0)


@pytest.mark.parametrize(
    ("factory", "name"),
    [
        (lambda: DiscrepancyPrinciple(1.0, 0.1), "tau"),
        (lambda: DiscrepancyPrinciple(2.0, -0.1), "delta"),
        (lambda: DiscrepancyPrinciple(2.0, [0.1, np.nan]), "delta"),
        (lambda: ConstantStep(0.0), "mu"),
        (lambda: AdaptiveStep(-1.0), "mu"),
        (lambda: AdaptiveStep(1.0, shrink=1.0), "shrink"),
        (lambda: MaxIterations(-1), "max_iter"),
        (lambda: StepSizeFloor(0.0), "mu_min"),
        (lambda: RelativeResidual(1.5), "rtol"),
        (lambda: Checkpoint("c", every=0), "every"),
    ],
)
def test_invalid_arguments_name_the_argument(factory, name):
    with pytest.raises(ValueError, match=name):
        factory()


def test_wrong_argument_types_are_rejected():
    F = MatrixOperator(np.eye(2))
    with pytest.raises(TypeError, match="step"):
        landweber(F, np.ones(2), np.zeros(2), step=0.5, stop=MaxIterations(1))


def test_step_size_floor_rule_reports_reason():
    rule = StepSizeFloor(1e-3)
    info = IterationInfo(iteration=3, x=np.zeros(1), residual_norm=1.0, step_size=1e-4)
    assert "step size floor" in rule.check(info)
    assert rule.check(IterationInfo(iteration=0, x=np.zeros(1), residual_norm=1.0)) is None
