"""Fuzzing the command line and ``load_problem``: a bad input is exit status 2 and one line.

Every generated case drives ``mfgsolve.cli.main(argv)`` in-process (or ``load_problem``) with a
malformed value: wrong types, out-of-range, NaN, infinite and huge numbers, empty strings, unknown
keys and near-miss typos, malformed ``KEY=VALUE``, bad ``--set`` settings of a family, missing
files, files that are not Python or that raise, bad ``--device`` / ``--dtype`` / ``--method``, and
damaged files in output folders (``solution.json``, ``solution.pt``, ``reference.*``,
``checkpoint/train_state.pt``, ``metrics.json``) for ``--resume``, ``compare --solution`` and
``compare --reference``. Each case checks: exit status 2; stderr is exactly one line, starting
with ``mfgsolve: error: `` and giving a fix; no traceback anywhere; every file in the sandbox
(problem files, prepared output folders) byte-for-byte as before, and nothing added.

Every case is invalid by construction, so nothing trains: the first training iteration, the FBSDE
pilot run, Newton's method of the reference solver, sweep worker pools, loading a benchmark to run
and the metrics of ``compare`` are replaced by a guard that fails the case when reached (a valid
case, or a check that is missing).

argparse's usage errors are one line too (``mfgsolve: error: solve: argument ...; fix: see
`mfgsolve solve --help```): the parser prints no usage block.

``MFGSOLVE_FUZZ_SCALE`` multiplies the number of examples (default 1: about 1,900 cases in about
a minute on one core; the module prints the count and time at its end); the examples are
derandomised, so a run is reproducible, and hypothesis writes nothing into the checkout (no
example database, its caches in a temporary folder). The problem files the command line loads
unchanged are loaded once per module; the load_problem cases call it every time.
"""

from __future__ import annotations

import ast
import atexit
import contextlib
import functools
import hashlib
import io
import json
import math
import os
import shutil
import string
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from mfgsolve import ProblemError, load_problem
from mfgsolve.cli import main

ROOT = Path(__file__).resolve().parent.parent
PROBLEMS = ROOT / "problems"
ERGODIC = str(PROBLEMS / "ergodic_torus_1d.py")
FINITE = str(PROBLEMS / "fh_box_1d.py")  # a box: walls and boundary_weight apply
FBSDE = str(PROBLEMS / "fbsde_systemic_risk.py")
FAMILY = str(PROBLEMS / "ergodic_torus_nd.py")
KIND_FILES = {"ergodic": ERGODIC, "finite_horizon": FINITE, "fbsde": FBSDE}
MFG_FILES = {"ergodic": ERGODIC, "finite_horizon": FINITE}

if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    # hypothesis caches (constants of the code, unicode tables) in ./.hypothesis: not in the checkout
    _STORAGE = tempfile.mkdtemp(prefix="mfgsolve-hypothesis-")
    atexit.register(shutil.rmtree, _STORAGE, ignore_errors=True)
    set_hypothesis_home_dir(_STORAGE)

SCALE = float(os.environ.get("MFGSOLVE_FUZZ_SCALE", "1"))
CASES: Counter[str] = Counter()  # generated cases per test


