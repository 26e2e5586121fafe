"""MDF v2 files (Magnetic Particle Imaging Data Format, HDF5): dataclasses, reader, writer.

The MDF (MagneticParticleImaging/MDF, ``MDF.tex`` v2.1.0; MPIFiles.jl is the reference reader)
stores every parameter as an HDF5 dataset in SI units, field strengths in T µ0⁻¹ (the number is
µ0 H in tesla), booleans as Int8, strings as HDF5 strings and complex numbers as the compound
type ``{r, i}``. Dimensions are listed slowest first (row major), which is the order h5py and
NumPy show: ``measurement/data`` is ``(N, J, C, V)`` in time domain.

Relations used here (MDF §2 receiver and drive-field remarks)::

    u_{c,i} = a_c r_{c,i} + b_c             dataConversionFactor (a_c, b_c), C x 2
    û_k^ADC = a_k û_k^coil                  transferFunction a_k, C x K
    û_k^coil = 2 π i k β m̂_k^proj           inductionFactor β, C
    H_d(t) = Σ_l A_{j,d,l} Λ_{d,l}(2π f_{d,l} t + φ_{j,d,l})    drive channel d, period j
    f_{d,l} = baseFrequency / divider_{d,l}
    cycle = lcm(divider) / baseFrequency

Notation (MDF's variable names): ``N`` frames (``O`` foreground + ``E`` background), ``J`` periods
per frame, ``Y`` patches per period, ``C`` receive channels, ``D`` drive channels, ``F``
frequencies per drive channel, ``V`` samples per period, ``K`` frequencies (``V/2 + 1`` unless
selected), ``P = O`` calibration positions.

Python-side conventions (documented in ``docs/mdf.md``):

* ``frequency_selection`` and ``frame_permutation`` are 0-based in the dataclasses; the file
  holds the 1-based indices of the specification (MPIFiles.jl indexes ``1:K``); the conversion
  is done on read and write.
* ``gradient`` is ``(J, Y, 3, 3)`` and ``offset_field`` ``(J, Y, 3)``; older files that store
  a diagonal ``(J, 3)`` or one ``3 x 3`` matrix (the fixture from 2018 does) are expanded on
  read as MPIFiles.jl does.
* 2.0 names are read as aliases: ``acquisition/numPeriods`` for ``numPeriodsPerFrame``,
  ``measurement/isTransposed`` for ``isFastFrameAxis``; ``isSparsityTransformed`` (new in 2.1)
  defaults to false. Files are written with the 2.1 names and ``version = "2.1.0"``.
* ``study``, ``experiment``, ``scanner`` and ``tracer`` are dicts keyed by the MDF names; every
  dataset of these groups is read (user ``_`` entries too) and written back.

Signal helpers (time/frequency domain, system matrix, transfer functions) are in
:mod:`llgfem.io.mdf_signals`; :mod:`llgfem.io.mdf` is the public module re-exporting both.
"""

from __future__ import annotations

import math
import os
import tempfile
import uuid as uuidlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from llgfem.config import ConfigError

__all__ = [
    "MDF",
    "MDF_VERSION",
    "Acquisition",
    "Calibration",
    "DriveField",
    "MDFError",
    "Measurement",
    "REQUIRED",
    "Receiver",
    "data_axes",
    "drive_field",
    "read_mdf",
    "validate_mdf",
    "write_mdf",
]

MDF_VERSION = "2.1.0"

