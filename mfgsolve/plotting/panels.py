"""The standard figure panels of a solution and of a finite-difference reference (PNG, no pyplot)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..metrics._integrals import exact_functions
from ..problem import ErgodicMFG
from ._figure import heatmap, history_curve, save, subplots

__all__ = ["figures", "reference_figures"]


def _slice_points(problem, n: int = 400) -> tuple[np.ndarray, np.ndarray, str]:
    """Points along the first coordinate (others at the quarter point), for 1-D panels in any d."""
    lo, hi = problem.domain.lower, problem.domain.upper
    xs = np.linspace(lo[0], hi[0], n, endpoint=not problem.domain.periodic)
    pts = np.tile(lo + 0.25 * (hi - lo), (n, 1))
    pts[:, 0] = xs
    label = str(problem.domain.symbols[0])
    if problem.dim > 1:
        others = ", ".join(f"{s}={v:.3g}" for s, v in zip(problem.domain.symbols[1:], pts[0, 1:]))
        label += f"  ({others})"
    return pts, xs, label


def figures(
    solution: Any, reference: Any = None, out_dir: str | Path = ".", prefix: str = ""
) -> list[Path]:
    """Draw the standard panels into ``out_dir`` as PNG; returns the paths written.

    ``panels.png`` (2 x 3, as in the seed paper): u with the reference, error of u vs iterations, HJB
    residual vs iterations, m with the reference, relative error of m vs iterations, FP residual vs
    iterations. For d = 2 also ``maps.png`` (u, m and pointwise error of m).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    problem = solution.problem
    if not isinstance(problem, ErgodicMFG):
        from .space_time import finite_horizon_figures

        return finite_horizon_figures(solution, reference, out_dir, prefix=prefix)
    pts, xs, xlabel = _slice_points(problem)
    u_ex, m_ex, _ = exact_functions(problem)
    ref_u = reference.value if reference is not None else u_ex
    ref_m = reference.density if reference is not None else m_ex
    ref_label = "reference" if reference is not None else "exact"
    history = solution.history or []
    fig, axes = subplots(2, 3, figsize=(14, 7.5), constrained_layout=True)
    ax = axes[0, 0]
    ax.plot(xs, solution.value(pts), label="network")
    if ref_u is not None:
        ax.plot(xs, ref_u(pts), "--", label=ref_label)
    ax.set_title("value u")
    ax.set_xlabel(xlabel)
    ax.legend(fontsize=8)
    history_curve(axes[0, 1], history, [("u_l2", "L2 error of u")], "error of u", "L2 error")
    # with the continuation the batch losses are those of the problem with viscosity eps
    viscous = any("viscosity" in h for h in history)
    batch = "training loss on the batch (viscosity eps)" if viscous else "mean square on the batch"
    history_curve(
        axes[0, 2],
        history,
        [
            ("hjb_residual", "RMS on the evaluation grid"),
            ("loss_hjb", batch),
            ("viscosity", "continuation viscosity eps"),
        ],
        "HJB residual",
        "residual",
    )
    ax = axes[1, 0]
    ax.plot(xs, solution.density(pts), label="network")
    if ref_m is not None:
        ax.plot(xs, ref_m(pts), "--", label=ref_label)
    ax.set_title("density m")
    ax.set_xlabel(xlabel)
    ax.legend(fontsize=8)
    history_curve(
        axes[1, 1],
        history,
        [("m_rel_l2", "relative L2 error of m")],
        "relative error of m",
        "relative L2 error",
    )
    history_curve(
        axes[1, 2],
        history,
        [("fp_residual", "RMS on the evaluation grid"), ("loss_fp", batch)],
        "FP residual",
        "residual",
    )
    fig.suptitle(f"{problem.name}: {solution.info.get('method', solution.info.get('scheme', ''))}")
    paths = [out_dir / f"{prefix}panels.png"]
    save(fig, paths[0])
    if problem.dim == 2:
        paths.append(_maps(solution, reference, m_ex, u_ex, out_dir / f"{prefix}maps.png"))
    return paths


