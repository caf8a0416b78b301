"""Benchmark ``high-d``: d = 10, 32, 64, 100 against closed forms, default options.

Families (docs/high_dimension.md):
- ``problems/ergodic_torus_nd.py`` (the seed problem on T^d, first order);
- ``problems/lq_ergodic_rd.py`` (ergodic linear-quadratic on R^d, a stationary Gaussian);
- ``problems/lq_mean_rd.py`` (finite-horizon linear-quadratic on R^d coupled through the mean):
  its rows record that the network solver refuses finite-horizon problems on Rd (one line).

Each row runs in a fresh process (so that its peak resident memory is its own): seconds,
s/iteration (evaluations included), the median training step (no evaluation), peak RSS, the
errors of :func:`mfgsolve.compare` with their standard errors, and the verdict. Extra rows: seeds
1 and 2 at d = 100, and the stochastic trace (``derivatives="hutchinson"``, the default from
d = 64) against the exact engine (``"autograd"``) at d = 64.

Targets (the issue "d = 100 on a 2-core CPU"): torus family d = 100 m_rel_l2 <= 5e-2 within 30
minutes; LQ families d = 100 u and m relative errors <= 1e-2 within 30 minutes (standard errors
<= 1e-3); step time at d = 100 <= 3x that at d = 10; peak RSS <= 4 GB; the stochastic trace's
error within 10 % of the exact engine's at d = 64.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ._common import step_seconds

FAMILIES = {
    "torus": "ergodic_torus_nd.py",
    "lq-ergodic": "lq_ergodic_rd.py",
    "lq-mean": "lq_mean_rd.py",
}
DIMS = (10, 32, 64, 100)
TIME_S = 1800.0


def _peak_rss_gb() -> float:
    """This process's peak resident memory in GB (ru_maxrss is in KiB on Linux)."""
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1e9


def _row(job: dict[str, Any]) -> dict[str, Any]:
    """One solve in this (fresh) process."""
    import torch

    from mfgsolve import compare, load_problem, solve
    from mfgsolve.errors import MfgsolveError
    from mfgsolve.options import SolverOptions

    torch.set_num_threads(1)
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # one-time import cost, not solver time
    path = Path(job["root"]) / "problems" / FAMILIES[job["family"]]
    row: dict[str, Any] = {"family": job["family"], "d": job["d"], "seed": job["seed"]}
    t0 = time.perf_counter()
    problem = load_problem(path, d=job["d"])
    row["load_s"] = round(time.perf_counter() - t0, 1)
    options = dict(job["options"])
    if "iterations" in job:
        options["iterations"] = job["iterations"]
    try:
        opts = SolverOptions.build(problem, options)
    except MfgsolveError as exc:
        return {**row, "status": f"refused: {str(exc)[:120]}"}
    row["engine"] = opts.engine
    step_options = {k: v for k, v in options.items() if k != "iterations"}
    t0 = time.perf_counter()
    sol = solve(problem, seed=job["seed"], progress=False, **options)
    seconds = time.perf_counter() - t0
    metrics = compare(sol)
    row.update(
        {
            "method": sol.info.get("method"),
            "iterations": sol.info["iterations"],
            "seconds": round(seconds, 1),
            "s_per_it": round(seconds / max(1, sol.info["iterations"]), 4),
            "step_s": round(
                step_seconds(problem, sol.info["method"], repeats=10, **step_options), 4
            ),
            "peak_rss_gb": round(_peak_rss_gb(), 2),
        }
    )
    for key in ("m_rel_l2", "m_rel_l2_se", "u_rel_l2", "u_rel_l2_se", "u_l2", "u_l2_se"):
        if key in metrics:
            row[key] = float(f"{metrics[key]:.3g}")
    if "constant_abs" in metrics:
        row["constant_abs"] = float(f"{metrics['constant_abs']:.3g}")
    row["verdict"] = "converged" if sol.converged else "not converged"
    row["status"] = "ok"
    return row


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """``_row`` in a fresh Python process (nothing shared with this one); its last line of
    output is the row as JSON."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.high_d", json.dumps(job)],
        cwd=job["root"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"family": job["family"], "d": job["d"], "seed": job["seed"], "status": last}
    return json.loads(done.stdout.strip().splitlines()[-1])


def jobs(root: Path, quick: bool = False) -> list[dict[str, Any]]:
    """The rows' settings (quick: d = 2 and 4, 20 iterations)."""
    dims = (2, 4) if quick else DIMS
    extra = {"iterations": 20} if quick else {}
    out = [
        {"root": str(root), "family": f, "d": d, "seed": 0, "options": {}, **extra}
        for f in FAMILIES
        for d in dims
    ]
    if not quick:
        for f in ("torus", "lq-ergodic"):
            out += [
                {"root": str(root), "family": f, "d": 100, "seed": s, "options": {}} for s in (1, 2)
            ]
            out.append(
                {
                    "root": str(root),
                    "family": f,
                    "d": 64,
                    "seed": 0,
                    "options": {"derivatives": "autograd"},
                }
            )
    return out


def run(out_dir: Path, quick: bool = False, *, root: Path) -> list[dict[str, Any]]:
    """Every job, one process each, then the step-time ratio rows."""
    rows = []
    for job in jobs(root, quick):
        rows.append(run_job(job))
        if job["options"]:
            rows[-1]["options"] = ", ".join(f"{k}={v}" for k, v in job["options"].items())
        print(rows[-1], flush=True)
    for family in FAMILIES:
        steps = {
            r["d"]: r["step_s"]
            for r in rows
            if r["family"] == family and r.get("step_s") and r["seed"] == 0 and "options" not in r
        }
        low, high = min(steps, default=None), max(steps, default=None)
        if low is not None and high != low:
            rows.append(
                {
                    "family": family,
                    "d": f"{high} / {low}",
                    "step_s": round(steps[high] / steps[low], 2),
                    "status": "step-time ratio (target <= 3)",
                }
            )
    return rows


if __name__ == "__main__":  # one row, in its own process (run_job)
    print(json.dumps(_row(json.loads(sys.argv[1]))))
