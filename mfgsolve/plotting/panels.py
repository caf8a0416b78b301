"""The standard figure panels of a solution and of a finite-difference reference (PNG, no pyplot)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..metrics._integrals import known_solution
from ..metrics.whole_space import whole_space_nodes
from ..problem import ErgodicMFG, Rd
from ._figure import (
    drawn_columns,
    heatmap,
    history_curve,
    new_figure,
    panel_columns,
    recorded,
    save,
    subplots,
    viscosity_twin,
)

__all__ = ["figures", "reference_figures"]

_MARKERS = "osD^vP*Xh"


def _others(problem) -> np.ndarray:
    """Where the panels' lines and planes cross the other coordinates: the quarter point of a
    bounded domain, the centre on R^d (where the mass is)."""
    lo, hi = problem.domain.lower, problem.domain.upper
    return (lo + hi) / 2 if isinstance(problem.domain, Rd) else lo + 0.25 * (hi - lo)


def _slice_points(problem, n: int = 400) -> tuple[np.ndarray, np.ndarray, str]:
    """Points along the first coordinate (others at the quarter point; on R^d the centre), for
    1-D panels in any d."""
    lo, hi = problem.domain.lower, problem.domain.upper
    xs = np.linspace(lo[0], hi[0], n, endpoint=not problem.domain.periodic)
    pts = np.tile(_others(problem), (n, 1))
    pts[:, 0] = xs
    label = str(problem.domain.symbols[0])
    if problem.dim > 1:
        others = ", ".join(f"{s}={v:.3g}" for s, v in zip(problem.domain.symbols[1:], pts[0, 1:]))
        label += f"  ({others})"
    return pts, xs, label


def _plane_points(problem, n: int = 128) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Points of the plane of the first two coordinates, the others at the quarter point (the plane
    holds the 1-D slice of :func:`_slice_points`); returns (points, X, Y, the others as text)."""
    lo, hi = problem.domain.lower, problem.domain.upper
    gx, gy = np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n)
    X, Y = np.meshgrid(gx, gy, indexing="ij")
    pts = np.tile(_others(problem), (n * n, 1))
    pts[:, 0], pts[:, 1] = X.ravel(), Y.ravel()
    others = ", ".join(f"{s}={v:.3g}" for s, v in zip(problem.domain.symbols[2:], pts[0, 2:]))
    return pts, X, Y, others


def _args(problem) -> str:
    return ", ".join(str(s) for s in problem.domain.symbols)


