"""Scoring the kernel surrogate (paper 001, Figs. 5 and 7): errors, learning curves, plots.

Errors are mean squared errors over all entries of the predicted states, averaged over the time
points ``j >= nu`` (the first ``nu`` states are inputs of the prediction, eq. (3)), as in the
paper's learning curves ("the prediction error is averaged over all timesteps").  The learning
curve holds out a seeded test set (20 %), and for each number of training fields reports the
training error, the k-fold (10) cross-validation error on those fields and the test error.
Any model with ``Model(config).fit(tags, states)``, ``model.config.nu`` and
``model.predict(tags, first)`` can be scored (``factory``; default the kernel surrogate, the
autoencoder of :mod:`llgfem.surrogates.autoencoder` fits the same protocol).

Notation: ``nu`` integrator steps; ``D`` dataset (:mod:`llgfem.surrogates.data`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from llgfem.surrogates.data import TrajectoryDataset, kfold_indices, train_test_split
from llgfem.surrogates.kernel import KernelSurrogate

__all__ = [
    "baseline_mse",
    "learning_curve",
    "plot_mean_magnetisation",
    "predict_dataset",
    "timed_fit_predict",
    "trajectory_mse",
]


def trajectory_mse(pred: np.ndarray, truth: np.ndarray, nu: int) -> float:
    """MSE over fields, entries and the predicted time points ``j >= nu``."""
    return float(np.mean((pred[:, nu:] - truth[:, nu:]) ** 2))


def baseline_mse(truth: np.ndarray, nu: int) -> float:
    """MSE of the trivial prediction ``m(t_j) = m(t_0)``."""
    return float(np.mean((truth[:, :1] - truth[:, nu:]) ** 2))


def predict_dataset(model, data: TrajectoryDataset) -> np.ndarray:
    """Predicted states ``(n, s, 3N)`` of every field of ``data`` from its first ``nu`` states."""
    return model.predict(data.tags, data.states[:, : model.config.nu])


def _fit(config, data: TrajectoryDataset, factory: Callable = KernelSurrogate):
    return factory(config).fit(data.tags, data.states)


def _score(config, train: TrajectoryDataset, evaluate: Sequence[TrajectoryDataset],
           factory: Callable = KernelSurrogate) -> list[float]:
    model = _fit(config, train, factory)
    return [trajectory_mse(predict_dataset(model, d), d.states, config.nu) for d in evaluate]


def learning_curve(data: TrajectoryDataset, config, sizes: Sequence[int], k: int = 10,
                   test_fraction: float = 0.2, seed: int = 0,
                   factory: Callable = KernelSurrogate) -> list[dict]:
    """Train / k-fold CV / test MSE against the number of training fields.

    Args:
        data: the whole dataset; ``test_fraction`` of its fields are held out (seeded).
        config: surrogate hyper-parameters (of ``factory``).
        sizes: numbers of training fields (each ``>= k``, at most the training pool).
        k: folds of the cross-validation on the first ``size`` training fields.
        seed: seed of the test split and the folds.
        factory: the model class (``factory(config).fit(tags, states)``).

    Returns:
        One dict per size: ``n_train``, ``train_mse`` (fit on all ``size`` fields),
        ``cv_mse`` (mean over folds of the validation MSE), ``cv_std``, ``test_mse``.
    """
    pool, test = train_test_split(len(data.D), test_fraction, seed)
    pool = np.random.default_rng(seed + 1).permutation(pool)
    rows = []
    for size in sizes:
        sub = data.subset(np.sort(pool[:size]))
        train_mse, test_mse = _score(config, sub, [sub, data.subset(test)], factory)
        cv = [_score(config, sub.subset(tr), [sub.subset(va)], factory)[0]
              for tr, va in kfold_indices(size, k, seed)]
        rows.append({"n_train": int(size), "train_mse": train_mse, "cv_mse": float(np.mean(cv)),
                     "cv_std": float(np.std(cv)), "test_mse": test_mse})
    return rows


def timed_fit_predict(config, train: TrajectoryDataset, test: TrajectoryDataset,
                      factory: Callable = KernelSurrogate) -> tuple[object, np.ndarray, dict]:
    """Fit on ``train``, predict ``test``; wall times of both (``time.perf_counter``)."""
    t0 = time.perf_counter()
    model = _fit(config, train, factory)
    t1 = time.perf_counter()
    pred = predict_dataset(model, test)
    t2 = time.perf_counter()
    n = len(test.D)
    return model, pred, {"train_seconds": t1 - t0, "predict_seconds": t2 - t1,
                         "predict_seconds_per_trajectory": (t2 - t1) / n,
                         "mse_test": trajectory_mse(pred, test.states, config.nu),
                         "mse_baseline_constant": baseline_mse(test.states, config.nu)}


def plot_mean_magnetisation(path: str | Path, data: TrajectoryDataset, pred: np.ndarray,
                            fields: Sequence[int], truth_label: str = "FEM",
                            pred_label: str = "kernel", others: dict | None = None,
                            time_unit: tuple[str, float] = ("t", 1.0)) -> Path:
    """Computed (lines) vs predicted (markers) mean magnetisation of ``fields`` (PNG).

    Args:
        others: more predictions ``{label: (n, s, 3N)}``, drawn with crosses.
        time_unit: x-axis label and the factor applied to ``data.times``.

    Serial: call it on one rank only.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    truth, guess = data.mean_magnetisation(), data.mean_magnetisation(pred)
    extra = {k: data.mean_magnetisation(v) for k, v in (others or {}).items()}
    t = data.times * time_unit[1]
    fig, axes = plt.subplots(1, len(fields), figsize=(5.2 * len(fields), 3.8), squeeze=False)
    for ax, i in zip(axes[0], fields, strict=True):
        for q, colour in enumerate(("C0", "C1", "C2")):
            name = "xyz"[q]
            every = max(1, len(t) // 30)
            ax.plot(t, truth[i, :, q], color=colour, label=f"<m_{name}> {truth_label}")
            ax.plot(t, guess[i, :, q], "o", color=colour, markersize=3, markevery=every,
                    label=f"<m_{name}> {pred_label}")
            for label, m in extra.items():
                ax.plot(t, m[i, :, q], "x", color=colour, markersize=4, markevery=every,
                        label=f"<m_{name}> {label}")
        h, a = data.tags[i, 0, :2]
        ax.set_title(f"|h| = {h:.3f}, angle = {a:.1f} deg")
        ax.set_xlabel(time_unit[0])
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("mean magnetisation")
    axes[0, 0].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
