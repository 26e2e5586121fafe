"""Physical parameters, the scaling of paper 002 §4.2 (Table 2) and applied fields h(x, t).

Scaled LLG equation for the unit magnetisation m (|m| = 1), paper 002 eq. (39) / §4.2::

    a1 m_t - a2 m x m_t - c_ex Laplace m = c_ex |grad m|^2 m + h_eff - (m . h_eff) m + f

with ``a1 = alpha_hat_1``, ``a2 = alpha_hat_2``, ``c_ex = 2 A m_S`` (``c_ex = 1`` in the
non-dimensional Tests 1-3), ``h_eff = h + k_u (m . e_u) e_u`` (optional uniaxial anisotropy).
Physical scaling (§4.2)::

    alpha~1 = gamma alpha_D / (1 + alpha_D^2),   alpha~2 = gamma / (1 + alpha_D^2)
    alpha^_i = alpha~_i / (alpha~1^2 + alpha~2^2),   h = mu0 m_S H_ext

Notation: ``mu0`` permeability, ``m_S`` saturation magnetisation, ``gamma`` gyromagnetic ratio,
``alpha_D`` damping, ``A`` exchange stiffness.

Applied fields are UFL expressions of the spatial coordinate ``x`` and a time
:class:`dolfinx.fem.Constant` ``t`` (updated by the solvers), built from a :class:`FieldSpec`:

* ``static``: ``h = amplitude * direction``;
* ``sinusoidal``: ``h = offset + amplitude sin(2 pi f t + phase) direction``;
* ``rotating``: ``h = amplitude (cos 2 pi f t, sin 2 pi f t, 0)`` (plus ``offset``);
* ``ffp``: field-free point scanner: selection field ``G (-x/2, -y/2, z)`` (gradient strength G
  along z, Maxwell pair) plus a sinusoidal drive ``amplitude sin(2 pi f t) direction``;
* ``expression``: any callable ``(x, t) -> 3-vector`` written with ``ufl`` functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import ufl

from llgfem.config import ConfigError

__all__ = [
    "MU0",
    "FieldSpec",
    "LLGParameters",
    "PhysicalParameters",
    "applied_field",
]

MU0 = 4e-7 * math.pi


@dataclass(frozen=True)
class LLGParameters:
    """Coefficients of the scaled LLG equation (see module docstring)."""

    a1: float = 1.0
    a2: float = 0.0
    exchange: float = 1.0
    anisotropy: float = 0.0
    easy_axis: tuple[float, float, float] = (0.0, 0.0, 1.0)

    def validate(self, where: str = "llg") -> None:
        for name in ("a1", "a2", "exchange", "anisotropy"):
            if not math.isfinite(getattr(self, name)):
                raise ConfigError(f"{where}.{name}: must be finite")
        if self.a1 == 0 and self.a2 == 0:
            raise ConfigError(f"{where}.a1: a1 and a2 cannot both vanish (no time derivative)")
        if self.exchange < 0:
            raise ConfigError(f"{where}.exchange: must be >= 0, got {self.exchange}")
        if self.anisotropy != 0 and math.hypot(*self.easy_axis) == 0:
            raise ConfigError(f"{where}.easy_axis: must be a non-zero vector")


@dataclass(frozen=True)
class PhysicalParameters:
    """Table 2 of paper 002 (SI units)."""

    m_S: float = 474_000.0
    gamma: float = 1.75e11
    alpha_D: float = 0.1
    A: float = 0.0
    mu0: float = MU0

    def llg(self, anisotropy: float = 0.0,
            easy_axis: tuple[float, float, float] = (0.0, 0.0, 1.0)) -> LLGParameters:
        """The scaled coefficients (alpha^_1, alpha^_2, c_ex = 2 A m_S)."""
        t1 = self.gamma * self.alpha_D / (1 + self.alpha_D**2)
        t2 = self.gamma / (1 + self.alpha_D**2)
        s = t1**2 + t2**2
        return LLGParameters(a1=t1 / s, a2=t2 / s, exchange=2 * self.A * self.m_S,
                             anisotropy=anisotropy, easy_axis=easy_axis)

    def scaled_field(self, H_ext: float) -> float:
        """``h = mu0 m_S H_ext``."""
        return self.mu0 * self.m_S * H_ext


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
            raise ConfigError(f"{where}.kind: {self.kind!r} is not one of {kinds}")
        if self.kind == "expression" and not callable(self.expression):
            raise ConfigError(f"{where}.expression: a callable (x, t) -> vector is required")
        numbers = (self.amplitude, self.frequency, self.phase, self.gradient,
                   *self.direction, *self.offset)
        if not all(math.isfinite(v) for v in numbers):
            raise ConfigError(f"{where}: field parameters must be finite")
        if len(self.direction) != 3 or len(self.offset) != 3:
            raise ConfigError(f"{where}.direction: 3 components needed")


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
