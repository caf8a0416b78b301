"""Figures of finite-horizon solutions: space-time maps, snapshots, error against time, training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..metrics._integrals import known_solution
from ..metrics.space_time import errors_over_time
from ._figure import heatmap, history_curve, recorded, save, subplots, viscosity_twin

__all__ = ["finite_horizon_figures", "mass_figure"]


def finite_horizon_figures(
    solution: Any, reference: Any = None, out_dir: str | Path = ".", prefix: str = ""
) -> list[Path]:
    """Draw the finite-horizon panels into ``out_dir`` (PNG); returns the paths written.

    - ``spacetime.png`` (1-D): heat maps over (x, t) of u and m, the reference's, and the errors;
    - ``snapshots_m.png`` / ``snapshots_u.png`` (d >= 2): maps at four times (first two coordinates,
      the others at the middle of the domain): network, reference and error;
    - ``error_vs_time.png``: relative L2 errors of m and u at each time;
    - ``history.png``: errors (when recorded during training: against the exact solution) and
      losses against iterations, the continuation's viscosity on a twin axis (network solutions).

    Every axes has a title and axis labels (colour bars a label); panels with nothing to draw are
    left out (no reference nor exact solution: network maps only, no ``error_vs_time.png``).

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
    fields = _fields(problem, solution, u_ref, m_ref)
    method = solution.info.get("method", solution.info.get("scheme", ""))
    paths: list[Path] = []
    names = [str(s) for s in problem.domain.symbols]
    lo, hi = problem.domain.lower, problem.domain.upper
    if problem.dim == 1:
        nx, nt = 201, 101
        xs, ts = np.linspace(lo[0], hi[0], nx), np.linspace(problem.t0, problem.T, nt)
        T_, X_ = np.meshgrid(ts, xs, indexing="ij")
        pts = np.stack([T_.ravel(), X_.ravel()], axis=1)
        t = str(problem.time)
        args = f"{t}, {names[0]}"
        sub = "ref" if reference is not None else "exact"
        rows = [row for pair in fields for row in pair]  # u, m (of each population)
        ncols = 3 if any(f is not None for *_, f in rows) else 1
        fig, axes = subplots(
            len(rows),
            ncols,
            figsize=(5 * ncols, 3.75 * len(rows)),
            constrained_layout=True,
            squeeze=False,
        )
        for r, (title, key, f_net, f_ref) in enumerate(rows):
            net = f_net(pts).reshape(nt, nx)
            panels = [(net, f"{title}: network ({method})", "viridis", f"{key}({args})")]
            if f_ref is not None:
                ref = f_ref(pts).reshape(nt, nx)
                panels += [(ref, f"{title}: {ref_label}", "viridis", f"{key}_{sub}({args})")]
                panels += [
                    (net - ref, f"{title}: network - {ref_label}", "RdBu_r", f"{key} - {key}_{sub}")
                ]
            for c, (data, label, cmap, clabel) in enumerate(panels):
                heatmap(fig, axes[r, c], X_, T_, data, label, cmap, names[0], t, clabel)
            for c in range(len(panels), ncols):  # only u or only m known: no axes there
                fig.delaxes(axes[r, c])
        unknown = [key for _, key, _, f in rows if f is None and ncols > 1]
        fig.suptitle(
            f"{problem.name}: space-time fields"
            + (f" (no {ref_label} {' or '.join(unknown)})" if unknown else "")
        )
        paths.append(out_dir / f"{prefix}spacetime.png")
        save(fig, paths[-1])
    else:
        n = 64
        gx, gy = np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n)
        X, Y = np.meshgrid(gx, gy, indexing="ij")
        mid = (lo + hi) / 2
        times = np.linspace(problem.t0, problem.T, 4)
        sub = "ref" if reference is not None else "exact"
        args = f"{problem.time}, {names[0]}, {names[1]}"
        where = ", ".join(f"{s}={v:.3g}" for s, v in zip(names[2:], mid[2:]))
        for title, key, f_net, f_ref in (row for u_row, m_row in fields for row in (m_row, u_row)):
            nrows = 3 if f_ref is not None else 1
            fig, axes = subplots(
                nrows, 4, figsize=(16, 3.6 * nrows), constrained_layout=True, squeeze=False
            )
            for c, t in enumerate(times):
                pts = np.tile(np.r_[t, mid], (n * n, 1))
                pts[:, 1], pts[:, 2] = X.ravel(), Y.ravel()
                net = f_net(pts).reshape(n, n)
                data = [(net, f"network, t={t:.3g}", "viridis", f"{key}({args})")]
                if f_ref is not None:
                    ref = f_ref(pts).reshape(n, n)
                    data += [(ref, f"{ref_label}, t={t:.3g}", "viridis", f"{key}_{sub}({args})")]
                    data += [
                        (
                            net - ref,
                            f"network - {ref_label}, t={t:.3g}",
                            "RdBu_r",
                            f"{key} - {key}_{sub}",
                        )
                    ]
                for r, (vals, label, cmap, clabel) in enumerate(data):
                    heatmap(
                        fig,
                        axes[r, c],
                        X,
                        Y,
                        vals,
                        f"{key}: {label}",
                        cmap,
                        names[0],
                        names[1],
                        clabel,
                    )
                    axes[r, c].title.set_fontsize(10)
                    axes[r, c].set_aspect("equal")
            fig.suptitle(
                f"{problem.name}: {title} at four times ({method})"
                + (f", {where}" if where else "")
            )
            paths.append(out_dir / f"{prefix}snapshots_{key}.png")
            save(fig, paths[-1])
    if u_ref is not None or m_ref is not None:
        errs = errors_over_time(solution, reference)
        fig, ax = subplots(figsize=(7, 4.5), constrained_layout=True)
        K = problem.populations
        for k in range(K):
            end = "" if K == 1 else f"_{k + 1}"  # the errors' suffix, and the fields' names
            u, m = ("u", "m") if K == 1 else (f"u{k + 1}", f"m{k + 1}")
            style = ("-", "--", ":", "-.")[k % 4]  # a colour per quantity, a line per population
            for colour, (key, label) in enumerate(
                (
                    ("m_rel_l2", f"relative L2 error of {m}"),
                    ("u_rel_l2", f"relative L2 error of {u}"),
                    ("u_l2", f"L2 error of {u}"),
                )
            ):
                if np.any(np.isfinite(errs[key + end])):
                    ax.semilogy(errs["t"], errs[key + end], style, color=f"C{colour}", label=label)
        ax.set_xlabel(str(problem.time))
        ax.set_ylabel("error at time t")
        ax.set_title(f"{problem.name}: error vs time ({method}, against {ref_label})")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        paths.append(out_dir / f"{prefix}error_vs_time.png")
        save(fig, paths[-1])
    if problem.domain.exits:
        paths.append(mass_figure(solution, reference, out_dir / f"{prefix}mass.png"))
    history = solution.history or []
    u_key = "u_rel_l2" if recorded(history, "u_rel_l2") else "u_l2"
    u_name = "relative L2 error of u" if u_key == "u_rel_l2" else "L2 error of u"
    errors = [("m_rel_l2", "relative L2 error of m"), (u_key, u_name)]
    losses = [
        ("hjb_residual", "HJB: RMS on the evaluation grid"),
        ("fp_residual", "FP: RMS on the evaluation grid"),
        ("loss_hjb", "HJB loss (batch)"),
        ("loss_fp", "FP loss (batch)"),
    ]
    panels = []
    if recorded(history, *(k for k, _ in errors)):  # recorded against the exact solution only
        panels.append((errors, "errors vs exact (time-averaged)", "error", False))
    if recorded(history, *(k for k, _ in losses)):
        if recorded(history, "hjb_residual", "fp_residual"):
            panels.append((losses, "residuals and losses", "RMS residual, batch loss", True))
        else:
            panels.append((losses, "losses", "mean squared residual", True))
    if panels:
        fig, axes = subplots(
            1, len(panels), figsize=(6 * len(panels), 4.5), constrained_layout=True, squeeze=False
        )
        for ax, (keys, title, ylabel, twin) in zip(axes[0], panels):
            history_curve(ax, history, keys, title, ylabel)
            if twin:
                viscosity_twin(ax, history)
        fig.suptitle(f"{problem.name}: training ({method})")
        paths.append(out_dir / f"{prefix}history.png")
        save(fig, paths[-1])
    return paths


