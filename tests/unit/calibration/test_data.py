"""The data path of calibrate without FEM: reading (real fixture), selection, model algebra."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

from llgfem.builders import DataConfig
from llgfem.calibration.data import field_from_mdf, load_measurement, select_bins
from llgfem.calibration.model import DataModel, dft_rows, initial_gains, interpolation_rows
from llgfem.calibration.simulate import measurement_mdf, sample_band_limited
from llgfem.errors import DataError

FIXTURE = Path("/work/shared/fixtures/mdf/robot_calibration_9pos.mdf")
FIELD = {"kind": "ffp", "amplitude": 2e-5, "frequency": 1e5, "phase": 0.0,
         "direction": [1.0, 0.0, 0.0], "gradient": 4e-3, "offset": [0.0, 2e-6, 0.0]}


@pytest.mark.skipif(not FIXTURE.is_file(), reason="shared MDF fixture not present")
def test_real_fixture_reads_and_selects(comm):
    dcfg = DataConfig(path=str(FIXTURE), f_min=50e3, f_max=2e6, band_stop=1.0)
    m = load_measurement(dcfg, "", comm)
    assert m.info["format"] == "mdf"
    assert m.channels == 1
    assert m.info["frames_used"] == 9
    assert m.n_window == 152
    f1 = 125e6 / 4864
    assert m.drive_frequencies[0] == pytest.approx(f1)
    assert m.freqs.min() >= 50e3
    assert m.freqs.max() <= 2e6
    assert np.allclose(m.freqs / f1, np.round(m.freqs / f1))  # harmonics of the period
    assert not np.any(np.isclose(m.freqs, f1))  # the drive bin is band-stopped
    assert m.info["bins_drive_stopped"] == 0  # f1 < f_min here; nothing else stopped
    assert m.field["frequency"] == pytest.approx(f1)
    assert m.field["amplitude"] == pytest.approx(5e-3, rel=1e-6)
    assert m.field["gradient"] == 0.0
    assert np.all(np.isfinite(m.snr))


@pytest.mark.skipif(not FIXTURE.is_file(), reason="shared MDF fixture not present")
def test_fixture_drive_stop_and_snr_rule(comm):
    m = load_measurement(DataConfig(path=str(FIXTURE)), "", comm)
    assert m.info["bins_drive_stopped"] == 1
    strict = load_measurement(DataConfig(path=str(FIXTURE), snr_min=5.0), "", comm)
    assert strict.info["bins_kept"] + strict.info["bins_low_snr"] == m.info["bins_kept"]
    assert np.all(np.min(strict.snr, axis=0) >= 5.0)


def test_missing_and_non_hdf5_files_are_data_errors(comm, mpi_tmp_path):
    with pytest.raises(DataError, match="data.path"):
        load_measurement(DataConfig(path="nope.mdf"), str(mpi_tmp_path / "c.toml"), comm)
    bad = mpi_tmp_path / "bad.mdf"
    if comm.rank == 0:
        bad.write_text("not hdf5")
    comm.Barrier()
    with pytest.raises(DataError, match="not an HDF5 file"):
        load_measurement(DataConfig(path=str(bad)), "", comm)


def test_select_bins_rules():
    freqs = np.arange(11) * 10.0
    rng = np.random.default_rng(0)
    spec = np.ones((4, 2, 11)) + 0.01 * rng.standard_normal((4, 2, 11))
    spec[:, :, 7] = 0.01 * rng.standard_normal((4, 2))  # noise only at 70 Hz
    keep, snr, counts = select_bins(freqs, spec, f_min=20.0, f_max=90.0, snr_min=3.0,
                                    drive=np.array([50.0]), stop_drive=True, band_stop=10.0)
    assert np.flatnonzero(keep).tolist() == [2, 3, 8, 9]
    assert counts["bins_drive_stopped"] == 3  # 40, 50, 60 Hz
    assert counts["bins_low_snr"] == 1
    with pytest.raises(DataError, match="snr_min"):
        select_bins(freqs, spec[:1], f_min=0, f_max=0, snr_min=1.0, drive=np.array([50.0]),
                    stop_drive=False, band_stop=0)
    keep, _, _ = select_bins(freqs, spec[:1], f_min=0, f_max=0, snr_min=0, drive=[50.0],
                             stop_drive=False, band_stop=0)
    assert not keep[0]  # 0 Hz is never used
    assert keep[1:].all()


def test_dft_rows_equal_rfft_of_band_limited_samples():
    N, Nw, T = 200, 64, 1.0
    t_mid = (np.arange(N) + 0.5) * T / N
    t_file = np.arange(Nw) * T / Nw

    def sig(t):
        return np.cos(2 * np.pi * 3 * t / T) + 0.3 * np.sin(2 * np.pi * 7 * t / T + 0.4)

    bins = np.array([1, 3, 7, 12])
    model = sig(t_mid) @ dft_rows(bins, N, Nw).T
    assert np.allclose(model, np.fft.rfft(sig(t_file))[bins], atol=1e-10)
    assert np.allclose(sample_band_limited(sig(t_mid)[None], Nw)[0], sig(t_file), atol=1e-12)


def test_interpolation_rows_are_exact_for_linear_signals():
    t_mid = np.linspace(0.05, 0.95, 10)
    t_file = np.array([0.0, 0.1, 0.37, 0.95, 1.0])
    P = interpolation_rows(t_file, t_mid)
    inside = (t_file >= t_mid[0]) & (t_file <= t_mid[-1])
    assert np.allclose((P @ (2 * t_mid + 1))[inside], 2 * t_file[inside] + 1)
    assert np.allclose(P.sum(axis=1), 1.0)


class _LinearOp:
    """A fake reduced operator: signals linear in a (K=1, L=2, N=8)."""

    data_shape = (1, 2, 8)

    def __init__(self):
        rng = np.random.default_rng(3)
        self.B = rng.standard_normal((16, 2))
        self.c = rng.standard_normal(16)

    def __call__(self, a):
        return self.c + self.B @ a + 0.1 * a[0] * a[1] * self.c

    def derivative(self, a):
        op = self

        class D:
            def sensitivities(self):
                return op.B + 0.1 * np.outer(op.c, [a[1], a[0]])
        return D()


@pytest.mark.parametrize("gain", ["complex", "real", "none"])
def test_data_model_jacobian_matches_finite_differences(gain):
    rows = dft_rows(np.array([1, 2, 3]), 8, 8)
    model = DataModel(_LinearOp(), rows, gain)
    x = np.array([0.7, -1.2, *({"complex": [1.1, 0.2, 0.9, -0.3], "real": [1.1, 0.9],
                                "none": []}[gain])])
    J = model.jacobian(x)
    h = 1e-6
    fd = np.stack([(model(x + h * e) - model(x - h * e)) / (2 * h) for e in np.eye(x.size)],
                  axis=1)
    assert np.allclose(J, fd, atol=1e-7)
    base = model.base(x)
    g = initial_gains(base, model(x).reshape(base.shape), gain)
    assert np.allclose(g, x[2:])


def test_simulated_measurement_background_and_feedthrough(comm, mpi_tmp_path):
    """MDF written by the simulator: background subtraction removes the feed-through, the
    frame mean is the clean spectrum up to the noise, the FFP drive is read back."""
    from llgfem.io.mdf import write_mdf

    V = 64
    t = np.arange(V) / V
    u = np.stack([np.sin(2 * np.pi * 3 * t), np.cos(2 * np.pi * 5 * t)])
    mdf = measurement_mdf(u, FIELD, noise=0.01, seed=1, frames=6, background_frames=3,
                          feedthrough=2.0)
    path = write_mdf(mpi_tmp_path / "sim.mdf", mdf, comm=comm)
    m = load_measurement(DataConfig(path=str(path)), "", comm)
    assert m.info["background_frames"] == 3
    assert m.info["frames_used"] == 6
    for key, value in FIELD.items():
        assert np.allclose(m.field[key], value) if key != "kind" else m.field[key] == value
    assert m.window == pytest.approx(1e-5)
    clean = np.fft.rfft(u, axis=-1)[:, m.bins]
    noise_sd = 0.01 * np.sqrt(0.5) * np.sqrt(V / 2) * np.sqrt(1 / 6 + 1 / 3)
    assert np.max(np.abs(m.data - clean)) < 6 * noise_sd
    raw = load_measurement(DataConfig(path=str(path), background="drop", stop_drive=False),
                           "", comm)
    drive_bin = np.flatnonzero(raw.bins == 1)
    assert np.abs(raw.data[:, drive_bin]).max() > 10 * np.abs(m.data[:, m.bins == 2]).max()


def test_field_from_mdf_refuses_non_ffp_gradient():
    from llgfem.io.mdf import MDF, Acquisition, Receiver, drive_field

    acq = Acquisition(drivefield=drive_field(1e6, [10], [1e-3]),
                      receiver=Receiver(num_channels=1, num_sampling_points=10, bandwidth=5e5),
                      gradient=np.diag([1.0, 1.0, 1.0]))
    assert field_from_mdf(MDF(acquisition=acq)) is None
    assert MPI.COMM_WORLD.size >= 1


def test_data_model_amplitude_jacobian_matches_finite_differences():
    """x = (a1, a2, M_S): model M_S M(a); the M_S column is M(a), the a columns scale by M_S."""
    rows = dft_rows(np.array([1, 2, 3]), 8, 8)
    model = DataModel(_LinearOp(), rows, "none", amplitude=True)
    x = np.array([0.7, -1.2, 2.5])
    J = model.jacobian(x)
    h = 1e-6
    fd = np.stack([(model(x + h * e) - model(x - h * e)) / (2 * h) for e in np.eye(3)], axis=1)
    assert J.shape == (6, 3)
    assert np.allclose(J, fd, atol=1e-7)
    assert np.allclose(model(x), 2.5 * model.base(x).ravel())
