"""MDF files from real scanners: any sine drive read into a field, correction flags honoured.

Every flag test writes two small files with the package's MDF writer -- one that needs the
correction and one that carries it already (flag set) -- and checks that ``load_measurement``
gives the same spectra for both (and that ignoring the flag would not).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from llgfem.builders import DataConfig
from llgfem.calibration.data import (
    load_measurement,
    scanner_field_spec,
    scanner_from_mdf,
    scanner_reference,
)
from llgfem.calibration.simulate import scanner_measurement_mdf
from llgfem.errors import DataError
from llgfem.io.mdf import read_mdf, write_mdf

FIXTURE = Path("/work/shared/fixtures/mdf/robot_calibration_9pos.mdf")
SCANNER = {"base_frequency": 1.2e6, "dividers": [2, 3], "strengths": [8e-6, 6e-6],
           "phases": [0.0, 0.3],
           "gradient_matrix": [[-2e-4, 5e-5, 0.0], [5e-5, -2e-4, 0.0], [0.0, 0.0, 4e-4]],
           "offset_field": [0.0, 2e-6, 1e-6]}
V = 30


def _signals(frames: int, seed: int = 0) -> np.ndarray:
    """``(frames, 2, V)`` band-limited test signals, different per frame."""
    rng = np.random.default_rng(seed)
    t = np.arange(V) / V
    base = np.stack([np.sin(2 * np.pi * 2 * t) + 0.3 * np.cos(2 * np.pi * 5 * t),
                     0.5 * np.cos(2 * np.pi * 3 * t + 0.2)])
    return np.stack([(1 + 0.1 * i) * base + 0.05 * rng.standard_normal((2, V))
                     for i in range(frames)])


def _write(tmp, name, data, comm, *, background=0, **flags) -> Path:
    """A 2-channel scanner MDF holding ``data (N, C, V)`` (time) or ``(N, C, K)`` spectra."""
    n = data.shape[0]
    mdf = scanner_measurement_mdf(np.zeros((2, V)), SCANNER, frames=n - background,
                                  background_frames=background)
    meas = mdf.measurement
    meas.data = data[:, None]
    for key, value in flags.items():
        setattr(meas, key, value)
    return write_mdf(tmp / name, mdf, comm=comm)


def _load(path, comm, **keys):
    return load_measurement(DataConfig(path=str(path), stop_drive=False, **keys), "", comm)


def test_scanner_table_read_from_written_lissajous_file(comm, mpi_tmp_path):
    path = _write(mpi_tmp_path, "l.mdf", _signals(2), comm)
    m = _load(path, comm)
    assert m.field is None  # not a single-channel FFP drive
    sc = m.scanner
    assert sc["dividers"] == [2, 3]
    assert sc["strengths"] == pytest.approx(SCANNER["strengths"])
    assert sc["phases"] == pytest.approx(SCANNER["phases"])
    assert np.allclose(sc["gradient_matrix"], SCANNER["gradient_matrix"])
    assert sc["offset_field"] == pytest.approx(SCANNER["offset_field"])
    assert sc["cycle_s"] == pytest.approx(6 / 1.2e6)
    assert m.window == pytest.approx(sc["cycle_s"])


def _field_at_nodes(table: dict, t_si: float, comm) -> tuple[np.ndarray, np.ndarray]:
    """The UFL field of a scanner table interpolated at the P1 nodes of a small 3-D mesh."""
    import dolfinx.fem as fem
    import dolfinx.mesh as dm

    mesh = dm.create_box(comm, [[-0.01, -0.01, -0.01], [0.01, 0.02, 0.01]], [2, 2, 2])
    t = fem.Constant(mesh, float(t_si))
    import ufl

    expr = scanner_field_spec(table).expression(ufl.SpatialCoordinate(mesh), t)
    V = fem.functionspace(mesh, ("Lagrange", 1, (3,)))
    f = fem.Function(V)
    f.interpolate(fem.Expression(expr, V.element.interpolation_points))
    return V.tabulate_dof_coordinates(), f.x.array.reshape(-1, 3)


@pytest.mark.parametrize("t_si", [0.0, 1.3e-6, 4.1e-6])
def test_lissajous_field_equals_the_file_numbers(comm, mpi_tmp_path, t_si):
    """B(x, t) = G x + sum_d A_d e_d sin(2 pi f_B t / D_d + phi_d) + B_off, evaluated from the
    numbers of the file (full gradient, two channels with phases)."""
    path = _write(mpi_tmp_path, "l.mdf", _signals(1), comm)
    table, _ = scanner_from_mdf(read_mdf(path, comm=comm))
    x, b = _field_at_nodes(table, t_si, comm)
    G = np.array(SCANNER["gradient_matrix"])
    f = np.array([1.2e6 / 2, 1.2e6 / 3])
    drive = (np.array([8e-6, 0, 0]) * math.sin(2 * math.pi * f[0] * t_si)
             + np.array([0, 6e-6, 0]) * math.sin(2 * math.pi * f[1] * t_si + 0.3))
    want = x @ G.T + drive + np.array(SCANNER["offset_field"])
    assert np.allclose(b, want, rtol=0, atol=1e-15)
    # the field unit: sum of strengths + |offset| + ||G|| * extent
    ref = scanner_reference(table, 0.03)
    assert ref == pytest.approx(14e-6 + math.hypot(2e-6, 1e-6) + np.linalg.norm(G, 2) * 0.03)


@pytest.mark.skipif(not FIXTURE.is_file(), reason="shared MDF fixture not present")
@pytest.mark.parametrize("t_si", [0.0, 7.7e-6])
def test_real_fixture_drive_read_into_a_field(comm, t_si):
    """The real robot file (MPIMeasurements.jl): 5 mT sine at 125 MHz / 4864, no gradient,
    152 samples at 2 x 1.953125 MHz = one cycle of 38.912 us."""
    import h5py

    mdf = read_mdf(FIXTURE, comm=comm)
    table, why = scanner_from_mdf(mdf)
    assert why == ""
    with h5py.File(FIXTURE, "r") as f:  # the raw numbers of the file, not our reader
        base = float(f["acquisition/drivefield/baseFrequency"][()])
        div = int(np.ravel(f["acquisition/drivefield/divider"][()])[0])
        amp = float(np.ravel(f["acquisition/drivefield/strength"][()])[0])
        bw = float(f["acquisition/receiver/bandwidth"][()])
        nsp = int(f["acquisition/receiver/numSamplingPoints"][()])
    assert table["base_frequency"] == base
    assert table["dividers"] == [div]
    assert table["strengths"] == [pytest.approx(amp)]
    assert table["cycle_s"] == pytest.approx(div / base)
    assert table["cycle_s"] == pytest.approx(nsp / (2 * bw))
    x, b = _field_at_nodes(table, t_si, comm)
    want = np.zeros_like(b)
    want[:, 0] = amp * math.sin(2 * math.pi * base / div * t_si)
    assert np.allclose(b, want, rtol=0, atol=1e-15)


def test_background_corrected_data_not_subtracted_again(comm, mpi_tmp_path):
    u = _signals(4)
    u[3] = 0.4 * u[0] + 0.1  # the background frame
    raw = _write(mpi_tmp_path, "raw.mdf", u, comm, background=1)
    corrected = u.copy()
    corrected[:3] -= u[3]
    done = _write(mpi_tmp_path, "done.mdf", corrected, comm, background=1,
                  is_background_corrected=True)
    a = _load(raw, comm)
    b = _load(done, comm)
    assert np.allclose(a.data, b.data, atol=1e-12)
    assert b.info["flags"]["is_background_corrected"]
    again = _write(mpi_tmp_path, "again.mdf", corrected, comm, background=1)  # flag not set
    assert not np.allclose(_load(again, comm).data, a.data, atol=1e-3)


def _tf() -> np.ndarray:
    k = np.arange(V // 2 + 1)
    tf = np.stack([1 + 0.5j * k / k[-1], 2.0 - 0.3j * np.sin(k)]).astype(complex)
    tf[:, 0] = tf[:, 0].real
    tf[:, -1] = tf[:, -1].real  # real at 0 Hz and Nyquist (a real receive chain)
    return tf


def _with_tf(path, comm):
    mdf = read_mdf(path, comm=comm)
    mdf.acquisition.receiver.transfer_function = _tf()
    return write_mdf(path, mdf, comm=comm)


def test_transfer_function_corrected_data_not_divided_again(comm, mpi_tmp_path):
    u = _signals(3)
    measured = np.fft.irfft(np.fft.rfft(u, axis=-1) * _tf()[None], n=V, axis=-1)
    raw = _with_tf(_write(mpi_tmp_path, "raw.mdf", measured, comm), comm)
    done = _with_tf(_write(mpi_tmp_path, "done.mdf", u, comm,
                           is_transfer_function_corrected=True), comm)
    a = _load(raw, comm, transfer_function=True)
    b = _load(done, comm, transfer_function=True)
    assert np.array_equal(a.bins, b.bins)
    assert np.allclose(a.data, b.data, atol=1e-10)
    assert np.allclose(b.data, np.fft.rfft(u, axis=-1).mean(axis=0)[:, b.bins], atol=1e-10)
    assert not np.allclose(_load(raw, comm).data, a.data, atol=1e-3)  # the TF matters


def test_frequency_selected_spectra_use_the_stored_selection(comm, mpi_tmp_path):
    u = _signals(3)
    spec = np.fft.rfft(u, axis=-1)
    sel = np.array([0, 1, 2, 3, 5, 6, 9, 12])
    raw = _write(mpi_tmp_path, "raw.mdf", u, comm)
    fourier = _write(mpi_tmp_path, "ft.mdf", spec[..., sel], comm,
                     is_fourier_transformed=True, is_frequency_selection=True,
                     frequency_selection=sel)
    a = _load(raw, comm)
    b = _load(fourier, comm)
    assert b.bins.tolist() == [1, 2, 3, 5, 6, 9, 12]  # 0 Hz never used
    pick = np.searchsorted(a.bins, b.bins)
    assert np.allclose(b.data, a.data[:, pick], atol=1e-10)
    assert np.allclose(b.snr, a.snr[:, pick], rtol=1e-8)
    assert b.info["flags"]["is_frequency_selection"]


def test_frame_permutation_maps_data_frames(comm, mpi_tmp_path):
    u = _signals(4, seed=3)
    perm = np.array([2, 0, 3, 1])  # stored frame i was acquired as frame perm[i]
    stored = np.empty_like(u)
    stored[np.arange(4)] = u[perm]
    raw = _write(mpi_tmp_path, "raw.mdf", u, comm)
    permuted = _write(mpi_tmp_path, "perm.mdf", stored, comm, is_frame_permutation=True,
                      frame_permutation=perm)
    a = _load(raw, comm, frames=(0, 2))
    b = _load(permuted, comm, frames=(0, 2))
    assert np.allclose(a.data, b.data, atol=1e-12)
    assert np.allclose(a.snr, b.snr, rtol=1e-10)
    assert not np.allclose(_load(permuted, comm, frames=(0,)).data,
                           _load(permuted, comm, frames=(1,)).data)
    assert np.allclose(_load(permuted, comm, frames=(1,)).data,
                       _load(raw, comm, frames=(1,)).data, atol=1e-12)


def test_leakage_corrected_and_sparsity_transformed_refused(comm, mpi_tmp_path):
    u = _signals(2)
    leak = _write(mpi_tmp_path, "leak.mdf", u, comm, is_spectral_leakage_corrected=True)
    with pytest.raises(DataError, match="isSpectralLeakageCorrected"):
        _load(leak, comm)
    sparse = _write(mpi_tmp_path, "sparse.mdf", u.astype(complex)[..., :4], comm,
                    is_sparsity_transformed=True, is_fourier_transformed=True,
                    sparsity_transformation="DCT-II",
                    subsampling_indices=np.zeros((1, 2, 4, 2), dtype=np.int64))
    with pytest.raises(DataError, match="isSparsityTransformed"):
        _load(sparse, comm)


def test_drive_cycle_must_match_the_receiver_period(comm, mpi_tmp_path):
    path = _write(mpi_tmp_path, "l.mdf", _signals(1), comm)
    mdf = read_mdf(path, comm=comm)
    mdf.acquisition.receiver.bandwidth *= 1.01
    table, why = scanner_from_mdf(mdf)
    assert table is None
    assert "numSamplingPoints/(2 bandwidth)" in why
    mdf = read_mdf(path, comm=comm)
    mdf.acquisition.drivefield.waveform[:] = "triangle"
    assert "waveform" in scanner_from_mdf(mdf)[1]
