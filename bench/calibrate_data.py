"""Calibration from data files with honest uncertainty (issue 14): calibrate_data.json.

LLG case: the fine model demos/data/ffp_llg_fine.toml (64 cells, 1600 Bartels-Prohl steps per
period, physical FFP scan through zero field) is simulated once; for every seed a noisy MDF
measurement (2 % noise per frame, 4 foreground + 2 background frames, drive feed-through) is
written and fitted by the ``calibrate`` data path with the coarse model of
demos/configs/calibrate_mdf.toml (32 cells, 400 steps; complex gain per channel); each record
holds the estimates of (a1, a2), their standard errors and 95 % intervals and whether the
truth is covered.  ``table3_a2_identified`` runs the paper's Table 3 setting
(demos/configs/calibrate_test3.toml: one number per coil, a~ = 1) and reports the computed
identifiability of a2.  Brown-Neel cases come from
``llgfem.brownneel.calibrate_data.bench_cases(seeds)`` when that module exists.

    nice -n 10 .venv/bin/python bench/calibrate_data.py [--seeds 10] [--model-nt 401]
        [--bn-seeds 10] [--skip-bn] [--reuse-llg]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from mpi4py import MPI

import llgfem  # noqa: F401
from llgfem.calibration import NotIdentifiedWarning
from llgfem.calibration.simulate import clean_samples, write_measurement
from llgfem.config import load_config, parse_config, read_toml

ROOT = Path(__file__).resolve().parents[1]
FINE = ROOT / "demos" / "data" / "ffp_llg_fine.toml"
DEMO = ROOT / "demos" / "configs" / "calibrate_mdf.toml"
TABLE3 = ROOT / "demos" / "configs" / "calibrate_test3.toml"
OUT = ROOT / "outputs" / "bench" / "calibrate_data.json"
OPTIONS = {"noise": 0.02, "frames": 4, "background_frames": 2, "feedthrough": 0.5}
SAMPLES = 64
TARGET = {"coverage": [0.85, 1.0], "table3_a2_identified": False}


def fit_file(path: Path, out: Path, model_nt: int, model_n: int) -> dict:
    """Run the calibrate data path on ``path`` with the demo's coarse model."""
    from llgfem.jobs.calibrate import run

    data = read_toml(DEMO)
    data["data"]["path"] = str(path)
    data["time"]["n_t"] = model_nt
    data["domain"]["n"] = [model_n]
    data["output"] = {"dir": str(out), "fields": False, "plots": False}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotIdentifiedWarning)
        return run(parse_config(data, source=str(DEMO)))


def llg_cases(seeds: int, model_nt: int, model_n: int, comm) -> list[dict]:
    t0 = time.perf_counter()
    u, field, truth = clean_samples(load_config(FINE), SAMPLES, comm)
    fine_s = time.perf_counter() - t0
    true = [truth["a1"], truth["a2"]]
    cases = []
    tmp = Path(comm.bcast(tempfile.mkdtemp(prefix="calib-") if comm.rank == 0 else None))
    for seed in range(seeds):
        path = write_measurement(tmp / f"seed{seed}.mdf", u, field, truth, comm=comm,
                                 seed=seed, **OPTIONS)
        t0 = time.perf_counter()
        s = fit_file(path, tmp / "runs", model_nt, model_n)
        secs = time.perf_counter() - t0
        est = [s["a1"], s["a2"]]
        lo, hi = s["ci95_low"][:2], s["ci95_high"][:2]
        covered = [bool(lo[j] is not None and lo[j] <= true[j] <= hi[j]) for j in range(2)]
        cases.append({
            "model": "llg", "parameters": ["a1", "a2"], "true": true, "estimate": est,
            "stderr": s["stderr"][:2], "ci95_low": lo, "ci95_high": hi, "covered": covered,
            "seconds": secs,
            "data_model": (f"fine FEM 64 cells x 1600 Bartels-Prohl steps -> MDF "
                           f"({SAMPLES} samples, {OPTIONS['noise']:.0%} noise/frame, "
                           f"{OPTIONS['frames']}+{OPTIONS['background_frames']} frames, "
                           f"feed-through); fit {model_n} cells x {model_nt - 1} steps, "
                           "complex gain per channel"),
            "seed": seed, "identified": s["identified"][:2], "iterations": s["iterations"],
            "physical": s.get("physical"), "r_obs": s["r_obs"], "fine_seconds": fine_s})
        if comm.rank == 0:
            print(f"seed {seed}: a = ({est[0]:.5f}, {est[1]:.5f}) +- ({s['stderr'][0]:.2g}, "
                  f"{s['stderr'][1]:.2g}) covered {covered} {secs:.1f} s", flush=True)
    return cases


