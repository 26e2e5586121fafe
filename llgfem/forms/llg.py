"""Pure UFL forms of the LLG equation (paper 002, eqs. (6), (39); SPEC §1).

Strong form (unit magnetisation, scaled as in :mod:`llgfem.physics`)::

    a1 m_t - a2 m x m_t - c Laplace m - c |grad m|^2 m - h_eff + (m . h_eff) m - f = 0,
    c dm/dn = c g on the boundary,    h_eff = h + k (m . e) e.

Weak residual tested with ``v`` (the Neumann datum enters through the boundary term)::

    R(m, m_t; v) = (a1 m_t - a2 m x m_t, v) + c (grad m, grad v) - c (|grad m|^2 m, v)
                   - (h_eff, v) + ((m . h_eff) m, v) - (f, v) - c <g, v>_boundary.

Time discretisation (implicit midpoint, second order): on step n, with
``m_bar = (m_n + m_{n+1})/2`` and ``D m = (m_{n+1} - m_n)/dt`` and data at ``t_{n+1/2}``,
``R_n = R(m_bar, D m; v)``.  The forward solver sets ``R_n = 0`` step by step (Newton); the
all-at-once operator uses the same ``R_n`` as its model residual, so both settings discretise
one equation.  Jacobians come from ``ufl.derivative`` of this one form.

Notation: ``m0, m1`` the levels ``m_n, m_{n+1}``; ``a1, a2, c, k`` coefficients (UFL Constants
or floats); ``h, f, g`` UFL expressions at the midpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ufl

__all__ = ["LLGCoefficients", "ll_residuals", "ll_step_residuals", "llg_residual",
           "llg_residual_terms", "llg_step_residual"]


@dataclass(frozen=True)
class LLGCoefficients:
    """The UFL objects entering the residual (Constants, Functions or expressions)."""

    a1: Any
    a2: Any
    exchange: Any = 1.0
    h: Any = None
    f: Any = None
    g: Any = None
    anisotropy: Any = 0.0
    easy_axis: Any = None


def llg_residual_terms(m, mt, v, c: LLGCoefficients, ds=None) -> dict[str, ufl.Form]:
    """The residual R(m, m_t; v) split into named terms (their sum is the residual).

    Splitting lets callers measure each term's size, e.g. for relative residuals.
    """
    zero = ufl.as_vector((0.0, 0.0, 0.0))
    h = c.h if c.h is not None else zero
    if c.easy_axis is not None:
        e = ufl.as_vector(c.easy_axis)
        h = h + c.anisotropy * ufl.dot(m, e) * e
    integrands = {
        "damping": c.a1 * ufl.inner(mt, v),
        "gyro": -c.a2 * ufl.inner(ufl.cross(m, mt), v),
        "exchange": c.exchange * ufl.inner(ufl.grad(m), ufl.grad(v)),
        "gradient_sq": -c.exchange * ufl.inner(ufl.grad(m), ufl.grad(m)) * ufl.inner(m, v),
        "field": -ufl.inner(h, v),
        "projection": ufl.dot(m, h) * ufl.inner(m, v),
    }
    if c.f is not None:
        integrands["source"] = -ufl.inner(c.f, v)
    zero_type = ufl.constantvalue.Zero
    terms = {k: e * ufl.dx for k, e in integrands.items() if not isinstance(e, zero_type)}
    if c.g is not None:
        terms["neumann"] = -c.exchange * ufl.inner(c.g, v) * (ds or ufl.ds)
    return terms


def llg_residual(m, mt, v, c: LLGCoefficients, ds=None) -> ufl.Form:
    """The Gilbert-form residual ``R(m, m_t; v)`` (eq. (6)) as one form (method of lines)."""
    return sum(llg_residual_terms(m, mt, v, c, ds).values())


def llg_step_residual(m0, m1, v, dt, c: LLGCoefficients, ds=None,
                      theta: float = 0.5) -> ufl.Form:
    """Residual ``R_n(m_n, m_{n+1}; v)`` of one step: implicit midpoint for ``theta = 1/2``.

    ``theta = 1`` gives backward Euler (first order, L-stable: for very stiff physical
    relaxation); data must then be evaluated at ``t_n + theta dt``.
    """
    m_bar = (1.0 - theta) * m0 + theta * m1
    return llg_residual(m_bar, (m1 - m0) / dt, v, c, ds)


def ll_residuals(m, mt, H, v, w, c: LLGCoefficients) -> tuple[ufl.Form, ufl.Form]:
    """Landau-Lifshitz form (paper 002, eq. (2)) as a DAE in ``(m, H)`` (method of lines).

    With ``|m| = 1``, (6) is equivalent to ``m_t = -b1 m x (m x H) + b2 m x H`` with
    ``H = c Laplace m + h_eff`` and ``b_i = a_i / (a1^2 + a2^2)``.  ``H`` is a second unknown, the
    nodal discrete field (lumped mass ``(., .)_L``, Neumann data 0)::

        F_m = (m_t + b1 m x (m x H) - b2 m x H, v)_L                   (differential)
        F_H = (H - h_eff(m), w)_L + c (grad m, grad w)                  (algebraic)

    Node by node ``F_m = 0`` gives ``m_t . m = 0``.  Time schemes evaluate these residuals at
    their stage values: :func:`ll_step_residuals` (Bartels-Prohl, midpoint) and the adaptive
    TS schemes of :mod:`llgfem.solvers.adaptive`.

    Returns:
        ``(F_m, F_H)`` tested with ``v`` and ``w``.
    """
    h = c.h if c.h is not None else ufl.as_vector((0.0, 0.0, 0.0))
    if c.easy_axis is not None:
        e = ufl.as_vector(c.easy_axis)
        h = h + c.anisotropy * ufl.dot(m, e) * e
    s = c.a1 * c.a1 + c.a2 * c.a2
    lumped = ufl.Measure("dx", metadata={"quadrature_rule": "vertex", "quadrature_degree": 1})
    rhs = (-c.a1 * ufl.cross(m, ufl.cross(m, H)) + c.a2 * ufl.cross(m, H)) / s
    step = ufl.inner(mt - rhs, v) * lumped
    field = (ufl.inner(H - h, w) * lumped
             + c.exchange * ufl.inner(ufl.grad(m), ufl.grad(w)) * ufl.dx)
    return step, field


def ll_step_residuals(m0, m1, H, v, w, dt, c: LLGCoefficients,
                      theta: float = 0.5) -> tuple[ufl.Form, ufl.Form]:
    """One step of the Landau-Lifshitz DAE :func:`ll_residuals`: the Bartels-Prohl scheme.

    Evaluated at ``m_bar = (1 - theta) m_n + theta m_{n+1}`` with ``m_t = (m_{n+1} - m_n)/dt``;
    for ``theta = 1/2`` (implicit midpoint) ``m_t . m_bar = 0`` node by node, so the scheme
    preserves ``|m_j|`` exactly (unlike the Gilbert form (6), whose length mode
    ``a1 rho_t / 2 = Laplace rho / 2 - (rho - 1)(m.h - |grad m|^2)``, ``rho = |m|^2``, is unstable
    where ``m.h < |grad m|^2``).

    Returns:
        The residuals tested with ``v`` (the step) and ``w`` (the field equation).
    """
    m_bar = (1.0 - theta) * m0 + theta * m1
    return ll_residuals(m_bar, (m1 - m0) / dt, H, v, w, c)
