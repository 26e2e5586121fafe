"""The ``all_at_once`` job: Landweber(-Kaczmarz) on the all-at-once operator (Algorithm 3.1).

Runs the paper's settings (Table 1: Remark 1 as an LLG solver; Table 3: identification from
noisy signals) on any domain of the config (the paper cases depend on ``x[0]`` only, so a
rectangle ``[0, 2 pi] x [0, w]`` is a genuine 2-D test).  Config table ``[aao]``::

    case = "paper3"          # paper1 | paper2 | paper3 (Table 1)
    observe = true           # Table 3 data: a~ = 1, c = 1, p = (1, 1, 1), mu0 = 1
    estimate_parameters = true
    a0 = [1.5, 0.5]          # initial (a1, a2) (only with estimate_parameters)
    state_guess = "table1"   # table1 (Table 1 guess) | m0 | perturbed (m0 - 0.1 sin(20 t))
    delta = 0.03             # relative noise level of the data
    noise = "uniform"        # uniform (paper: y + delta |y| U(-1, 1)) | norm (see calibrate)
    seed = 0
    tau = 2.5                # discrepancy principle (stops when ||F(x) - y|| <= tau delta_abs)
    method = "landweber"     # landweber | nesterov | kaczmarz_time | kaczmarz_data
    segments = 5             # time segments for kaczmarz_time (Algorithm 3.3)
    mu = 300.0               # initial step of the adaptive bisection (paper §4.1)
    param_weight = 1.0       # weight of the Euclidean inner product of (a1, a2)
    model_weight = 1.0       # weight of the model residual's W norm against the data part
    grow = 1.0               # > 1 lets mu grow after accepted steps
    mu_min = 1e-8
    max_iter = 500
    error_every = 10         # relative error against the exact solution every k (0: never)
    checkpoint_every = 0     # > 0: checkpoint (and resume with resume = true)
    resume = false

Data (``observe = true``) go through a file, simulate -> write -> read
(:mod:`llgfem.calibration.synthetic`): the §4.3 observation of the case's exact solution on the
data model's mesh and time grid (``[synthetic] refine``, ``time_refine``; by default the
fitting mesh and grid, the paper's setting) at the fitting midpoints, noise added there,
written to ``<run_dir>/data/measurement.h5`` (noisy and noise-free data) and read back;
``summary.json`` records ``data_file`` and ``data_model``.  The exact solution is never the
discrete model's ``F(a_true)``, so ``inverse_crime`` is false (and for Test 3 the §4.3 data do
not depend on the data mesh/grid to round-off).
:func:`build_problem` without a file (the benches) writes the same-mesh data to a temporary
file and reads them back.

Noise: ``y_delta = y + delta |y| U(-1, 1)`` per sample (the paper's "delta % random noise",
whose reported r_obs ~ 0.62 delta matches this uniform model), ``delta_abs = ||y_delta - y||_Y``.
The vocabulary (``a0``, ``max_iter``, ``state_guess``, ``noise``, ``delta``, ``seed``, ``tau``,
``e_a1``/``e_a2`` relative, absolute where the true value is 0) is that of ``calibrate``; the old
names (``a_init``, ``max_iterations``, ``m_init``) are refused with the new ones.
Outputs: ``summary.json``, ``history.json``, ``plots/`` (residual with the discrepancy level
tau delta, step size, a1/a2 traces with the true values, error), ``fields/m.xdmf``
(reconstruction) in the run directory; rank 0 logs one INFO line per iteration.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from mpi4py import MPI

from llgfem.builders import IdentificationConfig, checkpoint_problem
from llgfem.calibration.synthetic import (
    SyntheticData,
    read_synthetic,
    simulate_measurement,
    temporary_file,
    write_noisy,
)
from llgfem.config import Config, ConfigError, write_resolved_config
from llgfem.io.fields import write_trajectory
from llgfem.io.plots import plot_series
from llgfem.io.progress import get_logger
from llgfem.io.results import write_json
from llgfem.mesh import create_domain
from llgfem.operators.all_at_once import AllAtOnceOperator
from llgfem.paper_cases import relative_error
from llgfem.problem import LLGProblem, parameter_errors
from llgfem.regularisation import (
    AdaptiveStep,
    Checkpoint,
    DiscrepancyPrinciple,
    History,
    LoggingCallback,
    MaxIterations,
    ProgressBar,
    StepSizeFloor,
    StoppingRule,
    landweber,
    landweber_kaczmarz,
    nesterov_landweber,
)
from llgfem.spacetime import TimeGrid, interpolate_levels

__all__ = ["AAOConfig", "ErrorTarget", "build_problem", "run", "solve"]

METHODS = ("landweber", "nesterov", "kaczmarz_time", "kaczmarz_data")


@dataclass(frozen=True)
class AAOConfig(IdentificationConfig):
    """``[aao]``: the shared identification keys plus the all-at-once operator's own."""

    case: str = "paper3"
    observe: bool = False
    estimate_parameters: bool = False
    state_guess: str = "table1"
    noise: str = "uniform"
    method: str = "landweber"
    mu: float = 300.0
    param_weight: float = 1.0
    model_weight: float = 1.0
    grow: float = 1.0
    mu_min: float = 1e-8
    error_every: int = 10
    error_target: float = 0.0

    def validate(self, where: str) -> None:
        super().validate(where)
        if self.case not in ("paper1", "paper2", "paper3"):
            raise ConfigError(f"{where}.case: {self.case!r} is not paper1, paper2 or paper3")
        if self.method not in METHODS:
            raise ConfigError(f"{where}.method: {self.method!r} is not one of {METHODS}")
        if self.delta > 0 and not self.observe:
            raise ConfigError(f"{where}.delta: needs observe = true")
        if self.mu <= 0 or self.mu_min <= 0 or self.grow < 1:
            raise ConfigError(f"{where}.mu: need mu > 0, mu_min > 0, grow >= 1")


