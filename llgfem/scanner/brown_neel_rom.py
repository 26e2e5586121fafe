r"""``brown_neel_rom`` particle model: the offset-parametric Brown–Néel POD ROM per position.

The coupled Brown–Néel model of :mod:`llgfem.brownneel.lissajous` (dynamic symmetrisation,
even-L product basis, any drive direction) is reduced once with a POD basis U that serves every
calibration position: the position enters only as the static field b = G x + B_off, so the terms
Â_k = UᵀA_kU are projected once and a position costs one r-dimensional run
(:mod:`llgfem.brownneel.lissajous_rom`):

    a' = Σ_k c_k(t; b) Â_k a,   m̄ = ⟨m⟩(t),  ∂_t m̄ = d⟨m⟩/dt  (exact, through Ψ = G_quad U).

Basis: read from ``basis`` (an ``.npz`` with ``modes``, shape (n, r), e.g. written by
``bench/brown_neel_rom2d.py``), or trained on every rank identically (no collective) by the
greedy residual-indicator selection over a ``training_grid`` that spans the drive field of view
(borders included), FOM runs over the same time window.

``frame = true``: the field-frame ROM (:mod:`llgfem.brownneel.frame_rom`; the basis co-rotates
with the field, about 5× smaller for the same accuracy in the 2-D benchmark).  Its basis is the
POD of the field-frame snapshots of FOM runs at every ``training_grid`` position (no greedy),
or a field-frame basis from ``basis`` (``bench/brown_neel_rom2d.py --frame`` writes one).

Time window: the recorded cycle t_n (the scanner's sample times) is preceded by
``warmup_samples`` samples (t < 0), started from the Boltzmann state at B(x, t_{−w}); after a
few τ_B the response is periodic, so the samples are the steady-state cycle up to the decay
of the start-up transient.

Notation: ``P`` positions, ``V`` samples per cycle, ``r`` POD rank.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from llgfem.config import ConfigError, parse_section
from llgfem.scanner.fields import ScannerFields
from llgfem.scanner.tracer import TracerConfig

__all__ = ["BrownNeelRomOptions", "BrownNeelRomResponse", "ScannerDrive", "brown_neel_rom"]


@dataclass(frozen=True)
class BrownNeelRomOptions:
    """``[model]`` options of ``brown_neel_rom``.

    Attributes:
        kind: ``brown_neel_rom``.
        n_m, n_n: truncation (N_m, N_n) of the full model (n-sphere: even L only).
        precession: include precession.
        warmup_samples: samples of the cycle simulated before the recorded cycle (>= 0).
        rtol: TS relative tolerance of FOM and ROM runs (atol = 1e-4 rtol).
        max_steps: TS step limit per run.
        basis: ``.npz`` file with the POD ``modes`` (n × r); empty: train.
        training_grid: candidate positions per axis over the drive field of view.
        max_training: at most this many training positions (greedy).
        rank: maximal POD rank (<= 100 keeps the ROM cheap and stable).
        pod_tol: discarded POD energy.
        frame: field-frame ROM (module docstring).
    """

    kind: str = "brown_neel_rom"
    n_m: int = 6
    n_n: int = 4
    precession: bool = True
    warmup_samples: int = 26
    rtol: float = 1e-6
    max_steps: int = 500_000
    basis: str = ""
    training_grid: tuple[int, int, int] = (3, 3, 1)
    max_training: int = 4
    rank: int = 80
    pod_tol: float = 1e-12
    frame: bool = False

    def validate(self, where: str) -> None:
        if self.n_m < 1 or self.n_n < 0:
            raise ConfigError(f"{where}.n_m: need n_m >= 1 and n_n >= 0")
        if self.warmup_samples < 0:
            raise ConfigError(f"{where}.warmup_samples: must be >= 0")
        if not 0 < self.rtol < 1:
            raise ConfigError(f"{where}.rtol: must lie in (0, 1)")
        if self.max_steps < 1:
            raise ConfigError(f"{where}.max_steps: must be >= 1")
        if len(self.training_grid) != 3 or min(self.training_grid) < 1:
            raise ConfigError(f"{where}.training_grid: three counts >= 1")
        if self.max_training < 1:
            raise ConfigError(f"{where}.max_training: must be >= 1")
        if not 1 <= self.rank <= 400:
            raise ConfigError(f"{where}.rank: must lie in [1, 400]")
        if not 0 <= self.pod_tol < 1:
            raise ConfigError(f"{where}.pod_tol: must lie in [0, 1)")


class ScannerDrive:
    """B(t) = static + drive(t) of a :class:`ScannerFields` as a Lissajous-model field object."""

    def __init__(self, scanner: ScannerFields, offset):
        self.scanner = scanner
        self.offset = np.asarray(offset, float)

    @property
    def period(self) -> float:
        return self.scanner.cycle

    @property
    def driven_axes(self) -> list[int]:
        return [a for a in range(3) if np.any(self.scanner.amplitudes[:, a] != 0)]

    def with_offset(self, offset) -> ScannerDrive:
        return ScannerDrive(self.scanner, offset)

    def fields(self, t: np.ndarray) -> np.ndarray:
        return self.offset + self.scanner.drive(np.atleast_1d(t))

    def rates(self, t: np.ndarray) -> np.ndarray:
        return self.scanner.rate(np.atleast_1d(t))

    def field(self, t: float) -> np.ndarray:
        return self.fields(np.array([t]))[0]

    def field_rate(self, t: float) -> np.ndarray:
        return self.rates(np.array([t]))[0]

    def max_field(self) -> float:
        return float(np.linalg.norm(self.offset)
                     + np.linalg.norm(self.scanner.amplitudes, axis=1).sum())


def _training_offsets(scanner: ScannerFields, grid) -> np.ndarray:
    """Displacements u from the field-free point spanning the drive field of view (borders
    included): the static field there is G u."""
    half = scanner.derived()["drive_fov_half_width_m"]
    axes = []
    for a, name in enumerate("xyz"):
        h = half.get(name, 0.0)
        axes.append(np.linspace(-h, h, grid[a]) if h > 0 and grid[a] > 1 else np.zeros(1))
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1)


class BrownNeelRomResponse:
    """Offset-parametric Brown–Néel ROM per position (serial objects on COMM_SELF)."""

    name = "brown_neel_rom"
    per_position = True

    def __init__(self, tracer: TracerConfig, opts: BrownNeelRomOptions = BrownNeelRomOptions()):
        self.tracer, self.opts = tracer, opts
        self.params = tracer.particle_parameters()
        self._cache: dict[str, Any] = {}
        self.stats: dict[str, Any] = {"positions": 0, "steps": 0, "seconds": 0.0,
                                      "offline_seconds": 0.0, "rank": 0, "training": 0}

    def options(self) -> dict:
        return asdict(self.opts)

    def _settings(self):
        from llgfem.brownneel.integrate import TSSettings

        return TSSettings(rtol=self.opts.rtol, atol=1e-4 * self.opts.rtol,
                          max_steps=self.opts.max_steps)

    def _times(self, scanner: ScannerFields) -> np.ndarray:
        dt = scanner.cycle / scanner.num_samples
        return np.arange(-self.opts.warmup_samples, scanner.num_samples) * dt

    def _offline(self, scanner: ScannerFields, positions: np.ndarray):
        """The full model and the ROM (built once per response object)."""
        if "rom" in self._cache:
            return self._cache["model"], self._cache["rom"]
        from llgfem.brownneel.lissajous import LissajousModel
        from llgfem.brownneel.lissajous_rom import reductor_for, select_positions

        t0 = time.perf_counter()
        o = self.opts
        cands = _training_offsets(scanner, o.training_grid)
        b_max = float(max(scanner.max_field(cands + scanner.ffp()).max(),
                          scanner.max_field(positions).max() if len(positions) else 0.0))
        model = LissajousModel(self.params, o.n_m, o.n_n, b_max=b_max, precession=o.precession)
        if o.frame:
            rom = self._frame_rom(model, scanner, cands)
        elif o.basis:
            modes = _read_basis(o.basis, model.size)
            rom = reductor_for(model, residual=False).reduce(modes)
        else:
            training = select_positions(
                model, ScannerDrive(scanner, np.zeros(3)), scanner.gradient, cands,
                self._times(scanner), self._settings(),
                max_selected=o.max_training, rank=o.rank, energy=1 - o.pod_tol)
            rom = training.rom
            self.stats["training"] = len(training.greedy.selected)
        self._cache.update(model=model, rom=rom)
        self.stats["rank"] = rom.rank
        self.stats["offline_seconds"] = time.perf_counter() - t0
        return model, rom

    def _frame_rom(self, model, scanner: ScannerFields, cands: np.ndarray):
        """Field-frame ROM: basis from ``basis`` or the POD of the field-frame snapshots of
        FOM runs at every candidate."""
        from llgfem.brownneel.frame_rom import reduce_frame, to_frame
        from llgfem.brownneel.lissajous import offset_field
        from llgfem.brownneel.lissajous_rom import mass_normalised
        from llgfem.rom import pod

        o = self.opts
        if o.basis:
            return reduce_frame(model, _read_basis(o.basis, model.size))
        t = self._times(scanner)
        blocks = []
        for u in cands:
            drive = ScannerDrive(scanner, offset_field(scanner.gradient, u))
            y = model.simulate(drive, t, self._settings()).y
            blocks.append(to_frame(model, drive, t, mass_normalised(model, drive, t, y)))
        self.stats["training"] = len(cands)
        return reduce_frame(model, pod(np.hstack(blocks), rank=o.rank,
                                       energy=1 - o.pod_tol).modes)

    def moments(self, scanner: ScannerFields,
                positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from llgfem.brownneel.lissajous_rom import simulate_reduced

        positions = np.asarray(positions, float).reshape(-1, 3)
        v = scanner.num_samples
        if not len(positions):
            return np.zeros((0, v, 3)), np.zeros((0, v, 3))
        model, rom = self._offline(scanner, positions)
        t = self._times(scanner)
        m, dm = np.empty((len(positions), v, 3)), np.empty((len(positions), v, 3))
        for p, x in enumerate(positions):
            t0 = time.perf_counter()
            drive = ScannerDrive(scanner, scanner.static(x))
            run = simulate_reduced(model, rom, drive, t, self._settings(), keep_states=False)
            m[p], dm[p] = run.m[-v:], run.dm[-v:]
            self.stats["positions"] += 1
            self.stats["steps"] += run.steps
            self.stats["seconds"] += time.perf_counter() - t0
        return m, dm


def _read_basis(path: str, size: int) -> np.ndarray:
    """POD modes from an .npz file (ConfigError naming model.basis)."""
    try:
        with np.load(path) as data:
            modes = np.asarray(data["modes"], float)
    except (OSError, KeyError, ValueError) as err:
        raise ConfigError(f"model.basis: cannot read 'modes' from {path!r} ({err})") from err
    if modes.ndim != 2 or modes.shape[0] != size or not np.all(np.isfinite(modes)):
        raise ConfigError(f"model.basis: modes of shape {modes.shape} do not fit the "
                          f"truncation ({size} unknowns) or are not finite")
    return modes


def brown_neel_rom(tracer: TracerConfig, options: dict, where: str) -> BrownNeelRomResponse:
    """Factory registered as ``MODELS["brown_neel_rom"]``."""
    return BrownNeelRomResponse(tracer, parse_section(BrownNeelRomOptions, options, where))
