"""calibrate with [data]: simulate -> write MDF -> calibrate reads it (serial and 2 ranks).

A tiny physical FFP scan (8 cells, 40 steps) so that the test is fast; the data here are
made by the same model that fits them (pipeline check, exact recovery without noise); the
no-inverse-crime runs are the demo (demos/configs/calibrate_mdf.toml) and the bench.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from _physical_1d import COILS, FIELD, physical_1d  # tests/integration (on sys.path)

from llgfem.calibration import NotIdentifiedWarning
from llgfem.calibration.simulate import clean_samples, write_measurement
from llgfem.config import ConfigError, parse_config
from llgfem.jobs.calibrate import run

ROOT = Path(__file__).resolve().parents[2]


def base(tmp, **extra) -> dict:
    return physical_1d(tmp, "cal_data", **extra)


@pytest.fixture
def measurement(mpi_tmp_path, comm):
    cfg = parse_config(base(mpi_tmp_path, field=FIELD))
    u, field, truth = clean_samples(cfg, 24, comm)
    path = write_measurement(mpi_tmp_path / "m.mdf", u, field, truth, comm=comm, noise=0.0,
                             frames=2, background_frames=1, feedthrough=0.3)
    return path, truth


def test_exact_data_recovered_with_intervals(measurement, mpi_tmp_path):
    path, truth = measurement
    cfg = parse_config(base(mpi_tmp_path, data={"path": str(path)},
                            calibrate={"method": "gauss_newton", "a0": [0.105, -0.98],
                                       "max_iter": 10}))
    summary = run(cfg)
    assert summary["a1"] == pytest.approx(truth["a1"], rel=1e-5)
    assert summary["a2"] == pytest.approx(truth["a2"], rel=1e-5)
    assert summary["gains"][0::2] == pytest.approx([1.0] * 3, rel=1e-5)
    assert summary["resolved"]["field"] == "file"
    assert summary["resolved"]["time"] == "file"
    assert summary["resolved"]["field_table"]["gradient"] == pytest.approx(4e-3)
    assert summary["data"]["bins_drive_stopped"] == 1
    assert summary["data"]["background_frames"] == 1
    assert summary["physical"]["parameters"][0]["name"] == "alpha_D"
    assert summary["physical"]["parameters"][0]["estimate"] == pytest.approx(0.1, rel=1e-5)
    assert len(summary["stderr"]) == 2 + 6  # a1, a2 and a complex gain per channel
    saved = json.loads((mpi_tmp_path / "cal_data" / "summary.json").read_text())
    assert saved["identified"][:2] == [True, True]


def test_data_errors_name_the_key(measurement, mpi_tmp_path):
    path, _ = measurement
    cal = {"method": "gauss_newton", "a0": [0.13, -0.9], "max_iter": 2}
    with pytest.raises(ConfigError, match="calibrate.method"):
        run(parse_config(base(mpi_tmp_path, data={"path": str(path)},
                              calibrate={**cal, "method": "landweber"})))
    two_coils = parse_config(base(mpi_tmp_path, data={"path": str(path)}, calibrate=cal,
                                  coil=COILS[:2]))
    with pytest.raises(ConfigError, match="receive channels"):
        run(two_coils)
    coarse = parse_config(base(mpi_tmp_path, data={"path": str(path)}, calibrate=cal,
                               time={"T": 1e-5, "n_t": 21}))
    with pytest.raises(ConfigError, match="do not resolve the highest"):
        run(coarse)
    scaled = base(mpi_tmp_path, data={"path": str(path)}, calibrate=cal,
                  llg={"scheme": "bartels_prohl", "initial": "field"})
    scaled.pop("physical")
    with pytest.raises(ConfigError, match="data.field"):
        run(parse_config(scaled))
    with pytest.raises(ConfigError, match="data.gain"):
        run(parse_config(base(mpi_tmp_path, data={"path": str(path), "gain": "magic"},
                              calibrate=cal)))


@pytest.mark.skip_in_parallel
def test_shipped_demo_file_is_read_and_fitted(mpi_tmp_path):
    """demos/configs/calibrate_mdf.toml on the shipped MDF (1 LM step only, for time)."""
    from llgfem.config import read_toml

    src = ROOT / "demos" / "configs" / "calibrate_mdf.toml"
    data = read_toml(src)
    data["output"] = {"dir": str(mpi_tmp_path), "fields": False, "plots": False}
    data["calibrate"]["max_iter"] = 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotIdentifiedWarning)
        summary = run(parse_config(data, source=str(src)))
    assert summary["data"]["format"] == "mdf"
    assert summary["data"]["frames_used"] == 4
    assert 1 <= summary["iterations"] <= 2  # one LM step, then one refit with channel weights
    assert np.isfinite(summary["a1"])
    assert abs(summary["a1"] - 0.1) < abs(0.15 - 0.1)  # moved from a0 towards the truth


def test_signals_file_fitted_in_time_domain(mpi_tmp_path, comm):
    """An llgfem signals file (every other model midpoint) through [data] (scaled Test 3)."""
    import math

    from llgfem.io.signals import save_signals
    from llgfem.jobs.calibrate import setup

    scaled = {"job": {"kind": "calibrate", "name": "cal_sig"},
              "domain": {"kind": "interval", "lower": [0.0], "upper": [2 * math.pi], "n": [16]},
              "time": {"T": 0.2, "n_t": 11}, "llg": {"initial": "paper3"},
              "output": {"dir": str(mpi_tmp_path), "fields": False, "plots": False},
              "observation": {"mu0": 1.0}, "coil": COILS,
              "concentration": [{"name": "l", "center": [1.5], "width": 1.0},
                                {"name": "r", "center": [4.5], "width": 1.0}]}
    cal = setup(parse_config({**scaled, "calibrate": {"delta": 0.0}}))
    grid = cal.op.problem.grid
    t_mid = 0.5 * (grid.times[1:] + grid.times[:-1])
    y = cal.y.reshape(cal.op.data_shape)[:, :, ::2]
    cal.op.cache.destroy()
    path = save_signals(mpi_tmp_path / "sig.h5", y, t_mid[::2], ["x", "y", "z"], ["l", "r"],
                        comm=comm)
    summary = run(parse_config({**scaled, "data": {"path": str(path), "field": "config",
                                                   "time": "config", "gain": "none"},
                                "calibrate": {"method": "gauss_newton", "a0": [1.05, 0.05],
                                              "max_iter": 10}}))
    assert summary["data"]["format"] == "signals"
    assert summary["a1"] == pytest.approx(1.0, abs=1e-6)
    assert summary["a2"] == pytest.approx(0.0, abs=1e-6)
    assert summary["parameter_names"] == ["a1", "a2"]
