r"""Model-based system matrix: calibration grid, per-position signals over MPI ranks, spectra.

For every calibration position x_p (cell centres of a grid of ``size`` cells over the field
of view ``fov`` around ``center``, MDF order "xyz", x fastest) the particle model gives the
periodic response m̄(x_p, t_n) over one drive cycle; receive channel l then measures
(:mod:`llgfem.scanner.receive`, SPEC §6)

    u_l(x_p, t_n) = −N_p m_p p_l(x_p) · ∂_t m̄(x_p, t_n)       [V]
    S[p, l, k]    = ã_l(f_k) Σ_n u_l(x_p, t_n) e^{−2πi kn/V}    (rfft, unnormalised, as MDF)
    s_l(x_p, t_n) = irfft(S[p, l, :])                           (received time signal)

with N_p = n_p V_δ the particles in the voxel of volume V_δ = Π ``delta_sample_size``.
SNR per frequency (white receive noise of standard deviation σ per sample, which gives every
rfft bin a complex standard deviation σ √V):

    SNR[l, k] = mean_p |S[p, l, k]| / (σ √V),    σ = ``noise_level`` · RMS_{p,n} s_l(x_p, t_n)

(the relative noise level is the calibration's noise model; data-driven SNR of measured
calibrations would come from repeated frames instead).

Parallelism: positions are independent.  :func:`split_positions` gives rank r the contiguous
block r of P positions; each rank evaluates its block with serial objects (``MPI.COMM_SELF``
PETSc matrices inside the Brown–Néel model), and one ``gather`` at the end brings the moment
rates to rank 0.  No collective runs per position.

Notation: ``P`` positions, ``C`` receive channels, ``V`` samples per cycle, ``K = V//2 + 1``
frequencies, ``S`` system matrix, ``u`` induced voltage.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from mpi4py import MPI

from llgfem.config import ConfigError
from llgfem.scanner.fields import ScannerFields, mixing_orders
from llgfem.scanner.receive import ReceiveChannel
from llgfem.scanner.tracer import TracerConfig

__all__ = ["CalibrationGrid", "SystemMatrix", "compute_moments", "compute_system_matrix",
           "frequency_labels", "grid_positions", "receive_spectra", "snr", "split_positions"]


@dataclass(frozen=True)
class CalibrationGrid:
    """The ``[calibration]`` table (MDF ``/calibration`` names in brackets).

    Attributes:
        size: cells per axis (``size``), each >= 1.
        fov: field of view [m] per axis (``fieldOfView``); 0 allowed for a single cell.
        center: centre of the field of view [m] (``fieldOfViewCenter``).
        delta_sample_size: voxel edge lengths [m] (``deltaSampleSize``); the particle
            count is n_p Π delta_sample_size.
    """

    size: tuple[int, int, int] = (9, 9, 1)
    fov: tuple[float, float, float] = (0.024, 0.024, 0.0)
    center: tuple[float, float, float] = (0.0, 0.0, 0.0)
    delta_sample_size: tuple[float, float, float] = (0.002, 0.002, 0.001)

    def validate(self, where: str) -> None:
        if any(n < 1 for n in self.size):
            raise ConfigError(f"{where}.size: cells per axis must be >= 1, got {self.size}")
        if np.prod(self.size) > 1_000_000:
            raise ConfigError(f"{where}.size: more than 10^6 positions")
        if any(f < 0 for f in self.fov):
            raise ConfigError(f"{where}.fov: must be >= 0 [m]")
        for n, f, axis in zip(self.size, self.fov, "xyz", strict=True):
            if n > 1 and f == 0:
                raise ConfigError(f"{where}.fov: axis {axis} has {n} cells but zero width")
        if any(not d > 0 for d in self.delta_sample_size):
            raise ConfigError(f"{where}.delta_sample_size: must be positive [m]")

    @property
    def num_positions(self) -> int:
        return int(np.prod(self.size))

    @property
    def voxel_volume(self) -> float:
        return float(np.prod(self.delta_sample_size))


def grid_positions(grid: CalibrationGrid) -> np.ndarray:
    """Cell centres (P, 3) [m], x fastest (MDF order "xyz")."""
    axes = []
    for n, f, c in zip(grid.size, grid.fov, grid.center, strict=True):
        h = f / n
        axes.append(c - f / 2 + h * (np.arange(n) + 0.5))
    z, y, x = np.meshgrid(axes[2], axes[1], axes[0], indexing="ij")
    return np.column_stack([x.ravel(), y.ravel(), z.ravel()])


def split_positions(n: int, size: int, rank: int) -> slice:
    """Contiguous block of rank ``rank`` out of ``n`` positions on ``size`` ranks."""
    counts = [n // size + (r < n % size) for r in range(size)]
    start = sum(counts[:rank])
    return slice(start, start + counts[rank])


def compute_moments(model, scanner: ScannerFields, positions: np.ndarray,
                    comm: MPI.Comm = MPI.COMM_WORLD) -> tuple[np.ndarray | None, dict]:
    """∂_t m̄ (P, V, 3) on rank 0 (None elsewhere), each rank solving its own block.

    Returns:
        (rates, timing) with ``timing = {"seconds_per_rank", "seconds" (max wall),
        "cpu_seconds_per_rank", "cpu_seconds" (max process CPU time), "stats_per_rank"
        (the model's ``stats`` dict, if any)}``; CPU time is less
        sensitive to other jobs on a shared machine than wall time.
    """
    block = split_positions(len(positions), comm.size, comm.rank)
    t0, c0 = time.perf_counter(), time.process_time()
    _, dm = model.moments(scanner, positions[block])
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    parts = comm.gather(dm, root=0)
    times = comm.gather((seconds, cpu, dict(getattr(model, "stats", {}))), root=0)
    timing = None
    if comm.rank == 0:
        wall, cpus = [w for w, _, _ in times], [c for _, c, _ in times]
        timing = {"seconds_per_rank": wall, "seconds": max(wall),
                  "cpu_seconds_per_rank": cpus, "cpu_seconds": max(cpus),
                  "stats_per_rank": [st for _, _, st in times]}
    timing = comm.bcast(timing, root=0)
    if comm.rank != 0:
        return None, timing
    return np.concatenate(parts, axis=0), timing


def receive_spectra(dm: np.ndarray, positions: np.ndarray, channels: list[ReceiveChannel],
                    tracer: TracerConfig, grid: CalibrationGrid,
                    scanner: ScannerFields) -> np.ndarray:
    """S[p, l, k] (complex, (P, C, K)) from the moment rates (P, V, 3)."""
    scale = tracer.number_density * grid.voxel_volume * tracer.moment
    f = scanner.bin_frequencies()
    out = np.empty((dm.shape[0], len(channels), f.size), complex)
    for l, ch in enumerate(channels):  # noqa: E741
        u = -scale * np.einsum("pc,pvc->pv", ch.sensitivity(positions), dm)
        out[:, l] = np.fft.rfft(u, axis=-1) * ch.transfer(f)[None, :]
    return out


def time_signals(S: np.ndarray, num_samples: int) -> np.ndarray:
    """s[p, l, n] = irfft(S[p, l, :]) (real, (P, C, V))."""
    return np.fft.irfft(S, n=num_samples, axis=-1)


def noise_std(S: np.ndarray, num_samples: int, level: float) -> np.ndarray:
    """σ_l = level · RMS of the received time signals of channel l, shape (C,)."""
    s = time_signals(S, num_samples)
    return level * np.sqrt(np.mean(s**2, axis=(0, 2)))


def snr(S: np.ndarray, sigma: np.ndarray, num_samples: int) -> np.ndarray:
    """SNR[l, k] = mean_p |S[p, l, k]| / (σ_l √V), shape (C, K)."""
    sigma = np.where(np.asarray(sigma) > 0, sigma, np.inf)
    return np.abs(S).mean(axis=0) / (sigma[:, None] * np.sqrt(num_samples))


def frequency_labels(scanner: ScannerFields, k: np.ndarray) -> list[str]:
    """Mixing-order labels of DFT bins: ``(m_x,m_y)`` for Lissajous, ``n`` (harmonic) in 1-D."""
    k = np.asarray(k, int)
    if scanner.dimension == 1:
        q = int(scanner.bin_per_channel[0])
        return [f"n={ki // q}" if ki % q == 0 else f"n={ki / q:.2f}" for ki in k.tolist()]
    m = mixing_orders(scanner.bin_per_channel, k, max_order=20 if scanner.dimension == 3
                      else 40)
    return ["(" + ",".join(map(str, row)) + ")" if row[0] != -9999 else "?" for row in m]


@dataclass
class SystemMatrix:
    """A computed system matrix (rank 0) with its coordinates.

    Attributes:
        S: (P, C, K) complex spectra (rfft over one cycle, transfer function applied).
        positions: (P, 3) [m].
        frequencies: (K,) [Hz].
        snr: (C, K).
        sigma: noise standard deviation per channel [V per sample].
        timing: seconds (max over ranks) and per rank of the model evaluation.
    """

    S: np.ndarray
    positions: np.ndarray
    frequencies: np.ndarray
    snr: np.ndarray
    sigma: np.ndarray
    timing: dict


def compute_system_matrix(model, scanner: ScannerFields, channels: list[ReceiveChannel],
                          tracer: TracerConfig, grid: CalibrationGrid, noise_level: float,
                          comm: MPI.Comm = MPI.COMM_WORLD) -> SystemMatrix | None:
    """The system matrix on rank 0 (None on the other ranks); the model runs on all ranks."""
    positions = grid_positions(grid)
    dm, timing = compute_moments(model, scanner, positions, comm)
    if comm.rank != 0:
        return None
    S = receive_spectra(dm, positions, channels, tracer, grid, scanner)
    sigma = noise_std(S, scanner.num_samples, noise_level)
    return SystemMatrix(S, positions, scanner.bin_frequencies(),
                        snr(S, sigma, scanner.num_samples), sigma, timing)
