"""MDF v2 reader/writer: the real fixture, round trips, errors, transfer functions."""

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from mpi4py import MPI

from llgfem.config import ConfigError
from llgfem.io.mdf import (
    MDF,
    Acquisition,
    MDFError,
    Measurement,
    Receiver,
    calibration_positions,
    check_fixture_read,
    check_mdf_roundtrip,
    drive_field,
    frequencies,
    frequency_domain,
    interpolate_transfer_function,
    read_mdf,
    read_transfer_function,
    system_matrix,
    system_matrix_mdf,
    time_domain,
    write_mdf,
)

COMM = MPI.COMM_WORLD
FIXTURES = Path(__file__).resolve().parents[4] / "shared" / "fixtures" / "mdf"
ROBOT = FIXTURES / "robot_calibration_9pos.mdf"
TF_FILE = FIXTURES / "mps_transfer_function.h5"

needs_fixtures = pytest.mark.skipif(not (ROBOT.is_file() and TF_FILE.is_file()),
                                    reason="../shared/fixtures/mdf not available")


@pytest.fixture
def rank_dir(mpi_tmp_path):
    """A folder of this rank's own (files written by one process)."""
    path = mpi_tmp_path / f"rank{COMM.rank}"
    path.mkdir()
    return path


def raw(path, entry):
    with h5py.File(path, "r") as f:
        value = f[entry][()]
    return value.decode() if isinstance(value, bytes) else value


# --------------------------------------------------------------------------- the fixture


@needs_fixtures
def test_fixture_contents_match_readme_and_raw_hdf5():
    mdf = read_mdf(ROBOT)
    acq, df, rx = mdf.acquisition, mdf.acquisition.drivefield, mdf.acquisition.receiver
    meas, cal = mdf.measurement, mdf.calibration
    # README: (9, 1, 1, 152) float32 time domain, 1 drive channel, 5 mT at 125 MHz / 4864
    assert meas.data.shape == (9, 1, 1, 152)
    assert meas.data.dtype == np.float32
    assert np.array_equal(meas.data, raw(ROBOT, "measurement/data"))
    assert df.num_channels == 1
    assert df.divider.shape == (1, 1)
    assert df.strength.shape == (1, 1, 1)
    assert df.strength[0, 0, 0] == pytest.approx(5e-3)
    assert df.base_frequency == pytest.approx(125e6)
    assert df.divider[0, 0] == 4864
    assert df.cycle == raw(ROBOT, "acquisition/drivefield/cycle")
    assert df.waveform.tolist() == [["sine"]]
    assert rx.num_sampling_points == 152 == raw(ROBOT, "acquisition/receiver/numSamplingPoints")
    assert rx.num_channels == 1
    assert rx.unit == "V"
    assert np.array_equal(rx.data_conversion_factor,
                          raw(ROBOT, "acquisition/receiver/dataConversionFactor"))
    assert acq.num_frames == 9
    assert acq.num_averages == 1000
    assert acq.num_periods_per_frame == raw(ROBOT, "acquisition/numPeriods") == 1
    assert np.array_equal(acq.gradient, np.zeros((1, 1, 3, 3)))
    # flags all 0, no background frames
    for flag in ("is_background_corrected", "is_fourier_transformed",
                 "is_transfer_function_corrected", "is_frequency_selection",
                 "is_frame_permutation", "is_spectral_leakage_corrected",
                 "is_sparsity_transformed", "is_fast_frame_axis"):
        assert getattr(meas, flag) is False, flag
    assert not meas.is_background_frame.any()
    assert meas.is_background_frame.shape == (9,)
    # calibration: FOV 0.09 m in x, 9 positions along x around the centre
    assert cal.method == "robot"
    assert cal.order == "xyz"
    assert cal.field_of_view[0] == pytest.approx(0.09)
    assert np.array_equal(cal.size, raw(ROBOT, "calibration/size"))
    center = raw(ROBOT, "calibration/fieldOfViewCenter")
    pos = calibration_positions(cal, 9)
    assert pos.shape == (9, 3)
    assert np.allclose(pos.mean(axis=0), center)
    assert np.allclose(np.diff(pos[:, 0]), cal.field_of_view[0] / 9)
    assert np.allclose(pos[:, 1:], center[1:])
    # metadata dicts hold the raw values
    assert mdf.study["name"] == raw(ROBOT, "study/name")
    assert mdf.scanner["operator"] == raw(ROBOT, "scanner/operator")
    assert mdf.experiment["isSimulation"] is False
    assert mdf.uuid == raw(ROBOT, "uuid")
    assert mdf.version == raw(ROBOT, "version")


