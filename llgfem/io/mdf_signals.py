"""Signals in MDF files: time and frequency domain, system matrices, transfer functions.

Conventions (those of MPIFiles.jl, the MDF reference reader)::

    u_{n,j,c,v} = a_c r_{n,j,c,v} + b_c                    dataConversionFactor (time domain)
    û_{n,j,c,k} = Σ_{v=0}^{V-1} u_{n,j,c,v} e^{-2π i k v / V},  k = 0..V/2   (rfft, unnormalised)
    f_k = k · 2B / V                                       B = receiver bandwidth
    û_k^coil = û_k / a_k                                   transfer-function correction
    s(x_p)_{j,c,k} = û_{p,j,c,k} - mean_{e ∈ background} û_{e,j,c,k}     system matrix rows

Background handling (``background=``): ``"subtract"`` removes the mean of all background
frames (``isBackgroundFrame``) from the foreground frames unless ``isBackgroundCorrected`` is
set, and drops the background frames; ``"drop"`` drops them without subtracting; ``"keep"``
returns every requested frame unchanged. Frames are in stored order (a ``framePermutation`` is
not undone: calibration positions and ``isBackgroundFrame`` refer to the stored order).

Grid positions (``calibration/size``, ``fieldOfView`` ``L``, ``fieldOfViewCenter`` ``c``)::

    x_{a,i} = c_a - L_a/2 + (i + 1/2) L_a / n_a,   i = 0..n_a-1, the first axis of ``order`` fastest

Measured transfer functions are interpolated linearly in amplitude and in unwrapped phase
between measured frequencies and set to 0 outside ``[f_0, f_{K-1}]`` (no information there).

Notation: ``N`` frames, ``J`` periods, ``C`` receive channels, ``V`` samples, ``K``
frequencies, ``P`` calibration positions, ``a_c, b_c`` conversion factors, ``a_k`` transfer
function.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np

from llgfem.io.mdf_types import (
    MDF,
    Acquisition,
    Calibration,
    DriveField,
    MDFError,
    Measurement,
    Receiver,
)
from llgfem.io.mdf_validate import validate_mdf

__all__ = [
    "calibration_positions",
    "frequencies",
    "frequency_domain",
    "interpolate_transfer_function",
    "read_transfer_function",
    "system_matrix",
    "system_matrix_mdf",
    "time_domain",
]

_BACKGROUND = ("subtract", "drop", "keep")


def _measurement(mdf: MDF) -> Measurement:
    meas = mdf.measurement
    if meas is None:
        raise MDFError("MDF has no 'measurement' group (no data)")
    if meas.is_sparsity_transformed:
        raise MDFError("measurement/isSparsityTransformed: compressed (sparsity-transformed) "
                       "data is not supported by llgfem")
    return meas


def _frames_first(meas: Measurement) -> np.ndarray:
    """The stored data as ``(N, J, C, X)`` (a view)."""
    return np.moveaxis(meas.data, -1, 0) if meas.is_fast_frame_axis else meas.data


def _frame_sets(meas: Measurement, frames, background: str) -> tuple[np.ndarray, Any]:
    """Stored-frame indices to return and background indices to subtract (or None)."""
    if background not in _BACKGROUND:
        raise ValueError(f"background must be one of {_BACKGROUND}, got {background!r}")
    n = meas.num_frames
    idx = np.arange(n) if frames is None else np.atleast_1d(np.arange(n)[frames])
    if background == "keep":
        return idx, None
    bg = meas.is_background_frame
    keep = idx[~bg[idx]]
    subtract = (background == "subtract" and not meas.is_background_corrected and bg.any())
    return keep, (np.flatnonzero(bg) if subtract else None)


def _selection(mdf: MDF) -> np.ndarray:
    """0-based rfft indices of the stored (or computed) frequency axis."""
    meas = mdf.measurement
    v = mdf.acquisition.receiver.num_sampling_points
    if meas is not None and meas.is_fourier_transformed and meas.is_frequency_selection:
        return meas.frequency_selection
    return np.arange(v // 2 + 1)


def frequencies(mdf: MDF) -> np.ndarray:
    """Frequencies ``(K,)`` in Hz of :func:`frequency_domain`, ``f_k = k 2B / V``."""
    rx = mdf.acquisition.receiver
    return _selection(mdf) * (rx.sampling_rate / rx.num_sampling_points)


def _conversion(mdf: MDF) -> tuple[np.ndarray, np.ndarray]:
    """``(a_c, b_c)`` shaped to broadcast over ``(N, J, C, X)``."""
    dcf = mdf.acquisition.receiver.data_conversion_factor
    c = mdf.acquisition.receiver.num_channels
    if dcf is None:
        return np.ones((c, 1)), np.zeros((c, 1))
    return dcf[:, :1], dcf[:, 1:]


def _time_of(mdf: MDF, x: np.ndarray) -> np.ndarray:
    """Stored frames ``(n, J, C, X)`` -> time domain in the receiver unit ``(n, J, C, V)``."""
    meas = mdf.measurement
    v = mdf.acquisition.receiver.num_sampling_points
    a, b = _conversion(mdf)
    if not meas.is_fourier_transformed:
        return a * x.astype(np.float64) + b
    full = np.zeros(x.shape[:-1] + (v // 2 + 1,), dtype=np.complex128)
    full[..., _selection(mdf)] = x
    return a * np.fft.irfft(full, n=v, axis=-1) + b


def _spectrum_of(mdf: MDF, x: np.ndarray) -> np.ndarray:
    """Stored frames -> spectrum ``(n, J, C, K)`` in the receiver unit (rfft of time data)."""
    meas = mdf.measurement
    a, b = _conversion(mdf)
    if not meas.is_fourier_transformed:
        return np.fft.rfft(a * x.astype(np.float64) + b, axis=-1)
    sel = _selection(mdf)
    dc = (sel == 0) * mdf.acquisition.receiver.num_sampling_points
    return a * x.astype(np.complex128) + b * dc


def _assemble(mdf: MDF, frames, background: str, transform) -> np.ndarray:
    meas = _measurement(mdf)
    x = _frames_first(meas)
    keep, bg = _frame_sets(meas, frames, background)
    out = transform(mdf, x[keep])
    if bg is not None:
        out -= transform(mdf, x[bg]).mean(axis=0)
    return out


def time_domain(mdf: MDF, frames=None, background: str = "subtract") -> np.ndarray:
    """Measured signals in time domain, ``(N', J, C, V)`` float64 in ``receiver.unit``.

    Fourier-transformed data are brought back by the inverse rfft (unselected frequencies
    are zero); ``dataConversionFactor`` is applied. Transfer-function corrected data stay
    corrected (the flag is not undone).

    Args:
        mdf: the file contents.
        frames: stored-frame indices (int, sequence or slice; default all) taken before
            background frames are dropped.
        background: "subtract", "drop" or "keep" (module docstring).

    Raises:
        MDFError: no measurement, or sparsity-transformed data.
    """
    return _assemble(mdf, frames, background, _time_of)


def _transfer_function_rows(mdf: MDF, k: int) -> np.ndarray:
    tf = mdf.acquisition.receiver.transfer_function
    if tf is None:
        raise MDFError("acquisition/receiver/transferFunction is missing; cannot correct the "
                       "data by the transfer function")
    v = mdf.acquisition.receiver.num_sampling_points
    if tf.shape[1] == v // 2 + 1:
        return tf[:, _selection(mdf)]
    if tf.shape[1] == k:
        return tf
    raise MDFError(f"acquisition/receiver/transferFunction has {tf.shape[1]} frequencies, "
                   f"expected {v // 2 + 1} or {k}")


def frequency_domain(mdf: MDF, frames=None, background: str = "subtract",
                     correct_transfer_function: bool = False) -> np.ndarray:
    """Measured spectra ``(N', J, C, K)`` complex128 at :func:`frequencies`.

    Time-domain data are converted (``dataConversionFactor``) and transformed by the
    unnormalised rfft over the ``V`` samples; Fourier-transformed data are returned with the
    stored frequency selection (the offset ``b_c`` enters the 0 Hz bin as ``V b_c``).

    Args:
        mdf: the file contents.
        frames: stored-frame indices (default all).
        background: "subtract", "drop" or "keep" (module docstring).
        correct_transfer_function: divide by ``receiver.transfer_function`` (coil voltage)
            unless ``isTransferFunctionCorrected`` is already set; bins where the transfer
            function is 0 are set to 0.

    Raises:
        MDFError: no measurement, sparsity-transformed data, or a missing/mismatched
            transfer function when a correction is asked for.
    """
    out = _assemble(mdf, frames, background, _spectrum_of)
    if correct_transfer_function and not mdf.measurement.is_transfer_function_corrected:
        tf = _transfer_function_rows(mdf, out.shape[-1])
        safe = np.where(tf == 0, 1.0, tf)
        out = np.where(tf == 0, 0.0, out / safe)
    return out


def calibration_positions(calibration: Calibration, count: int | None = None) -> np.ndarray:
    """Positions ``(P, 3)`` in m: ``calibration.positions`` or the grid's voxel centres.

    Args:
        calibration: the calibration metadata.
        count: expected number of positions (checked when given).

    Raises:
        MDFError: neither positions nor size/fieldOfView/fieldOfViewCenter, or a count
            mismatch.
    """
    cal = calibration
    if cal.positions is not None:
        pos = cal.positions
    else:
        if cal.size is None or cal.field_of_view is None:
            raise MDFError("calibration/positions or calibration/size + fieldOfView are "
                           "required to locate the calibration positions")
        center = (np.zeros(3) if cal.field_of_view_center is None
                  else cal.field_of_view_center)
        axes = [center[a] - cal.field_of_view[a] / 2
                + (np.arange(cal.size[a]) + 0.5) * cal.field_of_view[a] / cal.size[a]
                for a in range(3)]
        slow_to_fast = ["xyz".index(ch) for ch in reversed(cal.order)]
        grids = np.meshgrid(*[axes[a] for a in slow_to_fast], indexing="ij")
        pos = np.empty((grids[0].size, 3))
        for g, a in zip(grids, slow_to_fast, strict=True):
            pos[:, a] = g.ravel()
    if count is not None and pos.shape[0] != count:
        raise MDFError(f"calibration has {pos.shape[0]} positions but the measurement has "
                       f"{count} foreground frames")
    return pos


def system_matrix(mdf: MDF, background: str = "subtract",
                  correct_transfer_function: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """System matrix of a calibration file.

    Returns:
        ``S`` ``(P, J, C, K)`` complex128 (foreground frames in stored order, spectra at
        :func:`frequencies`; ``S.reshape(P, -1)`` has MPIFiles.jl's row order, ``k``
        fastest) and the positions ``(P, 3)`` in m.

    Raises:
        MDFError: not a calibration file (no ``/calibration``), or see
            :func:`frequency_domain`.
    """
    if mdf.calibration is None:
        raise MDFError("calibration group is missing: not a system-matrix (calibration) file")
    s = frequency_domain(mdf, background=background,
                         correct_transfer_function=correct_transfer_function)
    return s, calibration_positions(mdf.calibration, s.shape[0])


def _as_pjck(S: np.ndarray) -> np.ndarray:
    S = np.asarray(S)
    if S.ndim == 3:
        return S[:, None]
    if S.ndim != 4:
        raise ValueError(f"S must be (P, C, K) or (P, J, C, K), got shape {S.shape}")
    return S


def system_matrix_mdf(S: np.ndarray, *, drivefield: DriveField, receiver: Receiver,
                      size, field_of_view, field_of_view_center=(0.0, 0.0, 0.0),
                      frequency_selection=None, snr=None, positions=None, gradient=None,
                      offset_field=None, fast_frame_axis: bool = True,
                      method: str = "simulation", delta_sample_size=None,
                      study: dict | None = None, experiment: dict | None = None,
                      scanner: dict | None = None, tracer: dict | None = None) -> MDF:
    """A calibration MDF holding a (simulated) system matrix.

    Args:
        S: ``(P, J, C, K)`` or ``(P, C, K)`` complex spectra per position, positions in
            ``order`` "xyz" (x fastest), frequencies ``frequency_selection`` (0-based rfft
            indices for ``receiver.num_sampling_points``; None = all ``V/2 + 1``); or real
            ``(P, J, C, V)``/``(P, C, V)`` time signals, stored in time domain
            (``isFourierTransformed`` 0; :func:`system_matrix` then applies the rfft).
        drivefield, receiver: the scanner description (:class:`DriveField`,
            :class:`Receiver`).
        size, field_of_view, field_of_view_center: the grid (3 ints, m, m).
        snr: ``(J, C, K)`` signal-to-noise per frequency, or None.
        positions: ``(P, 3)`` m, or None (grid centres).
        gradient, offset_field: selection gradient ``(J, Y, 3, 3)``/diagonal ``(3,)`` in T/m
            and offset field in T, or None.
        fast_frame_axis: store ``(J, C, K, P)`` (``isFastFrameAxis``, the layout calibration
            files use for fast row access) instead of ``(P, J, C, K)``.
        method: ``calibration/method``.
        delta_sample_size: ``(3,)`` m, or None.
        study, experiment, scanner, tracer: metadata overrides (MDF names); experiment
            ``isSimulation`` defaults to true.

    Returns:
        The validated :class:`MDF` (write it with :func:`~llgfem.io.mdf.write_mdf`).

    Raises:
        MDFError: inconsistent shapes (named by MDF entry).
    """
    S = _as_pjck(S)
    p, j = S.shape[:2]
    fourier = np.iscomplexobj(S)
    sel = None if frequency_selection is None else np.asarray(frequency_selection, np.int64)
    if sel is not None and not fourier:
        raise MDFError("measurement/frequencySelection needs a complex (frequency-domain) S")
    data = np.ascontiguousarray(np.moveaxis(S, 0, -1)) if fast_frame_axis else S
    meas = Measurement(data=data, is_fourier_transformed=fourier,
                       is_fast_frame_axis=fast_frame_axis,
                       is_frequency_selection=sel is not None, frequency_selection=sel,
                       is_background_frame=np.zeros(p, dtype=bool))
    grad = None if gradient is None else np.asarray(gradient, dtype=np.float64)
    if grad is not None and grad.shape == (3,):
        grad = np.diag(grad)
    acq = Acquisition(drivefield=drivefield, receiver=receiver, num_frames=p,
                      num_periods_per_frame=j, gradient=grad, offset_field=offset_field)
    cal = Calibration(method=method, field_of_view=field_of_view,
                      field_of_view_center=field_of_view_center, size=size,
                      positions=positions, snr=snr, delta_sample_size=delta_sample_size)
    mdf = MDF(acquisition=acq, measurement=meas, calibration=cal, study=study or {},
              experiment={"isSimulation": method == "simulation", **(experiment or {})},
              scanner=scanner or {}, tracer=tracer or {})
    validate_mdf(mdf, "system_matrix_mdf")
    return mdf


def read_transfer_function(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Read a measured receive-chain transfer function (MPIFiles.jl ``load_tf`` layout).

    The HDF5 file holds ``frequencies`` ``(K,)`` in Hz (strictly increasing),
    ``transferFunction`` ``(C, K)`` complex (compound ``{r, i}`` or native) and optionally
    ``inductionFactor`` ``(C,)``.

    Returns:
        ``(frequencies (K,), values (C, K) complex128, induction_factor (C,) | None)``.

    Raises:
        MDFError: missing file, not HDF5, a missing entry or a wrong shape (named).
    """
    where = str(path)
    try:
        f = h5py.File(path, "r")
    except FileNotFoundError:
        raise MDFError(f"{where}: transfer-function file not found") from None
    except OSError as exc:
        raise MDFError(f"{where}: not an HDF5 file ({exc})") from None
    with f:
        freqs = _tf_entry(f, "frequencies", where, np.float64)
        values = _tf_entry(f, "transferFunction", where, np.complex128)
        induction = (_tf_entry(f, "inductionFactor", where, np.float64)
                     if "inductionFactor" in f else None)
    values = values[None] if values.ndim == 1 else values
    if freqs.ndim != 1 or freqs.size < 2 or np.any(np.diff(freqs) <= 0):
        raise MDFError(f"{where}: 'frequencies' must be a strictly increasing 1-D array")
    if values.ndim != 2 or values.shape[1] != freqs.size:
        raise MDFError(f"{where}: 'transferFunction' has shape {values.shape}, expected "
                       f"(C, {freqs.size})")
    if induction is not None and induction.shape != (values.shape[0],):
        raise MDFError(f"{where}: 'inductionFactor' has shape {induction.shape}, expected "
                       f"({values.shape[0]},)")
    return freqs, values, induction


def _tf_entry(f: h5py.File, name: str, where: str, dtype) -> np.ndarray:
    if name not in f or not isinstance(f[name], h5py.Dataset):
        raise MDFError(f"{where}: transfer-function entry '{name}' is missing")
    ds = f[name]
    raw = ds[()]
    if ds.dtype.names is not None:
        if not {"r", "i"} <= set(ds.dtype.names):
            raise MDFError(f"{where}: '{name}' has an unsupported compound type {ds.dtype}")
        raw = raw["r"].astype(np.float64) + 1j * raw["i"].astype(np.float64)
    arr = np.asarray(raw)
    if arr.dtype.kind not in "iufc" or (np.dtype(dtype).kind == "f" and arr.dtype.kind == "c"):
        raise MDFError(f"{where}: '{name}' has type {arr.dtype}, expected {np.dtype(dtype)}")
    if not np.all(np.isfinite(arr)):
        raise MDFError(f"{where}: '{name}' contains NaN or infinite values")
    return arr.astype(dtype)


def interpolate_transfer_function(freqs: np.ndarray, values: np.ndarray,
                                  f_query) -> np.ndarray:
    """Complex transfer function at ``f_query``, linear in amplitude and unwrapped phase.

    Args:
        freqs: ``(K,)`` strictly increasing measured frequencies in Hz.
        values: ``(K,)`` or ``(C, K)`` complex values at ``freqs``.
        f_query: frequencies in Hz (any shape ``Q``).

    Returns:
        ``(Q...)`` or ``(C, Q...)`` complex128; exactly ``values`` at measured frequencies,
        0 outside ``[freqs[0], freqs[-1]]`` (no information: a receive chain that is not
        measured there is treated as blocking).
    """
    freqs = np.asarray(freqs, dtype=np.float64)
    vals = np.asarray(values, dtype=np.complex128)
    single = vals.ndim == 1
    vals = np.atleast_2d(vals)
    if freqs.ndim != 1 or vals.shape[-1] != freqs.size or np.any(np.diff(freqs) <= 0):
        raise ValueError("freqs must be strictly increasing (K,) and values (C, K) or (K,)")
    q = np.asarray(f_query, dtype=np.float64)
    inside = (q >= freqs[0]) & (q <= freqs[-1])
    out = np.empty((vals.shape[0],) + q.shape, dtype=np.complex128)
    for c, row in enumerate(vals):
        amp = np.interp(q, freqs, np.abs(row))
        phase = np.interp(q, freqs, np.unwrap(np.angle(row)))
        out[c] = np.where(inside, amp * np.exp(1j * phase), 0.0)
    exact = np.searchsorted(freqs, q)
    hit = inside & (freqs[np.minimum(exact, freqs.size - 1)] == q)
    out[:, hit] = vals[:, exact[hit]]
    return out[0] if single else out
