"""Benchmark of the all-at-once iteration (paper 002, Algorithm 3.1): Tables 1 and 3.

Writes ``outputs/bench/all_at_once.json`` with

* ``table1``: Remark 1 (the iteration as an LLG solver) for Tests 1-3 at 101 points x 51 levels
  with the paper's initial guesses; plain Landweber with the paper's adaptive bisection, run
  until the relative error reaches the paper's final error (or ``MAX_IT``);
* ``table3``: identification of (m, a1, a2) from noisy data (Test 3, a~ = 1, c = 1,
  p = (1, 1, 1), mu0 = 1, m_init = m0 - 0.1 sin(20 t)), discrepancy principle, per delta;
* ``test2_exact``: Test 2 with exact data, initial m = m0 (paper: 350 000 iterations, 79 000 s);
* ``accelerated``: the same rows with Nesterov-accelerated Landweber.

and ``outputs/bench/aao_cost.json`` (read by ``bench/scaling.py``): the cost per iteration of
Table 1 Tests 1-3 (plain Landweber, 101 x 51 grid), each solved ``REPEATS`` times (interleaved)
-- ``aao_ms_per_iteration`` (median over the repeats of the wall clock of ``solve()`` per
iteration: error checks every 10 iterations and rejected trial steps included, one-time setup
excluded and reported as ``setup_seconds``), ``aao_cpu_ms_per_iteration`` (process CPU time:
the machine is shared, wall clock includes waiting for a core), the ``..._min`` values,
``per_repeat`` (every repeat with the 1-minute load average before/after), ``aao_iterations``,
``aao_rel_error``, ``paper_iterations``, ``before`` (the FFCx/PETSc path: the numbers of the
previous bench run and a same-conditions sample of ``FFCX_SAMPLE`` iterations),
``previous_fast_path``, ``test2_quadrature_degree``, the load average and the 2 ms target.

Every row prints the paper's number next to ours.  Usage: ``python bench/all_at_once.py``
(``--quick`` for a smoke run with few iterations, ``--cost`` for the cost file only).
"""

import llgfem  # noqa: F401  (bootstraps the DOLFINx wheel)

# isort: split
import json
import os
import sys
import time
from pathlib import Path

import dolfinx.mesh as dm
import numpy as np
from mpi4py import MPI

from llgfem.jobs.all_at_once import AAOConfig, build_problem, solve, summarise
from llgfem.operators.all_at_once import AllAtOnceOperator
from llgfem.operators.all_at_once_fast import BatchedGilbert
from llgfem.paper_cases import relative_error

QUICK = "--quick" in sys.argv
_DIR = Path("outputs/bench/quick" if QUICK else "outputs/bench")  # a smoke run keeps the real files
OUT = _DIR / "all_at_once.json"
COST = _DIR / "aao_cost.json"
TARGET_MS = 2.0
FFCX_SAMPLE = 20 if QUICK else 40  # iterations of the FFCx path timed for comparison
# The previous bench run (FFCx/PETSc path, step by step; outputs/bench/all_at_once.json of
# 20:32 UTC Nov 29 2026, measured under load, before the batched kernels; kept as
# outputs/bench/all_at_once_before_fast.json): Table 1 Tests 1-3, plain Landweber.
BEFORE = {"ms_per_iteration": [45.106, 57.004, 52.309], "iterations": [1140, 2600, 320],
          "rel_error": [3.994287415645773e-3, 1.9965720611113446e-3, 1.0931126711498498e-2],
          "source": "outputs/bench/all_at_once.json before the batched kernels (FFCx path)"}
MAX_IT = 60 if QUICK else 4000
REPEATS = 1 if QUICK else 5  # repeats of each Table 1 solve for the cost record (shared machine)
# The fast path before this session's changes (commit 4fe8686; outputs/bench/aao_cost.json of
# Nov 30 00:06 UTC, one run, load average ~2): Table 1 Tests 1-3, ms per iteration.
PREVIOUS_FAST = {"ms_per_iteration": [1.709, 2.450, 2.676],
                 "cpu_ms_per_iteration": [1.702, 1.768, 1.897], "load_average": "about 2",
                 "commit": "4fe8686"}