def fuzz(examples: int):
    """Hypothesis settings of one fuzz test: ``examples`` x MFGSOLVE_FUZZ_SCALE, deterministic."""
    return settings(
        max_examples=max(1, round(examples * SCALE)),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


# ----- the guard: nothing may train ---------------------------------------------------------------


class ReachedWork(BaseException):
    """A case got past validation into real work (BaseException: no handler of the CLI takes it)."""


@pytest.fixture(scope="module", autouse=True)
def guard():
    """Replace the first step of each kind of real work with a tripwire."""
    import mfgsolve.metrics
    import mfgsolve.sweep
    from mfgsolve import _bench
    from mfgsolve.fbsde import solve as fbsde_solve
    from mfgsolve.reference import _finite_horizon, _newton
    from mfgsolve.train.loop import Trainer

    def tripwire(what):
        def trip(*args, **kwargs):
            raise ReachedWork(what)

        return trip

    real_load_benchmark = _bench.load_benchmark

    def load_benchmark(root, name):
        real_load_benchmark(root, name)
        raise ReachedWork("a benchmark run")

    mp = pytest.MonkeyPatch()
    mp.setattr(Trainer, "iterate", tripwire("a training iteration"))
    mp.setattr(fbsde_solve, "_pilot", tripwire("the FBSDE pilot run"))
    mp.setattr(_newton, "newton", tripwire("Newton's method of the reference"))
    mp.setattr(_finite_horizon, "newton", tripwire("Newton's method of the reference"))
    mp.setattr(mfgsolve.sweep, "ProcessPoolExecutor", tripwire("a sweep's worker pool"))
    mp.setattr(mfgsolve.metrics, "compare", tripwire("the metrics of compare"))
    mp.setattr(_bench, "load_benchmark", load_benchmark)
    yield
    mp.undo()


@pytest.fixture(scope="module", autouse=True)
def cached_problems():
    """The command line loads the unchanged problem files of this module once (loading them is
    most of a case's time); every other load (damaged and generated files, --set settings of a
    family) runs load_problem, and so do the load_problem cases, which call it directly."""
    import mfgsolve.problem

    real = mfgsolve.problem.load_problem
    cache: dict[str, object] = {}
    files = {str(Path(f).resolve()) for f in KIND_FILES.values()}

    def load(path, **settings):
        key = str(Path(path).resolve())
        if settings or key not in files:
            return real(path, **settings)
        if key not in cache:
            cache[key] = real(path)
        return cache[key]

    mp = pytest.MonkeyPatch()
    mp.setattr(mfgsolve.problem, "load_problem", load)
    yield
    mp.undo()


@pytest.fixture(scope="module", autouse=True)
def report(request):
    """Say how many cases ran and how long they took (shown by pytest -n 0)."""
    start = time.perf_counter()
    yield
    seconds = time.perf_counter() - start
    total = sum(CASES.values())
    parts = ", ".join(f"{k} {v}" for k, v in sorted(CASES.items()))
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None and total:
        with capture.global_and_fixture_disabled():
            reporter.write_line(
                f"\ntest_fuzz: {total} generated cases in {seconds:.0f} s ({parts})"
            )


# ----- the sandbox: problem files and output folders that must stay as they are --------------------


HEADER = """import sympy as sp
from mfgsolve import MFG, Box, ErgodicMFG, Torus
from mfgsolve.fbsde import FBSDE, vsum
x, y, t, c, p = sp.symbols("x y t c p")
H = sp.Symbol("H")
u, m = sp.Function("u")(x), sp.Function("m")(x)
ut, mt = sp.Function("u")(t, x), sp.Function("m")(t, x)
"""

STATIC_FILES = {
    "files/syntax.py": "problem = (\n",
    "files/raises.py": "raise RuntimeError('boom')\n",
    "files/raises_multiline.py": "raise ValueError('first line\\nsecond line')\n",
    "files/exits.py": "raise SystemExit(3)\n",
    "files/exits_none.py": "import sys\nsys.exit()\n",
    "files/recursion.py": "def f():\n    return f()\nf()\n",
    "files/no_problem.py": "value = 1\n",
    "files/not_a_problem.py": "problem = 42\n",
    "files/empty.py": "",
    "files/not_python.txt": "problem = 1\n",
    "files/named_newline.py": HEADER
    + "problem = ErgodicMFG(Torus([x]), u, m, H, u.diff(x)**2 - H, m - 1, name='a\\nb')\n",
    "files/family_raises.py": HEADER
    + "problem = None\ndef make_problem(d=1):\n    raise RuntimeError('bad family')\n",
    "files/family_exits.py": HEADER
    + "problem = None\ndef make_problem(d=1):\n    raise SystemExit('bye')\n",
    "files/family_not_problem.py": "problem = None\ndef make_problem(d=1):\n    return 'x'\n",
    "files/family_not_callable.py": "problem = None\nmake_problem = 3\n",
    "files/a_file": "keep me\n",
    "roots/syntax/benchmarks/registry.py": "BENCHMARKS = {\n",
    "roots/raises/benchmarks/registry.py": "raise RuntimeError('registry')\n",
    "roots/none/benchmarks/registry.py": "OTHER = 1\n",
    "roots/int/benchmarks/registry.py": "BENCHMARKS = 5\n",
    "roots/entries/benchmarks/registry.py": "BENCHMARKS = {'a': 5, 'b': ('b.py',)}\n",
    "roots/missing/benchmarks/registry.py": "BENCHMARKS = {'gone': ('gone.py', 'a missing file')}\n",
    "roots/broken/benchmarks/registry.py": "BENCHMARKS = {'broken': ('broken.py', 'raises')}\n",
    "roots/broken/benchmarks/broken.py": "raise RuntimeError('benchmark import')\n",
    "roots/badsyntax/benchmarks/registry.py": "BENCHMARKS = {'bad': ('bad.py', 'syntax')}\n",
    "roots/badsyntax/benchmarks/bad.py": "def run(:\n",
}
STATIC_BYTES = {
    "files/binary.py": bytes(range(256)),
    "files/latin1.py": "problem = 'caf\xe9'\n".encode("latin-1"),
    "files/nul.py": b"problem = 1\x00\n",
}
STATIC_DIRS = ["files/folder.py", "roots/nothing", "roots/syntax/problems", "roots/raises/problems"]
STATIC_DIRS += [f"roots/{r}/problems" for r in ("none", "int", "entries", "missing", "broken")]
STATIC_DIRS += ["roots/badsyntax/problems"]


def _valid_solution(problem, folder: Path) -> None:
    """A saved network solution of ``problem`` (untrained networks: nothing trains)."""
    from mfgsolve.nn import build_networks
    from mfgsolve.options import SolverOptions
    from mfgsolve.solution import Solution

    opts = SolverOptions.build(problem, {"iterations": 3})
    value, density = build_networks(problem, opts, torch.device("cpu"), torch.float32)
    info = {"method": "adversarial", "seed": 0, "iterations": 3, "options": opts.flat()}
    constant = 0.5 if problem.kind == "ergodic" else None
    Solution(problem, value, density, 0.0, constant, [{"iteration": 3}], info).save(folder)


def _valid_reference(problem, folder: Path) -> None:
    from mfgsolve.reference import ReferenceSolution

    n = 8
    axis = (np.arange(n) + 0.5) / n
    if problem.kind == "ergodic":
        shape, times, constant = (n,), None, 0.1
    else:
        shape, times, constant = (5, n), np.linspace(problem.t0, problem.T, 5), None
    ReferenceSolution(
        problem, (axis,), np.zeros(shape), np.ones(shape), times=times, constant=constant
    ).save(folder)


def _valid_fbsde_solution(problem, folder: Path) -> None:
    from mfgsolve.fbsde._models import DeepBSDE, ModelConfig
    from mfgsolve.fbsde.solution import FBSDESolution

    config = ModelConfig("deep_bsde", problem.dim, 4, 8, 1, "relu", "shared", 0.0, 1.0, False)
    FBSDESolution(problem, DeepBSDE(problem, config), [{"iteration": 1, "y0": 0.0}]).save(folder)


def _valid_train_state(problem, folder: Path) -> dict:
    """A training state as `mfgsolve solve FILE --iterations 3 --out folder` checkpoints it."""
    from mfgsolve.options import SolverOptions
    from mfgsolve.train.loop import Trainer

    opts = SolverOptions.build(
        problem, {"iterations": 3, "checkpoint_dir": str(folder / "checkpoint")}
    )
    trainer = Trainer(problem, opts, 0, "cpu", torch.float32)
    return trainer.state_dict(trainer.init_state())


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """The folder every case runs in (its working directory), with its prepared files."""
    from mfgsolve._io import atomic_torch_save, atomic_write_json

    root = tmp_path_factory.mktemp("fuzz")
    for rel, text in STATIC_FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    for rel, data in STATIC_BYTES.items():
        (root / rel).write_bytes(data)
    for rel in STATIC_DIRS:
        (root / rel).mkdir(parents=True, exist_ok=True)
    valid = root / "valid"
    problems = {kind: load_problem(path) for kind, path in KIND_FILES.items()}
    for kind in MFG_FILES:
        _valid_solution(problems[kind], valid / kind / "solution")
        _valid_reference(problems[kind], valid / kind / "reference")
    _valid_fbsde_solution(problems["fbsde"], valid / "fbsde" / "solution")
    state = _valid_train_state(problems["ergodic"], root / "case")
    atomic_torch_save(valid / "ergodic" / "train_state.pt", state)
    # an output folder holding results: no command may touch it
    held = root / "held"
    atomic_write_json(held / "metrics.json", {"kept": True})
    atomic_torch_save(held / "checkpoint" / "train_state.pt", state)
    (held / "solution").mkdir()
    (held / "solution" / "solution.json").write_text('{"kept": true}\n')
    (root / "case").mkdir(exist_ok=True)
    return root


@pytest.fixture
def inside(sandbox, monkeypatch):
    """Run in the sandbox (so the default runs/ folder would land there, and be noticed)."""
    monkeypatch.chdir(sandbox)
    return sandbox


def snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` with the hash of its bytes ('dir' for folders)."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        out[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def run_cli(root: Path, argv: list[str], status: int = 2, tag: str = "cli") -> str:
    """Run the command; check exit status, one-line stderr, no traceback, files untouched."""
    CASES[tag] += 1
    before = snapshot(root)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # main returns its status; this would be a regression
            code = f"SystemExit({exc.code!r})"
        except ReachedWork as exc:
            pytest.fail(f"{argv}: reached {exc}: the case is valid, or a check is missing")
    text = err.getvalue()
    assert "Traceback" not in text + out.getvalue(), (argv, text)
    assert code == status, (argv, code, text)
    assert text.endswith("\n") and text.count("\n") == 1, (argv, text)
    prefix = "mfgsolve: error: " if status == 2 else "mfgsolve: failed: "
    assert text.startswith(prefix) and "fix:" in text, (argv, text)
    assert snapshot(root) == before, (argv, "files changed")
    return text


def load_fails(root: Path, path, settings: dict | None = None) -> str:
    """``load_problem`` raises one ProblemError line naming the file."""
    CASES["load_problem"] += 1
    before = snapshot(root)
    with pytest.raises(ProblemError) as info:
        load_problem(path, **(settings or {}))
    msg = str(info.value)
    assert "\n" not in msg and "fix:" in msg and str(path) in msg, msg
    assert snapshot(root) == before
    return msg


# ----- values ------------------------------------------------------------------------------------

# argv strings cannot hold NUL; surrogates stand for undecodable bytes and are left out here
TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=10
)
WORDS = st.text(alphabet=string.ascii_letters + string.digits + "_-. ,=[](){}'\"", max_size=10)


def _literal(text: str):
    try:
        return ast.literal_eval(text)
    except Exception:  # noqa: BLE001 - not a literal: the CLI keeps the text as a string
        return text


def _is_literal(text: str) -> bool:
    try:
        ast.literal_eval(text)
    except Exception:  # noqa: BLE001
        return False
    return True


RAW = (TEXT | WORDS).filter(lambda s: not _is_literal(s))  # kept as strings by --option
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT
ANY = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.dictionaries(TEXT, inner, max_size=2)
    ),
    max_leaves=4,
)
CONTAINERS = st.lists(SCALARS, max_size=3) | st.dictionaries(TEXT, SCALARS, max_size=2)
HUGE = st.sampled_from([10**12, 10**18, 2**63, 10**30, 10**300, 10**400])
INF = st.sampled_from([math.inf, -math.inf])


def render(value) -> str:
    """The text of ``--option KEY=TEXT`` that gives ``value`` (infinities as 1e400)."""
    if isinstance(value, float) and math.isinf(value):
        return "1e400" if value > 0 else "-1e400"
    return value if isinstance(value, _Raw) else repr(value)


class _Raw(str):
    """Text passed as is (not a Python literal: the option's value is this string)."""


RAW_VALUE = RAW.map(_Raw)


def not_int() -> st.SearchStrategy:
    return st.booleans() | st.floats(allow_nan=False) | TEXT | RAW_VALUE | CONTAINERS


def not_number() -> st.SearchStrategy:
    return st.booleans() | INF | TEXT | RAW_VALUE | CONTAINERS


def ints_outside(lo: int, hi: int | None = None) -> st.SearchStrategy:
    out = st.integers(max_value=lo - 1) | not_int()
    return out | st.integers(min_value=hi + 1) | HUGE if hi is not None else out


def numbers_outside(lo: float, hi: float | None, lo_open: bool, hi_open: bool = True):
    """Numbers outside the interval from ``lo`` to ``hi`` (None: no upper end), and non-numbers."""
    below = st.floats(max_value=lo, allow_nan=False).filter(
        lambda v: not v > lo if lo_open else v < lo
    )
    out = below | st.integers(max_value=math.floor(lo) - 1)
    if hi is not None:
        above = st.floats(min_value=hi, allow_nan=False).filter(
            lambda v: v >= hi if hi_open else v > hi
        )
        out |= above | st.integers(min_value=math.floor(hi) + 1)
    return out | not_number()


def not_one_of(*choices) -> st.SearchStrategy:
    strings = (TEXT | RAW_VALUE).filter(lambda s: str(s) not in choices)
    return strings | st.integers() | st.floats(allow_nan=False) | CONTAINERS


def not_path() -> st.SearchStrategy:
    return st.just("") | st.integers() | st.floats(allow_nan=False) | CONTAINERS | st.booleans()


BETAS_BAD = (
    st.lists(st.floats(0, 0.99), min_size=0, max_size=4).filter(lambda v: len(v) != 2)
    | st.tuples(numbers_outside(0, 1, False), st.floats(0, 0.99))
    | st.tuples(st.floats(0, 0.99), numbers_outside(0, 1, False))
    | st.integers()
    | RAW_VALUE
)

# ----- solver options of ergodic and finite-horizon problems: an invalid value of each ------------

ACTIVATIONS = ("tanh", "silu", "softplus", "gelu", "sin")
INT_CAPS = {
    "iterations": (1, 10**9),
    "batch_size": (2, 2**24),
    "width": (1, 4096),
    "depth": (1, 64),
    "harmonics": (1, 64),
    "disc_steps": (1, 1000),
    "gen_steps": (1, 1000),
    "eval_every": (1, None),
    "checkpoint_every": (1, None),
    "warmup": (0, None),
    "max_recoveries": (0, 1000),
    "quadrature_points": (0, 2**24),
    "eval_points": (0, 2**24),
}
NUMBER_RANGES = {  # lo, hi, lo open, hi open
    "lr": (0, None, True, True),
    "lr_ratio": (0, None, True, True),
    "lr_final": (0, 1, True, False),
    "grad_clip": (0, None, False, True),
    "beta": (0, None, False, True),
    "ema": (0, 1, False, True),
}
CHOICES = {
    "schedule": ("cosine", "constant"),
    "optimizer": ("adam", "sgd"),
    "architecture": ("mlp", "dgm"),
    "activation": ACTIVATIONS,
    "sampling": ("sobol", "uniform", "density"),
    "derivatives": ("auto", "autograd", "func", "hutchinson"),
}
ONLY_ERGODIC = (
    "constant",
    "continuation",
    "continuation_final",
    "density_fraction",
    "hutchinson_probes",
)
ONLY_FINITE = ("time_feature", "walls", "time_slices", "boundary_weight")


@functools.cache
def bad_solver_option(kind: str) -> st.SearchStrategy:
    """(name, value) with a value no problem of ``kind`` accepts (or an option it refuses)."""
    cases = []
    for name, (lo, hi) in INT_CAPS.items():
        cases.append(st.tuples(st.just(name), ints_outside(lo, hi)))
    for name, (lo, hi, lo_open, hi_open) in NUMBER_RANGES.items():
        cases.append(st.tuples(st.just(name), numbers_outside(lo, hi, lo_open, hi_open)))
    for name, choices in CHOICES.items():
        cases.append(st.tuples(st.just(name), not_one_of(*choices)))
    cases.append(st.tuples(st.just("betas"), BETAS_BAD))
    cases.append(st.tuples(st.just("diagnostics"), not_one_of(True, False).filter(_not_bool)))
    cases.append(st.tuples(st.just("checkpoint_dir"), not_path()))
    others = ONLY_FINITE if kind == "ergodic" else ONLY_ERGODIC
    not_none = ANY.filter(lambda v: v is not None)
    cases.append(st.tuples(st.sampled_from(others), not_none))  # does not apply: any value
    if kind == "ergodic":
        cases.append(st.tuples(st.just("constant"), not_one_of("auto", "least_squares", "trained")))
        cases.append(st.tuples(st.just("continuation"), numbers_outside(0, None, False)))
        cases.append(st.tuples(st.just("continuation_final"), numbers_outside(0, 1, False, False)))
        cases.append(st.tuples(st.just("density_fraction"), not_none))  # sampling is not density
        cases.append(st.tuples(st.just("hutchinson_probes"), not_none))  # 1-D: autograd
    else:
        cases.append(st.tuples(st.just("time_feature"), not_one_of("linear", "sqrt")))
        cases.append(st.tuples(st.just("walls"), not_one_of("exact", "loss")))
        cases.append(st.tuples(st.just("time_slices"), ints_outside(0, 2**20)))
        cases.append(st.tuples(st.just("boundary_weight"), numbers_outside(0, None, False)))
        cases.append(st.tuples(st.just("sampling"), st.just("density")))
        cases.append(st.tuples(st.just("derivatives"), st.sampled_from(["func", "hutchinson"])))
    return st.one_of(cases)


def _not_bool(v) -> bool:
    return not isinstance(v, bool) and str(v) not in ("True", "False")


VALID_COMPANIONS = {
    "ergodic": ["width=16", "depth=2", "lr=1e-3", "schedule='constant'", "ema=0", "beta=0.5"],
    "finite_horizon": ["width=16", "harmonics=2", "time_slices=4", "walls='loss'", "ema=0.5"],
}


def _option_args(options: list[str]) -> list[str]:
    return [a for o in options for a in ("--option", o)]


@fuzz(260)
@given(data=st.data(), kind=st.sampled_from(sorted(MFG_FILES)))
def test_solver_options(inside, data, kind):
    name, value = data.draw(bad_solver_option(kind))
    others = [c for c in VALID_COMPANIONS[kind] if not c.startswith(name + "=")]
    companions = data.draw(st.lists(st.sampled_from(others), max_size=3))
    options = data.draw(st.permutations([*companions, f"{name}={render(value)}"]))
    method = data.draw(st.sampled_from(["adversarial", "joint"]))
    argv = ["solve", MFG_FILES[kind], *_option_args(options), "--method", method]
    sizes = [] if name == "iterations" else ["--iterations", "2"]  # --iterations would win
    run_cli(inside, [*argv, *sizes, "--quiet", "--out", "case/out"])


# ----- unknown names, near-miss typos and malformed KEY=VALUE --------------------------------------

SOLVER_NAMES = sorted([*INT_CAPS, *NUMBER_RANGES, *CHOICES, "betas", "diagnostics"])
FBSDE_NAMES = ["steps", "width", "depth", "activation", "network", "lr_final", "disc_lr"]
FBSDE_NAMES += ["disc_steps", "betas", "y0_lr_factor", "pilot_size", "skip", "threads"]
REFERENCE_NAMES = ["scheme", "richardson", "time_steps", "tol", "max_iter", "continuation"]
REFERENCE_NAMES += ["linear_solver"]


@st.composite
def typo(draw, names: list[str]) -> tuple[str, str]:
    """A near miss of one of ``names`` (swapped, dropped, doubled or changed letter)."""
    name = draw(st.sampled_from([n for n in names if len(n) >= 4]))
    i = draw(st.integers(0, len(name) - 2))
    how = draw(st.sampled_from(["swap", "drop", "double", "change"]))
    if how == "swap":
        wrong = name[:i] + name[i + 1] + name[i] + name[i + 2 :]
    elif how == "drop":
        wrong = name[:i] + name[i + 1 :]
    elif how == "double":
        wrong = name[:i] + name[i] + name[i:]
    else:
        wrong = name[:i] + draw(st.sampled_from("aeiouxz")) + name[i + 1 :]
    assume(wrong not in names and wrong.replace("-", "_") not in names)
    return name, wrong


COMMAND_NAMES = {
    ("solve", "ergodic"): SOLVER_NAMES,
    ("solve", "finite_horizon"): SOLVER_NAMES,
    ("solve", "fbsde"): FBSDE_NAMES,
    ("reference", "ergodic"): REFERENCE_NAMES,
    ("reference", "finite_horizon"): REFERENCE_NAMES,
    ("sweep", "ergodic"): SOLVER_NAMES,
}


def _command(command: str, kind: str, extra: list[str]) -> list[str]:
    tail = {
        "solve": ["--iterations", "2", "--quiet", "--out", "case/out"],
        "reference": ["--out", "case/out"],
        "sweep": ["--seeds", "1", "--jobs", "1", "--iterations", "2", "--out", "case/out"],
    }[command]
    return [command, KIND_FILES[kind], *extra, *tail]


@fuzz(80)
@given(where=st.sampled_from(sorted(COMMAND_NAMES)), data=st.data())
def test_near_miss_option_names_suggest_the_name(inside, where, data):
    name, wrong = data.draw(typo(COMMAND_NAMES[where]))
    err = run_cli(inside, _command(*where, ["--option", f"{wrong}=1"]))
    assert repr(wrong) in err or repr(wrong.replace("-", "_")) in err, err
    assert "did you mean" in err, err


@fuzz(80)
@given(where=st.sampled_from(sorted(COMMAND_NAMES)), data=st.data())
def test_unknown_and_malformed_options(inside, where, data):
    names = COMMAND_NAMES[where]
    unknown = (TEXT | WORDS).filter(
        lambda s: "=" not in s and s.strip().replace("-", "_") not in names
    )
    own = {  # arguments of their own (--seed, --resume, ...), and what a sweep sets per run
        "solve": ["seed=1", "resume=True", "method='joint'", "device='cpu'", "dtype='float64'"],
        "reference": ["grid=64", "problem=1"],
        "sweep": ["lr=0.1", "batch_size=64", "checkpoint_dir='x'", "seed=2", "progress=False"],
    }[where[0]]
    text = data.draw(
        st.one_of(
            st.sampled_from(own + ["progress=False", "callbacks=[]"] * (where[0] == "solve")),
            unknown.map(lambda k: f"{k}=1"),  # an unknown name
            (TEXT | WORDS).filter(lambda s: "=" not in s),  # not KEY=VALUE
            st.just("=1"),
            st.just("="),
        )
    )
    run_cli(inside, _command(*where, ["--option", text]))


# ----- options of FBSDE training -------------------------------------------------------------------

FBSDE_ACTIVATIONS = ("relu", "tanh", "softplus", "silu")


@functools.cache
def bad_fbsde_option(method: str) -> st.SearchStrategy:
    cases = [
        st.tuples(st.just("steps"), ints_outside(1, 10**5)),
        st.tuples(st.just("width"), ints_outside(1, 4096).filter(lambda v: v is not None)),
        st.tuples(st.just("depth"), ints_outside(1, 64)),
        st.tuples(st.just("pilot_size"), ints_outside(2, 2**22)),
        st.tuples(st.just("threads"), ints_outside(1, 1024)),
        st.tuples(st.just("activation"), not_one_of(*FBSDE_ACTIVATIONS)),
        st.tuples(st.just("network"), not_one_of("shared", "per_step")),
        st.tuples(st.just("skip"), not_one_of(True, False).filter(_not_bool)),
        st.tuples(st.just("lr_final"), numbers_outside(0, None, True)),
        st.tuples(st.just("checkpoint_dir"), not_path()),
        st.tuples(st.just("resume"), st.just(True)),
    ]
    if method == "deep_bsde":
        cases.append(st.tuples(st.just("y0_lr_factor"), numbers_outside(0, None, True)))
        cases.append(st.tuples(st.sampled_from(["disc_lr", "disc_steps", "betas"]), st.just(1)))
    else:
        cases.append(st.tuples(st.just("disc_lr"), numbers_outside(0, None, True)))
        cases.append(st.tuples(st.just("disc_steps"), ints_outside(1, 1000)))
        cases.append(st.tuples(st.just("betas"), BETAS_BAD))
        cases.append(st.tuples(st.just("network"), st.just("per_step")))
        cases.append(st.tuples(st.just("y0_lr_factor"), st.just(2.0)))
    return st.one_of(cases)


@fuzz(110)
@given(data=st.data(), method=st.sampled_from(["deep_bsde", "adversarial"]))
def test_fbsde_options(inside, data, method):
    name, value = data.draw(bad_fbsde_option(method))
    others = [c for c in ("steps=4", "width=8", "depth=1") if not c.startswith(name + "=")]
    companions = data.draw(st.lists(st.sampled_from(others), max_size=2))
    options = data.draw(st.permutations([*companions, f"{name}={render(value)}"]))
    argv = ["solve", FBSDE, *_option_args(options), "--method", method, "--iterations", "2"]
    run_cli(inside, [*argv, "--quiet", "--out", "case/out"])


# ----- the arguments of solve: sizes, seed, device, dtype, method, out, resume -----------------------


def _int_in(text: str, lo: int, hi: int) -> bool:
    try:
        return lo <= int(text) <= hi
    except ValueError:
        return False


def _not_int_text() -> st.SearchStrategy:
    return (TEXT | WORDS).filter(lambda s: not _int_in(s, -(10**400), 10**400))


def _bad_int_text(lo: int, hi: int) -> st.SearchStrategy:
    """Text that argparse's int refuses, or an integer outside [lo, hi]."""
    out = st.integers(max_value=lo - 1) | st.integers(min_value=hi + 1)
    out |= HUGE.filter(lambda v: not lo <= v <= hi)
    return (TEXT | WORDS).filter(lambda s: not _int_in(s, lo, hi)) | out.map(str)


def _bad_float_text() -> st.SearchStrategy:
    numbers = st.floats(max_value=0) | st.sampled_from([math.inf, math.nan, -math.inf])
    return (TEXT | WORDS).filter(lambda s: not _float_ok(s)) | numbers.map(repr)


def _float_ok(text: str) -> bool:
    try:
        return float(text) > 0 and math.isfinite(float(text))
    except ValueError:
        return False


def _device_ok(text: str) -> bool:
    try:
        device = torch.device(text)
    except (RuntimeError, TypeError, ValueError):
        return False
    if device.type == "cpu":
        return device.index in (None, 0)
    return device.type == "cuda" and torch.cuda.is_available()


@functools.cache
def bad_solve_argument(kind: str) -> st.SearchStrategy:
    methods = ("deep_bsde", "adversarial") if kind == "fbsde" else ("adversarial", "joint")
    batch = 1 if kind == "fbsde" else 2
    return st.one_of(
        st.tuples(st.just("--iterations"), _bad_int_text(1, 10**9)),
        st.tuples(
            st.just("--batch-size"), _bad_int_text(batch, 2**20 if kind == "fbsde" else 2**24)
        ),
        st.tuples(st.just("--lr"), _bad_float_text()),
        st.tuples(st.just("--seed"), _bad_int_text(0, 2**62 - 1)),
        st.tuples(st.just("--device"), (TEXT | WORDS).filter(lambda s: not _device_ok(s))),
        st.tuples(
            st.just("--device"), st.sampled_from(["meta", "mps", "xpu", "cpu:1", "cuda:99"])
        ).filter(lambda a: not _device_ok(a[1])),
        st.tuples(
            st.just("--dtype"), (TEXT | WORDS).filter(lambda s: s not in ("float32", "float64"))
        ),
        st.tuples(st.just("--method"), (TEXT | WORDS).filter(lambda s: s not in methods)),
        st.tuples(st.just("--out"), st.sampled_from(["files/a_file", "files/a_file/sub", "held"])),
        st.tuples(
            st.just("--resume"), st.sampled_from(["nowhere", "files/a_file", "files/a_file/x"])
        ),
        st.tuples(st.just("--set"), st.sampled_from(["d=2", "x=1", "=", "d"])),
        st.tuples(
            st.sampled_from(["--iteratoins", "--batchsize", "--sed", "--bogus", "-z"]),
            st.just("1"),
        ),
        st.tuples(st.sampled_from(["--iterations", "--lr", "--seed", "--device"]), st.none()),
    )


@fuzz(180)
@given(data=st.data(), kind=st.sampled_from(sorted(KIND_FILES)))
def test_solve_arguments(inside, data, kind):
    flag, value = data.draw(bad_solve_argument(kind))
    args = [flag] if value is None else [f"{flag}={value}"]  # = : a value may start with "-"
    base = ["--iterations", "2", "--quiet"] + ([] if flag == "--out" else ["--out", "case/out"])
    if flag == "--resume":
        base = base[:-2]
    run_cli(inside, ["solve", KIND_FILES[kind], *base, *args])


# ----- reference -----------------------------------------------------------------------------------


@functools.cache
def bad_reference_option(kind: str) -> st.SearchStrategy:
    cases = [
        st.tuples(st.just("scheme"), not_one_of("auto", "monotone", "generic")),
        st.tuples(st.just("richardson"), not_one_of(True, False).filter(_not_bool)),
        st.tuples(st.just("tol"), numbers_outside(0, None, True)),
        st.tuples(st.just("max_iter"), ints_outside(1, 10**4)),
        st.tuples(st.just("linear_solver"), not_one_of("auto", "direct", "gmres")),
        st.tuples(st.just("grid"), st.just(64)),  # --grid, not an option
    ]
    if kind == "ergodic":
        cases.append(st.tuples(st.just("time_steps"), ANY.filter(lambda v: v is not None)))
        cases.append(st.tuples(st.just("continuation"), not_one_of(True, False).filter(_not_bool)))
        cases.append(st.tuples(st.just("linear_solver"), st.sampled_from(["direct", "gmres"])))
    else:
        cases.append(st.tuples(st.just("time_steps"), ints_outside(1, 10**5)))
        cases.append(st.tuples(st.just("continuation"), ANY.filter(lambda v: v is not None)))
    return st.one_of(cases)


@fuzz(120)
@given(data=st.data(), kind=st.sampled_from(sorted(MFG_FILES)))
def test_reference_options(inside, data, kind):
    if data.draw(st.booleans()):
        name, value = data.draw(bad_reference_option(kind))
        args = ["--option", f"{name}={render(value)}"]
    else:
        # more nodes than the reference takes (in space; finite horizon: space x time, 1-D
        # grids having as many time steps as nodes)
        most = 2**18 if kind == "ergodic" else 2**11
        grid = data.draw(
            st.one_of(
                st.integers(max_value=3).map(str),
                st.integers(min_value=most + 1).map(str),
                st.sampled_from(["5", "63"]),  # odd: Richardson needs even sizes (1-D: on)
                _not_int_text(),
            )
        )
        args = [f"--grid={grid}"]
    run_cli(inside, ["reference", MFG_FILES[kind], *args, "--out", "case/out"])


@fuzz(12)
@given(option=st.sampled_from(["walls='loss'", "time_feature='sqrt'", "width=0", "constant='x'"]))
def test_messages_stay_one_line_whatever_they_quote(inside, option):
    """A problem named with a line break, quoted by a message: still one line."""
    argv = ["solve", "files/named_newline.py", "--option", option, "--iterations", "2"]
    run_cli(inside, [*argv, "--quiet", "--out", "case/out"])
    run_cli(inside, ["check", "files/named_newline.py", "--set", "d=1"])


@fuzz(10)
@given(file=st.sampled_from([FBSDE, str(PROBLEMS / "ergodic_torus_4d.py")]))
def test_reference_of_problems_it_does_not_cover(inside, file):
    run_cli(inside, ["reference", file, "--out", "case/out"])


# ----- sweep and bench -----------------------------------------------------------------------------


def _bad_list(cast, ok) -> st.SearchStrategy:
    entry_ok = st.sampled_from(["1e-3", "3e-4"]) if cast is float else st.sampled_from(["64", "8"])

    def bad_entry():
        return (TEXT | WORDS).filter(lambda s: "," not in s and not _entry_ok(s, cast, ok))

    lists = st.tuples(st.lists(entry_ok, max_size=2), bad_entry(), st.lists(entry_ok, max_size=2))
    return lists.map(lambda p: ",".join([*p[0], p[1], *p[2]])) | st.sampled_from(["", ",", " , "])


def _entry_ok(text: str, cast, ok) -> bool:
    if not text.strip():
        return True  # an empty entry is skipped: the others decide
    try:
        return ok(cast(text))
    except (ValueError, OverflowError):
        return False


@fuzz(70)
@given(data=st.data())
def test_sweep_arguments(inside, data):
    case = data.draw(
        st.one_of(
            st.tuples(st.just("--lr"), _bad_list(float, lambda v: v > 0 and math.isfinite(v))),
            st.tuples(st.just("--batch-size"), _bad_list(int, lambda v: 2 <= v <= 2**24)),
            st.tuples(st.just("--seeds"), _bad_int_text(1, 10**4)),
            st.tuples(st.just("--jobs"), _bad_int_text(1, 1024)),
            st.tuples(st.just("--iterations"), _bad_int_text(1, 10**9)),
            st.tuples(st.just("--option"), st.sampled_from(["width=0", "lr=-1", "widht=3", "x"])),
            st.tuples(st.just("--out"), st.sampled_from(["files/a_file", "files/a_file/sub"])),
        )
    )
    flag, value = case
    file = data.draw(st.sampled_from([ERGODIC, FINITE]))
    lists = {"--lr": "1e-3", "--batch-size": "64", "--seeds": "1", "--jobs": "1"}
    lists[flag] = value
    argv = ["sweep", file, *[f"{k}={v}" for k, v in lists.items()]]
    if flag not in lists or flag in ("--iterations", "--option"):
        argv.append(f"{flag}={value}")
    if flag != "--out":
        argv.append("--out=case/out")
    run_cli(inside, argv)


@fuzz(25)
@given(
    content=st.one_of(
        st.binary(max_size=24),
        st.sampled_from([b"{", b"[]", b"{}", b'{"lr": 0.001}', b"null", b"\xff"]),
    )
)
def test_sweep_resuming_over_damaged_run_metrics(inside, content):
    """A sweep re-reads the metrics.json of runs already done: a damaged one is one line."""
    sweep = inside / "case" / "sweep"
    if sweep.exists():
        shutil.rmtree(sweep)
    (sweep / "lr0.001-bs64-seed0").mkdir(parents=True)
    (sweep / "lr0.001-bs64-seed0" / "metrics.json").write_bytes(content)
    argv = ["sweep", ERGODIC, "--lr", "1e-3", "--batch-size", "64", "--seeds", "1", "--jobs", "1"]
    run_cli(inside, [*argv, "--iterations", "2", "--out", str(sweep)])


@fuzz(15)
@given(kind=st.sampled_from(["fbsde"]), seeds=st.integers(1, 3))
def test_sweep_of_an_fbsde(inside, kind, seeds):
    run_cli(inside, ["sweep", FBSDE, "--seeds", str(seeds), "--jobs", "1", "--out", "case/out"])


ROOTS = ["syntax", "raises", "none", "int", "entries", "missing", "broken", "badsyntax"]


@fuzz(60)
@given(data=st.data())
def test_bench_arguments(inside, data):
    if data.draw(st.booleans()):
        from mfgsolve._bench import load_registry

        names = load_registry(ROOT)
        name = data.draw((TEXT | WORDS).filter(lambda s: s not in names and not s.startswith("-")))
        argv = ["bench", name, "--root", str(ROOT), "--out", "case/out"]
    else:
        root = data.draw(st.sampled_from([*ROOTS, "nothing", "nowhere", "files/a_file"]))
        # roots with a valid registry: run a benchmark whose file is missing or broken
        name = {"missing": "gone", "broken": "broken", "badsyntax": "bad"}.get(root)
        if name is None and data.draw(st.booleans()):
            name = "seed-1d"
        argv = ["bench", *([name] if name else []), "--quick"]
        argv += ["--root", f"roots/{root}" if root in ROOTS + ["nothing"] else root]
        argv += ["--out", "case/out"]
    run_cli(inside, argv)


def test_bench_without_a_checkout_here(inside):
    run_cli(inside, ["bench"])


# ----- --set settings of a family, and --set on files that are not families ------------------------


@functools.cache
def bad_setting() -> st.SearchStrategy:
    d_bad = st.one_of(
        st.integers(max_value=0),
        st.integers(min_value=257),
        HUGE,
        st.floats(allow_nan=False).filter(lambda v: v != int(v) if math.isfinite(v) else True),
        st.booleans(),
        TEXT,
        RAW_VALUE,
        CONTAINERS,
    )
    amplitude_bad = st.one_of(INF, TEXT, RAW_VALUE, CONTAINERS, st.booleans())
    unknown = (TEXT | WORDS).filter(
        lambda s: "=" not in s and s.strip().replace("-", "_") not in ("d", "amplitude")
    )
    return st.one_of(
        d_bad.map(lambda v: f"d={render(v)}"),
        amplitude_bad.map(lambda v: f"amplitude={render(v)}"),
        unknown.map(lambda k: f"{k}=2"),
        st.sampled_from(["ampltude=1", "amplitud=1", "dd=2", "D=2"]),  # near misses
        (TEXT | WORDS).filter(lambda s: "=" not in s),
    )


@fuzz(120)
@given(
    command=st.sampled_from(["check", "solve", "reference", "compare", "sweep"]),
    setting=bad_setting(),
    family=st.booleans(),
)
def test_set_settings(inside, command, setting, family):
    file = FAMILY if family else ERGODIC
    if not family and "=" in setting:
        setting = "d=2"  # a setting for a file that is not a family
    tail = {
        "check": [],
        "solve": ["--iterations", "2", "--quiet", "--out", "case/out"],
        "reference": ["--out", "case/out"],
        "compare": ["--solution", "valid/ergodic/solution", "--out", "case/out"],
        "sweep": ["--seeds", "1", "--jobs", "1", "--out", "case/out"],
    }[command]
    err = run_cli(inside, [command, file, f"--set={setting}", *tail])
    key = setting.split("=", 1)[0].strip()
    if family and key in ("ampltude", "amplitud"):
        assert "did you mean 'amplitude'" in err, err


# ----- problem files: missing, not Python, raising, and generated invalid problems ------------------

BAD_FILES = [
    "files/syntax.py",
    "files/raises.py",
    "files/raises_multiline.py",
    "files/exits.py",
    "files/exits_none.py",
    "files/recursion.py",
    "files/no_problem.py",
    "files/not_a_problem.py",
    "files/empty.py",
    "files/not_python.txt",
    "files/binary.py",
    "files/latin1.py",
    "files/nul.py",
    "files/folder.py",
    "files/a_file",
    "files/nowhere.py",
    "nowhere/deeper/p.py",
    "",
    "files/a_file/p.py",
]
FAMILY_FILES = [
    "files/family_raises.py",
    "files/family_exits.py",
    "files/family_not_problem.py",
    "files/family_not_callable.py",
]

ERGODIC_SLOTS = {
    "domain": "Torus([x])",
    "value": "u",
    "density": "m",
    "constant": "H",
    "hjb": "u.diff(x)**2/2 + c*sp.sin(2*sp.pi*x) - sp.log(m) - H",
    "fp": "-(m*u.diff(x)).diff(x)",
    "params": "{c: 1}",
    "exact": "None",
}
FINITE_SLOTS = {
    "domain": "Torus([x])",
    "time": "(t, 0, 1)",
    "value": "ut",
    "density": "mt",
    "hjb": "-ut.diff(t) + ut.diff(x)**2/2 - c*mt",
    "fp": "mt.diff(t) - (mt*ut.diff(x)).diff(x)",
    "terminal": "{ut: sp.cos(2*sp.pi*x)}",
    "initial": "{mt: 1 + sp.sin(2*sp.pi*x)/2}",
    "params": "{c: 1}",
    "exact": "None",
}
HAMILTONIAN_SLOTS = {
    "domain": "Torus([x])",
    "value": "u",
    "density": "m",
    "constant": "H",
    "hamiltonian": "p**2/2 + sp.sin(2*sp.pi*x)",
    "momenta": "[p]",
    "coupling": "sp.log(m)",
    "viscosity": "0",
    "params": "None",
}
FBSDE_SLOTS = {
    "time": "(t, 0, 1)",
    "state": "x",
    "dim": "2",
    "x0": "0",
    "value": "y",
    "gradient": "p",
    "drift": "0",
    "diffusion": "c",
    "driver": "-vsum(p**2)/2",
    "terminal": "sp.log((1 + vsum(x**2))/2)",
    "x0_std": "0.0",
    "params": "{c: 1}",
    "exact": "None",
}
COMMON_BAD = ["None", "42", "'text'", "[]", "{}", "object()", "sp.nan", "1/0", "sp.Symbol('q')"]
BAD = {
    "domain": [
        "Torus([])",
        "Torus([x, x])",
        "Torus([x], lengths=0)",
        "Torus([x], lengths=-1)",
        "Torus([x], lengths=float('nan'))",
        "Torus([x], lengths=[1, 2])",
        "Torus([x], lengths='a')",
        "Torus([x], lengths=sp.Symbol('L'))",
        "Torus([y])",
        "Torus([1])",
        "Torus(5)",
        "Box([x], [(1, 0)])",
        "Box([x], [(0, float('inf'))])",
        "Box([x], [0, 1])",
        "Box([x], 5)",
        "Box([x], [(0, 1, 2)])",
        "Box([x], [(0, 1)], boundary='dirichlet')",
        "[x]",
    ],
    "value": [
        "sp.Function('u')",
        "sp.Function('u')(y)",
        "sp.Function('u')(x, y)",
        "sp.Function('u')(2*x)",
        "sp.Symbol('u')",
        "sp.sin(x)",
        "x",
    ],
    "density": ["sp.Function('m')", "sp.Function('m')(y)", "sp.Symbol('m')", "u", "2*m"],
    "constant": ["x", "sp.Function('H')(x)", "H + 1", "2", "c"],
    "hjb": [
        "sp.Eq(u.diff(x), H)",
        "u.diff(y) - H",
        "u.diff(x) + sp.nan - H",
        "sp.zoo*u - H",
        "sp.Function('w')(x) + u - H",
        "u.subs(x, 0) + u - H",
        "sp.Symbol('s')*u - H",
        "[u - H]",
        "sp.Matrix([u - H])",
        "sp.Integral(u, x) - H",
        "u - H > 0",
        "m - H",
        "u.diff(x)",
        "u.diff(t) - H",
    ],
    "fp": ["u.diff(x)", "H*m", "m.diff(y)", "sp.Eq(m, 1)", "m*sp.oo", "[m]", "m.subs(x, 1) + m"],
    "params": ["{'s': 'abc'}", "{1: 2}", "{c: float('inf')}", "{c: None}", "[1]", "5", "{c: [1]}"],
    "exact": [
        "{sp.Symbol('q'): 1}",
        "{u: sp.Symbol('zz')}",
        "{H: 'abc'}",
        "{H: float('nan')}",
        "5",
        "{'u': 0}",
        "{u: sp.nan}",
        "{m: sp.zoo}",
        "[1]",
    ],
    "time": [
        "(t, 1, 0)",
        "(t, 0)",
        "(x, 0, 1)",
        "(t, 0, float('inf'))",
        "(t, 0, 'T')",
        "('t', 0, 1)",
        "(t, 0, sp.Symbol('T'))",
        "(t, 0, 0)",
        "t",
    ],
    "terminal": ["{}", "{mt: 0}", "{ut: sp.Symbol('q')}", "{ut: sp.oo}", "{ut: ut}", "[0]", "5"],
    "initial": [
        "{mt: -1}",
        "{mt: 0}",
        "{mt: sp.log(x - 5)}",
        "{mt: 1/(x - x)}",
        "{mt: sp.sin(2*sp.pi*x)}",
        "{ut: 1}",
        "{mt: mt}",
        "[1]",
    ],
    "hamiltonian": ["u", "sp.Function('f')(x)", "'p'", "sp.Symbol('q')*p", "p**2/0"],
    "momenta": ["[]", "[p, p]", "[x**2]", "5", "['p']", "[sp.Function('p')(x)]"],
    "coupling": ["u.diff(x)", "m.diff(x)", "sp.Symbol('q')", "'m'", "sp.nan"],
    "viscosity": ["sp.Symbol('q')", "'a'", "sp.nan", "u", "[1]"],
    "state": ["'x'", "sp.Function('x')(t)", "t", "2"],
    "dim": ["0", "-1", "True", "2.5", "'3'", "10**9", "None"],
    "x0": ["'a'", "[1, 2, 3]", "float('nan')", "None", "[[1]]", "{}", "[1, 'a']"],
    "gradient": ["x", "'z'", "5"],
    "drift": ["'a b'", "sp.Symbol('q')", "sp.nan", "sp.Function('f')(x)", "sp.Matrix([[1]])"],
    "diffusion": ["sp.Matrix([[1, 2]])", "sp.Symbol('q')", "sp.besselj(0, x)", "sp.oo", "y"],
    "driver": ["sp.Symbol('q')", "p", "sp.Integral(x, t)", "sp.log(-1 - x**2)", "'('"],
    "x0_std": ["-1", "float('nan')", "'a'", "[1]"],
}


def _template(kind: str) -> tuple[str, dict[str, str]]:
    return {
        "ergodic": ("ErgodicMFG", ERGODIC_SLOTS),
        "finite_horizon": ("MFG", FINITE_SLOTS),
        "hamiltonian": ("ErgodicMFG.from_hamiltonian", HAMILTONIAN_SLOTS),
        "finite_hamiltonian": ("MFG.from_hamiltonian", None),
        "fbsde": ("FBSDE", FBSDE_SLOTS),
    }[kind]


FINITE_HAMILTONIAN_SLOTS = {
    "domain": "Torus([x])",
    "time": "(t, 0, 1)",
    "value": "ut",
    "density": "mt",
    "hamiltonian": "p**2/2",
    "momenta": "[p]",
    "coupling": "mt",
    "viscosity": "sp.Rational(1, 10)",
    "terminal": "{ut: 0}",
    "initial": "{mt: 1}",
}


def _bad_for(kind: str, slot: str) -> list[str]:
    bad = list(BAD.get(slot, []))
    if slot not in ("exact", "params") or kind != "fbsde":
        bad += [b for b in COMMON_BAD if not (slot in ("exact", "params") and b in ("None", "{}"))]
    if kind in ("finite_horizon", "finite_hamiltonian") and slot in ("value", "density"):
        bad = [b.replace("(x", "(t, x") if "Function" in b else b for b in bad] + ["u", "m"]
    if kind == "fbsde":
        bad = [b for b in bad if b not in ("42", "sp.Symbol('q')") or slot != "dim"]
        if slot in ("drift", "driver", "terminal", "diffusion"):
            bad = [b for b in bad if b != "42"]  # a number is a valid expression
        if slot == "x0":
            bad = [b for b in bad if b != "42"]
        if slot == "exact":
            bad = ["{'q': 1}", "{'y0': 'a'}", "{'u': sp.Symbol('q')}", "{'y0': float('inf')}"]
        if slot == "params":
            bad = ["{'s': 1}", "{c: 'a'}", "5", "[1]"]
    if kind == "hamiltonian" and slot == "constant":
        bad.remove("c")  # no params here: c is a fine name for the constant
    if kind in ("hamiltonian", "finite_hamiltonian") and slot == "params":
        bad = ["{'s': 'abc'}", "{1: 2}", "5", "[1]"]
    if slot == "terminal" and kind == "fbsde":
        bad = ["sp.Symbol('q')", "p", "y", "x", "sp.nan", "'a b'"]  # x: a vector, not a scalar
    if slot == "time" and kind == "fbsde":
        bad = [b for b in BAD["time"] if b != "(x, 0, 1)"] + ["(x, 0, 1)"]
    if slot in ("exact",) and kind in ("finite_horizon",):
        bad = [b.replace("{u:", "{ut:").replace("{m:", "{mt:") for b in bad]
        bad = [b for b in bad if "H" not in b]
    return bad


@fuzz(150)
@given(
    kind=st.sampled_from(
        ["ergodic", "finite_horizon", "hamiltonian", "finite_hamiltonian", "fbsde"]
    ),
    data=st.data(),
)
def test_generated_invalid_problem_files(inside, kind, data):
    constructor, slots = _template(kind)
    if slots is None:
        slots = FINITE_HAMILTONIAN_SLOTS
    slots = dict(slots)
    broken = data.draw(
        st.lists(st.sampled_from(sorted(slots)), min_size=1, max_size=2, unique=True)
    )
    for slot in broken:
        choices = _bad_for(kind, slot)
        assume(choices)
        slots[slot] = data.draw(st.sampled_from(choices))
    if kind in ("hamiltonian", "finite_hamiltonian"):
        positional = ["domain", "value", "density", "constant"]
        if kind == "finite_hamiltonian":
            positional = ["domain", "time", "value", "density"]
        args = ", ".join(slots[k] for k in positional)
        kwargs = ", ".join(f"{k}={v}" for k, v in slots.items() if k not in positional)
        call = f"{constructor}({args}, {kwargs})"
    else:
        call = f"{constructor}({', '.join(f'{k}={v}' for k, v in slots.items())})"
    path = inside / "case" / "generated.py"
    path.write_text(HEADER + f"problem = {call}\n")
    load_fails(inside, path)
    if data.draw(st.integers(0, 3)) == 0:  # and the CLI says the same in one line
        run_cli(inside, ["check", str(path)])


@fuzz(45)
@given(file=st.sampled_from(BAD_FILES), command=st.sampled_from(["check", "solve", "reference"]))
def test_bad_problem_files(inside, file, command):
    if file and command == "check":
        load_fails(inside, file)
    tail = {
        "check": [],
        "solve": ["--quiet", "--out", "case/out"],
        "reference": ["--out", "case/out"],
    }
    run_cli(inside, [command, file, *tail[command]])


@fuzz(20)
@given(file=st.sampled_from(FAMILY_FILES), value=st.sampled_from(["1", "2", "'a'"]))
def test_bad_family_files(inside, file, value):
    load_fails(inside, file, {"d": _literal(value)})
    run_cli(inside, ["check", file, f"--set=d={value}"])


# random text and bytes as a problem file ('*' left out: no 9**9**9 that runs for ever)
SOURCE = st.text(
    alphabet=st.characters(blacklist_characters="*\x00", max_codepoint=0x2FF), max_size=40
)


@fuzz(60)
@given(content=SOURCE | st.binary(max_size=40))
def test_random_problem_file_contents(inside, content):
    path = inside / "case" / "random.py"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    load_fails(inside, path)


@functools.cache
def bad_settings_values() -> st.SearchStrategy:
    """Python objects as ``load_problem(FAMILY, **settings)`` values (the API, not argv text)."""
    d_bad = st.one_of(
        st.integers(max_value=0),
        st.integers(min_value=257, max_value=10**50),
        st.floats(allow_nan=True).filter(lambda v: not (math.isfinite(v) and v == int(v))),
        st.booleans(),
        TEXT,
        CONTAINERS,
        st.builds(object),
        st.just(None),
        st.just(np.float64("nan")),
        st.just(torch.tensor([1.0, 2.0])),
    )
    amplitude_bad = st.one_of(st.sampled_from([math.nan, math.inf]), TEXT, CONTAINERS)
    return st.one_of(
        d_bad.map(lambda v: {"d": v}),
        amplitude_bad.map(lambda v: {"amplitude": v}),
        st.dictionaries(
            (TEXT | WORDS).filter(lambda s: s not in ("d", "amplitude")), SCALARS, min_size=1
        ),
    )


@fuzz(50)
@given(settings_=bad_settings_values())
def test_load_problem_settings(inside, settings_):
    load_fails(inside, FAMILY, settings_)


@fuzz(15)
@given(settings_=st.dictionaries(st.sampled_from(["d", "x", "amplitude"]), SCALARS, min_size=1))
def test_load_problem_settings_of_a_file_that_is_not_a_family(inside, settings_):
    load_fails(inside, ERGODIC, settings_)


# ----- damaged output folders: compare --solution / --reference and solve --resume -----------------


def _damage_bytes(draw, data: bytes, json_file: bool = False) -> bytes | None:
    """Bytes that are no longer a valid file of that kind (None: remove the file)."""
    hows = ["truncate", "garbage", "empty", "missing"] + (["junk"] if json_file else [])
    how = draw(st.sampled_from(hows))
    if how == "truncate":  # cut at least one byte that is not trailing white space
        end = len(data.rstrip())
        return data[: draw(st.integers(0, max(0, end - 1)))]
    if how == "garbage":
        return draw(st.binary(min_size=1, max_size=64))
    if how == "junk":  # text after the JSON value
        return data + draw(st.sampled_from([b"x", b"}", b"{}", b",", b"\xff"]))
    if how == "empty":
        return b""
    return None


def _write(path: Path, content) -> None:
    """Put ``content`` at ``path``: bytes, None (no file) or 'dir' (a folder in its place)."""
    if path.is_dir():
        path.rmdir()
    elif path.exists():
        path.unlink()
    if content == "dir":
        path.mkdir(parents=True)
    elif content is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def _fresh_case(root: Path, source: Path) -> Path:
    """case/run: a copy of the valid folder ``source`` (the case damages one of its files)."""
    case = root / "case" / "run"
    if case.exists():
        shutil.rmtree(case)
    shutil.copytree(source, case)
    return case


@functools.cache
def _json_breaker(kind: str) -> st.SearchStrategy:
    """(key path, new value or DELETE) that make a solution.json invalid."""
    not_num = st.one_of(TEXT, CONTAINERS, st.none(), st.booleans())
    options_bad = bad_solver_option(kind).filter(
        lambda nv: not isinstance(nv[1], _Raw) and nv[0] not in ONLY_ERGODIC + ONLY_FINITE
    )
    cases = [
        st.tuples(st.just(("format",)), ANY.filter(lambda v: v != "mfgsolve-solution-1")),
        st.tuples(st.just(("log_z",)), not_num | INF),
        st.tuples(st.just(("info",)), st.one_of(TEXT, st.lists(SCALARS), st.integers())),
        st.tuples(st.just(("info", "options")), st.one_of(TEXT, st.lists(SCALARS), st.integers())),
        st.tuples(st.just(("info", "method")), not_one_of("adversarial", "joint")),
        st.tuples(
            st.sampled_from([("info", "verdict"), ("info", "verdict", "converged")]),
            st.one_of(TEXT, st.integers(), st.lists(SCALARS, min_size=1)),
        ),
        options_bad.map(lambda nv: (("info", "options", nv[0]), nv[1])),
        st.tuples(
            st.just(("history",)),
            st.one_of(TEXT, st.integers(), st.lists(st.integers(), min_size=1)),
        ),
        st.tuples(st.just(("dtype",)), not_one_of("float32", "float64")),
        st.tuples(
            st.just(("problem",)), TEXT.filter(lambda s: not s.startswith(("ergodic", "fh")))
        ),
        st.tuples(
            st.sampled_from([("format",), ("log_z",), ("history",), ("info",)]), st.just(DELETE)
        ),
        st.tuples(st.just(()), st.one_of(st.lists(SCALARS), TEXT, st.integers(), st.none())),
    ]
    if kind == "ergodic":
        cases.append(st.tuples(st.just(("constant",)), not_num | INF))
        cases.append(st.tuples(st.just(("constant",)), st.just(DELETE)))
    return st.one_of(cases)


DELETE = object()


def _apply(meta, path: tuple, value):
    if not path:
        return value
    node = meta
    for key in path[:-1]:
        node = node.setdefault(key, {}) if isinstance(node, dict) else node
    if value is DELETE:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    return meta


def _json_bytes(obj) -> bytes:
    return json.dumps(obj, default=str).encode()  # infinities as Infinity: Python reads them


@fuzz(110)
@given(kind=st.sampled_from(sorted(MFG_FILES)), data=st.data())
def test_damaged_solution_folders(inside, kind, data):
    case = _fresh_case(inside, inside / "valid" / kind / "solution")
    target = data.draw(st.sampled_from(["solution.json", "solution.pt", "json"]))
    if target == "json":
        meta = json.loads((case / "solution.json").read_text())
        path, value = data.draw(_json_breaker(kind))
        _write(case / "solution.json", _json_bytes(_apply(meta, path, value)))
    elif target == "solution.pt" and data.draw(st.booleans()):
        state = torch.load(case / "solution.pt", weights_only=True)
        which = data.draw(st.sampled_from(["value_net", "density_net"]))
        change = data.draw(st.sampled_from(["drop", "shape", "type", "root"]))
        if change == "drop":
            state.pop(which)
        elif change == "shape":
            key = data.draw(st.sampled_from(sorted(state[which])))
            state[which][key] = torch.zeros(3, 5, 7)
        elif change == "type":
            state[which] = data.draw(st.sampled_from([[1, 2], "x", 5]))
        else:
            state = data.draw(st.sampled_from([[1, 2], "x", 5, {}]))
        buf = io.BytesIO()
        torch.save(state, buf)
        _write(case / "solution.pt", buf.getvalue())
    else:
        name = target
        damaged = _damage_bytes(data.draw, (case / name).read_bytes(), name.endswith(".json"))
        _write(case / name, data.draw(st.sampled_from([damaged, "dir"])))
    run_cli(inside, ["compare", MFG_FILES[kind], "--solution", str(case), "--out", "case/out"])


def _reference_breaker(kind: str, meta: dict, arrays: dict, draw) -> tuple[dict, dict]:
    part = draw(st.sampled_from(["json", "npz"]))
    if part == "json":
        path, value = draw(
            st.one_of(
                st.tuples(st.just(("format",)), ANY.filter(lambda v: v != "mfgsolve-reference-1")),
                st.tuples(
                    st.just(("dim",)),
                    st.one_of(
                        TEXT, st.integers(2, 5), st.integers(max_value=0), CONTAINERS, st.none()
                    ),
                ),
                st.tuples(st.just(("dim",)), st.just(DELETE)),
                st.tuples(
                    st.just(("constant",)),
                    st.one_of(TEXT, CONTAINERS)
                    if kind == "ergodic"
                    else st.one_of(TEXT, CONTAINERS, st.floats(allow_nan=False)),
                ),
                st.tuples(
                    st.just(("error_estimate",)),
                    st.one_of(TEXT, st.lists(SCALARS, min_size=1), st.integers()),
                ),
                st.tuples(
                    st.just(("history",)),
                    st.one_of(TEXT, st.integers(), st.dictionaries(TEXT, SCALARS, min_size=1)),
                ),
                st.tuples(
                    st.just(("info",)),
                    st.one_of(TEXT, st.lists(SCALARS, min_size=1), st.integers()),
                ),
                st.tuples(
                    st.just(()), st.one_of(st.lists(SCALARS), TEXT, st.integers(), st.none())
                ),
            )
        )
        return _apply(meta, path, value), arrays
    key = draw(st.sampled_from(sorted(arrays)))
    change = draw(st.sampled_from(["drop", "shape", "nan", "dtype"]))
    if change == "drop":
        arrays.pop(key)
    elif change == "shape":
        arrays[key] = np.zeros(draw(st.sampled_from([(3,), (2, 2), (), (9, 9, 9)])))
    elif change == "nan":
        arrays[key] = np.full_like(arrays[key], np.nan)
    else:
        arrays[key] = np.array(["a"] * arrays[key].size)
    return meta, arrays


@fuzz(70)
@given(kind=st.sampled_from(sorted(MFG_FILES)), data=st.data())
def test_damaged_reference_folders(inside, kind, data):
    case = _fresh_case(inside, inside / "valid" / kind / "reference")
    if data.draw(st.booleans()):
        name = data.draw(st.sampled_from(["reference.json", "reference.npz"]))
        damaged = _damage_bytes(data.draw, (case / name).read_bytes(), name.endswith(".json"))
        _write(case / name, data.draw(st.sampled_from([damaged, "dir"])))
    else:
        meta = json.loads((case / "reference.json").read_text())
        with np.load(case / "reference.npz") as npz:
            arrays = {k: np.array(npz[k]) for k in npz.files}
        meta, arrays = _reference_breaker(kind, meta, arrays, data.draw)
        _write(case / "reference.json", _json_bytes(meta))
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        _write(case / "reference.npz", buf.getvalue())
    solution = str(inside / "valid" / kind / "solution")
    argv = ["compare", MFG_FILES[kind], "--solution", solution, "--reference", str(case)]
    run_cli(inside, [*argv, "--out", "case/out"])


@fuzz(20)
@given(
    kind=st.sampled_from(sorted(MFG_FILES)), folder=st.sampled_from(["nowhere", "files", "held"])
)
def test_compare_with_missing_folders(inside, kind, folder):
    run_cli(inside, ["compare", MFG_FILES[kind], "--solution", folder, "--out", "case/out"])
    solution = str(inside / "valid" / kind / "solution")
    argv = ["compare", MFG_FILES[kind], "--solution", solution, "--reference", folder]
    run_cli(inside, [*argv, "--out", "case/out"])


@fuzz(10)
@given(folder=st.sampled_from(["valid/fbsde/solution", "valid/ergodic/solution", "nowhere"]))
def test_compare_of_an_fbsde(inside, folder):
    run_cli(inside, ["compare", FBSDE, "--solution", folder, "--out", "case/out"])


def _state_breaker(state: dict, draw):
    """A training state no run can continue from (a checkpoint from before fingerprints, with no
    "run", and the constant of a least-squares run, which is not kept, are left alone)."""
    keys = sorted(set(state) - {"constant", "run"})
    change = draw(st.sampled_from(["drop", "type", "value", "root", "run"]))
    if change == "drop":
        state.pop(draw(st.sampled_from(keys)))
    elif change == "type":
        state[draw(st.sampled_from(keys))] = draw(st.sampled_from(["x", [1, 2], None, {"a": 1}]))
    elif change == "value":
        which = draw(st.sampled_from(["format", "iteration", "value_net", "history", "seconds"]))
        bad = {
            "format": st.text(max_size=5),
            "iteration": st.one_of(
                st.integers(max_value=-1),
                st.integers(min_value=4),  # past the run's 3 iterations
                st.just(True),
                st.text(max_size=3),
                st.floats(),
            ),
            "value_net": st.just({"nope": torch.zeros(2)}),
            "history": st.one_of(st.integers(), st.text(max_size=3), st.just([1])),
            "seconds": st.one_of(
                st.text(max_size=3), st.lists(st.integers()), st.floats(max_value=-1e-9)
            ),
        }[which]
        state[which] = draw(bad)
    elif change == "root":
        state = draw(st.sampled_from([[1, 2], "x", 5, {}]))
    else:
        state["run"] = draw(st.sampled_from(["x", 5, [1], {"problem": "other"}]))
    return state


@fuzz(55)
@given(data=st.data())
def test_damaged_checkpoints_for_resume(inside, data):
    case = inside / "case" / "run"
    if case.exists():
        shutil.rmtree(case)
    (case / "checkpoint").mkdir(parents=True)
    (case / "metrics.json").write_bytes(data.draw(st.sampled_from([b"{", b"\xff\xfe", b"{}"])))
    (case / "solution").mkdir()
    (case / "solution" / "solution.json").write_bytes(b'{"truncated": ')
    valid = (inside / "valid" / "ergodic" / "train_state.pt").read_bytes()
    target = case / "checkpoint" / "train_state.pt"
    how = data.draw(st.sampled_from(["bytes", "structure", "fingerprint"]))
    extra: list[str] = []
    if how == "bytes":
        damaged = _damage_bytes(data.draw, valid)
        assume(damaged is not None)  # no checkpoint at all would start afresh
        _write(target, data.draw(st.sampled_from([damaged, "dir"])))
    elif how == "structure":
        state = torch.load(io.BytesIO(valid), weights_only=True)
        buf = io.BytesIO()
        torch.save(_state_breaker(state, data.draw), buf)
        _write(target, buf.getvalue())
    else:  # a valid checkpoint of another run
        _write(target, valid)
        extra = data.draw(
            st.sampled_from(
                [
                    ["--seed", "1"],
                    ["--method", "joint"],
                    ["--option", "width=17"],
                    ["--lr", "0.01"],
                    ["--batch-size", "64"],
                ]
            )
        )
    argv = ["solve", ERGODIC, "--iterations", "3", "--quiet", "--resume", str(case), *extra]
    run_cli(inside, argv)
