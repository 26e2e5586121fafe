r"""Scanner magnetic fields in SI units: selection gradient, drive channels, offset/focus field.

All fields are magnetic flux densities B = μ0 H in tesla (MDF stores field strengths in
T μ0⁻¹, i.e. the same numbers).  At a position x [m] and time t [s]

    B(x, t) = G x + Σ_d A_d e_d w(2π f_d t + φ_d) + B_off,      f_d = f_B / D_d,

with G = diag(g) the selection gradient (``gradient`` [T/m], e.g. (−1, −1, 2) T/m), A_d the
drive strength [T] of channel d along the unit vector e_d, w = sin (``waveform = "sine"``) or
cos, φ_d the phase [rad], f_B the base frequency [Hz] and D_d the integer divider; B_off the
offset/focus field [T] (it shifts the field-free point to x_FFP = −G⁻¹ B_off).  The exact rate

    ∂_t B(x, t) = Σ_d A_d e_d 2π f_d w'(2π f_d t + φ_d)

does not depend on x.  One drive cycle (the period of the whole trajectory: a 1-D sine, or a
2-D/3-D Lissajous curve) lasts T_c = N_c / f_B with N_c = lcm(D_1, …, D_n) base periods; the
receiver takes V = ``num_sampling_points`` samples per cycle at t_n = n T_c / V.  Bin k of
the DFT over one cycle has the frequency f_k = k / T_c, and the mixing orders m ∈ Zⁿ label
it when f_k = Σ_d m_d f_d, i.e. k = Σ_d m_d N_c / D_d.

OpenMPIData 2-D example: f_B = 2.5 MHz, D = (102, 96) → f = (24.510, 26.042) kHz,
N_c = 1632, T_c = 652.8 µs; 12 mT per channel, g = (−1, −1, 2) T/m.

Notation: ``f_B`` base_frequency, ``D`` dividers, ``A`` strengths, ``e`` directions,
``phi`` phases, ``g`` gradient, ``B_off`` offset_field, ``N_c`` cycle_base_periods,
``V`` num_sampling_points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from llgfem.config import ConfigError

__all__ = ["ScannerConfig", "ScannerFields", "mixing_orders"]

WAVEFORMS = ("sine", "cosine")
MAX_SAMPLES = 10_000_000


@dataclass(frozen=True)
class ScannerConfig:
    """The ``[scanner]`` table (MDF names in brackets).

    Attributes:
        base_frequency: f_B [Hz] (``acquisition/drivefield/baseFrequency``).
        dividers: D_d per drive channel, integers >= 1 (``divider``).
        strengths: A_d [T] per channel (``strength``, T μ0⁻¹).
        directions: unit vectors e_d (default: e_x, e_y, e_z in channel order); normalised.
        phases: φ_d [rad] (``phase``), default 0.
        waveform: ``sine`` or ``cosine`` (``waveform``).
        gradient: g [T/m] per axis (``acquisition/gradient``, diagonal).
        offset_field: B_off [T] (``acquisition/offsetField``).
        num_sampling_points: V samples per cycle (``receiver/numSamplingPoints``);
            0 = N_c (one sample per base period).
    """

    base_frequency: float = 2.5e6
    dividers: tuple[int, ...] = (102, 96)
    strengths: tuple[float, ...] = (0.012, 0.012)
    directions: tuple[tuple[float, float, float], ...] = ()
    phases: tuple[float, ...] = ()
    waveform: str = "sine"
    gradient: tuple[float, float, float] = (-1.0, -1.0, 2.0)
    offset_field: tuple[float, float, float] = (0.0, 0.0, 0.0)
    num_sampling_points: int = 0

    def validate(self, where: str) -> None:
        n = len(self.dividers)
        if not self.base_frequency > 0:
            raise ConfigError(f"{where}.base_frequency: must be positive [Hz], "
                              f"got {self.base_frequency}")
        if not 1 <= n <= 3:
            raise ConfigError(f"{where}.dividers: need 1 to 3 drive channels, got {n}")
        if any(d < 1 for d in self.dividers):
            raise ConfigError(f"{where}.dividers: integers >= 1, got {list(self.dividers)}")
        if len(self.strengths) != n:
            raise ConfigError(f"{where}.strengths: need {n} entries (one per divider)")
        if any(not a >= 0 for a in self.strengths) or not any(self.strengths):
            raise ConfigError(f"{where}.strengths: must be >= 0 [T] and not all zero")
        for key in ("directions", "phases"):
            if getattr(self, key) and len(getattr(self, key)) != n:
                raise ConfigError(f"{where}.{key}: need {n} entries (one per divider)")
        if any(np.linalg.norm(e) == 0 for e in self.directions):
            raise ConfigError(f"{where}.directions: zero vector")
        if self.waveform not in WAVEFORMS:
            raise ConfigError(f"{where}.waveform: {self.waveform!r} not in {list(WAVEFORMS)}")
        if self.num_sampling_points < 0 or self.num_sampling_points == 1:
            raise ConfigError(f"{where}.num_sampling_points: need 0 (automatic) or >= 2")
        if self.num_sampling_points > MAX_SAMPLES or cycle_periods(self.dividers) > MAX_SAMPLES:
            raise ConfigError(f"{where}.num_sampling_points: more than {MAX_SAMPLES} samples "
                              "per cycle (lcm of the dividers too large?)")


def cycle_periods(dividers) -> int:
    """N_c = lcm of the dividers: base periods per drive cycle."""
    return math.lcm(*(int(d) for d in dividers))


class ScannerFields:
    """The field B(x, t) of a validated :class:`ScannerConfig` (vectorised).

    Attributes:
        frequencies: f_d [Hz] per channel.
        amplitudes: A_d e_d [T], shape (n_d, 3).
        cycle_base_periods: N_c.
        cycle: T_c [s].
        num_samples: V.
        times: the sample times t_n = n T_c / V [s].
        bin_per_channel: N_c / D_d, the DFT bin of each drive frequency.
    """

    def __init__(self, cfg: ScannerConfig):
        self.cfg = cfg
        n = len(cfg.dividers)
        dirs = np.array(cfg.directions, float) if cfg.directions else np.eye(3)[:n]
        dirs = dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
        self.amplitudes = np.asarray(cfg.strengths, float)[:, None] * dirs
        self.phases = np.asarray(cfg.phases or [0.0] * n, float)
        self.gradient = np.asarray(cfg.gradient, float)
        self.offset = np.asarray(cfg.offset_field, float)
        self.frequencies = cfg.base_frequency / np.asarray(cfg.dividers, float)
        self.cycle_base_periods = cycle_periods(cfg.dividers)
        self.cycle = self.cycle_base_periods / cfg.base_frequency
        self.num_samples = cfg.num_sampling_points or self.cycle_base_periods
        self.times = np.arange(self.num_samples) * (self.cycle / self.num_samples)
        self.bin_per_channel = np.array([self.cycle_base_periods // d for d in cfg.dividers])

    @property
    def dimension(self) -> int:
        """Number of drive channels (1: sine trajectory, 2/3: Lissajous)."""
        return len(self.frequencies)

    def _phase(self, t: np.ndarray) -> np.ndarray:
        return 2 * np.pi * np.asarray(t, float)[..., None] * self.frequencies + self.phases

    def mdf_phases(self) -> np.ndarray:
        """Phases of the equivalent sine drive (MDF ``waveform = sine``): cos = sin(· + π/2)."""
        return self.phases + (np.pi / 2 if self.cfg.waveform == "cosine" else 0.0)

    def drive(self, t: np.ndarray | float) -> np.ndarray:
        """Σ_d A_d e_d w(2π f_d t + φ_d) [T], shape t.shape + (3,)."""
        ph = self._phase(t)
        w = np.sin(ph) if self.cfg.waveform == "sine" else np.cos(ph)
        return w @ self.amplitudes

    def rate(self, t: np.ndarray | float) -> np.ndarray:
        """∂_t B [T/s] (independent of x), shape t.shape + (3,)."""
        ph = self._phase(t)
        dw = np.cos(ph) if self.cfg.waveform == "sine" else -np.sin(ph)
        return (dw * (2 * np.pi * self.frequencies)) @ self.amplitudes

    def static(self, x: np.ndarray) -> np.ndarray:
        """G x + B_off [T] for positions x of shape (..., 3)."""
        return np.asarray(x, float) * self.gradient + self.offset

    def field(self, x: np.ndarray, t: np.ndarray) -> np.ndarray:
        """B(x, t) [T] for positions (P, 3) and times (T,): shape (P, T, 3)."""
        return self.static(x)[:, None, :] + self.drive(t)[None, :, :]

    def max_field(self, x: np.ndarray) -> np.ndarray:
        """An upper bound of |B(x, t)| over t per position, shape (P,)."""
        return (np.linalg.norm(self.static(x), axis=-1)
                + np.linalg.norm(self.amplitudes, axis=1).sum())

    def bin_frequencies(self) -> np.ndarray:
        """f_k = k / T_c [Hz] of the one-sided DFT bins k = 0..V//2."""
        return np.arange(self.num_samples // 2 + 1) / self.cycle

    def ffp(self) -> np.ndarray:
        """Field-free point of the static field (axes with zero gradient: 0)."""
        g = np.where(self.gradient != 0, self.gradient, np.inf)
        return -self.offset / g

    def derived(self) -> dict:
        """Derived values for the resolved config (SI units)."""
        return {
            "drive_frequencies_Hz": self.frequencies.tolist(),
            "drive_periods_s": (1 / self.frequencies).tolist(),
            "cycle_base_periods": self.cycle_base_periods,
            "cycle_s": self.cycle,
            "num_sampling_points": self.num_samples,
            "sample_interval_s": self.cycle / self.num_samples,
            "sampling_rate_Hz": self.num_samples / self.cycle,
            "frequency_resolution_Hz": 1 / self.cycle,
            "drive_bins": self.bin_per_channel.tolist(),
            "drive_amplitude_vectors_T": self.amplitudes.tolist(),
            "field_free_point_m": self.ffp().tolist(),
            "drive_fov_half_width_m": {
                ax: float(a / abs(g)) for ax, a, g in
                zip("xyz", np.abs(self.amplitudes).sum(axis=0), self.gradient, strict=True)
                if g != 0},
        }


def mixing_orders(bins_per_channel, k: np.ndarray, max_order: int = 40) -> np.ndarray:
    """Mixing orders m (n_d integers) with Σ_d m_d q_d = k of least Σ|m_d| per bin k.

    Args:
        bins_per_channel: q_d = N_c / D_d, the DFT bin of each drive frequency.
        k: DFT bins (non-negative integers).
        max_order: search |m_d| <= max_order.

    Returns:
        Integer array (len(k), n_d); rows of bins without a solution in range are −9999.
        Ties in Σ|m_d| go to the smaller max |m_d|, then the lexicographically larger m.
    """
    q = np.asarray(bins_per_channel, int)
    k = np.asarray(k, int)
    r = np.arange(-max_order, max_order + 1)
    grids = np.meshgrid(*([r] * q.size), indexing="ij")
    m = np.stack([g.ravel() for g in grids], axis=1)
    kk = m @ q
    keep = (kk >= 0) & (kk <= (k.max() if k.size else 0))
    m, kk = m[keep], kk[keep]
    order = np.abs(m).sum(axis=1)
    # sort by bin, then total order, then max order, then prefer positive leading orders
    keys = [-m[:, j] for j in reversed(range(q.size))]
    idx = np.lexsort((*keys, np.abs(m).max(axis=1), order, kk))
    m, kk = m[idx], kk[idx]
    first = np.ones(kk.size, bool)
    first[1:] = kk[1:] != kk[:-1]
    table = dict(zip(kk[first].tolist(), m[first], strict=True))
    out = np.full((k.size, q.size), -9999, int)
    for i, ki in enumerate(k.tolist()):
        if ki in table:
            out[i] = table[ki]
    return out
