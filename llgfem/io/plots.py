"""Matplotlib plots (Agg backend), drawn on rank 0 only.

Plots carry axis labels with units where the run is physical (``xlabel="t [s]"``); reference
values are drawn as dashed horizontal lines (``hlines``): the discrepancy level τδ on residual
plots, the true parameters on parameter plots.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from mpi4py import MPI

__all__ = ["plot_series"]


def plot_series(path: str | Path, x: np.ndarray, series: Mapping[str, np.ndarray], *,
                xlabel: str = "t", ylabel: str = "", title: str = "", logy: bool = False,
                hlines: Mapping[str, float] | None = None,
                comm: MPI.Comm = MPI.COMM_WORLD) -> None:
    """Plot several named curves against ``x`` into ``path`` (PNG) on rank 0.

    Args:
        path: The PNG file (parent folders are created).
        x: Abscissa shared by the curves.
        series: Label -> ordinates.
        xlabel, ylabel: Axis labels (with units, e.g. ``"t [s]"``).
        title: Figure title.
        logy: Logarithmic ordinate.
        hlines: Label -> value of dashed reference lines (``{"τδ": 0.03}``, true values).
        comm: Only its rank 0 draws.
    """
    if comm.rank != 0:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for label, y in series.items():
        ax.plot(x, y, label=label)
    for i, (label, value) in enumerate((hlines or {}).items()):
        ax.axhline(value, ls="--", lw=1.0, color=f"C{(len(series) + i) % 10}", label=label)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if len(series) + len(hlines or {}) > 1:
        ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
