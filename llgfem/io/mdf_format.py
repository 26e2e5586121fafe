"""Reading and writing MDF v2 files with h5py (see :mod:`llgfem.io.mdf_types` for the format).

Reading checks every non-optional entry of MDF v2.1.0 (2.0 aliases accepted), converts
types (Int8 flags -> bool, 1-based indices -> 0-based, compound ``{r, i}`` of any number
type and native HDF5 complex -> complex) and validates the result
(:func:`~llgfem.io.mdf_validate.validate_mdf`). Writing validates first, then writes every
non-optional dataset and the optional ones that are set, to a temporary file in the target
folder that is renamed onto the target (atomic on POSIX).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from llgfem.io.mdf_types import (
    MDF,
    MDF_VERSION,
    REQUIRED,
    Acquisition,
    Calibration,
    DriveField,
    MDFError,
    Measurement,
    Receiver,
    _as_2d,
    _decode,
)
from llgfem.io.mdf_validate import _check_finite, _fail, validate_mdf

__all__ = ["ALIASES", "read_mdf", "write_mdf"]

ALIASES = {
    "acquisition/numPeriodsPerFrame": "acquisition/numPeriods",
    "measurement/isFastFrameAxis": "measurement/isTransposed",
}
"""MDF 2.0 names accepted on read for the 2.1 names."""

_DEFAULT_FALSE = {"measurement/isSparsityTransformed"}


class _Reader:
    """Typed access to the datasets of an open MDF file with errors naming the entry."""

    def __init__(self, f: h5py.File, where: str):
        self.f, self.where = f, where

    def raw(self, path: str, required: bool = True) -> Any:
        name = path if path in self.f else ALIASES.get(path, path)
        if name not in self.f:
            if path in _DEFAULT_FALSE:
                return np.int8(0)
            if required:
                raise _fail(path, "is missing (required by MDF v2)", self.where)
            return None
        obj = self.f[name]
        if not isinstance(obj, h5py.Dataset):
            raise _fail(path, "is a group, expected a dataset", self.where)
        return _read_dataset(obj)

    def string(self, path: str, required: bool = True, default: str | None = None):
        value = self.raw(path, required)
        if value is None:
            return default
        value = _decode(value)
        if isinstance(value, list | np.ndarray) and len(value) == 1:
            value = value[0]
        if not isinstance(value, str):
            raise _fail(path, f"must be a string, got {value!r}", self.where)
        return value

    def number(self, path: str, kind: type, required: bool = True):
        value = self.raw(path, required)
        if value is None:
            return None
        arr = np.asarray(value)
        if arr.size != 1 or arr.dtype.kind not in "iufb":
            raise _fail(path, f"must be a single number, got {arr.dtype} {arr.shape}",
                        self.where)
        out = kind(arr.ravel()[0])
        _check_finite(path, out, self.where)
        return out

    def array(self, path: str, dtype, required: bool = True):
        value = self.raw(path, required)
        if value is None:
            return None
        arr = np.asarray(value)
        if arr.dtype.kind not in "iufbc":
            raise _fail(path, f"must be numeric, got {arr.dtype}", self.where)
        if np.dtype(dtype).kind != "c" and arr.dtype.kind == "c":
            raise _fail(path, "must be real, got complex values", self.where)
        _check_finite(path, arr, self.where)
        return arr.astype(dtype)


def _read_dataset(ds: h5py.Dataset) -> Any:
    """Read a dataset; complex compounds ``{r, i}`` of any number type become complex."""
    names = ds.dtype.names
    if names is not None:
        if set(names) >= {"r", "i"}:
            raw = ds[()]
            return raw["r"].astype(np.float64) + 1j * raw["i"].astype(np.float64)
        raise ValueError(f"unsupported compound type {ds.dtype}")
    return ds[()]


def _read_group_dict(f: h5py.File, group: str, where: str) -> dict[str, Any]:
    if group not in f:
        return {}
    out: dict[str, Any] = {}
    for name, obj in f[group].items():
        if not isinstance(obj, h5py.Dataset):
            continue
        try:
            value = _decode(_read_dataset(obj))
        except ValueError:
            if name.startswith("_"):  # a user-defined entry of a type we do not map: skip
                continue
            raise
        if isinstance(value, np.ndarray) and value.ndim == 0:
            value = value.item()
        if isinstance(value, np.generic):
            value = value.item()
        if obj.dtype == np.int8 and obj.shape == ():
            value = bool(value)
        out[name] = value
    return out


def _check_required(f: h5py.File, where: str) -> None:
    for group, names in REQUIRED.items():
        if group in ("tracer", "measurement", "calibration") and group not in f:
            continue
        if group and group not in f:
            raise _fail(group, "(group) is missing (required by MDF v2)", where)
        for name in names:
            path = f"{group}/{name}" if group else name
            if path not in f and ALIASES.get(path, path) not in f and path not in _DEFAULT_FALSE:
                raise _fail(path, "is missing (required by MDF v2)", where)


def _read_drivefield(r: _Reader) -> DriveField:
    p = "acquisition/drivefield/"
    divider = _as_2d(r.array(p + "divider", np.int64))
    return DriveField(base_frequency=r.number(p + "baseFrequency", float),
                      divider=divider,
                      strength=r.array(p + "strength", np.float64),
                      phase=r.array(p + "phase", np.float64),
                      waveform=_decode(r.raw(p + "waveform")),
                      cycle=r.number(p + "cycle", float),
                      num_channels=r.number(p + "numChannels", int))


def _read_receiver(r: _Reader) -> Receiver:
    p = "acquisition/receiver/"
    return Receiver(num_channels=r.number(p + "numChannels", int),
                    num_sampling_points=r.number(p + "numSamplingPoints", int),
                    bandwidth=r.number(p + "bandwidth", float),
                    unit=r.string(p + "unit"),
                    data_conversion_factor=r.array(p + "dataConversionFactor", np.float64,
                                                   False),
                    transfer_function=r.array(p + "transferFunction", np.complex128, False),
                    induction_factor=r.array(p + "inductionFactor", np.float64, False))


def _read_acquisition(r: _Reader) -> Acquisition:
    p = "acquisition/"
    return Acquisition(drivefield=_read_drivefield(r), receiver=_read_receiver(r),
                       num_averages=r.number(p + "numAverages", int),
                       num_frames=r.number(p + "numFrames", int),
                       num_periods_per_frame=r.number(p + "numPeriodsPerFrame", int),
                       gradient=r.array(p + "gradient", np.float64, False),
                       offset_field=r.array(p + "offsetField", np.float64, False),
                       start_time=r.string(p + "startTime"))


def _index0(values: np.ndarray | None) -> np.ndarray | None:
    return None if values is None else np.asarray(values, dtype=np.int64).ravel() - 1


def _read_measurement(r: _Reader) -> Measurement | None:
    if "measurement" not in r.f:
        return None
    p = "measurement/"
    data = r.raw(p + "data")
    if not isinstance(data, np.ndarray) or data.dtype.kind not in "iufc":
        raise _fail(p + "data", "must be a numeric array", r.where)
    flags = {name: bool(r.number(p + key, int)) for name, key in (
        ("is_background_corrected", "isBackgroundCorrected"),
        ("is_fourier_transformed", "isFourierTransformed"),
        ("is_transfer_function_corrected", "isTransferFunctionCorrected"),
        ("is_frequency_selection", "isFrequencySelection"),
        ("is_frame_permutation", "isFramePermutation"),
        ("is_spectral_leakage_corrected", "isSpectralLeakageCorrected"),
        ("is_sparsity_transformed", "isSparsityTransformed"),
        ("is_fast_frame_axis", "isFastFrameAxis"))}
    sel = r.array(p + "frequencySelection", np.int64, flags["is_frequency_selection"])
    perm = r.array(p + "framePermutation", np.int64, flags["is_frame_permutation"])
    sparse = flags["is_sparsity_transformed"]
    return Measurement(data=data, **flags, frequency_selection=_index0(sel),
                       frame_permutation=_index0(perm),
                       sparsity_transformation=r.string(p + "sparsityTransformation", sparse),
                       subsampling_indices=r.array(p + "subsamplingIndices", np.int64, sparse),
                       is_background_frame=r.array(p + "isBackgroundFrame", np.int8) != 0)


def _read_calibration(r: _Reader) -> Calibration | None:
    if "calibration" not in r.f:
        return None
    p = "calibration/"
    return Calibration(method=r.string(p + "method"),
                       field_of_view=r.array(p + "fieldOfView", np.float64, False),
                       field_of_view_center=r.array(p + "fieldOfViewCenter", np.float64, False),
                       size=r.array(p + "size", np.int64, False),
                       order=r.string(p + "order", False, "xyz"),
                       positions=r.array(p + "positions", np.float64, False),
                       offset_fields=r.array(p + "offsetFields", np.float64, False),
                       delta_sample_size=r.array(p + "deltaSampleSize", np.float64, False),
                       snr=r.array(p + "snr", np.float64, False))


def _read_open(f: h5py.File, where: str) -> MDF:
    if "version" not in f:
        raise MDFError(f"{where}: not an MDF file (HDF5 without the MDF entry 'version')")
    r = _Reader(f, where)
    version = r.string("version")
    if not version.startswith("2"):
        raise _fail("version", f"is {version!r}; only MDF v2 is supported", where)
    _check_required(f, where)
    mdf = MDF(acquisition=_read_acquisition(r), measurement=_read_measurement(r),
              calibration=_read_calibration(r),
              study=_read_group_dict(f, "study", where),
              experiment=_read_group_dict(f, "experiment", where),
              scanner=_read_group_dict(f, "scanner", where),
              tracer=_read_group_dict(f, "tracer", where),
              version=version, uuid=r.string("uuid"), time=r.string("time"))
    validate_mdf(mdf, where)
    return mdf


def _read_local(path: Path) -> MDF:
    where = str(path)
    if not path.is_file():
        raise MDFError(f"{where}: MDF file not found")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise MDFError(f"{where}: not an HDF5 file ({exc})") from None
    with f:
        try:
            return _read_open(f, where)
        except MDFError:
            raise
        except (ValueError, TypeError, KeyError, OSError) as exc:
            raise MDFError(f"{where}: unreadable MDF content ({exc})") from None


def _on_root(comm, func):
    """Run ``func`` on rank 0 of ``comm`` and broadcast its value or its MDFError."""
    if comm is None or comm.size == 1:
        return func()
    value, error = None, None
    if comm.rank == 0:
        try:
            value = func()
        except MDFError as exc:
            error = str(exc)
    value, error = comm.bcast((value, error), root=0)
    if error is not None:
        raise MDFError(error)
    return value


def read_mdf(path: str | Path, comm=None) -> MDF:
    """Read and validate an MDF v2 file.

    Args:
        path: the ``.mdf``/``.h5`` file.
        comm: optional MPI communicator: rank 0 reads, the result (or error) is broadcast,
            so every rank returns the same object or raises the same :class:`MDFError`.
            Without it, the calling process reads the file itself.

    Returns:
        The file's contents (data fully loaded into memory).

    Raises:
        MDFError: missing file, not HDF5, not MDF v2, a missing required entry, a wrong shape
            or NaN values; the message names the entry.
    """
    return _on_root(comm, lambda: _read_local(Path(path)))


# --------------------------------------------------------------------------- writing


def _to_h5(value: Any) -> Any:
    """Python value -> array with the MDF storage type (Int8, Int64, Float64, UTF-8 strings)."""
    if isinstance(value, bool | np.bool_):
        return np.int8(value)
    if isinstance(value, int | np.integer):
        return np.int64(value)
    if isinstance(value, float | np.floating):
        return np.float64(value)
    arr = np.asarray(value)
    if arr.dtype.kind in "UOS":  # fixed-length UTF-8 strings, as in the fixture
        enc = [str(_decode(v)).encode("utf-8") for v in arr.ravel()]
        width = max([len(e) for e in enc] + [1])
        dtype = h5py.string_dtype("utf-8", length=width)
        return np.array(enc, dtype=dtype).reshape(arr.shape)
    if arr.dtype.kind == "b":
        return arr.astype(np.int8)
    if arr.dtype.kind == "c":
        base = np.float32 if arr.dtype == np.complex64 else np.float64
        out = np.empty(arr.shape, dtype=[("r", base), ("i", base)])
        out["r"], out["i"] = arr.real, arr.imag
        return out
    return arr


def _put(f: h5py.File, path: str, value: Any) -> None:
    if value is not None:
        data = _to_h5(value)
        f.create_dataset(path, data=data, dtype=data.dtype)


def _write_acquisition(f: h5py.File, acq: Acquisition) -> None:
    df, rx = acq.drivefield, acq.receiver
    entries = {
        "acquisition/numAverages": acq.num_averages, "acquisition/numFrames": acq.num_frames,
        "acquisition/numPeriodsPerFrame": acq.num_periods_per_frame,
        "acquisition/gradient": acq.gradient, "acquisition/offsetField": acq.offset_field,
        "acquisition/startTime": acq.start_time,
        "acquisition/drivefield/baseFrequency": df.base_frequency,
        "acquisition/drivefield/cycle": df.cycle, "acquisition/drivefield/divider": df.divider,
        "acquisition/drivefield/numChannels": df.num_channels,
        "acquisition/drivefield/phase": df.phase, "acquisition/drivefield/strength": df.strength,
        "acquisition/drivefield/waveform": df.waveform,
        "acquisition/receiver/bandwidth": rx.bandwidth,
        "acquisition/receiver/dataConversionFactor": rx.data_conversion_factor,
        "acquisition/receiver/inductionFactor": rx.induction_factor,
        "acquisition/receiver/numChannels": rx.num_channels,
        "acquisition/receiver/numSamplingPoints": rx.num_sampling_points,
        "acquisition/receiver/transferFunction": rx.transfer_function,
        "acquisition/receiver/unit": rx.unit,
    }
    for path, value in entries.items():
        _put(f, path, value)


def _index1(values: np.ndarray | None) -> np.ndarray | None:
    return None if values is None else np.asarray(values, dtype=np.int64) + 1


def _write_measurement(f: h5py.File, m: Measurement) -> None:
    p = "measurement/"
    _put(f, p + "data", m.data)
    for key, value in (("isBackgroundCorrected", m.is_background_corrected),
                       ("isBackgroundFrame", m.is_background_frame),
                       ("isFastFrameAxis", m.is_fast_frame_axis),
                       ("isFourierTransformed", m.is_fourier_transformed),
                       ("isFramePermutation", m.is_frame_permutation),
                       ("isFrequencySelection", m.is_frequency_selection),
                       ("isSparsityTransformed", m.is_sparsity_transformed),
                       ("isSpectralLeakageCorrected", m.is_spectral_leakage_corrected),
                       ("isTransferFunctionCorrected", m.is_transfer_function_corrected),
                       ("frequencySelection", _index1(m.frequency_selection)),
                       ("framePermutation", _index1(m.frame_permutation)),
                       ("sparsityTransformation", m.sparsity_transformation),
                       ("subsamplingIndices", m.subsampling_indices)):
        _put(f, p + key, value)


def _write_calibration(f: h5py.File, c: Calibration) -> None:
    p = "calibration/"
    for key, value in (("method", c.method), ("fieldOfView", c.field_of_view),
                       ("fieldOfViewCenter", c.field_of_view_center), ("size", c.size),
                       ("order", c.order), ("positions", c.positions),
                       ("offsetFields", c.offset_fields),
                       ("deltaSampleSize", c.delta_sample_size), ("snr", c.snr)):
        _put(f, p + key, value)


def _write_file(path: Path, mdf: MDF) -> None:
    with h5py.File(path, "w") as f:
        _put(f, "time", mdf.time)
        _put(f, "uuid", mdf.uuid)
        _put(f, "version", MDF_VERSION)  # the layout written is always 2.1.0
        for group in ("study", "experiment", "scanner", "tracer"):
            for name, value in getattr(mdf, group).items():
                _put(f, f"{group}/{name}", value)
        _write_acquisition(f, mdf.acquisition)
        if mdf.measurement is not None:
            _write_measurement(f, mdf.measurement)
        if mdf.calibration is not None:
            _write_calibration(f, mdf.calibration)


def _write_local(path: Path, mdf: MDF) -> Path:
    validate_mdf(mdf, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        _write_file(Path(tmp), mdf)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_mdf(path: str | Path, mdf: MDF, comm=None) -> Path:
    """Write an MDF v2.1.0 file atomically (temporary file in the same folder + rename).

    Every dataset the specification marks non-optional is written, optional ones when set;
    complex arrays as the compound ``{r, i}``, flags as Int8, integers as Int64, floats as
    Float64, strings as fixed-length UTF-8 HDF5 strings (as the fixture stores them).

    Args:
        path: output file; parent folders are created.
        mdf: the contents; validated first (:func:`validate_mdf`).
        comm: optional MPI communicator: rank 0 writes, errors are broadcast so all ranks
            raise the same :class:`MDFError`. Without it, the calling process writes.

    Returns:
        ``path`` as a :class:`Path`.
    """
    return _on_root(comm, lambda: _write_local(Path(path), mdf))
