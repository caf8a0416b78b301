"""Error metrics of a solution against an exact solution or a reference, and the standard figures.

Quadrature (stated in the result under ``"quadrature"``): the reference's own grid and weights when
a reference with a grid is given; otherwise the periodic trapezoidal grid (torus, d <= 2),
tensor Gauss-Legendre (box, d <= 2), or 2**15 scrambled Sobol points (d >= 3). Finite-horizon errors
are averaged over time (uniform time nodes) and also reported at the initial and final times.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._metrics import exact_functions, field_errors
from ._plotting import save as _save
from ._plotting import subplots
from .problem import ErgodicMFG, ProblemError
from .sampling import quadrature

__all__ = ["compare", "figures", "residual_norms"]


def _quadrature_for(problem, reference, points) -> tuple[np.ndarray, np.ndarray, str]:
    """Space(-time) nodes, weights normalised so that sum(w) = |domain| (time-averaged)."""
    if points is not None:
        pts = np.asarray(points, dtype=float)
        vol = problem.domain.volume
        return pts, np.full(len(pts), vol / len(pts)), f"user points ({len(pts)}, equal weights)"
    if (
        reference is not None
        and hasattr(reference, "grid")
        and hasattr(reference, "quadrature_weights")
    ):
        axes = reference.grid
        mesh = np.meshgrid(*axes, indexing="ij")
        nodes = np.stack([a.ravel() for a in mesh], axis=1)
        weights = np.asarray(reference.quadrature_weights(), dtype=float).ravel()
        times = getattr(reference, "times", None)
        if times is not None:
            return _space_time(nodes, weights, np.asarray(times, dtype=float)) + (
                f"reference grid {tuple(len(a) for a in axes)} x {len(times)} times",
            )
        return nodes, weights, f"reference grid {tuple(len(a) for a in axes)}"
    d = problem.dim
    q = quadrature(problem.domain, 1024 if d == 1 else (128 * 128 if d == 2 else 2**15), seed=12345)
    nodes, weights = q.nodes.numpy(), q.weights.numpy()
    if not isinstance(problem, ErgodicMFG):
        times = np.linspace(problem.t0, problem.T, 33)
        return _space_time(nodes, weights, times) + (f"{q.rule} ({len(nodes)} nodes) x 33 times",)
    return nodes, weights, f"{q.rule} ({len(nodes)} nodes)"


def _space_time(
    nodes: np.ndarray, weights: np.ndarray, times: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    nt = len(times)
    pts = np.concatenate([np.repeat(times, len(nodes))[:, None], np.tile(nodes, (nt, 1))], axis=1)
    return pts, np.tile(weights, nt) / nt


def residual_norms(solution, nodes: np.ndarray, weights: np.ndarray) -> dict[str, float]:
    """RMS (quadrature-weighted, per unit volume) of the HJB and FP residuals of a network solution."""
    from .lowering import lower

    if not isinstance(solution.problem, ErgodicMFG):
        from .finite_horizon import residual_norms as space_time_residual_norms

        return space_time_residual_norms(solution, nodes, weights)
    value_net, density_net, log_z = solution.fields()
    res = lower(solution.problem)
    dtype = next(value_net.parameters()).dtype
    device = next(value_net.parameters()).device

    class _F:
        def value(self, p):
            return value_net(p)

        def log_density(self, p):
            return density_net(p) - log_z

    sq = {"hjb": 0.0, "fp": 0.0}
    for chunk, w in zip(
        np.array_split(nodes, max(1, len(nodes) // 4096)),
        np.array_split(weights, max(1, len(nodes) // 4096)),
    ):
        pts = torch.as_tensor(chunk, dtype=dtype, device=device).requires_grad_(True)
        caches = res.caches(pts, _F(), create_graph=False)
        consts = [torch.tensor(solution.constant, dtype=dtype, device=device)] * len(
            res.hjb.constants
        )
        hjb = res.hjb(pts, caches, consts)
        if res.constant_coefficient is not None:
            hjb = hjb + res.constant_coefficient * solution.constant
        fp = res.fp(pts, caches)
        sq["hjb"] += float((torch.as_tensor(w) * hjb.detach().double().cpu() ** 2).sum())
        sq["fp"] += float((torch.as_tensor(w) * fp.detach().double().cpu() ** 2).sum())
    total = float(np.sum(weights))
    return {"hjb_residual": (sq["hjb"] / total) ** 0.5, "fp_residual": (sq["fp"] / total) ** 0.5}


def compare(a: Any, b: Any = None, *, points: Any = None) -> dict[str, Any]:
    """Errors of ``a`` against ``b`` (a reference or another solution) or, if None, ``problem.exact``.

    Args:
        a: a ``Solution`` or ``ReferenceSolution`` (anything with problem, value, density, constant).
        b: the reference; None uses ``a.problem.exact_solution`` when the problem carries one (an
            object with value/density methods), else the closed forms in ``a.problem.exact``.
        points: optional (n, d) evaluation points (equal weights) instead of the default quadrature.

    Returns:
        dict with ``m_rel_l2``, ``u_l2``, ``u_rel_l2`` (when the reference u is not ~0),
        ``constant_abs`` (ergodic), ``hjb_residual`` and ``fp_residual`` (network solutions), and
        ``quadrature`` (how the integrals were taken).
    """
    from .fbsde import FBSDESolution, compare_fbsde

    if isinstance(a, FBSDESolution):  # FBSDEs: relative error of u(t0, x0), errors along paths
        return compare_fbsde(a)
    problem = a.problem
    if b is None and getattr(problem, "exact_solution", None) is not None:
        b = problem.exact_solution  # a known solution given as an object (e.g. from Riccati ODEs)
    if _uses_rqmc(problem, b, points):
        return _compare_rqmc(a, b, problem)
    nodes, weights, rule = _quadrature_for(problem, b, points)
    u_ref_fn, m_ref_fn, c_ref = _reference_functions(problem, b)
    u_ref = u_ref_fn(nodes) if u_ref_fn else None
    m_ref = m_ref_fn(nodes) if m_ref_fn else None
    constant = getattr(a, "constant", None)
    out: dict[str, Any] = field_errors(
        a.value(nodes), a.density(nodes), u_ref, m_ref, weights, constant, c_ref
    )
    if constant is not None:
        out["constant"] = float(constant)
    if c_ref is not None:
        out["constant_ref"] = float(c_ref)
    if not isinstance(problem, ErgodicMFG):
        out.update(_endpoint_errors(a, b, problem))
    if hasattr(a, "fields"):
        out.update(residual_norms(a, nodes, weights))
    out["quadrature"] = rule
    return out


def _reference_functions(problem, b) -> tuple[Any, Any, float | None]:
    """u and m of what is compared against, as functions of points, and its constant: the
    reference ``b``, or (``b`` None) the problem's closed forms."""
    if b is not None:
        return b.value, b.density, getattr(b, "constant", None)
    u_ex, m_ex, c_ref = exact_functions(problem)
    if u_ex is None and m_ex is None:
        raise ProblemError(
            f"problem '{problem.name}': no exact solution to compare with; fix: pass a reference (reference_solve) or add exact= to the problem"
        )
    return u_ex, m_ex, c_ref


