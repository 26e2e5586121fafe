"""``calibrate`` with ``[data]``: fit (a1, a2) (or (a1, a2, k)) and receive-chain gains to a
measured file.

The measurement (:mod:`llgfem.calibration.data`: an MDF v2 file or an llgfem signals file) is
read on rank 0 and broadcast; the model is the LLG problem of ``[llg]``/``[physical]``/
``[field]``/``[time]`` with the ``[[coil]]`` tables as receive channels (one per file
channel, file order) and the ``[[concentration]]`` tables as the sample.  By default the
drive and the window length come from the file (``data.field = "file"``, ``data.time =
"file"``; ``[time] n_t`` stays the model's resolution): a single-channel FFP scan becomes the
``[field]`` kind ``ffp``, any other sine drive (2-D/3-D Lissajous, phases, offset, full
gradient) the scanner field of :func:`llgfem.calibration.data.scanner_field_spec` (passed to
the builder as ``field=``), over the window ``J T_c`` (``T_c = lcm(D)/f_B``);
``summary.json`` and ``config.resolved.toml`` record in ``data.resolved`` which values came
from where (``field_source``, the ``field_table`` or ``scanner`` table, ``T``).

The fit is Levenberg-Marquardt with the exact Jacobian to the least-squares point
(:func:`llgfem.calibration.fit.least_squares_fit`) over ``x = (a1, a2, gains)``; the data are
the selected spectra (MDF) or the time samples (signals file), the model evaluated there by
:class:`llgfem.calibration.model.DataModel`.  Uncertainty and identifiability as without
``[data]`` (:func:`llgfem.calibration.fisher_uncertainty`, the noise level estimated from the
residual); physical runs report ``alpha_D`` and ``gamma`` (and ``K_u = k M_S B_ref / 2`` with
``parameters = ["a1", "a2", "k"]``).
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
from mpi4py import MPI

from llgfem.builders import DataConfig, build_llg_problem, build_observation, section
from llgfem.calibration import fisher_uncertainty, propagate
from llgfem.calibration.data import (
    MeasuredSpectra,
    load_measurement,
    mesh_extent,
    scanner_field_spec,
    scanner_reference,
)
from llgfem.calibration.fit import least_squares_fit
from llgfem.calibration.model import (
    DataModel,
    dft_rows,
    gain_names,
    initial_gains,
    interpolation_rows,
)
from llgfem.config import Config, ConfigError, write_resolved_config
from llgfem.io.progress import get_logger
from llgfem.io.results import write_json
from llgfem.mesh import create_domain
from llgfem.operators.reduced import ReducedOperator

__all__ = ["model_config", "run_data"]

FIT_METHODS = ("gauss_newton", "levenberg_marquardt")
XTOL = 1e-7  # scaled parameter step at which the fit stops (far below any standard error)


def model_config(cfg: Config, dcfg: DataConfig, measured) -> tuple[Config, dict]:
    """The config with ``[field]``/``[time] T`` taken from the file where asked; the record of
    which source each came from."""
    physical = bool(cfg.sections.get("llg", {}).get("physical", False))
    resolved = {"field": "config", "time": "config", "n_t": cfg.time.n_t}
    sections, grid = dict(cfg.sections), cfg.time
    is_mdf = isinstance(measured, MeasuredSpectra)
    if dcfg.field == "file" and "field" in cfg.sections:
        raise ConfigError("field: a [field] table is given but data.field = 'file' takes the "
                          "drive from the file, so it would be ignored; remove [field] or set "
                          "data.field = 'config'")
    if dcfg.field == "file":
        if not is_mdf:
            raise ConfigError("data.field: a signals file carries no scanner description; "
                              "set data.field = 'config' and give [field]")
        if measured.field is None and measured.scanner is None:
            raise ConfigError(f"data.field: the MDF drive cannot be read "
                              f"({measured.scanner_problem}); set data.field = 'config' and "
                              "give [field]")
        if not physical:
            raise ConfigError("data.field: a field from the file is in SI units; set "
                              "llg.physical = true")
        resolved["field"] = "file"
        if measured.field is not None:  # single-channel FFP scan: the [field] kind ffp
            sections["field"] = measured.field
            resolved["field_source"] = "ffp"
            resolved["field_table"] = measured.field
        else:  # any sine drive: the scanner description (ScannerConfig + full gradient)
            resolved["field_source"] = "scanner"
            resolved["scanner"] = measured.scanner
    if dcfg.time == "file":
        if is_mdf and not physical:
            raise ConfigError("data.time: the file's window is in seconds; set "
                              "llg.physical = true (or data.time = 'config')")
        T = measured.window if is_mdf else _signals_window(measured.times)
        grid = dataclasses.replace(cfg.time, T=float(T))
        resolved["time"] = "file"
    resolved["T"] = grid.T
    if resolved.get("field_source") == "scanner":
        _check_scanner_resolved(measured.scanner, grid)
        resolved["cycles_in_T"] = grid.T / measured.scanner["cycle_s"]
    return dataclasses.replace(cfg, sections=sections, time=grid), resolved


def _check_scanner_resolved(table: dict, grid, per_period: int = 20) -> None:
    """Refuse a model time grid with fewer than ``per_period`` steps per period of the
    fastest drive channel (as ``[field]`` drives are checked by the builders)."""
    f_max = table["base_frequency"] / min(table["dividers"])
    needed = int(math.ceil(per_period * grid.T * f_max)) + 1
    if grid.n_t < needed:
        raise ConfigError(f"time.n_t: the file's drive ({f_max:.6g} Hz over T = {grid.T:.6g} "
                          f"s) needs at least {per_period} steps per period: n_t >= {needed}, "
                          f"got {grid.n_t}")


def _file_field(mcfg: Config, resolved: dict, mesh):
    """``(FieldSpec, field unit)`` of a scanner drive from the file, or ``(None, None)``."""
    if resolved.get("field_source") != "scanner":
        return None, None
    table = resolved["scanner"]
    return scanner_field_spec(table), scanner_reference(table, mesh_extent(mesh))


def _signals_window(times: np.ndarray) -> float:
    step = float(times[1] - times[0]) if times.size > 1 else float(times[0])
    return float(times[-1] + step / 2)


@dataclasses.dataclass
class DataFit:
    """A configured fit of a measured file."""

    model: DataModel
    data: np.ndarray
    names: tuple[str, ...]
    x0: np.ndarray
    info: dict
    resolved: dict
    problem: object
    cal: object
    weights: str = "channel"
    m_S: float | None = None  # saturation magnetisation (A/m) of a physical model (for K_u)


def setup_data(cfg: Config, cal, comm: MPI.Comm = MPI.COMM_WORLD) -> DataFit:
    """Read the file, build the model on the file's sampling, the start ``x0``."""
    if cal.method not in FIT_METHODS:
        raise ConfigError(f"calibrate.method: data files are fitted to the least-squares point "
                          f"by {FIT_METHODS[0]!r} (got {cal.method!r})")
    dcfg = section(cfg, "data", DataConfig)
    amplitude = _check_amplitude(cfg, cal, dcfg)
    measured = load_measurement(dcfg, cfg.source, comm)
    mcfg, resolved = model_config(cfg, dcfg, measured)
    domain = create_domain(comm, mcfg.domain)
    spec, reference = _file_field(mcfg, resolved, domain.mesh)
    model_names = cal.model_parameter_names() if amplitude else cal.parameter_names()
    problem = build_llg_problem(mcfg, domain.mesh, parameters=model_names,
                                field=spec, field_reference=reference)
    built = build_observation(mcfg, domain, problem.V, problem.grid)
    if built is None:
        raise ConfigError("coil: a measured file needs one [[coil]] table per receive channel")
    problem.observation = built[0]
    from llgfem.jobs.calibrate import uses_tangents  # lazily: calibrate imports this module

    op = ReducedOperator(problem, failed_solve="nan",
                         tangents=uses_tangents(cal.method, problem))
    model, data, gain = _data_model(op, measured, dcfg, problem, amplitude)
    coils = problem.observation.coil_names
    x_a = np.array(cal.a0, dtype=float)
    g0 = initial_gains(model.base(x_a), data, gain)
    names = (*cal.parameter_names(), *gain_names(tuple(coils), gain))
    info = {**measured.info, "gain": gain, "n_data": int(data.size)}
    m_S = None
    if problem.units is not None:
        from llgfem.physics import PhysicalParameters

        m_S = section(mcfg, "physical", PhysicalParameters).m_S
    return DataFit(model, data.ravel(), names, np.concatenate([x_a, g0]), info, resolved,
                   problem, cal, dcfg.weights, m_S)


