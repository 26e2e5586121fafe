"""The ``llgfem`` command line: ``llgfem info`` and ``llgfem run CONFIG.toml``.

``llgfem run`` reads the config, applies ``--set table.key=value`` overrides (TOML values;
entries of an array of tables as ``--set coil.0.sensitivity=[0,0,1]`` or ``coil[0]...``),
checks the output folder is writable on every rank, dispatches on ``[job] kind`` (see
:mod:`llgfem.jobs`) and writes everything into ``<output.dir>/<job.name>/``.  Run in parallel
with ``mpiexec -n 2 llgfem run CONFIG.toml``.  Arguments starting with a single dash are PETSc
options (``-llgfem_llg_newton_snes_monitor``).

Rank 0 logs a ``start:`` line, the job's INFO lines (one per stage or iteration) and one
closing ``done:`` line of the same form for every job kind
(:func:`llgfem.io.progress.summary_line`).

Exit status (the same on every rank):

    0    success
    1    an internal error (a bug; ``LLGFEM_TRACEBACK=1`` prints the traceback)
    2    bad input: config, override, mesh or data file, output folder not writable
    3    a solver failed, or an iteration diverged (NaN/inf norms)
    130  interrupted by SIGINT (Ctrl-C), 143 by SIGTERM

An error is reported as one line ``llgfem: error: ...``.  When every rank raises (an error
found identically everywhere, the usual case for input errors) rank 0 prints it once and every
rank returns the code.  When only some ranks fail — the others may be waiting inside a
collective operation — the failing rank prints its line naming the rank, and after
``LLGFEM_ERROR_WAIT`` seconds (default 3) ends the whole job with ``MPI_Abort`` and that code,
so no rank is left waiting.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import re
import signal
import sys
import time
import tomllib
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import llgfem

__all__ = ["Interrupted", "exit_status", "load_run_config", "main", "run",
           "validate_config_data"]


class Interrupted(BaseException):  # noqa: N818 - like KeyboardInterrupt, not an Exception
    """SIGINT/SIGTERM received during a run (not an ``Exception``: library code keeps off it)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


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
                     help="override a config entry (TOML value), e.g. --set time.n_t=11 or "
                     "--set coil.0.sensitivity=[0,0,1]")
    run.add_argument("-o", "--output-dir", help="override [output] dir")
    return p


def info() -> dict:
    """Versions and environment facts (collective-safe)."""
    import dolfinx
    from mpi4py import MPI
    from petsc4py import PETSc

    from llgfem.jobs import JOBS

    try:
        import adios2  # noqa: F401

        adios2_python = True
    except ImportError:
        adios2_python = False
    return {
        "llgfem": llgfem.__version__,
        "dolfinx": dolfinx.__version__,
        "petsc": ".".join(map(str, PETSc.Sys.getVersion())),
        "mpi": MPI.Get_library_version().splitlines()[0].strip(),
        "mpi_size": MPI.COMM_WORLD.size,
        "scalar": str(PETSc.ScalarType.__name__),
        "adios2": f"DOLFINx {bool(dolfinx.common.has_adios2)}, Python bindings {adios2_python}",
        "jobs": sorted(JOBS),
    }


def _toml_value(raw: str, assignment: str) -> Any:
    """The TOML value of an override (a bare word is a string)."""
    from llgfem.config import ConfigError

    try:
        parsed = tomllib.loads(f"v = {raw}")
    except tomllib.TOMLDecodeError:
        if "\n" in raw or "=" in raw:
            raise ConfigError(f"--set {assignment!r}: {raw!r} is not a TOML value") from None
        return raw.strip()  # a bare string
    if set(parsed) != {"v"}:
        raise ConfigError(f"--set {assignment!r}: {raw!r} is not a single TOML value")
    return parsed["v"]


def _override(data: dict, assignment: str) -> None:
    """Apply one ``TABLE.KEY=VALUE`` or ``TABLE.INDEX.KEY=VALUE`` override to raw config data."""
    from llgfem.config import ARRAY_TABLES, ConfigError

    key, sep, raw = assignment.partition("=")
    parts = re.sub(r"\[\s*(\d+)\s*\]", r".\1", key.strip()).split(".")
    well_formed = sep and all(parts) and (
        len(parts) == 2 or (len(parts) == 3 and parts[1].isdigit()))
    if not well_formed:
        raise ConfigError(f"--set {assignment!r}: expected TABLE.KEY=VALUE "
                          "(or TABLE.INDEX.KEY=VALUE for [[coil]]/[[concentration]] entries)")
    value = _toml_value(raw, assignment)
    table, current = parts[0], data.get(parts[0])
    if len(parts) == 2:
        if isinstance(current, list):
            raise ConfigError(f"--set {assignment!r}: [[{table}]] is an array of "
                              f"{len(current)} tables; address one entry as "
                              f"{table}.0.{parts[1]}=...")
        if current is not None and not isinstance(current, dict):
            raise ConfigError(f"--set {assignment!r}: {table} is not a table")
        data.setdefault(table, {})[parts[1]] = value
        return
    if table not in ARRAY_TABLES:
        raise ConfigError(f"--set {assignment!r}: [{table}] is not an array of tables "
                          f"(only {', '.join(sorted(ARRAY_TABLES))}); use {table}.{parts[2]}=...")
    entries = [current] if isinstance(current, dict) else list(current or [])
    index = int(parts[1])
    if index > len(entries):
        raise ConfigError(f"--set {assignment!r}: [[{table}]] has {len(entries)} entries; "
                          f"index {index} is out of range (0..{len(entries) - 1}, or "
                          f"{len(entries)} to add one)")
    if index == len(entries):
        entries.append({})
    if not isinstance(entries[index], dict):
        raise ConfigError(f"--set {assignment!r}: {table}[{index}] is not a table")
    entries[index][parts[2]] = value
    data[table] = entries