RQMC_REPLICATES = 8
RQMC_MAX_POINTS = 2**16  # per replicate


def _uses_rqmc(problem, reference, points) -> bool:
    """Errors by randomized QMC: ergodic problems in d >= 3 against closed forms or a solution."""
    return (
        points is None
        and isinstance(problem, ErgodicMFG)
        and problem.dim >= 3
        and not (reference is not None and hasattr(reference, "grid"))
    )


def _compare_rqmc(a, b, problem) -> dict[str, Any]:
    """Errors as the mean over independently scrambled Sobol sets, with their standard error.

    The sets grow (x4) until the standard error of m_rel_l2 and u_l2 is below 5e-4 of the value
    (three significant digits) or RQMC_MAX_POINTS per set; ``*_se`` report it, ``log_z_se`` that
    of the density's normalising constant (as a relative error of Z); ``mean_u`` is the integral of
    u per unit volume (0 by the constraint) with its standard error ``mean_u_se``.
    """
    u_ref_fn, m_ref_fn, c_ref = _reference_functions(problem, b)
    constant = getattr(a, "constant", None)
    n = 2**12
    while True:
        reps, z_reps, u_reps = [], [], []
        for r in range(RQMC_REPLICATES):
            q = quadrature(problem.domain, n, rule="sobol", seed=12345 + r)
            nodes, weights = q.nodes.numpy(), q.weights.numpy()
            m, u = a.density(nodes), a.value(nodes)
            u_reps.append(float(np.sum(weights * u)) / problem.domain.volume)
            reps.append(
                field_errors(
                    u,
                    m,
                    u_ref_fn(nodes) if u_ref_fn else None,
                    m_ref_fn(nodes) if m_ref_fn else None,
                    weights,
                    constant,
                    c_ref,
                )
            )
            z_reps.append(float(np.sum(weights * m)))  # int m = Z_rqmc / Z_solution
        keys = [k for k in ("m_rel_l2", "u_l2") if k in reps[0]]
        se = {
            k: float(np.std([r[k] for r in reps], ddof=1) / np.sqrt(RQMC_REPLICATES))
            for k in reps[0]
        }
        mean = {k: float(np.mean([r[k] for r in reps])) for k in reps[0]}
        precise = all(se[k] <= 5e-4 * max(abs(mean[k]), 1e-12) for k in keys)
        if precise or n >= RQMC_MAX_POINTS:
            break
        n *= 4
    out: dict[str, Any] = dict(mean)
    for k in keys:
        out[f"{k}_se"] = se[k]
    out["log_z_se"] = float(np.std(z_reps, ddof=1) / np.sqrt(RQMC_REPLICATES) / np.mean(z_reps))
    out["mean_u"] = float(np.mean(u_reps))  # the constraint int u = 0, per unit volume
    out["mean_u_se"] = float(np.std(u_reps, ddof=1) / np.sqrt(RQMC_REPLICATES))
    if constant is not None:
        out["constant"] = float(constant)
    if c_ref is not None:
        out["constant_ref"] = float(c_ref)
    if hasattr(a, "fields"):
        q = quadrature(problem.domain, 2**15, rule="sobol", seed=12345)
        out.update(residual_norms(a, q.nodes.numpy(), q.weights.numpy()))
    digits = "3 significant digits" if precise else "fewer than 3 significant digits"
    out["quadrature"] = (
        f"randomized Sobol, {RQMC_REPLICATES} x {n} nodes ({digits}; *_se: standard errors)"
    )
    return out


