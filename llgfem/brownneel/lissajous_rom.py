r"""Offset-parametric POD ROM of the Brown–Néel Lissajous model and its system matrix.

One POD basis U serves every position x of the field of view: the terms A_k of
F(t; b) = Σ_k c_k(t; b) A_k (``lissajous``) are projected once, Â_k = UᵀA_kU, and a position
enters only through the coefficients c_k(t; b), b = G x.  Outputs use Ψ = G_quad U, so a reduced
run never touches a full-size vector:

    a' = Σ_k c_k(t; b) Â_k a,   a(0) = Uᵀw(ξ(0))/a₁,   ψ = Ψ a,  ψ̇ = Ψ ȧ  →  ⟨m⟩, d⟨m⟩/dt.

Stability: sym(F) ≤ 0 (dynamic formulation, ξ̇ term aside) gives sym(UᵀFU) ≤ 0 for every r
(``llgfem.rom.galerkin``).  Online stage (default): adaptive RODAS4 on the r × r terms the drive
activates, the state rescaled after every step (``llgfem.rom.parametric.integrate_rosenbrock``;
the outputs are mass-normalised ratios, so no leak shift is needed).  The previous PETSc TS
path (``method="petsc"``) adds the shift κ(t) = −max Re λ(UᵀF(ξ(t))U) from a table of dense
eigenvalue problems.

Training positions are chosen greedily (``llgfem.rom.parametric.greedy_selection``; snapshots
scaled to unit mass first) with the relative residual indicator
η(b) = RMS_t ‖F U a − U ȧ‖ / RMS_t ‖ȧ‖ of a reduced run at b.

The system matrix (receive signals d⟨m_a⟩/dt of every grid position) is computed with the
positions split over the ranks of a communicator; each rank integrates its positions with
sequential (COMM_SELF) objects and the signals are gathered once.

Notation: b offset field [T], G gradient [T/m], r POD rank, κ leak shift (1/τ_N).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from llgfem.brownneel.integrate import TSSettings, integrate_petsc
from llgfem.brownneel.lissajous import (
    LissajousDrive,
    LissajousModel,
    LissajousRun,
    coefficients,
    offset_field,
    signal_nrmse,
)
from llgfem.rom.parametric import (
    GreedyResult,
    ParametricReductor,
    ParametricROM,
    greedy_selection,
    integrate_rosenbrock,
)

__all__ = [
    "PositionTraining",
    "coefficient_sampler",
    "compare",
    "mass_normalised",
    "reductor_for",
    "rom_indicator",
    "rom_system_matrix",
    "select_positions",
    "simulate_reduced",
]


def reductor_for(model: LissajousModel, residual: bool = True) -> ParametricReductor:
    """Reductor of the model's terms A_k with the quadrature output map G."""
    return ParametricReductor(model.matrices(), model.quad.g, residual=residual)


def _reduced_initial(model: LissajousModel, rom: ParametricROM, drive,
                     t0: float) -> np.ndarray:
    xi0, _ = model.xi(drive, np.array([t0]))
    a0 = rom.psi.T @ model.quad.kernel(xi0)[0]
    _, _, a1 = model.quad.moments(xi0, (rom.psi @ a0)[:, None])
    return a0 / a1[0]


def coefficient_sampler(model: LissajousModel, drive) -> Callable[[np.ndarray], np.ndarray]:
    """Vectorised c_k(s), s = t/τ_N (ξ̇ per τ_N), with the shift coefficient κ = 0."""
    tau = model.params.tau_n
    if isinstance(drive, LissajousDrive):
        return _lissajous_sampler(model, drive)

    def coef(s: np.ndarray) -> np.ndarray:
        xi, dxi = model.xi(drive, np.asarray(s) * tau)
        return coefficients(model.table, xi, dxi * tau, np.zeros(xi.shape[0]))

    return coef


