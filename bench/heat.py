"""Benchmark of the heat-type solvers (18)/(19): seconds per Crank-Nicolson step, 1 vs 2 ranks.

Writes ``outputs/bench/heat.json``::

    {"1d": {"dofs", "n_t", "seconds_per_step_1rank", "seconds_per_step_2ranks",
            "sweep_seconds_1rank", "sweep_seconds_2ranks", "speedup_2ranks", ...},
     "2d": ..., "3d": ...}

``sweep_seconds`` is one forward sweep (18) over all levels (best of 3), the factorisation
excluded (it is done once per operator and reused; its time is reported as ``setup_seconds``).
The script re-launches itself under ``mpiexec -n 2`` for the 2-rank figures.
Usage: ``python bench/heat.py``.
"""

import llgfem  # noqa: F401  (bootstraps the DOLFINx wheel)

# isort: split
import json
import sys
import time
from pathlib import Path

import dolfinx.mesh as dm
import numpy as np
from mpi4py import MPI

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _two_ranks import run_two_ranks  # noqa: E402

from llgfem.solvers.heat import HeatSolver
from llgfem.spacetime import TimeGrid, create_vector_space, interpolate_levels

CASES = {  # 1-D: the paper's 101 points x 51 levels; 2-D >= 60k dofs; 3-D >= 30k dofs
    "1d": lambda c: dm.create_interval(c, 100, [0.0, 2 * np.pi]),
    "2d": lambda c: dm.create_unit_square(c, 145, 145),
    "3d": lambda c: dm.create_unit_cube(c, 21, 21, 21),
}
N_T = 51
OUT = Path("outputs/bench/heat.json")


def source(x, t):
    return np.stack([np.cos(3 * x[0]) * np.sin(5 * t), x[1] * t, np.ones_like(x[0]) * t])


def measure(name: str, comm=MPI.COMM_WORLD) -> dict:
    V = create_vector_space(CASES[name](comm))
    grid = TimeGrid(1.0, N_T)
    t0 = time.perf_counter()
    hs = HeatSolver(V, grid)
    setup = time.perf_counter() - t0
    v = interpolate_levels(V, source, grid.times)
    best_f, best_b = np.inf, np.inf
    for _ in range(3):
        comm.Barrier()
        t0 = time.perf_counter()
        hs.solve_forward(v)
        best_f = min(best_f, comm.allreduce(time.perf_counter() - t0, op=MPI.MAX))
        t0 = time.perf_counter()
        hs.solve_backward(v, v[-1])
        best_b = min(best_b, comm.allreduce(time.perf_counter() - t0, op=MPI.MAX))
    dofs = V.dofmap.index_map.size_global * V.dofmap.index_map_bs
    return {"dofs": dofs, "n_t": N_T, "setup_seconds": setup, "sweep_seconds": best_f,
            "backward_sweep_seconds": best_b, "seconds_per_step": best_f / (N_T - 1)}


def worker(path: str) -> None:
    res = {name: measure(name) for name in CASES}
    if MPI.COMM_WORLD.rank == 0:
        Path(path).write_text(json.dumps(res))


def main() -> None:
    serial = {name: measure(name, MPI.COMM_SELF) for name in CASES}
    par = run_two_ranks(__file__, OUT)
    result = {}
    for name in CASES:
        s, p = serial[name], par[name]
        result[name] = {
            "dofs": s["dofs"], "n_t": N_T,
            "seconds_per_step_1rank": s["seconds_per_step"],
            "seconds_per_step_2ranks": p["seconds_per_step"],
            "sweep_seconds_1rank": s["sweep_seconds"],
            "sweep_seconds_2ranks": p["sweep_seconds"],
            "backward_sweep_seconds_1rank": s["backward_sweep_seconds"],
            "backward_sweep_seconds_2ranks": p["backward_sweep_seconds"],
            "setup_seconds_1rank": s["setup_seconds"],
            "setup_seconds_2ranks": p["setup_seconds"],
            "speedup_2ranks": s["sweep_seconds"] / p["sweep_seconds"],
        }
        r = result[name]
        print(f"{name}: {r['dofs']:7d} dofs  step 1 rank {r['seconds_per_step_1rank']*1e3:8.3f} ms"
              f"  2 ranks {r['seconds_per_step_2ranks']*1e3:8.3f} ms"
              f"  speed-up {r['speedup_2ranks']:.2f}")
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        worker(sys.argv[2])
    else:
        main()
