"""Brown–Néel calibration from an MDF measurement: reader path, ROM, FD Jacobian, fit, warning.

A tiny particle (12 nm, 8 kJ/m³, 100 kHz, 32 samples per period) keeps the FOM runs short.
For speed the data FOM here uses the ROM's truncation (the ROM differs from it by the POD
projection and the time scheme: PETSc TS BDF2 adaptive vs Radau IIA fixed steps); the demo and
the bench simulate their data at a finer truncation (no inverse crime).
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from mpi4py import MPI

from llgfem.brownneel.calibrate_data import (
    CalibrationSetup,
    build_family,
    fd_jacobian,
    fd_step_study,
    fit_measurement,
    model_spectrum,
    read_measurement,
    simulate_measurement,
)
from llgfem.brownneel.calibrate_rom import BrownNeelFamily, reference_check
from llgfem.builders import DataConfig
from llgfem.calibration.uncertainty import NotIdentifiedWarning
from llgfem.errors import DataError
from llgfem.io.mdf import read_mdf, time_domain, write_mdf

TRUTH = {"d_c": 12e-9, "K": 8e3}
SETUP = CalibrationSetup(divider=25, samples=32, data_truncation=(6, 4), data_rtol=1e-7,
                         rom_truncation=(6, 4), rank=20, box=((11.5, 12.5), (7.0, 9.0)),
                         train_rtol=1e-6, train_points=1, substeps=8)


@pytest.fixture(scope="module")
def tiny():
    """The ROM family and one noisy measurement (seed 0) written to and read from MDF."""
    family, _ = build_family(SETUP)
    mdf, info = simulate_measurement(SETUP, TRUTH, seed=0)
    return family, mdf, info


def _read(tmp, mdf, **kwargs) -> object:
    path = write_mdf(tmp / "bn.mdf", mdf, comm=MPI.COMM_WORLD)
    return read_measurement(DataConfig(path=str(path), **kwargs), comm=MPI.COMM_WORLD)


def test_affine_recovery_matches_projected_operators():
    from llgfem.brownneel.model import BrownNeelModel

    size = BrownNeelModel.basis_of((4, 2)).size
    u = np.linalg.qr(np.random.default_rng(1).standard_normal((size, 8)))[0]
    family = BrownNeelFamily(u, (4, 2))
    # d_h != d_c changes ρ = τ_N/τ_B: the ρ-terms must be exact too
    for d_c, k, d_h in [(12e-9, 8e3, 0.0), (21e-9, 6.5e3, 35e-9)]:
        assert reference_check(family, family.candidate(d_c, k, d_h)) < 1e-10


def test_reader_path(tiny, mpi_tmp_path):
    _, mdf, info = tiny
    meas = _read(mpi_tmp_path, mdf)
    # drive, timing and tracer come from the file
    assert meas.drive.frequency == pytest.approx(SETUP.frequency)
    assert meas.drive.amplitude == pytest.approx(SETUP.amplitude)
    assert meas.samples == SETUP.samples
    assert meas.periods == 1
    assert meas.truth == pytest.approx(TRUTH)
    assert meas.base.M_S == SETUP.base.M_S
    assert meas.base.eta == SETUP.base.eta
    # odd harmonics, the drive (harmonic 1) band-stopped, up to Nyquist
    harmonics = meas.bins // meas.periods
    assert harmonics.tolist() == list(range(3, SETUP.samples // 2, 2))
    # spectra: the rfft of the stored samples at those bins
    u = time_domain(read_mdf(meas.info["path"]))[0, 0, 0]
    assert np.allclose(meas.spectra[0], np.fft.rfft(u)[meas.bins], rtol=1e-12, atol=0)
    # with the transfer function divided out: the model units (1/s) and the clean signal
    known = _read(mpi_tmp_path, mdf, gain="none", transfer_function=True)
    clean = np.fft.rfft(info["clean"])[known.bins]
    err = np.linalg.norm(known.spectra[0] - clean) / np.linalg.norm(clean)
    assert 0 < err < 5 * SETUP.noise  # noise of 1 % RMS in time, spread over the bins


def test_reader_refuses_a_window_that_is_not_a_period(tiny, mpi_tmp_path):
    _, mdf, _ = tiny
    mdf.acquisition.drivefield.divider[:] = 30  # 83.3 kHz: 32 samples are not one period
    mdf.acquisition.drivefield.cycle = 30 / mdf.acquisition.drivefield.base_frequency
    with pytest.raises(DataError, match="numSamplingPoints"):
        _read(mpi_tmp_path, mdf)
    mdf.acquisition.drivefield.divider[:] = SETUP.divider
    mdf.acquisition.drivefield.cycle = SETUP.divider / SETUP.base_frequency


def test_rom_matches_the_fom_signal(tiny, mpi_tmp_path):
    family, mdf, info = tiny
    meas = _read(mpi_tmp_path, mdf, gain="none", transfer_function=True)
    rom = model_spectrum(meas, family, SETUP, [12.0, 8.0])
    fom = np.fft.rfft(info["clean"])[meas.bins]
    # POD + time-scheme error far below the noise on the same bins: white noise of 1 % RMS
    # in time has the norm σ_u sqrt(V/2) sqrt(2K) over K complex bins
    clean = info["clean"] - info["clean"].mean()
    noise = SETUP.noise * np.sqrt(np.mean(clean**2) * SETUP.samples / 2 * 2 * fom.size)
    assert np.linalg.norm(rom - fom) < 0.1 * noise


def test_fd_jacobian_taylor_and_step_study(tiny, mpi_tmp_path):
    from llgfem.verification import taylor_test

    family, mdf, _ = tiny
    meas = _read(mpi_tmp_path, mdf)
    theta = np.array([12.1, 7.8])
    jac = fd_jacobian(meas, family, SETUP, theta, fd_step=1e-4)
    direction = np.array([0.3, 1.0])
    res = taylor_test(lambda x: model_spectrum(meas, family, SETUP, x), lambda dx: jac @ dx,
                      theta, direction, np.linalg.norm, eps=(4e-2, 2e-2, 1e-2, 5e-3))
    assert np.all(res.slopes1 > 1.8), res.slopes1  # second-order remainder: J is right
    study = fd_step_study(meas, family, SETUP, theta, steps=(1e-1, 1e-2, 1e-3))
    # O(h²) convergence of the central differences: the change drops ~100x per decade
    assert study[2]["change"] < 0.05 * study[1]["change"]


def test_fit_recovers_parameters_within_intervals(tiny, mpi_tmp_path):
    family, mdf, _ = tiny
    meas = _read(mpi_tmp_path, mdf)
    out = fit_measurement(meas, family, SETUP, grid=1)
    truth = [TRUTH["d_c"] * 1e9, TRUTH["K"] * 1e-3]
    assert out["identified"][0]
    for j, ok in enumerate(out["identified"]):
        if ok:
            assert out["ci95_low"][j] <= truth[j] <= out["ci95_high"][j], out
    unc = out["uncertainty"]
    # the residual estimates the noise: white noise of 1 % RMS(u) in time puts σ_u sqrt(V/2)
    # on the real and imaginary part of every bin; residuals are in units of the data scale
    u = time_domain(read_mdf(meas.info["path"]))[0, 0, 0]
    expected = SETUP.noise * np.sqrt(np.mean(u**2) * SETUP.samples / 2)
    expected /= np.sqrt(np.mean(np.abs(meas.spectra) ** 2))
    assert 0.5 < unc.sigma / expected < 2.0
    json.dumps(unc.to_json())


def test_hydrodynamic_diameter_not_identified_in_the_neel_regime(tiny, mpi_tmp_path):
    family, mdf, _ = tiny
    meas = _read(mpi_tmp_path, mdf)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fit_measurement(meas, family, SETUP, names=("d_c", "K", "d_h"), grid=1,
                              d_h_start=12.0, max_iter=1)
        out["uncertainty"].warn(MPI.COMM_WORLD)
    assert out["identified"][0]
    assert not out["identified"][2]
    assert any(issubclass(w.category, NotIdentifiedWarning) and "d_h" in str(w.message)
               for w in caught)


def test_identify_job_reads_data_table(tiny, mpi_tmp_path):
    """`brown_neel_identify` with [data]: estimates, intervals, summary.json and the plot."""
    from llgfem.brownneel.jobs import run_job
    from llgfem.config import ConfigError, parse_config

    family, mdf, _ = tiny
    comm = MPI.COMM_WORLD
    path = write_mdf(mpi_tmp_path / "bn.mdf", mdf, comm=comm)
    basis = mpi_tmp_path / "basis.npz"
    if comm.rank == 0:
        np.savez(basis, modes=family.u)
    comm.Barrier()
    table = {"n_m": 6, "n_n": 4, "rank": 20, "basis": str(basis), "box_d_c_nm": [11.5, 12.5],
             "box_K_kJ": [7.0, 9.0], "identify_grid": 1, "substeps": 8}
    cfg = parse_config({"job": {"kind": "brown_neel_identify", "name": "cal"},
                        "output": {"dir": str(mpi_tmp_path)}, "data": {"path": str(path)},
                        "brown_neel": table})
    out = run_job(cfg)
    assert out["names"] == ["d_c", "K"]
    assert out["ci95_low"][0] <= 12.0 <= out["ci95_high"][0]
    comm.Barrier()
    saved = json.loads((mpi_tmp_path / "cal" / "summary.json").read_text())
    assert saved["uncertainty"]["parameters"][0]["name"] == "d_c"
    assert saved["truth_in_file"]["d_c"] == pytest.approx(12e-9)
    assert (mpi_tmp_path / "cal" / "plots" / "calibration.png").exists()
    bad = {**table, "n_m": 7}  # a basis of another truncation is refused, naming the key
    cfg = parse_config({"job": {"kind": "brown_neel_identify", "name": "cal"},
                        "output": {"dir": str(mpi_tmp_path)}, "data": {"path": str(path)},
                        "brown_neel": bad})
    with pytest.raises(ConfigError, match="brown_neel.basis"):
        run_job(cfg)


def test_shipped_demo_measurement_reads():
    """demos/data/bn_measurement.mdf: drive, sampling and tracer from the file; its spectra
    are the cached clean FOM signal times the stored gain plus 1 % noise."""
    from pathlib import Path

    from llgfem.brownneel.calibrate_data import DEMO_CLEAN, DEMO_MDF

    folder = Path(__file__).resolve().parents[3] / "demos" / "data"
    meas = read_measurement(DataConfig(path=str(folder / DEMO_MDF), gain="none",
                                       transfer_function=True), comm=MPI.COMM_WORLD)
    setup = CalibrationSetup()
    assert meas.drive.frequency == pytest.approx(setup.frequency)
    assert meas.drive.amplitude == pytest.approx(setup.amplitude)
    assert (meas.bins // meas.periods).tolist() == list(range(3, setup.samples // 2, 2))
    assert meas.truth["d_c"] == pytest.approx(20e-9)
    with np.load(folder / DEMO_CLEAN) as data:
        clean = data["clean"]
    fom = meas.model_spectrum(clean)
    centred = clean - clean.mean()
    noise = setup.noise * np.sqrt(np.mean(centred**2) * setup.samples / 2 * 2 * fom.size)
    ratio = np.linalg.norm(meas.spectra[0] - fom) / noise
    assert 0.5 < ratio < 1.5  # exactly the simulated noise, nothing else
