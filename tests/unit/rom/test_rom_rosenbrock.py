"""Online stepping of affine reduced models (RODAS4, ``integrate_rosenbrock``): exact for a
constant stiff operator up to the tolerance, 4th order on a time-dependent one, rescaled states
with the accumulated log-scale, step limit."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla
from scipy.integrate import solve_ivp

from llgfem.rom.parametric import integrate_rosenbrock


def _stiff_operator(r: int = 12, seed: int = 4) -> np.ndarray:
    """Non-normal stiff matrix with eigenvalues −0.01 … −1e4, some oscillatory."""
    rng = np.random.default_rng(seed)
    lam = -np.logspace(-2, 4, r)
    d = np.diag(lam)
    for k in range(0, r - 1, 4):  # 2 × 2 rotation blocks: λ ± 10iλ-type modes
        d[k, k + 1], d[k + 1, k] = 10 * abs(lam[k]), -10 * abs(lam[k])
    v = np.eye(r) + 0.3 * rng.standard_normal((r, r))
    return v @ d @ np.linalg.inv(v)


def test_constant_stiff_operator_matches_expm():
    f = _stiff_operator()
    a0 = np.random.default_rng(1).standard_normal(f.shape[0])
    s = np.linspace(0.0, 30.0, 7)
    res = integrate_rosenbrock([f], lambda t: np.ones((t.size, 1)), a0, s, rtol=1e-9)
    for j, sj in enumerate(s):
        exact = sla.expm(sj * f) @ a0
        got = np.exp(res.log_scale[j]) * res.y[:, j]
        assert np.abs(got - exact).max() <= 1e-6 * np.abs(exact).max()
        assert np.abs(res.y[:, j]).max() == pytest.approx(1.0)
    # the slowest mode decays like e^{−0.01 s}: the log-scale carries it, the state stays O(1)
    assert res.log_scale[-1] < np.log(np.abs(a0).max())


def test_fourth_order_on_time_dependent_affine_operator():
    rng = np.random.default_rng(2)
    a_0, a_1 = -np.eye(6) + 0.3 * rng.standard_normal((6, 6)), rng.standard_normal((6, 6))

    def coef(t):
        return np.stack([np.ones_like(t), np.sin(2.0 * t)], axis=1)

    a0 = rng.standard_normal(6)
    s = np.array([0.0, 1.0, 2.0])
    ref = solve_ivp(lambda t, y: (a_0 + np.sin(2.0 * t) * a_1) @ y, (0, 2), a0, t_eval=s,
                    method="DOP853", rtol=1e-13, atol=1e-14).y
    errors = []
    for sub in (8, 16, 32):
        res = integrate_rosenbrock([a_0, a_1], coef, a0, s, substeps=sub, rate_step=1e-5)
        errors.append(np.abs(np.exp(res.log_scale[-1]) * res.y[:, -1] - ref[:, -1]).max())
    rates = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(rates > 3.5), (errors, rates)
    # adaptive: within a small multiple of the tolerance
    res = integrate_rosenbrock([a_0, a_1], coef, a0, s, rtol=1e-8)
    got = np.exp(res.log_scale[-1]) * res.y[:, -1]
    assert np.abs(got - ref[:, -1]).max() < 1e-6 * np.abs(ref[:, -1]).max()


def test_step_limit_raises():
    f = _stiff_operator()
    with pytest.raises(RuntimeError, match="more than 3 steps"):
        integrate_rosenbrock([f], lambda t: np.ones((t.size, 1)), np.ones(f.shape[0]),
                             np.array([0.0, 100.0]), rtol=1e-12, max_steps=3)