REQUIRED: dict[str, tuple[str, ...]] = {
    "": ("time", "uuid", "version"),
    "study": ("description", "name", "number", "uuid"),
    "experiment": ("description", "isSimulation", "name", "number", "subject", "uuid"),
    "scanner": ("facility", "manufacturer", "name", "operator", "topology"),
    "tracer": ("batch", "concentration", "name", "solute", "vendor", "volume"),
    "acquisition": ("numAverages", "numFrames", "numPeriodsPerFrame", "startTime"),
    "acquisition/drivefield": ("baseFrequency", "cycle", "divider", "numChannels", "phase",
                               "strength", "waveform"),
    "acquisition/receiver": ("bandwidth", "numChannels", "numSamplingPoints", "unit"),
    "measurement": ("data", "isBackgroundCorrected", "isBackgroundFrame", "isFastFrameAxis",
                    "isFourierTransformed", "isFramePermutation", "isFrequencySelection",
                    "isSparsityTransformed", "isSpectralLeakageCorrected",
                    "isTransferFunctionCorrected"),
    "calibration": ("method",),
}
"""Non-optional datasets per group (MDF v2.1.0 tables); ``tracer``, ``measurement`` and
``calibration`` are optional groups whose entries are required when the group exists."""

ALIASES = {
    "acquisition/numPeriodsPerFrame": "acquisition/numPeriods",
    "measurement/isFastFrameAxis": "measurement/isTransposed",
}
"""MDF 2.0 names accepted on read for the 2.1 names."""

_DEFAULT_FALSE = {"measurement/isSparsityTransformed"}


class MDFError(ConfigError):
    """A file that is not a valid MDF v2 file (or an MDF object that cannot be written).

    The message names the file and the MDF entry, e.g. ``acquisition/drivefield/baseFrequency``.
    """


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def _new_uuid() -> str:
    return str(uuidlib.uuid4())


# --------------------------------------------------------------------------- dataclasses


@dataclass(kw_only=True, eq=False)
class DriveField:
    """Drive-field parameters, group ``/acquisition/drivefield``.

    Attributes:
        base_frequency: ``baseFrequency`` in Hz.
        divider: ``divider`` ``(D, F)`` int; frequencies ``base_frequency / divider``.
        strength: ``strength`` ``(J, D, F)`` in T (µ0 H; MDF unit T µ0⁻¹).
        phase: ``phase`` ``(J, D, F)`` in rad.
        waveform: ``waveform`` ``(D, F)`` str array (sine, triangle or custom); a single
            string or a list of ``D`` strings is broadcast.
        cycle: ``cycle`` in s, ``lcm(divider) / baseFrequency`` for commensurate dividers.
        num_channels: ``numChannels`` ``D`` (default: ``divider.shape[0]``).
    """

    base_frequency: float
    divider: np.ndarray
    strength: np.ndarray
    phase: np.ndarray | None = None
    waveform: Any = "sine"
    cycle: float | None = None
    num_channels: int | None = None

    def __post_init__(self):
        self.base_frequency = float(self.base_frequency)
        self.divider = _as_2d(np.asarray(self.divider, dtype=np.int64))
        self.strength = _as_jdf(np.asarray(self.strength, dtype=np.float64))
        self.phase = (np.zeros_like(self.strength) if self.phase is None
                      else _as_jdf(np.asarray(self.phase, dtype=np.float64)))
        self.waveform = _waveform_array(self.waveform, self.divider.shape)
        if self.cycle is None:
            self.cycle = int(np.lcm.reduce(self.divider.ravel())) / self.base_frequency
        self.cycle = float(self.cycle)
        self.num_channels = int(self.divider.shape[0] if self.num_channels is None
                                else self.num_channels)

    @property
    def frequencies(self) -> np.ndarray:
        """Drive frequencies ``(D, F)`` in Hz."""
        return self.base_frequency / self.divider


def drive_field(base_frequency: float, divider, strength, phase=None,
                waveform: Any = "sine") -> DriveField:
    """A drive field with one frequency per channel and ``cycle = lcm(divider)/baseFrequency``.

    Args:
        base_frequency: Hz.
        divider: ``D`` ints (or ``(D, F)``).
        strength: ``D`` amplitudes in T (or ``(J, D, F)``).
        phase: ``D`` phases in rad (default 0).
        waveform: str or ``D`` strings.
    """
    div = np.asarray(divider, dtype=np.int64)
    div = div.reshape(-1, 1) if div.ndim == 1 else div
    amp = np.asarray(strength, dtype=np.float64)
    amp = amp.reshape(1, -1, 1) if amp.ndim == 1 else amp
    ph = None if phase is None else np.asarray(phase, dtype=np.float64)
    if ph is not None and ph.ndim == 1:
        ph = ph.reshape(1, -1, 1)
    return DriveField(base_frequency=base_frequency, divider=div, strength=amp, phase=ph,
                      waveform=waveform)


