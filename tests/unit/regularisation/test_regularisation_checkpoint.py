"""Checkpoint / resume: an interrupted and resumed run equals a straight run bit for bit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from llgfem.regularisation import (
    AdaptiveStep,
    Checkpoint,
    ConstantStep,
    DiscrepancyPrinciple,
    History,
    MaxIterations,
    NesterovMomentum,
    landweber,
    landweber_kaczmarz,
    nesterov_landweber,
    two_point_gradient,
)
from llgfem.regularisation.testing import MatrixOperator, blocks_of, split_rows


def _cases(problem):
    """(name, run(stop, checkpoint, history) -> Result) for every driver."""
    y_delta, delta = problem.noisy(1e-2)
    F, x0, mu = problem.F, np.zeros_like(problem.x_true), problem.mu
    ops, rows = split_rows(MatrixOperator, F.A, 4)
    data = blocks_of(y_delta, rows)
    mu_k = 1.0 / max(np.linalg.norm(op.A, 2) ** 2 for op in ops)
    dp = DiscrepancyPrinciple(2.0, delta)
    dp_k = DiscrepancyPrinciple(2.0, [delta / 2.0] * 4)

    def lw(stop, ckpt, hist):
        return landweber(F, y_delta, x0, step=AdaptiveStep(4 * mu, grow=1.5, armijo=0.5),
                         stop=dp | stop, checkpoint=ckpt, callbacks=[hist])

    def nest(stop, ckpt, hist):
        return nesterov_landweber(F, y_delta, x0, step=ConstantStep(mu), stop=dp | stop,
                                  checkpoint=ckpt, callbacks=[hist])

    def tpg(stop, ckpt, hist):
        return two_point_gradient(F, y_delta, x0, step=ConstantStep(mu), stop=dp | stop,
                                  q_scale=100.0, checkpoint=ckpt, callbacks=[hist])

    def lk(stop, ckpt, hist):
        return landweber_kaczmarz(ops, data, x0, step=AdaptiveStep(4 * mu_k, grow=1.2),
                                  stop=dp_k | stop, checkpoint=ckpt, callbacks=[hist],
                                  shuffle_seed=5, momentum=NesterovMomentum())

    return {"landweber": lw, "nesterov": nest, "tpg": tpg, "kaczmarz": lk}


def _history():
    return History(extractors={"a": lambda x: x[-2:]})


def _assert_same(a, b):
    np.testing.assert_array_equal(a.x, b.x)  # bitwise
    assert (a.iterations, a.reason, a.residual_norm) == (b.iterations, b.reason,
                                                        b.residual_norm)
    assert a.history.records.keys() == b.history.records.keys()
    for key in a.history.records:
        np.testing.assert_array_equal(np.asarray(a.history.records[key]),
                                      np.asarray(b.history.records[key]), err_msg=key)


@pytest.mark.parametrize("name", ["landweber", "nesterov", "tpg", "kaczmarz"])
def test_resume_is_bitwise_identical(name, ill_posed, mpi_tmp_path, comm):
    run = _cases(ill_posed)[name]
    straight = run(MaxIterations(100_000), None, _history())
    assert straight.reason.startswith("discrepancy")
    k1 = straight.iterations // 3 + 1
    path = mpi_tmp_path / f"{name}.npz"
    first = run(MaxIterations(k1), Checkpoint(path, every=3, rank=comm.rank, size=comm.size),
                _history())
    assert first.iterations == k1
    assert (mpi_tmp_path / f"{name}.rank{comm.rank}.npz").exists()
    meta = json.loads((mpi_tmp_path / f"{name}.rank{comm.rank}.json").read_text())
    assert meta["iteration"] == k1
    resumed = run(MaxIterations(100_000),
                  Checkpoint(path, every=3, resume=True, rank=comm.rank, size=comm.size),
                  _history())
    _assert_same(resumed, straight)


def test_resume_without_a_file_starts_fresh(ill_posed, mpi_tmp_path, comm):
    run = _cases(ill_posed)["nesterov"]
    straight = run(MaxIterations(100_000), None, _history())
    ckpt = Checkpoint(mpi_tmp_path / "none", every=1000, resume=True, rank=comm.rank,
                      size=comm.size)
    _assert_same(run(MaxIterations(100_000), ckpt, _history()), straight)


def test_resume_checks_driver_and_size(ill_posed, mpi_tmp_path, comm):
    cases = _cases(ill_posed)
    path = mpi_tmp_path / "ck"
    cases["landweber"](MaxIterations(3), Checkpoint(path, rank=comm.rank, size=comm.size),
                       _history())
    with pytest.raises(ValueError, match="written by"):
        cases["nesterov"](MaxIterations(5), Checkpoint(path, resume=True, rank=comm.rank,
                                                       size=comm.size), _history())
    with pytest.raises(ValueError, match="ranks"):
        cases["landweber"](MaxIterations(5), Checkpoint(path, resume=True, rank=comm.rank,
                                                        size=comm.size + 1), _history())


def test_checkpoint_validates_rank():
    with pytest.raises(ValueError, match="rank"):
        Checkpoint("x", rank=2, size=2)
