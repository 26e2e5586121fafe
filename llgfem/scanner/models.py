r"""Particle models of the system matrix: the mean unit moment m̄(x, t) and its rate.

A model maps the scanner field at calibration positions to the periodic steady-state response
over one drive cycle: ``model.moments(scanner, positions)`` returns m̄ and ∂_t m̄ [1/s],
both of shape (P, V, 3) at the sample times t_n of :class:`~llgfem.scanner.fields.ScannerFields`.
How a calibration position maps onto each model: the particles in the voxel at x see the
homogeneous field B(x, t) = G x + B_drive(t) + B_off (no field gradient across a particle),
so every position is an independent single-domain ensemble driven by its own field history.

* ``langevin`` — equilibrium (instantaneous) response, the standard MPI baseline:

      m̄ = L(|ξ|) ξ/|ξ|,   ξ = m_p B/(k_B T),   L(x) = coth x − 1/x,
      ∂_t m̄ = L'(|ξ|) (ξ̂·ξ̇) ξ̂ + (L(|ξ|)/|ξ|) (ξ̇ − (ξ̂·ξ̇) ξ̂)      (chain rule, exact),

  with series for small |ξ| (L'(0) = L(x)/x|₀ = 1/3); vectorised over positions and times.
* ``brown_neel`` — the coupled Brown–Néel Fokker–Planck model of :mod:`llgfem.brownneel`
  (spherical-harmonic FOM, dynamic symmetrisation, PETSc TS on COMM_SELF) per position:
  started from the Boltzmann state at B(x, 0), integrated over ``warmup_cycles`` cycles, and
  observed over the next cycle (exact ⟨m⟩ and d⟨m⟩/dt).  If the field at x stays on one
  line (B(x, t) = b(t) e: 1-D drive along e, static part ∥ e) the model is solved in the
  z-sector with B_z = b(t) and rotated back (the model is isotropic: free easy axes); any
  other field history (Lissajous) uses the full product basis ((N_m+1)²(N_n+1)² unknowns).

Models are registered in :data:`MODELS` as ``name -> factory(tracer, options, where)``;
``options`` is the raw ``[model]`` table, parsed by the factory (ConfigError naming
``model.<key>``).  Attribute ``per_position`` tells the driver whether cost scales with the
number of positions handled one at a time (all models here: yes, Langevin vectorised).

Notation: ``m_bar`` mean unit moment, ``xi`` Langevin argument vector, ``P`` positions,
``V`` samples per cycle.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from llgfem.config import ConfigError, parse_section
from llgfem.scanner.fields import ScannerFields
from llgfem.scanner.tracer import TracerConfig

__all__ = ["MODELS", "BrownNeelOptions", "BrownNeelResponse", "LangevinResponse",
           "ParticleModel", "build_model", "langevin_derivative", "langevin_function",
           "langevin_response"]

SMALL = 1e-2
CHUNK_VALUES = 1_000_000  # Langevin: field samples per vectorised block
LEAK_WINDOW = 30.0  # full basis: restart after the leak mode decayed by e^-30


class ParticleModel(Protocol):
    """What the system-matrix driver needs from a particle model."""

    name: str
    per_position: bool

    def moments(self, scanner: ScannerFields,
                positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(m̄, ∂_t m̄) of shape (P, V, 3) over one steady-state cycle."""

    def options(self) -> dict:
        """Resolved model options (for the resolved config)."""


def langevin_function(x: np.ndarray) -> np.ndarray:
    """L(x) = coth x − 1/x (x >= 0 expected; series below 1e-2)."""
    x = np.asarray(x, float)
    xs = np.where(x < SMALL, 1.0, x)
    return np.where(x < SMALL, x / 3 - x**3 / 45 + 2 * x**5 / 945, 1 / np.tanh(xs) - 1 / xs)


def langevin_derivative(x: np.ndarray) -> np.ndarray:
    """L'(x) = 1/x² − 1/sinh² x (series below 1e-2)."""
    x = np.asarray(x, float)
    xs = np.where(x < SMALL, 1.0, np.minimum(x, 350.0))
    big = 1 / xs**2 - 1 / np.sinh(xs) ** 2
    return np.where(x < SMALL, 1 / 3 - x**2 / 15 + 2 * x**4 / 189, big)


