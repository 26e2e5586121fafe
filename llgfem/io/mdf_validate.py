"""Validation of :class:`~llgfem.io.mdf_types.MDF` objects (shapes, consistency, NaN).

Every check raises :class:`~llgfem.io.mdf_types.MDFError` naming the MDF entry, e.g.
``MDF entry 'measurement/data' has shape (9, 1, 1, 152): 152 samples V (numSamplingPoints),
expected 150``. The data axes are ``(N, J, C, X)`` with ``X = V`` samples (time domain) or
``K`` frequencies (``V/2 + 1`` or ``len(frequencySelection)``); with ``isFastFrameAxis`` the
frame axis ``N`` is stored last.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from llgfem.io.mdf_types import (
    MDF,
    REQUIRED,
    Acquisition,
    Calibration,
    DriveField,
    MDFError,
    Measurement,
    Receiver,
)

__all__ = ["data_axes", "validate_mdf"]

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


def _validate_drivefield(df: DriveField, where: str) -> None:
    p = "acquisition/drivefield/"
    if df.divider.ndim != 2:
        raise _fail(p + "divider", f"has shape {df.divider.shape}, expected (D, F)", where)
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
    for name, value in (("numChannels", c), ("numSamplingPoints", rx.num_sampling_points)):
        if value < 1:
            raise _fail(p + name, f"must be >= 1, got {value}", where)
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
    _validate_drivefield(acq.drivefield, where)
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
