"""Particle models: exact Langevin rates (chain rule vs finite differences), registry, tracer."""

from __future__ import annotations

import numpy as np
import pytest

from llgfem.config import ConfigError, parse_section
from llgfem.scanner.fields import ScannerConfig, ScannerFields
from llgfem.scanner.models import (
    MODELS,
    LangevinResponse,
    build_model,
    langevin_derivative,
    langevin_function,
)
from llgfem.scanner.tracer import TracerConfig


def test_langevin_function_and_derivative_series_match_closed_forms():
    x = np.array([0.009, 0.0099, 0.0101, 0.011])  # both sides of the series switch
    lf = 1 / np.tanh(x.astype(np.longdouble)) - 1 / x.astype(np.longdouble)
    ld = 1 / x.astype(np.longdouble) ** 2 - 1 / np.sinh(x.astype(np.longdouble)) ** 2
    np.testing.assert_allclose(langevin_function(x), lf.astype(float), rtol=1e-9)
    np.testing.assert_allclose(langevin_derivative(x), ld.astype(float), rtol=1e-6)
    h = 1e-6
    for xv in (0.3, 2.0, 15.0):
        fd = (langevin_function(xv + h) - langevin_function(xv - h)) / (2 * h)
        assert langevin_derivative(xv) == pytest.approx(fd, rel=1e-7)


def test_langevin_rate_is_the_time_derivative_of_the_moment():
    sc = ScannerFields(ScannerConfig(num_sampling_points=400))
    tracer = TracerConfig(core_diameter=25e-9)
    model = LangevinResponse(tracer)
    x = np.array([[0.004, -0.002, 0.0], [0.0, 0.0, 0.0], [-0.011, 0.007, 0.001]])
    _, dm = model.moments(sc, x)
    h = 1e-11
    c = tracer.xi_per_tesla
    from llgfem.scanner.models import langevin_response

    def m_at(t):
        return langevin_response(c * sc.field(x, t), np.zeros((len(x), t.size, 3)))[0]

    fd = (m_at(sc.times + h) - m_at(sc.times - h)) / (2 * h)
    scale = np.abs(dm).max()
    assert scale > 1e4  # 1/s: a real signal
    assert np.abs(fd - dm).max() < 1e-5 * scale


def test_langevin_moment_is_parallel_to_the_field_and_bounded():
    sc = ScannerFields(ScannerConfig(num_sampling_points=64))
    tracer = TracerConfig()
    m, _ = LangevinResponse(tracer).moments(sc, np.array([[0.003, 0.001, 0.0]]))
    b = sc.field(np.array([[0.003, 0.001, 0.0]]), sc.times)
    assert np.abs(np.cross(m, b)).max() < 1e-12
    assert np.linalg.norm(m, axis=-1).max() < 1


def test_registry_and_unknown_models():
    assert {"langevin", "brown_neel"} <= set(MODELS)
    tracer = TracerConfig()
    assert build_model(tracer, {}).name == "langevin"
    assert build_model(tracer, {"kind": "brown_neel", "n_m": 4, "n_n": 2}).name == "brown_neel"
    with pytest.raises(ConfigError, match="model.kind: 'llgg'"):
        build_model(tracer, {"kind": "llgg"})
    with pytest.raises(ConfigError, match="model.warmup_cycles"):
        build_model(tracer, {"kind": "brown_neel", "warmup_cycles": -1})
    with pytest.raises(ConfigError, match="model.n_m"):
        build_model(tracer, {"kind": "langevin", "n_m": 3})


def test_tracer_derived_values_and_checks():
    t = TracerConfig(core_diameter=20e-9, anisotropy=6e3)
    assert t.moment == pytest.approx(474e3 * np.pi * 20e-9**3 / 6)
    p = t.particle_parameters()
    assert p.tau_n == pytest.approx(t.tau_neel)
    assert p.tau_b == pytest.approx(t.tau_brown)
    assert p.sigma == pytest.approx(t.sigma)
    for key, value in [("temperature", 0.0), ("viscosity", -1.0), ("core_diameter", 20.0),
                       ("easy_axis", "fixed"), ("anisotropy", -1.0)]:
        with pytest.raises(ConfigError, match=f"tracer.{key}"):
            parse_section(TracerConfig, {key: value}, "tracer")


def test_brown_neel_engines_agree_off_one_line():
    """Fields off one line: the even-L Lissajous engine (field-frame preconditioner) and the
    full product basis give the same moments; a field on one line stays in the z-sector."""
    tracer = TracerConfig(core_diameter=20e-9, anisotropy=1e3)
    scanner = ScannerFields(ScannerConfig(dividers=(4,), strengths=(0.006,),
                                          num_sampling_points=8))
    x = np.array([[0.004, -0.007, 0.0], [0.002, 0.0, 0.0]])  # oblique; on the drive axis
    opts = {"kind": "brown_neel", "n_m": 4, "n_n": 2, "rtol": 1e-8, "warmup_cycles": 1}
    auto = build_model(tracer, opts)
    full = build_model(tracer, {**opts, "engine": "full"})
    m_a, dm_a = auto.moments(scanner, x)
    m_f, dm_f = full.moments(scanner, x)
    assert auto.stats["lissajous"] == 1
    assert auto.stats["sector"] == full.stats["sector"] == 1
    assert full.stats["full"] == 1
    np.testing.assert_allclose(m_a, m_f, atol=1e-6)
    np.testing.assert_allclose(dm_a, dm_f, atol=1e-5 * np.abs(dm_f).max())
    assert np.abs(dm_f[0, :, 1]).max() > 1e-2 * np.abs(dm_f[0, :, 0]).max()  # 2-D response
    with pytest.raises(ConfigError, match="model.engine"):
        build_model(tracer, {"kind": "brown_neel", "engine": "fast"})
