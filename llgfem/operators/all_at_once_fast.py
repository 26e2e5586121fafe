"""Batched (all time levels at once) kernels of the all-at-once operator: serial, P1, Gilbert form.

The all-at-once iteration (paper 002, Algorithm 3.1) evaluates, per iteration, the space-time
residual ``F0 = (R_n)_n``, the transposed linearisation ``l = sum_n (dR_n/dm)^T y_n``, the W Gram
map (elliptic (21) + ``I2``) and the U Riesz map (a backward and a forward heat sweep).  The
FFCx/PETSc path of :mod:`llgfem.operators.all_at_once` does this one time step at a time
(``N`` kernel launches and ``2 N`` sparse solves per map).  Here everything is evaluated for all
``N`` midpoints at once with NumPy/SciPy, from matrices and tables built once.

Residual (implicit midpoint, ``m_bar = (1-theta) m_n + theta m_{n+1}``, ``D = (m_{n+1}-m_n)/dt``,
P1 basis ``phi_i``, exchange ``c``; :mod:`llgfem.forms.llg`)::

    R_n = a1 M D + c A m_bar - a2 (m_bar x D, phi) - c (|grad m_bar|^2 m_bar, phi)
          + ((m_bar . h_n) m_bar, phi) + d_n,

* ``M``, ``A``: P1 mass and stiffness (assembled once, scalar, applied to the 3 components);
  the linear part is ``a1 M D + c A m_bar = K1 m_{n+1} - K0 m_n`` with ``K1 = a1 M/dt +
  c theta A``, ``K0 = a1 M/dt - c (1-theta) A`` (one stacked sparse product on all levels);
* ``d_n = R_n(0, 0)``: everything that does not depend on ``m`` (``-(h, phi)``, the source
  ``f`` and the Neumann datum ``g``), assembled once per step with the FFCx form itself;
* the cubic terms are integrated with the quadrature rule FFCx uses for the form (Basix default
  rule of the UFL-estimated degree of ``(m_bar . h)(m_bar . v)``, at least 3, which integrates the
  polynomial terms exactly); ``h`` is tabulated at those points for every midpoint once
  (:func:`field_parts` keeps its non-zero components, merged over levels/points where they are
  constant).  ``grad m_bar`` is constant per cell (P1, affine cells); the factor
  ``coef = -c |grad m_bar|^2 + m_bar . h`` of ``(coef w, phi)`` (``w = m_bar``, ``du_bar``,
  ``y``) is shared by the residual, its linearisation and its transpose.

Linearisation in the direction ``(du_bar, dD)`` and its transpose tested with ``y_n``::

    dR = a1 M dD + c A du_bar - a2 (du_bar x D + m_bar x dD, phi)
         - c (2 (grad m_bar : grad du_bar) m_bar + |grad m_bar|^2 du_bar, phi)
         + ((du_bar . h) m_bar + (m_bar . h) du_bar, phi)
    l_bar = c A y - a2 (D x y, phi) - c (|grad m_bar|^2 y, phi)
            - 2 c (grad phi, (m_bar . y) grad m_bar) + (h (m_bar . y) + (m_bar . h) y, phi)
    l_D   = a1 M y - a2 (y x m_bar, phi)
    l_n += (1-theta) l_bar - l_D / dt,   l_{n+1} += theta l_bar + l_D / dt
    dR/da1 = M D,   dR/da2 = -(m_bar x D, phi).

Heat-type maps by the generalised eigenbasis ``A V = M V diag(lam)``, ``V^T M V = I``
(:class:`HeatMaps`): ``B = M/dt + A/2`` and ``C = M/dt - A/2`` are diagonal in it
(``b = 1/dt + lam/2``, ``c = 1/dt - lam/2``), so the U Riesz map ``H^{-1} (M/dt) H^{-T}`` is one
``N x N`` matrix per mode, ``R_j = L_j L_j^T / dt`` with ``(L_j)_{pq} = (c_j/b_j)^{p-q}/b_j``
(``p >= q``); the elliptic operator (21) is ``K^{-1} = V diag(1/(1 + lam)) V^T`` and the U
norm ``dt sum_n |V^T (H u)_n|^2`` with ``V^T (H u)_n = b P u_{n+1} - c P u_n``, ``P = V^T M``
(dense: BLAS-3 on all levels at once beats sparse triangular solves at these sizes); ``I2`` of
(12) is a dense ``N x N`` matrix.  Exact transposes (the matrices are the same
ones); agreement with the PETSc path to round-off is tested.

Layout: trajectories arrive as ``(levels, 3 n_nodes)`` (interleaved, :mod:`llgfem.spacetime`);
inside they are component-major ``(3, n_nodes, levels)``: the block-diagonal sparse matrices
``E3 = I_3 (x) E`` (P1 values at the quadrature points), ``G3`` (cell gradients), ``W3``
(integration against the basis), ``M3``, ``A3`` act on all components and levels in one product,
and cross/dot products work on contiguous component arrays.

Scope: one MPI rank, P1 (3 components) on affine simplices, the Gilbert form without
anisotropy, at most :data:`MAX_NODES` nodes (dense eigenbasis).  :func:`fast_path_reason` says
why a problem is outside it; :class:`~llgfem.operators.all_at_once.AllAtOnceOperator` then
keeps the FFCx/PETSc path.

Notation: ``N = n_t - 1`` steps, ``nn`` nodes, ``Q = cells x points`` quadrature points.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import basix
import dolfinx.fem as fem
import numpy as np
import scipy.linalg
import scipy.sparse as sp
import ufl
from ufl.algorithms import estimate_total_polynomial_degree

if TYPE_CHECKING:
    from llgfem.solvers.llg import LLGSolver

__all__ = ["MAX_NODES", "BatchedGilbert", "HeatMaps", "P1Tables", "cross", "dot3",
           "fast_path_reason", "field_parts", "from_nodes", "time_gram", "to_nodes"]

MAX_NODES = 2000  # dense eigenbasis and nn x nn operators (~1 s, ~100 MB at this size)

_SIMPLICES = {"interval": basix.CellType.interval, "triangle": basix.CellType.triangle,
              "tetrahedron": basix.CellType.tetrahedron}


def fast_path_reason(solver: LLGSolver) -> str | None:
    """None if :class:`BatchedGilbert` applies to ``solver``, else the reason it does not."""
    V, mesh = solver.V, solver.V.mesh
    if solver.comm.size != 1:
        return "runs on more than one MPI rank (the batched kernels are serial)"
    if solver.form != "gilbert":
        return f"form {solver.form!r} (batched kernels: Gilbert form only)"
    if float(solver.params.anisotropy) != 0.0:
        return "anisotropy != 0"
    element = V.ufl_element()
    if V.dofmap.index_map_bs != 3 or element.embedded_superdegree != 1:
        return "space is not vector P1"
    if mesh.topology.cell_type.name not in _SIMPLICES or mesh.geometry.cmaps[0].degree != 1:
        return "cells are not affine simplices"
    if V.dofmap.index_map.size_local > MAX_NODES:
        return f"more than {MAX_NODES} nodes (dense eigenbasis)"
    return None


def to_nodes(values: np.ndarray, nn: int) -> np.ndarray:
    """``(levels, 3 nn)`` interleaved -> component-major ``(3, nn, levels)`` (a copy)."""
    levels = values.shape[0]
    return np.ascontiguousarray(values.reshape(levels, nn, 3).transpose(2, 1, 0))


def from_nodes(values: np.ndarray) -> np.ndarray:
    """``(3, nn, levels)`` -> ``(levels, 3 nn)`` interleaved (a copy)."""
    _, nn, levels = values.shape
    return np.ascontiguousarray(values.transpose(2, 1, 0)).reshape(levels, 3 * nn)


def cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a x b`` along axis 0 (the component axis of ``(3, points, levels)`` arrays)."""
    out = np.empty(a.shape)
    for i, j, k in ((0, 1, 2), (1, 2, 0), (2, 0, 1)):
        np.multiply(a[j], b[k], out=out[i])
        out[i] -= a[k] * b[j]
    return out


