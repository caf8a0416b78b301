"""The public API (mfgsolve/__init__.py) and the result protocol (mfgsolve.result)."""

import importlib
import pkgutil
from pathlib import Path

import numpy as np
import pytest

import mfgsolve
from mfgsolve import (
    BadInput,
    FBSDESolution,
    ReferenceSolution,
    RunFailed,
    Solution,
    compare,
    load_problem,
    reference_solve,
    solve,
)
from mfgsolve.result import Result

ROOT = Path(__file__).resolve().parent.parent


def _submodules() -> list[str]:
    return [
        m.name
        for m in pkgutil.walk_packages(mfgsolve.__path__, "mfgsolve.")
        if not m.name.endswith("__main__")  # running it is the CLI
    ]


def test_no_public_name_shadows_a_module():
    """``mfgsolve.X`` is never both a function and a module: every module imports as itself."""
    modules = set(_submodules())
    for name in mfgsolve.__all__:
        assert f"mfgsolve.{name}" not in modules, name
    for name in modules:
        module = importlib.import_module(name)
        parent, _, leaf = name.rpartition(".")
        assert getattr(importlib.import_module(parent), leaf) is module, name


def test_metrics_is_a_module_and_compare_its_function():
    import mfgsolve.metrics as metrics

    assert metrics.compare is mfgsolve.compare
    assert callable(mfgsolve.compare)


def test_error_classes_users_catch_are_exported_with_their_exit_status():
    assert issubclass(mfgsolve.ProblemError, BadInput)
    assert issubclass(mfgsolve.OptionError, BadInput)
    assert issubclass(mfgsolve.CheckpointError, BadInput)
    assert BadInput.exit_status == 2
    for cls in (
        mfgsolve.TrainingDiverged,
        mfgsolve.ReferenceSolveError,
        mfgsolve.FBSDEDivergedError,
    ):
        assert issubclass(cls, RunFailed) and cls.exit_status == 1
    assert "SolverOptions" in mfgsolve.__all__


def test_solve_and_compare_serve_every_problem_kind():
    """One solve and one compare for ergodic, finite-horizon and FBSDE problems; every result
    follows the protocol and says its kind."""
    results = [
        solve(
            load_problem(ROOT / "problems" / "ergodic_torus_1d.py"), iterations=4, progress=False
        ),
        solve(load_problem(ROOT / "problems" / "fh_torus_1d.py"), iterations=2, progress=False),
        solve(load_problem(ROOT / "problems" / "fbsde_bsb.py"), iterations=3, progress=False),
        reference_solve(load_problem(ROOT / "problems" / "ergodic_torus_1d.py"), grid=32),
    ]
    kinds = [r.kind for r in results]
    assert kinds == ["network", "network", "fbsde", "reference"]
    types = [Solution, Solution, FBSDESolution, ReferenceSolution]
    for result, cls in zip(results, types):
        assert isinstance(result, cls) and isinstance(result, Result)
        assert isinstance(result.info, dict) and isinstance(result.history, list)
        metrics = compare(result)
        key = "y0_rel" if result.kind == "fbsde" else "m_rel_l2"
        assert np.isfinite(metrics[key])


def test_solve_refuses_what_it_cannot_solve():
    with pytest.raises(mfgsolve.ProblemError, match="cannot solve a str"):
        solve("problems/ergodic_torus_1d.py")
    with pytest.raises(mfgsolve.OptionError, match="unknown device"):
        solve(load_problem(ROOT / "problems" / "ergodic_torus_1d.py"), device="gpu9", iterations=1)


def _modules_loaded_by(code: str) -> set[str]:
    """The heavy libraries a fresh interpreter has imported after running ``code``."""
    import subprocess
    import sys

    probe = (
        f"{code}\nimport sys\n"
        "print(' '.join(m for m in ('torch', 'scipy', 'matplotlib', 'sympy') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(done.stdout.split())


def test_import_mfgsolve_loads_no_heavy_library_until_a_name_is_used():
    assert _modules_loaded_by("import mfgsolve") == set()
    assert "torch" in _modules_loaded_by("from mfgsolve import solve")
    assert "scipy" not in _modules_loaded_by("from mfgsolve import solve, load_problem")


def test_every_public_name_resolves_and_is_listed():
    import mfgsolve

    for name in mfgsolve.__all__:
        assert getattr(mfgsolve, name) is not None, name
    assert set(mfgsolve.__all__) <= set(dir(mfgsolve))
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        mfgsolve.not_a_name  # noqa: B018


def test_help_of_every_command_imports_neither_torch_nor_sympy():
    for argv in (["--help"], *([cmd, "--help"] for cmd in _COMMANDS)):
        code = (
            "import contextlib, io\nfrom mfgsolve.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    try: main({argv!r})\n    except SystemExit: pass"
        )
        assert _modules_loaded_by(code) == set(), argv


_COMMANDS = ("check", "solve", "reference", "compare", "sweep", "bench")


def test_check_loads_neither_scipy_nor_matplotlib():
    code = (
        "import contextlib, io\nfrom mfgsolve.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['check', 'problems/ergodic_torus_1d.py']) == 0"
    )
    assert _modules_loaded_by(f"import os; os.chdir({str(ROOT)!r})\n{code}") == {"torch", "sympy"}