def figures(
    solution: Any, reference: Any = None, out_dir: str | Path = ".", prefix: str = ""
) -> list[Path]:
    """Draw the standard panels into ``out_dir`` as PNG; returns the paths written.

    ``panels.png``, two rows (u on top, m below) of up to four columns, each column drawn only when
    there is something to draw in it:

    1. u and m along the first coordinate (the others at the quarter point), network solid and the
       reference (or the exact solution) dashed;
    2. pointwise errors against the reference when one is given, else against the exact solution:
       ``|u - u_ref|`` and ``|m - m_ref| / max m_ref`` along the same line (1-D), or as maps of the
       plane of the first two coordinates holding that line (d >= 2);
    3. the errors recorded during training (against the exact solution) against iterations;
    4. the HJB and FP residuals against iterations, with the continuation's artificial viscosity on
       a twin axis of the HJB panel (first-order problems).

    For d = 2 also ``maps.png`` (u, m and the signed error of m). Finite-horizon problems:
    :func:`~mfgsolve.plotting.finite_horizon_figures`.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    problem = solution.problem
    if not isinstance(problem, ErgodicMFG):
        from .space_time import finite_horizon_figures

        return finite_horizon_figures(solution, reference, out_dir, prefix=prefix)
    if getattr(problem, "populations", 1) > 1:
        from .populations import population_figures

        return population_figures(solution, reference, out_dir, f"{prefix}panels.png")
    if reference is not None:
        ref_u, ref_m, against = reference.value, reference.density, "reference"
    else:
        ref_u, ref_m, _ = known_solution(problem)
        against = "exact"
    if isinstance(problem.domain, Rd) and ref_u is not None and ref_m is not None:
        ref_u = _same_gauge(solution, ref_u, ref_m)
    history = solution.history or []
    method = solution.info.get("method", solution.info.get("scheme", ""))
    pts, xs, xlabel = _slice_points(problem)
    args = _args(problem)
    u_net, m_net = solution.value(pts), solution.density(pts)
    u_ref = ref_u(pts) if ref_u is not None else None
    m_ref = ref_m(pts) if ref_m is not None else None

    def field(name, net, ref):
        def draw(ax):
            ax.plot(xs, net, label="network")
            if ref is not None:
                ax.plot(xs, ref, "--", label=against)
            ax.set_title(f"{'value' if name == 'u' else 'density'} {name}")
            ax.set_xlabel(xlabel)
            ax.set_ylabel(f"{name}({args})")
            ax.legend(fontsize=8)

        return draw

    columns: list[list] = [[field("u", u_net, u_ref), field("m", m_net, m_ref)]]
    if u_ref is not None or m_ref is not None:
        columns.append(
            _pointwise_column(
                solution, (ref_u, ref_m), against, xs, xlabel, (u_net, u_ref), (m_net, m_ref)
            )
        )
    # errors recorded during training are against the problem's exact solution (never a reference)
    if recorded(history, "u_l2", "m_rel_l2"):
        columns.append(
            [
                _curve(
                    history,
                    [("u_l2", "network vs exact")],
                    "L2 error of u (vs exact)",
                    "||u - u_exact||",
                )
                if recorded(history, "u_l2")
                else None,
                _curve(
                    history,
                    [("m_rel_l2", "network vs exact")],
                    "relative L2 error of m (vs exact)",
                    "||m - m_exact|| / ||m_exact||",
                )
                if recorded(history, "m_rel_l2")
                else None,
            ]
        )
    # with the continuation the batch losses are those of the problem with viscosity eps
    viscous = recorded(history, "viscosity")
    batch = "training loss on the batch (viscosity eps)" if viscous else "mean square on the batch"
    hjb = [("hjb_residual", "RMS on the evaluation grid"), ("loss_hjb", batch)]
    fp = [("fp_residual", "RMS on the evaluation grid"), ("loss_fp", batch)]
    if recorded(history, *(k for k, _ in hjb + fp)):
        columns.append(
            [
                _curve(history, hjb, "HJB residual", "residual", twin_viscosity=True)
                if recorded(history, *(k for k, _ in hjb))
                else None,
                _curve(history, fp, "FP residual", "residual")
                if recorded(history, *(k for k, _ in fp))
                else None,
            ]
        )
    heat = problem.dim > 1 and (u_ref is not None or m_ref is not None)  # colour bars take room
    columns = drawn_columns(columns)
    fig = new_figure((4.3 * len(columns) + (2.0 if heat else 0.0), 7.5))
    if heat:  # room between a colour bar's label and the next panel's y label
        fig.get_layout_engine().set(wspace=0.06)
    panel_columns(fig, columns)
    title = f"{problem.name}: {method}"
    if u_ref is not None or m_ref is not None:
        title += (
            ", pointwise errors against the finite-difference reference"
            if reference is not None
            else ", errors against the exact solution"
        )
    fig.suptitle(title)
    paths = [out_dir / f"{prefix}panels.png"]
    save(fig, paths[0])
    if problem.dim == 2:
        paths.append(_maps(solution, ref_m, against, out_dir / f"{prefix}maps.png"))
    return paths


def _same_gauge(solution, ref_u, ref_m):
    """On R^d u is compared up to a constant (mfgsolve.metrics.whole_space): the reference's u
    shifted by E_{m_ref}[u - u_ref], so that the panels show the error that is measured."""
    nodes, log_w = whole_space_nodes(solution, 2**12)
    with np.errstate(divide="ignore"):
        log_p = log_w + np.log(ref_m(nodes))
    p = np.exp(log_p - np.max(log_p))
    shift = float(np.sum(p * (solution.value(nodes) - ref_u(nodes))) / np.sum(p))
    return lambda points: ref_u(points) + shift


def _curve(history, keys, title, ylabel, twin_viscosity: bool = False):
    def draw(ax):
        history_curve(ax, history, keys, title, ylabel)
        if twin_viscosity:
            viscosity_twin(ax, history)

    return draw


def _pointwise_column(solution, ref_fns, against, xs, xlabel, u_line, m_line) -> list:
    """The two pointwise-error panels: along the 1-D slice (d = 1, from the (network, reference)
    values ``u_line`` and ``m_line`` on it) or maps of the plane holding that slice (d >= 2)."""
    problem = solution.problem
    ref_u, ref_m = ref_fns
    (u_net, u_ref), (m_net, m_ref) = u_line, m_line
    sub = "ref" if against == "reference" else "exact"
    u_text, m_text = f"|u - u_{sub}|", f"|m - m_{sub}| / max m_{sub}"
    if problem.dim == 1:

        def line(text, err, name):
            def draw(ax):
                floor = 1e-8 * max(float(np.max(err)), 1e-300)  # exact zeros off the log scale
                ax.semilogy(xs, np.maximum(err, floor), color="C3", label=f"network vs {against}")
                ax.set_title(f"pointwise error of {name} (vs {against})")
                ax.set_xlabel(xlabel)
                ax.set_ylabel(text)
                ax.grid(True, which="both", alpha=0.3)
                ax.legend(fontsize=8)

            return draw

        return [
            line(u_text, np.abs(u_net - u_ref), "u") if u_ref is not None else None,
            line(m_text, np.abs(m_net - m_ref) / np.max(np.abs(m_ref)), "m")
            if m_ref is not None
            else None,
        ]
    pts, X, Y, others = _plane_points(problem)
    names = [str(s) for s in problem.domain.symbols]
    y_slice = float(_others(problem)[1])
    where = f" ({others})" if others else ""

    def plane(text, fn, ref_fn, name, relative):
        def draw(ax):
            ref = ref_fn(pts).reshape(X.shape)
            err = np.abs(fn(pts).reshape(X.shape) - ref)
            if relative:
                err = err / np.max(np.abs(ref))
            fig = ax.get_figure()
            heatmap(
                fig,
                ax,
                X,
                Y,
                err,
                f"pointwise error of {name} (vs {against})",
                "magma",
                names[0],
                names[1] + where,
                text,
            )
            ax.axhline(y_slice, color="w", ls="--", lw=1, label="line of the left panels")
            ax.legend(fontsize=7, loc="upper right")
            ax.set_aspect("equal")

        return draw

    return [
        plane(u_text, solution.value, ref_u, "u", False) if ref_u is not None else None,
        plane(m_text, solution.density, ref_m, "m", True) if ref_m is not None else None,
    ]


def _maps(solution, ref_m, against: str, path: Path) -> Path:
    """u, m and (when known) the signed error of m over the 2-D domain."""
    problem = solution.problem
    lo, hi = problem.domain.lower, problem.domain.upper
    n = 128
    gx = np.linspace(lo[0], hi[0], n)
    gy = np.linspace(lo[1], hi[1], n)
    X, Y = np.meshgrid(gx, gy, indexing="ij")
    pts = np.stack([X.ravel(), Y.ravel()], axis=1)
    m = solution.density(pts).reshape(n, n)
    u = solution.value(pts).reshape(n, n)
    ncols = 3 if ref_m is not None else 2
    fig, axes = subplots(1, ncols, figsize=(5 * ncols, 4.5), constrained_layout=True)
    xl, yl = (str(s) for s in problem.domain.symbols)
    args = f"{xl}, {yl}"
    heatmap(fig, axes[0], X, Y, u, "value u (network)", "viridis", xl, yl, f"u({args})")
    heatmap(fig, axes[1], X, Y, m, "density m (network)", "viridis", xl, yl, f"m({args})")
    if ref_m is not None:
        m_ref = ref_m(pts).reshape(n, n)
        sub = "ref" if against == "reference" else "exact"
        err = (m - m_ref) / np.max(np.abs(m_ref))
        heatmap(
            fig,
            axes[2],
            X,
            Y,
            err,
            f"signed error of m (vs {against})",
            "RdBu_r",
            xl,
            yl,
            f"(m - m_{sub}) / max m_{sub}",
        )
    for ax in axes:
        ax.set_aspect("equal")
    fig.suptitle(f"{problem.name}: {solution.info.get('method', solution.info.get('scheme', ''))}")
    save(fig, path)
    return path


def _grid_label(label: str) -> str:
    """``"200"`` -> ``"N = 200"``; ``"64x64|32"`` (space | time steps) -> ``"N = 64x64, Nt = 32"``."""
    space, _, steps = str(label).partition("|")
    return f"N = {space}" + (f", Nt = {steps}" if steps else "")


def newton_by_grid(reference: Any) -> dict[str, list[float]]:
    """The reference's Newton residuals (starting point, then every iterate) per grid, in the
    order the grids were solved; keys are the legend labels (``"N = 200"``, ...)."""
    grids = [str(g) for g in reference.info.get("grids_solved", [])]
    default = grids[0] if len(grids) == 1 else "x".join(map(str, reference.info.get("grid", [])))
    out: dict[str, list[float]] = {}
    for h in reference.history:
        if h.get("residual") is None:
            continue
        out.setdefault(_grid_label(h.get("grid", default)), []).append(float(h["residual"]))
    return out


def _newton_panel(ax, reference) -> None:
    by_grid = newton_by_grid(reference)
    for k, (label, res) in enumerate(by_grid.items()):
        ax.semilogy(range(len(res)), res, marker=_MARKERS[k % len(_MARKERS)], ms=5, label=label)
    stages = any("stage_viscosity" in h for h in reference.history)
    ax.set_title("Newton convergence" + (" (with viscosity continuation)" if stages else ""))
    ax.set_xlabel("Newton iteration on the grid (0: starting point)")
    ax.set_ylabel("scaled residual norm")
    ax.grid(True, which="both", alpha=0.3)
    steps = any("|" in str(g) for g in reference.info.get("grids_solved", []))
    ax.legend(fontsize=8, title="grid (Nt: time steps)" if steps else "grid", title_fontsize=8)


def _plane(data: np.ndarray, grid) -> np.ndarray:
    """The plane of the first two space axes of ``data`` (the others at the quarter point)."""
    index = tuple(slice(None) if k < 2 else len(a) // 4 for k, a in enumerate(grid))
    return data[index]


def reference_figures(reference: Any, out_dir: str | Path) -> list[Path]:
    """``reference.png``: the reference's u and m (with the exact solution dashed when known; maps
    for d >= 2 and for finite horizons) and the Newton residuals, one colour and marker per grid.
    Several populations over a finite horizon: the space-time figures of
    :func:`~mfgsolve.plotting.finite_horizon_figures`, prefixed ``reference_``. Returns the
    paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    problem = reference.problem
    if getattr(problem, "populations", 1) > 1:
        if reference.times is not None:  # several populations over time: their space-time maps
            from .space_time import finite_horizon_figures

            return finite_horizon_figures(reference, None, out_dir, prefix="reference_")
        from .populations import population_figures

        return population_figures(reference, None, out_dir, "reference.png")
    u_ex, m_ex, _ = known_solution(problem)
    names = [str(s) for s in problem.domain.symbols]
    args = _args(problem)
    columns: list = []
    if reference.times is None and reference.dim == 1:
        xs = reference.grid[0]

        def line(data, fn, name, title):
            def draw(ax):
                ax.plot(xs, data, label="reference")
                if fn is not None:
                    ax.plot(xs, fn(xs[:, None]), "--", label="exact")
                ax.set_title(title)
                ax.set_xlabel(names[0])
                ax.set_ylabel(f"{name}({args})")
                ax.legend(fontsize=8)

            return draw

        columns += [[line(reference.u, u_ex, "u", "value u")]]
        columns += [[line(reference.m, m_ex, "m", "density m")]]
    else:
        if reference.times is None:
            X, Y = np.meshgrid(reference.grid[0], reference.grid[1], indexing="ij")
            where = ""
            if reference.dim > 2:
                where = ", " + ", ".join(
                    f"{s}={a[len(a) // 4]:.3g}" for s, a in zip(names[2:], reference.grid[2:])
                )
            panels = (
                (_plane(reference.u, reference.grid), f"value u{where}", f"u({args})"),
                (_plane(reference.m, reference.grid), f"density m{where}", f"m({args})"),
            )
            labels = (names[0], names[1])
        elif reference.dim == 1:  # x across, t up (as in spacetime.png)
            X, Y = np.meshgrid(reference.grid[0], reference.times, indexing="xy")
            t = str(problem.time)
            panels = (
                (reference.u, f"value u({t}, {names[0]})", f"u({t}, {names[0]})"),
                (reference.m, f"density m({t}, {names[0]})", f"m({t}, {names[0]})"),
            )
            labels = (names[0], t)
        else:
            X, Y = np.meshgrid(reference.grid[0], reference.grid[1], indexing="ij")
            t0, t1 = reference.times[0], reference.times[-1]
            panels = (
                (_plane(reference.u[0], reference.grid), f"value u at t={t0:.3g}", f"u({args})"),
                (_plane(reference.m[-1], reference.grid), f"density m at t={t1:.3g}", f"m({args})"),
            )
            labels = (names[0], names[1])

        def mesh(data, title, clabel):
            def draw(ax):
                heatmap(ax.get_figure(), ax, X, Y, data, title, "viridis", *labels, clabel)

            return draw

        columns += [[mesh(*panel)] for panel in panels]
    if newton_by_grid(reference):
        columns.append([lambda ax: _newton_panel(ax, reference)])
    fig = new_figure((5 * len(columns), 4.2))
    panel_columns(fig, columns)
    fig.suptitle(
        f"{problem.name}: finite-difference reference ({reference.info.get('scheme', '')})"
    )
    path = out_dir / "reference.png"
    save(fig, path)
    if problem.domain.exits:  # the mass that leaves over time
        from .space_time import mass_figure

        return [path, mass_figure(reference, None, out_dir / "reference_mass.png")]
    return [path]
