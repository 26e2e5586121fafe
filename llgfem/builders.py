"""Builders: config tables -> library objects (the one place where config meets the model).

The library below this module (forms, solvers, physics, operators) knows nothing of configs and
raises plain ``ValueError`` s (e.g. :class:`llgfem.physics.ParameterError`); the builders read
the tables, range-check them and raise :class:`~llgfem.config.ConfigError` naming the key.  Jobs
(:mod:`llgfem.jobs`) call the builders; the library never imports the jobs.

Tables read here::

    [llg]                         # the scaled equation (llgfem.physics.LLGParameters)
    a1 = 1.0
    a2 = 0.0
    exchange = 1.0
    anisotropy = 0.0
    easy_axis = [0.0, 0.0, 1.0]
    physical = false              # true: [physical] in SI (M_S, gamma, alpha_D, A, K_u,
                                  # easy_axis) and [field] in tesla / T/m / Hz, [time] in s and
                                  # the mesh in m; non-dimensionalised inside (field unit: the
                                  # largest applied field, time unit 1/(gamma B_ref)), see
                                  # docs/physical_units.md
    scheme = "midpoint"           # midpoint: implicit midpoint on the Gilbert form (6), the
                                  # paper's; bartels_prohl: the length-preserving Landau-Lifshitz
                                  # form (2) (survives a field-free point)
    theta = 0.5                   # 0.5 (second order) .. 1.0 (backward Euler, midpoint only)
    initial = "uniform"           # uniform | nonuniform | random | field | paper1|2|3
    initial_direction = [1.0, 0.0, 0.0]
    seed = 0

    [observation], [[coil]], [[concentration]]   # eq. (5): see ObservationConfig & co. below

``initial = "paperN"`` builds Test N of paper 002, Table 1 (its own field, coefficients and
Neumann data); values of ``[llg]``/``[field]`` that conflict with it are refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from mpi4py import MPI

from llgfem.config import MAX_TIME_LEVELS, Config, ConfigError
from llgfem.operators.observation import (
    NOISE_MODELS,
    Coil,
    Concentration,
    Observation,
    tag_indicator,
)
from llgfem.physics import (
    MU0,
    FieldSpec,
    LLGParameters,
    PhysicalParameters,
    reference_field,
)
from llgfem.problem import SCHEMES, LLGProblem, reference_parameters
from llgfem.solvers.llg import LLGSolver
from llgfem.spacetime import TimeGrid, create_vector_space, interpolate_levels

__all__ = ["CoilConfig", "ConcentrationConfig", "DataConfig", "IdentificationConfig", "LLGConfig",
           "ObservationConfig", "aligned_with_field", "build_llg_problem", "build_observation",
           "checkpoint_problem", "initial_state", "section"]

INITIALS = ("uniform", "nonuniform", "random", "field", "paper1", "paper2", "paper3")


def section(cfg: Config, name: str, cls: type):
    """``cfg.section(name, cls)`` with library ``ValueError`` s turned into ConfigErrors."""
    try:
        return cfg.section(name, cls)
    except ConfigError:
        raise
    except ValueError as e:
        raise ConfigError(str(e)) from None


@dataclass(frozen=True)
class LLGConfig:
    """The ``[llg]`` table (see module docstring)."""

    a1: float = 1.0
    a2: float = 0.0
    exchange: float = 1.0
    anisotropy: float = 0.0
    easy_axis: tuple[float, float, float] = (0.0, 0.0, 1.0)
    physical: bool = False
    scheme: str = "midpoint"
    theta: float = 0.5
    initial: str = "uniform"
    initial_direction: tuple[float, float, float] = (1.0, 0.0, 0.0)
    seed: int = 0

    def validate(self, where: str) -> None:
        if self.initial not in INITIALS:
            raise ConfigError(f"{where}.initial: {self.initial!r} is not one of {INITIALS}")
        if self.scheme not in SCHEMES:
            raise ConfigError(f"{where}.scheme: {self.scheme!r} is not one of "
                              f"{tuple(SCHEMES)} (the adaptive scheme: bench/llg_schemes.py)")
        if not 0.5 <= self.theta <= 1.0:
            raise ConfigError(f"{where}.theta: must lie in [0.5, 1], got {self.theta}")
        if np.linalg.norm(self.initial_direction) == 0:
            raise ConfigError(f"{where}.initial_direction: must be non-zero")
        if self.physical and (self.anisotropy or self.a1 != 1.0 or self.a2 != 0.0
                              or self.exchange != 1.0):
            raise ConfigError(f"{where}.physical: with physical = true the coefficients come "
                              "from [physical] (alpha_D, A, K_u, easy_axis); remove "
                              f"{where}.a1/a2/exchange/anisotropy")
        try:
            self.parameters().validate(where)
        except ValueError as e:
            raise ConfigError(str(e)) from None

    def parameters(self) -> LLGParameters:
        """The scaled coefficients given directly in the table."""
        return LLGParameters(self.a1, self.a2, self.exchange, self.anisotropy, self.easy_axis)


def initial_state(job: LLGConfig, dim: int, lower=None, upper=None):
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


def _bounding_box(V) -> tuple[np.ndarray, np.ndarray]:
    comm, xg = V.mesh.comm, V.mesh.geometry.x
    lower, upper = np.empty(3), np.empty(3)
    comm.Allreduce(xg.min(axis=0, initial=np.inf), lower, op=MPI.MIN)
    comm.Allreduce(xg.max(axis=0, initial=-np.inf), upper, op=MPI.MAX)
    return lower, upper


def _paper_problem(cfg: Config, job: LLGConfig, mesh, grid: TimeGrid,
                   parameters: tuple[str, ...] = ("a1", "a2")) -> LLGProblem:
    if "field" in cfg.sections or "physical" in cfg.sections or job.physical:
        raise ConfigError(f"llg.initial: {job.initial!r} is paper 002's Test "
                          f"{job.initial[-1]} with its own field and coefficients; remove the "
                          "[field]/[physical] tables (or llg.physical)")
    given = cfg.sections.get("llg", {})
    for key in ("a1", "a2", "exchange", "anisotropy"):
        if key in given:
            raise ConfigError(f"llg.{key}: {job.initial!r} fixes the coefficients of Test "
                              f"{job.initial[-1]}; remove llg.{key}")
    if job.scheme != "midpoint":
        raise ConfigError(f"llg.scheme: {job.initial!r} has Neumann data/sources: only the "
                          "midpoint scheme on the Gilbert form takes them")
    return LLGProblem.paper_case(int(job.initial[-1]), mesh, T=grid.T, n_t=grid.n_t,
                                 theta=job.theta, parameters=parameters)


def build_llg_problem(cfg: Config, mesh, observation: Observation | None = None, *,
                      parameters: tuple[str, ...] = ("a1", "a2"),
                      field: FieldSpec | None = None,
                      field_reference: float | None = None) -> LLGProblem:
    """The :class:`LLGProblem` of ``[llg]``, ``[field]``, ``[physical]`` and ``[time]``.

    ``parameters``: the identifiable parameters of the solver (``("a1", "a2", "k")`` adds the
    anisotropy coefficient, :class:`~llgfem.solvers.llg.LLGSolver`).  ``field`` replaces
    ``[field]`` (e.g. a scanner drive read from an MDF file, SI for physical runs) and
    ``field_reference`` the field unit (T) of the physical scaling.

    Physical runs (``llg.physical``) carry their :class:`~llgfem.physics.Units` in
    ``problem.units``: the solver's grid, field and coefficients are dimensionless, the config's
    values are SI.
    """
    job = section(cfg, "llg", LLGConfig)
    if "physical" in cfg.sections and not job.physical:
        raise ConfigError("physical: a [physical] table is given but llg.physical = false, so it "
                          "would be ignored; set llg.physical = true or remove [physical]")
    grid = TimeGrid(cfg.time.T, cfg.time.n_t)
    if job.initial.startswith("paper"):
        problem = _paper_problem(cfg, job, mesh, grid, parameters)
        problem.observation = observation
        return problem
    spec = section(cfg, "field", FieldSpec) if field is None else field
    V = create_vector_space(mesh)
    lower, upper = _bounding_box(V)
    units = None
    params = job.parameters()
    if job.physical:
        phys = section(cfg, "physical", PhysicalParameters)
        extent = float(np.linalg.norm(np.maximum(np.abs(lower), np.abs(upper))))
        fallback = 2 * abs(phys.K_u) / phys.m_S or 1.0
        try:
            ref = (reference_field(spec, extent, fallback) if field_reference is None
                   else field_reference)
            units = phys.units(ref, L_ref=1.0)
            spec, params = units.field_spec(spec), phys.llg(units)
        except ValueError as e:
            raise ConfigError(f"field: the reference field of the physical scaling is unusable "
                              f"({e}); check field.amplitude, field.offset, field.gradient "
                              f"and physical.K_u") from None
        grid = TimeGrid(units.to_dimensionless_time(grid.T), grid.n_t)
    _check_drive_resolved(spec, grid)
    solver = LLGSolver(V, grid, params, spec, theta=job.theta, form=SCHEMES[job.scheme],
                       parameters=parameters)
    if job.initial == "field":
        m0 = aligned_with_field(solver, job)
    else:
        m0_fn = initial_state(job, mesh.geometry.dim, lower, upper)
        m0 = interpolate_levels(V, lambda x, t: m0_fn(x), [0.0])[0]
    return LLGProblem(solver, m0, observation, reference_parameters(params, parameters),
                      units=units)


def _check_drive_resolved(spec: FieldSpec, grid: TimeGrid, per_period: int = 20) -> None:
    """Refuse a drive period resolved by fewer than ``per_period`` time steps."""
    if spec.kind not in ("sinusoidal", "rotating", "ffp") or spec.frequency <= 0:
        return
    periods = grid.T * spec.frequency
    if not math.isfinite(periods) or per_period * periods > MAX_TIME_LEVELS:
        raise ConfigError(f"field.frequency: {spec.frequency:g} over T = {grid.T:g} is "
                          f"{periods:.3g} drive periods, which needs more than "
                          f"{MAX_TIME_LEVELS:g} time levels at {per_period} steps per period")
    needed = int(math.ceil(per_period * periods)) + 1
    if grid.n_t < needed:
        raise ConfigError(f"time.n_t: the drive ({periods:.4g} periods in T) needs at least "
                          f"{per_period} steps per period: n_t >= {needed}, got {grid.n_t}")


def aligned_with_field(solver: LLGSolver, job: LLGConfig) -> np.ndarray:
    """``m0 = h(x, 0)/|h(x, 0)|`` (``initial_direction`` where ``|h| < 1e-8 max|h|``)."""
    import dolfinx.fem as fem

    solver.t.value = 0.0
    expr = fem.Expression(solver.coefficients.h, solver.V.element.interpolation_points)
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


# -- identification: the vocabulary shared by [calibrate] and [aao] ---------------------------
@dataclass(frozen=True)
class IdentificationConfig:
    """Keys every identification job shares (``calibrate``, ``all_at_once``).

    ``a0`` initial (a1, a2); ``state_guess`` the initial state trajectory (``table1`` paper 002
    Table 1's guess, ``perturbed`` m0 - 0.1 sin(20 t) of §4.3, ``m0``); ``delta`` relative noise
    level, ``noise`` its model (``uniform``: y + delta |y| U(-1, 1), the paper's; ``norm``:
    ||y_delta - y|| = delta ||y||), ``seed``; ``tau`` the discrepancy factor; ``max_iter``;
    ``segments`` (Kaczmarz over time windows); ``checkpoint_every``/``resume``.  Errors
    ``e_a1, e_a2`` are relative (absolute where the true value is 0) in every job.
    """

    a0: tuple[float, ...] = (1.5, 0.5)
    state_guess: str = "perturbed"
    delta: float = 0.0
    noise: str = "norm"
    seed: int = 0
    tau: float = 2.5
    max_iter: int = 500
    segments: int = 5
    checkpoint_every: int = 0
    resume: bool = False

    RENAMED = {"a_init": "a0", "max_iterations": "max_iter", "m_init": "state_guess",
               "paper_noise": "noise"}
    STATE_GUESSES = ("table1", "perturbed", "m0")

    def parameter_names(self) -> tuple[str, ...]:
        """The names of the entries of ``a0`` (subclasses may identify more)."""
        return ("a1", "a2")

    def validate(self, where: str) -> None:
        p = len(self.parameter_names())
        checks = [
            (len(self.a0) == p and all(math.isfinite(v) and abs(v) <= 1e15 for v in self.a0),
             "a0", f"needs {p} finite values {list(self.parameter_names())} of size <= 1e15"),
            (len(self.a0) != p or self.a0[0] >= 0, "a0",
             "a0[0] is the damping coefficient a1 and must be >= 0"),
            (self.state_guess in self.STATE_GUESSES, "state_guess",
             f"{self.state_guess!r} is not one of {self.STATE_GUESSES}"),
            (math.isfinite(self.delta) and 0 <= self.delta < 1, "delta",
             "a relative noise level in [0, 1)"),
            (self.noise in NOISE_MODELS, "noise", " | ".join(NOISE_MODELS)),
            (self.tau > 1, "tau", "must be > 1 (the paper takes tau > 2)"),
            (self.max_iter >= 1, "max_iter", "must be >= 1"),
            (self.segments >= 1, "segments", "must be >= 1"),
            (self.checkpoint_every >= 0, "checkpoint_every", "must be >= 0 (0: none)"),
            (not (self.resume and not self.checkpoint_every), "resume",
             "needs checkpoint_every > 0"),
        ]
        for ok, key, msg in checks:
            if not ok:
                raise ConfigError(f"{where}.{key}: {msg}")


# -- measured data: [data] (calibrate) ---------------------------------------------------------
DATA_FORMATS = ("auto", "mdf", "signals")
DATA_GAINS = ("complex", "real", "none")
DATA_SOURCES = ("file", "config")
BACKGROUNDS = ("subtract", "drop", "keep")


@dataclass(frozen=True)
class DataConfig:
    """``[data]``: a measurement to calibrate against (see ``docs/calibration.md``).

    ``path`` (relative to the config file) is an MDF v2 measurement, an MDF v2 system matrix
    (a ``calibration`` group: fitted position by position,
    :mod:`llgfem.calibration.system_matrix_fit`) or the package's own HDF5 signals file
    (``format``: auto-detected from the file's ``/version`` entry).  ``field``/``time``:
    ``"file"`` takes the drive (any sine drive of 1-3 channels: base frequency, dividers,
    strengths, phases, full gradient, offset; :func:`llgfem.calibration.data.scanner_from_mdf`)
    and the window ``T`` (periods x cycle) from the MDF, ``"config"`` keeps
    ``[field]``/``[time] T``.  Correction flags of the file are honoured
    (``docs/calibration.md``, "MDF files from real scanners").
    Frequency selection (MDF): bins with ``f_min <= f <= f_max`` (``f_max = 0``: Nyquist; the
    0 Hz bin is never used), SNR ``>= snr_min`` (needs >= 2 frames), and, with
    ``stop_drive``, not within ``band_stop`` Hz of a drive frequency.  ``frames`` (stored
    indices, empty = all), ``background`` (subtract | drop | keep), ``transfer_function``
    (divide by the file's receive transfer function).  ``gain``: nuisance parameters per
    receive channel (``complex`` for MDF when no transfer function is known, ``real``, or
    ``none``).  ``weights``: ``channel`` weights each receive channel by the inverse of its
    residual RMS (estimated after a first fit, then refitted: channels of different noise
    levels), ``none`` pools all channels.
    """

    path: str
    format: str = "auto"
    field: str = "file"
    time: str = "file"
    frames: tuple[int, ...] = ()
    background: str = "subtract"
    f_min: float = 0.0
    f_max: float = 0.0
    snr_min: float = 0.0
    stop_drive: bool = True
    band_stop: float = 0.0
    transfer_function: bool = False
    gain: str = "complex"
    weights: str = "channel"

    def validate(self, where: str) -> None:
        checks = [
            (bool(self.path), "path", "the data file is required"),
            (self.weights in ("channel", "none"), "weights", "channel | none"),
            (self.format in DATA_FORMATS, "format", " | ".join(DATA_FORMATS)),
            (self.field in DATA_SOURCES, "field", " | ".join(DATA_SOURCES)),
            (self.time in DATA_SOURCES, "time", " | ".join(DATA_SOURCES)),
            (all(f >= 0 for f in self.frames), "frames", "stored frame indices are >= 0"),
            (self.background in BACKGROUNDS, "background", " | ".join(BACKGROUNDS)),
            (math.isfinite(self.f_min) and self.f_min >= 0, "f_min", "must be >= 0 (Hz)"),
            (math.isfinite(self.f_max) and (self.f_max == 0 or self.f_max > self.f_min),
             "f_max", "must be 0 (Nyquist) or > f_min (Hz)"),
            (math.isfinite(self.snr_min) and self.snr_min >= 0, "snr_min", "must be >= 0"),
            (math.isfinite(self.band_stop) and self.band_stop >= 0, "band_stop",
             "must be >= 0 (Hz)"),
            (self.gain in DATA_GAINS, "gain", " | ".join(DATA_GAINS)),
        ]
        for ok, key, msg in checks:
            if not ok:
                raise ConfigError(f"{where}.{key}: {msg}")


def checkpoint_problem(cfg: Config, table: str) -> dict:
    """The config without what may change between a run and its resumption (iteration cap,
    resume flag, checkpoint interval, output, job name): its hash marks a checkpoint set, so a
    set written for another problem is refused."""
    from llgfem.config import config_to_dict

    data = config_to_dict(cfg)
    data.pop("output", None)
    data.get("job", {}).pop("name", None)
    job = dict(data.get(table, {}))
    for key in ("resume", "max_iter", "checkpoint_every"):
        job.pop(key, None)
    data[table] = job
    return data


# -- observation: [observation], [[coil]], [[concentration]] ------------------------------------
@dataclass(frozen=True)
class ObservationConfig:
    mu0: float = MU0
    delta: float = 0.0
    seed: int = 0

    def validate(self, where: str) -> None:
        if not (math.isfinite(self.delta) and 0 <= self.delta < 1):
            raise ConfigError(f"{where}.delta: a relative noise level in [0, 1), got {self.delta}")
        if self.mu0 <= 0:
            raise ConfigError(f"{where}.mu0: must be > 0, got {self.mu0}")


@dataclass(frozen=True)
class CoilConfig:
    name: str = ""
    sensitivity: tuple[float, float, float] = (1.0, 0.0, 0.0)
    transfer: str = "delta"
    transfer_value: float = 1.0

    def validate(self, where: str) -> None:
        if self.transfer not in ("delta", "constant"):
            raise ConfigError(f"{where}.transfer: {self.transfer!r} is not delta or constant")
        if not any(self.sensitivity):
            raise ConfigError(f"{where}.sensitivity: must be non-zero (a coil that sees nothing)")
        if not all(math.isfinite(v) and abs(v) <= 1e12 for v in self.sensitivity):
            raise ConfigError(f"{where}.sensitivity: entries must be finite and <= 1e12 in size")
        if self.transfer == "constant" and self.transfer_value == 0:
            raise ConfigError(f"{where}.transfer_value: must be non-zero")


@dataclass(frozen=True)
class ConcentrationConfig:
    name: str = ""
    value: float = 1.0
    tags: tuple[int, ...] = ()
    center: tuple[float, ...] = ()
    width: float = 0.0

    def validate(self, where: str) -> None:
        if self.center and not 0 < self.width <= 1e6:
            raise ConfigError(f"{where}.width: a Gaussian concentration needs 0 < width <= 1e6")
        if self.center and self.tags:
            raise ConfigError(f"{where}.center: give either tags or a Gaussian centre")
        if len(self.center) > 3:
            raise ConfigError(f"{where}.center: at most 3 coordinates, got {len(self.center)}")
        if self.value <= 0:
            raise ConfigError(f"{where}.value: a concentration must be > 0, got {self.value}")
        if not (math.isfinite(self.value) and self.value <= 1e12):
            raise ConfigError(f"{where}.value: must be finite and <= 1e12, got {self.value}")

    def expression(self):
        """``value exp(-|x - center|^2 / width^2)`` as a callable of the UFL coordinate."""
        import ufl

        def gaussian(x):
            r2 = sum((x[i] - c) ** 2 for i, c in enumerate(self.center[: len(x)]))
            return self.value * ufl.exp(-r2 / self.width**2)
        return gaussian


def build_observation(cfg: Config, domain, V, grid):
    """``(Observation, ObservationConfig)`` of the config, or None without ``[[coil]]`` tables."""
    coils = cfg.sections_list("coil", CoilConfig)
    obs_cfg = cfg.section("observation", ObservationConfig)
    concs = cfg.sections_list("concentration", ConcentrationConfig) or [ConcentrationConfig()]
    if not coils:
        for name in ("observation", "concentration"):
            if name in cfg.sections:
                raise ConfigError(f"{name}: [{name}] has no effect without [[coil]] tables")
        return None
    present = _mesh_tags(domain)
    conc_objs = []
    for i, c in enumerate(concs):
        if c.tags and domain.cell_tags is None:
            raise ConfigError(f"concentration[{i}].tags: the mesh has no cell tags")
        missing = sorted(set(c.tags) - present)
        if missing:
            raise ConfigError(f"concentration[{i}].tags: {missing} not in the mesh "
                              f"(cell tags present: {sorted(present)})")
        if c.tags:
            value = tag_indicator(domain.mesh, domain.cell_tags, c.tags,
                                  f"concentration[{i}].tags", c.value)
        else:
            value = c.expression() if c.center else c.value
        conc_objs.append(Concentration(value, name=c.name or f"c{i}"))
    coil_objs = [Coil(tuple(c.sensitivity),
                      "delta" if c.transfer == "delta" else ("constant", c.transfer_value),
                      name=c.name or f"coil{i}") for i, c in enumerate(coils)]
    return Observation(V, grid, conc_objs, coil_objs, mu0=obs_cfg.mu0), obs_cfg


def _mesh_tags(domain) -> set[int]:
    """The cell tag values present on any rank (collective)."""
    local = set() if domain.cell_tags is None else set(np.unique(domain.cell_tags.values))
    return {int(v) for part in domain.mesh.comm.allgather(local) for v in part}
