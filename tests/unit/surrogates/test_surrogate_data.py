"""Dataset layout D(i, j, :) = [h | m_x | m_y | m_z] (paper 001, eq. (1)), splits, generator."""

from __future__ import annotations

import numpy as np
from mpi4py import MPI

from llgfem.surrogates.data import (
    TrajectoryDataset,
    kfold_indices,
    read_dataset,
    train_test_split,
    write_dataset,
)


def test_dataset_round_trip(mpi_tmp_path):
    rng = np.random.default_rng(0)
    n, s, N = 4, 7, 5
    data = TrajectoryDataset(rng.normal(size=(n, s, 2 + 3 * N)), np.linspace(0, 1, s),
                             rng.normal(size=(N, 3)), meta={"note": "round trip"})
    path = write_dataset(mpi_tmp_path / "d.h5", data)
    back = read_dataset(path)
    assert np.array_equal(back.D, data.D)
    assert np.array_equal(back.times, data.times)
    assert np.array_equal(back.coordinates, data.coordinates)
    assert back.p == 2
    assert back.tag_names == data.tag_names
    assert back.meta == data.meta
    assert np.array_equal(back.states[:, :, N: 2 * N], data.D[:, :, 2 + N: 2 + 2 * N])


def test_train_test_split_partitions_and_is_seeded():
    train, test = train_test_split(50, 0.2, seed=4)
    assert len(test) == 10
    assert len(train) == 40
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(50))
    again = train_test_split(50, 0.2, seed=4)
    assert np.array_equal(again[1], test)


def test_kfold_validation_folds_partition():
    folds = kfold_indices(23, 10, seed=1)
    assert len(folds) == 10
    val = np.concatenate([v for _, v in folds])
    assert np.array_equal(np.sort(val), np.arange(23))
    for train, v in folds:
        assert not set(train) & set(v)
        assert len(train) + len(v) == 23


def test_fem_dataset_layout_and_unit_length(tiny_dataset):
    ds = tiny_dataset
    spec = ds.meta["spec"]
    n, s, width = ds.D.shape
    assert (n, s, width) == (spec["n_fields"], 31, 2 + 3 * ds.N)
    assert ds.N == 9
    tags = ds.tags
    assert np.array_equal(tags, np.repeat(tags[:, :1], s, axis=1))  # static fields
    assert np.all((tags[..., 0] >= spec["h_range"][0]) & (tags[..., 0] <= spec["h_range"][1]))
    m = ds.states.reshape(n, s, 3, ds.N)
    # landau_lifshitz + implicit midpoint keeps |m| = 1 up to the Newton tolerance (1e-11)
    assert np.abs(np.linalg.norm(m, axis=2) - 1.0).max() < 1e-8
    assert np.abs(np.diff(ds.mean_magnetisation(), axis=1)).max() > 0.01  # it moves


def test_fem_dataset_identical_on_all_ranks(tiny_dataset):
    root = MPI.COMM_WORLD.bcast(tiny_dataset.D, root=0)
    assert np.array_equal(root, tiny_dataset.D)