def _check_amplitude(cfg: Config, cal, dcfg: DataConfig) -> bool:
    """Whether ``M_S`` is fitted (``calibrate.parameters`` ends in ``"M_S"``); refuse it where
    the data cannot determine it."""
    if "M_S" not in cal.parameter_names():
        return False
    if not bool(cfg.sections.get("llg", {}).get("physical", False)):
        raise ConfigError("calibrate.parameters: M_S (A/m) needs a physical model; set "
                          "llg.physical = true")
    if dcfg.gain != "none":
        raise ConfigError(f"calibrate.parameters: M_S is not identifiable with data.gain = "
                          f"{dcfg.gain!r}: the model is g_l M_S s_l, so a per-channel gain and "
                          "M_S scale the signal alike (only their product is determined); fit "
                          "M_S with a known receive chain (data.gain = 'none', the transfer "
                          "function known or applied) or drop M_S")
    return True


def _data_model(op, measured, dcfg, problem, amplitude: bool = False):
    K, L, N = op.data_shape
    scale = 1.0 / problem.units.time if problem.units is not None else 1.0
    if isinstance(measured, MeasuredSpectra):
        if measured.channels != L:
            raise ConfigError(f"coil: the file has {measured.channels} receive channels, the "
                              f"config {L} [[coil]] tables (one per channel, file order)")
        if measured.bins.max() >= N / 2:
            raise ConfigError(f"time.n_t: the model's {N} steps do not resolve the highest "
                              f"selected bin {measured.bins.max()} ({measured.freqs.max():.6g} "
                              f"Hz); need n_t > {2 * measured.bins.max() + 1} or a lower f_max")
        rows = dft_rows(measured.bins, N, measured.n_window)
        return DataModel(op, rows, dcfg.gain, scale, amplitude), measured.data, dcfg.gain
    if measured.data.shape[1] != L:
        raise ConfigError(f"coil: the signals file has {measured.data.shape[1]} coils, the "
                          f"config {L} [[coil]] tables")
    gain = "real" if dcfg.gain == "complex" else dcfg.gain
    t = measured.times
    if problem.units is not None:
        t = problem.units.to_dimensionless_time(t)
    grid = problem.grid
    t_mid = 0.5 * (grid.times[1:] + grid.times[:-1])
    rows = interpolation_rows(np.asarray(t, dtype=float), t_mid)
    return DataModel(op, rows, gain, 1.0, amplitude), measured.data.sum(axis=0), gain


