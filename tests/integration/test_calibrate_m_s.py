"""calibrate [data] with parameters = ["a1", "a2", "M_S"]: the saturation magnetisation as the
signal amplitude (known receive chain), and its refusal where the data cannot determine it.

The measurement: a tiny physical FFP scan (8 cells, 40 steps, as tests/integration/
test_calibrate_data.py) whose SI coil signal is multiplied by the true M_S = 3e5 A/m (the
voltage of a known receive chain is mu0 M_S int c p . dm/dt), 1 % noise per frame.
"""

from __future__ import annotations

import pytest
from _physical_1d import FIELD, physical_1d  # tests/integration (on sys.path)

from llgfem.calibration.simulate import clean_samples, write_measurement
from llgfem.config import ConfigError, parse_config
from llgfem.jobs.calibrate import run

M_S = 3.0e5


def base(tmp, **extra) -> dict:
    return physical_1d(tmp, "cal_ms", **extra)


@pytest.fixture
def measurement(mpi_tmp_path, comm):
    u, field, truth = clean_samples(parse_config(base(mpi_tmp_path, field=FIELD)), 24, comm)
    path = write_measurement(mpi_tmp_path / "m.mdf", M_S * u, field, truth, comm=comm,
                             noise=0.01, seed=4, frames=4, background_frames=1)
    return path, truth


def test_m_s_fitted_as_the_amplitude_with_its_interval(measurement, mpi_tmp_path):
    path, truth = measurement
    cfg = parse_config(base(mpi_tmp_path, data={"path": str(path), "gain": "none"},
                            calibrate={"method": "gauss_newton", "parameters": ["a1", "a2", "M_S"],
                                       "a0": [0.105, -0.98, 2.5e5], "max_iter": 15}))
    s = run(cfg)
    assert s["parameter_names"] == ["a1", "a2", "M_S"]
    assert s["identified"] == [True, True, True]
    se = s["stderr"][2]
    assert 0 < se < 0.01 * M_S
    assert abs(s["M_S"] - M_S) < 4 * se
    assert s["ci95_low"][2] < s["M_S"] < s["ci95_high"][2]
    assert abs(s["a2"] - truth["a2"]) < 4 * s["stderr"][1]
    rows = {r["name"]: r for r in s["physical"]["parameters"]}
    assert rows["M_S"]["estimate"] == pytest.approx(s["M_S"])
    assert rows["M_S"]["stderr"] == pytest.approx(se)
    assert rows["alpha_D"]["estimate"] == pytest.approx(0.1, rel=2e-2)
    assert s["gains"] == []


def test_m_s_with_fitted_gains_or_without_data_is_refused(measurement, mpi_tmp_path):
    path, _ = measurement
    cal = {"method": "gauss_newton", "parameters": ["a1", "a2", "M_S"],
           "a0": [0.1, -1.0, 3e5], "max_iter": 2}
    for gain in ("complex", "real"):
        cfg = parse_config(base(mpi_tmp_path, data={"path": str(path), "gain": gain},
                                calibrate=cal))
        with pytest.raises(ConfigError, match="M_S is not identifiable with data.gain"):
            run(cfg)
    with pytest.raises(ConfigError, match="M_S is fitted from a measured file only"):
        run(parse_config(base(mpi_tmp_path, field=FIELD, calibrate=cal)))
    with pytest.raises(ConfigError, match="calibrate.parameters"):
        run(parse_config(base(mpi_tmp_path, data={"path": str(path), "gain": "none"},
                              calibrate={**cal, "parameters": ["a1", "M_S", "a2"]})))
