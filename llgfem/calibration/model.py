r"""Model data at the file's sampling: spectra on selected bins or signals at file times.

The reduced operator (:mod:`llgfem.operators.reduced`) gives the coil signals
:math:`s_{k,l}(t_{n+1/2})` of concentration ``k`` and coil ``l`` at the ``N`` midpoints of the
model's time grid.  A receive channel sees the sum over concentrations,
:math:`s_l = \sum_k s_{k,l}`.

* **Spectral model** (MDF data): the window's Fourier coefficients on the selected bins,

  .. math::  M_{l,b} = \frac{N_w}{N} \sum_{n=0}^{N-1} s_l(t_{n+1/2})
             e^{-2\pi i\, k_b (n + 1/2)/N},

  the midpoint rule of :math:`\frac{N_w}{T}\int_0^T s_l(t) e^{-2\pi i f_b t} dt`, which is what
  the unnormalised rfft of ``N_w`` samples of a band-limited signal equals.  The model is thus
  evaluated at the file's frequencies, independent of the model's time step (which only has
  to resolve them: ``k_b < N/2`` is checked).
* **Time model** (llgfem signals files): linear interpolation of the midpoint signals to the
  file's sample times (times outside the midpoints take the nearest end value).

Saturation magnetisation as an amplitude (``parameters = [..., "M_S"]``, known receive chain:
``gain = "none"``): the coil voltage is :math:`\mu_0 M_S \int c\, p \cdot \partial_t m`,
so :math:`\mathrm{model}_l = M_S M_l` with the LLG solution ``m`` (exchange length and
anisotropy coefficient of the scaled equations held fixed: ``M_S`` enters as the signal
amplitude only); its Jacobian column is :math:`M_l`, the model columns are multiplied by it.

Nuisance gains per receive channel ``l`` (no transfer function known): ``complex``
:math:`g_l = g^r_l + i g^i_l` (two real parameters) or ``real`` :math:`g_l`, with
:math:`\mathrm{model}_l = g_l M_l`; ``none`` fixes :math:`g_l = 1`.  The parameter vector is
:math:`x = (a_1, a_2, g)` (or :math:`(a_1, a_2, k, g)` with the anisotropy coefficient
``k``); the Jacobian columns are the exact linearised columns
:math:`g_l\, \partial M_l / \partial a_i` (two or three linearised solves, one sweep) and
:math:`M_l` (``real``/``complex`` real part), :math:`i M_l` (imaginary part).

Notation: ``N`` model midpoints, ``N_w`` samples per file window, ``k_b`` selected rfft bins,
``L`` channels, ``K`` concentrations.
"""

from __future__ import annotations

import numpy as np

__all__ = ["DataModel", "gain_names", "initial_gains"]


def gain_names(coils: tuple[str, ...], gain: str) -> tuple[str, ...]:
    """Names of the nuisance gain parameters."""
    if gain == "complex":
        return tuple(n for c in coils for n in (f"gain_re[{c}]", f"gain_im[{c}]"))
    if gain == "real":
        return tuple(f"gain[{c}]" for c in coils)
    return ()


