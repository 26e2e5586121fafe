"""The MPI signal model, paper 002 eq. (5), its exact discrete transpose and synthetic noise.

Continuous model (SPEC §1): the voltage induced in receive coil ``l`` by the magnetisation of a
tracer with concentration ``c_k`` is::

    v_kl(t) = -mu0 int_0^T a~_l(t - tau) int_Omega c_k(x) p_l(x) . m_tau(x, tau) dx dtau     (5)

with ``a~_l`` the (T-periodic) transfer function of the receive chain and ``p_l`` the coil
sensitivity.

Discretisation (consistent with the implicit-midpoint LLG solver): the signals are sampled at
the ``N = n_t - 1`` midpoints ``t_{n+1/2}`` where ``m_tau`` is the difference quotient
``D m_n = (m_{n+1} - m_n) / dt``.  With the assembled linear form
``b_kl = (int_Omega c_k p_l . phi_i dx)_i`` (owned entries; the product is reduced over the
communicator, so every rank holds the same data)::

    s_kl,n = b_kl^T D m_n,                          n = 0, ..., N-1
    v_kl,n = -mu0 dt sum_j a~_l((n-j) mod N) s_kl,j   (circular convolution, kernel at lags j dt)

Transfer functions (one per coil):

* ``"delta"`` -- ideal receive chain, ``a~_0 = 1/dt``: ``v = -mu0 s``;
* ``("constant", a)`` -- ``v_n = -mu0 a dt sum_j s_j`` (paper §4.3 uses ``a = 1``, then
  ``v_n = -mu0 int c p . (m(T) - m(0)) dx`` for every n);
* a sampled kernel: an array of ``N`` values ``a~(j dt)``, applied by FFT.

Range inner product (``L^2(0,T)^{KL}`` by the midpoint rule) and the transpose: ::

    (y1, y2)_Y = sum_kl sum_n dt y1_kl,n y2_kl,n,
    (O m, y)_Y = sum_i l_i^T m_i   with   l = O^T y   (Euclidean pairing of trajectories).

Writing ``w_n = -mu0 sum_kl (C_l^T y_kl)_n b_kl`` (``C_l`` the convolution matrix divided by
``dt``), ``l_i = w_{i-1} - w_i`` with ``w_{-1} = w_N = 0``.  Since ``D`` annihilates constants
in time, ``O(m0 + m_hat) = O m_hat`` for a time-independent ``m0``.

Notation: ``K`` concentrations, ``L`` coils, ``N`` samples; ``m`` trajectory ``(n_t, n_owned)``;
``s`` spatial signals, ``y`` data ``(K, L, N)`` (replicated on every rank); ``delta`` relative
noise level; ``mu0`` the prefactor of (5).
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import dolfinx.fem as fem
import numpy as np
import ufl
from mpi4py import MPI

from llgfem.config import ConfigError
from llgfem.physics import MU0
from llgfem.solvers.llg import assemble_owned
from llgfem.spacetime import TimeGrid, n_owned

__all__ = [
    "Coil",
    "Concentration",
    "Observation",
    "Transfer",
    "add_noise",
    "concentration_expression",
    "parse_transfer",
    "sensitivity_expression",
    "NOISE_MODELS",
    "noisy_data",
    "relative_uniform_noise",
    "tag_indicator",
]


@dataclass(frozen=True)
class Concentration:
    """A tracer concentration ``c_k``.

    Attributes:
        value: a float, a callable ``x -> UFL scalar`` (``x = ufl.SpatialCoordinate``), a scalar
            :class:`dolfinx.fem.Function`, or ``("tags", cell_tags, tag_values)`` (indicator of
            the tagged cells, built as a DG0 function).
        name: label used in data files (default ``c<k>``).
    """

    value: Any
    name: str = ""


@dataclass(frozen=True)
class Coil:
    """A receive coil: sensitivity ``p_l`` and transfer function ``a~_l``.

    Attributes:
        sensitivity: a 3-tuple (constant), a callable ``x -> UFL 3-vector`` or a vector
            :class:`dolfinx.fem.Function`.
        transfer: ``"delta"``, ``("constant", value)`` or a kernel array of length ``N``.
        name: label used in data files (default ``coil<l>``).
    """

    sensitivity: Any
    transfer: Any = "delta"
    name: str = ""


@dataclass(frozen=True, eq=False)
class Transfer:
    """A parsed transfer function acting on the last axis (length ``N``) of an array.

    Attributes:
        kind: ``"delta"``, ``"constant"`` or ``"kernel"``.
        value: the constant (kind ``constant``).
        kernel: samples ``a~(j dt)``, ``j = 0..N-1`` (kind ``kernel``).
    """

    kind: str
    value: float = 0.0
    kernel: np.ndarray | None = None

    def apply(self, s: np.ndarray, dt: float) -> np.ndarray:
        """``(C s)_n = dt sum_j a~_{(n-j) mod N} s_j`` (delta: identity)."""
        if self.kind == "delta":
            return np.array(s, dtype=float)
        if self.kind == "constant":
            total = self.value * dt * np.sum(s, axis=-1, keepdims=True)
            return np.broadcast_to(total, np.shape(s)).copy()
        n = np.shape(s)[-1]
        spec = np.fft.rfft(self.kernel) * np.fft.rfft(s, axis=-1)
        return dt * np.fft.irfft(spec, n=n, axis=-1)

    def transpose(self, y: np.ndarray, dt: float) -> np.ndarray:
        """``(C^T y)_j = dt sum_n a~_{(n-j) mod N} y_n`` (circular correlation)."""
        if self.kind != "kernel":
            return self.apply(y, dt)  # delta and constant are symmetric
        n = np.shape(y)[-1]
        spec = np.conj(np.fft.rfft(self.kernel)) * np.fft.rfft(y, axis=-1)
        return dt * np.fft.irfft(spec, n=n, axis=-1)


def parse_transfer(spec: Any, n_samples: int, where: str = "transfer") -> Transfer:
    """Turn a transfer specification into a :class:`Transfer`.

    Args:
        spec: ``"delta"``, ``("constant", value)``, ``("kernel", array)``, an array of
            ``n_samples`` kernel values, or a :class:`Transfer`.
        n_samples: the number ``N`` of time samples.
        where: field name used in error messages.

    Raises:
        ConfigError: unknown kind, wrong kernel length or non-finite values.
    """
    if isinstance(spec, Transfer):
        spec = {"delta": "delta", "constant": ("constant", spec.value)}.get(
            spec.kind, ("kernel", spec.kernel))
    if isinstance(spec, str):
        if spec == "delta":
            return Transfer("delta")
        raise ConfigError(f"{where}: unknown transfer function {spec!r}; expected 'delta', "
                          f"('constant', value) or a kernel array of length {n_samples}")
    if isinstance(spec, (tuple, list)) and len(spec) == 2 and isinstance(spec[0], str):
        kind, value = spec
        if kind == "constant":
            if not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise ConfigError(f"{where}: the constant transfer value must be a finite real, "
                                  f"got {value!r}")
            return Transfer("constant", value=float(value))
        if kind != "kernel":
            raise ConfigError(f"{where}: unknown transfer kind {kind!r}; expected 'constant' or "
                              "'kernel'")
        spec = value
    return Transfer("kernel", kernel=_kernel_array(spec, n_samples, where))


def _kernel_array(spec: Any, n_samples: int, where: str) -> np.ndarray:
    try:
        kernel = np.array(spec, dtype=float)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where}: cannot read the transfer kernel ({err})") from None
    if kernel.shape != (n_samples,):
        raise ConfigError(f"{where}: the transfer kernel needs shape ({n_samples},) (one value per "
                          f"midpoint sample), got {kernel.shape}")
    if not np.all(np.isfinite(kernel)):
        raise ConfigError(f"{where}: the transfer kernel contains NaN/Inf")
    kernel.setflags(write=False)
    return kernel


def concentration_expression(value: Any, mesh, where: str = "concentration"):
    """The UFL scalar of a concentration specification (see :class:`Concentration`)."""
    if isinstance(value, Concentration):
        value = value.value
    if isinstance(value, fem.Function):
        return _checked_shape(value, (), where)
    if isinstance(value, numbers.Real):
        if not math.isfinite(value):
            raise ConfigError(f"{where}: must be finite, got {value}")
        return fem.Constant(mesh, float(value))
    if isinstance(value, tuple) and len(value) == 3 and value[0] == "tags":
        return tag_indicator(mesh, value[1], value[2], where)
    if callable(value):
        return _checked_shape(value(ufl.SpatialCoordinate(mesh)), (), where)
    raise ConfigError(f"{where}: expected a float, a callable x -> UFL scalar, a scalar Function "
                      f"or ('tags', cell_tags, values), got {type(value).__name__}")


def sensitivity_expression(value: Any, mesh, where: str = "sensitivity"):
    """The UFL 3-vector of a coil sensitivity (3-tuple, callable or vector Function)."""
    if isinstance(value, fem.Function):
        return _checked_shape(value, (3,), where)
    if callable(value):
        expr = value(ufl.SpatialCoordinate(mesh))
        if isinstance(expr, (tuple, list)):
            expr = ufl.as_vector(tuple(expr))
        return _checked_shape(expr, (3,), where)
    try:
        vec = np.array(value, dtype=float)
    except (TypeError, ValueError):
        vec = None
    if vec is None or vec.shape != (3,) or not np.all(np.isfinite(vec)):
        raise ConfigError(f"{where}: expected a finite 3-vector, a callable x -> UFL 3-vector or "
                          f"a vector Function, got {value!r}")
    return fem.Constant(mesh, vec)


def _checked_shape(expr, shape: tuple, where: str):
    got = getattr(expr, "ufl_shape", None)
    if got != shape:
        raise ConfigError(f"{where}: expected a UFL expression of shape {shape}, got {got}")
    return expr


def tag_indicator(mesh, cell_tags, values, where: str = "concentration",
                  scale: float = 1.0) -> fem.Function:
    """DG0 function equal to ``scale`` on the cells whose tag is in ``values``, 0 elsewhere."""
    tags = np.atleast_1d(np.asarray(values))
    if cell_tags is None or getattr(cell_tags, "dim", None) != mesh.topology.dim:
        raise ConfigError(f"{where}: ('tags', cell_tags, values) needs cell MeshTags of dimension "
                          f"{mesh.topology.dim}")
    Q = fem.functionspace(mesh, ("DG", 0))
    c = fem.Function(Q, name="concentration")
    cells = cell_tags.indices[np.isin(cell_tags.values, tags)]
    c.x.array[Q.dofmap.list[cells].ravel()] = scale  # one DG0 dof per cell
    c.x.scatter_forward()
    return c


def add_noise(y: np.ndarray, delta: float, seed: int,
              inner: Callable[[np.ndarray, np.ndarray], float] | None = None
              ) -> tuple[np.ndarray, float]:
    """Synthetic data ``y_delta = y + delta |y| xi / |xi|`` with Gaussian ``xi``.

    ``xi`` comes from ``numpy.random.default_rng(seed)`` and does not depend on the rank, so
    replicated ``y`` gives identical ``y_delta`` on all ranks.

    Args:
        y: exact data (any shape, replicated).
        delta: relative noise level (>= 0).
        seed: integer seed (required: an unseeded generator would differ between ranks).
        inner: inner product defining the norm (default Euclidean; the relative level is the
            same for any norm that is a multiple of it, e.g. ``Observation.inner_range``).

    Returns:
        ``(y_delta, |y_delta - y|)``; the absolute noise level equals ``delta |y|``.
    """
    if not (isinstance(delta, numbers.Real) and math.isfinite(delta) and delta >= 0):
        raise ConfigError(f"noise.delta: must be a finite number >= 0, got {delta!r}")
    if not isinstance(seed, numbers.Integral):
        raise ConfigError(f"noise.seed: must be an integer, got {seed!r}")
    inner = inner or (lambda a, b: float(np.vdot(a, b)))
    y = np.asarray(y, dtype=float)
    xi = np.random.default_rng(int(seed)).standard_normal(y.shape)
    level = delta * math.sqrt(max(inner(y, y), 0.0))
    noise = xi * (level / math.sqrt(inner(xi, xi))) if level > 0 else np.zeros_like(y)
    y_delta = y + noise
    return y_delta, math.sqrt(max(inner(noise, noise), 0.0))


def relative_uniform_noise(y: np.ndarray, delta: float, seed: int) -> np.ndarray:
    """``y + delta |y| U(-1, 1)`` per sample: paper 002's "delta % random noise" (rank-independent
    seed; its measured ``||y_delta - y|| / ||y|| ~ 0.58 delta``)."""
    rng = np.random.default_rng(int(seed))
    y = np.asarray(y, dtype=float)
    return y + delta * np.abs(y) * rng.uniform(-1.0, 1.0, size=y.shape)


NOISE_MODELS = ("norm", "uniform")


def noisy_data(y: np.ndarray, delta: float, seed: int, model: str,
               inner: Callable[[np.ndarray, np.ndarray], float] | None = None
               ) -> tuple[np.ndarray, float]:
    """``(y_delta, |y_delta - y|)`` for a noise model: ``"norm"`` (:func:`add_noise`: Gaussian
    direction, ``|y_delta - y| = delta |y|`` exactly) or ``"uniform"``
    (:func:`relative_uniform_noise`); the norm is that of ``inner`` (default Euclidean)."""
    if model == "norm":
        return add_noise(y, delta, seed, inner)
    if model != "uniform":
        raise ValueError(f"noise model {model!r} is not one of {NOISE_MODELS}")
    inner = inner or (lambda a, b: float(np.vdot(a, b)))
    y_delta = relative_uniform_noise(y, delta, seed)
    e = y_delta - np.asarray(y, dtype=float)
    return y_delta, math.sqrt(max(inner(e, e), 0.0))


def _is_single(items: Any, vector: bool) -> bool:
    """Whether ``items`` is one specification rather than a list of them."""
    if isinstance(items, (Concentration, Coil, str)) or not isinstance(items, Sequence):
        return True
    if len(items) == 3 and isinstance(items[0], str):  # ("tags", cell_tags, values)
        return True
    return vector and len(items) == 3 and all(isinstance(v, numbers.Real) for v in items)


def _as_list(items: Any, name: str, vector: bool = False) -> list:
    """A list of specifications (``vector``: a bare 3-tuple is one constant sensitivity)."""
    if _is_single(items, vector):
        items = [items]
    if len(items) == 0:
        raise ConfigError(f"{name}: at least one entry is needed")
    return list(items)


class Observation:
    """The discrete observation operator ``O: m -> y`` of eq. (5) (see the module docstring).

    Args:
        V: the 3-component space of the magnetisation.
        grid: the time grid (samples at its midpoints).
        concentrations: :class:`Concentration` objects or bare concentration values (``K``).
        coils: :class:`Coil` objects or bare sensitivities (delta transfer) (``L``).
        mu0: the prefactor ``mu0`` of (5) (the §4.3 tests use 1).
        quadrature_degree: optional quadrature degree of the forms ``b_kl``.

    Raises:
        ConfigError: an invalid concentration, coil or transfer specification (names the field).
    """

    def __init__(self, V, grid: TimeGrid, concentrations: Any, coils: Any, mu0: float = MU0,
                 *, quadrature_degree: int | None = None):
        if ufl.TestFunction(V).ufl_shape != (3,):
            raise ConfigError("observation.V: the magnetisation space must have 3 components")
        if not math.isfinite(mu0):
            raise ConfigError(f"observation.mu0: must be finite, got {mu0}")
        concs = [c if isinstance(c, Concentration) else Concentration(c)
                 for c in _as_list(concentrations, "observation.concentrations")]
        coil_list = [c if isinstance(c, Coil) else Coil(c)
                     for c in _as_list(coils, "observation.coils", vector=True)]
        self.V, self.grid, self.mu0 = V, grid, float(mu0)
        self.comm: MPI.Comm = V.mesh.comm
        self.n = n_owned(V)
        self._transfers = tuple(parse_transfer(c.transfer, grid.n_t - 1, f"coils[{i}].transfer")
                                for i, c in enumerate(coil_list))
        self.coil_names = tuple(c.name or f"coil{i}" for i, c in enumerate(coil_list))
        self.concentration_names = tuple(c.name or f"c{i}" for i, c in enumerate(concs))
        self._b = self._assemble(concs, coil_list, quadrature_degree)

    def _assemble(self, concs, coil_list, degree) -> np.ndarray:
        mesh = self.V.mesh
        c_ufl = [concentration_expression(c.value, mesh, f"concentrations[{k}].value")
                 for k, c in enumerate(concs)]
        p_ufl = [sensitivity_expression(c.sensitivity, mesh, f"coils[{i}].sensitivity")
                 for i, c in enumerate(coil_list)]
        v = ufl.TestFunction(self.V)
        dx = ufl.dx(domain=mesh, metadata={} if degree is None
                    else {"quadrature_degree": int(degree)})
        b = np.empty((len(c_ufl), len(p_ufl), self.n))
        for k, c in enumerate(c_ufl):
            for i, p in enumerate(p_ufl):
                b[k, i] = assemble_owned(fem.form(c * ufl.inner(p, v) * dx))
        b.setflags(write=False)
        return b

    # --- shapes and inner products -------------------------------------------------------
    @property
    def signals_shape(self) -> tuple[int, int, int]:
        """``(K, L, N)``."""
        return (self._b.shape[0], self._b.shape[1], self.grid.n_t - 1)

    @property
    def times(self) -> np.ndarray:
        """The sample times: the midpoints ``t_{n+1/2}``."""
        return self.grid.midpoints

    @property
    def functionals(self) -> np.ndarray:
        """The owned entries of ``b_kl``, shape ``(K, L, n_owned)`` (read-only)."""
        return self._b

    @property
    def transfers(self) -> tuple[Transfer, ...]:
        """The parsed transfer functions, one per coil."""
        return self._transfers

    @property
    def pairs(self) -> list[tuple[int, int]]:
        """All ``(k, l)`` index pairs (the Kaczmarz sub-problems of Alg. 3.4)."""
        K, L, _ = self.signals_shape
        return [(k, i) for k in range(K) for i in range(L)]

    def inner_range(self, y1: np.ndarray, y2: np.ndarray) -> float:
        """``sum_kl sum_n dt y1 y2`` (replicated data: no communication)."""
        self._check_data(y1, "y1")
        self._check_data(y2, "y2")
        return self.grid.dt * float(np.vdot(y1, y2))

    def norm_range(self, y: np.ndarray) -> float:
        """``sqrt(inner_range(y, y))``."""
        return math.sqrt(max(self.inner_range(y, y), 0.0))

    # --- the operator -----------------------------------------------------------------------
    def signals(self, m: np.ndarray) -> np.ndarray:
        """The spatial part ``s_kl,n = b_kl^T D m_n`` (global, shape ``(K, L, N)``)."""
        self._check_trajectory(m)
        K, L, N = self.signals_shape
        levels = self._b.reshape(K * L, self.n) @ np.asarray(m, dtype=float).T  # b^T m_i
        local = np.ascontiguousarray(np.diff(levels, axis=1) / self.grid.dt)
        out = np.empty_like(local)
        self.comm.Allreduce(local, out, op=MPI.SUM)
        return out.reshape(K, L, N)

    def apply(self, m: np.ndarray) -> np.ndarray:
        """The data ``y = O m`` of shape ``(K, L, N)`` (identical on all ranks)."""
        s = self.signals(m)
        dt = self.grid.dt
        return -self.mu0 * np.stack([tr.apply(s[:, i], dt)
                                     for i, tr in enumerate(self._transfers)], axis=1)

    __call__ = apply

    def transpose(self, y: np.ndarray) -> np.ndarray:
        """``l = O^T y``, shape ``(n_t, n_owned)``: ``(O m, y)_Y = global_dot(l, m)``."""
        self._check_data(y, "y")
        dt = self.grid.dt
        K, L, N = self.signals_shape
        z = -self.mu0 * np.stack([tr.transpose(y[:, i], dt)
                                  for i, tr in enumerate(self._transfers)], axis=1)
        w = z.reshape(K * L, N).T @ self._b.reshape(K * L, self.n)  # (N, n_owned)
        out = np.empty((self.grid.n_t, self.n))  # l_i = w_{i-1} - w_i, w_{-1} = w_N = 0
        out[0], out[-1] = -w[0], w[-1]
        np.subtract(w[:-1], w[1:], out=out[1:-1])
        return out

    def add_noise(self, y: np.ndarray, delta: float, seed: int) -> tuple[np.ndarray, float]:
        """:func:`add_noise` in the range norm."""
        self._check_data(y, "y")
        return add_noise(y, delta, seed, inner=lambda a, b: self.grid.dt * float(np.vdot(a, b)))

    def select(self, k: int | Sequence[int], l: int | Sequence[int]) -> Observation:
        """The observation restricted to concentrations ``k`` and coils ``l``.

        Shares the assembled forms; its data are ``y[np.ix_(k, l)]`` of the full data (for
        integers, ``y[k:k+1, l:l+1]``).
        """
        K, L, _ = self.signals_shape
        ks, ls = np.atleast_1d(k).astype(int), np.atleast_1d(l).astype(int)
        if np.any((ks < 0) | (ks >= K)) or np.any((ls < 0) | (ls >= L)):
            raise IndexError(f"select: indices (k={k}, l={l}) out of range for K={K}, L={L}")
        sub = copy.copy(self)
        sub._b = self._b[np.ix_(ks, ls)]
        sub._b.setflags(write=False)
        sub._transfers = tuple(self._transfers[i] for i in ls)
        sub.coil_names = tuple(self.coil_names[i] for i in ls)
        sub.concentration_names = tuple(self.concentration_names[i] for i in ks)
        return sub

    # --- validation ---------------------------------------------------------------------------
    def _check_trajectory(self, m: np.ndarray) -> None:
        shape = (self.grid.n_t, self.n)
        code = 2 if np.shape(m) != shape else int(not np.all(np.isfinite(m)))
        code = self.comm.allreduce(code, op=MPI.MAX)  # all ranks raise together
        if code == 2:
            raise ValueError(f"Observation: the trajectory must have shape (n_t, n_owned) = "
                             f"({self.grid.n_t}, n_owned) on every rank")
        if code == 1:
            raise ValueError("Observation: the trajectory contains NaN/Inf")

    def _check_data(self, y: np.ndarray, name: str) -> None:
        if np.shape(y) != self.signals_shape:
            raise ValueError(f"Observation: {name} must have shape (K, L, N) = "
                             f"{self.signals_shape}, got {np.shape(y)}")
        if not np.all(np.isfinite(y)):
            raise ValueError(f"Observation: {name} contains NaN/Inf")
