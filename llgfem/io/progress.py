"""Progress bars and logging that speak on MPI rank 0 only."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

from mpi4py import MPI

__all__ = ["get_logger", "progress"]


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


def get_logger(name: str = "llgfem", comm: MPI.Comm = MPI.COMM_WORLD) -> logging.Logger:
    """A logger that prints INFO on rank 0 and only errors on the other ranks."""
    logger = logging.getLogger(name)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("[llgfem] %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(logging.INFO if comm.rank == 0 else logging.ERROR)
    return logger
