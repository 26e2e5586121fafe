"""The ``calibrate`` job: identify the LLG parameters (a1, a2) from receive-coil signals.

Paper 002 §2.2-3 and §4.3 (SPEC §2-3): synthetic data ``y = F_data(a_true)`` of a data model
(:mod:`llgfem.calibration.synthetic`: the fitting model on a mesh refined ``[synthetic] refine``
times, with ``time_refine`` times the steps and optionally another ``scheme``; by default the
fitting model itself, the papers' "inverse crime", which the run flags), noise of relative
level ``delta`` (seeded) on the fitting model's midpoints, written to
``<run_dir>/data/measurement.h5`` and **read back** from there, then one of

* ``landweber`` -- reduced Landweber, Algorithm 3.2 (update (37)-(38));
* ``kaczmarz_time`` -- Landweber-Kaczmarz over ``segments`` time windows, Algorithm 3.3;
* ``kaczmarz_data`` -- Landweber-Kaczmarz over the (k, l) pairs, Algorithm 3.4;
* ``levenberg_marquardt`` -- regularising Levenberg-Marquardt (beyond the paper,
  :mod:`llgfem.regularisation.gauss_newton`),

all stopped by the discrepancy principle (15)-(17) with ``tau`` (or ``max_iter``), or

* ``gauss_newton`` -- Levenberg-Marquardt with the exact Jacobian run to the least-squares
  point (:func:`llgfem.calibration.fit.least_squares_fit`; no early stopping), the estimate the
  statistical intervals below refer to.  ``refine = k`` appends up to ``k`` such steps to any
  of the regularising methods.

Uncertainty (:mod:`llgfem.calibration.uncertainty`): at the final ``a`` the exact Jacobian
``J = F'(a)`` (two linearised solves, one sweep) gives standard errors, correlations and 95 %
intervals from ``sigma^2 (J^T J)^{-1}`` (``sigma`` estimated from the residual, Student-t
quantile), written to ``summary.json`` (``uncertainty``, and flat ``stderr``, ``ci95_low``,
``ci95_high``, ``identified``, ``correlation``) and printed as a table on rank 0.  A parameter
is **not identified** when a scaled singular value ratio is below ``rcond`` in a direction
involving it, or when its 95 % interval is wider than ``rel_width`` times its scale
``max(|a_j|, 0.1 max_i |a_i|)`` (a1 and a2 multiply terms of one size; the floor keeps a true
value 0 from always failing the width rule); every rank then warns.  The intervals are
statistical (valid at a least-squares point and for noise that is white per sample); at an
early-stopped regularised iterate they are centred there.  Physical runs also report
``alpha_D = -a1/a2`` and ``gamma = -1/(a2 t_ref B_ref)`` (``docs/physical_units.md``) with
delta-method intervals (``physical``).

Anisotropy (``parameters = ["a1", "a2", "k"]``): the coefficient ``k`` of the uniaxial field
``k (m . e) e`` (``[llg] anisotropy``/``easy_axis``, or ``[physical] K_u``) is a third fitted
parameter (``a0`` then has three entries; its Jacobian column is one more linearised column of
the same sweep).  Physical runs add ``K_u = k M_S B_ref / 2`` (J/m^3; ``k = 2 K_u/(M_S B_ref)``
in the scaled equations) to ``physical``.  With the applied field along the easy axis and
``m`` near it the anisotropy term barely moves ``m``: ``k`` is then reported as not identified.

Config tables::

    [llg]            # as in llg_forward: the true parameters, field, initial state, form
    initial = "paper3"             # paperN: Table 1 Test N (true a, field, m0, Neumann g)

    [calibrate]
    method = "landweber"           # landweber | kaczmarz_time | kaczmarz_data |
                                   # levenberg_marquardt
    parameters = ["a1", "a2"]      # or ["a1", "a2", "k"]: also fit the anisotropy coefficient
    a0 = [1.5, 0.5]                # initial guess of (a1, a2) (or (a1, a2, k))
    delta = 0.03                   # relative noise level
    noise = "norm"                 # norm: ||y_delta - y|| = delta ||y|| (Gaussian direction);
                                   # uniform: y + delta |y| u, u ~ U(-1, 1) per sample (paper)
    seed = 0                       # noise seed
    tau = 2.5                      # discrepancy principle (paper: tau > 2)
    step = "adaptive"              # adaptive | constant | steepest
    mu = 1.0                       # (initial) step size
    grow = 2.0                     # adaptive: growth after an accepted step
    armijo = 0.5                   # adaptive: sufficient-decrease constant
    max_iter = 500
    rtol = 0.0                     # also stop at ||r|| <= rtol ||r_0|| (exact data: delta = 0)
    segments = 5                   # kaczmarz_time: number of windows
    lm_q = 0.7                     # levenberg_marquardt: linearised residual ratio
    refine = 0                     # Gauss-Newton steps to the least-squares point afterwards
    rcond = 1e-6                   # identifiability: singular value ratio threshold
    rel_width = 1.0                # identifiability: 95 % interval width / |parameter| limit
    state_guess = "perturbed"      # Newton guess of the first solve: "perturbed"
                                   # (m0 - 0.1 sin(20 t)(1,1,1), §4.3) or "m0"

Without ``[[coil]]`` tables the observation is the paper's §4.3 one: ``mu0 = 1``,
``a~ = 1`` (constant transfer), ``c = 1``, ``p = (1, 1, 1)``.

With a ``[data]`` table the job fits a measured file instead (MDF v2 or llgfem signals; see
:mod:`llgfem.jobs.calibrate_data` and ``docs/calibration.md``); ``delta``/``noise``/``seed``
then play no role.

Reported (``summary.json``): ``data_file`` (the simulated file the data were read from),
``data_model`` (``cells``, ``n_t``, ``scheme``, ``refine``, ``time_refine``,
``inverse_crime``), ``iterations``, ``r_llg`` (relative LLG residual of the final
state, :meth:`LLGSolver.relative_residual`), ``r_obs = ||F(a) - y_delta|| / ||y_delta||``,
``e_a1``, ``e_a2`` (relative error ``|a_i - a_i^true| / |a_i^true|``, the absolute error when
``a_i^true = 0``), ``sensitivity_norms`` ``||dF/da_i||_Y`` at the result (a tiny one flags a
parameter the data cannot determine: with the §4.3 observation of Test 3,
``||dF/da2|| / ||dF/da1|| ~ 2e-3`` at a_true), ``seconds`` (the identification loop, excluding
setup/JIT), the solve counters; ``history.json`` (residual, a1, a2 and counters per
iteration); plots of the signal fit and parameter traces (rank 0).

Notation: ``a = (a1, a2)``, ``y``, ``y_delta`` data, ``delta`` relative noise, ``noise`` its
absolute level (range norm), ``tau`` discrepancy factor.
"""

