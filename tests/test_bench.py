"""Benchmark plumbing: the hand-written reference residuals match the lowered ones; tables."""

from pathlib import Path

import torch

from mfgsolve._lowering_bench import _HandWrittenTrainer
from mfgsolve.adversarial import SolverOptions, _Trainer
from mfgsolve.bench import BENCHMARKS, format_table
from mfgsolve.problem import load_problem

ROOT = Path(__file__).resolve().parent.parent


def test_hand_written_residuals_equal_the_lowered_ones():
    """The lowering benchmark compares the same mathematics: same losses at the same points."""
    problem = load_problem(ROOT / "problems" / "ergodic_torus_1d.py")
    opts = SolverOptions.build(problem, {"iterations": 1, "continuation": 0})
    lowered = _Trainer(problem, "adversarial", opts, 0, "cpu", torch.float64, False, ())
    hand = _HandWrittenTrainer(problem, "adversarial", opts, 0, "cpu", torch.float64, False, ())
    st_l, st_h = lowered.init_state(), hand.init_state()
    pts = lowered._batch(st_l)[0]
    for frozen, keys in ((("u",), ["fp"]), (("m",), ["hjb", "constant", "int_u"])):
        a = lowered.losses(st_l, pts, frozen)
        b = hand.losses(st_h, pts, frozen)
        for k in keys:
            assert torch.allclose(a[k], b[k], rtol=1e-12, atol=1e-14), k


def test_format_table_and_registry():
    text = format_table([{"a": 1, "b": 0.000123456}, {"a": None, "c": "x"}])
    lines = text.splitlines()
    assert (
        lines[0].split() == ["a", "b", "c"]
        and "0.000123" in lines[2]
        and lines[3].split()[0] == "-"
    )
    assert {
        "seed-1d",
        "seed-4d",
        "defaults",
        "lowering",
        "finite-horizon",
        "reference",
        "dynamics",
        "fbsde",
        "scaling",
        "derivatives",
    } <= set(BENCHMARKS)


def test_scaling_and_derivative_benchmarks_run_quick(tmp_path):
    from mfgsolve.bench import run_benchmark

    rows = run_benchmark("derivatives", tmp_path / "d", quick=True)
    assert [r["d"] for r in rows] == [1, 2, 4] and all(r["autograd_s"] > 0 for r in rows)
    rows = run_benchmark("scaling", tmp_path / "s", quick=True)
    assert {(r["d"], r["method"]) for r in rows} == {
        (d, m) for d in (1, 2) for m in ("adversarial", "joint")
    }
    assert all(r["iterations"] == 40 and r["m_rel_l2"] is not None for r in rows)
    assert (tmp_path / "s" / "bench.json").exists()
