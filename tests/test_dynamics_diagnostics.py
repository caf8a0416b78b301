"""Training diagnostics on a general-sum quadratic game whose gradient, Jacobian and noise are known."""

import math

import numpy as np
import pytest
import torch

from mfgsolve.dynamics import CORRECTION_WARN, NOISE_WARN, DynamicsError, game_diagnostics, suggest

RNG = np.random.default_rng(0)
P, Q = 2, 3
A = RNG.normal(size=(P, P))
A = A @ A.T + np.eye(P)
B = RNG.normal(size=(P, Q))
D = RNG.normal(size=(Q, Q))
D = D @ D.T + np.eye(Q)
E = RNG.normal(size=(Q, P))
THETA0 = RNG.normal(size=P)
OMEGA0 = RNG.normal(size=Q)


pytestmark = pytest.mark.usefixtures("one_thread")


def _game(noise: float, n: int, seed: int):
    """L_G = theta'A theta/2 + theta'B omega + mean(p_G)'theta, L_D likewise with D, E, p_D."""
    theta = torch.tensor(THETA0, requires_grad=True)
    omega = torch.tensor(OMEGA0, requires_grad=True)
    gen = torch.Generator().manual_seed(seed)
    points = noise * torch.randn(n, P + Q, generator=gen, dtype=torch.float64)
    At, Bt, Dt, Et = (torch.tensor(m) for m in (A, B, D, E))

    def loss_g(pts):
        return 0.5 * theta @ At @ theta + theta @ Bt @ omega + pts[:, :P].mean(0) @ theta

    def loss_d(pts):
        return 0.5 * omega @ Dt @ omega + omega @ Et @ theta + pts[:, P:].mean(0) @ omega

    losses = {"generator": loss_g, "discriminator": loss_d}
    params = {"generator": [theta], "discriminator": [omega]}
    return losses, params, points


def test_diagnostics_match_closed_form():
    lrs = {"generator": 0.05, "discriminator": 0.2}
    losses, params, points = _game(noise=0.7, n=256, seed=1)
    diag = game_diagnostics(losses, params, lrs, points, n_groups=8)
    pts = points.numpy()
    g_g = A @ THETA0 + B @ OMEGA0 + pts[:, :P].mean(0)
    g_d = D @ OMEGA0 + E @ THETA0 + pts[:, P:].mean(0)
    jac = np.block([[A, B], [E, D]])
    jv = jac @ np.concatenate([lrs["generator"] * g_g, lrs["discriminator"] * g_d])
    groups = pts.reshape(8, 32, P + Q).mean(axis=1)  # micro-batch gradient noise = group means
    for name, g, sl in (("generator", g_g, slice(0, P)), ("discriminator", g_d, slice(P, P + Q))):
        var = ((groups[:, sl] - groups[:, sl].mean(0)) ** 2).sum() / 7
        assert diag[f"{name}/grad_norm"] == pytest.approx(np.linalg.norm(g), rel=1e-12)
        assert diag[f"{name}/correction_ratio"] == pytest.approx(
            np.linalg.norm(jv[sl]) / (2 * np.linalg.norm(g)), rel=1e-10
        )
        assert diag[f"{name}/noise_std"] == pytest.approx(math.sqrt(var / 8), rel=1e-10)
        assert diag[f"{name}/beta"] == pytest.approx(2 * 256 / lrs[name])


def test_noise_std_is_unbiased_for_the_full_batch_gradient_noise():
    # per-sample noise N(0, s^2 I_k) => full-batch gradient noise has tr Sigma / B = k s^2 / B
    s, n = 0.7, 256
    lrs = {"generator": 0.1, "discriminator": 0.1}
    est = []
    for seed in range(60):
        losses, params, points = _game(noise=s, n=n, seed=seed)
        diag = game_diagnostics(losses, params, lrs, points)
        est.append(diag["discriminator/noise_std"] ** 2)
    # mean of 60 chi^2_7 / 7 variables: relative sd sqrt(2 / 7 / 60) ~ 7%
    assert np.mean(est) == pytest.approx(Q * s**2 / n, rel=0.25)