@dataclass(kw_only=True, eq=False)
class Receiver:
    """Receiver parameters, group ``/acquisition/receiver``.

    Attributes:
        num_channels: ``numChannels`` ``C``.
        num_sampling_points: ``numSamplingPoints`` ``V`` per drive-field period.
        bandwidth: ``bandwidth`` in Hz (sampling rate ``2 * bandwidth``).
        unit: ``unit`` of the measured quantity (usually "V").
        data_conversion_factor: ``dataConversionFactor`` ``(C, 2)`` rows ``(a_c, b_c)`` with
            ``u = a_c r + b_c``, or None (data already in ``unit``).
        transfer_function: ``transferFunction`` ``(C, K)`` complex, or None.
        induction_factor: ``inductionFactor`` ``(C,)`` in ``unit`` A⁻¹ m⁻², or None.
    """

    num_channels: int
    num_sampling_points: int
    bandwidth: float
    unit: str = "V"
    data_conversion_factor: np.ndarray | None = None
    transfer_function: np.ndarray | None = None
    induction_factor: np.ndarray | None = None

    def __post_init__(self):
        self.num_channels = int(self.num_channels)
        self.num_sampling_points = int(self.num_sampling_points)
        self.bandwidth = float(self.bandwidth)
        self.data_conversion_factor = _opt(self.data_conversion_factor, np.float64)
        self.transfer_function = _opt(self.transfer_function, np.complex128)
        self.induction_factor = _opt(self.induction_factor, np.float64)

    @property
    def sampling_rate(self) -> float:
        """``2 * bandwidth`` in Hz."""
        return 2.0 * self.bandwidth


@dataclass(kw_only=True, eq=False)
class Acquisition:
    """Acquisition parameters, group ``/acquisition``.

    Attributes:
        drivefield: the ``drivefield`` subgroup.
        receiver: the ``receiver`` subgroup.
        num_averages: ``numAverages`` block averages per period.
        num_frames: ``numFrames`` ``N``.
        num_periods_per_frame: ``numPeriodsPerFrame`` ``J`` (2.0: ``numPeriods``).
        gradient: ``gradient`` ``(J, Y, 3, 3)`` in T/m (µ0 G), or None (optional).
        offset_field: ``offsetField`` ``(J, Y, 3)`` in T, or None (optional).
        start_time: ``startTime`` (UTC, ``yyyy-mm-ddThh:mm:ss.ms``).
    """

    drivefield: DriveField
    receiver: Receiver
    num_averages: int = 1
    num_frames: int = 1
    num_periods_per_frame: int = 1
    gradient: np.ndarray | None = None
    offset_field: np.ndarray | None = None
    start_time: str = field(default_factory=_now)

    def __post_init__(self):
        self.num_averages = int(self.num_averages)
        self.num_frames = int(self.num_frames)
        self.num_periods_per_frame = int(self.num_periods_per_frame)
        if self.gradient is not None:
            self.gradient = _gradient_4d(np.asarray(self.gradient, dtype=np.float64))
        if self.offset_field is not None:
            self.offset_field = _offset_3d(np.asarray(self.offset_field, dtype=np.float64))


