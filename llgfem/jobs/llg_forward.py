"""The ``llg_forward`` job: solve the LLG equation on the configured domain and time grid.

Config tables: ``[llg]``, ``[field]``, ``[physical]`` (see :mod:`llgfem.builders`, which turns
them into an :class:`~llgfem.problem.LLGProblem`).

Optional ``[observation]``, ``[[coil]]``, ``[[concentration]]`` tables (:mod:`llgfem.jobs.signals`)
add the receive-coil voltages of eq. (5): ``signals.h5`` and ``plots/signals.png``.

``initial = "paperN"`` runs Test N of paper 002, Table 1 (its field, coefficients, Neumann data
and exact solution; the summary then reports the relative error).  Outputs: ``summary.json``,
``plots/`` (h(t) and mean m(t) per component, max ||m|-1|), ``fields/m.bp``.
"""

from __future__ import annotations

import time

import numpy as np
from mpi4py import MPI

from llgfem.builders import LLGConfig, build_llg_problem, section
from llgfem.config import Config, write_resolved_config
from llgfem.io.fields import write_trajectory
from llgfem.io.plots import plot_series
from llgfem.io.progress import get_logger, progress
from llgfem.io.results import write_json
from llgfem.jobs.signals import build_observation, record_signals
from llgfem.mesh import create_domain
from llgfem.solvers.llg import LLGSolver

__all__ = ["diagnostics", "run"]

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
    job = section(cfg, "llg", LLGConfig)
    domain = create_domain(MPI.COMM_WORLD, cfg.domain)
    comm = domain.mesh.comm
    problem = build_llg_problem(cfg, domain.mesh)
    solver, V, grid = problem.solver, problem.V, problem.grid
    observation = build_observation(cfg, domain, V, grid)
    solver.progress = lambda it: progress(it, total=grid.n_t - 1, desc="LLG", comm=comm,
                                          enabled=cfg.output.progress)
    if comm.rank == 0:
        cfg.run_dir.mkdir(parents=True, exist_ok=True)
    comm.Barrier()
    log = get_logger(comm=comm)
    log.info("llg_forward: %s scheme, %d dofs, %d time levels%s%s", job.scheme,
             V.dofmap.index_map.size_global * 3, grid.n_t,
             f", paper case {job.initial}" if problem.case is not None else "",
             ", SI units" if problem.units is not None else "")
    t0 = time.perf_counter()
    m = problem.forward()
    seconds = time.perf_counter() - t0
    log.info("llg_forward: forward solve %.3f s, %d Newton iterations", seconds,
             int(sum(solver.newton_iterations)))
    diag = diagnostics(solver, m)
    p = solver.params
    summary = {"job": "llg_forward", "dofs": V.dofmap.index_map.size_global * 3,
               "n_t": grid.n_t, "T": grid.T, "mpi_size": comm.size, "seconds": seconds,
               "newton_iterations": int(sum(solver.newton_iterations)),
               "a1": p.a1, "a2": p.a2, "exchange": p.exchange, "theta": job.theta,
               "relative_residual": solver.relative_residual(m),
               "mean_m_final": diag["mean_m"][-1], "max_norm_deviation":
               float(diag["norm_deviation"].max())}
    units = problem.units
    if units is not None:  # the solver ran in dimensionless units: report SI as well
        summary.update({"units": {"field_T": units.field, "time_s": units.time,
                                  "length_m": units.length},
                        "T_seconds": units.to_si_time(grid.T)})
    if problem.case is not None:
        summary["rel_error"] = problem.relative_error(m)
        summary["paper_rel_error"] = problem.case.paper["rel_error"]
    if observation is not None:
        record_signals(cfg, *observation, m, summary, units=units)
        log.info("llg_forward: signals %s written, norm %.4g", tuple(summary["signals"]["shape"]),
                 summary["signals"]["norm"])
    write_outputs(cfg, job, problem, m, diag, summary)
    log.info("llg_forward: max ||m|-1| %.3g; outputs written -> %s",
             summary["max_norm_deviation"], cfg.run_dir)
    return summary


def write_outputs(cfg, job, problem, m, diag, summary) -> None:
    solver = problem.solver
    out, comm, t = cfg.run_dir, solver.comm, solver.grid.times
    units = problem.units
    tlabel, hlabel = "time t", "mean applied field h"
    if units is not None:  # plots in SI
        t = units.to_si_time(t)
        diag = {**diag, "mean_h": units.to_si_field(diag["mean_h"])}
        tlabel, hlabel = "time t (s)", "mean applied field B (T)"
    if comm.rank == 0:
        write_resolved_config(cfg, out, {"llg": job})
    if cfg.output.plots:
        names = ("x", "y", "z")
        plot_series(out / "plots" / "field.png", t,
                    {f"h_{c}": diag["mean_h"][:, i] for i, c in enumerate(names)},
                    xlabel=tlabel, ylabel=hlabel, title="applied field", comm=comm)
        plot_series(out / "plots" / "magnetisation.png", t,
                    {f"m_{c}": diag["mean_m"][:, i] for i, c in enumerate(names)},
                    xlabel=tlabel, ylabel="mean magnetisation m (unit length)",
                    title="magnetisation", comm=comm)
        plot_series(out / "plots" / "norm_deviation.png", t,
                    {"max | |m|-1 |": diag["norm_deviation"]}, xlabel=tlabel,
                    ylabel="max over nodes of | |m| - 1 |",
                    title="length deviation", comm=comm)
    if cfg.output.fields:
        summary["fields"] = str(write_trajectory(out / "fields" / "m.bp", solver.V, m, t))
    summary["mean_m"] = diag["mean_m"]
    summary["mean_h"] = diag["mean_h"]
    write_json(out / "summary.json", summary, comm)
