"""Benchmarks: accuracy and speed targets, measured on the machine at hand, written as tables.

``mfgsolve bench NAME`` runs one of :data:`BENCHMARKS`, prints a table and writes ``bench.json``
(and figures) into the output folder. Each benchmark is a function ``run(out_dir, quick) -> rows``.
"""

from __future__ import annotations

import importlib
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ._io import atomic_write_json

__all__ = ["BENCHMARKS", "run_benchmark", "format_table", "seed_benchmark"]

_PROBLEMS = Path(__file__).resolve().parent.parent / "problems"


def _problem_path(name: str) -> Path:
    return _PROBLEMS / name


def seed_benchmark(
    problem_file: str,
    targets: dict[str, float],
    time_target: float,
    seeds: tuple[int, ...] = (0, 1, 2),
    method: str = "adversarial",
    quick: bool = False,
    **options: Any,
) -> list[dict[str, Any]]:
    """Solve ``problem_file`` with default options for each seed; one row per seed plus the median.

    Columns: iterations and seconds to reach ``m_rel_l2 <= targets['m_rel_l2']`` (first evaluation
    that does), final m_rel_l2, u_l2, constant error, total seconds, s/iteration, and whether each
    target was met.
    """
    from .problem import load_problem
    from .solution import solve

    problem = load_problem(_problem_path(problem_file))
    if quick:  # a smoke test: one seed, 200 iterations
        seeds = seeds[:1]
        options = {**options, "iterations": min(200, options.get("iterations") or 200)}
    # One-time process costs are not solver time: the first optimiser a process creates imports
    # torch._dynamo (about 4 s here), which would otherwise be charged to the first seed only.
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    rows = []
    for seed in seeds:
        t0 = time.perf_counter()
        sol = solve(problem, method=method, seed=seed, progress=False, **options)
        seconds = time.perf_counter() - t0
        last = sol.history[-1]
        reach = next(
            (h for h in sol.history if h.get("m_rel_l2", 1.0) <= targets["m_rel_l2"]), None
        )
        row = {
            "problem": problem.name,
            "method": method,
            "seed": seed,
            "iterations": sol.info["iterations"],
            "seconds": round(seconds, 2),
            "s_per_it": round(seconds / max(1, sol.info["iterations"]), 5),
            "it_to_target": reach["iteration"] if reach else None,
            "s_to_target": round(reach["seconds"], 2) if reach else None,
            "m_rel_l2": last.get("m_rel_l2"),
            "u_l2": last.get("u_l2"),
            "constant_abs": last.get("constant_abs"),
        }
        met = seconds <= time_target
        for key, bound in targets.items():
            met = met and row.get(key) is not None and row[key] <= bound
        row["met"] = bool(met)
        rows.append(row)
    summary = {"problem": problem.name, "method": method, "seed": "median"}
    for key in (
        "iterations",
        "seconds",
        "s_per_it",
        "it_to_target",
        "s_to_target",
        "m_rel_l2",
        "u_l2",
        "constant_abs",
    ):
        vals = [r[key] for r in rows if r[key] is not None]
        summary[key] = statistics.median(vals) if vals else None
    summary["met"] = f"{sum(r['met'] for r in rows)}/{len(rows)}"
    rows.append(summary)
    return rows


def _seed_1d(out_dir: Path, quick: bool = False) -> list[dict[str, Any]]:
    targets = {"m_rel_l2": 1e-2, "u_l2": 1e-2, "constant_abs": 1e-3}
    rows = seed_benchmark("ergodic_torus_1d.py", targets, 60.0, quick=quick)
    return rows + seed_benchmark("ergodic_torus_1d.py", targets, 60.0, method="joint", quick=quick)


def _seed_4d(out_dir: Path, quick: bool = False) -> list[dict[str, Any]]:
    rows = seed_benchmark("ergodic_torus_4d.py", {"m_rel_l2": 5e-2}, 600.0, quick=quick)
    return rows + seed_benchmark(
        "ergodic_torus_4d.py", {"m_rel_l2": 5e-2}, 600.0, method="joint", quick=quick
    )


