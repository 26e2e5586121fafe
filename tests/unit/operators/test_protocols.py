"""The operator protocol and the NumPy reference operators (dot and Taylor tests)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llgfem.operators.protocols import ForwardOperator, LinearOperator, domain_norm, range_norm
from llgfem.regularisation.testing import (
    CubicOperator,
    MatrixOperator,
    adjoint_mismatch,
    random_spd,
)

EPS = np.finfo(float).eps


@pytest.fixture
def weighted_ops():
    rng = np.random.default_rng(1)
    A = rng.standard_normal((7, 5))
    M, N = random_spd(5, rng), random_spd(7, rng)
    return [MatrixOperator(A, domain_weight=M, range_weight=N),
            CubicOperator(A, 0.7, domain_weight=M, range_weight=N)], rng


def test_reference_operators_satisfy_protocols(weighted_ops):
    ops, rng = weighted_ops
    x = rng.standard_normal(5)
    for op in ops:
        assert isinstance(op, ForwardOperator)
        assert isinstance(op.derivative(x), LinearOperator)
    assert not isinstance(np.eye(3), ForwardOperator)


def test_weighted_adjoint_passes_dot_test(weighted_ops):
    ops, rng = weighted_ops
    for op in ops:
        x, dx, r = rng.standard_normal(5), rng.standard_normal(5), rng.standard_normal(7)
        # round-off of a few mat-vecs and Cholesky solves with condition numbers <= 10
        assert adjoint_mismatch(op, x, dx, r) < 1e4 * EPS


def test_weighted_adjoint_is_not_the_transpose(weighted_ops):
    ops, rng = weighted_ops
    op = ops[0]
    r = rng.standard_normal(7)
    L = op.derivative(np.zeros(5))
    assert not np.allclose(L.adjoint(r), op.A.T @ r)
    np.testing.assert_allclose(L.apply(np.ones(5)), L(np.ones(5)))


def test_cubic_operator_derivative_taylor(weighted_ops):
    ops, rng = weighted_ops
    op = ops[1]
    x, v = rng.standard_normal(5), rng.standard_normal(5)
    L = op.derivative(x)
    hs = [1e-2 / 2**i for i in range(4)]
    rem = [range_norm(op, op(x + h * v) - op(x) - h * L(v)) for h in hs]
    rates = [math.log2(rem[i] / rem[i + 1]) for i in range(3)]
    assert all(abs(rate - 2.0) < 0.1 for rate in rates), rates


def test_norm_helpers_use_the_operator_inner_products(weighted_ops):
    ops, rng = weighted_ops
    op = ops[0]
    x, y = rng.standard_normal(5), rng.standard_normal(7)
    assert domain_norm(op, x) == pytest.approx(math.sqrt(x @ op.M @ x), rel=1e-14)
    assert range_norm(op, y) == pytest.approx(math.sqrt(y @ op.N @ y), rel=1e-14)
    assert domain_norm(op, x) != pytest.approx(np.linalg.norm(x), rel=1e-3)
    assert math.isnan(domain_norm(op, np.full(5, np.nan)))


def test_weight_shape_is_validated():
    with pytest.raises(ValueError, match="domain_weight"):
        MatrixOperator(np.ones((2, 3)), domain_weight=np.eye(2))