def _lissajous_sampler(model: LissajousModel, drive: LissajousDrive):
    """The same c_k(s) with few array operations (the online stage calls it every step)."""
    tau, cxi = model.params.tau_n, model.params.xi_per_tesla
    amp, off = cxi * np.asarray(drive.amplitudes), cxi * np.asarray(drive.offset)
    w, ph = 2 * np.pi * np.asarray(drive.frequencies) * tau, np.asarray(drive.phases)
    pairs = [(a, b) for kind, a, b in model.table if kind == "xixi"]
    ia, ib = np.array([p[0] for p in pairs], int), np.array([p[1] for p in pairs], int)
    col = {"1": lambda a, b: 0, "xi": lambda a, b: 1 + a,
           "xixi": lambda a, b: 4 + pairs.index((a, b)),
           "dxi": lambda a, b: 4 + len(pairs) + a, "shift": lambda a, b: 7 + len(pairs)}
    perm = np.array([col[kind](a, b) for kind, a, b in model.table])

    def coef(s: np.ndarray) -> np.ndarray:
        arg = np.multiply.outer(np.asarray(s, float), w) + ph
        xi = off + amp * np.sin(arg)
        n = xi.shape[0]
        full = np.concatenate([np.ones((n, 1)), xi, xi[:, ia] * xi[:, ib],
                               amp * w * np.cos(arg), np.zeros((n, 1))], axis=1)
        return full[:, perm]

    return coef


def simulate_reduced(model: LissajousModel, rom: ParametricROM, drive: LissajousDrive,
                     t: np.ndarray, settings: TSSettings = TSSettings(),
                     keep_states: bool = True, method: str = "rosenbrock") -> LissajousRun:
    """Reduced run at the drive's offset.

    ``method="rosenbrock"`` (default): dense RODAS4 on the r × r terms that the drive activates
    (``llgfem.rom.parametric.integrate_rosenbrock``; rtol/atol/max_steps from ``settings``,
    states rescaled after every step instead of a leak shift).  ``method="petsc"``: the FOM's
    PETSc TS on dense matrices with the reduced leak shift κ(t) (the previous online stage).
    A :class:`~llgfem.brownneel.frame_rom.FrameROM` runs in the field frame
    (``frame_rom.simulate_frame_reduced``, RODAS4) whatever ``method``.

    Args:
        model: the FOM (coefficients, quadrature).
        rom: the reduced model.
        drive: drive with the position's offset.
        t: output times [s].
        settings: integrator settings.
        keep_states: keep the reduced states.
        method: ``rosenbrock`` or ``petsc``.
    """
    from llgfem.brownneel.frame_rom import FrameROM, simulate_frame_reduced

    if isinstance(rom, FrameROM):  # field-frame ROM (``frame_rom``): always RODAS4
        return simulate_frame_reduced(model, rom, drive, t, settings, keep_states)
    if method == "rosenbrock":
        return _simulate_rosenbrock(model, rom, drive, t, settings, keep_states)
    if method != "petsc":
        raise ValueError(f"method must be 'rosenbrock' or 'petsc', got {method!r}")
    model.check_drive(drive)
    t = np.asarray(t, float)
    t0 = time.perf_counter()
    table = model.shift_table(drive, float(t[-1]), reduced=rom, t_start=float(t[0]))
    a0 = _reduced_initial(model, rom, drive, float(t[0]))
    mats = rom.petsc_matrices()
    res = integrate_petsc(mats, model.coefficient_function(drive, table), a0,
                          t / model.params.tau_n, settings, prefix="llgfem_bnrom_ts_")
    for mat in mats:
        mat.destroy()
    c = model.coefficient_samples(drive, t, table)
    adot = rom.rates(c, res.y)
    xi, dxi = model.xi(drive, t)
    m, dm, a1 = model.quad.moments(xi, rom.psi @ res.y, rom.psi @ adot / model.params.tau_n,
                                   dxi)
    seconds = time.perf_counter() - t0
    return LissajousRun(t, m, dm, a1, seconds, res.steps, res.y if keep_states else None,
                        {**res.info, "integration_seconds": res.seconds, "rank": rom.rank})


