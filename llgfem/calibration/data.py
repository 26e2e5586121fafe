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
``acquisition/gradient`` diagonal ``(-G/2, -G/2, G)``.  Any other sine drive (1-3 channels,
dividers ``D_d``, phases, offset, a diagonal or full gradient matrix ``G``) is read as a
scanner table (:class:`llgfem.scanner.fields.ScannerConfig` + the full ``G``):

.. math::  B(x, t) = G x + \sum_d A_d e_d \sin(2\pi f_B t / D_d + \phi_d) + B_{off},

drive channel ``d`` along ``e_d`` (MDF stores no direction: channels 1, 2, 3 are x, y, z, as
in :class:`~llgfem.scanner.fields.ScannerConfig`); the cycle is ``T_c = lcm(D) / f_B`` and it
must equal the receiver's period ``V / (2B)`` (checked).  Not read (refused when the drive is
taken from the file): several frequencies per channel, non-sine waveforms, patches, drive
parameters that change between the periods of a frame.

Correction flags (``measurement/is*``): background-corrected data are not background-subtracted
again and transfer-function-corrected data not divided again (:mod:`llgfem.io.mdf_signals`);
Fourier-transformed data keep only their stored frequency selection (bins ``J k_sel``); with a
frame permutation ``data.frames`` lists frames in acquisition order (stored frame ``i`` was
acquired as ``framePermutation[i]``); spectral-leakage-corrected and sparsity-transformed data
are refused (a :class:`~llgfem.errors.DataError` naming the flag).

Notation: ``N'`` kept frames, ``J`` periods per frame, ``C`` receive channels, ``V`` samples
per period, ``T_c`` the cycle, ``B`` the receiver bandwidth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from llgfem.config import ConfigError
from llgfem.errors import DataError, require_file

__all__ = ["MeasuredSpectra", "MeasuredSignals", "detect_format", "field_from_mdf",
           "load_measurement", "mesh_extent", "read_mdf_spectra", "read_signals",
           "scanner_config", "scanner_field_spec", "scanner_from_mdf", "scanner_reference",
           "select_bins"]


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
        scanner: the file's drive as a scanner table (:func:`scanner_from_mdf`), or None.
        scanner_problem: why the drive could not be read (when ``scanner`` is None).
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
    scanner: dict | None = None
    scanner_problem: str = ""

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


def _same_over_periods(a: np.ndarray, name: str) -> np.ndarray:
    """The first period of ``a`` (axis 0), if every period equals it."""
    if not np.allclose(a, a[:1], rtol=1e-12, atol=0.0):
        raise ValueError(f"{name} changes between the periods of a frame")
    return a[0]


