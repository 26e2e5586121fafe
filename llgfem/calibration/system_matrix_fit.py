r"""Model-based calibration from an MDF *system-matrix* file (issue 14, item 1).

A calibration scan (MDF ``/calibration``: one foreground frame per delta-sample position
``x_p``, background frames flagged by ``measurement/isBackgroundFrame``) is the measured
system matrix :math:`S_{p,c,k}`.  The particle parameters are fitted so that the model system
matrix of the ``system_matrix`` job's LLG macrospin model (:mod:`llgfem.calibration.macrospin`,
the scanner and timing read from the file) matches it at the file's positions:

.. math::  F_{c,p,k}(a, g) = g_c \, M_{c,p,k}(a), \qquad
           M_{c,p,k}(a) = \sum_{n=0}^{V-1} \big(-p_c \cdot \partial_t m(x_p, t_n; a)\big)
                          e^{-2\pi i k n / V},

with ``a = (a1, a2[, k])`` the paper's LLG parameters in the units of
:mod:`llgfem.calibration.macrospin` (``gamma_ref`` = ``[physical] gamma``), ``p_c`` the receive
direction of channel ``c`` (``[[coil]] sensitivity``, default the ``c``-th axis) and ``g_c`` a
complex gain per receive channel (particle count, moment, coil sensitivity and a flat receive
chain; a frequency-dependent chain is divided out of the data with ``data.transfer_function``).

Data: :func:`llgfem.io.mdf.frequency_domain` of the foreground frames (background mean
subtracted, ``data.background``), the mean over the ``J`` periods, on the bins kept by
:func:`llgfem.calibration.data.select_bins` (band ``f_min``/``f_max``, drive band-stop, never
0 Hz or Nyquist) and an SNR threshold ``SNR_{c,k} = mean_p |S_{p,c,k}| / s_{c,k} >= snr_min``,
where ``s_{c,k}`` is the standard deviation of the background frames (>= 2 needed; else the
file's ``calibration/snr``), per channel: a channel's weak bins are left out of the fit
(mask ``(C, K)``) while its strong ones and the other channels' stay; bins no channel keeps are
dropped.  ``data.weights = "channel"`` weights channel ``c`` by
``1 / s_c`` (``s_c`` the background noise pooled over the kept bins; without background
frames: the inverse residual RMS of a first fit, then refitted).

Fit: Levenberg--Marquardt (:func:`llgfem.calibration.fit.least_squares_fit`) with the Jacobian
by central finite differences of the model in ``a`` (step ``FD_STEP`` times the parameter
scale; the discrete model is smooth in ``a``, so the error is :math:`O(h^2)`, tested) and exact
columns for the gains; :func:`llgfem.calibration.fisher_uncertainty` gives standard errors,
95 % intervals and the not-identified warning; the physical ``alpha_D = -a1/a2``,
``gamma = -gamma_ref/a2`` (and ``K_u = k M_S B_ref / 2``) by :func:`propagate`.  Positions are
split over the MPI ranks (one ``allgather`` per model evaluation), so every rank holds the same
numbers and takes the same decisions.

Notation: ``P`` positions, ``C`` receive channels, ``K`` kept bins, ``V`` samples per period,
``J`` periods per frame, ``E`` background frames, ``a`` particle parameters, ``g`` gains.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import h5py
import numpy as np
from mpi4py import MPI

from llgfem.calibration import fisher_uncertainty, propagate
from llgfem.calibration.data import select_bins
from llgfem.calibration.fit import least_squares_fit
from llgfem.calibration.macrospin import MacrospinModel
from llgfem.config import Config, ConfigError, write_resolved_config
from llgfem.errors import DataError, require_file
from llgfem.io.progress import get_logger
from llgfem.scanner.fields import ScannerConfig, ScannerFields
from llgfem.scanner.system_matrix import split_positions

__all__ = ["FD_STEP", "MeasuredSystemMatrix", "SystemMatrixModel", "fit_system_matrix",
           "initial_gains", "is_system_matrix_config", "is_system_matrix_file",
           "physical_uncertainty", "read_system_matrix", "run_system_matrix",
           "scanner_from_mdf", "setup_system_matrix", "system_matrix_with_background"]

FD_STEP = 1e-4  # central-difference step relative to the parameter scale
DEFAULT_SUBSTEPS = 1  # least ROS2 steps per sample interval without [time] n_t
XTOL = 1e-5  # scaled parameter step at which the fit stops (far below the standard errors)
TOL = 1e-8  # ... or the relative decrease of the misfit (with a scaled step below 1e-4)
FIT_METHODS = ("gauss_newton", "levenberg_marquardt")


# --------------------------------------------------------------------------- reading
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


def is_system_matrix_config(cfg: Config, comm=MPI.COMM_WORLD) -> bool:
    """Whether the ``[data]`` table names a system-matrix MDF file (``data.format`` not
    ``signals`` and :func:`is_system_matrix_file`); the dispatch test of ``calibrate``."""
    table = cfg.sections.get("data", {})
    if not isinstance(table, dict) or not isinstance(table.get("path"), str):
        return False
    if table.get("format", "auto") == "signals":
        return False
    return is_system_matrix_file(_resolve(cfg, table["path"]), comm)


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
    """The file's drive (one frequency per channel, sine waveform, channel ``d`` along axis
    ``d``), diagonal gradient, offset and samples per period as a :class:`ScannerConfig`.

    Raises:
        DataError: a drive or gradient the model cannot represent (named by MDF entry).
    """
    acq = mdf.acquisition
    df, rx = acq.drivefield, acq.receiver
    if df.divider.shape[1] != 1:
        raise DataError(f"{where}: acquisition/drivefield/divider has {df.divider.shape[1]} "
                        "frequencies per channel; one per channel is supported")
    waves = {str(w).lower() for w in np.ravel(df.waveform)}
    if waves != {"sine"}:
        raise DataError(f"{where}: acquisition/drivefield/waveform {sorted(waves)}: only sine "
                        "drives are modelled")
    if acq.gradient is None:
        raise DataError(f"{where}: acquisition/gradient is missing (the model needs the "
                        "selection field)")
    grad = acq.gradient[0, 0]
    if np.any(np.abs(grad - np.diag(np.diag(grad))) > 1e-12 * np.abs(grad).max()):
        raise DataError(f"{where}: acquisition/gradient is not diagonal")
    offset = np.zeros(3) if acq.offset_field is None else acq.offset_field[0, 0]
    cfg = ScannerConfig(base_frequency=df.base_frequency,
                        dividers=tuple(int(d) for d in df.divider[:, 0]),
                        strengths=tuple(float(a) for a in df.strength[0, :, 0]),
                        phases=tuple(float(p) for p in df.phase[0, :, 0]), waveform="sine",
                        gradient=tuple(float(g) for g in np.diag(grad)),
                        offset_field=tuple(float(o) for o in offset),
                        num_sampling_points=rx.num_sampling_points)
    try:
        cfg.validate(f"{where} (acquisition)")
    except ConfigError as e:
        raise DataError(str(e)) from None
    period = rx.num_sampling_points / rx.sampling_rate
    if not math.isclose(period, ScannerFields(cfg).cycle, rel_tol=1e-6):
        raise DataError(f"{where}: numSamplingPoints / (2 bandwidth) = {period:.6g} s is not "
                        f"the drive cycle lcm(divider)/baseFrequency = "
                        f"{ScannerFields(cfg).cycle:.6g} s")
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


# --------------------------------------------------------------------------- model
class SystemMatrixModel:
    """``F(x) = g_c M_{c,p,k}(a)`` flattened channel-major, ``x = (a, Re g_1, Im g_1, ...)``.

    Args:
        scanner: the file's scanner.
        positions: ``(P, 3)`` m.
        bins: kept rfft bins.
        sensitivities: ``(C, 3)`` receive directions.
        n_a: number of particle parameters (2 or 3).
        gamma_ref: reference gyromagnetic ratio (rad/(s T)).
        substeps: ROS2 steps per sample interval.
        easy_axis: uniaxial easy axis (for ``k``) or None.
        fd_step: central-difference step relative to the parameter scale.
        comm: positions are split over its ranks (one allgather per evaluation).
        mask: ``(C, K)`` bool, the fitted (channel, bin) pairs (default all); outputs are the
            entries of ``(C, P, K)`` arrays where it holds, channel-major.
    """

    def __init__(self, scanner: ScannerConfig, positions: np.ndarray, bins: np.ndarray,
                 sensitivities: np.ndarray, n_a: int, gamma_ref: float, substeps: int,
                 easy_axis=None, fd_step: float = FD_STEP, comm: MPI.Comm = MPI.COMM_SELF,
                 mask: np.ndarray | None = None):
        self.fields = ScannerFields(scanner)
        self.positions = np.asarray(positions, float)
        self.bins = np.asarray(bins, int)
        self.sens = np.asarray(sensitivities, float)
        self.n_a, self.fd_step, self.comm = int(n_a), float(fd_step), comm
        block = split_positions(len(self.positions), comm.size, comm.rank)
        self.macrospin = MacrospinModel(self.fields, self.positions[block], gamma_ref,
                                        substeps, easy_axis=easy_axis,
                                        grid_positions=self.positions)
        self.evaluations = 0
        c, p, k = len(self.sens), len(self.positions), len(self.bins)
        mask = np.ones((c, k), bool) if mask is None else np.asarray(mask, bool)
        self.select = np.broadcast_to(mask[:, None, :], (c, p, k))
        self.counts = self.select.reshape(c, -1).sum(axis=1)

    def flat(self, arr: np.ndarray) -> np.ndarray:
        """The fitted entries of a ``(C, P, K)`` array (channel-major)."""
        return arr[self.select]

    @property
    def channels(self) -> int:
        return int(self.sens.shape[0])

    def base_many(self, a_sets: np.ndarray) -> np.ndarray:
        """``M`` for parameter sets ``(S, n_a)``: ``(S, C, P, K)`` complex, on every rank."""
        rates = self.macrospin.rates(a_sets)  # (S, P_r, V, 3)
        u = -np.einsum("cj,spvj->scpv", self.sens, rates)
        local = np.fft.rfft(u, axis=-1)[..., self.bins]
        parts = self.comm.allgather(local)
        self.evaluations += len(a_sets)
        return np.concatenate(parts, axis=2)

    def base(self, a) -> np.ndarray:
        """``M(a)``, ``(C, P, K)``."""
        return self.base_many(np.asarray(a, float)[None, : self.n_a])[0]

    @staticmethod
    def _gains(x: np.ndarray, n_a: int) -> np.ndarray:
        return x[n_a::2] + 1j * x[n_a + 1::2]

    def __call__(self, x) -> np.ndarray:
        x = np.asarray(x, float)
        return self.flat(self._gains(x, self.n_a)[:, None, None] * self.base(x))

    def scales(self, a) -> np.ndarray:
        """Parameter scales ``max(|a_j|, 0.1 max|a|)`` of the FD steps."""
        a = np.abs(np.asarray(a, float)[: self.n_a])
        return np.maximum(a, 0.1 * (a.max() if a.max() > 0 else 1.0))

    def fd_columns(self, a, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``M(a)`` and the central differences ``(M(a + h_j e_j) - M(a - h_j e_j)) / 2h_j``
        (``(n_a, C, P, K)``), all in one batched model run."""
        a = np.asarray(a, float)[: self.n_a]
        sets = [a]
        for j, h in enumerate(steps):
            e = np.zeros(self.n_a)
            e[j] = h
            sets += [a + e, a - e]
        out = self.base_many(np.array(sets))
        cols = np.array([(out[1 + 2 * j] - out[2 + 2 * j]) / (2 * h)
                         for j, h in enumerate(steps)])
        return out[0], cols

    def jacobian(self, x) -> np.ndarray:
        """``dF/dx`` ``(C P K, n_a + 2C)``: FD columns for ``a``, exact ones for the gains."""
        x = np.asarray(x, float)
        m, cols = self.fd_columns(x, self.fd_step * self.scales(x))
        g = self._gains(x, self.n_a)[:, None, None]
        jac = [self.flat(g * c) for c in cols]
        for c in range(self.channels):
            e = np.zeros_like(m)
            e[c] = m[c]
            jac += [self.flat(e), 1j * self.flat(e)]
        return np.stack(jac, axis=1)


