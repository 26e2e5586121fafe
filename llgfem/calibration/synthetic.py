r"""Synthetic data through a file: simulate -> write -> read (no inverse crime unless asked).

Every simulated identification (``calibrate`` without ``[data]``, ``all_at_once`` with
``observe = true``) takes its data from a file written here, exactly as a measured file would
be read: the fitting model never hands its own ``F(a_true)`` to the iteration.  The **data
model** is the fitting model's config with

* the mesh refined: built-in ``interval``/``rectangle``/``box`` domains get ``n * refine``
  cells per direction (so ``refine`` is the factor by which the cell width shrinks); mesh files
  are refined ``log2(refine)`` times by uniform halving (``dolfinx.mesh.refine``, cell tags
  transferred to the children), so ``refine`` must then be a power of 2;
* the time grid refined: ``(n_t - 1) * time_refine`` steps on the same ``[0, T]``;
* the time scheme replaced (``scheme``; default the fitting model's ``llg.scheme``).

With ``refine = time_refine = 1`` and the same scheme the data model *is* the fitting model
(the papers' experiments, an "inverse crime"): the summary says so and rank 0 logs one warning.
The ``all_at_once`` data are the observed *exact* solution of the paper case (on the refined
mesh and grid), never the discrete model's ``F(a_true)``; they are not flagged.  (For Test 3
and the §4.3 observation they do not even depend on the mesh and grid: refine = 2,
time_refine = 3 changes them by 2e-15.)

Sampling.  The data model's signals (paper 002 eq. (5), :mod:`llgfem.operators.observation`)
live at its midpoints :math:`t^f_{j+1/2} = (j + 1/2)\, dt/r` (``r = time_refine``); the fit
needs them at the fitting model's midpoints :math:`t_{n+1/2} = (n + 1/2)\, dt`.  Since

.. math::  t_{n+1/2} = t^f_{j+1/2}, \qquad j = n r + (r - 1)/2,

an odd ``r`` samples exactly (the fine difference quotient straddling ``t_{n+1/2}``); an even
``r`` interpolates linearly between the two fine midpoints around ``t_{n+1/2}`` (a central
difference over ``2 dt/r``), an error :math:`\le (dt/r)^2 \max|y''| / 8`, second order like
the schemes themselves.

Noise is added afterwards on the fitting grid by :func:`llgfem.operators.observation.noisy_data`
(``delta``, ``seed``, ``noise`` of the job table), so ``delta`` keeps the papers' meaning
(``||y_delta - y|| = delta ||y||`` for ``norm``; ``y + delta |y| U(-1, 1)`` for ``uniform``).

File (:mod:`llgfem.io.signals`, rank 0 writes): ``/measurement/data`` = ``y_delta``,
``/measurement/noiseFree`` = ``y`` (simulated files only: used for the noise level of the
discrepancy principle and for reporting, never fitted), ``/acquisition/time`` = the fitting
midpoints (seconds in physical runs, scaled time otherwise), attributes ``delta``, ``seed``,
``noise``, ``data_model`` (text), ``data_model_cells``, ``data_model_n_t``,
``data_model_scheme``, ``refine``, ``time_refine``, ``inverse_crime``.

Config table ``[synthetic]`` (optional; job kinds ``calibrate`` and ``all_at_once``)::

    [synthetic]
    refine = 1          # data mesh: n * refine cells (built-in), log2(refine) halvings (file)
    time_refine = 1     # data grid: (n_t - 1) * time_refine steps
    scheme = ""         # data time scheme ("": the fitting model's llg.scheme)
    format = "signals"  # llgfem signals HDF5 (MDF files: llgfem.calibration.simulate)

Notation: ``y`` noise-free data, ``y_delta`` noisy data ``(K, L, N)``, ``K`` concentrations,
``L`` coils, ``N = n_t - 1`` fitting midpoints, ``r`` = ``time_refine``, ``dt`` the fitting
step.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from mpi4py import MPI

from llgfem.config import MAX_CELLS, MAX_TIME_LEVELS, Config, ConfigError
from llgfem.io.signals import SignalData, load_signals, save_signals
from llgfem.operators.observation import noisy_data
from llgfem.problem import SCHEMES
from llgfem.spacetime import TimeGrid

__all__ = ["INVERSE_CRIME_WARNING", "SyntheticConfig", "SyntheticData", "data_model_config",
           "read_synthetic", "refined_domain", "sample_at_midpoints", "simulate_measurement",
           "synthetic_config", "temporary_file", "write_measurement",
           "write_noisy"]

FORMATS = ("signals",)
#: The one warning line of a run whose data come from the fitting model itself.
INVERSE_CRIME_WARNING = ("data simulated by the fitting model itself (inverse crime): a paper "
                         "reproduction, not a validation")
MAX_REFINE = 64


@dataclass(frozen=True)
class SyntheticConfig:
    """``[synthetic]``: the data model of simulated runs (module docstring)."""

    refine: int = 1
    time_refine: int = 1
    scheme: str = ""
    format: str = "signals"

    def validate(self, where: str) -> None:
        checks = [
            (1 <= self.refine <= MAX_REFINE, "refine",
             f"must be an integer in [1, {MAX_REFINE}], got {self.refine}"),
            (1 <= self.time_refine <= MAX_REFINE, "time_refine",
             f"must be an integer in [1, {MAX_REFINE}], got {self.time_refine}"),
            (self.scheme in ("", *SCHEMES), "scheme",
             f"{self.scheme!r} is not one of {tuple(SCHEMES)} (or '' = the fitting scheme)"),
            (self.format in FORMATS, "format",
             f"{self.format!r} is not one of {FORMATS} (MDF measurements from a finer model: "
             "llgfem.calibration.simulate, then a [data] table)"),
        ]
        for ok, key, msg in checks:
            if not ok:
                raise ConfigError(f"{where}.{key}: {msg}")

    def data_scheme(self, fitting: str) -> str:
        """The data model's scheme (``fitting`` unless ``scheme`` is set)."""
        return self.scheme or fitting

    def inverse_crime(self, fitting_scheme: str) -> bool:
        """Whether the data model equals the fitting model."""
        return (self.refine == 1 and self.time_refine == 1
                and self.data_scheme(fitting_scheme) == fitting_scheme)


