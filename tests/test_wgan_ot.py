"""WGAN as optimal transport: exact W1 (LP / scipy) and the critic estimate."""

import numpy as np
import pytest
import scipy.optimize
import scipy.stats

from mfgsolve.dynamics import DynamicsError, critic_w1, exact_w1
from mfgsolve.dynamics.wgan import exact_potential_1d

pytestmark = pytest.mark.usefixtures("one_thread")


def test_lp_matches_assignment_problem_in_2d():
    # equal sizes and uniform weights: an optimal plan is a permutation (Birkhoff)
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(60, 2)), rng.normal(1.0, 0.5, size=(60, 2))
    w1, plan = exact_w1(x, y)
    cost = np.linalg.norm(x[:, None] - y[None], axis=-1)
    r, c = scipy.optimize.linear_sum_assignment(cost)
    assert w1 == pytest.approx(cost[r, c].mean(), rel=1e-9)
    np.testing.assert_allclose(plan.sum(1), 1 / 60, atol=1e-12)
    np.testing.assert_allclose(plan.sum(0), 1 / 60, atol=1e-12)


def test_lp_unequal_sizes_in_1d_embedding_matches_scipy():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=50), rng.exponential(size=70)
    zeros = np.zeros
    w1_lp, _ = exact_w1(np.c_[x, zeros(50)], np.c_[y, zeros(70)])
    assert w1_lp == pytest.approx(scipy.stats.wasserstein_distance(x, y), rel=1e-9)


def test_exact_potential_1d_attains_w1():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=300), rng.normal(0.7, 1.5, size=300)
    grid = np.sort(np.concatenate([x, y]))
    pot = exact_potential_1d(x, y, grid)
    f = np.interp(x, grid, pot).mean() - np.interp(y, grid, pot).mean()
    assert f == pytest.approx(scipy.stats.wasserstein_distance(x, y), rel=1e-9)


def test_critic_estimates_w1_within_5_percent_in_1d():
    rng = np.random.default_rng(0)
    x, y = rng.normal(0, 1, 150), rng.normal(1.5, 1, 150)
    exact, _ = exact_w1(x, y)
    res = critic_w1(x, y, iterations=250, width=32, seed=0)
    assert abs(res.w1 - exact) / exact < 0.05
    assert res.lower_bound <= exact * (1 + 1e-9)  # certified lower bound
    assert res.lipschitz < 1.15


def test_bad_samples():
    with pytest.raises(DynamicsError, match="dimension"):
        exact_w1(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(DynamicsError, match="finite"):
        critic_w1(np.array([0.0, np.nan]), np.zeros(2))
