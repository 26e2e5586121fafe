"""The real MPI drive regime for the adaptive scheme (issue 11, item 4): case, observables, errors.

A line of magnetic moments 1 mm off the field-free-point axis, ``x`` in ``[-6, 6]`` mm, paper 002
Table-2-like constants ``alpha = 0.1``, ``gamma = 1.75e11 rad/(s T)``, no exchange, field (T)::

    B(x, t) = (G x + B_d sin(2 pi f t), -G y0 / 2, 0),   G = 2 T/m, B_d = 12 mT, f = 25 kHz,
    y0 = 1 mm

(with the field exactly collinear the reversal would pass an unstable equilibrium and no
reference would be meaningful).  Non-dimensionalised inside (:mod:`llgfem.physics`): field unit
``B_ref = B_d``, time unit ``1 / (gamma B_ref)`` (one period = ``gamma B_ref / f`` = 84 000
units), ``h = B / B_ref``, ``a1 = alpha``, ``a2 = -1`` (standard precession sense), ``x`` in mm.
Initial state ``m0 = (sign h_x(x, 0), 0.1, 0) / |.|``.

Observables at the step ends (P1, exact integrals ``int phi_j = l_j``, the lumped mass):

* the mean magnetisation ``<m>(t_n) = sum_j l_j m_j(t_n) / sum_j l_j``;
* the coil signal ``s(t_n) = -mu0 int p . m_t dx`` with ``p = e_x`` (dimensionless units).

Relative errors: ``max_n |q_n - q_ref,n|_inf / max_n |q_ref,n|_inf``.  With no exchange the
semi-discrete system is node by node the macrospin ODE ``m_t = rhs(m, h(x_j, t))``, so
:func:`nodal_reference` (SciPy DOP853, independent of PETSc and DOLFINx) is a second reference.

Notation: ``G`` gradient strength, ``B_d`` drive amplitude, ``f`` drive frequency, ``y0``
offset of the line from the axis, ``l_j`` lumped mass of node ``j``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import ufl
from dolfinx import fem, mesh

from llgfem.forms.llg import LLGCoefficients
from llgfem.physics import MU0
from llgfem.solvers.adaptive import AdaptiveLL, AdaptiveOptions

__all__ = ["DriveRegime", "coil_signal", "drive_problem", "mean_magnetisation",
           "nodal_reference", "relative_error"]


@dataclass(frozen=True)
class DriveRegime:
    """Constants of the drive regime (SI; ``half_width`` and ``offset`` in m)."""

    alpha: float = 0.1
    gamma: float = 1.75e11
    drive: float = 0.012
    frequency: float = 25e3
    gradient: float = 2.0
    offset: float = 1e-3
    half_width: float = 6e-3
    tilt: float = 0.1
    start: str = "equilibrium"
    phase: float = 0.5 * math.pi

    @property
    def period(self) -> float:
        """One drive period in time units ``1 / (gamma B_ref)``."""
        return self.gamma * self.drive / self.frequency

    def field(self, x_mm, t):
        """Dimensionless ``h`` at ``x`` (mm) and dimensionless time ``t`` (UFL or NumPy)."""
        sin = ufl.sin if isinstance(t, ufl.core.expr.Expr) else np.sin
        g = self.gradient * 1e-3 / self.drive  # per mm
        hx = g * x_mm + sin(2 * math.pi * t / self.period + self.phase)
        hy = -self.gradient * self.offset / (2 * self.drive)
        return hx, hy

    def initial_state(self, x_mm: np.ndarray) -> np.ndarray:
        """``m0`` at the nodes, shape ``(len(x), 3)``.

        ``start = "equilibrium"``: along the field at ``t = 0`` (the particles at rest in the
        selection field before the drive starts); ``"tilted"``: ``(sign h_x, tilt, 0)/|.|`` (the
        lead's prototype; adds a damped precession transient at the start).
        """
        m0 = np.zeros((len(x_mm), 3))
        hx, hy = self.field(x_mm, 0.0)
        if self.start == "equilibrium":
            m0[:, 0], m0[:, 1] = hx, hy
        elif self.start == "tilted":
            m0[:, 0] = np.where(x_mm >= 0, 1.0, -1.0)
            m0[:, 1] = self.tilt
        else:
            raise ValueError(f"DriveRegime.start: {self.start!r} is not 'equilibrium' or 'tilted'")
        return m0 / np.linalg.norm(m0, axis=1)[:, None]


def drive_problem(comm, cells: int, T: float | None = None,
                  options: AdaptiveOptions | None = None,
                  regime: DriveRegime = DriveRegime()) -> AdaptiveLL:
    """The drive case on ``cells`` P1 cells over ``[0, T]`` (default: one period)."""
    half = regime.half_width * 1e3
    msh = mesh.create_interval(comm, cells, [-half, half])
    V = fem.functionspace(msh, ("Lagrange", 1, (3,)))
    t = fem.Constant(msh, 0.0)
    x = ufl.SpatialCoordinate(msh)
    hx, hy = regime.field(x[0], t)
    coefficients = LLGCoefficients(
        a1=fem.Constant(msh, regime.alpha), a2=fem.Constant(msh, -1.0),
        exchange=fem.Constant(msh, 0.0), h=ufl.as_vector((hx, hy, 0.0)))
    n_nodes = V.dofmap.index_map.size_local
    x_nodes = V.tabulate_dof_coordinates()[:n_nodes, 0]
    m0 = regime.initial_state(x_nodes).ravel()
    return AdaptiveLL(V, coefficients, t, m0, regime.period if T is None else T, options)


def mean_magnetisation(problem: AdaptiveLL, m: np.ndarray) -> np.ndarray:
    """``<m>(t_n)``, shape ``(N+1, 3)``, of owned-dof trajectories ``m`` (global, all ranks)."""
    w = problem.lumped3
    local = (m * w).reshape(m.shape[0], -1, 3).sum(axis=1)
    total = problem.comm.allreduce(float(w.sum()) / 3.0)
    return problem.comm.allreduce(local) / total


def coil_signal(problem: AdaptiveLL, mdot: np.ndarray) -> np.ndarray:
    """``s(t_n) = -mu0 int e_x . m_t dx`` (global, all ranks), shape ``(N+1,)``."""
    w = problem.lumped3
    local = (mdot * w).reshape(mdot.shape[0], -1, 3)[:, :, 0].sum(axis=1)
    return -MU0 * problem.comm.allreduce(local)


def relative_error(q: np.ndarray, ref: np.ndarray) -> float:
    """``max |q - ref| / max |ref|`` over all entries."""
    return float(np.abs(q - ref).max() / np.abs(ref).max())


def nodal_reference(problem: AdaptiveLL, regime: DriveRegime = DriveRegime(),
                    rtol: float = 1e-10):
    """The nodal macrospin ODE on ``[0, T]`` solved by SciPy DOP853 (dense output).

    Valid without exchange (the lumped (m, H) system decouples node by node).  Returns
    ``evaluate(times) -> (m, m_t)``, owned arrays of shape ``(len(times), n)`` like the FEM
    trajectories.
    """
    from scipy.integrate import solve_ivp

    n_nodes = problem.n // 3
    x = problem.V.tabulate_dof_coordinates()[:n_nodes, 0]
    a1, a2 = problem.parameters()
    b1, b2 = a1 / (a1 * a1 + a2 * a2), a2 / (a1 * a1 + a2 * a2)

    def rhs(t, y):
        m = y.reshape(n_nodes, 3)
        hx, hy = regime.field(x, t)
        H = np.stack([hx, np.full_like(x, hy), np.zeros_like(x)], axis=1)
        mxh = np.cross(m, H)
        return (-b1 * np.cross(m, mxh) + b2 * mxh).ravel()

    sol = solve_ivp(rhs, (0.0, problem.T), problem.m0, method="DOP853", rtol=rtol,
                    atol=rtol, dense_output=True)

    def evaluate(times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m = sol.sol(np.asarray(times)).T
        return m, np.array([rhs(t, y) for t, y in zip(times, m)])

    return evaluate
