"""The LLG forward solver: implicit midpoint in time, Newton (PETSc SNES) per step.

Solves ``R_n(m_n, m_{n+1}; v) = 0`` for n = 0..N-1 (see :mod:`llgfem.forms.llg`), i.e. the
parameter-to-state map ``S(a)`` of paper 002 §2.2.1, on the uniform grid of ``n_t`` levels.
The Jacobian is ``ufl.derivative`` of the residual; SNES (Newton line search ``basic``) with the
linear solver preset of :mod:`llgfem.solvers.linear` under the prefix ``llgfem_llg_newton_``.

Quadrature: each term of the Gilbert residual is integrated with its own exact degree
(:func:`exact_degree_step_residual`; UFL would use the largest for all), the kernels are
compiled with :data:`KERNEL_JIT_OPTIONS`.  :meth:`LLGSolver.forward_linearised` computes the
trajectory and its sensitivities in one sweep (a chord iteration on the step Jacobian that the
linearised step needs anyway).

The same compiled residual evaluates the *space-time residual* ``(R_n)_n`` of any trajectory
(:meth:`LLGSolver.space_time_residual`): the all-at-once model residual, which vanishes (to the
Newton tolerance) on the trajectories this solver returns.

Identifiable parameters (``parameters``): ``a = (a1, a2)`` by default; ``("a1", "a2", "k")``
adds the anisotropy coefficient ``k`` of the uniaxial field ``k (m . e) e`` as a third
``ufl.variable``, so ``dR_n/dk`` (and with it the linearised and adjoint sweeps) comes from the
same residual by ``ufl.diff``.

Notation: ``m`` trajectory ``(n_t, n_owned)``; ``a = (a1, a2[, k])``; ``h`` applied field; ``f``
source; ``g`` Neumann datum (``dm/dn = g``), both callables ``(x, t, n) -> UFL vector`` of the
spatial coordinate, a time Constant and the facet normal.
"""

from __future__ import annotations

from collections.abc import Callable

import dolfinx.fem as fem
import dolfinx.fem.petsc as fem_petsc
import numpy as np
import ufl
from mpi4py import MPI

from llgfem.forms.llg import (
    LLGCoefficients,
    ll_step_residuals,
    llg_residual_terms,
)
from llgfem.physics import FieldSpec, LLGParameters, applied_field
from llgfem.solvers.linear import SolverError, apply_options, preset_options
from llgfem.solvers.step_derivatives import StepDerivatives
from llgfem.spacetime import TimeGrid, array_to_function, n_owned

__all__ = ["KERNEL_JIT_OPTIONS", "PARAMETER_NAMES", "LLGSolver", "VectorAssembler",
           "assemble_owned", "check_parameter_names", "exact_degree_step_residual",
           "llg_space_time_residual", "newton_linear_options"]

DataFn = Callable[..., object]

PARAMETER_NAMES = (("a1", "a2"), ("a1", "a2", "k"))  # the identifiable parameter sets


def check_parameter_names(parameters) -> tuple[str, ...]:
    """``parameters`` as a tuple, one of :data:`PARAMETER_NAMES` (ValueError otherwise)."""
    names = tuple(parameters)
    if names not in PARAMETER_NAMES:
        raise ValueError(f"parameters must be one of {[list(p) for p in PARAMETER_NAMES]}, "
                         f"got {list(names)}")
    return names


#: JIT options of the LLG kernels: ``-O3 -ffast-math`` (the FFCx kernels of the LLG forms
#: are long straight-line floating-point code; fast-math lets the compiler reassociate and
#: vectorise it).  Measured on the 56 673-vertex phantom, one rank, CPU seconds per assembly:
#: residual 0.21 -> 0.13, step Jacobian 1.52 -> 1.36 (both with per-term quadrature).  It
#: changes rounding only (the derivative and dot-product tests hold unchanged); the flags are
#: part of the JIT cache key and the kernels are compiled once (rank 0) for all ranks.
#: ``-march=native`` is left out: a shared cache on a cluster with mixed CPUs would break.
KERNEL_JIT_OPTIONS = {"cffi_extra_compile_args": ["-O3", "-ffast-math", "-g0"]}

#: Relative residual of the iterative step solves inside the chord iteration of
#: :meth:`LLGSolver.forward_linearised` (the Newton preset uses 1e-10, the linearised and
#: adjoint solves 1e-12).
CHORD_KSP_RTOL = 1e-6