def _simulate_rosenbrock(model, rom, drive, t, settings, keep_states) -> LissajousRun:
    model.check_drive(drive)
    t = np.asarray(t, float)
    t0, c0 = time.perf_counter(), time.process_time()
    tau = model.params.tau_n
    coef = coefficient_sampler(model, drive)
    c = coef(t / tau)
    active = np.flatnonzero(np.any(c != 0, axis=0))
    a0 = _reduced_initial(model, rom, drive, float(t[0]))
    res = integrate_rosenbrock([rom.matrices[k] for k in active],
                               lambda s: coef(s)[:, active], a0, t / tau,
                               rtol=settings.rtol, atol=settings.atol,
                               max_steps=settings.max_steps)
    adot = rom.rates(c, res.y)
    xi, dxi = model.xi(drive, t)
    m, dm, a1 = model.quad.moments(xi, rom.psi @ res.y, rom.psi @ adot / tau, dxi)
    seconds = time.perf_counter() - t0
    return LissajousRun(t, m, dm, a1, seconds, res.steps, res.y if keep_states else None,
                        {"integration_seconds": res.seconds, "rank": rom.rank,
                         "cpu_seconds": time.process_time() - c0,
                         "rejected": res.rejected, "terms": len(active),
                         "log_scale": res.log_scale})


def rom_indicator(model: LissajousModel, rom: ParametricROM, drive: LissajousDrive,
                  t: np.ndarray, settings: TSSettings = TSSettings(), stride: int = 1) -> float:
    """η = RMS_t ‖F U a − U ȧ‖ / RMS_t ‖ȧ‖ of a reduced run (every ``stride``-th sample).

    A reduced run that fails (step limit of ``settings``) gets η = inf, so the greedy loop
    selects that position next.
    """
    try:
        run = simulate_reduced(model, rom, drive, t, settings)
    except RuntimeError:
        return float("inf")
    table = model.shift_table(drive, float(t[-1]), reduced=rom, t_start=float(t[0]))
    c = model.coefficient_samples(drive, t, table)[::stride]
    a = run.y[:, ::stride]
    res = rom.residual(c, a)
    adot = rom.rates(c, a)
    return float(np.sqrt(np.mean(res**2) / np.mean(np.sum(adot**2, axis=0))))


def mass_normalised(model: LissajousModel, drive, t: np.ndarray, y: np.ndarray) -> np.ndarray:
    """States scaled to unit mass a₁ = 1 per column (the outputs are homogeneous of degree 0
    in q, and the shift leaves runs at different positions with very different scales, which
    would make the POD energy follow the largest run only)."""
    xi, _ = model.xi(drive, t)
    _, _, a1 = model.quad.moments(xi, model.quad.g @ y)
    return y / a1[None, :]


@dataclass
class PositionTraining:
    """Greedy training over positions: the FOM runs made and the resulting ROM.

    Attributes:
        positions: candidate positions [m], shape (n, 3).
        greedy: the greedy result (selected indices, indicator history, POD, ROM).
        fom_runs: FOM runs of the selected positions, by index.
    """

    positions: np.ndarray
    greedy: GreedyResult
    fom_runs: dict = field(default_factory=dict)

    @property
    def rom(self) -> ParametricROM:
        return self.greedy.rom