@dataclass(frozen=True, eq=False)
class SyntheticData:
    """What a job takes from the file it wrote (identical on every rank).

    Attributes:
        y_delta: the noisy data ``(K, L, N)`` (``/measurement/data``).
        y: the noise-free data (``/measurement/noiseFree``).
        times: the file's sample times ``(N,)``.
        data_model: ``cells``, ``n_t``, ``scheme``, ``refine``, ``time_refine``,
            ``inverse_crime`` as written to the file.
        path: the file.
    """

    y_delta: np.ndarray
    y: np.ndarray
    times: np.ndarray
    data_model: dict
    path: Path


def synthetic_config(cfg: Config) -> SyntheticConfig:
    """The parsed ``[synthetic]`` table (defaults when absent)."""
    return cfg.section("synthetic", SyntheticConfig)


# -- the data model ------------------------------------------------------------------------------
def _llg_table(cfg: Config) -> dict:
    table = cfg.sections.get("llg", {})
    return dict(table) if isinstance(table, dict) else {}


def data_model_config(cfg: Config, syn: SyntheticConfig) -> Config:
    """``cfg`` with the data model's time grid and scheme (the mesh: :func:`refined_domain`).

    Raises:
        ConfigError: a scheme the fitting problem cannot take (the paper cases: midpoint only).
    """
    llg = _llg_table(cfg)
    fitting = llg.get("scheme", "midpoint")
    scheme = syn.data_scheme(fitting)
    if str(llg.get("initial", "")).startswith("paper") and scheme != "midpoint":
        raise ConfigError(f"synthetic.scheme: {llg['initial']!r} has Neumann data/sources: only "
                          f"the midpoint scheme takes them, got {scheme!r}")
    sections = dict(cfg.sections)
    if scheme != fitting:
        sections["llg"] = {**llg, "scheme": scheme}
    n_t = (cfg.time.n_t - 1) * syn.time_refine + 1
    return dataclasses.replace(cfg, time=dataclasses.replace(cfg.time, n_t=n_t),
                               sections=sections)


