"""The documentation cannot rot: every ```python and ```bash block in README.md and docs/ runs.

Per Markdown file the blocks run in document order, python blocks in one shared namespace (like a
notebook) and bash blocks with ``bash -e``, in a temporary folder holding a ``problems`` link to
the repository's problem files. Blocks tagged ``text`` or ``console`` are output and are not run;
any other tag (or none) is an error, so no code block can escape the test by its tag.

The README Quickstart is special: its first command (install, then solve the seed) runs from the
repository root, in a virtual environment of its own (see ``_run_quickstart_solve``); its second
(install, then the tests) is the command ``.ci/run`` runs, which is checked rather than run
(running the test suite from inside the test suite would recurse). The default run solves the seed
with 100 iterations; the full 2,000 are a ``slow`` test.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUN_TAGS = {"python", "bash"}
OUTPUT_TAGS = {"text", "console"}
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.M | re.S)

DRIVER = r"""
import json, subprocess, sys, traceback
blocks = json.load(open(sys.argv[1]))
namespace = {"__name__": "__main__"}
for block in blocks:
    where = f"{block['page']}:{block['line']}"
    print(f"--- {where} ({block['tag']})", flush=True)
    if block["tag"] == "python":
        try:
            exec(compile(block["code"], where, "exec"), namespace)
        except BaseException:
            traceback.print_exc()
            sys.exit(f"block at {where} failed")
    else:
        done = subprocess.run(["bash", "-e", "-c", block["code"]])
        if done.returncode:
            sys.exit(f"block at {where} failed with exit status {done.returncode}")
"""


def code_blocks(page: Path) -> list[dict]:
    """The fenced blocks of a Markdown page: tag, code and the line the block starts on."""
    text = page.read_text()
    return [
        {
            "page": page.relative_to(ROOT).as_posix(),
            "line": text.count("\n", 0, match.start()) + 1,
            "tag": match.group(1).strip().split()[0] if match.group(1).strip() else "",
            "code": match.group(2),
        }
        for match in FENCE.finditer(text)
    ]


def _quickstart(blocks: list[dict]) -> list[dict]:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Quickstart")
    end = text.index("\n## ", start + 1)
    first_line = text.count("\n", 0, start) + 1
    last_line = text.count("\n", 0, end) + 1
    return [b for b in blocks if first_line <= b["line"] <= last_line]


def _run(
    blocks: list[dict], cwd: Path, timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(blocks, fh)
    spec = Path(fh.name)
    env = {**(env or os.environ), "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, str(spec)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    spec.unlink()
    return done


def _runnable(page: Path) -> list[dict]:
    blocks = [b for b in code_blocks(page) if b["tag"] in RUN_TAGS]
    if page.name == "README.md":
        quick = {b["line"] for b in _quickstart(code_blocks(page))}
        blocks = [b for b in blocks if b["line"] not in quick]
    return blocks


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_code_block_is_tagged(page: Path) -> None:
    bad = [
        f"{b['page']}:{b['line']} tagged {b['tag'] or '(none)'}"
        for b in code_blocks(page)
        if b["tag"] not in RUN_TAGS | OUTPUT_TAGS
    ]
    assert not bad, f"tag code as python/bash (run by this test) or text/console (output): {bad}"


@pytest.mark.parametrize(
    "page",
    [p for p in PAGES if _runnable(p)],
    ids=lambda p: p.relative_to(ROOT).as_posix(),
)
def test_code_blocks_run(page: Path, tmp_path: Path) -> None:
    (tmp_path / "problems").symlink_to(ROOT / "problems", target_is_directory=True)
    (tmp_path / "benchmarks").symlink_to(ROOT / "benchmarks", target_is_directory=True)
    done = _run(_runnable(page), tmp_path, timeout=600)
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def test_readme_quickstart_test_command_is_ci_run() -> None:
    quick = _quickstart(code_blocks(ROOT / "README.md"))
    assert [b["tag"] for b in quick] == ["bash", "bash"], "the Quickstart is exactly two commands"
    test_command = quick[1]["code"].strip()
    ci_lines = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert test_command in ci_lines, ".ci/run must run the README's test command"
    assert "pytest" in test_command and "torch==2.13.0" in test_command


SEED_SOLVE = "mfgsolve solve problems/ergodic_torus_1d.py"


def _run_quickstart_solve(extra: str, tmp_path: Path) -> None:
    """Run Quickstart command 1 (with ``extra`` appended) in a virtual environment that sees the
    installed packages: its ``pip install -e`` then writes there, not into the environment that
    the tests running next to this one (on the other worker) import from."""
    quick = _quickstart(code_blocks(ROOT / "README.md"))
    command = quick[0]["code"].strip()
    assert "torch==2.13.0" in command and command.endswith(SEED_SOLVE), (
        "Quickstart command 1 installs, then solves the seed problem"
    )
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        check=True,
    )
    env = {**os.environ, "VIRTUAL_ENV": str(venv)}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    done = _run([{**quick[0], "code": command + extra}], ROOT, timeout=900, env=env)
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    for name in ("m_rel_l2", "u_l2", "constant_abs"):
        assert name in done.stdout, f"the Quickstart prints the errors ({name} missing)"
    assert (venv / "bin" / "mfgsolve").exists(), "the install step made the mfgsolve command"


def test_readme_quickstart_solves_the_seed(tmp_path: Path) -> None:
    """The Quickstart's first command as written, with a shorter run (the full one is the
    ``seed-1d`` benchmark's job, and the slow test below): install, solve, print the errors."""
    _run_quickstart_solve(" --iterations 100", tmp_path)


@pytest.mark.slow
def test_readme_quickstart_solves_the_seed_in_full(tmp_path: Path) -> None:
    _run_quickstart_solve("", tmp_path)
