"""The package's layering (ARCHITECTURE.md): who may import whom, who may raise ConfigError.

1. The library never imports the jobs: only ``llgfem/jobs/`` and the CLI import
   ``llgfem.jobs`` (at module level or lazily inside functions).
2. Forms, solvers and physics know nothing of configs: they never import ``ConfigError`` (the
   builders of :mod:`llgfem.builders` and the config parser turn their ``ValueError`` s into
   config errors naming the key).
3. Operators use only public solver methods (no ``solver._x`` access from outside the solver).
"""

from __future__ import annotations

import ast
from pathlib import Path

import llgfem

ROOT = Path(llgfem.__file__).parent


def _imports(path: Path) -> set[str]:
    """Every module imported anywhere in the file (module level and inside functions)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _library_files() -> list[Path]:
    return [p for p in ROOT.rglob("*.py")
            if "jobs" not in p.relative_to(ROOT).parts and p.name != "cli.py"]


def test_the_library_never_imports_the_jobs():
    files = _library_files()
    assert len(files) > 40
    offenders = [str(p.relative_to(ROOT)) for p in files
                 if any(n == "llgfem.jobs" or n.startswith("llgfem.jobs.") for n in _imports(p))]
    assert not offenders, offenders


def test_forms_solvers_physics_raise_no_config_errors():
    files = [*(ROOT / "forms").glob("*.py"), *(ROOT / "solvers").glob("*.py"),
             ROOT / "physics.py"]
    offenders = [str(p.relative_to(ROOT)) for p in files
                 if "llgfem.config.ConfigError" in _imports(p) or "ConfigError(" in p.read_text()]
    assert not offenders, offenders


def test_operators_use_public_solver_methods():
    for path in (ROOT / "operators").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                    and not node.attr.startswith("__")
                    and isinstance(node.value, ast.Attribute)
                    and node.value.attr in ("solver", "problem")):
                raise AssertionError(f"{path.name}:{node.lineno}: .{node.value.attr}.{node.attr}")