def _job_tables(data: dict) -> tuple[str, ...]:
    """The tables job ``[job] kind`` reads; ConfigError for an unknown kind."""
    from llgfem.config import JOB_TABLES, ConfigError, nearest
    from llgfem.jobs import JOBS

    job = data.get("job")
    if not isinstance(job, dict) or "kind" not in job:
        raise ConfigError("job: table [job] with `kind = ...` is required")
    kind = job["kind"]
    if not isinstance(kind, str) or kind not in JOBS:
        raise ConfigError(f"job.kind: {kind!r} is not a job kind{nearest(kind, JOBS)}; "
                          f"kinds: {', '.join(sorted(JOBS))}")
    module = importlib.import_module(JOBS[kind].split(":")[0])
    return tuple(getattr(module, "TABLES", JOB_TABLES.get(kind, ())))


def load_run_config(path: str, sets: Sequence[str] = (), output_dir: str | None = None):
    """Read a config file, apply overrides, validate (every table and key is checked).

    Raises:
        ConfigError: for a missing/unreadable/invalid file, a bad override, an unknown job
            kind, table or key, or a value out of range.
    """
    from llgfem.config import ConfigError, read_toml

    data = read_toml(path)
    for s in sets:
        _override(data, s)
    if output_dir:
        if not isinstance(data.setdefault("output", {}), dict):
            raise ConfigError("output: expected one [output] table")
        data["output"]["dir"] = output_dir
    return validate_config_data(data, str(path))


def validate_config_data(data: dict, source: str = ""):
    """Validate raw config data (after overrides) like ``llgfem run`` does before any work:
    the job kind, its tables, every key and value (no MPI: the same error on every rank).

    Raises:
        ConfigError: naming the first offending table or key.
    """
    from llgfem.config import parse_config, validate_sections

    cfg = parse_config(data, source=source, tables=_job_tables(data))
    validate_sections(cfg)
    return cfg


def check_writable(run_dir: Path, comm) -> None:
    """Create ``run_dir`` and write a probe file on every rank (collective).

    Raises:
        ConfigError: on every rank, naming the first rank that cannot write there.
    """
    from llgfem.config import ConfigError

    error = ""
    if comm.rank == 0:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            error = f"{e.strerror or e}"
    error = comm.bcast(error, root=0)
    if not error:
        probe = run_dir / f".llgfem-write-probe.rank{comm.rank}"
        try:
            probe.write_text("probe\n")
            probe.unlink()
        except OSError as e:
            error = f"{e.strerror or e} (rank {comm.rank})"
    errors = [e for e in comm.allgather(error) if e]
    if errors:
        raise ConfigError(f"output.dir: cannot write to {run_dir}: {errors[0]}")


def run(path: str, sets: Sequence[str] = (), output_dir: str | None = None) -> dict:
    """Load, validate and run a config; returns the job's summary (collective)."""
    from mpi4py import MPI

    from llgfem.io.progress import get_logger, summary_line
    from llgfem.jobs import JOBS

    cfg = load_run_config(path, sets, output_dir)
    comm = MPI.COMM_WORLD
    check_writable(Path(cfg.run_dir), comm)
    kind, name = cfg.job.kind, cfg.job.name or cfg.job.kind
    log = get_logger(comm=comm)
    log.info("start: %s '%s' (%s) on %d rank%s -> %s", kind, name, path, comm.size,
             "s" if comm.size != 1 else "", cfg.run_dir)
    module, func = JOBS[kind].split(":")
    t0 = time.perf_counter()
    summary = getattr(importlib.import_module(module), func)(cfg)
    seconds = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
    log.info(summary_line(kind, name, summary if isinstance(summary, dict) else {}, seconds,
                          cfg.run_dir, comm.size))
    return summary


