"""L-stable, error-controlled adaptive time stepping of the Landau-Lifshitz DAE (issue 11).

The method-of-lines Landau-Lifshitz system of :func:`llgfem.forms.llg.ll_residuals` in the block
unknown ``y = (m, H)`` (nodal field ``H`` as algebraic unknown, lumped mass ``(., .)_L``) is
written as an implicit DAE ``F(t, y, y_t; a) = 0`` with::

    F_m = (m_t - rhs(m, H; a), v / l)_L,     rhs = (-a1 m x (m x H) + a2 m x H) / (a1^2 + a2^2),
    F_H = (H - h_eff(m, t), w)_L + c (grad m, grad w),

where ``l`` is the lumped mass (the test function ``v`` is replaced by ``v / l``, so that node by
node ``F_m = m_t - rhs`` and ``dF/dy_t = diag(I, 0)``: PETSc ARKIMEX with an explicit first stage
evaluates the first stage derivative as ``-F(t, y_n, 0)``, which needs that identity mass).

Forward: PETSc TS ARKIMEX, fully implicit (an L-stable, stiffly accurate ESDIRK, default
``ARK4(3)6L[2]SA``, type ``"4"``), adaptive (``TSAdapt basic``, embedded error estimate on the
``m`` block only: the ``H`` entries get tolerance 0, which PETSc leaves out of the RMS norm),
IFunction and IJacobian ``shift dF/dy_t + dF/dy`` assembled from the SAME forms
(``ufl.derivative``).  The accepted step times ``t_0 < ... < t_N`` are recorded.

Exact discrete derivatives (own stage recursion on a frozen step sequence, the same scheme as the
library's): with the tableau ``(A, c)`` (``A[0, 0] = 0``, stiffly accurate), on step
``n -> n + 1`` with ``h = t_{n+1} - t_n``::

    K_0 = -F(t_n, y_n, 0),
    Z_i = y_n + h sum_{j<i} A_ij K_j,   F(t_n + c_i h, Y_i, (Y_i - Z_i) / (h A_ii)) = 0,
    K_i = (Y_i - Z_i) / (h A_ii)   (i = 1 .. s-1),        y_{n+1} = Y_{s-1}.

(this is PETSc's ARKIMEX step for an IFunction of unspecified equation type; the test
``replay == TS`` checks it to round-off).  The step sequence is frozen: the derivatives are
those of ``a -> y`` on the given steps, not of the (non-differentiable) step selection, so an
inverse problem evaluates ``F(a)`` by :meth:`AdaptiveLL.replay` on one step sequence and
``F'(a)``, ``F'(a)*`` on the same one.

``m_t`` at a step end is the last stage derivative ``K_{s-1}`` (the coil signal is ``K m_t``);
at ``t_0`` it is ``K_0`` of the first step.  :meth:`AdaptiveLL.replay` solves these stage
equations (one SNES per stage), :meth:`AdaptiveLL.tangent` their linearisation in the parameters
``a = (a1, a2)`` (``J_i = shift_i E + dF/dy``, ``E = dF/dy_t``)::

    dK_0 = -(dF/dy(y_n, 0) dy_n + dF/da da),
    J_i dY_i = shift_i E dZ_i - dF/da da,   dK_i = shift_i (dY_i - dZ_i),

and :meth:`AdaptiveLL.adjoint` its exact transpose (reverse stage recursion, transposed solves
``J_i^T mu = Y_bar_i``).  ``dF/da`` comes from ``ufl.derivative`` after replacing ``a_k`` by
``a_k + s_k`` with a zero DG0 function ``s_k`` (UFL cannot differentiate with respect to a
Constant).

Notation: ``m`` magnetisation, ``H`` nodal effective field, ``y = (m, H)``, ``K_i`` stage
derivatives, ``Y_i`` stage values, ``shift_i = 1 / (h A_ii)``, ``E = diag(I, 0)``; all arrays are
owned dofs, block layout ``[m owned, H owned]`` on each rank (DOLFINx ``kind="mpi"`` block
vectors).
"""

from __future__ import annotations

from dataclasses import replace

import dolfinx.fem.petsc as fem_petsc
import numpy as np
import ufl
from dolfinx import fem
from dolfinx.la import InsertMode
from petsc4py import PETSc

