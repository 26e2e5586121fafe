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

import numpy as np

from llgfem.builders import (
    CoilConfig,
    ConcentrationConfig,
    ObservationConfig,
    build_observation,
)
from llgfem.config import Config
from llgfem.io.plots import plot_series
from llgfem.io.signals import save_signals
from llgfem.operators.observation import Observation

__all__ = ["CoilConfig", "ConcentrationConfig", "ObservationConfig", "build_observation",
           "record_signals"]


def record_signals(cfg: Config, obs: Observation, obs_cfg: ObservationConfig, m: np.ndarray,
                   summary: dict, units=None) -> None:
    """Compute the signals of trajectory ``m``, add noise, write HDF5 and a plot.

    Args:
        cfg: The run config (output folder, plots on/off).
        obs: The observation operator (eq. (5) at the midpoints).
        obs_cfg: ``[observation]`` (noise level and seed).
        m: The trajectory (``(n_t, n_owned)``).
        summary: Gets a ``signals`` entry.
        units: :class:`llgfem.physics.Units` of a physical run (the plot is then drawn over
            t in s with dm/dt per second); None for a dimensionless run.
    """
    y = obs.apply(m)
    norm = obs.norm_range(y)
    if not (np.all(np.isfinite(y)) and np.isfinite(norm)):  # global: same on every rank
        from llgfem.solvers.linear import SolverError

        raise SolverError("receive-coil signals are not finite (overflow: check the coil "
                          "sensitivities, concentrations, field and parameters)")
    y_delta, noise = obs.add_noise(y, obs_cfg.delta, obs_cfg.seed)
    out = cfg.run_dir
    save_signals(out / "signals.h5", y_delta, obs.times, list(obs.coil_names),
                 list(obs.concentration_names), delta=obs_cfg.delta, seed=obs_cfg.seed,
                 comm=obs.comm)
    series = {f"{c} / {p}": y_delta[k, l] for k, c in enumerate(obs.concentration_names)
              for l, p in enumerate(obs.coil_names)}
    if cfg.output.plots:
        t, xlabel, ylabel = obs.times, "time t (dimensionless)", "signal v_kl(t) (eq. 5)"
        if units is not None:  # the solver's time is dimensionless: plot over seconds
            t, xlabel = units.to_si_time(obs.times), "time t (s)"
            series = {k: units.to_si_rate(v) for k, v in series.items()}
            ylabel = "signal v_kl(t) (eq. 5, dm/dt in 1/s)"
        plot_series(out / "plots" / "signals.png", t, series, xlabel=xlabel, ylabel=ylabel,
                    title="receive-coil signals (eq. 5)", comm=obs.comm)
    summary["signals"] = {"file": str(out / "signals.h5"), "shape": list(y.shape),
                          "norm": norm, "noise_level": noise,
                          "delta": obs_cfg.delta}