def initial_gains(m: np.ndarray, data: np.ndarray,
                  select: np.ndarray | None = None) -> np.ndarray:
    """Least-squares complex gains ``g_c = <M_c, D_c> / <M_c, M_c>`` as (Re, Im) pairs
    (``(C, P, K)`` arrays; over the ``select`` entries)."""
    if select is not None:
        m, data = np.where(select, m, 0.0), np.where(select, data, 0.0)
    g = []
    for c in range(m.shape[0]):
        den = np.vdot(m[c], m[c]).real
        gc = np.vdot(m[c], data[c]) / den if den > 0 else 1.0
        g += [gc.real, gc.imag]
    return np.array(g)


# --------------------------------------------------------------------------- fit
def _channel_weights(weights: str, noise, model, data, x0, fit_kw) -> tuple[np.ndarray, str]:
    """``1/s_c`` from the background noise, or the inverse residual RMS of a first fit."""
    c = model.channels
    if weights == "none":
        return np.ones(c), "none"
    if noise is not None and np.all(np.asarray(noise) > 0):
        return 1.0 / np.asarray(noise), "background"
    res = least_squares_fit(lambda x: (model(x) - data), model.jacobian, x0, **fit_kw)
    parts = np.split(np.abs(res.residual) ** 2, np.cumsum(model.counts)[:-1])
    rms = np.sqrt(np.array([p.mean() if p.size else 0.0 for p in parts]))
    rms = np.where(rms > 0, rms, max(float(rms.max()), 1e-300))
    return 1.0 / rms, "residual"


