"""Low-rank kernel identities of paper 001: Nyström (9), ℓ-kPCA, push-through ℓ-kRR (14)."""

from __future__ import annotations

import numpy as np
import pytest

from llgfem.surrogates.kernel import (
    LowRankKPCA,
    LowRankKRR,
    Nystroem,
    _windows,
    dense_krr,
    inverse_sqrt,
    rbf_kernel,
)

EPS = np.finfo(float).eps


@pytest.fixture
def points():
    rng = np.random.default_rng(7)
    return rng.normal(size=(25, 4)), rng.normal(size=(6, 4)), rng.normal(size=(25, 3))


def test_rbf_kernel_matches_definition(points):
    x, y, _ = points
    k = rbf_kernel(x, y, 0.3)
    direct = np.exp(-0.3 * ((x[:, None, :] - y[None, :, :]) ** 2).sum(axis=2))
    assert np.allclose(k, direct, rtol=0, atol=100 * EPS)


def test_inverse_sqrt_whitens(points):
    x = points[0]
    k = rbf_kernel(x, x, 0.25)
    f = inverse_sqrt(k, cutoff=1e-14)
    assert f.shape == k.shape  # nothing cut: k is well conditioned here
    assert np.allclose(f.T @ k @ f, np.eye(len(k)), atol=100 * EPS * np.linalg.cond(k))


def test_nystroem_full_rank_reproduces_gram(points):
    x = points[0]
    gamma = 0.25
    k = rbf_kernel(x, x, gamma)
    ny = Nystroem.fit(x, rank=len(x), gamma=gamma, cutoff=1e-14)
    phi = ny(x)
    assert phi.shape == (len(x), len(x))
    tol = 100 * EPS * np.linalg.cond(k) * np.abs(k).max()
    assert np.abs(phi @ phi.T - k).max() <= tol


def test_nystroem_low_rank_exact_on_landmark_columns(points):
    """``Phi Phi^T`` equals ``K`` on the rows/columns of the landmarks (x_r subset of x)."""
    x = points[0]
    gamma = 0.25
    ny = Nystroem.fit(x, rank=10, gamma=gamma, rng=np.random.default_rng(1), cutoff=1e-14)
    idx = [int(np.flatnonzero((x == xr).all(axis=1))[0]) for xr in ny.landmarks]
    approx = ny(x) @ ny(x[idx]).T
    k_r = rbf_kernel(ny.landmarks, ny.landmarks, gamma)
    tol = 100 * EPS * np.linalg.cond(k_r)
    assert np.abs(approx - rbf_kernel(x, x[idx], gamma)).max() <= tol


def test_push_through_identity_any_factor(points):
    """(14): Phi^T (Phi Phi^T + a I)^{-1} = (Phi^T Phi + a I)^{-1} Phi^T, Phi of rank r < m."""
    _, _, targets = points
    phi = np.random.default_rng(2).normal(size=(25, 5))
    alpha = 0.1
    k = phi @ phi.T
    dense = k @ dense_krr(k, targets, alpha)
    low = LowRankKRR.fit(phi, targets, alpha)(phi)
    cond = np.linalg.cond(phi @ phi.T + alpha * np.eye(25))
    assert np.abs(low - dense).max() <= 100 * EPS * cond * np.abs(targets).max()


def test_low_rank_krr_equals_dense_krr_at_full_rank(points):
    x, y, targets = points
    gamma, alpha = 0.25, 1e-3
    k = rbf_kernel(x, x, gamma)
    dense = rbf_kernel(y, x, gamma) @ dense_krr(k, targets, alpha)
    ny = Nystroem.fit(x, rank=len(x), gamma=gamma, cutoff=1e-14)
    low = LowRankKRR.fit(ny(x), targets, alpha)(ny(y))
    cond = np.linalg.cond(k) * np.linalg.cond(k + alpha * np.eye(len(x)))
    assert np.abs(low - dense).max() <= 100 * EPS * cond * np.abs(targets).max()


def test_low_rank_kpca_matches_centred_kernel_pca(points):
    x = points[0]
    gamma, d = 0.25, 6
    k = rbf_kernel(x, x, gamma)
    h = np.eye(len(x)) - 1.0 / len(x)
    expected = np.linalg.eigvalsh(h @ k @ h)[::-1][:d]
    ny = Nystroem.fit(x, rank=len(x), gamma=gamma, cutoff=1e-14)
    kpca = LowRankKPCA.fit(ny(x), d)
    tol = 100 * EPS * np.linalg.cond(k) * expected[0]
    assert np.abs(kpca.eigenvalues - expected).max() <= tol
    z = kpca(ny(x))  # projections: orthogonal columns with squared norms = eigenvalues
    assert np.allclose(z.T @ z, np.diag(expected), atol=tol)


def test_windows_stack_tag_and_nu_states():
    n, s, d, p, nu = 2, 8, 3, 2, 5
    z = np.arange(n * s * d, dtype=float).reshape(n, s, d)
    tags = -np.arange(n * s * p, dtype=float).reshape(n, s, p)
    inputs, targets = _windows(z, tags, nu)
    assert inputs.shape == (n * (s - nu), p + nu * d)
    assert targets.shape == (n * (s - nu), d)
    row = 1 * (s - nu) + 2  # field 1, window ending at j = nu - 1 + 2
    j = nu - 1 + 2
    expected = np.concatenate([tags[1, j], z[1, j - nu + 1: j + 1].ravel()])
    assert np.array_equal(inputs[row], expected)
    assert np.array_equal(targets[row], z[1, j + 1])
