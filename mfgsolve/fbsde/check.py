"""Check a closed form u(t, x) against the PDE of an FBSDE, by automatic differentiation.

For the FBSDE of :mod:`mfgsolve.fbsde.problem` the decoupling field u (Y_t = u(t, X_t),
Z_t = sigma^T grad u) solves

    u_t + b(t, x, u, sigma^T grad u) . grad u + 1/2 tr(sigma sigma^T Hess u) + f(t, x, u, sigma^T grad u) = 0

with u(T, x) = g(x). :func:`pde_residual` evaluates the left side (and the terminal mismatch) on a
batch; it is the independent check that an ``exact`` formula and the FBSDE coefficients agree.
"""

from __future__ import annotations

import numpy as np
import torch

from .problem import FBSDE

__all__ = ["pde_residual"]


def pde_residual(
    problem: FBSDE, n: int = 64, spread: float = 0.3, seed: int = 0
) -> dict[str, float]:
    """Max |PDE residual| and max |u(T) - g| of ``problem.exact["u"]`` on random points near x0.

    Points: t uniform in [t0, T], x = x0 + spread * N(0, I); the batch is re-centred on x0 so that
    mean-field terms E(x) see the mean x0 (exact for problems whose population mean stays at x0).

    Returns:
        ``{"pde_max_abs": ..., "terminal_max_abs": ..., "u_max_abs": ...}``.

    Raises:
        ValueError: the problem has no closed form u.
    """
    if not problem.exact or "u" not in problem.exact:
        raise ValueError(
            f"problem '{problem.name}': no closed form u to check; fix: give exact=<sympy u(t, x)>"
        )
    fns = problem.compiled()
    gen = torch.Generator().manual_seed(seed)
    dt = torch.float64
    d = problem.dim
    x = spread * torch.randn(n, d, generator=gen, dtype=dt)
    x = x - x.mean(dim=0, keepdim=True) + torch.tensor(problem.x0, dtype=dt)
    t = problem.t0 + problem.horizon * torch.rand(n, 1, generator=gen, dtype=dt)
    x.requires_grad_(True)
    t.requires_grad_(True)
    u = torch.as_tensor(fns["u"]({"t": t, "x": x})).expand(n, 1)
    u_t, grad = torch.autograd.grad(u.sum(), (t, x), create_graph=True)
    env = {"t": t, "x": x}
    if problem.full_diffusion:
        sigma = fns["diffusion"](t).to(dt)
        z = grad @ sigma
        hess = torch.stack([_grad(grad[:, i], x) for i in range(d)], dim=1)
        a = sigma @ sigma.T
        trace = torch.einsum("ij,bji->b", a, hess).unsqueeze(1)
    else:
        sig = torch.as_tensor(fns["diffusion"](env)).expand(n, d)
        z = sig * grad
        diag = torch.stack([_grad(grad[:, i], x)[:, i] for i in range(d)], dim=1)
        trace = (sig**2 * diag).sum(dim=1, keepdim=True)
    full_env = {"t": t, "x": x, "y": u, "z": z}
    drift = torch.as_tensor(fns["drift"](full_env)).expand(n, d)
    driver = torch.as_tensor(fns["driver"](full_env)).expand(n, 1)
    residual = u_t + (drift * grad).sum(dim=1, keepdim=True) + 0.5 * trace + driver
    tT = torch.full((n, 1), problem.T, dtype=dt)
    uT = torch.as_tensor(fns["u"]({"t": tT, "x": x})).expand(n, 1)
    gT = torch.as_tensor(fns["terminal"]({"x": x})).expand(n, 1)
    return {
        "pde_max_abs": float(residual.detach().abs().max()),
        "terminal_max_abs": float((uT - gT).detach().abs().max()),
        "u_max_abs": float(np.abs(u.detach().numpy()).max()),
    }


def _grad(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """d(sum out)/dx, zero where ``out`` does not depend on x."""
    if not out.requires_grad:
        return torch.zeros_like(x)
    (g,) = torch.autograd.grad(out.sum(), x, retain_graph=True, allow_unused=True)
    return torch.zeros_like(x) if g is None else g
