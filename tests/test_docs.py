"""The documentation cannot rot: every ```python and ```bash block in README.md and docs/ runs,
and what a block prints is what the page shows.

Per Markdown file the blocks run in document order, python blocks in one shared namespace (like a
notebook) and bash blocks with ``bash -e``, in a temporary folder holding ``problems`` and
``benchmarks`` links to the repository's folders, with one thread (``OMP_NUM_THREADS=1``, as the
pages' numbers were measured). Blocks tagged ``text`` or ``console`` are output and are not run;
any other tag (or none) is an error, so no code block can escape the test by its tag.

**Shown outputs.** An output block that follows a run block with nothing but blank lines between
the two is that block's shown output, and is compared with what the block printed (stdout and
stderr together, as a terminal shows them; each block's output is recorded separately). An output
block after prose is not the output of a run: a formula, a file layout, a transcript that includes
its command (``$ mfgsolve check bad.py``). To show text right after a run block without comparing
it, tag it ``text nocheck``. The comparison, line by line with empty lines skipped:

- text (everything but the numbers) must be equal up to whitespace; ``...`` in a shown line stands
  for any text, as in doctest (a shortened list), and that line is compared as text only;
- numbers must agree to ``RTOL * |shown| + ATOL`` (RTOL = 1e-6, ATOL = 1e-13). The finite-
  difference reference is deterministic float64 numerics (exact spline interpolation, Newton to
  round-off), and network training is deterministic on CPU for a fixed seed and torch version (the
  pinned 2.13.0) with one thread: on the pages' machine the digits repeat exactly. RTOL leaves room
  for the last float64 digits, ATOL for round-off in small differences of O(1) numbers (an error
  estimate of 5e-10 is one; its digits past ~1e-15 follow the rounding of the sparse LU, amplified
  by the Newton systems' condition number of ~1e5). Other CPUs can differ by more: torch's non-SIMD
  kernels (``ATEN_CPU_CAPABILITY=default``) change trained values in the fifth digit, a second
  thread in the seventh. Numbers printed short (``0.0001197``) are compared as printed;
- timings, the number after the word ``seconds`` (``seconds 7.91``) or in a column headed
  ``seconds``, are "about": within a factor ``TIME_FACTOR`` = 5 of the shown value. Load, not the
  code, moves them: in a full test run on the shared 2-core machine (two workers, other jobs
  beside them) the pages' runs took up to 3.8x their unloaded times.

A mismatch fails with ``page:line: shown ..., got ...`` for every differing line or number.

The README Quickstart is special: its first command (install, then solve the seed) runs from the
repository root, in a virtual environment of its own, writing its results under a temporary folder
(``--out``; see ``_run_quickstart_solve``); its second (install, then the tests) is the command
``.ci/run`` runs, which is checked rather than run (running the test suite from inside the test
suite would recurse). The default run solves the seed with 100 iterations; the full 2,000 are a
``slow`` test. No test here writes into the repository (``runs/`` included).
"""

from __future__ import annotations

import json
import os
import re
import shlex
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
RTOL = 1e-6
ATOL = 1e-13
TIME_FACTOR = 5.0
TIME_LABEL = "seconds"
# a number, not part of a name (l2, seed0, d2) or of a version (2.13.0)
NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.])")

DRIVER = r"""
import json, os, subprocess, sys, tempfile, time, traceback
blocks = json.load(open(sys.argv[1]))
outputs = {}
namespace = {"__name__": "__main__"}
terminal = os.dup(1), os.dup(2)


def run(block, where):
    if block["tag"] == "python":
        try:
            exec(compile(block["code"], where, "exec"), namespace)
        except BaseException:
            traceback.print_exc()
            return f"block at {where} failed"
    else:
        done = subprocess.run(["bash", "-e", "-c", block["code"]], stderr=subprocess.STDOUT)
        if done.returncode:
            return f"block at {where} failed with exit status {done.returncode}"
    return None


for block in blocks:
    where = f"{block['page']}:{block['line']}"
    start = time.perf_counter()
    with tempfile.TemporaryFile() as fh:  # this block's stdout and stderr, in order
        sys.stdout.flush(), sys.stderr.flush()
        os.dup2(fh.fileno(), 1), os.dup2(fh.fileno(), 2)
        try:
            failed = run(block, where)
        finally:
            sys.stdout.flush(), sys.stderr.flush()
            os.dup2(terminal[0], 1), os.dup2(terminal[1], 2)
        fh.seek(0)
        outputs[where] = fh.read().decode(errors="replace")
    seconds = time.perf_counter() - start
    print(f"--- {where} ({block['tag']}, {seconds:.1f} s)\n{outputs[where]}", end="", flush=True)
    with open(sys.argv[2], "w") as out:
        json.dump(outputs, out)
    if failed:
        sys.exit(failed)
"""