class DataModel:
    """``x = (a1, a2, gains) -> model data`` (flattened ``(L, n)``) and its exact Jacobian.

    Args:
        op: the :class:`~llgfem.operators.reduced.ReducedOperator` (full time samples).
        transform: ``(n, N)`` matrix from midpoint signals to the file's sampling (the DFT rows
            of the selected bins, or the interpolation matrix).
        gain: ``complex`` | ``real`` | ``none``.
        scale: factor from the model's signal unit to the file's (e.g. ``1/t_ref``).
        amplitude: ``x`` holds the amplitude ``M_S`` after the model parameters (module
            docstring).
    """

    def __init__(self, op, transform: np.ndarray, gain: str, scale: float = 1.0,
                 amplitude: bool = False):
        self.op, self.transform, self.gain, self.scale = op, transform, gain, scale
        K, L, N = op.data_shape
        self.shape = (K, L, N)
        self.n_gain = {"complex": 2 * L, "real": L, "none": 0}[gain]
        # the model parameters lead x: (a1, a2) or (a1, a2, k), then M_S, then the gains
        self.n_a = int(getattr(getattr(op, "solver", None), "n_parameters", 2))
        self.n_amp = int(amplitude)

    def amplitude(self, x: np.ndarray) -> float:
        """``M_S`` (1 when not fitted)."""
        return float(x[self.n_a]) if self.n_amp else 1.0

    @property
    def channels(self) -> int:
        return self.shape[1]

    def _channels(self, flat: np.ndarray) -> np.ndarray:
        """Flattened ``(K, L, N)`` operator data -> ``(L, n)`` at the file's sampling."""
        s = np.asarray(flat).reshape(self.shape).sum(axis=0)
        return self.scale * (s @ self.transform.T)

    def base(self, a: np.ndarray) -> np.ndarray:
        """``M_l`` without gains, ``(L, n)``."""
        return self._channels(self.op(np.asarray(a[:self.n_a], dtype=float)))

    def gains(self, x: np.ndarray) -> np.ndarray:
        """``g_l`` (complex or real), ``(L,)``."""
        g = np.asarray(x[self.n_a + self.n_amp:], dtype=float)
        if self.gain == "complex":
            return g[0::2] + 1j * g[1::2]
        if self.gain == "real":
            return g
        return np.ones(self.channels)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (self.amplitude(x) * self.gains(x)[:, None] * self.base(x)).ravel()

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        """``(L n, p)``: the linearised columns (one per model parameter), the amplitude
        column and the gain columns."""
        a = np.asarray(x[:self.n_a], dtype=float)
        g = self.amplitude(x) * self.gains(x)
        sens = self.op.derivative(a).sensitivities()
        cols = [(g[:, None] * self._channels(sens[:, i])).ravel() for i in range(self.n_a)]
        base = self.base(a)
        if self.n_amp:
            cols.append((self.gains(x)[:, None] * base).ravel())
        base = self.amplitude(x) * base
        L, n = base.shape
        for l in range(L):  # noqa: E741
            unit = np.zeros((L, n), dtype=base.dtype)
            unit[l] = base[l]
            if self.gain in ("complex", "real"):
                cols.append(unit.ravel())
            if self.gain == "complex":
                cols.append(1j * unit.ravel())
        return np.stack(cols, axis=1)


def initial_gains(base: np.ndarray, data: np.ndarray, gain: str) -> np.ndarray:
    """Least-squares gains ``g_l = <M_l, d_l> / <M_l, M_l>`` at fixed ``a`` (flattened params)."""
    out = []
    for m, d in zip(base, data):
        g = np.vdot(m, d) / max(np.vdot(m, m).real, 1e-300)
        if gain == "complex":
            out += [g.real, g.imag]
        elif gain == "real":
            out.append(g.real)
    return np.array(out, dtype=float)


def dft_rows(bins: np.ndarray, n_mid: int, n_window: int) -> np.ndarray:
    """``(n_bins, N)`` rows ``(N_w/N) exp(-2 pi i k (n + 1/2)/N)`` (module docstring)."""
    n = np.arange(n_mid) + 0.5
    return (n_window / n_mid) * np.exp(-2j * np.pi * np.outer(bins, n) / n_mid)


def interpolation_rows(t_file: np.ndarray, t_mid: np.ndarray) -> np.ndarray:
    """``(n_file, N)`` linear interpolation from the midpoints to the file times."""
    P = np.zeros((t_file.size, t_mid.size))
    idx = np.clip(np.searchsorted(t_mid, t_file) - 1, 0, t_mid.size - 2)
    w = np.clip((t_file - t_mid[idx]) / (t_mid[idx + 1] - t_mid[idx]), 0.0, 1.0)
    P[np.arange(t_file.size), idx] = 1.0 - w
    P[np.arange(t_file.size), idx + 1] = w
    return P
