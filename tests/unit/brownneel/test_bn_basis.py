"""Single-sphere blocks and the product basis against quadrature and algebraic identities."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import roots_legendre, sph_harm_y

from llgfem.brownneel.basis import (
    ProductBasis,
    angular_momentum,
    monomial,
    multiplication,
    single_index,
    single_real_transform,
)

LMAX = 4


def _quadrature(deg: int):
    """Gauss–Legendre in cos θ × trapezoid in φ: exact for polynomials of degree <= deg."""
    x, w = roots_legendre(deg // 2 + 1)
    nphi = deg + 1
    phi = 2 * np.pi * np.arange(nphi) / nphi
    theta = np.arccos(x)
    th, ph = np.meshgrid(theta, phi, indexing="ij")
    wt = np.outer(w, np.full(nphi, 2 * np.pi / nphi))
    return th.ravel(), ph.ravel(), wt.ravel()


def _ylm(lmax, th, ph):
    l, mu = single_index(lmax)
    return np.array([sph_harm_y(li, mi, th, ph) for li, mi in zip(l, mu, strict=True)])


def _galerkin(fun_values, lmax, th, ph, wt):
    y = _ylm(lmax, th, ph)
    return (y.conj() * (fun_values * wt)) @ y.T


@pytest.mark.parametrize(("op", "fun"), [
    ("z", lambda th, ph: np.cos(th)),
    ("+", lambda th, ph: np.sin(th) * np.exp(1j * ph)),
    ("-", lambda th, ph: np.sin(th) * np.exp(-1j * ph)),
])
def test_multiplication_matches_quadrature(op, fun):
    th, ph, wt = _quadrature(2 * LMAX + 2)
    ref = _galerkin(fun(th, ph), LMAX, th, ph, wt)
    got = multiplication(op, LMAX).toarray()
    assert np.abs(got - ref).max() < 1e3 * np.finfo(float).eps


def test_degree_two_product_is_exact_and_naive_product_is_not():
    th, ph, wt = _quadrature(2 * LMAX + 3)
    ref = _galerkin(np.sin(th) ** 2, LMAX, th, ph, wt)  # m_+ m_- = m_x² + m_y²
    exact = monomial("+-", LMAX).toarray()
    naive = (multiplication("+", LMAX) @ multiplication("-", LMAX)).toarray()
    eps = 1e3 * np.finfo(float).eps
    assert np.abs(exact - ref).max() < eps
    assert np.abs(naive - ref).max() > 1e3 * eps  # truncated factors are wrong at l = LMAX


def test_angular_momentum_algebra():
    lp, lm, lz = (angular_momentum(op, LMAX).toarray() for op in "+-z")
    assert np.allclose(lp @ lm - lm @ lp, 2 * lz, atol=1e-12)
    lx, ly = 0.5 * (lp + lm), (lp - lm) / 2j
    l, _ = single_index(LMAX)
    casimir = lx @ lx + ly @ ly + lz @ lz
    assert np.allclose(casimir, np.diag(l * (l + 1.0)), atol=1e-12)


def test_real_transform_is_unitary_and_makes_operators_real():
    t = single_real_transform(LMAX).toarray()
    assert np.allclose(t @ t.conj().T, np.eye(t.shape[0]), atol=1e-14)
    for op in ("x", "y"):
        mp, mm = multiplication("+", LMAX), multiplication("-", LMAX)
        m = 0.5 * (mp + mm) if op == "x" else (mp - mm) / 2j
        real = t @ m.toarray() @ t.conj().T
        assert np.abs(real.imag).max() < 1e-14
    r_y = 1j * ((angular_momentum("+", LMAX) - angular_momentum("-", LMAX)) / 2j).toarray()
    assert np.abs((t @ r_y @ t.conj().T).imag).max() < 1e-14


@pytest.mark.parametrize(("n_m", "n_n", "size"), [(5, 4, 64), (8, 6, 184), (10, 8, 355)])
def test_sector_sizes_match_closed_form(n_m, n_n, size):
    expected = sum(2 * min(l, big_l) + 1 for l in range(n_m + 1) for big_l in range(0, n_n + 1, 2))
    assert expected == size
    basis = ProductBasis(n_m, n_n)
    assert basis.size == expected
    q = basis.real_transform
    assert sp.linalg.norm(q @ q.conj().T - sp.identity(basis.size)) < 1e-12
