"""One LLG problem, built once: the object every forward run and inverse problem starts from.

An :class:`LLGProblem` holds the discretised model of paper 002 -- mesh and P1 space, time grid,
time scheme with its applied field, anisotropy and data (:class:`~llgfem.solvers.llg.LLGSolver`),
the initial state ``m0``, the observation operator ``K`` of eq. (5) (optional) and the reference
parameters ``a = (a1, a2)`` -- and offers the three sweeps with the parameters passed
explicitly::

    forward(a)               m = S(a)                   (the time stepping, eq. (6) or (2))
    linearised(a, m, da)     u = S'(a) da               (linearised steps, forward in time)
    adjoint(a, m, l)         g = S'(a)^T l, <l, u> = g . da   (transposed steps, backward (26)-(28))

The three come from the one step residual of the scheme (``forms/llg.py``; derivatives by
``ufl.derivative``/``ufl.diff``, :mod:`llgfem.solvers.step_derivatives`).  The operators of the
inverse problems (:class:`~llgfem.operators.reduced.ReducedOperator`,
:class:`~llgfem.operators.all_at_once.AllAtOnceOperator`) are thin adapters of this object to
the operator protocol.

Schemes (``scheme``): ``"midpoint"`` -- implicit midpoint on the Gilbert form (6) (the paper's);
``"bartels_prohl"`` -- the length-preserving Landau-Lifshitz form (2) with the nodal field as a
second block unknown (survives a field-free point); the L-stable adaptive scheme for physical
drive frequencies lives in :mod:`llgfem.solvers.adaptive`.

Identifiable parameters: ``a = (a1, a2)`` by default; ``parameters=("a1", "a2", "k")`` (a keyword
of :meth:`LLGProblem.create` and :meth:`LLGProblem.paper_case`, passed to the solver) adds the
anisotropy coefficient ``k`` as a third entry of ``a`` in all three sweeps (fixed-step schemes
only).

Notation: ``a = (a1, a2[, k])``; trajectories ``(n_t, n_owned)``; ``l`` loads on the levels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from llgfem.operators.observation import Coil, Concentration, Observation
from llgfem.paper_cases import PaperCase, paper_case, relative_error
from llgfem.physics import FieldSpec, LLGParameters, Units
from llgfem.solvers.llg import LLGSolver
from llgfem.spacetime import TimeGrid, create_vector_space, interpolate_levels

__all__ = ["SCHEMES", "AdaptiveProblem", "LLGProblem", "TimeScheme", "parameter_errors",
           "reference_parameters", "scheme_form"]

SCHEMES = {"midpoint": "gilbert", "bartels_prohl": "landau_lifshitz"}


@runtime_checkable
class TimeScheme(Protocol):
    """The one interface of the three LLG time schemes (parameters passed explicitly).

    ``state = forward(a)``; ``linearised(a, state, da)`` the tangent ``S'(a) da`` in the
    scheme's output (levels ``m`` of the fixed-step schemes; ``(m, m_t)`` at the accepted steps of
    the adaptive one); ``adjoint(a, state, loads)`` its exact transpose (shape ``(2,)``), so that
    ``<loads, linearised(a, state, da)> = adjoint(a, state, loads) . da``.
    """

    def forward(self, a=None, *args) -> Any: ...

    def linearised(self, a, state, da) -> Any: ...

    def adjoint(self, a, state, loads) -> np.ndarray: ...


def scheme_form(scheme: str) -> str:
    """The equation form (``gilbert`` / ``landau_lifshitz``) of a fixed-step scheme name."""
    if scheme not in SCHEMES:
        raise ValueError(f"scheme {scheme!r} is not one of {sorted(SCHEMES)}")
    return SCHEMES[scheme]


@dataclass
class LLGProblem:
    """The discretised LLG model with its observation (see module docstring).

    Attributes:
        solver: the time scheme on the space and grid (owns the PETSc objects).
        m0: owned dofs of the initial magnetisation.
        observation: the receive-coil observation ``K`` (None: no data, e.g. Remark 1).
        a: reference parameters (the true ones of a synthetic problem; default: the solver's).
        case: the Table 1 case, if the problem is one (exact solution, paper numbers).
        exact: ``(x, t) -> UFL vector`` of the exact solution, if known.
        units: the SI units of a physical problem (its solver works in dimensionless units).
    """

    solver: LLGSolver
    m0: np.ndarray
    observation: Observation | None = None
    a: np.ndarray | None = None
    case: PaperCase | None = None
    exact: Callable | None = None
    units: Units | None = None

    def __post_init__(self):
        self.a = self.solver.parameters if self.a is None else np.asarray(self.a, dtype=float)
        self.m0 = np.asarray(self.m0, dtype=float)

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def paper_case(cls, number: int, mesh, *, T: float = 0.2, n_t: int = 51,
                   observe: bool = False, scheme: str = "midpoint",
                   theta: float = 0.5, parameters: tuple[str, ...] = ("a1", "a2")) -> LLGProblem:
        """Test ``number`` of paper 002, Table 1, on ``mesh`` (``observe``: the §4.3 coil
        ``a~ = 1``, ``c = 1``, ``p = (1, 1, 1)``, ``mu0 = 1`` of Table 3)."""
        case = paper_case(number)
        V = create_vector_space(mesh)
        grid = TimeGrid(T, n_t)
        solver = LLGSolver(V, grid, case.params, case.field, g=case.g, form=scheme_form(scheme),
                           theta=theta, parameters=parameters)
        obs = paper_observation(V, grid) if observe else None
        m0 = interpolate_levels(V, case.exact_np, [0.0])[0]
        return cls(solver, m0, obs, reference_parameters(case.params, solver.parameter_names),
                   case, case.exact_ufl)

    @classmethod
    def create(cls, mesh, grid: TimeGrid, params: LLGParameters, field: FieldSpec | None,
               m0: Callable | np.ndarray, observation: Observation | None = None, *,
               scheme: str = "midpoint", **solver_options) -> LLGProblem:
        """A problem on ``mesh`` from its pieces (``m0`` an array of owned dofs or a NumPy
        callable ``x -> (3, n)``; ``solver_options`` go to :class:`LLGSolver`, e.g.
        ``parameters=("a1", "a2", "k")``)."""
        V = create_vector_space(mesh)
        solver = LLGSolver(V, grid, params, field, form=scheme_form(scheme), **solver_options)
        if callable(m0):
            m0 = interpolate_levels(V, lambda x, t: m0(x), [0.0])[0]
        return cls(solver, np.asarray(m0, dtype=float), observation,
                   reference_parameters(params, solver.parameter_names))

    # -- geometry ---------------------------------------------------------------------------
    @property
    def V(self):
        return self.solver.V

    @property
    def grid(self) -> TimeGrid:
        return self.solver.grid

    @property
    def comm(self):
        return self.solver.comm

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """The names of the entries of ``a``: ``("a1", "a2")`` or ``("a1", "a2", "k")``."""
        return self.solver.parameter_names

    @property
    def scheme(self) -> str:
        return {v: k for k, v in SCHEMES.items()}[self.solver.form]

    # -- the three sweeps -------------------------------------------------------------------
    def forward(self, a=None, warm_start: np.ndarray | None = None) -> np.ndarray:
        """``m = S(a)`` (``a`` defaults to the reference parameters)."""
        return self.solver.forward(self.a if a is None else a, self.m0, warm_start)

    def linearised(self, a, m: np.ndarray, da: np.ndarray) -> np.ndarray:
        """``S'(a) da_j`` for the columns of ``da`` (shape ``(p, k)`` or ``(p,)``, ``p`` the
        number of parameters)."""
        da = np.asarray(da, dtype=float)
        u = self.solver.linearised(a, m, da.reshape(len(self.parameter_names), -1))
        return u if da.ndim == 2 else u[0]

    def adjoint(self, a, m: np.ndarray, loads: np.ndarray) -> np.ndarray:
        """``S'(a)^T l`` (replicated, shape ``(p,)``)."""
        return self.solver.adjoint(a, m, loads)

    def observe(self, m: np.ndarray) -> np.ndarray:
        """The signals ``K m_t`` of a trajectory, ``(K, L, n_t - 1)``."""
        if self.observation is None:
            raise ValueError("LLGProblem.observe: the problem has no observation")
        return self.observation.apply(m)

    def relative_error(self, m: np.ndarray) -> float:
        """L2(0,T;L2) relative error against the exact solution (paper cases)."""
        if self.exact is None:
            raise ValueError("LLGProblem.relative_error: no exact solution known")
        return relative_error(self.V, self.grid, m, self.exact)

    def destroy(self) -> None:
        """Free the solver's derivative objects (collective)."""
        self.solver.destroy()


