r"""The ``llg`` particle model of the system matrix: this package's LLG equation per position.

How a calibration position maps onto the model: the particles of the voxel at ``x`` see the
homogeneous field ``B(x, t) = G x + B_drive(t) + B_off`` (no gradient across a particle), so the
voxel is represented by one macrospin ``m`` (single-domain particle, ``|m| = 1``) obeying the
Landau-Lifshitz-Gilbert equation (paper 002, eqs. (2)/(6)) in standard micromagnetic form

    dm/dt = -gamma m x B_eff + alpha m x dm/dt,    B_eff = B(x, t) [+ (2 K / M_S)(m.e) e],

with the tracer's damping ``alpha``, gyromagnetic ratio ``gamma``, saturation magnetisation and
anisotropy (a fixed easy axis ``e`` if ``model.easy_axis`` is given; the tracer's ``free`` axis
has no anisotropy field in this deterministic model).  The model is solved on a one-cell P1
mesh with the Landau-Lifshitz (m, H) form and the L-stable adaptive PETSc TS ARKIMEX scheme
(:class:`~llgfem.solvers.adaptive.AdaptiveLL`), non-dimensionalised inside (field unit ``B_ref``
= the largest drive amplitude, time unit ``1 / (gamma B_ref)``; :mod:`llgfem.physics`); the TS
steps exactly onto the scanner's sample times.  Started along ``B(x, t_0)``, it is integrated over
``warmup_cycles`` cycles and observed over the next one; ``m_bar = m`` and ``d m_bar/dt`` (1/s)
at the sample times (deterministic, T = 0: no thermal averaging -- compare ``langevin`` and
``brown_neel`` for that).

Notation: ``P`` positions, ``V`` samples per cycle, ``B_ref`` field unit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from llgfem.config import ConfigError
from llgfem.scanner.fields import ScannerFields
from llgfem.scanner.tracer import TracerConfig

__all__ = ["LLGOptions", "LLGResponse"]


@dataclass(frozen=True)
class LLGOptions:
    """``[model]`` options of ``kind = "llg"``."""

    kind: str = "llg"
    rtol: float = 3e-6
    warmup_cycles: float = 0.25
    easy_axis: tuple[float, ...] = ()
    max_steps: int = 200_000

    def validate(self, where: str) -> None:
        if not 0 < self.rtol < 1:
            raise ConfigError(f"{where}.rtol: must lie in (0, 1), got {self.rtol}")
        if not (math.isfinite(self.warmup_cycles) and self.warmup_cycles >= 0):
            raise ConfigError(f"{where}.warmup_cycles: must be >= 0, got {self.warmup_cycles}")
        if self.easy_axis and (len(self.easy_axis) != 3 or not any(self.easy_axis)):
            raise ConfigError(f"{where}.easy_axis: a non-zero 3-vector (or empty: none)")
        if self.max_steps < 1:
            raise ConfigError(f"{where}.max_steps: must be >= 1")


class LLGResponse:
    """Macrospin LLG response per position (see module docstring)."""

    name = "llg"
    per_position = True

    def __init__(self, tracer: TracerConfig, opts: LLGOptions = LLGOptions()):
        self.tracer, self.opts = tracer, opts
        self._solver = None

    def options(self) -> dict:
        from dataclasses import asdict

        return asdict(self.opts)

    def _build(self, scanner: ScannerFields):
        """One adaptive solver on a COMM_SELF one-cell mesh; the position enters through a
        Constant (the static field), so one compiled problem serves every position."""
        import dolfinx.fem as fem
        import dolfinx.mesh as dm
        import ufl
        from mpi4py import MPI

        from llgfem.forms.llg import LLGCoefficients
        from llgfem.solvers.adaptive import AdaptiveLL
        from llgfem.solvers.esdirk import AdaptiveOptions

        tr = self.tracer
        b_ref = float(np.abs(scanner.amplitudes).sum(axis=0).max()) or 1.0
        t_unit = 1.0 / (tr.gyromagnetic_ratio * b_ref)
        mesh = dm.create_interval(MPI.COMM_SELF, 1, [0.0, 1.0])
        V = fem.functionspace(mesh, ("Lagrange", 1, (3,)))
        t = fem.Constant(mesh, 0.0)
        static = fem.Constant(mesh, np.zeros(3))
        # solver time 0 is the physical time -warm (the warm-up before the observed cycle)
        warm = self.opts.warmup_cycles * scanner.cycle
        omega = 2 * np.pi * scanner.frequencies * t_unit
        phases = scanner.phases - 2 * np.pi * scanner.frequencies * warm
        wave = ufl.sin if scanner.cfg.waveform == "sine" else ufl.cos
        drive = sum(wave(float(w) * t + float(p)) * ufl.as_vector(a / b_ref)
                    for w, p, a in zip(omega, phases, scanner.amplitudes))
        axis = self.opts.easy_axis
        k = 2 * tr.anisotropy / (tr.saturation_magnetisation * b_ref) if axis else 0.0
        coefficients = LLGCoefficients(
            a1=fem.Constant(mesh, tr.damping), a2=fem.Constant(mesh, -1.0),
            exchange=fem.Constant(mesh, 0.0), h=static + drive,
            anisotropy=fem.Constant(mesh, k),
            easy_axis=tuple(np.asarray(axis) / np.linalg.norm(axis)) if axis else None)
        span = (warm + scanner.times[-1]) / t_unit
        m0 = np.tile([1.0, 0.0, 0.0], V.dofmap.index_map.size_local)
        options = AdaptiveOptions(rtol=self.opts.rtol, max_steps=self.opts.max_steps,
                                  prefix="llgfem_sysmat_llg_")
        solver = AdaptiveLL(V, coefficients, t, m0, span, options)
        return solver, static, b_ref, t_unit

    def respond(self, scanner: ScannerFields, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(m_bar, dm_bar/dt)`` of shape (V, 3) over the observed cycle at position ``x``."""
        if self._solver is None:
            self._solver = self._build(scanner)
        solver, static, b_ref, t_unit = self._solver
        static.value[:] = scanner.static(np.asarray(x, float)) / b_ref
        warm = self.opts.warmup_cycles * scanner.cycle
        b0 = scanner.field(np.asarray(x, float)[None], np.array([-warm]))[0, 0]
        if np.linalg.norm(b0) < 1e-12 * b_ref:
            b0 = scanner.amplitudes[0]
        solver.m0 = np.tile(b0 / np.linalg.norm(b0), solver.n // 3)
        times = (scanner.times + warm) / t_unit  # the samples in solver time
        traj = solver.forward(stop_times=times[(times > 0) & (times < solver.T)])
        idx = traj.at(times)
        m = traj.m[idx].reshape(len(idx), -1, 3)[:, 0, :]
        mdot = traj.mdot[idx].reshape(len(idx), -1, 3)[:, 0, :] / t_unit
        return m, mdot

    def moments(self, scanner: ScannerFields,
                positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(m_bar, d_t m_bar) of shape (P, V, 3) over one cycle after the warm-up."""
        out = [self.respond(scanner, x) for x in np.atleast_2d(positions)]
        if not out:
            shape = (0, scanner.num_samples, 3)
            return np.zeros(shape), np.zeros(shape)
        return np.stack([o[0] for o in out]), np.stack([o[1] for o in out])
