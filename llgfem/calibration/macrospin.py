r"""Vectorised macrospin LLG response per calibration position (the fitting model of
system-matrix calibration, :mod:`llgfem.calibration.system_matrix_fit`).

The same model as the ``llg`` particle model of the ``system_matrix`` job
(:mod:`llgfem.scanner.llg_model`): the particles of the voxel at ``x`` see the homogeneous
field ``B(x, t) = G x + B_drive(t) + B_off`` and are one macrospin ``|m| = 1`` obeying the
Landau-Lifshitz form of the LLG equation in the paper's parameters (paper 002, eq. (2)),
non-dimensionalised with ``tau = gamma_ref B_ref t`` and ``h = B / B_ref``:

.. math::  \frac{dm}{d\tau} = \frac{-a_1\, m \times (m \times h_e) + a_2\, m \times h_e}
                                {a_1^2 + a_2^2}, \qquad h_e = h + k\,(m \cdot e)\, e,

so that ``a1 = alpha gamma_ref / gamma``, ``a2 = -gamma_ref / gamma`` (``a = (alpha, -1)`` when
``gamma = gamma_ref``: the standard ``dm/dt = -gamma/(1+alpha^2) [m x B + alpha m x (m x B)]``)
and ``k = 2 K_u / (M_S B_ref)`` for a uniaxial easy axis ``e``.

Scheme: what differs from the ``system_matrix`` job's model (adaptive PETSc TS ARKIMEX on a
one-cell FEM mesh, about 1 s per position) is only the time integrator: here the L-stable,
second-order Rosenbrock method ROS2 (Verwer et al., SIAM J. Sci. Comput. 20 (1999))
with the exact Jacobian, on a FIXED grid of ``substeps`` steps per sample interval, run for all
positions and all parameter sets at once (NumPy arrays ``(S, P, 3)``)::

    (I - g h J) k1 = f(t_n, m_n) + g h f_t,
    (I - g h J) k2 = f(t_n + h, m_n + h k1) - 2 k1 - g h f_t,
    m_{n+1} = normalise(m_n + 3/2 h k1 + 1/2 h k2),        g = 1 + 1/sqrt(2),

(no Newton iteration, so the discrete response is a smooth function of ``a``: central finite
differences converge at second order, see the tests).  The run starts along ``B(x, t_0)``
``warmup`` sample intervals before the observed cycle (the transient decays within
nanoseconds) and records ``dm/dt`` (1/s) at the scanner's sample times ``t_n``.

Notation: ``S`` parameter sets, ``P`` positions, ``V`` samples per cycle, ``B_ref`` field unit
(the summed drive amplitudes, as in the ``llg`` model), ``gamma_ref`` the reference
gyromagnetic ratio, ``h`` the (dimensionless) step.
"""

from __future__ import annotations

import math

import numpy as np

from llgfem.scanner.fields import ScannerFields

__all__ = ["GAMMA_ROS2", "MacrospinModel"]

