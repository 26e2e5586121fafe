"""Checkpoint / resume of the regularisation drivers.

Each rank writes its own local part: ``<stem>.rank<r>.npz`` (arrays: the iterate x, the
previous iterate, the cached residual) and ``<stem>.rank<r>.json`` (iteration count, step-size
state, momentum state, Kaczmarz cycle position, shuffling seed, history, norms). Files are
written to a temporary name and moved into place, so an interrupted write leaves the previous
checkpoint intact. The drivers do not import mpi4py: the caller passes ``rank`` and ``size``.

Resuming restores the complete driver state, so a resumed run reproduces an uninterrupted run
bit for bit (same machine, same number of ranks, same operator). With ``resume=True`` and no
checkpoint file present, the driver starts from x0 (convenient for restartable jobs; all ranks
must see their files, or none).

Notation:
    k        iteration count stored in the checkpoint
    every    save after every ``every``-th iteration (and always when the driver stops)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Checkpoint"]

_FORMAT = 1


class Checkpoint:
    """Periodic checkpoint of a driver, one file pair per MPI rank.

    Args:
        path: Base path; a ``.npz``/``.json`` suffix is dropped, ``.rank<r>`` is appended.
        every: Save after every ``every``-th iteration (>= 1); the final state is always saved.
        resume: Restore the state from existing files before iterating.
        rank: MPI rank of this process (from the caller's communicator).
        size: Number of MPI ranks; resuming with a different size raises.

    Raises:
        ValueError: If every < 1 or rank is not in [0, size).
    """

    def __init__(self, path: str | os.PathLike, every: int = 100, *, resume: bool = False,
                 rank: int = 0, size: int = 1):
        if int(every) != every or every < 1:
            raise ValueError(f"every must be an integer >= 1, got {every}")
        if not 0 <= rank < size:
            raise ValueError(f"rank must be in [0, size), got rank={rank}, size={size}")
        path = Path(path)
        if path.suffix in (".npz", ".json"):
            path = path.with_suffix("")
        self.stem, self.every, self.resume = path, int(every), bool(resume)
        self.rank, self.size = int(rank), int(size)

    @property
    def npz_path(self) -> Path:
        """The array file of this rank."""
        return self.stem.with_name(f"{self.stem.name}.rank{self.rank}.npz")

    @property
    def json_path(self) -> Path:
        """The metadata file of this rank."""
        return self.stem.with_name(f"{self.stem.name}.rank{self.rank}.json")

    def due(self, iteration: int) -> bool:
        """Return True if a checkpoint is due after ``iteration``."""
        return iteration % self.every == 0

    def save(self, arrays: dict[str, np.ndarray | None], meta: dict[str, Any]) -> None:
        """Write ``arrays`` (None entries omitted) and ``meta`` atomically.

        Args:
            arrays: Local arrays of this rank.
            meta: JSON-serialisable driver state.
        """
        self.stem.parent.mkdir(parents=True, exist_ok=True)
        meta = dict(meta, format=_FORMAT, rank=self.rank, size=self.size)
        tmp_npz = self.npz_path.with_name(self.npz_path.name + ".tmp.npz")
        with open(tmp_npz, "wb") as fh:
            np.savez(fh, **{k: v for k, v in arrays.items() if v is not None})
        tmp_json = self.json_path.with_name(self.json_path.name + ".tmp")
        tmp_json.write_text(json.dumps(meta, indent=1))
        os.replace(tmp_npz, self.npz_path)
        os.replace(tmp_json, self.json_path)

    def load(self, driver: str) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        """Return (arrays, meta) if resuming and a checkpoint exists, else None.

        Args:
            driver: Name of the calling driver; must match the saved one.

        Raises:
            ValueError: If the checkpoint was written by another driver or number of ranks.
        """
        if not (self.resume and self.json_path.exists() and self.npz_path.exists()):
            return None
        meta = json.loads(self.json_path.read_text())
        if meta.get("driver") != driver:
            raise ValueError(f"checkpoint {self.json_path} was written by "
                             f"{meta.get('driver')!r}, not {driver!r}")
        if meta.get("size") != self.size:
            raise ValueError(f"checkpoint {self.json_path} was written by {meta.get('size')} "
                             f"ranks, resuming with {self.size}")
        with np.load(self.npz_path) as data:
            arrays = {k: data[k].copy() for k in data.files}
        return arrays, meta
