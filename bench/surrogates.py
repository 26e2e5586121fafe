"""Benchmark of the low-rank kernel surrogate (paper 001, §2.2, Figs. 5 and 7) on FEM data.

Writes ``outputs/bench/surrogates.json``::

    {"kernel": {"train_seconds", "predict_seconds", "predict_seconds_per_trajectory",
                "mse_test", "mse_baseline_constant", "speedup_vs_solver", "config": {...},
                "learning_curve": [{"n_train", "train_mse", "cv_mse", "cv_std", "test_mse"}]},
     "autoencoder": {"status": "not implemented in this session"},
     "solver_seconds_per_trajectory", "dataset": {...}, "plot",
     "kernel_wide_fields": {"default": {...}, "larger": {...}, ...}}

and ``outputs/bench/surrogates_mean_m.png`` (mean magnetisation of two unseen fields, FEM vs
kernel prediction).  Dataset: llgfem's FEM LLG solver (landau_lifshitz form, implicit midpoint),
1-D interval [0, 1] with 16 cells (N = 17 nodes), a1 = 0.2, a2 = 1, exchange 0.01, nonuniform
m0 (see llgfem.jobs.llg_forward.initial_state), static in-plane fields |h| in [0.5, 1],
angle in [180, 200] degrees, n = 100 fields, s = 60 time points on [0, 10].  20 % of the fields
are held out (seed 0); the learning curve uses 10-fold cross-validation on the first n_train
fields of the training pool.  Errors: MSE over the predicted time points j >= nu = 5.
Prediction is batched over the test fields; ``speedup_vs_solver`` compares the per-trajectory
prediction time with the mean per-trajectory ``LLGSolver.solve`` time (JIT excluded).
``kernel_wide_fields``: final-model rows on a wider family (|h| in [0.2, 1.2], all angles),
for the default model and a larger one (d = 40, integrator rank 600).
Serial (one rank).  Usage: ``python bench/surrogates.py``.
"""

import llgfem  # noqa: F401  (bootstraps the DOLFINx wheel)

# isort: split
import dataclasses
import json
import time
from pathlib import Path

from mpi4py import MPI

from llgfem.config import DomainConfig
from llgfem.io.results import to_jsonable
from llgfem.surrogates.data import (
    FEMDatasetSpec,
    generate_fem_dataset,
    train_test_split,
    write_dataset,
)
from llgfem.surrogates.evaluate import learning_curve, plot_mean_magnetisation, timed_fit_predict
from llgfem.surrogates.kernel import KernelSurrogateConfig

OUT = Path("outputs/bench/surrogates.json")
SPEC = FEMDatasetSpec(n_fields=100, h_range=(0.5, 1.0), angle_range=(180.0, 200.0),
                      initial="nonuniform", seed=0)
DOMAIN = DomainConfig(kind="interval", lower=(0.0,), upper=(1.0,), n=(16,))
T, S = 10.0, 60
MODEL = KernelSurrogateConfig(rank_pca=200, n_components=20, rank_pre=200, rank_int=300)
SIZES = (10, 20, 40, 60, 80)
# a wider field family (all in-plane directions, |h| in [0.2, 1.2]): harder to learn
WIDE = dataclasses.replace(SPEC, h_range=(0.2, 1.2), angle_range=(0.0, 360.0))
LARGER = dataclasses.replace(MODEL, n_components=40, rank_int=600)


def wide_rows() -> dict:
    """Final-model errors on the wider field family (default and a larger model)."""
    data = generate_fem_dataset(WIDE, DOMAIN, T=T, n_t=S, comm=MPI.COMM_SELF)
    train, test = train_test_split(len(data.D), 0.2, seed=0)
    rows = {"spec": dataclasses.asdict(WIDE),
            "solver_seconds_per_trajectory": data.meta["solver_seconds_per_trajectory"]}
    for name, model in (("default", MODEL), ("larger", LARGER)):
        _, _, r = timed_fit_predict(model, data.subset(train), data.subset(test))
        speedup = rows["solver_seconds_per_trajectory"] / r["predict_seconds_per_trajectory"]
        rows[name] = {**r, "speedup_vs_solver": speedup, "config": dataclasses.asdict(model)}
    return rows


def main() -> dict:
    comm = MPI.COMM_SELF
    t0 = time.perf_counter()
    data = generate_fem_dataset(SPEC, DOMAIN, T=T, n_t=S, comm=comm)
    generate_seconds = time.perf_counter() - t0
    write_dataset(OUT.with_name("surrogates_dataset.h5"), data, comm)
    train, test = train_test_split(len(data.D), 0.2, seed=0)
    _, pred, result = timed_fit_predict(MODEL, data.subset(train), data.subset(test))
    solver = data.meta["solver_seconds_per_trajectory"]
    result["speedup_vs_solver"] = solver / result["predict_seconds_per_trajectory"]
    result["config"] = dataclasses.asdict(MODEL)
    result["learning_curve"] = learning_curve(data, MODEL, SIZES, k=10, test_fraction=0.2)
    png = plot_mean_magnetisation(OUT.with_name("surrogates_mean_m.png"), data.subset(test),
                                  pred, fields=(0, 1))
    dataset = {"n": len(data.D), "s": S, "N": data.N, "p": data.p, "T": T,
               "generate_seconds": generate_seconds, "n_train": len(train),
               "n_test": len(test), "spec": dataclasses.asdict(SPEC),
               "domain": dataclasses.asdict(DOMAIN)}
    return {"kernel": result, "autoencoder": {"status": "not implemented in this session"},
            "solver_seconds_per_trajectory": solver, "dataset": dataset, "plot": str(png),
            "kernel_wide_fields": wide_rows()}


if __name__ == "__main__":
    if MPI.COMM_WORLD.rank == 0:
        summary = main()
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(to_jsonable(summary), indent=2) + "\n")
        k = summary["kernel"]
        print(f"mse_test {k['mse_test']:.3e} (baseline {k['mse_baseline_constant']:.3e}), "
              f"train {k['train_seconds']:.3f} s, speed-up {k['speedup_vs_solver']:.0f}x")
