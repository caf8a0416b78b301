"""Training-dynamics diagnostics for a two-player (general-sum) game of neural networks.

For the adversarial MFG solver both players minimise their own loss: the generator ``L_G`` over its
parameters ``theta`` and the discriminator ``L_D`` over ``omega``, with learning rates ``eta_G`` and
``eta_D``. The mean field is ``g = (grad_theta L_G, grad_omega L_D)`` and one gradient step is
``x' = x - eta (.) g``. Its modified equation (Cao & Guo 2020) has the drift
``-eta (.) (g + 1/2 J_g (eta (.) g))`` (simultaneous updates) and the diffusion
``sqrt(2 / beta) Sigma^(1/2)`` with ``beta = 2 B / eta``. :func:`game_diagnostics` measures, per
player:

* ``grad_norm``: ``|g_i|`` on the full batch of collocation points;
* ``noise_std``: ``sqrt(tr Sigma_i / B)``, the standard deviation of the full-batch gradient,
  estimated from ``n_groups`` micro-batches: ``tr Sigma_i / B = var_k(g_i^(k)) / n_groups``;
* ``noise_ratio``: ``noise_std / grad_norm``;
* ``correction_ratio``: ``|[J_g (eta (.) g)]_i| / (2 |g_i|)``, the size of the ``eta/2 J g`` term
  relative to the drift (one Jacobian-vector product by double backward, no dense Jacobian);
* ``beta``: ``2 B / eta_i`` (the inverse temperature of the SDE);
* ``lr``: ``eta_i``.

For alternating updates the off-diagonal blocks of the correction change sign (see
:mod:`mfgsolve.dynamics.game`); the simultaneous form measured here has the same order of magnitude
and is the quantity the learning-rate advice scales with.

:func:`suggest` turns these numbers into a one-line warning when ``correction_ratio >``
:data:`CORRECTION_WARN` (the first-order picture of training is off: lower the learning rate) or
``noise_ratio >`` :data:`NOISE_WARN` (the gradient is mostly noise: raise the batch size).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .game import DynamicsError

PLAYERS = ("generator", "discriminator")

#: ``correction_ratio`` above which :func:`suggest` warns (the O(eta) term is half the drift).
CORRECTION_WARN = 0.5
#: ``correction_ratio`` that the suggested learning rate aims at.
CORRECTION_TARGET = 0.25
#: ``noise_ratio`` above which :func:`suggest` warns (gradient noise 10x the mean gradient).
NOISE_WARN = 10.0
#: ``noise_ratio`` that the suggested batch size aims at.
NOISE_TARGET = 3.0


def _check_inputs(losses, params, lrs, points, n_groups) -> None:
    for player in PLAYERS:
        for what, table in (("losses", losses), ("params", params), ("lrs", lrs)):
            if player not in table:
                raise DynamicsError(
                    f"game_diagnostics: {what} has no entry {player!r}; fix: pass a dict with keys "
                    "'generator' and 'discriminator'"
                )
        tensors = list(params[player])
        if not tensors or not all(isinstance(t, torch.Tensor) and t.requires_grad for t in tensors):
            raise DynamicsError(
                f"game_diagnostics: params[{player!r}] must be a non-empty list of tensors with "
                "requires_grad=True; fix: pass list(network.parameters())"
            )
        lr = lrs[player]
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise DynamicsError(
                f"game_diagnostics: learning rate of {player} must be a positive number, got {lr!r}"
            )
    if not isinstance(n_groups, int) or n_groups < 2:
        raise DynamicsError(
            f"game_diagnostics: n_groups must be an integer >= 2, got {n_groups!r}; fix: use 8"
        )
    if not isinstance(points, torch.Tensor) or points.ndim < 1 or len(points) < n_groups:
        raise DynamicsError(
            f"game_diagnostics: need at least n_groups={n_groups} points to estimate the gradient "
            "noise; fix: pass a larger batch or a smaller n_groups"
        )


def _grads(loss: torch.Tensor, wrt: list[torch.Tensor], create_graph: bool) -> list[torch.Tensor]:
    out = torch.autograd.grad(loss, wrt, create_graph=create_graph, allow_unused=True)
    return [torch.zeros_like(w) if g is None else g for g, w in zip(out, wrt)]


def _flat(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def game_diagnostics(
    losses: dict[str, Callable[[torch.Tensor], torch.Tensor]],
    params: dict[str, list[torch.Tensor]],
    lrs: dict[str, float],
    points: torch.Tensor,
    n_groups: int = 8,
) -> dict[str, float]:
    """Gradient-noise level, correction size and inverse temperature of each player.

    Args:
        losses: ``{"generator": L_G, "discriminator": L_D}``; ``losses[p](points)`` is the scalar
            loss of player ``p`` on a batch of collocation points (a mean over the points).
        params: ``{"generator": [...], "discriminator": [...]}``, leaf tensors with
            ``requires_grad=True``; each loss may depend on both lists.
        lrs: learning rate of each player.
        points: the batch (its first dimension indexes points); ``B = len(points)``.
        n_groups: number of micro-batches for the gradient-covariance estimate (>= 2).

    Returns:
        Flat dict with keys ``"<player>/<name>"`` for ``name`` in ``grad_norm``, ``noise_std``,
        ``noise_ratio``, ``correction_ratio``, ``beta``, ``lr``.
    """
    _check_inputs(losses, params, lrs, points, n_groups)
    batch = len(points)
    wrt = {p: list(params[p]) for p in PLAYERS}
    every = wrt["generator"] + wrt["discriminator"]

    # mean field on the full batch, kept differentiable for the Jacobian-vector product
    g = {p: _grads(losses[p](points), wrt[p], create_graph=True) for p in PLAYERS}
    g_all = g["generator"] + g["discriminator"]
    v = [lrs[p] * gi.detach() for p in PLAYERS for gi in g[p]]
    # J v by double backward: w(u) = J^T u is linear in u, and d/du (w(u) . v) = J v
    u = [torch.zeros_like(gi, requires_grad=True) for gi in g_all]
    s = sum((gi * ui).sum() for gi, ui in zip(g_all, u) if gi.requires_grad)
    jv: list[torch.Tensor] = [torch.zeros_like(ui) for ui in u]
    if isinstance(s, torch.Tensor) and s.requires_grad:
        w = torch.autograd.grad(s, every, create_graph=True, allow_unused=True)
        t = sum((wi * vi).sum() for wi, vi in zip(w, v) if wi is not None and wi.requires_grad)
        if isinstance(t, torch.Tensor) and t.requires_grad:
            jv = _grads(t, u, create_graph=False)

    # micro-batch gradients for the noise level
    groups = torch.tensor_split(points, n_groups)
    micro = {p: [] for p in PLAYERS}
    for chunk in groups:
        for p in PLAYERS:
            micro[p].append(_flat(_grads(losses[p](chunk), wrt[p], create_graph=False)))

    out: dict[str, float] = {}
    offset = 0
    for p in PLAYERS:
        n = len(wrt[p])
        gp = _flat([gi.detach() for gi in g[p]])
        jp = _flat(jv[offset : offset + n])
        offset += n
        stack = torch.stack(micro[p])
        var = ((stack - stack.mean(dim=0)) ** 2).sum() / (n_groups - 1)
        grad_norm = float(gp.norm())
        noise_std = float((var / n_groups).sqrt())
        corr = float(jp.norm()) / 2
        out[f"{p}/grad_norm"] = grad_norm
        out[f"{p}/noise_std"] = noise_std
        out[f"{p}/noise_ratio"] = _ratio(noise_std, grad_norm)
        out[f"{p}/correction_ratio"] = _ratio(corr, grad_norm)
        out[f"{p}/beta"] = 2.0 * batch / lrs[p]
        out[f"{p}/lr"] = float(lrs[p])
    return out


def _ratio(num: float, den: float) -> float:
    if den > 0:
        return num / den
    return 0.0 if num == 0 else math.inf


def suggest(diag: dict[str, float], batch_size: int, lrs: dict[str, float]) -> str | None:
    """One-line advice when the eta/2 correction or the gradient noise dominates, else None.

    The correction ratio scales like the learning rate, so the suggested rate is
    ``lr * CORRECTION_TARGET / ratio``; keeping ``beta = 2 B / eta`` (the noise temperature) means
    keeping ``B / lr``. The noise ratio scales like ``1 / sqrt(B)``, so the suggested batch size is
    ``B * (ratio / NOISE_TARGET)^2``.

    Args:
        diag: output of :func:`game_diagnostics`.
        batch_size: current batch size ``B``.
        lrs: current learning rates per player.

    Returns:
        The warning, or None when every ratio is below its threshold.
    """
    parts = []
    for p in PLAYERS:
        corr = diag.get(f"{p}/correction_ratio", 0.0)
        noise = diag.get(f"{p}/noise_ratio", 0.0)
        lr = lrs[p]
        if corr > CORRECTION_WARN:
            new_lr = lr * CORRECTION_TARGET / corr if math.isfinite(corr) else lr / 10
            parts.append(
                f"{p}: the eta/2 correction is {corr:.2g}x its drift (> {CORRECTION_WARN}), "
                f"lower its lr from {lr:.3g} to {new_lr:.3g} (beta = 2B/eta then rises from "
                f"{2 * batch_size / lr:.3g} to {2 * batch_size / new_lr:.3g} at batch_size "
                f"{batch_size}; keep batch_size/lr fixed to keep the noise level)"
            )
        elif noise > NOISE_WARN:
            new_b = (
                math.ceil(batch_size * (noise / NOISE_TARGET) ** 2)
                if math.isfinite(noise)
                else 4 * batch_size
            )
            parts.append(
                f"{p}: gradient noise is {noise:.2g}x its mean (> {NOISE_WARN:g}), raise "
                f"batch_size from {batch_size} to {new_b} or lower its lr (beta = 2B/eta = "
                f"{2 * batch_size / lr:.3g})"
            )
    return "; ".join(parts) if parts else None
