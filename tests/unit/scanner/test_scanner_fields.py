"""Scanner fields: OpenMPIData-like derived values, exact drive rates, mixing orders, checks."""

from __future__ import annotations

import numpy as np
import pytest

from llgfem.config import ConfigError, parse_section
from llgfem.scanner.fields import ScannerConfig, ScannerFields, mixing_orders


def test_openmpidata_lissajous_derived_values():
    sc = ScannerFields(ScannerConfig())
    np.testing.assert_allclose(sc.frequencies, [2.5e6 / 102, 2.5e6 / 96])
    assert sc.cycle_base_periods == 1632
    assert sc.num_samples == 1632
    assert sc.cycle == pytest.approx(652.8e-6, rel=1e-12)
    assert list(sc.bin_per_channel) == [16, 17]
    d = sc.derived()
    assert d["drive_fov_half_width_m"] == pytest.approx({"x": 0.012, "y": 0.012, "z": 0.0})
    # the trajectory closes after one cycle and not before (Lissajous period)
    np.testing.assert_allclose(sc.drive(sc.cycle), sc.drive(0.0), atol=1e-15)
    assert np.abs(sc.drive(sc.cycle / 3) - sc.drive(0.0)).max() > 1e-3


def test_rate_is_the_time_derivative_of_the_drive():
    sc = ScannerFields(ScannerConfig(phases=(0.3, -1.0), waveform="cosine",
                                     directions=((1, 1, 0), (0, 0, 1))))
    t = np.linspace(0, sc.cycle, 57)
    h = 1e-10
    fd = (sc.drive(t + h) - sc.drive(t - h)) / (2 * h)
    np.testing.assert_allclose(sc.rate(t), fd, atol=1e-6 * np.abs(fd).max())


def test_field_is_gradient_plus_drive_plus_offset():
    sc = ScannerFields(ScannerConfig(offset_field=(0.001, 0.0, -0.002)))
    x = np.array([[0.01, -0.02, 0.003]])
    b = sc.field(x, np.array([0.0, 1e-5]))
    np.testing.assert_allclose(b[0, 0], [-0.01 + 0.001, 0.02, 0.006 - 0.002])
    np.testing.assert_allclose(b[0, 1] - b[0, 0], sc.drive(1e-5))
    np.testing.assert_allclose(sc.ffp(), [0.001, 0.0, 0.001])


def test_mixing_orders_solve_the_bin_equation_with_least_order():
    q = [16, 17]
    k = np.array([16, 17, 33, 1, 32, 50, 49])
    m = mixing_orders(q, k)
    np.testing.assert_array_equal(m @ np.array(q), k)
    assert m[:3].tolist() == [[1, 0], [0, 1], [1, 1]]
    assert m[3].tolist() == [-1, 1]  # 17 - 16
    one_d = mixing_orders([102], np.array([0, 102, 306]))
    assert one_d[:, 0].tolist() == [0, 1, 3]


@pytest.mark.parametrize(("key", "value", "match"), [
    ("base_frequency", 0.0, "scanner.base_frequency"),
    ("dividers", [0, 96], "scanner.dividers"),
    ("strengths", [0.012], "scanner.strengths"),
    ("waveform", "square", "scanner.waveform"),
    ("num_sampling_points", 1, "scanner.num_sampling_points"),
    ("directions", [[0, 0, 0], [0, 1, 0]], "scanner.directions"),
])
def test_bad_scanner_values_name_the_key(key, value, match):
    with pytest.raises(ConfigError, match=match):
        parse_section(ScannerConfig, {key: value}, "scanner")


def test_openmpidata_3d_cycle_and_labels():
    from llgfem.scanner.system_matrix import frequency_labels

    sc = ScannerFields(ScannerConfig(dividers=(102, 96, 99), strengths=(0.012,) * 3))
    assert sc.num_samples == 53856
    assert sc.cycle == pytest.approx(21.5424e-3, rel=1e-12)
    assert frequency_labels(sc, np.array([528, 561, 1089])) == ["(1,0,0)", "(0,1,0)",
                                                                 "(1,1,0)"]
