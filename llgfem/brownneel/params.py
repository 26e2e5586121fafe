r"""Particle parameters and applied fields of the coupled Brown–Néel model (Weizenecker 2018).

Derived quantities (k_B Boltzmann constant, T temperature):

    V_c = π d_c³/6,  V_h = π d_h³/6,  μ = M_S V_c
    σ = K V_c/(k_B T)                       anisotropy barrier
    ξ/B = μ/(k_B T)                         field coupling per tesla (B = μ0 H)
    τ_N = μ (1 + α²)/(2 α γ k_B T)          free Néel diffusion time
    τ_B = 3 η V_h/(k_B T)                   Brownian rotation time

Fields are given as B(t) in tesla; ``xi(t) = (μ/k_BT) B(t)`` and its exact time derivative
``dxi(t)`` enter the operators.  The 1-D drive is B(t) = B_d sin(2π f_d t) ẑ.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = [
    "K_B",
    "CallableField",
    "ParticleParameters",
    "SinusoidalDrive",
    "langevin",
]

K_B = 1.380649e-23  # J/K


def langevin(x: float | np.ndarray) -> float | np.ndarray:
    """Langevin function L(x) = coth x − 1/x (series for small |x|)."""
    x = np.asarray(x, dtype=float)
    small = np.abs(x) < 1e-4
    xs = np.where(small, 1.0, x)
    out = np.where(small, x / 3 - x**3 / 45, 1 / np.tanh(xs) - 1 / xs)
    return out if out.ndim else float(out)


@dataclass(frozen=True)
class ParticleParameters:
    """Physical parameters of one magnetic nanoparticle (SI units).

    Attributes:
        d_c: core diameter [m].
        K: uniaxial anisotropy constant [J/m³].
        d_h: hydrodynamic diameter [m]; 0 means d_h = d_c.
        M_S: saturation magnetisation [A/m].
        alpha: Gilbert damping [-].
        gamma: gyromagnetic ratio [rad/(s T)].
        T: temperature [K].
        eta: carrier viscosity [Pa s].
    """

    d_c: float = 20e-9
    K: float = 6e3
    d_h: float = 0.0
    M_S: float = 474e3
    alpha: float = 0.1
    gamma: float = 1.75e11
    T: float = 293.0
    eta: float = 1e-3

    def __post_init__(self):
        for name in ("d_c", "M_S", "alpha", "gamma", "T", "eta"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be positive and finite, got {value}")
        if self.K < 0 or self.d_h < 0:
            raise ValueError("K and d_h must be non-negative")

    @property
    def hydro_diameter(self) -> float:
        """d_h, defaulting to d_c."""
        return self.d_h if self.d_h > 0 else self.d_c

    @property
    def v_core(self) -> float:
        return math.pi * self.d_c**3 / 6

    @property
    def v_hydro(self) -> float:
        return math.pi * self.hydro_diameter**3 / 6

    @property
    def mu(self) -> float:
        """Magnetic moment μ = M_S V_c [A m²]."""
        return self.M_S * self.v_core

    @property
    def kT(self) -> float:
        return K_B * self.T

    @property
    def sigma(self) -> float:
        """σ = K V_c/(k_B T)."""
        return self.K * self.v_core / self.kT

    @property
    def xi_per_tesla(self) -> float:
        """ξ per tesla, μ/(k_B T)."""
        return self.mu / self.kT

    @property
    def tau_n(self) -> float:
        """Néel free-diffusion time μ(1+α²)/(2αγ k_B T) [s]."""
        return self.mu * (1 + self.alpha**2) / (2 * self.alpha * self.gamma * self.kT)

    @property
    def tau_b(self) -> float:
        """Brownian time 3ηV_h/(k_B T) [s]."""
        return 3 * self.eta * self.v_hydro / self.kT

    def label(self) -> str:
        return f"{self.d_c * 1e9:g} nm, {self.K * 1e-3:g} kJ/m3"


@dataclass(frozen=True)
class SinusoidalDrive:
    """1-D drive field B(t) = B_d sin(2π f_d t + phase) ẑ (tesla), optional static offset."""

    amplitude: float = 15e-3
    frequency: float = 5e3
    phase: float = 0.0
    offset: float = 0.0

    @property
    def period(self) -> float:
        return 1.0 / self.frequency

    @property
    def is_along_z(self) -> bool:
        return True

    def field(self, t: float) -> np.ndarray:
        """B(t) [T] as a 3-vector."""
        w = 2 * math.pi * self.frequency
        return np.array([0.0, 0.0, self.offset + self.amplitude * math.sin(w * t + self.phase)])

    def field_rate(self, t: float) -> np.ndarray:
        """dB/dt [T/s], exact."""
        w = 2 * math.pi * self.frequency
        return np.array([0.0, 0.0, self.amplitude * w * math.cos(w * t + self.phase)])

    def max_field(self) -> float:
        return abs(self.offset) + abs(self.amplitude)


@dataclass(frozen=True)
class CallableField:
    """Arbitrary 3-D field B(t) with its derivative dB/dt (both callables returning 3-vectors).

    Attributes:
        b: t -> B(t) [T].
        db: t -> dB/dt [T/s]; used by the time-dependent symmetrisation only.
        b_max: bound of |B(t)| over the simulated interval (for the stability guard).
        along_z: True if B(t) ∥ ẑ for all t (allows the symmetry sector).
    """

    b: Callable[[float], np.ndarray]
    db: Callable[[float], np.ndarray]
    b_max: float
    along_z: bool = False

    @property
    def is_along_z(self) -> bool:
        return self.along_z

    def field(self, t: float) -> np.ndarray:
        return np.asarray(self.b(t), dtype=float)

    def field_rate(self, t: float) -> np.ndarray:
        return np.asarray(self.db(t), dtype=float)

    def max_field(self) -> float:
        return self.b_max
