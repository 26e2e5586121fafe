"""The three LLG time schemes behind one interface (``problem.TimeScheme``, issue 11 item 2).

For implicit midpoint (Gilbert form), Bartels-Prohl (Landau-Lifshitz form) and the adaptive
ESDIRK scheme (PETSc TS ARKIMEX, frozen step sequence), one generic check through
``forward(a)``, ``linearised(a, state, da)``, ``adjoint(a, state, loads)``:

* dot test ``<loads, S'(a) da> = S'(a)^T loads . da`` to <= 1e-10 relative;
* Taylor test of ``a -> S(a)``: slope 2.00 +- 0.05;

with uniaxial anisotropy and a field that rotates in time (item 5).
"""

import dolfinx.mesh as dm
import numpy as np
import pytest
import ufl
from dolfinx import fem
from mpi4py import MPI

from llgfem.forms.llg import LLGCoefficients
from llgfem.physics import FieldSpec, LLGParameters
from llgfem.problem import AdaptiveProblem, LLGProblem, TimeScheme
from llgfem.solvers.adaptive import AdaptiveLL, AdaptiveOptions
from llgfem.spacetime import TimeGrid
from llgfem.verification import taylor_test

COMM = MPI.COMM_WORLD
A = np.array([0.5, -1.0])
DA = np.array([0.05, -0.08])


def m0_fn(x):
    v = np.vstack([np.cos(x[0]), np.sin(x[0]), 0.2 + 0 * x[0]])
    return v / np.linalg.norm(v, axis=0)


def fixed_step(scheme: str) -> LLGProblem:
    mesh = dm.create_interval(COMM, 8, [-1.0, 1.0])
    field = FieldSpec(kind="expression",
                      expression=lambda x, t: (x[0] + ufl.sin(0.4 * np.pi * t), 0.3,
                                               0.2 * ufl.cos(t)))
    params = LLGParameters(a1=A[0], a2=A[1], exchange=0.01, anisotropy=0.4,
                           easy_axis=(0.0, 0.6, 0.8))
    return LLGProblem.create(mesh, TimeGrid(1.0, 9), params, field, m0_fn, scheme=scheme)


def adaptive() -> AdaptiveProblem:
    mesh = dm.create_interval(COMM, 8, [-1.0, 1.0])
    V = fem.functionspace(mesh, ("Lagrange", 1, (3,)))
    t = fem.Constant(mesh, 0.0)
    x = ufl.SpatialCoordinate(mesh)
    c = LLGCoefficients(a1=fem.Constant(mesh, A[0]), a2=fem.Constant(mesh, A[1]),
                        exchange=fem.Constant(mesh, 0.01),
                        h=ufl.as_vector((x[0] + ufl.sin(0.4 * np.pi * t), 0.3,
                                         0.2 * ufl.cos(t))),
                        anisotropy=fem.Constant(mesh, 0.4), easy_axis=(0.0, 0.6, 0.8))
    m0 = fem.Function(V)
    m0.interpolate(m0_fn)
    n = V.dofmap.index_map.size_local * 3
    return AdaptiveProblem(AdaptiveLL(V, c, t, m0.x.array[:n].copy(), 1.0,
                                      AdaptiveOptions(rtol=1e-6)))


def flat(out) -> np.ndarray:
    return np.concatenate([np.ravel(p) for p in out]) if isinstance(out, tuple) else out.ravel()


def inner(x, y) -> float:
    return COMM.allreduce(float(np.dot(x, y)))


@pytest.mark.parametrize("build", [lambda: fixed_step("midpoint"),
                                   lambda: fixed_step("bartels_prohl"), adaptive],
                         ids=["midpoint", "bartels_prohl", "adaptive"])
def test_one_interface_exact_derivatives(build):
    scheme = build()
    assert isinstance(scheme, TimeScheme)
    state = scheme.forward(A)
    tangent = scheme.linearised(A, state, DA)
    rng = np.random.default_rng(3 + COMM.rank)
    if isinstance(tangent, tuple):
        loads = tuple(rng.standard_normal(p.shape) for p in tangent)
    else:
        loads = rng.standard_normal(tangent.shape)
    lhs = inner(flat(loads), flat(tangent))
    rhs = float(scheme.adjoint(A, state, loads) @ DA)
    assert abs(lhs - rhs) <= 1e-10 * max(abs(lhs), abs(rhs))

    def F(a):
        out = scheme.forward(a)
        return flat((out.m, out.mdot)) if hasattr(out, "mdot") else flat(out)

    t = taylor_test(F, lambda d: flat(scheme.linearised(A, state, d)), A, DA,
                    lambda y: np.sqrt(inner(y, y)), eps=(1.0, 0.5, 0.25, 0.125))
    assert abs(t.slopes1[-1] - 2.0) < 0.05, t.slopes1
    if hasattr(scheme, "destroy"):
        scheme.destroy()
