"""least_squares_fit on a small nonlinear problem against scipy.optimize.least_squares."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import least_squares

from llgfem.calibration.fit import least_squares_fit

T = np.linspace(0.0, 3.0, 40)


def model(x):
    return x[0] * np.exp(-x[1] * T) * np.exp(1j * x[2] * T)


def jac(x):
    f = model(x)
    return np.stack([f / x[0], -T * f, 1j * T * f], axis=1)


@pytest.mark.parametrize("noise", [0.0, 0.05])
def test_matches_scipy_least_squares(noise):
    rng = np.random.default_rng(4)
    y = model(np.array([2.0, 0.7, 1.3])) + noise * (rng.standard_normal(T.size)
                                                    + 1j * rng.standard_normal(T.size))
    fit = least_squares_fit(lambda x: model(x) - y, jac, [1.5, 0.4, 1.0], max_iter=60)
    ref = least_squares(lambda x: np.concatenate([(model(x) - y).real, (model(x) - y).imag]),
                        [1.5, 0.4, 1.0], xtol=1e-14, ftol=1e-14, gtol=1e-14)
    assert fit.reason.startswith("converged")
    assert np.allclose(fit.x, ref.x, rtol=1e-7, atol=1e-9)
    assert np.allclose(fit.jacobian, jac(fit.x))


def test_start_must_be_finite():
    with pytest.raises(ValueError, match="not finite"):
        least_squares_fit(lambda x: np.full(3, np.nan), lambda x: np.ones((3, 1)), [1.0])
