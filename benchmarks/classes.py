"""Benchmark ``classes``: problem classes beyond the ergodic and finite-horizon MFG, with
manufactured solutions, networks at their default options and the finite-difference reference.

Rows: the discounted stationary MFG (``problems/discounted_torus.py``), the ergodic MFG of two
populations (``problems/two_populations_torus.py``), the finite-horizon MFG of two populations
(``problems/two_populations_fh_torus.py``) and the finite-horizon MFG with an exit
(``problems/exit_box.py``; in 2-D also with a periodic axis), each in d = 1 and 2, seeds 0, 1, 2
(default method), and their references at default settings. With several populations the errors
are the worst population's. Targets (networks): m_rel_l2 <= 1e-2 and u_rel_l2 <= 2e-2 within 15
minutes; reference: m_rel_l2 <= 1e-4 (1-D), 1e-3 (2-D) in <= 60 s.

Literature rows (no closed form; the network against the reference): the evacuation of a room
through a door (``problems/evacuation_room_2d.py``, reference with ``time_steps=64``), seeds 0, 1,
2: m_rel_l2 <= 3e-2 and the time by which 90 % have left within 2 % of the reference's.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from ._common import VERDICT_TRUTH, problem_path

# (problem file, settings)
CASES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("discounted_torus.py", {"d": 1}),
    ("discounted_torus.py", {"d": 2}),
    ("two_populations_torus.py", {"d": 1}),
    ("two_populations_torus.py", {"d": 2}),
    ("two_populations_fh_torus.py", {"d": 1}),
    ("two_populations_fh_torus.py", {"d": 2}),
    ("exit_box.py", {"d": 1}),
    ("exit_box.py", {"d": 2}),
    ("exit_box.py", {"d": 2, "y": "periodic"}),
)
# (problem file, reference options, targets: network against the reference)
LITERATURE: tuple[tuple[str, dict[str, Any], dict[str, float]], ...] = (
    ("evacuation_room_2d.py", {"time_steps": 64}, {"m_rel_l2": 3e-2, "exit_time_90_rel": 2e-2}),
)
NETWORK_TARGETS = {"m_rel_l2": 1e-2, "u_rel_l2": 2e-2}
NETWORK_SECONDS = 900.0
REFERENCE_TARGET = {1: 1e-4, 2: 1e-3}
REFERENCE_SECONDS = 60.0


def _network_row(problem, seed: int, quick: bool) -> dict[str, Any]:
    from mfgsolve import compare, solve

    t0 = time.perf_counter()
    sol = solve(problem, seed=seed, progress=False, iterations=200 if quick else None)
    seconds = time.perf_counter() - t0
    err = compare(sol)
    met = seconds <= NETWORK_SECONDS and all(
        err.get(k, float("inf")) <= v for k, v in NETWORK_TARGETS.items()
    )
    return {
        "problem": problem.name,
        "solver": sol.info["method"],
        "seed": seed,
        "seconds": round(seconds, 2),
        "m_rel_l2": err["m_rel_l2"],
        "u_rel_l2": err.get("u_rel_l2"),
        "converged": sol.converged,
        "verdict_agrees": sol.converged == (err["m_rel_l2"] <= VERDICT_TRUTH),
        "met": bool(met),
    }


def _reference_row(problem) -> dict[str, Any]:
    from mfgsolve import compare, reference_solve

    t0 = time.perf_counter()
    ref = reference_solve(problem)
    seconds = time.perf_counter() - t0
    err = compare(ref)
    bound = REFERENCE_TARGET[problem.dim]
    met = seconds <= REFERENCE_SECONDS and err["m_rel_l2"] <= bound and err["u_l2"] <= bound
    return {
        "problem": problem.name,
        "solver": f"reference ({ref.info['scheme']}, {'x'.join(map(str, ref.info['grid']))})",
        "seed": "-",
        "seconds": round(seconds, 2),
        "m_rel_l2": err["m_rel_l2"],
        "u_rel_l2": err.get("u_rel_l2"),
        "observed_order": ref.info.get("observed_order_m"),
        "met": bool(met),
    }


def _literature_rows(problem, options: dict, targets: dict, seeds, quick: bool) -> list[dict]:
    """The reference (with ``options``) and, per seed, the network against it."""
    from mfgsolve import compare, reference_solve, solve

    t0 = time.perf_counter()
    ref = reference_solve(problem, **options)
    rows: list[dict[str, Any]] = [
        {
            "problem": problem.name,
            "solver": f"reference ({ref.info['scheme']}, {'x'.join(map(str, ref.info['grid']))})",
            "seed": "-",
            "seconds": round(time.perf_counter() - t0, 2),
            "estimate_m_rel_l2": ref.error_estimate.get("m_rel_l2"),
            **{
                k: ref.info[k]
                for k in ("mass_left", "exit_time_50", "exit_time_90")
                if k in ref.info
            },
        }
    ]
    for seed in seeds:
        t0 = time.perf_counter()
        sol = solve(problem, seed=seed, progress=False, iterations=200 if quick else None)
        seconds = time.perf_counter() - t0
        err = compare(sol, ref)
        keys = ("m_rel_l2", "u_rel_l2", "exit_time_50", "exit_time_90", "exit_time_50_rel")
        rows.append(
            {
                "problem": problem.name,
                "solver": sol.info["method"],
                "seed": seed,
                "seconds": round(seconds, 2),
                **{k: err.get(k) for k in (*keys, *targets)},
                "converged": sol.converged,
                "met": bool(
                    seconds <= NETWORK_SECONDS
                    and all(err.get(k, float("inf")) <= v for k, v in targets.items())
                ),
            }
        )
    return rows


def run(out_dir: Path, quick: bool = False, *, root: Path) -> list[dict[str, Any]]:
    """The network rows (3 seeds; quick: seed 0, 200 iterations, d = 1) and the reference rows;
    the literature rows (not in quick)."""
    from mfgsolve import load_problem

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # one-time import, not solver time
    rows = []
    for name, settings in [c for c in CASES if c[1]["d"] == 1] if quick else CASES:
        problem = load_problem(problem_path(root, name), **settings)
        rows.append(_reference_row(problem))
        for seed in (0,) if quick else (0, 1, 2):
            rows.append(_network_row(problem, seed, quick))
    for name, options, targets in () if quick else LITERATURE:
        problem = load_problem(problem_path(root, name))
        rows += _literature_rows(problem, options, targets, (0, 1, 2), quick)
    return rows
