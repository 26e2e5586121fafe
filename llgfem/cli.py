"""The ``llgfem`` command line: ``llgfem info`` and ``llgfem run CONFIG.toml``.

``llgfem run`` reads the config, applies ``--set table.key=value`` overrides (TOML values),
dispatches on ``[job] kind`` (see :mod:`llgfem.jobs`) and writes everything into
``<output.dir>/<job.name>/``.  Errors in the input (config, mesh file, data) are reported as one
line ``llgfem: error: ...`` on rank 0 with exit status 2 on every rank; a solver that fails
gives exit status 3.  Run in parallel with ``mpiexec -n 2 llgfem run CONFIG.toml``.  Arguments
starting with a single dash are PETSc options (``-llgfem_llg_newton_snes_monitor``).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tomllib
from collections.abc import Sequence

import llgfem

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="llgfem",
        description="LLG finite elements for magnetic particle imaging: forward models, "
        "signals and parameter identification (DOLFINx + PETSc + MPI).",
    )
    p.add_argument("--version", action="version", version=f"llgfem {llgfem.__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="versions of llgfem, DOLFINx, PETSc, MPI and the job kinds")
    run = sub.add_parser("run", help="run the job described by a TOML config")
    run.add_argument("config", help="path to the TOML config file")
    run.add_argument("--set", action="append", default=[], metavar="TABLE.KEY=VALUE",
                     help="override a config entry (TOML value), e.g. --set time.n_t=11")
    run.add_argument("-o", "--output-dir", help="override [output] dir")
    return p


def info() -> dict:
    """Versions and environment facts (collective-safe)."""
    import dolfinx
    from mpi4py import MPI
    from petsc4py import PETSc

    from llgfem.jobs import JOBS

    return {
        "llgfem": llgfem.__version__,
        "dolfinx": dolfinx.__version__,
        "petsc": ".".join(map(str, PETSc.Sys.getVersion())),
        "mpi": MPI.Get_library_version().splitlines()[0].strip(),
        "mpi_size": MPI.COMM_WORLD.size,
        "scalar": str(PETSc.ScalarType.__name__),
        "adios2": bool(dolfinx.common.has_adios2),
        "jobs": sorted(JOBS),
    }


def _override(data: dict, assignment: str) -> None:
    from llgfem.config import ConfigError

    key, sep, raw = assignment.partition("=")
    parts = key.strip().split(".")
    if not sep or len(parts) != 2 or not all(parts):
        raise ConfigError(f"--set {assignment!r}: expected TABLE.KEY=VALUE")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare string
    data.setdefault(parts[0], {})[parts[1]] = value


def load_run_config(path: str, sets: Sequence[str] = (), output_dir: str | None = None):
    """Read a config file, apply overrides, validate."""
    from llgfem.config import parse_config, read_toml

    data = read_toml(path)
    for s in sets:
        _override(data, s)
    if output_dir:
        data.setdefault("output", {})["dir"] = output_dir
    return parse_config(data, source=str(path))


def run(path: str, sets: Sequence[str] = (), output_dir: str | None = None) -> dict:
    """Load, validate and run a config; returns the job's summary."""
    from llgfem.config import ConfigError
    from llgfem.jobs import JOBS

    cfg = load_run_config(path, sets, output_dir)
    if cfg.job.kind not in JOBS:
        raise ConfigError(f"job.kind: {cfg.job.kind!r} is not one of {sorted(JOBS)}")
    module, func = JOBS[cfg.job.kind].split(":")
    return getattr(importlib.import_module(module), func)(cfg)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``llgfem`` console script."""
    args, petsc_args = _parser().parse_known_args(argv)
    from mpi4py import MPI

    from llgfem.config import ConfigError
    from llgfem.mesh import MeshError
    from llgfem.solvers.linear import SolverError

    rank = MPI.COMM_WORLD.rank
    bad = [a for a in petsc_args if a.startswith("--")]
    if bad or (petsc_args and args.command != "run"):
        _parser().error(f"unrecognized arguments: {' '.join(bad or petsc_args)}")
    if petsc_args:  # e.g. -llgfem_llg_newton_snes_monitor -llgfem_heat_step_pc_type hypre
        from petsc4py import PETSc

        PETSc.Options().insertString(" ".join(petsc_args))
    if args.command == "info":
        facts = info()
        if rank == 0:
            for key, value in facts.items():
                print(f"{key:10s} {value}")
        return 0
    try:
        run(args.config, args.set, args.output_dir)
    except (ConfigError, MeshError, FileNotFoundError) as e:
        if rank == 0:
            print(f"llgfem: error: {e}", file=sys.stderr)
        return 2
    except SolverError as e:
        if rank == 0:
            print(f"llgfem: solver failed: {e}", file=sys.stderr)
        return 3
    except Exception:  # a bug on one rank must not leave the others waiting forever
        if MPI.COMM_WORLD.size == 1:
            raise
        import traceback

        traceback.print_exc()
        sys.stderr.flush()
        MPI.COMM_WORLD.Abort(1)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
