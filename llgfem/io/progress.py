"""Progress bars and logging that speak on MPI rank 0 only.

Every ``llgfem run`` logs (on rank 0, to stdout, prefixed ``[llgfem]``) one ``start:`` line,
one INFO line per stage or iteration of the job, and the same closing line for every job kind
(:func:`summary_line`)::

    [llgfem] done: heat 'heat-demo' on 2 ranks in 1.23 s; dofs=363, n_t=51, ... -> outputs/heat

Progress bars (tqdm) are drawn only when stderr is a terminal.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mpi4py import MPI

__all__ = ["HEADLINE_KEYS", "get_logger", "progress", "summary_line"]


def progress(iterable: Iterable, total: int | None = None, desc: str = "",
             comm: MPI.Comm = MPI.COMM_WORLD, enabled: bool = True) -> Iterable:
    """Wrap ``iterable`` in a tqdm bar on rank 0 (a plain iterable elsewhere or if disabled)."""
    if not enabled or comm.rank != 0:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return iterable
    return tqdm(iterable, total=total, desc=desc, leave=False, file=sys.stderr,
                disable=not sys.stderr.isatty())


class _StdoutHandler(logging.StreamHandler):
    """A stream handler writing to the *current* ``sys.stdout`` (in-process callers such as
    tests may replace it between runs; a handler bound to the first one would write into a
    closed stream)."""

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it
        pass


def get_logger(name: str = "llgfem", comm: MPI.Comm = MPI.COMM_WORLD) -> logging.Logger:
    """A logger that prints INFO on rank 0 and only errors on the other ranks."""
    logger = logging.getLogger(name)
    if not logger.handlers:
        handler = _StdoutHandler()
        handler.setFormatter(logging.Formatter("[llgfem] %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(logging.INFO if comm.rank == 0 else logging.ERROR)
    return logger


#: Summary entries shown in the closing line, in this order, when a job reports them.
HEADLINE_KEYS = ("problem", "case", "method", "dofs", "n_t", "iterations", "reason", "a1", "a2",
                 "e_a1", "e_a2", "rel_error", "r_obs", "l2_norm_final", "max_norm_deviation",
                 "relative_residual", "n_trajectories", "mse_train", "mse_test",
                 "mse_baseline_constant", "rank", "nrmse", "recovered", "n_positions")


def _short(value: Any) -> str | None:
    """A compact text of a scalar (or short list of scalars); None for anything else."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return value if len(value) <= 60 else value[:57] + "..."
    if isinstance(value, (list, tuple)) and 0 < len(value) <= 3:
        parts = [_short(v) for v in value]
        return None if None in parts else "(" + ", ".join(parts) + ")"
    return None


def summary_line(kind: str, name: str, summary: Mapping[str, Any], seconds: float,
                 run_dir: str | Path, size: int) -> str:
    """The closing log line of every job: kind, name, ranks, wall time, headline numbers.

    Args:
        kind: The job kind (``[job] kind``).
        name: The run name (``[job] name``).
        summary: The job's summary (``summary.json``); the entries named in
            :data:`HEADLINE_KEYS` that it has are shown as ``key=value``.
        seconds: Wall time of the job.
        run_dir: Where the outputs are.
        size: Number of MPI ranks.

    Returns:
        ``done: KIND 'NAME' on N rank(s) in S s; k=v, ... -> RUN_DIR``.
    """
    items = [(k, _short(summary[k])) for k in HEADLINE_KEYS if k in summary]
    shown = ", ".join(f"{k}={v}" for k, v in items if v is not None)
    ranks = f"{size} rank" + ("s" if size != 1 else "")
    return (f"done: {kind} '{name}' on {ranks} in {seconds:.2f} s"
            f"{'; ' + shown if shown else ''} -> {run_dir}")
