r"""Tracer (magnetic nanoparticle) description in SI units and its derived quantities.

    V_c = π d_c³/6,  V_h = π d_h³/6,  m_p = M_S V_c            core/hydrodynamic volume, moment
    ξ = m_p |B| / (k_B T)      (B = μ0 H in tesla)              Langevin argument
    σ = K V_c / (k_B T)                                          anisotropy barrier
    τ_N = m_p (1 + α²) / (2 α γ k_B T),  τ_B = 3 η V_h / (k_B T) Néel / Brownian times
    n_p = 1000 c_Fe / (ρ_Fe V_c)                                 particles per m³

with c_Fe the iron concentration [mol(Fe)/L] (MDF ``tracer/concentration``) and ρ_Fe the
iron content of the core [mol/m³] (magnetite Fe₃O₄: 3 · 5170 kg/m³ / 0.23153 kg/mol =
6.699e4 mol/m³).  The moment of the particles in a calibration voxel of volume V_δ is
N_p m_p m̄ with N_p = n_p V_δ and m̄ the mean unit moment (|m̄| ≤ 1) of the particle model.

Easy axes: ``free`` — the easy axis of each particle rotates with the particle in the
carrier fluid (Brownian rotation), the coupled Brown–Néel model of :mod:`llgfem.brownneel`;
the initial axis distribution is the Boltzmann one at the initial field.  (Immobilised
particles with fixed axes are not implemented.)

Notation: ``d_c`` core_diameter, ``d_h`` hydrodynamic_diameter, ``M_S``
saturation_magnetisation, ``K`` anisotropy, ``alpha`` damping, ``eta`` viscosity, ``T``
temperature, ``c_Fe`` concentration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from llgfem.config import ConfigError

__all__ = ["K_B", "MAGNETITE_IRON_DENSITY", "TracerConfig"]

K_B = 1.380649e-23  # J/K
MAGNETITE_IRON_DENSITY = 3 * 5170.0 / 0.231533  # mol(Fe) per m³ of magnetite
EASY_AXES = ("free",)


@dataclass(frozen=True)
class TracerConfig:
    """The ``[tracer]`` table (SI units).

    Attributes:
        name: tracer name (MDF ``tracer/name``).
        core_diameter: d_c [m], the magnetic core.
        hydrodynamic_diameter: d_h [m]; 0 = d_c.
        saturation_magnetisation: M_S [A/m].
        anisotropy: K [J/m³] (uniaxial), >= 0.
        easy_axis: easy-axis model, ``free`` (rotating with the particle).
        damping: Gilbert damping α.
        gyromagnetic_ratio: γ [rad/(s T)].
        viscosity: carrier viscosity η [Pa s].
        temperature: T [K].
        concentration: c_Fe [mol(Fe)/L] (MDF ``tracer/concentration``).
        core_iron_density: ρ_Fe [mol/m³] (magnetite default).
    """

    name: str = "model tracer"
    core_diameter: float = 20e-9
    hydrodynamic_diameter: float = 0.0
    saturation_magnetisation: float = 474e3
    anisotropy: float = 6e3
    easy_axis: str = "free"
    damping: float = 0.1
    gyromagnetic_ratio: float = 1.75e11
    viscosity: float = 1e-3
    temperature: float = 293.0
    concentration: float = 0.1
    core_iron_density: float = MAGNETITE_IRON_DENSITY

    def validate(self, where: str) -> None:
        positive = ("core_diameter", "saturation_magnetisation", "damping",
                    "gyromagnetic_ratio", "viscosity", "temperature", "concentration",
                    "core_iron_density")
        for key in positive:
            if not getattr(self, key) > 0:
                raise ConfigError(f"{where}.{key}: must be positive, got {getattr(self, key)}")
        if self.core_diameter > 1e-6:
            raise ConfigError(f"{where}.core_diameter: {self.core_diameter} m is not a "
                              "nanoparticle (give metres, e.g. 20e-9)")
        if self.hydrodynamic_diameter < 0:
            raise ConfigError(f"{where}.hydrodynamic_diameter: must be >= 0 (0 = core)")
        if 0 < self.hydrodynamic_diameter < self.core_diameter:
            raise ConfigError(f"{where}.hydrodynamic_diameter: smaller than core_diameter")
        if self.anisotropy < 0:
            raise ConfigError(f"{where}.anisotropy: must be >= 0 [J/m³]")
        if self.easy_axis not in EASY_AXES:
            raise ConfigError(f"{where}.easy_axis: {self.easy_axis!r} not in {list(EASY_AXES)}")

    @property
    def d_h(self) -> float:
        return self.hydrodynamic_diameter or self.core_diameter

    @property
    def core_volume(self) -> float:
        return math.pi * self.core_diameter**3 / 6

    @property
    def moment(self) -> float:
        """m_p = M_S V_c [A m²]."""
        return self.saturation_magnetisation * self.core_volume

    @property
    def kT(self) -> float:
        return K_B * self.temperature

    @property
    def xi_per_tesla(self) -> float:
        """ξ/|B| = m_p/(k_B T) [1/T]."""
        return self.moment / self.kT

    @property
    def sigma(self) -> float:
        return self.anisotropy * self.core_volume / self.kT

    @property
    def tau_neel(self) -> float:
        """Free Néel diffusion time τ_N [s]."""
        a = self.damping
        return self.moment * (1 + a * a) / (2 * a * self.gyromagnetic_ratio * self.kT)

    @property
    def tau_brown(self) -> float:
        """Brownian rotation time τ_B [s]."""
        return 3 * self.viscosity * math.pi * self.d_h**3 / 6 / self.kT

    @property
    def number_density(self) -> float:
        """n_p [1/m³] from the iron concentration."""
        return 1000.0 * self.concentration / (self.core_iron_density * self.core_volume)

    def particle_parameters(self):
        """The :class:`llgfem.brownneel.params.ParticleParameters` of this tracer."""
        from llgfem.brownneel.params import ParticleParameters

        return ParticleParameters(d_c=self.core_diameter, K=self.anisotropy,
                                  d_h=self.hydrodynamic_diameter,
                                  M_S=self.saturation_magnetisation, alpha=self.damping,
                                  gamma=self.gyromagnetic_ratio, T=self.temperature,
                                  eta=self.viscosity)

    def derived(self) -> dict:
        """Derived values for the resolved config."""
        return {"moment_Am2": self.moment, "xi_per_tesla": self.xi_per_tesla,
                "sigma": self.sigma, "tau_neel_s": self.tau_neel, "tau_brown_s": self.tau_brown,
                "number_density_per_m3": self.number_density,
                "hydrodynamic_diameter_m": self.d_h}
