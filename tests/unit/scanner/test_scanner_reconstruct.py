"""Kaczmarz with Tikhonov regularisation converges to the Tikhonov solution; phantoms."""

from __future__ import annotations

import numpy as np

from llgfem.scanner.reconstruct import (
    kaczmarz_tikhonov,
    landweber_tikhonov,
    phantom,
    relative_error,
    tikhonov_direct,
)
from llgfem.scanner.system_matrix import CalibrationGrid, grid_positions, split_positions


def _problem(seed=0, m=60, n=25):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m, n)) @ np.diag(np.logspace(0, -1, n))
    c = rng.uniform(0, 1, n)
    return A, A @ c + 1e-3 * rng.standard_normal(m), c


def test_kaczmarz_converges_to_the_tikhonov_solution():
    A, b, _ = _problem()
    lam = 1.0  # linear convergence; its rate improves with lam (augmented-system condition)
    ref = tikhonov_direct(A, b, lam)
    errs = [relative_error(kaczmarz_tikhonov(A, b, lam, k), ref) for k in (5, 50, 500)]
    assert errs[2] < 1e-9
    assert errs[0] > errs[1] > errs[2]


def test_landweber_on_the_stacked_operator_approaches_tikhonov():
    A, b, _ = _problem(1, 30, 8)
    lam = 1e-1
    ref = tikhonov_direct(A, b, lam)
    assert relative_error(landweber_tikhonov(A, b, lam, 3000), ref) < 1e-3


def test_nonnegative_kaczmarz_stays_nonnegative():
    A, b, _ = _problem(2)
    assert kaczmarz_tikhonov(A, b, 1e-3, 10, nonnegative=True).min() >= 0


def test_grid_positions_are_cell_centres_x_fastest_and_split_covers_all():
    grid = CalibrationGrid(size=(4, 3, 1), fov=(0.04, 0.03, 0.0), center=(0.01, 0, 0))
    x = grid_positions(grid)
    assert x.shape == (12, 3)
    np.testing.assert_allclose(x[:4, 0], [-0.005, 0.005, 0.015, 0.025])
    np.testing.assert_allclose(x[::4, 1], [-0.01, 0.0, 0.01])
    for size in (1, 2, 5):
        blocks = [split_positions(12, size, r) for r in range(size)]
        assert sum(b.stop - b.start for b in blocks) == 12
        assert all(a.stop == b.start for a, b in zip(blocks, blocks[1:]))
    c = phantom("dots", x, grid.fov, grid.center)
    assert set(np.unique(c)) <= {0.0, 1.0}
