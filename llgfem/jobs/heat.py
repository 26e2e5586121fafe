"""The ``heat`` job: solve one of the heat-type problems (18), (19), (21) on the configured domain.

Config table ``[heat]`` (all optional)::

    problem = "forward"       # forward (18) | backward (19) | elliptic (21)
    center = [0.5, 0.5, 0.5]  # centre of the Gaussian source (first `dim` entries used)
    width = 0.1               # its width
    frequency = 2.0           # the source oscillates like sin(2 pi f t) (+1 for elliptic)
    solver = "auto"           # linear solver preset: auto | direct | iterative

Writes ``summary.json``, ``config.resolved.*``, ``plots/heat_norm.png`` and the trajectory
(``fields/heat.xdmf``) into the run directory; logs one INFO line per stage (set-up, solve,
outputs) on rank 0.  The heat problems are dimensionless (no SI units).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from mpi4py import MPI

from llgfem.config import Config, ConfigError, write_resolved_config
from llgfem.io.fields import write_trajectory
from llgfem.io.plots import plot_series
from llgfem.io.progress import get_logger, progress
from llgfem.io.results import write_json
from llgfem.mesh import create_domain
from llgfem.solvers.heat import HeatSolver
from llgfem.spacetime import TimeGrid, create_vector_space, interpolate_levels

__all__ = ["HeatJobConfig", "run"]


@dataclass(frozen=True)
class HeatJobConfig:
    problem: str = "forward"
    center: tuple[float, ...] = (0.5, 0.5, 0.5)
    width: float = 0.1
    frequency: float = 2.0
    solver: str = "auto"

    def validate(self, where: str) -> None:
        if self.problem not in ("forward", "backward", "elliptic"):
            raise ConfigError(f"{where}.problem: {self.problem!r} not in forward/backward/elliptic")
        if self.width <= 0:
            raise ConfigError(f"{where}.width: must be positive, got {self.width}")
        if self.solver not in ("auto", "direct", "iterative"):
            raise ConfigError(f"{where}.solver: {self.solver!r} not in auto/direct/iterative")


def gaussian_source(job: HeatJobConfig, dim: int):
    c = np.zeros(3)
    c[: min(3, len(job.center))] = job.center[:3]

    def source(x, t):
        r2 = sum((x[j] - c[j]) ** 2 for j in range(dim))
        bump = np.exp(-r2 / job.width**2)
        s = np.sin(2 * np.pi * job.frequency * t) + (1.0 if job.problem == "elliptic" else 0.0)
        return np.stack([bump * s, 0.5 * bump * s, -bump * s])

    return source


def run(cfg: Config) -> dict:
    """Run the heat job described by ``cfg``; returns the summary."""
    job = cfg.section("heat", HeatJobConfig)
    domain = create_domain(MPI.COMM_WORLD, cfg.domain)
    comm = domain.mesh.comm
    log = get_logger(comm=comm)
    V = create_vector_space(domain.mesh)
    grid = TimeGrid(cfg.time.T, cfg.time.n_t)
    t0 = time.perf_counter()
    solver = HeatSolver(V, grid, kind=job.solver)
    setup = time.perf_counter() - t0
    dofs = V.dofmap.index_map.size_global * V.dofmap.index_map_bs
    log.info("heat: %d dofs, %d time levels up to T = %g; solver (%s) set up in %.3f s", dofs,
             grid.n_t, grid.T, job.solver, setup)
    source = interpolate_levels(V, gaussian_source(job, domain.mesh.geometry.dim), grid.times)
    solver.progress = lambda it: progress(it, total=grid.n_t - 1, desc=job.problem, comm=comm,
                                          enabled=cfg.output.progress)
    t0 = time.perf_counter()
    if job.problem == "forward":
        z = solver.solve_forward(source)
    elif job.problem == "backward":
        z = solver.solve_backward(source, source[-1])
    else:
        z = solver.solve_elliptic(source)
    seconds = time.perf_counter() - t0
    norms = np.sqrt([solver.dot(zi, solver.mult(solver.M, zi)) for zi in z])
    log.info("heat: %s problem (%s) solved in %.3f s, max L2 norm %.4g", job.problem,
             {"forward": "18", "backward": "19", "elliptic": "21"}[job.problem], seconds,
             float(norms.max()))
    summary = {"job": "heat", "problem": job.problem, "dofs": dofs, "n_t": grid.n_t,
               "mpi_size": comm.size, "setup_seconds": setup, "solve_seconds": seconds,
               "l2_norm_final": float(norms[-1]), "l2_norm_max": float(norms.max())}
    out = cfg.run_dir
    if comm.rank == 0:
        write_resolved_config(cfg, out, {"heat": job})
    if cfg.output.plots:
        plot_series(out / "plots" / "heat_norm.png", grid.times, {"|z(t)|_L2": norms},
                    xlabel="time t (dimensionless)", ylabel="L2 norm of z(t)",
                    title=f"heat ({job.problem}), {dofs} dofs", comm=comm)
    if cfg.output.fields:
        summary["fields"] = str(write_trajectory(out / "fields" / "heat.bp", V, z, grid.times,
                                                 name="z"))
    write_json(out / "summary.json", summary, comm)
    log.info("heat: wrote summary.json, config.resolved.*%s%s -> %s",
             ", plots/heat_norm.png" if cfg.output.plots else "",
             ", fields/" if cfg.output.fields else "", out)
    return summary

