"""Signals files (HDF5): round trip, identical errors on all ranks, replicated contents."""

import h5py
import numpy as np
import pytest
from mpi4py import MPI

import llgfem
from llgfem.io.signals import (
    FORMAT,
    SignalData,
    SignalFileError,
    SignalFileNotFoundError,
    load_signals,
    save_signals,
)
from llgfem.operators.observation import Coil, Concentration
from llgfem.spacetime import TimeGrid

COMM = MPI.COMM_WORLD


def sample_data(K=2, L=3, N=7):
    rng = np.random.default_rng(17)  # replicated on every rank
    return rng.standard_normal((K, L, N)), TimeGrid(3e-5, N + 1).midpoints


def everyone_equal(value) -> bool:
    values = COMM.allgather(value)
    return all(v == values[0] for v in values)


def test_round_trip_preserves_everything(mpi_tmp_path):
    y, times = sample_data()
    coils = [Coil((1.0, 0.0, 0.0), name="x"), Coil((0.0, 1.0, 0.0)), "z"]
    concs = [Concentration(1.0, name="uniform"), "tagged"]
    path = save_signals(mpi_tmp_path / "run" / "signals.h5", y, times, coils, concs,
                        units="V", delta=0.05, seed=42,
                        attrs={"description": "test", "n_cells": 12, "field": [1.0, 2.0]},
                        comm=COMM)
    out = load_signals(path, comm=COMM)
    assert isinstance(out, SignalData)
    assert np.array_equal(out.data, y)
    assert np.array_equal(out.times, times)
    assert out.shape == y.shape
    assert out.coil_names == ("x", "coil1", "z")
    assert out.concentration_names == ("uniform", "tagged")
    assert (out.units, out.delta, out.seed) == ("V", 0.05, 42)
    assert out.version == llgfem.__version__
    assert "midpoints" in out.time_sampling
    assert out.attrs["description"] == "test"
    assert out.attrs["n_cells"] == 12
    assert np.array_equal(out.attrs["field"], [1.0, 2.0])
    assert everyone_equal(out.data.tobytes())


def test_mdf_like_layout(mpi_tmp_path):
    y, times = sample_data(1, 2, 5)
    path = save_signals(mpi_tmp_path / "s.h5", y, times, ["a", "b"], ["c"], comm=COMM)
    if COMM.rank == 0:
        with h5py.File(path, "r") as f:
            assert f["measurement/data"].shape == (1, 2, 5)
            assert f["acquisition/time"].attrs["units"] == "s"
            assert [s.decode() for s in f["acquisition/receiver/names"][...]] == ["a", "b"]
            assert f.attrs["format"] == FORMAT
            assert "delta" not in f.attrs
            assert "seed" not in f.attrs
    out = load_signals(path, comm=COMM)
    assert out.delta is None
    assert out.seed is None


def test_missing_file_raises_the_same_error_on_all_ranks(mpi_tmp_path):
    with pytest.raises(SignalFileNotFoundError) as info:
        load_signals(mpi_tmp_path / "nothing.h5", comm=COMM)
    assert isinstance(info.value, FileNotFoundError)
    assert isinstance(info.value, ValueError)
    assert "does not exist" in str(info.value)
    assert everyone_equal(str(info.value))


def test_corrupt_or_foreign_file_raises_on_all_ranks(mpi_tmp_path):
    bad, foreign = mpi_tmp_path / "bad.h5", mpi_tmp_path / "foreign.h5"
    if COMM.rank == 0:
        bad.write_bytes(b"not an HDF5 file")
        with h5py.File(foreign, "w") as f:
            f["measurement/data"] = np.zeros((1, 1, 2))
    COMM.Barrier()
    for path in (bad, foreign):
        with pytest.raises(SignalFileError, match="not a readable llgfem signals file") as info:
            load_signals(path, comm=COMM)
        assert not isinstance(info.value, FileNotFoundError)
        assert everyone_equal(str(info.value))


def test_inconsistent_inputs_are_rejected_before_writing(mpi_tmp_path):
    y, times = sample_data()
    path = mpi_tmp_path / "never.h5"
    with pytest.raises(ValueError, match="times must have shape"):
        save_signals(path, y, times[:-1], ["a", "b", "c"], ["k", "l"], comm=COMM)
    with pytest.raises(ValueError, match="do not match"):
        save_signals(path, y, times, ["a", "b"], ["k", "l"], comm=COMM)
    with pytest.raises(ValueError, match="reserved"):
        save_signals(path, y, times, ["a", "b", "c"], ["k", "l"], attrs={"units": "A"},
                     comm=COMM)
    bad = y.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        save_signals(path, bad, times, ["a", "b", "c"], ["k", "l"], comm=COMM)
    COMM.Barrier()
    assert not path.exists()


def test_unwritable_target_raises_on_all_ranks(mpi_tmp_path):
    blocker = mpi_tmp_path / "file"
    if COMM.rank == 0:
        blocker.write_text("a file where a folder should be")
    COMM.Barrier()
    y, times = sample_data()
    with pytest.raises(SignalFileError, match="cannot write") as info:
        save_signals(blocker / "s.h5", y, times, ["a", "b", "c"], ["k", "l"], comm=COMM)
    assert everyone_equal(str(info.value))