def fit_data(fit: DataFit) -> tuple[dict, dict]:
    """Fit, then the uncertainty; returns ``(summary, history)``."""
    comm = fit.problem.solver.comm
    comm.Barrier()
    t0 = time.perf_counter()
    model, data = fit.model, fit.data
    na, n_amp = model.n_a, model.n_amp
    floor = _scales(fit.x0, fit.model.gain, na)
    a_names = fit.names[:na + n_amp]
    hist = {"iteration": [], "residual_norm": [], **{n: [] for n in a_names}}

    def record(rec):
        hist["iteration"].append(rec["iteration"])
        hist["residual_norm"].append(rec["residual_norm"])
        for i, n in enumerate(a_names):
            hist[n].append(rec["x"][i])

    L = model.channels
    w = np.ones(L)

    def weighted(v):
        return _weight_rows(v, w, L)

    res = least_squares_fit(lambda x: weighted(model(x) - data),
                            lambda x: weighted(model.jacobian(x)), fit.x0,
                            max_iter=fit.cal.max_iter, floor=floor, callback=record,
                            initial_callback=True, xtol=XTOL)
    iterations = res.iterations
    if fit.weights == "channel":
        w = 1.0 / _channel_rms(res.residual, L)
        res = least_squares_fit(lambda x: weighted(model(x) - data),
                                lambda x: weighted(model.jacobian(x)), res.x,
                                max_iter=fit.cal.max_iter, floor=floor, callback=record,
                                xtol=XTOL)
        iterations += res.iterations
    seconds = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
    scale = _scales(res.x, fit.model.gain, na)
    unc = fisher_uncertainty(res.jacobian, res.residual, res.x, fit.names,
                             rcond=fit.cal.rcond, rel_width=fit.cal.rel_width, scale=scale)
    summary = {"method": "gauss_newton", "iterations": iterations, "reason": res.reason,
               "seconds": seconds, **dict(model.op.counters), "a0": list(fit.cal.a0),
               "a1": float(res.x[0]), "a2": float(res.x[1]),
               **({"k": float(res.x[2])} if na == 3 else {}),
               **({"M_S": float(res.x[na])} if n_amp else {}),
               "gains": res.x[na + n_amp:].tolist(), "parameter_names": list(fit.names),
               "r_obs": float(np.linalg.norm(model(res.x) - data) / np.linalg.norm(data)),
               "channel_weights": w.tolist(),
               "mpi_size": comm.size, "data": fit.info, "resolved": fit.resolved}
    summary.update(_uncertainty_records(unc))
    units = fit.problem.units
    if units is not None and res.x[1] < 0:
        summary["physical"] = _physical(unc, units, na, fit.m_S, bool(n_amp)).to_json()
    return summary, hist


