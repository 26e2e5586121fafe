"""Physical parameters, the scaling of the LLG equation from SI micromagnetics, applied fields.

Physical model (Gilbert form, SI units, sign convention of standard micromagnetics: ``gamma > 0``
is the *magnitude* of the gyromagnetic ratio, so that a spin precesses counter-clockwise about
the field, ``dm/dt = -gamma m x B`` for ``alpha = 0``)::

    m_t = -gamma m x B_eff + alpha m x m_t,                |m| = 1,
    B_eff = mu0 H_eff = (2 A / M_S) Laplace m + B + (2 K_u / M_S) (m . e) e,

with ``B = mu0 H_ext`` the applied field in tesla.  Taking ``m x`` of the Gilbert equation and
using ``m . m_t = 0`` gives ``alpha m_t + m x m_t = gamma (B_eff - (m . B_eff) m)``, and with
``m . Laplace m = -|grad m|^2`` this is the package's scaled form (:mod:`llgfem.forms.llg`)::

    a1 m_t - a2 m x m_t - c Laplace m - c |grad m|^2 m = h_eff - (m . h_eff) m,
    h_eff = h + k (m . e) e,

with, in SI units (``h`` in T, ``t`` in s, ``x`` in m)::

    a1 = alpha / gamma,   a2 = -1 / gamma,   c = 2 A / M_S,   k = 2 K_u / M_S,   h = B.

Non-dimensionalisation (:class:`Units`): a field unit ``B_ref`` (T), the time unit
``t_ref = 1 / (gamma B_ref)`` (s) and a length unit ``L_ref`` (m; e.g. the exchange length
``sqrt(2 A / (mu0 M_S^2))``, the wall width ``sqrt(A / K_u)`` or the domain size).  With
``t = t_ref tau``, ``x = L_ref xi``, ``B = B_ref b`` the equation keeps its form with::

    a1 = alpha,   a2 = -1,   c = 2 A / (M_S B_ref L_ref^2),   k = 2 K_u / (M_S B_ref),

so Newton tolerances see O(1) coefficients.  :meth:`PhysicalParameters.llg` returns these for any
:class:`Units` (``Units.si()`` gives the SI coefficients above).

Paper 002 §4.2 (Table 2) writes ``a^_i = a~_i / (a~1^2 + a~2^2)`` with ``a~1 = gamma alpha_D /
(1 + alpha_D^2)``, ``a~2 = gamma / (1 + alpha_D^2)``: that is ``a1 = alpha_D / gamma`` and
``a2 = +1 / gamma`` (precession in the opposite, non-standard sense), and an exchange coefficient
``2 A m_S`` (off by ``m_S^2`` against ``h = mu0 m_S H_ext``; the paper sets ``A = 0``).  Here
``a2 < 0`` and ``c = 2 A / M_S``; see ``docs/physical_units.md``.

Notation: ``mu0`` permeability, ``M_S = m_S`` saturation magnetisation (A/m), ``gamma``
gyromagnetic ratio magnitude (rad/(s T)), ``alpha = alpha_D`` Gilbert damping, ``A`` exchange
stiffness (J/m), ``K_u`` uniaxial anisotropy constant (J/m^3, ``> 0`` easy axis, ``< 0`` easy
plane), ``e`` easy axis (unit vector).

Applied fields are UFL expressions of the spatial coordinate ``x`` and a time
:class:`dolfinx.fem.Constant` ``t`` (updated by the solvers), built from a :class:`FieldSpec`:

* ``static``: ``h = amplitude * direction``;
* ``sinusoidal``: ``h = offset + amplitude sin(2 pi f t + phase) direction``;
* ``rotating``: ``h = amplitude (cos 2 pi f t, sin 2 pi f t, 0)`` (plus ``offset``);
* ``ffp``: field-free point scanner: selection field ``G (-x/2, -y/2, z)`` (gradient strength G
  along z, Maxwell pair) plus a sinusoidal drive ``amplitude sin(2 pi f t) direction``;
* ``expression``: any callable ``(x, t) -> 3-vector`` written with ``ufl`` functions.

:meth:`Units.field_spec` converts a spec given in SI (T, Hz, T/m, SI ``x`` and ``t``) to the
dimensionless one.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import ufl

__all__ = [
    "ParameterError",
    "MU0",
    "FieldSpec",
    "LLGParameters",
    "PhysicalParameters",
    "Units",
    "applied_field",
    "reference_field",
]

#: Plausibility bound of the scaled coefficients (larger values are typos, not physics).
PLAUSIBLE = {"coefficient": 1e15}


class ParameterError(ValueError):
    """A non-physical parameter; the message names the key (``table.key: ...``).

    The physics layer knows nothing of configs: the builders (:mod:`llgfem.builders`) and
    :func:`llgfem.config.parse_section` turn it into a :class:`~llgfem.config.ConfigError`.
    """


MU0 = 4e-7 * math.pi


@dataclass(frozen=True)
class LLGParameters:
    """Coefficients of the scaled LLG equation (see module docstring).

    Attributes:
        a1: damping coefficient (``alpha`` when non-dimensionalised; must be ``>= 0``).
        a2: gyromagnetic coefficient (``-1`` when non-dimensionalised, standard sense).
        exchange: ``c`` in front of ``Laplace m`` (``>= 0``).
        anisotropy: ``k`` of the uniaxial anisotropy field ``k (m . e) e``.
        easy_axis: ``e`` (normalised by the forms' users; any non-zero vector).
    """

    a1: float = 1.0
    a2: float = 0.0
    exchange: float = 1.0
    anisotropy: float = 0.0
    easy_axis: tuple[float, float, float] = (0.0, 0.0, 1.0)

    def validate(self, where: str = "llg") -> None:
        """Raise :class:`ParameterError` naming the key of a non-physical coefficient."""
        for name in ("a1", "a2", "exchange", "anisotropy"):
            if not math.isfinite(getattr(self, name)):
                raise ParameterError(f"{where}.{name}: must be finite")
            if abs(getattr(self, name)) > PLAUSIBLE["coefficient"]:
                raise ParameterError(f"{where}.{name}: |{name}| > {PLAUSIBLE['coefficient']:g} "
                                     "is not a coefficient of a solvable scaled equation")
        if not all(math.isfinite(v) and abs(v) <= 1e12 for v in self.easy_axis):
            raise ParameterError(f"{where}.easy_axis: entries must be finite and <= 1e12")
        if self.a1 == 0 and self.a2 == 0:
            raise ParameterError(f"{where}.a1: a1 and a2 cannot both vanish (no time derivative)")
        if self.a1 < 0:
            raise ParameterError(f"{where}.a1: must be >= 0 (a1 is the damping; a1 < 0 makes the "
                              f"energy grow and the equation ill-posed), got {self.a1}")
        if self.exchange < 0:
            raise ParameterError(f"{where}.exchange: must be >= 0, got {self.exchange}")
        if self.anisotropy != 0 and math.hypot(*self.easy_axis) == 0:
            raise ParameterError(f"{where}.easy_axis: must be a non-zero vector")


@dataclass(frozen=True)
class Units:
    """Reference scales: ``field`` (T), ``time`` (s), ``length`` (m).

    A quantity ``q`` in SI is ``q / unit`` in the scaled equations; build consistent units with
    :meth:`PhysicalParameters.units` (``time = 1 / (gamma field)``).
    """

    field: float
    time: float
    length: float

    def __post_init__(self):
        for name in ("field", "time", "length"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ParameterError(f"units.{name}: must be a positive finite number, got {value}")

    @classmethod
    def si(cls) -> Units:
        """Tesla, second, metre (the equation keeps its SI-sized coefficients)."""
        return cls(field=1.0, time=1.0, length=1.0)

    def to_dimensionless_field(self, b):
        """Field in T -> field in units of ``self.field`` (floats, arrays)."""
        return b / self.field

    def to_si_field(self, b):
        """Dimensionless field -> T."""
        return b * self.field

    def to_dimensionless_time(self, t):
        """Time in s -> time in units of ``self.time``."""
        return t / self.time

    def to_si_time(self, tau):
        """Dimensionless time -> s."""
        return tau * self.time

    def to_dimensionless_length(self, x):
        """Length (coordinates) in m -> units of ``self.length``."""
        return x / self.length

    def to_si_length(self, xi):
        """Dimensionless length -> m."""
        return xi * self.length

    def to_dimensionless_frequency(self, f):
        """Frequency in Hz -> cycles per time unit."""
        return f * self.time

    def to_dimensionless_rate(self, r):
        """A time derivative (e.g. ``dm/dt`` in 1/s) -> per time unit."""
        return r * self.time

    def to_si_rate(self, r):
        """A dimensionless time derivative -> per second."""
        return r / self.time

    def field_spec(self, spec: FieldSpec) -> FieldSpec:
        """The dimensionless :class:`FieldSpec` of a spec in SI (T, Hz, T/m, ``x``/m, ``t``/s).

        Amplitude and offset are divided by ``field``, the gradient (T/m) multiplied by
        ``length / field``, the frequency (Hz) multiplied by ``time``; an ``expression`` is
        wrapped as ``b(xi, tau) = B(length xi, time tau) / field``.
        """
        b = self.field
        new = dataclasses.replace(
            spec, amplitude=spec.amplitude / b, offset=tuple(o / b for o in spec.offset),
            gradient=spec.gradient * self.length / b,
            frequency=spec.frequency * self.time)
        if spec.kind == "expression" and callable(spec.expression):
            expr, length, time = spec.expression, self.length, self.time
            new = dataclasses.replace(new, expression=lambda x, t: ufl.as_vector(
                expr(length * x, time * t)) / b)
        return new


@dataclass(frozen=True)
class PhysicalParameters:
    """Material constants in SI (defaults: paper 002 Table 2, ``A = K_u = 0``).

    The ``[physical]`` config table keeps the key names of earlier versions (``m_S``, ``gamma``,
    ``alpha_D``, ``A``, ``mu0``) and adds ``K_u`` and ``easy_axis``.

    Attributes:
        m_S: saturation magnetisation ``M_S`` (A/m).
        gamma: gyromagnetic ratio magnitude (rad/(s T)), ``> 0``: standard (counter-clockwise)
            precession ``dm/dt = -gamma m x B``.
        alpha_D: Gilbert damping ``alpha >= 0``.
        A: exchange stiffness (J/m).
        K_u: uniaxial anisotropy constant (J/m^3); energy density ``-K_u (m . e)^2``.
        easy_axis: ``e`` (normalised here).
        mu0: vacuum permeability (H/m).
    """

    m_S: float = 474_000.0
    gamma: float = 1.75e11
    alpha_D: float = 0.1
    A: float = 0.0
    K_u: float = 0.0
    easy_axis: tuple[float, float, float] = (0.0, 0.0, 1.0)
    mu0: float = MU0

    def validate(self, where: str = "physical") -> None:
        """Raise :class:`ParameterError` naming the first non-physical key."""
        for name in ("m_S", "gamma", "alpha_D", "A", "K_u", "mu0", "easy_axis"):
            values = getattr(self, name)
            values = values if isinstance(values, tuple) else (values,)
            if not all(math.isfinite(v) for v in values):
                raise ParameterError(f"{where}.{name}: must be finite")
        positive = {"m_S": "the saturation magnetisation (A/m)",
                    "gamma": "the gyromagnetic ratio magnitude (rad/(s T)); the sign convention "
                             "dm/dt = -gamma m x B is built in",
                    "mu0": "the permeability (H/m)"}
        for name, meaning in positive.items():
            if not getattr(self, name) > 0:
                raise ParameterError(f"{where}.{name}: must be > 0 ({meaning}), "
                                  f"got {getattr(self, name)}")
        if self.alpha_D < 0:
            raise ParameterError(f"{where}.alpha_D: the damping must be >= 0, got {self.alpha_D}")
        for name, bound in (("m_S", 1e8), ("gamma", 1e14), ("alpha_D", 1e3), ("A", 1e-6),
                            ("K_u", 1e9)):  # beyond any magnetic material: typos
            if abs(getattr(self, name)) > bound:
                raise ParameterError(f"{where}.{name}: {getattr(self, name):g} exceeds the "
                                     f"plausible bound {bound:g} (SI)")
        if self.A < 0:
            raise ParameterError(f"{where}.A: the exchange stiffness must be >= 0, got {self.A}")
        if len(self.easy_axis) != 3 or math.hypot(*self.easy_axis) == 0:
            raise ParameterError(f"{where}.easy_axis: must be a non-zero 3-vector")

    @property
    def exchange_length(self) -> float:
        """``sqrt(2 A / (mu0 M_S^2))`` (m)."""
        return math.sqrt(2 * self.A / (self.mu0 * self.m_S**2))

    @property
    def wall_width(self) -> float:
        """Bloch/Neel wall width parameter ``sqrt(A / K_u)`` (m); needs ``K_u > 0``."""
        if self.K_u <= 0:
            raise ValueError("PhysicalParameters.wall_width: needs K_u > 0")
        return math.sqrt(self.A / self.K_u)

    def flux_density(self, H_ext):
        """``B = mu0 H_ext`` (T) of a field strength in A/m."""
        return self.mu0 * H_ext

    def units(self, B_ref: float, L_ref: float = 1.0) -> Units:
        """Consistent units: field ``B_ref`` (T), time ``1 / (gamma B_ref)`` (s), length ``L_ref``.

        Args:
            B_ref: field unit in T, e.g. the largest applied field (``> 0``).
            L_ref: length unit in m (the domain size, :attr:`exchange_length` or
                :attr:`wall_width`); irrelevant for ``A = 0`` (then ``c = 0``).
        """
        self.validate()
        if not (math.isfinite(B_ref) and B_ref > 0):
            raise ParameterError(f"units.field: B_ref must be a positive field in T, got {B_ref}")
        return Units(field=B_ref, time=1.0 / (self.gamma * B_ref), length=L_ref)

    def llg(self, units: Units | None = None, easy_axis: Sequence[float] | None = None
            ) -> LLGParameters:
        """The coefficients of the scaled equation in ``units`` (default: SI).

        ``a1 = alpha s``, ``a2 = -s`` with ``s = 1 / (gamma t_ref B_ref)`` (``s = 1`` for
        :meth:`units`), ``c = 2 A / (M_S B_ref L_ref^2)``, ``k = 2 K_u / (M_S B_ref)``, easy axis
        normalised.

        Transitional: the legacy call ``llg(anisotropy, easy_axis)`` of ``jobs/llg_forward.py``
        (a float first) still works, in SI units with the given ``k`` (T) and axis, and warns.
        """
        if units is not None and not isinstance(units, Units):
            warnings.warn("PhysicalParameters.llg(anisotropy, easy_axis) is deprecated: set "
                          "K_u/easy_axis in [physical] and pass Units", DeprecationWarning,
                          stacklevel=2)
            base = self.llg(Units.si())
            axis = tuple(float(v) for v in (easy_axis or base.easy_axis))
            return dataclasses.replace(base, anisotropy=float(units), easy_axis=axis)
        self.validate()
        u = units or Units.si()
        s = 1.0 / (self.gamma * u.time * u.field)
        norm = math.hypot(*self.easy_axis)
        return LLGParameters(
            a1=self.alpha_D * s, a2=-s,
            exchange=2 * self.A / (self.m_S * u.field * u.length**2),
            anisotropy=2 * self.K_u / (self.m_S * u.field),
            easy_axis=tuple(float(v) / norm for v in self.easy_axis))

    def scaled_field(self, H_ext: float) -> float:
        """Paper 002 §4.2's ``h = mu0 m_S H_ext`` (kept for old callers).

        The scaled equation takes the applied field in tesla, ``B = mu0 H`` (Table 2: ``|h| =
        1e-4 T``), i.e. this product only for a reduced field ``H_ext = H / M_S``; new code
        should pass fields in T (or :meth:`flux_density` of ``H`` in A/m).
        """
        return self.mu0 * self.m_S * H_ext


#: Field kinds whose ``amplitude`` multiplies ``direction`` (``rotating`` turns in the x-y
#: plane and does not use it).
DIRECTED_KINDS = ("static", "sinusoidal", "ffp")


@dataclass(frozen=True)
class FieldSpec:
    """An applied field h(x, t) (see module docstring for the kinds)."""

    kind: str = "static"
    amplitude: float = 0.0
    direction: tuple[float, float, float] = (0.0, 0.0, 1.0)
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    frequency: float = 0.0
    phase: float = 0.0
    gradient: float = 0.0
    expression: Callable | None = field(default=None, compare=False)

    def validate(self, where: str = "field") -> None:
        kinds = ("static", "sinusoidal", "rotating", "ffp", "expression", "zero")
        if self.kind not in kinds:
            raise ParameterError(f"{where}.kind: {self.kind!r} is not one of {kinds}")
        if self.kind == "expression" and not callable(self.expression):
            raise ParameterError(f"{where}.expression: a callable (x, t) -> vector is required")
        numbers = (self.amplitude, self.frequency, self.phase, self.gradient,
                   *self.direction, *self.offset)
        if not all(math.isfinite(v) for v in numbers):
            raise ParameterError(f"{where}: field parameters must be finite")
        if len(self.direction) != 3 or len(self.offset) != 3:
            raise ParameterError(f"{where}.direction: 3 components needed")
        if (self.kind in DIRECTED_KINDS and self.amplitude != 0
                and math.hypot(*self.direction) == 0):
            raise ParameterError(f"{where}.direction: must be non-zero for kind = "
                                 f"{self.kind!r} with amplitude {self.amplitude:g} (a zero "
                                 "direction silently removes the drive)")


def reference_field(spec: FieldSpec, extent: float = 0.0, fallback: float = 1.0) -> float:
    """A field unit for :meth:`PhysicalParameters.units`: the largest applied field (T).

    ``|amplitude| + |offset| + |gradient| extent`` (``extent``: largest distance from the
    origin in the domain, m); ``fallback`` (e.g. the anisotropy field ``2 K_u / M_S``) when that
    vanishes or for ``expression``/``zero`` fields.
    """
    if spec.kind in ("expression", "zero"):
        return fallback
    scale = 1.0 if spec.kind == "rotating" else math.hypot(*spec.direction)
    size = abs(spec.amplitude) * scale + math.hypot(*spec.offset)
    if spec.kind == "ffp":
        size += abs(spec.gradient) * extent
    return size if size > 0 and math.isfinite(size) else fallback


def applied_field(spec: FieldSpec, x, t):
    """UFL expression of ``h(x, t)`` for the spec (``x`` spatial coordinate, ``t`` a Constant)."""
    spec.validate()
    d = ufl.as_vector(spec.direction)
    off = ufl.as_vector(spec.offset)
    omega = 2 * math.pi * spec.frequency
    if spec.kind == "zero":
        return ufl.as_vector((0.0, 0.0, 0.0))
    if spec.kind == "static":
        return off + spec.amplitude * d
    if spec.kind == "sinusoidal":
        return off + spec.amplitude * ufl.sin(omega * t + spec.phase) * d
    if spec.kind == "rotating":
        rot = ufl.as_vector((ufl.cos(omega * t + spec.phase), ufl.sin(omega * t + spec.phase),
                             0.0))
        return off + spec.amplitude * rot
    if spec.kind == "ffp":
        coords = [x[i] if i < len(x) else 0.0 for i in range(3)]
        sel = ufl.as_vector((-0.5 * coords[0], -0.5 * coords[1], coords[2]))
        return off + spec.gradient * sel + spec.amplitude * ufl.sin(omega * t + spec.phase) * d
    return ufl.as_vector(spec.expression(x, t))
