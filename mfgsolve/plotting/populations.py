"""Figures of a solution with several populations (PNG, no pyplot).

One column per population: u_k above m_k, along the first coordinate in 1-D (the result solid,
the reference or exact solution dashed), as maps of the plane of the first two coordinates in
d >= 2 (the density, and its signed error where there is something to compare with). A last
column puts every population's density on one axes (1-D: where the populations live, e.g. apart
when they segregate) or their pointwise errors, and for network solutions the residuals recorded
during training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..metrics._integrals import known_solution
from ._figure import heatmap, history_curve, new_figure, panel_columns, recorded, save

__all__ = ["population_figures"]


def population_figures(
    result: Any, reference: Any = None, out_dir: str | Path = ".", name: str = "panels.png"
) -> list[Path]:
    """Draw the panels of ``result`` (a network solution or a reference) of several populations.

    Args:
        result: a ``Solution`` or ``ReferenceSolution`` whose problem has several populations.
        reference: what to compare with; None: the problem's exact solution if known.
        out_dir, name: where to write the PNG.

    Returns:
        The paths written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    problem = result.problem
    K = problem.populations
    is_reference = getattr(result, "kind", "") == "reference"
    if reference is not None:
        ref_u, ref_m, against = reference.value, reference.density, "reference"
    else:
        ref_u, ref_m, _ = known_solution(problem)
        against = "exact"
    own = "reference" if is_reference else "network"
    symbols = [str(s) for s in problem.domain.symbols]
    args = ", ".join(symbols)
    lo, hi = problem.domain.lower, problem.domain.upper
    columns: list[list] = []
    if problem.dim == 1:
        xs = np.linspace(lo[0], hi[0], 400, endpoint=not problem.domain.periodic)
        pts = xs[:, None]
        u, m = result.value(pts), result.density(pts)
        u_ref = ref_u(pts) if ref_u is not None else None
        m_ref = ref_m(pts) if ref_m is not None else None

        def line(data, ref, k, role):
            def draw(ax):
                ax.plot(xs, data[:, k], label=own)
                if ref is not None:
                    ax.plot(xs, ref[:, k], "--", label=against)
                ax.set_title(f"population {k + 1}: {'value' if role == 'u' else 'density'}")
                ax.set_xlabel(symbols[0])
                ax.set_ylabel(f"{role}{k + 1}({args})")
                ax.legend(fontsize=8)

            return draw

        for k in range(K):
            columns.append([line(u, u_ref, k, "u"), line(m, m_ref, k, "m")])

        def together(ax):
            for k in range(K):
                ax.plot(xs, m[:, k], label=f"m{k + 1}")
            ax.set_title(f"the {K} densities ({own})")
            ax.set_xlabel(symbols[0])
            ax.set_ylabel(f"m_k({args})")
            ax.legend(fontsize=8)

        errors = None
        if m_ref is not None:

            def errors(ax):
                for k in range(K):
                    scale = float(np.max(np.abs(m_ref[:, k]))) or 1.0
                    ax.semilogy(
                        xs, np.abs(m[:, k] - m_ref[:, k]) / scale + 1e-17, label=f"m{k + 1}"
                    )
                ax.set_title(f"pointwise error of m_k vs {against}")
                ax.set_xlabel(symbols[0])
                ax.set_ylabel("|m_k - m_k,ref| / max m_k,ref")
                ax.legend(fontsize=8)

        columns.append([together, errors])
    else:
        n = 96
        gx, gy = np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n)
        X, Y = np.meshgrid(gx, gy, indexing="ij")
        pts = np.tile(lo + 0.25 * (hi - lo), (n * n, 1))
        pts[:, 0], pts[:, 1] = X.ravel(), Y.ravel()
        m = result.density(pts)
        m_ref = ref_m(pts) if ref_m is not None else None
        where = ""
        if problem.dim > 2:
            where = " (" + ", ".join(f"{s}={v:.3g}" for s, v in zip(symbols[2:], pts[0, 2:])) + ")"

        def density_map(k):
            def draw(ax):
                heatmap(
                    ax.get_figure(), ax, X, Y, m[:, k].reshape(n, n),
                    f"population {k + 1}: density ({own}){where}", "viridis",
                    symbols[0], symbols[1], f"m{k + 1}",
                )  # fmt: skip

            return draw

        def error_map(k):
            def draw(ax):
                diff = (m[:, k] - m_ref[:, k]).reshape(n, n)
                heatmap(
                    ax.get_figure(), ax, X, Y, diff,
                    f"population {k + 1}: m - m_{against}", "RdBu_r",
                    symbols[0], symbols[1], f"m{k + 1} error",
                )  # fmt: skip

            return draw

        for k in range(K):
            columns.append([density_map(k), error_map(k) if m_ref is not None else None])
    history = [] if is_reference else (result.history or [])
    keys_hjb = [("hjb_residual", "RMS on the evaluation grid"), ("loss_hjb", "batch loss")]
    keys_fp = [("fp_residual", "RMS on the evaluation grid"), ("loss_fp", "batch loss")]
    if recorded(history, *(key for key, _ in keys_hjb + keys_fp)):

        def curve(keys, title):
            def draw(ax):
                history_curve(ax, history, keys, title, "residual (all populations)")

            return draw

        columns.append([curve(keys_hjb, "HJB residuals"), curve(keys_fp, "FP residuals")])
    fig = new_figure((4.4 * len(columns) + (1.5 if problem.dim > 1 else 0.0), 7.5))
    panel_columns(fig, columns)
    method = result.info.get("method", result.info.get("scheme", ""))
    what = "finite-difference reference" if is_reference else method
    fig.suptitle(
        f"{problem.name}: {K} populations, {what}"
        + (f", against the {against}" if ref_m is not None else "")
    )
    path = out_dir / name
    save(fig, path)
    return [path]
