"""Benchmark ``defaults``: the default options on problems they were not tuned on.

Double well, viscous 1-D/2-D and non-separable 2-D; seed 0, both methods; target m_rel_l2 <= 5e-2
in <= 10 min (columns: see :func:`._common.seed_benchmark`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._common import seed_benchmark

_UNSEEN = (
    "ergodic_torus_1d_double_well.py",
    "viscous_torus_1d.py",
    "nonseparable_torus_2d.py",
    "viscous_torus_2d.py",
)


def run(out_dir: Path, quick: bool = False, *, root: Path) -> list[dict[str, Any]]:
    """The default options on problems they were not tuned on (seed 0, both methods)."""
    rows = []
    for name in _UNSEEN[:1] if quick else _UNSEEN:
        for method in ("adversarial", "joint"):
            rows += seed_benchmark(
                root, name, {"m_rel_l2": 5e-2}, 600.0, seeds=(0,), method=method, quick=quick
            )[:1]
    return rows