@needs_fixtures
def test_fixture_signals_consistent():
    mdf = read_mdf(ROBOT)
    a, b = raw(ROBOT, "acquisition/receiver/dataConversionFactor")[0]
    data = raw(ROBOT, "measurement/data").astype(np.float64)
    u = time_domain(mdf)
    assert np.allclose(u, a * data + b, rtol=1e-14, atol=0)
    f = frequencies(mdf)
    df = mdf.acquisition.drivefield
    assert f.shape == (77,)
    # the first harmonic of the rfft grid is the drive frequency baseFrequency / divider
    assert f[1] == pytest.approx(df.base_frequency / df.divider[0, 0], rel=1e-12)
    U = frequency_domain(mdf)
    assert np.allclose(U, np.fft.rfft(a * data + b, axis=-1), rtol=1e-12)
    S, pos = system_matrix(mdf)
    assert S.shape == (9, 1, 1, 77)
    assert pos.shape == (9, 3)


@needs_fixtures
def test_read_with_comm_is_replicated():
    mdf = read_mdf(ROBOT, comm=COMM)
    digests = COMM.allgather(mdf.measurement.data.tobytes())
    assert all(d == digests[0] for d in digests)


# --------------------------------------------------------------------------- round trips


def synthetic_measurement(fourier: bool, fast: bool, selection=None) -> MDF:
    """N = 6 frames (frames 0 and 5 background), J = 2, C = 2, V = 16 samples."""
    rng = np.random.default_rng(3)
    n, j, c, v = 6, 2, 2, 16
    td = rng.standard_normal((n, j, c, v))
    data = np.fft.rfft(td, axis=-1) if fourier else td.astype(np.float32)
    if fourier and selection is not None:
        data = data[..., selection]
    if fast:
        data = np.ascontiguousarray(np.moveaxis(data, 0, -1))
    df = drive_field(2.5e6, [102, 96], [12e-3, 12e-3], phase=[0.0, np.pi / 2])
    rx = Receiver(num_channels=c, num_sampling_points=v, bandwidth=1.25e6,
                  data_conversion_factor=[[2.0, 0.5], [0.25, -1.0]],
                  transfer_function=np.exp(1j * np.linspace(0, 1, c * (v // 2 + 1)))
                  .reshape(c, -1) * (1 + np.arange(v // 2 + 1)),
                  induction_factor=[1.5, 2.5])
    acq = Acquisition(drivefield=df, receiver=rx, num_frames=n, num_periods_per_frame=j,
                      num_averages=10, gradient=np.diag([-1.0, -1.0, 2.0]),
                      offset_field=np.zeros((j, 1, 3)))
    bg = np.zeros(n, dtype=bool)
    bg[[0, 5]] = True
    meas = Measurement(data=data, is_fourier_transformed=fourier, is_fast_frame_axis=fast,
                       is_frequency_selection=selection is not None,
                       frequency_selection=selection, is_background_frame=bg)
    return MDF(acquisition=acq, measurement=meas,
               scanner={"name": "test scanner", "topology": "FFP"},
               tracer={"batch": "b1", "concentration": 0.5, "name": "perimag",
                       "solute": "Fe", "vendor": "micromod", "volume": 1e-4},
               study={"name": "llgfem test", "number": 3})


def assert_same_mdf(a: MDF, b: MDF):
    da, db = a.acquisition.drivefield, b.acquisition.drivefield
    for name in ("divider", "strength", "phase", "waveform"):
        assert np.array_equal(getattr(da, name), getattr(db, name)), name
    assert (da.base_frequency, da.cycle, da.num_channels) == \
        (db.base_frequency, db.cycle, db.num_channels)
    ra, rb = a.acquisition.receiver, b.acquisition.receiver
    for name in ("data_conversion_factor", "transfer_function", "induction_factor"):
        assert np.array_equal(getattr(ra, name), getattr(rb, name)), name
    assert (ra.num_channels, ra.num_sampling_points, ra.bandwidth, ra.unit) == \
        (rb.num_channels, rb.num_sampling_points, rb.bandwidth, rb.unit)
    for name in ("num_averages", "num_frames", "num_periods_per_frame", "start_time"):
        assert getattr(a.acquisition, name) == getattr(b.acquisition, name), name
    assert np.array_equal(a.acquisition.gradient, b.acquisition.gradient)
    assert np.array_equal(a.acquisition.offset_field, b.acquisition.offset_field)
    ma, mb = a.measurement, b.measurement
    assert ma.data.dtype == mb.data.dtype
    assert np.array_equal(ma.data, mb.data)
    for name, value in vars(ma).items():
        other = getattr(mb, name)
        if isinstance(value, np.ndarray) or value is None:
            assert (value is None and other is None) or np.array_equal(value, other), name
        else:
            assert value == other, name
    for group in ("study", "experiment", "scanner", "tracer"):
        assert getattr(a, group) == getattr(b, group), group
    assert (a.uuid, a.time) == (b.uuid, b.time)


@pytest.mark.parametrize("fast", [False, True])
def test_round_trip_time_domain_with_background(rank_dir, fast):
    mdf = synthetic_measurement(fourier=False, fast=fast)
    back = read_mdf(write_mdf(rank_dir / "td.mdf", mdf))
    assert_same_mdf(mdf, back)
    td = np.moveaxis(mdf.measurement.data, -1, 0) if fast else mdf.measurement.data
    a = np.array([2.0, 0.25])[:, None]
    b = np.array([0.5, -1.0])[:, None]
    u = a * td.astype(np.float64) + b
    fg, bg = [1, 2, 3, 4], [0, 5]
    expected = u[fg] - u[bg].mean(axis=0)
    assert np.allclose(time_domain(back), expected, rtol=1e-13, atol=1e-13)
    assert np.allclose(time_domain(back, background="drop"), u[fg], rtol=1e-14)
    assert time_domain(back, background="keep").shape == (6, 2, 2, 16)
    assert np.allclose(time_domain(back, frames=[2, 5]), expected[[1]], atol=1e-13)
    U = frequency_domain(back)
    assert np.allclose(U, np.fft.rfft(expected, axis=-1), atol=1e-12)
    # transfer-function correction divides channel-wise
    tf = mdf.acquisition.receiver.transfer_function
    assert np.allclose(frequency_domain(back, correct_transfer_function=True), U / tf,
                       atol=1e-12)


def test_round_trip_frequency_domain_with_selection(rank_dir):
    sel = np.array([0, 1, 3, 4, 8])
    mdf = synthetic_measurement(fourier=True, fast=True, selection=sel)
    path = write_mdf(rank_dir / "fd.mdf", mdf)
    back = read_mdf(path)
    assert_same_mdf(mdf, back)
    # the file holds the specification's 1-based indices
    assert np.array_equal(raw(path, "measurement/frequencySelection"), sel + 1)
    assert np.allclose(frequencies(back), sel * 2 * 1.25e6 / 16)
    stored = np.moveaxis(mdf.measurement.data, -1, 0)
    a = np.array([2.0, 0.25])[:, None]
    b = np.array([0.5, -1.0])[:, None]
    dc = (sel == 0) * 16
    conv = a * stored + b * dc
    expected = conv[1:5] - conv[[0, 5]].mean(axis=0)
    assert np.allclose(frequency_domain(back), expected, atol=1e-12)
    # time domain = inverse rfft of the zero-padded selection, consistent with the spectrum
    u = time_domain(back, background="keep")
    full = np.zeros(stored.shape[:-1] + (9,), dtype=complex)
    full[..., sel] = stored
    assert np.allclose(u, a * np.fft.irfft(full, n=16, axis=-1) + b, atol=1e-12)
    assert np.allclose(np.fft.rfft(u, axis=-1)[..., sel], conv, atol=1e-12)


def test_system_matrix_round_trip_bit_equal(rank_dir):
    rng = np.random.default_rng(11)
    size, fov, center = (3, 2, 1), (0.03, 0.02, 0.001), (0.0, 0.001, 0.0)
    sel = np.array([1, 2, 5, 7])
    S = rng.standard_normal((6, 1, 2, 4)) + 1j * rng.standard_normal((6, 1, 2, 4))
    snr = rng.uniform(1, 100, (1, 2, 4))
    df = drive_field(2.5e6, [102, 96], [12e-3, 12e-3])
    rx = Receiver(num_channels=2, num_sampling_points=16, bandwidth=1.25e6)
    mdf = system_matrix_mdf(S, drivefield=df, receiver=rx, size=size, field_of_view=fov,
                            field_of_view_center=center, frequency_selection=sel, snr=snr,
                            gradient=(-1.0, -1.0, 2.0), scanner={"name": "sim"})
    path = write_mdf(rank_dir / "sm.mdf", mdf)
    back = read_mdf(path)
    S2, pos = system_matrix(back)
    assert np.array_equal(S2, S)  # bit-equal complex values
    assert np.array_equal(back.calibration.snr, snr)
    assert back.calibration.method == "simulation"
    assert back.experiment["isSimulation"]
    assert np.allclose(frequencies(back), sel * 2 * 1.25e6 / 16)
    # grid positions: x fastest, voxel centres inside the FOV
    assert pos.shape == (6, 3)
    assert np.allclose(pos[:3, 0], center[0] + np.array([-0.01, 0.0, 0.01]))
    assert np.allclose(pos[::3, 1], center[1] + np.array([-0.005, 0.005]))
    # complex stored as the compound {r, i} of float64, frame axis last
    with h5py.File(path, "r") as f:
        assert f["measurement/data"].id.get_type().get_class() == h5py.h5t.COMPOUND
        assert f["measurement/data"].shape == (1, 2, 4, 6)
        assert f["measurement/isFastFrameAxis"][()] == 1
        assert f["version"][()] == b"2.1.0"


def test_system_matrix_time_domain_storage(rank_dir):
    rng = np.random.default_rng(5)
    s_td = rng.standard_normal((4, 1, 16))  # (P, C, V) real: stored in time domain
    df = drive_field(2.5e6, [102], [12e-3])
    rx = Receiver(num_channels=1, num_sampling_points=16, bandwidth=1.25e6)
    mdf = system_matrix_mdf(s_td, drivefield=df, receiver=rx, size=(4, 1, 1),
                            field_of_view=(0.04, 0.01, 0.01), fast_frame_axis=False)
    back = read_mdf(write_mdf(rank_dir / "sm_td.mdf", mdf))
    assert not back.measurement.is_fourier_transformed
    assert np.array_equal(back.measurement.data, s_td[:, None])
    S, pos = system_matrix(back)
    assert np.allclose(S, np.fft.rfft(s_td[:, None], axis=-1), rtol=1e-14, atol=1e-14)
    assert np.allclose(time_domain(back), s_td[:, None], rtol=0, atol=0)
    with pytest.raises(MDFError, match="frequencySelection"):
        system_matrix_mdf(s_td, drivefield=df, receiver=rx, size=(4, 1, 1),
                          field_of_view=(0.04, 0.01, 0.01), frequency_selection=[1, 2])
    with pytest.raises(MDFError, match="calibration/size"):
        system_matrix_mdf(s_td, drivefield=df, receiver=rx, size=(3, 1, 1),
                          field_of_view=(0.04, 0.01, 0.01))


def test_permutation_waveforms_and_legacy_gradients(rank_dir):
    mdf = synthetic_measurement(fourier=False, fast=False)
    perm = np.array([5, 0, 3, 1, 2, 4])
    mdf.measurement.is_frame_permutation = True
    mdf.measurement.frame_permutation = perm
    mdf.acquisition.drivefield.waveform = np.array([["sine"], ["triangle"]])
    path = write_mdf(rank_dir / "perm.mdf", mdf)
    assert np.array_equal(raw(path, "measurement/framePermutation"), perm + 1)
    with h5py.File(path, "r") as f:
        assert f["acquisition/drivefield/waveform"].shape == (2, 1)
    back = read_mdf(path)
    assert np.array_equal(back.measurement.frame_permutation, perm)
    assert back.acquisition.drivefield.waveform.tolist() == [["sine"], ["triangle"]]
    # gradients stored as diagonals (J, 3), as one 3 x 3 matrix, or (J, Y, 3, 3)
    g = np.diag([-1.0, -1.0, 2.0])
    for stored in ([[-1.0, -1.0, 2.0]], g, g[None, None]):
        acq = Acquisition(drivefield=mdf.acquisition.drivefield,
                          receiver=mdf.acquisition.receiver, gradient=stored)
        assert np.array_equal(acq.gradient, g[None, None])
    mdf.measurement.frame_permutation = np.array([0, 0, 1, 2, 3, 4])
    with pytest.raises(MDFError, match="measurement/framePermutation"):
        write_mdf(rank_dir / "perm2.mdf", mdf)


@needs_fixtures
def test_written_file_uses_fixture_layout_and_types(rank_dir):
    path = write_mdf(rank_dir / "copy.mdf", read_mdf(ROBOT))
    renamed = {"acquisition/numPeriods": "acquisition/numPeriodsPerFrame",
               "measurement/isTransposed": "measurement/isFastFrameAxis"}
    with h5py.File(ROBOT, "r") as src, h5py.File(path, "r") as out:
        names = []
        src.visit(names.append)
        for name in names:
            a, b = src[name], out[renamed.get(name, name)]
            assert isinstance(b, type(a)), name
            if not isinstance(a, h5py.Dataset):
                continue
            if h5py.check_string_dtype(a.dtype) is not None:
                info = h5py.check_string_dtype(b.dtype)
                assert info is not None, name
                assert info.encoding == "utf-8", name
            else:
                assert a.dtype == b.dtype, name
        assert np.array_equal(src["measurement/data"][()], out["measurement/data"][()])


def test_compound_integer_and_native_complex_are_read(rank_dir):
    sel = np.array([1, 2])
    mdf = synthetic_measurement(fourier=True, fast=False, selection=sel)
    path = write_mdf(rank_dir / "c.mdf", mdf)
    ints = np.zeros(mdf.measurement.data.shape, dtype=[("r", "<i2"), ("i", "<i2")])
    ints["r"], ints["i"] = 3, -4
    tf = mdf.acquisition.receiver.transfer_function
    with h5py.File(path, "r+") as f:
        del f["measurement/data"], f["acquisition/receiver/transferFunction"]
        f["measurement/data"] = ints
        space = h5py.h5s.create_simple(tf.shape)
        dset = h5py.h5d.create(f.id, b"acquisition/receiver/transferFunction",
                               h5py.h5t.NATIVE_DOUBLE_COMPLEX, space)
        dset.write(h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(tf))
    back = read_mdf(path)
    assert np.array_equal(back.measurement.data, np.full(ints.shape, 3 - 4j))
    assert np.array_equal(back.acquisition.receiver.transfer_function, tf)


# --------------------------------------------------------------------------- errors


def test_not_hdf5_is_a_clear_error(rank_dir):
    path = rank_dir / "notes.mdf"
    path.write_text("this is not HDF5\n")
    with pytest.raises(MDFError, match="not an HDF5 file"):
        read_mdf(path)
    assert issubclass(MDFError, ConfigError)
    with pytest.raises(MDFError, match="not found"):
        read_mdf(rank_dir / "missing.mdf")


def test_hdf5_that_is_not_mdf(rank_dir):
    path = rank_dir / "plain.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(MDFError, match="not an MDF file"):
        read_mdf(path)


@pytest.mark.parametrize("entry", ["acquisition/drivefield/baseFrequency",
                                   "measurement/isBackgroundFrame", "study/uuid",
                                   "acquisition/receiver/numSamplingPoints"])
@needs_fixtures
def test_missing_required_entry_is_named(rank_dir, entry):
    path = rank_dir / "broken.mdf"
    shutil.copy(ROBOT, path)
    with h5py.File(path, "r+") as f:
        del f[entry]
    with pytest.raises(MDFError, match=entry):
        read_mdf(path)


@needs_fixtures
def test_nan_and_wrong_shape_are_named(rank_dir):
    path = rank_dir / "nan.mdf"
    shutil.copy(ROBOT, path)
    with h5py.File(path, "r+") as f:
        f["acquisition/drivefield/strength"][0, 0, 0] = np.nan
    with pytest.raises(MDFError, match="acquisition/drivefield/strength.*NaN"):
        read_mdf(path)
    shutil.copy(ROBOT, path)
    with h5py.File(path, "r+") as f:
        del f["acquisition/receiver/numSamplingPoints"]
        f["acquisition/receiver/numSamplingPoints"] = np.int64(150)
    with pytest.raises(MDFError, match="measurement/data.*samples V"):
        read_mdf(path)


def test_errors_identical_on_all_ranks(mpi_tmp_path):
    path = mpi_tmp_path / "plain.h5"
    if COMM.rank == 0:
        with h5py.File(path, "w") as f:
            f["version"] = np.bytes_(b"1.0.5")
    COMM.Barrier()
    message = None
    try:
        read_mdf(path, comm=COMM)
    except MDFError as exc:
        message = str(exc)
    messages = COMM.allgather(message)
    assert messages[0] is not None
    assert "only MDF v2" in messages[0]
    assert all(m == messages[0] for m in messages)


def test_write_refuses_inconsistent_mdf(rank_dir):
    mdf = synthetic_measurement(fourier=False, fast=False)
    mdf.acquisition.num_frames = 7
    with pytest.raises(MDFError, match="acquisition/numFrames"):
        write_mdf(rank_dir / "bad.mdf", mdf)
    assert not any(rank_dir.iterdir())  # nothing left behind


# --------------------------------------------------------------------------- transfer functions


@needs_fixtures
def test_read_transfer_function_fixture():
    freqs, values, induction = read_transfer_function(TF_FILE)
    with h5py.File(TF_FILE, "r") as f:
        assert np.array_equal(freqs, f["frequencies"][()])
        assert np.array_equal(values, f["transferFunction"][()])
        assert np.array_equal(induction, f["inductionFactor"][()])
    assert freqs.shape == (1911,)
    assert values.shape == (2, 1911)
    assert induction.shape == (2,)
    assert values.dtype == np.complex128
    assert freqs[0] == pytest.approx(26.0e3, abs=0.05e3)  # README: 26.0 kHz ... 9.97 MHz
    assert freqs[-1] == pytest.approx(9.97e6, abs=0.005e6)


def test_transfer_function_file_errors(rank_dir):
    path = rank_dir / "tf.h5"
    with h5py.File(path, "w") as f:
        f["frequencies"] = np.array([1.0, 2.0, 3.0])
    with pytest.raises(MDFError, match="transferFunction"):
        read_transfer_function(path)
    with h5py.File(path, "a") as f:
        f["transferFunction"] = np.ones((2, 4), dtype=complex)
    with pytest.raises(MDFError, match="shape"):
        read_transfer_function(path)


@needs_fixtures
def test_interpolation_exact_at_nodes_bounded_between_zero_outside():
    freqs, values, _ = read_transfer_function(TF_FILE)
    at_nodes = interpolate_transfer_function(freqs, values, freqs)
    assert np.array_equal(at_nodes, values)
    mid = 0.5 * (freqs[:-1] + freqs[1:])
    between = interpolate_transfer_function(freqs, values, mid)
    amp = np.abs(values)
    lo = np.minimum(amp[:, :-1], amp[:, 1:])
    hi = np.maximum(amp[:, :-1], amp[:, 1:])
    tol = 1e-12 * hi
    assert np.all(np.abs(between) >= lo - tol)
    assert np.all(np.abs(between) <= hi + tol)
    phase = np.unwrap(np.angle(values), axis=-1)
    mid_phase = np.angle(between * np.exp(-1j * 0.5 * (phase[:, :-1] + phase[:, 1:])))
    assert np.allclose(mid_phase, 0.0, atol=1e-9)  # the midpoint of the unwrapped phases
    outside = interpolate_transfer_function(freqs, values, [freqs[0] / 2, freqs[-1] * 2])
    assert np.array_equal(outside, np.zeros((2, 2)))
    one = interpolate_transfer_function(freqs, values[0], 1e6)
    assert one.shape == ()
    assert one != 0


# --------------------------------------------------------------------------- bench self-checks


@needs_fixtures
def test_bench_checks_pass_and_can_fail(rank_dir):
    result = check_fixture_read(ROBOT)
    assert result["ok"], result["failures"]
    assert result["drive_frequency_hz"] == pytest.approx(125e6 / 4864)
    broken = rank_dir / "six_mT.mdf"
    shutil.copy(ROBOT, broken)
    with h5py.File(broken, "r+") as f:
        f["acquisition/drivefield/strength"][0, 0, 0] = 6e-3
    result = check_fixture_read(broken)
    assert not result["ok"]
    assert result["failures"] == ["strength 5 mT (in T)"]
    assert not check_fixture_read(rank_dir / "missing.mdf")["ok"]
    roundtrip = check_mdf_roundtrip(rank_dir)
    assert roundtrip["ok"], roundtrip["failures"]
    assert roundtrip["max_signal_error"] == 0.0
