"""Benchmark of the reference solver: targets table and a convergence study (``mfgsolve bench
reference``)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import sympy as sp

from mfgsolve._io import atomic_write_json
from mfgsolve._symbolic import evaluate_numeric_constants
from mfgsolve.problem import load_problem
from mfgsolve.reference import reference_solve

from ._common import problem_path


def _exact_errors(problem, ref) -> dict:
    exact = problem.exact
    if ref.times is None:
        mesh = np.meshgrid(*ref.grid, indexing="ij")
        args = problem.space
    else:
        mesh = np.meshgrid(ref.times, *ref.grid, indexing="ij")
        args = (problem.time, *problem.space)

    def on_grid(expr):
        fn = sp.lambdify(args, evaluate_numeric_constants(sp.sympify(expr)), "numpy")
        return np.broadcast_to(np.asarray(fn(*mesh), float), mesh[0].shape)

    m_ex, u_ex = on_grid(exact["density"]), on_grid(exact["value"])
    out = {
        "m_rel_l2": float(np.linalg.norm(ref.m - m_ex) / np.linalg.norm(m_ex)),
        "u_err": float(np.sqrt(np.mean((ref.u - u_ex) ** 2))),
        "constant_abs": float("nan"),
    }
    if ref.constant is not None and "constant" in exact:
        out["constant_abs"] = abs(ref.constant - exact["constant"])
    return out


def _row(root: Path, file: str, target: str, limits: dict, **options) -> dict:
    problem = load_problem(problem_path(root, file))
    start = time.perf_counter()
    ref = reference_solve(problem, **options)
    seconds = time.perf_counter() - start
    err = _exact_errors(problem, ref)
    grid = "x".join(str(n) for n in ref.info["grid"])
    if ref.info.get("time_steps"):
        grid += f" x {ref.info['time_steps']}t"
    met = seconds <= limits.get("seconds", np.inf)
    met &= err["m_rel_l2"] <= limits.get("error", np.inf)
    met &= err["u_err"] <= limits.get("error", np.inf)
    met &= ref.info["newton_iterations"] <= 20 and ref.info["mass_drift"] <= 1e-12
    return {
        "problem": problem.name,
        "scheme": ref.info["scheme"],
        "grid": grid,
        "richardson": ref.info.get("richardson", "off"),
        "seconds": round(seconds, 3),
        "newton_iters": int(ref.info["newton_iterations"]),
        "m_rel_l2": err["m_rel_l2"],
        "u_err": err["u_err"],
        "constant_abs": err["constant_abs"],
        "estimate_m_rel_l2": float(ref.error_estimate.get("m_rel_l2", float("nan"))),
        "mass_drift": float(ref.info["mass_drift"]),
        "target": target,
        "met": bool(met),
    }


def convergence(out_dir: Path, sizes=(50, 100, 200, 400, 800, 1600), *, root: Path) -> list[dict]:
    """Error of the monotone and generic schemes on the manufactured 1-D viscous problem."""
    from mfgsolve.plotting._figure import save, subplots

    problem = load_problem(problem_path(root, "viscous_torus_1d.py"))
    rows = []
    for scheme in ("monotone", "generic"):
        prev = None
        for n in sizes:
            ref = reference_solve(problem, grid=n, scheme=scheme, richardson=False)
            err = _exact_errors(problem, ref)["m_rel_l2"]
            order = float(np.log2(prev / err)) if prev else float("nan")
            rows.append({"scheme": scheme, "n": n, "h": 1 / n, "m_rel_l2": err, "order": order})
            prev = err
    fig, ax = subplots(figsize=(5.5, 4))
    for scheme, marker in (("monotone", "o"), ("generic", "s")):
        hs = [r["h"] for r in rows if r["scheme"] == scheme]
        es = [r["m_rel_l2"] for r in rows if r["scheme"] == scheme]
        ax.loglog(hs, es, marker + "-", label=f"{scheme} scheme")
    hs = np.array([1 / n for n in sizes])
    ax.loglog(hs, 0.5 * hs, "k--", lw=0.8, label="slope 1")
    ax.loglog(hs, 2 * hs**2, "k:", lw=0.8, label="slope 2")
    ax.set_xlabel("grid step h")
    ax.set_ylabel("relative L2 error of m")
    ax.set_title("viscous-torus-1d (manufactured)")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    save(fig, out_dir / "reference_convergence.png", dpi=120)
    return rows


def run(out_dir: Path, quick: bool = False, *, root: Path) -> list[dict]:
    """Targets table (one row per case) and a convergence study with its log-log figure.

    Args:
        out_dir: where ``reference_convergence.png`` and ``reference_convergence.json`` go.
        quick: reduced grids (a smoke test under a minute).
        root: the checkout holding ``problems/``.

    Returns:
        The targets rows (problem, scheme, grid, seconds, newton_iters, errors, target, met).
    """
    out_dir = Path(out_dir)
    if quick:
        cases = [
            ("ergodic_torus_1d_hamiltonian.py", "exact", {}, {"grid": 200}),
            ("viscous_torus_1d.py", "err <= 1e-4", {"error": 1e-4}, {"grid": 800}),
            ("viscous_torus_2d.py", "err <= 1e-3 (Richardson)", {"error": 1e-3}, {"grid": 64}),
            ("nonseparable_torus_2d.py", "exact", {}, {"grid": 32}),
            ("fh_torus_1d.py", "runs", {}, {"grid": 50}),
            ("fh_box_1d.py", "runs", {}, {"grid": 50}),
            ("manufactured_fh_torus_1d.py", "runs (generic)", {}, {"grid": 40}),
        ]
        sizes = (50, 100, 200)
    else:
        cases = [
            (
                "ergodic_torus_1d_hamiltonian.py",
                "< 1 s, 2,000 points",
                {"seconds": 1},
                {"grid": 2000, "richardson": False},
            ),
            (
                "viscous_torus_1d.py",
                "< 1 s, 2,000 points",
                {"seconds": 1},
                {"grid": 2000, "richardson": False},
            ),
            ("viscous_torus_1d.py", "default: err <= 1e-4", {"error": 1e-4}, {}),
            (
                "viscous_torus_1d.py",
                "generic default: err <= 1e-4",
                {"error": 1e-4},
                {"scheme": "generic"},
            ),
            (
                "viscous_torus_2d.py",
                "< 30 s, 256^2",
                {"seconds": 30},
                {"grid": 256, "richardson": False},
            ),
            ("viscous_torus_2d.py", "default: err <= 1e-3", {"error": 1e-3}, {}),
            (
                "nonseparable_torus_2d.py",
                "< 30 s, 256^2, exact",
                {"seconds": 30, "error": 1e-10},
                {"grid": 256, "richardson": False},
            ),
            (
                "fh_torus_1d.py",
                "< 20 s, 400 x 400",
                {"seconds": 20},
                {"grid": 400, "time_steps": 400, "richardson": False},
            ),
            ("fh_torus_1d.py", "default: err <= 1e-4", {"error": 1e-4}, {}),
            ("fh_box_1d.py", "default: err <= 1e-4", {"error": 1e-4}, {}),
            (
                "fh_torus_2d.py",
                "< 60 s, 64 x 64 x 64",
                {"seconds": 60},
                {"grid": 64, "time_steps": 64, "richardson": False},
            ),
            ("fh_torus_2d.py", "default: err <= 1e-3", {"error": 1e-3}, {}),
            (
                "manufactured_fh_torus_1d.py",
                "generic default: err <= 1e-4, <= 60 s",
                {"error": 1e-4, "seconds": 60},
                {},
            ),
            (
                "manufactured_fh_torus_2d.py",
                "generic default: err <= 1e-3, <= 60 s",
                {"error": 1e-3, "seconds": 60},
                {},
            ),
        ]
        sizes = (50, 100, 200, 400, 800, 1600)
    rows = [_row(root, f, target, limits, **opts) for f, target, limits, opts in cases]
    conv = convergence(out_dir, sizes, root=root)
    atomic_write_json(out_dir / "reference_convergence.json", conv)
    return rows
