"""Fisher-information uncertainty on a linear toy problem with known covariance.

For ``y = X a + sigma eps`` the least-squares estimate has covariance ``sigma^2 (X^T X)^-1``
exactly; the Monte Carlo tolerances below are a few standard errors of the Monte Carlo means.
"""

from __future__ import annotations

import json
import logging
import warnings

import numpy as np
import pytest

from llgfem.calibration import NotIdentifiedWarning, fisher_uncertainty, propagate

N_DATA, SIGMA, SEEDS = 30, 0.05, 600
A_TRUE = np.array([1.5, -0.7, 0.3])
NAMES = ("a1", "a2", "a3")


def _design(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, N_DATA)
    return np.column_stack([np.ones_like(t), t, np.sin(3 * t)]) + 0.1 * rng.standard_normal(
        (N_DATA, 3))


def _fit(x: np.ndarray, seed: int, sigma=None):
    rng = np.random.default_rng(1000 + seed)
    y = x @ A_TRUE + SIGMA * rng.standard_normal(x.shape[0])
    a_hat = np.linalg.lstsq(x, y, rcond=None)[0]
    return a_hat, fisher_uncertainty(x, x @ a_hat - y, a_hat, NAMES, sigma=sigma)


def test_known_sigma_gives_exact_covariance():
    x = _design()
    _, unc = _fit(x, 0, sigma=SIGMA)
    cov = SIGMA**2 * np.linalg.inv(x.T @ x)
    assert np.allclose(unc.stderr, np.sqrt(np.diag(cov)), rtol=1e-10)
    corr = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    assert np.allclose(unc.correlation, corr, atol=1e-10)
    assert unc.sigma_known
    assert unc.all_identified
    assert unc.reasons == []


def test_monte_carlo_covariance_and_coverage():
    x = _design()
    cov = SIGMA**2 * np.linalg.inv(x.T @ x)
    fits = [_fit(x, s) for s in range(SEEDS)]
    est = np.array([a for a, _ in fits])
    emp = np.cov(est.T)
    # sample variance has relative standard deviation sqrt(2/(SEEDS-1)) ~ 0.058; allow 4 of them
    assert np.allclose(np.diag(emp), np.diag(cov), rtol=4 * np.sqrt(2 / (SEEDS - 1)))
    se = np.array([u.stderr for _, u in fits])
    assert np.allclose(se.mean(axis=0), np.sqrt(np.diag(cov)), rtol=0.03)
    inside = np.array([(u.ci95_low <= A_TRUE) & (A_TRUE <= u.ci95_high) for _, u in fits])
    coverage = inside.mean()
    mc_sd = np.sqrt(0.95 * 0.05 / inside.size)
    assert abs(coverage - 0.95) < 4 * mc_sd, coverage


def test_rank_deficient_design_reports_not_identified(caplog):
    x = _design()
    x[:, 2] = 2.0 * x[:, 1]  # a2 and a3 enter only through a2 + 2 a3
    y = x @ A_TRUE
    a_hat = np.linalg.lstsq(x, y, rcond=None)[0]
    unc = fisher_uncertainty(x, x @ a_hat - y, a_hat, NAMES, sigma=SIGMA)
    assert list(unc.identified) == [True, False, False]
    assert np.isinf(unc.stderr[1:]).all()
    assert np.isfinite(unc.stderr[0])
    assert unc.singular_values[-1] / unc.singular_values[0] < 1e-12
    logger = logging.getLogger("llgfem.test_uncertainty")
    with (pytest.warns(NotIdentifiedWarning) as record,
          caplog.at_level(logging.WARNING, logger="llgfem.test_uncertainty")):
        unc.warn(None, logger)
    assert len(record) == 2
    assert "a2" in str(record[0].message)
    assert sum("not identified" in r.message for r in caplog.records) == 2
    json.dumps(unc.to_json())  # finite-only JSON (inf/nan -> null)
    assert unc.to_json()["parameters"][1]["stderr"] is None
    assert "NO" in unc.table()


def test_wide_interval_rule():
    x = _design()
    unc = fisher_uncertainty(x, np.zeros(N_DATA), [1.5, -0.7, 1e-3], NAMES, sigma=SIGMA)
    assert list(unc.identified) == [True, True, False]
    assert "interval width" in unc.reasons[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fisher_uncertainty(x, np.zeros(N_DATA), A_TRUE, NAMES, sigma=SIGMA).warn()


def test_complex_data_stack_real_and_imaginary():
    x = _design()
    xc = x[:15] + 1j * x[15:]
    unc_c = fisher_uncertainty(xc, np.zeros(15, complex), A_TRUE, NAMES, sigma=SIGMA)
    unc_r = fisher_uncertainty(np.vstack([x[:15], x[15:]]), np.zeros(30), A_TRUE, NAMES,
                               sigma=SIGMA)
    assert np.allclose(unc_c.stderr, unc_r.stderr, rtol=1e-12)


def test_propagate_matches_monte_carlo():
    x = _design()
    a = np.array([2.0, -0.5, 0.3])
    unc = fisher_uncertainty(x, np.zeros(N_DATA), a, NAMES, sigma=SIGMA)
    func = lambda v: np.array([-v[0] / v[1], -1.0 / v[1]])  # noqa: E731  (alpha, gamma)
    jac = lambda v: np.array([[-1 / v[1], v[0] / v[1] ** 2, 0.0],  # noqa: E731
                              [0.0, 1 / v[1] ** 2, 0.0]])
    der = propagate(unc, func, jac, ("alpha", "gamma"))
    g = jac(a)
    cov = SIGMA**2 * np.linalg.inv(x.T @ x)
    assert np.allclose(der.stderr, np.sqrt(np.diag(g @ cov @ g.T)), rtol=1e-10)
    assert np.allclose(der.estimate, func(a))
