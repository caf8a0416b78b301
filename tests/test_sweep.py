"""Sweeps: the grid runs, writes its table and figure, and resumes without re-running."""

import json
from pathlib import Path

from mfgsolve.sweep import oscillation, run_sweep

ROOT = Path(__file__).resolve().parent.parent


def test_oscillation_measure():
    assert oscillation([1e-1, 1e-2, 1e-3, 1e-4]) == 1.0  # steady decay: one decade per record
    assert oscillation([1e-2, 1e-1, 1e-2, 1e-1, 1e-2]) == 1.0
    assert oscillation([1e-2] * 6) == 0.0


def test_sweep_runs_the_grid_and_resumes(tmp_path):
    problem = ROOT / "problems" / "ergodic_torus_1d.py"
    rows = run_sweep(
        str(problem), [1e-3, 2e-3], [32], 1, tmp_path, jobs=1, iterations=6, eval_every=3
    )
    assert [(r["lr"], r["batch_size"], r["seed"]) for r in rows] == [(1e-3, 32, 0), (2e-3, 32, 0)]
    assert all(r["m_rel_l2"] is not None for r in rows)
    assert json.loads((tmp_path / "sweep.json").read_text()) == rows
    assert (tmp_path / "sweep.png").stat().st_size > 10_000
    marker = tmp_path / "lr0.001-bs32-seed0" / "metrics.json"
    marker.write_text(json.dumps({**rows[0], "m_rel_l2": 123.0}))  # a finished run is not run again
    again = run_sweep(
        str(problem), [1e-3, 2e-3], [32], 1, tmp_path, jobs=1, iterations=6, eval_every=3
    )
    assert again[0]["m_rel_l2"] == 123.0 and again[1] == rows[1]
