"""Strong scaling, 1 vs 2 ranks (issue 16): 3-D forward LLG, a 3-D heat sweep and the reduced
3-D calibration on the gmsh phantom ``meshes/phantom3d.geo``.

Writes ``outputs/bench/scaling.json``::

    {"cases": [{"name", "dofs", "seconds_1rank", "seconds_2ranks", "speedup", ...}, ...],
     "calibration_3d": {"vertices", "n_t", "seconds_1rank", "seconds_2ranks", "a", "a_true",
                        ...},
     "aao_ms_per_iteration": [...], "aao_iterations": [...], "aao_rel_error": [...],
     "loadavg_start": [...], "loadavg_end": [...], "agreement": {...}}

Cases (solver presets ``auto``, i.e. the iterative ones at these sizes):

* ``llg_forward_3d``: Gilbert form (6), implicit midpoint, unit cube ``32^3 x 6`` tetrahedra
  (107 811 dofs), FFP field + drive + bias; ``--llg-steps`` time steps after one warm-up step
  (JIT, first preconditioner);
* ``heat_sweep_3d``: Crank-Nicolson sweep (18) on the unit cube ``41^3 x 6`` (222 264 dofs),
  ``--heat-steps`` steps, matrices and AMG set-up included;
* ``calibration_3d``: reduced identification of ``(a1, a2)`` by ``--iterations``
  Levenberg-Marquardt steps on the phantom (``--h``: mesh size; 0.039 gives 56 673 vertices),
  ``--n-t`` time levels, two coils, the two tagged phantoms as concentrations.  The data come
  from a different model: the Landau-Lifshitz/Bartels-Prohl scheme at ``a_true`` (the
  identification uses implicit midpoint on the Gilbert form), so there is no inverse crime.

The 2-rank figures come from re-launching this script with the same arguments under
``mpiexec -n 2``.  ``agreement``: relative differences of partition-independent results
(norms, signals, parameters) between the two runs.  The all-at-once figures are merged from
``outputs/bench/aao_cost.json`` (written by ``bench/all_at_once.py``) when present.

``probe`` (in ``--only``): forward steps of the identification's model on the phantom of size
``--probe-h``, for an extrapolation of a calibration too long to run here.

Usage: ``python bench/scaling.py [--only llg,heat,calibration,probe] [--quick]`` (``--quick``: small
sizes, written to ``scaling_quick.json``).

The calibration at size (``--only calibration --h 0.039``) can be run as two separate worker
runs and merged, so that the 2-rank run gets a quiet machine::

    python bench/scaling.py --only calibration --worker serial.json
    mpiexec -n 2 python bench/scaling.py --only calibration --worker two.json
    python bench/scaling.py --only calibration --merge serial.json two.json --keep-cases

(``--keep-cases``: the other cases of the existing ``scaling.json`` are kept, marked with
their run's load averages and time).
"""

import llgfem  # noqa: F401  (bootstraps the DOLFINx wheel)

# isort: split
import argparse
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import dolfinx.mesh as dm
import numpy as np
from mpi4py import MPI

from llgfem.io.signals import load_signals, save_signals
from llgfem.mesh import read_domain
from llgfem.operators.observation import Coil, Concentration, Observation
from llgfem.operators.reduced import ReducedOperator
from llgfem.physics import FieldSpec, LLGParameters
from llgfem.problem import LLGProblem
from llgfem.regularisation.gauss_newton import levenberg_marquardt
from llgfem.solvers.heat import HeatSolver
from llgfem.solvers.llg import LLGSolver
from llgfem.spacetime import TimeGrid, create_vector_space, interpolate_levels

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "outputs" / "bench" / "scaling.json"
AAO = ROOT / "outputs" / "bench" / "aao_cost.json"
GEO = ROOT / "meshes" / "phantom3d.geo"
FIELD = FieldSpec(kind="ffp", gradient=2.0, amplitude=1.0, frequency=1.0,
                  direction=(1.0, 0.0, 0.0), offset=(0.0, 0.0, 0.5))
A_TRUE = np.array([1.0, 0.5])
A0 = np.array([1.3, 0.3])


def _m0(x, t=0.0):
    m = np.stack([0.6 + 0.2 * np.sin(3 * x[0]), 0.2 * np.cos(2 * x[1]), 0.8 + 0 * x[0]])
    return m / np.linalg.norm(m, axis=0)


def _timed(comm, fn):
    """``(fn(), wall seconds, CPU seconds)``, both the maximum over the ranks.  The CPU time
    of a process does not count the time it waits for a core, so on a shared machine it shows
    what dedicated cores would give (MPI waits are busy loops: counted, conservatively)."""
    comm.Barrier()
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return out, comm.allreduce(wall, op=MPI.MAX), comm.allreduce(cpu, op=MPI.MAX)


