"""calibrate [data] on a 2-D Lissajous MDF measurement (scanner from the file, any sampling).

The file is written by the package's own MDF writer from a finer model (16 cells, 240 steps)
of a 1-D sample under a two-channel drive (f_B = 1.2 MHz, dividers (2, 3): 600 and 400 kHz,
phases, an offset field and a full (non-diagonal) gradient); it is fitted by a coarser model
(8 cells, 70 steps) whose 70 midpoints are neither a multiple nor a divisor of the file's 30
samples per cycle.  No inverse crime: the estimates carry the coarse model's error (a few
1e-3), below the tolerances.
"""

from __future__ import annotations

import numpy as np
import pytest
from _physical_1d import physical_1d  # tests/integration (on sys.path)

from llgfem.calibration.simulate import scanner_measurement_mdf, scanner_samples
from llgfem.config import ConfigError, parse_config
from llgfem.io.mdf import write_mdf
from llgfem.jobs.calibrate import run

SCANNER = {"base_frequency": 1.2e6, "dividers": [2, 3], "strengths": [8e-6, 6e-6],
           "phases": [0.0, 0.3],
           "gradient_matrix": [[-2e-4, 5e-5, 0.0], [5e-5, -2e-4, 0.0], [0.0, 0.0, 4e-4]],
           "offset_field": [0.0, 2e-6, 1e-6], "cycle_s": 5e-6}
SAMPLES = 30


def config(tmp, cells: int, n_t: int, **extra) -> dict:
    return physical_1d(tmp, "liss", cells=cells, T=SCANNER["cycle_s"], n_t=n_t, **extra)


@pytest.fixture
def lissajous_file(mpi_tmp_path, comm):
    u, truth = scanner_samples(parse_config(config(mpi_tmp_path, 16, 241)), SCANNER, SAMPLES,
                               comm)
    mdf = scanner_measurement_mdf(u, SCANNER, frames=2, background_frames=1)
    return write_mdf(mpi_tmp_path / "liss.mdf", mdf, comm=comm), truth


def test_lissajous_measurement_fitted_from_the_file_drive(lissajous_file, mpi_tmp_path):
    path, truth = lissajous_file
    n_t = 71  # 70 midpoints against 30 samples per cycle: no common grid
    assert (n_t - 1) % SAMPLES
    assert SAMPLES % (n_t - 1)
    cfg = parse_config(config(mpi_tmp_path, 8, n_t, data={"path": str(path)},
                              calibrate={"method": "gauss_newton", "a0": [0.103, -0.99],
                                         "max_iter": 10}))
    s = run(cfg)
    res = s["resolved"]
    assert res["field"] == "file"
    assert res["field_source"] == "scanner"
    assert res["scanner"]["dividers"] == [2, 3]
    assert np.allclose(res["scanner"]["gradient_matrix"], SCANNER["gradient_matrix"])
    assert res["T"] == pytest.approx(5e-6)
    assert res["cycles_in_T"] == pytest.approx(1.0)
    assert s["a1"] == pytest.approx(truth["a1"], rel=1e-2)
    assert s["a2"] == pytest.approx(truth["a2"], rel=5e-3)
    assert s["r_obs"] < 1e-2
    assert s["identified"][:2] == [True, True]
    alpha = s["physical"]["parameters"][0]
    assert alpha["name"] == "alpha_D"
    assert alpha["estimate"] == pytest.approx(0.1, rel=1e-2)


def test_lissajous_model_grid_must_resolve_the_fastest_channel(lissajous_file, mpi_tmp_path):
    path, _ = lissajous_file
    cfg = parse_config(config(mpi_tmp_path, 8, 41, data={"path": str(path)},
                              calibrate={"method": "gauss_newton", "a0": [0.1, -1.0],
                                         "max_iter": 1}))
    with pytest.raises(ConfigError, match="time.n_t: the file's drive"):
        run(cfg)
