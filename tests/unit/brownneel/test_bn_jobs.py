"""`llgfem run` entry points of the Brown–Néel jobs on a tiny truncation."""

from __future__ import annotations

import json

import pytest
from mpi4py import MPI

from llgfem.brownneel.jobs import run_job
from llgfem.config import ConfigError, parse_config

BASE = {"n_m": 6, "n_n": 4, "rtol": 1e-5, "warmup_periods": 0.0, "periods": 0.25,
        "samples_per_period": 80, "f_d_kHz": 10.0}


def _cfg(kind, out, **extra):
    return parse_config({"job": {"kind": kind}, "output": {"dir": str(out)},
                         "brown_neel": {**BASE, **extra}})


def test_fom_pod_rom_jobs_write_outputs(mpi_tmp_path):
    fom = run_job(_cfg("brown_neel_fom", mpi_tmp_path))
    assert fom["max_re_eig_tauN"] <= 1e-8
    pod = run_job(_cfg("brown_neel_pod", mpi_tmp_path, rank=10))
    assert pod["rank"] == 10
    basis = str(mpi_tmp_path / "brown_neel_pod" / "basis.npz")
    rom = run_job(_cfg("brown_neel_rom", mpi_tmp_path, rank=10, basis=basis, f_d_kHz=5.0))
    assert rom["rank"] == 10
    assert rom["nrmse"] < 1.0
    MPI.COMM_WORLD.Barrier()
    for name, files in (("brown_neel_fom", ("summary.json", "plots/signal.png", "states.npz")),
                        ("brown_neel_rom", ("summary.json", "plots/rom_signal.png"))):
        for f in files:
            assert (mpi_tmp_path / name / f).exists()
    saved = json.loads((mpi_tmp_path / "brown_neel_rom" / "summary.json").read_text())
    assert saved["rank"] == 10


def test_invalid_table_is_reported(mpi_tmp_path):
    with pytest.raises(ConfigError, match="brown_neel.formulation"):
        run_job(_cfg("brown_neel_fom", mpi_tmp_path, formulation="bogus"))
    with pytest.raises(ConfigError, match="not a Brown"):
        run_job(parse_config({"job": {"kind": "heat"}}))


def test_rom_job_across_particles_with_boltzmann_transfer(mpi_tmp_path):
    """A basis from (20 nm, 6 kJ/m³) reused for (20 nm, 10 kJ/m³): mapping the snapshots by
    the Boltzmann weight ratio beats using them directly."""
    common = {"K_kJ": 10.0, "basis_K_kJ": 6.0, "rank": 12, "n_m": 8, "n_n": 6}
    direct = run_job(_cfg("brown_neel_rom", mpi_tmp_path, **common))
    mapped = run_job(_cfg("brown_neel_rom", mpi_tmp_path, transfer="boltzmann", **common))
    assert mapped["transfer"] == "boltzmann"
    assert mapped["nrmse"] < 0.5 * direct["nrmse"]
    assert mapped["nrmse"] < 0.05
    with pytest.raises(ConfigError, match="brown_neel.transfer"):
        run_job(_cfg("brown_neel_rom", mpi_tmp_path, transfer="boltzmann", basis="b.npz"))
    with pytest.raises(ConfigError, match="brown_neel.transfer"):
        run_job(_cfg("brown_neel_rom", mpi_tmp_path, transfer="sideways"))
