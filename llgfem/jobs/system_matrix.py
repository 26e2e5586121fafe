r"""The ``system_matrix`` job: model-based MPI system matrix of an SI scanner (SPEC §6).

For a calibration grid, a scanner and a tracer, evaluate a particle model (``langevin`` or
``brown_neel``, registry :data:`llgfem.scanner.models.MODELS`) at every position, form the
receive spectra S[p, l, k] (:mod:`llgfem.scanner.system_matrix`), write them as MDF v2 files
(:mod:`llgfem.io.mdf`), plot spectra with mixing-order labels and |S_f(x)| images, and close
the loop with a phantom reconstruction (:mod:`llgfem.scanner.reconstruct`).

Config tables::

    [job]
    kind = "system_matrix"
    [scanner]          # ScannerConfig: base_frequency, dividers, strengths (T), directions,
                       # phases, waveform, gradient (T/m), offset_field (T), num_sampling_points
    [tracer]           # TracerConfig: core_diameter (m), saturation_magnetisation (A/m),
                       # anisotropy (J/m³), easy_axis, damping, hydrodynamic_diameter (m),
                       # viscosity (Pa s), temperature (K), concentration (mol(Fe)/L)
    [calibration]      # CalibrationGrid: size, fov (m), center (m), delta_sample_size (m)
    [receiver.<name>]  # ReceiveConfig per channel, in file order (default: one ideal
                       # 1 T/A coil per drive direction)
    [model]            # kind = "langevin" | "brown_neel" (+ that model's options)
    [system_matrix]    # SystemMatrixConfig: noise_level, patterns, ...
    [reconstruction]   # ReconstructionConfig

Outputs in ``outputs/<name>/``: ``system_matrix.mdf`` (frequency domain, all V/2+1 bins, SNR),
``system_matrix_td.mdf`` (time domain), ``summary.json``, ``config.resolved.{json,toml}``
(with the derived scanner/tracer values), ``plots/`` (``spectrum.png``, ``patterns.png``,
``signals.png``, ``reconstruction.png``).  Positions are split over the MPI ranks (each rank
its own block, serial objects, one gather); rank 0 writes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from mpi4py import MPI

from llgfem.config import Config, ConfigError, parse_section, write_resolved_config
from llgfem.io.results import write_json
from llgfem.scanner.fields import ScannerConfig, ScannerFields
from llgfem.scanner.models import build_model
from llgfem.scanner.receive import ReceiveChannel, ReceiveConfig
from llgfem.scanner.reconstruct import ReconstructionConfig, phantom, reconstruct
from llgfem.scanner.system_matrix import (
    CalibrationGrid,
    SystemMatrix,
    compute_system_matrix,
    frequency_labels,
    grid_positions,
    time_signals,
)
from llgfem.scanner.tracer import TracerConfig

__all__ = ["TABLES", "SystemMatrixConfig", "SystemMatrixSetup", "run", "setup",
           "write_mdf_files"]

#: The tables this job reads (besides [job] and [output]); ``llgfem run`` refuses others.
TABLES = ("scanner", "tracer", "calibration", "receiver", "model", "system_matrix",
          "reconstruction")


@dataclass(frozen=True)
class SystemMatrixConfig:
    """The ``[system_matrix]`` table.

    Attributes:
        noise_level: receive noise σ per sample relative to the RMS received signal.
        patterns: number of |S_f(x)| images (highest SNR at f >= pattern_min_frequency).
        pattern_min_frequency: [Hz].
        label_peaks: number of spectrum peaks labelled with their mixing order.
        mdf: write the MDF files.
        plots: write the plots (also needs ``[output] plots``).
    """

    noise_level: float = 1e-3
    patterns: int = 12
    pattern_min_frequency: float = 30e3
    label_peaks: int = 20
    mdf: bool = True
    plots: bool = True

    def validate(self, where: str) -> None:
        if not self.noise_level > 0:
            raise ConfigError(f"{where}.noise_level: must be positive")
        if self.patterns < 0 or self.label_peaks < 0:
            raise ConfigError(f"{where}.patterns: patterns/label_peaks must be >= 0")
        if self.pattern_min_frequency < 0:
            raise ConfigError(f"{where}.pattern_min_frequency: must be >= 0")


@dataclass
class SystemMatrixSetup:
    """Everything parsed and built from a config (identical on all ranks)."""

    scanner: ScannerFields
    tracer: TracerConfig
    grid: CalibrationGrid
    channels: list[ReceiveChannel]
    model: object
    job: SystemMatrixConfig
    rec: ReconstructionConfig


def _receivers(cfg: Config, scanner: ScannerFields) -> list[ReceiveChannel]:
    """``[receiver.<name>]`` sub-tables in file order (default: one ideal 1 T/A coil per
    drive direction)."""
    base = Path(cfg.source).parent if cfg.source else None
    raw = cfg.sections.get("receiver", {})
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise ConfigError("receiver: expected sub-tables [receiver.<name>] (one per channel)")
    tables = {name: parse_section(ReceiveConfig, {"name": name, **t}, f"receiver.{name}")
              for name, t in raw.items()}
    if not tables:
        tables = {f"rx{d}": ReceiveConfig(name=f"rx{d}", sensitivity=tuple(a / np.linalg.norm(a)))
                  for d, a in enumerate(scanner.amplitudes)}
    return [ReceiveChannel(t.resolved(base), f"receiver.{n}") for n, t in tables.items()]


def setup(cfg: Config) -> SystemMatrixSetup:
    """Parse and validate every table (ConfigError naming the key, before any collective)."""
    scanner = ScannerFields(cfg.section("scanner", ScannerConfig))
    tracer = cfg.section("tracer", TracerConfig)
    grid = cfg.section("calibration", CalibrationGrid)
    model_table = cfg.sections.get("model", {})
    if not isinstance(model_table, dict):
        raise ConfigError("model: expected one [model] table")
    model = build_model(tracer, model_table, "model")
    rec = cfg.section("reconstruction", ReconstructionConfig)
    _check_phantom(rec, grid)
    return SystemMatrixSetup(scanner, tracer, grid, _receivers(cfg, scanner), model,
                             cfg.section("system_matrix", SystemMatrixConfig), rec)


def _check_phantom(rec: ReconstructionConfig, grid: CalibrationGrid) -> None:
    """Refuse a phantom that covers no calibration position, before any simulation.

    The same test as :func:`llgfem.scanner.reconstruct.reconstruct` makes after the system
    matrix is computed; it needs only the grid, so a bad ``calibration.size`` is refused in
    seconds instead of after the whole model evaluation.

    Raises:
        ConfigError: naming ``reconstruction.phantom`` and ``calibration.size``.
    """
    if not rec.enabled:
        return
    if not phantom(rec.phantom, grid_positions(grid), grid.fov, grid.center).any():
        raise ConfigError(f"reconstruction.phantom: {rec.phantom!r} covers no calibration "
                          f"position of the grid calibration.size = {list(grid.size)} "
                          "(refine calibration.size, or set reconstruction.enabled = false)")


def write_mdf_files(run_dir: Path, sm: SystemMatrix, s: SystemMatrixSetup) -> list[str]:
    """``system_matrix.mdf`` (frequency domain + SNR) and ``system_matrix_td.mdf``; rank 0."""
    from llgfem.io.mdf import Receiver, drive_field, system_matrix_mdf, write_mdf

    sc, cfg = s.scanner, s.scanner.cfg
    drive = drive_field(cfg.base_frequency, list(cfg.dividers), list(cfg.strengths),
                        list(sc.mdf_phases()), "sine")
    tf = np.stack([ch.transfer(sm.frequencies) for ch in s.channels])
    rx = Receiver(num_channels=len(s.channels), num_sampling_points=sc.num_samples,
                  bandwidth=sc.num_samples / sc.cycle / 2, unit="V", transfer_function=tf)
    t = s.tracer
    tracer = {"name": [t.name], "batch": ["simulation"], "vendor": ["n.a."],
              "solute": ["water"], "concentration": [t.concentration],
              "volume": [s.grid.voxel_volume]}
    common = dict(drivefield=drive, receiver=rx, size=list(s.grid.size),
                  field_of_view=list(s.grid.fov), field_of_view_center=list(s.grid.center),
                  positions=sm.positions, gradient=sc.gradient, offset_field=sc.offset,
                  delta_sample_size=list(s.grid.delta_sample_size), tracer=tracer,
                  scanner={"name": "llgfem model scanner", "facility": "simulation",
                           "manufacturer": "llgfem", "operator": "llgfem",
                           "topology": "FFP"})
    fd = system_matrix_mdf(sm.S, snr=sm.snr[None], **common)
    td = system_matrix_mdf(time_signals(sm.S, sc.num_samples), **common)
    return [str(write_mdf(run_dir / "system_matrix.mdf", fd)),
            str(write_mdf(run_dir / "system_matrix_td.mdf", td))]


def _plots(plot_dir: Path, sm: SystemMatrix, s: SystemMatrixSetup, rec: dict | None) -> None:
    from llgfem.scanner import plots

    plot_dir.mkdir(parents=True, exist_ok=True)
    j, sc = s.job, s.scanner
    names = [ch.name for ch in s.channels]
    peaks = plots.spaced_peaks(sm.snr, sm.frequencies, j.label_peaks, j.pattern_min_frequency)
    labels = dict(zip(peaks.tolist(), frequency_labels(sc, peaks), strict=True))
    plots.plot_spectrum(plot_dir / "spectrum.png", sm.frequencies, sm.S, sm.snr, labels, names,
                        f"{s.model.name}: mean |S| over {len(sm.positions)} positions")
    bins = plots.select_pattern_bins(sm.snr, sm.frequencies, j.patterns,
                                     j.pattern_min_frequency)
    labels = dict(zip(bins.tolist(), frequency_labels(sc, bins), strict=True))
    if len(bins):
        for l, name in enumerate(names):  # noqa: E741
            plots.plot_patterns(plot_dir / f"patterns_{name}.png", sm.S, sm.positions,
                                s.grid.size, bins, sm.frequencies, labels, l)
    centre = int(np.argmin(np.linalg.norm(sm.positions - np.asarray(s.grid.center), axis=1)))
    sig = time_signals(sm.S[centre: centre + 1], sc.num_samples)[0]
    plots.plot_signals(plot_dir / "signals.png", sc.times,
                       {f"{n} at {np.round(sm.positions[centre] * 1e3, 2)} mm": sig[i]
                        for i, n in enumerate(names)})
    if rec is not None:
        plots.plot_reconstruction(plot_dir / "reconstruction.png", sm.positions, s.grid.size,
                                  rec["c_true"], rec["c"], rec["rel_error"])


def _finish(cfg: Config, s: SystemMatrixSetup, sm: SystemMatrix, wall: float,
            ranks: int) -> dict:
    """Rank 0: MDF, reconstruction, plots, summary."""
    run_dir = Path(cfg.run_dir)
    files = write_mdf_files(run_dir, sm, s) if s.job.mdf else []
    rec = None
    if s.rec.enabled:
        g = s.grid
        rec = reconstruct(sm.S, sm.snr, sm.frequencies, sm.sigma, s.scanner.num_samples,
                          sm.positions, g.fov, g.center, s.rec)
    if s.job.plots and cfg.output.plots:
        _plots(run_dir / "plots", sm, s, rec)
    n = len(sm.positions)
    return {
        "kind": "system_matrix", "model": s.model.name, "grid": list(s.grid.size),
        "positions": n, "channels": len(s.channels), "frequencies": int(sm.S.shape[-1]),
        "ranks": ranks, "model_seconds": sm.timing["seconds"],
        "model_seconds_per_rank": sm.timing["seconds_per_rank"],
        "model_cpu_seconds": sm.timing["cpu_seconds"],
        "model_cpu_seconds_per_rank": sm.timing["cpu_seconds_per_rank"],
        "seconds_per_position": sm.timing["seconds"] * ranks / n,
        "wall_seconds": wall, "max_snr": float(sm.snr.max()),
        "frequencies_snr_above_5": int((sm.snr.max(axis=0) >= 5).sum()),
        "noise_sigma_V": sm.sigma.tolist(), "mdf_files": files,
        "model_stats_per_rank": sm.timing["stats_per_rank"],
        "reconstruction": None if rec is None else {
            k: rec[k] for k in ("rel_error", "frequencies_used", "rows", "lambda")},
    }


def run(cfg: Config, comm: MPI.Comm = MPI.COMM_WORLD) -> dict:
    """Run the job; returns the summary (identical on every rank).

    Raises:
        ConfigError: invalid tables or files (on every rank, before any collective).
    """
    t0 = time.perf_counter()
    s = setup(cfg)
    run_dir = Path(cfg.run_dir)
    if comm.rank == 0:
        derived = {"scanner": {**_plain(s.scanner.cfg), "derived": s.scanner.derived()},
                   "tracer": {**_plain(s.tracer), "derived": s.tracer.derived()},
                   "calibration": s.grid, "model": s.model.options(),
                   "receiver": {ch.name: _plain(ch.cfg) for ch in s.channels},
                   "system_matrix": s.job, "reconstruction": s.rec}
        write_resolved_config(cfg, run_dir, derived)
    with _truncation_hint(s.model):
        sm = compute_system_matrix(s.model, s.scanner, s.channels, s.tracer, s.grid,
                                   s.job.noise_level, comm)
    summary = None
    if comm.rank == 0:
        try:
            summary = _finish(cfg, s, sm, time.perf_counter() - t0, comm.size)
        except ConfigError as e:
            summary = {"error": str(e), "config_error": True}
        except Exception as e:  # noqa: BLE001 (re-raised on every rank below)
            summary = {"error": f"{type(e).__name__}: {e}", "config_error": False}
    summary = comm.bcast(summary, root=0)
    if "error" in summary:
        raise (ConfigError if summary["config_error"] else RuntimeError)(summary["error"])
    summary["wall_seconds"] = time.perf_counter() - t0
    write_json(run_dir / "summary.json", summary, comm)
    return summary


def _truncation_hint(model):
    """For the Brown–Néel models: a solver failure names ``model.n_m``/``n_n`` when the
    truncation is below the demos' (:func:`llgfem.brownneel.jobs.truncation_hint`)."""
    from contextlib import nullcontext

    from llgfem.brownneel.jobs import truncation_hint

    opts = model.options()
    if "n_m" not in opts or "n_n" not in opts:
        return nullcontext()
    return truncation_hint(opts["n_m"], opts["n_n"], "model")


def _plain(obj) -> dict:
    from dataclasses import asdict

    return asdict(obj)
