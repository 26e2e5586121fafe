"""The ``llg`` particle model: a driven macrospin follows slow fields, lags fast ones.

* quasi-static limit (drive period >> relaxation time 1/(alpha gamma |B|)): m = B/|B| to the
  lag ~ rotation rate x relaxation time, and the rate d m/dt is the derivative of B/|B|;
* at a real drive frequency (25 kHz) the response lags the field direction visibly (the LLG
  relaxation the papers' calibration is about).
"""

from __future__ import annotations

import numpy as np
import pytest

from llgfem.config import ConfigError, parse_section
from llgfem.scanner.fields import ScannerConfig, ScannerFields
from llgfem.scanner.llg_model import LLGOptions, LLGResponse
from llgfem.scanner.models import build_model
from llgfem.scanner.tracer import TracerConfig

X = np.array([[0.002, 0.0, 0.0], [-0.004, 0.002, 0.0]])  # B_y = 1 mT, -1 mT


def scanner(divider: int) -> ScannerFields:
    # 1 mT transverse offset field: on the positions X, |B| >= 1 mT (a field that stays on one line
# through zero would leave the T = 0 macrospin at its unstable equilibrium)
    return ScannerFields(ScannerConfig(base_frequency=2.5e6, dividers=[divider],
                                       strengths=[0.012], gradient=[-1.0, -1.0, 2.0],
                                       offset_field=[0.0, 0.001, 0.0], num_sampling_points=16))


def unit_field(sc: ScannerFields, x: np.ndarray):
    b = sc.field(x, sc.times)
    size = np.linalg.norm(b, axis=2, keepdims=True)
    rate = sc.rate(sc.times)[None]
    along = np.sum(b * rate, axis=2, keepdims=True) / size**2
    return b / size, (rate - along * b) / size


def lag(model, sc):
    m, dm = model.moments(sc, X)
    u, du = unit_field(sc, X)
    return np.abs(m - u).max(), np.abs(dm - du).max() / np.abs(du).max(), m


@pytest.mark.skip_in_parallel  # a COMM_SELF model: nothing parallel to test
def test_quasi_static_limit_and_relaxation_lag():
    """25 Hz: m = B/|B| and dm/dt = d(B/|B|)/dt; 25 kHz: the relaxation lag is visible."""
    model = build_model(TracerConfig(damping=0.5), {"kind": "llg", "rtol": 1e-5})
    err_m, err_rate, m = lag(model, scanner(100_000))
    assert np.abs(np.linalg.norm(m, axis=2) - 1).max() < 1e-3  # the TS scheme's drift of |m|
    assert err_m < 1e-3
    assert err_rate < 1e-2
    fast = lag(LLGResponse(TracerConfig(damping=0.5), LLGOptions(rtol=1e-5)), scanner(100))[0]
    assert fast > 3 * err_m


@pytest.mark.parametrize(("key", "value"), [("rtol", 0.0), ("warmup_cycles", -1.0),
                                            ("easy_axis", [0.0, 0.0, 0.0])])
def test_bad_options_name_the_key(key, value):
    with pytest.raises(ConfigError, match=f"model.{key}"):
        parse_section(LLGOptions, {key: value}, "model")
