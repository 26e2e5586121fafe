"""The optional ``/measurement/noiseFree`` dataset of simulated signals files."""

import numpy as np
import pytest
from mpi4py import MPI

from llgfem.calibration.synthetic import read_synthetic
from llgfem.errors import DataError
from llgfem.io.signals import load_signals, save_signals

COMM = MPI.COMM_WORLD


def test_noise_free_round_trip_and_absent(mpi_tmp_path):
    rng = np.random.default_rng(3)
    y, times = rng.standard_normal((2, 3, 5)), np.arange(5) + 0.5
    exact = y + 0.01 * rng.standard_normal(y.shape)
    path = save_signals(mpi_tmp_path / "sim.h5", y, times, ["a", "b", "c"], ["k", "l"],
                        noise_free=exact, comm=COMM)
    sig = load_signals(path, COMM)
    assert np.array_equal(sig.noise_free, exact)
    assert np.array_equal(sig.data, y)
    plain = load_signals(save_signals(mpi_tmp_path / "meas.h5", y, times, ["a", "b", "c"],
                                      ["k", "l"], comm=COMM), COMM)
    assert plain.noise_free is None
    with pytest.raises(DataError, match="noiseFree"):  # a measurement is not a simulation
        read_synthetic(mpi_tmp_path / "meas.h5", COMM, times, y.shape)


def test_noise_free_of_another_shape_is_refused(mpi_tmp_path):
    y, times = np.ones((1, 1, 4)), np.arange(4.0)
    with pytest.raises(ValueError, match="noise_free"):
        save_signals(mpi_tmp_path / "bad.h5", y, times, ["a"], ["k"], noise_free=np.ones(3),
                     comm=COMM)
    with pytest.raises(ValueError, match="noise_free"):
        save_signals(mpi_tmp_path / "bad.h5", y, times, ["a"], ["k"],
                     noise_free=np.full((1, 1, 4), np.nan), comm=COMM)