def _scales(model: SystemMatrixModel, x: np.ndarray) -> np.ndarray:
    """``max(|a_j|, 0.1 max|a|)`` for the particle parameters, ``|g_c|`` for both gain parts."""
    na = model.n_a
    out = np.abs(np.asarray(x, float)).copy()
    out[:na] = model.scales(x)
    mag = np.hypot(x[na::2], x[na + 1::2])
    out[na::2], out[na + 1::2] = mag, mag
    return np.maximum(out, 1e-300)


def fit_system_matrix(measured: MeasuredSystemMatrix, model: SystemMatrixModel, x0,
                      names: tuple[str, ...], *, max_iter: int = 30, rcond: float = 1e-6,
                      rel_width: float = 1.0, weights: str = "channel"):
    """Levenberg--Marquardt to the least-squares point, then the Fisher uncertainty.

    Returns:
        ``(summary, history, uncertainty)``; ``summary["uncertainty"]`` is
        :meth:`~llgfem.calibration.Uncertainty.to_json` of the scaled parameters (gains
        included), ``summary["a"]`` the particle parameters.
    """
    t0 = time.perf_counter()
    data = model.flat(np.transpose(measured.data, (1, 0, 2)))
    na = model.n_a
    hist = {"iteration": [], "residual_norm": [], **{n: [] for n in names[:na]}}

    logger = get_logger(comm=model.comm)

    def record(rec):
        logger.info("calibrate (system matrix): iteration %d, |r| = %.6g, a = %s",
                    rec["iteration"], rec["residual_norm"],
                    np.round(rec["x"][:na], 6).tolist())
        hist["iteration"].append(rec["iteration"])
        hist["residual_norm"].append(rec["residual_norm"])
        for i, n in enumerate(names[:na]):
            hist[n].append(rec["x"][i])

    floor = _scales(model, np.asarray(x0, float))
    kw = dict(max_iter=max_iter, floor=floor, xtol=XTOL, tol=TOL)
    w, source = _channel_weights(weights, measured.noise, model, data, x0, kw)
    rows = np.repeat(w, model.counts)
    res = least_squares_fit(lambda x: rows * (model(x) - data),
                            lambda x: rows[:, None] * model.jacobian(x), x0, callback=record,
                            initial_callback=True, **kw)
    seconds = model.comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
    unc = fisher_uncertainty(res.jacobian, res.residual, res.x, names, rcond=rcond,
                             rel_width=rel_width, scale=_scales(model, res.x))
    fitted = model(res.x)
    summary = {"method": "gauss_newton", "model": "llg_macrospin", "iterations": res.iterations,
               "reason": res.reason, "seconds": seconds,
               "model_evaluations": model.evaluations, "parameter_names": list(names),
               "a": res.x[:na].tolist(), "gains": res.x[na:].tolist(),
               "r_obs": float(np.linalg.norm(fitted - data) / np.linalg.norm(data)),
               "channel_weights": w.tolist(), "weights_from": source,
               "n_data": int(data.size), "mpi_size": model.comm.size}
    recs = unc.to_json()
    summary.update({key: [r[key] for r in recs["parameters"]]
                    for key in ("stderr", "ci95_low", "ci95_high", "identified")})
    summary["correlation"] = recs["correlation"]
    summary["uncertainty"] = recs
    return summary, hist, unc


