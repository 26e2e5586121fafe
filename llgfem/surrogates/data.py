"""Trajectory datasets for LLG surrogates (paper 001, eq. (1)): layout, splits, FEM generator.

The training tensor (eq. (1), field samples first)::

    D(i, j, :) = [h tag | m_x | m_y | m_z]  in  R^{p + 3N},   i < n fields, j < s times,

where the tag ``h`` (``p = 2``: ``|h|`` and the angle in degrees from ``e1`` in the
``(e1, e2)`` plane) labels the field of run ``i`` at time ``t_j`` and ``m_q`` (``q = x, y, z``)
are the nodal values of one magnetisation component on the ``N`` mesh nodes (component blocks,
not interleaved).

HDF5 layout (:func:`write_dataset` / :func:`read_dataset`)::

    /D            float64 (n, s, p + 3N)   the tensor above
    /times        float64 (s,)             t_j
    /coordinates  float64 (N, 3)           node coordinates (the order of the m_q blocks)
    attrs: layout = "h|m_x|m_y|m_z", p, N, n, s, tag_names (p strings), format_version = 1,
           meta (JSON string: generator settings)

The generator runs llgfem's FEM LLG solver (:class:`llgfem.solvers.llg.LLGSolver`, the
length-preserving ``landau_lifshitz`` form) once per field ``h = |h| (cos a e1 + sin a e2)``,
``(|h|, a)`` uniform in given ranges, from a fixed initial state ``m0``; one solver is compiled
and the field enters through a :class:`dolfinx.fem.Constant`.  Fields are distributed over the
ranks of a communicator, each rank solving on its own ``COMM_SELF`` copy of the mesh.

Notation: ``n`` fields, ``s`` time points, ``p`` tag length, ``N`` nodes, ``D`` dataset.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import h5py
import numpy as np
from mpi4py import MPI

__all__ = [
    "FEMDatasetSpec",
    "TrajectoryDataset",
    "generate_fem_dataset",
    "kfold_indices",
    "read_dataset",
    "train_test_split",
    "write_dataset",
]

LAYOUT = "h|m_x|m_y|m_z"
FORMAT_VERSION = 1


@dataclass
class TrajectoryDataset:
    """The tensor ``D`` with its time points, node coordinates and metadata."""

    D: np.ndarray
    times: np.ndarray
    coordinates: np.ndarray
    p: int = 2
    tag_names: tuple[str, ...] = ("h_abs", "angle_deg")
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        n, s, width = self.D.shape
        if (width - self.p) % 3 or len(self.times) != s or len(self.tag_names) != self.p:
            raise ValueError(f"TrajectoryDataset: inconsistent shapes D {self.D.shape}, "
                             f"times {len(self.times)}, p = {self.p}")
        if len(self.coordinates) != self.N:
            raise ValueError("TrajectoryDataset: coordinates must have N rows")

    @property
    def N(self) -> int:
        return (self.D.shape[2] - self.p) // 3

    @property
    def tags(self) -> np.ndarray:
        """``(n, s, p)`` field tags."""
        return self.D[:, :, : self.p]

    @property
    def states(self) -> np.ndarray:
        """``(n, s, 3N)`` states ``[m_x | m_y | m_z]``."""
        return self.D[:, :, self.p:]

    def subset(self, index: np.ndarray) -> TrajectoryDataset:
        """The fields ``index`` (a copy)."""
        return TrajectoryDataset(self.D[index].copy(), self.times, self.coordinates, self.p,
                                 self.tag_names, dict(self.meta))

    def mean_magnetisation(self, states: np.ndarray | None = None) -> np.ndarray:
        """Node-averaged ``(m_x, m_y, m_z)``: ``(..., 3)`` for states ``(..., 3N)``."""
        x = self.states if states is None else states
        return x.reshape(*x.shape[:-1], 3, self.N).mean(axis=-1)


def write_dataset(path: str | Path, data: TrajectoryDataset,
                  comm: MPI.Comm = MPI.COMM_WORLD) -> Path:
    """Write ``data`` in the layout of the module docstring (rank 0; barrier on ``comm``)."""
    path = Path(path)
    if comm.rank == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(path, "w") as f:
            f.create_dataset("D", data=data.D)
            f.create_dataset("times", data=data.times)
            f.create_dataset("coordinates", data=data.coordinates)
            n, s, _ = data.D.shape
            f.attrs.update({"layout": LAYOUT, "p": data.p, "N": data.N, "n": n, "s": s,
                            "tag_names": list(data.tag_names),
                            "format_version": FORMAT_VERSION,
                            "meta": json.dumps(data.meta)})
    comm.Barrier()
    return path


def read_dataset(path: str | Path, what: str = "surrogate.dataset") -> TrajectoryDataset:
    """Read a dataset written by :func:`write_dataset` (any rank, independently).

    Raises:
        DataError: if the file is missing, not HDF5, not this layout, lacks an entry, has
            inconsistent shapes or non-finite values (the message names ``what``).
    """
    from llgfem.errors import DataError, check_array, reading, require_file

    path = require_file(path, what)
    with reading(path, what), h5py.File(path, "r") as f:
        if f.attrs.get("layout") != LAYOUT:
            raise DataError(f"{what}: {path} is not a surrogate dataset "
                            f"(layout {f.attrs.get('layout')!r})")
        names = tuple(str(t) for t in f.attrs["tag_names"])
        data = TrajectoryDataset(check_array(f["D"][...], "D", what, 3),
                                 check_array(f["times"][...], "times", what, 1),
                                 check_array(f["coordinates"][...], "coordinates", what),
                                 int(f.attrs["p"]), names, json.loads(f.attrs["meta"]))
    n, s, width = data.D.shape
    if data.times.size != s or not 0 <= data.p < width or len(names) != data.p:
        raise DataError(f"{what}: {path} has inconsistent shapes (D {data.D.shape}, "
                        f"{data.times.size} times, p = {data.p}, {len(names)} tag names)")
    if (width - data.p) % 3 or n < 1:
        raise DataError(f"{what}: {path}: D has {width - data.p} state columns (not 3N) "
                        f"or no trajectories")
    return data


def train_test_split(n: int, test_fraction: float = 0.2,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random split of ``range(n)`` into sorted (train, test) indices."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"train_test_split: test_fraction in (0, 1), got {test_fraction}")
    n_test = min(max(1, round(test_fraction * n)), n - 1)
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def kfold_indices(n: int, k: int = 10, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Seeded k-fold (train, validation) index pairs; the folds partition ``range(n)``."""
    if not 2 <= k <= n:
        raise ValueError(f"kfold_indices: need 2 <= k <= n, got k = {k}, n = {n}")
    folds = np.array_split(np.random.default_rng(seed).permutation(n), k)
    return [(np.sort(np.concatenate(folds[:i] + folds[i + 1:])), np.sort(f))
            for i, f in enumerate(folds)]


