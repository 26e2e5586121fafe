r"""Time integration of the affine linear ODE y' = F(s) y, F(s) = Σ_k c_k(s) A_k.

PETSc TS path (production): RHS function Σ_k c_k A_k y and the exact Jacobian F(s), assembled
into one preallocated matrix as A_0 (copy) + Σ_k c_k A_k (MatAXPY, SAME_NONZERO_PATTERN), an
L-stable/low-order scheme (default TSBDF order 2, adaptive; TSROSW also works), KSPPREONLY + LU.
Outputs are taken at prescribed times by TS interpolation, so they do not constrain the step
size.  The same routine integrates reduced models (dense PETSc matrices).

SciPy path (cross-check): ``solve_ivp`` (BDF or Radau) on the same matrices, with the same
Jacobian F(s).

Time s is in units of τ_N (see ``operators``); ``coefficients(s)`` returns c_k(s).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.integrate import solve_ivp

__all__ = ["IntegrationResult", "TSSettings", "integrate_petsc", "integrate_scipy"]

PREFIX = "llgfem_brownneel_ts_"


@dataclass(frozen=True)
class TSSettings:
    """Integrator settings.

    Attributes:
        ts_type: PETSc TS type (``bdf``, ``rosw``, ``beuler``, …).
        order: BDF order (1–2 recommended; precession modes sit at ≈ 84° from the negative axis;
            3 is A(86°)-stable and worked for the Lissajous FOM at (10, 8): 334 instead of 568
            steps, 1.5× less CPU, same distance 4–5e-5 from a BDF2 rtol 1e-7 run).
        rtol, atol: local error tolerances.
        dt0: initial step (units of τ_N).
        max_steps: hard limit on the number of steps.
        scipy_method: method of the SciPy cross-check (``BDF`` or ``Radau``).
        lu_reuse: 0 = factorise F at every Jacobian (KSPPREONLY + LU); k > 0 = GMRES
            preconditioned by an LU refreshed every k Jacobians (the operator changes slowly).
        ksp_rtol: GMRES relative tolerance when ``lu_reuse > 0``.
        lu_solver: LU package: ``auto`` (MUMPS for sparse matrices with more than
            ``MUMPS_MIN_SIZE`` unknowns when PETSc has it — 8× faster factorisations than
            PETSc's own LU at 2 325 unknowns — else PETSc's), ``mumps`` or ``petsc``.
        land_on_outputs: end a step exactly at every output time (``TSSetEvaluationTimes``)
            instead of interpolating between steps.  Use it when outputs are derivatives
            F(t)y of the state: an interpolation error in the fast components is amplified by
            the stiff F (Lissajous FOM at (10, 8), 4.6 BDF2 steps per sample: see
            docs/brown_neel.md).
        options: extra PETSc options (without the prefix ``llgfem_brownneel_ts_``).
        preconditioner: ``auto`` (``field_frame`` for the Lissajous FOM when N_n ≤ N_m, else
            ``lu``), ``lu`` (as set by ``lu_reuse``) or ``field_frame`` (Lissajous FOM only:
            GMRES preconditioned by the exact rotation to the field frame and axial-symmetry
            blocks, ``llgfem.brownneel.fieldframe``; 16× less CPU than the lagged MUMPS LU
            for a (12, 10) window run).
    """

    ts_type: str = "bdf"
    order: int = 2
    rtol: float = 1e-6
    atol: float = 1e-10
    dt0: float = 1e-2
    max_steps: int = 1_000_000
    scipy_method: str = "BDF"
    lu_reuse: int = 10
    ksp_rtol: float = 1e-10
    lu_solver: str = "auto"
    land_on_outputs: bool = False
    options: dict = field(default_factory=dict)
    preconditioner: str = "auto"


@dataclass
class IntegrationResult:
    """States at the output times and solver statistics."""

    s: np.ndarray
    y: np.ndarray
    seconds: float
    steps: int
    rejected: int = 0
    info: dict = field(default_factory=dict)


MUMPS_MIN_SIZE = 500
MAX_STEP_REJECTIONS, MAX_SNES_FAILURES = 100, 1000


def _lu_solver(mat, choice: str) -> str:
    """The LU package for ``mat`` (see ``TSSettings.lu_solver``)."""
    from petsc4py import PETSc

    if choice not in ("auto", "mumps", "petsc"):
        raise ValueError(f"lu_solver must be 'auto', 'mumps' or 'petsc', got {choice!r}")
    if choice != "auto":
        return choice
    sparse = mat.getType() in ("seqaij", "mpiaij", "aij")
    big = mat.getSize()[0] > MUMPS_MIN_SIZE
    return "mumps" if sparse and big and PETSc.Sys.hasExternalPackage("mumps") else "petsc"


def _set_options(prefix: str, settings: TSSettings) -> list[str]:
    """Put the settings into the options database; returns the keys to remove afterwards."""
    from petsc4py import PETSc

    opts = PETSc.Options()
    values = {
        **({"ts_bdf_order": settings.order} if settings.ts_type == "bdf" else {}),
        **settings.options,
    }
    for key, value in values.items():
        opts[prefix + key] = value
    return [prefix + key for key in values]


class _LaggedLU:
    """Python PC: LU of a recent copy of the operator, refreshed every ``lag`` set-ups, or at
    once when the previous outer solve failed or needed more than ``max_its`` iterations
    (e.g. after a rejected step).  F(t) and the BDF shift change slowly, so a lagged LU is an
    excellent preconditioner for GMRES and saves most factorisations."""

    def __init__(self, lag: int, max_its: int = 12, solver: str = "petsc"):
        self.lag, self.max_its, self.solver = lag, max_its, solver
        self.count, self.outer, self.inner, self.mat = 0, None, None, None
        self.factorisations = 0

    def setUp(self, pc):  # noqa: N802 (petsc4py API)
        from petsc4py import PETSc

        a = pc.getOperators()[0]
        outer = self.outer
        stale = outer is not None and (outer.getConvergedReason() < 0
                                       or outer.getIterationNumber() > self.max_its)
        if self.inner is None or stale or self.count % self.lag == 0:
            if self.mat is None:
                self.mat = a.duplicate(copy=True)
                self.inner = PETSc.KSP().create(comm=a.getComm())
                self.inner.setType("preonly")
                self.inner.getPC().setType("lu")
                self.inner.getPC().setFactorSolverType(self.solver)
            else:
                a.copy(self.mat, structure=PETSc.Mat.Structure.SAME_NONZERO_PATTERN)
            self.inner.setOperators(self.mat)
            self.inner.setUp()
            self.factorisations += 1
            self.count = 0
        self.count += 1

    def apply(self, pc, x, y):
        self.inner.solve(x, y)

    def destroy(self, pc=None):
        for obj in (self.inner, self.mat):
            if obj is not None:
                obj.destroy()


class _AffineShell:
    """Python Mat: x -> a x − Σ_k c_k A_k x with every A_k on its own pattern (the
    matrix-free BDF operator of the field-frame path; no assembly of F(s))."""

    def __init__(self, mats: list):
        self.mats, self.c, self.shift = mats, None, 0.0
        self.work = mats[0].createVecRight()

    def mult(self, mat, x, y):
        y.set(0.0)
        for ck, a in zip(self.c, self.mats, strict=True):
            if ck != 0.0:
                a.mult(x, self.work)
                y.axpy(-ck, self.work)
        y.axpy(self.shift, x)


def integrate_petsc(
    mats: list,
    coefficients: Callable[[float], np.ndarray],
    y0: np.ndarray,
    s_out: np.ndarray,
    settings: TSSettings = TSSettings(),
    prefix: str = PREFIX,
    pc_context=None,
) -> IntegrationResult:
    """Integrate y' = Σ c_k(s) A_k y with PETSc TS; all ``mats`` share one comm (and one
    pattern, except with ``pc_context``, which never assembles F(s)).

    Args:
        mats: PETSc matrices A_k (AIJ or dense), sequential.
        coefficients: s -> array of c_k(s).
        y0: initial state at s_out[0].
        s_out: increasing output times (first = start time).
        settings: integrator settings.
        prefix: PETSc options prefix.
        pc_context: optional petsc4py Python PC for GMRES instead of the (lagged) LU; the
            system is then posed implicitly (ẏ − F(s)y = 0) with the matrix-free operator
            a I − F(s); ``update(s, c, a)`` is called with the coefficients and the BDF shift
            a of every Jacobian and ``outer`` is set to the KSP.

    Returns:
        States y(s_out) as columns, wall time and step counts.
    """
    from petsc4py import PETSc

    if settings.preconditioner == "field_frame" and pc_context is None:
        raise ValueError("preconditioner 'field_frame' needs a Lissajous model (its context)")
    comm = mats[0].getComm()
    jac = mats[0].duplicate(copy=True) if pc_context is None else None
    u = mats[0].createVecRight()
    u.array[:] = y0
    f = u.duplicate()
    work = u.duplicate()
    out = np.empty((y0.size, s_out.size))
    state = {"next": 0, "jac": 0, "interpolated": 0,
             "struct": PETSc.Mat.Structure.SAME_NONZERO_PATTERN}

    def rhs(ts, s, y, fv):
        c = coefficients(s)
        mats[0].mult(y, fv)
        if c[0] != 1.0:
            fv.scale(c[0])
        for ck, a in zip(c[1:], mats[1:], strict=True):
            if ck != 0.0:
                a.mult(y, work)
                fv.axpy(ck, work)

    def jacobian(ts, s, y, jmat, pmat):
        c = coefficients(s)
        mats[0].copy(jmat, structure=state["struct"])
        if c[0] != 1.0:
            jmat.scale(c[0])
        for ck, a in zip(c[1:], mats[1:], strict=True):
            if ck != 0.0:
                jmat.axpy(ck, a, structure=state["struct"])
        state["jac"] += 1

    interp = u.duplicate()

    def monitor(ts, step, s, y):
        while state["next"] < s_out.size and s_out[state["next"]] <= s * (1 + 1e-14):
            k = state["next"]
            if step == 0 or abs(s_out[k] - s) <= 1e-12 * max(abs(s), 1.0):
                out[:, k] = y.array_r
            else:
                ts.interpolate(s_out[k], interp)
                out[:, k] = interp.array_r
                state["interpolated"] += 1
            state["next"] += 1

    ts = PETSc.TS().create(comm=comm)
    ts.setOptionsPrefix(prefix)
    ts.setProblemType(PETSc.TS.ProblemType.LINEAR)
    ts.setType(settings.ts_type)
    keys = _set_options(prefix, settings)
    if pc_context is None:
        ts.setRHSFunction(rhs, f)
        ts.setRHSJacobian(jacobian, jac, jac)
    else:  # matrix-free: G = ẏ − F(s) y, IJacobian a I − F(s) as a shell
        shell = _AffineShell(mats)
        jac = PETSc.Mat().createPython(mats[0].getSizes(), shell, comm=comm)
        jac.setUp()

        def ifunction(ts, s, y, ydot, g):
            rhs(ts, s, y, g)
            g.aypx(-1.0, ydot)

        def ijacobian(ts, s, y, ydot, shift, jmat, pmat):
            shell.c, shell.shift = coefficients(s), float(shift)
            pc_context.update(s, shell.c, shell.shift)
            jmat.assemble()  # new object state, so the KSP sets the PC up again
            state["jac"] += 1

        ts.setIFunction(ifunction, f)
        ts.setIJacobian(ijacobian, jac, jac)
    ts.setTime(float(s_out[0]))
    ts.setTimeStep(settings.dt0)
    ts.setMaxTime(float(s_out[-1]))
    ts.setMaxSteps(settings.max_steps)
    ts.setExactFinalTime(PETSc.TS.ExactFinalTime.MATCHSTEP)
    if settings.land_on_outputs and s_out.size > 1:
        ts.setEvaluationTimes([float(v) for v in s_out])
    ts.setTolerances(rtol=settings.rtol, atol=settings.atol)
    # bounded: with unlimited failures a step size that collapsed to 0 retried forever
    # (an under-resolved truncation at 10 kHz looped for > 10 min); failures end as SolverError
    ts.setMaxStepRejections(MAX_STEP_REJECTIONS)
    ts.setMaxSNESFailures(MAX_SNES_FAILURES)
    ts.setErrorIfStepFails(False)  # a failed step sets a negative reason -> SolverError
    ts.setMonitor(monitor)
    snes = ts.getSNES()
    snes.setType("ksponly")
    ksp = snes.getKSP()
    lagged = None
    solver = "python" if pc_context is not None else _lu_solver(jac, settings.lu_solver)
    if pc_context is None and settings.lu_reuse:
        lagged = _LaggedLU(settings.lu_reuse, solver=solver)
    context = pc_context or lagged
    if context is not None:
        ksp.setType("gmres")
        ksp.setTolerances(rtol=settings.ksp_rtol, atol=1e-300, max_it=60)
        context.outer = ksp
        pc = ksp.getPC()
        pc.setType(PETSc.PC.Type.PYTHON)
        pc.setPythonContext(context)
    else:
        ksp.setType("preonly")
        ksp.getPC().setType("lu")
        ksp.getPC().setFactorSolverType(solver)
    ts.setFromOptions()
    opts = PETSc.Options()
    for key in keys:
        opts.delValue(key)
    t0 = time.perf_counter()
    ts.solve(u)
    seconds = time.perf_counter() - t0
    reason = ts.getConvergedReason()
    steps, rejected = ts.getStepNumber(), ts.getStepRejections()
    its = ksp.getIterationNumber()
    nfact = context.factorisations if context is not None else state["jac"]
    for obj in (ts, jac, u, f, work, interp):
        obj.destroy()
    if lagged:
        lagged.destroy()
    if reason < 0 or state["next"] < s_out.size:
        from llgfem.solvers.linear import SolverError

        raise SolverError(f"Brown–Néel PETSc TS failed (reason {reason}) after {steps} steps "
                          f"(rtol {settings.rtol:g}, max_steps {settings.max_steps})")
    info = {"jacobians": state["jac"], "reason": reason, "last_ksp_its": its,
            "factorisations": nfact, "lu_solver": solver,
            "interpolated_outputs": state["interpolated"]}
    if pc_context is not None:
        info["pc_applies"] = pc_context.applies
    return IntegrationResult(s_out.copy(), out, seconds, steps, rejected, info)


def integrate_scipy(
    mats: list[sp.csr_matrix] | list[np.ndarray],
    coefficients: Callable[[float], np.ndarray],
    y0: np.ndarray,
    s_out: np.ndarray,
    settings: TSSettings = TSSettings(),
) -> IntegrationResult:
    """The SciPy cross-check: ``solve_ivp`` with the exact Jacobian on the same matrices."""
    dense = isinstance(mats[0], np.ndarray)

    def assemble(s):
        c = coefficients(s)
        out = c[0] * mats[0]
        for ck, a in zip(c[1:], mats[1:], strict=True):
            out = out + ck * a
        return out if dense else sp.csr_matrix(out)

    from llgfem.solvers.linear import SolverError

    calls = [0]

    def fun(s, y):
        calls[0] += 1
        if calls[0] > 10 * settings.max_steps:  # SciPy has no step limit of its own
            raise SolverError(f"SciPy {settings.scipy_method}: more than {10 * settings.max_steps}"
                              f" right-hand sides at t = {s:.4g} (rtol {settings.rtol:g})")
        c = coefficients(s)
        acc = c[0] * (mats[0] @ y)
        for ck, a in zip(c[1:], mats[1:], strict=True):
            acc += ck * (a @ y)
        return acc

    t0 = time.perf_counter()
    sol = solve_ivp(
        fun, (float(s_out[0]), float(s_out[-1])), y0, method=settings.scipy_method,
        t_eval=s_out, jac=lambda s, y: assemble(s), rtol=settings.rtol, atol=settings.atol,
        first_step=settings.dt0,
    )
    seconds = time.perf_counter() - t0
    if not sol.success:
        raise SolverError(f"SciPy {settings.scipy_method} failed: {sol.message}")
    return IntegrationResult(
        sol.t, sol.y, seconds, int(sol.t.size), 0, {"nfev": sol.nfev, "njev": sol.njev,
                                                     "nlu": sol.nlu}
    )
