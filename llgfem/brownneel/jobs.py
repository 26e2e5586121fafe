"""``llgfem run`` entry points for the Brown–Néel FOM, POD, ROM and identification jobs.

Job kinds (``[job] kind``) and the ``[brown_neel]`` table (:class:`BrownNeelConfig`)::

    brown_neel_fom       simulate one particle/drive; JSON summary, signal plot, states (NPZ)
    brown_neel_pod       FOM snapshots (or ``snapshots`` NPZ) -> POD modes (NPZ), spectrum plot
    brown_neel_rom       POD basis (``basis`` NPZ, or built at the basis setting) -> ROM run at
                         the target setting, compared with the FOM; JSON + plot
    brown_neel_identify  calibrate (d_c, K[, d_h]) with 95 % intervals by the POD ROM
                         (:mod:`llgfem.brownneel.calibrate_data`) from the MDF v2
                         measurement of a ``[data]`` table (:class:`llgfem.builders.DataConfig`),
                         or, without one, from a measurement it simulates first (FOM at a
                         finer truncation, ``identify_truth``/``identify_noise``) and writes to
                         ``<run dir>/data/measurement.mdf``: simulate -> write MDF -> read -> fit

Every rank computes redundantly on PETSC_COMM_SELF (the ODE is small); rank 0 writes the
JSON/NPZ files and the plots (under ``plots/``) and logs one INFO line per stage and a final
summary line.  Input files (``snapshots``, ``basis``) are validated (entries, shapes, finite
values) before use; a failed integration is a :class:`llgfem.solvers.linear.SolverError`.
Below the demos' truncation :data:`DEMO_TRUNCATION` the error adds a hint to raise
``brown_neel.n_m``/``n_n``: small truncations are not refused up front because stability is not
monotone in them (at the FOM demo setting (4, 2) runs, (6, 4) fails, (8, 6) runs).
"""

from __future__ import annotations

import json
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llgfem.config import Config, ConfigError, write_resolved_config
from llgfem.errors import DataError, load_npz

__all__ = ["JOB_KINDS", "BrownNeelConfig", "identify_simulated", "run_job"]

JOB_KINDS = ("brown_neel_fom", "brown_neel_pod", "brown_neel_rom", "brown_neel_identify")
STEPS_PER_SAMPLE, MIN_STEP_BUDGET = 25, 20_000  # integrator step budget (see _settings)
#: Plausibility limits of [brown_neel] (larger values are typos: days of integration or
#: overflowing Boltzmann factors, not runs).
#: The smallest truncation (N_m, N_n) among the demo configs (``brown_neel_identify``).
DEMO_TRUNCATION = (10, 8)

LIMITS = {"d_c_nm": 1e3, "d_h_nm": 1e4, "K_kJ": 1e4, "B_d_mT": 1e4, "f_d_kHz": 1e5,
          "basis_d_c_nm": 1e3, "basis_K_kJ": 1e4, "basis_f_d_kHz": 1e5, "periods": 1e3,
          "warmup_periods": 1e3, "samples_per_period": 1e5, "identify_grid": 50}


