"""Callbacks: History (extractors, errors), ProgressBar (rank 0 only), logging."""

from __future__ import annotations

import io
import logging

import numpy as np
import pytest

from llgfem.operators.protocols import domain_norm
from llgfem.regularisation import (
    ConstantStep,
    DiscrepancyPrinciple,
    History,
    LoggingCallback,
    MaxIterations,
    ProgressBar,
    landweber,
)
from llgfem.regularisation.testing import MatrixOperator, random_spd


@pytest.fixture
def weighted_problem():
    rng = np.random.default_rng(9)
    A = np.eye(6) + 0.1 * rng.standard_normal((6, 6))
    F = MatrixOperator(A, domain_weight=random_spd(6, rng))
    x_true = rng.standard_normal(6)
    return F, x_true, A @ x_true


def test_history_records_extractors_and_errors_in_the_domain_norm(weighted_problem):
    F, x_true, y = weighted_problem
    seen = []
    history = History({"a1": lambda x: x[-2], "a2": lambda x: x[-1], "both": lambda x: x[-2:]},
                      x_true=x_true, inner=F.inner_domain, relative=True)
    result = landweber(F, y, np.zeros(6), step=ConstantStep(0.5), stop=MaxIterations(5),
                       callbacks=[history, lambda info: seen.append(info.x.copy())])
    assert result.history is history
    assert len(history) == 6
    assert history.iterations.tolist() == list(range(6))
    assert np.isnan(history.step_sizes[0])
    np.testing.assert_array_equal(history.step_sizes[1:], 0.5)
    xs = np.asarray(seen)
    np.testing.assert_array_equal(history.a1, xs[:, -2])
    np.testing.assert_array_equal(history.both, xs[:, -2:])
    expected = [domain_norm(F, x - x_true) / domain_norm(F, x_true) for x in xs]
    np.testing.assert_allclose(history.errors, expected, rtol=1e-12)
    assert history.errors[0] == pytest.approx(1.0)
    # the weighted norm differs from the Euclidean one used by a naive implementation
    assert history.errors[-1] != pytest.approx(
        np.linalg.norm(xs[-1] - x_true) / np.linalg.norm(x_true), rel=1e-6)


def test_default_history_and_result_history(weighted_problem):
    F, _, y = weighted_problem
    result = landweber(F, y, np.zeros(6), step=ConstantStep(0.5), stop=MaxIterations(3))
    assert isinstance(result.history, History)
    assert result.history.residual_norms.shape == (4,)
    assert "errors" not in result.history.records


def test_history_needs_inner_product_for_errors():
    with pytest.raises(ValueError, match="inner"):
        History(x_true=np.zeros(2))


def test_progress_bar_prints_on_rank_zero_only(weighted_problem):
    pytest.importorskip("tqdm")
    F, _, y = weighted_problem
    outputs = {}
    for rank in (0, 1):
        stream = io.StringIO()
        # disable=False: tqdm reads TQDM_DISABLE (set by the CLI off a terminal) once, at import
        bar = ProgressBar(total=4, rank=rank, file=stream, desc="landweber", disable=False)
        landweber(F, y, np.zeros(6), step=ConstantStep(0.5), stop=MaxIterations(4),
                  callbacks=[bar])
        outputs[rank] = stream.getvalue()
    assert "landweber" in outputs[0]
    assert "4/4" in outputs[0]
    assert outputs[1] == ""


def test_logging_callback(weighted_problem, caplog):
    F, _, y = weighted_problem
    logger = logging.getLogger("llgfem.test.regularisation")
    with caplog.at_level(logging.INFO, logger=logger.name):
        landweber(F, y, np.zeros(6), step=ConstantStep(0.5),
                  stop=DiscrepancyPrinciple(2.0, 1e-3) | MaxIterations(4),
                  callbacks=[LoggingCallback(every=2, logger=logger, rank=0),
                             LoggingCallback(every=1, logger=logger, rank=1)])
    messages = [r.getMessage() for r in caplog.records]
    assert [m.split()[1] for m in messages[:-1]] == ["0", "2", "4"]
    assert "stopped after 4 iterations: maximum number of iterations" in messages[-1]