from __future__ import annotations

import gc
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from mpi4py import MPI

from llgfem.builders import (
    IdentificationConfig,
    build_llg_problem,
    build_observation,
    checkpoint_problem,
    section,
)
from llgfem.calibration import Uncertainty, fisher_uncertainty, propagate
from llgfem.calibration.fit import least_squares_fit
from llgfem.calibration.synthetic import (
    INVERSE_CRIME_WARNING,
    read_synthetic,
    simulate_measurement,
)
from llgfem.config import Config, ConfigError, write_resolved_config
from llgfem.io.plots import plot_series
from llgfem.io.progress import get_logger
from llgfem.io.results import write_json
from llgfem.mesh import create_domain
from llgfem.operators.reduced import ReducedOperator
from llgfem.problem import paper_observation, parameter_errors
from llgfem.regularisation import (
    AdaptiveStep,
    Checkpoint,
    ConstantStep,
    DiscrepancyPrinciple,
    History,
    LoggingCallback,
    MaxIterations,
    RelativeResidual,
    SteepestDescentStep,
    landweber,
    landweber_kaczmarz,
)
from llgfem.regularisation.gauss_newton import levenberg_marquardt
from llgfem.solvers.llg import PARAMETER_NAMES

__all__ = ["CalibrateConfig", "Calibration", "ModelErrorWarning", "model_bias", "parameter_errors",
           "physical_uncertainty", "run",
           "setup", "uncertainty"]