def physical_uncertainty(unc, gamma_ref: float, na: int, b_ref: float, m_S: float):
    """``alpha_D = -a1/a2``, ``gamma = -gamma_ref/a2`` and, with ``k``, ``K_u = k M_S B_ref/2``
    (J/m^3), propagated by the delta method (gains do not enter)."""
    p, ku = unc.estimate.size, 0.5 * m_S * b_ref

    def func(x):
        out = [-x[0] / x[1], -gamma_ref / x[1]]
        return np.array(out + ([ku * x[2]] if na == 3 else []))

    def jac(x):
        g = np.zeros((na, p))
        g[0, :2] = [-1.0 / x[1], x[0] / x[1] ** 2]
        g[1, 1] = gamma_ref / x[1] ** 2
        if na == 3:
            g[2, 2] = ku
        return g

    names = ("alpha_D", "gamma", "K_u")[:na]
    return propagate(unc, func, jac, names)


def _coverage(truth: dict, records: list[dict]) -> dict:
    """For every fitted name with a ``_true_`` value in the file: inside its 95 % interval."""
    out = {}
    for r in records:
        if r["name"] in truth and r["ci95_low"] is not None and r["ci95_high"] is not None:
            out[r["name"]] = bool(r["ci95_low"] <= truth[r["name"]] <= r["ci95_high"])
    return out


