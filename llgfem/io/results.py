"""Run summaries and histories: JSON/NPZ written by rank 0 only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from mpi4py import MPI

__all__ = ["to_jsonable", "write_json"]


def to_jsonable(obj: Any) -> Any:
    """Convert NumPy scalars/arrays (recursively) to JSON-serialisable Python objects."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: str | Path, data: dict, comm: MPI.Comm = MPI.COMM_WORLD) -> None:
    """Write ``data`` as indented JSON on rank 0 (creating parent folders)."""
    if comm.rank == 0:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(to_jsonable(data), indent=2) + "\n")
    comm.Barrier()