class ErrorTarget(StoppingRule):
    """Stop once the relative error of the state is <= ``target`` (checked every ``every``
    iterations; ``every = 0``: never, no error trace)."""

    def __init__(self, error_fn, target: float, every: int = 10):
        self.error_fn, self.target, self.every = error_fn, target, every
        self.errors: list[tuple[int, float]] = []

    def check(self, info) -> str | None:
        if not self.every or info.iteration % self.every:
            return None
        err = self.error_fn(info.x)
        self.errors.append((info.iteration, err))
        return f"relative error {err:.3e} <= {self.target}" if err <= self.target else None


def _initial_guess(job: AAOConfig, case, V, grid: TimeGrid, m0: np.ndarray) -> np.ndarray:
    if job.state_guess == "table1":
        guess = interpolate_levels(V, case.initial_guess_np, grid.times)
    elif job.state_guess == "perturbed":  # m_init = m0 - 0.1 sin(20 t) (paper §4.3)
        guess = -0.1 * np.sin(20 * grid.times)[:, None] * np.ones((1, m0.size))
    else:
        guess = np.zeros((grid.n_t, m0.size))
    guess[0] = 0.0
    return guess


def build_problem(job: AAOConfig, mesh, T: float = 0.2, n_t: int = 51, *,
                  data_file: str | Path | None = None) -> dict:
    """Operator, data, initial iterate and exact solution of a paper case on ``mesh``.

    With ``observe`` the data are read from ``data_file`` (written by
    :func:`~llgfem.calibration.synthetic.simulate_measurement`); without one the exact
    solution is observed on ``mesh`` itself and goes through a temporary file.
    """
    problem = LLGProblem.paper_case(int(job.case[-1]), mesh, T=T, n_t=n_t, observe=job.observe)
    case, V, grid, obs, m0 = problem.case, problem.V, problem.grid, problem.observation, problem.m0
    F = AllAtOnceOperator(problem, estimate_parameters=job.estimate_parameters,
                          param_weight=job.param_weight, model_weight=job.model_weight)
    m_exact = interpolate_levels(V, case.exact_np, grid.times)
    a_true = np.array([case.params.a1, case.params.a2])
    data = _read_data(job, obs, m_exact, mesh, data_file) if obs else None
    y_obs = data.y if data else None
    y_delta = data.y_delta if data else None
    delta_abs = obs.norm_range(y_delta - y_obs) if data else 0.0
    a0 = np.asarray(job.a0) if job.estimate_parameters else a_true
    x0 = F.join(_initial_guess(job, case, V, grid, m0), a0)
    return {"F": F, "case": case, "V": V, "grid": grid, "obs": obs, "x0": x0, "y": F.data(y_delta),
            "y_obs": y_obs, "delta_abs": delta_abs, "a_true": a_true, "m_exact": m_exact,
            "data_file": None if data is None else data.path,
            "data_model": None if data is None else data.data_model}


