"""Benchmark ``seed-4d``: the seed problem in 4-D, 3 seeds, adversarial and joint.

Target: m_rel_l2 <= 5e-2 in <= 10 min (columns: see :func:`._common.seed_benchmark`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._common import seed_benchmark


def run(out_dir: Path, quick: bool = False, *, root: Path) -> list[dict[str, Any]]:
    rows = seed_benchmark(root, "ergodic_torus_4d.py", {"m_rel_l2": 5e-2}, 600.0, quick=quick)
    return rows + seed_benchmark(
        root, "ergodic_torus_4d.py", {"m_rel_l2": 5e-2}, 600.0, method="joint", quick=quick
    )