METHODS = ("landweber", "kaczmarz_time", "kaczmarz_data", "levenberg_marquardt",
           "gauss_newton")
NAMES = ("a1", "a2")


@dataclass(frozen=True)
class CalibrateConfig(IdentificationConfig):
    """``[calibrate]``: the shared identification keys plus the reduced methods' own."""

    method: str = "landweber"
    delta: float = 0.03
    step: str = "adaptive"
    mu: float = 1.0
    grow: float = 2.0
    armijo: float = 0.5
    rtol: float = 0.0
    lm_q: float = 0.7
    refine: int = 0
    rcond: float = 1e-6
    rel_width: float = 1.0
    parameters: tuple[str, ...] = NAMES

    STATE_GUESSES = ("perturbed", "m0")

    def parameter_names(self) -> tuple[str, ...]:
        """The fitted parameters: ``("a1", "a2")`` or ``("a1", "a2", "k")``."""
        return tuple(self.parameters)

    def model_parameter_names(self) -> tuple[str, ...]:
        """The solver's parameters: without a trailing ``"M_S"`` (a [data] amplitude)."""
        names = tuple(self.parameters)
        return names[:-1] if names[-1:] == ("M_S",) else names

    def validate(self, where: str) -> None:
        if self.model_parameter_names() not in PARAMETER_NAMES:
            raise ConfigError(f"{where}.parameters: {list(self.parameters)} is not one of "
                              f"{[list(p) for p in PARAMETER_NAMES]} (+ \"M_S\" last with "
                              "[data])")
        super().validate(where)
        checks = [
            (self.method in METHODS, "method", f"{self.method!r} is not one of {METHODS}"),
            (self.step in ("adaptive", "constant", "steepest"), "step",
             "adaptive | constant | steepest"),
            (self.mu > 0 and self.grow >= 1 and 0 <= self.armijo < 1, "mu",
             "need mu > 0, grow >= 1, 0 <= armijo < 1"),
            (0 < self.lm_q < 1, "lm_q", "must lie in (0, 1)"),
            (0 <= self.rtol < 1, "rtol", "must lie in [0, 1)"),
            (self.refine >= 0, "refine", "must be >= 0"),
            (0 < self.rcond < 1, "rcond", "must lie in (0, 1)"),
            (self.rel_width > 0, "rel_width", "must be > 0"),
            (not (self.checkpoint_every
                  and self.method in ("levenberg_marquardt", "gauss_newton")),
             "checkpoint_every", f"{self.method} does not checkpoint (use a Landweber "
             "method or checkpoint_every = 0)"),
        ]
        for ok, key, msg in checks:
            if not ok:
                raise ConfigError(f"{where}.{key}: {msg}")


@dataclass
class Calibration:
    """A configured identification problem (see :func:`setup`)."""

    op: ReducedOperator
    y: np.ndarray
    y_delta: np.ndarray
    noise: float
    a_true: np.ndarray
    cfg: CalibrateConfig
    m_S: float | None = None  # saturation magnetisation (A/m) of a physical run (for K_u)
    data_file: Path | None = None  # the simulated file y, y_delta were read from
    data_model: dict = field(default_factory=dict)  # cells, n_t, scheme, ..., inverse_crime

    def subproblems(self) -> tuple[list[ReducedOperator], list[np.ndarray], list[float]]:
        """Sub-operators, their data and (actual) noise levels for the configured method."""
        op, c = self.op, self.cfg
        if c.method == "kaczmarz_time":
            ops = op.time_segments(c.segments)
            parts = [o.restrict for o in ops]
        elif c.method == "kaczmarz_data":
            pairs = op.observation.pairs
            ops = [op.select(k, l) for k, l in pairs]
            parts = [lambda y, k=k, l=l: op.select_data(y, k, l) for k, l in pairs]  # noqa: E741
        else:
            return [op], [self.y_delta], [self.noise]
        data = [part(self.y_delta) for part in parts]
        noise = [part(self.y_delta - self.y) for part in parts]
        return ops, data, [math.sqrt(o.inner_range(e, e)) for o, e in zip(ops, noise)]


