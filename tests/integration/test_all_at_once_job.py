"""`llgfem run` with the all_at_once job: Table 3 setting on a 2-D domain, and resume."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

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
    s, out = run("aao_2d.toml", mpi_tmp_path, "aao.max_iter=15", "domain.n=[16, 2]",
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
    straight, _ = run("aao_test3.toml", mpi_tmp_path / "a", *common, "aao.max_iter=10")
    run("aao_test3.toml", mpi_tmp_path / "b", *common, "aao.max_iter=4")
    resumed, _ = run("aao_test3.toml", mpi_tmp_path / "b", *common, "aao.max_iter=10",
                     "aao.resume=true")
    assert resumed["iterations"] == straight["iterations"]
    assert resumed["rel_error"] == straight["rel_error"]


def test_kaczmarz_variants_run_and_reduce_the_error(mpi_tmp_path):
    for method in ("kaczmarz_time", "kaczmarz_data"):
        s, out = run("aao_table3.toml", mpi_tmp_path / method, "domain.n=[24]", "time.n_t=9",
                     f'aao.method="{method}"', "aao.max_iter=12", "aao.segments=3",
                     "aao.model_weight=1.0", "aao.mu=300.0", "aao.grow=1.0",
                     "output.fields=false", "aao.error_every=4")
        errors = [e for _, e in s["error_trace"]]
        assert errors[-1] < errors[0], (method, errors)


@pytest.mark.parametrize(("table", "old", "new"), [("aao", "a_init", "a0"),
                                                   ("aao", "max_iterations", "max_iter"),
                                                   ("aao", "m_init", "state_guess"),
                                                   ("calibrate", "max_iterations", "max_iter")])
def test_one_identification_vocabulary(table, old, new):
    """calibrate and all_at_once share the keys; the old names are refused naming the new."""
    from llgfem.config import ConfigError, parse_section
    from llgfem.jobs.all_at_once import AAOConfig
    from llgfem.jobs.calibrate import CalibrateConfig

    cls = {"aao": AAOConfig, "calibrate": CalibrateConfig}[table]
    with pytest.raises(ConfigError, match=rf"{table}\.{old}: renamed to {table}\.{new}"):
        parse_section(cls, {old: 1}, table)
    shared = {"a0", "max_iter", "state_guess", "noise", "delta", "seed", "tau", "method"}
    assert shared <= {f.name for f in dataclasses.fields(cls)}