@dataclass(frozen=True)
class BrownNeelConfig:
    """The ``[brown_neel]`` table.

    Attributes:
        d_c_nm, K_kJ: particle core diameter [nm] and anisotropy [kJ/m³] (target setting).
        d_h_nm: hydrodynamic diameter [nm] (0: = d_c).
        n_m, n_n: truncation (N_m, N_n).
        formulation: ``dynamic`` (stable, default), ``static`` or ``plain``.
        precession: include precession.
        B_d_mT, f_d_kHz: drive amplitude and frequency (target setting).
        warmup_periods, periods, samples_per_period: time grid.
        rtol: integrator tolerance (atol = 1e-5 rtol).
        backend: ``petsc`` or ``scipy``.
        check_stability: run the spectral guard before integrating.
        basis_d_c_nm, basis_K_kJ, basis_f_d_kHz: setting whose snapshots build the basis
            (0: same as the target).
        rank, energy: POD truncation of the ``pod``/``rom`` jobs: ``rank`` modes at most and
            the fewest modes capturing the fraction ``energy`` of Σσ² (both > 0: the smaller
            basis; 0 switches a criterion off; both 0: every numerically non-zero mode).
            ``energy = 0`` is the default, so the range is ``0 <= energy <= 1``.  The
            identification uses ``rank`` only (0: 120).
        snapshots, basis: NPZ files from earlier ``fom``/``pod`` runs (optional).
        transfer: ``direct`` (use the basis setting's snapshots as they are) or ``boltzmann``
            (map them to the target particle by the Boltzmann weight ratio first,
            :mod:`llgfem.brownneel.transfer`; dynamic formulation, snapshots not a basis file).
        compare_fom: also run the FOM at the target setting (ROM job).
        identify_truth: (d_c nm, K kJ/m³) of the simulated particle (identification without
            ``[data]``; inside the search box).
        identify_noise: relative noise level of the simulated measurement.
        identify_data_truncation: (N_m, N_n) of the FOM simulating that measurement, at least
            ``(n_m, n_n)`` ((0, 0): ``(n_m + 2, n_n + 2)``; equal to ``(n_m, n_n)`` the data
            differ from the ROM by the POD projection and the time scheme only).
        identify_grid: dictionary grid points per parameter of the fit's start (1: the box
            centre).
        fit_parameters: parameters calibrated from a ``[data]`` file: ``["d_c", "K"]`` or
            ``["d_c", "K", "d_h"]`` (d_h starts at ``d_h_nm``, 0: at the d_c start).
        box_d_c_nm, box_K_kJ: search box of the calibration (training FOMs at its corners and
            centre, dictionary start).
        substeps: Radau IIA steps per data sample of the calibration ROM.
        fd_step: relative central-difference step of the calibration Jacobian.
        odd_harmonics: keep odd harmonics of the drive only.
    """

    d_c_nm: float = 20.0
    K_kJ: float = 6.0
    d_h_nm: float = 0.0
    n_m: int = 12
    n_n: int = 10
    formulation: str = "dynamic"
    precession: bool = True
    B_d_mT: float = 15.0
    f_d_kHz: float = 5.0
    warmup_periods: float = 1.0
    periods: float = 1.0
    samples_per_period: int = 400
    rtol: float = 1e-7
    backend: str = "petsc"
    check_stability: bool = True
    basis_d_c_nm: float = 0.0
    basis_K_kJ: float = 0.0
    basis_f_d_kHz: float = 0.0
    rank: int = 60
    energy: float = 0.0
    snapshots: str = ""
    basis: str = ""
    transfer: str = "direct"
    compare_fom: bool = True
    identify_truth: tuple[float, float] = (20.6, 6.7)
    identify_noise: float = 0.01
    identify_data_truncation: tuple[int, int] = (0, 0)
    identify_grid: int = 6
    fit_parameters: tuple[str, ...] = ("d_c", "K")
    box_d_c_nm: tuple[float, float] = (19.0, 21.0)
    box_K_kJ: tuple[float, float] = (5.0, 7.0)
    substeps: int = 8
    fd_step: float = 1e-4
    odd_harmonics: bool = True

    def validate(self, where: str) -> None:
        if self.formulation not in ("plain", "static", "dynamic"):
            raise ConfigError(f"{where}.formulation: {self.formulation!r} not in "
                              "['dynamic', 'plain', 'static']")
        if self.backend not in ("petsc", "scipy"):
            raise ConfigError(f"{where}.backend: must be 'petsc' or 'scipy'")
        for key in ("d_c_nm", "B_d_mT", "f_d_kHz", "rtol", "periods"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"{where}.{key}: must be positive")
        if self.K_kJ < 0 or self.warmup_periods < 0:
            raise ConfigError(f"{where}.K_kJ/warmup_periods: must be non-negative")
        if self.n_m < 1 or self.n_n < 0:
            raise ConfigError(f"{where}.n_m/n_n: need n_m >= 1, n_n >= 0")
        if self.samples_per_period < 4:
            raise ConfigError(f"{where}.samples_per_period: need >= 4")
        if not 0 <= self.energy <= 1 or self.rank < 0:
            raise ConfigError(f"{where}.rank/energy: rank >= 0 and 0 <= energy <= 1")
        if self.transfer not in ("direct", "boltzmann"):
            raise ConfigError(f"{where}.transfer: {self.transfer!r} not in "
                              "['boltzmann', 'direct']")
        if self.transfer == "boltzmann" and (self.formulation != "dynamic" or self.basis):
            raise ConfigError(f"{where}.transfer: 'boltzmann' needs formulation = 'dynamic' "
                              "and snapshots (a FOM run or `snapshots`), not a `basis` file")
        self._validate_ranges(where)

    def _validate_ranges(self, where: str) -> None:
        """Physical and numerical ranges (sizes, tolerances, identification settings)."""
        if self.d_h_nm < 0 or (self.d_h_nm and self.d_h_nm < self.d_c_nm):
            raise ConfigError(f"{where}.d_h_nm: the hydrodynamic diameter must be 0 (= d_c) "
                              f"or >= d_c_nm = {self.d_c_nm}, got {self.d_h_nm}")
        for key in ("basis_d_c_nm", "basis_K_kJ", "basis_f_d_kHz"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{where}.{key}: must be >= 0 (0: the target's value)")
        if not 1e-12 <= self.rtol <= 0.1:
            raise ConfigError(f"{where}.rtol: must lie in [1e-12, 0.1], got {self.rtol}")
        if self.n_m > 64 or self.n_n > 64:
            raise ConfigError(f"{where}.n_m/n_n: truncations above 64 are out of range")
        for key, top in LIMITS.items():
            if getattr(self, key) > top:
                raise ConfigError(f"{where}.{key}: {getattr(self, key)} exceeds the "
                                  f"plausible limit {top:g}")
        if self.identify_noise < 0 or self.identify_grid < 1:
            raise ConfigError(f"{where}.identify_noise/identify_grid: need noise >= 0 and "
                              "grid >= 1 (1: start at the centre of the box)")
        self._validate_calibration(where)
        dm, dn = self.identify_data_truncation
        if (dm, dn) != (0, 0) and not (self.n_m <= dm <= 64 and self.n_n <= dn <= 64):
            raise ConfigError(f"{where}.identify_data_truncation: the data FOM needs at least "
                              f"the ROM's truncation ({self.n_m}, {self.n_n}) (and at most 64), "
                              f"got {[dm, dn]}")

    def _validate_calibration(self, where: str) -> None:
        """Keys of the calibration from a ``[data]`` file."""
        if tuple(self.fit_parameters) not in (("d_c", "K"), ("d_c", "K", "d_h")):
            raise ConfigError(f"{where}.fit_parameters: {list(self.fit_parameters)} not in "
                              "[['d_c', 'K'], ['d_c', 'K', 'd_h']]")
        for key in ("box_d_c_nm", "box_K_kJ"):
            lo, hi = getattr(self, key)
            if not (0 < lo < hi < LIMITS["d_c_nm" if key == "box_d_c_nm" else "K_kJ"]):
                raise ConfigError(f"{where}.{key}: need 0 < min < max (plausible), got "
                                  f"{[lo, hi]}")
        if not 1 <= self.substeps <= 256:
            raise ConfigError(f"{where}.substeps: must lie in [1, 256], got {self.substeps}")
        if not 1e-8 <= self.fd_step <= 0.1:
            raise ConfigError(f"{where}.fd_step: must lie in [1e-8, 0.1], got {self.fd_step}")


def _particle(cfg: BrownNeelConfig, d_nm: float, k_kj: float):
    from llgfem.brownneel.params import ParticleParameters

    return ParticleParameters(d_c=d_nm * 1e-9, K=k_kj * 1e3, d_h=cfg.d_h_nm * 1e-9)


def _settings(cfg: BrownNeelConfig):
    """Integrator settings with a step budget: a run needing more than ``STEPS_PER_SAMPLE``
    steps per output sample (at least ``MIN_STEP_BUDGET``) ends as a SolverError instead of
    crawling on (an under-resolved truncation at a high frequency took > 10 min)."""
    from llgfem.brownneel.integrate import TSSettings

    samples = cfg.samples_per_period * (cfg.warmup_periods + cfg.periods)
    budget = max(MIN_STEP_BUDGET, int(STEPS_PER_SAMPLE * samples))
    return TSSettings(rtol=cfg.rtol, atol=cfg.rtol * 1e-5, max_steps=budget)


def _fom(cfg: BrownNeelConfig, d_nm: float, k_kj: float, f_khz: float):
    from llgfem.brownneel.model import BrownNeelModel
    from llgfem.brownneel.studies import run_fom

    model = BrownNeelModel(_particle(cfg, d_nm, k_kj), cfg.n_m, cfg.n_n, cfg.formulation,
                           cfg.precession, b_ref=cfg.B_d_mT * 1e-3)
    guard = model.check_stability(cfg.B_d_mT * 1e-3) if cfg.check_stability else None
    run = run_fom(model, f_khz * 1e3, cfg.B_d_mT * 1e-3, cfg.warmup_periods, cfg.periods,
                  cfg.samples_per_period, _settings(cfg), cfg.backend)
    return run, guard


def _plot(path: Path, t, curves: dict, ylabel: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, (y, style) in curves.items():
        ax.plot(np.asarray(t) * 1e6, y, style, label=label)
    ax.set(xlabel="t [µs]", ylabel=ylabel)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _log(message: str) -> None:
    from llgfem.io.progress import get_logger

    get_logger().info(message)


def _job_fom(cfg: BrownNeelConfig, run_dir: Path, rank0: bool) -> dict:
    run, guard = _fom(cfg, cfg.d_c_nm, cfg.K_kJ, cfg.f_d_kHz)
    rec = run.recorded
    _log(f"brown_neel: FOM with {run.model.size} unknowns: {run.traj.steps} steps, "
         f"{run.traj.seconds:.2f} s")
    summary = {"unknowns": run.model.size, "seconds": run.traj.seconds,
               "steps": run.traj.steps, "max_re_eig_tauN": guard,
               "mz_peak": float(rec.mz.max()), "signal_rms": float(np.sqrt(np.mean(rec.dmz**2))),
               "shift_tauN": run.model.shift}
    if rank0:
        np.savez(run_dir / "states.npz", t=run.traj.t, y=run.traj.y, mz=run.traj.mz,
                 dmz=run.traj.dmz, start=run.start)
        _plot(run_dir / "plots" / "signal.png", rec.t, {"d⟨m_z⟩/dt": (rec.dmz, "k-")},
              "d⟨m_z⟩/dt [1/s]")
        _plot(run_dir / "plots" / "moment.png", rec.t, {"⟨m_z⟩": (rec.mz, "k-")},
              "⟨m_z⟩ [1]")
    return summary


def _basis(cfg: BrownNeelConfig, rank: int | None = None, target=None):
    """POD basis of the basis setting's snapshots; with ``target = (model, drive)`` and
    ``transfer = "boltzmann"`` the snapshots are first mapped to the target particle."""
    from llgfem.rom import pod

    d_nm, k_kj = cfg.basis_d_c_nm or cfg.d_c_nm, cfg.basis_K_kJ or cfg.K_kJ
    f_khz = cfg.basis_f_d_kHz or cfg.f_d_kHz
    source = None
    if cfg.snapshots:
        data = load_npz(cfg.snapshots, "brown_neel.snapshots", {"y": 2, "t": 1})
        y, t = data["y"], data["t"]
        if y.shape[1] != t.size:
            raise DataError(f"brown_neel.snapshots: {cfg.snapshots}: y has {y.shape[1]} "
                            f"columns but t has {t.size} times")
        seconds = 0.0
        _log(f"brown_neel: {y.shape[1]} snapshots of {y.shape[0]} unknowns read from "
             f"{cfg.snapshots}")
    else:
        run, _ = _fom(cfg, d_nm, k_kj, f_khz)
        y, t, seconds, source = run.traj.y, run.traj.t, run.traj.seconds, run.model
        _log(f"brown_neel: snapshot FOM ({d_nm} nm, {k_kj} kJ/m³, {f_khz} kHz): "
             f"{run.traj.steps} steps, {seconds:.2f} s")
    if target is not None and cfg.transfer == "boltzmann":
        from llgfem.brownneel.model import BrownNeelModel
        from llgfem.brownneel.params import SinusoidalDrive
        from llgfem.brownneel.transfer import boltzmann_transfer

        model, drive = target
        if source is None:  # snapshots from a file: the basis particle's model
            source = BrownNeelModel(_particle(cfg, d_nm, k_kj), cfg.n_m, cfg.n_n,
                                    cfg.formulation, cfg.precession, shift=0.0)
        src_drive = SinusoidalDrive(cfg.B_d_mT * 1e-3, f_khz * 1e3)
        if y.shape[0] != model.size:
            raise ConfigError(f"brown_neel.snapshots: {y.shape[0]} rows, the truncation "
                              f"({cfg.n_m}, {cfg.n_n}) has {model.size} unknowns")
        y = boltzmann_transfer(source, model, y, source.xi_z(src_drive, t),
                               model.xi_z(drive, t))
    rank = rank if rank is not None else (cfg.rank or None)
    energy = cfg.energy or None
    return pod(y, rank=rank, energy=energy), seconds


def _job_pod(cfg: BrownNeelConfig, run_dir: Path, rank0: bool) -> dict:
    basis, fom_seconds = _basis(cfg)
    sv = basis.singular_values
    _log(f"brown_neel: POD rank {basis.rank} of {sv.size} singular values, discarded energy "
         f"{basis.discarded_energy:.2e}")
    if rank0:
        np.savez(run_dir / "basis.npz", modes=basis.modes, singular_values=sv,
                 n_m=cfg.n_m, n_n=cfg.n_n)
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.semilogy(sv / sv[0], "k.")
        ax.axvline(basis.rank, ls="--")
        ax.set(xlabel="index i", ylabel="σ_i/σ_1 [1]", title="POD singular values")
        fig.tight_layout()
        (run_dir / "plots").mkdir(parents=True, exist_ok=True)
        fig.savefig(run_dir / "plots" / "singular_values.png", dpi=110)
        plt.close(fig)
    return {"rank": basis.rank, "discarded_energy": basis.discarded_energy,
            "snapshot_fom_seconds": fom_seconds, "n_singular_values": int(sv.size)}


def _job_rom(cfg: BrownNeelConfig, run_dir: Path, rank0: bool) -> dict:
    from llgfem.brownneel.model import BrownNeelModel
    from llgfem.brownneel.params import SinusoidalDrive
    from llgfem.rom import GalerkinReductor, nrmse

    model = BrownNeelModel(_particle(cfg, cfg.d_c_nm, cfg.K_kJ), cfg.n_m, cfg.n_n,
                           cfg.formulation, cfg.precession, b_ref=cfg.B_d_mT * 1e-3)
    drive = SinusoidalDrive(cfg.B_d_mT * 1e-3, cfg.f_d_kHz * 1e3)
    if cfg.basis:
        modes = load_npz(cfg.basis, "brown_neel.basis", {"modes": 2})["modes"]
        modes = modes[:, : cfg.rank] if cfg.rank else modes
        _log(f"brown_neel: basis of rank {modes.shape[1]} read from {cfg.basis}")
    else:
        modes = _basis(cfg, target=(model, drive))[0].modes
    if modes.shape[0] != model.size:
        raise DataError(f"brown_neel.basis: basis has {modes.shape[0]} rows, the truncation "
                          f"({cfg.n_m}, {cfg.n_n}) has {model.size} unknowns")
    from llgfem.brownneel.model import time_grid

    t, start = time_grid(drive, cfg.warmup_periods, cfg.periods, cfg.samples_per_period)
    rom = GalerkinReductor(model.petsc_matrices()).reduce(modes)
    res = rom.solve(model.coefficient_function(drive),
                    rom.project_state(model.initial_state(drive)), t / model.params.tau_n,
                    _settings(cfg), backend=cfg.backend)
    mz, dmz, _ = model.observe(t, rom.reconstruct(res.y), drive)
    _log(f"brown_neel: ROM of rank {rom.rank}: {res.steps} steps, {res.seconds:.3f} s")
    out = {"rank": rom.rank, "rom_seconds": res.seconds, "rom_steps": res.steps,
           "projection_seconds": rom.seconds, "transfer": cfg.transfer}
    curves_m, curves_s = {"ROM": (mz[start:], "r--")}, {"ROM": (dmz[start:], "r--")}
    if cfg.compare_fom:
        fom = model.simulate(drive, t, _settings(cfg), cfg.backend).window(start)
        out.update({"fom_seconds": fom.seconds, "speedup": fom.seconds / res.seconds,
                    "nrmse": nrmse(mz[start:], fom.mz),
                    "nrmse_signal": nrmse(dmz[start:], fom.dmz)})
        curves_m["FOM"], curves_s["FOM"] = (fom.mz, "k-"), (fom.dmz, "k-")
        _log(f"brown_neel: FOM at the target: {fom.seconds:.3f} s, ROM NRMSE "
             f"{out['nrmse']:.2e} (moment), {out['nrmse_signal']:.2e} (signal)")
    if rank0:
        _plot(run_dir / "plots" / "rom_moment.png", t[start:], curves_m, "⟨m_z⟩ [1]")
        _plot(run_dir / "plots" / "rom_signal.png", t[start:], curves_s, "d⟨m_z⟩/dt [1/s]")
    return out


def identify_simulated(cfg: BrownNeelConfig, run_dir: Path, rank0: bool) -> dict:
    """Simulate a measurement, write it as MDF, read it back and calibrate (d_c, K[, d_h]).

    The same path as a measured file (:func:`_job_calibrate`).  No inverse crime: the data
    come from the FOM at ``identify_data_truncation`` (default ``(n_m + 2, n_n + 2)``),
    adaptive PETSc TS BDF2 at ``rtol / 10`` (at most 1e-7) -- the ROM uses Radau IIA fixed
    steps -- with white noise of ``identify_noise`` × RMS (seed 0) and a complex receive gain,
    sampled ``samples_per_period`` times per period, written to
    ``<run dir>/data/measurement.mdf``; the fit is the ``(n_m, n_n)`` POD ROM
    (training FOMs on the search box) with a complex gain per channel.
    """
    from mpi4py import MPI

    from llgfem.brownneel.calibrate_data import CalibrationSetup, write_simulated_measurement
    from llgfem.builders import DataConfig

    (d0, d1), (k0, k1) = cfg.box_d_c_nm, cfg.box_K_kJ
    d_nm, k_kj = cfg.identify_truth
    if not (d0 <= d_nm <= d1 and k0 <= k_kj <= k1):
        raise ConfigError(f"brown_neel.identify_truth: ({d_nm}, {k_kj}) lies outside the search "
                          f"box box_d_c_nm = [{d0}, {d1}] nm, box_K_kJ = [{k0}, {k1}] kJ/m³")

    f_d = cfg.f_d_kHz * 1e3
    samples = cfg.samples_per_period
    setup = CalibrationSetup(amplitude=cfg.B_d_mT * 1e-3, base_frequency=f_d * samples,
                             divider=samples, samples=samples, noise=cfg.identify_noise,
                             data_truncation=_data_truncation(cfg),
                             data_rtol=min(1e-7, 0.1 * cfg.rtol),
                             rom_truncation=(cfg.n_m, cfg.n_n), rank=cfg.rank or 40,
                             box=(tuple(cfg.box_d_c_nm), tuple(cfg.box_K_kJ)),
                             train_rtol=cfg.rtol, substeps=cfg.substeps,
                             warmup_periods=cfg.warmup_periods)
    truth = {"d_c": d_nm * 1e-9, "K": k_kj * 1e3}
    if cfg.d_h_nm:
        truth["d_h"] = cfg.d_h_nm * 1e-9
    path = (run_dir / "data" / "measurement.mdf").resolve()
    sim = write_simulated_measurement(path, setup, truth, seed=0, comm=MPI.COMM_WORLD)
    _log(f"brown_neel: simulated measurement of (d_c, K) = ({d_nm} nm, {k_kj} kJ/m³) in "
         f"{sim['fom_seconds']:.1f} s ({sim['data_model']}) -> {path}")
    data = DataConfig(path=str(path), gain="complex", stop_drive=True)
    data.validate("data")
    out = _job_calibrate(cfg, data, "", run_dir, rank0)
    return {**out, "data_file": str(path), "data_model": sim["data_model"],
            "data_fom_seconds": sim["fom_seconds"], "true": [d_nm, k_kj]}


def _data_truncation(cfg: BrownNeelConfig) -> tuple[int, int]:
    if tuple(cfg.identify_data_truncation) == (0, 0):
        return cfg.n_m + 2, cfg.n_n + 2
    return tuple(cfg.identify_data_truncation)


def _job_calibrate(cfg: BrownNeelConfig, data, source: str, run_dir: Path,
                   rank0: bool) -> dict:
    """Calibrate (d_c, K[, d_h]) from the ``[data]`` MDF measurement with 95 % intervals."""
    from mpi4py import MPI

    from llgfem.brownneel.calibrate_data import (
        CalibrationSetup,
        build_family,
        read_measurement,
    )
    from llgfem.brownneel.params import SinusoidalDrive
    from llgfem.io.progress import get_logger

    comm = MPI.COMM_WORLD
    drive = (SinusoidalDrive(cfg.B_d_mT * 1e-3, cfg.f_d_kHz * 1e3)
             if data.field == "config" else None)
    meas = read_measurement(data, source=source, comm=comm, odd_only=cfg.odd_harmonics,
                            drive=drive)
    _log(f"brown_neel: {meas.info['path']}: {meas.channels} channel(s), "
         f"{meas.bins.size} harmonics of {meas.drive.frequency:g} Hz "
         f"({meas.frequencies.min():g}-{meas.frequencies.max():g} Hz), drive "
         f"{meas.drive.amplitude * 1e3:g} mT, gain {meas.gain}")
    setup = CalibrationSetup(amplitude=meas.drive.amplitude, rom_truncation=(cfg.n_m, cfg.n_n),
                             rank=cfg.rank or 40, box=(tuple(cfg.box_d_c_nm),
                                                       tuple(cfg.box_K_kJ)),
                             train_rtol=cfg.rtol, substeps=cfg.substeps,
                             warmup_periods=cfg.warmup_periods, base=meas.base)
    cache = None
    if cfg.basis:
        cache = Path(cfg.basis)
        if not cache.is_absolute() and source:
            cache = Path(source).parent / cache
    try:
        family, finfo = build_family(setup, cache, drive=meas.drive, base=meas.base)
    except ValueError as err:  # a basis file of another truncation
        raise ConfigError(f"brown_neel.basis: {err}") from None
    _log(f"brown_neel: ROM ({cfg.n_m}, {cfg.n_n}) rank {family.rank}, offline "
         f"{finfo['offline_seconds']:.1f} s")
    out = _fit(meas, family, setup, cfg)
    unc = out.pop("uncertainty")
    logger = get_logger(comm=comm)
    logger.info("brown_neel: calibrated parameters (%s) with 95 %% intervals\n%s",
                ", ".join(f"{n} [{u}]" for n, u in zip(out["names"], out["units"],
                                                       strict=True)), unc.table())
    unc.warn(comm, logger)
    summary = {**out, "uncertainty": unc.to_json(), "truth_in_file": meas.truth,
               "data": meas.info, "rom": finfo, "tracer": _tracer_summary(meas.base)}
    if rank0:
        _plot_calibration(run_dir / "plots" / "calibration.png", meas, family, setup, out)
    return summary


def _fit(meas, family, setup, cfg: BrownNeelConfig) -> dict:
    from llgfem.brownneel.calibrate_data import fit_measurement

    return fit_measurement(meas, family, setup, names=tuple(cfg.fit_parameters),
                           grid=cfg.identify_grid, fd_step=cfg.fd_step, d_h_start=cfg.d_h_nm)


def _tracer_summary(base) -> dict:
    return {"M_S": base.M_S, "alpha": base.alpha, "gamma": base.gamma, "T": base.T,
            "eta": base.eta}


def _plot_calibration(path: Path, meas, family, setup, out: dict) -> None:
    """Measured and fitted harmonic amplitudes; the (d_c, K) estimate with its interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from llgfem.brownneel.calibrate_data import model_spectrum

    names = tuple(out["names"])
    fitted = model_spectrum(meas, family, setup, out["estimate"], names)
    gain = np.array([complex(*g) for g in out["gain"]])
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 4))
    f_khz = meas.frequencies * 1e-3
    for c in range(meas.channels):
        ax0.semilogy(f_khz, np.abs(meas.spectra[c]), "ko", ms=4, label=f"measured, channel {c}")
        ax0.semilogy(f_khz, np.abs(gain[c] * fitted), "r.-", label=f"fitted, channel {c}")
    unit = "V" if meas.gain != "none" else "1/s"
    ax0.set(xlabel="frequency f [kHz]", ylabel=f"|û_k| [{unit}]", title="harmonic spectrum")
    ax0.legend(fontsize=8)
    est, lo, hi = out["estimate"], out["ci95_low"], out["ci95_high"]
    ax1.errorbar([est[0]], [est[1]], xerr=[[est[0] - lo[0]], [hi[0] - est[0]]],
                 yerr=[[est[1] - lo[1]], [hi[1] - est[1]]], fmt="ro", capsize=4,
                 label="estimate, 95 % intervals")
    if "d_c" in meas.truth and "K" in meas.truth:
        ax1.plot(meas.truth["d_c"] * 1e9, meas.truth["K"] * 1e-3, "k*", ms=12,
                 label="truth recorded in the file")
    ax1.set(xlabel="core diameter d_c [nm]", ylabel="anisotropy K [kJ/m³]",
            title="calibrated particle")
    ax1.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_job(cfg: Config) -> dict:
    """Run one Brown–Néel job (dispatch on ``cfg.job.kind``); returns the JSON summary.

    Raises:
        ConfigError: for an unknown kind or an invalid ``[brown_neel]`` table.
    """
    from mpi4py import MPI

    kind = cfg.job.kind
    if kind not in JOB_KINDS:
        raise ConfigError(f"job.kind: {kind!r} is not a Brown–Néel job {JOB_KINDS}")
    bn = cfg.section("brown_neel", BrownNeelConfig)
    rank0 = MPI.COMM_WORLD.rank == 0
    run_dir = Path(cfg.run_dir)
    if rank0:
        write_resolved_config(cfg, run_dir, {"brown_neel": bn})
    if kind == "brown_neel_identify":
        source = "[data]" if "data" in cfg.sections else (
            f"a simulated measurement of (d_c, K) = ({bn.identify_truth[0]} nm, "
            f"{bn.identify_truth[1]} kJ/m³)")
        _log(f"{kind}: calibrating {list(bn.fit_parameters)} from {source} with the ROM at "
             f"truncation ({bn.n_m}, {bn.n_n})")
    else:
        _log(f"{kind}: particle d_c = {bn.d_c_nm} nm, K = {bn.K_kJ} kJ/m³, drive {bn.B_d_mT} "
             f"mT at {bn.f_d_kHz} kHz, truncation ({bn.n_m}, {bn.n_n}), {bn.backend}")
    t0 = time.perf_counter()
    with truncation_hint(bn.n_m, bn.n_n, "brown_neel"):
        summary = _run_kind(kind, cfg, bn, run_dir, rank0)
    summary["wall_seconds"] = time.perf_counter() - t0
    if rank0:
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                 for k, v in summary.items()}
        (run_dir / "summary.json").write_text(json.dumps(clean, indent=2, default=float))
    _log(f"{kind}: done, {summary['wall_seconds']:.2f} s -> {run_dir}")
    MPI.COMM_WORLD.Barrier()
    return summary


@contextmanager
def truncation_hint(n_m: int, n_n: int, table: str):
    """Re-raise a :class:`SolverError` with a hint when ``(n_m, n_n)`` is below the demos'.

    Args:
        n_m, n_n: the truncation in use.
        table: the config table holding ``n_m``/``n_n`` (``brown_neel`` or ``model``).
    """
    from llgfem.solvers.linear import SolverError

    try:
        yield
    except SolverError as e:
        if n_m >= DEMO_TRUNCATION[0] and n_n >= DEMO_TRUNCATION[1]:
            raise
        raise SolverError(f"{e}; the truncation ({table}.n_m, {table}.n_n) = ({n_m}, {n_n}) "
                          f"is below the demos' {DEMO_TRUNCATION} and may be too small for "
                          f"this particle and drive: raise {table}.n_m/{table}.n_n") from e


def _run_kind(kind: str, cfg: Config, bn: BrownNeelConfig, run_dir: Path, rank0: bool) -> dict:
    """Dispatch one job kind; returns its summary (without the wall time)."""
    job = {"brown_neel_fom": _job_fom, "brown_neel_pod": _job_pod,
           "brown_neel_rom": _job_rom, "brown_neel_identify": identify_simulated}[kind]
    if kind == "brown_neel_identify" and "data" in cfg.sections:
        from llgfem.builders import DataConfig

        data = cfg.section("data", DataConfig)
        if rank0:
            write_resolved_config(cfg, run_dir, {"brown_neel": bn, "data": data})
        return {"kind": kind, **_job_calibrate(bn, data, cfg.source, run_dir, rank0)}
    return {"kind": kind, **job(bn, run_dir, rank0)}
