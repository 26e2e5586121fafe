"""Checkpoint / resume of the regularisation drivers: one validated set over all MPI ranks.

Each rank writes its own local part: ``<stem>.rank<r>.npz`` (arrays: the iterate x, the
previous iterate, the cached residual) and ``<stem>.rank<r>.json`` (iteration count, step-size
state, momentum state, Kaczmarz cycle position, shuffling seed, history, stopping-rule and
callback states, norms).  Rank 0 writes one manifest ``<stem>.manifest.json`` naming the
driver, the iteration, the rank count, a hash of the problem and the SHA-256 of every rank's
two files.

A save is a two-phase commit, so a run killed at any moment leaves the last checkpoint valid:

1. every rank writes ``<stem>.rank<r>.next.{npz,json}`` (temporary file + rename) and the
   hashes are gathered on rank 0 (a rank that cannot write makes every rank raise);
2. rank 0 replaces the manifest atomically (the commit point);
3. every rank renames its ``.next`` files over ``<stem>.rank<r>.{npz,json}``.

On resume every rank checks its files against the manifest (the committed files, or the
``.next`` files of a commit interrupted in phase 3) and the verdicts are gathered: a torn,
missing, corrupt or foreign set (another driver, rank count or problem) is refused on every
rank with the same :class:`CheckpointError` (a :class:`llgfem.config.ConfigError`, so
``llgfem run`` exits with status 2).  Resuming restores the complete driver state, so a resumed
run reproduces an uninterrupted run bit for bit (same machine, same number of ranks, same
operator).  With ``resume=True`` and no checkpoint at all the driver starts from x0.

The collectives use ``comm`` (any object with ``allgather``/``bcast``/``Barrier``, e.g. an
mpi4py communicator); with ``size > 1`` and no ``comm`` it is ``mpi4py.MPI.COMM_WORLD``
(imported lazily: the drivers themselves do not import mpi4py).

Notation:
    k        iteration count stored in the checkpoint
    every    save after every ``every``-th iteration (and always when the driver stops)
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from llgfem.config import ConfigError

__all__ = ["Checkpoint", "CheckpointError", "problem_hash"]

_FORMAT = 2


class CheckpointError(ConfigError):
    """A checkpoint set that cannot be resumed (same message on every rank)."""


def problem_hash(problem: Any) -> str:
    """A short SHA-256 of a JSON-serialisable problem description ("" for None)."""
    if problem is None:
        return ""
    text = json.dumps(problem, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class _SelfComm:
    """The collectives of a single process."""

    rank, size = 0, 1

    def allgather(self, obj):
        return [obj]

    def bcast(self, obj, root=0):
        return obj

    def Barrier(self):  # noqa: N802 - the mpi4py name
        return None


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class Checkpoint:
    """Periodic checkpoint of a driver: one file pair per MPI rank plus one manifest.

    Args:
        path: Base path; a ``.npz``/``.json`` suffix is dropped, ``.rank<r>`` is appended.
        every: Save after every ``every``-th iteration (>= 1); the final state is always saved.
        resume: Restore the state from an existing set before iterating.
        rank: MPI rank of this process (from the caller's communicator).
        size: Number of MPI ranks; resuming with a different size is refused.
        comm: Communicator for the collective save/validation (default: a single process
            for ``size == 1``, ``mpi4py.MPI.COMM_WORLD`` otherwise).
        problem: JSON-serialisable description of the problem (e.g. the resolved config);
            its hash is stored, and a set written for another problem is refused.

    Raises:
        ValueError: If every < 1 or rank is not in [0, size).
    """

    def __init__(self, path: str | os.PathLike, every: int = 100, *, resume: bool = False,
                 rank: int = 0, size: int = 1, comm: Any = None, problem: Any = None):
        if isinstance(every, bool) or int(every) != every or every < 1:
            raise ValueError(f"every must be an integer >= 1, got {every}")
        if not 0 <= rank < size:
            raise ValueError(f"rank must be in [0, size), got rank={rank}, size={size}")
        path = Path(path)
        if path.suffix in (".npz", ".json"):
            path = path.with_suffix("")
        self.stem, self.every, self.resume = path, int(every), bool(resume)
        self.rank, self.size = int(rank), int(size)
        self._comm = comm
        self.problem_hash = problem_hash(problem)

    @property
    def comm(self) -> Any:
        """The communicator of the collective steps."""
        if self._comm is None:
            if self.size == 1:
                self._comm = _SelfComm()
            else:
                from mpi4py import MPI

                self._comm = MPI.COMM_WORLD
        return self._comm

    def _file(self, rank: int, suffix: str, stage: str = "") -> Path:
        return self.stem.with_name(f"{self.stem.name}.rank{rank}{stage}.{suffix}")

    @property
    def npz_path(self) -> Path:
        """The array file of this rank."""
        return self._file(self.rank, "npz")

    @property
    def json_path(self) -> Path:
        """The metadata file of this rank."""
        return self._file(self.rank, "json")

    @property
    def manifest_path(self) -> Path:
        """The manifest of the set (written by rank 0)."""
        return self.stem.with_name(f"{self.stem.name}.manifest.json")

    def due(self, iteration: int) -> bool:
        """Return True if a checkpoint is due after ``iteration``."""
        return iteration % self.every == 0

    # -- save -----------------------------------------------------------------------------

    def save(self, arrays: dict[str, np.ndarray | None], meta: dict[str, Any]) -> None:
        """Write this rank's ``arrays`` (None entries omitted) and ``meta``; commit the set
        (collective: every rank must call it).

        Raises:
            CheckpointError: on every rank if any rank could not write its files.
        """
        meta = dict(meta, format=_FORMAT, rank=self.rank, size=self.size,
                    problem=self.problem_hash)
        error, hashes = "", {}
        try:
            self.stem.parent.mkdir(parents=True, exist_ok=True)
            buf = io.BytesIO()
            np.savez(buf, **{k: v for k, v in arrays.items() if v is not None})
            blobs = {"npz": buf.getvalue(), "json": json.dumps(meta, indent=1).encode()}
            for suffix, data in blobs.items():
                _write_atomic(self._file(self.rank, suffix, ".next"), data)
                hashes[suffix] = _sha(data)
        except (OSError, TypeError, ValueError) as e:
            error = f"rank {self.rank}: {e}"
        reports = self.comm.allgather((error, hashes))
        errors = [e for e, _ in reports if e]
        if errors:
            raise CheckpointError(f"checkpoint {self.stem}: cannot write the set: {errors[0]}")
        manifest = {"format": _FORMAT, "driver": meta.get("driver"),
                    "iteration": meta.get("iteration"), "size": self.size,
                    "problem": self.problem_hash, "files": [h for _, h in reports]}
        error = ""
        if self.comm.rank == 0:
            try:
                _write_atomic(self.manifest_path, json.dumps(manifest, indent=1).encode())
            except OSError as e:
                error = f"manifest: {e}"
        error = self.comm.bcast(error, root=0)
        if error:
            raise CheckpointError(f"checkpoint {self.stem}: cannot write the set: {error}")
        for suffix in ("npz", "json"):
            os.replace(self._file(self.rank, suffix, ".next"), self._file(self.rank, suffix))
        self.comm.Barrier()  # on return the whole set is in place

    # -- load -----------------------------------------------------------------------------

    def load(self, driver: str, expect: dict[str, Any] | None = None
             ) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        """Return (arrays, meta) of this rank if resuming from a valid set, else None.

        Collective: every rank validates its part and all verdicts are gathered.

        Args:
            driver: Name of the calling driver; must match the saved one.
            expect: Values this rank's ``meta`` (or array shapes, keys ``shape:<name>``)
                must have, e.g. ``{"seed": 3, "shape:x": [120]}``.

        Raises:
            CheckpointError: on every rank, for a torn, missing, corrupt or foreign set.
        """
        if not self.resume:
            return None
        manifest, error = None, ""
        if self.comm.rank == 0:
            manifest, error = self._read_manifest()
        manifest, error = self.comm.bcast((manifest, error), root=0)
        if not error and manifest is None:
            error = self._stray_files()
            errors = [e for e in self.comm.allgather(error) if e]
            if errors:
                raise CheckpointError(errors[0])
            return None
        loaded = None
        if not error:
            try:
                loaded = self._load_part(manifest, driver, expect or {})
            except CheckpointError as e:
                error = str(e)
        errors = [e for e in self.comm.allgather(error) if e]
        if errors:
            raise CheckpointError(errors[0])
        return loaded

    def _read_manifest(self) -> tuple[dict | None, str]:
        """(manifest or None if absent, error) on rank 0."""
        path = self.manifest_path
        if not path.exists():
            return None, ""
        try:
            manifest = json.loads(path.read_text())
            for key in ("format", "driver", "iteration", "size", "problem", "files"):
                manifest[key]  # noqa: B018 - presence check
        except (OSError, ValueError, KeyError, TypeError) as e:
            return None, f"checkpoint {path}: corrupt manifest ({e}); delete the set to restart"
        return manifest, ""

    def _stray_files(self) -> str:
        """Without a manifest: an error if this rank has checkpoint files (an old or torn
        set), else ""."""
        if self.npz_path.exists() or self.json_path.exists():
            return (f"checkpoint {self.stem}: rank files without a manifest (an incomplete or "
                    f"old-format set); delete {self.stem.parent} to restart")
        return ""

    def _load_part(self, manifest: dict, driver: str, expect: dict[str, Any]):
        """Check the manifest against this run and load this rank's committed files."""
        where = f"checkpoint {self.stem}"
        if manifest["format"] != _FORMAT:
            raise CheckpointError(f"{where}: format {manifest['format']}, expected {_FORMAT}")
        if manifest["driver"] != driver:
            raise CheckpointError(f"{where} was written by {manifest['driver']!r}, "
                                  f"not {driver!r}")
        if manifest["size"] != self.size or len(manifest["files"]) != manifest["size"]:
            raise CheckpointError(f"{where} was written by {manifest['size']} ranks, "
                                  f"resuming with {self.size}")
        if manifest["problem"] != self.problem_hash:
            raise CheckpointError(f"{where} was written for another problem (hash "
                                  f"{manifest['problem'] or 'none'}, this run "
                                  f"{self.problem_hash or 'none'})")
        blobs = self._committed_blobs(manifest["files"][self.rank], where)
        try:
            meta = json.loads(blobs["json"])
            with np.load(io.BytesIO(blobs["npz"]), allow_pickle=False) as data:
                arrays = {k: data[k].copy() for k in data.files}
        except (ValueError, OSError, EOFError) as e:
            raise CheckpointError(f"{where}: rank {self.rank} files unreadable: {e}") from None
        if meta.get("iteration") != manifest["iteration"] or meta.get("rank") != self.rank:
            raise CheckpointError(f"{where}: torn set (rank {self.rank} at iteration "
                                  f"{meta.get('iteration')}, manifest at "
                                  f"{manifest['iteration']})")
        for key, value in expect.items():
            got = (list(arrays[key[6:]].shape) if key[6:] in arrays else None) \
                if key.startswith("shape:") else meta.get(key)
            if got != value:
                raise CheckpointError(f"{where}: rank {self.rank} has {key} = {got}, this run "
                                      f"{value}")
        return arrays, meta

    def _committed_blobs(self, hashes: dict[str, str], where: str) -> dict[str, bytes]:
        """This rank's file contents matching the manifest hashes (committed or ``.next``)."""
        for stage in ("", ".next"):
            blobs = {}
            for suffix in ("npz", "json"):
                path = self._file(self.rank, suffix, stage)
                if path.exists():
                    data = path.read_bytes()
                    if _sha(data) == hashes.get(suffix):
                        blobs[suffix] = data
            if len(blobs) == 2:
                return blobs
        if not (self.npz_path.exists() and self.json_path.exists()):
            raise CheckpointError(f"{where}: rank {self.rank} files are missing "
                                  f"({self.npz_path.name}, {self.json_path.name})")
        raise CheckpointError(f"{where}: rank {self.rank} files do not match the manifest "
                              "(torn or corrupt set); delete the set to restart")
