"""Benchmark: the seed problem as the dimension grows (problems/ergodic_torus_nd.py, d = 1 .. 16).

For each d both solvers (adversarial and the joint baseline) run with the default options, seed 0,
and the table reports iterations, seconds, seconds per iteration (evaluations included), the pure
training-step time (no evaluation), the derivative engine, and the final errors against the exact
solution. Two rows solve the seed 4-D problem itself (problems/ergodic_torus_4d.py, amplitude 1).

Targets (issue "high dimension and speed"): seed 4-D m_rel_l2 <= 3e-2 in <= 2e4 iterations and
<= 10 min; d = 16 m_rel_l2 <= 1e-1 in <= 30 min; step time at d = 16 <= 4x the step time at d = 2.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from mfgsolve import solve
from mfgsolve.derivatives import choose_engine
from mfgsolve.options import SolverOptions
from mfgsolve.problem import load_problem

from ._common import problem_path, step_seconds

DIMS = (1, 2, 4, 8, 16)


def _row(problem, method: str, iterations: int, target: float, **options: Any) -> dict[str, Any]:
    t0 = time.perf_counter()
    sol = solve(problem, method=method, seed=0, progress=False, iterations=iterations, **options)
    seconds = time.perf_counter() - t0
    last = sol.history[-1]
    reach = next((h for h in sol.history if h.get("m_rel_l2", 1.0) <= target), None)
    engine = choose_engine(
        SolverOptions.build(problem, options).derivatives.derivatives, problem.dim
    )
    return {
        "problem": problem.name,
        "d": problem.dim,
        "method": method,
        "engine": engine,
        "iterations": sol.info["iterations"],
        "seconds": round(seconds, 1),
        "s_per_it": round(seconds / sol.info["iterations"], 4),
        "step_s": round(step_seconds(problem, method, **options), 4),
        "target": target,
        "it_to_target": reach["iteration"] if reach else None,
        "s_to_target": round(reach["seconds"], 1) if reach else None,
        "m_rel_l2": last.get("m_rel_l2"),
        "u_l2": last.get("u_l2"),
        "constant_abs": last.get("constant_abs"),
    }


def run(out_dir: Path, quick: bool = False, *, root: Path) -> list[dict[str, Any]]:
    """Rows for d in DIMS (family) and the seed 4-D problem, both methods."""
    torch.set_num_threads(1)
    iterations = 40 if quick else 2000
    dims = DIMS[:2] if quick else DIMS
    rows = []
    for d in dims:
        problem = load_problem(problem_path(root, "ergodic_torus_nd.py"), d=d)
        for method in ("adversarial", "joint"):
            rows.append(_row(problem, method, iterations, 1e-1 if d >= 16 else 3e-2))
            print(rows[-1], flush=True)
    if not quick:
        seed4 = load_problem(problem_path(root, "ergodic_torus_4d.py"))
        for method in ("adversarial", "joint"):
            rows.append(_row(seed4, method, iterations, 3e-2))
            print(rows[-1], flush=True)
    steps = {(r["d"], r["method"]): r["step_s"] for r in rows if "nd" in r["problem"]}
    for method in ("adversarial", "joint"):
        if (2, method) in steps and (16, method) in steps:
            rows.append(
                {
                    "problem": "step time d=16 / d=2",
                    "method": method,
                    "step_s": round(steps[(16, method)] / steps[(2, method)], 2),
                    "target": 4.0,
                }
            )
    return rows
