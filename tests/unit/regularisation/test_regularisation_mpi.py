"""The MPI contract: distributed vectors, global inner products, per-rank checkpoints.

Each rank holds a block of x and of y; the operator's inner products and adjoint do the
reductions. The drivers, unchanged, must give the serial result (up to summation round-off).
Serially (one rank) the test still runs and compares with the plain NumPy operator.
"""

from __future__ import annotations

import numpy as np

from llgfem.regularisation import (
    AdaptiveStep,
    Checkpoint,
    DiscrepancyPrinciple,
    History,
    MaxIterations,
    landweber,
    nesterov_landweber,
)
from llgfem.regularisation.testing import MatrixOperator


class _DistributedMatrix:
    """F(x) = A x with x and y split into contiguous blocks over the ranks."""

    def __init__(self, A, comm):
        self.comm, self.A = comm, A
        m, n = A.shape
        self.rows = np.array_split(np.arange(m), comm.size)[comm.rank]
        self.cols = np.array_split(np.arange(n), comm.size)[comm.rank]

    def _dot(self, a, b):
        return self.comm.allreduce(float(a @ b))

    inner_domain = inner_range = _dot

    def __call__(self, x_local):
        return self.A[self.rows] @ np.concatenate(self.comm.allgather(x_local))

    def derivative(self, x_local):
        op = self

        class _L:
            def apply(self, dx_local):
                return op(dx_local)

            __call__ = apply

            def adjoint(self, r_local):
                g = op.A[op.rows].T @ r_local
                return op.comm.allreduce(g)[op.cols]

        return _L()


def _problem(ill_posed):
    y_delta, delta = ill_posed.noisy(1e-2)
    return y_delta, DiscrepancyPrinciple(2.0, delta) | MaxIterations(10_000)


def test_distributed_run_matches_serial(ill_posed, comm):
    y_delta, stop = _problem(ill_posed)
    Fd = _DistributedMatrix(ill_posed.F.A, comm)
    x0 = np.zeros(ill_posed.x_true.size)
    for driver in (landweber, nesterov_landweber):
        serial = driver(MatrixOperator(ill_posed.F.A), y_delta, x0,
                        step=AdaptiveStep(4 * ill_posed.mu, armijo=0.5), stop=stop)
        hist = History(x_true=ill_posed.x_true[Fd.cols], inner=Fd.inner_domain)
        dist = driver(Fd, y_delta[Fd.rows], x0[Fd.cols],
                      step=AdaptiveStep(4 * ill_posed.mu, armijo=0.5), stop=stop,
                      callbacks=[hist])
        x = np.concatenate(comm.allgather(dist.x))
        assert dist.iterations == serial.iterations
        assert dist.reason == serial.reason
        np.testing.assert_allclose(x, serial.x, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(dist.residual_norm, serial.residual_norm, rtol=1e-10)
        # global quantities agree on all ranks
        assert comm.allgather(dist.residual_norm) == [dist.residual_norm] * comm.size
        assert len(set(comm.allgather(hist.errors[-1]))) == 1


def test_distributed_checkpoint_resume(ill_posed, comm, mpi_tmp_path):
    y_delta, stop = _problem(ill_posed)
    Fd = _DistributedMatrix(ill_posed.F.A, comm)
    x0 = np.zeros(Fd.cols.size)

    def run(stop_rule, ckpt):
        return nesterov_landweber(Fd, y_delta[Fd.rows], x0, step=AdaptiveStep(
            4 * ill_posed.mu, grow=1.3, armijo=0.5), stop=stop_rule, checkpoint=ckpt)

    straight = run(stop, None)
    path = mpi_tmp_path / "dist"
    run(MaxIterations(straight.iterations // 2), Checkpoint(path, every=4, rank=comm.rank,
                                                             size=comm.size))
    with np.load(mpi_tmp_path / f"dist.rank{comm.rank}.npz") as saved:
        assert saved["x"].shape == x0.shape  # each rank stores its local part only
    resumed = run(stop, Checkpoint(path, every=4, resume=True, rank=comm.rank, size=comm.size))
    np.testing.assert_array_equal(resumed.x, straight.x)
    assert resumed.iterations == straight.iterations