def scanner_from_mdf(mdf) -> tuple[dict | None, str]:
    """The file's drive as a scanner table (SI, TOML-able) or ``(None, reason)``.

    The table holds the :class:`~llgfem.scanner.fields.ScannerConfig` keys
    (``base_frequency``, ``dividers``, ``strengths``, ``phases``, ``waveform``, ``gradient``
    = the diagonal, ``offset_field``) plus ``gradient_matrix`` (3 x 3, T/m: the full
    ``acquisition/gradient``) and ``cycle_s``.
    """
    acq, df, rx = mdf.acquisition, mdf.acquisition.drivefield, mdf.acquisition.receiver
    p = "acquisition/drivefield/"
    try:
        if df.divider.ndim != 2 or df.divider.shape[1] != 1:
            raise ValueError(f"{p}divider: {df.divider.shape[1]} frequencies per drive channel "
                             "(one is read)")
        if not 1 <= df.divider.shape[0] <= 3:
            raise ValueError(f"{p}divider: {df.divider.shape[0]} drive channels (1 to 3 read)")
        waves = {str(w).lower() for w in np.ravel(df.waveform)}
        if waves != {"sine"}:
            raise ValueError(f"{p}waveform: {sorted(waves)} (only sine is read)")
        strength = _same_over_periods(df.strength, p + "strength")[:, 0]
        phase = _same_over_periods(df.phase, p + "phase")[:, 0]
        grad = np.zeros((3, 3)) if acq.gradient is None else acq.gradient
        if grad.ndim == 4:
            if grad.shape[1] != 1:
                raise ValueError(f"acquisition/gradient: {grad.shape[1]} patches (one is read)")
            grad = _same_over_periods(grad[:, 0], "acquisition/gradient")
        off = np.zeros(3) if acq.offset_field is None else acq.offset_field
        if off.ndim == 3:
            if off.shape[1] != 1:
                raise ValueError(f"acquisition/offsetField: {off.shape[1]} patches")
            off = _same_over_periods(off[:, 0], "acquisition/offsetField")
        if grad.shape != (3, 3) or np.shape(off) != (3,):
            raise ValueError(f"acquisition/gradient {grad.shape} / offsetField "
                             f"{np.shape(off)}: expected 3 x 3 and 3 values")
    except ValueError as e:
        return None, str(e)
    dividers = [int(d) for d in df.divider[:, 0]]
    cycle = math.lcm(*dividers) / df.base_frequency
    period = rx.num_sampling_points / rx.sampling_rate
    if not math.isclose(cycle, period, rel_tol=1e-6):
        return None, (f"{p}baseFrequency/divider give the cycle lcm(divider)/baseFrequency = "
                      f"{cycle:.9g} s but acquisition/receiver numSamplingPoints/(2 bandwidth) "
                      f"= {period:.9g} s")
    table = {"base_frequency": float(df.base_frequency), "dividers": dividers,
             "strengths": [float(a) for a in strength], "phases": [float(v) for v in phase],
             "waveform": "sine", "gradient": [float(v) for v in np.diag(grad)],
             "gradient_matrix": [[float(v) for v in row] for row in grad],
             "offset_field": [float(v) for v in off], "cycle_s": cycle}
    return table, ""


def scanner_config(table: dict):
    """The :class:`~llgfem.scanner.fields.ScannerConfig` of a scanner table (validated)."""
    from llgfem.scanner.fields import ScannerConfig

    table = dict(table)
    if "gradient" not in table and "gradient_matrix" in table:
        table["gradient"] = list(np.diag(np.asarray(table["gradient_matrix"], float)))
    keys = ("base_frequency", "dividers", "strengths", "phases", "waveform", "gradient",
            "offset_field")
    cfg = ScannerConfig(**{k: tuple(table[k]) if isinstance(table[k], list) else table[k]
                           for k in keys if k in table})
    cfg.validate("data.field (from the file)")
    return cfg


def scanner_field_spec(table: dict):
    """A :class:`~llgfem.physics.FieldSpec` (kind ``expression``, SI) of a scanner table:
    ``B(x, t) = G x + sum_d A_d e_d sin(2 pi f_d t + phi_d) + B_off`` (module docstring), the
    drive terms from :class:`~llgfem.scanner.fields.ScannerFields`."""
    import ufl

    from llgfem.physics import FieldSpec
    from llgfem.scanner.fields import ScannerFields

    sc = ScannerFields(scanner_config(table))
    G = np.asarray(table.get("gradient_matrix", np.diag(sc.gradient)), dtype=float)
    off = sc.offset
    omega = 2 * np.pi * sc.frequencies
    drives = [(float(w), float(ph), [float(v) for v in a])
              for w, ph, a in zip(omega, sc.phases, sc.amplitudes, strict=True)]

    def expression(x, t):
        xs = [x[i] if i < len(x) else 0.0 for i in range(3)]
        comps = []
        for i in range(3):
            c = float(off[i]) + sum(float(G[i, j]) * xs[j] for j in range(3) if G[i, j] != 0)
            for w, ph, a in drives:
                if a[i] != 0:
                    c = c + a[i] * ufl.sin(w * t + ph)
            comps.append(c)
        return ufl.as_vector(comps)

    return FieldSpec(kind="expression", expression=expression)


def scanner_reference(table: dict, extent: float) -> float:
    """The field unit (T) of a scanner drive: ``sum_d |A_d| + |B_off| + ||G||_2 extent``, the
    analogue of :func:`llgfem.physics.reference_field` for the ``ffp`` kind."""
    G = np.asarray(table.get("gradient_matrix", np.diag(table.get("gradient", [0.0] * 3))))
    size = (float(np.sum(np.abs(table["strengths"])))
            + float(np.linalg.norm(table.get("offset_field", [0.0] * 3)))
            + float(np.linalg.norm(G, 2)) * extent)
    return size if size > 0 else 1.0