# --------------------------------------------------------------------------- the job
def _resolve(cfg: Config, path: str) -> Path:
    p = Path(path)
    return Path(cfg.source).parent / p if not p.is_absolute() and cfg.source else p


def _sensitivities(cfg: Config, channels: int) -> tuple[np.ndarray, list[str]]:
    """``[[coil]]`` sensitivities (one per file channel, file order) or the axes."""
    from llgfem.builders import CoilConfig
    from llgfem.config import parse_section

    raw = cfg.sections.get("coil", [])
    raw = [raw] if isinstance(raw, dict) else list(raw)
    if not raw:
        if channels > 3:
            raise ConfigError(f"coil: the file has {channels} receive channels; give one "
                              "[[coil]] sensitivity per channel")
        return np.eye(3)[:channels], ["xyz"[c] for c in range(channels)]
    coils = [parse_section(CoilConfig, t, f"coil[{i}]") for i, t in enumerate(raw)]
    if len(coils) != channels:
        raise ConfigError(f"coil: the file has {channels} receive channels, the config "
                          f"{len(coils)} [[coil]] tables (one per channel, file order)")
    sens = np.array([c.sensitivity for c in coils], float)
    return sens / np.linalg.norm(sens, axis=1, keepdims=True), \
        [c.name or f"rx{i}" for i, c in enumerate(coils)]


def _substeps(cfg: Config, samples: int) -> int:
    """Least ROS2 steps per sample interval: ``[time] n_t`` steps per cycle, or the default
    (the grid is graded on top, :class:`~llgfem.calibration.macrospin.MacrospinModel`)."""
    if "time" not in cfg.sections or "n_t" not in cfg.sections["time"]:
        return DEFAULT_SUBSTEPS
    return max(1, round(cfg.time.n_t / samples))