def _endpoint_errors(a, b, problem) -> dict[str, float]:
    q = quadrature(
        problem.domain,
        1024 if problem.dim == 1 else 128 * 128 if problem.dim == 2 else 2**14,
        seed=7,
    )
    nodes, w = q.nodes.numpy(), q.weights.numpy()
    u_ex, m_ex, _ = exact_functions(problem) if b is None else (b.value, b.density, None)
    out = {}
    for label, t in (("initial", problem.t0), ("final", problem.T)):
        pts = np.concatenate([np.full((len(nodes), 1), t), nodes], axis=1)
        errs = field_errors(
            a.value(pts),
            a.density(pts),
            u_ex(pts) if u_ex else None,
            m_ex(pts) if m_ex else None,
            w,
        )
        out.update(
            {f"{k}_{label}": v for k, v in errs.items() if k in ("m_rel_l2", "u_l2", "u_rel_l2")}
        )
    return out


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------


def _history_curve(ax, history, keys, title, ylabel):
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
        from .finite_horizon import finite_horizon_figures

        return finite_horizon_figures(solution, reference, out_dir, prefix=prefix)
    pts, xs, xlabel = _slice_points(problem)
    u_ex, m_ex, _ = exact_functions(problem)
    ref_u = reference.value if reference is not None else u_ex
    ref_m = reference.density if reference is not None else m_ex
    ref_label = "reference" if reference is not None else "exact"
    history = getattr(solution, "history", []) or []
    fig, axes = subplots(2, 3, figsize=(14, 7.5), constrained_layout=True)
    ax = axes[0, 0]
    ax.plot(xs, solution.value(pts), label="network")
    if ref_u is not None:
        ax.plot(xs, ref_u(pts), "--", label=ref_label)
    ax.set_title("value u")
    ax.set_xlabel(xlabel)
    ax.legend(fontsize=8)
    _history_curve(axes[0, 1], history, [("u_l2", "L2 error of u")], "error of u", "L2 error")
    # with the continuation the batch losses are those of the problem with viscosity eps
    viscous = any("viscosity" in h for h in history)
    batch = "training loss on the batch (viscosity eps)" if viscous else "mean square on the batch"
    _history_curve(
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
    _history_curve(
        axes[1, 1],
        history,
        [("m_rel_l2", "relative L2 error of m")],
        "relative error of m",
        "relative L2 error",
    )
    _history_curve(
        axes[1, 2],
        history,
        [("fp_residual", "RMS on the evaluation grid"), ("loss_fp", batch)],
        "FP residual",
        "residual",
    )
    fig.suptitle(
        f"{problem.name}: {solution.info.get('method', '') if hasattr(solution, 'info') else ''}"
    )
    paths = [out_dir / f"{prefix}panels.png"]
    _save(fig, paths[0])
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
    _heatmap(fig, axes[0], X, Y, u, "value u", "viridis", xl, yl)
    _heatmap(fig, axes[1], X, Y, m, "density m", "viridis", xl, yl)
    if m_ref is not None:
        err = (m - m_ref) / np.max(np.abs(m_ref))
        _heatmap(fig, axes[2], X, Y, err, "error of m / max m_ref", "RdBu_r", xl, yl)
    else:
        axes[2].set_axis_off()
    for ax in axes:
        ax.set_aspect("equal")
    _save(fig, path)
    return path


def _heatmap(fig, ax, X, Y, data, title: str, cmap: str, xlabel: str, ylabel: str) -> None:
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
    _save(fig, path)
    return [path]
