"""Pure UFL forms of the heat-type problems (paper 002, eqs. (18), (19), (21)).

    forward heat   (18):  z_t - Laplace z = v,   dz/dn = 0,  z(0) = 0
    backward heat  (19): -v_t - Laplace v = f,   dv/dn = 0,  v(T) = g
    elliptic       (21):  -Laplace y + y = w,    dy/dn = 0   (every time level)

All three are built from the mass form ``m(u, w) = (u, w)`` and the stiffness form
``a(u, w) = (grad u, grad w)`` of the (vector) space ``V``; homogeneous Neumann conditions are
natural.  The time stepping (Crank-Nicolson) combines the assembled matrices in
:mod:`llgfem.solvers.heat`.  No PETSc objects are created here.
"""

from __future__ import annotations

import ufl

__all__ = ["elliptic_form", "load_form", "mass_form", "stiffness_form"]


def mass_form(V) -> ufl.Form:
    """``(u, w)`` on ``V``."""
    u, w = ufl.TrialFunction(V), ufl.TestFunction(V)
    return ufl.inner(u, w) * ufl.dx


def stiffness_form(V) -> ufl.Form:
    """``(grad u, grad w)`` on ``V`` (Neumann Laplacian)."""
    u, w = ufl.TrialFunction(V), ufl.TestFunction(V)
    return ufl.inner(ufl.grad(u), ufl.grad(w)) * ufl.dx


def elliptic_form(V) -> ufl.Form:
    """``(grad u, grad w) + (u, w)``: the operator of (21)."""
    return stiffness_form(V) + mass_form(V)


def load_form(V, f, g=None, ds=None) -> ufl.Form:
    """``(f, w) + (g, w)_{boundary}`` for a source ``f`` and Neumann data ``g``."""
    w = ufl.TestFunction(V)
    L = ufl.inner(f, w) * ufl.dx
    if g is not None:
        L += ufl.inner(g, w) * (ds or ufl.ds)
    return L
