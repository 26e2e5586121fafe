"""The three LLG time schemes side by side (issue 11): drive period, zero field, adjoints, tables.

Writes ``outputs/bench/llg_schemes.json``::

    {"drive_period": [{"scheme", "steps", "seconds", "rel_error_m", "rel_error_signal", ...}],
     "zero_field_calibration": {"scheme", "a_true", "a0", "a", "e_a1", "e_a2", "iterations",
                                "seconds", "bias_field": false, ...},
     "adjoint": [{"scheme", "dot_rel", "taylor_slope", ...}],
     "tables_unchanged": {"table1_iterations": [...], "table3_e_a1": [...], ...}}

* ``drive_period``: one period of a 12 mT / 25 kHz drive with a 2 T/m selection gradient on a
  line 1 mm off the field-free-point axis (paper 002 Table 2 constants alpha = 0.1,
  gamma = 1.75e11; :mod:`llgfem.solvers.adaptive_drive`): the adaptive L-stable scheme (rows of
  ``bench/llg_drive_period.py``, errors at the accepted steps against the same FEM system at
  rtol 1e-9 and against the nodal macrospin ODE by SciPy DOP853) next to the two fixed-step
  schemes with 500 steps (errors at their levels/midpoints against DOP853).  Target: <= 500
  accepted steps at <= 1e-3 relative error in <m>(t) and in the coil signal.
* ``zero_field_calibration``: the default demo (``demos/configs/default.toml``: a field-free
  point sweeping through two phantoms, no bias field, Bartels-Prohl scheme, 5 % noise).
* ``adjoint``: dot and Taylor tests of F'(a) / F'(a)* of the reduced operator for each
  fixed-step scheme (2-D, FFP without bias, uniaxial anisotropy) and of the adaptive scheme's
  tangent/adjoint on its accepted steps in the drive regime.
* ``tables_unchanged``: Table 1 iterations and Table 3 e_a1 of ``bench/all_at_once.py`` (read
  from ``outputs/bench/all_at_once.json``; ``--before FILE`` adds the numbers of an earlier run
  and whether they are identical).

Usage: ``.venv/bin/python bench/llg_schemes.py [--quick] [--before OLD_all_at_once.json]``.
"""

from __future__ import annotations

import llgfem  # noqa: F401  (bootstraps the DOLFINx wheel)

# isort: split
import argparse
import importlib.util
import json
import time
from pathlib import Path

import numpy as np
from mpi4py import MPI

from llgfem.cli import load_run_config
from llgfem.io.results import write_json
from llgfem.physics import FieldSpec, LLGParameters
from llgfem.solvers.adaptive_drive import (
    DriveRegime,
    coil_signal,
    drive_problem,
    mean_magnetisation,
    nodal_reference,
    relative_error,
)
from llgfem.solvers.llg import LLGSolver
from llgfem.spacetime import TimeGrid

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "outputs" / "bench" / "llg_schemes.json"
FIXED_STEPS = 500