@dataclass(kw_only=True, eq=False)
class Measurement:
    """Measured data and its processing flags, group ``/measurement``.

    Attributes:
        data: ``data`` as stored: ``(N, J, C, V)`` time domain, ``(N, J, C, K)`` frequency
            domain, or with ``is_fast_frame_axis`` the frame axis last ``(J, C, V|K, N)``;
            sparsity-transformed data ``(J, C, K, B + E)`` is read but not decoded.
        is_background_corrected: ``isBackgroundCorrected``.
        is_fourier_transformed: ``isFourierTransformed`` (unnormalised rfft over samples).
        is_transfer_function_corrected: ``isTransferFunctionCorrected``.
        is_frequency_selection: ``isFrequencySelection``.
        frequency_selection: ``frequencySelection`` ``(K,)`` 0-based indices into the
            ``V/2 + 1`` rfft frequencies (file: 1-based), or None.
        is_frame_permutation: ``isFramePermutation``.
        frame_permutation: ``framePermutation`` ``(N,)`` 0-based (file: 1-based): stored frame
            ``i`` was acquired as frame ``frame_permutation[i]``.
        is_spectral_leakage_corrected: ``isSpectralLeakageCorrected``.
        is_sparsity_transformed: ``isSparsityTransformed`` (2.1; false for 2.0 files).
        sparsity_transformation: ``sparsityTransformation`` (DCT-I ... DCT-IV) or None.
        subsampling_indices: ``subsamplingIndices`` ``(J, C, K, B)`` as stored, or None.
        is_fast_frame_axis: ``isFastFrameAxis`` (2.0: ``isTransposed``).
        is_background_frame: ``isBackgroundFrame`` ``(N,)`` bool (default all false).
    """

    data: np.ndarray
    is_background_corrected: bool = False
    is_fourier_transformed: bool = False
    is_transfer_function_corrected: bool = False
    is_frequency_selection: bool = False
    frequency_selection: np.ndarray | None = None
    is_frame_permutation: bool = False
    frame_permutation: np.ndarray | None = None
    is_spectral_leakage_corrected: bool = False
    is_sparsity_transformed: bool = False
    sparsity_transformation: str | None = None
    subsampling_indices: np.ndarray | None = None
    is_fast_frame_axis: bool = False
    is_background_frame: np.ndarray | None = None

    def __post_init__(self):
        self.data = np.asarray(self.data)
        for name in ("is_background_corrected", "is_fourier_transformed",
                     "is_transfer_function_corrected", "is_frequency_selection",
                     "is_frame_permutation", "is_spectral_leakage_corrected",
                     "is_sparsity_transformed", "is_fast_frame_axis"):
            setattr(self, name, bool(getattr(self, name)))
        self.frequency_selection = _opt(self.frequency_selection, np.int64)
        self.frame_permutation = _opt(self.frame_permutation, np.int64)
        if self.is_background_frame is None:
            self.is_background_frame = np.zeros(self.num_frames, dtype=bool)
        self.is_background_frame = np.asarray(self.is_background_frame).astype(bool)

    @property
    def num_frames(self) -> int:
        """``N`` from the data layout."""
        if self.data.ndim != 4:
            return 0
        return int(self.data.shape[-1] if self.is_fast_frame_axis else self.data.shape[0])


@dataclass(kw_only=True, eq=False)
class Calibration:
    """Calibration (system-matrix) metadata, group ``/calibration``.

    Attributes:
        method: ``method`` (robot, hybrid or simulation).
        field_of_view: ``fieldOfView`` ``(3,)`` in m, or None.
        field_of_view_center: ``fieldOfViewCenter`` ``(3,)`` in m, or None.
        size: ``size`` ``(3,)`` grid points per axis (product ``O``), or None.
        order: ``order`` of the grid axes, first letter fastest (default "xyz").
        positions: ``positions`` ``(O, 3)`` in m, or None (then the grid defines them).
        offset_fields: ``offsetFields`` ``(O, 3)`` in T, or None.
        delta_sample_size: ``deltaSampleSize`` ``(3,)`` in m, or None.
        snr: ``snr`` ``(J, C, K)``, or None.
    """

    method: str = "simulation"
    field_of_view: np.ndarray | None = None
    field_of_view_center: np.ndarray | None = None
    size: np.ndarray | None = None
    order: str = "xyz"
    positions: np.ndarray | None = None
    offset_fields: np.ndarray | None = None
    delta_sample_size: np.ndarray | None = None
    snr: np.ndarray | None = None

    def __post_init__(self):
        self.field_of_view = _opt(self.field_of_view, np.float64)
        self.field_of_view_center = _opt(self.field_of_view_center, np.float64)
        self.size = _opt(self.size, np.int64)
        self.positions = _opt(self.positions, np.float64)
        self.offset_fields = _opt(self.offset_fields, np.float64)
        self.delta_sample_size = _opt(self.delta_sample_size, np.float64)
        self.snr = _opt(self.snr, np.float64)