def select_positions(model: LissajousModel, drive: LissajousDrive, gradient,
                     positions: np.ndarray, t: np.ndarray, settings: TSSettings = TSSettings(),
                     first: int | None = None, max_selected: int = 6, tol: float = 0.0,
                     rank: int | None = None, energy: float | None = None,
                     rom_settings: TSSettings | None = None, stride: int = 4,
                     fom_states=None) -> PositionTraining:
    """Greedy basis over training positions with the residual indicator.

    Args:
        model: the FOM.
        drive: the drive (its offset is replaced by G x for every position).
        gradient: G (3 diagonal entries or 3×3) [T/m].
        positions: candidate positions [m], shape (n, 3).
        t: output times [s] (snapshots are the states at these times).
        settings: FOM integrator settings; ``rom_settings`` those of the reduced runs.
        first: first training position (default: the one nearest the centre).
        max_selected, tol, rank, energy: see :func:`greedy_selection`.
        stride: sample stride of the residual indicator.
        fom_states: optional (drive, position) -> FOM states at t (e.g. from a cache); the
            default runs ``model.simulate``.
    """
    positions = np.asarray(positions, float)
    drives = [drive.with_offset(offset_field(gradient, x)) for x in positions]
    first = int(np.argmin(np.linalg.norm(positions, axis=1))) if first is None else first
    runs: dict[int, LissajousRun] = {}

    def snapshots(i: int) -> np.ndarray:
        if fom_states is not None:
            y = fom_states(drives[i], positions[i])
        else:
            runs[i] = model.simulate(drives[i], t, settings)
            y = runs[i].y
        return mass_normalised(model, drives[i], t, y)

    def indicator(rom: ParametricROM, i: int) -> float:
        return rom_indicator(model, rom, drives[i], t, rom_settings or settings, stride)

    greedy = greedy_selection(len(positions), snapshots, indicator, reductor_for(model),
                              first, max_selected, tol, rank, energy)
    return PositionTraining(positions, greedy, runs)


def rom_system_matrix(model: LissajousModel, rom: ParametricROM, drive: LissajousDrive,
                      gradient, positions: np.ndarray, t: np.ndarray, start: int = 0,
                      settings: TSSettings = TSSettings(), comm=None) -> dict:
    """Receive signals d⟨m_a⟩/dt [1/s] of every position from the ROM, parallel over positions.

    Positions are dealt round-robin to the ranks of ``comm`` (default COMM_WORLD); each rank
    integrates its positions sequentially (COMM_SELF objects); one gather at the end.

    Args:
        model, rom: the FOM (for the coefficients and quadrature) and the reduced model.
        drive: the drive (offset replaced by G x).
        gradient: G [T/m]; positions: shape (n, 3) [m].
        t: output times [s]; ``start``: first recorded sample (after the warm-up).
        settings: integrator settings of the reduced runs.
        comm: mpi4py communicator.

    Returns:
        On every rank: ``signals`` (n, n_rec, n_driven_axes), ``mean_moment`` (n, 3),
        ``seconds`` (wall time of the whole call, max over ranks), ``cpu_seconds`` (CPU time
        of the position loop, max over ranks) and ``per_position`` (list of (index, seconds)).
    """
    from mpi4py import MPI

    comm = comm or MPI.COMM_WORLD
    positions = np.asarray(positions, float)
    axes = drive.driven_axes
    comm.Barrier()
    t0 = time.perf_counter()
    c0 = time.process_time()
    local = []
    for i in range(comm.rank, len(positions), comm.size):
        d = drive.with_offset(offset_field(gradient, positions[i]))
        run = simulate_reduced(model, rom, d, t, settings, keep_states=False)
        local.append((i, run.signals(axes)[start:], run.m[start:].mean(axis=0), run.seconds))
    cpu = time.process_time() - c0
    gathered = comm.allgather(local)
    seconds = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
    cpu = comm.allreduce(cpu, op=MPI.MAX)
    items = sorted((x for part in gathered for x in part), key=lambda x: x[0])
    return {"signals": np.stack([x[1] for x in items]),
            "mean_moment": np.stack([x[2] for x in items]),
            "per_position": [(x[0], x[3]) for x in items], "seconds": seconds,
            "cpu_seconds": cpu}


def compare(fom: LissajousRun, rom: LissajousRun, axes, start: int = 0) -> float:
    """NRMSE of the receive signals (all driven channels) over the recorded samples."""
    return signal_nrmse(rom.signals(axes)[start:], fom.signals(axes)[start:])