def _drive_period_module():
    spec = importlib.util.spec_from_file_location("llg_drive_period",
                                                  ROOT / "bench" / "llg_drive_period.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fixed_step_row(comm, cells: int, form: str, steps: int) -> dict:
    """A fixed-step scheme on the drive-period case, errors at its levels against DOP853."""
    regime = DriveRegime()
    adaptive = drive_problem(comm, cells, regime=regime)  # the same mesh, space, m0, forms
    field = FieldSpec(kind="expression",
                      expression=lambda x, t: (*regime.field(x[0], t), 0.0))
    grid = TimeGrid(regime.period, steps + 1)
    solver = LLGSolver(adaptive.V, grid, LLGParameters(a1=regime.alpha, a2=-1.0, exchange=0.0),
                       field, form=form, prefix=f"llgfem_bench_{form}_")
    nodal = nodal_reference(adaptive, regime)
    row = {"scheme": {"gilbert": "midpoint", "landau_lifshitz": "bartels_prohl"}[form],
           "steps": steps, "fixed_steps": True}
    comm.Barrier()
    t0 = time.perf_counter()
    try:
        m = solver.solve(adaptive.m0)
    except Exception as e:  # a Newton failure is the measured result here
        return {**row, "seconds": time.perf_counter() - t0, "rel_error_m": float("nan"),
                "rel_error_signal": float("nan"), "failed": str(e).splitlines()[0]}
    row["seconds"] = time.perf_counter() - t0
    m_ref, _ = nodal(grid.times)
    _, mdot_ref = nodal(grid.midpoints)
    mdot = np.diff(m, axis=0) / grid.dt  # D m_n: the scheme's rate at the midpoints
    row["rel_error_m"] = relative_error(mean_magnetisation(adaptive, m),
                                        mean_magnetisation(adaptive, m_ref))
    row["rel_error_signal"] = relative_error(coil_signal(adaptive, mdot),
                                             coil_signal(adaptive, mdot_ref))
    row["reference"] = "nodal_dop853 (rtol 1e-10)"
    return row


def fixed_step_adjoints() -> list[dict]:
    """Dot and Taylor tests of the reduced operator for both fixed-step schemes."""
    import sys

    sys.path.insert(0, str(ROOT / "tests" / "verification"))
    from test_scheme_adjoints import A, reduced

    from llgfem.verification import dot_test, taylor_test

    rows = []
    for form, scheme in (("gilbert", "midpoint"), ("landau_lifshitz", "bartels_prohl")):
        F = reduced(form)
        L = F.derivative(A)
        rng = np.random.default_rng(11)
        n = int(np.prod(F.data_shape))
        res = dot_test(L.apply, L.adjoint, rng.standard_normal(2), rng.standard_normal(n),
                       F.inner_domain, F.inner_range)
        t = taylor_test(F, L.apply, A, np.array([0.3, -0.2]),
                        lambda y: np.sqrt(F.inner_range(y, y)),
                        eps=(2e-2, 1e-2, 5e-3, 2.5e-3))
        rows.append({"scheme": scheme, "dot_rel": res.relative_error,
                     "taylor_slope": float(t.slopes1[-1]), "taylor_slopes": t.slopes1.tolist(),
                     "case": "2-D FFP without bias, anisotropy 0.5, 7 levels"})
        F.cache.destroy()
    return rows


def zero_field_calibration(quick: bool) -> dict:
    from llgfem.jobs.calibrate import run

    sets = ["output.plots=false"] + (["calibrate.max_iter=3"] if quick else [])
    cfg = load_run_config(str(ROOT / "demos" / "configs" / "default.toml"), sets,
                          str(ROOT / "outputs" / "bench" / "llg_schemes_runs"))
    field = cfg.sections.get("field", {})
    s = run(cfg)
    return {"scheme": cfg.sections["llg"]["scheme"], "a_true": s["a_true"], "a0": s["a0"],
            "a": [s["a1"], s["a2"]], "e_a1": s["e_a1"], "e_a2": s["e_a2"],
            "iterations": s["iterations"], "seconds": s["seconds"], "reason": s["reason"],
            "bias_field": bool(np.any(field.get("offset", [0.0, 0.0, 0.0]))),
            "r_obs": s["r_obs"], "delta": s["delta"], "config": "demos/configs/default.toml"}


def tables(before: Path | None) -> dict:
    path = ROOT / "outputs" / "bench" / "all_at_once.json"
    if not path.exists():
        return {"missing": f"{path} (run bench/all_at_once.py first)"}

    def numbers(data):
        t1 = [r["iterations"] for r in data["table1"]]
        t3 = [r["e_a1"] for r in data["table3"]]
        return t1, t3

    t1, t3 = numbers(json.loads(path.read_text()))
    out = {"table1_iterations": t1, "table3_e_a1": t3, "source": str(path.relative_to(ROOT))}
    if before is not None:
        b1, b3 = numbers(json.loads(before.read_text()))
        out.update({"before_table1_iterations": b1, "before_table3_e_a1": b3,
                    "before_source": str(before),
                    "identical": b1 == t1 and np.allclose(b3, t3, rtol=1e-12, atol=0)})
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run (fewer rows)")
    parser.add_argument("--cells", type=int, default=40)
    parser.add_argument("--before", type=Path, help="all_at_once.json of an earlier run")
    args = parser.parse_args(argv)
    comm = MPI.COMM_WORLD
    dp = _drive_period_module()
    rows = ["4:3e-6"] if args.quick else ["4:3e-6", "4:1e-5", "3:3e-6"]
    drive = dp.main(["--cells", str(args.cells), "--rows", *rows,
                     "--json", str(OUT.with_name("llg_drive_period.json"))])
    result = {"drive_period": list(drive["drive_period"]), "adjoint": [], "ranks": comm.size}
    for form in ("landau_lifshitz", "gilbert"):
        row = fixed_step_row(comm, args.cells, form, FIXED_STEPS)
        result["drive_period"].append(row)
        print(f"{row['scheme']} ({FIXED_STEPS} fixed steps): rel. error <m> "
              f"{row['rel_error_m']:.2e}, signal {row['rel_error_signal']:.2e}, "
              f"{row['seconds']:.1f} s {row.get('failed', '')}", flush=True)
    result["adjoint"] = fixed_step_adjoints() + [drive["adjoint_drive_period"]]
    for r in result["adjoint"]:
        print(f"adjoint {r['scheme']}: dot {r['dot_rel']:.1e}, Taylor slope "
              f"{r['taylor_slope']:.3f}   target: dot <= 1e-10, slope 2.00 +- 0.05")
    result["zero_field_calibration"] = zero_field_calibration(args.quick)
    z = result["zero_field_calibration"]
    print(f"zero-field calibration ({z['scheme']}, bias {z['bias_field']}): a = "
          f"({z['a'][0]:.4f}, {z['a'][1]:.4f}) vs {z['a_true']}, e_a = ({z['e_a1']:.3g}, "
          f"{z['e_a2']:.3g}), {z['iterations']} its, {z['seconds']:.1f} s")
    result["tables_unchanged"] = tables(args.before)
    print("tables:", result["tables_unchanged"])
    write_json(OUT, result, comm)
    return result


if __name__ == "__main__":
    main()
