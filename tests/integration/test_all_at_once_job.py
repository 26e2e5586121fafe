"""`llgfem run` with the all_at_once job: Table 3 setting on a 2-D domain, and resume."""

import json
from pathlib import Path

import numpy as np

from llgfem.cli import main

CONFIGS = Path(__file__).resolve().parents[2] / "demos" / "configs"


def run(cfg, out, *sets):
    args = ["run", str(CONFIGS / cfg), "-o", str(out)]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 0
    name = cfg.removesuffix(".toml")
    return json.loads((out / name / "summary.json").read_text()), out / name


def test_aao_2d_identification_reduces_the_residual(mpi_tmp_path):
    s, out = run("aao_2d.toml", mpi_tmp_path, "aao.max_iterations=15", "domain.n=[16, 2]",
                 "time.n_t=9")
    history = json.loads((out / "history.json").read_text())
    res = np.array(history["residual_norm"])
    assert res[-1] < res[0]
    assert s["iterations"] <= 15
    assert {"r_llg", "r_obs", "e_a1", "e_a2"} <= set(s)
    assert (out / "plots" / "parameters.png").exists()


def test_aao_job_resumes_from_its_checkpoint(mpi_tmp_path):
    common = ["domain.n=[24]", "time.n_t=9", "aao.checkpoint_every=3", "output.fields=false",
              "output.plots=false", "aao.method=\"landweber\""]
    straight, _ = run("aao_test3.toml", mpi_tmp_path / "a", *common, "aao.max_iterations=10")
    run("aao_test3.toml", mpi_tmp_path / "b", *common, "aao.max_iterations=4")
    resumed, _ = run("aao_test3.toml", mpi_tmp_path / "b", *common, "aao.max_iterations=10",
                     "aao.resume=true")
    assert resumed["iterations"] == straight["iterations"]
    assert resumed["rel_error"] == straight["rel_error"]


def test_kaczmarz_variants_run_and_reduce_the_error(mpi_tmp_path):
    for method in ("kaczmarz_time", "kaczmarz_data"):
        s, out = run("aao_table3.toml", mpi_tmp_path / method, "domain.n=[24]", "time.n_t=9",
                     f'aao.method="{method}"', "aao.max_iterations=12", "aao.segments=3",
                     "aao.model_weight=1.0", "aao.mu=300.0", "aao.grow=1.0",
                     "output.fields=false", "aao.error_every=4")
        errors = [e for _, e in s["error_trace"]]
        assert errors[-1] < errors[0], (method, errors)