def table3_identified(comm) -> tuple[bool, dict]:
    """Run calibrate_test3 (paper Table 3 setting); a2's computed identifiability."""
    from llgfem.jobs.calibrate import run

    data = read_toml(TABLE3)
    out = Path(comm.bcast(tempfile.mkdtemp(prefix="calib-t3-") if comm.rank == 0 else None))
    data["output"] = {"dir": str(out), "fields": False, "plots": False}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotIdentifiedWarning)
        s = run(parse_config(data, source=str(TABLE3)))
    return bool(s["identified"][1]), {"a": [s["a1"], s["a2"]], "identified": s["identified"],
                                      "singular_values": s["uncertainty"]["singular_values"]}


def brown_neel_cases(seeds: int) -> tuple[list[dict], str]:
    try:
        from llgfem.brownneel.calibrate_data import bench_cases
    except ImportError as e:
        return [], f"Brown-Neel cases not available: {e}"
    return list(bench_cases(list(range(seeds)))), "from llgfem.brownneel.calibrate_data"


def coverage(cases: list[dict]) -> float:
    flags = [c for case in cases for c in case["covered"]]
    return float(np.mean(flags)) if flags else float("nan")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--model-nt", type=int, default=401)
    ap.add_argument("--model-n", type=int, default=32)
    ap.add_argument("--bn-seeds", type=int, default=10)
    ap.add_argument("--skip-bn", action="store_true")
    ap.add_argument("--reuse-llg", action="store_true",
                    help="take the LLG cases from the existing JSON (e.g. to add Brown-Neel)")
    args = ap.parse_args(argv)
    comm = MPI.COMM_WORLD
    if args.reuse_llg:
        llg = [c for c in json.loads(OUT.read_text())["cases"] if c["model"] == "llg"]
    else:
        llg = llg_cases(args.seeds, args.model_nt, args.model_n, comm)
    t3, t3_info = table3_identified(comm)
    bn, bn_note = ([], "skipped (--skip-bn)") if args.skip_bn else brown_neel_cases(args.bn_seeds)
    cases = llg + bn
    result = {"cases": cases, "coverage": coverage(cases), "table3_a2_identified": t3,
              "coverage_llg": coverage(llg), "coverage_brown_neel": coverage(bn),
              "brown_neel": bn_note, "table3": t3_info, "target": TARGET,
              "seeds": args.seeds, "mpi_size": comm.size}
    if comm.rank == 0:
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(result, indent=2) + "\n")
        print(f"{'quantity':<24} {'reference (target)':>20} {'ours':>12}")
        print(f"{'coverage (all)':<24} {'0.85 - 1.0':>20} {result['coverage']:>12.3f}")
        print(f"{'coverage llg':<24} {'0.85 - 1.0':>20} {result['coverage_llg']:>12.3f}")
        print(f"{'coverage brown-neel':<24} {'0.85 - 1.0':>20} "
              f"{result['coverage_brown_neel']:>12.3f}")
        print(f"{'table3 a2 identified':<24} {'False':>20} {str(t3):>12}")
        print(f"wrote {OUT}")
    return result


if __name__ == "__main__":
    main()
