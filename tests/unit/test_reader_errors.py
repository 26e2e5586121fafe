"""Files we read are validated and integrator failures are solver errors (issue 12, item 2)."""

from __future__ import annotations

import numpy as np
import pytest
from mpi4py import MPI

from llgfem.errors import DataError
from llgfem.solvers.linear import SolverError


def _mats():
    """y' = -y + 50 sin(50 t)-forced stiff-ish 2x2 system (needs many steps)."""
    import scipy.sparse as sp

    return [sp.csr_matrix(np.array([[-1.0, 50.0], [-50.0, -1.0]]))]


@pytest.mark.parametrize("backend", ["petsc", "scipy"])
def test_integrator_step_limit_is_a_solver_error(backend):
    from petsc4py import PETSc

    from llgfem.brownneel.integrate import TSSettings, integrate_petsc, integrate_scipy

    settings = TSSettings(rtol=1e-10, atol=1e-14, max_steps=3, dt0=1e-4)
    s_out = np.linspace(0.0, 10.0, 11)
    y0 = np.array([1.0, 0.0])
    if backend == "scipy":
        with pytest.raises(SolverError, match="SciPy"):
            integrate_scipy(_mats(), lambda s: np.array([1.0]), y0, s_out, settings)
        return
    A = PETSc.Mat().createAIJ((2, 2), comm=PETSc.COMM_SELF)
    A.setUp()
    for (i, j), v in np.ndenumerate(_mats()[0].toarray()):
        A.setValue(i, j, v)
    A.assemble()
    with pytest.raises(SolverError, match="TS failed"):
        integrate_petsc([A], lambda s: np.array([1.0]), y0, s_out, settings)
    A.destroy()


def test_dataset_reader_refuses_bad_files(mpi_tmp_path):
    from llgfem.surrogates.data import read_dataset

    rank = MPI.COMM_WORLD.rank
    text = mpi_tmp_path / f"text{rank}.h5"
    text.write_text("not hdf5")
    with pytest.raises(DataError, match="surrogate.dataset: cannot read"):
        read_dataset(text)
    with pytest.raises(DataError, match="does not exist"):
        read_dataset(mpi_tmp_path / "missing.h5")


def test_dataset_reader_refuses_nan_and_foreign_layout(mpi_tmp_path):
    import h5py

    from llgfem.surrogates.data import read_dataset

    rank = MPI.COMM_WORLD.rank
    other = mpi_tmp_path / f"other{rank}.h5"
    with h5py.File(other, "w") as f:
        f.attrs["layout"] = "something else"
    with pytest.raises(DataError, match="not a surrogate dataset"):
        read_dataset(other)

    from llgfem.surrogates.data import TrajectoryDataset, write_dataset

    D = np.zeros((2, 3, 1 + 3 * 4))
    D[1, 2, 5] = np.nan
    data = TrajectoryDataset(D, np.arange(3.0), np.zeros((4, 3)), 1, ("h",), {})
    bad = write_dataset(mpi_tmp_path / f"nan{rank}.h5", data, comm=MPI.COMM_SELF)
    with pytest.raises(DataError, match="NaN or infinite"):
        read_dataset(bad)
    D[1, 2, 5] = 0.0
    good = write_dataset(mpi_tmp_path / f"ok{rank}.h5", data, comm=MPI.COMM_SELF)
    assert read_dataset(good).D.shape == D.shape


def test_model_reader_refuses_a_truncated_file(mpi_tmp_path):
    from llgfem.surrogates.kernel import load_surrogate

    path = mpi_tmp_path / f"model{MPI.COMM_WORLD.rank}.npz"
    np.savez(path, config=np.array("{}"))
    with pytest.raises(DataError, match="surrogate.model: .* has no entry"):
        load_surrogate(path)
    path.write_bytes(b"PK\x03\x04")
    with pytest.raises(DataError, match="surrogate.model: cannot read"):
        load_surrogate(path)
