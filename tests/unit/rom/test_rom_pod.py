"""pod(): orthonormal modes, optimal reconstruction, truncation criteria, inner products."""

from __future__ import annotations

import numpy as np
import pytest

from llgfem.rom import pod

EPS = np.finfo(float).eps


@pytest.fixture
def snapshots():
    rng = np.random.default_rng(0)
    n, m = 60, 40
    # decaying spectrum: Y = A diag(2^-k) B
    a = np.linalg.qr(rng.standard_normal((n, m)))[0]
    b = np.linalg.qr(rng.standard_normal((m, m)))[0]
    return a @ np.diag(2.0 ** -np.arange(m)) @ b


def test_modes_are_orthonormal(snapshots):
    res = pod(snapshots, rank=10)
    assert res.modes.shape == (60, 10)
    assert np.abs(res.modes.T @ res.modes - np.eye(10)).max() < 100 * EPS


def test_reconstruction_error_equals_discarded_energy(snapshots):
    for r in (1, 5, 12):
        res = pod(snapshots, rank=r)
        u = res.modes
        err = np.linalg.norm(snapshots - u @ (u.T @ snapshots)) ** 2
        rel = err / np.linalg.norm(snapshots) ** 2
        assert abs(rel - res.discarded_energy) < 1e3 * EPS


def test_full_rank_reconstructs_exactly(snapshots):
    res = pod(snapshots)
    u = res.modes
    assert np.linalg.norm(snapshots - u @ (u.T @ snapshots)) < 1e3 * EPS
    assert res.discarded_energy < 1e3 * EPS


def test_truncation_by_energy_and_rtol(snapshots):
    s = pod(snapshots).singular_values
    res = pod(snapshots, energy=0.999)
    cum = np.cumsum(s**2) / np.sum(s**2)
    assert cum[res.rank - 1] >= 0.999 > cum[res.rank - 2]
    res = pod(snapshots, rtol=1e-3)
    assert s[res.rank - 1] > 1e-3 * s[0] >= s[res.rank]
    assert pod(snapshots, rank=5, energy=0.999999).rank == 5


def test_weighted_inner_product(snapshots):
    rng = np.random.default_rng(1)
    c = rng.standard_normal((60, 60))
    w = c @ c.T + 60 * np.eye(60)
    res = pod(snapshots, rank=8, inner=w)
    assert np.abs(res.modes.T @ w @ res.modes - np.eye(8)).max() < 1e4 * EPS


def test_invalid_input():
    with pytest.raises(ValueError, match="2-D"):
        pod(np.zeros(3))
    with pytest.raises(ValueError, match="energy"):
        pod(np.ones((3, 2)), energy=1.5)