def _read_data(job: AAOConfig, obs, m_exact: np.ndarray, mesh,
               data_file: str | Path | None) -> SyntheticData:
    """The data read back from ``data_file``, or the same-mesh data through a temporary file."""
    comm = mesh.comm
    if data_file is not None:
        return read_synthetic(data_file, comm, obs.times, obs.signals_shape)
    path, cleanup = temporary_file(comm)
    try:
        cells = mesh.topology.index_map(mesh.topology.dim).size_global
        model = {"cells": int(cells), "n_t": int(obs.grid.n_t), "scheme": "exact solution",
                 "refine": 1, "time_refine": 1, "inverse_crime": False}
        write_noisy(path, obs.apply(m_exact), obs.times, obs.coil_names,
                    obs.concentration_names, delta=job.delta, seed=job.seed, noise=job.noise,
                    data_model=model, comm=comm)
        return read_synthetic(path, comm, obs.times, obs.signals_shape)
    finally:
        cleanup()


def solve(job: AAOConfig, prob: dict, callbacks=(), checkpoint=None):
    """Run the configured iteration on the problem of :func:`build_problem`."""
    F, V, grid, case = prob["F"], prob["V"], prob["grid"], prob["case"]
    stop = MaxIterations(job.max_iter) | StepSizeFloor(job.mu_min)
    error = ErrorTarget(lambda x: relative_error(V, grid, F.state(x), case.exact_ufl),
                        job.error_target, job.error_every)
    stop = stop | error
    if job.delta > 0:
        stop = stop | DiscrepancyPrinciple(job.tau, prob["delta_abs"])
    step = AdaptiveStep(job.mu, mu_min=job.mu_min, grow=job.grow, mu_max=1e3 * job.mu)
    kw = {"step": step, "stop": stop, "callbacks": callbacks, "checkpoint": checkpoint}
    if job.method == "nesterov":
        return nesterov_landweber(F, prob["y"], prob["x0"], restart=True, **kw), error
    if job.method.startswith("kaczmarz"):
        subs = (time_segments(F, job.segments) if job.method == "kaczmarz_time"
                else data_selection(F))
        ys = [prob["y"]] * len(subs)
        if job.delta > 0:
            kw["stop"] = (MaxIterations(job.max_iter) | StepSizeFloor(job.mu_min) | error
                          | DiscrepancyPrinciple(job.tau, [prob["delta_abs"]] * len(subs)))
        return landweber_kaczmarz(subs, ys, prob["x0"], **kw), error
    return landweber(F, prob["y"], prob["x0"], **kw), error