def setup(cfg: Config, comm: MPI.Comm = MPI.COMM_WORLD,
          data_path: str | Path | None = None) -> Calibration:
    """Build the solver, observation and reduced operator of ``cfg`` and its noisy data.

    The data go through a file: the data model (``[synthetic]``) is simulated and written to
    ``data_path`` (default ``<run_dir>/data/measurement.h5``) by
    :func:`~llgfem.calibration.synthetic.simulate_measurement`, then read back; ``y_delta``
    (and the noise-free ``y`` for the noise level) are what was read.  The file is rewritten on
    every run (also on a resumed one: the simulation is deterministic, so it is identical).
    """
    cal = cfg.section("calibrate", CalibrateConfig)
    if cal.model_parameter_names() != cal.parameter_names():
        raise ConfigError("calibrate.parameters: M_S is fitted from a measured file only "
                          "(a [data] table with data.gain = 'none')")
    path = Path(data_path) if data_path is not None else cfg.run_dir / "data" / "measurement.h5"
    simulate_measurement(cfg, comm, path, delta=cal.delta, seed=cal.seed, noise=cal.noise,
                         parameters=cal.parameter_names(), state_guess=cal.state_guess)
    domain = create_domain(comm, cfg.domain)
    problem = build_llg_problem(cfg, domain.mesh, parameters=cal.parameter_names())
    V, grid, m0 = problem.V, problem.grid, problem.m0
    built = build_observation(cfg, domain, V, grid)
    problem.observation = built[0] if built is not None else paper_observation(V, grid)
    obs = problem.observation
    guess = None
    if cal.state_guess == "perturbed":
        guess = m0[None, :] - 0.1 * np.sin(20 * grid.times)[:, None]
    op = ReducedOperator(problem, m_guess=guess, failed_solve="nan",
                         tangents=uses_tangents(cal.method, problem))
    times = obs.times if problem.units is None else problem.units.to_si_time(obs.times)
    data = read_synthetic(path, comm, times, obs.signals_shape)
    y, y_delta = data.y.ravel(), data.y_delta.ravel()
    noise = math.sqrt(op.inner_range(y_delta - y, y_delta - y))
    if data.data_model.get("inverse_crime"):
        get_logger(comm=comm).warning(INVERSE_CRIME_WARNING)
    m_S = None
    if problem.units is not None:
        from llgfem.physics import PhysicalParameters

        m_S = section(cfg, "physical", PhysicalParameters).m_S
    return Calibration(op, y, y_delta, noise, problem.a.copy(), cal, m_S, path,
                       dict(data.data_model))


def uses_tangents(method: str, problem) -> bool:
    """Gauss-Newton/Levenberg-Marquardt on the Gilbert form compute the sensitivities with
    every forward sweep (one Jacobian assembly per step, :class:`ReducedOperator`
    ``tangents=True``): they need the Jacobian at every accepted point anyway."""
    return (method in ("gauss_newton", "levenberg_marquardt")
            and getattr(problem.solver, "form", None) == "gilbert")


def _step_rule(c: CalibrateConfig):
    if c.step == "constant":
        return ConstantStep(c.mu)
    if c.step == "steepest":
        return SteepestDescentStep()
    return AdaptiveStep(c.mu, grow=c.grow, armijo=c.armijo, mu_max=1e6 * c.mu)


class _Counters:
    """Callback recording the solve counters and wall time after every iteration."""

    def __init__(self, op: ReducedOperator):
        self.op, self.t0 = op, time.perf_counter()
        self.records: dict[str, list] = {k: [] for k in (*op.counters, "seconds")}

    def __call__(self, info) -> None:
        for key, value in self.op.counters.items():
            self.records[key].append(value)
        self.records["seconds"].append(time.perf_counter() - self.t0)