PAPER_T3 = {0.1: (259, 0.0022, 0.0619, 0.292, 0.090), 0.05: (401, 0.0011, 0.0309, 0.125, 0.072),
            0.03: (564, 0.0007, 0.0186, 0.040, 0.062)}
TABLE1_MU = {1: 150.0, 2: 75.0, 3: 300.0}  # the paper's initial step sizes (Table 1)


def mesh():
    return dm.create_interval(MPI.COMM_WORLD, 100, [0.0, 2 * np.pi])


def run(job: AAOConfig, fast: bool | None = None, degree: int | None = None) -> dict:
    """Solve one configuration; ``fast=False`` forces the FFCx/PETSc path of the operator,
    ``degree`` sets the quadrature degree of the fast path's cubic terms (default: FFCx's).

    Timed: ``solve()`` only.  One-time setup is done before and reported as
    ``setup_seconds``: building the problem and operator (tables, eigenbasis, FFCx forms) and
    the projection of the exact solution that the relative-error stopping rule caches
    (``spacetime.level_errors``: about 30-40 ms, 0.1 ms per iteration of Test 3's 320)."""
    t0 = time.perf_counter()
    prob = build_problem(job, mesh())
    if degree is not None:
        prob["F"].fast = BatchedGilbert(prob["F"].solver, degree=degree)
    if fast is False:
        F = prob["F"]
        prob["F"] = AllAtOnceOperator(F.problem, F.heat, fast=False,
                                      estimate_parameters=F.estimate_parameters,
                                      param_weight=F.param_weight, model_weight=F.model_weight)
    relative_error(prob["V"], prob["grid"], prob["F"].state(prob["x0"]), prob["case"].exact_ufl)
    setup = time.perf_counter() - t0
    load0 = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    result, _ = solve(job, prob)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    out = summarise(job, prob, result, seconds)
    out["cpu_seconds_per_iteration"] = cpu / max(result.iterations, 1)
    out["fast_path"] = prob["F"].fast is not None
    out["setup_seconds"] = setup
    out["load_average_1min"] = [load0, os.getloadavg()[0]]  # before / after the solve
    return out


def table1(method: str) -> list[dict]:
    rows = []
    for number in (1, 2, 3):
        from llgfem.paper_cases import paper_case

        paper = paper_case(number).paper
        job = AAOConfig(case=f"paper{number}", method=method, mu=TABLE1_MU[number],
                        max_iter=MAX_IT, error_target=paper["rel_error"], error_every=10)
        s = run(job)
        rows.append({"test": number, "method": method, "iterations": s["iterations"],
                     "rel_error": s["rel_error"], "seconds": s["seconds"],
                     "seconds_per_iteration": s["seconds_per_iteration"],
                     "cpu_seconds_per_iteration": s["cpu_seconds_per_iteration"],
                     "fast_path": s["fast_path"], "reason": s["reason"],
                     "setup_seconds": s["setup_seconds"],
                     "load_average_1min": s["load_average_1min"],
                     "paper_iterations": paper["iterations"], "paper_rel_error": paper["rel_error"],
                     "paper_seconds": paper["seconds"],
                     "paper_seconds_per_iteration": paper["seconds"] / paper["iterations"]})
        print(f"Table 1 Test {number} ({method}): {s['iterations']} it, error {s['rel_error']:.2e}"
              f", {s['seconds']:.1f} s ({1e3 * s['seconds_per_iteration']:.3f} ms/it wall, "
              f"{1e3 * s['cpu_seconds_per_iteration']:.3f} cpu)   paper: "
              f"{paper['iterations']} it, {paper['rel_error']}, {paper['seconds']} s")
    return rows


TABLE3 = {"observe": True, "estimate_parameters": True, "a0": (1.5, 0.5),
          "state_guess": "perturbed", "tau": 2.5, "mu": 0.3, "grow": 1.1, "model_weight": 1000.0,
          "param_weight": 1.0}


