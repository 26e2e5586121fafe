"""Learning curves with any model factory (paper 001, Figs. 4 and 7): folds, sizes, errors."""

from __future__ import annotations

import numpy as np
import pytest

from llgfem.surrogates.data import TrajectoryDataset, train_test_split
from llgfem.surrogates.evaluate import learning_curve, trajectory_mse


class _Config:
    nu = 2


class MeanModel:
    """Predicts the training mean trajectory; records the training sets it saw."""

    fits: list = []

    def __init__(self, config):
        self.config = config

    def fit(self, tags, states):
        MeanModel.fits.append(tags[:, 0, 0].copy())
        self.mean = states.mean(axis=0)
        return self

    def predict(self, tags, first):
        out = np.repeat(self.mean[None], len(tags), axis=0)
        out[:, : self.config.nu] = first
        return out


def _dataset(n: int = 30, s: int = 6, N: int = 2) -> TrajectoryDataset:
    rng = np.random.default_rng(2)
    tags = np.repeat(np.arange(n, dtype=float)[:, None, None], s, axis=1)
    tags = np.concatenate([tags, np.zeros_like(tags)], axis=2)
    states = rng.normal(size=(n, s, 3 * N))
    return TrajectoryDataset(np.concatenate([tags, states], axis=2), np.arange(s, dtype=float),
                             np.zeros((N, 3)))


def test_learning_curve_with_a_factory_uses_disjoint_folds_and_no_test_field():
    data, k = _dataset(), 5
    MeanModel.fits = []
    rows = learning_curve(data, _Config(), sizes=(10, 20), k=k, factory=MeanModel)
    _, test = train_test_split(len(data.D), 0.2, 0)
    assert [r["n_train"] for r in rows] == [10, 20]
    assert len(MeanModel.fits) == 2 * (1 + k)
    for fit in MeanModel.fits:
        assert not set(fit.astype(int)) & set(test)
    # the k fold fits of the first size hold out k disjoint blocks that cover the size
    full, folds = set(MeanModel.fits[0].astype(int)), MeanModel.fits[1: 1 + k]
    held = [full - set(f.astype(int)) for f in folds]
    assert sorted(len(h) for h in held) == [2] * k
    assert set().union(*held) == full
    # test error of the first size recomputed by hand
    pool = np.random.default_rng(1).permutation(train_test_split(len(data.D), 0.2, 0)[0])
    sub = data.subset(np.sort(pool[:10]))
    model = MeanModel(_Config()).fit(sub.tags, sub.states)
    te = data.subset(test)
    expect = trajectory_mse(model.predict(te.tags, te.states[:, :2]), te.states, 2)
    assert rows[0]["test_mse"] == pytest.approx(expect)