def code_blocks(page: Path) -> list[dict]:
    """The fenced blocks of a Markdown page: tag, options (the info string's other words), code,
    the line the block starts on, and whether only blank lines separate it from the previous one."""
    text = page.read_text()
    blocks = []
    end = None
    for match in FENCE.finditer(text):
        info = match.group(1).split()
        blocks.append(
            {
                "page": page.relative_to(ROOT).as_posix(),
                "line": text.count("\n", 0, match.start()) + 1,
                "tag": info[0] if info else "",
                "options": info[1:],
                "code": match.group(2),
                "adjacent": end is not None and not text[end : match.start()].strip(),
            }
        )
        end = match.end()
    return blocks


def shown_outputs(page: Path) -> dict[int, dict]:
    """The shown output of each run block, by the run block's line: the output block right after
    it (blank lines between at most) unless tagged ``nocheck``."""
    blocks = code_blocks(page)
    return {
        run["line"]: out
        for run, out in zip(blocks, blocks[1:])
        if run["tag"] in RUN_TAGS
        and out["tag"] in OUTPUT_TAGS
        and out["adjacent"]
        and "nocheck" not in out["options"]
    }


def _quickstart(blocks: list[dict]) -> list[dict]:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Quickstart")
    end = text.index("\n## ", start + 1)
    first_line = text.count("\n", 0, start) + 1
    last_line = text.count("\n", 0, end) + 1
    return [b for b in blocks if first_line <= b["line"] <= last_line]