def mesh_extent(mesh) -> float:
    """``|(max |x|, max |y|, max |z|)|`` over the mesh nodes (global; collective): the
    ``extent`` of :func:`scanner_reference`."""
    from mpi4py import MPI

    x = np.abs(mesh.geometry.x)
    local = x.max(axis=0) if x.size else np.zeros(3)
    top = np.zeros(3)
    mesh.comm.Allreduce(np.ascontiguousarray(local, dtype=float), top, op=MPI.MAX)
    return float(np.linalg.norm(top))


def _frame_spectra(mdf, frames, background: str,
                   correct_tf: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """``(N', C, JV/2+1)`` window spectra of the kept frames and the bins that hold data
    (None: all): the stored selection ``J k_sel`` of Fourier-transformed data, bins where the
    transfer function used for the correction is known (non-zero)."""
    from llgfem.io.mdf import time_domain

    u = time_domain(mdf, frames=list(frames) or None, background=background)
    if u.shape[0] == 0:
        raise DataError("data.frames: no foreground frame left (all are background frames)")
    n, j, c, v = u.shape
    window = np.moveaxis(u, 2, 1).reshape(n, c, j * v)  # periods concatenated
    spec = np.fft.rfft(window, axis=-1)
    allowed = _stored_bins(mdf, spec.shape[-1])
    if correct_tf and not mdf.measurement.is_transfer_function_corrected:
        tf = _transfer_function_on_window(mdf, spec.shape[-1], j)
        known = np.all(tf != 0, axis=0)
        spec = np.where(known, spec / np.where(tf == 0, 1.0, tf), 0.0)
        allowed = known if allowed is None else allowed & known
    return spec, allowed


def _transfer_function_on_window(mdf, n_bins: int, periods: int) -> np.ndarray:
    """``(C, n_bins)``: ``receiver/transferFunction`` (on the full ``V/2 + 1`` rfft axis of
    one period, or on the stored frequency selection) at the window bins ``J k``; 0 where
    unknown."""
    rx, meas = mdf.acquisition.receiver, mdf.measurement
    tf, half = rx.transfer_function, rx.num_sampling_points // 2 + 1
    sel = meas.frequency_selection if meas.is_frequency_selection else None
    if tf is not None and tf.shape[1] == half:
        full = tf
    elif tf is not None and sel is not None and tf.shape[1] == sel.size:
        full = np.zeros((tf.shape[0], half), dtype=complex)
        full[:, sel] = tf
    else:
        raise DataError("data.transfer_function: acquisition/receiver/transferFunction is "
                        "missing or not on the rfft axis of one period (numSamplingPoints/2 + "
                        "1 values) or on measurement/frequencySelection")
    out = np.zeros((full.shape[0], n_bins), dtype=complex)
    out[:, periods * np.arange(half)] = full
    return out


def select_bins(freqs: np.ndarray, spectra: np.ndarray, *, f_min: float, f_max: float,
                snr_min: float, drive: np.ndarray, stop_drive: bool, band_stop: float,
                nyquist: bool = False,
                allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Boolean mask of the kept bins, the SNR ``(C, K_all)`` and the counts of each rule.

    Args:
        freqs: ``(K_all,)`` Hz.
        spectra: ``(N', C, K_all)`` frame spectra.
        f_min, f_max, snr_min, stop_drive, band_stop: the rules (module docstring).
        drive: drive frequencies (Hz).
        nyquist: the last bin is the Nyquist bin (even window length): never used (its
            imaginary part is not sampled).
        allowed: ``(K_all,)`` bins that hold data (a stored frequency selection), or None.
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
    if allowed is not None:
        band &= allowed
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
    _check_flags(mdf.measurement)
    rx = mdf.acquisition.receiver
    j = mdf.acquisition.num_periods_per_frame
    n_window = j * rx.num_sampling_points
    window = n_window / rx.sampling_rate
    frames = _check_frames(dcfg.frames, mdf.measurement)
    spec, stored = _frame_spectra(mdf, frames, dcfg.background, dcfg.transfer_function)
    freqs = np.arange(spec.shape[-1]) / window
    drive = mdf.acquisition.drivefield.frequencies.ravel()
    keep, snr, counts = select_bins(freqs, spec, f_min=dcfg.f_min, f_max=dcfg.f_max,
                                    snr_min=dcfg.snr_min, drive=drive,
                                    stop_drive=dcfg.stop_drive, band_stop=dcfg.band_stop,
                                    nyquist=n_window % 2 == 0, allowed=stored)
    meas = mdf.measurement
    scanner, problem = scanner_from_mdf(mdf)
    info = {"format": "mdf", "path": str(path), "frames_used": int(spec.shape[0]),
            "background_frames": int(meas.is_background_frame.sum()),
            "background": dcfg.background, "periods_per_frame": j,
            "samples_per_period": rx.num_sampling_points, "channels": rx.num_channels,
            "window_s": window, "drive_frequencies_hz": drive.tolist(), **counts,
            "f_kept_hz": [float(freqs[keep].min()), float(freqs[keep].max())],
            "transfer_function_corrected": bool(dcfg.transfer_function
                                                or meas.is_transfer_function_corrected),
            "flags": _flags(meas)}
    return MeasuredSpectra(data=spec.mean(axis=0)[:, keep], bins=np.flatnonzero(keep),
                           freqs=freqs[keep], snr=snr[:, keep], n_window=n_window,
                           window=window, drive_frequencies=drive,
                           field=field_from_mdf(mdf), info=info, scanner=scanner,
                           scanner_problem=problem)


_FLAGS = ("is_background_corrected", "is_fourier_transformed",
          "is_transfer_function_corrected", "is_frequency_selection", "is_frame_permutation",
          "is_spectral_leakage_corrected", "is_sparsity_transformed")


def _flags(meas) -> dict:
    """The correction flags of the file (for ``summary.json``)."""
    return {name: bool(getattr(meas, name)) for name in _FLAGS}


def _check_flags(meas) -> None:
    """Refuse data whose corrections cannot be honoured (module docstring)."""
    if meas is None:
        raise DataError("data.path: the MDF file has no measurement group (no data)")
    if meas.is_spectral_leakage_corrected:
        raise DataError("data.path: measurement/isSpectralLeakageCorrected is set: spectral-"
                        "leakage-corrected data are not supported (the model's spectra are "
                        "those of the uncorrected window)")
    if meas.is_sparsity_transformed:
        raise DataError("data.path: measurement/isSparsityTransformed is set: sparsity-"
                        "transformed (compressed) data are not supported")
    if meas.is_frequency_selection and not meas.is_fourier_transformed:
        raise DataError("data.path: measurement/isFrequencySelection is set for time-domain "
                        "data (isFourierTransformed = 0); a selection needs spectra")


def _stored_bins(mdf, n_bins: int) -> np.ndarray | None:
    """Window bins that hold data: ``J k`` for the stored frequencies ``k`` of
    Fourier-transformed data with a selection, None (all) otherwise."""
    meas = mdf.measurement
    if not (meas.is_fourier_transformed and meas.is_frequency_selection):
        return None
    j = mdf.acquisition.num_periods_per_frame
    mask = np.zeros(n_bins, dtype=bool)
    mask[j * np.asarray(meas.frequency_selection, dtype=int)] = True
    return mask


def _check_frames(frames, meas) -> tuple[int, ...]:
    """Stored indices of the requested frames (``data.frames`` in acquisition order when the
    file has a frame permutation)."""
    n = meas.num_frames if meas is not None else 0
    bad = [f for f in frames if f >= n]
    if bad:
        raise DataError(f"data.frames: {bad} out of range (the file has {n} frames)")
    if meas.is_frame_permutation and meas.frame_permutation is not None and frames:
        stored_of = np.argsort(meas.frame_permutation)  # acquired frame a is stored at [a]
        return tuple(int(stored_of[f]) for f in frames)
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
