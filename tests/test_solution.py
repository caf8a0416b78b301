"""Solution (mfgsolve.solution): save and load rebuild the problem that was solved."""

import os
from pathlib import Path

import numpy as np

from mfgsolve import Solution, load_problem, solve

ROOT = Path(__file__).resolve().parent.parent


def test_a_family_member_loads_as_the_problem_solved(tmp_path):
    """A solution of a family's member (``--set d=2``) records the settings and the absolute file,
    so Solution.load rebuilds that member, not the family's default, from any folder."""
    family = ROOT / "problems" / "ergodic_torus_nd.py"
    default = load_problem(family)
    problem = load_problem(os.path.relpath(family), d=2)
    assert problem.dim == 2 != default.dim
    sol = solve(problem, iterations=2, eval_every=1, progress=False)
    sol.save(tmp_path / "sol")
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)  # the recorded path must not depend on the folder it was saved from
        back = Solution.load(tmp_path / "sol")
    finally:
        os.chdir(cwd)
    assert back.problem.dim == 2 and back.problem.settings == {"d": 2}
    pts = np.random.default_rng(0).random((16, 2))
    assert np.array_equal(back.density(pts), sol.density(pts))
    assert np.array_equal(back.value(pts), sol.value(pts))
