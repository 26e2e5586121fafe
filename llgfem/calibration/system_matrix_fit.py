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

Data (:mod:`llgfem.calibration.system_matrix_data`): the background-subtracted foreground
spectra on the kept (channel, bin) pairs (band ``f_min``/``f_max``, drive band-stop, SNR per
channel from the background frames).  ``data.weights = "channel"`` weights channel ``c`` by
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
import time
from pathlib import Path

import numpy as np
from mpi4py import MPI

from llgfem.calibration import fisher_uncertainty, propagate
from llgfem.calibration.fit import least_squares_fit
from llgfem.calibration.macrospin import MacrospinModel
from llgfem.calibration.system_matrix_data import (
    MeasuredSystemMatrix,
    is_system_matrix_file,
    read_system_matrix,
    scanner_from_mdf,
    system_matrix_with_background,
)
from llgfem.config import Config, ConfigError, write_resolved_config
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


def is_system_matrix_config(cfg: Config, comm=MPI.COMM_WORLD) -> bool:
    """Whether the ``[data]`` table names a system-matrix MDF file (``data.format`` not
    ``signals`` and :func:`is_system_matrix_file`); the dispatch test of ``calibrate``."""
    table = cfg.sections.get("data", {})
    if not isinstance(table, dict) or not isinstance(table.get("path"), str):
        return False
    if table.get("format", "auto") == "signals":
        return False
    return is_system_matrix_file(_resolve(cfg, table["path"]), comm)



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
        per_radian: time steps per radian of field-direction sweep (the grading).
    """

    def __init__(self, scanner: ScannerConfig, positions: np.ndarray, bins: np.ndarray,
                 sensitivities: np.ndarray, n_a: int, gamma_ref: float, substeps: int,
                 easy_axis=None, fd_step: float = FD_STEP, comm: MPI.Comm = MPI.COMM_SELF,
                 mask: np.ndarray | None = None, per_radian: float = 40.0):
        self.fields = ScannerFields(scanner)
        self.positions = np.asarray(positions, float)
        self.bins = np.asarray(bins, int)
        self.sens = np.asarray(sensitivities, float)
        self.n_a, self.fd_step, self.comm = int(n_a), float(fd_step), comm
        block = split_positions(len(self.positions), comm.size, comm.rank)
        self.macrospin = MacrospinModel(self.fields, self.positions[block], gamma_ref,
                                        substeps, easy_axis=easy_axis, per_radian=per_radian,
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

    def gains_times_base(self, x) -> np.ndarray:
        """``g_c M_{c,p,k}(a)``, ``(C, P, K)``."""
        x = np.asarray(x, float)
        return self._gains(x, self.n_a)[:, None, None] * self.base(x)

    def __call__(self, x) -> np.ndarray:
        return self.flat(self.gains_times_base(x))

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
    if tuple(cal.parameter_names()) not in (("a1", "a2"), ("a1", "a2", "k")):
        raise ConfigError(f"calibrate.parameters: a system-matrix file fits ['a1', 'a2'] or "
                          f"['a1', 'a2', 'k'] (got {list(cal.parameter_names())}; M_S is "
                          "absorbed by the complex receive gains)")
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
    if cfg.output.plots:
        _plot_fit(out / "plots" / "system_matrix_fit.png", measured, model,
                  np.array(summary["a"] + summary["gains"]), comm)
    logger = get_logger(comm=comm)
    if measured.truth:
        logger.info("calibrate: true values recorded in the file: %s; inside the 95 %% "
                    "interval: %s", measured.truth, summary["covered"])
    logger.info("calibrate (system matrix, %d positions): a = %s, %d its, %.2f s, r_obs %.3g "
                "-> %s", len(measured.positions), np.round(a, 6).tolist(),
                summary["iterations"], summary["seconds"], summary["r_obs"], out)
    return summary


def _plot_fit(path: Path, measured: MeasuredSystemMatrix, model: SystemMatrixModel,
              x: np.ndarray, comm) -> None:
    """|S| measured and fitted per channel over the fitted (position, bin) entries (rank 0
    writes; the model run is collective)."""
    from llgfem.io.plots import plot_series

    fitted = model.gains_times_base(x)  # collective
    data = np.transpose(measured.data, (1, 0, 2))
    series = {}
    n = int(model.counts.max())
    for c in range(model.channels):
        sel = model.select[c]
        pad = np.full(n, np.nan)
        for label, arr in ((f"|S| data ch{c}", data[c]), (f"|S| model ch{c}", fitted[c])):
            vals = pad.copy()
            vals[: sel.sum()] = np.abs(arr[sel])
            series[label] = vals
    plot_series(path, np.arange(n, dtype=float), series, xlabel="fitted (position, bin) entry",
                ylabel="|S| [file unit]", logy=True, comm=comm,
                title="system matrix: measured vs fitted")

