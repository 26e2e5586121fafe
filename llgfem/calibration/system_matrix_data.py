r"""Reading MDF *system-matrix* (calibration-scan) files for model-based calibration.

A calibration scan (MDF ``/calibration``: one foreground frame per delta-sample position
``x_p``, background frames flagged by ``measurement/isBackgroundFrame``) gives the measured
system matrix :math:`S_{p,c,k}` (:func:`llgfem.io.mdf.frequency_domain` of the foreground
frames, the mean of the background frames subtracted, averaged over the ``J`` periods) on the
bins kept by :func:`llgfem.calibration.data.select_bins` (band, drive band-stop, never 0 Hz
or Nyquist) and, per channel, by the SNR

.. math::  \mathrm{SNR}_{c,k} = \operatorname{mean}_p |S_{p,c,k}| / s_{c,k},

with ``s_{c,k}`` the standard deviation of the background frames (>= 2; else the file's
``calibration/snr``): a (channel, bin) pair is kept when its SNR reaches ``data.snr_min``.
The scanner (drive, gradient, offset, sampling) comes from the file
(:func:`scanner_from_mdf`); ``/experiment/_true_*`` entries of simulated files are returned.
Used by :mod:`llgfem.calibration.system_matrix_fit`.

Notation: ``P`` positions, ``C`` receive channels, ``K`` bins, ``V`` samples per period,
``J`` periods per frame, ``E`` background frames.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import h5py
import numpy as np

from llgfem.calibration.data import select_bins
from llgfem.config import ConfigError
from llgfem.errors import DataError, require_file
from llgfem.scanner.fields import ScannerConfig, ScannerFields

__all__ = ["MeasuredSystemMatrix", "is_system_matrix_file", "read_system_matrix",
           "scanner_from_mdf", "system_matrix_with_background"]


@dataclasses.dataclass
class MeasuredSystemMatrix:
    """A system-matrix file on the kept bins.

    Attributes:
        data: ``(P, C, K)`` complex spectra (background subtracted, period mean).
        positions: ``(P, 3)`` m.
        bins: ``(K,)`` rfft indices over one period of ``V`` samples.
        freqs: ``(K,)`` Hz.
        scanner: the file's drive, gradient, offset and sampling as a :class:`ScannerConfig`.
        noise: ``(C,)`` background noise per complex bin of one frame (pooled over the kept
            bins), or None (fewer than 2 background frames).
        snr: ``(C, K)`` (NaN when unknown).
        mask: ``(C, K)`` bool, the (channel, bin) pairs fitted (SNR rule per channel).
        truth: ``_true_*`` entries of the file's ``/experiment`` group (simulated files).
        info: description for ``summary.json``.
    """

    data: np.ndarray
    positions: np.ndarray
    bins: np.ndarray
    freqs: np.ndarray
    scanner: ScannerConfig
    noise: np.ndarray | None
    snr: np.ndarray
    mask: np.ndarray
    truth: dict
    info: dict

    @property
    def channels(self) -> int:
        return int(self.data.shape[1])


def is_system_matrix_file(path: str | Path, comm=None) -> bool:
    """Whether ``path`` is an HDF5/MDF file with a ``calibration`` group and measurement data
    (decided on rank 0, broadcast); False for a missing or non-HDF5 file (the reader reports
    those)."""
    result = False
    if comm is None or comm.rank == 0:
        try:
            with h5py.File(path, "r") as f:
                result = ("version" in f and "calibration" in f and isinstance(
                    f["calibration"], h5py.Group) and "measurement/data" in f)
        except (OSError, ValueError):
            result = False
    return bool(comm.bcast(result, root=0)) if comm is not None else result


def scanner_from_mdf(mdf, where: str = "data.path") -> ScannerConfig:
    """The file's drive as a :class:`ScannerConfig` with the receiver's samples per period.

    The drive is read by the measurement reader's
    :func:`llgfem.calibration.data.scanner_from_mdf` (one sine frequency per channel, channel
    ``d`` along axis ``d``, the cycle matching the receiver); the macrospin model here further
    needs a diagonal ``acquisition/gradient``.

    Raises:
        DataError: a drive or gradient the model cannot represent (named by MDF entry).
    """
    from llgfem.calibration.data import scanner_config
    from llgfem.calibration.data import scanner_from_mdf as drive_table

    if mdf.acquisition.gradient is None:
        raise DataError(f"{where}: acquisition/gradient is missing (the model needs the "
                        "selection field)")
    table, why = drive_table(mdf)
    if table is None:
        raise DataError(f"{where}: {why}")
    grad = np.asarray(table["gradient_matrix"])
    if np.any(np.abs(grad - np.diag(np.diag(grad))) > 1e-12 * np.abs(grad).max()):
        raise DataError(f"{where}: acquisition/gradient is not diagonal")
    try:
        cfg = dataclasses.replace(
            scanner_config(table),
            num_sampling_points=mdf.acquisition.receiver.num_sampling_points)
        cfg.validate(f"{where} (acquisition)")
    except ConfigError as e:
        raise DataError(str(e)) from None
    return cfg


def _truth(mdf) -> dict:
    out = {}
    for key, value in mdf.experiment.items():
        if key.startswith("_true_"):
            try:
                out[key[6:]] = float(np.asarray(value).ravel()[0])
            except (TypeError, ValueError):
                continue
    return out


def _spectra(mdf, dcfg, where: str):
    """Foreground spectra ``(P, C, K_all)``, positions, background spectra ``(E, C, K_all)``."""
    from llgfem.io.mdf import calibration_positions, frequency_domain

    meas = mdf.measurement
    bg = np.flatnonzero(meas.is_background_frame)
    fg = np.flatnonzero(~meas.is_background_frame)
    if fg.size == 0:
        raise DataError(f"{where}: the system matrix has no foreground frame")
    positions = calibration_positions(mdf.calibration, fg.size)
    keep = np.arange(fg.size)
    if dcfg.frames:
        bad = [f for f in dcfg.frames if f >= meas.num_frames]
        if bad:
            raise DataError(f"data.frames: {bad} out of range (the file has "
                            f"{meas.num_frames} frames)")
        keep = np.flatnonzero(np.isin(fg, dcfg.frames))
        if keep.size == 0:
            raise DataError("data.frames: none of the listed frames is a foreground frame")
    tf = dcfg.transfer_function
    S = frequency_domain(mdf, background=dcfg.background,
                         correct_transfer_function=tf).mean(axis=1)
    if dcfg.background == "keep":
        S = S[fg]
    back = (frequency_domain(mdf, frames=bg, background="keep",
                             correct_transfer_function=tf).mean(axis=1)
            if bg.size else np.zeros((0,) + S.shape[1:], complex))
    return S[keep], positions[keep], back


def _noise_and_snr(mdf, S: np.ndarray, back: np.ndarray):
    """Per-bin background std ``(C, K_all)`` (or None) and the SNR ``(C, K_all)``."""
    mean = np.abs(S).mean(axis=0)
    if back.shape[0] >= 2:
        std = back.std(axis=0, ddof=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return std, np.where(std > 0, mean / std, np.inf)
    snr = mdf.calibration.snr
    if snr is not None and snr.shape[-2:] == mean.shape:
        return None, np.asarray(snr, float).mean(axis=0)
    return None, np.full(mean.shape, np.nan)


def _select(mdf, dcfg, S, std, snr, freqs, bins, scanner: ScannerFields):
    """The kept bins, the (channel, bin) mask ``(C, K_all)`` and the selection counts."""
    v = scanner.num_samples
    keep, _, counts = select_bins(freqs, S, f_min=dcfg.f_min, f_max=dcfg.f_max, snr_min=0.0,
                                  drive=scanner.frequencies, stop_drive=dcfg.stop_drive,
                                  band_stop=dcfg.band_stop,
                                  nyquist=v % 2 == 0 and bins[-1] == v // 2)
    if dcfg.snr_min > 0:
        if np.all(np.isnan(snr)):
            raise DataError("data.snr_min: the file has fewer than 2 background frames and no "
                            "calibration/snr, so the SNR is unknown (set snr_min = 0)")
        mask = keep[None, :] & ~(snr < dcfg.snr_min)
        counts["pairs_low_snr"] = int((keep[None, :] & ~mask).sum())
        counts["bins_low_snr"] = int((keep & ~mask.any(axis=0)).sum())
        keep &= mask.any(axis=0)
        counts["bins_kept"] = int(keep.sum())
        if not keep.any():
            raise DataError(f"data.snr_min: no bin has SNR >= {dcfg.snr_min} ({counts})")
    else:
        mask = np.broadcast_to(keep, snr.shape).copy()
    counts["pairs_kept"] = int(mask[:, keep].sum())
    return keep, mask, counts


def read_system_matrix(dcfg, path: str | Path, comm=None) -> MeasuredSystemMatrix:
    """Read a system-matrix MDF file and select its bins (``dcfg``: ``DataConfig``).

    Raises:
        DataError: a missing/invalid file (an :class:`~llgfem.io.mdf.MDFError` names the
            entry), no calibration group, or a selection that keeps nothing.
    """
    from llgfem.io.mdf import MDFError, frequencies, read_mdf

    path = require_file(path, "data.path")
    try:
        mdf = read_mdf(path, comm=comm)
    except MDFError as e:  # the same on every rank (rank 0 reads and broadcasts)
        raise DataError(f"data.path: {e}") from None
    where = f"data.path ({path})"
    if mdf.calibration is None or mdf.measurement is None:
        raise DataError(f"{where}: not a system-matrix file (no calibration or measurement "
                        "group)")
    scanner_cfg = scanner_from_mdf(mdf, where)
    scanner = ScannerFields(scanner_cfg)
    S, positions, back = _spectra(mdf, dcfg, where)
    freqs = frequencies(mdf)
    bins = np.rint(freqs * scanner.cycle).astype(int)
    std, snr = _noise_and_snr(mdf, S, back)
    keep, mask, counts = _select(mdf, dcfg, S, std, snr, freqs, bins, scanner)
    noise = None if std is None else np.sqrt(np.mean(std[:, keep] ** 2, axis=1))
    meas = mdf.measurement
    info = {"format": "mdf_system_matrix", "path": str(path), "positions": int(len(S)),
            "background_frames": int(meas.is_background_frame.sum()),
            "background": dcfg.background, "periods_per_frame":
                mdf.acquisition.num_periods_per_frame,
            "samples_per_period": scanner.num_samples, "channels": int(S.shape[1]),
            "drive_frequencies_hz": scanner.frequencies.tolist(), **counts,
            "f_kept_hz": [float(freqs[keep].min()), float(freqs[keep].max())],
            "noise_per_bin": None if noise is None else noise.tolist(),
            "transfer_function_corrected": bool(dcfg.transfer_function
                                                or meas.is_transfer_function_corrected)}
    return MeasuredSystemMatrix(data=S[:, :, keep], positions=positions, bins=bins[keep],
                                freqs=freqs[keep], scanner=scanner_cfg, noise=noise,
                                snr=snr[:, keep], mask=mask[:, keep], truth=_truth(mdf),
                                info=info)


def system_matrix_with_background(frames: np.ndarray, background: np.ndarray, **kwargs):
    """An MDF calibration scan whose stored frames include background frames.

    Args:
        frames: ``(N, C, K)`` complex spectra of all frames in stored order.
        background: ``(N,)`` bool, ``isBackgroundFrame``; the foreground frames are the
            positions (in order).
        **kwargs: the keywords of :func:`llgfem.io.mdf.system_matrix_mdf` (``positions``
            for the foreground frames only).

    Returns:
        The validated :class:`~llgfem.io.mdf.MDF` (frame axis first).
    """
    from llgfem.io.mdf import Measurement, validate_mdf

    background = np.asarray(background, bool)
    mdf = system_matrix_mdf_frames(frames[~background], **kwargs)
    mdf.measurement = Measurement(data=np.asarray(frames)[:, None], is_fourier_transformed=True,
                                  is_background_frame=background)
    mdf.acquisition.num_frames = len(frames)
    validate_mdf(mdf, "system_matrix_with_background")
    return mdf


def system_matrix_mdf_frames(S: np.ndarray, **kwargs):
    """:func:`llgfem.io.mdf.system_matrix_mdf` with the frame axis first."""
    from llgfem.io.mdf import system_matrix_mdf

    return system_matrix_mdf(S, fast_frame_axis=False, **kwargs)
