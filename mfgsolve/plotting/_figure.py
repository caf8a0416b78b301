"""Figures without pyplot: importing or plotting with mfgsolve never changes the caller's matplotlib
backend or figure registry (each figure is a ``matplotlib.figure.Figure`` written straight to PNG).

Conventions of every figure: each axes has a title, an x label and a y label (colour bars a label);
a panel with nothing to draw is left out (a smaller figure), never drawn empty."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write_bytes

Draw = Callable[[Any], None]  # draws one panel into the axes it is given


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
    fig = new_figure(figsize, constrained_layout=constrained_layout)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def new_figure(figsize: tuple[float, float], *, constrained_layout: bool = True):
    """An empty ``matplotlib.figure.Figure`` (outside pyplot)."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained" if constrained_layout else None)


def panel_columns(fig, columns: Sequence[Sequence[Draw | None]]) -> list:
    """Lay out panels column by column (each column a sequence of rows) and draw them; a None cell
    gets no axes at all, a column of None cells no room. Returns the axes created, in drawing order.
    """
    columns = drawn_columns(columns)
    nrows = max(len(col) for col in columns)
    grid = fig.add_gridspec(nrows, len(columns))
    axes = []
    for c, col in enumerate(columns):
        for r, draw in enumerate(col):
            if draw is not None:
                ax = fig.add_subplot(grid[r, c])
                draw(ax)
                axes.append(ax)
    return axes


def drawn_columns(columns: Sequence[Sequence[Draw | None]]) -> list:
    """The columns that have a panel to draw."""
    return [col for col in columns if any(draw is not None for draw in col)]


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


def _series(history, key) -> tuple[list, list]:
    its = [h["iteration"] for h in history if h.get(key) is not None and "iteration" in h]
    vals = [h[key] for h in history if h.get(key) is not None and "iteration" in h]
    return its, vals


def recorded(history, *keys: str) -> bool:
    """Whether the training history holds a value of any of ``keys``."""
    return any(_series(history, key)[0] for key in keys)


def history_curve(ax, history, keys, title, ylabel) -> list[str]:
    """Curves of ``keys`` ((history key, label) pairs) against iterations, log scale; returns the
    labels drawn (call it only when :func:`recorded` says there is something to draw)."""
    drawn = []
    for key, label in keys:
        its, vals = _series(history, key)
        if its:
            ax.semilogy(its, np.abs(vals), label=label)
            drawn.append(label)
    if drawn and recorded(history, "loss_finish"):  # where the L-BFGS finish took over
        first = [h["iteration"] for h in history if "iteration" in h and "loss_finish" not in h]
        if first:
            ax.axvline(max(first), color="0.5", linestyle=":", label="L-BFGS finish from here")
    ax.set_title(title)
    ax.set_xlabel("iteration")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return drawn


def viscosity_twin(ax, history, label: str = "continuation viscosity eps (right axis)"):
    """The continuation's artificial viscosity (history key ``viscosity``) on a twin y axis of
    ``ax`` (its own label and log scale, grey dashed), with one legend for both axes. Returns the
    twin axes, or None when the history has no viscosity."""
    its, vals = _series(history, "viscosity")
    if not its:
        return None
    twin = ax.twinx()
    (line,) = twin.semilogy(its, vals, "--", color="0.45", label=label)
    twin.set_ylabel("viscosity eps")
    handles = [h for h in ax.get_lines() if not h.get_label().startswith("_")] + [line]
    # one legend for both axes, below them (inside it would hide curves of one or the other)
    ax.legend(
        handles=handles,
        labels=[h.get_label() for h in handles],
        fontsize=8,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.14),
        ncol=1,
    )
    return twin


def heatmap(
    fig,
    ax,
    X,
    Y,
    data,
    title: str,
    cmap: str,
    xlabel: str,
    ylabel: str,
    clabel: str = "",
) -> None:
    """One pcolormesh panel with a labelled colour bar; the diverging map ``RdBu_r`` (signed
    errors) gets limits symmetric about 0."""
    kw = {}
    if cmap == "RdBu_r":
        lim = float(np.max(np.abs(data))) or 1.0
        kw = {"vmin": -lim, "vmax": lim}
    im = ax.pcolormesh(X, Y, data, shading="auto", cmap=cmap, **kw)
    bar = fig.colorbar(im, ax=ax)
    if clabel:
        bar.set_label(clabel)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
