"""Validated reading of the data files llgfem reads back (datasets, models, bases, snapshots).

A file we read is not trusted: it may be missing, truncated, of another format, lack a key, have
the wrong shape or hold NaNs.  Each of these is reported as :class:`DataError` — a
:class:`llgfem.config.ConfigError`, so ``llgfem run`` prints one line naming the file and the
entry and exits with status 2 — instead of an ``OSError``/``KeyError``/``BadZipFile``/shape
error from deep inside NumPy or h5py.

Readers run on every rank on the same file, so every rank raises the same error; a rank that
alone cannot read is ended by the CLI (see :mod:`llgfem.cli`).
"""

from __future__ import annotations

import contextlib
import json
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from llgfem.config import ConfigError

__all__ = ["DataError", "check_array", "load_npz", "reading", "require_file"]


class DataError(ConfigError):
    """A data file is missing, unreadable or invalid; the message names the file and entry."""


def require_file(path: str | Path, what: str) -> Path:
    """``path`` as a Path if it is an existing regular file.

    Raises:
        DataError: ``"<what>: <path> does not exist"`` (or is not a file).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{what}: {path} does not exist")
    if not path.is_file():
        raise DataError(f"{what}: {path} is not a file")
    return path


@contextlib.contextmanager
def reading(path: str | Path, what: str) -> Iterator[None]:
    """Turn the errors of reading a damaged file into one :class:`DataError`."""
    try:
        yield
    except DataError:
        raise
    except (OSError, EOFError, zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError,
            KeyError, IndexError, ValueError, TypeError) as e:
        reason = " ".join(str(e).split()) or type(e).__name__
        if isinstance(e, KeyError):
            reason = f"missing entry {e}"
        raise DataError(f"{what}: cannot read {path}: {reason}") from None


def check_array(array: np.ndarray, name: str, what: str, ndim: int | None = None,
                finite: bool = True) -> np.ndarray:
    """Check the dimension and finiteness of an array read from a file.

    Raises:
        DataError: naming ``what`` and ``name``.
    """
    array = np.asarray(array)
    if ndim is not None and array.ndim != ndim:
        raise DataError(f"{what}: entry {name!r} has shape {array.shape}, expected {ndim}-D")
    if array.size == 0 and ndim:
        raise DataError(f"{what}: entry {name!r} is empty")
    if finite and array.dtype.kind in "fc" and not np.all(np.isfinite(array)):
        raise DataError(f"{what}: entry {name!r} holds NaN or infinite values")
    return array


def load_npz(path: str | Path, what: str,
             required: Mapping[str, int | None]) -> dict[str, np.ndarray]:
    """Read an NPZ file (no pickles) and check the required entries.

    Args:
        path: The file.
        what: The config key or role of the file, for messages (``brown_neel.basis``).
        required: Entry name -> expected dimension (None: any); float entries must be finite.

    Returns:
        All entries of the file as arrays.

    Raises:
        DataError: if the file is missing, not an NPZ file, lacks an entry or has a bad one.
    """
    path = require_file(path, what)
    with reading(path, what), np.load(path, allow_pickle=False) as data:
        if not hasattr(data, "files"):
            raise DataError(f"{what}: {path} is a single array, not an NPZ archive")
        arrays = {k: data[k] for k in data.files}
    for name, ndim in required.items():
        if name not in arrays:
            raise DataError(f"{what}: {path} has no entry {name!r} "
                            f"(entries: {', '.join(sorted(arrays)) or 'none'})")
        check_array(arrays[name], name, f"{what} ({path})", ndim)
    return arrays
