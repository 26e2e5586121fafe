r"""Measured data for ``calibrate``: MDF v2 spectra or llgfem signals, frequency selection.

MDF measurements (:mod:`llgfem.io.mdf`) are read on rank 0 and broadcast.  Each kept
foreground frame ``n`` (after background handling, :func:`llgfem.io.mdf.time_domain`) is one
window of ``J`` periods, ``J V`` samples at ``t_v = v / (2B)``; its spectrum is the
unnormalised rfft over the window

.. math::  \hat u_{n,c,k} = \sum_{v=0}^{JV-1} u_{n,c,v} e^{-2\pi i k v / (JV)},
           \qquad f_k = k / (J T_c),

and the data are the frame mean :math:`\bar u_{c,k}`.  With :math:`N' \ge 2` frames the
per-bin noise is the standard error of the mean :math:`s_{c,k} = \mathrm{std}_n(\hat u_{n,c,k})
/ \sqrt{N'}` and :math:`\mathrm{SNR}_{c,k} = |\bar u_{c,k}| / s_{c,k}`.

Selection (the bins kept for every channel): ``f_min <= f_k <= f_max`` (``f_max = 0``: the
Nyquist frequency), ``1 <= k < JV/2`` (0 Hz is never used: receive chains are AC coupled and
the background/offset lands there; the Nyquist bin of an even window has no sampled imaginary
part), ``min_c SNR_{c,k} >= snr_min`` and, with ``stop_drive``,
``|f_k - f_d| > band_stop`` for every drive frequency ``f_d`` (the direct feed-through).

The FFP drive of the file as a ``[field]`` table (SI): one drive channel, sine waveform,
``B(x, t) = G (-x/2, -y/2, z) + A sin(2 pi f t + phi) e_d + B_off`` with ``G`` read from the
``acquisition/gradient`` diagonal ``(-G/2, -G/2, G)`` (another gradient is refused).

Notation: ``N'`` kept frames, ``J`` periods per frame, ``C`` receive channels, ``V`` samples
per period, ``T_c`` the cycle, ``B`` the receiver bandwidth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from llgfem.config import ConfigError
from llgfem.errors import DataError, require_file

__all__ = ["MeasuredSpectra", "MeasuredSignals", "detect_format", "field_from_mdf",
           "load_measurement", "read_mdf_spectra", "read_signals", "select_bins"]


@dataclass
class MeasuredSpectra:
    """Frame-averaged spectra of an MDF measurement on the selected bins.

    Attributes:
        data: ``(C, K)`` complex frame means on the selected bins.
        bins: ``(K,)`` rfft indices over the window.
        freqs: ``(K,)`` Hz.
        snr: ``(C, K)`` SNR of the mean (NaN with a single frame).
        n_window: samples per window ``J V``.
        window: window length ``J T_c`` in s.
        drive_frequencies: Hz.
        field: the file's drive as a ``[field]`` table (SI), or None if not an FFP scan.
        info: description for ``summary.json`` (frames, selection counts, sources).
    """

    data: np.ndarray
    bins: np.ndarray
    freqs: np.ndarray
    snr: np.ndarray
    n_window: int
    window: float
    drive_frequencies: np.ndarray
    field: dict | None
    info: dict = field(default_factory=dict)

    @property
    def channels(self) -> int:
        return int(self.data.shape[0])


@dataclass
class MeasuredSignals:
    """An llgfem signals file: ``data (K, L, N)`` at ``times (N,)`` (s, or model units)."""

    data: np.ndarray
    times: np.ndarray
    info: dict = field(default_factory=dict)


def detect_format(path: Path) -> str:
    """``"mdf"`` for an HDF5 file with a ``/version`` entry, ``"signals"`` otherwise."""
    try:
        with h5py.File(path, "r") as f:
            return "mdf" if "version" in f else "signals"
    except OSError:
        raise DataError(f"data.path: {path} is not an HDF5 file") from None


def field_from_mdf(mdf) -> dict | None:
    """The FFP drive of the file as a ``[field]`` table in SI, or None (no single sine drive
    with a ``(-G/2, -G/2, G)`` gradient)."""
    df, acq = mdf.acquisition.drivefield, mdf.acquisition
    if df.divider.size != 1 or str(df.waveform.ravel()[0]).lower() != "sine":
        return None
    grad = np.zeros((3, 3)) if acq.gradient is None else acq.gradient[0, 0]
    g = float(grad[2, 2])
    ffp = np.diag([-g / 2, -g / 2, g])
    if not np.allclose(grad, ffp, rtol=1e-9, atol=1e-12 * max(abs(g), 1.0)):
        return None
    offset = (np.zeros(3) if acq.offset_field is None else acq.offset_field[0, 0])
    return {"kind": "ffp", "amplitude": float(df.strength[0, 0, 0]),
            "frequency": float(df.frequencies[0, 0]), "phase": float(df.phase[0, 0, 0]),
            "direction": [1.0, 0.0, 0.0], "gradient": g,
            "offset": [float(v) for v in offset]}


def _frame_spectra(mdf, frames, background: str, correct_tf: bool) -> np.ndarray:
    """``(N', C, JV/2+1)`` window spectra of the kept frames."""
    from llgfem.io.mdf import time_domain

    u = time_domain(mdf, frames=list(frames) or None, background=background)
    if u.shape[0] == 0:
        raise DataError("data.frames: no foreground frame left (all are background frames)")
    n, j, c, v = u.shape
    window = np.moveaxis(u, 2, 1).reshape(n, c, j * v)  # periods concatenated
    spec = np.fft.rfft(window, axis=-1)
    if correct_tf:
        spec = _correct_transfer_function(mdf, spec, j)
    return spec


def _correct_transfer_function(mdf, spec: np.ndarray, periods: int) -> np.ndarray:
    rx = mdf.acquisition.receiver
    if mdf.measurement.is_transfer_function_corrected:
        return spec
    tf = rx.transfer_function
    if tf is None or tf.shape[1] != rx.num_sampling_points // 2 + 1 or periods != 1:
        raise DataError("data.transfer_function: the file has no receiver/transferFunction on "
                        "the full rfft axis of one period (acquisition/receiver/transferFunction)")
    safe = np.where(tf == 0, 1.0, tf)
    return np.where(tf == 0, 0.0, spec / safe)


def select_bins(freqs: np.ndarray, spectra: np.ndarray, *, f_min: float, f_max: float,
                snr_min: float, drive: np.ndarray, stop_drive: bool, band_stop: float,
                nyquist: bool = False) -> tuple[np.ndarray, np.ndarray, dict]:
    """Boolean mask of the kept bins, the SNR ``(C, K_all)`` and the counts of each rule.

    Args:
        freqs: ``(K_all,)`` Hz.
        spectra: ``(N', C, K_all)`` frame spectra.
        f_min, f_max, snr_min, stop_drive, band_stop: the rules (module docstring).
        drive: drive frequencies (Hz).
        nyquist: the last bin is the Nyquist bin (even window length): never used (its
            imaginary part is not sampled).
    """
    n = spectra.shape[0]
    mean = spectra.mean(axis=0)
    if n >= 2:
        err = spectra.std(axis=0, ddof=1) / np.sqrt(n)
        with np.errstate(divide="ignore", invalid="ignore"):
            snr = np.where(err > 0, np.abs(mean) / err, np.inf)
    else:
        snr = np.full(mean.shape, np.nan)
    top = freqs[-1] if f_max == 0 else f_max
    index = np.arange(freqs.size)
    band = (freqs >= f_min) & (freqs <= top) & (index >= 1)
    if nyquist:
        band &= index < freqs.size - 1
    keep = band.copy()
    stopped = np.zeros_like(keep)
    if stop_drive:
        for fd in np.ravel(drive):
            stopped |= np.abs(freqs - fd) <= max(band_stop, 1e-9 * fd)
    keep &= ~stopped
    low_snr = np.zeros_like(keep)
    if snr_min > 0:
        if n < 2:
            raise DataError("data.snr_min: an SNR needs at least 2 foreground frames; the file "
                            "(after frames/background) has 1 (set snr_min = 0)")
        low_snr = np.min(snr, axis=0) < snr_min
        keep &= ~low_snr
    counts = {"bins_total": int(freqs.size), "bins_in_band": int(band.sum()),
              "bins_drive_stopped": int((band & stopped).sum()),
              "bins_low_snr": int((band & ~stopped & low_snr).sum()),
              "bins_kept": int(keep.sum())}
    if not keep.any():
        raise DataError(f"data: no frequency bin left after the selection {counts} "
                        "(widen f_min/f_max, lower snr_min or band_stop)")
    return keep, snr, counts


def read_mdf_spectra(path: Path, dcfg, comm=None) -> MeasuredSpectra:
    """Read an MDF measurement and select its bins (``dcfg``: :class:`DataConfig`)."""
    from llgfem.io.mdf import read_mdf

    mdf = read_mdf(path, comm=comm)
    rx = mdf.acquisition.receiver
    j = mdf.acquisition.num_periods_per_frame
    n_window = j * rx.num_sampling_points
    window = n_window / rx.sampling_rate
    frames = _check_frames(dcfg.frames, mdf.measurement)
    spec = _frame_spectra(mdf, frames, dcfg.background, dcfg.transfer_function)
    freqs = np.arange(spec.shape[-1]) / window
    drive = mdf.acquisition.drivefield.frequencies.ravel()
    keep, snr, counts = select_bins(freqs, spec, f_min=dcfg.f_min, f_max=dcfg.f_max,
                                    snr_min=dcfg.snr_min, drive=drive,
                                    stop_drive=dcfg.stop_drive, band_stop=dcfg.band_stop,
                                    nyquist=n_window % 2 == 0)
    meas = mdf.measurement
    info = {"format": "mdf", "path": str(path), "frames_used": int(spec.shape[0]),
            "background_frames": int(meas.is_background_frame.sum()),
            "background": dcfg.background, "periods_per_frame": j,
            "samples_per_period": rx.num_sampling_points, "channels": rx.num_channels,
            "window_s": window, "drive_frequencies_hz": drive.tolist(), **counts,
            "f_kept_hz": [float(freqs[keep].min()), float(freqs[keep].max())],
            "transfer_function_corrected": bool(dcfg.transfer_function
                                                or meas.is_transfer_function_corrected)}
    return MeasuredSpectra(data=spec.mean(axis=0)[:, keep], bins=np.flatnonzero(keep),
                           freqs=freqs[keep], snr=snr[:, keep], n_window=n_window,
                           window=window, drive_frequencies=drive,
                           field=field_from_mdf(mdf), info=info)


def _check_frames(frames, meas) -> tuple[int, ...]:
    n = meas.num_frames if meas is not None else 0
    bad = [f for f in frames if f >= n]
    if bad:
        raise DataError(f"data.frames: {bad} out of range (the file has {n} frames)")
    return tuple(frames)


def read_signals(path: Path, comm) -> MeasuredSignals:
    """An llgfem signals file (:func:`llgfem.io.signals.load_signals`)."""
    from llgfem.io.signals import load_signals

    sig = load_signals(path, comm)
    info = {"format": "signals", "path": str(path), "shape": list(sig.shape),
            "units": sig.units, "time_sampling": sig.time_sampling}
    return MeasuredSignals(data=np.asarray(sig.data, dtype=float),
                           times=np.asarray(sig.times, dtype=float), info=info)


def load_measurement(dcfg, source: str, comm) -> MeasuredSpectra | MeasuredSignals:
    """Resolve ``data.path`` (relative to the config file ``source``) and read it."""
    path = Path(dcfg.path)
    if not path.is_absolute() and source:
        path = Path(source).parent / path
    if comm is None or comm.rank == 0:
        err = None
        try:
            require_file(path, "data.path")
            kind = dcfg.format if dcfg.format != "auto" else detect_format(path)
        except ConfigError as e:
            err, kind = str(e), None
    else:
        err, kind = None, None
    if comm is not None:
        err, kind = comm.bcast((err, kind), root=0)
    if err is not None:
        raise DataError(err)
    if kind == "mdf":
        return read_mdf_spectra(path, dcfg, comm)
    return read_signals(path, comm)