def identify(cal: Calibration, checkpoint: Checkpoint | None = None):
    """Run the configured method; returns ``(Result, history records)``.

    With a :class:`~llgfem.regularisation.Checkpoint` the iterate and the driver state are
    saved periodically (atomically, one set for all ranks) and a killed run resumes from them.
    """
    c = cal.cfg
    ops, data, deltas = cal.subproblems()
    history = History({name: (lambda x, i=i: x[i])
                       for i, name in enumerate(cal.op.problem.parameter_names)})
    counters = _Counters(cal.op)
    cbs = [history, counters,
           LoggingCallback(1, logger=get_logger(comm=cal.op.solver.comm),
                           rank=cal.op.solver.comm.rank)]
    stop = MaxIterations(c.max_iter)
    if c.rtol > 0:
        stop = stop | RelativeResidual(c.rtol)
    if c.method == "gauss_newton":
        res = _gauss_newton(cal, np.array(c.a0), c.max_iter, cbs)
    elif c.method == "levenberg_marquardt":
        res = levenberg_marquardt(cal.op, cal.y_delta, np.array(c.a0), tau=c.tau,
                                  delta=cal.noise, q=c.lm_q, max_iter=c.max_iter, rtol=c.rtol,
                                  callbacks=cbs)
    elif len(ops) == 1 and c.method == "landweber":
        res = landweber(cal.op, cal.y_delta, np.array(c.a0), step=_step_rule(c),
                        stop=DiscrepancyPrinciple(c.tau, cal.noise) | stop,
                        callbacks=cbs, checkpoint=checkpoint)
    else:
        res = landweber_kaczmarz(ops, data, np.array(c.a0), step=_step_rule(c),
                                 stop=DiscrepancyPrinciple(c.tau, deltas) | stop,
                                 callbacks=cbs, checkpoint=checkpoint)
    if c.refine and c.method != "gauss_newton":
        res = _gauss_newton(cal, res.x, c.refine, cbs, res)
    return res, {**history.state_dict(), **counters.records}


def _gauss_newton(cal: Calibration, x0: np.ndarray, max_iter: int, cbs, previous=None):
    """Least-squares point by Levenberg-Marquardt with the exact Jacobian.

    Returns a :class:`~llgfem.regularisation.core.Result`-like record (``x``, ``iterations``,
    ``reason``); the callbacks see one :class:`IterationInfo` per accepted step.
    """
    from llgfem.regularisation.core import IterationInfo, Result

    op, y = cal.op, cal.y_delta
    done = 0 if previous is None else int(previous.iterations)

    def callback(rec):
        info = IterationInfo(iteration=done + rec["iteration"], x=np.array(rec["x"]),
                             residual_norm=rec["residual_norm"] * math.sqrt(op.dt),
                             step_size=None if rec["iteration"] == 0 else 1.0)
        for cb in cbs:
            cb(info)

    fit = least_squares_fit(lambda a: op(a) - y, lambda a: op.derivative(a).sensitivities(),
                            x0, max_iter=max_iter, floor=_floor(x0), callback=callback,
                            initial_callback=previous is None)
    reason = fit.reason if previous is None else f"{previous.reason}; refined: {fit.reason}"
    return Result(x=fit.x, iterations=done + fit.iterations, reason=reason,
                  history=getattr(previous, "history", None),
                  residual_norm=float(np.linalg.norm(fit.residual)) * math.sqrt(op.dt))


def _floor(a: np.ndarray) -> np.ndarray:
    """Parameter scales ``max(|a_j|, 0.1 max_i |a_i|)`` (1 if all vanish)."""
    a = np.abs(np.asarray(a, dtype=float))
    top = float(a.max()) if a.size and a.max() > 0 else 10.0
    return np.maximum(a, 0.1 * top)


def uncertainty(cal: Calibration, a: np.ndarray, J: np.ndarray | None = None) -> Uncertainty:
    """Fisher-information uncertainty of ``a`` (exact Jacobian; sigma from the residual)."""
    op, c = cal.op, cal.cfg
    J = op.derivative(a).sensitivities() if J is None else J
    r = op(a) - cal.y_delta
    return fisher_uncertainty(J, r, a, op.problem.parameter_names, rcond=c.rcond,
                              rel_width=c.rel_width, scale=_floor(a))


