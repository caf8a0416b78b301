"""Benchmark ``dynamics``: weak order of the SDE models of GAN training, and WGAN critics vs exact W1.

Rows (one per measured quantity):

* ``lq-exact``: linear-quadratic game, exact moments, slope of the weak error against ``eta`` for
  the SDE (target window [0.85, 1.15]) and the corrected SDE ([1.85, 2.15]), both update schemes;
* ``dirac-mc``: regularised Dirac-GAN, coupled Monte Carlo, same windows, and every error at least
  10 standard errors;
* ``w1``: critic estimate of W1 within 5% of the exact value on two 1-D pairs and one 2-D pair.

Figures: ``dynamics_weak_error.png`` (log-log) and ``wgan_ot.png`` (optimal coupling and critics).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from mfgsolve.dynamics.linear import exact_weak_errors
from mfgsolve.dynamics.toys import DiracGAN, LinearQuadraticGame
from mfgsolve.dynamics.weak_error import coupled_weak_errors, fit_slope
from mfgsolve.dynamics.wgan import critic_w1, exact_potential_1d, exact_w1

WINDOWS = {"sde": (0.85, 1.15), "sde-corrected": (1.85, 2.15)}
MIN_SIGNAL_TO_SE = 10.0
W1_TOLERANCE = 0.05


def _fmt(values) -> str:
    return " ".join(f"{v:.3g}" for v in values)


def lq_exact(horizon: float = 2.0, ns=(32, 64, 128, 256)) -> dict[str, dict]:
    """Exact weak errors on the LQ game for both schemes: ``{scheme: {"etas", model: errors}}``."""
    game = LinearQuadraticGame(a=1.0, b=1.0, c=0.3)
    x0 = np.array([1.0, 0.5])
    out = {}
    for scheme in ("alternating", "simultaneous"):
        etas = [horizon / n for n in ns]
        res = {"etas": etas, "sde": [], "sde-corrected": []}
        for eta in etas:
            e = exact_weak_errors(
                game.objective, 1, 1, x0, game.noise_cov(), 1, eta, horizon, scheme=scheme
            )
            res["sde"].append(e["sde"])
            res["sde-corrected"].append(e["sde-corrected"])
        out[scheme] = res
    return out


def dirac_mc(quick: bool = False, horizon: float = 1.0) -> dict:
    """Coupled Monte-Carlo weak errors on the Dirac-GAN (alternating scheme, phi = |x|^2)."""
    game = DiracGAN(a=0.3, c=1.0)
    ns = (16, 32, 64) if quick else (16, 32, 64, 128)
    rows = coupled_weak_errors(
        game.objective, [1.5], [0.5], etas=[horizon / n for n in ns], horizon=horizon,
        noise_cov=game.noise_cov(), batch_size=4, n_paths=4000 if quick else 20_000,
        substeps=2, scheme="alternating", seed=1,
    )  # fmt: skip
    out = {"etas": [r["eta"] for r in rows]}
    for name in ("sde", "sde-corrected"):
        out[name] = [abs(r[name]) for r in rows]
        out[f"{name}_se"] = [r[f"{name}_se"] for r in rows]
    return out


def w1_pairs(rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    t = rng.uniform(0, 2 * np.pi, 200)
    ring = 3 * np.c_[np.cos(t), np.sin(t)] + rng.normal(0, 0.1, (200, 2))
    return {
        "1d gaussian shift": (rng.normal(0, 1, 400), rng.normal(1.5, 1, 400)),
        "1d bimodal vs exponential": (
            np.concatenate([rng.normal(-2, 0.5, 200), rng.normal(2, 0.5, 200)]),
            rng.exponential(1.0, 400),
        ),
        "2d gaussian vs ring": (rng.normal(0, 1, (200, 2)), ring),
    }


def w1_table(quick: bool = False) -> list[dict]:
    """Critic vs exact W1 on the three pairs; each entry keeps the samples and the results."""
    out = []
    for name, (x, y) in w1_pairs(np.random.default_rng(0)).items():
        if quick:  # smoke test: fewer points and iterations
            x, y = x[::3], y[::3]
        exact, plan = exact_w1(x, y)
        critic = critic_w1(x, y, iterations=1000 if quick else 1500, seed=0)
        out.append({"name": name, "x": x, "y": y, "exact": exact, "plan": plan, "critic": critic})
    return out


def plot_weak_errors(lq: dict, mc: dict, path: Path) -> None:
    import matplotlib.ticker

    from mfgsolve.plotting._figure import save, subplots

    fig, axes = subplots(1, 2, figsize=(11, 4.5))
    styles = {"sde": ("o-", "SDE (no correction)"), "sde-corrected": ("s-", "corrected SDE")}
    ax = axes[0]
    for scheme, res in lq.items():
        for model, (marker, label) in styles.items():
            etas = np.array(res["etas"])
            slope = fit_slope(etas, res[model])
            ls = "-" if scheme == "alternating" else "--"
            ax.loglog(
                etas, res[model], marker[0] + ls, label=f"{label}, {scheme} (slope {slope:.2f})"
            )
    ax.set_title("Linear-quadratic game: exact moments, T = 2")
    ax.set_ylabel("|E x_N - E X_T| + ||E x_N x_N' - E X_T X_T'||")
    ax2 = axes[1]
    etas = np.array(mc["etas"])
    for model, (marker, label) in styles.items():
        slope = fit_slope(etas, mc[model])
        ax2.errorbar(
            etas, mc[model], yerr=2 * np.array(mc[f"{model}_se"]), fmt=marker, capsize=3,
            label=f"{label} (slope {slope:.2f})",
        )  # fmt: skip
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_title("Dirac-GAN: coupled Monte Carlo, T = 1, bars = 2 SE")
    ax2.set_ylabel("|E phi(x_N) - E phi(X_T)|, phi = theta^2 + omega^2")
    for a in (ax, ax2):
        e = np.array(a.get_xlim())
        ymid = np.exp(np.mean(np.log(a.get_ylim())))
        ref = np.sqrt(e[0] * e[1])
        a.loglog(e, ymid * (e / ref), ":", color="grey", label="slope 1")
        a.loglog(e, ymid * (e / ref) ** 2, "-.", color="grey", label="slope 2")
        a.set_xlabel("learning rate eta")
        a.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        a.grid(True, which="both", alpha=0.3)
        a.legend(fontsize=7)
    fig.suptitle("Weak error of SDE models of stochastic gradient descent-ascent")
    fig.tight_layout()
    save(fig, path)


def plot_w1(entries: list[dict], path: Path) -> None:
    from mfgsolve.plotting._figure import save, subplots

    fig, axes = subplots(1, 3, figsize=(15, 4.6))
    for ax, entry in zip(axes, entries):
        x, y, crit = entry["x"], entry["y"], entry["critic"]
        title = f"{entry['name']}\nexact W1 {entry['exact']:.3f}, critic {crit.w1:.3f}"
        if x.ndim == 1:
            grid = np.unique(
                np.concatenate(
                    [x, y, np.linspace(min(x.min(), y.min()), max(x.max(), y.max()), 600)]
                )
            )
            with torch.no_grad():
                f = crit.critic(torch.as_tensor(grid[:, None])).squeeze(1).numpy()
            pot = exact_potential_1d(x, y, grid)
            ax.plot(grid, f - f.mean(), label="critic f (centred)")
            ax.plot(grid, pot - pot.mean(), "--", label="exact potential (centred)")
            ax.hist(x, bins=40, density=True, alpha=0.3, label="x (data)")
            ax.hist(y, bins=40, density=True, alpha=0.3, label="y (generator)")
            ax.set_xlabel("sample value")
            ax.set_ylabel("potential / density")
        else:
            lo = np.minimum(x.min(0), y.min(0)) - 0.5
            hi = np.maximum(x.max(0), y.max(0)) + 0.5
            gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 120), np.linspace(lo[1], hi[1], 120))
            with torch.no_grad():
                f = crit.critic(torch.as_tensor(np.c_[gx.ravel(), gy.ravel()])).numpy()
            cs = ax.contourf(gx, gy, f.reshape(gx.shape), levels=20, cmap="coolwarm", alpha=0.5)
            fig.colorbar(cs, ax=ax, label="critic f")
            plan = entry["plan"]
            i, j = np.nonzero(plan > 1e-9)
            for a, b in zip(i, j):
                ax.plot([x[a, 0], y[b, 0]], [x[a, 1], y[b, 1]], color="k", lw=0.4, alpha=0.6)
            ax.scatter(x[:, 0], x[:, 1], s=6, label="x (data)")
            ax.scatter(y[:, 0], y[:, 1], s=6, label="y (generator)")
            ax.plot([], [], color="k", lw=0.6, label="optimal coupling (LP)")
            ax.set_aspect("equal")
            ax.set_xlabel("x1")
            ax.set_ylabel("x2")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7, loc="upper right" if x.ndim == 1 else "upper left")
    fig.tight_layout()
    save(fig, path)


def run(out_dir: Path, quick: bool = False, *, root: Path) -> list[dict]:
    """Run the benchmark; write the figures into ``out_dir``; return one dict per table row
    (``root``, the checkout, is not needed: the games are defined here)."""
    out_dir = Path(out_dir)
    rows: list[dict] = []
    t0 = time.perf_counter()
    lq = lq_exact()
    for scheme, res in lq.items():
        for model, (lo, hi) in WINDOWS.items():
            slope = fit_slope(res["etas"], res[model])
            rows.append(
                {
                    "case": f"lq-exact {scheme}",
                    "model": model,
                    "metric": "weak-error slope",
                    "value": round(slope, 4),
                    "target": f"[{lo}, {hi}]",
                    "met": "yes" if lo <= slope <= hi else "no",
                    "detail": f"eta {_fmt(res['etas'])}: errors {_fmt(res[model])}",
                }
            )
    t_lq = time.perf_counter() - t0
    mc = dirac_mc(quick)
    for model, (lo, hi) in WINDOWS.items():
        slope = fit_slope(mc["etas"], mc[model])
        snr = min(e / s for e, s in zip(mc[model], mc[f"{model}_se"]))
        ok = lo <= slope <= hi and snr >= MIN_SIGNAL_TO_SE
        rows.append(
            {
                "case": "dirac-mc alternating" + (" (quick)" if quick else ""),
                "model": model,
                "metric": "weak-error slope",
                "value": round(slope, 4),
                "target": f"[{lo}, {hi}], error >= {MIN_SIGNAL_TO_SE:g} SE (min {snr:.1f})",
                "met": "yes" if ok else "no",
                "detail": f"eta {_fmt(mc['etas'])}: errors {_fmt(mc[model])} "
                f"SE {_fmt(mc[f'{model}_se'])}",
            }
        )
    t_mc = time.perf_counter() - t0 - t_lq
    plot_weak_errors(lq, mc, out_dir / "dynamics_weak_error.png")
    entries = w1_table(quick)
    for e in entries:
        rel = abs(e["critic"].w1 - e["exact"]) / e["exact"]
        rows.append(
            {
                "case": f"w1 {e['name']}",
                "model": "critic (gradient penalty)",
                "metric": "W1 relative error",
                "value": round(rel, 4),
                "target": f"< {W1_TOLERANCE:g}",
                "met": "yes" if rel < W1_TOLERANCE else "no",
                "detail": f"exact {e['exact']:.4f}, critic {e['critic'].w1:.4f} "
                f"(lower bound {e['critic'].lower_bound:.4f}, Lipschitz {e['critic'].lipschitz:.3f})",
            }
        )
    plot_w1(entries, out_dir / "wgan_ot.png")
    t_w1 = time.perf_counter() - t0 - t_lq - t_mc
    for r, t in zip(rows, [t_lq] * 4 + [t_mc] * 2 + [t_w1] * 3):
        r["seconds"] = round(t, 1)
    return rows
