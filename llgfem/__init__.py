"""llgfem: the Landau-Lifshitz-Gilbert equation for magnetic particle imaging with FEniCSx.

Importing any ``llgfem`` module first imports ``dolfinx_solver`` when the PyPI wheel
``dolfinx-solver-real`` provides DOLFINx (it must be imported before ``dolfinx`` and
``petsc4py``); conda/Docker installs of DOLFINx 0.11 need nothing extra.
"""

try:  # the wheel must be bootstrapped before dolfinx/petsc4py are imported
    import dolfinx_solver  # noqa: F401
except ImportError:  # conda / Docker / source installs of DOLFINx
    pass

__version__ = "0.1.0"
__all__ = ["__version__"]
