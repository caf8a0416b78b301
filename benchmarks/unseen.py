"""Benchmark ``unseen``: default options on problems written after the defaults were chosen.

The families of ``problems/unseen/`` (closed-form or manufactured solutions, mixed directions):
first-order and viscous ergodic problems in d = 2, 4, 8, 16 (plane waves in mixed integer
directions, products of cosines, sums of pairwise terms), a non-quadratic Hamiltonian in d = 2, 4,
and finite-horizon problems in d = 1, 2. Default method, seeds 0, 1, 2; target m_rel_l2 <= 5e-2 in
<= 15 minutes per run. Columns: see :func:`._common.seed_benchmark` (which also reports whether
the convergence verdict agrees with the exact error).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._common import seed_benchmark

TARGET = {"m_rel_l2": 5e-2}
TIME_S = 900.0

#: (file in problems/unseen, settings)
CASES: tuple[tuple[str, dict[str, Any]], ...] = (
    *(("plane_waves_nd.py", {"d": d}) for d in (2, 4, 8, 16)),
    *(("cosine_product_nd.py", {"d": d}) for d in (2, 4, 8)),
    *(("pairwise_nd.py", {"d": d}) for d in (4, 8, 16)),
    *(("viscous_plane_waves_nd.py", {"d": d}) for d in (2, 4, 8, 16)),
    ("nonquadratic_nd.py", {"d": 2}),
    ("nonquadratic_nd.py", {"d": 4}),
    ("manufactured_fh_mixed.py", {"d": 1}),
    ("manufactured_fh_mixed.py", {"d": 2}),
)


def run(out_dir: Path, quick: bool = False, *, root: Path) -> list[dict[str, Any]]:
    """Every case with seeds 0, 1, 2 (quick: the d = 2 plane waves, seed 0, 200 iterations)."""
    rows: list[dict[str, Any]] = []
    for name, settings in CASES[:1] if quick else CASES:
        rows += seed_benchmark(
            root,
            f"unseen/{name}",
            TARGET,
            TIME_S,
            quick=quick,
            settings=settings,
        )
    return rows
