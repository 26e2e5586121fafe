r"""Brown–Néel calibration from an MDF measurement: (d_c, K[, d_h]) with 95 % intervals.

Measurement model (one receive channel c per coil along the drive axis z; ``V`` samples per
drive period, sampling rate 2B, sample times t_v = v/(2B), v = 0..V−1; MDF conventions of
:mod:`llgfem.io.mdf_signals`):

    û_{c,k} = g_c ŝ_k(θ) + ε_{c,k},   ŝ_k(θ) = Σ_v s(t_v; θ) e^{−2πikv/V},
    s(t; θ) = d⟨m_z⟩/dt [1/s]  of the coupled Brown–Néel model in its periodic steady state,

with θ = (d_c, K[, d_h]) and g_c the complex gain of channel c: either known (``gain =
"file"``: the spectra are divided by the file's ``transferFunction``, g_c = 1) or a nuisance
parameter fitted with θ (``gain = "fit"``).  Frames and periods are averaged after the
background handling of :func:`llgfem.io.mdf.frequency_domain`.  White time-domain noise of
standard deviation σ_u gives independent real and imaginary parts of variance V σ_u²/2 in every
bin 0 < k < V/2, so the stacked (Re, Im) residual over the selected bins has i.i.d. errors and
the Gauss–Newton/Fisher covariance of :mod:`llgfem.calibration.uncertainty` applies (σ
estimated from the residual).  Bins: harmonics k·f_d in [f_min, f_max], odd only by default
(the even harmonics of a pure sine drive carry no signal), the drive frequency removed
(band-stop: real scanners filter the drive feed-through).

The fit itself (residual, finite-difference Jacobian, Levenberg–Marquardt, Fisher intervals)
is :mod:`llgfem.brownneel.calibrate_fit`; its functions are re-exported here.

Model: the parametric POD-Galerkin ROM :class:`~llgfem.brownneel.calibrate_rom.BrownNeelFamily`
(training FOMs at the corners and the centre of the search box, POD, Radau IIA fixed steps,
evaluated at the file's sample times).  Fit: Levenberg–Marquardt
(:func:`llgfem.calibration.fit.least_squares_fit`) in (nm, kJ/m³[, nm]) from the best point of
a coarse dictionary, gains by linear least squares at each dictionary point.  Jacobian: central
finite differences of the ROM spectra, ∂ŝ/∂θ_j ≈ (ŝ(θ + h_j e_j) − ŝ(θ − h_j e_j))/(2h_j), h_j
= ``fd_step`` · |θ_j| (the discrete ROM map is smooth: fixed steps; ``fd_step_study`` shows the
O(h²) convergence and the round-off floor); gains enter linearly (exact columns ŝ, iŝ).

No inverse crime (``simulate_measurement``): the data come from the FOM
(:class:`~llgfem.brownneel.model.BrownNeelModel`) at a finer truncation than the ROM, integrated
by adaptive PETSc TS BDF2 at a tight tolerance (the ROM: Radau IIA, fixed steps), plus white
noise of ``noise`` × RMS(u) per sample, written as an MDF v2 measurement.

Notation: θ physical parameters, g_c channel gains, V samples per period, K selected bins,
B receiver bandwidth, f_d drive frequency, σ_u time-domain noise level.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from llgfem.brownneel.calibrate_fit import (
    PARAMETER_UNITS,
    fd_jacobian,
    fd_step_study,
    fit_measurement,
    model_spectrum,
)
from llgfem.brownneel.calibrate_rom import BrownNeelFamily
from llgfem.brownneel.params import ParticleParameters, SinusoidalDrive

__all__ = [
    "PARAMETER_UNITS",
    "BNMeasurement",
    "CalibrationSetup",
    "bench_cases",
    "build_family",
    "clean_signal",
    "write_demo_data",
    "drive_of",
    "fd_jacobian",
    "fd_step_study",
    "fit_measurement",
    "model_spectrum",
    "read_measurement",
    "rom_convergence",
    "rom_label",
    "simulate_measurement",
    "write_measurement",
    "write_simulated_measurement",
]

#: MDF tracer user entries holding the fixed particle properties (SI) and the simulated truth.
TRACER_KEYS = {"M_S": "_saturationMagnetisation", "alpha": "_damping",
               "gamma": "_gyromagneticRatio", "T": "_temperature", "eta": "_viscosity"}
TRUTH_KEYS = {"d_c": "_trueCoreDiameter", "K": "_trueAnisotropy",
              "d_h": "_trueHydrodynamicDiameter"}


@dataclass(frozen=True)
class CalibrationSetup:
    """Scanner, data model and ROM settings of a simulated Brown–Néel measurement.

    Attributes:
        amplitude: drive amplitude B_d [T] (along z).
        base_frequency: MDF ``baseFrequency`` [Hz]; f_d = base_frequency/divider.
        divider: drive divider.
        samples: V, samples per drive period (bandwidth = V f_d/2).
        gain: true complex gain of the receive channel (file units per 1/s).
        noise: relative noise, σ_u = noise · RMS(u).
        data_truncation: (N_m, N_n) of the FOM that simulates the data.
        data_rtol: TS tolerance of the data FOM.
        rom_truncation: (N_m, N_n) of the ROM.
        rank: POD rank.
        box: search box ((d_c min, max) nm, (K min, max) kJ/m³).
        train_rtol: TS tolerance of the training FOMs.
        train_points: training FOMs: 5 (box corners and centre), 3 (centre and two opposite
            corners) or 1 (centre).
        substeps: Radau steps per sample of the ROM.
        warmup_periods: periods simulated before the recorded one (data and ROM).
        base: fixed particle properties (M_S, α, γ, T, η).
    """

    amplitude: float = 15e-3
    base_frequency: float = 2.5e6
    divider: int = 100
    samples: int = 100
    gain: complex = 2e-7 * np.exp(0.6j)
    noise: float = 0.01
    data_truncation: tuple[int, int] = (14, 12)
    data_rtol: float = 1e-7
    rom_truncation: tuple[int, int] = (12, 10)
    rank: int = 60
    box: tuple[tuple[float, float], tuple[float, float]] = ((19.0, 21.0), (5.0, 7.0))
    train_rtol: float = 1e-7
    train_points: int = 5
    substeps: int = 4
    warmup_periods: float = 1.0
    base: ParticleParameters = ParticleParameters()

    @property
    def frequency(self) -> float:
        return self.base_frequency / self.divider

    @property
    def drive(self) -> SinusoidalDrive:
        return SinusoidalDrive(self.amplitude, self.frequency)

    @property
    def bandwidth(self) -> float:
        return 0.5 * self.samples * self.frequency

    def sample_times(self) -> np.ndarray:
        return np.arange(self.samples) / (2 * self.bandwidth)


# --------------------------------------------------------------------------- data (FOM)


def _fom_signal(particle: ParticleParameters, truncation, drive: SinusoidalDrive,
                t_samples: np.ndarray, warmup_periods: float, rtol: float) -> tuple:
    """FOM d⟨m_z⟩/dt at warm-up + the sample times; (signal, seconds, steps)."""
    from llgfem.brownneel.integrate import TSSettings
    from llgfem.brownneel.model import BrownNeelModel

    model = BrownNeelModel(particle, *truncation, "dynamic", b_ref=drive.amplitude)
    n_warm = int(round(warmup_periods * t_samples.size))
    dt = t_samples[1] - t_samples[0]
    t = np.arange(n_warm + t_samples.size) * dt
    traj = model.simulate(drive, t, TSSettings(rtol=rtol, atol=rtol * 1e-5))
    return traj.dmz[n_warm:], traj.seconds, traj.steps


def simulate_measurement(setup: CalibrationSetup, truth: dict, seed: int = 0,
                         clean: np.ndarray | None = None):
    """A noisy MDF measurement of the particle ``truth`` ({"d_c": m, "K": J/m³[, "d_h": m]}).

    Args:
        setup: scanner, noise and data-model settings.
        truth: true physical parameters (SI).
        seed: noise seed.
        clean: the noise-free FOM signal (reused across seeds), or None to simulate it.

    Returns:
        (MDF, info) with info = {"clean": s(t_v), "fom_seconds", "data_model"}.
    """
    particle = replace(setup.base, d_c=truth["d_c"], K=truth["K"], d_h=truth.get("d_h", 0.0))
    info = {"data_model": data_model_label(setup)}
    if clean is None:
        clean, seconds, steps = _fom_signal(particle, setup.data_truncation, setup.drive,
                                            setup.sample_times(), setup.warmup_periods,
                                            setup.data_rtol)
        info.update({"fom_seconds": seconds, "fom_steps": steps})
    info["clean"] = clean
    v = setup.samples
    spec = np.fft.rfft(clean)
    spec[0] = 0.0  # no DC (drive feed-through and offsets are not modelled)
    spec[-1] = spec[-1].real if v % 2 == 0 else spec[-1]
    u = np.fft.irfft(setup.gain * spec, n=v)
    rng = np.random.default_rng(seed)
    noisy = u + setup.noise * np.sqrt(np.mean(u**2)) * rng.standard_normal(v)
    return write_measurement(noisy, setup, truth), info


def write_simulated_measurement(path: str | Path, setup: CalibrationSetup, truth: dict,
                                seed: int = 0, comm=None) -> dict:
    """Simulate a measurement of ``truth`` (:func:`simulate_measurement`) and write it as MDF.

    The first half of every simulated Brown–Néel pipeline (simulate → write MDF → read →
    fit): rank 0 runs the data FOM and writes ``path``; the outcome (the data-model
    description or the error) is broadcast, so every rank returns the same or raises the same.

    Returns:
        ``{"path", "data_model", "fom_seconds", "fom_steps"}``.
    """
    from llgfem.errors import DataError
    from llgfem.io.mdf import write_mdf
    from llgfem.solvers.linear import SolverError

    rank = 0 if comm is None else comm.rank
    out, err = None, None
    if rank == 0:
        try:
            mdf, info = simulate_measurement(setup, truth, seed)
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            write_mdf(path, mdf)
            out = {"path": str(path), "data_model": info["data_model"],
                   "fom_seconds": info["fom_seconds"], "fom_steps": info["fom_steps"]}
        except SolverError as e:
            err = ("solver", f"brown_neel: simulating the measurement failed: {e}")
        except OSError as e:
            err = ("data", f"brown_neel: cannot write the simulated measurement {path}: {e}")
    if comm is not None:
        out, err = comm.bcast((out, err), root=0)
    if err is not None:
        raise (SolverError if err[0] == "solver" else DataError)(err[1])
    return out


def data_model_label(setup: CalibrationSetup) -> str:
    """How the data were simulated (the FOM and the noise; the clean-signal cache key)."""
    n_m, n_n = setup.data_truncation
    return (f"Brown-Neel FOM, dynamic formulation, truncation ({n_m}, {n_n}), PETSc TS BDF2 "
            f"rtol {setup.data_rtol:g}, {setup.warmup_periods:g} warm-up period(s); white "
            f"noise {100 * setup.noise:g} % of RMS")


def rom_label(setup: CalibrationSetup) -> str:
    """The model that fits the data."""
    return (f"POD-Galerkin ROM, truncation {tuple(setup.rom_truncation)}, rank {setup.rank}, "
            f"Radau IIA {setup.substeps} steps/sample")


def write_measurement(u: np.ndarray, setup: CalibrationSetup, truth: dict | None = None):
    """An MDF v2 measurement object: one frame, one period, one channel, time domain."""
    from llgfem.io.mdf import MDF, Acquisition, Measurement, Receiver, drive_field

    v = setup.samples
    spec_tf = np.full((1, v // 2 + 1), setup.gain, dtype=complex)
    rx = Receiver(num_channels=1, num_sampling_points=v, bandwidth=setup.bandwidth, unit="V",
                  transfer_function=spec_tf)
    df = drive_field(setup.base_frequency, [setup.divider], [setup.amplitude], [0.0], "sine")
    acq = Acquisition(drivefield=df, receiver=rx, num_frames=1, num_periods_per_frame=1)
    meas = Measurement(data=np.asarray(u, float).reshape(1, 1, 1, v))
    base = setup.base
    tracer = {"name": ["simulated Brown-Neel tracer"], "batch": ["simulation"],
              "vendor": ["n.a."], "solute": ["water"], "concentration": [0.0],
              "volume": [0.0]}
    for attr, key in TRACER_KEYS.items():
        tracer[key] = [float(getattr(base, attr))]
    for name, key in TRUTH_KEYS.items():
        if truth is not None and name in truth:
            tracer[key] = [float(truth[name])]
    experiment = {"isSimulation": True, "name": "brown_neel_calibration",
                  "description": data_model_label(setup)}
    return MDF(acquisition=acq, measurement=meas, tracer=tracer, experiment=experiment,
               scanner={"name": "llgfem 1-D spectrometer (drive along z)",
                        "facility": "simulation", "manufacturer": "llgfem",
                        "operator": "llgfem", "topology": "FFL"})


# --------------------------------------------------------------------------- reading


@dataclass
class BNMeasurement:
    """What the fit needs from an MDF file.

    Attributes:
        spectra: (C, K) complex frame means on the selected window bins.
        bins: (K,) rfft indices over the window of J periods (J V samples).
        frequencies: (K,) Hz.
        periods: J, drive periods per window (harmonic h sits at bin J h).
        samples: V, samples per period.
        drive: the 1-D sine drive (along z).
        t_samples: (V,) sample times [s] within one period.
        base: fixed particle properties (file tracer entries, or overrides).
        truth: the simulated truth recorded in the file (SI), if any.
        gain: ``complex``, ``real`` or ``none`` (DataConfig.gain).
        info: the reader's description (frames, selection counts, path).
    """

    spectra: np.ndarray
    bins: np.ndarray
    frequencies: np.ndarray
    periods: int
    samples: int
    drive: SinusoidalDrive
    t_samples: np.ndarray
    base: ParticleParameters
    truth: dict = field(default_factory=dict)
    gain: str = "complex"
    info: dict = field(default_factory=dict)

    @property
    def channels(self) -> int:
        return int(self.spectra.shape[0])

    def model_spectrum(self, s_period: np.ndarray) -> np.ndarray:
        """Window spectrum at ``bins`` of a periodic signal given over one period (V,).

        The rfft over J repeated periods is J ŝ_h at bin J h and 0 between harmonics.
        """
        one = np.fft.rfft(s_period)
        out = np.zeros(self.bins.size, dtype=complex)
        on = self.bins % self.periods == 0
        out[on] = self.periods * one[self.bins[on] // self.periods]
        return out


def _tracer_value(mdf, key: str):
    value = mdf.tracer.get(key)
    if value is None:
        return None
    arr = np.atleast_1d(np.asarray(value, dtype=float))
    return float(arr[0])


def drive_of(mdf, where: str = "data.path") -> SinusoidalDrive:
    """The single sine drive channel of the file as a z drive.

    Raises:
        MDFError: more than one drive channel/frequency or a non-sine waveform.
    """
    from llgfem.io.mdf import MDFError

    df = mdf.acquisition.drivefield
    if df.divider.size != 1:
        raise MDFError(f"{where}: acquisition/drivefield: the Brown-Neel calibration needs one "
                       f"drive channel with one frequency, got divider shape "
                       f"{df.divider.shape}")
    wave = str(np.asarray(df.waveform).ravel()[0]).lower()
    if wave != "sine":
        raise MDFError(f"{where}: acquisition/drivefield/waveform: {wave!r}, only 'sine' is "
                       "supported")
    amp, phase = float(df.strength.ravel()[0]), float(df.phase.ravel()[0])
    return SinusoidalDrive(amp, float(df.frequencies.ravel()[0]), phase)


def read_measurement(dcfg, *, source: str = "", comm=None, odd_only: bool = True,
                     base: ParticleParameters | None = None,
                     drive: SinusoidalDrive | None = None) -> BNMeasurement:
    """Read an MDF v2 measurement for the Brown–Néel fit through ``calibration.data``.

    Frames, background, transfer-function correction and the frequency selection (band
    limits, SNR, drive band-stop) are those of :func:`llgfem.calibration.data.read_mdf_spectra`
    (the ``calibrate`` job's reader); ``odd_only`` further keeps the odd harmonics.

    Args:
        dcfg: the ``[data]`` table (:class:`llgfem.builders.DataConfig`).
        source: the config file (``data.path`` is relative to it).
        comm: communicator (rank 0 reads and broadcasts; errors on every rank).
        odd_only: keep odd harmonics of the drive only.
        base: fixed particle properties overriding the file's tracer entries.
        drive: drive overriding the file's (``data.field = "config"``).

    Raises:
        DataError/MDFError: an invalid file or one the model cannot describe (named entry).
    """
    from llgfem.calibration.data import load_measurement
    from llgfem.errors import DataError
    from llgfem.io.mdf import read_mdf

    spectra = load_measurement(dcfg, source, comm)
    if not hasattr(spectra, "bins"):
        raise DataError("data.format: the Brown-Neel calibration reads MDF measurements only")
    path = spectra.info["path"]
    mdf = read_mdf(path, comm=comm)
    drive = drive or drive_of(mdf)
    rx = mdf.acquisition.receiver
    v, j = rx.num_sampling_points, mdf.acquisition.num_periods_per_frame
    period_samples = rx.sampling_rate / drive.frequency
    if abs(period_samples - v) > 1e-6 * v:
        raise DataError(f"data.path: {path}: acquisition/receiver/numSamplingPoints = {v} is "
                        f"not one drive period ({period_samples:g} samples at 2B = "
                        f"{rx.sampling_rate:g} Hz and f_d = {drive.frequency:g} Hz)")
    keep = np.ones(spectra.bins.size, dtype=bool)
    if odd_only:
        keep = (spectra.bins % j == 0) & ((spectra.bins // j) % 2 == 1)
    if not np.any(keep):
        raise DataError(f"data: no odd harmonic of {drive.frequency:g} Hz left in the "
                        f"selected band {spectra.info.get('f_kept_hz')}")
    props = {attr: _tracer_value(mdf, key) for attr, key in TRACER_KEYS.items()}
    base = base or replace(ParticleParameters(),
                           **{k: val for k, val in props.items() if val is not None})
    truth = {name: _tracer_value(mdf, key) for name, key in TRUTH_KEYS.items()}
    info = {**spectra.info, "bins_kept": int(keep.sum()), "odd_harmonics_only": odd_only,
            "tracer_from_file": {k: v for k, v in props.items() if v is not None}}
    return BNMeasurement(
        spectra=spectra.data[:, keep], bins=spectra.bins[keep],
        frequencies=spectra.freqs[keep], periods=j, samples=v, drive=drive,
        t_samples=np.arange(v) / rx.sampling_rate, base=base,
        truth={k: val for k, val in truth.items() if val is not None},
        gain=dcfg.gain, info=info)


# --------------------------------------------------------------------------- ROM


def build_family(setup: CalibrationSetup, cache: str | Path | None = None,
                 drive: SinusoidalDrive | None = None,
                 base: ParticleParameters | None = None) -> tuple[BrownNeelFamily, dict]:
    """POD basis from training FOMs at the box corners and centre, and its parametric ROM.

    The snapshots are the FOM states over warm-up + one period at the ROM truncation, each
    normalised to unit norm per time (the dynamic formulation's state scale varies with the
    leak shift).  With ``cache`` an NPZ with ``modes`` is read if present (its leading
    ``setup.rank`` modes) and written otherwise.

    Returns:
        (family, info) with offline seconds and the POD spectrum summary.
    """
    from llgfem.brownneel.integrate import TSSettings
    from llgfem.brownneel.model import BrownNeelModel
    from llgfem.rom import pod

    drive = drive or setup.drive
    base = base or setup.base
    t0 = time.perf_counter()
    info: dict = {"rom_truncation": list(setup.rom_truncation)}
    if cache is not None and Path(cache).exists():
        from llgfem.errors import load_npz

        data = load_npz(str(cache), "brown_neel.basis", {"modes": 2})
        modes = data["modes"][:, : setup.rank]  # POD modes are ordered: truncate to rank
        info["basis_file"] = str(cache)
        if "offline_seconds" in data:
            info["offline_seconds_when_built"] = float(data["offline_seconds"])
    else:
        (d0, d1), (k0, k1) = setup.box
        centre = (0.5 * (d0 + d1), 0.5 * (k0 + k1))
        train = {5: [(d0, k0), (d0, k1), (d1, k0), (d1, k1), centre],
                 3: [centre, (d0, k0), (d1, k1)], 1: [centre]}[setup.train_points]
        snaps = []
        t = np.linspace(0, (1 + setup.warmup_periods) * drive.period,
                        int(round((1 + setup.warmup_periods) * 200)) + 1)
        for d, k in train:
            model = BrownNeelModel(replace(base, d_c=d * 1e-9, K=k * 1e3),
                                   *setup.rom_truncation, "dynamic", b_ref=drive.amplitude)
            traj = model.simulate(drive, t, TSSettings(rtol=setup.train_rtol,
                                                       atol=setup.train_rtol * 1e-5))
            snaps.append(traj.y / np.linalg.norm(traj.y, axis=0))
        basis = pod(np.hstack(snaps), rank=setup.rank)
        modes = basis.modes
        info.update({"training": [list(p) for p in train],
                     "discarded_energy": basis.discarded_energy})
        if cache is not None:
            Path(cache).parent.mkdir(parents=True, exist_ok=True)
            np.savez(cache, modes=modes, truncation=np.array(setup.rom_truncation),
                     offline_seconds=time.perf_counter() - t0)
    family = BrownNeelFamily(modes, setup.rom_truncation, base, b_ref=drive.amplitude)
    info.update({"rank": family.rank, "offline_seconds": time.perf_counter() - t0})
    return family, info


# --------------------------------------------------------------------------- demo data

#: The committed demo files (``demos/data``): measurement and the ROM basis of the default setup.
DEMO_MDF = "bn_measurement.mdf"
DEMO_BASIS = "bn_rom_basis.npz"
DEMO_CLEAN = "bn_clean_signal.npz"


def clean_signal(setup: CalibrationSetup, truth: dict, cache: str | Path | None = None
                 ) -> tuple[np.ndarray, dict]:
    """The noise-free data-FOM signal at the sample times, cached in ``cache`` (NPZ).

    A cache is used only if it records the same truth, data model and sample times.
    """
    label = data_model_label(setup)
    key = np.array([truth["d_c"], truth["K"], truth.get("d_h", 0.0), setup.amplitude,
                    setup.frequency, setup.samples])
    if cache is not None and Path(cache).exists():
        with np.load(cache, allow_pickle=False) as data:
            if (str(data["label"]) == label and data["key"].shape == key.shape
                    and np.allclose(data["key"], key, rtol=1e-12)):
                return np.array(data["clean"]), {"fom_seconds": float(data["seconds"]),
                                                 "fom_steps": int(data["steps"]),
                                                 "clean_from_cache": str(cache)}
    particle = replace(setup.base, d_c=truth["d_c"], K=truth["K"], d_h=truth.get("d_h", 0.0))
    clean, seconds, steps = _fom_signal(particle, setup.data_truncation, setup.drive,
                                        setup.sample_times(), setup.warmup_periods,
                                        setup.data_rtol)
    if cache is not None:
        np.savez(cache, clean=clean, key=key, label=np.array(label), seconds=seconds,
                 steps=steps)
    return clean, {"fom_seconds": seconds, "fom_steps": steps}


def write_demo_data(folder: str | Path, seed: int = 2026,
                    setup: CalibrationSetup | None = None, rebuild: bool = False) -> dict:
    """Simulate the demo measurement (FOM, 1 % noise) and build the ROM basis; write both.

    Writes ``DEMO_MDF``, ``DEMO_BASIS`` and the clean FOM signal ``DEMO_CLEAN`` into
    ``folder``; an existing basis/clean signal is reused unless ``rebuild``.

    Returns:
        Timings and the data-model description.
    """
    from llgfem.io.mdf import write_mdf

    setup = setup or CalibrationSetup()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    basis, clean_path = folder / DEMO_BASIS, folder / DEMO_CLEAN
    for f in (basis, clean_path):
        if rebuild and f.exists():
            f.unlink()
    _, finfo = build_family(setup, basis)
    truth = _truths()[0]
    clean, cinfo = clean_signal(setup, truth, clean_path)
    mdf, info = simulate_measurement(setup, truth, seed, clean)
    path = write_mdf(folder / DEMO_MDF, mdf)
    return {"mdf": str(path), "basis": str(basis), **finfo, **cinfo,
            "data_model": info["data_model"]}


# --------------------------------------------------------------------------- bench


def rom_convergence(setup: CalibrationSetup, family: BrownNeelFamily, truth: dict,
                    clean: np.ndarray, meas: BNMeasurement,
                    substeps: Sequence[int] = (4, 8, 16)) -> dict:
    """ROM error against the data FOM (finer truncation) on the fitted bins, over the noise.

    With gain 1 the ROM spectrum ŝ at the truth is compared with the clean data-FOM spectrum
    on the measurement's bins; the noise norm there is σ_u sqrt(V/2) sqrt(2K) (white noise of
    ``noise`` · RMS in time).  A ratio ≪ 1 means the ROM (truncation, POD rank, time steps)
    is converged for this noise level.  Also the change between successive ``substeps``.
    """
    fom = meas.model_spectrum(clean)
    centred = clean - clean.mean()
    noise = setup.noise * np.sqrt(np.mean(centred**2) * setup.samples / 2 * 2 * fom.size)
    theta = [truth["d_c"] / 1e-9, truth["K"] / 1e3]
    out = {"noise_norm": float(noise), "substeps": {}}
    for sub in substeps:
        rom = model_spectrum(meas, family, replace(setup, substeps=sub), theta)
        out["substeps"][str(sub)] = {
            "error_over_noise": float(np.linalg.norm(rom - fom) / noise),
            "relative_error": float(np.linalg.norm(rom - fom) / np.linalg.norm(fom))}
    return out


def _truths() -> list[dict]:
    return [{"d_c": 20.0e-9, "K": 6.0e3}]


def bench_cases(seeds: Sequence[int], setup: CalibrationSetup | None = None,
                cache: str | Path | None = None) -> list[dict]:
    """One record per noise seed and parameter set (the keys read by bench/calibrate_data.py).

    The data FOM runs once per parameter set (the noise seeds reuse its clean signal); each
    seed writes an MDF measurement to a temporary file and reads it back through
    :func:`read_measurement` (the path of ``llgfem run``).  With the default setup the
    committed basis ``demos/data/bn_rom_basis.npz`` (built by :func:`write_demo_data` from the
    same setup; unless ``cache`` is given) and the cached clean FOM signal
    ``demos/data/bn_clean_signal.npz`` (written at the first run, checked against the truth
    and data model) are used.  Fits start at (20.5 nm, 6.5 kJ/m³) (no dictionary).
    """
    import tempfile

    from llgfem.builders import DataConfig
    from llgfem.io.mdf import write_mdf

    data_dir = Path(__file__).resolve().parents[2] / "demos" / "data"
    clean_cache = None
    if setup is None and data_dir.is_dir():  # the committed files of the default setup
        clean_cache = data_dir / DEMO_CLEAN
        if cache is None and (data_dir / DEMO_BASIS).exists():
            cache = data_dir / DEMO_BASIS
    setup = setup or CalibrationSetup()
    family, finfo = build_family(setup, cache)
    cases = []
    start = (20.5, 6.5)  # LM start (nm, kJ/m³), away from every truth of _truths()
    for truth in _truths():
        clean, cinfo = clean_signal(setup, truth, clean_cache)
        true_fit = [truth["d_c"] / 1e-9, truth["K"] / 1e3]
        conv = None
        for seed in seeds:
            mdf, info = simulate_measurement(setup, truth, seed, clean)
            with tempfile.TemporaryDirectory() as tmp:
                path = write_mdf(Path(tmp) / "bn.mdf", mdf)
                meas = read_measurement(DataConfig(path=str(path)))
            if conv is None:
                conv = rom_convergence(setup, family, truth, clean, meas)
            out = fit_measurement(meas, family, setup, start=start)
            covered = [lo <= t <= hi for lo, t, hi in
                       zip(out["ci95_low"], true_fit, out["ci95_high"], strict=True)]
            cases.append({
                "model": "brown_neel_rom", "parameters": ["d_c", "K"],
                "units": out["units"], "true": true_fit, "estimate": out["estimate"],
                "stderr": out["stderr"], "ci95_low": out["ci95_low"],
                "ci95_high": out["ci95_high"], "covered": covered,
                "identified": out["identified"], "seconds": out["seconds"],
                "rom_evaluations": out["rom_evaluations"], "seed": int(seed),
                "data_model": info["data_model"], "fit_model": rom_label(setup),
                "offline_seconds": finfo.get("offline_seconds_when_built",
                                             finfo["offline_seconds"]),
                "fom_seconds": cinfo["fom_seconds"], "noise": setup.noise,
                "clean_from_cache": cinfo.get("clean_from_cache"),
                "rom_convergence": conv, "rank": family.rank,
            })
    return cases


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m llgfem.brownneel.calibrate_data [n_seeds]``: a coverage table."""
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    n = int(argv[0]) if argv else 10
    cases = bench_cases(range(n))
    print(f"{'seed':>4}  {'d_c [nm]':>22}  {'K [kJ/m3]':>22}  covered  seconds")
    for c in cases:
        est = [f"{e:.3f}±{1.96 * s:.3f}" for e, s in zip(c["estimate"], c["stderr"],
                                                          strict=True)]
        print(f"{c['seed']:>4}  {est[0]:>22}  {est[1]:>22}  {str(c['covered']):>7}  "
              f"{c['seconds']:.1f}")
    cov = np.mean([v for c in cases for v in c["covered"]])
    print(f"true {cases[0]['true']}; coverage {cov:.3f} over {len(cases)} seeds; "
          f"data: {cases[0]['data_model']}; fitted by: {cases[0]['fit_model']}")
    print(f"ROM vs data FOM on the fitted bins: {cases[0]['rom_convergence']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

