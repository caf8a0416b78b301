"""Figures of finite-horizon solutions: space-time maps, snapshots, error against time, training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..metrics._integrals import known_solution
from ..metrics.space_time import errors_over_time
from ._figure import heatmap, history_curve, save, subplots

__all__ = ["finite_horizon_figures"]


def finite_horizon_figures(
    solution: Any, reference: Any = None, out_dir: str | Path = ".", prefix: str = ""
) -> list[Path]:
    """Draw the finite-horizon panels into ``out_dir`` (PNG); returns the paths written.

    - ``spacetime.png`` (1-D): heat maps over (x, t) of u and m, the reference's, and the errors;
    - ``snapshots_m.png`` / ``snapshots_u.png`` (d >= 2): maps at four times (first two coordinates,
      the others at the middle of the domain): network, reference and error;
    - ``error_vs_time.png``: relative L2 errors of m and u at each time;
    - ``history.png``: errors and losses against iterations (network solutions).

    Args:
        solution: a finite-horizon ``Solution`` (or ``ReferenceSolution``).
        reference: the reference (value/density interface) or None for the problem's known solution.
        out_dir: folder for the PNG files.
        prefix: prepended to the file names.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    problem = solution.problem
    u_ref, m_ref = (
        (reference.value, reference.density)
        if reference is not None
        else known_solution(problem)[:2]
    )
    ref_label = "reference" if reference is not None else "exact"
    method = solution.info.get("method", solution.info.get("scheme", ""))
    paths: list[Path] = []
    names = [str(s) for s in problem.domain.symbols]
    lo, hi = problem.domain.lower, problem.domain.upper
    if problem.dim == 1:
        nx, nt = 201, 101
        xs, ts = np.linspace(lo[0], hi[0], nx), np.linspace(problem.t0, problem.T, nt)
        T_, X_ = np.meshgrid(ts, xs, indexing="ij")
        pts = np.stack([T_.ravel(), X_.ravel()], axis=1)
        rows = [("value u", solution.value, u_ref), ("density m", solution.density, m_ref)]
        fig, axes = subplots(2, 3, figsize=(15, 7.5), constrained_layout=True)
        for r, (title, f_net, f_ref) in enumerate(rows):
            net = f_net(pts).reshape(nt, nx)
            ref = f_ref(pts).reshape(nt, nx) if f_ref is not None else None
            panels = [(net, f"{title}: network ({method})", "viridis")]
            if ref is not None:
                panels += [(ref, f"{title}: {ref_label}", "viridis")]
                panels += [(net - ref, f"{title}: network - {ref_label}", "RdBu_r")]
            for c, (data, label, cmap) in enumerate(panels):
                heatmap(fig, axes[r, c], X_, T_, data, label, cmap, names[0], str(problem.time))
            for c in range(len(panels), 3):
                axes[r, c].axis("off")
        fig.suptitle(f"{problem.name}: space-time fields")
        paths.append(out_dir / f"{prefix}spacetime.png")
        save(fig, paths[-1])
    else:
        n = 64
        gx, gy = np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n)
        X, Y = np.meshgrid(gx, gy, indexing="ij")
        mid = (lo + hi) / 2
        times = np.linspace(problem.t0, problem.T, 4)
        for title, key, f_net, f_ref in (
            ("density m", "m", solution.density, m_ref),
            ("value u", "u", solution.value, u_ref),
        ):
            nrows = 3 if f_ref is not None else 1
            fig, axes = subplots(
                nrows, 4, figsize=(16, 3.6 * nrows), constrained_layout=True, squeeze=False
            )
            for c, t in enumerate(times):
                pts = np.tile(np.r_[t, mid], (n * n, 1))
                pts[:, 1], pts[:, 2] = X.ravel(), Y.ravel()
                net = f_net(pts).reshape(n, n)
                data = [(net, f"network, t={t:.3g}", "viridis")]
                if f_ref is not None:
                    ref = f_ref(pts).reshape(n, n)
                    data += [(ref, f"{ref_label}, t={t:.3g}", "viridis")]
                    data += [(net - ref, f"error, t={t:.3g}", "RdBu_r")]
                for r, (vals, label, cmap) in enumerate(data):
                    heatmap(
                        fig, axes[r, c], X, Y, vals, f"{key}: {label}", cmap, names[0], names[1]
                    )
                    axes[r, c].title.set_fontsize(10)
                    axes[r, c].set_aspect("equal")
            fig.suptitle(f"{problem.name}: {title} at four times ({method})")
            paths.append(out_dir / f"{prefix}snapshots_{key}.png")
            save(fig, paths[-1])
    if u_ref is not None or m_ref is not None:
        errs = errors_over_time(solution, reference)
        fig, ax = subplots(figsize=(7, 4.5), constrained_layout=True)
        for key, label in (
            ("m_rel_l2", "relative L2 error of m"),
            ("u_rel_l2", "relative L2 error of u"),
            ("u_l2", "L2 error of u"),
        ):
            if np.any(np.isfinite(errs[key])):
                ax.semilogy(errs["t"], errs[key], label=label)
        ax.set_xlabel(str(problem.time))
        ax.set_ylabel("error at time t")
        ax.set_title(f"{problem.name}: error vs time ({method}, against {ref_label})")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        paths.append(out_dir / f"{prefix}error_vs_time.png")
        save(fig, paths[-1])
    history = solution.history or []
    if history:
        fig, axes = subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
        history_curve(
            axes[0],
            history,
            [("m_rel_l2", "relative L2 error of m"), ("u_rel_l2", "relative L2 error of u")],
            "errors (time-averaged)",
            "error",
        )
        history_curve(
            axes[1],
            history,
            [("loss_hjb", "HJB loss (batch)"), ("loss_fp", "FP loss (batch)")],
            "losses",
            "mean squared residual",
        )
        fig.suptitle(f"{problem.name}: training ({method})")
        paths.append(out_dir / f"{prefix}history.png")
        save(fig, paths[-1])
    return paths
