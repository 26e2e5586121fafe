"""The surrogate jobs on a shortened demo config, serial and on 2 ranks (same numbers)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

from llgfem.cli import load_run_config
from llgfem.config import ConfigError
from llgfem.surrogates.data import read_dataset, train_test_split
from llgfem.surrogates.jobs import run_job
from llgfem.surrogates.kernel import KernelSurrogate, load_surrogate, save_surrogate

CONFIGS = Path(__file__).resolve().parents[3] / "demos" / "configs"
SHORT = ("dataset.n_fields=12", "time.n_t=21", "domain.n=[6]", "kernel.rank_pca=60",
         "kernel.rank_pre=60", "kernel.rank_int=60", "kernel.n_components=8")


def _config(name: str, out: Path, *sets: str):
    return load_run_config(str(CONFIGS / name), (*SHORT, *sets), output_dir=str(out))


def test_surrogate_kernel_job_then_train_and_predict_jobs(mpi_tmp_path):
    summary = run_job(_config("surrogate_kernel.toml", mpi_tmp_path, "output.plots=false"))
    run_dir = mpi_tmp_path / "surrogate_kernel"
    assert summary["n"] == 12
    assert summary["mse_test"] < summary["mse_baseline_constant"]
    on_disk = json.loads((run_dir / "summary.json").read_text())
    assert on_disk["mse_test"] == summary["mse_test"]
    data = read_dataset(run_dir / "dataset.h5")
    assert data.D.shape == (12, 21, 2 + 3 * 7)
    # the split kinds on the same files reproduce the combined run
    sets = (f'surrogate.dataset="{run_dir / "dataset.h5"}"', "output.plots=false")
    run_job(_config("surrogate_train.toml", mpi_tmp_path, *sets))
    again = run_job(_config("surrogate_predict.toml", mpi_tmp_path, *sets))
    assert again["mse_test"] == summary["mse_test"]
    everywhere = MPI.COMM_WORLD.allgather(summary["mse_test"])
    assert all(v == everywhere[0] for v in everywhere)


def test_surrogate_jobs_report_bad_input(mpi_tmp_path):
    with pytest.raises(FileNotFoundError):
        run_job(_config("surrogate_train.toml", mpi_tmp_path,
                        f'surrogate.dataset="{mpi_tmp_path / "missing.h5"}"'))
    with pytest.raises(ConfigError):
        run_job(_config("surrogate_kernel.toml", mpi_tmp_path, 'job.kind="heat"'))
    with pytest.raises(ConfigError):
        run_job(_config("surrogate_kernel.toml", mpi_tmp_path, "kernel.nu=0"))


def test_save_load_surrogate_reproduces_predictions(tiny_dataset, mpi_tmp_path):
    ds = tiny_dataset
    train, test = train_test_split(len(ds.D), 0.2, seed=1)
    model = KernelSurrogate().fit(ds.tags[train], ds.states[train])
    path = mpi_tmp_path / f"model_rank{MPI.COMM_WORLD.rank}.npz"
    save_surrogate(path, model)
    back = load_surrogate(path)
    first = ds.states[test][:, : model.config.nu]
    assert back.config == model.config
    assert np.array_equal(back.predict(ds.tags[test], first), model.predict(ds.tags[test], first))