def _weight_rows(v: np.ndarray, w: np.ndarray, channels: int) -> np.ndarray:
    """Rows of ``v`` (flattened ``(L, n)`` data, or a Jacobian with those rows) times ``w_l``."""
    v = np.asarray(v)
    shaped = v.reshape(channels, -1, *v.shape[1:])
    factor = w.reshape(channels, 1, *([1] * (v.ndim - 1)))
    return (shaped * factor).reshape(v.shape)


def _channel_rms(residual: np.ndarray, channels: int) -> np.ndarray:
    """Per-channel RMS of a (weighted by 1) residual, real and imaginary parts counted."""
    r = np.asarray(residual).reshape(channels, -1)
    rms = np.sqrt(np.mean(np.abs(r) ** 2, axis=1))
    return np.where(rms > 0, rms, max(float(rms.max()), 1e-300))


def _scales(x: np.ndarray, gain: str, na: int = 2) -> np.ndarray:
    """Parameter scales: ``max(|a_j|, 0.1 max|a|)`` for the ``na`` model parameters; ``|g_l|``
    for both parts of a complex gain (a real or imaginary part near 0 is measured against the
    gain's size)."""
    out = np.abs(np.asarray(x, dtype=float)).copy()
    out[:na] = _a_floor(x[:na])
    if gain == "complex":
        mag = np.hypot(x[na::2], x[na + 1::2])
        out[na::2], out[na + 1::2] = mag, mag
    return np.maximum(out, 1e-300)


def _a_floor(a: np.ndarray) -> np.ndarray:
    a = np.abs(np.asarray(a, dtype=float))
    top = float(a.max()) if a.max() > 0 else 10.0
    return np.maximum(a, 0.1 * top)