from llgfem.forms.llg import LLGCoefficients, ll_residuals
from llgfem.solvers.esdirk import (
    TABLEAUS,
    AdaptiveOptions,
    AdaptiveTrajectory,
    Tableau,
    direct_solver_options,
    esdirk_tableau,
)
from llgfem.solvers.linear import apply_options
from llgfem.spacetime import n_owned

__all__ = ["TABLEAUS", "AdaptiveLL", "AdaptiveOptions", "AdaptiveTrajectory", "Tableau",
           "esdirk_tableau"]


def _vertex_measure(mesh):
    return ufl.dx(domain=mesh, metadata={"quadrature_rule": "vertex", "quadrature_degree": 1})


def _nonempty(form):
    return None if form is None or form.empty() else form


class AdaptiveLL:
    """Landau-Lifshitz DAE with PETSc TS ARKIMEX and exact discrete tangent/adjoint.

    Args:
        V: P1 vector space (3 components).
        coefficients: the residual's coefficients; ``a1``, ``a2`` must be ``fem.Constant``s.
        t: the time Constant the applied field ``coefficients.h`` depends on.
        m0: owned dofs of the initial magnetisation.
        T: final time.
        options: :class:`AdaptiveOptions`.
    """

    def __init__(self, V, coefficients: LLGCoefficients, t: fem.Constant, m0: np.ndarray,
                 T: float, options: AdaptiveOptions | None = None):
        self.options = options or AdaptiveOptions()
        self.options.validate()
        if not all(isinstance(a, fem.Constant) for a in (coefficients.a1, coefficients.a2)):
            raise TypeError("AdaptiveLL: coefficients.a1 and a2 must be dolfinx.fem.Constant")
        if not T > 0:
            raise ValueError(f"time.T: must be > 0, got {T!r}")
        self.V, self.mesh, self.comm = V, V.mesh, V.mesh.comm
        self.T, self.t, self.c = float(T), t, coefficients
        self.tableau = esdirk_tableau(self.options.tstype)
        self.n = n_owned(V)
        self.m0 = np.asarray(m0, dtype=float).copy()
        if self.m0.shape != (self.n,):
            raise ValueError(f"AdaptiveLL: m0 has shape {self.m0.shape}, expected ({self.n},)")
        self._build_forms()
        self._build_petsc()

    # -- forms ---------------------------------------------------------------------------
    def _build_forms(self) -> None:
        V, mesh, c = self.V, self.mesh, self.c
        self.m, self.H = fem.Function(V, name="m"), fem.Function(V, name="H")
        self.m_dot = fem.Function(V, name="m_dot")
        v, w = ufl.TestFunction(V), ufl.TestFunction(V)
        Q = fem.functionspace(mesh, ("Lagrange", 1))
        lumped = fem.assemble_vector(fem.form(ufl.TestFunction(Q) * _vertex_measure(mesh)))
        lumped.scatter_reverse(InsertMode.add)
        lumped.scatter_forward()
        self.inv_lumped = fem.Function(Q, name="inverse_lumped_mass")
        self.inv_lumped.x.array[:] = 1.0 / lumped.array
        self.lumped3 = np.repeat(lumped.array[: self.n // 3], 3)
        D = fem.functionspace(mesh, ("DG", 0))
        self._s = [fem.Function(D), fem.Function(D)]  # zero shifts of (a1, a2)
        c_s = replace(c, a1=c.a1 + self._s[0], a2=c.a2 + self._s[1])
        Fm, FH = ll_residuals(self.m, self.m_dot, self.H, v, w, c_s)
        Fm = ufl.replace(Fm, {v: self.inv_lumped * v})
        self.F_ufl = [Fm, FH]
        self.shift = fem.Constant(mesh, 0.0)
        dm, dH = ufl.TrialFunction(V), ufl.TrialFunction(V)
        J = [[ufl.derivative(Fm, self.m, dm) + self.shift * ufl.derivative(Fm, self.m_dot, dm),
              ufl.derivative(Fm, self.H, dH)],
             [_nonempty(ufl.derivative(FH, self.m, dm)), ufl.derivative(FH, self.H, dH)]]
        self.F_forms = fem.form(self.F_ufl)
        self.J_forms = fem.form(J)
        one = fem.Function(D)
        one.x.array[:] = 1.0
        self.Fa_forms = [fem.form(ufl.derivative(Fm, s, one)) for s in self._s]
        self.FH_form = fem.form(FH)

    # -- PETSc objects -------------------------------------------------------------------
    def _build_petsc(self) -> None:
        self.J = fem_petsc.create_matrix(self.J_forms, kind="mpi")
        self._b = fem_petsc.create_vector([self.V, self.V], kind="mpi")
        self.y = self._b.duplicate()
        self._lin = direct_solver_options(self.J)
        self.ksp = PETSc.KSP().create(self.comm)
        self.ksp.setOptionsPrefix(self.options.prefix + "stage_")
        apply_options(self.ksp, self.options.prefix + "stage_", self._lin)

    def set_parameters(self, a) -> None:
        """Set ``(a1, a2)``."""
        self.c.a1.value, self.c.a2.value = float(a[0]), float(a[1])

    def parameters(self) -> tuple[float, float]:
        return float(self.c.a1.value), float(self.c.a2.value)

    # -- evaluation at a state ------------------------------------------------------------
    def _set_state(self, t: float, y: np.ndarray, ydot: np.ndarray | None) -> None:
        n = self.n
        self.t.value = t
        self.m.x.array[:n] = y[:n]
        self.H.x.array[:n] = y[n:]
        self.m_dot.x.array[:n] = 0.0 if ydot is None else ydot[:n]
        for u in (self.m, self.H, self.m_dot):
            u.x.scatter_forward()

    def residual(self, t: float, y: np.ndarray, ydot: np.ndarray | None) -> np.ndarray:
        """``F(t, y, y_t)`` (owned block array)."""
        self._set_state(t, y, ydot)
        b = self._b
        with b.localForm() as loc:
            loc.set(0.0)
        fem_petsc.assemble_vector(b, self.F_forms)
        b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
        return b.array_r.copy()

    def jacobian(self, t: float, y: np.ndarray, ydot: np.ndarray | None, shift: float):
        """``shift dF/dy_t + dF/dy`` assembled into :attr:`J` (returned)."""
        self._set_state(t, y, ydot)
        self.shift.value = shift
        self.J.zeroEntries()
        fem_petsc.assemble_matrix(self.J, self.J_forms)
        self.J.assemble()
        return self.J

    def parameter_derivatives(self, t: float, y: np.ndarray, ydot: np.ndarray | None):
        """``dF/da_k`` (k = 1, 2) as owned arrays of the ``m`` block (``F_H`` has no ``a``)."""
        self._set_state(t, y, ydot)
        out = []
        for form in self.Fa_forms:
            vec = fem.assemble_vector(form)
            vec.scatter_reverse(InsertMode.add)
            out.append(vec.array[: self.n].copy())
        return out

    def consistent_field(self, t: float, m: np.ndarray) -> np.ndarray:
        """The nodal field ``H`` with ``F_H(m, H) = 0`` at time ``t`` (linear, lumped)."""
        self._set_state(t, np.concatenate([m, np.zeros(self.n)]), None)
        vec = fem.assemble_vector(self.FH_form)
        vec.scatter_reverse(InsertMode.add)
        return -vec.array[: self.n] / self.lumped3

    def _inner(self, x: np.ndarray, y: np.ndarray) -> float:
        return self.comm.allreduce(float(np.dot(x, y)))

    # -- forward with PETSc TS -------------------------------------------------------------
    def forward(self, a=None, stop_times: np.ndarray | None = None) -> AdaptiveTrajectory:
        """Adaptive ARKIMEX run on ``[0, T]``; the values at ``t_0 = 0`` and every accepted step.

        Args:
            a: parameters ``(a1, a2)`` (default: the current ones).
            stop_times: times in ``(0, T)`` the TS must step onto exactly (one ``TSSolve`` per
                interval, the last step of each clipped), e.g. sampling times of data or a
                coarse run's steps for a fine reference; they are among ``times`` of the
                result (:meth:`AdaptiveTrajectory.at`).

        Returns:
            The trajectory (``m_t = -F(t, y, 0)`` at the step ends, no stages).
        """
        if a is not None:
            self.set_parameters(a)
        ts = self._create_ts()
        y = self.y.duplicate()
        y.array_w[:] = np.concatenate([self.m0, self.consistent_field(0.0, self.m0)])
        times, states = [0.0], [y.array_r.copy()]

        def monitor(ts_, k, t, u):
            if t > times[-1]:  # accepted steps (a restarted solve reports its start again)
                times.append(t)
                states.append(u.array_r.copy())

        ts.setMonitor(monitor)
        stops = np.asarray([] if stop_times is None else stop_times, dtype=float)
        for t_stop in [*stops[(stops > 0) & (stops < self.T)], self.T]:
            ts.setMaxTime(float(t_stop))
            ts.solve(y)
            if ts.getConvergedReason() < 0 or ts.getTime() < t_stop:
                break
        reason, rejected = ts.getConvergedReason(), ts.getStepRejections()
        ts.destroy()
        y.destroy()
        if reason < 0:
            raise RuntimeError(f"AdaptiveLL: TS diverged (reason {reason}) at t = {times[-1]:.6g}")
        if times[-1] < self.T * (1.0 - 1e-12):
            raise RuntimeError(f"AdaptiveLL: stopped at t = {times[-1]:.6g} < T = {self.T:.6g} "
                               f"after {len(times) - 1} steps (llg.adaptive.max_steps)")
        Y = np.array(states)
        n = self.n
        K = np.array([-self.residual(t_, y_, None) for t_, y_ in zip(times, Y)])
        return AdaptiveTrajectory(np.array(times), Y[:, :n], K[:, :n], Y[:, n:],
                                  a=self.parameters(), rejected=rejected)

    def _create_ts(self):
        opts = self.options
        ts = PETSc.TS().create(self.comm)
        ts.setOptionsPrefix(opts.prefix)
        ts.setType("arkimex")
        ts.setARKIMEXType(opts.tstype)
        ts.setARKIMEXFullyImplicit(True)
        F = self.y.duplicate()

        def ifunction(ts_, t, u, udot, out):
            out.array_w[:] = self.residual(t, u.array_r, udot.array_r)

        def ijacobian(ts_, t, u, udot, shift, A, P):
            self.jacobian(t, u.array_r, udot.array_r, shift)

        ts.setIFunction(ifunction, F)
        ts.setIJacobian(ijacobian, self.J, self.J)
        ts.setTime(0.0)
        ts.setMaxTime(self.T)
        ts.setTimeStep(opts.dt0 or self.T / 1000.0)
        ts.setMaxSteps(int(opts.max_steps))
        ts.setExactFinalTime(PETSc.TS.ExactFinalTime.MATCHSTEP)
        ts.setMaxSNESFailures(-1)
        rtol, atol = self._tolerance_vectors()
        ts.setTolerances(rtol=rtol, atol=atol)
        presets = {"ts_adapt_type": "basic", "snes_type": "newtonls",
                   "snes_linesearch_type": "basic", "snes_rtol": opts.newton_rtol,
                   "snes_atol": opts.newton_atol, "snes_stol": 1e-13, "snes_max_it": 30,
                   **self._lin}
        apply_options(ts, opts.prefix, presets)
        return ts

    def _tolerance_vectors(self):
        """Tolerances on the ``m`` block; the algebraic ``H`` block is not error-controlled.

        Its entries get ``atol = rtol = 0``: PETSc's ``VecErrorWeightedNorms`` skips entries
        with zero tolerance (sum and count), so the RMS error norm runs over ``m`` only.
        """
        opts, n = self.options, self.n
        rtol, atol = self.y.duplicate(), self.y.duplicate()
        rtol.array_w[:n], rtol.array_w[n:] = opts.rtol, 0.0
        atol.array_w[:n], atol.array_w[n:] = opts.atol or opts.rtol, 0.0
        return rtol, atol

    # -- own stage recursion on a frozen step sequence ----------------------------------------
    def replay(self, times: np.ndarray, a=None) -> AdaptiveTrajectory:
        """Solve the ESDIRK stage equations on the given step sequence (SNES per stage)."""
        if a is not None:
            self.set_parameters(a)
        times = np.asarray(times, dtype=float)
        snes = self._stage_snes()
        tab, n = self.tableau, self.n
        s, N = tab.stages, len(times) - 1
        Y = np.empty((N, s, 2 * n))
        K = np.empty((N, s, 2 * n))
        y = np.concatenate([self.m0, self.consistent_field(times[0], self.m0)])
        ys, k0 = [y], None
        for k in range(N):
            t0, h = times[k], times[k + 1] - times[k]
            Y[k, 0], K[k, 0] = y, -self.residual(t0, y, None)
            k0 = K[0, 0] if k0 is None else k0
            for i in range(1, s):
                z = y + h * (tab.A[i, :i] @ K[k, :i])
                Y[k, i] = self._solve_stage(snes, t0 + tab.c[i] * h, z, 1.0 / (h * tab.A[i, i]),
                                            Y[k, i - 1])
                K[k, i] = (Y[k, i] - z) / (h * tab.A[i, i])
            y = Y[k, -1].copy()
            ys.append(y)
        snes.destroy()
        ys = np.array(ys)
        mdot = np.vstack([k0[None, :n], K[:, -1, :n]])
        return AdaptiveTrajectory(times.copy(), ys[:, :n], mdot, ys[:, n:], Y, K,
                                  a=self.parameters())

    def _stage_snes(self):
        snes = PETSc.SNES().create(self.comm)
        prefix = self.options.prefix + "stage_"
        snes.setOptionsPrefix(prefix)
        ctx = {}
        self._stage_ctx = ctx

        def function(snes_, x, out):
            xr = x.array_r
            out.array_w[:] = self.residual(ctx["t"], xr, ctx["shift"] * (xr - ctx["z"]))

        def jacobian(snes_, x, A, P):
            xr = x.array_r
            self.jacobian(ctx["t"], xr, ctx["shift"] * (xr - ctx["z"]), ctx["shift"])

        snes.setFunction(function, self.y.duplicate())
        snes.setJacobian(jacobian, self.J, self.J)
        presets = {"snes_type": "newtonls", "snes_linesearch_type": "basic",
                   "snes_rtol": self.options.newton_rtol, "snes_atol": self.options.newton_atol,
                   "snes_stol": 1e-13, "snes_max_it": 30, **self._lin}
        apply_options(snes, prefix, presets)
        return snes

    def _solve_stage(self, snes, t: float, z: np.ndarray, shift: float,
                     guess: np.ndarray) -> np.ndarray:
        self._stage_ctx.update(t=t, z=z, shift=shift)
        x = self.y.duplicate()
        x.array_w[:] = guess
        snes.solve(None, x)
        reason = snes.getConvergedReason()
        out = x.array_r.copy()
        x.destroy()
        if reason <= 0:
            raise RuntimeError(f"AdaptiveLL.replay: stage Newton failed at t = {t:.6g} "
                               f"(SNES reason {reason}); the step sequence is too coarse")
        return out

    # -- exact tangent and adjoint of the replayed recursion ---------------------------------
    def _solve(self, A, rhs: np.ndarray, transpose: bool = False) -> np.ndarray:
        b, x = self.y.duplicate(), self.y.duplicate()
        b.array_w[:] = rhs
        self.ksp.setOperators(A)
        (self.ksp.solveTranspose if transpose else self.ksp.solve)(b, x)
        out = x.array_r.copy()
        b.destroy()
        x.destroy()
        return out

    def _mult(self, A, x: np.ndarray, transpose: bool = False) -> np.ndarray:
        xv, yv = self.y.duplicate(), self.y.duplicate()
        xv.array_w[:] = x
        (A.multTranspose if transpose else A.mult)(xv, yv)
        out = yv.array_r.copy()
        xv.destroy()
        yv.destroy()
        return out

    def _Fa(self, t, y, ydot, da) -> np.ndarray:
        d1, d2 = self.parameter_derivatives(t, y, ydot)
        out = np.zeros(2 * self.n)
        out[: self.n] = da[0] * d1 + da[1] * d2
        return out

    def tangent(self, traj: AdaptiveTrajectory, da) -> tuple[np.ndarray, np.ndarray]:
        """``(dm, dmdot)`` at every step end, shape ``(N+1, n)`` each, for ``da = (da1, da2)``.

        ``traj`` must come from :meth:`replay` (stage values); its parameters are used.
        """
        _check_replayed(traj)
        self.set_parameters(traj.a)
        tab, n, times = self.tableau, self.n, traj.times
        s, N = tab.stages, traj.steps
        E = np.concatenate([np.ones(n), np.zeros(n)])
        dy = np.zeros(2 * n)
        dm, dmdot = [dy[:n].copy()], []
        for k in range(N):
            t0, h = times[k], times[k + 1] - times[k]
            dK = np.empty((s, 2 * n))
            J0 = self.jacobian(t0, traj.Y[k, 0], None, 0.0)
            dK[0] = -(self._mult(J0, dy) + self._Fa(t0, traj.Y[k, 0], None, da))
            if k == 0:
                dmdot.append(dK[0, :n].copy())
            for i in range(1, s):
                ti, shift = t0 + tab.c[i] * h, 1.0 / (h * tab.A[i, i])
                dz = dy + h * (tab.A[i, :i] @ dK[:i])
                rhs = shift * E * dz - self._Fa(ti, traj.Y[k, i], traj.K[k, i], da)
                Ji = self.jacobian(ti, traj.Y[k, i], traj.K[k, i], shift)
                dYi = self._solve(Ji, rhs)
                dK[i] = shift * (dYi - dz)
            dy = dYi
            dm.append(dy[:n].copy())
            dmdot.append(dK[-1, :n].copy())
        return np.array(dm), np.array(dmdot)

    def adjoint(self, traj: AdaptiveTrajectory, r_m: np.ndarray, r_mdot: np.ndarray) -> np.ndarray:
        """Exact transpose of :meth:`tangent`: ``sum_n (dm_n . r_m[n] + dmdot_n . r_mdot[n])``
        equals ``da . adjoint(...)`` for every ``da`` (Euclidean products of owned dofs)."""
        _check_replayed(traj)
        self.set_parameters(traj.a)
        tab, n, times = self.tableau, self.n, traj.times
        s, N = tab.stages, traj.steps
        E = np.concatenate([np.ones(n), np.zeros(n)])
        grad = np.zeros(2)
        ybar = np.zeros(2 * n)
        ybar[:n] = r_m[N]
        for k in range(N - 1, -1, -1):
            t0, h = times[k], times[k + 1] - times[k]
            Kbar = np.zeros((s, 2 * n))
            Kbar[-1, :n] += r_mdot[k + 1]
            if k == 0:
                Kbar[0, :n] += r_mdot[0]
            Ybar_last, ynbar = ybar, np.zeros(2 * n)
            for i in range(s - 1, 0, -1):
                ti, shift = t0 + tab.c[i] * h, 1.0 / (h * tab.A[i, i])
                Ybar = shift * Kbar[i] + (Ybar_last if i == s - 1 else 0.0)
                zbar = -shift * Kbar[i]
                Ji = self.jacobian(ti, traj.Y[k, i], traj.K[k, i], shift)
                mu = self._solve(Ji, Ybar, transpose=True)
                zbar = zbar + shift * E * mu
                grad -= self._Fa_transpose(ti, traj.Y[k, i], traj.K[k, i], mu)
                ynbar += zbar
                Kbar[:i] += h * np.outer(tab.A[i, :i], zbar)
            J0 = self.jacobian(t0, traj.Y[k, 0], None, 0.0)
            ynbar -= self._mult(J0, Kbar[0], transpose=True)
            grad -= self._Fa_transpose(t0, traj.Y[k, 0], None, Kbar[0])
            ybar = ynbar
            ybar[:n] += r_m[k]
        return grad

    def _Fa_transpose(self, t, y, ydot, mu: np.ndarray) -> np.ndarray:
        d1, d2 = self.parameter_derivatives(t, y, ydot)
        mu_m = mu[: self.n]
        return np.array([self._inner(d1, mu_m), self._inner(d2, mu_m)])


def _check_replayed(traj: AdaptiveTrajectory) -> None:
    if traj.Y is None or traj.K is None:
        raise ValueError("AdaptiveLL: tangent/adjoint need the stages of AdaptiveLL.replay(times)")