def physical_uncertainty(unc: Uncertainty, units, m_S: float | None = None) -> Uncertainty:
    """``alpha_D = -a1/a2`` and ``gamma = -1/(a2 t_ref B_ref)`` (rad/(s T)) by the delta method;
    with a fitted ``k`` (third estimate) and ``m_S`` also ``K_u = k M_S B_ref / 2`` (J/m^3)."""
    tb = units.time * units.field
    with_k = len(unc.names) == 3 and m_S is not None
    ku = 0.5 * m_S * units.field if with_k else 0.0  # dK_u/dk

    def func(a):
        out = [-a[0] / a[1], -1.0 / (a[1] * tb)]
        return np.array(out + [ku * a[2]] if with_k else out)

    def jac(a):
        rows = [[-1.0 / a[1], a[0] / a[1] ** 2], [0.0, 1.0 / (a[1] ** 2 * tb)]]
        if len(a) == 3:
            rows = [r + [0.0] for r in rows] + ([[0.0, 0.0, ku]] if with_k else [])
        return np.array(rows)

    names = ("alpha_D", "gamma", "K_u") if with_k else ("alpha_D", "gamma")
    return propagate(unc, func, jac, names)


def evaluate(cal: Calibration, a: np.ndarray) -> dict:
    """``r_llg``, ``r_obs``, ``e_a1``, ``e_a2`` of the parameters ``a``."""
    op = cal.op
    r = op(a) - cal.y_delta
    names = op.problem.parameter_names
    errors = parameter_errors(a, cal.a_true)
    e1, e2 = errors[:2]
    J = op.derivative(a).sensitivities()  # identifiability: ||dF/da_i|| at the result
    sens = [math.sqrt(op.inner_range(J[:, i], J[:, i])) for i in range(len(names))]
    unc = uncertainty(cal, a, J)
    out = {**_flat(unc), "uncertainty": unc.to_json()}
    units = cal.op.problem.units
    if units is not None and a[1] < 0:
        out["physical"] = physical_uncertainty(unc, units, cal.m_S).to_json()
    if "k" in names:
        out |= {"k": float(a[2]), "e_k": errors[2]}
    bias = model_bias(cal, J, unc)
    if bias is not None:
        out["model_error"] = bias
    return out | {"a1": float(a[0]), "a2": float(a[1]), "e_a1": e1, "e_a2": e2,
            "r_obs": math.sqrt(op.inner_range(r, r) / op.inner_range(cal.y_delta, cal.y_delta)),
            "r_llg": float(op.relative_residual(a)), "sensitivity_norms": sens}


class ModelErrorWarning(UserWarning):
    """The model error of simulated data shifts an estimate by more than a standard error."""


def model_bias(cal: Calibration, J: np.ndarray, unc: Uncertainty) -> dict | None:
    """How far the model error of synthetic data moves the least-squares estimate.

    With a data model finer than (or other than) the fitting model, ``e = F(a_true) - y`` (the
    fitting model at the truth minus the data model's noise-free signals) is a systematic
    error the 95 % intervals (noise only) do not cover.  To first order it shifts the
    least-squares point by ``b = -J^+ e``; ``bias_over_stderr = |b| / stderr``.  The first
    order is accurate for small model errors (tested at 3e-5 of the signal); at a few % of the
    signal and a badly conditioned J it gives the order of magnitude only.  Known only
    for simulated data (``a_true`` and the noise-free ``y``); None for same-model data (``e =
    0``) or when the fitting model fails at ``a_true``.
    """
    if cal.data_model.get("inverse_crime", True):
        return None
    op = cal.op
    e = op(cal.a_true) - cal.y
    if not np.all(np.isfinite(e)):
        return None
    b = -np.linalg.lstsq(J, e, rcond=None)[0]
    size = math.sqrt(op.inner_range(e, e))
    ratio = np.abs(b) / unc.stderr
    return {"relative": size / math.sqrt(op.inner_range(cal.y, cal.y)),
            "to_noise": size / cal.noise if cal.noise > 0 else math.inf,
            "bias": b.tolist(), "bias_over_stderr": ratio.tolist()}


def _warn_model_bias(summary: dict, comm) -> None:
    """One warning on every rank when the model error shifts an estimate by more than one
    standard error (replicated summary: every rank says the same)."""
    bias = summary.get("model_error")
    if bias is None or not max(bias["bias_over_stderr"], default=0.0) > 1.0:
        return
    del comm  # the message is rank-independent by construction
    names = [r["name"] for r in summary["uncertainty"]["parameters"]]
    parts = ", ".join(f"{n} by {b:.3g} ({k:.1f} std err)" for n, b, k in
                      zip(names, bias["bias"], bias["bias_over_stderr"], strict=True))
    warnings.warn(f"calibrate: the fitting model differs from the data model by "
                  f"{100 * bias['relative']:.2g} % of the signal ({bias['to_noise']:.2g} x the "
                  f"noise); to first order this shifts {parts}: the 95 % intervals account for the "
                  f"noise only (a finer fitting model: [time] n_t, [domain])", ModelErrorWarning,
                  stacklevel=2)