@dataclass(frozen=True)
class FEMDatasetSpec:
    """A field-tagged family of FEM LLG runs (the ``[dataset]`` table of the surrogate jobs).

    Attributes:
        n_fields: number ``n`` of field samples.
        h_range: ``|h|`` range (scaled units of :mod:`llgfem.physics`).
        angle_range: angle range in degrees, measured from ``e1`` in the ``(e1, e2)`` plane.
        a1, a2, exchange: coefficients of the scaled LLG equation (``exchange > 0``).
        initial: ``uniform`` (along ``initial_direction``) or ``nonuniform`` (see
            :func:`llgfem.builders.initial_state`).
        initial_direction: direction of a uniform ``m0``.
        seed: seed of the field samples.
    """

    n_fields: int = 60
    h_range: tuple[float, float] = (0.5, 1.0)
    angle_range: tuple[float, float] = (180.0, 200.0)
    a1: float = 0.2
    a2: float = 1.0
    exchange: float = 0.01
    initial: str = "uniform"
    initial_direction: tuple[float, float, float] = (0.0, 0.0, 1.0)
    seed: int = 0

    def validate(self, where: str = "dataset") -> None:
        from llgfem.config import ConfigError

        if self.n_fields < 1:
            raise ConfigError(f"{where}.n_fields: must be >= 1, got {self.n_fields}")
        for name in ("h_range", "angle_range"):
            lo, hi = getattr(self, name)
            if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
                raise ConfigError(f"{where}.{name}: need finite lower <= upper")
        if self.initial not in ("uniform", "nonuniform"):
            raise ConfigError(f"{where}.initial: {self.initial!r} is not uniform or nonuniform")
        if self.exchange <= 0:
            raise ConfigError(f"{where}.exchange: must be > 0, got {self.exchange}")
        self._validate_coefficients(where)
        d = np.asarray(self.initial_direction, dtype=float)
        if not (np.all(np.isfinite(d)) and np.abs(d).max() > 0):
            raise ConfigError(f"{where}.initial_direction: must be a finite non-zero vector, "
                              f"got {list(self.initial_direction)}")

    def _validate_coefficients(self, where: str) -> None:
        """The checks of the ``[llg]`` table on ``(a1, a2, exchange)`` (ConfigError here).

        ``a2 = 0`` is valid: the Landau-Lifshitz form then is the pure damping flow
        ``m_t = -m x (m x H) / a1``; it is stiffer than the demo's (``1/a1 = 5`` against
        ``a1/(a1^2 + a2^2) = 0.19``) and may need more time levels, which the solver's error
        says.  ``a1 = a2 = 0`` (no time derivative) and ``a1 < 0`` are refused.
        """
        from llgfem.config import ConfigError
        from llgfem.physics import LLGParameters, ParameterError

        try:
            LLGParameters(a1=self.a1, a2=self.a2, exchange=self.exchange).validate(where)
        except ParameterError as e:
            raise ConfigError(str(e)) from None

    def sample_tags(self) -> np.ndarray:
        """``(n, 2)`` samples ``(|h|, angle in degrees)``, uniform in the ranges (seeded)."""
        rng = np.random.default_rng(self.seed)
        return np.column_stack([rng.uniform(*self.h_range, self.n_fields),
                                rng.uniform(*self.angle_range, self.n_fields)])


