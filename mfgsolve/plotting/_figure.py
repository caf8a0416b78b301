"""Figures without pyplot: importing or plotting with mfgsolve never changes the caller's matplotlib
backend or figure registry (each figure is a ``matplotlib.figure.Figure`` written straight to PNG)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write_bytes


def subplots(
    nrows: int = 1,
    ncols: int = 1,
    *,
    figsize: tuple[float, float],
    constrained_layout: bool = False,
    **kwargs: Any,
):
    """A new figure and its axes, like ``pyplot.subplots`` but outside pyplot.

    Returns:
        (figure, axes) with ``axes`` as ``Figure.subplots`` returns it.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained" if constrained_layout else None)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def save(fig, path: str | Path, dpi: int = 110) -> Path:
    """Write ``fig`` as a PNG atomically (temporary file, then rename). Returns the path."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


def colormap(name: str):
    """A registered matplotlib colormap by name."""
    import matplotlib

    return matplotlib.colormaps[name]


def history_curve(ax, history, keys, title, ylabel):
    """Curves of ``keys`` ((history key, label) pairs) against iterations, log scale."""
    plotted = False
    for key, label in keys:
        its = [h["iteration"] for h in history if key in h and h[key] is not None]
        vals = [h[key] for h in history if key in h and h[key] is not None]
        if its:
            ax.semilogy(its, np.abs(vals), label=label)
            plotted = True
    ax.set_title(title)
    ax.set_xlabel("iteration")
    ax.set_ylabel(ylabel)
    if plotted:
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    else:
        ax.text(0.5, 0.5, "not recorded", ha="center", va="center", transform=ax.transAxes)


def heatmap(fig, ax, X, Y, data, title: str, cmap: str, xlabel: str, ylabel: str) -> None:
    """One pcolormesh panel with a colorbar; the diverging map (errors) gets symmetric limits."""
    kw = {}
    if cmap == "RdBu_r":
        lim = float(np.max(np.abs(data))) or 1.0
        kw = {"vmin": -lim, "vmax": lim}
    im = ax.pcolormesh(X, Y, data, shading="auto", cmap=cmap, **kw)
    fig.colorbar(im, ax=ax)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
