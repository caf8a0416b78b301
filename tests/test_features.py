"""Network inputs taken from the problem (mfgsolve.nn.features): what is found, what is left out,
and that the networks stay exactly periodic."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mfgsolve import load_problem, solve
from mfgsolve.nn.features import plane_wave_directions, problem_features

ROOT = Path(__file__).resolve().parent.parent
UNSEEN = ROOT / "problems" / "unseen"


def test_mixed_directions_are_found_and_axis_modes_are_not_repeated():
    plane = load_problem(UNSEEN / "plane_waves_nd.py", d=4, waves=2)
    assert plane_wave_directions(plane) == [(1, 1, 1, 1), (1, -1, 1, -1)]
    separable = load_problem(ROOT / "problems" / "ergodic_torus_nd.py", d=4)
    assert plane_wave_directions(separable) == []
    # an axis frequency above the harmonics is a plane wave the inputs lack; at or below, not
    assert plane_wave_directions(separable, harmonics=1) == []
    two = load_problem(ROOT / "problems" / "ergodic_torus_1d_double_well.py")
    assert plane_wave_directions(two, harmonics=1) == [(2,)]
    assert plane_wave_directions(two, harmonics=2) == []


def test_separable_problems_keep_exactly_the_per_axis_inputs():
    separable = load_problem(ROOT / "problems" / "ergodic_torus_nd.py", d=4)
    assert problem_features(separable, "problem", 1, time=False) is None
    seed = load_problem(ROOT / "problems" / "ergodic_torus_1d.py")
    a = solve(seed, seed=0, iterations=20, progress=False)
    b = solve(seed, seed=0, iterations=20, progress=False, features="axes")
    x = np.linspace(0, 1, 17)[:, None]
    assert np.array_equal(a.density(x), b.density(x)) and np.array_equal(a.value(x), b.value(x))


def test_a_product_of_cosines_enters_as_a_function_and_a_plane_wave_does_not():
    product = load_problem(UNSEEN / "cosine_product_nd.py", d=4)
    extra = problem_features(product, "problem", 1, time=False)
    assert extra is not None and len(extra.expressions) == 1 and "cos" in extra.expressions[0]
    plane = load_problem(UNSEEN / "plane_waves_nd.py", d=4, waves=1)
    extra = problem_features(plane, "problem", 1, time=False)
    assert extra.expressions == [] and extra.out_features == 2  # cos, sin of the one wave


def test_networks_with_problem_inputs_are_exactly_periodic():
    for problem in (
        load_problem(UNSEEN / "cosine_product_nd.py", d=4),
        load_problem(UNSEEN / "plane_waves_nd.py", d=4, waves=2),
    ):
        sol = solve(problem, seed=0, iterations=3, progress=False, dtype="float64")
        x = np.random.default_rng(0).random((64, 4))
        for i in range(4):
            shifted = x.copy()
            shifted[:, i] += 1.0
            assert np.allclose(sol.density(shifted), sol.density(x), rtol=1e-12, atol=0)
            assert np.allclose(sol.value(shifted), sol.value(x), rtol=1e-12, atol=1e-14)
        assert sol.info["options"]["features"] == "problem"
