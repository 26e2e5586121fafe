"""Generate -> train -> predict: the kernel surrogate beats the constant-initial-state guess."""

from __future__ import annotations

import numpy as np

from llgfem.surrogates.data import train_test_split
from llgfem.surrogates.kernel import KernelSurrogate, KernelSurrogateConfig


def test_kernel_surrogate_predicts_unseen_fields(tiny_dataset):
    ds = tiny_dataset
    train, test = train_test_split(len(ds.D), 0.2, seed=0)
    cfg = KernelSurrogateConfig(rank_pca=100, n_components=10, rank_pre=100, rank_int=100)
    model = KernelSurrogate(cfg).fit(ds.tags[train], ds.states[train])
    x = ds.states[test]
    pred = model.predict(ds.tags[test], x[:, : cfg.nu])
    assert pred.shape == x.shape
    assert np.array_equal(pred[:, : cfg.nu], x[:, : cfg.nu])
    mse = np.mean((pred[:, cfg.nu:] - x[:, cfg.nu:]) ** 2)
    baseline = np.mean((x[:, :1] - x[:, cfg.nu:]) ** 2)  # m(t) = m0
    assert mse < 0.1 * baseline
