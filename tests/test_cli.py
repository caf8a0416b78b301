"""The mfgsolve command: outputs, exit codes, one-line errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mfgsolve.cli import main

ROOT = Path(__file__).resolve().parent.parent
SEED = str(ROOT / "problems" / "ergodic_torus_1d.py")
HEADER = "import sympy as sp\nfrom mfgsolve import ErgodicMFG, Torus\nx = sp.Symbol('x')\nu, m = sp.Function('u')(x), sp.Function('m')(x)\nH = sp.Symbol('H')\n"


def test_check_prints_what_the_lowering_found(capsys):
    assert main(["check", SEED]) == 0
    out = capsys.readouterr().out
    assert (
        "dimension 1" in out
        and "u_x" in out
        and "u_xx" in out
        and "log m (exact" in out
        and out.strip().endswith("ok")
    )


@pytest.mark.parametrize(
    "body, pattern",
    [
        (
            "problem = ErgodicMFG(Torus([x]), u, m, H, u.diff(x)**2 - sp.log(m) - H, -(m*u.diff(x)).diff(x)\n",
            "syntax error",
        ),
        (
            "problem = ErgodicMFG(Torus([x]), u, m, H, u.diff(x)**2 - sp.log(m) - H, -(u.diff(x)).diff(x))\n",
            "FP residual does not contain the density",
        ),
        (
            "s = sp.Symbol('s')\nproblem = ErgodicMFG(Torus([x]), u, m, H, s*u.diff(x)**2 - sp.log(m) - H, -(m*u.diff(x)).diff(x))\n",
            "free symbols without a value: s",
        ),
    ],
)
@pytest.mark.parametrize("command", ["check", "solve"])
def test_bad_problem_files_exit_2_with_one_line(tmp_path, capsys, body, pattern, command):
    path = tmp_path / "bad.py"
    path.write_text(HEADER + body)
    assert (
        main(
            [command, str(path), "--out", str(tmp_path / "o")]
            if command == "solve"
            else [command, str(path)]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert str(path) in err and "fix:" in err
    assert pattern in err
    assert not (tmp_path / "o").exists()


def test_solve_writes_metrics_history_figures_and_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(
            [
                "solve",
                SEED,
                "--iterations",
                "30",
                "--quiet",
                "--out",
                str(out),
                "--option",
                "eval_every=10",
            ]
        )
        == 1  # 30 iterations: the files are written, and the verdict is "not converged"
    )
    captured = capsys.readouterr()
    printed = captured.out
    assert "m_rel_l2" in printed and "u_l2" in printed and "constant_abs" in printed
    assert "verdict: not converged: the HJB residual is" in printed
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mfgsolve: failed: problem 'ergodic-torus-1d': not")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["converged"] is False and metrics["verdict"].startswith("not converged")
    assert {"m_rel_l2", "u_l2", "constant_abs", "hjb_residual", "fp_residual", "quadrature"} <= set(
        metrics
    )
    lines = (out / "history.csv").read_text().splitlines()
    assert lines[0].startswith("loss_fp") or "iteration" in lines[0]
    assert len(lines) == 1 + 3
    assert (out / "panels.png").stat().st_size > 10_000
    assert (out / "solution" / "solution.pt").exists() and (
        out / "checkpoint" / "train_state.pt"
    ).exists()
    # compare against the exact solution from the saved run
    assert (
        main(["compare", SEED, "--solution", str(out), "--exact", "--out", str(tmp_path / "cmp")])
        == 0
    )
    assert json.loads((tmp_path / "cmp" / "metrics.json").read_text())["m_rel_l2"] == pytest.approx(
        metrics["m_rel_l2"], rel=1e-9
    )


def _hashes(folder: Path) -> dict[str, str]:
    import hashlib

    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_solve_refuses_to_replace_a_run_and_resume_needs_a_folder(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["solve", SEED, "--iterations", "10", "--quiet", "--out", str(out)]
    assert main(argv) == 1  # written, not converged
    before = _hashes(out)
    capsys.readouterr()
    assert main(argv) == 2  # a second solve into a finished run's folder
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "already holds a run" in err
    assert "--resume" in err and "--overwrite" in err and "--out" in err
    assert _hashes(out) == before
    missing = tmp_path / "no-such-run"
    assert main(["solve", SEED, "--iterations", "10", "--quiet", "--resume", str(missing)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no such folder" in err and not missing.exists()
    assert main([*argv, "--overwrite"]) == 1  # asked for: replaced
    assert json.loads((out / "metrics.json").read_text())["iterations"] == 10


NO_EXACT = HEADER + (
    "problem = ErgodicMFG(Torus([x]), u, m, H, -u.diff(x, 2)/5 + u.diff(x)**2/2"
    " + sp.sin(2*sp.pi*x) - sp.log(m) - H, -m.diff(x, 2)/5 - (m*u.diff(x)).diff(x), name='p')\n"
)


def test_saved_reference_is_used_by_solve_and_compare(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default folders runs/p/...
    (tmp_path / "p.py").write_text(NO_EXACT)
    assert main(["reference", "p.py", "--grid", "64"]) == 0
    saved = _hashes(tmp_path / "runs" / "p" / "reference")
    assert main(["reference", "p.py", "--grid", "64"]) == 2  # refuses to replace it
    assert "already holds a reference" in capsys.readouterr().err
    assert _hashes(tmp_path / "runs" / "p" / "reference") == saved
    assert main(["solve", "p.py", "--iterations", "10", "--quiet"]) == 1  # not converged
    printed = capsys.readouterr().out
    metrics = json.loads((tmp_path / "runs/p/solve-adversarial-seed0/metrics.json").read_text())
    assert metrics["compared_with"] == "reference in runs/p/reference"
    assert {"m_rel_l2", "u_l2", "constant_abs"} <= set(metrics) and "m_rel_l2" in printed
    assert main(["compare", "p.py"]) == 0
    printed = capsys.readouterr().out
    assert "network vs reference in runs/p/reference" in printed and "solving it now" not in printed
    got = json.loads((tmp_path / "runs/p/compare/metrics.json").read_text())["m_rel_l2"]
    assert got == pytest.approx(metrics["m_rel_l2"], rel=1e-9)


def test_check_of_two_populations_lists_each_population(capsys):
    assert main(["check", str(ROOT / "problems" / "two_populations_torus.py")]) == 0
    out = capsys.readouterr().out
    assert "2 populations: value u1(x), density m1(x), constant H1; value u2(x)" in out
    assert "HJB 2       uses u2_x, u2_xx, m1, log m2 (exact" in out
    assert out.count("enters linearly") == 2 and out.strip().endswith("ok")


def test_a_two_population_run_and_its_reference_on_the_command_line(tmp_path, capsys):
    """solve, reference and compare of a two-population file: exit 0, errors per population."""
    import json

    path = str(ROOT / "problems" / "two_populations_torus.py")
    out, ref = tmp_path / "sol", tmp_path / "ref"
    argv = ["solve", path, "--method", "joint", "--iterations", "30", "--quiet", "--out", str(out)]
    assert main(argv) in (0, 1)  # 30 iterations need not converge; the files are written
    assert main(["reference", path, "--grid", "40", "--out", str(ref)]) == 0
    assert (
        main(
            [
                "compare",
                path,
                "--solution",
                str(out / "solution"),
                "--reference",
                str(ref),
                "--out",
                str(tmp_path / "c"),
            ]
        )
        == 0
    )
    metrics = json.loads((tmp_path / "c" / "metrics.json").read_text())
    assert metrics["m_rel_l2"] == max(metrics["m_rel_l2_1"], metrics["m_rel_l2_2"])
    assert (tmp_path / "c" / "panels.png").stat().st_size > 10_000


def test_check_of_a_finite_horizon_file_with_an_expectation(capsys):
    assert main(["check", str(ROOT / "problems" / "lq_mean_1d.py")]) == 0
    out = capsys.readouterr().out
    assert "terminal" in out and "initial" in out and out.strip().endswith("ok")


def test_diverging_run_exits_1_and_keeps_files_intact(tmp_path, capsys):
    path = tmp_path / "nan.py"
    path.write_text(
        HEADER
        + "problem = ErgodicMFG(Torus([x]), u, m, H, sp.sqrt(u - 100) - sp.log(m) - H, -(m*u.diff(x)).diff(x), name='nan')\n"
    )
    out = tmp_path / "o"
    out.mkdir()
    (out / "metrics.json").write_text('{"kept": true}')
    argv = ["solve", str(path), "--iterations", "20", "--quiet", "--out", str(out)]
    assert main(argv) == 2  # the folder holds results: refused before anything runs
    assert "already holds a run (metrics.json)" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert all(
        line.startswith("warning: iteration 1: HJB loss became nan; rolled back")
        for line in lines[:-1]
    )
    assert len(lines) == 4  # three rollbacks, then the one-line failure
    assert (
        lines[-1].startswith("mfgsolve: failed: problem 'nan': iteration 1: HJB loss became nan")
        and "fix:" in lines[-1]
    )
    assert json.loads((out / "metrics.json").read_text()) == {"kept": True}


def test_unknown_benchmark_and_bad_option_exit_2(capsys):
    assert main(["bench", "nope"]) == 2
    assert "unknown benchmark 'nope'" in capsys.readouterr().err
    assert main(["solve", SEED, "--option", "widht=3", "--quiet", "--iterations", "1"]) == 2
    assert "unknown solver option" in capsys.readouterr().err


def test_python_dash_m_entry_point():
    proc = subprocess.run(
        [sys.executable, "-m", "mfgsolve", "check", SEED],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0 and "ok" in proc.stdout
    proc = subprocess.run(
        [sys.executable, "-m", "mfgsolve", "check", "missing.py"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (
        proc.returncode == 2
        and proc.stderr.count("\n") == 1
        and "no such problem file" in proc.stderr
    )


def _solve_command(out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mfgsolve",
        "solve",
        SEED,
        "--iterations",
        "60",
        "--option",
        "checkpoint_every=5",
        "--option",
        "eval_every=20",
        "--quiet",
        *extra,
    ]


def _final_metrics(out: Path) -> dict:
    metrics = json.loads((out / "metrics.json").read_text())
    return {k: v for k, v in metrics.items() if k != "seconds"}


# A child `mfgsolve` that kills itself with SIGKILL in the middle of its third checkpoint write:
# half the bytes are in the temporary file, the rename has not happened.
DIE_IN_CHECKPOINT_WRITE = """
import os, signal, sys, tempfile
from pathlib import Path
import mfgsolve._io as io
real, calls = io.atomic_write_bytes, []
def dying(path, data):
    if Path(path).name == "train_state.pt":
        calls.append(path)
        if len(calls) == 3:
            fd, tmp = tempfile.mkstemp(prefix=".train_state.pt.", suffix=".tmp", dir=Path(path).parent)
            os.write(fd, data[: len(data) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
    return real(path, data)
io.atomic_write_bytes = dying
from mfgsolve.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_kill_9_at_random_moments_then_resume_gives_the_uninterrupted_result(tmp_path):
    """SIGKILL of `mfgsolve solve` 5 times: at a random moment of the process's life (start-up
    included), at random moments of training (3 trials), and in the middle of a checkpoint write;
    each run is then continued (`--resume DIR`, or started again when the kill came before its
    folder existed) and its final metrics equal those of the uninterrupted run, bitwise."""
    import os
    import signal
    import time

    import numpy as np
    import torch

    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    full = tmp_path / "full"
    start = time.perf_counter()
    # exit 0, or 1 when the verdict is "not converged" (the files are written either way)
    status = subprocess.run(_solve_command(full, "--out", str(full)), env=env).returncode
    assert status in (0, 1) and (full / "metrics.json").exists()
    duration = time.perf_counter() - start
    training = json.loads((full / "metrics.json").read_text())["seconds"]
    expected = _final_metrics(full)
    rng = np.random.default_rng(2026)
    killed_at = []
    for trial in range(5):
        out = tmp_path / f"trial{trial}"
        ckpt = out / "checkpoint" / "train_state.pt"
        command = _solve_command(out, "--out", str(out))
        if trial == 4:  # in the middle of a checkpoint write
            command = [sys.executable, "-c", DIE_IN_CHECKPOINT_WRITE, *command[3:]]
        proc = subprocess.Popen(command, env=env)
        if trial == 0:  # anywhere in the process's life, start-up included
            moment = rng.uniform(0.05, 0.95) * duration
        elif trial < 4:  # during training: after its first checkpoint, before its end
            while not ckpt.exists() and proc.poll() is None:
                time.sleep(0.01)
            moment = rng.uniform(0.0, 1.1) * training
        else:
            moment = 10 * duration  # it kills itself
        try:
            proc.wait(timeout=moment)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        last = torch.load(ckpt, weights_only=True)["iteration"] if ckpt.exists() else None
        torn = sorted(p.name for p in (out / "checkpoint").glob(".train_state.pt.*.tmp"))
        killed_at.append(f"trial {trial}: exit {proc.returncode}, last checkpoint at {last}")
        if trial == 4:
            assert proc.returncode == -9 and torn and last == 10, (killed_at[-1], torn)
        again = ["--resume", str(out)] if out.is_dir() else ["--out", str(out)]
        assert subprocess.run(_solve_command(out, *again), env=env).returncode == status
        assert _final_metrics(out) == expected, killed_at[-1]
    # the trials really interrupted runs, most of them mid-training
    assert sum("exit -9" in k for k in killed_at) >= 4, killed_at
    assert sum("exit -9" in k and "None" not in k for k in killed_at) >= 3, killed_at


def test_resume_dir_and_a_different_out_is_a_clear_error(tmp_path, capsys):
    code = main(["solve", SEED, "--resume", str(tmp_path / "a"), "--out", str(tmp_path / "b")])
    assert code == 2
    assert "fix: give only --resume DIR" in capsys.readouterr().err


def test_unknown_reference_option_is_a_one_line_error(capsys):
    assert main(["reference", SEED, "--option", "foo=1"]) == 2
    err = capsys.readouterr().err
    assert "unknown reference option(s) ['foo']" in err and "fix:" in err and "Traceback" not in err


def test_resume_without_a_checkpoint_warns_and_bad_settings_are_one_line_errors(tmp_path, capsys):
    nowhere = tmp_path / "nowhere"  # a run killed before its first checkpoint leaves its folder
    nowhere.mkdir()
    assert main(["solve", SEED, "--resume", str(nowhere), "--iterations", "5", "--quiet"]) == 1
    assert f"no checkpoint in {nowhere / 'checkpoint'}; starting afresh" in capsys.readouterr().err
    assert (nowhere / "metrics.json").exists()
    family = str(ROOT / "problems" / "ergodic_torus_nd.py")
    for bad in ("d=1e400", "amplitude=[1]", "d=0", "e=1"):
        assert main(["check", family, "--set", bad]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "fix:" in err and "Traceback" not in err


def test_paths_and_problem_kinds_that_used_to_raise_are_one_line_errors(tmp_path, capsys):
    """An --out naming a file, check of an FBSDE file, an unknown FBSDE option and an unknown
    device: one line and the right exit status, no traceback."""
    a_file = tmp_path / "a_file"
    a_file.write_text("keep me")
    assert main(["solve", SEED, "--out", str(a_file), "--iterations", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "existing file" in err and a_file.read_text() == "keep me"
    fbsde = str(ROOT / "problems" / "fbsde_bsb.py")
    assert main(["check", fbsde]) == 0
    assert capsys.readouterr().out.strip().endswith("ok")
    out = str(tmp_path / "f")
    assert main(["solve", fbsde, "--option", "foo=1", "--out", out, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown options ['foo']" in err
    assert main(["solve", SEED, "--device", "gpu9", "--out", out, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown device 'gpu9'" in err