def _default_meta(group: str) -> dict[str, Any]:
    return {
        "study": {"description": "n.a.", "name": "n.a.", "number": 0, "uuid": _new_uuid()},
        "experiment": {"description": "n.a.", "isSimulation": False, "name": "n.a.",
                       "number": 0, "subject": "n.a.", "uuid": _new_uuid()},
        "scanner": {"facility": "n.a.", "manufacturer": "n.a.", "name": "n.a.",
                    "operator": "n.a.", "topology": "FFP"},
    }[group]


@dataclass(kw_only=True, eq=False)
class MDF:
    """One MDF v2 file.

    Attributes:
        acquisition: ``/acquisition``.
        measurement: ``/measurement`` or None (optional group).
        calibration: ``/calibration`` or None (present for system matrices).
        study: ``/study`` datasets by MDF name; missing required keys get "n.a."/0/new uuid.
        experiment: ``/experiment`` datasets (``isSimulation`` as bool).
        scanner: ``/scanner`` datasets.
        tracer: ``/tracer`` datasets; empty dict = no tracer group (optional).
        version: ``version`` as read; :func:`write_mdf` always writes "2.1.0" (its layout).
        uuid: ``uuid`` of the file.
        time: ``time``, UTC creation time.
    """

    acquisition: Acquisition
    measurement: Measurement | None = None
    calibration: Calibration | None = None
    study: dict[str, Any] = field(default_factory=dict)
    experiment: dict[str, Any] = field(default_factory=dict)
    scanner: dict[str, Any] = field(default_factory=dict)
    tracer: dict[str, Any] = field(default_factory=dict)
    version: str = MDF_VERSION
    uuid: str = field(default_factory=_new_uuid)
    time: str = field(default_factory=_now)

    def __post_init__(self):
        for group in ("study", "experiment", "scanner"):
            setattr(self, group, {**_default_meta(group), **dict(getattr(self, group))})
        self.tracer = dict(self.tracer or {})


# --------------------------------------------------------------------------- coercion


def _opt(value, dtype):
    return None if value is None else np.asarray(value, dtype=dtype)


def _as_2d(a: np.ndarray) -> np.ndarray:
    return a.reshape(-1, 1) if a.ndim < 2 else a


def _as_jdf(a: np.ndarray) -> np.ndarray:
    if a.ndim == 0:
        return a.reshape(1, 1, 1)
    return a.reshape(1, -1, 1) if a.ndim == 1 else a


def _waveform_array(value: Any, shape: tuple[int, ...]) -> np.ndarray:
    arr = np.asarray(_decode(value), dtype=str)
    if arr.ndim == 0 or arr.size == 1:
        return np.full(shape, str(arr.ravel()[0]))
    if arr.ndim == 1 and len(shape) == 2 and arr.shape[0] == shape[0]:
        return np.repeat(arr[:, None], shape[1], axis=1)
    return arr


