"""A written field is read back with what the install provides (h5py; issue 12, item 6)."""

from __future__ import annotations

import numpy as np
import pytest
from mpi4py import MPI

from llgfem.errors import DataError
from llgfem.io.fields import read_trajectory, write_trajectory
from llgfem.spacetime import create_vector_space, interpolate_levels


def _field(x: np.ndarray, t: float) -> np.ndarray:
    return np.vstack([x[0] + t, x[1] * x[0] - t, np.full(x.shape[1], 2.0 * t)])


def test_written_field_reads_back_at_every_node(mpi_tmp_path):
    import dolfinx.mesh as dm

    comm = MPI.COMM_WORLD
    mesh = dm.create_unit_square(comm, 5, 3)
    V = create_vector_space(mesh)
    times = np.array([0.0, 0.25, 0.5, 1.0])
    values = interpolate_levels(V, _field, times)
    path = write_trajectory(mpi_tmp_path / "fields" / "m.bp", V, values, times)
    assert path.suffix == ".xdmf"
    comm.Barrier()
    t, u, x = read_trajectory(path)
    np.testing.assert_allclose(t, times)
    assert u.shape == (times.size, x.shape[0], 3)
    n_nodes = mesh.topology.index_map(0).size_global
    assert x.shape[0] == n_nodes
    for i, ti in enumerate(times):  # P1 values are the nodal values of the exact field
        np.testing.assert_allclose(u[i], _field(x.T, ti).T, atol=1e-12)


def test_mesh_is_written_once(mpi_tmp_path):
    import dolfinx.mesh as dm
    import h5py

    comm = MPI.COMM_WORLD
    mesh = dm.create_unit_interval(comm, 8)
    V = create_vector_space(mesh)
    times = np.linspace(0.0, 1.0, 6)
    path = write_trajectory(mpi_tmp_path / "m", V, interpolate_levels(V, _field, times), times)
    comm.Barrier()
    with h5py.File(path.with_suffix(".h5"), "r") as f:
        assert list(f["Mesh"]) == ["mesh"]
        assert len(f["Function/m"]) == times.size


def test_missing_field_file_is_a_data_error(mpi_tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_trajectory(mpi_tmp_path / "nothing.xdmf")
