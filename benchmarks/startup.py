"""Benchmark ``startup``: how long the command line and ``import mfgsolve`` take to start.

Each command runs ``REPEATS`` times in a fresh interpreter (one thread); the table has the median
wall time. Targets: ``mfgsolve --help`` and ``mfgsolve CMD --help`` <= 0.5 s; ``mfgsolve check`` of
the seed file and ``import mfgsolve`` each <= 1.2 x ``python -c "import torch, sympy"`` (the two
libraries the lowering needs, measured in the same run).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ._common import problem_path

REPEATS = 5
HELP_TARGET_S = 0.5
RATIO_TARGET = 1.2


def _median_seconds(argv: list[str], cwd: Path, repeats: int) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run(out_dir: Path, quick: bool = False, *, root: Path) -> list[dict[str, Any]]:
    """Median start-up times of the commands, against their targets."""
    repeats = 1 if quick else REPEATS
    py = sys.executable
    cli = [py, "-m", "mfgsolve"]
    seed = str(problem_path(root, "ergodic_torus_1d.py"))
    base = _median_seconds([py, "-c", "import torch, sympy"], root, repeats)
    cases = [
        ("mfgsolve --help", [*cli, "--help"], HELP_TARGET_S, None),
        ("mfgsolve solve --help", [*cli, "solve", "--help"], HELP_TARGET_S, None),
        ("mfgsolve bench --help", [*cli, "bench", "--help"], HELP_TARGET_S, None),
        ("mfgsolve check (seed file)", [*cli, "check", seed], None, RATIO_TARGET),
        ("import mfgsolve", [py, "-c", "import mfgsolve"], None, RATIO_TARGET),
        ("from mfgsolve import solve", [py, "-c", "from mfgsolve import solve"], None, None),
    ]
    rows: list[dict[str, Any]] = [
        {"command": 'python -c "import torch, sympy"', "seconds": round(base, 3), "target": "-"}
    ]
    for name, argv, limit, ratio in cases:
        seconds = _median_seconds(argv, root, repeats)
        row: dict[str, Any] = {
            "command": name,
            "seconds": round(seconds, 3),
            "x_torch_sympy": round(seconds / base, 2),
        }
        if limit is not None:
            row["target"] = f"<= {limit} s"
            row["met"] = seconds <= limit
        elif ratio is not None:
            row["target"] = f"<= {ratio} x torch+sympy"
            row["met"] = seconds <= ratio * base
        else:
            row["target"] = "-"
        rows.append(row)
    return rows