def calibrate(cal: Calibration, checkpoint: Checkpoint | None = None) -> tuple[dict, dict]:
    """Identify and evaluate; returns ``(summary, history)``."""
    comm = cal.op.solver.comm
    comm.Barrier()
    t0 = time.perf_counter()
    res, hist = identify(cal, checkpoint)
    seconds = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
    summary = {"method": cal.cfg.method, "iterations": int(res.iterations),
               "reason": res.reason, "seconds": seconds, **dict(cal.op.counters),
               "delta": cal.cfg.delta, "noise_level": cal.noise, "tau": cal.cfg.tau,
               "a0": list(cal.cfg.a0), "a_true": cal.a_true.tolist(), "mpi_size": comm.size,
               "data_file": None if cal.data_file is None else str(cal.data_file),
               "data_model": cal.data_model}
    summary.update(evaluate(cal, res.x))
    report_uncertainty(summary, comm)
    _warn_model_bias(summary, comm)
    return summary, hist


def _flat(unc: Uncertainty) -> dict:
    data = unc.to_json()
    recs = data["parameters"]
    return {"stderr": [r["stderr"] for r in recs], "ci95_low": [r["ci95_low"] for r in recs],
            "ci95_high": [r["ci95_high"] for r in recs],
            "identified": [r["identified"] for r in recs], "correlation": data["correlation"]}


def report_uncertainty(summary: dict, comm) -> None:
    """Print the estimates with intervals (rank 0) and warn on every rank if one is not
    identified (the summary is replicated, so every rank says the same)."""
    logger = get_logger(comm=comm)
    for key in ("uncertainty", "physical"):
        if key not in summary:
            continue
        unc = uncertainty_from_json(summary[key])
        logger.info("calibrate: %s estimates with 95 %% intervals\n%s",
                    "scaled" if key == "uncertainty" else "physical", unc.table())
        unc.warn(comm)


def uncertainty_from_json(data: dict) -> Uncertainty:
    """Rebuild an :class:`Uncertainty` from :meth:`Uncertainty.to_json` (None -> inf/nan)."""
    recs = data["parameters"]

    def arr(key, missing):
        return np.array([missing if r[key] is None else r[key] for r in recs], dtype=float)

    corr = np.array([[np.nan if c is None else c for c in row] for row in data["correlation"]])
    return Uncertainty(
        names=tuple(r["name"] for r in recs), estimate=arr("estimate", np.nan),
        stderr=arr("stderr", np.inf), ci95_low=arr("ci95_low", -np.inf),
        ci95_high=arr("ci95_high", np.inf), correlation=corr,
        singular_values=np.array(data["singular_values"]),
        identified=np.array([r["identified"] for r in recs]),
        sigma=np.nan if data["sigma"] is None else data["sigma"], dof=data["dof"],
        reasons=list(data["reasons"]), sigma_known=data["sigma_known"],
        quantile=np.nan if data["quantile"] is None else data["quantile"])


def run(cfg: Config) -> dict:
    """Run the ``calibrate`` job; returns the summary.

    The PETSc objects (SNES, matrices, KSP) are freed collectively before returning: a garbage
    collection at a rank-dependent moment would otherwise destroy them on one rank only and
    deadlock the collective destroy under MPI.
    """
    summary = _run(cfg)
    gc.collect()
    MPI.COMM_WORLD.Barrier()
    return summary


