"""Callbacks of the regularisation drivers: history, progress bar, logging.

A callback is any callable ``cb(info)`` taking an
:class:`~llgfem.regularisation.core.IterationInfo`; objects may also define ``finish(result)``
(called once at the end). Drivers call callbacks once for the initial iterate (iteration 0)
and after every (sub-)step, on every rank. Printing callbacks print on MPI rank 0 only.

Notation:
    x_true   reference solution for error curves, e_k = ||x_k - x_true||_X
    a1, a2   e.g. the LLG parameters, extracted from x by user functions (``extractors``)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .core import IterationInfo

__all__ = ["Callback", "History", "LoggingCallback", "ProgressBar", "mpi_rank"]

_LOG = logging.getLogger("llgfem.regularisation")


class Callback:
    """Base class: a no-op callback with an optional :meth:`finish` hook."""

    def __call__(self, info: IterationInfo) -> None:
        """Record or report one iteration."""

    def finish(self, result: Any) -> None:
        """Called once with the driver's Result."""


_FIELDS = ("iteration", "residual_norm", "step_size", "subproblem", "skipped", "accepted",
           "rejections", "momentum")


class History(Callback):
    """Records residual norms, step sizes, accept/skip flags, extracted values and errors.

    Every driver keeps one History (``Result.history``): the first History in ``callbacks``
    if given, else a default one. Its state is saved in checkpoints.

    Args:
        extractors: Mapping name -> f(x) returning a float or small array (e.g.
            ``{"a1": lambda x: x[-2], "a2": lambda x: x[-1]}``), recorded every iteration.
            Extractors see the local part of x: under MPI, reduce (or broadcast from the owning
            rank) inside the extractor if every rank needs the value.
        x_true: Reference solution; records ``errors`` ||x - x_true||_X.
        inner: Global domain inner product (e.g. ``F.inner_domain``); required with x_true.
        relative: Divide errors by ||x_true||_X.

    Attributes:
        records: Mapping field -> list, for the fields iteration, residual_norm, step_size
            (NaN for iteration 0), subproblem, skipped, accepted, rejections, momentum,
            errors (if x_true) and every extractor name.
    """

    def __init__(self, extractors: Mapping[str, Callable[[np.ndarray], Any]] | None = None,
                 *, x_true: np.ndarray | None = None,
                 inner: Callable[[np.ndarray, np.ndarray], float] | None = None,
                 relative: bool = False):
        if x_true is not None and inner is None:
            raise ValueError("inner (the operator's inner_domain) is required with x_true")
        self.extractors = dict(extractors or {})
        self.x_true = None if x_true is None else np.array(x_true, dtype=float)
        self.inner = inner
        self._scale = 1.0
        if self.x_true is not None and relative:
            self._scale = math.sqrt(inner(self.x_true, self.x_true))
        names = list(_FIELDS) + (["errors"] if self.x_true is not None else [])
        self.records: dict[str, list] = {name: [] for name in names + list(self.extractors)}

    def __call__(self, info: IterationInfo) -> None:
        """Append the record of ``info``."""
        for name in _FIELDS:
            value = getattr(info, name)
            self.records[name].append(math.nan if value is None else value)
        if self.x_true is not None:
            e = info.x - self.x_true
            self.records["errors"].append(math.sqrt(max(self.inner(e, e), 0.0)) / self._scale)
        for name, extract in self.extractors.items():
            value = np.asarray(extract(info.x), dtype=float)
            self.records[name].append(value.item() if value.ndim == 0 else value.tolist())

    def __getattr__(self, name: str) -> np.ndarray:
        records = self.__dict__.get("records", {})
        key = {"residual_norms": "residual_norm", "step_sizes": "step_size",
               "iterations": "iteration"}.get(name, name)
        if key in records:
            return np.asarray(records[key])
        raise AttributeError(name)

    def __len__(self) -> int:
        return len(self.records["iteration"])

    def state_dict(self) -> dict[str, list]:
        """Return the records (JSON-serialisable) for checkpoints and result files."""
        return {name: list(values) for name, values in self.records.items()}

    def load_state_dict(self, state: Mapping[str, list]) -> None:
        """Replace the records by a saved state (from :meth:`state_dict`)."""
        missing = set(self.records) - set(state)
        if missing:
            raise ValueError(f"saved history lacks the fields {sorted(missing)}")
        self.records = {name: list(state[name]) for name in self.records}


def mpi_rank() -> int:
    """Return the MPI rank of COMM_WORLD if mpi4py is importable, else 0 (lazy import)."""
    try:
        from mpi4py import MPI
    except ImportError:
        return 0
    return MPI.COMM_WORLD.rank


class ProgressBar(Callback):
    """A tqdm progress bar showing the residual and step size, printed on rank 0 only.

    Args:
        total: Expected number of iterations (e.g. max_iter), or None.
        rank: MPI rank of this process (None: from mpi4py if available, else 0).
        every: Update the postfix every ``every`` iterations.
        **tqdm_kwargs: Passed to ``tqdm.tqdm`` (e.g. ``desc``, ``file``).
    """

    def __init__(self, total: int | None = None, *, rank: int | None = None, every: int = 1,
                 **tqdm_kwargs: Any):
        self.rank = mpi_rank() if rank is None else int(rank)
        self.every = max(int(every), 1)
        self._bar = None
        if self.rank == 0:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, **tqdm_kwargs)

    def __call__(self, info: IterationInfo) -> None:
        """Advance the bar to ``info.iteration`` and show residual and step size."""
        if self._bar is None:
            return
        self._bar.update(info.iteration - self._bar.n)
        if info.iteration % self.every == 0:
            mu = "-" if info.step_size is None else f"{info.step_size:.2e}"
            self._bar.set_postfix(res=f"{info.residual_norm:.3e}", mu=mu, refresh=False)

    def finish(self, result: Any) -> None:
        """Close the bar."""
        if self._bar is not None:
            self._bar.set_postfix_str(result.reason[:60])
            self._bar.close()


class LoggingCallback(Callback):
    """Log one line every ``every`` iterations (rank 0 only) and the reason at the end.

    Args:
        every: Logging interval in iterations.
        logger: Logger (default ``logging.getLogger("llgfem.regularisation")``).
        level: Logging level.
        rank: MPI rank (None: from mpi4py if available, else 0).
    """

    def __init__(self, every: int = 100, *, logger: logging.Logger | None = None,
                 level: int = logging.INFO, rank: int | None = None):
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.every, self.level = int(every), level
        self.logger = logger or _LOG
        self.rank = mpi_rank() if rank is None else int(rank)

    def __call__(self, info: IterationInfo) -> None:
        """Log iteration, sub-problem, residual and step size."""
        if self.rank != 0 or info.iteration % self.every:
            return
        self.logger.log(self.level, "it %d  j %d  residual %.6e  mu %s%s", info.iteration,
                        info.subproblem, info.residual_norm, info.step_size,
                        "  (skipped)" if info.skipped else "")

    def finish(self, result: Any) -> None:
        """Log the stopping reason."""
        if self.rank == 0:
            self.logger.log(self.level, "stopped after %d iterations: %s", result.iterations,
                            result.reason)
