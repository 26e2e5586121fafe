"""Space-time fields: a uniform time grid and per-rank trajectory arrays.

A trajectory of a 3-component P1 field on ``n_t`` time levels is stored per rank as a NumPy array
of shape ``(n_t, n_owned)`` where ``n_owned = 3 * (owned vertices)`` in DOLFINx's interleaved
block layout (the layout of ``Function.x.array[:n_owned]`` and of PETSc vectors created from the
space's matrices).  Ghost values are never stored; they are refreshed when a level is copied into
a :class:`dolfinx.fem.Function`.

Notation: ``T`` final time, ``n_t`` number of levels, ``dt = T/(n_t-1)``, ``t_i = i dt``;
midpoints ``t_{i+1/2} = (i + 1/2) dt``.

Discrete space-time inner product (trapezoidal rule in time, mass matrix ``M`` in space)::

    <u, w> = sum_i omega_i u_i^T M w_i,   omega = dt * (1/2, 1, ..., 1, 1/2).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import dolfinx
import dolfinx.fem as fem
import numpy as np
from mpi4py import MPI

__all__ = [
    "TimeGrid",
    "array_to_function",
    "create_vector_space",
    "function_to_array",
    "global_dot",
    "LevelErrors",
    "interpolate_levels",
    "l2_errors_levels",
    "level_errors",
    "n_owned",
]


@dataclass(frozen=True)
class TimeGrid:
    """The uniform grid ``t_i = i T / (n_t - 1)``."""

    T: float
    n_t: int

    def __post_init__(self):
        if not (self.T > 0 and self.n_t >= 2):
            raise ValueError(f"TimeGrid needs T > 0 and n_t >= 2, got T={self.T}, n_t={self.n_t}")

    @property
    def dt(self) -> float:
        return self.T / (self.n_t - 1)

    @property
    def times(self) -> np.ndarray:
        return np.linspace(0.0, self.T, self.n_t)

    @property
    def midpoints(self) -> np.ndarray:
        t = self.times
        return 0.5 * (t[1:] + t[:-1])

    @property
    def weights(self) -> np.ndarray:
        """Trapezoidal weights ``omega_i``."""
        w = np.full(self.n_t, self.dt)
        w[0] = w[-1] = 0.5 * self.dt
        return w


def create_vector_space(mesh: dolfinx.mesh.Mesh, degree: int = 1, dim: int = 3):
    """The ``dim``-component Lagrange space of the magnetisation (P1, R^3 by default)."""
    return fem.functionspace(mesh, ("Lagrange", degree, (dim,)))


def n_owned(V) -> int:
    """Number of owned scalar dofs (owned nodes x block size) on this rank."""
    return V.dofmap.index_map.size_local * V.dofmap.index_map_bs


def array_to_function(values: np.ndarray, u: fem.Function) -> fem.Function:
    """Copy an owned-dof array into ``u`` and refresh its ghosts."""
    n = values.shape[0]
    u.x.array[:n] = values
    u.x.scatter_forward()
    return u


def function_to_array(u: fem.Function) -> np.ndarray:
    """A copy of the owned dofs of ``u``."""
    return u.x.array[: n_owned(u.function_space)].copy()


def interpolate_levels(
    V, func: Callable[[np.ndarray, float], np.ndarray], times: np.ndarray
) -> np.ndarray:
    """Interpolate ``func(x, t)`` (x of shape (3, n) -> (dim, n)) at every time level.

    Returns:
        Array of shape ``(len(times), n_owned(V))``.
    """
    u = fem.Function(V)
    out = np.empty((len(times), n_owned(V)))
    for i, t in enumerate(times):
        u.interpolate(lambda x, t=t: func(x, t))
        out[i] = function_to_array(u)
    return out


def global_dot(comm: MPI.Comm, a: np.ndarray, b: np.ndarray) -> float:
    """Global Euclidean inner product of distributed owned-dof arrays."""
    local = float(np.einsum("i,i->", np.ravel(a), np.ravel(b)))  # no BLAS threads involved
    return comm.allreduce(local, op=MPI.SUM)


class LevelErrors:
    """Squared L2(Omega) errors ``|u_i - u(t_i)|^2`` of P1 trajectories against one exact
    solution at fixed times, with everything that does not depend on ``u`` computed once.

    With the quadrature ``Q`` of degree ``2 + degree_raise``, ``p_i`` the ``Q``-L2 projection of
    ``u(t_i)`` onto the space (``M p_i = b_i``, ``b_i = Q(u(t_i) . phi)``) and
    ``c_i = Q(|p_i - u(t_i)|^2)``::

        Q(|v - u(t_i)|^2) = (v - p_i)^T M (v - p_i) + c_i       for every v in the space,

    exactly (the cross term ``(v - p_i)^T (M p_i - b_i)`` vanishes), so a call costs one mass
    product per level; both parts are non-negative (no cancellation as ``v -> u(t_i)``).

    Args:
        V: the space of the trajectories.
        exact: ``exact(x, t)`` -> UFL expression (``t`` a :class:`dolfinx.fem.Constant`).
        times: the time of each row.
        degree_raise: extra quadrature degree for the exact solution.
    """

    def __init__(self, V, exact, times: np.ndarray, degree_raise: int = 3):
        import ufl
        from dolfinx.fem.petsc import assemble_matrix

        from llgfem.solvers.linear import LinearSolver

        mesh = V.mesh
        self.comm, self.n = mesh.comm, n_owned(V)
        dx = ufl.dx(metadata={"quadrature_degree": 2 + degree_raise})
        t = fem.Constant(mesh, 0.0)
        u_exact = exact(ufl.SpatialCoordinate(mesh), t)
        v, w = ufl.TestFunction(V), ufl.TrialFunction(V)
        self.M = assemble_matrix(fem.form(ufl.inner(w, v) * dx))
        self.M.assemble()
        self._x, self._y = self.M.createVecs()
        load = fem.form(ufl.inner(u_exact, v) * dx)
        p = fem.Function(V)
        e = p - u_exact
        rest = fem.form(ufl.inner(e, e) * dx)
        mass = LinearSolver(self.M, "llgfem_level_errors_mass_", "direct")
        self.P = np.empty((len(times), self.n))
        self.c = np.empty(len(times))
        for i, ti in enumerate(times):
            t.value = ti
            mass.solve_array(_owned_load(load, self.n), self.P[i])
            array_to_function(self.P[i], p)
            self.c[i] = self.comm.allreduce(fem.assemble_scalar(rest), op=MPI.SUM)
        mass.destroy()
        self._serial = None
        if self.comm.size == 1:  # one sparse product for all levels
            import scipy.sparse as sp

            indptr, indices, data = self.M.getValuesCSR()
            self._serial = sp.csr_matrix((data, indices, indptr), shape=(self.n, self.n))

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """Global squared errors of ``values`` ``(len(times), n_owned)``, one per row."""
        d = np.asarray(values)[:, : self.n] - self.P
        if self._serial is not None:
            return np.einsum("ij,ji->i", d, self._serial @ d.T) + self.c
        local = np.empty(len(d))
        for i, row in enumerate(d):
            self._x.array[:] = row
            self.M.mult(self._x, self._y)
            local[i] = float(np.einsum("i,i->", row, self._y.array))
        return self.comm.allreduce(local, op=MPI.SUM) + self.c

    def destroy(self) -> None:
        for obj in (self.M, self._x, self._y):
            obj.destroy()


def _owned_load(form: fem.Form, n: int) -> np.ndarray:
    from dolfinx.la import InsertMode

    b = fem.assemble_vector(form)
    b.scatter_reverse(InsertMode.add)
    return b.array[:n].copy()


_LEVEL_ERRORS_CACHE = 8  # LevelErrors kept per space (least recently built dropped first)


def level_errors(V, exact, times: np.ndarray, degree_raise: int = 3) -> LevelErrors:
    """The :class:`LevelErrors` of ``(V, exact, times, degree_raise)``, built on first use and
    cached on ``V`` (the key holds ``exact`` itself: pass the same callable to reuse it)."""
    cache = V.__dict__.setdefault("_llgfem_level_errors", {})
    key = (exact, np.asarray(times, dtype=float).tobytes(), int(degree_raise))
    if key not in cache:
        if len(cache) >= _LEVEL_ERRORS_CACHE:
            cache.pop(next(iter(cache))).destroy()
        cache[key] = LevelErrors(V, exact, np.asarray(times, dtype=float), degree_raise)
    return cache[key]


def l2_errors_levels(V, values: np.ndarray, exact, times: np.ndarray,
                     degree_raise: int = 3) -> np.ndarray:
    """Squared L2(Omega) errors ``|u_i - u(t_i)|^2`` of a trajectory at every level.

    Args:
        V: the space of the trajectory.
        values: ``(len(times), n_owned)`` owned-dof array.
        exact: ``exact(x, t)`` -> UFL expression, with ``x`` the spatial coordinate and ``t`` a
            :class:`dolfinx.fem.Constant` (updated per level).
        times: the time at which each row is compared.
        degree_raise: extra quadrature degree for the exact solution.

    Returns:
        Global squared errors, one per level (identical on all ranks).  Computed by the cached
        :class:`LevelErrors` of ``(V, exact, times, degree_raise)`` (collective on first use).
    """
    return level_errors(V, exact, times, degree_raise)(values)
