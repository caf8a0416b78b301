"""Benchmark ``verdict``: does the convergence verdict agree with the exact error?

Runs with default options and runs made to fail on purpose, on problems with exact solutions:
every ergodic and finite-horizon problem of ``CASES``, each (a) with its defaults, (b) with far
too few iterations (``FEW``) and (c) with a learning rate 30x its default. A run counts as
converged when its exact m_rel_l2 <= 5e-2 (:data:`._common.VERDICT_TRUTH`); the verdict
(:mod:`mfgsolve.metrics.verdict`) sees only residuals, masses and the training record. Rows:
one per run, then the tally of agreements, false alarms (verdict "not converged", exact error
fine) and misses (verdict "converged", exact error not).

The seed and defaults benchmarks report the verdict of their runs too (``verdict_agrees``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ._common import VERDICT_TRUTH, problem_path

FEW = 40  # iterations of a run stopped far too early
LR_FACTOR = 30.0

#: (problem file, method); seed 0
CASES: tuple[tuple[str, str], ...] = (
    ("ergodic_torus_1d.py", "adversarial"),
    ("ergodic_torus_1d.py", "joint"),
    ("ergodic_torus_1d_double_well.py", "adversarial"),
    ("viscous_torus_1d.py", "adversarial"),
    ("viscous_torus_1d.py", "joint"),
    ("nonseparable_torus_2d.py", "adversarial"),
    ("viscous_torus_2d.py", "joint"),
    ("lq_mean_1d.py", "adversarial"),
    ("manufactured_fh_torus_1d.py", "adversarial"),
    ("manufactured_fh_torus_2d.py", "adversarial"),
)


def _run(root: Path, name: str, method: str, case: str) -> dict[str, Any]:
    from mfgsolve import compare, load_problem, solve
    from mfgsolve.errors import TrainingDiverged
    from mfgsolve.options import SolverOptions

    problem = load_problem(problem_path(root, name))
    options: dict[str, Any] = {}
    if case == "few iterations":
        options["iterations"] = FEW
    elif case == f"lr x{LR_FACTOR:g}":
        default = SolverOptions.build(problem, {}, method=method).optimiser.lr
        options["lr"] = default * LR_FACTOR
    t0 = time.perf_counter()
    row: dict[str, Any] = {"problem": problem.name, "method": method, "case": case}
    try:
        sol = solve(problem, method=method, seed=0, progress=False, **options)
    except TrainingDiverged:  # reported as a failure: the verdict is then trivially right
        row.update(m_rel_l2=None, converged=False, exact_ok=False, agrees=True, reason="diverged")
        return row
    errors = compare(sol)
    row["seconds"] = round(time.perf_counter() - t0, 1)
    row["m_rel_l2"] = errors["m_rel_l2"]
    row["u_rel"] = errors.get("u_rel_l2", errors.get("u_l2"))
    row["hjb_rel"] = sol.verdict.checks["hjb_relative"]
    row["fp_rel"] = sol.verdict.checks["fp_relative"]
    row["converged"] = sol.converged
    row["exact_ok"] = errors["m_rel_l2"] <= VERDICT_TRUTH
    row["agrees"] = row["converged"] == row["exact_ok"]
    return row


def run(out_dir: Path, quick: bool = False, *, root: Path) -> list[dict[str, Any]]:
    """One row per run, then the tally."""
    cases = CASES[:2] if quick else CASES
    kinds = (
        ("defaults", "few iterations")
        if quick
        else (
            "defaults",
            "few iterations",
            f"lr x{LR_FACTOR:g}",
        )
    )
    rows = [_run(root, name, method, case) for name, method in cases for case in kinds]
    agree = sum(r["agrees"] for r in rows)
    alarms = sum(not r["converged"] and r["exact_ok"] for r in rows)
    misses = sum(r["converged"] and not r["exact_ok"] for r in rows)
    rows.append(
        {
            "problem": "all",
            "case": f"{len(rows)} runs",
            "agrees": f"{agree}/{len(rows)} ({100 * agree / len(rows):.0f} %)",
            "reason": f"false alarms {alarms}, misses {misses}",
            "met": agree >= 0.95 * len(rows),
        }
    )
    return rows
