"""SDE model of gradient descent-ascent: corrections, exact weak-error slopes, coupled simulation."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from mfgsolve.dynamics import (
    DiracGAN,
    DynamicsError,
    LinearQuadraticGame,
    correction,
    drift_covariance,
    exact_weak_errors,
    fit_slope,
    linearise,
    ou_moments,
    sga_moments,
    simulate,
    simulate_minibatch_sga,
)

SCHEMES = ("alternating", "simultaneous", "alternating-generator-first")
T = 2.0
ETAS = [T / n for n in (32, 64, 128, 256)]
X0 = np.array([1.0, 0.5])


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("scheme", SCHEMES)
def test_jvp_correction_matches_hand_derived_matrix(scheme):
    game = LinearQuadraticGame(a=1.0, b=0.7, c=0.3)
    mats = linearise(game.objective, 1, 1, eta=0.1, scheme=scheme)
    np.testing.assert_allclose(mats["A"], game.drift_matrix(), atol=1e-14)
    np.testing.assert_allclose(mats["C"], game.correction_matrix(scheme), atol=1e-14)


def test_alternating_correction_is_the_seed_matrix_on_a_nonlinear_game():
    # c = 1/2 [[g_tt, -g_to], [-g_ot, -g_oo]] (-g_theta, g_omega) with dense derivatives (autograd)
    game = DiracGAN(a=0.3, c=1.0)
    x = torch.tensor([0.8, -1.3], dtype=torch.float64)

    def obj(z):
        return game.objective(z[:1], z[1:])

    g = torch.autograd.functional.jacobian(obj, x)
    h = torch.autograd.functional.hessian(obj, x)
    seed = torch.tensor([[h[0, 0], -h[0, 1]], [-h[1, 0], -h[1, 1]]])
    expected = 0.5 * seed @ torch.stack([-g[0], g[1]])
    c_theta, c_omega = correction(game.objective, x[:1], x[1:], "alternating")
    torch.testing.assert_close(torch.cat([c_theta, c_omega]), expected, rtol=1e-12, atol=1e-14)
    # the simultaneous scheme flips the off-diagonal signs: -1/2 J b with J = [[-h_tt, -h_to], ...]
    jac_b = torch.stack([-h[0], h[1]])
    expected_sim = -0.5 * jac_b @ torch.stack([-g[0], g[1]])
    c_theta, c_omega = correction(game.objective, x[:1], x[1:], "simultaneous")
    torch.testing.assert_close(torch.cat([c_theta, c_omega]), expected_sim, rtol=1e-12, atol=1e-14)


def test_sga_step_matrix_for_alternating_updates():
    game = LinearQuadraticGame(a=1.0, b=0.7, c=0.3)
    eta, (a, b, c) = 0.1, (game.a, game.b, game.c)
    mats = linearise(game.objective, 1, 1, eta=eta, scheme="alternating")
    # omega' = omega + eta (b theta - c omega); theta' = theta - eta (a theta + b omega')
    M = np.array([[1 - eta * a - eta**2 * b**2, -eta * b * (1 - eta * c)], [eta * b, 1 - eta * c]])
    np.testing.assert_allclose(mats["M"], M, atol=1e-14)
    np.testing.assert_allclose(mats["N"], [[1.0, -eta * b], [0.0, 1.0]], atol=1e-14)


def test_ou_moments_scalar_closed_form():
    lam, s2, x0, t = 0.7, 0.3, 1.2, 1.5
    m, s = ou_moments(np.array([[-lam]]), np.array([[s2]]), np.array([x0]), t)
    var = s2 * (1 - math.exp(-2 * lam * t)) / (2 * lam)
    assert m[0] == pytest.approx(x0 * math.exp(-lam * t), rel=1e-12)
    assert s[0, 0] == pytest.approx(var + m[0] ** 2, rel=1e-12)


@pytest.mark.parametrize("scheme", ["alternating", "simultaneous"])
def test_lq_exact_weak_error_slopes(scheme):
    game = LinearQuadraticGame(a=1.0, b=1.0, c=0.3)
    errors = {"sde": [], "sde-corrected": []}
    for eta in ETAS:
        e = exact_weak_errors(game.objective, 1, 1, X0, game.noise_cov(), 1, eta, T, scheme=scheme)
        for k in errors:
            errors[k].append(e[k])
    assert 0.85 <= fit_slope(ETAS, errors["sde"]) <= 1.15
    assert 1.85 <= fit_slope(ETAS, errors["sde-corrected"]) <= 2.15
    assert errors["sde-corrected"][-1] < 0.1 * errors["sde"][-1]


def _errors_with(game, eta, C, S_scale):
    """Weak error of an OU model with correction matrix C and diffusion covariance S_scale."""
    mats = linearise(game.objective, 1, 1, eta=eta, scheme="alternating")
    cov = game.noise_cov()
    n = round(T / eta)
    m1, s1 = sga_moments(mats["M"], mats["N"], cov * eta**2, X0, n)
    m2, s2 = ou_moments(mats["A"] + eta * C, cov * S_scale, X0, T)
    return np.linalg.norm(m1 - m2) + np.linalg.norm(s1 - s2)


def test_wrong_scheme_or_wrong_noise_scaling_loses_order_two():
    """Negative controls: the slope test really discriminates."""
    game = LinearQuadraticGame(a=1.0, b=1.0, c=0.3)
    wrong_scheme = [_errors_with(game, e, game.correction_matrix("simultaneous"), e) for e in ETAS]
    assert fit_slope(ETAS, wrong_scheme) < 1.15
    no_sqrt_eta = [_errors_with(game, e, game.correction_matrix("alternating"), e**2) for e in ETAS]
    assert fit_slope(ETAS, no_sqrt_eta) < 1.15
    right = [_errors_with(game, e, game.correction_matrix("alternating"), e) for e in ETAS]
    assert fit_slope(ETAS, right) > 1.85


def test_exact_moments_agree_with_monte_carlo_simulation():
    game = LinearQuadraticGame(a=1.0, b=1.0, c=0.3)
    eta, n, paths = 0.125, 8, 10_000
    cov = game.noise_cov()
    mats = linearise(game.objective, 1, 1, eta=eta, scheme="alternating")
    exact = {
        "sga": sga_moments(mats["M"], mats["N"], cov * eta**2, X0, n),
        "sde-corrected": ou_moments(mats["A"] + eta * mats["C"], cov * eta, X0, n * eta),
    }
    sim = simulate(
        game.objective,
        X0[:1],
        X0[1:],
        eta=eta,
        n_steps=n,
        methods=("sga", "sde-corrected"),
        noise_cov=torch.tensor(cov),
        n_paths=paths,
        substeps=8,
        seed=3,
    )
    for name, (m, s) in exact.items():
        x = sim[name].numpy()
        for values, target in ((x[:, 0], m[0]), (x[:, 1], m[1]), (x[:, 0] ** 2, s[0, 0])):
            se = values.std() / math.sqrt(paths)
            assert abs(values.mean() - target) < 4 * se + 2e-4 * abs(target)


@pytest.mark.parametrize("scheme", ["alternating", "simultaneous"])
def test_minibatch_sga_with_non_gaussian_data_matches_exact_moments(scheme):
    # linear dynamics: means and second moments depend on the noise only through Sigma / B
    game = LinearQuadraticGame(a=1.0, b=1.0, c=0.3, noise_theta=0.8, noise_omega=1.5)
    eta, n, batch, paths = 0.1, 10, 4, 10_000
    scale = torch.tensor([0.8, 1.5], dtype=torch.float64)

    def rademacher(k, gen):
        return (2.0 * torch.randint(0, 2, (k, 2), generator=gen) - 1.0) * scale

    x = simulate_minibatch_sga(
        game.loss, rademacher, X0[:1], X0[1:], eta=eta, n_steps=n, batch_size=batch,
        scheme=scheme, n_paths=paths, seed=5,
    ).numpy()  # fmt: skip
    mats = linearise(game.objective, 1, 1, eta=eta, scheme=scheme)
    m, s = sga_moments(mats["M"], mats["N"], game.noise_cov() * eta**2 / batch, X0, n)
    for values, target in ((x[:, 0], m[0]), (x[:, 1], m[1]), (x[:, 1] ** 2, s[1, 1])):
        assert abs(values.mean() - target) < 4 * values.std() / math.sqrt(paths)
    cross = x[:, 0] * x[:, 1]
    assert abs(cross.mean() - s[0, 1]) < 4 * cross.std() / math.sqrt(paths)


def test_coupled_paths_reduce_variance():
    game = DiracGAN()
    sim = simulate(
        game.objective,
        [1.5],
        [0.5],
        eta=1 / 16,
        n_steps=16,
        noise_cov=torch.tensor(game.noise_cov()),
        batch_size=4,
        n_paths=2000,
        substeps=2,
        seed=0,
    )
    diff = (sim["sga"] ** 2).sum(1) - (sim["sde-corrected"] ** 2).sum(1)
    spread = (sim["sga"] ** 2).sum(1)
    assert diff.std() < 0.05 * spread.std()


def test_drift_covariance_estimate_matches_closed_form():
    game = DiracGAN(noise_theta=0.5, noise_omega=2.0)
    batch = game.sample(20_000, torch.Generator().manual_seed(0))
    theta, omega = (
        torch.tensor([0.3], dtype=torch.float64),
        torch.tensor([-0.4], dtype=torch.float64),
    )
    cov = drift_covariance(game.loss, theta, omega, batch).numpy()
    expected = game.noise_cov()
    # sample variance of n Gaussians: relative sd sqrt(2 / n) ~ 1%
    np.testing.assert_allclose(np.diag(cov), np.diag(expected), rtol=0.05)
    assert abs(cov[0, 1]) < 0.05 * math.sqrt(expected[0, 0] * expected[1, 1])


def test_bad_inputs_raise_one_line_errors():
    game = LinearQuadraticGame()
    with pytest.raises(DynamicsError, match="unknown update scheme"):
        correction(game.objective, torch.zeros(1), torch.zeros(1), "sideways")
    with pytest.raises(DynamicsError, match="noise_cov has shape"):
        simulate(game.objective, [0.0], [0.0], eta=0.1, n_steps=2, noise_cov=torch.eye(3))
    with pytest.raises(DynamicsError, match="positive number"):
        simulate(game.objective, [0.0], [0.0], eta=-1.0, n_steps=2)
    with pytest.raises(DynamicsError, match="not a whole number"):
        exact_weak_errors(game.objective, 1, 1, X0, game.noise_cov(), 1, 0.3, 1.0)
    with pytest.raises(DynamicsError, match="not linear"):
        linearise(DiracGAN().objective, 1, 1, 0.1)
    with pytest.raises(DynamicsError, match="positive semi-definite"):
        simulate(game.objective, [0.0], [0.0], eta=0.1, n_steps=1, noise_cov=-torch.eye(2))


@pytest.mark.slow
def test_dirac_gan_monte_carlo_slopes():
    from mfgsolve._bench import load_benchmark

    bench = load_benchmark(Path(__file__).resolve().parent.parent, "dynamics")
    MIN_SIGNAL_TO_SE, WINDOWS, dirac_mc = bench.MIN_SIGNAL_TO_SE, bench.WINDOWS, bench.dirac_mc

    mc = dirac_mc(quick=False)
    for model, (lo, hi) in WINDOWS.items():
        assert lo <= fit_slope(mc["etas"], mc[model]) <= hi
        assert all(e >= MIN_SIGNAL_TO_SE * s for e, s in zip(mc[model], mc[f"{model}_se"]))