def _timed_steps(comm, solver, m, steps: int):
    """Steps ``1..steps`` of ``solver`` from ``m``, timed by :func:`_timed`."""
    def loop():
        out = m
        for k in range(1, steps + 1):
            out = solver.step(k, out)
        return out

    return _timed(comm, loop)


def _mean_m(comm, m) -> list[float]:
    """Nodal mean of the three components (partition independent; the Gilbert midpoint scheme
    keeps ``|m_j|`` and hence ``||m||`` fixed, so the norm would not compare anything)."""
    sums = comm.allreduce(m.reshape(-1, 3).sum(axis=0))
    return (sums / comm.allreduce(m.size // 3)).tolist()


def llg_case(comm, n: int, steps: int) -> dict:
    mesh = dm.create_unit_cube(comm, n, n, n)
    V = create_vector_space(mesh)
    grid = TimeGrid(0.05 * (steps + 1), steps + 2)
    solver = LLGSolver(V, grid, LLGParameters(a1=1.0, a2=0.5, exchange=0.05), FIELD)
    m = interpolate_levels(V, _m0, [0.0])[0]
    m = solver.step(0, m)  # warm-up: JIT of the forms, first preconditioner

    m_end, seconds, cpu = _timed_steps(comm, solver, m, steps)
    ksp = solver.problem.solver.getKSP()
    res = {"name": "llg_forward_3d", "dofs": V.dofmap.index_map.size_global * 3,
           "seconds": seconds, "cpu_seconds": cpu, "steps": steps,
           "seconds_per_step": seconds / steps,
           "newton_per_step": float(np.mean(solver.newton_iterations[1:])),
           "linear_solver": f"{ksp.getType()}+{ksp.getPC().getType()}",
           "result": _mean_m(comm, m_end)}
    solver.destroy()
    return res


def heat_case(comm, n: int, steps: int) -> dict:
    mesh = dm.create_unit_cube(comm, n, n, n)
    V = create_vector_space(mesh)
    grid = TimeGrid(0.1, steps + 1)
    v = interpolate_levels(V, lambda x, t: np.stack([np.sin(3 * x[0] + t), x[1] ** 2,
                                                     np.cos(x[0] * x[2])]), grid.times)

    def sweep():
        hs = HeatSolver(V, grid)
        return hs, hs.solve_forward(v)

    (hs, z), seconds, cpu = _timed(comm, sweep)
    ksp = hs.step_solver.ksp
    res = {"name": "heat_sweep_3d", "dofs": V.dofmap.index_map.size_global * 3,
           "seconds": seconds, "cpu_seconds": cpu, "steps": steps,
           "seconds_per_step": seconds / steps,
           "includes": "matrix assembly and preconditioner set-up",
           "linear_solver": f"{ksp.getType()}+{ksp.getPC().getType()}",
           "result": [float(np.sqrt(hs.inner(z, z)))]}
    hs.destroy()
    return res


def phantom_mesh(h: float) -> Path:
    """The phantom mesh of size ``h`` (generated once on rank 0, single-threaded gmsh)."""
    name = "phantom3d.msh" if abs(h - 0.039) < 1e-12 else f"phantom3d_h{h:g}.msh"
    path = (ROOT / "meshes" if name == "phantom3d.msh" else OUT.parent) / name
    if MPI.COMM_WORLD.rank == 0 and not path.exists():
        import gmsh

        path.parent.mkdir(parents=True, exist_ok=True)
        gmsh.initialize(interruptible=False)
        try:
            gmsh.option.setNumber("General.Terminal", 0)
            gmsh.option.setNumber("General.NumThreads", 1)
            gmsh.open(str(GEO))
            gmsh.option.setNumber("Mesh.MeshSizeMin", h)
            gmsh.option.setNumber("Mesh.MeshSizeMax", h)
            gmsh.model.mesh.generate(3)
            gmsh.option.setNumber("Mesh.MshFileVersion", 4.1)
            gmsh.option.setNumber("Mesh.SaveAll", 0)
            gmsh.write(str(path))
        finally:
            gmsh.finalize()
    MPI.COMM_WORLD.Barrier()
    return path


def calibration_problem(comm, h: float, n_t: int, scheme: str):
    domain = read_domain(comm, phantom_mesh(h))
    V = create_vector_space(domain.mesh)
    grid = TimeGrid(1.0, n_t)
    concentrations = [Concentration(("tags", domain.cell_tags, [2]), "phantom_a"),
                      Concentration(("tags", domain.cell_tags, [3]), "phantom_b")]
    obs = Observation(V, grid, concentrations, [Coil((1.0, 0.0, 0.0)), Coil((0.0, 1.0, 0.0))],
                      mu0=1.0)
    params = LLGParameters(a1=A_TRUE[0], a2=A_TRUE[1], exchange=0.05)
    problem = LLGProblem.create(domain.mesh, grid, params, FIELD, _m0, obs, scheme=scheme)
    return problem, domain


def calibration_data(comm, h: float, n_t: int) -> tuple[np.ndarray, float, str]:
    """The synthetic data ``y`` (Bartels-Prohl at ``a_true``), the seconds it took and where
    it came from.  The data go simulate -> write signals file -> read, as every calibration
    pipeline (issue 14).  The file is written once per ``(h, n_t)`` and reused (the signals are
    partition independent to ~1e-14, so the 2-rank run reads the serial run's file): the data
    are not part of the timed identification."""
    data_file = OUT.parent / f"scaling_calibration_data_h{h:g}_nt{n_t}.h5"
    seconds, source = 0.0, f"read from {data_file.relative_to(ROOT)}"
    if not data_file.exists():
        truth, _ = calibration_problem(comm, h, n_t, "bartels_prohl")
        y, seconds, _ = _timed(comm, lambda: truth.observe(truth.forward(A_TRUE)))
        obs = truth.observation
        save_signals(data_file, y, obs.times, obs.coil_names, obs.concentration_names,
                     units="1", comm=comm,
                     attrs={"data_model": "Bartels-Prohl (Landau-Lifshitz) scheme at a_true"})
        truth.destroy()
        source = f"simulated on {comm.size} rank(s), written to and read from " + source[10:]
    return load_signals(data_file, comm).data.ravel(), seconds, source


def calibration_case(comm, h: float, n_t: int, iterations: int, tangents: bool = True) -> dict:
    y, data_seconds, data_source = calibration_data(comm, h, n_t)
    problem, domain = calibration_problem(comm, h, n_t, "midpoint")
    op = ReducedOperator(problem, tangents=tangents)
    _, forward_seconds, forward_cpu = _timed(comm, lambda: op.cache.state(A0))  # cached
    first_sweep = list(problem.solver.newton_iterations)

    def identify():
        return levenberg_marquardt(op, y, A0, tau=1.5, delta=0.0, max_iter=iterations)

    res, seconds, cpu = _timed(comm, identify)
    seconds, cpu = seconds + forward_seconds, cpu + forward_cpu
    r = op(res.x) - y
    out = {"vertices": domain.mesh.geometry.index_map().size_global,
           "dofs": problem.V.dofmap.index_map.size_global * 3, "n_t": n_t, "h": h,
           "seconds": seconds, "cpu_seconds": cpu, "data_seconds": data_seconds,
           "data_source": data_source, "iterations": int(res.iterations),
           "forward_seconds_per_step": forward_seconds / (n_t - 1),
           "forward_cpu_seconds_per_step": forward_cpu / (n_t - 1),
           "first_sweep_iterations_per_step": float(np.mean(first_sweep)),
           "a": [float(v) for v in res.x], "a_true": A_TRUE.tolist(), "a0": A0.tolist(),
           "r_obs": float(np.sqrt(op.inner_range(r, r) / op.inner_range(y, y))),
           "residual_history": [float(v) for v in res.history.residual_norms],
           "counters": dict(op.counters),
           "method": "Levenberg-Marquardt (regularisation.gauss_newton), delta = 0",
           "sweeps": ("forward_linearised: chord forward + both sensitivities, one Jacobian "
                      "assembly per step" if tangents else
                      "SNES Newton forward; separate linearised sweeps"),
           "data": "Bartels-Prohl (Landau-Lifshitz) scheme at a_true; fit: implicit midpoint",
           "signals": [float(v) for v in y[:: max(1, y.size // 50)]]}
    op.cache.destroy()
    return out


def probe_case(comm, h: float, steps: int) -> dict:
    """Time ``steps`` forward steps of the identification's model on the phantom of size ``h``
    (after one warm-up step): the per-step cost of a calibration too long to run here."""
    problem, domain = calibration_problem(comm, h, 101, "midpoint")
    solver = problem.solver
    solver.set_parameters(*A0)
    m = solver.step(0, problem.m0)

    m_end, seconds, cpu = _timed_steps(comm, solver, m, steps)
    res = {"h": h, "vertices": domain.mesh.geometry.index_map().size_global,
           "dofs": problem.V.dofmap.index_map.size_global * 3, "steps": steps,
           "seconds_per_step": seconds / steps, "cpu_seconds_per_step": cpu / steps,
           "result": _mean_m(comm, m_end),
           "newton_per_step": float(np.mean(solver.newton_iterations[1:]))}
    problem.destroy()
    return res


def run_cases(comm, args) -> dict:
    out: dict = {"ranks": comm.size}
    only = set(args.only.split(","))
    if "heat" in only:
        out["heat"] = heat_case(comm, args.heat_n, args.heat_steps)
        gc.collect()
    if "llg" in only:
        out["llg"] = llg_case(comm, args.llg_n, args.llg_steps)
        gc.collect()
    if "calibration" in only:
        out["calibration"] = calibration_case(comm, args.h, args.n_t, args.iterations,
                                              tangents=not args.no_tangents)
        gc.collect()
    if "probe" in only:
        out["probe"] = probe_case(comm, args.probe_h, args.probe_steps)
        gc.collect()
    comm.Barrier()
    return out


def two_ranks(argv: list[str], out: Path) -> dict:
    tmp = out.with_suffix(".2ranks.json")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    mpiexec = Path(sys.executable).with_name("mpiexec")
    cmd = [str(mpiexec) if mpiexec.exists() else "mpiexec", "-n", "2", sys.executable,
           __file__, *argv, "--worker", str(tmp)]
    subprocess.run(cmd, check=True, env=os.environ.copy())
    data = json.loads(tmp.read_text())
    tmp.unlink()
    return data


RUN_KEYS = ("ranks", "loadavg_start", "loadavg_end", "finished_utc")


def _rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def merge(serial: dict, par: dict, args) -> dict:
    result: dict = {"cases": [], "agreement": {}, "settings": vars(args).copy()}
    for key in ("llg", "heat"):
        if key not in serial:
            continue
        s, p = serial[key], par[key]
        result["cases"].append({"name": s["name"], "dofs": s["dofs"],
                                "seconds_1rank": s["seconds"], "seconds_2ranks": p["seconds"],
                                "speedup": s["seconds"] / p["seconds"],
                                "cpu_speedup": s["cpu_seconds"] / p["cpu_seconds"], "serial": s,
                                "two_ranks": p})
        result["agreement"][s["name"]] = _rel(p["result"], s["result"])
    if "calibration" in serial:
        s, p = serial["calibration"], par["calibration"]
        result["calibration_3d"] = {
            "vertices": s["vertices"], "n_t": s["n_t"], "seconds_1rank": s["seconds"],
            "seconds_2ranks": p["seconds"], "speedup": s["seconds"] / p["seconds"],
            "cpu_seconds_1rank": s["cpu_seconds"], "cpu_seconds_2ranks": p["cpu_seconds"],
            "cpu_speedup": s["cpu_seconds"] / p["cpu_seconds"], "a": s["a"],
            "a_true": s["a_true"], "a_2ranks": p["a"], "serial": s,
            "two_ranks": p}
        result["agreement"]["calibration_3d_a"] = _rel(p["a"], s["a"])
        result["agreement"]["calibration_3d_signals"] = _rel(p["signals"], s["signals"])
    if "probe" in serial:
        s, p = serial["probe"], par["probe"]
        probe = {"serial": s, "two_ranks": p,
                 "speedup": s["seconds_per_step"] / p["seconds_per_step"],
                 "cpu_speedup": s["cpu_seconds_per_step"] / p["cpu_seconds_per_step"]}
        cal = result.get("calibration_3d")
        if cal:  # same number of steps and iterations, cost per step of the big mesh
            for key, run in (("seconds_1rank", cal["serial"]), ("seconds_2ranks",
                                                                 cal["two_ranks"])):
                ratio = (s if key == "seconds_1rank" else p)["seconds_per_step"]
                probe[f"extrapolated_{key}"] = (run["seconds"] * ratio
                                                / run["forward_seconds_per_step"])
        result["calibration_3d_full_size_probe"] = probe
        result["agreement"]["probe"] = _rel(p["result"], s["result"])
    return result


def keep_previous_cases(result: dict, previous: dict) -> None:
    """Add the cases, the calibration (and their agreement entries) of a previous run that this
    run did not re-run, marked with the previous run's load averages and time."""
    origin = {k: previous.get(k) for k in ("loadavg_start", "loadavg_end", "written_utc",
                                           "runs")}
    names = {c["name"] for c in result["cases"]}
    for case in previous.get("cases", []):
        if case["name"] not in names:
            result["cases"].append(dict(case, from_previous_run=origin))
            if case["name"] in previous.get("agreement", {}):
                result["agreement"][case["name"]] = previous["agreement"][case["name"]]
    if "calibration_3d" not in result and "calibration_3d" in previous:
        result["calibration_3d"] = dict(previous["calibration_3d"], from_previous_run=origin)
        for key, value in previous.get("agreement", {}).items():
            if key.startswith("calibration_3d"):
                result["agreement"][key] = value


def merge_aao(result: dict) -> None:
    keys = ("aao_ms_per_iteration", "aao_iterations", "aao_rel_error")
    if AAO.exists():
        aao = json.loads(AAO.read_text())
        result.update({k: aao[k] for k in keys if k in aao})
        result["aao_source"] = str(AAO.relative_to(ROOT))
    for k in keys:
        result.setdefault(k, [])


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default="heat,llg,calibration,probe")
    p.add_argument("--llg-n", type=int, default=32)
    p.add_argument("--llg-steps", type=int, default=3)
    p.add_argument("--heat-n", type=int, default=41)
    p.add_argument("--heat-steps", type=int, default=20)
    p.add_argument("--h", type=float, default=0.039)
    p.add_argument("--n-t", type=int, default=100)
    p.add_argument("--iterations", type=int, default=2)
    p.add_argument("--probe-h", type=float, default=0.039)
    p.add_argument("--probe-steps", type=int, default=2)
    p.add_argument("--no-tangents", action="store_true",
                   help="calibration: SNES forward + separate linearised sweeps (the old way)")
    p.add_argument("--keep-cases", action="store_true",
                   help="keep the cases of the existing output JSON that this run does not "
                        "re-run (e.g. with --only calibration)")
    p.add_argument("--merge", nargs=2, metavar=("SERIAL_JSON", "TWO_RANKS_JSON"),
                   help="do not run: merge two --worker outputs (1 rank, 2 ranks) of the same "
                        "arguments, made at different times")
    p.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    p.add_argument("--out", default=None, help="output JSON (default outputs/bench/scaling.json)")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.llg_n, args.llg_steps, args.heat_n, args.heat_steps = 8, 2, 10, 4
        args.h, args.n_t, args.iterations, args.probe_h, args.probe_steps = 0.2, 6, 1, 0.3, 1
    return args


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    comm = MPI.COMM_WORLD
    if args.worker:
        load_start = os.getloadavg()
        res = run_cases(comm, args)
        res.update(loadavg_start=list(load_start), loadavg_end=list(os.getloadavg()),
                   finished_utc=time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()))
        if comm.rank == 0:
            Path(args.worker).write_text(json.dumps(res))
        return
    load_start = os.getloadavg()
    out = Path(args.out) if args.out else (OUT.with_name("scaling_quick.json") if args.quick
                                           else OUT)
    if args.merge:  # the two runs were made separately (e.g. the 2-rank one on a quiet machine)
        serial, par = (json.loads(Path(f).read_text()) for f in args.merge)
        load_start = None
    else:
        serial = run_cases(comm, args)
        par = two_ranks(argv, out)
    result = merge(serial, par, args)
    if args.merge:
        result["runs"] = {"serial": {k: serial.get(k) for k in RUN_KEYS},
                          "two_ranks": {k: par.get(k) for k in RUN_KEYS},
                          "merged_from": list(args.merge)}
    if args.keep_cases and out.exists():
        keep_previous_cases(result, json.loads(out.read_text()))
    merge_aao(result)
    result["written_utc"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    if load_start is not None:
        result["loadavg_start"], result["loadavg_end"] = list(load_start), list(os.getloadavg())
    result["note"] = ("wall-clock seconds on a shared 2-core machine; speed-up target 1.6 "
                      "(see docs/cluster.md for the misses and their causes); cpu_speedup: the "
                      "same ratio of per-process CPU seconds (max over ranks), i.e. without "
                      "the time spent waiting for a core")
    for c in result["cases"]:
        print(f"{c['name']}: {c['dofs']} dofs, {c['seconds_1rank']:.1f} s (1 rank), "
              f"{c['seconds_2ranks']:.1f} s (2 ranks), speed-up {c['speedup']:.2f} "
              f"(CPU {c['cpu_speedup']:.2f})")
    if "calibration_3d" in result:
        c = result["calibration_3d"]
        print(f"calibration_3d: {c['vertices']} vertices, n_t {c['n_t']}, "
              f"{c['seconds_1rank']:.1f} s / {c['seconds_2ranks']:.1f} s, a = {c['a']}")
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