def _check_refine(cfg: Config, syn: SyntheticConfig) -> None:
    """Refuse data models beyond the config limits (config only: same verdict on all ranks)."""
    if cfg.domain.kind == "file" and syn.refine & (syn.refine - 1):
        raise ConfigError(f"synthetic.refine: a mesh file is refined by halving its cells, so "
                          f"refine must be a power of 2 (1, 2, 4, ...), got {syn.refine}")
    if cfg.domain.kind != "file" and math.prod(cfg.domain.n) * syn.refine ** len(
            cfg.domain.n) > MAX_CELLS:
        raise ConfigError(f"synthetic.refine: {syn.refine} x domain.n exceeds the limit "
                          f"{MAX_CELLS:.0e} cells of a built-in mesh")
    if (cfg.time.n_t - 1) * syn.time_refine + 1 > MAX_TIME_LEVELS:
        raise ConfigError(f"synthetic.time_refine: {syn.time_refine} x (time.n_t - 1) steps "
                          f"exceed the limit of {MAX_TIME_LEVELS} time levels")


def refined_domain(comm: MPI.Comm, cfg: Config, refine: int):
    """The data model's domain: ``n * refine`` cells (built-in) or ``log2(refine)`` uniform
    halvings of a mesh file with its cell tags carried to the children (collective)."""
    from llgfem.mesh import Domain, create_domain

    if cfg.domain.kind != "file":
        n = tuple(k * refine for k in cfg.domain.n)
        return create_domain(comm, dataclasses.replace(cfg.domain, n=n))
    domain = create_domain(comm, cfg.domain)
    for _ in range(int(round(math.log2(refine)))):
        domain = _halve(domain, Domain)
    return domain


def _halve(domain, domain_cls):
    """One uniform refinement with the cell tags carried to the children (facet tags are
    dropped: the LLG problems use natural boundary conditions)."""
    import dolfinx.mesh

    msh = domain.mesh
    msh.topology.create_entities(1)
    fine = dolfinx.mesh.refine(msh)[0]
    tags = None
    if domain.cell_tags is not None:
        tags = _transfer_cell_tags(domain.cell_tags, msh, fine)
    return domain_cls(fine, tags, None, dict(domain.physical_groups))


def _transfer_cell_tags(tags, coarse, fine):
    """Cell tags of the children of tagged cells, ghosts included: the coarse tag as a DG0
    function evaluated at the fine cells' points (each child lies inside its parent; DOLFINx's
    ``transfer_meshtag`` refuses ghosted meshes)."""
    import dolfinx.fem as fem
    import dolfinx.mesh

    tdim = coarse.topology.dim
    V0 = fem.functionspace(coarse, ("DG", 0))
    u0 = fem.Function(V0)
    u0.x.array[:] = -1.0  # untagged
    u0.x.array[V0.dofmap.list[tags.indices, 0]] = tags.values
    u0.x.scatter_forward()
    V1 = fem.functionspace(fine, ("DG", 0))
    u1 = fem.Function(V1)
    fmap = fine.topology.index_map(tdim)
    cells = np.arange(fmap.size_local + fmap.num_ghosts, dtype=np.int32)
    u1.interpolate_nonmatching(u0, cells, fem.create_interpolation_data(V1, V0, cells))
    u1.x.scatter_forward()
    values = np.rint(u1.x.array[V1.dofmap.list[:, 0]]).astype(np.int32)
    keep = np.flatnonzero(values >= 0).astype(np.int32)
    out = dolfinx.mesh.meshtags(fine, tdim, keep, values[keep])
    out.name = "cell_tags"
    return out