def field_vector(tag: np.ndarray) -> np.ndarray:
    """``h = |h| (cos a, sin a, 0)`` for a tag ``(|h|, a in degrees)``."""
    a = np.deg2rad(tag[1])
    return tag[0] * np.array([np.cos(a), np.sin(a), 0.0])


def _serial_solver(spec: FEMDatasetSpec, domain_cfg, T: float, n_t: int):
    """One LLG solver on a ``COMM_SELF`` mesh whose field is a Constant; returns (solver, h, m0)."""
    import dolfinx.fem as fem

    from llgfem.builders import LLGConfig, initial_state
    from llgfem.mesh import create_domain
    from llgfem.physics import FieldSpec, LLGParameters
    from llgfem.solvers.llg import LLGSolver
    from llgfem.spacetime import TimeGrid, create_vector_space, interpolate_levels

    mesh = create_domain(MPI.COMM_SELF, domain_cfg).mesh
    V = create_vector_space(mesh)
    h = fem.Constant(mesh, np.zeros(3))
    field = FieldSpec(kind="expression", expression=lambda x, t: [h[0], h[1], h[2]])
    params = LLGParameters(a1=spec.a1, a2=spec.a2, exchange=spec.exchange)
    solver = LLGSolver(V, TimeGrid(T, n_t), params, field, form="landau_lifshitz",
                       prefix="llgfem_surrogate_llg_")
    x = mesh.geometry.x
    job = LLGConfig(initial=spec.initial, initial_direction=spec.initial_direction)
    m0 = initial_state(job, mesh.geometry.dim, x.min(axis=0), x.max(axis=0))
    return solver, h, interpolate_levels(V, lambda y, t: m0(y), [0.0])[0]


def _solve_fields(solver, h, m0: np.ndarray, tags: np.ndarray, indices) -> tuple[dict, dict]:
    """States ``(s, 3N)`` in component blocks and solve times of the fields ``indices``."""
    local, seconds = {}, {}
    for i in indices:
        h.value[:] = field_vector(tags[i])
        t0 = time.perf_counter()
        m = solver.solve(m0)  # (s, 3N) interleaved by node
        seconds[i] = time.perf_counter() - t0
        local[i] = m.reshape(len(m), -1, 3).transpose(0, 2, 1).reshape(len(m), -1)
    return local, seconds


def generate_fem_dataset(spec: FEMDatasetSpec, domain_cfg=None, T: float = 10.0, n_t: int = 60,
                         comm: MPI.Comm = MPI.COMM_WORLD) -> TrajectoryDataset:
    """Solve the LLG equation once per sampled field; every rank returns the whole dataset.

    Args:
        spec: field ranges, coefficients, initial state, seed.
        domain_cfg: :class:`llgfem.config.DomainConfig` (default: interval [0, 1], 12 cells).
        T, n_t: time horizon and number ``s`` of time points (``t_j = j T/(s - 1)``).
        comm: fields ``i`` with ``i % size == rank`` are solved on this rank (on COMM_SELF).

    Returns:
        The dataset (tags constant in time: static fields); ``meta`` records the settings and
        the mean wall time of one ``solver.solve`` (JIT compilation excluded).
    """
    from llgfem.config import DomainConfig

    spec.validate()
    domain_cfg = domain_cfg or DomainConfig(kind="interval", lower=(0.0,), upper=(1.0,), n=(12,))
    solver, h, m0 = _serial_solver(spec, domain_cfg, T, n_t)
    tags, mine = spec.sample_tags(), range(comm.rank, spec.n_fields, comm.size)
    local, seconds = _solve_fields(solver, h, m0, tags, mine)
    states = {k: v for part in comm.allgather(local) for k, v in part.items()}
    solve_times = [t for part in comm.allgather(seconds) for t in part.values()]
    ordered = np.stack([states[i] for i in range(spec.n_fields)])
    D = np.concatenate([np.repeat(tags[:, None, :], n_t, axis=1), ordered], axis=2)
    coords = solver.V.tabulate_dof_coordinates()[: ordered.shape[2] // 3]
    meta = {"generator": "llgfem.surrogates.data.generate_fem_dataset", "spec": asdict(spec),
            "domain": asdict(domain_cfg), "T": T, "n_t": n_t, "form": "landau_lifshitz",
            "solver_seconds_per_trajectory": float(np.mean(solve_times)), "mpi_size": comm.size}
    return TrajectoryDataset(D, solver.grid.times, coords, 2, ("h_abs", "angle_deg"), meta)
