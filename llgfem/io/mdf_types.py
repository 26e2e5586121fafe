"""MDF v2 files (Magnetic Particle Imaging Data Format, HDF5): the dataclasses.

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

Modules: :mod:`llgfem.io.mdf_types` (this: dataclasses), :mod:`llgfem.io.mdf_validate`,
:mod:`llgfem.io.mdf_format` (read/write), :mod:`llgfem.io.mdf_signals` (time/frequency domain,
system matrix, transfer functions); :mod:`llgfem.io.mdf` is the public module re-exporting all.
"""

from __future__ import annotations

import uuid as uuidlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from llgfem.config import ConfigError

__all__ = [
    "MDF",
    "MDF_VERSION",
    "REQUIRED",
    "Acquisition",
    "Calibration",
    "DriveField",
    "MDFError",
    "Measurement",
    "Receiver",
    "drive_field",
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