def sample_at_midpoints(y_fine: np.ndarray, r: int) -> np.ndarray:
    """Data ``(..., N r)`` at the fine midpoints -> ``(..., N)`` at the fitting midpoints.

    Odd ``r``: the fine midpoint ``j = n r + (r - 1)/2`` (exact); even ``r``: the mean of the
    fine midpoints ``n r + r/2 - 1`` and ``n r + r/2`` (linear interpolation, module docstring).
    """
    y_fine = np.asarray(y_fine, dtype=float)
    if y_fine.shape[-1] % r:
        raise ValueError(f"sample_at_midpoints: {y_fine.shape[-1]} fine samples are not a "
                         f"multiple of time_refine = {r}")
    n = y_fine.shape[-1] // r
    start = np.arange(n) * r
    if r % 2:
        return y_fine[..., start + (r - 1) // 2]
    return 0.5 * (y_fine[..., start + r // 2 - 1] + y_fine[..., start + r // 2])


def _llg_signals(cfg: Config, comm: MPI.Comm, syn: SyntheticConfig,
                 parameters: Sequence[str], state_guess: str) -> tuple:
    """``(y_fine (K, L, N r), coils, concentrations, cells)`` of the LLG data model."""
    from llgfem.builders import build_llg_problem, build_observation
    from llgfem.problem import paper_observation
    from llgfem.solvers.linear import SolverError

    data_cfg = data_model_config(cfg, syn)
    domain = refined_domain(comm, cfg, syn.refine)
    problem = build_llg_problem(data_cfg, domain.mesh, parameters=tuple(parameters))
    built = build_observation(data_cfg, domain, problem.V, problem.grid)
    obs = built[0] if built is not None else paper_observation(problem.V, problem.grid)
    guess = None
    if state_guess == "perturbed":
        guess = problem.m0[None, :] - 0.1 * np.sin(20 * problem.grid.times)[:, None]
    try:
        m = problem.forward(problem.a, warm_start=guess)
    finally:
        problem.destroy()
    y = obs.apply(m)
    if not np.all(np.isfinite(y)):  # replicated data: the same verdict on every rank
        raise SolverError("synthetic: the simulated receive-coil signals are not finite "
                          "(check concentration values, coil sensitivities and the field)")
    return y, obs.coil_names, obs.concentration_names, domain.num_cells_global()


def _paper_signals(cfg: Config, comm: MPI.Comm, syn: SyntheticConfig, case: int) -> tuple:
    """The §4.3 observation of paper case ``case``'s exact solution on the data grid."""
    from llgfem.paper_cases import paper_case
    from llgfem.problem import paper_observation
    from llgfem.spacetime import create_vector_space, interpolate_levels

    domain = refined_domain(comm, cfg, syn.refine)
    grid = TimeGrid(cfg.time.T, (cfg.time.n_t - 1) * syn.time_refine + 1)
    V = create_vector_space(domain.mesh)
    obs = paper_observation(V, grid)
    y = obs.apply(interpolate_levels(V, paper_case(case).exact_np, grid.times))
    return y, obs.coil_names, obs.concentration_names, domain.num_cells_global()


def simulate_measurement(cfg: Config, comm: MPI.Comm, out_path: str | Path, *,
                         delta: float, seed: int, noise: str = "norm",
                         parameters: Sequence[str] = ("a1", "a2"),
                         state_guess: str = "m0", paper_case: int | None = None) -> Path:
    """Simulate the data model of ``cfg`` and write noisy + noise-free data to ``out_path``.

    Args:
        cfg: the fitting run's config (``[synthetic]`` chooses the data model).
        comm: communicator (the data model's mesh lives on it; rank 0 writes).
        out_path: the signals file (``<run_dir>/data/measurement.h5`` in the jobs).
        delta, seed, noise: the noise of the job table (:func:`noisy_data`).
        parameters: identifiable parameters of the solver (the true ones are the config's).
        state_guess: ``perturbed`` (m0 - 0.1 sin(20 t), paper §4.3) or ``m0``: the Newton
            guess of the data model's forward solve.
        paper_case: instead of an LLG solve, observe the exact solution of paper 002's Test
            ``paper_case`` (the ``all_at_once`` data).

    Returns:
        The path written.

    Raises:
        ConfigError: invalid ``[synthetic]`` values, or signals that are identically zero.
        SolverError: non-finite signals.
    """
    syn = synthetic_config(cfg)
    _check_refine(cfg, syn)
    fitting_scheme = _llg_table(cfg).get("scheme", "midpoint")
    if paper_case is not None:
        if syn.scheme:
            raise ConfigError("synthetic.scheme: the all_at_once data are the observed exact "
                              "solution of the paper case (no time scheme); remove it")
        y_f, coils, concs, cells = _paper_signals(cfg, comm, syn, paper_case)
        scheme = "exact solution"
    else:
        y_f, coils, concs, cells = _llg_signals(cfg, comm, syn, parameters, state_guess)
        scheme = syn.data_scheme(fitting_scheme)
    y = sample_at_midpoints(y_f, syn.time_refine)
    if not np.any(y):  # replicated data: the same verdict on every rank
        raise ConfigError("synthetic: the simulated signals are identically zero (m does not "
                          "move: a field collinear with m0, or concentrations/coils that see "
                          "nothing); nothing can be identified from them")
    times = TimeGrid(cfg.time.T, cfg.time.n_t).midpoints  # SI in physical runs (config T)
    n_t = (cfg.time.n_t - 1) * syn.time_refine + 1
    # the observed exact solution is not the fitting model's F(a_true) (whose state carries
    # the discretisation error) on any mesh or grid: no inverse crime
    crime = paper_case is None and syn.inverse_crime(fitting_scheme)
    model = {"cells": int(cells), "n_t": int(n_t), "scheme": scheme, "refine": syn.refine,
             "time_refine": syn.time_refine, "inverse_crime": bool(crime)}
    return write_noisy(out_path, y, times, coils, concs, delta=delta, seed=seed, noise=noise,
                       data_model=model, comm=comm)


def write_noisy(path: str | Path, y: np.ndarray, times: np.ndarray, coils: Sequence[str],
                concentrations: Sequence[str], *, delta: float, seed: int, noise: str,
                data_model: dict, comm: MPI.Comm = MPI.COMM_WORLD) -> Path:
    """Add the noise to the noise-free ``y (K, L, N)`` on the grid of ``times`` (uniform
    midpoints) and write both (:func:`write_measurement`)."""
    dt = float(times[1] - times[0]) if len(times) > 1 else 1.0
    inner = lambda a, b: dt * float(np.vdot(a, b))  # noqa: E731  (the range inner product)
    y = np.asarray(y, dtype=float)
    y_delta, _ = noisy_data(y.ravel(), delta, seed, noise, inner)
    return write_measurement(path, y_delta.reshape(y.shape), y, times, coils, concentrations,
                             delta=delta, seed=seed, noise=noise, data_model=data_model,
                             comm=comm)


def write_measurement(path: str | Path, y_delta: np.ndarray, y: np.ndarray, times: np.ndarray,
                      coils: Sequence[str], concentrations: Sequence[str], *, delta: float,
                      seed: int, noise: str, data_model: dict,
                      comm: MPI.Comm = MPI.COMM_WORLD) -> Path:
    """Write a simulated measurement (rank 0; collective outcome).  ``data_model`` keys become
    ``data_model_<key>`` attributes beside a one-line ``data_model`` description."""
    text = (f"{data_model['cells']} cells, {data_model['n_t']} time levels, "
            f"{data_model['scheme']} (refine {data_model['refine']}, time_refine "
            f"{data_model['time_refine']})")
    attrs = {"data_model": text, "noise": str(noise), "simulated": True,
             **{f"data_model_{k}": v for k, v in data_model.items()}}
    return save_signals(path, y_delta, times, list(coils), list(concentrations),
                        units="model", delta=float(delta),
                        seed=int(seed), attrs=attrs, noise_free=y, comm=comm)


def read_synthetic(path: str | Path, comm: MPI.Comm, expected_times: np.ndarray,
                   shape: tuple[int, int, int]) -> SyntheticData:
    """Read a simulated file back and check it against the fitting model.

    Raises:
        DataError: the file's shape or times differ from the fitting model's, or it has no
            noise-free data (same message on every rank: the data are replicated).
    """
    from llgfem.errors import DataError

    sig: SignalData = load_signals(path, comm)
    if sig.shape != tuple(shape):
        raise DataError(f"{path}: data of shape {sig.shape}, the fitting model expects {shape}")
    t = np.asarray(expected_times, dtype=float)
    if sig.times.shape != t.shape or not np.allclose(sig.times, t, rtol=0,
                                                     atol=1e-12 * max(abs(t).max(), 1e-300)):
        raise DataError(f"{path}: /acquisition/time differs from the fitting model's midpoints "
                        f"(n_t or T changed since the file was written?)")
    if sig.noise_free is None:
        raise DataError(f"{path}: no /measurement/noiseFree: not a simulated file")
    model = {k[len("data_model_"):]: v for k, v in sig.attrs.items()
             if k.startswith("data_model_")}
    return SyntheticData(sig.data, sig.noise_free, sig.times, model, Path(path))


def temporary_file(comm: MPI.Comm) -> tuple[Path, Callable[[], None]]:
    """A file name in a fresh directory on rank 0 (broadcast) and its clean-up (collective
    name; only rank 0 touches the file system)."""
    name = tempfile.mkdtemp(prefix="llgfem-synthetic-") if comm.rank == 0 else None
    name = comm.bcast(name, root=0)

    def cleanup() -> None:
        if comm.rank == 0:
            shutil.rmtree(name, ignore_errors=True)
    return Path(name) / "measurement.h5", cleanup