def _run(cfg: Config) -> dict:
    if "data" in cfg.sections:  # a measured file: llgfem.jobs.calibrate_data
        if "synthetic" in cfg.sections:
            raise ConfigError("synthetic: [synthetic] describes simulated data; a [data] file "
                              "is fitted as it is (remove one of the two tables)")
        from llgfem.calibration import system_matrix_fit as smfit  # or a calibration scan

        if smfit.is_system_matrix_config(cfg):
            return smfit.run_system_matrix(cfg, cfg.section("calibrate", CalibrateConfig),
                                           report_uncertainty)
        from llgfem.jobs.calibrate_data import run_data

        return run_data(cfg, cfg.section("calibrate", CalibrateConfig), report_uncertainty)
    cal = setup(cfg)
    comm = cal.op.solver.comm
    ckpt = None
    if cal.cfg.checkpoint_every:
        ckpt = Checkpoint(cfg.run_dir / "checkpoint" / "calibrate", every=cal.cfg.checkpoint_every,
                          resume=cal.cfg.resume, rank=comm.rank, size=comm.size, comm=comm,
                          problem=checkpoint_problem(cfg, "calibrate"))
    summary, hist = calibrate(cal, ckpt)
    cal.op.cache.destroy()  # collectively, while the ranks are in step
    summary["job"] = "calibrate"
    out = cfg.run_dir
    if comm.rank == 0:
        write_resolved_config(cfg, out, {"calibrate": cal.cfg})
    write_json(out / "history.json", hist, comm)
    if cfg.output.plots:
        write_plots(cal, summary, hist, out, comm)
    write_json(out / "summary.json", summary, comm)
    get_logger(comm=comm).info(
        "calibrate (%s): a = (%.4f, %.4f), e_a = (%.3g, %.3g), %d its, %.2f s -> %s",
        summary["method"], summary["a1"], summary["a2"], summary["e_a1"], summary["e_a2"],
        summary["iterations"], summary["seconds"], out)
    return summary


def write_plots(cal: Calibration, summary: dict, hist: dict, out, comm) -> None:
    """Signal fit (data vs. model at the identified parameters) and parameter traces."""
    op = cal.op
    a = np.array([summary[name] for name in op.problem.parameter_names])
    fit = op(a).reshape(op.data_shape)  # collective: before the rank-0 branch
    if comm.rank == 0:
        plot_signal_fit(out / "plots" / "signal_fit.png", cal, fit, summary)
    its = np.asarray(hist["iteration"], dtype=float)
    plot_series(out / "plots" / "parameters.png", its,
                {"a1": hist["a1"], "a2": hist["a2"],
                 "a1 true": np.full(its.size, cal.a_true[0]),
                 "a2 true": np.full(its.size, cal.a_true[1])},
                xlabel="iteration", ylabel="parameter", title="parameter traces", comm=comm)
    hlines = {"tau delta": cal.cfg.tau * cal.noise} if cal.cfg.delta > 0 else None
    plot_series(out / "plots" / "residual.png", its, {"||F(a) - y_delta||": hist["residual_norm"]},
                xlabel="iteration", ylabel="residual ||F(a) - y_delta||_Y", logy=True,
                title="residual", hlines=hlines, comm=comm)


def plot_signal_fit(path, cal: Calibration, fit: np.ndarray, summary: dict) -> None:
    """One panel per (k, l): noisy data (markers), fit at the identified a (line) (rank 0)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    op, obs = cal.op, cal.op.observation
    K, L, _ = op.data_shape
    data = cal.y_delta.reshape(op.data_shape)
    t = obs.times[op.samples]
    fig, axes = plt.subplots(K, L, figsize=(4.0 * L, 2.8 * K), squeeze=False, sharex=True)
    for k in range(K):
        for l in range(L):  # noqa: E741
            ax = axes[k, l]
            ax.plot(t, data[k, l], "o", ms=3, label="data y_delta")
            ax.plot(t, fit[k, l], "-", label="F(a) identified")
            ax.set_title(f"{obs.concentration_names[k]} / {obs.coil_names[l]}", fontsize=9)
            ax.grid(alpha=0.3)
            if k == K - 1:
                ax.set_xlabel("time t (s)" if op.problem.units is not None else "time t")
            if l == 0:
                ax.set_ylabel("signal v_kl (eq. 5)")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(f"signal fit: {summary['method']}, delta = {cal.cfg.delta:g}, "
                 f"a = ({summary['a1']:.3f}, {summary['a2']:.3f})", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