def _gradient_4d(g: np.ndarray) -> np.ndarray:
    """Expand stored gradients to ``(J, Y, 3, 3)`` (MPIFiles.jl ``acqGradient`` rules)."""
    if g.ndim == 4:
        return g
    if g.ndim == 3 and g.shape[-2:] == (3, 3):
        return g[:, None]
    if g.ndim == 2 and g.shape == (3, 3):
        return g[None, None]
    if g.shape[-1] == 3:  # diagonals (..., 3), e.g. (J, 3) in MDF 2.0 files
        diag = g.reshape(-1, 3)
        return np.stack([np.diag(d) for d in diag])[:, None]
    return g


def _offset_3d(h: np.ndarray) -> np.ndarray:
    if h.ndim == 3:
        return h
    return h.reshape(-1, 1, 3) if h.size % 3 == 0 else h


def _decode(value: Any) -> Any:
    if isinstance(value, bytes | np.bytes_):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray) and value.dtype.kind in "SOU":
        return [_decode(v) for v in value.ravel()] if value.ndim == 1 else \
            np.array([_decode(v) for v in value.ravel()], dtype=str).reshape(value.shape)
    return value


# --------------------------------------------------------------------------- validation


def _fail(entry: str, message: str, where: str = "") -> MDFError:
    prefix = f"{where}: " if where else ""
    return MDFError(f"{prefix}MDF entry '{entry}' {message}")


def _check_shape(entry: str, array: np.ndarray | None, shape: tuple, where: str) -> None:
    if array is None:
        return
    if array.shape != tuple(shape):
        raise _fail(entry, f"has shape {array.shape}, expected {tuple(shape)}", where)


def _check_finite(entry: str, array: Any, where: str) -> None:
    if array is None:
        return
    a = np.asarray(array)
    if a.dtype.kind in "fc" and not np.all(np.isfinite(a)):
        raise _fail(entry, "contains NaN or infinite values", where)


def data_axes(meas: Measurement) -> tuple[int, int, int, int]:
    """``(N, J, C, X)`` of the stored data (``X = V`` samples or ``K`` frequencies)."""
    d = meas.data
    if meas.is_fast_frame_axis:
        return d.shape[3], d.shape[0], d.shape[1], d.shape[2]
    return d.shape


def _validate_drivefield(df: DriveField, acq: Acquisition, where: str) -> None:
    p = "acquisition/drivefield/"
    d, f = df.divider.shape
    if df.num_channels != d:
        raise _fail(p + "numChannels", f"is {df.num_channels} but divider has {d} rows", where)
    if df.base_frequency <= 0 or not math.isfinite(df.base_frequency):
        raise _fail(p + "baseFrequency", f"must be positive, got {df.base_frequency}", where)
    if np.any(df.divider <= 0):
        raise _fail(p + "divider", "must be positive integers", where)
    if df.cycle <= 0 or not math.isfinite(df.cycle):
        raise _fail(p + "cycle", f"must be positive, got {df.cycle}", where)
    for name, arr in (("strength", df.strength), ("phase", df.phase)):
        if arr.ndim != 3 or arr.shape[1:] != (d, f):
            raise _fail(p + name, f"has shape {arr.shape}, expected (J, {d}, {f})", where)
        _check_finite(p + name, arr, where)
    _check_shape(p + "waveform", df.waveform, (d, f), where)


def _validate_receiver(rx: Receiver, where: str) -> None:
    p = "acquisition/receiver/"
    c = rx.num_channels
    if c < 1 or rx.num_sampling_points < 1:
        raise _fail(p + "numChannels/numSamplingPoints", "must be >= 1", where)
    if rx.bandwidth <= 0 or not math.isfinite(rx.bandwidth):
        raise _fail(p + "bandwidth", f"must be positive, got {rx.bandwidth}", where)
    _check_shape(p + "dataConversionFactor", rx.data_conversion_factor, (c, 2), where)
    _check_finite(p + "dataConversionFactor", rx.data_conversion_factor, where)
    if rx.transfer_function is not None and (rx.transfer_function.ndim != 2
                                             or rx.transfer_function.shape[0] != c):
        raise _fail(p + "transferFunction", f"has shape {rx.transfer_function.shape}, "
                    f"expected ({c}, K)", where)
    _check_finite(p + "transferFunction", rx.transfer_function, where)
    _check_shape(p + "inductionFactor", rx.induction_factor, (c,), where)