def setup_system_matrix(cfg: Config, cal, comm: MPI.Comm = MPI.COMM_WORLD):
    """Read the file and build the model and the start ``x0`` (ConfigError/DataError on
    every rank)."""
    from llgfem.builders import DataConfig, section
    from llgfem.physics import PhysicalParameters

    if cal.method not in FIT_METHODS:
        raise ConfigError(f"calibrate.method: a system-matrix file is fitted to the "
                          f"least-squares point by {FIT_METHODS[0]!r} (got {cal.method!r})")
    dcfg = section(cfg, "data", DataConfig)
    if dcfg.field != "file" or dcfg.time != "file":
        raise ConfigError("data.field: a system-matrix file always supplies its scanner and "
                          "timing (data.field = data.time = 'file')")
    if "field" in cfg.sections:
        raise ConfigError("field: the scanner comes from the system-matrix file; remove [field]")
    if dcfg.gain != "complex":
        raise ConfigError(f"data.gain: a system-matrix file is fitted with a complex gain per "
                          f"receive channel (got {dcfg.gain!r}; 'real'/'none' are not "
                          "implemented for system matrices)")
    phys = section(cfg, "physical", PhysicalParameters)
    measured = read_system_matrix(dcfg, _resolve(cfg, dcfg.path), comm)
    sens, coil_names = _sensitivities(cfg, measured.channels)
    names = cal.parameter_names()
    substeps = _substeps(cfg, measured.scanner.num_sampling_points or 1)
    model = SystemMatrixModel(measured.scanner, measured.positions, measured.bins, sens,
                              len(names), phys.gamma, substeps,
                              easy_axis=phys.easy_axis if "k" in names else None, comm=comm,
                              mask=measured.mask)
    a0 = np.array(cal.a0, float)
    data = np.transpose(measured.data, (1, 0, 2))
    x0 = np.concatenate([a0, initial_gains(model.base(a0), data, model.select)])
    gain_names = [f"{p}_{n}" for n in coil_names for p in ("gain_re", "gain_im")]
    return measured, model, x0, (*names, *gain_names), phys, dcfg


def run_system_matrix(cfg: Config, cal, report) -> dict:
    """The ``calibrate`` job on a system-matrix MDF file (``report``: prints/warns the
    uncertainty tables, :func:`llgfem.jobs.calibrate.report_uncertainty`)."""
    from llgfem.io.results import write_json

    comm = MPI.COMM_WORLD
    measured, model, x0, names, phys, dcfg = setup_system_matrix(cfg, cal, comm)
    summary, hist, unc = fit_system_matrix(measured, model, x0, names, max_iter=cal.max_iter,
                                      rcond=cal.rcond, rel_width=cal.rel_width,
                                      weights=dcfg.weights)
    na = model.n_a
    a = summary["a"]
    summary.update({"job": "calibrate", "a0": list(cal.a0), "a1": a[0], "a2": a[1],
                    **({"k": a[2]} if na == 3 else {}), "data": measured.info,
                    "model_options": {"substeps": model.macrospin.substeps,
                                      "warmup_samples": model.macrospin.warmup,
                                      "gamma_ref": phys.gamma, "b_ref": model.macrospin.b_ref,
                                      "scheme": "ROS2 (fixed steps)"},
                    "scanner": dataclasses.asdict(measured.scanner)})
    if a[1] < 0:
        summary["physical"] = physical_uncertainty(unc, phys.gamma, na, model.macrospin.b_ref,
                                                   phys.m_S).to_json()
    if measured.truth:
        summary["true"] = measured.truth
        recs = summary["uncertainty"]["parameters"] + summary.get(
            "physical", {}).get("parameters", [])
        summary["covered"] = _coverage(measured.truth, recs)
    out = cfg.run_dir
    if comm.rank == 0:
        write_resolved_config(cfg, out, {"calibrate": cal, "data": {
            **dataclasses.asdict(dcfg), "resolved": {"kind": "system_matrix",
                                                     "scanner": "file", "time": "file"}}})
    write_json(out / "history.json", hist, comm)
    write_json(out / "summary.json", summary, comm)
    report(summary, comm)
    logger = get_logger(comm=comm)
    if measured.truth:
        logger.info("calibrate: true values recorded in the file: %s; inside the 95 %% "
                    "interval: %s", measured.truth, summary["covered"])
    logger.info("calibrate (system matrix, %d positions): a = %s, %d its, %.2f s, r_obs %.3g "
                "-> %s", len(measured.positions), np.round(a, 6).tolist(),
                summary["iterations"], summary["seconds"], summary["r_obs"], out)
    return summary
