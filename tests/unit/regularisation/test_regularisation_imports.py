"""The drivers are pure NumPy: no module-level dolfinx/petsc4py/mpi4py/ufl imports."""

from __future__ import annotations

import ast
from pathlib import Path

import llgfem.operators.protocols
import llgfem.regularisation

FORBIDDEN = {"dolfinx", "petsc4py", "mpi4py", "ufl", "basix", "slepc4py"}


def _module_level_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.parse(path.read_text()).body:  # top level only: lazy imports are allowed
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_fem_or_mpi_imports_at_module_level():
    files = list(Path(llgfem.regularisation.__file__).parent.glob("*.py"))
    files.append(Path(llgfem.operators.protocols.__file__))
    assert len(files) > 5
    for path in files:
        assert not _module_level_imports(path) & FORBIDDEN, path.name
