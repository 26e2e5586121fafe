r"""Simulate an MPI measurement with the LLG model and write it as an MDF v2 file.

The pipeline every demo and bench of calibration goes through: **simulate -> write MDF ->
``calibrate`` reads it**.  The simulation is the LLG problem of a config (physical FFP scan,
``[[coil]]`` receive channels, ``[[concentration]]`` sample) on the config's (fine) mesh and
time grid; to avoid an inverse crime the fitting model uses a coarser mesh and time step.

Receiver model: the channel signal :math:`s_l(t) = \sum_k s_{k,l}(t)` (SI: ``1/t_ref`` per
time derivative) over one window ``T`` is band-limited to the receiver bandwidth and sampled
at ``V`` points, :math:`u_{l,v} = \mathrm{irfft}(\hat s_l)_v` with
:math:`\hat s_{l,k} = \frac{V}{N}\sum_n s_l(t_{n+1/2}) e^{-2\pi i k (n+1/2)/N}`,
``k = 0..V/2`` (an ideal anti-aliasing filter).  Every frame adds white Gaussian noise of
standard deviation ``noise * rms(u_l)`` per channel and, optionally, a drive feed-through
``feedthrough * rms(u_l) sin(2 pi f_d t)`` which the background frames (feed-through + noise
only) let ``calibrate`` subtract.

Notation: ``V`` samples per period, ``N`` fine-model midpoints, ``f_d`` drive frequency.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["channel_signals", "clean_samples", "measurement_mdf", "sample_band_limited",
           "scanner_measurement_mdf", "scanner_samples", "write_measurement"]


def channel_signals(cfg, comm, scanner: dict | None = None) -> tuple[np.ndarray, object]:
    """``(L, N)`` SI channel signals of the config's true parameters at the midpoints, and the
    problem (collective; free it with ``problem.destroy()``).  ``scanner``: a scanner table
    (:func:`llgfem.calibration.data.scanner_from_mdf`) as the applied field instead of
    ``[field]``."""
    from llgfem.builders import build_llg_problem, build_observation
    from llgfem.mesh import create_domain
    from llgfem.operators.reduced import ReducedOperator

    domain = create_domain(comm, cfg.domain)
    spec = reference = None
    if scanner is not None:
        from llgfem.calibration.data import mesh_extent, scanner_field_spec, scanner_reference

        spec = scanner_field_spec(scanner)
        reference = scanner_reference(scanner, mesh_extent(domain.mesh))
    problem = build_llg_problem(cfg, domain.mesh, field=spec, field_reference=reference)
    problem.observation = build_observation(cfg, domain, problem.V, problem.grid)[0]
    op = ReducedOperator(problem)
    K, L, N = op.data_shape
    s = op(problem.a).reshape(K, L, N).sum(axis=0)
    scale = 1.0 / problem.units.time if problem.units is not None else 1.0
    return scale * s, problem


def sample_band_limited(s: np.ndarray, samples: int) -> np.ndarray:
    """``(L, V)`` band-limited samples of midpoint signals ``(L, N)`` over one window."""
    n = s.shape[-1]
    if samples >= n:
        raise ValueError(f"the fine model ({n} midpoints) must resolve more than the "
                         f"{samples} receiver samples")
    k = np.arange(samples // 2 + 1)
    rows = (samples / n) * np.exp(-2j * np.pi * np.outer(k, np.arange(n) + 0.5) / n)
    return np.fft.irfft(s @ rows.T, n=samples, axis=-1)


def measurement_mdf(u: np.ndarray, field: dict, *, noise: float = 0.02,
                    seed: int = 0, frames: int = 4, background_frames: int = 2,
                    feedthrough: float = 0.0, description: str = ""):
    """An MDF measurement of the clean channel samples ``u (L, V)`` (one window).

    Args:
        u: clean samples of one drive period, ``(L, V)``; the file's clock is
            ``baseFrequency = V f_d`` with ``divider = V`` (the sampling rate), one period
            per frame.
        field: the FFP drive as a ``[field]`` table in SI (``frequency``, ``amplitude``,
            ``phase``, ``gradient``, ``offset``; direction e_x).
        noise: relative noise level per frame (std / rms of each channel).
        seed: noise seed.
        frames: foreground frames.
        background_frames: background frames (feed-through and noise, no sample).
        feedthrough: drive feed-through amplitude relative to the channel rms.
        description: ``experiment/description`` (e.g. the true parameters).

    Returns:
        The validated :class:`~llgfem.io.mdf.MDF`.
    """
    from llgfem.io.mdf import MDF, Acquisition, Measurement, Receiver, drive_field

    L, V = u.shape
    f_d = float(field["frequency"])
    base = f_d * V
    df = drive_field(base, [V], [float(field["amplitude"])],
                     phase=[float(field.get("phase", 0.0))])
    rx = Receiver(num_channels=L, num_sampling_points=V, bandwidth=base / 2)
    rng = np.random.default_rng(seed)
    rms = np.sqrt(np.mean(u**2, axis=1, keepdims=True))
    t = np.arange(V) / base
    feed = feedthrough * rms * np.sin(2 * math.pi * f_d * t)[None, :]
    n_all = frames + background_frames
    data = np.empty((n_all, 1, L, V))
    for i in range(n_all):
        clean = u if i < frames else 0.0
        data[i, 0] = clean + feed + noise * rms * rng.standard_normal((L, V))
    bg = np.arange(n_all) >= frames
    g = float(field["gradient"])
    acq = Acquisition(drivefield=df, receiver=rx, num_frames=n_all,
                      gradient=np.diag([-g / 2, -g / 2, g]),
                      offset_field=np.asarray(field.get("offset", (0.0, 0.0, 0.0)), float))
    meas = Measurement(data=data, is_background_frame=bg)
    mdf = MDF(acquisition=acq, measurement=meas,
              experiment={"isSimulation": True, "description": description or "llgfem"},
              scanner={"name": "llgfem simulated FFP scanner", "topology": "FFP"})
    from llgfem.io.mdf_validate import validate_mdf

    validate_mdf(mdf, "measurement_mdf")
    return mdf


def clean_samples(cfg, samples: int, comm) -> tuple[np.ndarray, dict, dict]:
    """Clean band-limited ``(L, V)`` samples of one drive period of ``cfg`` (the fine model),
    its ``[field]`` table and the true parameters (``a1``, ``a2`` and, for physical runs,
    ``alpha_D``, ``gamma``).  Collective."""
    from llgfem.builders import section
    from llgfem.physics import FieldSpec

    spec = section(cfg, "field", FieldSpec)
    period = 1.0 / spec.frequency if spec.frequency > 0 else 0.0
    if spec.kind != "ffp" or not math.isclose(cfg.time.T, period, rel_tol=1e-9):
        raise ValueError("simulate: an FFP [field] whose period equals [time] T is required")
    s, problem = channel_signals(cfg, comm)
    a = problem.a
    truth = {"a1": float(a[0]), "a2": float(a[1])}
    if problem.units is not None:
        truth.update(alpha_D=float(-a[0] / a[1]),
                     gamma=float(-1.0 / (a[1] * problem.units.time * problem.units.field)))
    problem.destroy()
    table = {"kind": "ffp", "amplitude": spec.amplitude, "frequency": spec.frequency,
             "phase": spec.phase, "direction": list(spec.direction),
             "gradient": spec.gradient, "offset": list(spec.offset)}
    return sample_band_limited(s, samples), table, truth


def write_measurement(path, u: np.ndarray, field: dict, truth: dict, comm=None, **options):
    """:func:`measurement_mdf` written to ``path`` (rank 0 with ``comm``); returns the path."""
    from llgfem.io.mdf import write_mdf

    desc = ("llgfem simulated LLG FFP scan; true " +
            ", ".join(f"{k} = {v:.9g}" for k, v in truth.items()) +
            "; " + ", ".join(f"{k} = {v}" for k, v in options.items()))
    return write_mdf(path, measurement_mdf(u, field, description=desc, **options), comm=comm)


def scanner_samples(cfg, scanner: dict, samples: int, comm) -> tuple[np.ndarray, dict]:
    """Clean band-limited ``(L, V)`` samples of one drive cycle of ``cfg`` (the fine model,
    ``[time] T`` = the cycle) under the scanner drive ``scanner`` and the true parameters.
    Collective."""
    if not math.isclose(cfg.time.T, scanner["cycle_s"], rel_tol=1e-9):
        raise ValueError("simulate: [time] T must equal the scanner cycle lcm(D)/f_B")
    s, problem = channel_signals(cfg, comm, scanner)
    a = problem.a
    truth = {"a1": float(a[0]), "a2": float(a[1]),
             "alpha_D": float(-a[0] / a[1]),
             "gamma": float(-1.0 / (a[1] * problem.units.time * problem.units.field))}
    problem.destroy()
    return sample_band_limited(s, samples), truth


def scanner_measurement_mdf(u: np.ndarray, scanner: dict, *, noise: float = 0.0,
                            seed: int = 0, frames: int = 2, background_frames: int = 0,
                            description: str = "", **flags):
    """An MDF measurement of one drive cycle ``u (L, V)`` of a scanner drive (any number of
    sine channels, full gradient): ``V`` samples per cycle (bandwidth ``V / (2 T_c)``), one
    period per frame, white noise ``noise * rms(u_l)`` per frame.

    Args:
        u: clean samples ``(L, V)``.
        scanner: the scanner table (``base_frequency``, ``dividers``, ``strengths``,
            ``phases``, ``gradient_matrix``, ``offset_field``).
        noise, seed, frames, background_frames, description: as :func:`measurement_mdf`.
        flags: :class:`~llgfem.io.mdf.Measurement` flags (e.g. ``is_background_corrected``).
    """
    from llgfem.io.mdf import MDF, Acquisition, Measurement, Receiver, drive_field
    from llgfem.io.mdf_validate import validate_mdf

    L, V = u.shape
    cycle = math.lcm(*scanner["dividers"]) / scanner["base_frequency"]
    df = drive_field(scanner["base_frequency"], scanner["dividers"], scanner["strengths"],
                     phase=scanner.get("phases") or None)
    rx = Receiver(num_channels=L, num_sampling_points=V, bandwidth=V / (2 * cycle))
    rng = np.random.default_rng(seed)
    rms = np.sqrt(np.mean(u**2, axis=1, keepdims=True))
    n_all = frames + background_frames
    data = np.empty((n_all, 1, L, V))
    for i in range(n_all):
        data[i, 0] = (u if i < frames else 0.0) + noise * rms * rng.standard_normal((L, V))
    acq = Acquisition(drivefield=df, receiver=rx, num_frames=n_all,
                      gradient=np.asarray(scanner["gradient_matrix"], float),
                      offset_field=np.asarray(scanner["offset_field"], float))
    meas = Measurement(data=data, is_background_frame=np.arange(n_all) >= frames, **flags)
    mdf = MDF(acquisition=acq, measurement=meas,
              experiment={"isSimulation": True, "description": description or "llgfem"},
              scanner={"name": "llgfem simulated scanner", "topology": "FFP"})
    validate_mdf(mdf, "scanner_measurement_mdf")
    return mdf
