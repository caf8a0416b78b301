"""Benchmark of the finite-horizon solver: adversarial vs joint on four problems, several seeds.

Rows (one per problem, method and seed): final time-averaged errors against the exact solution
(LQ: Riccati ODEs; manufactured: closed forms) or the finite-difference reference (crowd motion),
errors at the initial/final times, wall-clock seconds, and the iterations and seconds at which the
run first reached the target accuracy (from the training history, evaluated every ``eval_every``
iterations). Runs single-threaded (``torch.set_num_threads(1)``, restored afterwards): small
networks are faster on one core and do not compete for a shared machine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._common import problem_path

__all__ = ["run", "CASES"]


@dataclass(frozen=True)
class Case:
    """One benchmark problem: file, targets (None: not checked) and the run's options."""

    name: str
    file: str
    target_m: float
    target_u: float | None
    options: dict[str, Any]
    reference_grid: int | None = None  # None: the problem's exact solution; else Richardson on
    # this grid and its neighbours (16, 32, 64 for 32): the first-order 48^2 grid alone differs
    # from the extrapolated reference by 3.5e-2 in m on the crowd problem


CASES = (
    Case("lq-mean-1d", "lq_mean_1d.py", 2e-2, 2e-2, {}),
    Case("manufactured-fh-torus-1d", "manufactured_fh_torus_1d.py", 1e-2, 1e-2, {}),
    Case("manufactured-fh-torus-2d", "manufactured_fh_torus_2d.py", 3e-2, 3e-2, {}),
    Case("crowd-box-2d", "crowd_box_2d.py", 5e-2, None, {}, reference_grid=32),
)


def _first_reaching(history: list[dict], case: Case) -> tuple[int | None, float | None]:
    for h in history:
        ok = h.get("m_rel_l2", np.inf) <= case.target_m
        if case.target_u is not None:
            ok = ok and h.get("u_rel_l2", np.inf) <= case.target_u
        if ok:
            return int(h["iteration"]), float(h["seconds"])
    return None, None


def run_case(
    case: Case,
    out_dir: Path,
    methods: tuple[str, ...],
    seeds: tuple[int, ...],
    quick: bool,
    root: Path,
) -> list[dict]:
    """Train ``case`` with each method and seed; returns the table rows."""
    from mfgsolve import compare, load_problem, reference_solve, solve
    from mfgsolve.plotting import figures

    problem = load_problem(problem_path(root, case.file))
    reference = None
    ref_seconds = 0.0
    if case.reference_grid is not None:
        start = time.perf_counter()
        if quick:
            reference = reference_solve(problem, grid=8)
        else:
            reference = reference_solve(problem, grid=case.reference_grid, richardson=True)
        ref_seconds = time.perf_counter() - start
        problem.exact_solution = reference  # errors in the history are taken against it
    options = dict(case.options)
    if quick:
        options.update(iterations=10, eval_every=5)
    rows = []
    for method in methods:
        for seed in seeds:
            sol = solve(problem, method=method, seed=seed, progress=False, **options)
            metrics = compare(sol)
            its, secs = _first_reaching(sol.history, case)
            row = {
                "problem": case.name,
                "method": method,
                "seed": seed,
                "iterations": int(sol.info["iterations"]),
                "seconds": round(float(sol.info["seconds"]), 1),
                "m_rel_l2": metrics["m_rel_l2"],
                "u_rel_l2": metrics.get("u_rel_l2", float("nan")),
                "m_rel_l2_final": metrics.get("m_rel_l2_final", float("nan")),
                "u_rel_l2_initial": metrics.get("u_rel_l2_initial", float("nan")),
                "target": case.target_m,
                "met": bool(
                    metrics["m_rel_l2"] <= case.target_m
                    and (case.target_u is None or metrics.get("u_rel_l2", 0) <= case.target_u)
                ),
                "iterations_to_target": its if its is not None else -1,
                "seconds_to_target": round(secs, 1) if secs is not None else -1.0,
                "against": "reference" if reference is not None else "exact",
                "reference_seconds": round(ref_seconds, 1),
            }
            rows.append(row)
            if seed == seeds[0]:
                figures(sol, reference, out_dir / case.name / method)
    return rows


def run(
    out_dir: Path,
    quick: bool = False,
    *,
    cases: tuple[str, ...] | None = None,
    methods: tuple[str, ...] = ("adversarial", "joint"),
    seeds: tuple[int, ...] = (0, 1, 2),
    root: Path,
) -> list[dict]:
    """Run the finite-horizon benchmark.

    Args:
        out_dir: folder for the figures (one subfolder per problem and method).
        quick: a smoke test (one seed, 10 iterations, adversarial only, 8^2 reference grid).
        cases: names of the problems to run (default: all of ``CASES``).
        methods, seeds: what to run for each problem (ignored when ``quick``).
        root: the checkout holding ``problems/``.

    Returns:
        One dict per (problem, method, seed).
    """
    out_dir = Path(out_dir)
    names = {c.name for c in CASES}
    unknown = sorted(set(cases or ()) - names)
    if unknown:
        raise ValueError(f"unknown benchmark case(s) {unknown}; fix: use some of {sorted(names)}")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rows: list[dict] = []
        for case in CASES:
            if cases is not None and case.name not in cases:
                continue
            if quick:
                rows += run_case(case, out_dir, ("adversarial",), (0,), True, root)
            else:
                rows += run_case(case, out_dir, tuple(methods), tuple(seeds), False, root)
        return rows
    finally:
        torch.set_num_threads(threads)