class _Segment:
    """A Kaczmarz sub-problem: F with its range restricted by a 0/1 mask.

    Algorithm 3.3 (time segments): the model residual at the midpoints of one window plus the
    data; Algorithm 3.4 (data selection): the whole model residual plus one (k, l) signal.
    """

    def __init__(self, F: AllAtOnceOperator, steps: np.ndarray, obs_mask: np.ndarray | None = None):
        self.F = F
        mask = np.zeros((F.N, F.n))
        mask[steps] = 1.0
        obs = np.ones(F.n_obs) if obs_mask is None else obs_mask
        self.mask = np.concatenate([mask.ravel(), obs])
        self.inner_domain, self.inner_range = F.inner_domain, F.inner_range

    def __call__(self, x):
        return self.F(x) * self.mask

    def derivative(self, x):
        L, mask = self.F.derivative(x), self.mask

        class _Restricted:
            def __call__(self, dx):
                return L.apply(dx) * mask

            apply = __call__

            def adjoint(self, r):
                return L.adjoint(r * mask)
        return _Restricted()


def data_selection(F: AllAtOnceOperator) -> list[_Segment]:
    """One sub-problem per (k, l): the model residual and the signal v_kl (Algorithm 3.4)."""
    if not F.n_obs:
        raise ConfigError("aao.method: kaczmarz_data needs observe = true")
    shape = F.obs.signals_shape
    subs = []
    for k, l in F.obs.pairs:
        m = np.zeros(shape)
        m[k, l] = 1.0
        subs.append(_Segment(F, np.arange(F.N), m.ravel()))
    return subs


def time_segments(F: AllAtOnceOperator, count: int) -> list[_Segment]:
    """Split the N midpoints into ``count`` consecutive windows (each also sees the data)."""
    return [_Segment(F, idx) for idx in np.array_split(np.arange(F.N), count) if len(idx)]


def run(cfg: Config) -> dict:
    """Run the ``all_at_once`` job; returns the summary."""
    job = cfg.section("aao", AAOConfig)
    domain = create_domain(MPI.COMM_WORLD, cfg.domain)
    comm = domain.mesh.comm
    data_file = None
    if job.observe:
        data_file = cfg.run_dir / "data" / "measurement.h5"
        simulate_measurement(cfg, comm, data_file, delta=job.delta, seed=job.seed,
                             noise=job.noise, paper_case=int(job.case[-1]))
    elif "synthetic" in cfg.sections:
        raise ConfigError("synthetic: [synthetic] describes the data model, but aao.observe = "
                          "false (no data)")
    prob = build_problem(job, domain.mesh, cfg.time.T, cfg.time.n_t, data_file=data_file)
    history = History({"a1": lambda x: x[-2], "a2": lambda x: x[-1]})
    log = get_logger(comm=comm)
    callbacks = [history, LoggingCallback(1, logger=log, rank=comm.rank)]
    if cfg.output.progress:
        callbacks.append(ProgressBar(total=job.max_iter, rank=comm.rank))
    log.info("all_at_once: %s, %s, %d dofs x %d levels, %s parameters, delta %g, up to %d "
             "iterations", job.case, job.method, prob["V"].dofmap.index_map.size_global * 3,
             prob["grid"].n_t, "estimating" if job.estimate_parameters else "fixed", job.delta,
             job.max_iter)
    ckpt = None
    if job.checkpoint_every:
        ckpt = Checkpoint(cfg.run_dir / "checkpoint" / "aao", every=job.checkpoint_every,
                          resume=job.resume, rank=comm.rank, size=comm.size, comm=comm,
                          problem=checkpoint_problem(cfg, "aao"))
    t0 = time.perf_counter()
    result, error = solve(job, prob, callbacks=callbacks, checkpoint=ckpt)
    seconds = time.perf_counter() - t0
    summary = summarise(job, prob, result, seconds)
    summary["error_trace"] = error.errors
    write_results(cfg, job, prob, result, summary)
    log.info("all_at_once: %d iterations (%s), rel. error %.3e, %.2f s", result.iterations,
             result.reason, summary["rel_error"], seconds)
    return summary