def exit_status(exc: BaseException) -> tuple[int, str]:
    """The exit status and the one-line message of an exception that ended a run."""
    from llgfem.config import ConfigError
    from llgfem.mesh import MeshError
    from llgfem.regularisation.core import DivergenceError
    from llgfem.solvers.linear import SolverError

    if isinstance(exc, Interrupted):
        return 128 + exc.signum, f"interrupted by {exc}"
    if isinstance(exc, (ConfigError, MeshError)):
        return 2, f"error: {exc}"
    if isinstance(exc, OSError) and isinstance(exc, (FileNotFoundError, PermissionError,
                                                    NotADirectoryError, IsADirectoryError,
                                                    FileExistsError)):
        where = f": {exc.filename}" if exc.filename else ""
        return 2, f"error: {exc.strerror or exc}{where}"
    if isinstance(exc, (SolverError, DivergenceError)):
        return 3, f"solver failed: {exc}"
    if isinstance(exc, MemoryError):
        return 1, "error: out of memory (reduce the problem size)"
    text = " ".join(str(exc).split())
    return 1, (f"internal error (please report; LLGFEM_TRACEBACK=1 shows the traceback): "
               f"{type(exc).__name__}: {text}")


def _report(exc: BaseException, comm, signals: Sequence[int] = ()) -> int:
    """Report ``exc`` once and return its exit status; abort every rank if others go on.

    ``signals`` received during the run win over ``exc`` (an interrupt inside a PETSc callback
    reaches us as a PETSc error).
    """
    code, text = exit_status(Interrupted(signals[0]) if signals else exc)
    if os.environ.get("LLGFEM_TRACEBACK") and code == 1:
        import traceback

        traceback.print_exception(exc)
    if comm.size == 1:
        print(f"llgfem: {text}", file=sys.stderr, flush=True)
        return code
    wait = float(os.environ.get("LLGFEM_ERROR_WAIT", "3"))
    request, deadline = comm.Ibarrier(), time.monotonic() + wait
    while not request.Test():
        if time.monotonic() > deadline:  # the other ranks went on: end them all
            print(f"llgfem: {text} [rank {comm.rank} of {comm.size}; ending all ranks]",
                  file=sys.stderr, flush=True)
            from mpi4py import MPI

            MPI.COMM_WORLD.Abort(code)
        time.sleep(0.005)
    reports = comm.allgather((code, text))
    if comm.rank == 0:
        texts = list(dict.fromkeys(t for _, t in reports))
        if len(texts) == 1:
            print(f"llgfem: {texts[0]}", file=sys.stderr, flush=True)
        for rank, (_, t) in enumerate(reports if len(texts) > 1 else []):
            print(f"llgfem: {t} [rank {rank}]", file=sys.stderr, flush=True)
    return max(c for c, _ in reports)


@contextlib.contextmanager
def _signal_handlers() -> Iterator[list[int]]:
    """SIGINT/SIGTERM raise :class:`Interrupted` (a second one exits at once); yields the
    list of signals received."""
    received: list[int] = []

    def handler(signum, frame):
        if received:
            os._exit(128 + signum)
        received.append(signum)
        raise Interrupted(signum)

    sigs = (signal.SIGINT, signal.SIGTERM)
    try:
        previous = {s: signal.signal(s, handler) for s in sigs}
    except ValueError:  # not the main thread: leave the handlers alone
        yield received
        return
    try:
        yield received
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``llgfem`` console script; returns the exit status."""
    previous = os.environ.get("TQDM_DISABLE")
    if not sys.stderr.isatty():  # no progress bars (lines of \r updates) in log files
        os.environ.setdefault("TQDM_DISABLE", "1")
    formatwarning = warnings.formatwarning
    warnings.formatwarning = _one_line_warning  # "Category: message", no source line
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C before the run's handlers are installed
        print("llgfem: interrupted by SIGINT", file=sys.stderr, flush=True)
        return 128 + signal.SIGINT
    finally:  # in-process callers (tests, notebooks) keep their environment
        warnings.formatwarning = formatwarning
        if previous is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = previous


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """A warning as one line (the default repeats the source line of the warning call)."""
    return f"llgfem: {category.__name__}: {message}\n"


def _main(argv: Sequence[str] | None) -> int:
    args, petsc_args = _parser().parse_known_args(argv)
    from mpi4py import MPI
    from petsc4py import PETSc  # initialised before our signal handlers replace PETSc's

    rank = MPI.COMM_WORLD.rank
    bad = [a for a in petsc_args if a.startswith("--")]
    if bad or (petsc_args and args.command != "run"):
        _parser().error(f"unrecognized arguments: {' '.join(bad or petsc_args)}")
    if petsc_args:  # e.g. -llgfem_llg_newton_snes_monitor -llgfem_heat_step_pc_type hypre
        PETSc.Options().insertString(" ".join(petsc_args))
    if args.command == "info":
        facts = info()
        if rank == 0:
            for key, value in facts.items():
                print(f"{key:10s} {value}")
        return 0
    # imported now, not while reporting: a first import may be collective (PETSc, DOLFINx)
    importlib.import_module("llgfem.mesh")
    importlib.import_module("llgfem.solvers.linear")
    importlib.import_module("llgfem.regularisation.core")
    comm = MPI.COMM_WORLD.Dup()  # error reports never mix with the job's collectives
    try:
        with _signal_handlers() as received:
            try:
                run(args.config, args.set, args.output_dir)
            except BaseException as exc:  # noqa: BLE001 - every failure ends every rank
                if isinstance(exc, SystemExit):
                    raise
                return _report(exc, comm, received)
    finally:
        comm.Free()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