GAMMA_ROS2 = 1.0 + 1.0 / math.sqrt(2.0)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cross product of (..., 3) arrays (faster than np.cross for small arrays)."""
    return np.stack([a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1],
                     a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
                     a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]], axis=-1)


def _skew(v: np.ndarray) -> np.ndarray:
    """``[v]_x`` with ``[v]_x w = v x w``, shape (..., 3, 3)."""
    z = np.zeros(v.shape[:-1])
    return np.stack([np.stack([z, -v[..., 2], v[..., 1]], -1),
                     np.stack([v[..., 2], z, -v[..., 0]], -1),
                     np.stack([-v[..., 1], v[..., 0], z], -1)], -2)


class MacrospinModel:
    """The macrospin response ``dm/dt`` at the sample times for many positions and parameters.

    Args:
        scanner: the scanner fields (SI).
        positions: ``(P, 3)`` calibration positions (m).
        gamma_ref: reference gyromagnetic ratio (rad/(s T)) of the time unit.
        substeps: ROS2 steps per sample interval (>= 1).
        warmup: sample intervals integrated before the observed cycle.
        easy_axis: uniaxial easy axis (any non-zero 3-vector; normalised) or None.
    """

    def __init__(self, scanner: ScannerFields, positions: np.ndarray, gamma_ref: float,
                 substeps: int = 16, warmup: int | None = None, easy_axis=None):
        self.scanner = scanner
        self.positions = np.asarray(positions, float).reshape(-1, 3)
        self.gamma_ref = float(gamma_ref)
        self.substeps = int(substeps)
        v = scanner.num_samples
        self.warmup = int(math.ceil(0.25 * v)) if warmup is None else int(warmup)
        self.b_ref = float(np.abs(scanner.amplitudes).sum(axis=0).max()) or 1.0
        self.t_unit = 1.0 / (self.gamma_ref * self.b_ref)
        self.axis = (None if easy_axis is None or not np.any(easy_axis)
                     else np.asarray(easy_axis, float) / np.linalg.norm(easy_axis))
        self.static = scanner.static(self.positions) / self.b_ref  # (P, 3)

    @property
    def steps(self) -> int:
        """ROS2 steps per run (warm-up and the observed cycle)."""
        return (self.warmup + self.scanner.num_samples) * self.substeps

    def _field(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``u = h(x, t)`` (P, 3) and its first two derivatives in tau (x-independent)."""
        sc = self.scanner
        ph = 2 * np.pi * t * sc.frequencies + sc.phases
        w = 2 * np.pi * sc.frequencies * self.t_unit
        sine = sc.cfg.waveform == "sine"
        val, der = (np.sin(ph), np.cos(ph)) if sine else (np.cos(ph), -np.sin(ph))
        amp = sc.amplitudes / self.b_ref
        return self.static + val @ amp, (der * w) @ amp, -(val * w * w) @ amp

    @staticmethod
    def _direction(u, du, ddu):
        """``b = u/|u|`` and its first two derivatives."""
        r = np.linalg.norm(u, axis=-1, keepdims=True)
        b = u / r
        dr = np.sum(b * du, axis=-1, keepdims=True)
        db = (du - b * dr) / r
        ddr = np.sum(db * du + b * ddu, axis=-1, keepdims=True)
        ddb = (ddu - db * dr - b * ddr) / r - db * dr / r
        return b, db, ddb

    def _rhs(self, m, h, c1, c2, k):
        """``f = c1 m x (m x h_e) + c2 m x h_e`` and ``h_e``."""
        he = h if self.axis is None else h + (k * (m @ self.axis))[..., None] * self.axis
        mxh = _cross(m, he)
        return c1[..., None] * _cross(m, mxh) + c2[..., None] * mxh, he

    def _jacobians(self, m, he, c1, c2, k):
        """``J = df/dm`` and ``df/dh`` (..., 3, 3) at ``m`` with effective field ``he``."""
        eye = np.eye(3)
        mh = np.sum(m * he, axis=-1)[..., None, None]
        mm = np.sum(m * m, axis=-1)[..., None, None]
        outer = m[..., :, None] * m[..., None, :]
        dmmh_dh = outer - mm * eye  # d[m x (m x h)]/dh
        dmh_dh = _skew(m)  # d[m x h]/dh
        dmmh = (m[..., :, None] * he[..., None, :] + mh * eye
                - 2 * he[..., :, None] * m[..., None, :])
        dmh = -_skew(he)
        df_dh = c1[..., None, None] * dmmh_dh + c2[..., None, None] * dmh_dh
        jac = c1[..., None, None] * dmmh + c2[..., None, None] * dmh
        if self.axis is not None:
            jac = jac + (df_dh @ np.outer(self.axis, self.axis)) * k[..., None, None]
        return jac, df_dh

    def rates(self, a: np.ndarray) -> np.ndarray:
        """``dm/dt`` (1/s) at the sample times, shape ``(S, P, V, 3)``.

        Args:
            a: ``(S, n_a)`` parameter sets ``(a1, a2[, k])`` (``(n_a,)`` for one set).
        """
        a = np.atleast_2d(np.asarray(a, float))
        s_, p_ = a.shape[0], len(self.positions)
        den = a[:, 0] ** 2 + a[:, 1] ** 2
        shape = (s_, p_)
        c1 = np.broadcast_to((-a[:, 0] / den)[:, None], shape)
        c2 = np.broadcast_to((a[:, 1] / den)[:, None], shape)
        k = np.broadcast_to((a[:, 2] if a.shape[1] > 2 else np.zeros(s_))[:, None], shape)
        sc, v = self.scanner, self.scanner.num_samples
        dt = sc.cycle / v / self.substeps
        h = dt / self.t_unit
        t0 = -self.warmup * sc.cycle / v
        delta = np.zeros((s_, p_, 3))  # m = b + delta, started along the field
        out = np.empty((s_, p_, v, 3))
        g, eye = GAMMA_ROS2, np.eye(3)
        u, du, ddu = self._field(t0)
        b, db, ddb = self._direction(u, du, ddu)
        for n in range(self.steps):
            t = t0 + n * dt
            m = b + delta
            f, he = self._rhs(m, u, c1, c2, k)
            if n >= self.warmup * self.substeps and n % self.substeps == 0:
                out[:, :, n // self.substeps - self.warmup] = f / self.t_unit
            jac, df_dh = self._jacobians(m, he, c1, c2, k)
            inv = np.linalg.inv(eye - g * h * jac)
            gt = g * h * (df_dh @ du + np.einsum("...ij,...j->...i", jac, db) - ddb)
            k1 = np.einsum("...ij,...j->...i", inv, f - db + gt)
            u, du, ddu = self._field(t + dt)
            b, db, ddb = self._direction(u, du, ddu)
            f2, _ = self._rhs(b + delta + h * k1, u, c1, c2, k)
            k2 = np.einsum("...ij,...j->...i", inv, f2 - db - 2 * k1 - gt)
            m = b + delta + h * (1.5 * k1 + 0.5 * k2)
            delta = m / np.linalg.norm(m, axis=-1, keepdims=True) - b
        return out
