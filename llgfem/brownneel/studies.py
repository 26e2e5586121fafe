r"""FOM studies and the paper-000 ROM experiments on top of :class:`BrownNeelModel`.

* ``run_fom``: warm-up + recorded periods of the sine drive, states at a uniform grid.
* ``truncation_study``: signals of several truncations against the largest one.
* ``langevin_errors``: static-field equilibrium ⟨m_z⟩ against L(ξ) (null vector of F(ξ)).
* ``rom_sweep``: Galerkin ROMs of increasing rank from one POD basis, applied to one setting;
  seconds, speed-up = FOM seconds / ROM seconds, NRMSE of ⟨m_z⟩ (magnetisation response, as in
  the paper) and of the signal d⟨m_z⟩/dt, and whether the reduced run stayed stable.

Error metric: NRMSE(a, b) = RMS(a − b)/RMS(b) over the recorded period (``rom.nrmse``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse.linalg as spla

from llgfem.brownneel.integrate import TSSettings
from llgfem.brownneel.model import BrownNeelModel, Trajectory, time_grid
from llgfem.brownneel.params import ParticleParameters, SinusoidalDrive, langevin
from llgfem.brownneel.transfer import transfer_snapshots
from llgfem.rom import GalerkinReductor, nrmse, pod

__all__ = [
    "FomRun",
    "langevin_errors",
    "rom_sweep",
    "run_fom",
    "truncation_study",
]


@dataclass
class FomRun:
    """A FOM run with its drive and the index where the recorded window starts."""

    model: BrownNeelModel
    drive: SinusoidalDrive
    traj: Trajectory
    start: int

    @property
    def recorded(self) -> Trajectory:
        return self.traj.window(self.start)


def run_fom(model: BrownNeelModel, frequency: float, amplitude: float = 15e-3,
            warmup_periods: float = 1.0, periods: float = 1.0, samples_per_period: int = 400,
            settings: TSSettings = TSSettings(), backend: str = "petsc") -> FomRun:
    """Simulate warm-up + recorded periods of B_d sin(2π f_d t) ẑ from the zero-field state."""
    drive = SinusoidalDrive(amplitude, frequency)
    t, start = time_grid(drive, warmup_periods, periods, samples_per_period)
    return FomRun(model, drive, model.simulate(drive, t, settings, backend), start)


def truncation_study(particle: ParticleParameters, truncations: list[tuple[int, int]],
                     frequency: float, settings: TSSettings = TSSettings(),
                     **kwargs) -> list[dict]:
    """Run every truncation; report NRMSE of ⟨m_z⟩ and d⟨m_z⟩/dt against the last one."""
    runs = []
    for n_m, n_n in truncations:
        t0 = time.perf_counter()
        model = BrownNeelModel(particle, n_m, n_n, "dynamic")
        build = time.perf_counter() - t0
        run = run_fom(model, frequency, settings=settings, **kwargs)
        runs.append((n_m, n_n, model.size, build, run))
    ref = runs[-1][4].recorded
    out = []
    for n_m, n_n, size, build, run in runs:
        rec = run.recorded
        out.append({
            "truncation": [n_m, n_n], "unknowns": size, "build_seconds": build,
            "seconds": rec.seconds, "steps": rec.steps,
            "mz_peak": float(rec.mz.max()),
            "nrmse_mz_vs_finest": nrmse(rec.mz, ref.mz),
            "nrmse_signal_vs_finest": nrmse(rec.dmz, ref.dmz),
            "min_mass": float(rec.mass.min()),
        })
    return out


def langevin_errors(model: BrownNeelModel, fields: list[float]) -> list[dict]:
    """|⟨m_z⟩_eq − L(ξ)| for static fields B [T] from the null vector of F(ξ)."""
    out = []
    for b in fields:
        xi = model.params.xi_per_tesla * b
        f = model.op.matrix(np.array([0.0, 0.0, xi])).tocsc()
        _, v = spla.eigs(f, k=1, sigma=0.0)
        q = np.real(v[:, :1])
        if model.formulation == "dynamic":
            a1, az = model.weights.moments(np.array([xi]), q)
            mz = az[0] / a1[0]
        else:
            mz = float(model.g_z @ q[:, 0] / (model.g_1 @ q[:, 0]))
        out.append({"B_mT": b * 1e3, "xi": xi, "mz": float(mz), "langevin": langevin(xi),
                    "error": abs(float(mz) - langevin(xi))})
    return out


def rom_sweep(basis_run: FomRun, target: FomRun, ranks: list[int],
              settings: TSSettings = TSSettings(), pod_basis=None,
              transfer: str = "direct", series: bool = False) -> list[dict]:
    """ROMs of rank r built from ``basis_run`` snapshots, applied to ``target``'s setting.

    Both runs must use the same truncation (the basis lives in that coefficient space).  The
    reduced operators are projected from the target particle's matrices.  ``transfer``:
    ``direct`` uses the snapshots as they are (the paper's reuse); ``boltzmann`` first maps
    them to the target particle's variables (:mod:`llgfem.brownneel.transfer`); with a given
    ``pod_basis`` it only labels the rows.  ``series=True`` adds the ROM's ⟨m_z⟩ and
    d⟨m_z⟩/dt over the whole run (``row["series"]``).
    """
    model = target.model
    if basis_run.model.size != model.size:
        raise ValueError("basis and target must share the truncation")
    if pod_basis is None:
        pod_basis = pod(transfer_snapshots(basis_run, model, target.drive, transfer))
    basis = pod_basis
    reductor = GalerkinReductor(model.petsc_matrices())
    coef = model.coefficient_function(target.drive)
    s = target.traj.t / model.params.tau_n
    y0 = model.initial_state(target.drive)
    ref = target.recorded
    out = []
    for r in ranks:
        r_eff = min(r, basis.rank)
        rom = reductor.reduce(basis.modes[:, :r_eff])
        row = {"r": int(r_eff), "projection_seconds": rom.seconds, "transfer": transfer}
        try:
            res = rom.solve(coef, rom.project_state(y0), s, settings)
        except RuntimeError as err:  # reduced run failed (unstable / step size collapse)
            row.update({"seconds": None, "speedup": None, "nrmse": None, "nrmse_signal": None,
                        "stable": False, "error": str(err)[:200]})
            out.append(row)
            continue
        t0 = time.perf_counter()
        y = rom.reconstruct(res.y)
        mz, dmz, _ = model.observe(target.traj.t, y, target.drive)
        st = target.start
        row.update({
            "seconds": res.seconds, "steps": res.steps,
            "reconstruct_seconds": time.perf_counter() - t0,
            "speedup": target.traj.seconds / res.seconds,
            "nrmse": nrmse(mz[st:], ref.mz), "nrmse_signal": nrmse(dmz[st:], ref.dmz),
            "stable": bool(np.all(np.isfinite(y)) and np.abs(mz).max() <= 1 + 1e-6),
        })
        if series:
            row["series"] = {"mz": mz, "dmz": dmz}
        out.append(row)
    return out
