"""Plots of system matrices (rank 0 only): spectra with mixing-order labels, |S_f(x)| images,
time signals and reconstructions, all axes in SI units (mm, kHz, µs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["plot_patterns", "plot_reconstruction", "plot_signals", "plot_spectrum",
           "select_pattern_bins", "spaced_peaks"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def select_pattern_bins(snr: np.ndarray, frequencies: np.ndarray, count: int,
                        min_frequency: float) -> np.ndarray:
    """The ``count`` bins of highest SNR (channel maximum) at f >= min_frequency, sorted."""
    best = snr.max(axis=0).copy()
    best[frequencies < min_frequency] = -np.inf
    order = np.argsort(best)[::-1][:count]
    return np.sort(order[np.isfinite(best[order])])


def spaced_peaks(snr: np.ndarray, frequencies: np.ndarray, count: int, min_frequency: float,
                 separation: float = 0.02) -> np.ndarray:
    """Up to ``count`` highest-SNR bins at f >= min_frequency, at least ``separation`` of
    the frequency range apart (for readable labels), sorted."""
    best = snr.max(axis=0).copy()
    best[frequencies < min_frequency] = -np.inf
    gap = separation * frequencies[-1]
    chosen: list[int] = []
    for k in np.argsort(best)[::-1]:
        if len(chosen) >= count or not np.isfinite(best[k]):
            break
        if all(abs(frequencies[k] - frequencies[j]) >= gap for j in chosen):
            chosen.append(int(k))
    return np.sort(np.array(chosen, int))


def plot_spectrum(path: Path, frequencies: np.ndarray, S: np.ndarray, snr: np.ndarray,
                  labels: dict[int, str], channel_names: list[str], title: str = "") -> None:
    """Mean |S| over positions and SNR per frequency, peaks labelled by mixing order."""
    plt = _plt()
    fig, axes = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    fk = frequencies[1:] * 1e-3  # the DC bin carries no induced signal
    top = 0.0
    for l, name in enumerate(channel_names):  # noqa: E741
        mean = np.abs(S[:, l, 1:]).mean(axis=0)
        top = max(top, mean.max())
        axes[0].semilogy(fk, mean, lw=0.8, label=name)
        axes[1].semilogy(fk, snr[l, 1:], lw=0.8, label=name)
        for k, text in labels.items():
            if l == 0 and k > 0:
                axes[0].annotate(text, (fk[k - 1], mean[k - 1]), fontsize=6, rotation=60,
                                 xytext=(0, 3), textcoords="offset points")
    axes[0].set_ylim(top * 1e-8, top * 30)
    axes[1].set_ylim(max(1e-3, snr.max() * 1e-8), snr.max() * 30)
    axes[0].set(ylabel="mean$_x$ |S(x, f)| [V]", title=title)
    axes[1].set(xlabel="f [kHz]", ylabel="SNR")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_patterns(path: Path, S: np.ndarray, positions: np.ndarray, size, bins: np.ndarray,
                  frequencies: np.ndarray, labels: dict[int, str], channel: int = 0) -> None:
    """|S_f(x)| images (2-D grids, x–y plane of the first z layer) or curves (1-D grids)."""
    plt = _plt()
    nx, ny = int(size[0]), int(size[1])
    n = len(bins)
    cols = min(4, max(n, 1))
    rows = int(np.ceil(n / cols)) or 1
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.8 * rows), squeeze=False)
    xs, ys = positions[:nx, 0] * 1e3, positions[: nx * ny: nx, 1] * 1e3
    for ax, k in zip(axes.ravel(), bins, strict=False):
        vals = np.abs(S[: nx * ny, channel, k])
        title = f"{frequencies[k] * 1e-3:.2f} kHz {labels.get(int(k), '')}"
        if ny > 1 and nx > 1:
            img = vals.reshape(ny, nx)
            ext = [xs[0], xs[-1], ys[0], ys[-1]]
            ax.imshow(img, origin="lower", extent=ext, cmap="viridis", aspect="equal")
            ax.set(xlabel="x [mm]", ylabel="y [mm]")
        else:
            ax.plot(xs if nx > 1 else ys, vals, "k.-")
            ax.set(xlabel="x [mm]" if nx > 1 else "y [mm]", ylabel="|S| [V]")
        ax.set_title(title, fontsize=8)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_signals(path: Path, times: np.ndarray, curves: dict[str, np.ndarray],
                 ylabel: str = "s [V]") -> None:
    """Time signals over one cycle (µs)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 3.2))
    for label, y in curves.items():
        ax.plot(times * 1e6, y, lw=0.8, label=label)
    ax.set(xlabel="t [µs]", ylabel=ylabel)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_reconstruction(path: Path, positions: np.ndarray, size, c_true: np.ndarray,
                        c: np.ndarray, rel_error: float) -> None:
    """Phantom and reconstruction side by side (first z layer)."""
    plt = _plt()
    nx, ny = int(size[0]), int(size[1])
    fig, axes = plt.subplots(1, 2, figsize=(7, 3.2))
    xs, ys = positions[:nx, 0] * 1e3, positions[: nx * ny: nx, 1] * 1e3
    for ax, vals, title in zip(axes, (c_true, c), ("phantom",
                               f"Kaczmarz–Tikhonov (rel. error {rel_error:.3f})"), strict=True):
        v = vals[: nx * ny]
        if nx > 1 and ny > 1:
            im = ax.imshow(v.reshape(ny, nx), origin="lower",
                           extent=[xs[0], xs[-1], ys[0], ys[-1]], cmap="magma")
            fig.colorbar(im, ax=ax, shrink=0.8)
            ax.set(xlabel="x [mm]", ylabel="y [mm]")
        else:
            ax.plot(xs if nx > 1 else ys, v, "k.-")
            ax.set(xlabel="x [mm]" if nx > 1 else "y [mm]", ylabel="c")
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
