r"""Brown–Néel calibration: the least-squares fit and its finite-difference Jacobian.

Unknowns x = (θ, gain parameters), θ in the units of
:data:`PARAMETER_UNITS` (nm, kJ/m³, nm).  Residual per channel
c and selected bin k (:mod:`llgfem.brownneel.calibrate_data` for the measurement model)

    r_{c,k}(x) = (g_c ŝ_k(θ) − D_{c,k}) / ‖D_c‖_rms,

with g_c = u_c (x_re + i x_im) (``complex``), u_c x_re (``real``) or 1 (``none``), u_c =
‖D_c‖_rms / ‖ŝ(θ_0)‖_rms, so that every unknown is of order one.  Levenberg–Marquardt
(:func:`llgfem.calibration.fit.least_squares_fit`) from a dictionary point or a given start;
Jacobian: central differences ∂ŝ/∂θ_j ≈ (ŝ(θ + h_j e_j) − ŝ(θ − h_j e_j))/(2h_j), h_j =
``fd_step`` |θ_j|, exact gain columns (u_c ŝ, i u_c ŝ)/‖D_c‖_rms.  At the solution
:func:`llgfem.calibration.uncertainty.fisher_uncertainty` gives standard errors, correlations,
Student-t 95 % intervals (σ from the residual) and the identifiability flags.

Notation: θ physical parameters, D measured spectra (C, K), ŝ ROM spectrum at the bins, h_j
finite-difference steps.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from llgfem.brownneel.calibrate_data import BNMeasurement, CalibrationSetup
    from llgfem.brownneel.calibrate_rom import BrownNeelFamily

__all__ = ["PARAMETER_UNITS", "fd_jacobian", "fd_step_study", "fit_measurement",
           "model_spectrum"]

#: Fit units: the parameter vector is in nm, kJ/m³, nm (values of order 1–100).
PARAMETER_UNITS = {"d_c": ("nm", 1e-9), "K": ("kJ/m3", 1e3), "d_h": ("nm", 1e-9)}


class _Problem:
    """Residual and Jacobian of the fit; x = (θ in :data:`PARAMETER_UNITS`, gain parameters).

    Gains g_c = (unit_c)(x_re + i x_im) (``complex``), unit_c x_re (``real``) or 1
    (``none``), with unit_c = (data scale of channel c)/(model spectrum scale at the start) so
    the gain parameters are of order one; residual (g_c ŝ − D_c)/(data scale of c).
    """

    def __init__(self, family: BrownNeelFamily, meas: BNMeasurement, names: Sequence[str],
                 setup: CalibrationSetup, fd_step: float):
        self.family, self.meas, self.names = family, meas, tuple(names)
        self.setup, self.fd_step = setup, fd_step
        self.p = len(self.names)
        self.per_channel = {"complex": 2, "real": 1, "none": 0}[meas.gain]
        self.scale = np.sqrt(np.mean(np.abs(meas.spectra) ** 2, axis=1))  # (C,)
        self.s_unit = 1.0
        self.evaluations = 0

    @property
    def gain_names(self) -> list[str]:
        parts = ("re", "im")[: self.per_channel]
        return [f"gain{c}_{part}" for c in range(self.meas.channels) for part in parts]

    def physical(self, theta: np.ndarray) -> dict:
        return {name: value * PARAMETER_UNITS[name][1]
                for name, value in zip(self.names, theta, strict=True)}

    def spectrum(self, theta: np.ndarray) -> np.ndarray:
        """ŝ(θ) at the selected window bins (the last one is cached)."""
        key = tuple(np.asarray(theta, float).tolist())
        if getattr(self, "_last", (None,))[0] == key:
            return self._last[1]
        self._last = (key, self._spectrum(theta))
        return self._last[1]

    def _spectrum(self, theta: np.ndarray) -> np.ndarray:
        phys = self.physical(theta)
        cand = self.family.candidate(phys["d_c"], phys["K"], phys.get("d_h", 0.0))
        s = self.family.signal(cand, self.meas.drive, self.meas.t_samples,
                               self.setup.warmup_periods, self.setup.substeps)
        self.evaluations += 1
        return self.meas.model_spectrum(s)

    def _unit(self) -> np.ndarray:
        return self.scale / self.s_unit

    def gains_ls(self, s: np.ndarray) -> np.ndarray:
        """Least-squares gains for a model spectrum (1 for ``none``)."""
        if self.per_channel == 0:
            return np.ones(self.meas.channels, dtype=complex)
        g = (self.meas.spectra @ s.conj()) / np.vdot(s, s).real
        return g if self.per_channel == 2 else g.real.astype(complex)

    def split(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        theta, rest = x[: self.p], x[self.p:]
        if self.per_channel == 0:
            return theta, np.ones(self.meas.channels, dtype=complex)
        g = rest.reshape(self.meas.channels, self.per_channel)
        z = g[:, 0] + (1j * g[:, 1] if self.per_channel == 2 else 0.0)
        return theta, z * self._unit()

    def pack(self, theta: np.ndarray, g: np.ndarray) -> np.ndarray:
        z = g / self._unit()
        parts = [z.real, z.imag][: self.per_channel]
        rest = np.column_stack(parts).ravel() if parts else np.zeros(0)
        return np.concatenate([np.asarray(theta, float), rest])

    def residual_of(self, s: np.ndarray, g: np.ndarray) -> np.ndarray:
        return ((g[:, None] * s[None, :] - self.meas.spectra) / self.scale[:, None]).ravel()

    def residual(self, x: np.ndarray) -> np.ndarray:
        theta, g = self.split(x)
        return self.residual_of(self.spectrum(theta), g)

    def dspectrum(self, theta: np.ndarray) -> np.ndarray:
        """Central finite differences ∂ŝ/∂θ_j with h_j = fd_step |θ_j|, shape (K, p)."""
        cols = []
        for j in range(self.p):
            h = self.fd_step * max(abs(theta[j]), 1e-12)
            e = np.zeros(self.p)
            e[j] = h
            cols.append((self.spectrum(theta + e) - self.spectrum(theta - e)) / (2 * h))
        return np.column_stack(cols)

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        """d r/d x (complex, (C K, p + gain parameters))."""
        theta, g = self.split(x)
        s = self.spectrum(theta) if self.per_channel else None  # cached from residual(x)
        ds = self.dspectrum(theta)
        c_n, k_n = self.meas.channels, ds.shape[0]
        jac = np.zeros((c_n * k_n, self.p + c_n * self.per_channel), dtype=complex)
        for c in range(c_n):
            rows = slice(c * k_n, (c + 1) * k_n)
            jac[rows, : self.p] = g[c] * ds / self.scale[c]
            col = self.p + c * self.per_channel
            if self.per_channel:
                jac[rows, col] = s / self.s_unit
            if self.per_channel == 2:
                jac[rows, col + 1] = 1j * s / self.s_unit
        return jac


def _dictionary(prob: _Problem, box, grid: int, extra: dict) -> tuple[np.ndarray, float, list]:
    """Best grid point of the box (gains by linear least squares at each point)."""
    (d0, d1), (k0, k1) = box
    best, best_phi, table = None, math.inf, []
    for d in np.linspace(d0, d1, grid):
        for k in np.linspace(k0, k1, grid):
            theta = np.array([d, k] + [extra[n] for n in prob.names[2:]])
            s = prob.spectrum(theta)
            g = prob.gains_ls(s)
            phi = float(np.sum(np.abs(prob.residual_of(s, g)) ** 2))
            table.append([d, k, phi])
            if phi < best_phi:
                best, best_phi = theta, phi
    return best, best_phi, table


def fit_measurement(meas: BNMeasurement, family: BrownNeelFamily, setup: CalibrationSetup,
                    names: Sequence[str] = ("d_c", "K"), grid: int = 3,
                    fd_step: float = 1e-4, d_h_start: float = 0.0, max_iter: int = 20,
                    rcond: float = 1e-6, rel_width: float = 1.0, tol: float = 1e-8,
                    start: Sequence[float] | None = None) -> dict:
    """Fit θ (and the gains) to the measured spectra; Fisher uncertainty at the solution.

    Args:
        meas: the measurement (:func:`read_measurement`).
        family: the parametric ROM.
        setup: ROM settings (``substeps``, ``warmup_periods``, ``box``).
        names: fitted parameters: ``("d_c", "K")`` or ``("d_c", "K", "d_h")``.
        grid: dictionary points per axis of the (d_c, K) box (1: start at the centre).
        start: explicit (d_c, K) start (overrides the dictionary).
        fd_step: relative central-difference step of the Jacobian.
        d_h_start: start of d_h [nm] (0: the d_c start).
        max_iter: Levenberg–Marquardt iterations.
        tol: LM stops when the relative decrease of ‖r‖² and the scaled step (squared) are
            below it.
        rcond, rel_width: identifiability rule of :func:`fisher_uncertainty` (scales
            max(|x|, 1) in the fit units).

    Returns:
        A JSON-ready record (estimates, standard errors, intervals, identified flags, gains,
        seconds, ROM evaluations) and ``"uncertainty"``: the :class:`Uncertainty` of every
        fitted quantity (physical parameters first, then the gain parameters).
    """
    from llgfem.calibration.fit import least_squares_fit
    from llgfem.calibration.uncertainty import fisher_uncertainty

    if tuple(names) not in (("d_c", "K"), ("d_c", "K", "d_h")):
        raise ValueError(f"names must be ('d_c', 'K') or ('d_c', 'K', 'd_h'), got {names}")
    t0 = time.perf_counter()
    prob = _Problem(family, meas, names, setup, fd_step)
    (d0, d1), (k0, k1) = setup.box
    extra = {"d_h": d_h_start}
    if start is not None:
        theta0, table = np.asarray(start, float)[:2], []
    elif grid > 1:
        theta0, _, table = _dictionary(prob, setup.box, grid, extra)
    else:
        theta0, table = np.array([0.5 * (d0 + d1), 0.5 * (k0 + k1)]), []
    if "d_h" in names:
        theta0 = np.concatenate([theta0[:2], [d_h_start or theta0[0]]])
    s0 = prob.spectrum(theta0)
    prob.s_unit = float(np.sqrt(np.mean(np.abs(s0) ** 2)))
    x0 = prob.pack(theta0, prob.gains_ls(s0))
    res = least_squares_fit(prob.residual, prob.jacobian, x0, max_iter=max_iter, tol=tol)
    theta, g = prob.split(res.x)
    unc = fisher_uncertainty(res.jacobian, res.residual, res.x, list(names) + prob.gain_names,
                             rcond=rcond, rel_width=rel_width,
                             scale=np.maximum(np.abs(res.x), 1.0))
    p = len(names)
    return {
        "names": list(names), "units": [PARAMETER_UNITS[n][0] for n in names],
        "estimate": [float(v) for v in theta], "start": [float(v) for v in theta0],
        "stderr": [float(v) for v in unc.stderr[:p]],
        "ci95_low": [float(v) for v in unc.ci95_low[:p]],
        "ci95_high": [float(v) for v in unc.ci95_high[:p]],
        "identified": [bool(v) for v in unc.identified[:p]],
        "gain": [[float(v.real), float(v.imag)] for v in g], "gain_mode": meas.gain,
        "uncertainty": unc, "seconds": time.perf_counter() - t0,
        "dictionary": table, "rom_evaluations": prob.evaluations,
        "iterations": res.iterations, "reason": res.reason,
        "relative_residual": float(np.linalg.norm(res.residual)
                                   / np.linalg.norm(meas.spectra / prob.scale[:, None])),
        "n_data": int(2 * res.residual.size), "fd_step": fd_step,
        "harmonics": (meas.bins // meas.periods).tolist(),
    }


def fd_step_study(meas: BNMeasurement, family: BrownNeelFamily, setup: CalibrationSetup,
                  theta: Sequence[float],
                  steps: Sequence[float] = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6),
                  names: Sequence[str] = ("d_c", "K")) -> list[dict]:
    """Relative change of the central-difference Jacobian of ŝ between successive steps.

    Returns one record per step h (relative to |θ_j|): ``{"step": h, "change":
    ‖J_h − J_{h_prev}‖/‖J_h‖}``; O(h²) convergence shows as the change falling by 100 per
    decade until round-off (≈ ε_round/h) takes over.
    """
    prob = _Problem(family, meas, names, setup, steps[0])
    out, prev = [], None
    for h in steps:
        prob.fd_step = h
        jac = prob.dspectrum(np.asarray(theta, float))
        rec = {"step": float(h)}
        if prev is not None:
            rec["change"] = float(np.linalg.norm(jac - prev) / np.linalg.norm(jac))
        out.append(rec)
        prev = jac
    return out


def model_spectrum(meas: BNMeasurement, family: BrownNeelFamily, setup: CalibrationSetup,
                   theta: Sequence[float], names: Sequence[str] = ("d_c", "K")) -> np.ndarray:
    """ŝ(θ) at the measurement's bins (θ in :data:`PARAMETER_UNITS`)."""
    return _Problem(family, meas, names, setup, 1e-4).spectrum(np.asarray(theta, float))


def fd_jacobian(meas: BNMeasurement, family: BrownNeelFamily, setup: CalibrationSetup,
                theta: Sequence[float], fd_step: float = 1e-4,
                names: Sequence[str] = ("d_c", "K")) -> np.ndarray:
    """The central-difference Jacobian ∂ŝ/∂θ (K, p) used by the fit."""
    return _Problem(family, meas, names, setup, fd_step).dspectrum(np.asarray(theta, float))
