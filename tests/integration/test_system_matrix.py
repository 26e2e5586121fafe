"""The ``system_matrix`` job end to end on tiny grids (serial and under mpiexec -n 2).

* Langevin, 2-D Lissajous: the MDF files read back (``read_mdf``/``system_matrix`` and raw
  h5py) hold the system matrix computed here directly without any MPI split, and the
  time-domain file is the inverse FFT of the frequency-domain one.
* Brown–Néel vs Langevin through the same job: a small, fast-relaxing particle
  (10 nm, 1 kJ/m³, τ_N ≈ 1.8 ns) at a 250 Hz drive is in equilibrium, so the two system
  matrices agree to <= 1e-3 (relative Frobenius norm; measured 9e-5 with rtol 1e-8).
"""

from __future__ import annotations

import h5py
import numpy as np
import tomli_w
from mpi4py import MPI

from llgfem.cli import load_run_config
from llgfem.io.mdf import read_mdf, system_matrix
from llgfem.jobs.system_matrix import run, setup
from llgfem.scanner.system_matrix import grid_positions, receive_spectra


def _config(folder, name: str, model: dict, scanner: dict, size, fov, extra=None) -> str:
    data = {
        "job": {"kind": "system_matrix", "name": name},
        "output": {"dir": str(folder)},
        "scanner": scanner,
        "tracer": {"core_diameter": 10e-9, "anisotropy": 1e3, "concentration": 0.5},
        "calibration": {"size": list(size), "fov": list(fov)},
        "model": model,
        "system_matrix": {"plots": False},
        "reconstruction": {"enabled": False},
        **(extra or {}),
    }
    path = folder / f"{name}.toml"
    if MPI.COMM_WORLD.rank == 0:
        path.write_text(tomli_w.dumps(data))
    MPI.COMM_WORLD.Barrier()
    return str(path)


def _run(path: str):
    cfg = load_run_config(path)
    return cfg, run(cfg)


def test_langevin_lissajous_job_writes_the_system_matrix_as_mdf(mpi_tmp_path):
    path = _config(mpi_tmp_path, "lan2d", {"kind": "langevin"},
                   {"dividers": [102, 96], "strengths": [0.012, 0.012]}, (4, 4, 1),
                   (0.02, 0.02, 0.0),
                   {"receiver": {"x": {"sensitivity": [1.0, 0, 0]},
                                 "y": {"sensitivity": [0, 1.0, 0],
                                       "transfer_function": "bandpass",
                                       "band": [20e3, 1e6]}},
                    "reconstruction": {"enabled": True, "snr_threshold": 3.0},
                    "system_matrix": {"plots": True, "patterns": 2, "label_peaks": 3}})
    cfg, summary = _run(path)
    assert summary["positions"] == 16
    assert summary["frequencies"] == 817
    assert summary["ranks"] == MPI.COMM_WORLD.size
    assert 0 <= summary["reconstruction"]["rel_error"] < 1
    run_dir = cfg.run_dir
    assert (run_dir / "plots" / "patterns_x.png").is_file()
    # reference: the whole grid in one process, no split
    s = setup(cfg)
    x = grid_positions(s.grid)
    _, dm = s.model.moments(s.scanner, x)
    ref = receive_spectra(dm, x, s.channels, s.tracer, s.grid, s.scanner)
    mdf = read_mdf(run_dir / "system_matrix.mdf")
    S, pos = system_matrix(mdf)
    assert S.shape == (16, 1, 2, 817)
    np.testing.assert_allclose(pos, x, atol=1e-15)
    np.testing.assert_allclose(S[:, 0], ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())
    snr = mdf.calibration.snr
    assert snr.shape == (1, 2, 817)
    assert snr.max() > 10
    td, _ = system_matrix(read_mdf(run_dir / "system_matrix_td.mdf"))
    np.testing.assert_allclose(td[:, 0], ref, atol=1e-9 * np.abs(ref).max())
    with h5py.File(run_dir / "system_matrix.mdf", "r") as f:  # plain h5py, as the fixture
        assert f["acquisition/drivefield/baseFrequency"][()] == 2.5e6
        assert list(f["acquisition/drivefield/divider"][()].ravel()) == [102, 96]
        assert f["calibration/method"][()].decode() == "simulation"


def test_brown_neel_equals_langevin_for_a_fast_particle_at_low_frequency(mpi_tmp_path):
    scanner = {"base_frequency": 2.5e6, "dividers": [10000], "strengths": [0.012],
               "num_sampling_points": 100}
    size, fov = (2, 1, 1), (0.012, 0.0, 0.0)
    bn = {"kind": "brown_neel", "n_m": 6, "n_n": 2, "rtol": 1e-8, "warmup_cycles": 1}
    spectra = {}
    for name, model in (("lan", {"kind": "langevin"}), ("bn", bn)):
        cfg, summary = _run(_config(mpi_tmp_path, name, model, scanner, size, fov))
        spectra[name] = system_matrix(read_mdf(cfg.run_dir / "system_matrix.mdf"))[0]
    stats = summary["model_stats_per_rank"]  # 1-D drive along x: rotated z-sector everywhere
    assert sum(st["sector"] for st in stats) == 2
    assert sum(st["full"] for st in stats) == 0
    lan, bnS = spectra["lan"], spectra["bn"]
    assert np.abs(lan).max() > 0
    err = np.linalg.norm(bnS - lan) / np.linalg.norm(lan)
    assert err <= 1e-3


def test_cli_runs_the_job_and_reports_bad_tables_in_one_line(mpi_tmp_path, capsys):
    from llgfem.cli import main

    path = _config(mpi_tmp_path, "cli1d", {"kind": "langevin"},
                   {"dividers": [100], "strengths": [0.012], "num_sampling_points": 64},
                   (5, 1, 1), (0.02, 0.0, 0.0), {"reconstruction": {"enabled": True}})
    assert main(["run", path]) == 0
    run_dir = mpi_tmp_path / "cli1d"
    assert (run_dir / "system_matrix.mdf").is_file()
    assert (run_dir / "config.resolved.toml").is_file()
    assert read_mdf(run_dir / "system_matrix_td.mdf").acquisition.receiver.num_sampling_points == 64
    assert main(["run", path, "--set", "scanner.dividers=[0]"]) == 2
    assert main(["run", path, "--set", "model.kind='llgg'"]) == 2
    if MPI.COMM_WORLD.rank == 0:
        err = capsys.readouterr().err
        assert "scanner.dividers" in err
        assert "model.kind" in err
