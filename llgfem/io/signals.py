"""MPI signal data files (HDF5, MDF-like layout), written and read on rank 0.

The data ``y`` of the observation operator (paper 002 eq. (5), :mod:`llgfem.operators.observation`)
are replicated on every rank, so files are serial: rank 0 writes or reads, the outcome (data or
an error message) is broadcast, and every rank returns the same value or raises the same error.

Layout (names follow the MPI Data Format, MDF, where it has one)::

    /measurement/data                (K, L, N) float64   attribute ``units`` (e.g. "V")
    /measurement/noiseFree           (K, L, N) float64   optional: the noise-free data of a
                                                         simulated file (never in a measurement)
    /acquisition/time                (N,)     float64    attribute ``units`` = "s"
    /acquisition/receiver/names      (L,)     str        receive coils l
    /phantom/concentration/names     (K,)     str        concentrations c_k
    /  attributes: format, llgfem_version, units, time_sampling, [delta], [seed], user attributes

``/measurement/noiseFree`` is written only by simulations
(:mod:`llgfem.calibration.synthetic`): the exact signals ``y`` beside the noisy ``y_delta``.
Readers use it only for the noise level ``|y_delta - y|`` of the discrepancy principle and for
reporting; a fit always uses ``/measurement/data``.

Notation: ``K`` concentrations, ``L`` coils, ``N`` samples at the midpoints ``t_{n+1/2}``;
``delta`` the relative noise level and ``seed`` the generator seed of synthetic data.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from mpi4py import MPI

import llgfem
from llgfem.errors import DataError

__all__ = [
    "FORMAT",
    "SignalData",
    "SignalFileError",
    "SignalFileNotFoundError",
    "load_signals",
    "save_signals",
]

FORMAT = "llgfem-signals/1"
TIME_SAMPLING = ("midpoints t_{n+1/2} = (n + 1/2) dt, n = 0..N-1, of the uniform grid of N+1 "
                 "time levels on [0, T]; m_t sampled as (m_{n+1} - m_n)/dt (paper 002 eq. (5))")
_RESERVED = {"format", "llgfem_version", "units", "time_sampling", "delta", "seed"}


class SignalFileError(DataError):
    """A signals file cannot be written, read or is not a valid llgfem signals file (a
    :class:`llgfem.errors.DataError`: ``llgfem run`` exits with status 2)."""


class SignalFileNotFoundError(SignalFileError, FileNotFoundError):
    """The signals file does not exist."""


@dataclass(frozen=True, eq=False)
class SignalData:
    """Contents of a signals file (identical on all ranks).

    Attributes:
        data: the signals ``(K, L, N)``.
        times: the sample times ``(N,)`` in seconds (or the model's time unit).
        coil_names: ``L`` receive-coil names.
        concentration_names: ``K`` concentration names.
        units: unit of ``data``.
        delta: relative noise level of synthetic data (None = exact or unknown).
        seed: seed of the noise generator (None = not recorded).
        attrs: further user attributes.
        version: llgfem version that wrote the file.
        time_sampling: description of the time sampling.
        noise_free: the noise-free data ``(K, L, N)`` of a simulated file, else None.
    """

    data: np.ndarray
    times: np.ndarray
    coil_names: tuple[str, ...]
    concentration_names: tuple[str, ...]
    units: str = "V"
    delta: float | None = None
    seed: int | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    version: str = ""
    time_sampling: str = ""
    noise_free: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(K, L, N)``."""
        return tuple(self.data.shape)


def _names(items: Sequence[Any], prefix: str) -> tuple[str, ...]:
    """Names from strings or objects with a ``name`` (empty -> ``prefix<i>``)."""
    out = []
    for i, item in enumerate(items):
        name = item if isinstance(item, str) else getattr(item, "name", "")
        out.append(str(name) or f"{prefix}{i}")
    return tuple(out)


def _validated(y, times, coils, concentrations, delta, seed, attrs, noise_free=None) -> tuple:
    y, times = np.asarray(y, dtype=float), np.asarray(times, dtype=float)
    if noise_free is not None and np.shape(noise_free) != y.shape:
        raise ValueError(f"save_signals: noise_free must have the shape of y {y.shape}, got "
                         f"{np.shape(noise_free)}")
    if noise_free is not None and not np.all(np.isfinite(noise_free)):
        raise ValueError("save_signals: noise_free contains NaN/Inf")
    if y.ndim != 3:
        raise ValueError(f"save_signals: y must have shape (K, L, N), got {y.shape}")
    K, L, N = y.shape
    if times.shape != (N,):
        raise ValueError(f"save_signals: times must have shape ({N},), got {times.shape}")
    coil_names, conc_names = _names(coils, "coil"), _names(concentrations, "c")
    if len(coil_names) != L or len(conc_names) != K:
        raise ValueError(f"save_signals: {len(conc_names)} concentrations x {len(coil_names)} "
                         f"coils do not match the data shape (K, L) = ({K}, {L})")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(times))):
        raise ValueError("save_signals: y or times contain NaN/Inf")
    if delta is not None and not (isinstance(delta, numbers.Real) and math.isfinite(delta)):
        raise ValueError(f"save_signals: delta must be a finite number, got {delta!r}")
    if seed is not None and not isinstance(seed, numbers.Integral):
        raise ValueError(f"save_signals: seed must be an integer, got {seed!r}")
    clash = _RESERVED & set(attrs or {})
    if clash:
        raise ValueError(f"save_signals: attrs may not use the reserved names {sorted(clash)}")
    return y, times, coil_names, conc_names