_UNSEEN = (
    "ergodic_torus_1d_double_well.py",
    "viscous_torus_1d.py",
    "nonseparable_torus_2d.py",
    "viscous_torus_2d.py",
)


def _defaults(out_dir: Path, quick: bool = False) -> list[dict[str, Any]]:
    """The default options on problems they were not tuned on (seed 0, both methods)."""
    rows = []
    for name in _UNSEEN[:1] if quick else _UNSEEN:
        for method in ("adversarial", "joint"):
            rows += seed_benchmark(
                name, {"m_rel_l2": 5e-2}, 600.0, seeds=(0,), method=method, quick=quick
            )[:1]
    return rows


def _from_module(module: str) -> Callable[[Path, bool], list[dict[str, Any]]]:
    def run(out_dir: Path, quick: bool = False) -> list[dict[str, Any]]:
        return importlib.import_module(module).run(out_dir, quick=quick)

    return run


BENCHMARKS: dict[str, tuple[Callable[[Path, bool], list[dict[str, Any]]], str]] = {
    "seed-1d": (
        _seed_1d,
        "seed problem in 1-D, 3 seeds: m_rel_l2, u_l2 <= 1e-2, |H error| <= 1e-3 in <= 60 s",
    ),
    "seed-4d": (
        _seed_4d,
        "seed problem in 4-D, 3 seeds, adversarial and joint: m_rel_l2 <= 5e-2 in <= 10 min",
    ),
    "defaults": (
        _defaults,
        "default options on problems they were not tuned on (double well, viscous 1-D/2-D, non-separable 2-D)",
    ),
    "lowering": (
        _from_module("mfgsolve._lowering_bench"),
        "step time with sympy-lowered vs hand-written residuals (target ratio <= 1.10)",
    ),
    "derivatives": (
        _from_module("mfgsolve._derivatives_bench"),
        "derivative engines (reverse mode, torch.func, Hutchinson): gradient + Laplacian time, d = 1..128",
    ),
    "scaling": (
        _from_module("mfgsolve._scaling_bench"),
        "seed problem family d = 1, 2, 4, 8, 16 and the seed 4-D problem: time, step time, errors",
    ),
    "finite-horizon": (
        _from_module("mfgsolve._fh_bench"),
        "finite-horizon MFGs: LQ mean-coupled, manufactured 1-D/2-D, crowd motion vs reference",
    ),
    "reference": (
        _from_module("mfgsolve.reference.bench"),
        "finite-difference reference: accuracy, order, speed",
    ),
    "dynamics": (
        _from_module("mfgsolve.dynamics.bench"),
        "SDE model of GAN training: weak-error slopes; WGAN W1",
    ),
    "fbsde": (
        _from_module("mfgsolve.fbsde.bench"),
        "FBSDE solvers in d = 100: error of u(0, x0) and time",
    ),
}


def format_table(rows: list[dict[str, Any]]) -> str:
    """Rows of dicts as a fixed-width text table."""
    if not rows:
        return "(no rows)"
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]

    def fmt(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.4g}"
        return str(v)

    cells = [[fmt(r.get(k)) for k in keys] for r in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    lines = [
        "  ".join(k.ljust(w) for k, w in zip(keys, widths)),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def run_benchmark(name: str, out_dir: Path, quick: bool = False) -> list[dict[str, Any]]:
    """Run benchmark ``name``, write ``bench.json`` into ``out_dir`` and return its rows."""
    if name not in BENCHMARKS:
        raise KeyError(name)
    fn, _ = BENCHMARKS[name]
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows = fn(out_dir, quick)
    meta = {
        "benchmark": name,
        "quick": quick,
        "seconds": round(time.perf_counter() - t0, 2),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },
        "rows": rows,
    }
    atomic_write_json(out_dir / "bench.json", meta)
    return rows
