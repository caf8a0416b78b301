"""Data-parallel training: 2 CPU processes (gloo, launched by torchrun) take the steps of one process
on the same global batch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SEED = str(ROOT / "problems" / "ergodic_torus_1d.py")
FAMILY = str(ROOT / "problems" / "ergodic_torus_nd.py")
HUTCHINSON_2D = ("--set", "d=2", "--option", "derivatives='hutchinson'")


def _solve(out: Path, processes: int, problem: str, method: str, extra: tuple[str, ...]) -> dict:
    launcher = (
        [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        + [f"--nproc_per_node={processes}", "-m", "mfgsolve"]
        if processes > 1
        else [sys.executable, "-m", "mfgsolve"]
    )
    args = ["solve", problem, "--method", method, "--iterations", "30", "--batch-size", "256"]
    args += ["--dtype", "float64", "--option", "eval_every=10", "--out", str(out), "--quiet"]
    args += list(extra)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    done = subprocess.run(launcher + args, env=env, capture_output=True, text=True, timeout=300)
    # 30 iterations: the files are written, then the verdict "not converged" exits 1
    assert done.returncode in (0, 1), done.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    history = (out / "history.csv").read_text().splitlines()
    return {"metrics": metrics, "history": history}


@pytest.mark.parametrize(
    "problem, method, extra",
    [(SEED, "joint", ()), (FAMILY, "adversarial", HUTCHINSON_2D)],
    ids=["joint", "adversarial-hutchinson-2d"],
)
def test_two_processes_match_one_process_with_the_same_global_batch(
    tmp_path, problem, method, extra
):
    """Also with Hutchinson probes (drawn for the global batch, then sharded like the points)."""
    one = _solve(tmp_path / "one", 1, problem, method, extra)
    two = _solve(tmp_path / "two", 2, problem, method, extra)
    for key in ("m_rel_l2", "u_l2", "constant", "hjb_residual", "fp_residual"):
        assert two["metrics"][key] == pytest.approx(one["metrics"][key], rel=1e-9, abs=1e-12)
    assert two["metrics"]["iterations"] == 30
    assert len(two["history"]) == len(one["history"])  # the same evaluations were recorded


def test_the_lbfgs_finish_is_refused_in_a_data_parallel_run(tmp_path):
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    launcher += ["--nproc_per_node=2", "-m", "mfgsolve"]
    args = ["solve", SEED, "--iterations", "5", "--out", str(tmp_path / "run"), "--quiet"]
    args += ["--option", "finish='lbfgs'"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    done = subprocess.run(launcher + args, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "is not available in a data-parallel run" in done.stderr
    assert "fix: finish in one process" in done.stderr
