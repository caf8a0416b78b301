"""Helpers shared by the benchmarks: where the problem files are, and the seed benchmark."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import torch

__all__ = ["VERDICT_TRUTH", "problem_path", "seed_benchmark", "step_seconds"]

#: the exact error below which a run counts as converged when the verdict is checked
VERDICT_TRUTH = 5e-2


def problem_path(root: Path, name: str) -> Path:
    """The problem file ``name`` of the checkout ``root`` (``root/problems/name``)."""
    return Path(root) / "problems" / name


def step_seconds(problem, method: str, repeats: int = 20, **options: Any) -> float:
    """Median seconds of one training iteration (no evaluation), default options, seed 0."""
    from mfgsolve.options import SolverOptions
    from mfgsolve.train import Trainer

    opts = SolverOptions.build(problem, {"iterations": repeats + 3, **options}, method=method)
    trainer = Trainer(problem, opts, 0, "cpu", torch.float32)
    st = trainer.init_state()
    times = []
    for k in range(repeats + 3):
        t0 = time.perf_counter()
        trainer.iterate(st)
        if k >= 3:  # warm-up iterations excluded
            times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def seed_benchmark(
    root: Path,
    problem_file: str,
    targets: dict[str, float],
    time_target: float,
    seeds: tuple[int, ...] = (0, 1, 2),
    method: str = "adversarial",
    quick: bool = False,
    settings: dict[str, Any] | None = None,
    **options: Any,
) -> list[dict[str, Any]]:
    """Solve ``problem_file`` (in ``root/problems``; a family with ``settings``) with default
    options for each seed; one row per seed plus the median.

    Columns: iterations and seconds to reach ``m_rel_l2 <= targets['m_rel_l2']`` (first evaluation
    that does), final m_rel_l2, u_l2, constant error, total seconds, s/iteration, and whether each
    target was met.
    """
    from mfgsolve import load_problem, solve

    problem = load_problem(problem_path(root, problem_file), **(settings or {}))
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
        row["converged"] = sol.converged  # the verdict, judged without the exact solution
        row["verdict_agrees"] = sol.converged == (
            row["m_rel_l2"] is not None and row["m_rel_l2"] <= VERDICT_TRUTH
        )
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
    summary["verdict_agrees"] = f"{sum(r['verdict_agrees'] for r in rows)}/{len(rows)}"
    rows.append(summary)
    return rows