def _uncertainty_records(unc) -> dict:
    data = unc.to_json()
    recs = data["parameters"]
    return {"stderr": [r["stderr"] for r in recs], "ci95_low": [r["ci95_low"] for r in recs],
            "ci95_high": [r["ci95_high"] for r in recs],
            "identified": [r["identified"] for r in recs], "correlation": data["correlation"],
            "uncertainty": data}


def _physical(unc, units, na: int = 2, m_S: float | None = None, fitted_m_S: bool = False):
    """``alpha_D = -a1/a2``, ``gamma = -1/(a2 t_ref B_ref)``, with a fitted ``k`` (``na = 3``)
    ``K_u = k M_S B_ref / 2`` (J/m^3) and with a fitted ``M_S`` (``x[na]``, A/m) the ``M_S``
    row (then also the ``M_S`` of ``K_u``); gains do not enter."""
    tb, p = units.time * units.field, unc.estimate.size
    with_k = na == 3 and (m_S is not None or fitted_m_S)
    half_b = 0.5 * units.field

    def m_s(x):
        return x[na] if fitted_m_S else m_S

    def func(x):
        out = [-x[0] / x[1], -1.0 / (x[1] * tb)]
        if with_k:
            out.append(half_b * m_s(x) * x[2])
        if fitted_m_S:
            out.append(x[na])
        return np.array(out)

    def jac(x):
        g = np.zeros((2 + with_k + fitted_m_S, p))
        g[0, :2] = [-1.0 / x[1], x[0] / x[1] ** 2]
        g[1, 1] = 1.0 / (x[1] ** 2 * tb)
        if with_k:
            g[2, 2] = half_b * m_s(x)
            if fitted_m_S:
                g[2, na] = half_b * x[2]
        if fitted_m_S:
            g[-1, na] = 1.0
        return g

    names = ("alpha_D", "gamma") + (("K_u",) if with_k else ()) + (("M_S",) if fitted_m_S
                                                                   else ())
    return propagate(unc, func, jac, names)


def run_data(cfg: Config, cal, report) -> dict:
    """The ``calibrate`` job on a measured file (``report``: prints/warns the uncertainty)."""
    comm = MPI.COMM_WORLD
    fit = setup_data(cfg, cal, comm)
    summary, hist = fit_data(fit)
    fit.problem.destroy()
    summary["job"] = "calibrate"
    out = cfg.run_dir
    if comm.rank == 0:
        write_resolved_config(cfg, out, {"calibrate": cal, "data": {
            **dataclasses.asdict(section(cfg, "data", DataConfig)),
            "resolved": fit.resolved}})
    write_json(out / "history.json", hist, comm)
    write_json(out / "summary.json", summary, comm)
    report(summary, comm)
    if cfg.output.plots:
        _plot_fit(fit, summary, out, comm)
    get_logger(comm=comm).info(
        "calibrate (data %s): a = (%.6g, %.6g), %d its, %.2f s, r_obs %.3g -> %s",
        fit.info["format"], summary["a1"], summary["a2"], summary["iterations"],
        summary["seconds"], summary["r_obs"], out)
    return summary


def _plot_fit(fit: DataFit, summary: dict, out, comm) -> None:
    from llgfem.io.plots import plot_series

    x = np.array([summary["a1"], summary["a2"], *([summary["k"]] if "k" in summary else []),
                  *([summary["M_S"]] if "M_S" in summary else []), *summary["gains"]])
    model = fit.model(x).reshape(fit.model.channels, -1)  # collective
    data = fit.data.reshape(fit.model.channels, -1)
    axis = np.arange(data.shape[1], dtype=float)
    series = {}
    for l, name in enumerate(fit.problem.observation.coil_names):  # noqa: E741
        series[f"|data| {name}"] = np.abs(data[l])
        series[f"|model| {name}"] = np.abs(model[l])
    plot_series(out / "plots" / "data_fit.png", axis, series, xlabel="selected bin / sample",
                ylabel="magnitude", logy=bool(np.iscomplexobj(data)),
                title="measured vs fitted", comm=comm)