#: Terms of the Gilbert residual that depend on ``m`` and the coefficients only (no data
#: ``h, f, g``): on affine simplices their integrands are polynomials of known degree.
STATE_TERMS = ("damping", "gyro", "exchange", "gradient_sq")


def exact_degree_step_residual(m0, m1, v, dt, c: LLGCoefficients,
                               theta: float = 0.5) -> ufl.Form:
    """The step residual ``R_n`` of :func:`llgfem.forms.llg.llg_step_residual`, each term with
    its own quadrature degree: the same form up to rounding, at a fraction of the cost.

    UFL merges all cell terms into one integral and integrates it with the largest estimated
    degree (4: the projection term ``(m . h)(m . v)`` with the linear FFP field), i.e. 14
    points per tetrahedron even for the exchange term (degree 0) and the mass-type terms
    (degree 2, 3).  On affine simplices the state terms (:data:`STATE_TERMS`) are polynomials
    of P1 functions, so a rule of their own (estimated, exact) degree integrates them exactly,
    as the degree-4 rule did: the form is unchanged up to rounding (measured ~1e-15 relative in
    the Jacobians).  The data terms (``h``, ``f``; possibly non-polynomial) keep the degree of
    the merged integral, boundary terms keep theirs.  Measured: the Jacobian assembly on the
    56 673-vertex phantom 3.0 s -> 1.6 s (one rank, default JIT flags).  Other cells (curved
    or non-simplex): the merged form.
    """
    from ufl.algorithms import estimate_total_polynomial_degree

    m_bar = (1.0 - theta) * m0 + theta * m1
    terms = llg_residual_terms(m_bar, (m1 - m0) / dt, v, c)
    mesh = m0.function_space.mesh
    affine_simplex = (mesh.geometry.cmaps[0].degree == 1
                      and mesh.topology.cell_name() in ("interval", "triangle", "tetrahedron"))
    if not affine_simplex:
        return sum(terms.values())
    cell = [i for t in terms.values() for i in t.integrals() if i.integral_type() == "cell"]
    merged = max(estimate_total_polynomial_degree(i.integrand()) for i in cell)
    integrals = []
    for name, term in terms.items():
        for itg in term.integrals():
            if itg.integral_type() != "cell" or itg.metadata():
                integrals.append(itg)
                continue
            degree = (estimate_total_polynomial_degree(itg.integrand()) if name in STATE_TERMS
                      else merged)
            integrals.append(itg.reconstruct(metadata={"quadrature_degree": int(degree)}))
    return ufl.Form(integrals)


def assemble_owned(form: fem.Form) -> np.ndarray:
    """Assemble a linear form and return the owned entries (ghost contributions summed)."""
    return VectorAssembler(form)()


def _add_mode():
    from dolfinx.la import InsertMode

    return InsertMode.add


class VectorAssembler:
    """Repeated assembly of one linear form into preallocated storage (low Python overhead).

    Calls the C++ assembler directly with freshly packed constants and coefficients, so it sees
    the current values of every Function/Constant in the form.
    """

    def __init__(self, form: fem.Form):
        import dolfinx.la

        self.form = form
        V = form.function_spaces[0]
        imap, bs = V.dofmap.index_map, V.dofmap.index_map_bs
        self.vec = dolfinx.la.vector(imap, bs)
        self.n = imap.size_local * bs

    def __call__(self, out: np.ndarray | None = None) -> np.ndarray:
        from dolfinx import cpp

        b, cpp_form = self.vec.array, self.form._cpp_object
        b[:] = 0.0
        cpp.fem.assemble_vector(b, cpp_form, cpp.fem.pack_constants(cpp_form),
                                cpp.fem.pack_coefficients(cpp_form))
        self.vec.scatter_reverse(_add_mode())
        if out is None:
            return b[: self.n].copy()
        out[:] = b[: self.n]
        return out


def newton_linear_options(kind: str, V, blocks: int, comm_size: int) -> dict:
    """The linear solver preset of the Newton steps (:func:`~llgfem.solvers.linear.preset_options`
    for a non-symmetric Jacobian that changes every iteration).

    The iterative preset solves to a relative residual of 1e-10 (the Newton tolerance is
    relative to the first residual, so the solve need not be tighter).  The Landau-Lifshitz
    (m, H) block system uses the same rules as the Gilbert form on every rank count (it used to
    force MUMPS on one rank; PETSc's own LU measured 2.0 instead of 2.66 Newton iterations per
    step in half the time on a 1-D strip).
    """
    n_global = V.dofmap.index_map.size_global * V.dofmap.index_map_bs * blocks
    opts = preset_options(kind, n_global, comm_size, tdim=V.mesh.topology.dim,
                          symmetric=False, reuse=False)
    if opts["ksp_type"] != "preonly":
        opts["ksp_rtol"] = 1e-10
    return opts


