"""Collocation sampling: importance sampling from the density keeps the losses unbiased."""

from pathlib import Path

import numpy as np
import pytest
import scipy.special as sc
import torch

from mfgsolve import load_problem, solve
from mfgsolve.sampling import density_resample

ROOT = Path(__file__).resolve().parent.parent


def _seed_log_density(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(2 * np.pi * x[:, 0]) - float(np.log(sc.i0(1.0)))  # int m = 1 on [0, 1)


def test_density_resampling_is_unbiased_and_draws_from_m():
    gen = torch.Generator().manual_seed(0)
    pool = torch.rand(400_000, 1, generator=gen, dtype=torch.float64)
    points, weights = density_resample(
        pool, _seed_log_density(pool), 100_000, 0.5, 1.0, torch.Generator().manual_seed(1)
    )
    x = points[:, 0].numpy()
    g = np.cos(2 * np.pi * x) ** 2 + x  # int_0^1 g = 1/2 + 1/2 = 1
    assert np.mean(weights.numpy() * g) == pytest.approx(1.0, abs=1e-2)
    # the resampled half follows m: E_m[sin 2 pi x] = I1(1) / I0(1)
    drawn = np.sin(2 * np.pi * x[50_000:])
    assert drawn.mean() == pytest.approx(sc.i1(1.0) / sc.i0(1.0), abs=1e-2)
    # the weights are 1 / ((1 - f) + f m): small where m is large
    m = torch.exp(_seed_log_density(points)).numpy()
    np.testing.assert_allclose(weights.numpy(), 1 / (0.5 + 0.5 * m), rtol=1e-12)


def test_no_density_share_is_the_plain_batch():
    pool = torch.rand(64, 2, dtype=torch.float64)
    points, weights = density_resample(
        pool, torch.zeros(64, dtype=torch.float64), 16, 0.0, 1.0, torch.Generator()
    )
    assert torch.equal(points, pool[:16]) and torch.equal(
        weights, torch.ones(16, dtype=torch.float64)
    )


def test_training_with_density_sampling_moves_towards_the_exact_solution():
    problem = load_problem(ROOT / "problems" / "ergodic_torus_1d.py")
    sol = solve(problem, iterations=300, seed=0, progress=False, sampling="density")
    assert sol.history[-1]["m_rel_l2"] < 0.15  # the uniform density is at ~0.5
    assert abs(sol.constant - float(np.log(sc.i0(1.0)))) < 0.05
