"""llgfem: the Landau-Lifshitz-Gilbert equation for magnetic particle imaging with FEniCSx.

Importing any ``llgfem`` module first imports ``dolfinx_solver`` when the PyPI wheel
``dolfinx-solver-real`` provides DOLFINx (it must be imported before ``dolfinx`` and
``petsc4py``); conda/Docker installs of DOLFINx 0.11 need nothing extra.
"""

import os

# llgfem parallelises with MPI ranks: threaded BLAS in every rank oversubscribes the cores (a
# 15k-entry dot product took 16 ms instead of 0.02 ms on a busy 2-core machine).  Users can
# still set these variables themselves before importing llgfem.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

try:  # the wheel must be bootstrapped before dolfinx/petsc4py are imported
    import dolfinx_solver  # noqa: F401
except ImportError:  # conda / Docker / source installs of DOLFINx
    pass

__version__ = "0.1.0"
__all__ = ["__version__"]