def mass_figure(solution: Any, reference: Any, path: Path) -> Path:
    """The mass in the domain over time, M(t) = int m(t, x) dx, of ``solution`` and of
    ``reference`` (or the known solution), with the times by which half and 90 % of the mass
    have left (a problem with exits). Returns ``path``."""
    from .._mass import EXIT_FRACTIONS, exit_time
    from ..metrics.exits import EXIT_TIMES, mass_over_time

    problem = solution.problem
    times = np.linspace(problem.t0, problem.T, EXIT_TIMES)
    method = solution.info.get("method", solution.info.get("scheme", ""))
    curves = [(f"{solution.kind} ({method})", solution.density, "-")]
    if reference is not None:
        curves.append(("reference", reference.density, "--"))
    elif known_solution(problem)[1] is not None:
        curves.append(("exact", known_solution(problem)[1], "--"))
    fig, ax = subplots(figsize=(7, 4.5), constrained_layout=True)
    for colour, (label, density, style) in enumerate(curves):
        mass = mass_over_time(density, problem, times)
        for k, row in enumerate(np.atleast_2d(mass)):
            name = label if mass.ndim == 1 else f"{label}, population {k + 1}"
            ax.plot(times, row, style, color=f"C{colour}", label=name)
            for q in EXIT_FRACTIONS:
                tq = exit_time(times, row, q)
                if np.isfinite(tq):
                    ax.plot([tq], [1 - q], "o", color=f"C{colour}", ms=5)
    for q in EXIT_FRACTIONS:
        ax.axhline(1 - q, color="0.6", lw=0.8, ls=":")
        ax.annotate(
            f"{round(100 * q)} % left", (problem.T, 1 - q), fontsize=8, ha="right", va="bottom"
        )
    ax.set_xlabel(str(problem.time))
    ax.set_ylabel("mass in the domain, int m dx")
    exits = ", ".join(f.label for f in problem.domain.exits)
    ax.set_title(f"{problem.name}: mass left in the domain (exits: {exits})")
    ax.set_ylim(0, 1.05)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    save(fig, path)
    return path


def _fields(problem, solution, u_ref, m_ref) -> list[tuple[tuple, tuple]]:
    """Per population, the (title, name, network, reference) rows of u and of m; with several
    populations the columns of the (n, K) fields, named u1, m1, u2, ..."""
    if problem.populations == 1:
        return [
            (
                ("value u", "u", solution.value, u_ref),
                ("density m", "m", solution.density, m_ref),
            )
        ]

    def column(fn, k):
        return None if fn is None else (lambda points: fn(points)[:, k])

    return [
        (
            (f"value u{k + 1}", f"u{k + 1}", column(solution.value, k), column(u_ref, k)),
            (f"density m{k + 1}", f"m{k + 1}", column(solution.density, k), column(m_ref, k)),
        )
        for k in range(problem.populations)
    ]
