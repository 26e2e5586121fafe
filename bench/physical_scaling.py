"""llgfem's physical scaling side by side with magnum.np on a 1-D strip (issue 11, item 6).

Physics (SI, no demagnetising field, free ends): a strip of length ``L = 200 nm`` along ``x``,
``Ms = 8e5 A/m``, ``A = 1.3e-11 J/m``, uniaxial ``K_u = 5e4 J/m^3`` along ``e_x`` (wall width
``Delta = sqrt(A/K_u) = 16 nm``), ``alpha = 0.1``, applied field ``mu0 H = 50 mT`` at 30 deg from
``e_x`` in the (x, y) plane, initial state a wall in the middle
``m0 = (cos theta, sin theta, 0)``, ``theta = 2 arctan(exp((x - L/2) / Delta))``; ``T = 1 ns``.
The wall moves and precesses, the domains precess into the field.

* llgfem: :class:`llgfem.physics.PhysicalParameters` with magnum.np's gyromagnetic ratio,
  non-dimensionalised by :class:`llgfem.physics.Units` (``B_ref`` = 50 mT, ``L_ref = Delta``),
  P1 on ``n`` cells, the Landau-Lifshitz (Bartels-Prohl) form, implicit midpoint.
* magnum.np: ``n x 1 x 1`` finite-difference cells, exchange + uniaxial anisotropy + external
  field, adaptive RKF45 (run by this file in the side environment ``.venv-sp4``:
  ``tools/bootstrap-sp4.sh``; that part imports neither llgfem nor DOLFINx).

Compared: the strip average ``<m>(t)`` at ``samples`` times and the profile ``m(x, T)`` (the FEM
nodal values interpolated linearly to the cell centres); also the same llgfem run with the
precession sense of paper 002 §4.2 (``a2 = +1``) to show what the sign error does.  Usage::

    .venv/bin/python bench/physical_scaling.py [--cells 100 200] [--json OUT]

prints one line per resolution and writes ``outputs/bench/physical_scaling.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

STRIP = {"length": 200e-9, "Ms": 8e5, "A": 1.3e-11, "Ku": 5e4, "alpha": 0.1,
         "field_T": 0.05, "angle_deg": 30.0, "T": 1e-9, "samples": 101}
MU0 = 4e-7 * math.pi


def wall_width() -> float:
    return math.sqrt(STRIP["A"] / STRIP["Ku"])


def initial_state(x: np.ndarray) -> np.ndarray:
    """``m0(x)`` of shape ``(3, len(x))`` (``x`` in m from the left end)."""
    theta = 2 * np.arctan(np.exp((x - STRIP["length"] / 2) / wall_width()))
    return np.stack([np.cos(theta), np.sin(theta), np.zeros_like(x)])


def field_T() -> np.ndarray:
    a = math.radians(STRIP["angle_deg"])
    return STRIP["field_T"] * np.array([math.cos(a), math.sin(a), 0.0])


def sample_times() -> np.ndarray:
    return np.linspace(0.0, STRIP["T"], STRIP["samples"])


# -- magnum.np (side environment) ----------------------------------------------------------------
def magnumnp_worker(cells: int, out: str, tol: float) -> None:
    """Run the strip in magnum.np and save ``times, mean_m, x, m_final, gamma`` to ``out``."""
    import magnumnp as mn
    import torch

    torch.set_default_dtype(torch.float64)
    mn.set_log_level(30)
    dx = (STRIP["length"] / cells, 1e-9, 1e-9)
    state = mn.State(mn.Mesh((cells, 1, 1), dx))
    state.material = {"Ms": STRIP["Ms"], "A": STRIP["A"], "Ku": STRIP["Ku"],
                      "Ku_axis": state.Constant([1.0, 0.0, 0.0]), "alpha": STRIP["alpha"]}
    x = (np.arange(cells) + 0.5) * dx[0]
    state.m = torch.tensor(initial_state(x).T.reshape(cells, 1, 1, 3).copy())
    terms = [mn.ExchangeField(), mn.UniaxialAnisotropyField(),
             mn.ExternalField(list(field_T() / MU0))]
    llg = mn.LLGSolver(terms, atol=tol, rtol=tol)
    times, means = sample_times(), []
    start = time.perf_counter()
    for k, t in enumerate(times):
        if k:
            llg.step(state, float(t - times[k - 1]))
        means.append(state.m.detach().cpu().numpy().reshape(-1, 3).mean(axis=0))
    m_final = state.m.detach().cpu().numpy().reshape(-1, 3)
    np.savez(out, times=times, mean_m=np.array(means), x=x, m_final=m_final,
             gamma=float(mn.constants.gamma), seconds=time.perf_counter() - start,
             version=str(mn.__version__))


def run_magnumnp(cells: int, tol: float = 1e-9, python: str | None = None) -> dict:
    """The worker in ``.venv-sp4`` by subprocess; returns its arrays."""
    from llgfem.surrogates.sp4 import find_magnumnp_python

    python = find_magnumnp_python(python)
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "mnp.npz")
        subprocess.run([python, __file__, "--magnumnp-worker", out, "--cells", str(cells),
                        "--tol", str(tol)], check=True)
        with np.load(out) as data:
            return {k: data[k] for k in data.files}


# -- llgfem ----------------------------------------------------------------------------------------
def run_llgfem(cells: int, n_t: int, gamma: float, sense: float = 1.0, comm=None) -> dict:
    """The strip in llgfem; ``sense = -1`` flips ``a2`` (paper 002's precession sense).

    Returns (identical on every rank) ``times`` (s), ``mean_m`` at the sample times, the
    nodal ``x`` (m) and ``m_final`` gathered and sorted, and the wall time.
    """
    import dataclasses

    import dolfinx.fem as fem
    import dolfinx.mesh as dm
    import ufl
    from mpi4py import MPI

    from llgfem.physics import FieldSpec, PhysicalParameters
    from llgfem.solvers.llg import LLGSolver
    from llgfem.spacetime import (
        TimeGrid,
        array_to_function,
        create_vector_space,
        interpolate_levels,
    )

    comm = comm or MPI.COMM_WORLD
    phys = PhysicalParameters(m_S=STRIP["Ms"], gamma=gamma, alpha_D=STRIP["alpha"],
                              A=STRIP["A"], K_u=STRIP["Ku"], easy_axis=(1.0, 0.0, 0.0))
    units = phys.units(B_ref=STRIP["field_T"], L_ref=wall_width())
    params = phys.llg(units)
    params = dataclasses.replace(params, a2=sense * params.a2)
    length = units.to_dimensionless_length(STRIP["length"])
    V = create_vector_space(dm.create_interval(comm, cells, [0.0, length]))
    grid = TimeGrid(units.to_dimensionless_time(STRIP["T"]), n_t)
    b = field_T()
    spec = units.field_spec(FieldSpec(kind="static", amplitude=float(np.linalg.norm(b)),
                                      direction=tuple(b / np.linalg.norm(b))))
    solver = LLGSolver(V, grid, params, spec, form="landau_lifshitz")
    m0 = interpolate_levels(V, lambda x, t: initial_state(units.to_si_length(x[0])), [0.0])[0]
    start = time.perf_counter()
    m = solver.solve(m0)
    seconds = comm.allreduce(time.perf_counter() - start, op=MPI.MAX)
    stride = (n_t - 1) // (STRIP["samples"] - 1)
    u = fem.Function(V)
    forms = [fem.form(u[i] * ufl.dx) for i in range(3)]
    means = []
    for level in m[::stride]:
        array_to_function(level, u)
        means.append([comm.allreduce(fem.assemble_scalar(f)) / length for f in forms])
    n_nodes = V.dofmap.index_map.size_local
    x = units.to_si_length(V.tabulate_dof_coordinates()[:n_nodes, 0])
    xs = np.concatenate(comm.allgather(x))
    ms = np.concatenate(comm.allgather(m[-1].reshape(-1, 3)))
    order = np.argsort(xs)
    return {"times": units.to_si_time(grid.times[::stride]), "mean_m": np.array(means),
            "x": xs[order], "m_final": ms[order], "seconds": seconds,
            "a1": params.a1, "a2": params.a2, "c": params.exchange, "k": params.anisotropy}


def compare(fem_run: dict, mnp_run: dict) -> dict:
    """Max differences of ``<m>(t)`` and of the final profile at the cell centres."""
    mean = float(np.abs(fem_run["mean_m"] - mnp_run["mean_m"]).max())
    at_cells = np.stack([np.interp(mnp_run["x"], fem_run["x"], fem_run["m_final"][:, i])
                         for i in range(3)], axis=1)
    profile = float(np.abs(at_cells - mnp_run["m_final"]).max())
    return {"max_mean_m_diff": mean, "max_profile_diff": profile}


def side_by_side(cells: int, steps_per_sample: int = 10, python: str | None = None) -> dict:
    """One resolution: magnum.np (on rank 0, broadcast), llgfem (standard sense) and llgfem
    (paper 002's sense)."""
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    mnp = None
    if comm.rank == 0:
        try:
            mnp = run_magnumnp(cells, python=python)
        except Exception as e:  # noqa: BLE001  (re-raised on every rank below)
            mnp = e
    mnp = comm.bcast(mnp, root=0)
    if isinstance(mnp, Exception):
        raise RuntimeError(f"magnum.np run failed: {mnp}")
    gamma = float(mnp["gamma"]) / MU0
    n_t = steps_per_sample * (STRIP["samples"] - 1) + 1
    fem_run = run_llgfem(cells, n_t, gamma)
    paper = run_llgfem(cells, n_t, gamma, sense=-1.0)
    return {"cells": cells, "n_t": n_t, "gamma": gamma, "magnumnp_version": str(mnp["version"]),
            "magnumnp_seconds": float(mnp["seconds"]), "llgfem_seconds": fem_run["seconds"],
            "coefficients": {k: fem_run[k] for k in ("a1", "a2", "c", "k")},
            "standard": compare(fem_run, mnp), "paper_sense": compare(paper, mnp),
            "mean_m_T": {"llgfem": fem_run["mean_m"][-1].tolist(),
                         "magnumnp": mnp["mean_m"][-1].tolist()}}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cells", type=int, nargs="+", default=[100, 200])
    ap.add_argument("--steps-per-sample", type=int, default=10,
                    help="llgfem time steps per output sample (10 ns / 100 samples)")
    ap.add_argument("--json", type=Path, default=Path("outputs/bench/physical_scaling.json"))
    ap.add_argument("--magnumnp-worker", metavar="OUT", help=argparse.SUPPRESS)
    ap.add_argument("--tol", type=float, default=1e-9, help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.magnumnp_worker:
        magnumnp_worker(args.cells[0], args.magnumnp_worker, args.tol)
        return 0
    import llgfem  # noqa: F401, I001  (before mpi4py/petsc4py users)
    from mpi4py import MPI

    rows = []
    for cells in args.cells:
        row = side_by_side(cells, args.steps_per_sample)
        rows.append(row)
        if MPI.COMM_WORLD.rank == 0:
            h_nm = STRIP["length"] / cells * 1e9
            print(f"cells {cells:4d} (h = {h_nm:.2f} nm), n_t {row['n_t']}:"
                  f" max|<m> diff| {row['standard']['max_mean_m_diff']:.3e}, max|m(T) diff| "
                  f"{row['standard']['max_profile_diff']:.3e}; paper-002 sense: "
                  f"{row['paper_sense']['max_mean_m_diff']:.3e} / "
                  f"{row['paper_sense']['max_profile_diff']:.3e}; <m>(T) llgfem "
                  f"{np.round(row['mean_m_T']['llgfem'], 5)} magnum.np "
                  f"{np.round(row['mean_m_T']['magnumnp'], 5)}; "
                  f"{row['llgfem_seconds']:.1f} s / {row['magnumnp_seconds']:.1f} s", flush=True)
    if MPI.COMM_WORLD.rank == 0:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"strip": STRIP, "runs": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
