"""System-matrix calibration (llgfem.calibration.system_matrix_fit): detection, reading,
the finite-difference Jacobian (step study = Taylor test), a fit with intervals, bad files.

The synthetic files here are made by the macrospin model itself on a 4x finer time grid
(tiny sizes so that every test takes seconds); the no-inverse-crime data (another scheme)
are the demo's (demos/data/sm_scan.mdf).
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from mpi4py import MPI

from llgfem.builders import DataConfig
from llgfem.calibration.macrospin import MacrospinModel
from llgfem.calibration.system_matrix_fit import (
    SystemMatrixModel,
    fit_system_matrix,
    initial_gains,
    is_system_matrix_file,
    read_system_matrix,
    scanner_from_mdf,
    system_matrix_with_background,
)
from llgfem.errors import DataError
from llgfem.io.mdf import Receiver, drive_field, read_mdf, write_mdf
from llgfem.scanner.fields import ScannerConfig, ScannerFields
from llgfem.verification import convergence_rate, taylor_test

SCANNER = ScannerConfig(base_frequency=2.5e6, dividers=(25,), strengths=(0.012,),
                        gradient=(-1.0, -1.0, 2.0), num_sampling_points=40)
POSITIONS = np.array([[-0.003, 0.0005, 0.0], [-0.001, -0.0005, 0.0], [0.001, 0.0005, 0.0],
                      [0.003, -0.0005, 0.0]])
A_TRUE = np.array([0.1, -1.0])
GAMMA_REF = 1.75e11


def clean(a=A_TRUE, substeps=32, positions=POSITIONS) -> np.ndarray:
    """``(P, 3, V/2+1)`` spectra of the model (channels x, y, z, unit gain)."""
    sc = ScannerFields(SCANNER)
    rates = MacrospinModel(sc, positions, GAMMA_REF, substeps).rates(a)[0]
    return np.fft.rfft(-np.moveaxis(rates, 2, 1), axis=-1)


def write_sm(path, S, *, noise=0.0, background=3, seed=0, feed=0.0, comm=MPI.COMM_WORLD):
    """A system-matrix MDF: foreground frames S + noise + feed-through, then background."""
    sc = ScannerFields(SCANNER)
    v = sc.num_samples
    rng = np.random.default_rng(seed)
    signal = np.fft.irfft(S, n=v, axis=-1)
    sigma = noise * np.sqrt(np.mean(signal[:, 0] ** 2))
    frames = np.concatenate([signal, np.zeros((background,) + signal.shape[1:])])
    frames += feed * np.sin(2 * np.pi * np.arange(v) / v) + sigma * rng.standard_normal(
        frames.shape)
    mask = np.arange(len(frames)) >= len(S)
    mdf = system_matrix_with_background(
        np.fft.rfft(frames, axis=-1), mask,
        drivefield=drive_field(2.5e6, [25], [0.012], [0.0], "sine"),
        receiver=Receiver(num_channels=3, num_sampling_points=v, bandwidth=v / sc.cycle / 2),
        size=[len(S), 1, 1], field_of_view=[0.01, 0.0, 0.0], positions=POSITIONS[: len(S)],
        gradient=sc.gradient, experiment={"_true_a1": 0.1, "_true_a2": -1.0})
    return write_mdf(path, mdf, comm=comm)


@pytest.fixture
def sm_file(mpi_tmp_path, comm):
    return write_sm(mpi_tmp_path / "sm.mdf", clean(), feed=5.0e6, comm=comm)


def test_detection(sm_file, mpi_tmp_path, comm):
    assert is_system_matrix_file(sm_file, comm)
    mdf = read_mdf(sm_file, comm=comm)
    mdf.calibration = None
    other = write_mdf(mpi_tmp_path / "measurement.mdf", mdf, comm=comm)
    assert not is_system_matrix_file(other, comm)
    text = mpi_tmp_path / "not_hdf5.mdf"
    if comm.rank == 0:
        text.write_text("not an HDF5 file")
    comm.Barrier()
    assert not is_system_matrix_file(text, comm)
    assert not is_system_matrix_file(mpi_tmp_path / "missing.mdf", comm)


def test_read_positions_background_and_selection(sm_file, comm):
    dcfg = DataConfig(path=str(sm_file), f_max=1.6e6)
    m = read_system_matrix(dcfg, sm_file, comm)
    np.testing.assert_allclose(m.positions, POSITIONS)
    assert m.info["background_frames"] == 3
    assert m.info["bins_drive_stopped"] == 1  # the 100 kHz bin
    np.testing.assert_array_equal(m.bins, np.arange(2, 17))  # 200 kHz .. 1.6 MHz
    # the feed-through is in every frame: subtracting the background mean removes it
    S = clean()[:, :, m.bins]
    np.testing.assert_allclose(m.data, S, atol=1e-9 * np.abs(S).max())
    assert m.truth == {"a1": 0.1, "a2": -1.0}
    sc = scanner_from_mdf(read_mdf(sm_file, comm=comm))
    assert sc.dividers == (25,)
    assert sc.gradient == (-1.0, -1.0, 2.0)
    assert sc.num_sampling_points == 40


def test_snr_threshold_uses_background_noise(mpi_tmp_path, comm):
    path = write_sm(mpi_tmp_path / "noisy.mdf", clean(), noise=0.02, background=4, comm=comm)
    dcfg = DataConfig(path=str(path), snr_min=5.0)
    m = read_system_matrix(dcfg, path, comm)
    assert m.noise.shape == (3,)
    assert m.info["pairs_low_snr"] > 0  # the weak z channel and high harmonics
    assert np.all(m.snr[m.mask] >= 5.0)
    assert not np.any(m.snr[~m.mask] >= 5.0)
    assert np.all(m.mask.any(axis=0))  # every kept bin is fitted in some channel


def model_for(bins, n_a=2, substeps=8, comm=MPI.COMM_WORLD, easy_axis=None, per_radian=40.0):
    return SystemMatrixModel(SCANNER, POSITIONS, bins, np.eye(3), n_a, GAMMA_REF, substeps,
                             easy_axis=easy_axis, comm=comm, per_radian=per_radian)


@pytest.mark.parametrize("n_a", [2, 3])
def test_fd_jacobian_step_study(n_a, comm):
    """Central differences of the (fixed-step, hence smooth) model converge at second order;
    the Taylor remainder with the FD Jacobian at FD_STEP is second order too."""
    model = model_for(np.arange(2, 12), n_a, substeps=4, comm=comm,
                      easy_axis=(1.0, 1.0, 0.0) if n_a == 3 else None)
    # a small k (anisotropy field 0.24 mT < |B| at the positions): no switching, a smooth
    # response (a field-driven switch near its threshold makes the response very steep)
    a = np.array([0.1, -1.0, 0.02][:n_a])
    steps = np.array([0.08, 0.04, 0.02, 0.01])
    cols = [model.fd_columns(a, h * model.scales(a))[1] for h in steps]
    diffs = [np.linalg.norm(cols[i] - cols[i + 1]) for i in range(len(steps) - 1)]
    rates = convergence_rate(steps[:-1], diffs)
    assert np.all(np.abs(rates - 2.0) < 0.2), rates
    x = np.concatenate([a, [1.0, 0.5, 0.8, -0.2, 1.2, 0.1]])
    jac = model.jacobian(x)
    direction = np.concatenate([np.array([0.01, -0.05, 0.002][:n_a]), 0.01 * np.ones(6)])
    res = taylor_test(model, lambda dx: jac @ dx, x, direction,
                      norm=lambda v: float(np.linalg.norm(v)), eps=(0.8, 0.4, 0.2, 0.1))
    assert np.all(np.abs(res.slopes1 - 2.0) < 0.2), res.slopes1


def test_fit_recovers_parameters_within_intervals(mpi_tmp_path, comm):
    """Data on a finer time grid (>= 32 steps per sample; the fit: >= 1, both 40 per radian)
    with 1 % noise: (a1, a2) inside their 95 % intervals."""
    path = write_sm(mpi_tmp_path / "fit.mdf", clean(substeps=32), noise=0.01, background=4,
                    seed=3, comm=comm)
    m = read_system_matrix(DataConfig(path=str(path)), path, comm)
    model = model_for(m.bins, substeps=1, comm=comm)
    a0 = np.array([0.15, -0.8])
    x0 = np.concatenate([a0, initial_gains(model.base(a0), np.transpose(m.data, (1, 0, 2)),
                                           model.select)])
    names = ("a1", "a2", *[f"g{i}" for i in range(6)])
    summary, _, unc = fit_system_matrix(m, model, x0, names, max_iter=20)
    assert summary["weights_from"] == "background"
    for j, true in enumerate(A_TRUE):
        assert unc.ci95_low[j] <= true <= unc.ci95_high[j], unc.table()
        assert unc.identified[j]
    assert unc.stderr[1] < 0.2  # a2 is determined to a fraction of its size


def _broken_system_matrix(path, comm):
    """An MDF file with a calibration group but no usable content (rank 0 writes)."""
    if comm.rank == 0:
        with h5py.File(path, "w") as f:
            f["version"] = "2.1.0"
            f.create_group("calibration")
            f["measurement/data"] = np.zeros((1, 1, 1, 4))
    comm.Barrier()
    return path


def test_bad_files_raise_data_error(mpi_tmp_path, comm):
    dcfg = DataConfig(path="x")
    with pytest.raises(DataError, match="does not exist"):
        read_system_matrix(dcfg, mpi_tmp_path / "missing.mdf", comm)
    broken = _broken_system_matrix(mpi_tmp_path / "broken.mdf", comm)
    assert is_system_matrix_file(broken, comm)
    with pytest.raises(DataError, match="data.path: .*broken.mdf"):  # naming the entry
        read_system_matrix(dcfg, broken, comm)


def test_calibrate_job_dispatch_and_exit_code(sm_file, mpi_tmp_path, comm):
    """`llgfem run` on a system-matrix [data] path dispatches here; a bad file exits 2."""
    from llgfem.cli import main

    broken = _broken_system_matrix(mpi_tmp_path / "broken2.mdf", comm)
    if comm.rank == 0:
        (mpi_tmp_path / "bad.toml").write_text(
            f'[job]\nkind = "calibrate"\nname = "bad"\n[data]\npath = "{broken}"\n'
            f'[calibrate]\nmethod = "gauss_newton"\na0 = [0.15, -0.8]\n'
            f'[output]\ndir = "{mpi_tmp_path}"\nplots = false\nfields = false\n')
    comm.Barrier()
    assert main(["run", str(mpi_tmp_path / "bad.toml")]) == 2


def test_unsupported_parameters_refused(sm_file, mpi_tmp_path, comm):
    """M_S (an amplitude, absorbed by the complex gains) is refused by name."""
    from llgfem.calibration.system_matrix_fit import setup_system_matrix
    from llgfem.config import ConfigError, parse_config
    from llgfem.jobs.calibrate import CalibrateConfig

    cfg = parse_config({"job": {"kind": "calibrate", "name": "p"},
                        "data": {"path": str(sm_file)},
                        "output": {"dir": str(mpi_tmp_path), "plots": False}})
    cal = CalibrateConfig(method="gauss_newton", a0=(0.1, -1.0, 3e5),
                          parameters=("a1", "a2", "M_S"))
    with pytest.raises(ConfigError, match="calibrate.parameters"):
        setup_system_matrix(cfg, cal, comm)