def summarise(job: AAOConfig, prob: dict, result, seconds: float) -> dict:
    """Numbers of Tables 1 and 3: iterations, residuals, errors, seconds."""
    F, V, grid, case = prob["F"], prob["V"], prob["grid"], prob["case"]
    r = F(result.x) - prob["y"]
    r0, r_obs = F.split_range(r)
    zero = np.zeros_like(r_obs)
    r_llg = np.sqrt(F.inner_range(np.concatenate([r0.ravel(), zero]),
                                  np.concatenate([r0.ravel(), zero])) / F.model_weight)
    a = result.x[-2:]
    out = {"job": "all_at_once", "case": job.case, "method": job.method,
           "iterations": result.iterations, "reason": result.reason, "seconds": seconds,
           "seconds_per_iteration": seconds / max(result.iterations, 1),
           "rel_error": relative_error(V, grid, F.state(result.x), case.exact_ufl),
           "r_llg": float(r_llg), "a1": float(a[0]), "a2": float(a[1]),
           **dict(zip(("e_a1", "e_a2"), parameter_errors(a, prob["a_true"]))),
           "delta": job.delta,
           "dofs": V.dofmap.index_map.size_global * 3, "n_t": grid.n_t,
           "mpi_size": V.mesh.comm.size, "counters": dict(F.counters),
           "data_file": None if prob.get("data_file") is None else str(prob["data_file"]),
           "data_model": prob.get("data_model")}
    if prob["obs"] is not None:
        y_delta = prob["y"][F.N * F.n:].reshape(prob["obs"].signals_shape)
        out["r_obs"] = float(prob["obs"].norm_range(r_obs.reshape(y_delta.shape))
                             / prob["obs"].norm_range(y_delta))
    return out


def write_results(cfg: Config, job: AAOConfig, prob: dict, result, summary: dict) -> None:
    out, F = cfg.run_dir, prob["F"]
    comm = F.comm
    if comm.rank == 0:
        write_resolved_config(cfg, out, {"aao": job})
    h = result.history
    write_json(out / "history.json", h.state_dict(), comm)
    if cfg.output.plots:
        write_plots(out, job, prob, h, summary, comm)
    if cfg.output.fields:
        write_trajectory(out / "fields" / "m.bp", prob["V"], F.state(result.x),
                         prob["grid"].times)
    write_json(out / "summary.json", summary, comm)


def write_plots(out, job: AAOConfig, prob: dict, h: History, summary: dict, comm) -> None:
    """Residual (with the discrepancy level tau delta), step size, parameter traces (with the
    true values) and the error trace, under ``plots/`` (the paper cases are dimensionless)."""
    its = np.asarray(h.iterations, dtype=float)
    level = {"tau delta": job.tau * prob["delta_abs"]} if job.delta > 0 else None
    plot_series(out / "plots" / "residual.png", its, {"||F(x) - y||": h.residual_norms},
                xlabel="iteration", ylabel="residual norm ||F(x) - y||", logy=True,
                hlines=level, title="residual", comm=comm)
    plot_series(out / "plots" / "step_size.png", its, {"mu": h.step_sizes},
                xlabel="iteration", ylabel="step size mu", logy=True,
                title="adaptive step size", comm=comm)
    a_true = prob["a_true"]
    plot_series(out / "plots" / "parameters.png", its, {"a1": h.a1, "a2": h.a2},
                xlabel="iteration", ylabel="parameter value (dimensionless)",
                hlines={"a1 true": float(a_true[0]), "a2 true": float(a_true[1])},
                title="parameter traces", comm=comm)
    if summary["error_trace"]:
        e = np.array(summary["error_trace"])
        plot_series(out / "plots" / "error.png", e[:, 0], {"relative error": e[:, 1]},
                    xlabel="iteration", ylabel="|m - m_exact| / |m_exact|", logy=True,
                    title="relative error of the state", comm=comm)
