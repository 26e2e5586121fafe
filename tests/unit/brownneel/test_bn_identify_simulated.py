"""`brown_neel_identify` without [data]: simulate -> write MDF -> read -> fit (issue 14).

A tiny particle (12 nm, 8 kJ/m³, 100 kHz) keeps the FOM runs short.  For speed the data FOM
uses the ROM's truncation (6, 4) (``identify_data_truncation``; the data then differ from the
ROM by the POD projection and the time scheme: adaptive BDF2 against Radau IIA); the demo uses
the default, the finer truncation (n_m + 2, n_n + 2).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from mpi4py import MPI

from llgfem.config import ConfigError, parse_config

TABLE = {"n_m": 6, "n_n": 4, "rank": 20, "identify_data_truncation": [6, 4], "f_d_kHz": 100.0,
         "B_d_mT": 15.0, "rtol": 1e-6, "samples_per_period": 32,
         "identify_truth": [12.0, 8.0], "identify_noise": 0.01, "identify_grid": 1,
         "box_d_c_nm": [11.5, 12.5], "box_K_kJ": [7.0, 9.0], "substeps": 8}


def _config(tmp, **changes):
    return parse_config({"job": {"kind": "brown_neel_identify", "name": "sim"},
                         "output": {"dir": str(tmp)}, "brown_neel": {**TABLE, **changes}})


def test_identify_goes_through_a_written_mdf_file(mpi_tmp_path):
    from llgfem.brownneel.calibrate_data import TRUTH_KEYS
    from llgfem.brownneel.jobs import run_job
    from llgfem.io.mdf import read_mdf

    out = run_job(_config(mpi_tmp_path))
    comm = MPI.COMM_WORLD
    path = mpi_tmp_path / "sim" / "data" / "measurement.mdf"
    assert out["data_file"] == str(path.resolve())
    assert "truncation (6, 4), PETSc TS BDF2" in out["data_model"]
    mdf = read_mdf(path, comm=comm)  # a valid MDF v2 file with the truth recorded
    assert mdf.tracer[TRUTH_KEYS["d_c"]][0] == pytest.approx(12e-9)
    # what was fitted is what the file holds: the job's reader saw its frames and drive
    assert out["data"]["path"] == str(path.resolve())
    est = np.array(out["estimate"])
    assert np.all(np.isfinite(est))
    assert np.all(np.array(out["stderr"]) > 0)
    lo, hi = np.array(out["ci95_low"]), np.array(out["ci95_high"])
    assert np.all(lo[:2] <= [12.0, 8.0])
    assert np.all([12.0, 8.0] <= hi[:2])
    comm.Barrier()
    saved = json.loads((mpi_tmp_path / "sim" / "summary.json").read_text())
    assert saved["true"] == [12.0, 8.0]


def test_identify_bad_settings_are_refused(mpi_tmp_path):
    from llgfem.brownneel.jobs import run_job

    with pytest.raises(ConfigError, match="identify_truth"):
        run_job(_config(mpi_tmp_path, identify_truth=[13.0, 8.0]))
    with pytest.raises(ConfigError, match="identify_data_truncation"):
        run_job(_config(mpi_tmp_path, identify_data_truncation=[4, 4]))