def save_signals(path: str | Path, y: np.ndarray, times: np.ndarray, coils: Sequence[Any],
                 concentrations: Sequence[Any], *, units: str = "V", delta: float | None = None,
                 seed: int | None = None, attrs: dict[str, Any] | None = None,
                 noise_free: np.ndarray | None = None,
                 comm: MPI.Comm = MPI.COMM_WORLD) -> Path:
    """Write signals to HDF5 on rank 0 (collective: every rank returns or raises together).

    Args:
        path: the ``.h5`` file (parent folders are created).
        y: replicated data ``(K, L, N)``.
        times: sample times ``(N,)``.
        coils: ``L`` coil names, or objects with a ``name`` (e.g. :class:`Coil`).
        concentrations: ``K`` concentration names or objects with a ``name``.
        units: unit of ``y``.
        delta: relative noise level of synthetic data.
        seed: noise seed.
        attrs: further scalar/string/array attributes (not the reserved names).
        noise_free: the noise-free data ``(K, L, N)`` of a simulation
            (``/measurement/noiseFree``; omit for measurements).
        comm: communicator.

    Returns:
        The path.

    Raises:
        ValueError: inconsistent inputs (before any communication).
        SignalFileError: the file could not be written (same message on all ranks).
    """
    path = Path(path)
    y, times, coil_names, conc_names = _validated(y, times, coils, concentrations, delta,
                                                  seed, attrs, noise_free)
    meta = {"format": FORMAT, "llgfem_version": llgfem.__version__, "units": str(units),
            "time_sampling": TIME_SAMPLING, **(attrs or {})}
    if delta is not None:
        meta["delta"] = float(delta)
    if seed is not None:
        meta["seed"] = int(seed)
    error = None
    if comm.rank == 0:
        try:
            _write(path, y, times, coil_names, conc_names, meta, noise_free)
        except (OSError, TypeError, ValueError) as err:
            error = f"cannot write signals file {path}: {err}"
    error = comm.bcast(error, root=0)
    if error:
        raise SignalFileError(error)
    return path


def _write(path: Path, y, times, coil_names, conc_names, meta: dict[str, Any],
           noise_free=None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    strings = h5py.string_dtype()
    with h5py.File(path, "w") as f:
        f.create_dataset("measurement/data", data=y).attrs["units"] = meta["units"]
        if noise_free is not None:
            f.create_dataset("measurement/noiseFree",
                             data=np.asarray(noise_free, dtype=float)).attrs["units"] = \
                meta["units"]
        f.create_dataset("acquisition/time", data=times).attrs["units"] = "s"
        f.create_dataset("acquisition/receiver/names", data=list(coil_names), dtype=strings)
        f.create_dataset("phantom/concentration/names", data=list(conc_names), dtype=strings)
        for key, value in meta.items():
            f.attrs[key] = value


def load_signals(path: str | Path, comm: MPI.Comm = MPI.COMM_WORLD) -> SignalData:
    """Read a signals file on rank 0 and broadcast it (collective).

    Raises:
        SignalFileNotFoundError: the file does not exist (same message on all ranks).
        SignalFileError: the file is unreadable or not a valid signals file.
    """
    path = Path(path)
    result, error = (_read_checked(path) if comm.rank == 0 else (None, None))
    result, error = comm.bcast((result, error), root=0)
    if error is not None:
        kind, message = error
        raise (SignalFileNotFoundError if kind == "missing" else SignalFileError)(message)
    return result


def _read_checked(path: Path) -> tuple[SignalData | None, tuple[str, str] | None]:
    if not path.is_file():
        return None, ("missing", f"signals file {path} does not exist")
    try:
        with h5py.File(path, "r") as f:
            return _read(f), None
    except (OSError, KeyError, ValueError, TypeError) as err:
        return None, ("corrupt", f"{path} is not a readable llgfem signals file: {err}")


def _read(f: h5py.File) -> SignalData:
    if _plain(f.attrs.get("format")) != FORMAT:
        raise ValueError(f"format attribute {f.attrs.get('format')!r}, expected {FORMAT!r}")
    data = np.asarray(f["measurement/data"][...], dtype=float)
    times = np.asarray(f["acquisition/time"][...], dtype=float)
    coils = tuple(_plain(s) for s in f["acquisition/receiver/names"][...])
    concs = tuple(_plain(s) for s in f["phantom/concentration/names"][...])
    if data.shape != (len(concs), len(coils), times.size) or times.ndim != 1:
        raise ValueError(f"inconsistent shapes: data {data.shape}, time {times.shape}, "
                         f"{len(concs)} concentrations, {len(coils)} coils")
    if not (np.all(np.isfinite(data)) and np.all(np.isfinite(times))):
        raise ValueError("data or time holds NaN or infinite values")
    noise_free = None
    if "measurement/noiseFree" in f:
        noise_free = np.asarray(f["measurement/noiseFree"][...], dtype=float)
        if noise_free.shape != data.shape or not np.all(np.isfinite(noise_free)):
            raise ValueError(f"measurement/noiseFree {noise_free.shape} is not finite data of "
                             f"the shape of measurement/data {data.shape}")
    a = {key: _plain(value) for key, value in f.attrs.items()}
    return SignalData(
        data=data, times=times, coil_names=coils, concentration_names=concs,
        units=a.get("units", ""), delta=a.get("delta"), seed=a.get("seed"),
        attrs={k: v for k, v in a.items() if k not in _RESERVED},
        version=a.get("llgfem_version", ""), time_sampling=a.get("time_sampling", ""),
        noise_free=noise_free)


def _plain(value: Any) -> Any:
    """HDF5 attribute/string values as plain Python objects."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value