def table3(method: str) -> list[dict]:
    rows = []
    for delta, paper in PAPER_T3.items():
        job = AAOConfig(case="paper3", method=method, delta=delta, max_iter=MAX_IT,
                        **TABLE3)
        s = run(job)
        row = {k: s[k] for k in ("iterations", "r_llg", "r_obs", "e_a1", "e_a2", "seconds",
                                 "a1", "a2", "rel_error", "reason")}
        row.update({"delta": delta, "method": method,
                    **dict(zip(("paper_iterations", "paper_r_llg", "paper_r_obs",
                                "paper_e_a1", "paper_e_a2"), paper))})
        rows.append(row)
        print(f"Table 3 delta={delta:.2f} ({method}): {s['iterations']} it, r_llg {s['r_llg']:.1e}"
              f", r_obs {s['r_obs']:.4f}, e_a1 {s['e_a1']:.3f}, e_a2 {s['e_a2']:.3f}, "
              f"{s['seconds']:.1f} s   paper: {paper}")
    return rows


def test2_exact(method: str) -> dict:
    job = AAOConfig(case="paper2", method=method, max_iter=MAX_IT,
                    error_target=0.002, **{**TABLE3, "state_guess": "m0"})
    s = run(job)
    print(f"Test 2 exact data ({method}): {s['iterations']} it, m error {s['rel_error']:.2e}, "
          f"e_a1 {s['e_a1']:.3f}, e_a2 {s['e_a2']:.3f}, {s['seconds']:.1f} s   "
          "paper: 350000 it, 79000 s")
    return {**{k: s[k] for k in ("iterations", "rel_error", "e_a1", "e_a2", "a1", "a2",
                                 "seconds", "seconds_per_iteration", "reason")},
            "method": method, "stop": "relative m error <= 0.2 % (Table 1 accuracy)",
            "paper_iterations": 350000, "paper_seconds": 79000}


def ffcx_sample() -> dict:
    """ms per iteration of the FFCx/PETSc path, ``FFCX_SAMPLE`` iterations of each test, now."""
    wall, cpu = [], []
    for number in (1, 2, 3):
        job = AAOConfig(case=f"paper{number}", method="landweber", mu=TABLE1_MU[number],
                        max_iter=FFCX_SAMPLE, error_every=10)
        s = run(job, fast=False)
        wall.append(1e3 * s["seconds_per_iteration"])
        cpu.append(1e3 * s["cpu_seconds_per_iteration"])
    print(f"FFCx path ({FFCX_SAMPLE} it): wall {wall} ms/it, cpu {cpu} ms/it")
    return {"iterations_timed": FFCX_SAMPLE, "ms_per_iteration": wall,
            "cpu_ms_per_iteration": cpu}


def quadrature_experiment() -> list[dict]:
    """Test 2 (h = -(cos x, cos x, 0): (m.h)(m.v) is not a polynomial) with that term
    integrated at lower degrees than FFCx's 6: does Table 1 change?"""
    rows = []
    for degree in (6, 4, 3):
        job = AAOConfig(case="paper2", method="landweber", mu=TABLE1_MU[2], max_iter=MAX_IT,
                        error_target=0.002, error_every=10)
        s = run(job, degree=degree)
        rows.append({"degree": degree, "iterations": s["iterations"],
                     "rel_error": s["rel_error"],
                     "ms_per_iteration": 1e3 * s["seconds_per_iteration"],
                     "cpu_ms_per_iteration": 1e3 * s["cpu_seconds_per_iteration"]})
        print(f"Test 2, projection term at degree {degree}: {s['iterations']} it, error "
              f"{s['rel_error']:.6e}, {1e3 * s['cpu_seconds_per_iteration']:.3f} ms/it cpu")
    return rows


def _median(values: list[float]) -> float:
    return float(np.median(values))


def cost_repeats() -> list[list[dict]]:
    """Table 1 (plain Landweber) ``REPEATS`` times, interleaved (Tests 1, 2, 3, 1, 2, 3, ...)
    so that a change of the shared machine's load affects all tests alike."""
    return [table1("landweber") for _ in range(REPEATS)]


