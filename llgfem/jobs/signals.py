"""Receive-coil signals for jobs: ``[observation]``, ``[[coil]]`` and ``[[concentration]]`` tables.

::

    [observation]
    mu0 = 1.2566370614359173e-06   # prefactor of eq. (5) (default: the vacuum permeability)
    delta = 0.0                    # relative noise level of the synthetic data
    seed = 0

    [[coil]]
    name = "x-coil"
    sensitivity = [1.0, 0.0, 0.0]  # constant coil sensitivity p_l
    transfer = "delta"             # delta | constant
    transfer_value = 1.0           # the constant of a~ for transfer = "constant"

    [[concentration]]
    name = "phantom A"
    value = 1.0                    # constant concentration ...
    tags = [2]                     # ... on the cells with these tags (needs a tagged mesh)
    center = [0.2, 0.0, 0.0]       # ... or a Gaussian value exp(-|x - center|^2 / width^2)
    width = 0.3

Writes ``signals.h5`` (see :mod:`llgfem.io.signals`) and ``plots/signals.png``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llgfem.config import Config, ConfigError
from llgfem.io.plots import plot_series
from llgfem.io.signals import save_signals
from llgfem.operators.observation import Coil, Concentration, Observation
from llgfem.physics import MU0

__all__ = ["CoilConfig", "ConcentrationConfig", "ObservationConfig", "build_observation",
           "record_signals"]


@dataclass(frozen=True)
class ObservationConfig:
    mu0: float = MU0
    delta: float = 0.0
    seed: int = 0

    def validate(self, where: str) -> None:
        if self.delta < 0:
            raise ConfigError(f"{where}.delta: must be >= 0, got {self.delta}")
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
        if self.center and self.width <= 0:
            raise ConfigError(f"{where}.width: a Gaussian concentration needs width > 0")
        if self.center and self.tags:
            raise ConfigError(f"{where}.center: give either tags or a Gaussian centre")
        if len(self.center) > 3:
            raise ConfigError(f"{where}.center: at most 3 coordinates, got {len(self.center)}")
        if self.value <= 0:
            raise ConfigError(f"{where}.value: a concentration must be > 0, got {self.value}")

    def expression(self):
        """``value exp(-|x - center|^2 / width^2)`` as a callable of the UFL coordinate."""
        import ufl

        def gaussian(x):
            r2 = sum((x[i] - c) ** 2 for i, c in enumerate(self.center[: len(x)]))
            return self.value * ufl.exp(-r2 / self.width**2)
        return gaussian


def build_observation(cfg: Config, domain, V, grid):
    """The observation operator of the config, or None without ``[[coil]]`` tables."""
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
            value = tagged_concentration(domain, c.tags, c.value)
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


def tagged_concentration(domain, tags, value: float):
    """A DG0 function equal to ``value`` on the cells with the given tags, 0 elsewhere."""
    import dolfinx.fem as fem

    c = fem.Function(fem.functionspace(domain.mesh, ("DG", 0)))
    cells = domain.cell_tags.indices[np.isin(domain.cell_tags.values, list(tags))]
    c.x.array[cells] = value
    c.x.scatter_forward()
    return c


def record_signals(cfg: Config, obs: Observation, obs_cfg: ObservationConfig, m: np.ndarray,
                   summary: dict) -> None:
    """Compute the signals of trajectory ``m``, add noise, write HDF5 and a plot."""
    y = obs.apply(m)
    y_delta, noise = obs.add_noise(y, obs_cfg.delta, obs_cfg.seed)
    out = cfg.run_dir
    save_signals(out / "signals.h5", y_delta, obs.times, list(obs.coil_names),
                 list(obs.concentration_names), delta=obs_cfg.delta, seed=obs_cfg.seed,
                 comm=obs.comm)
    series = {f"{c} / {p}": y_delta[k, l] for k, c in enumerate(obs.concentration_names)
              for l, p in enumerate(obs.coil_names)}
    if cfg.output.plots:
        plot_series(out / "plots" / "signals.png", obs.times, series, xlabel="time t",
                    ylabel="voltage v_kl(t) (eq. 5)", title="receive-coil signals (eq. 5)",
                    comm=obs.comm)
    summary["signals"] = {"file": str(out / "signals.h5"), "shape": list(y.shape),
                          "norm": obs.norm_range(y), "noise_level": noise,
                          "delta": obs_cfg.delta}
