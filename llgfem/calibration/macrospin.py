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
with the exact Jacobian, run for all positions and all parameter sets at once (NumPy arrays
``(S, P, 3)``) on the remainder ``eta = m - q`` of a known part ``q = b + delta_1``: the field
direction ``b = B/|B|`` and the first-order adiabatic lag (the slow manifold of the linearised
equation, ``J(b) delta_1 = b'``)

.. math::  \delta_1 = \frac{-a_1\, b' + a_2\, b \times b'}{|h|},

both in closed form with their tau-derivatives (``delta_1''`` by a central difference of the
closed-form ``delta_1'``), so the time error is relative to ``eta = O(eps^2)``,
``eps = |b'| / |h|``, not to ``m`` (positions with ``max_t |b'|/|h|^2 >= ADIABATIC`` use
``q = b``)::

    (I - g h J) k1 = f(t_n, q_n + eta_n) - q'_n + g h d_t[f(t, q(t) + eta) - q'(t)],
    (I - g h J) k2 = f(t_{n+1}, q_{n+1} + eta_n + h k1) - q'_{n+1} - 2 k1 - g h d_t[...],
    m_{n+1} = normalise(q_{n+1} + eta_n + 3/2 h k1 + 1/2 h k2),     g = 1 + 1/sqrt(2).

Time grid: FIXED (independent of ``a``, so the discrete response is a smooth function of
``a`` and central finite differences converge at second order, see the tests) and graded:
sample interval ``n`` gets ``max(substeps, ceil(per_radian * theta_n))`` equal steps, where
``theta_n`` is the largest angle the field direction ``b(x, t)`` sweeps in that interval over
the ``grid_positions`` (default: the positions; the same on every rank), so the field-free-point
crossings (``b`` turns by ~pi within a small fraction of the cycle) are resolved and the rest of
the cycle costs one step per sample.  The run starts on ``q`` (normalised) ``warmup`` sample
intervals (default ``V/10``) before the observed cycle (the transient decays within
nanoseconds) and records ``dm/dt = f(m)`` (1/s) at the scanner's sample times ``t_n``.

