"""Benchmark of the kernel (paper 001, §2.2) and autoencoder (§2.1) surrogates on FEM data.

Writes ``outputs/bench/surrogates.json``::

    {"kernel": {"train_seconds", "predict_seconds", "predict_seconds_per_trajectory",
                "mse_test", "mse_baseline_constant", "speedup_vs_solver", "config": {...},
                "learning_curve": [{"n_train", "train_mse", "cv_mse", "cv_std", "test_mse"}]},
     "autoencoder": {"status": "ok", "train_seconds", "predict_seconds",
                     "predict_seconds_per_trajectory", "mse_test", "mse_baseline_constant",
                     "speedup_vs_solver", "fit_seconds": {"ae", "integrator"},
                     "final_losses", "config": {...},
                     "learning_curve": [{"n_train", "train_mse", "cv_mse", "cv_std",
                                         "test_mse", "epochs_ae", "epochs_integrator"}]}
                    (or {"status": "jax not installed"}),
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
``autoencoder`` (only when JAX + optax are importable): llgfem.surrogates.autoencoder (Table 1
autoencoder, Table 2 integrator, forward-looking loss (4) with ft = 15, nu = 5, d = 40) on the
same split; ``train_seconds`` includes JIT compilation.  Its learning curve has the same
columns as the kernel one (train, 10-fold cross-validation and test MSE, same split and pool
order) at fewer sizes (AE_SIZES), each model trained with fewer epochs (AE_CURVE_EPOCHS) than
the final one.  The SP4 experiments (magnum.np) are in ``bench/surrogates_sp4.py`` (key
``"sp4"`` of the same JSON).
Serial (one rank).  Usage: ``python bench/surrogates.py``.
"""

import llgfem  # noqa: F401  (bootstraps the DOLFINx wheel)

# isort: split
import dataclasses
import importlib.util
import json
import time
from pathlib import Path

import numpy as np
from mpi4py import MPI

from llgfem.config import DomainConfig
from llgfem.io.results import to_jsonable
from llgfem.surrogates.autoencoder import AutoencoderSurrogate, AutoencoderSurrogateConfig
from llgfem.surrogates.data import (
    FEMDatasetSpec,
    TrajectoryDataset,
    generate_fem_dataset,
    train_test_split,
    write_dataset,
)
from llgfem.surrogates.evaluate import (
    baseline_mse,
    learning_curve,
    plot_mean_magnetisation,
    timed_fit_predict,
    trajectory_mse,
)
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
# departures from the paper's training (chosen for a ~1 min fit on one core): no dropout,
# Adam step 1e-3 cosine-decayed to 1e-5 instead of a constant 2e-4; sizes smaller than Tables 1-2
AE_MODEL = AutoencoderSurrogateConfig(batch_size=128, learning_rate=1e-3, final_lr_fraction=0.01,
                                      dropout=0.0, epochs_ae=150, epochs_integrator=80)
AE_SIZES = (20, 40, 80)
AE_CURVE_EPOCHS = {"epochs_ae": 75, "epochs_integrator": 40}


def _ae_fit_predict(config: AutoencoderSurrogateConfig, train: TrajectoryDataset,
                    evaluate: list[TrajectoryDataset]) -> tuple[AutoencoderSurrogate, list, list]:
    """Fit, then predict each of ``evaluate``: (model, predictions, [fit, predict] seconds)."""
    t0 = time.perf_counter()
    model = AutoencoderSurrogate(config).fit(train.tags, train.states)
    t1 = time.perf_counter()
    preds = [model.predict(d.tags, d.states[:, : config.nu]) for d in evaluate]
    return model, preds, [t1 - t0, time.perf_counter() - t1]


def ae_learning_curve(data: TrajectoryDataset, seed: int = 0) -> list[dict]:
    """Train / 10-fold CV / test MSE at AE_SIZES (reduced epochs; the kernel's split)."""
    config = dataclasses.replace(AE_MODEL, **AE_CURVE_EPOCHS)
    rows = learning_curve(data, config, AE_SIZES, k=10, test_fraction=0.2, seed=seed,
                          factory=AutoencoderSurrogate)
    return [{**row, **AE_CURVE_EPOCHS} for row in rows]


def autoencoder_rows(data: TrajectoryDataset, train: np.ndarray, test: np.ndarray,
                     solver_seconds: float) -> dict:
    """The ``"autoencoder"`` entry: final model on the kernel's split + a short learning curve."""
    if importlib.util.find_spec("jax") is None or importlib.util.find_spec("optax") is None:
        return {"status": "jax not installed"}
    te = data.subset(test)
    model, (pred,), (fit_s, pred_s) = _ae_fit_predict(AE_MODEL, data.subset(train), [te])
    per = pred_s / len(test)
    return {"status": "ok", "train_seconds": fit_s, "predict_seconds": pred_s,
            "predict_seconds_per_trajectory": per,
            "mse_test": trajectory_mse(pred, te.states, AE_MODEL.nu),
            "mse_baseline_constant": baseline_mse(te.states, AE_MODEL.nu),
            "speedup_vs_solver": solver_seconds / per, "fit_seconds": model.fit_seconds,
            "final_losses": {k: v[-1] for k, v in model.history.items() if v},
            "config": dataclasses.asdict(AE_MODEL), "learning_curve": ae_learning_curve(data)}


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
    return {"kernel": result, "autoencoder": autoencoder_rows(data, train, test, solver),
            "solver_seconds_per_trajectory": solver, "dataset": dataset, "plot": str(png),
            "kernel_wide_fields": wide_rows()}


if __name__ == "__main__":
    if MPI.COMM_WORLD.rank == 0:
        summary = main()
        OUT.parent.mkdir(parents=True, exist_ok=True)
        old = json.loads(OUT.read_text()) if OUT.exists() else {}
        if "sp4" in old:  # written by bench/surrogates_sp4.py
            summary["sp4"] = old["sp4"]
        OUT.write_text(json.dumps(to_jsonable(summary), indent=2) + "\n")
        k = summary["kernel"]
        print(f"mse_test {k['mse_test']:.3e} (baseline {k['mse_baseline_constant']:.3e}), "
              f"train {k['train_seconds']:.3f} s, speed-up {k['speedup_vs_solver']:.0f}x")
        a = summary["autoencoder"]
        if a["status"] == "ok":
            better = "autoencoder" if a["mse_test"] < k["mse_test"] else "kernel"
            print(f"autoencoder mse_test {a['mse_test']:.3e} vs kernel {k['mse_test']:.3e} "
                  f"(lower: {better}), train {a['train_seconds']:.1f} s vs "
                  f"{k['train_seconds']:.3f} s")
        else:
            print(f"autoencoder: {a['status']}")
