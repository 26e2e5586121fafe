"""MPI-safe pytest fixtures shared by the whole suite.

The same suite runs serially and under ``mpiexec -n 2 python -m mpi4py -m pytest``.
"""

from __future__ import annotations

import gc
import shutil
import tempfile
from pathlib import Path

import pytest
from mpi4py import MPI

import llgfem  # noqa: F401  (bootstraps the DOLFINx wheel before mpi4py/petsc4py users)


def pytest_collection_modifyitems(config, items):
    if MPI.COMM_WORLD.size == 1:
        return
    skip = pytest.mark.skip(reason="serial-only test (skip_in_parallel)")
    for item in items:
        if "skip_in_parallel" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def comm():
    return MPI.COMM_WORLD


@pytest.fixture
def mpi_tmp_path():
    """A temporary directory shared by all ranks (created on rank 0, broadcast)."""
    comm = MPI.COMM_WORLD
    path = tempfile.mkdtemp(prefix="llgfem-") if comm.rank == 0 else None
    path = Path(comm.bcast(path, root=0))
    yield path
    comm.Barrier()
    if comm.rank == 0:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(autouse=True)
def _collect_and_sync():
    yield
    gc.collect()
    MPI.COMM_WORLD.Barrier()