def _maps(solution, reference, m_ex, u_ex, path: Path) -> Path:
    problem = solution.problem
    lo, hi = problem.domain.lower, problem.domain.upper
    n = 128
    gx = np.linspace(lo[0], hi[0], n)
    gy = np.linspace(lo[1], hi[1], n)
    X, Y = np.meshgrid(gx, gy, indexing="ij")
    pts = np.stack([X.ravel(), Y.ravel()], axis=1)
    m = solution.density(pts).reshape(n, n)
    u = solution.value(pts).reshape(n, n)
    m_ref = (
        reference.density(pts).reshape(n, n)
        if reference is not None
        else (m_ex(pts).reshape(n, n) if m_ex else None)
    )
    fig, axes = subplots(1, 3, figsize=(15, 4.5), constrained_layout=True)
    xl, yl = (str(s) for s in problem.domain.symbols)
    heatmap(fig, axes[0], X, Y, u, "value u", "viridis", xl, yl)
    heatmap(fig, axes[1], X, Y, m, "density m", "viridis", xl, yl)
    if m_ref is not None:
        err = (m - m_ref) / np.max(np.abs(m_ref))
        heatmap(fig, axes[2], X, Y, err, "error of m / max m_ref", "RdBu_r", xl, yl)
    else:
        axes[2].set_axis_off()
    for ax in axes:
        ax.set_aspect("equal")
    save(fig, path)
    return path


def reference_figures(reference: Any, out_dir: str | Path) -> list[Path]:
    """Figures of a finite-difference reference: u, m (with the exact solution when known) and the
    Newton residual history; 2-D: maps; finite horizon 1-D: space-time maps. Returns the paths."""
    out_dir = Path(out_dir)
    problem = reference.problem
    u_ex, m_ex, _ = exact_functions(problem)
    hist = [h for h in reference.history if h.get("residual") is not None]
    ncols = 3
    fig, axes = subplots(1, ncols, figsize=(15, 4.2), constrained_layout=True)
    names = [str(s) for s in problem.domain.symbols]
    if reference.times is None and reference.dim == 1:
        xs = reference.grid[0]
        for ax, data, fn, title in (
            (axes[0], reference.u, u_ex, "value u"),
            (axes[1], reference.m, m_ex, "density m"),
        ):
            ax.plot(xs, data, label="reference")
            if fn is not None:
                ax.plot(xs, fn(xs[:, None]), "--", label="exact")
            ax.set_title(title)
            ax.set_xlabel(names[0])
            ax.legend(fontsize=8)
    else:
        if reference.times is None:
            X, Y = np.meshgrid(reference.grid[0], reference.grid[1], indexing="ij")
            panels = ((reference.u, "value u"), (reference.m, "density m"))
            labels = (names[0], names[1])
        elif reference.dim == 1:
            X, Y = np.meshgrid(reference.times, reference.grid[0], indexing="ij")
            panels = ((reference.u, "value u(t, x)"), (reference.m, "density m(t, x)"))
            labels = (str(problem.time), names[0])
        else:
            X, Y = np.meshgrid(reference.grid[0], reference.grid[1], indexing="ij")
            panels = (
                (reference.u[0], f"value u(t={reference.times[0]:.3g})"),
                (reference.m[-1], f"density m(t={reference.times[-1]:.3g})"),
            )
            labels = (names[0], names[1])
        for ax, (data, title) in zip(axes[:2], panels):
            im = ax.pcolormesh(X, Y, data, shading="auto", cmap="viridis")
            fig.colorbar(im, ax=ax)
            ax.set_title(title)
            ax.set_xlabel(labels[0])
            ax.set_ylabel(labels[1])
    ax = axes[2]
    if hist:
        ax.semilogy(range(1, len(hist) + 1), [h["residual"] for h in hist], "o-")
        ax.set_xlabel("Newton iteration (all grids)")
        ax.set_ylabel("residual norm")
        ax.grid(True, which="both", alpha=0.3)
    ax.set_title("Newton convergence")
    fig.suptitle(
        f"{problem.name}: finite-difference reference ({reference.info.get('scheme', '')})"
    )
    path = out_dir / "reference.png"
    save(fig, path)
    return [path]
