"""Benchmark plumbing: the hand-written reference residuals match the lowered ones; tables; the
``benchmarks/`` folder of the checkout is found (current folder, a parent or ``--root``), loaded by
path and runs from a plain (non-editable) install."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mfgsolve._bench import find_root, format_table, load_benchmark, load_registry, run_benchmark
from mfgsolve.cli import main
from mfgsolve.problem import load_problem

ROOT = Path(__file__).resolve().parent.parent
NAMES = {
    "classes",
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
}


def test_hand_written_residuals_equal_the_lowered_ones():
    """The lowering benchmark compares the same mathematics: same losses at the same points."""
    from mfgsolve.options import SolverOptions
    from mfgsolve.train import Trainer

    hand_written = load_benchmark(ROOT, "lowering").HandWrittenSeed
    problem = load_problem(ROOT / "problems" / "ergodic_torus_1d.py")
    opts = SolverOptions.build(problem, {"iterations": 1, "continuation": 0})
    lowered = Trainer(problem, opts, 0, "cpu", torch.float64)
    hand = Trainer(problem, opts, 0, "cpu", torch.float64, formulation=hand_written)
    st_l, st_h = lowered.init_state(), hand.init_state()
    pts = lowered.formulation.batch(st_l)[0]
    for players, frozen, keys in (
        (("fp",), ("u",), ["fp"]),
        (("hjb",), ("m",), ["hjb", "constant", "int_u"]),
    ):
        a = lowered.losses(st_l, players, frozen, points=pts)
        b = hand.losses(st_h, players, frozen, points=pts)
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
    registry = load_registry(ROOT)
    assert set(registry) >= NAMES
    for name, (file, text) in registry.items():
        assert (ROOT / "benchmarks" / file).is_file(), name
        assert text and "\n" not in text, name


def test_benchmarks_live_outside_the_package_and_find_problems_through_root():
    """No benchmark is left in the package, and none finds ``problems/`` through ``__file__``."""
    in_package = sorted(
        p.relative_to(ROOT).as_posix() for p in (ROOT / "mfgsolve").rglob("*bench*.py")
    )
    assert in_package == ["mfgsolve/_bench.py"]
    for path in sorted((ROOT / "benchmarks").glob("*.py")):
        assert "__file__" not in path.read_text(), path.name


def test_derivative_benchmark_runs_quick(tmp_path):
    rows = run_benchmark("derivatives", tmp_path / "d", quick=True, root=ROOT)
    assert [r["d"] for r in rows] == [1, 2, 4] and all(r["autograd_s"] > 0 for r in rows)
    assert (tmp_path / "d" / "bench.json").exists()


def test_classes_benchmark_runs_quick(tmp_path):
    """The reference row meets its target against the closed form; the short network run is a row
    with errors (200 iterations do not reach the network target, and the row says so)."""
    rows = run_benchmark("classes", tmp_path / "c", quick=True, root=ROOT)
    assert [r["problem"] for r in rows] == [
        "discounted-torus-1d",
        "discounted-torus-1d",
        "two-populations-torus-1d",
        "two-populations-torus-1d",
        "two-populations-fh-torus-1d",
        "two-populations-fh-torus-1d",
        "exit-box-1d",
        "exit-box-1d",
    ]
    for ref, net in (rows[:2], rows[2:4], rows[4:6], rows[6:]):
        assert ref["solver"].startswith("reference (generic") and ref["met"]
        assert ref["m_rel_l2"] < 1e-4 and abs(ref["observed_order"] - 2) < 0.1
        assert net["seed"] == 0 and 0 < net["m_rel_l2"] < 1 and net["u_rel_l2"] is not None


def test_scaling_benchmark_runs_quick(tmp_path):
    rows = run_benchmark("scaling", tmp_path / "s", quick=True, root=ROOT)
    assert {(r["d"], r["method"]) for r in rows} == {
        (d, m) for d in (1, 2) for m in ("adversarial", "joint")
    }
    assert all(r["iterations"] == 40 and r["m_rel_l2"] is not None for r in rows)
    assert (tmp_path / "s" / "bench.json").exists()


def test_high_d_benchmark_runs_quick(tmp_path):
    """One process per row: each row has its own peak RSS; importance-sampled errors carry
    standard errors; finite-horizon problems on Rd are refused in one line."""
    rows = run_benchmark("high-d", tmp_path / "h", quick=True, root=ROOT)
    solved = [r for r in rows if r.get("status") == "ok"]
    assert {(r["family"], r["d"]) for r in solved} == {
        (f, d) for f in ("torus", "lq-ergodic") for d in (2, 4)
    }
    assert all(0 < r["peak_rss_gb"] < 4 and r["iterations"] == 20 for r in solved)
    assert all(r["m_rel_l2_se"] < r["m_rel_l2"] for r in solved if r["d"] == 4)
    refused = [r for r in rows if r["family"] == "lq-mean"]
    assert len(refused) == 2 and all(r["status"].startswith("refused: ") for r in refused)
    ratios = [r for r in rows if str(r.get("status", "")).startswith("step-time ratio")]
    assert len(ratios) == 2 and all(r["step_s"] > 0 for r in ratios)


def test_root_is_the_current_folder_or_a_parent():
    assert find_root(cwd=ROOT) == ROOT
    assert find_root(cwd=ROOT / "docs") == ROOT
    assert find_root(ROOT, cwd="/") == ROOT


def test_bench_without_a_checkout_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for argv in (["bench"], ["bench", "--quick", "reference"]):
        assert main(argv) == 2
        captured = capsys.readouterr()
        err = captured.err.strip().splitlines()
        assert len(err) == 1 and captured.out == "", captured
        assert err[0].startswith("mfgsolve: error: no benchmarks/ folder in ")
        assert "--root DIR" in err[0]
    assert main(["bench", "--root", str(tmp_path)]) == 2  # a --root that is not a checkout
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"mfgsolve: error: --root {tmp_path} has no ")


def test_bench_root_option_lists_the_benchmarks(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "--root", str(ROOT)]) == 0
    listed = {line.split()[0] for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert listed == set(load_registry(ROOT)) and listed >= NAMES
    assert main(["bench", "nope", "--root", str(ROOT)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown benchmark 'nope'" in err[0]


def _source_copy(dest: Path) -> Path:
    """The checkout's files as git sees them (tracked and new, not ignored), copied to ``dest``."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    for name in filter(None, listed.split(b"\0")):
        source = ROOT / os.fsdecode(name)
        if source.is_file():  # a file deleted in the working tree is still listed
            target = dest / os.fsdecode(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest


@pytest.mark.slow
def test_bench_runs_from_a_plain_install(tmp_path):
    """``pip install .`` (not editable) into a fresh virtual environment, then ``mfgsolve bench
    --root CHECKOUT`` from a folder outside the checkout: the benchmarks are found through the root,
    and ``benchmarks`` is not an installed package."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout (the source copy is made with git ls-files)")
    source = _source_copy(tmp_path / "source")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "torch==2.13.0", str(source)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import importlib.util, mfgsolve;"
            "print(importlib.util.find_spec('benchmarks') is None);print(mfgsolve.__file__)",
        ],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    not_installed, package_file = done.stdout.split()
    assert not_installed == "True", "benchmarks/ must not be installed as a package"
    assert Path(package_file).is_relative_to(venv), package_file  # the installed copy
    out = tmp_path / "out"
    done = subprocess.run(
        [str(venv / "bin" / "mfgsolve"), "bench", "--quick", "reference"]
        + ["--root", str(ROOT), "--out", str(out)],
        cwd=elsewhere,
        env={**env, "MPLBACKEND": "Agg"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert (out / "bench.json").exists()


def test_peers_without_deepxde_is_one_line_and_exit_2(monkeypatch, capsys):
    """bench peers installs nothing: without DeepXDE it stops at once with the fix."""
    monkeypatch.setitem(sys.modules, "deepxde", None)  # (import deepxde raises ImportError)
    assert main(["bench", "peers", "--root", str(ROOT)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "needs DeepXDE, which is not installed; fix: pip install '.[peers]'" in err


def test_peers_counts_lines_of_code_not_docstrings_or_comments():
    count = load_benchmark(ROOT, "peers")._user_lines
    source = '"""Doc\nstring."""\n\nimport x  # note\n# a comment\ndef f():\n    """One."""\n    return 1\n'
    assert count(source) == 3
