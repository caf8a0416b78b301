"""Figures without pyplot: importing or plotting with mfgsolve never changes the caller's matplotlib
backend or figure registry (each figure is a ``matplotlib.figure.Figure`` written straight to PNG)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ._io import atomic_write_bytes


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
