"""The ``llg_forward`` job: solve the LLG equation on the configured domain and time grid.

Config tables::

    [llg]                         # coefficients of the scaled equation (llgfem.physics)
    a1 = 1.0
    a2 = 0.0
    exchange = 1.0
    anisotropy = 0.0
    easy_axis = [0.0, 0.0, 1.0]
    physical = false              # true: a1, a2, exchange from [physical] (paper Table 2) and the
                                  # field amplitudes are H_ext values scaled by h = mu0 m_S H_ext
    theta = 0.5                   # 0.5 implicit midpoint; 1.0 backward Euler (stiff physics)
    form = "gilbert"              # gilbert: eq. (6) (the inverse problems' residual);
                                  # landau_lifshitz: eq. (2), keeps |m| (physical runs, demos)
    initial = "uniform"           # uniform | nonuniform | random | field | paper1|2|3
                                  # (field: along h(x, 0), initial_direction where h ~ 0)
    initial_direction = [1.0, 0.0, 0.0]
    seed = 0

    [field]                       # llgfem.physics.FieldSpec: kind, amplitude, direction, offset,
    kind = "static"               # frequency, phase, gradient
    amplitude = 1.0

    [physical]                    # llgfem.physics.PhysicalParameters (SI)
    alpha_D = 0.1

Optional ``[observation]``, ``[[coil]]``, ``[[concentration]]`` tables (:mod:`llgfem.jobs.signals`)
add the receive-coil voltages of eq. (5): ``signals.h5`` and ``plots/signals.png``.

``initial = "paperN"`` runs Test N of paper 002, Table 1 (its field, coefficients, Neumann data
and exact solution; the summary then reports the relative error).  Outputs: ``summary.json``,
``plots/`` (h(t) and mean m(t) per component, max ||m|-1|), ``fields/m.bp``.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
from mpi4py import MPI

from llgfem.config import Config, ConfigError, write_resolved_config
from llgfem.io.fields import write_trajectory
from llgfem.io.plots import plot_series
from llgfem.io.progress import get_logger, progress
from llgfem.io.results import write_json
from llgfem.jobs.signals import build_observation, record_signals
from llgfem.mesh import create_domain
from llgfem.paper_cases import paper_case, relative_error
from llgfem.physics import FieldSpec, LLGParameters, PhysicalParameters
from llgfem.solvers.llg import LLGSolver
from llgfem.spacetime import TimeGrid, create_vector_space, interpolate_levels

__all__ = ["LLGJobConfig", "initial_state", "run"]

INITIALS = ("uniform", "nonuniform", "random", "field", "paper1", "paper2", "paper3")


@dataclass(frozen=True)
class LLGJobConfig:
    a1: float = 1.0
    a2: float = 0.0
    exchange: float = 1.0
    anisotropy: float = 0.0
    easy_axis: tuple[float, float, float] = (0.0, 0.0, 1.0)
    physical: bool = False
    theta: float = 0.5
    form: str = "gilbert"
    initial: str = "uniform"
    initial_direction: tuple[float, float, float] = (1.0, 0.0, 0.0)
    seed: int = 0

    def validate(self, where: str) -> None:
        if self.initial not in INITIALS:
            raise ConfigError(f"{where}.initial: {self.initial!r} is not one of {INITIALS}")
        if self.form not in ("gilbert", "landau_lifshitz"):
            raise ConfigError(f"{where}.form: {self.form!r} is not gilbert or landau_lifshitz")
        if not 0.5 <= self.theta <= 1.0:
            raise ConfigError(f"{where}.theta: must lie in [0.5, 1], got {self.theta}")
        if np.linalg.norm(self.initial_direction) == 0:
            raise ConfigError(f"{where}.initial_direction: must be non-zero")
        self.parameters(PhysicalParameters()).validate(where)

    def parameters(self, phys: PhysicalParameters) -> LLGParameters:
        if self.physical:
            return phys.llg(self.anisotropy, self.easy_axis)
        return LLGParameters(self.a1, self.a2, self.exchange, self.anisotropy, self.easy_axis)


def initial_state(job: LLGJobConfig, dim: int, lower=None, upper=None):
    """``m0(x)`` as a NumPy callable of unit length (``lower``/``upper``: the bounding box)."""
    lo = np.zeros(3) if lower is None else np.asarray(lower, dtype=float)
    size = np.ones(3) if upper is None else np.maximum(np.asarray(upper) - lo, 1e-300)
    d = np.asarray(job.initial_direction, dtype=float)
    d = d / np.linalg.norm(d)
    if job.initial == "uniform":
        return lambda x: d[:, None] * np.ones_like(x[0])
    if job.initial == "nonuniform":
        def nonuniform(x):
            phase = sum(np.pi * (x[j] - lo[j]) / size[j] for j in range(dim))
            v = np.stack([np.cos(phase), np.sin(phase), 0.5 * np.ones_like(x[0])])
            return v / np.linalg.norm(v, axis=0)
        return nonuniform

    def random(x):
        # hash of the normalised coordinates: the same field for any mesh partition
        y = [(x[j] - lo[j]) / size[j] for j in range(3)]
        v = np.stack([np.sin((12.9898 + 7.3 * k) * y[0] + (78.233 + 3.1 * k) * y[1]
                             + (37.719 + 5.2 * k) * y[2] + 0.618 * (k + job.seed))
                      * 43758.5453 % 2 - 1 for k in range(3)])
        return v / np.maximum(np.linalg.norm(v, axis=0), 1e-12)
    return random


def _scale_field(spec: FieldSpec, factor: float) -> FieldSpec:
    return dataclasses.replace(spec, amplitude=spec.amplitude * factor,
                               offset=tuple(factor * o for o in spec.offset),
                               gradient=spec.gradient * factor)


def build_solver(cfg: Config, job: LLGJobConfig, V, grid: TimeGrid):
    """The solver, the initial state (callable or owned-dof array), the paper case or None."""
    phys = cfg.section("physical", PhysicalParameters)
    if job.initial.startswith("paper"):
        case = paper_case(int(job.initial[-1]))
        solver = LLGSolver(V, grid, case.params, case.field, g=case.g, theta=job.theta)
        return solver, case.exact_np, case
    spec = cfg.section("field", FieldSpec)
    if job.physical:
        spec = _scale_field(spec, phys.mu0 * phys.m_S)
    solver = LLGSolver(V, grid, job.parameters(phys), spec, theta=job.theta, form=job.form)
    comm, xg = V.mesh.comm, V.mesh.geometry.x
    lower, upper = np.empty(3), np.empty(3)
    comm.Allreduce(xg.min(axis=0, initial=np.inf), lower, op=MPI.MIN)
    comm.Allreduce(xg.max(axis=0, initial=-np.inf), upper, op=MPI.MAX)
    if job.initial == "field":
        return solver, aligned_with_field(solver, job), None
    m0 = initial_state(job, V.mesh.geometry.dim, lower, upper)
    return solver, (lambda x, t: m0(x)), None


def aligned_with_field(solver: LLGSolver, job: LLGJobConfig):
    """``m0 = h(x, 0)/|h(x, 0)|`` (``initial_direction`` where ``|h| < 1e-8 max|h|``)."""
    import dolfinx.fem as fem

    solver.t.value = 0.0
    expr = fem.Expression(solver.coefficients.h,
                          solver.V.element.interpolation_points)
    hf = fem.Function(solver.V)
    hf.interpolate(expr)
    h = hf.x.array.reshape(-1, 3)
    size = np.linalg.norm(h, axis=1)
    hmax = solver.comm.allreduce(float(size.max(initial=0.0)), op=MPI.MAX)
    d = np.asarray(job.initial_direction, dtype=float) / np.linalg.norm(job.initial_direction)
    small = size <= 1e-8 * max(hmax, 1e-300)
    h[small] = d
    h[~small] /= size[~small, None]
    return h.reshape(-1)[: solver.n].copy()


def diagnostics(solver: LLGSolver, m: np.ndarray) -> dict[str, np.ndarray]:
    """Domain means of m and h per level and the maximum nodal deviation of |m| from 1."""
    import dolfinx.fem as fem
    import ufl

    comm, V = solver.comm, solver.V
    vol = comm.allreduce(fem.assemble_scalar(fem.form(1.0 * ufl.dx(domain=V.mesh))))
    comps = [fem.form(solver.m1[i] / vol * ufl.dx) for i in range(3)]
    hcomps = [fem.form(solver.coefficients.h[i] / vol * ufl.dx(domain=V.mesh)) for i in range(3)]
    mean_m, mean_h, dev = (np.empty((len(m), 3)) for _ in range(3))
    for k, mk in enumerate(m):
        solver.t.value = solver.grid.times[k]
        solver.m1.x.array[: solver.n] = mk
        solver.m1.x.scatter_forward()
        mean_m[k] = [comm.allreduce(fem.assemble_scalar(c)) for c in comps]
        mean_h[k] = [comm.allreduce(fem.assemble_scalar(c)) for c in hcomps]
        local = np.abs(np.linalg.norm(mk.reshape(-1, 3), axis=1) - 1.0)
        dev[k] = comm.allreduce(float(local.max(initial=0.0)), op=MPI.MAX)
    return {"mean_m": mean_m, "mean_h": mean_h, "norm_deviation": dev[:, 0]}


def run(cfg: Config) -> dict:
    """Run the ``llg_forward`` job; returns the summary."""
    job = cfg.section("llg", LLGJobConfig)
    domain = create_domain(MPI.COMM_WORLD, cfg.domain)
    comm = domain.mesh.comm
    V = create_vector_space(domain.mesh)
    grid = TimeGrid(cfg.time.T, cfg.time.n_t)
    solver, m0_fn, case = build_solver(cfg, job, V, grid)
    observation = build_observation(cfg, domain, V, grid)
    solver.progress = lambda it: progress(it, total=grid.n_t - 1, desc="LLG", comm=comm,
                                          enabled=cfg.output.progress)
    m0 = m0_fn if isinstance(m0_fn, np.ndarray) else interpolate_levels(V, m0_fn, [0.0])[0]
    if comm.rank == 0:
        cfg.run_dir.mkdir(parents=True, exist_ok=True)
    comm.Barrier()
    t0 = time.perf_counter()
    m = solver.solve(m0)
    seconds = time.perf_counter() - t0
    diag = diagnostics(solver, m)
    p = solver.params
    summary = {"job": "llg_forward", "dofs": V.dofmap.index_map.size_global * 3,
               "n_t": grid.n_t, "T": grid.T, "mpi_size": comm.size, "seconds": seconds,
               "newton_iterations": int(sum(solver.newton_iterations)),
               "a1": p.a1, "a2": p.a2, "exchange": p.exchange, "theta": job.theta,
               "relative_residual": solver.relative_residual(m),
               "mean_m_final": diag["mean_m"][-1], "max_norm_deviation":
               float(diag["norm_deviation"].max())}
    if case is not None:
        summary["rel_error"] = relative_error(V, grid, m, case.exact_ufl)
        summary["paper_rel_error"] = case.paper["rel_error"]
    if observation is not None:
        record_signals(cfg, *observation, m, summary)
    write_outputs(cfg, job, solver, m, diag, summary)
    get_logger(comm=comm).info("llg_forward: %d dofs, %d levels, %.3f s -> %s",
                               summary["dofs"], grid.n_t, seconds, cfg.run_dir)
    return summary


def write_outputs(cfg, job, solver, m, diag, summary) -> None:
    out, comm, t = cfg.run_dir, solver.comm, solver.grid.times
    if comm.rank == 0:
        write_resolved_config(cfg, out, {"llg": job})
    if cfg.output.plots:
        names = ("x", "y", "z")
        plot_series(out / "plots" / "field.png", t,
                    {f"h_{c}": diag["mean_h"][:, i] for i, c in enumerate(names)},
                    ylabel="mean applied field h", title="applied field", comm=comm)
        plot_series(out / "plots" / "magnetisation.png", t,
                    {f"m_{c}": diag["mean_m"][:, i] for i, c in enumerate(names)},
                    ylabel="mean magnetisation m", title="magnetisation", comm=comm)
        plot_series(out / "plots" / "norm_deviation.png", t,
                    {"max | |m|-1 |": diag["norm_deviation"]}, ylabel="deviation",
                    title="length deviation", comm=comm)
    if cfg.output.fields:
        summary["fields"] = str(write_trajectory(out / "fields" / "m.bp", solver.V, m, t))
    summary["mean_m"] = diag["mean_m"]
    summary["mean_h"] = diag["mean_h"]
    write_json(out / "summary.json", summary, comm)