def _l_over_x(x: np.ndarray) -> np.ndarray:
    xs = np.where(x < SMALL, 1.0, x)
    return np.where(x < SMALL, 1 / 3 - x**2 / 45 + 2 * x**4 / 945, langevin_function(xs) / xs)


def langevin_response(xi: np.ndarray, dxi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """m̄ = L(|ξ|) ξ̂ and its rate for ξ, ξ̇ of shape (..., 3)."""
    r = np.linalg.norm(xi, axis=-1)
    lx = _l_over_x(r)
    m = lx[..., None] * xi
    safe = np.where(r > 0, r, 1.0)
    unit = xi / safe[..., None]
    along = np.sum(unit * dxi, axis=-1)
    lp = langevin_derivative(r)
    dm = (lp * along)[..., None] * unit + lx[..., None] * (dxi - along[..., None] * unit)
    return m, dm


@dataclass(frozen=True)
class LangevinOptions:
    """``[model]`` options of ``langevin`` (none besides the name)."""

    kind: str = "langevin"


class LangevinResponse:
    """Equilibrium Langevin model (vectorised over positions and times)."""

    name = "langevin"
    per_position = True

    def __init__(self, tracer: TracerConfig, opts: LangevinOptions = LangevinOptions()):
        self.tracer, self.opts = tracer, opts
        self.stats: dict[str, Any] = {}

    def options(self) -> dict:
        return {"kind": self.name}

    def moments(self, scanner: ScannerFields,
                positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c = self.tracer.xi_per_tesla
        dxi = c * scanner.rate(scanner.times)
        positions = np.asarray(positions, float).reshape(-1, 3)
        m = np.empty((len(positions), scanner.num_samples, 3))
        dm = np.empty_like(m)
        step = max(1, CHUNK_VALUES // scanner.num_samples)  # bounded memory (3-D cycles)
        for a in range(0, len(positions), step):
            xi = c * scanner.field(positions[a: a + step], scanner.times)
            m[a: a + step], dm[a: a + step] = langevin_response(
                xi, np.broadcast_to(dxi, xi.shape))
        return m, dm


@dataclass(frozen=True)
class BrownNeelOptions:
    """``[model]`` options of ``brown_neel``.

    Attributes:
        kind: ``brown_neel``.
        n_m, n_n: truncation (N_m, N_n) of the spherical-harmonic expansion.
        formulation: ``dynamic`` (stable, default) or ``static``.
        precession: include precession.
        warmup_cycles: whole cycles integrated before the recorded one (>= 0).
        rtol: TS relative tolerance (atol = 1e-5 rtol).
        basis: ``auto`` (z-sector when the field stays on one line, else full) or ``full``.
        max_steps: TS step limit per position.
        engine: fields off one line, ``auto``: the even-L Lissajous model
            (``llgfem.brownneel.lissajous``; half the unknowns of the full product basis, the
            field-frame preconditioner; dynamic formulation only), ``full``: the full product
            basis (``BrownNeelModel``).
    """

    kind: str = "brown_neel"
    n_m: int = 6
    n_n: int = 4
    formulation: str = "dynamic"
    precession: bool = True
    warmup_cycles: int = 1
    rtol: float = 1e-6
    basis: str = "auto"
    max_steps: int = 200_000
    engine: str = "auto"

    def validate(self, where: str) -> None:
        if self.n_m < 1 or self.n_n < 0:
            raise ConfigError(f"{where}.n_m: need n_m >= 1 and n_n >= 0")
        if self.engine not in ("auto", "full"):
            raise ConfigError(f"{where}.engine: 'auto' or 'full'")
        if self.formulation not in ("dynamic", "static"):
            raise ConfigError(f"{where}.formulation: 'dynamic' or 'static'")
        if self.warmup_cycles < 0:
            raise ConfigError(f"{where}.warmup_cycles: must be >= 0")
        if not 0 < self.rtol < 1:
            raise ConfigError(f"{where}.rtol: must lie in (0, 1)")
        if self.basis not in ("auto", "full"):
            raise ConfigError(f"{where}.basis: 'auto' or 'full'")
        if self.max_steps < 1:
            raise ConfigError(f"{where}.max_steps: must be >= 1")


def _line_direction(scanner: ScannerFields, x: np.ndarray) -> np.ndarray | None:
    """Unit e with B(x, t) ∥ e for all t (static part and every drive vector), else None."""
    vecs = [v for v in (*scanner.amplitudes, scanner.static(x)) if np.linalg.norm(v) > 0]
    e = vecs[0] / np.linalg.norm(vecs[0])
    for v in vecs[1:]:
        if np.linalg.norm(np.cross(e, v)) > 1e-12 * np.linalg.norm(v):
            return None
    return e


class BrownNeelResponse:
    """Coupled Brown–Néel FOM per position (serial objects on COMM_SELF)."""

    name = "brown_neel"
    per_position = True

    def __init__(self, tracer: TracerConfig, opts: BrownNeelOptions = BrownNeelOptions()):
        self.tracer, self.opts = tracer, opts
        self.params = tracer.particle_parameters()
        self._models: dict[str, Any] = {}
        self.stats: dict[str, Any] = {"positions": 0, "steps": 0, "sector": 0, "full": 0,
                                      "lissajous": 0, "seconds": 0.0}
        self._b_max = 0.0  # field bound of the Lissajous model (set by moments)

    def options(self) -> dict:
        from dataclasses import asdict

        return asdict(self.opts)

    def _model(self, kind: str, b_ref: float):
        from llgfem.brownneel.model import BrownNeelModel

        if kind not in self._models:
            o = self.opts
            self._models[kind] = BrownNeelModel(self.params, o.n_m, o.n_n, o.formulation,
                                                o.precession, kind=kind, b_ref=b_ref)
        return self._models[kind]

    def _settings(self):
        from llgfem.brownneel.integrate import TSSettings

        return TSSettings(rtol=self.opts.rtol, atol=1e-5 * self.opts.rtol,
                          max_steps=self.opts.max_steps)

    def _chunks(self, model, span: float) -> int:
        """Number of windows so that the leak mode decays by at most e^-30 in each."""
        if not model.full:
            return 1  # the z-sector model carries the leak shift
        if "leak" not in self._models:
            self._models["leak"] = max(model.leak_rate(0.0), 0.0)
        return max(1, int(np.ceil(self._models["leak"] * span / self.params.tau_n / LEAK_WINDOW)))

    def _simulate(self, model, field, t: np.ndarray):
        """⟨m⟩, d⟨m⟩/dt at the times t (t[0] = 0); in the full basis in windows, each
        restarted from the mass-normalised end state of the previous one (the outputs are
        ratios, homogeneous of degree 0 in the state, so this only prevents underflow)."""
        n = self._chunks(model, float(t[-1]))
        edges = np.linspace(0.0, float(t[-1]), n + 1)
        m, dm = np.empty((t.size, 3)), np.empty((t.size, 3))
        y, steps = model.initial_state(field), 0
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            inside = np.flatnonzero((t >= a) & (t <= b))
            tt = np.unique(np.concatenate([[a], t[inside], [b]]))
            run = model.simulate(field, tt, self._settings(), y0=y)
            pos = np.searchsorted(tt, t[inside])
            m[inside], dm[inside] = run.m[pos], run.dm[pos]
            y, steps = run.y[:, -1] / run.mass[-1], steps + run.steps
        return m, dm, steps

    def _lissajous(self, b_max: float):
        """The even-L Lissajous model for fields up to b_max (rebuilt only for a larger one)."""
        from llgfem.brownneel.lissajous import LissajousModel

        model = self._models.get("lissajous")
        if model is None or model.b_max < b_max:
            o = self.opts
            model = LissajousModel(self.params, o.n_m, o.n_n, b_max=b_max,
                                   precession=o.precession)
            self._models["lissajous"] = model
        return model

    def respond(self, scanner: ScannerFields, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(m̄, ∂_t m̄), shape (V, 3), of the position x (3,)."""
        from llgfem.brownneel.params import CallableField

        t0 = time.perf_counter()
        x = np.asarray(x, float)[None, :]
        b_max = float(scanner.max_field(x)[0])
        e = _line_direction(scanner, x[0]) if self.opts.basis == "auto" else None
        start = self.opts.warmup_cycles * scanner.cycle
        t = np.concatenate([[0.0], start + scanner.times]) if start > 0 else scanner.times
        if e is None and self.opts.engine == "auto" and self.opts.formulation == "dynamic":
            from llgfem.scanner.brown_neel_rom import ScannerDrive

            kind = "lissajous"
            run = self._lissajous(max(b_max, self._b_max)).simulate(
                ScannerDrive(scanner, scanner.static(x[0])), t, self._settings(),
                keep_states=False)
            m, dm, steps = run.m, run.dm, run.steps
        elif e is None:
            kind = "full"
            field = CallableField(lambda t: scanner.field(x, np.array([t]))[0, 0],
                                  lambda t: scanner.rate(t), b_max)
            m, dm, steps = self._simulate(self._model(kind, b_max), field, t)
        else:
            kind = "sector"
            field = CallableField(lambda t: np.array([0, 0, scanner.field(x, np.array([t]))
                                                      [0, 0] @ e]),
                                  lambda t: np.array([0, 0, scanner.rate(t) @ e]), b_max, True)
            m, dm, steps = self._simulate(self._model(kind, b_max), field, t)
        m, dm = m[-scanner.num_samples:], dm[-scanner.num_samples:]
        if e is not None:
            m, dm = m[:, 2:3] * e, dm[:, 2:3] * e
        self.stats["positions"] += 1
        self.stats["steps"] += steps
        self.stats[kind] += 1
        self.stats["seconds"] += time.perf_counter() - t0
        return m, dm

    def moments(self, scanner: ScannerFields,
                positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        positions = np.asarray(positions, float).reshape(-1, 3)
        if len(positions):  # one Lissajous model for every position of the call
            self._b_max = max(self._b_max, float(scanner.max_field(positions).max()))
        out = [self.respond(scanner, x) for x in positions]
        shape = (0, scanner.num_samples, 3)
        if not out:
            return np.zeros(shape), np.zeros(shape)
        return np.stack([o[0] for o in out]), np.stack([o[1] for o in out])


def _langevin(tracer: TracerConfig, options: dict, where: str) -> LangevinResponse:
    return LangevinResponse(tracer, parse_section(LangevinOptions, options, where))


def _brown_neel(tracer: TracerConfig, options: dict, where: str) -> BrownNeelResponse:
    return BrownNeelResponse(tracer, parse_section(BrownNeelOptions, options, where))


def _llg(tracer: TracerConfig, options: dict, where: str) -> ParticleModel:
    from llgfem.scanner.llg_model import LLGOptions, LLGResponse  # DOLFINx: lazy

    return LLGResponse(tracer, parse_section(LLGOptions, options, where))


Factory = Callable[[TracerConfig, dict, str], ParticleModel]

MODELS: dict[str, Factory] = {
    "langevin": _langevin,
    "brown_neel": _brown_neel,
    "llg": _llg,
    "brown_neel_rom": lambda *a: __import__(  # offset-parametric POD ROM, lazy import
        "llgfem.scanner.brown_neel_rom", fromlist=["_"]).brown_neel_rom(*a),
}


def build_model(tracer: TracerConfig, options: dict, where: str = "model") -> ParticleModel:
    """The model named by ``options["kind"]`` (default ``langevin``) from :data:`MODELS`.

    Raises:
        ConfigError: for an unknown model or invalid options.
    """
    kind = options.get("kind", "langevin")
    if kind not in MODELS:
        raise ConfigError(f"{where}.kind: {kind!r} is not one of {sorted(MODELS)}")
    return MODELS[kind](tracer, {"kind": kind, **options}, where)