def reference_parameters(params: LLGParameters, names: tuple[str, ...]) -> np.ndarray:
    """The entries ``names`` (``a1``, ``a2``, ``k`` = anisotropy) of ``params`` as an array."""
    values = {"a1": params.a1, "a2": params.a2, "k": params.anisotropy}
    return np.array([values[name] for name in names], dtype=float)


def paper_observation(V, grid: TimeGrid) -> Observation:
    """The §4.3 observation of paper 002: ``mu0 = 1``, ``a~ = 1``, ``c = 1``, ``p = (1, 1, 1)``."""
    return Observation(V, grid, [Concentration(1.0)],
                       [Coil((1.0, 1.0, 1.0), ("constant", 1.0), "p111")], mu0=1.0)


def parameter_errors(a, a_true) -> tuple[float, float]:
    """``e_ai = |a_i - a_i^true| / |a_i^true|`` (the absolute error where ``a_i^true = 0``):
    the one error definition of every identification job."""
    return tuple(float(abs(x - t) / (abs(t) if t != 0 else 1.0)) for x, t in zip(a, a_true))


class AdaptiveProblem:
    """The L-stable adaptive scheme (:class:`~llgfem.solvers.adaptive.AdaptiveLL`, PETSc TS
    ARKIMEX) behind the :class:`TimeScheme` interface.

    The first :meth:`forward` lets the TS choose (and then freezes) the step sequence; every
    evaluation is the replay of the ESDIRK stages on that sequence, so ``a -> state`` is smooth
    and :meth:`linearised`/:meth:`adjoint` are its exact derivative and transpose.  ``state`` is
    an :class:`~llgfem.solvers.esdirk.AdaptiveTrajectory`; the outputs are ``(m, m_t)`` at the
    accepted steps and ``loads = (r_m, r_mt)`` of the same shapes.
    """

    def __init__(self, solver):
        self.solver = solver
        self.times: np.ndarray | None = None

    def forward(self, a=None, *args):
        if self.times is None:
            self.times = self.solver.forward(a).times
        return self.solver.replay(self.times, a)

    def linearised(self, a, state, da):
        return self.solver.tangent(state, np.asarray(da, dtype=float))

    def adjoint(self, a, state, loads) -> np.ndarray:
        return self.solver.adjoint(state, *loads)
