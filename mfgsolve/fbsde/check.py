"""Check a closed form u(t, x) against the PDE of an FBSDE, by automatic differentiation.

For the FBSDE of :mod:`mfgsolve.fbsde.problem` the decoupling field u (Y_t = u(t, X_t),
Z_t = sigma^T grad u) solves

    u_t + b(t, x, u, sigma^T grad u) . grad u + 1/2 tr(sigma sigma^T Hess u) + f(t, x, u, sigma^T grad u) = 0

with u(T, x) = g(x). :func:`pde_residual` evaluates the left side (and the terminal mismatch) on a
batch; it is the independent check that an ``exact`` formula and the FBSDE coefficients agree.
:func:`symbolic_residual` builds the same left side in sympy, component by component, for an exact
check in a small dimension.
"""

from __future__ import annotations

import numpy as np
import sympy as sp
import torch

from ._lower import vsum
from .problem import FBSDE

__all__ = ["pde_residual", "symbolic_residual"]


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


def symbolic_residual(problem: FBSDE) -> tuple[sp.Expr, sp.Expr]:
    """The PDE residual of ``problem.exact["u"]`` and its terminal mismatch, as sympy expressions.

    The vector symbols are expanded into components ``x_1 .. x_d`` (``vsum`` becomes a sum over
    them) and ``Z = sigma^T grad u`` is substituted, so the result is an ordinary sympy expression in
    t and x_1 .. x_d that is zero exactly when the closed form solves the PDE of the FBSDE:

        u_t + sum_i b_i u_{x_i} + 1/2 sum_ij (sigma sigma^T)_ij u_{x_i x_j} + f(t, x, u, sigma^T grad u).

    Use a small d (a problem family built with d = 2 or 3): the expression grows with d. Mean-field
    terms ``E(...)`` have no closed-form expansion and are refused.

    Returns:
        ``(residual, terminal_mismatch)``; both simplify to 0 for a correct closed form.

    Raises:
        ValueError: no closed form u, or an ``E(...)`` term.
    """
    if not problem.exact or "u" not in problem.exact:
        raise ValueError(
            f"problem '{problem.name}': no closed form u to check; fix: give exact=<sympy u(t, x)>"
        )
    if problem.mean_field:
        raise ValueError(
            f"problem '{problem.name}': E(...) terms have no symbolic expansion; "
            "fix: use pde_residual (batch means)"
        )
    d, t = problem.dim, problem.time
    xs = sp.symbols(f"x_1:{d + 1}", real=True)
    zs = sp.symbols(f"z_1:{d + 1}", real=True)

    def expand(expr: sp.Expr, i: int | None) -> sp.Expr:
        if expr == problem.state or expr == problem.gradient:
            if i is None:
                raise ValueError(f"problem '{problem.name}': a vector outside vsum in a scalar")
            return (xs if expr == problem.state else zs)[i]
        if isinstance(expr, vsum):
            return sp.Add(*(expand(expr.args[0], j) for j in range(d)))
        if not expr.args:
            return expr
        return expr.func(*(expand(a, i) for a in expr.args))

    u = expand(problem.exact["u"], None)
    grad = [sp.diff(u, xi) for xi in xs]
    if problem.full_diffusion:
        sigma = problem.diffusion
        a = sigma * sigma.T
        z_vals = [sum(sigma[j, i] * grad[j] for j in range(d)) for i in range(d)]
        second = sum(a[i, j] * sp.diff(grad[i], xs[j]) for i in range(d) for j in range(d))
    else:
        sig = [expand(problem.diffusion, i) for i in range(d)]
        z_vals = [sig[i] * grad[i] for i in range(d)]
        second = sum(sig[i] ** 2 * sp.diff(grad[i], xs[i]) for i in range(d))
    at = {problem.value_symbol: u, **dict(zip(zs, z_vals))}
    drift = [expand(problem.drift, i).subs(at) for i in range(d)]
    driver = expand(problem.driver, None).subs(at)
    residual = sp.diff(u, t) + sum(b * g for b, g in zip(drift, grad)) + second / 2 + driver
    terminal = u.subs(t, sp.nsimplify(problem.T, rational=True)) - expand(problem.terminal, None)
    return residual, terminal
