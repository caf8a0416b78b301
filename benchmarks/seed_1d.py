"""Benchmark ``seed-1d``: the seed problem in 1-D, 3 seeds, adversarial and joint.

Targets: m_rel_l2, u_l2 <= 1e-2 and |H error| <= 1e-3 in <= 60 s (columns: see
:func:`._common.seed_benchmark`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._common import seed_benchmark


def run(out_dir: Path, quick: bool = False, *, root: Path) -> list[dict[str, Any]]:
    targets = {"m_rel_l2": 1e-2, "u_l2": 1e-2, "constant_abs": 1e-3}
    rows = seed_benchmark(root, "ergodic_torus_1d.py", targets, 60.0, quick=quick)
    return rows + seed_benchmark(
        root, "ergodic_torus_1d.py", targets, 60.0, method="joint", quick=quick
    )
