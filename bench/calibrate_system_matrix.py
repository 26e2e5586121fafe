"""Coverage of the system-matrix calibration intervals over noise seeds (issue 14, item 1).

The clean spectra of the demo's scan (demos/data/make_sm_scan.py: the ``system_matrix`` job's
``llg`` model, ARK4 adaptive at rtol 1e-8, 12 positions, 25 kHz) are simulated once; for every
seed a noisy system-matrix MDF (1 % noise, feed-through, 6 background frames) is written and
fitted by :mod:`llgfem.calibration.system_matrix_fit` as the demo does (harmonics 2-40,
``snr_min = 3``, start (0.15, -0.8)).  Writes ``outputs/bench/calibrate_system_matrix.json``:
``{"cases": [{"seed", "parameters", "true", "estimate", "stderr", "ci95_low", "ci95_high",
"covered", "seconds", "iterations"}], "coverage", "coverage_physical"}``.

    nice -n 10 .venv/bin/python bench/calibrate_system_matrix.py [--seeds 10]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from mpi4py import MPI

import llgfem  # noqa: F401  (DOLFINx bootstrap)
from llgfem.builders import DataConfig
from llgfem.calibration.system_matrix_fit import (
    SystemMatrixModel,
    fit_system_matrix,
    initial_gains,
    physical_uncertainty,
    read_system_matrix,
    system_matrix_with_background,
)
from llgfem.io.mdf import Receiver, drive_field, write_mdf
from llgfem.scanner.fields import ScannerFields
from llgfem.scanner.system_matrix import grid_positions

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "demos" / "data"))
import make_sm_scan as scan  # noqa: E402

A0 = (0.15, -0.8)


def noisy_file(S: np.ndarray, seed: int, folder: Path) -> Path:
    sc = ScannerFields(scan.SCANNER)
    spectra, background = scan.frames(S, sc.num_samples, np.random.default_rng(100 + seed))
    rx = Receiver(num_channels=3, num_sampling_points=sc.num_samples,
                  bandwidth=sc.num_samples / sc.cycle / 2)
    mdf = system_matrix_with_background(
        spectra, background, drivefield=drive_field(2.5e6, [100], [0.012], [0.0], "sine"),
        receiver=rx, size=list(scan.GRID.size), field_of_view=list(scan.GRID.fov),
        positions=grid_positions(scan.GRID), gradient=sc.gradient)
    return write_mdf(folder / f"sm_{seed}.mdf", mdf)


def fit_case(path: Path, seed: int) -> dict:
    m = read_system_matrix(DataConfig(path=str(path), f_max=1e6, snr_min=3.0), path)
    model = SystemMatrixModel(m.scanner, m.positions, m.bins, np.eye(3), 2, scan.GAMMA_REF, 1,
                              mask=m.mask)
    a0 = np.array(A0)
    x0 = np.concatenate([a0, initial_gains(model.base(a0), np.transpose(m.data, (1, 0, 2)),
                                           model.select)])
    t0 = time.perf_counter()
    names = ("a1", "a2", *[f"g{i}" for i in range(6)])
    summary, _, unc = fit_system_matrix(m, model, x0, names, max_iter=20)
    phys = physical_uncertainty(unc, scan.GAMMA_REF, 2, model.macrospin.b_ref, 474e3)
    truth = [scan.ALPHA * scan.GAMMA_REF / scan.GAMMA, -scan.GAMMA_REF / scan.GAMMA,
             scan.ALPHA, scan.GAMMA]
    est = [*unc.estimate[:2], *phys.estimate]
    low = [*unc.ci95_low[:2], *phys.ci95_low]
    high = [*unc.ci95_high[:2], *phys.ci95_high]
    return {"seed": seed, "model": "llg_macrospin", "parameters": ["a1", "a2", "alpha_D", "gamma"],
            "true": truth, "estimate": [float(v) for v in est],
            "stderr": [float(v) for v in (*unc.stderr[:2], *phys.stderr)],
            "ci95_low": [float(v) for v in low], "ci95_high": [float(v) for v in high],
            "covered": [bool(lo <= t <= hi) for lo, t, hi in zip(low, truth, high, strict=True)],
            "seconds": time.perf_counter() - t0, "iterations": summary["iterations"],
            "data_model": "system_matrix llg (ARK4, rtol 1e-8)"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    t0 = time.perf_counter()
    S = scan.clean_spectra(ScannerFields(scan.SCANNER), grid_positions(scan.GRID),
                           MPI.COMM_SELF)
    simulate = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        cases = [fit_case(noisy_file(S, seed, Path(tmp)), seed) for seed in range(args.seeds)]
    cov = np.array([c["covered"] for c in cases])
    out = {"cases": cases, "coverage": float(cov[:, :2].mean()),
           "coverage_physical": float(cov[:, 2:].mean()), "seeds": args.seeds,
           "simulate_seconds": simulate,
           "mean_estimate": np.mean([c["estimate"] for c in cases], axis=0).tolist(),
           "std_estimate": np.std([c["estimate"] for c in cases], axis=0, ddof=1).tolist(),
           "mean_stderr": np.mean([c["stderr"] for c in cases], axis=0).tolist()}
    path = ROOT / "outputs" / "bench" / "calibrate_system_matrix.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    print(f"coverage {out['coverage']:.3f} (a1, a2), {out['coverage_physical']:.3f} "
          f"(alpha_D, gamma) over {args.seeds} seeds -> {path}")


if __name__ == "__main__":
    main()