Measured (12 positions 0.5 mm off the FFP line, 25 kHz, 12 mT, 100 samples, harmonics 1-40,
max error relative to the largest coefficient, against 320 steps per radian): uniform 16 steps
per sample on ``m - b`` (no ``delta_1``): 6.0e-3; graded 20 per radian, no ``delta_1``:
1.4e-2; with ``delta_1``: uniform 16 per sample 5.3e-4, graded 20 per radian 6.6e-4 (759 steps
per run), 40 per radian (the default) 1.8e-4 (1452 steps), 80 per radian 6.3e-5 (2822 steps).
(Integrating ``m`` itself, uniform 16 per sample: 6.0e-2 on 3 of the positions.)

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
ADIABATIC = 0.2  # largest |b'|/|h|^2 (tau units) at which the first-order lag is subtracted


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
        substeps: least ROS2 steps per sample interval (>= 1).
        warmup: sample intervals integrated before the observed cycle (default V/10).
        easy_axis: uniaxial easy axis (any non-zero 3-vector; normalised) or None.
        per_radian: steps per radian of field-direction sweep (the grading).
        grid_positions: positions that define the graded grid (default ``positions``).
    """

    def __init__(self, scanner: ScannerFields, positions: np.ndarray, gamma_ref: float,
                 substeps: int = 1, warmup: int | None = None, easy_axis=None,
                 per_radian: float = 40.0, grid_positions: np.ndarray | None = None):
        self.scanner = scanner
        self.positions = np.asarray(positions, float).reshape(-1, 3)
        self.gamma_ref = float(gamma_ref)
        self.substeps = int(substeps)
        v = scanner.num_samples
        self.warmup = int(math.ceil(0.1 * v)) if warmup is None else int(warmup)
        self.b_ref = float(np.abs(scanner.amplitudes).sum(axis=0).max()) or 1.0
        self.t_unit = 1.0 / (self.gamma_ref * self.b_ref)
        self.axis = (None if easy_axis is None or not np.any(easy_axis)
                     else np.asarray(easy_axis, float) / np.linalg.norm(easy_axis))
        self.static = scanner.static(self.positions) / self.b_ref  # (P, 3)
        self.per_radian = float(per_radian)
        self.intervals = self._graded(self.positions if grid_positions is None
                                      else np.asarray(grid_positions, float).reshape(-1, 3))
        self.adiabatic = (self._adiabaticity() < ADIABATIC).astype(float)[:, None]

    def _graded(self, positions: np.ndarray, probes: int = 32) -> np.ndarray:
        """Steps per sample interval (warm-up first): the field-direction sweep per interval."""
        sc, v = self.scanner, self.scanner.num_samples
        n = np.arange(-self.warmup, v)
        t = (n[:, None] + np.linspace(0.0, 1.0, probes + 1)[None, :]) * (sc.cycle / v)
        b = sc.field(positions, t.ravel()).reshape(len(positions), len(n), probes + 1, 3)
        b /= np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-300)
        dots = np.clip(np.sum(b[:, :, 1:] * b[:, :, :-1], axis=-1), -1.0, 1.0)
        theta = np.arccos(dots).sum(axis=-1).max(axis=0) if len(positions) else np.zeros(n.size)
        return np.maximum(self.substeps, np.ceil(self.per_radian * theta)).astype(int)

    def _adiabaticity(self, probes: int = 32) -> np.ndarray:
        """``max_t |b'| / |h|`` per position (tau units): the size of the first-order lag per
        unit ``a``; the lag ``delta_1`` is used where it is below :data:`ADIABATIC`."""
        sc, v = self.scanner, self.scanner.num_samples
        t = np.arange(-self.warmup * probes, v * probes + 1) * (sc.cycle / v / probes)
        u = self.static[:, None, :] + (sc.drive(t) / self.b_ref)[None]
        du = np.broadcast_to((sc.rate(t) / self.b_ref * self.t_unit)[None], u.shape)
        r = np.linalg.norm(u, axis=-1)
        b = u / np.maximum(r, 1e-300)[..., None]
        db = du - b * np.sum(b * du, axis=-1, keepdims=True)
        return (np.linalg.norm(db, axis=-1) / np.maximum(r, 1e-300) ** 2).max(axis=1)

    @property
    def steps(self) -> int:
        """ROS2 steps per run (warm-up and the observed cycle)."""
        return int(self.intervals.sum())

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
        a1, a2 = a[:, 0, None, None], a[:, 1, None, None]
        sc, v = self.scanner, self.scanner.num_samples
        interval = sc.cycle / v
        t = -self.warmup * interval
        known = self._known(t, a1, a2)
        eta = self._normalise(known[2]) - known[2]  # started on the first-order manifold
        out = np.empty((s_, p_, v, 3))
        for i, count in enumerate(self.intervals):
            if i >= self.warmup:
                f, _ = self._rhs(known[2] + eta, known[0], c1, c2, k)
                out[:, :, i - self.warmup] = f / self.t_unit
            dt = interval / count
            t_i = t
            for j in range(count):
                eta, known = self._step(t_i + j * dt, dt, eta, known, (c1, c2, k), (a1, a2))
            t = t_i + interval
        return out

    @staticmethod
    def _normalise(m):
        return m / np.linalg.norm(m, axis=-1, keepdims=True)

    def _lag(self, u, du, ddu, a1, a2):
        """First-order adiabatic lag ``delta_1 = (-a1 b' + a2 b x b')/|h|`` and its rate
        (zero at the positions that are not adiabatic, :attr:`adiabatic`)."""
        b, db, ddb = self._direction(u, du, ddu)
        r = np.linalg.norm(u, axis=-1, keepdims=True)
        dr = np.sum(b * du, axis=-1, keepdims=True)
        d1 = (-a1 * db + a2 * _cross(b, db)) / r * self.adiabatic
        dd1 = (-a1 * ddb + a2 * _cross(b, ddb)) / r * self.adiabatic - d1 * dr / r
        return d1, dd1

    def _known(self, t, a1, a2):
        """The field ``u``, ``du`` and the known part ``q = b + delta_1`` of ``m`` with its
        first two tau-derivatives (the second of ``delta_1`` by a central difference)."""
        u, du, ddu = self._field(t)
        b, db, ddb = self._direction(u, du, ddu)
        d1, dd1 = self._lag(u, du, ddu, a1, a2)
        eps = 1e-3 * self.scanner.cycle / self.scanner.num_samples
        plus = self._lag(*self._field(t + eps), a1, a2)[1]
        minus = self._lag(*self._field(t - eps), a1, a2)[1]
        ddd1 = (plus - minus) / (2 * eps / self.t_unit)
        return u, du, b + d1, db + dd1, ddb + ddd1

    def _step(self, t, dt, eta, known, coef, a12):
        """One ROS2 step of ``eta = m - q`` from ``t`` to ``t + dt`` (``known`` at ``t`` in,
        at ``t + dt`` out)."""
        g, h = GAMMA_ROS2, dt / self.t_unit
        c1, c2, k = coef
        u, du, q, dq, ddq = known
        m = q + eta
        f, he = self._rhs(m, u, c1, c2, k)
        jac, df_dh = self._jacobians(m, he, c1, c2, k)
        inv = np.linalg.inv(np.eye(3) - g * h * jac)
        gt = g * h * (df_dh @ du + np.einsum("...ij,...j->...i", jac, dq) - ddq)
        k1 = np.einsum("...ij,...j->...i", inv, f - dq + gt)
        known = self._known(t + dt, *a12)
        u, _, q, dq, _ = known
        f2, _ = self._rhs(q + eta + h * k1, u, c1, c2, k)
        k2 = np.einsum("...ij,...j->...i", inv, f2 - dq - 2 * k1 - gt)
        m = self._normalise(q + eta + h * (1.5 * k1 + 0.5 * k2))
        return m - q, known