def dot3(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a . b`` along axis 0: ``(3, points, levels) -> (points, levels)``."""
    out = a[0] * b[0]
    out += a[1] * b[1]
    out += a[2] * b[2]
    return out


def _apply(S, X: np.ndarray) -> np.ndarray:
    """Block-diagonal sparse ``S = I_3 (x) S1`` on ``(3, rows, levels)`` arrays."""
    return (S @ X.reshape(-1, X.shape[-1])).reshape(3, -1, X.shape[-1])


def _blocks(S) -> sp.csr_matrix:
    return sp.kron(sp.identity(3, format="csr"), S, format="csr")


class P1Tables:
    """P1 tables of an affine simplex mesh for one quadrature rule (built once).

    Attributes:
        E: ``(Q, nn)`` sparse, values at the quadrature points.
        W: ``(nn, Q)`` sparse, ``(W f)_i = sum_q w_q phi_i(x_q) f_q`` (integration).
        G: ``(cells * gdim, nn)`` sparse, the constant cell gradients.
        M, A: ``(nn, nn)`` sparse scalar mass and stiffness matrices.
        E3, W3, G3, GT3, M3, A3: the same for the 3 components (``I_3 (x) .``; ``GT3`` is
            ``G3^T``); ``EG3 = [E3; G3]``.
        weights: ``(Q,)`` quadrature weights times ``|det J|``; ``volumes``: ``(cells,)``.
    """

    def __init__(self, V, degree: int):
        mesh = V.mesh
        cell = _SIMPLICES[mesh.topology.cell_type.name]
        points, wref = basix.make_quadrature(cell, degree)
        tdim = mesh.topology.dim
        phi = np.column_stack([1.0 - points.sum(axis=1), points])  # (nq, nv)
        dofs = np.asarray(V.dofmap.list, dtype=np.int64)  # (cells, nv) node (block) indices
        x = mesh.geometry.x[np.asarray(mesh.geometry.dofmaps[0], dtype=np.int64)]  # (c, nv, 3)
        gdim = mesh.geometry.dim
        J = (x[:, 1:, :gdim] - x[:, :1, :gdim]).transpose(0, 2, 1)  # (c, gdim, tdim)
        JtJ = np.einsum("cgi,cgj->cij", J, J)
        detJ = np.sqrt(np.linalg.det(JtJ))
        grad_ref = np.vstack([-np.ones((1, tdim)), np.eye(tdim)])  # (nv, tdim)
        # physical gradients: J (J^T J)^{-1} grad_ref (pseudo-inverse for manifolds)
        K = np.einsum("cgi,cij->cgj", J, np.linalg.inv(JtJ))
        grads = np.einsum("cgj,vj->cvg", K, grad_ref)  # (c, nv, gdim)
        nc, nv = dofs.shape
        nq = len(wref)
        nn = V.dofmap.index_map.size_local
        self.nn, self.nc, self.nq, self.gdim = nn, nc, nq, gdim
        rows = np.repeat(np.arange(nc * nq), nv)
        cols = np.repeat(dofs, nq, axis=0).ravel()
        vals = np.tile(phi, (nc, 1)).ravel()
        self.E = sp.csr_matrix((vals, (rows, cols)), shape=(nc * nq, nn))
        self.weights = (detJ[:, None] * wref[None, :]).ravel()
        self.W = (self.E.multiply(self.weights[:, None])).T.tocsr()
        grow = np.repeat(np.arange(nc * gdim), nv)
        gcol = np.repeat(dofs, gdim, axis=0).ravel()
        gval = grads.transpose(0, 2, 1).ravel()  # (c, gdim, nv)
        self.G = sp.csr_matrix((gval, (grow, gcol)), shape=(nc * gdim, nn))
        self.volumes = detJ * wref.sum()
        self.M = (self.W @ self.E).tocsr()  # exact: the rule has degree >= 2
        self.A = (self.G.multiply(np.repeat(self.volumes, gdim)[:, None]).T @ self.G).tocsr()
        self.S = sp.csr_matrix((self.weights, (np.repeat(np.arange(nc), nq), np.arange(nc * nq))),
                               shape=(nc, nc * nq))  # cell integration of point values
        self.E3, self.W3, self.G3 = _blocks(self.E), _blocks(self.W), _blocks(self.G)
        self.EG3 = sp.vstack([self.E3, self.G3], format="csr")  # values and gradients at once
        self.GT3, self.M3, self.A3 = _blocks(self.G.T), _blocks(self.M), _blocks(self.A)
        self.points = points

    def cell_sum(self, values: np.ndarray) -> np.ndarray:
        """``sum_q w_q f_q`` per cell for ``(Q, levels)`` values -> ``(cells, levels)``."""
        return self.S @ values

    def to_points(self, cellwise: np.ndarray) -> np.ndarray:
        """Repeat ``(cells, ...)`` values at each cell's quadrature points -> ``(Q, ...)``."""
        return np.repeat(cellwise, self.nq, axis=0)

    def add_cellwise(self, values: np.ndarray | None, cellwise: np.ndarray) -> np.ndarray:
        """``values + cellwise`` at the points: ``(Q, N)`` values (or None = 0) plus ``(cells,
        N)`` values repeated at each cell's points (a new array)."""
        if values is None:
            return self.to_points(cellwise)
        nc, nq, levels = self.nc, self.nq, cellwise.shape[-1]
        return (values.reshape(nc, nq, levels) + cellwise[:, None, :]).reshape(nc * nq, levels)

    def cell_dot(self, g1: np.ndarray, g2: np.ndarray) -> np.ndarray:
        """``grad u1 : grad u2`` per cell of gradients ``(3, cells, gdim, N)``: ``(cells, N)``."""
        levels = g1.shape[-1]
        out = dot3(g1.reshape(3, -1, levels), g2.reshape(3, -1, levels))
        if self.gdim == 1:
            return out
        return out.reshape(self.nc, self.gdim, levels).sum(axis=1)

    def values_and_gradients(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Point values ``(3, Q, N)`` and cell gradients ``(3, cells, gdim, N)`` of nodal
        ``(3, nn, N)`` values (one sparse product)."""
        levels = X.shape[-1]
        out = self.EG3 @ X.reshape(-1, levels)
        split = 3 * self.nc * self.nq
        return (out[:split].reshape(3, -1, levels),
                out[split:].reshape(3, self.nc, self.gdim, levels))

    def gradients(self, X: np.ndarray) -> np.ndarray:
        """Cell gradients ``(3, cells, gdim, levels)`` of nodal ``(3, nn, levels)`` values."""
        return _apply(self.G3, X).reshape(3, self.nc, self.gdim, X.shape[-1])


class HeatMaps:
    """The heat-type maps of :class:`~llgfem.solvers.heat.HeatSolver` and the W Gram map, for
    node arrays ``(3, nn, levels)`` (serial; see the module docstring).

    Modal form: ``V^T B = diag(b) V^T M`` and ``V^T C = diag(c) V^T M`` (from ``A V = M V
    diag(lam)``, ``V^T M V = I``), so ``V^T (H u)_n = b (P u_{n+1}) - c (P u_n)`` with the dense
    ``P = V^T M`` (one product on all levels for the U norm).

    Args:
        M, A: scalar P1 mass and stiffness (sparse, ``nn x nn``).
        grid: the time grid.
        I2: the ``N x N`` time Gram matrix ``I1^T Omega I1``.
    """

    def __init__(self, M, A, grid, I2: np.ndarray):
        dt, N = grid.dt, grid.n_t - 1
        self.dt, self.N = dt, N
        self.I2 = np.ascontiguousarray(I2)
        lam, V = scipy.linalg.eigh(A.toarray(), M.toarray())
        lam = np.maximum(lam, 0.0)  # the constant mode: round-off around 0
        self.V, self.Vt = V, np.ascontiguousarray(V.T)
        self.P = np.ascontiguousarray(V.T @ M.toarray())  # V^T M
        self.Kinv = (V / (1.0 + lam)) @ V.T
        b, c = 1.0 / dt + 0.5 * lam, 1.0 / dt - 0.5 * lam
        self.b, self.c = b[:, None], c[:, None]
        p = np.arange(N)
        power = p[:, None] - p[None, :]  # (N, N), >= 0 on and below the diagonal
        L = np.where(power[None] >= 0, (c / b)[:, None, None] ** np.maximum(power, 0)[None],
                     0.0) / b[:, None, None]
        self.R = np.matmul(L, L.transpose(0, 2, 1)) / dt  # (nn, N, N): H^{-1} (M/dt) H^{-T}

    def gram(self, r: np.ndarray) -> np.ndarray:
        """``(I2 (x) K^{-1}) r`` for dual vectors ``r`` ``(3, nn, N)``."""
        return np.matmul(self.Kinv, r @ self.I2)

    def gram_inner(self, r1: np.ndarray, r2: np.ndarray) -> float:
        """``r1 . (I2 (x) K^{-1}) r2``."""
        return float(np.vdot(r1, self.gram(r2)))

    def modal_H(self, u: np.ndarray) -> np.ndarray:
        """``V^T (H u)_n = b P u_{n+1} - c P u_n`` for ``u`` ``(3, nn, n_t)`` -> ``(3, nn, N)``."""
        z = np.matmul(self.P, u)
        out = self.b * z[:, :, 1:]
        out -= self.c * z[:, :, :-1]
        return out

    def inner_U(self, u1: np.ndarray, u2: np.ndarray) -> float:
        """``(u1, u2)_U = dt sum_n (H u1)_n^T M^{-1} (H u2)_n`` with ``M^{-1} = V V^T``."""
        r1 = self.modal_H(u1)
        r2 = r1 if u2 is u1 else self.modal_H(u2)
        return self.dt * float(np.vdot(r1, r2))

    def riesz_U(self, load: np.ndarray) -> np.ndarray:
        """``u = H^{-1} (M/dt) H^{-T} l`` for loads ``(3, nn, n_t)`` (level 0 unused)."""
        out = np.empty_like(load)
        out[:, :, 0] = 0.0
        out[:, :, 1:] = self.riesz_levels(load)
        return out

    def riesz_levels(self, load: np.ndarray) -> np.ndarray:
        """Levels ``1..N`` of :meth:`riesz_U` as ``(3, nn, N)`` (level 0 is 0)."""
        Z = np.matmul(self.Vt, load[:, :, 1:])  # (3, nn, N) modal
        eta = np.matmul(Z.transpose(1, 0, 2), self.R)  # per mode: R symmetric, Z_q R_qp
        return np.matmul(self.V, eta.transpose(1, 0, 2))


class _State:
    """One trajectory tabulated at the quadrature points (shared by F, F' and F'*).

    Attributes:
        X: the trajectory ``(3, nn, n_t)``; ``mb`` the midpoint values ``(3, nn, N)``.
        mq: ``m_bar`` at the points ``(3, Q, N)``; ``grad``: its cell gradients
            ``(3, cells, gdim, N)``.
        mh: ``m_bar . h`` at the points ``(Q, N)`` (None if ``h = 0``).
        coef: ``-c |grad m_bar|^2 + m_bar . h`` at the points ``(Q, N)``: the factor of every
            term ``(coef w, phi)`` of the residual (``w = m_bar``), its linearisation
            (``w = du_bar``) and its transpose (``w = y``).
    """

    def __init__(self, kernels: BatchedGilbert, X: np.ndarray, a):
        t, theta = kernels.tables, kernels.theta
        self.tables, self.X, self.dt = t, X, kernels.dt
        self.a = np.asarray(a, dtype=float)
        self.mb = (1.0 - theta) * X[:, :, :-1]
        self.mb += theta * X[:, :, 1:]  # (3, nn, N)
        self.mq, self.grad = t.values_and_gradients(self.mb)  # (3, Q, N), (3, cells, gdim, N)
        gsq = t.cell_dot(self.grad, self.grad)  # (cells, N): |grad m_bar|^2, constant per cell
        gsq *= -kernels.exchange
        self.mh = kernels.field_dot(self.mq)  # m_bar . h
        self.coef = t.add_cellwise(self.mh, gsq)
        self._D = self._Dq = None

    @property
    def D(self) -> np.ndarray:
        """``(m_{n+1} - m_n) / dt`` ``(3, nn, N)`` (the parameter derivatives need it)."""
        if self._D is None:
            self._D = (self.X[:, :, 1:] - self.X[:, :, :-1]) / self.dt
        return self._D

    @property
    def Dq(self) -> np.ndarray:
        """``D`` at the points (only the gyroscopic term and dR/da2 need it)."""
        if self._Dq is None:
            self._Dq = _apply(self.tables.E3, self.D)
        return self._Dq


def field_parts(hq: np.ndarray | None) -> tuple[tuple[int, np.ndarray], ...]:
    """The non-zero components ``(k, h_k)`` of a field at the points ``(3, Q, N)``, each
    reduced to ``(Q, 1)`` if constant in time and to ``(1, ·)`` if constant in space (exactly:
    only identical values are merged), so that products broadcast over fewer values."""
    if hq is None:
        return ()
    parts = []
    for k in range(3):
        hk = hq[k]
        if not np.any(hk):
            continue
        if np.array_equal(hk, np.broadcast_to(hk[:, :1], hk.shape)):
            hk = hk[:, :1]
        if np.array_equal(hk, np.broadcast_to(hk[:1], hk.shape)):
            hk = hk[:1]
        parts.append((k, np.ascontiguousarray(hk)))
    return tuple(parts)


def time_gram(grid) -> np.ndarray:
    """The ``N x N`` matrix ``I1^T Omega I1`` of the discrete (12) (as ``time_gram_I2``)."""
    N, dt = grid.n_t - 1, grid.dt
    V = np.tril(np.full((N + 1, N), dt), k=-1)  # W_k = sum_{n<k} dt w_n
    w = grid.weights
    I1 = V - np.outer(np.ones(N + 1), w @ V) / grid.T
    return I1.T @ (w[:, None] * I1)


class BatchedGilbert:
    """The Gilbert-form step residuals of an :class:`LLGSolver`, for all steps at once.

    Args:
        solver: the LLG solver whose ``residual_ufl`` defines ``R_n`` (checked by
            :func:`fast_path_reason`).
        degree: quadrature degree of the cubic terms; None (default) = the degree FFCx uses
            for the form, so that both paths compute the same residual.  A lower degree (>= 3,
            exact for every term but ``(m_bar . h)(m_bar . v)`` with a non-polynomial ``h``)
            changes the discretisation of that term only (``docs/all_at_once_cost.md``).

    Raises:
        ValueError: if the solver is outside the scope of the batched kernels, or
            ``degree < 3``.
    """

    def __init__(self, solver: LLGSolver, degree: int | None = None):
        reason = fast_path_reason(solver)
        if reason is not None:
            raise ValueError(f"BatchedGilbert: the problem {reason}")
        self.solver = solver
        grid = solver.grid
        self.N, self.dt, self.theta = grid.n_t - 1, grid.dt, float(solver.theta)
        self.exchange = float(solver.coefficients.exchange.value)
        if degree is not None and degree < 3:
            raise ValueError(f"BatchedGilbert: degree must be >= 3 (exact cubic terms), got "
                             f"{degree}")
        self.degree = self._quadrature_degree() if degree is None else int(degree)
        self.tables = P1Tables(solver.V, self.degree)
        self.nn = self.tables.nn
        self.hq = self._field_at_points()
        self.data = self._data_loads()
        self.heat = HeatMaps(self.tables.M, self.tables.A, grid, time_gram(grid))
        self._linear_template()

    @property
    def hq(self) -> np.ndarray | None:
        """``h`` at every quadrature point and midpoint ``(3, Q, N)`` (None if ``h = 0``);
        setting it also sets :attr:`field_parts`."""
        return self._hq

    @hq.setter
    def hq(self, values: np.ndarray | None) -> None:
        self._hq = values
        self.field_parts = field_parts(values)

    def field_dot(self, vq: np.ndarray) -> np.ndarray | None:
        """``v . h`` at the points ``(Q, N)`` for point values ``(3, Q, N)`` (None if h = 0)."""
        out = None
        for k, hk in self.field_parts:
            term = vq[k] * hk
            if out is None:
                out = term
            else:
                out += term
        return out

    # -- setup --------------------------------------------------------------------------------
    def _field_ufl(self):
        return self.solver.coefficients.h

    def _quadrature_degree(self) -> int:
        s = self.solver
        mb = (1.0 - self.theta) * s.m0 + self.theta * s.m1
        h = self._field_ufl()
        degree = estimate_total_polynomial_degree(ufl.dot(mb, h) * ufl.inner(mb, s.v))
        return max(3, int(degree))

    def _field_at_points(self) -> np.ndarray | None:
        """``h`` at every quadrature point and midpoint: ``(3, Q, N)`` (None if h = 0)."""
        s, t = self.tables, self.solver.t
        one = fem.Constant(self.solver.V.mesh, 1.0)  # ties a constant h to the mesh
        h = one * self._field_ufl()
        if isinstance(h, ufl.constantvalue.Zero):
            return None
        expr = fem.Expression(h, s.points)
        cells = np.arange(s.nc, dtype=np.int32)
        saved = float(t.value)
        out = np.empty((3, s.nc * s.nq, self.N))
        for n, tn in enumerate(self.solver.data_times):
            t.value = tn
            out[:, :, n] = expr.eval(self.solver.V.mesh, cells).reshape(s.nc * s.nq, 3).T
        t.value = saved
        return out if np.any(out) else None

    def _data_loads(self) -> np.ndarray:
        """``d_n = R_n(0, 0)`` (field, source, Neumann terms) as ``(3, nn, N)`` dual vectors."""
        zero = np.zeros(3 * self.nn)
        d = np.stack([self.solver.step_residual(n, zero, zero) for n in range(self.N)])
        return to_nodes(d, self.nn)

    # -- evaluation ----------------------------------------------------------------------------
    def state(self, m: np.ndarray, a) -> _State:
        """Tabulate the trajectory ``m`` ``(n_t, 3 nn)`` at parameters ``a``."""
        return _State(self, to_nodes(m, self.nn), a)

    def state_of_increment(self, m0: np.ndarray, m_hat: np.ndarray, a) -> _State:
        """:meth:`state` of ``m = m0 + m_hat`` from ``m0`` ``(3, nn, 1)`` (node array) and the
        increments ``m_hat`` ``(N, 3 nn)`` of levels 1..N (level 0 is ``m0``)."""
        X = np.empty((3, self.nn, self.N + 1))
        X[:, :, :1] = m0
        np.add(m_hat.reshape(self.N, self.nn, 3).transpose(2, 1, 0), m0, out=X[:, :, 1:])
        return _State(self, X, a)

    def linear_pair(self, a1: float) -> sp.csr_matrix:
        """``[K1; K0]`` (block-diagonal, ``(6 nn, 3 nn)`` sparse) with ``K1 = a1 M / dt +
        c theta A`` and ``K0 = a1 M / dt - c (1 - theta) A``: the linear part of ``R_n`` is
        ``K1 m_{n+1} - K0 m_n``.  One matrix on the union pattern of ``M`` and ``A``, whose
        values are rewritten in place when ``a1`` changes (parameter estimation)."""
        if self._linear_a1 != a1:
            c, th, w = self.exchange, self.theta, a1 / self.dt
            mass, stiff = self._pattern_values
            data, nnz = self._linear.data, mass.size
            np.add(w * mass, (c * th) * stiff, out=data[:nnz])
            np.subtract(w * mass, (c * (1.0 - th)) * stiff, out=data[nnz:])
            self._linear_a1 = a1
        return self._linear

    def _linear_template(self) -> None:
        """The ``[K1; K0]`` matrix with zero values and the values of ``M3``, ``A3`` on its
        pattern (the union of theirs)."""
        M3, A3 = self.tables.M3.tocoo(), self.tables.A3.tocoo()
        n = M3.shape[0]
        keys_m, keys_a = M3.row * n + M3.col, A3.row * n + A3.col
        keys = np.union1d(keys_m, keys_a)  # sorted: row-major CSR order
        mass, stiff = np.zeros(keys.size), np.zeros(keys.size)
        np.add.at(mass, np.searchsorted(keys, keys_m), M3.data)
        np.add.at(stiff, np.searchsorted(keys, keys_a), A3.data)
        rows, cols = keys // n, keys % n
        indptr = np.searchsorted(rows, np.arange(n + 1))
        self._pattern_values = (mass, stiff)
        self._linear = sp.csr_matrix(
            (np.zeros(2 * keys.size), np.concatenate([cols, cols]),
             np.concatenate([indptr, indptr[1:] + keys.size])), shape=(2 * n, n))
        self._linear_a1 = None

    def _linear_parts(self, a1: float, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(K1 X, K0 X)`` for node arrays ``X`` ``(3, nn, levels)`` (one sparse product)."""
        levels = X.shape[-1]
        KX = (self.linear_pair(a1) @ X.reshape(-1, levels)).reshape(2, 3, self.nn, levels)
        return KX[0], KX[1]

    def residual_nodes(self, st: _State) -> np.ndarray:
        """``(R_n)_n`` as ``(3, nn, N)``."""
        t, (a1, a2) = self.tables, st.a
        f = st.mq * st.coef
        if a2:
            f -= a2 * cross(st.mq, st.Dq)
        out = _apply(t.W3, f)
        K1X, K0X = self._linear_parts(a1, st.X)
        out += K1X[:, :, 1:]
        out -= K0X[:, :, :-1]
        out += self.data
        return out

    def residual(self, m: np.ndarray, a) -> np.ndarray:
        """The space-time residual ``(N, 3 nn)`` (as ``LLGSolver.space_time_residual``)."""
        return from_nodes(self.residual_nodes(self.state(m, a)))

    def apply_nodes(self, st: _State, du: np.ndarray, beta) -> np.ndarray:
        """``J0_n du_n + J1_n du_{n+1} + beta . dR_n/da`` for ``du`` ``(3, nn, n_t)``."""
        t, (a1, a2), c = self.tables, st.a, self.exchange
        db = (1.0 - self.theta) * du[:, :, :-1] + self.theta * du[:, :, 1:]
        dbq, dgrad = t.values_and_gradients(db)
        g = t.cell_dot(st.grad, dgrad)
        g *= -2.0 * c
        s = t.add_cellwise(self.field_dot(dbq), g)
        f = dbq * st.coef
        f += s * st.mq
        if a2:
            dD = (du[:, :, 1:] - du[:, :, :-1]) / self.dt
            f -= a2 * (cross(dbq, st.Dq) + cross(st.mq, _apply(t.E3, dD)))
        if beta[1]:
            f -= beta[1] * cross(st.mq, st.Dq)
        out = _apply(t.W3, f)
        K1u, K0u = self._linear_parts(a1, du)
        out += K1u[:, :, 1:]
        out -= K0u[:, :, :-1]
        if beta[0]:
            out += beta[0] * _apply(t.M3, st.D)
        return out

    def transpose_nodes(self, st: _State, y: np.ndarray,
                        parameters: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """``(sum_n (dR_n/dm)^T y_n, (sum_n dR_n/da_i . y_n)_i)`` for ``y`` ``(3, nn, N)``.

        Args:
            parameters: False skips ``dR/da`` (returned as zeros).

        Returns:
            The load ``(3, nn, n_t)`` and ``beta`` ``(2,)`` (local sums).
        """
        t, (a1, a2), c = self.tables, st.a, self.exchange
        yq = _apply(t.E3, y)
        my = dot3(st.mq, yq)  # (Q, N)
        f_bar = yq * st.coef
        for k, hk in self.field_parts:
            f_bar[k] += hk * my
        cy = cross(yq, st.mq) if (a2 or parameters) else None  # y x m_bar
        if a2:
            f_bar -= a2 * cross(st.Dq, yq)
        s = t.cell_sum(my)  # (cells, N): int_c m_bar . y
        s *= -2.0 * c
        weighted = st.grad * s[None, :, None, :]  # (3, cells, gdim, N)
        l_bar = _apply(t.W3, f_bar)  # the nonlinear part of d R / d m_bar
        l_bar += _apply(t.GT3, weighted.reshape(3, -1, self.N))
        load = np.empty((3, self.nn, self.N + 1))
        load[:, :, -1] = 0.0
        np.multiply(l_bar, 1.0 - self.theta, out=load[:, :, :-1])
        l_bar *= self.theta
        load[:, :, 1:] += l_bar
        K1y, K0y = self._linear_parts(a1, y)  # the linear part: K1^T = K1, K0^T = K0
        load[:, :, 1:] += K1y
        load[:, :, :-1] -= K0y
        if a2:
            l_D = (a2 / self.dt) * _apply(t.W3, cy)  # the gyroscopic part of d R / d D
            load[:, :, :-1] += l_D
            load[:, :, 1:] -= l_D
        beta = np.zeros(2)
        if parameters:
            beta[0] = float(np.vdot(st.D, _apply(t.M3, y)))
            beta[1] = -float(np.einsum("kqn,kqn,q->", st.Dq, cy, t.weights))
        return load, beta