class LLGSolver:
    """Implicit-midpoint Newton time stepping for the LLG equation on ``V`` and ``grid``.

    Args:
        V: vector P1 space (3 components).
        theta: 1/2 implicit midpoint (default, second order); 1 backward Euler.
        form: ``gilbert`` (eq. (6), the residual of the inverse problems) or
            ``landau_lifshitz`` (eq. (2), length-preserving; homogeneous Neumann, no source).
        grid: time grid.
        params: a1, a2, exchange, anisotropy.
        field: the applied field h(x, t) (None = zero).
        f: optional source ``f(x, t, n)`` (UFL).
        g: optional Neumann datum ``g(x, t, n)`` (UFL).
        linear: linear solver preset (``auto``, ``direct``, ``iterative``) for the Newton steps
            and the linearised/adjoint step solves (:func:`newton_linear_options`).
        rtol, atol, max_it: SNES tolerances.
        prefix: PETSc options prefix of the SNES.
        parameters: the identifiable parameters, ``("a1", "a2")`` (default) or
            ``("a1", "a2", "k")`` (adds the anisotropy coefficient; ``params.easy_axis`` is then
            used even when ``params.anisotropy = 0``).
        jit_options: DOLFINx JIT options of every LLG form (None: :data:`KERNEL_JIT_OPTIONS`;
            ``{}``: DOLFINx's defaults, ``-O2``).
    """

    def __init__(self, V, grid: TimeGrid, params: LLGParameters, field: FieldSpec | None = None,
                 *, f: DataFn | None = None, g: DataFn | None = None, linear: str = "auto",
                 rtol: float = 1e-11, atol: float = 1e-50, max_it: int = 30,
                 theta: float = 0.5, form: str = "gilbert",
                 prefix: str = "llgfem_llg_newton_",
                 parameters: tuple[str, ...] = ("a1", "a2"),
                 jit_options: dict | None = None):
        params.validate()
        self.jit_options = dict(KERNEL_JIT_OPTIONS if jit_options is None else jit_options)
        self.parameter_names = check_parameter_names(parameters)
        self.V, self.grid, self.params = V, grid, params
        self.linear = linear  # the preset of the Newton and of the linearised/adjoint solves
        mesh = V.mesh
        self.comm = mesh.comm
        self.n = n_owned(V)
        self.m0, self.m1 = fem.Function(V, name="m_n"), fem.Function(V, name="m")
        self.t = fem.Constant(mesh, 0.0)
        self.a1 = fem.Constant(mesh, float(params.a1))
        self.a2 = fem.Constant(mesh, float(params.a2))
        # the parameters enter the forms as variables: d/da_i by ufl.diff (step_derivatives)
        self.anisotropy = fem.Constant(mesh, float(params.anisotropy))
        variables = [ufl.variable(self.a1), ufl.variable(self.a2)]
        anisotropy, with_axis = self.anisotropy, bool(params.anisotropy)
        if "k" in self.parameter_names:
            anisotropy, with_axis = ufl.variable(self.anisotropy), True
            variables.append(anisotropy)
        self.parameter_variables = tuple(variables)
        x, nrm = ufl.SpatialCoordinate(mesh), ufl.FacetNormal(mesh)
        self.coefficients = LLGCoefficients(
            a1=self.parameter_variables[0], a2=self.parameter_variables[1],
            exchange=fem.Constant(mesh, float(params.exchange)),
            h=applied_field(field or FieldSpec(kind="zero"), x, self.t),
            f=f(x, self.t, nrm) if f else None, g=g(x, self.t, nrm) if g else None,
            anisotropy=anisotropy, easy_axis=params.easy_axis if with_axis else None)
        self.v = ufl.TestFunction(V)
        if not 0.5 <= theta <= 1.0:
            raise ValueError(f"LLGSolver: theta must be in [1/2, 1], got {theta}")
        self.theta = theta
        self.data_times = grid.times[:-1] + theta * grid.dt  # where h, f, g are evaluated
        self.form = form
        unknowns: list = [self.m1]
        self.residual_blocks: list = []
        if form == "gilbert":
            self.residual_ufl = exact_degree_step_residual(self.m0, self.m1, self.v, grid.dt,
                                                           self.coefficients, theta=theta)
            residuals = self.residual_ufl
            self.residual_blocks = [self.residual_ufl]
        elif form == "landau_lifshitz":
            if g is not None or f is not None:
                raise ValueError("LLGSolver: the Landau-Lifshitz form takes no source f or "
                                 "Neumann datum g")
            self.H = fem.Function(V, name="H")
            self.residual_ufl, self._field_ufl = ll_step_residuals(
                self.m0, self.m1, self.H, self.v, ufl.TestFunction(V), grid.dt,
                self.coefficients, theta=theta)
            residuals, unknowns = [self.residual_ufl, self._field_ufl], [self.m1, self.H]
            self.residual_blocks = residuals
            self._field = fem.form(ufl.replace(self._field_ufl, {self.H: 0 * self.H}),
                                   jit_options=self.jit_options)
            lumped = ufl.Measure("dx", metadata={"quadrature_rule": "vertex",
                                                 "quadrature_degree": 1})
            ones = ufl.as_vector((1.0, 1.0, 1.0))
            self._lumped_mass = assemble_owned(fem.form(ufl.inner(ones, self.v) * lumped,
                                                        jit_options=self.jit_options))
        else:
            raise ValueError(f"LLGSolver: form {form!r} is not 'gilbert' or 'landau_lifshitz'")
        self._residual = VectorAssembler(fem.form(self.residual_ufl,
                                                  jit_options=self.jit_options))
        opts = {**newton_linear_options(linear, V, len(unknowns), self.comm.size),
                "snes_type": "newtonls", "snes_linesearch_type": "bt",
                "snes_rtol": rtol, "snes_atol": atol, "snes_stol": 1e-14, "snes_max_it": max_it}
        self.problem = fem_petsc.NonlinearProblem(
            residuals, unknowns if len(unknowns) > 1 else self.m1,
            petsc_options_prefix=prefix, kind="mpi" if len(unknowns) > 1 else None,
            jit_options=self.jit_options)
        apply_options(self.problem.solver, prefix, opts)
        self.step_unknowns = unknowns
        self.newton_iterations: list[int] = []
        self.jacobian_assemblies = 0  # of the last forward_linearised sweep
        self.progress = lambda steps: steps
        self._derivatives: StepDerivatives | None = None
        self._adjoint_action: list | None = None

    # -- derivatives: linearisation and discrete adjoint of the time stepping ------------
    @property
    def derivatives(self) -> StepDerivatives:
        """Step Jacobians, parameter derivatives and the linearised/adjoint sweeps (built once,
        from the step residual by ``ufl.derivative`` / ``ufl.diff``)."""
        if self._derivatives is None:
            self._derivatives = StepDerivatives(
                self.residual_blocks, self.step_unknowns, self.m0, self.parameter_variables,
                self.set_step, self.comm, kind=self.linear, jit_options=self.jit_options)
        return self._derivatives

    def forward(self, a, m_init: np.ndarray, warm_start: np.ndarray | None = None) -> np.ndarray:
        """The trajectory ``S(a)`` from ``m(0) = m_init`` (parameters passed explicitly)."""
        self.set_parameters(*a)
        return self.solve(m_init, warm_start)

    def linearised(self, a, m: np.ndarray, betas: np.ndarray) -> np.ndarray:
        """``u^(j) = S'(a) beta_j`` at the state ``m = S(a)``: shape ``(k, n_t, n)``."""
        self.set_parameters(*a)
        return self.derivatives.linearised(m, betas)

    def forward_linearised(self, a, m_init: np.ndarray, betas: np.ndarray,
                           warm_start: np.ndarray | None = None,
                           ) -> tuple[np.ndarray, np.ndarray]:
        """``(S(a), S'(a) betas)`` in one sweep with one Jacobian assembly per step (Gilbert).

        After step ``n`` has converged, ``J1_n = dR_n/dm_{n+1}`` is assembled once at the
        converged state ``(m_n, m_{n+1})``.  It is exactly the matrix of the linearised step
        ``J1_n u_{n+1} = -(J0_n u_n + B_n beta)`` (solved here for every column of ``betas``
        with one preconditioner), and it is the matrix of the next step's nonlinear iteration:
        a chord (simplified Newton) iteration ``z <- z - J1_n^{-1} R_{n+1}(m_{n+1}, z)``.  The
        chord iteration converges linearly (measured contraction ~3e-4 per iteration on the
        phantom: 4 residual evaluations and solves instead of 2-3 Jacobian assemblies) to the
        same tolerances as :meth:`step` (the SNES ``rtol``, ``atol``, ``stol``, ``max_it`` of
        :meth:`set_newton_tolerances`), so the trajectory is the Newton trajectory to the
        Newton tolerance.  Where the contraction is poor (residual not halved), the Jacobian is
        re-assembled at the current iterate (a Newton step).

        Args:
            a: the parameters.
            m_init: owned dofs of ``m(0)``.
            betas: directions, shape ``(p, k)`` (``k = 0``: only the trajectory).
            warm_start: a previous trajectory: the initial guesses of the steps.

        Returns:
            ``m`` of shape ``(n_t, n)`` and ``u`` of shape ``(k, n_t, n)`` (``u_0 = 0``).

        Raises:
            SolverError: a step did not converge (on every rank).
        """
        if self.form != "gilbert":
            raise NotImplementedError("forward_linearised: Gilbert form only")
        _check_finite_collectively(self.comm, m_init)
        self.set_parameters(*a)
        betas = np.asarray(betas, dtype=float).reshape(self.n_parameters, -1)
        d = self.derivatives
        m = np.empty((self.grid.n_t, self.n))
        m[0] = m_init
        u = np.zeros((betas.shape[1], self.grid.n_t, self.n))
        self.newton_iterations, self.jacobian_assemblies = [], 0
        self.set_step(0, m_init, m_init if warm_start is None else warm_start[1])
        d.assemble_step_jacobian()  # the first step's matrix: at its initial guess
        self.jacobian_assemblies += 1
        for k in self.progress(range(self.grid.n_t - 1)):
            m[k + 1] = self._chord(k, m[k], m[k] if warm_start is None else warm_start[k + 1])
            self.set_step(k, m[k], m[k + 1])
            d.assemble_step_jacobian()
            self.jacobian_assemblies += 1
            if betas.shape[1]:
                u[:, k + 1] = d.tangent_step(u[:, k], betas)
        return m, u

    def _chord(self, n: int, m_n: np.ndarray, guess: np.ndarray) -> np.ndarray:
        """Solve ``R_n(m_n, z) = 0`` from ``guess`` with the assembled ``J1`` of the step
        derivatives (SNES convergence tests, see :meth:`forward_linearised`).  Iterative step
        solves go to the relative residual :data:`CHORD_KSP_RTOL` here (the chord error
        contracts by ~3e-4 per iteration anyway); the linearised solves keep theirs."""
        rtol, atol, stol, max_it = self.problem.solver.getTolerances()
        d = self.derivatives
        ksp = d._solver()
        saved = ksp.ksp.getTolerances()
        if not ksp.direct:
            ksp.ksp.setTolerances(rtol=max(saved[0], CHORD_KSP_RTOL))
        try:
            z = self._chord_iterations(n, m_n, guess, (rtol, atol, stol, max_it))
        finally:
            ksp.ksp.setTolerances(*saved)
        return z

    def _chord_iterations(self, n: int, m_n: np.ndarray, guess: np.ndarray,
                          tolerances: tuple) -> np.ndarray:
        rtol, atol, stol, max_it = tolerances
        d = self.derivatives
        ksp = d._solver()
        z = guess.copy()
        r = self.step_residual(n, m_n, z)
        r0 = rn = self._norm(r)
        its = 0
        while not (rn <= atol or rn <= rtol * r0):
            if its >= max_it or not np.isfinite(rn):
                raise SolverError(
                    f"LLG chord iteration did not converge at step {n} (t = "
                    f"{self.data_times[n]:.6g}) after {its} iterations, residual norm "
                    f"{rn:.3e}; try more time levels (n_t)")
            dz = ksp.solve_array(r)
            z -= dz
            its += 1
            previous, r = rn, self.step_residual(n, m_n, z)
            rn = self._norm(r)
            if self._norm(dz) <= stol * self._norm(z):
                break
            if rn > 0.5 * previous and rn > max(atol, rtol * r0):  # slow: Newton step
                d.assemble_step_jacobian()
                self.jacobian_assemblies += 1
                ksp = d._solver()
        self.newton_iterations.append(its)
        return z

    def _norm(self, values: np.ndarray) -> float:
        return float(np.sqrt(self.comm.allreduce(float(np.dot(values, values)), op=MPI.SUM)))

    def adjoint(self, a, m: np.ndarray, loads: np.ndarray) -> np.ndarray:
        """``S'(a)^T l``: the pairing ``<l, S'(a) beta> = adjoint(l) . beta`` (replicated)."""
        self.set_parameters(*a)
        _, g = self.derivatives.adjoint(m, loads)
        return -g

    def step_jacobians(self, n: int, m_n: np.ndarray, m_next: np.ndarray, a=None):
        """``(dR_n/dm_n, dR_n/dz_n)`` at ``a`` as assembled PETSc matrices (reused storage)."""
        self._use(a)
        return self.derivatives.assemble(n, m_n, m_next)

    def step_parameter_derivatives(self, n: int, m_n: np.ndarray, m_next: np.ndarray, a=None):
        """``dR_n/da_i`` (one per identifiable parameter) at ``a`` as owned dual vectors of the
        step residual blocks."""
        self._use(a)
        B = self.derivatives.parameter_derivatives(n, m_n, m_next)
        return tuple(B[:, i] for i in range(B.shape[1]))

    def transposed_linearisation(self, n: int, m_n: np.ndarray, m_next: np.ndarray,
                                 y: np.ndarray, a=None) -> tuple[np.ndarray, np.ndarray]:
        """``((dR_n/dm_n)^T y, (dR_n/dm_{n+1})^T y)`` for a dual weight ``y`` (Gilbert form),
        assembled as the actions of ``ufl.adjoint(ufl.derivative(R_n, .))`` (no matrices)."""
        if self.form != "gilbert":
            raise NotImplementedError("transposed_linearisation: Gilbert form only")
        if self._adjoint_action is None:
            self._y = fem.Function(self.V)
            r_y = ufl.replace(self.residual_ufl, {self.v: self._y})
            self._adjoint_action = [VectorAssembler(fem.form(ufl.derivative(r_y, m, self.v),
                                                             jit_options=self.jit_options))
                                    for m in (self.m0, self.m1)]
        self._use(a)
        self.set_step(n, m_n, m_next)
        array_to_function(y, self._y)
        return self._adjoint_action[0](), self._adjoint_action[1]()

    @property
    def parameters(self) -> np.ndarray:
        """The current identifiable parameters ``(a1, a2)`` or ``(a1, a2, k)``."""
        values = [float(self.a1.value), float(self.a2.value)]
        if "k" in self.parameter_names:
            values.append(float(self.anisotropy.value))
        return np.array(values)

    @property
    def n_parameters(self) -> int:
        """The number of identifiable parameters (2 or 3)."""
        return len(self.parameter_names)

    def destroy(self) -> None:
        """Free the derivative objects (collective: call on every rank)."""
        if self._derivatives is not None:
            self._derivatives.destroy()
            self._derivatives = None

    def _use(self, a) -> None:
        if a is not None:
            self.set_parameters(*a)

    def set_parameters(self, a1: float, a2: float, k: float | None = None) -> None:
        """Change (a1, a2) and, if given, the anisotropy coefficient k without recompiling."""
        self.a1.value = float(a1)
        self.a2.value = float(a2)
        if k is not None:
            self.anisotropy.value = float(k)

    def set_step(self, n: int, m_n: np.ndarray, m_next: np.ndarray) -> None:
        self.t.value = self.data_times[n]
        array_to_function(m_n, self.m0)
        array_to_function(m_next, self.m1)
        if self.form == "landau_lifshitz":  # the nodal field H of (m_n, m_next): explicit
            array_to_function(-assemble_owned(self._field) / self._lumped_mass, self.H)

    def step(self, n: int, m_n: np.ndarray, guess: np.ndarray | None = None) -> np.ndarray:
        """Solve ``R_n(m_n, m_{n+1}) = 0`` for ``m_{n+1}`` (initial guess: ``guess`` or ``m_n``)."""
        self.set_step(n, m_n, m_n if guess is None else guess)
        self.problem.solve()
        snes = self.problem.solver
        reason = snes.getConvergedReason()
        if reason <= 0:
            raise SolverError(
                f"LLG Newton did not converge at step {n} (t = {self.data_times[n]:.6g}): "
                f"SNES reason {reason} after {snes.getIterationNumber()} iterations, "
                f"residual norm {snes.getFunctionNorm():.3e}; try more time levels (n_t)")
        self.newton_iterations.append(snes.getIterationNumber())
        return self.m1.x.array[: self.n].copy()

    def solve(self, m_init: np.ndarray, warm_start: np.ndarray | None = None) -> np.ndarray:
        """The trajectory ``(n_t, n_owned)`` from ``m(0) = m_init``.

        Args:
            m_init: owned dofs of the initial magnetisation.
            warm_start: a previous trajectory used as Newton initial guesses.
        """
        _check_finite_collectively(self.comm, m_init)
        m = np.empty((self.grid.n_t, self.n))
        m[0] = m_init
        self.newton_iterations = []
        for k in self.progress(range(self.grid.n_t - 1)):
            guess = None if warm_start is None else warm_start[k + 1]
            m[k + 1] = self.step(k, m[k], guess)
        return m

    def step_residual(self, n: int, m_n: np.ndarray, m_next: np.ndarray) -> np.ndarray:
        """``R_n(m_n, m_{n+1})`` (the first block: the step equation) as owned dual entries."""
        self.set_step(n, m_n, m_next)
        return self._residual()

    def space_time_residual(self, m: np.ndarray, a=None) -> np.ndarray:
        """``(R_n(m_n, m_{n+1}; a))_n`` as owned dual vectors, shape ``(n_t - 1, n_owned)``."""
        self._use(a)
        out = np.empty((self.grid.n_t - 1, self.n))
        for k in range(self.grid.n_t - 1):
            self.set_step(k, m[k], m[k + 1])
            self._residual(out[k])
        return out

    def residual_scale(self, m: np.ndarray) -> float:
        """``sqrt(sum_n sum_terms |term_n|^2)``: the size of the residual's terms on ``m``."""
        m_bar = (1.0 - self.theta) * self.m0 + self.theta * self.m1
        mt = (self.m1 - self.m0) / self.grid.dt
        if self.form == "landau_lifshitz":  # terms: m_t and the right-hand side
            vertex = {"quadrature_rule": "vertex", "quadrature_degree": 1}
            mt_term = ufl.inner(mt, self.v) * ufl.dx(metadata=vertex)
            parts = [mt_term, self.residual_ufl - mt_term]
        else:
            parts = list(llg_residual_terms(m_bar, mt, self.v, self.coefficients).values())
        terms = [fem.form(t, jit_options=self.jit_options) for t in parts]
        total = 0.0
        for k in range(self.grid.n_t - 1):
            self.set_step(k, m[k], m[k + 1])
            total += sum(float(np.dot(b, b)) for b in map(assemble_owned, terms))
        return float(np.sqrt(self.comm.allreduce(total, op=MPI.SUM)))

    def set_newton_tolerances(self, **tolerances) -> None:
        """Change the SNES tolerances (``rtol``, ``atol``, ``stol``, ``max_it``)."""
        self.problem.solver.setTolerances(**tolerances)

    def relative_residual(self, m: np.ndarray, a=None) -> float:
        """``|(R_n)_n| / residual_scale(m)`` (global Euclidean norms), at ``a`` if given."""
        r = self.space_time_residual(m, a)
        norm = np.sqrt(self.comm.allreduce(float(np.vdot(r, r)), op=MPI.SUM))
        return norm / self.residual_scale(m)


def _check_finite_collectively(comm: MPI.Comm, values: np.ndarray) -> None:
    bad = comm.allreduce(int(not np.all(np.isfinite(values))), op=MPI.SUM)
    if bad:
        raise ValueError("LLGSolver.solve: the initial magnetisation contains NaN/Inf")


def llg_space_time_residual(solver: LLGSolver, m: np.ndarray, a=None) -> np.ndarray:
    """The discrete space-time LLG residual ``(R_n(m_n, m_{n+1}; a))_n`` of a trajectory.

    The forward solver zeroes exactly these residuals step by step; the all-at-once operator
    uses them as its model part ``F0``.

    Args:
        solver: defines the discretisation (space, grid, field, data).
        m: trajectory ``(n_t, n_owned)``.
        a: ``(a1, a2)``; the solver's current parameters if None (they are set otherwise).
    """
    if a is not None:
        solver.set_parameters(*a)
    return solver.space_time_residual(m)
