"""Mean field, drift, modified-equation corrections and gradient covariance of a min-max game.

A two-player zero-sum game is given by an ``objective(theta, omega) -> scalar`` (torch, on flat
parameter vectors): the generator ``theta`` minimises it, the discriminator ``omega`` maximises it.
Stochastic gradients come from a minibatch ``loss(theta, omega, batch)`` whose mean over the data is
the objective.

Notation (Cao & Guo 2020): ``g_theta = grad_theta objective``, ``g_omega = grad_omega objective``;
the gradient descent-ascent drift is ``b = (-g_theta, g_omega)``. One step of size ``eta`` follows
the flow of the *modified* drift ``b + eta * c`` up to O(eta^3) per step (weak order 2 over a fixed
horizon), where ``c`` depends on the update order:

* ``"simultaneous"``: both players step from the same point:   ``c = -1/2 J b``;
* ``"alternating"`` (discriminator first, then the generator at the updated ``omega``, as in the
  seed): ``c = 1/2 [[grad_theta g_theta, -grad_omega g_theta], [-grad_theta g_omega,
  -grad_omega g_omega]] (-g_theta, g_omega)``, i.e. ``c = -1/2 J b + (d_omega b_theta . b_omega, 0)``;
* ``"alternating-generator-first"``: ``c = -1/2 J b + (0, d_theta b_omega . b_theta)``.

``J`` is the Jacobian of ``b``; every product with it is a Jacobian-vector product
(``torch.func.jvp``), so no dense Jacobian is ever formed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.func import grad, jvp, vmap

Objective = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Loss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

SCHEMES = ("simultaneous", "alternating", "alternating-generator-first")


class DynamicsError(ValueError):
    """Bad input to the training-dynamics tools. The message is one line: what and the fix."""


def check_scheme(scheme: str) -> str:
    """Return ``scheme`` if it is one of :data:`SCHEMES`, else raise :class:`DynamicsError`."""
    if scheme not in SCHEMES:
        raise DynamicsError(
            f"unknown update scheme {scheme!r}; fix: use one of {', '.join(map(repr, SCHEMES))}"
        )
    return scheme


def mean_field(
    objective: Objective, theta: torch.Tensor, omega: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean field ``g = (grad_theta objective, grad_omega objective)`` at one point.

    Args:
        objective: scalar torch function of ``(theta, omega)``, 1-D tensors.
        theta, omega: generator and discriminator parameters.

    Returns:
        ``(g_theta, g_omega)``, shaped like ``theta`` and ``omega``.
    """
    return grad(objective, argnums=(0, 1))(theta, omega)


def drift(
    objective: Objective, theta: torch.Tensor, omega: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient descent-ascent drift ``b = (-g_theta, g_omega)``."""
    g_theta, g_omega = mean_field(objective, theta, omega)
    return -g_theta, g_omega


def drift_jvp(
    objective: Objective,
    theta: torch.Tensor,
    omega: torch.Tensor,
    v_theta: torch.Tensor,
    v_omega: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Jacobian-vector product ``J b (v_theta, v_omega)`` by forward-over-reverse differentiation.

    Returns:
        The two blocks of ``J b v``: ``(d_theta b_theta v_theta + d_omega b_theta v_omega,
        d_theta b_omega v_theta + d_omega b_omega v_omega)``.
    """
    _, out = jvp(lambda t, o: drift(objective, t, o), (theta, omega), (v_theta, v_omega))
    return out


def _drift_and_correction(
    objective: Objective, theta: torch.Tensor, omega: torch.Tensor, scheme: str
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """``(b, c)``: the drift and its correction (two Jacobian-vector products)."""
    b_theta, b_omega = drift(objective, theta, omega)
    if scheme == "alternating":
        # c_theta = -1/2 (d_t b_t b_t + d_o b_t b_o) + d_o b_t b_o = -1/2 [J (b_t, -b_o)]_theta
        signs = (1.0, -1.0), (1.0, 1.0)  # (theta block from J(b_t, -b_o), omega block from J b)
    elif scheme == "alternating-generator-first":
        signs = (1.0, 1.0), (-1.0, 1.0)
    else:
        signs = (1.0, 1.0), (1.0, 1.0)
    (st, so), (ot, oo) = signs
    c_theta, _ = drift_jvp(objective, theta, omega, st * b_theta, so * b_omega)
    _, c_omega = drift_jvp(objective, theta, omega, ot * b_theta, oo * b_omega)
    return (b_theta, b_omega), (-0.5 * c_theta, -0.5 * c_omega)


def correction(
    objective: Objective, theta: torch.Tensor, omega: torch.Tensor, scheme: str = "alternating"
) -> tuple[torch.Tensor, torch.Tensor]:
    """The O(eta) term ``c`` of the modified drift ``b + eta * c`` for an update scheme.

    Args:
        objective: scalar torch function of ``(theta, omega)``.
        theta, omega: the point.
        scheme: ``"simultaneous"``, ``"alternating"`` (discriminator first, the seed's scheme) or
            ``"alternating-generator-first"``.

    Returns:
        ``(c_theta, c_omega)``.
    """
    check_scheme(scheme)
    return _drift_and_correction(objective, theta, omega, scheme)[1]


def corrected_drift(
    objective: Objective,
    theta: torch.Tensor,
    omega: torch.Tensor,
    eta: float,
    scheme: str = "alternating",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Modified drift ``b + eta * c`` of the weak order-2 SDE (see :func:`correction`)."""
    check_scheme(scheme)
    (b_theta, b_omega), (c_theta, c_omega) = _drift_and_correction(objective, theta, omega, scheme)
    return b_theta + eta * c_theta, b_omega + eta * c_omega


def drift_covariance(
    loss: Loss, theta: torch.Tensor, omega: torch.Tensor, batch: torch.Tensor
) -> torch.Tensor:
    """Per-sample covariance ``Sigma`` of the stochastic drift ``(-grad_theta l, grad_omega l)``.

    Estimated from per-sample gradients (``torch.func.vmap`` over the rows of ``batch``) with the
    unbiased sample covariance. A minibatch of size ``B`` then has drift covariance ``Sigma / B``.

    Args:
        loss: minibatch loss ``loss(theta, omega, batch)`` (mean over the rows of ``batch``).
        theta, omega: the point.
        batch: data samples, one per row (at least two rows).

    Returns:
        ``(p + q, p + q)`` covariance, parameters ordered ``(theta, omega)``.
    """
    if batch.shape[0] < 2:
        raise DynamicsError(
            f"a covariance needs at least 2 samples, got {batch.shape[0]}; fix: pass a larger batch"
        )

    def one(x: torch.Tensor) -> torch.Tensor:
        g_t, g_o = grad(loss, argnums=(0, 1))(theta, omega, x.unsqueeze(0))
        return torch.cat([-g_t.reshape(-1), g_o.reshape(-1)])

    per_sample = vmap(one)(batch)
    centred = per_sample - per_sample.mean(dim=0)
    return centred.T @ centred / (batch.shape[0] - 1)


def batched(fn: Callable, dim_theta: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """Turn ``fn(theta, omega) -> (u, v)`` into a function of stacked states ``(n, p + q) -> (n, p + q)``."""

    def one(x: torch.Tensor) -> torch.Tensor:
        u, v = fn(x[:dim_theta], x[dim_theta:])
        return torch.cat([u.reshape(-1), v.reshape(-1)])

    return vmap(one)
