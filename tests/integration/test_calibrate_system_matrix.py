"""calibrate on the shipped system-matrix file (demos/data/sm_scan.mdf) through the job, and the
fitting model against the ``system_matrix`` job's ``llg`` model (serial and 2 ranks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from llgfem.calibration.macrospin import MacrospinModel
from llgfem.cli import load_run_config
from llgfem.jobs.calibrate import run
from llgfem.scanner.fields import ScannerConfig, ScannerFields

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "demos" / "configs" / "calibrate_system_matrix.toml"


def test_shipped_system_matrix_calibrates_with_intervals(mpi_tmp_path):
    """Four of the twelve positions (stored frames 1, 2, 5, 6): a fast run of the demo."""
    cfg = load_run_config(str(CONFIG), ["data.frames=[1, 2, 5, 6]", "output.plots=false"],
                          output_dir=str(mpi_tmp_path))
    summary = run(cfg)
    assert summary["data"]["positions"] == 4
    assert summary["data"]["background_frames"] == 6
    assert summary["model"] == "llg_macrospin"
    names = [p["name"] for p in summary["physical"]["parameters"]]
    assert names == ["alpha_D", "gamma"]
    assert set(summary["true"]) >= {"a1", "a2", "alpha_D", "gamma"}
    assert all(summary["covered"].values()), summary["covered"]
    assert all(summary["identified"][:2])
    assert (ROOT / "demos" / "data" / "sm_scan.mdf").stat().st_size < 200_000


def test_macrospin_matches_the_system_matrix_llg_model():
    """The graded ROS2 macrospin and the system_matrix job's llg model (adaptive ARK4 on a
    one-cell mesh) agree to the time-discretisation error at a position near the FFP line."""
    from llgfem.scanner.llg_model import LLGOptions, LLGResponse
    from llgfem.scanner.tracer import TracerConfig

    sc = ScannerFields(ScannerConfig(base_frequency=2.5e6, dividers=(100,), strengths=(0.012,),
                                     gradient=(-1.0, -1.0, 2.0), num_sampling_points=100))
    x = np.array([[0.002, 0.0005, 0.0]])
    ref = LLGResponse(TracerConfig(damping=0.1, gyromagnetic_ratio=1.76e11),
                      LLGOptions(rtol=1e-7)).moments(sc, x)[1]
    coarse, fine = (MacrospinModel(sc, x, 1.75e11, per_radian=r).rates(
        [0.1 * 1.75 / 1.76, -1.75 / 1.76])[0] for r in (10.0, 40.0))
    scale = np.abs(ref).max()
    err_coarse = np.abs(coarse - ref).max() / scale
    err_fine = np.abs(fine - ref).max() / scale
    assert err_fine < 2e-3
    assert err_fine < 0.5 * err_coarse  # refining the graded grid approaches the reference
    lag = np.abs(MacrospinModel(sc, x, 1.75e11).rates([0.0, -1.0])[0] - ref).max() / scale
    assert lag > 10 * err_fine  # the damping lag is resolved, not lost in the error