def _run(
    blocks: list[dict], cwd: Path, timeout: float, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess, dict[str, str]]:
    """Run the blocks in one driver process; return it and each block's output by page:line."""
    with tempfile.TemporaryDirectory() as scratch:
        spec, outputs = Path(scratch) / "blocks.json", Path(scratch) / "outputs.json"
        spec.write_text(json.dumps(blocks))
        env = {
            **(env or os.environ),
            "MPLBACKEND": "Agg",
            "PYTHONPATH": str(ROOT),
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }
        done = subprocess.run(
            [sys.executable, "-c", DRIVER, str(spec), str(outputs)],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return done, json.loads(outputs.read_text()) if outputs.exists() else {}


def _runnable(page: Path) -> list[dict]:
    blocks = [b for b in code_blocks(page) if b["tag"] in RUN_TAGS]
    if page.name == "README.md":
        quick = {b["line"] for b in _quickstart(code_blocks(page))}
        blocks = [b for b in blocks if b["line"] not in quick]
    return blocks


def _timing_tokens(lines: list[str]) -> list[set[int]]:
    """Per line, the indices of its whitespace-separated tokens that are timings: the token after
    the word ``seconds``, and in a table the tokens in the column headed ``seconds``."""
    header: tuple[int, int] | None = None  # (tokens per row, column) of a "seconds" column
    marks = []
    for line in lines:
        tokens = line.split()
        mine = {k + 1 for k, t in enumerate(tokens[:-1]) if t == TIME_LABEL}
        if header and len(tokens) == header[0]:
            mine.add(header[1])
        if TIME_LABEL in tokens:
            k = tokens.index(TIME_LABEL)
            if k + 1 == len(tokens) or not NUMBER.fullmatch(tokens[k + 1]):
                header = (len(tokens), k)
        marks.append(mine)
    return marks


def _token_index(line: str, pos: int) -> int:
    before = line[:pos].split()
    return len(before) - (1 if pos and not line[pos - 1].isspace() and before else 0)


def _compare_line(where: str, shown: str, got: str, timing: set[int]) -> list[str]:
    if "..." in shown:
        parts = [re.escape("".join(p.split())) for p in shown.split("...")]
        if re.fullmatch(".*?".join(parts), "".join(got.split())):
            return []
        return [f"{where}: shown {shown.strip()!r}, got {got.strip()!r}"]
    shown_numbers, got_numbers = list(NUMBER.finditer(shown)), list(NUMBER.finditer(got))
    if "".join(NUMBER.sub("#", shown).split()) != "".join(NUMBER.sub("#", got).split()) or len(
        shown_numbers
    ) != len(got_numbers):
        return [f"{where}: shown {shown.strip()!r}, got {got.strip()!r}"]
    problems = []
    for s, g in zip(shown_numbers, got_numbers):
        a, b = float(s.group()), float(g.group())
        if _token_index(shown, s.start()) in timing:
            if not (a / TIME_FACTOR <= b <= a * TIME_FACTOR):
                problems.append(
                    f"{where}: shown time {s.group()}, got {g.group()} (more than {TIME_FACTOR:g}x off)"
                )
        elif abs(b - a) > RTOL * abs(a) + ATOL:
            problems.append(
                f"{where}: shown {s.group()}, got {g.group()} "
                f"(off by {abs(b - a):.1e} > {RTOL:g} x shown + {ATOL:g}) in {got.strip()!r}"
            )
    return problems


def compare_output(page: str, first_line: int, shown: str, got: str) -> list[str]:
    """The differences between a shown output (its first line is page line ``first_line``) and
    what the block printed, one message per differing line or number; empty when they agree."""
    shown_lines = [(first_line + i, s) for i, s in enumerate(shown.splitlines()) if s.strip()]
    got_lines = [g for g in got.splitlines() if g.strip()]
    if len(shown_lines) != len(got_lines):
        return [
            f"{page}:{first_line}: shown {len(shown_lines)} lines, got {len(got_lines)}:\n"
            + "\n".join(got_lines)
        ]
    timings = _timing_tokens([s for _, s in shown_lines])
    problems = []
    for (line, s), g, timing in zip(shown_lines, got_lines, timings):
        problems += _compare_line(f"{page}:{line}", s, g, timing)
    return problems


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
    """Every run block of the page runs, and prints its shown output."""
    (tmp_path / "problems").symlink_to(ROOT / "problems", target_is_directory=True)
    (tmp_path / "benchmarks").symlink_to(ROOT / "benchmarks", target_is_directory=True)
    blocks = _runnable(page)
    done, outputs = _run(blocks, tmp_path, timeout=600)
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    problems = []
    for line, out in shown_outputs(page).items():
        where = f"{out['page']}:{line}"
        assert where in outputs, f"{where}: a shown output after a block that was not run"
        problems += compare_output(out["page"], out["line"] + 1, out["code"], outputs[where])
    assert not problems, "shown outputs differ from what the blocks print:\n" + "\n".join(problems)


def test_a_changed_number_fails_with_page_line_shown_and_got() -> None:
    """The comparison itself, on a shown output with one number changed (and one within RTOL)."""
    got = "my-first-mfg: reference\n  constant 0.09724\n  seconds          7.91\n"
    assert compare_output("p.md", 10, got.replace("7.91", "2.1"), got) == []
    assert compare_output("p.md", 10, got.replace("0.09724", "0.0972400001"), got) == []
    assert compare_output("p.md", 10, got.replace("0.09724", "0.09725"), got) == [
        "p.md:11: shown 0.09725, got 0.09724 (off by 1.0e-05 > 1e-06 x shown + 1e-13) "
        "in 'constant 0.09724'"
    ]
    assert compare_output("p.md", 10, got.replace("7.91", "40"), got)[0].startswith(
        "p.md:12: shown time 40, got 7.91"
    )
    assert compare_output("p.md", 10, got.replace("reference", "references"), got) == [
        "p.md:10: shown 'my-first-mfg: references', got 'my-first-mfg: reference'"
    ]
    table = "lr  seed  seconds  m\n--  ----  -------  -\n0.1  0  1.69  0.002\n"
    assert compare_output("t.md", 1, table.replace("1.69", "6"), table) == []
    assert compare_output("t.md", 1, table.replace("0  1.69", "1  1.69"), table) != []
    ellipsis = "use some of ['a', ..., 'z']"
    assert compare_output("e.md", 1, ellipsis, "use some of ['a', 'b', 'z']") == []
    assert compare_output("e.md", 1, ellipsis, "use some of ['b', 'z']") != []


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


def _run_quickstart_solve(extra: str, tmp_path: Path, converged: bool) -> None:
    """Run Quickstart command 1 (with ``extra`` and an ``--out`` under ``tmp_path`` appended, so
    that it does not replace a run of the user's in runs/) in a virtual environment that sees the
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
    out = tmp_path / "solve"
    command += f"{extra} --out {shlex.quote(str(out))}"
    done, _ = _run([{**quick[0], "code": command}], ROOT, timeout=900, env=env)
    # a run that did not converge writes its files, says so, and exits 1
    verdict = "verdict: converged" if converged else "verdict: not converged"
    assert done.returncode == (0 if converged else 1) and verdict in done.stdout, (
        f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    for name in ("m_rel_l2", "u_l2", "constant_abs"):
        assert name in done.stdout, f"the Quickstart prints the errors ({name} missing)"
    assert (venv / "bin" / "mfgsolve").exists(), "the install step made the mfgsolve command"
    assert (out / "metrics.json").is_file(), f"the solve wrote its results under --out {out}"


def test_readme_quickstart_solves_the_seed(tmp_path: Path) -> None:
    """The Quickstart's first command as written, with a shorter run (the full one is the
    ``seed-1d`` benchmark's job, and the slow test below): install, solve, print the errors."""
    _run_quickstart_solve(" --iterations 100", tmp_path, converged=False)


@pytest.mark.slow
def test_readme_quickstart_solves_the_seed_in_full(tmp_path: Path) -> None:
    _run_quickstart_solve("", tmp_path, converged=True)