def test_jvp_on_a_network_matches_dense_jacobian():
    torch.manual_seed(0)
    gen_net = torch.nn.Sequential(torch.nn.Linear(1, 5), torch.nn.Tanh(), torch.nn.Linear(5, 1))
    dis_net = torch.nn.Sequential(torch.nn.Linear(1, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    pts = torch.linspace(-1, 1, 64).unsqueeze(1)

    def loss_g(x):
        return -dis_net(gen_net(x)).mean() + 0.1 * gen_net(x).pow(2).mean()

    def loss_d(x):
        return dis_net(gen_net(x)).mean() - dis_net(x).mean() + 0.5 * dis_net(x).pow(2).mean()

    params = {"generator": list(gen_net.parameters()), "discriminator": list(dis_net.parameters())}
    lrs = {"generator": 0.01, "discriminator": 0.03}
    diag = game_diagnostics({"generator": loss_g, "discriminator": loss_d}, params, lrs, pts)

    # dense reference: g(x) as a function of the flat parameter vector
    shapes = [p.shape for p in params["generator"] + params["discriminator"]]
    n_g = sum(p.numel() for p in params["generator"])
    flat0 = torch.cat(
        [p.detach().reshape(-1) for p in params["generator"] + params["discriminator"]]
    )

    def field(flat):
        chunks, i = [], 0
        for s in shapes:
            chunks.append(flat[i : i + s.numel()].reshape(s))
            i += s.numel()
        names_g = [n for n, _ in gen_net.named_parameters()]
        names_d = [n for n, _ in dis_net.named_parameters()]
        pg = dict(zip(names_g, chunks[: len(names_g)]))
        pd = dict(zip(names_d, chunks[len(names_g) :]))
        fg = lambda x: torch.func.functional_call(gen_net, pg, (x,))  # noqa: E731
        fd = lambda x: torch.func.functional_call(dis_net, pd, (x,))  # noqa: E731
        lg = -fd(fg(pts)).mean() + 0.1 * fg(pts).pow(2).mean()
        ld = fd(fg(pts)).mean() - fd(pts).mean() + 0.5 * fd(pts).pow(2).mean()
        gg = torch.autograd.grad(lg, chunks[: len(names_g)], create_graph=True)
        gd = torch.autograd.grad(ld, chunks[len(names_g) :], create_graph=True)
        return torch.cat([t.reshape(-1) for t in gg + gd])

    jac = torch.autograd.functional.jacobian(field, flat0)
    g = field(flat0.clone().requires_grad_(True)).detach()
    v = torch.cat([lrs["generator"] * g[:n_g], lrs["discriminator"] * g[n_g:]])
    jv = jac @ v
    for name, sl in (("generator", slice(0, n_g)), ("discriminator", slice(n_g, None))):
        expected = float(jv[sl].norm() / (2 * g[sl].norm()))
        assert diag[f"{name}/correction_ratio"] == pytest.approx(expected, rel=1e-4)


def test_suggest_thresholds():
    lrs = {"generator": 1e-3, "discriminator": 1e-3}
    calm = {
        "generator/correction_ratio": 0.1,
        "generator/noise_ratio": 1.0,
        "discriminator/correction_ratio": 0.2,
        "discriminator/noise_ratio": 2.0,
    }
    assert suggest(calm, 512, lrs) is None
    hot = dict(calm, **{"discriminator/correction_ratio": 4 * CORRECTION_WARN})
    msg = suggest(hot, 512, lrs)
    assert msg is not None and "\n" not in msg
    assert "discriminator" in msg and "to 0.000125" in msg  # 1e-3 * 0.25 / 2.0
    noisy = dict(calm, **{"generator/noise_ratio": 2 * NOISE_WARN})
    msg = suggest(noisy, 512, lrs)
    assert msg is not None and "generator" in msg and "to 22756" in msg  # 512 * (20 / 3)^2


def test_large_learning_rate_triggers_warning_on_the_quadratic_game():
    losses, params, points = _game(noise=0.1, n=64, seed=0)
    lrs = {"generator": 1.0, "discriminator": 1.0}
    diag = game_diagnostics(losses, params, lrs, points)
    assert max(diag["generator/correction_ratio"], diag["discriminator/correction_ratio"]) > 0.5
    assert suggest(diag, 64, lrs) is not None
    small = {"generator": 1e-3, "discriminator": 1e-3}
    assert suggest(game_diagnostics(losses, params, small, points), 64, small) is None


def test_bad_inputs():
    losses, params, points = _game(noise=0.1, n=64, seed=0)
    lrs = {"generator": 0.1, "discriminator": 0.1}
    with pytest.raises(DynamicsError, match="no entry 'discriminator'"):
        game_diagnostics({"generator": losses["generator"]}, params, lrs, points)
    with pytest.raises(DynamicsError, match="requires_grad"):
        game_diagnostics(losses, {**params, "generator": [torch.zeros(2)]}, lrs, points)
    with pytest.raises(DynamicsError, match="positive number"):
        game_diagnostics(losses, params, {**lrs, "generator": 0.0}, points)
    with pytest.raises(DynamicsError, match="at least n_groups"):
        game_diagnostics(losses, params, lrs, points[:4])


def test_pinn_style_losses_with_input_derivatives():
    """Residual losses differentiate the networks in x; the JVP then needs third derivatives."""
    torch.manual_seed(1)
    u = torch.nn.Sequential(torch.nn.Linear(1, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    m = torch.nn.Sequential(torch.nn.Linear(1, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    pts = torch.rand(64, 1)

    def u_x(x):
        x = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(u(x).sum(), x, create_graph=True)
        return g

    def loss_g(x):  # HJB-like residual weighted by the discriminator's density
        return ((0.5 * u_x(x) ** 2 + torch.sin(6 * x) - m(x)) ** 2).mean()

    def loss_d(x):  # FP-like residual
        return ((m(x) * u_x(x) - 0.1) ** 2).mean()

    losses = {"generator": loss_g, "discriminator": loss_d}
    params = {"generator": list(u.parameters()), "discriminator": list(m.parameters())}
    lrs = {"generator": 1e-2, "discriminator": 3e-2}
    d1 = game_diagnostics(losses, params, lrs, pts)
    d2 = game_diagnostics(losses, params, {k: 2 * v for k, v in lrs.items()}, pts)
    for p in ("generator", "discriminator"):
        assert all(math.isfinite(d1[f"{p}/{k}"]) for k in ("grad_norm", "noise_std", "beta"))
        assert d1[f"{p}/correction_ratio"] > 0
        # the correction is linear in the learning rates; the noise level does not depend on them
        assert d2[f"{p}/correction_ratio"] == pytest.approx(2 * d1[f"{p}/correction_ratio"])
        assert d2[f"{p}/noise_std"] == pytest.approx(d1[f"{p}/noise_std"])
