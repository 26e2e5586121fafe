r"""Receive channels: coil sensitivities and receive-chain transfer functions (SPEC §6).

The voltage induced in receive coil l by the particles of a calibration voxel at x is, by
reciprocity (paper 002 eq. (5) with a delta concentration),

    u_l(x, t) = −(p_l(x) · ∂_t m_tot(x, t)),      m_tot = N_p m_p m̄(x, t)  [A m²],

with p_l the coil sensitivity in T/A (field per unit current; a sensitivity in 1/m, i.e. H
per unit current, is multiplied by μ0), m̄ the mean unit moment of the particle model, m_p the
particle moment and N_p the number of particles in the voxel (:mod:`llgfem.scanner.tracer`).
The receive chain multiplies every DFT bin by the transfer function ã_l(f_k):

    ŝ_l(x, f_k) = ã_l(f_k) û_l(x, f_k),     s_l = IDFT(ŝ_l)   (the convolution ã_l ∗ u_l),

with the kinds

* ``ideal``     ã = gain;
* ``bandpass``  ã(f) = gain [(i f/f_lo)/(1 + i f/f_lo)]ⁿ [1/(1 + i f/f_hi)]ⁿ  (n-th order
  analytic high-pass × low-pass, n = ``order``);
* ``measured``  complex values ã(f_j) at frequencies f_j read from an HDF5 file (datasets
  ``frequencies`` (K,) and ``transferFunction`` (C, K), MPIFiles.jl layout), row
  ``channel``, interpolated linearly in amplitude and unwrapped phase; 0 outside
  [f_1, f_K] (the chain is not known there), times ``gain`` (read and interpolated by
  :func:`llgfem.io.mdf.read_transfer_function` / ``interpolate_transfer_function``).

Sensitivity maps: ``sensitivity_map`` names an ``.npz`` file with axes ``x``, ``y``, ``z``
(increasing, metres) and ``values`` of shape (n_x, n_y, n_z, 3), interpolated trilinearly
(positions outside the box are an error).

Notation: ``p`` sensitivity, ``a~`` transfer function, ``u`` induced voltage, ``s`` received
signal.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llgfem.config import ConfigError

__all__ = ["MU0", "ReceiveChannel", "ReceiveConfig", "bandpass", "read_measured_transfer"]

MU0 = 4e-7 * np.pi
KINDS = ("ideal", "bandpass", "measured")
UNITS = ("T/A", "1/m")


@dataclass(frozen=True)
class ReceiveConfig:
    """One ``[[receiver]]`` table.

    Attributes:
        name: channel name.
        sensitivity: constant p_l (3-vector) in ``sensitivity_unit``.
        sensitivity_unit: ``T/A`` or ``1/m`` (H per unit current; times μ0).
        sensitivity_map: optional ``.npz`` field map (replaces ``sensitivity``).
        transfer_function: ``ideal``, ``bandpass`` or ``measured``.
        gain: constant factor of every kind.
        band: (f_lo, f_hi) [Hz] of the band-pass.
        order: n of the band-pass.
        transfer_file: HDF5 file of the measured transfer function.
        channel: row of the file's ``transferFunction``.
    """

    name: str = "rx"
    sensitivity: tuple[float, float, float] = (1.0, 0.0, 0.0)
    sensitivity_unit: str = "T/A"
    sensitivity_map: str = ""
    transfer_function: str = "ideal"
    gain: float = 1.0
    band: tuple[float, float] = (10e3, 1e6)
    order: int = 1
    transfer_file: str = ""
    channel: int = 0

    def validate(self, where: str) -> None:
        if self.sensitivity_unit not in UNITS:
            raise ConfigError(f"{where}.sensitivity_unit: {self.sensitivity_unit!r} not in "
                              f"{list(UNITS)}")
        if not self.sensitivity_map and not np.any(self.sensitivity):
            raise ConfigError(f"{where}.sensitivity: zero vector")
        if self.transfer_function not in KINDS:
            raise ConfigError(f"{where}.transfer_function: {self.transfer_function!r} not in "
                              f"{list(KINDS)}")
        if not self.gain != 0:
            raise ConfigError(f"{where}.gain: must be non-zero")
        if self.transfer_function == "bandpass":
            lo, hi = self.band
            if not 0 < lo < hi:
                raise ConfigError(f"{where}.band: need 0 < f_lo < f_hi [Hz], got {self.band}")
            if self.order < 1:
                raise ConfigError(f"{where}.order: must be >= 1")
        if self.transfer_function == "measured" and not self.transfer_file:
            raise ConfigError(f"{where}.transfer_file: required for 'measured'")
        if self.channel < 0:
            raise ConfigError(f"{where}.channel: must be >= 0")

    def resolved(self, base: Path | None) -> ReceiveConfig:
        """Relative file names taken relative to ``base`` (the config file's folder)."""
        from dataclasses import replace

        def fix(name: str) -> str:
            if not name or base is None or Path(name).is_absolute():
                return name
            return str((base / name).resolve())

        return replace(self, sensitivity_map=fix(self.sensitivity_map),
                       transfer_file=fix(self.transfer_file))


def bandpass(f: np.ndarray, lo: float, hi: float, order: int) -> np.ndarray:
    """[(i f/f_lo)/(1 + i f/f_lo)]ⁿ [1/(1 + i f/f_hi)]ⁿ."""
    f = np.asarray(f, float)
    high = (1j * f / lo) / (1 + 1j * f / lo)
    low = 1 / (1 + 1j * f / hi)
    return (high * low) ** order


def read_measured_transfer(path: str | Path, channel: int, where: str = "receiver"):
    """(frequencies [Hz], complex values) of one channel of a transfer-function file
    (read by :func:`llgfem.io.mdf.read_transfer_function`).

    Raises:
        ConfigError: naming ``<where>.transfer_file``/``<where>.channel`` if the file is
            missing, not a transfer-function file, or lacks the channel.
    """
    from llgfem.io.mdf import MDFError, read_transfer_function

    if not Path(path).is_file():
        raise ConfigError(f"{where}.transfer_file: not found: {path}")
    try:
        freqs, values, _ = read_transfer_function(path)
    except MDFError as e:
        raise ConfigError(f"{where}.transfer_file: {e}") from None
    if channel >= values.shape[0]:
        raise ConfigError(f"{where}.channel: {channel} but the file has {values.shape[0]}")
    return freqs, values[channel]


class ReceiveChannel:
    """A receive channel: sensitivity p_l(x) [T/A] and transfer function ã_l(f)."""

    def __init__(self, cfg: ReceiveConfig, where: str = "receiver"):
        self.cfg, self.name = cfg, cfg.name
        scale = MU0 if cfg.sensitivity_unit == "1/m" else 1.0
        self.scale = scale
        self._interp = None
        if cfg.sensitivity_map:
            self._interp = _load_map(cfg.sensitivity_map, f"{where}.sensitivity_map")
        self.p = scale * np.asarray(cfg.sensitivity, float)
        self._measured = None
        if cfg.transfer_function == "measured":
            self._measured = read_measured_transfer(cfg.transfer_file, cfg.channel, where)

    def sensitivity(self, x: np.ndarray) -> np.ndarray:
        """p_l(x) [T/A] at positions (P, 3), shape (P, 3)."""
        x = np.atleast_2d(np.asarray(x, float))
        if self._interp is None:
            return np.broadcast_to(self.p, x.shape).copy()
        return self.scale * self._interp(x)

    def transfer(self, f: np.ndarray) -> np.ndarray:
        """ã_l(f) at frequencies f [Hz] (complex)."""
        f = np.asarray(f, float)
        kind, g = self.cfg.transfer_function, self.cfg.gain
        if kind == "ideal":
            return np.full(f.shape, g, complex)
        if kind == "bandpass":
            return g * bandpass(f, *self.cfg.band, self.cfg.order)
        from llgfem.io.mdf import interpolate_transfer_function

        return g * interpolate_transfer_function(*self._measured, f)


def _load_map(path: str, where: str):
    from scipy.interpolate import RegularGridInterpolator

    if not Path(path).is_file():
        raise ConfigError(f"{where}: not found: {path}")
    try:
        data = np.load(path)
        axes = tuple(np.asarray(data[a], float) for a in "xyz")
        values = np.asarray(data["values"], float)
    except (OSError, KeyError, ValueError) as e:
        raise ConfigError(f"{where}: {path}: needs arrays x, y, z, values ({e})") from None
    shape = tuple(a.size for a in axes) + (3,)
    if values.shape != shape:
        raise ConfigError(f"{where}: values has shape {values.shape}, expected {shape}")
    if any(a.size < 2 or np.any(np.diff(a) <= 0) for a in axes):
        raise ConfigError(f"{where}: axes need >= 2 increasing entries each")
    interp = RegularGridInterpolator(axes, values, bounds_error=True)

    def evaluate(x: np.ndarray) -> np.ndarray:
        try:
            return interp(x)
        except ValueError:
            raise ConfigError(f"{where}: a calibration position lies outside the map") from None

    return evaluate
