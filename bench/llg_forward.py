"""Benchmark of the LLG forward solver: paper 002 Tests 1-3 and the 2-D scanner demo.

Writes ``outputs/bench/llg_forward.json``::

    {"tests": [{"test": 1, "rel_error", "seconds", "paper_rel_error": 0.004,
                "paper_seconds": 289, ...}, ... tests 2 (0.002, 512) and 3 (0.011, 205)],
     "demo": {"dofs", "time_steps", "seconds_per_step_1rank", "seconds_per_step_2ranks", ...}}

``seconds`` is the time loop of one forward solve (best of 3; JIT and setup excluded and
reported separately); the paper's seconds are its all-at-once "LLG solver" runs (Table 1).
The 2-rank demo figures come from re-launching this script under ``mpiexec -n 2``.
Usage: ``python bench/llg_forward.py``.
"""

import llgfem  # noqa: F401  (bootstraps the DOLFINx wheel)

# isort: split
import json
import sys
import time
from pathlib import Path

from mpi4py import MPI

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _two_ranks import run_two_ranks  # noqa: E402

from llgfem.builders import build_llg_problem
from llgfem.cli import load_run_config
from llgfem.mesh import create_domain
from llgfem.paper_cases import paper_case, solve_forward

OUT = Path("outputs/bench/llg_forward.json")
DEMO = Path(__file__).resolve().parents[1] / "demos" / "configs" / "scanner2d.toml"


def paper_tests() -> list[dict]:
    rows = []
    for number in (1, 2, 3):
        case = paper_case(number)
        runs = [solve_forward(case, MPI.COMM_SELF) for _ in range(3)]
        best = min(runs, key=lambda r: r["seconds"])
        rows.append({"test": number, "rel_error": best["rel_error"], "seconds": best["seconds"],
                     "setup_seconds": runs[0]["setup_seconds"],
                     "newton_iterations": int(sum(best["solver"].newton_iterations)),
                     "relative_residual": best["solver"].relative_residual(best["m"]),
                     "grid": "101 points x 51 levels, P1 + implicit midpoint",
                     "paper_rel_error": case.paper["rel_error"],
                     "paper_seconds": case.paper["seconds"]})
    return rows


def demo(comm=MPI.COMM_WORLD) -> dict:
    cfg = load_run_config(str(DEMO))
    problem = build_llg_problem(cfg, create_domain(comm, cfg.domain).mesh)
    solver, V, grid = problem.solver, problem.V, problem.grid
    problem.forward()  # warm-up (JIT, first factorisation)
    comm.Barrier()
    t0 = time.perf_counter()
    problem.forward()
    seconds = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
    return {"dofs": V.dofmap.index_map.size_global * 3, "time_steps": grid.n_t - 1,
            "seconds": seconds, "seconds_per_step": seconds / (grid.n_t - 1),
            "newton_iterations": int(sum(solver.newton_iterations)), "scheme": problem.scheme}


def main() -> None:
    tests = paper_tests()
    serial = demo(MPI.COMM_SELF)
    par = run_two_ranks(__file__, OUT)
    result = {"tests": tests, "demo": {
        "config": str(DEMO.name), "dofs": serial["dofs"], "time_steps": serial["time_steps"],
        "newton_iterations": serial["newton_iterations"], "form": serial["form"],
        "seconds_per_step_1rank": serial["seconds_per_step"],
        "seconds_per_step_2ranks": par["seconds_per_step"],
        "speedup_2ranks": serial["seconds_per_step"] / par["seconds_per_step"]}}
    for r in tests:
        print(f"Test {r['test']}: rel. error {r['rel_error']:.2e} (paper {r['paper_rel_error']})"
              f"  {r['seconds']:.3f} s (paper {r['paper_seconds']} s)")
    d = result["demo"]
    print(f"demo {d['config']}: {d['dofs']} dofs, {d['time_steps']} steps, "
          f"{d['seconds_per_step_1rank']*1e3:.1f} ms/step (1 rank), "
          f"{d['seconds_per_step_2ranks']*1e3:.1f} ms/step (2 ranks)")
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        res = demo()
        if MPI.COMM_WORLD.rank == 0:
            Path(sys.argv[2]).write_text(json.dumps(res))
    else:
        main()