def _validate_acquisition(acq: Acquisition, where: str) -> None:
    for name, value in (("numAverages", acq.num_averages), ("numFrames", acq.num_frames),
                        ("numPeriodsPerFrame", acq.num_periods_per_frame)):
        if value < (0 if name == "numFrames" else 1):
            raise _fail("acquisition/" + name, f"must be positive, got {value}", where)
    if acq.gradient is not None and (acq.gradient.ndim != 4 or acq.gradient.shape[2:] != (3, 3)):
        raise _fail("acquisition/gradient", f"has shape {acq.gradient.shape}, expected "
                    "(J, Y, 3, 3)", where)
    if acq.offset_field is not None and (acq.offset_field.ndim != 3
                                         or acq.offset_field.shape[2] != 3):
        raise _fail("acquisition/offsetField", f"has shape {acq.offset_field.shape}, "
                    "expected (J, Y, 3)", where)
    _check_finite("acquisition/gradient", acq.gradient, where)
    _check_finite("acquisition/offsetField", acq.offset_field, where)
    _validate_drivefield(acq.drivefield, acq, where)
    _validate_receiver(acq.receiver, where)


def _validate_measurement(meas: Measurement, acq: Acquisition, where: str) -> None:
    p = "measurement/"
    rx = acq.receiver
    if meas.data.ndim != 4:
        raise _fail(p + "data", f"has {meas.data.ndim} dimensions, expected 4", where)
    if meas.data.dtype.kind not in "iufc":
        raise _fail(p + "data", f"has non-numeric type {meas.data.dtype}", where)
    _check_finite(p + "data", meas.data, where)
    v = rx.num_sampling_points
    if meas.is_frequency_selection:
        if meas.frequency_selection is None:
            raise _fail(p + "frequencySelection", "is missing but isFrequencySelection is "
                        "set", where)
        sel = meas.frequency_selection
        if sel.ndim != 1 or np.any(sel < 0) or np.any(sel > v // 2):
            raise _fail(p + "frequencySelection", f"must index 1..{v // 2 + 1}", where)
    if meas.is_frame_permutation:
        perm = meas.frame_permutation
        if perm is None or not np.array_equal(np.sort(perm), np.arange(meas.num_frames)):
            raise _fail(p + "framePermutation", f"must be a permutation of 1..{meas.num_frames}"
                        " (isFramePermutation is set)", where)
    _check_shape(p + "isBackgroundFrame", meas.is_background_frame, (meas.num_frames,), where)
    if meas.is_sparsity_transformed:
        if meas.sparsity_transformation is None or meas.subsampling_indices is None:
            raise _fail(p + "sparsityTransformation/subsamplingIndices", "are required when "
                        "isSparsityTransformed is set", where)
        return
    n, j, c, x = data_axes(meas)
    if meas.is_fourier_transformed:
        k = len(meas.frequency_selection) if meas.is_frequency_selection else v // 2 + 1
        what = "frequencies K"
    else:
        k, what = v, "samples V (numSamplingPoints)"
    expected = {"frames N (acquisition/numFrames)": (n, acq.num_frames),
                "periods J (acquisition/numPeriodsPerFrame)": (j, acq.num_periods_per_frame),
                "channels C (acquisition/receiver/numChannels)": (c, rx.num_channels),
                what: (x, k)}
    for label, (got, want) in expected.items():
        if got != want:
            raise _fail(p + "data", f"has shape {meas.data.shape}: {got} {label}, expected "
                        f"{want}", where)


def _validate_calibration(cal: Calibration, mdf: MDF, where: str) -> None:
    p = "calibration/"
    for name, arr in (("fieldOfView", cal.field_of_view),
                      ("fieldOfViewCenter", cal.field_of_view_center),
                      ("size", cal.size), ("deltaSampleSize", cal.delta_sample_size)):
        _check_shape(p + name, arr, (3,), where)
        _check_finite(p + name, arr, where)
    if cal.size is not None and np.any(cal.size < 1):
        raise _fail(p + "size", f"must be positive, got {cal.size}", where)
    if sorted(cal.order) != ["x", "y", "z"]:
        raise _fail(p + "order", f"must be a permutation of 'xyz', got {cal.order!r}", where)
    n_fg = None
    meas = mdf.measurement
    if meas is not None and not meas.is_sparsity_transformed:
        n_fg = int(np.count_nonzero(~meas.is_background_frame))
    if cal.size is not None and n_fg is not None and int(np.prod(cal.size)) != n_fg:
        raise _fail(p + "size", f"has {int(np.prod(cal.size))} points but the measurement has "
                    f"{n_fg} foreground frames", where)
    for name, arr in (("positions", cal.positions), ("offsetFields", cal.offset_fields)):
        if arr is None:
            continue
        if arr.ndim != 2 or arr.shape[1] != 3 or (n_fg is not None and arr.shape[0] != n_fg):
            raise _fail(p + name, f"has shape {arr.shape}, expected (O, 3) with O = {n_fg}",
                        where)
        _check_finite(p + name, arr, where)
    if cal.snr is not None and cal.snr.ndim != 3:
        raise _fail(p + "snr", f"has shape {cal.snr.shape}, expected (J, C, K)", where)
    _check_finite(p + "snr", cal.snr, where)


def _validate_meta(mdf: MDF, where: str) -> None:
    groups = {"study": mdf.study, "experiment": mdf.experiment, "scanner": mdf.scanner}
    if mdf.tracer:
        groups["tracer"] = mdf.tracer
    for group, values in groups.items():
        for name in REQUIRED[group]:
            if name not in values or values[name] is None:
                raise _fail(f"{group}/{name}", "is required", where)
    if not str(mdf.version).startswith("2"):
        raise _fail("version", f"is {mdf.version!r}; only MDF v2 is supported", where)


def validate_mdf(mdf: MDF, where: str = "") -> None:
    """Check shapes, consistency and finiteness of an :class:`MDF`.

    Raises:
        MDFError: naming the first offending MDF entry (prefixed by ``where``).
    """
    _validate_meta(mdf, where)
    _validate_acquisition(mdf.acquisition, where)
    if mdf.measurement is not None:
        _validate_measurement(mdf.measurement, mdf.acquisition, where)
    if mdf.calibration is not None:
        _validate_calibration(mdf.calibration, mdf, where)


# --------------------------------------------------------------------------- reading


class _Reader:
    """Typed access to the datasets of an open MDF file with errors naming the entry."""

    def __init__(self, f: h5py.File, where: str):
        self.f, self.where = f, where

    def has(self, path: str) -> bool:
        return path in self.f or (path in ALIASES and ALIASES[path] in self.f)

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
        value = _decode(_read_dataset(obj))
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
    """Python value -> array with the MDF storage type (Int8 flags, Int64, Float64, bytes)."""
    if isinstance(value, bool | np.bool_):
        return np.int8(value)
    if isinstance(value, int | np.integer):
        return np.int64(value)
    if isinstance(value, float | np.floating):
        return np.float64(value)
    if isinstance(value, str):
        return np.bytes_(value.encode("utf-8")) if value else np.array(b"", dtype="S1")
    arr = np.asarray(value)
    if arr.dtype.kind in "UO" or (arr.dtype.kind == "S"):
        enc = [str(_decode(v)).encode("utf-8") for v in arr.ravel()]
        width = max([len(e) for e in enc] + [1])
        return np.array(enc, dtype=f"S{width}").reshape(arr.shape)
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
        f.create_dataset(path, data=_to_h5(value))


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
