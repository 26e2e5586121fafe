"""Landweber-Kaczmarz (paper eq. (14)) with the skip rule and stopping (15)-(17)."""

from __future__ import annotations

import numpy as np
import pytest

from llgfem.operators.protocols import range_norm
from llgfem.regularisation import (
    ConstantStep,
    DiscrepancyPrinciple,
    History,
    MaxIterations,
    NesterovMomentum,
    landweber,
    landweber_kaczmarz,
)
from llgfem.regularisation.testing import MatrixOperator, blocks_of, split_rows

TAU = 2.5


@pytest.fixture
def blocks():
    """Three row blocks of a random 24 x 12 matrix, noisy data with known delta_j."""
    rng = np.random.default_rng(7)
    A = rng.standard_normal((24, 12))
    ops, rows = split_rows(MatrixOperator, A, 3)
    x_true = rng.standard_normal(12)
    deltas = [1e-3, 2e-3, 3e-3]
    data = []
    for op, d in zip(ops, deltas, strict=True):
        noise = rng.standard_normal(op.A.shape[0])
        data.append(op(x_true) + d * noise / np.linalg.norm(noise))
    mu = 1.0 / max(np.linalg.norm(op.A, 2) ** 2 for op in ops)
    return ops, rows, data, deltas, x_true, mu, A


def test_skip_rule_skips_subproblems_already_within_tau_delta(blocks):
    ops, _, data, deltas, x_true, mu, _ = blocks
    _, _, vt = np.linalg.svd(ops[0].A)
    x0 = x_true + 3.0 * vt[-1]  # in the null space of A_0: block 0 is within tau*delta_0
    assert range_norm(ops[0], ops[0](x0) - data[0]) <= TAU * deltas[0]
    assert range_norm(ops[1], ops[1](x0) - data[1]) > TAU * deltas[1]
    history = History(extractors={"x": lambda x: x.copy()})
    result = landweber_kaczmarz(ops, data, x0, step=ConstantStep(mu),
                                stop=DiscrepancyPrinciple(TAU, deltas) | MaxIterations(10_000),
                                callbacks=[history])
    assert history.subproblem[1] == 0
    assert history.skipped[1]
    assert not history.skipped[2]
    xs = np.asarray(history.records["x"])
    for k in np.flatnonzero(history.skipped):
        np.testing.assert_array_equal(xs[k], xs[k - 1])  # w_k = 0: x unchanged
    assert "whole cycle" in result.reason
    assert all(history.skipped[-2:])  # n - 1 recorded skips; the n-th one stops (17)
    for rn, d in zip(result.subproblem_residual_norms, deltas, strict=True):
        assert rn <= TAU * d
    assert result.iterations == len(history) - 1


def test_kaczmarz_converges_on_consistent_data(blocks):
    ops, rows, _, _, x_true, mu, A = blocks
    data = blocks_of(A @ x_true, rows)
    result = landweber_kaczmarz(ops, data, np.zeros(12), step=ConstantStep(mu),
                                stop=MaxIterations(3000))
    np.testing.assert_allclose(result.x, x_true, rtol=0, atol=1e-8)


def test_single_subproblem_is_bitwise_landweber(blocks):
    ops, _, data, deltas, _, mu, _ = blocks
    stop = DiscrepancyPrinciple(TAU, deltas[0]) | MaxIterations(500)
    a = landweber(ops[0], data[0], np.zeros(12), step=ConstantStep(mu), stop=stop)
    b = landweber_kaczmarz([ops[0]], [data[0]], np.zeros(12), step=ConstantStep(mu), stop=stop)
    np.testing.assert_array_equal(a.x, b.x)
    assert (a.iterations, a.reason) == (b.iterations, b.reason)


def test_shuffled_order_is_a_permutation_per_cycle(blocks):
    ops, _, data, deltas, _, mu, _ = blocks
    history = History()
    landweber_kaczmarz(ops, data, np.zeros(12), step=ConstantStep(mu),
                       stop=MaxIterations(30), callbacks=[history], shuffle_seed=11)
    order = history.subproblem[1:31].reshape(10, 3)  # record k + 1 holds sub-problem j(k)
    assert all(sorted(cycle) == [0, 1, 2] for cycle in order.tolist())
    assert any(cycle != [0, 1, 2] for cycle in order.tolist())


def test_delta_count_must_match_subproblems(blocks):
    ops, _, data, _, _, mu, _ = blocks
    with pytest.raises(ValueError, match="deltas"):
        landweber_kaczmarz(ops, data, np.zeros(12), step=ConstantStep(mu),
                           stop=DiscrepancyPrinciple(TAU, [1e-3, 1e-3]))
    with pytest.raises(ValueError, match="data"):
        landweber_kaczmarz(ops, data[:2], np.zeros(12), step=ConstantStep(mu),
                           stop=MaxIterations(1))


def test_nesterov_kaczmarz_variant_reaches_the_discrepancy(blocks):
    ops, _, data, deltas, _, mu, _ = blocks
    result = landweber_kaczmarz(ops, data, np.zeros(12), step=ConstantStep(mu),
                                stop=DiscrepancyPrinciple(TAU, deltas) | MaxIterations(20_000),
                                momentum=NesterovMomentum())
    assert "whole cycle" in result.reason
    for rn, d in zip(result.subproblem_residual_norms, deltas, strict=True):
        assert rn <= TAU * d