def cost(repeats: list[list[dict]]) -> dict:
    """The ``aao_cost.json`` record of repeated Table 1 rows (plain Landweber, fast path).

    ``aao_ms_per_iteration`` is the median over the repeats of the wall clock per iteration
    (``..._min`` the fastest repeat, ``per_repeat`` every repeat with the 1-minute load average
    before and after it); iteration counts and errors must agree across repeats."""
    tests = list(zip(*repeats))  # per test: its rows of all repeats
    for rows in tests:
        outcomes = [(r["iterations"], r["rel_error"]) for r in rows]
        if len(set(outcomes)) != 1:
            raise RuntimeError(f"repeats disagree: {outcomes}")
    wall = [[1e3 * r["seconds_per_iteration"] for r in rows] for rows in tests]
    cpu = [[1e3 * r["cpu_seconds_per_iteration"] for r in rows] for rows in tests]
    median_wall = [_median(w) for w in wall]
    first = [rows[0] for rows in tests]
    worst = max(median_wall)
    return {
        "aao_ms_per_iteration": median_wall,
        "aao_cpu_ms_per_iteration": [_median(c) for c in cpu],
        "aao_ms_per_iteration_min": [min(w) for w in wall],
        "aao_cpu_ms_per_iteration_min": [min(c) for c in cpu],
        "aao_iterations": [r["iterations"] for r in first],
        "aao_rel_error": [r["rel_error"] for r in first],
        "paper_iterations": [r["paper_iterations"] for r in first],
        "paper_rel_error": [r["paper_rel_error"] for r in first],
        "fast_path": [r["fast_path"] for r in first],
        "repeats": len(repeats),
        "per_repeat": [[{"wall_ms": 1e3 * r["seconds_per_iteration"],
                         "cpu_ms": 1e3 * r["cpu_seconds_per_iteration"],
                         "load_average_1min": r["load_average_1min"],
                         "setup_seconds": r["setup_seconds"]} for r in rows] for rows in tests],
        "target_ms_per_iteration": TARGET_MS, "target_met": bool(worst <= TARGET_MS),
        "worst_over_target": worst / TARGET_MS,
        "previous_fast_path": PREVIOUS_FAST,
        "before": {**BEFORE, "ffcx_path_same_run": ffcx_sample()},
        "test2_quadrature_degree": quadrature_experiment(),
        "load_average": list(os.getloadavg()), "cpu_count": os.cpu_count(),
        "utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "grid": "101 points x 51 levels (paper 001/002 Table 1), serial",
        "timing": "wall clock of solve() / iterations, including the relative-error check "
                  "every 10 iterations and rejected trial steps, excluding one-time setup "
                  "(setup_seconds: problem, operator, exact-solution projection of the "
                  "stopping rule); cpu = process CPU time; median over the repeats",
    }


def write_cost(repeats: list[list[dict]]) -> None:
    record = cost(repeats)
    if MPI.COMM_WORLD.rank == 0:
        COST.parent.mkdir(parents=True, exist_ok=True)
        COST.write_text(json.dumps(record, indent=2, default=float) + "\n")
        print(f"wrote {COST}: {record['aao_ms_per_iteration']} ms/it (wall, median), "
              f"{record['aao_cpu_ms_per_iteration']} ms/it (cpu, median), load "
              f"{record['load_average']}")


def main() -> None:
    if "--cost" in sys.argv:
        write_cost(cost_repeats())
        return
    result = {"settings": {"table3": TABLE3, "max_iterations": MAX_IT,
                           "noise": "y + delta |y| U(-1, 1) per sample, seed 0",
                           "e_a": "absolute error |a - a_true| (paper: e_alpha := |alpha - "
                                  "alpha_ext|)"},
              "table1": table1("landweber"), "table3": table3("landweber"),
              "test2_exact": test2_exact("landweber")}
    result["accelerated"] = {"method": "nesterov", "table1": table1("nesterov"),
                             "table3": table3("nesterov"), "test2_exact": test2_exact("nesterov")}
    if MPI.COMM_WORLD.rank == 0:
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(result, indent=2, default=float) + "\n")
        print(f"wrote {OUT}")
    write_cost([result["table1"]] + [table1("landweber") for _ in range(REPEATS - 1)])


if __name__ == "__main__":
    main()
