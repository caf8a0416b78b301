"""Coupled simulation of stochastic gradient descent-ascent and its SDE approximations.

All requested processes are driven by the *same* Brownian increments, so that their differences have
a Monte-Carlo error far below the differences themselves:

* ``"sga"``: the iterates ``x_{n+1} = x_n + eta * (b(x_n) + xi_n)`` (simultaneous) or the
  alternating version (see :data:`mfgsolve.dynamics.game.SCHEMES`), where the minibatch drift noise
  ``xi_n ~ N(0, Sigma / B)`` is taken as ``eta * xi_n = sqrt(eta) * (Sigma / B)^(1/2) dW_n`` with
  ``dW_n`` the Brownian increment over ``[n eta, (n + 1) eta]``;
* ``"sde"``: ``dX = b(X) dt + sqrt(2 / beta) Sigma^(1/2) dW`` with ``beta = 2 B / eta``;
* ``"sde-corrected"``: the same with drift ``b + eta * c`` (modified equation of the scheme).

The SDEs are integrated with ``substeps`` stochastic-Heun substeps per learning-rate step, which is
weak order 2 for additive noise (the diffusion here is constant), so the integration error
O((eta / substeps)^2) stays below the O(eta^2) effect being measured.

Alternating schemes draw an independent minibatch for each player, so only the diagonal blocks of
``Sigma`` (generator-generator, discriminator-discriminator) enter them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch.func import grad, vmap

from .game import DynamicsError, Objective, batched, check_scheme, corrected_drift, drift

METHODS = ("sga", "sde", "sde-corrected")


def psd_sqrt(cov: torch.Tensor) -> torch.Tensor:
    """Symmetric square root of a positive semi-definite matrix (tiny negative eigenvalues -> 0)."""
    evals, evecs = torch.linalg.eigh(0.5 * (cov + cov.T))
    scale = evals.abs().max().clamp_min(1e-300)
    if bool((evals < -1e-10 * scale).any()):
        raise DynamicsError(
            f"noise covariance is not positive semi-definite (eigenvalue {evals.min().item():.3g}); "
            "fix: pass a covariance matrix, e.g. from drift_covariance"
        )
    return (evecs * evals.clamp_min(0).sqrt()) @ evecs.T


def block_diagonal(cov: torch.Tensor, dim_theta: int) -> torch.Tensor:
    """Zero the generator-discriminator cross blocks of a covariance (independent minibatches)."""
    out = cov.clone()
    out[:dim_theta, dim_theta:] = 0
    out[dim_theta:, :dim_theta] = 0
    return out


def sga_step(
    drift_fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    eta: float,
    noise: torch.Tensor,
    dim_theta: int,
    scheme: str,
) -> torch.Tensor:
    """One stochastic gradient descent-ascent step for stacked states ``x`` (n, p + q).

    Args:
        drift_fn: batched drift ``(n, p + q) -> (n, p + q)``.
        x: current states.
        eta: learning rate.
        noise: ``eta * xi``, the minibatch noise of this step (n, p + q).
        dim_theta: number of generator parameters p.
        scheme: update order (see :data:`mfgsolve.dynamics.game.SCHEMES`).

    Returns:
        The new states.
    """
    p = dim_theta
    if scheme == "simultaneous":
        return x + eta * drift_fn(x) + noise
    if scheme == "alternating":  # discriminator first, generator at the new omega
        omega = x[:, p:] + eta * drift_fn(x)[:, p:] + noise[:, p:]
        x_mid = torch.cat([x[:, :p], omega], dim=1)
        theta = x[:, :p] + eta * drift_fn(x_mid)[:, :p] + noise[:, :p]
        return torch.cat([theta, omega], dim=1)
    if scheme == "alternating-generator-first":
        theta = x[:, :p] + eta * drift_fn(x)[:, :p] + noise[:, :p]
        x_mid = torch.cat([theta, x[:, p:]], dim=1)
        omega = x[:, p:] + eta * drift_fn(x_mid)[:, p:] + noise[:, p:]
        return torch.cat([theta, omega], dim=1)
    raise DynamicsError(check_scheme(scheme))  # pragma: no cover - check_scheme raises first


def heun_step(
    drift_fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    h: float,
    noise: torch.Tensor,
) -> torch.Tensor:
    """Stochastic Heun step for additive noise (weak order 2): ``noise = sigma dW`` over ``h``."""
    f0 = drift_fn(x)
    pred = x + h * f0 + noise
    return x + 0.5 * h * (f0 + drift_fn(pred)) + noise


def simulate(
    objective: Objective,
    theta0: Sequence[float] | torch.Tensor,
    omega0: Sequence[float] | torch.Tensor,
    *,
    eta: float,
    n_steps: int,
    methods: Sequence[str] = METHODS,
    scheme: str = "alternating",
    noise_cov: torch.Tensor | None = None,
    batch_size: int = 1,
    n_paths: int = 1,
    substeps: int = 4,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> dict[str, torch.Tensor]:
    """Simulate SGA iterates and the (corrected) SDE with shared Brownian increments.

    Args:
        objective: scalar torch function ``objective(theta, omega)``; theta minimises.
        theta0, omega0: initial parameters (the same deterministic start for all paths).
        eta: learning rate (time step of the iterates; the SDE time is ``n * eta``).
        n_steps: number of iterates; the horizon is ``T = n_steps * eta``.
        methods: any of ``"sga"``, ``"sde"``, ``"sde-corrected"``.
        scheme: update order of the iterates and of the correction.
        noise_cov: per-sample drift covariance ``Sigma`` (p + q, p + q), constant; None: no noise.
        batch_size: minibatch size ``B`` (noise covariance ``Sigma / B``; ``beta = 2 B / eta``).
        n_paths: number of coupled paths.
        substeps: Heun substeps of the SDEs per learning-rate step.
        seed: seed of the Brownian increments.
        dtype: floating type (float64 to resolve O(eta^2) differences).

    Returns:
        ``{method: (n_paths, p + q) states at time T}``, parameters ordered ``(theta, omega)``.
    """
    check_scheme(scheme)
    for m in methods:
        if m not in METHODS:
            raise DynamicsError(
                f"unknown method {m!r}; fix: use any of {', '.join(map(repr, METHODS))}"
            )
    if not (isinstance(eta, (int, float)) and math.isfinite(eta) and eta > 0):
        raise DynamicsError(f"learning rate eta must be a positive number, got {eta!r}")
    if int(n_steps) < 1 or int(substeps) < 1 or int(n_paths) < 1 or int(batch_size) < 1:
        raise DynamicsError(
            "n_steps, substeps, n_paths and batch_size must be positive integers; fix: pass e.g. "
            "n_steps=100, substeps=4"
        )
    theta0 = torch.as_tensor(theta0, dtype=dtype).reshape(-1)
    omega0 = torch.as_tensor(omega0, dtype=dtype).reshape(-1)
    p, d = theta0.numel(), theta0.numel() + omega0.numel()
    sigma = torch.zeros(d, d, dtype=dtype)
    if noise_cov is not None:
        cov = torch.as_tensor(noise_cov, dtype=dtype)
        if cov.shape != (d, d):
            raise DynamicsError(
                f"noise_cov has shape {tuple(cov.shape)}, expected ({d}, {d}) for {p} generator and "
                f"{d - p} discriminator parameters; fix: pass the drift covariance of (theta, omega)"
            )
        if scheme != "simultaneous":
            cov = block_diagonal(cov, p)
        sigma = psd_sqrt(cov * (eta / batch_size))  # sqrt(2 / beta) Sigma^(1/2)

    plain = batched(lambda t, o: drift(objective, t, o), p)
    fixed = batched(lambda t, o: corrected_drift(objective, t, o, eta, scheme), p)
    x0 = torch.cat([theta0, omega0]).expand(n_paths, d).clone()
    states = {m: x0.clone() for m in methods}
    gen = torch.Generator().manual_seed(seed)
    h = eta / substeps
    with torch.no_grad():
        for _ in range(int(n_steps)):
            dw = torch.randn(substeps, n_paths, d, generator=gen, dtype=dtype) * math.sqrt(h)
            noise = dw @ sigma.T
            if "sga" in states:
                states["sga"] = sga_step(plain, states["sga"], eta, noise.sum(0), p, scheme)
            for name, fn in (("sde", plain), ("sde-corrected", fixed)):
                if name in states:
                    x = states[name]
                    for k in range(substeps):
                        x = heun_step(fn, x, h, noise[k])
                    states[name] = x
    return states


def simulate_minibatch_sga(
    loss: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    sample: Callable[[int, torch.Generator], torch.Tensor],
    theta0: Sequence[float] | torch.Tensor,
    omega0: Sequence[float] | torch.Tensor,
    *,
    eta: float,
    n_steps: int,
    batch_size: int,
    scheme: str = "alternating",
    n_paths: int = 1,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """SGA iterates with real minibatches (any noise law), vectorised over independent paths.

    Alternating schemes draw a fresh minibatch for each player's update; the simultaneous scheme
    uses one minibatch for both.

    Args:
        loss: minibatch loss ``loss(theta, omega, batch)``; theta minimises, omega maximises.
        sample: ``sample(n, generator)`` returns ``n`` data rows ``(n, k)``.
        theta0, omega0: initial parameters.
        eta, n_steps, scheme, n_paths, seed, dtype: as in :func:`simulate`.
        batch_size: minibatch size ``B``.

    Returns:
        ``(n_paths, p + q)`` states after ``n_steps`` updates.
    """
    check_scheme(scheme)
    if not (isinstance(eta, (int, float)) and math.isfinite(eta) and eta > 0):
        raise DynamicsError(f"learning rate eta must be a positive number, got {eta!r}")
    theta0 = torch.as_tensor(theta0, dtype=dtype).reshape(-1)
    omega0 = torch.as_tensor(omega0, dtype=dtype).reshape(-1)
    p, d = theta0.numel(), theta0.numel() + omega0.numel()
    gen = torch.Generator().manual_seed(seed)

    def one(x: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        g_t, g_o = grad(loss, argnums=(0, 1))(x[:p], x[p:], batch)
        return torch.cat([-g_t.reshape(-1), g_o.reshape(-1)])

    field = vmap(one)

    def draw() -> torch.Tensor:
        rows = torch.as_tensor(sample(n_paths * batch_size, gen), dtype=dtype)
        return rows.reshape(n_paths, batch_size, -1)

    x = torch.cat([theta0, omega0]).expand(n_paths, d).clone()
    with torch.no_grad():
        for _ in range(int(n_steps)):
            if scheme == "simultaneous":
                x = x + eta * field(x, draw())
            elif scheme == "alternating":
                omega = x[:, p:] + eta * field(x, draw())[:, p:]
                x = torch.cat([x[:, :p], omega], dim=1)
                theta = x[:, :p] + eta * field(x, draw())[:, :p]
                x = torch.cat([theta, omega], dim=1)
            else:
                theta = x[:, :p] + eta * field(x, draw())[:, :p]
                x = torch.cat([theta, x[:, p:]], dim=1)
                omega = x[:, p:] + eta * field(x, draw())[:, p:]
                x = torch.cat([theta, omega], dim=1)
    return x
