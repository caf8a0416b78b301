"""The optional second-order finish: L-BFGS on the residual loss, in float64, at fixed points.

After the first-order phase (any game), the evaluated networks (the weight averages) are copied
to float64 and ``torch.optim.LBFGS`` (strong-Wolfe line search) minimises the joint residual loss
``L_HJB + L_FP + beta (int u)^2`` over all parameters at one fixed set of collocation points,
drawn once from the run's sampler (so the phase is deterministic given the first phase). This is
how the PINN libraries finish (DeepXDE: Adam, then L-BFGS); the loss is the residual system's
whatever the game was, since a quasi-Newton method needs one objective.

Rollback: the parameters with the lowest loss seen so far are kept; a non-finite loss or
gradient ends the phase there, with a warning. A resumed run repeats the phase from the
first phase's checkpoint (same points, same result). See docs/solver.md#second-order-finish.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import sys
import time

import torch
from tqdm.auto import tqdm

from ..options import SolverOptions
from .state import TrainState

__all__ = ["FINISHES", "finish_lbfgs", "finish_options"]

# L-BFGS iterations per round (shared by the networks' turns; an evaluation between rounds)
_INNER = 20
_HISTORY = 50


def _fixed_points(fine, st: TrainState, count: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``count`` collocation points (at least one batch), drawn once from the run's sampler."""
    pts, wts = [], []
    total = 0
    while total < count:
        points, weights = fine.formulation.batch(st)
        pts.append(points.detach())
        wts.append(weights)
        total += points.shape[0]
    points = torch.cat(pts)
    weights = None if wts[0] is None else torch.cat(wts)
    return points, weights


def _lbfgs(params: list[torch.Tensor]) -> torch.optim.LBFGS:
    return torch.optim.LBFGS(
        params,
        lr=1.0,
        max_iter=_INNER,
        history_size=_HISTORY,
        tolerance_grad=0.0,
        tolerance_change=0.0,
        line_search_fn="strong_wolfe",
    )


def finish_options(opts: SolverOptions) -> SolverOptions:
    """The finish's options: the continuation's artificial viscosity off (the finish solves the
    problem as written)."""
    return dataclasses.replace(opts, game=dataclasses.replace(opts.game, continuation=0.0))


def finish_lbfgs(fine, st: TrainState, progress: bool = False) -> TrainState:
    """Run the L-BFGS finish on the first phase's final state ``st``.

    Args:
        fine: a :class:`~mfgsolve.train.loop.Trainer` of the same run in float64, with the
            options of :func:`finish_options`.
        st: the first phase's final state.
        progress: show a tqdm bar.

    Returns:
        the float64 state: the finished networks (no weight averages), the history extended by
        the phase's evaluations.
    """
    opts = fine.opts
    steps = opts.optimiser.finish_iterations
    dtype = fine.dtype
    value_eval, density_eval = st.eval_nets()
    value = copy.deepcopy(value_eval).to(dtype).requires_grad_(True)
    density = copy.deepcopy(density_eval).to(dtype).requires_grad_(True)
    constant = None
    if st.constant is not None:
        constant = st.constant.detach().to(dtype).clone().requires_grad_(True)
    # one L-BFGS per network (the value with its constant; the density), taking turns on the
    # one objective: a single L-BFGS over both scales its steps by the stiffer network's
    # curvature, and the other barely moves (docs/solver.md#second-order-finish)
    blocks = [list(value.parameters()) + ([constant] if constant is not None else [])]
    blocks.append(list(density.parameters()))
    optimizers = [_lbfgs(ps) for ps in blocks]
    params = [p for ps in blocks for p in ps]
    out = TrainState(
        value,
        density,
        constant,
        optimizers,
        [],
        None,
        None,
        st.sampler,
        st.iteration,
        list(st.history),
        st.constant_estimate,
        st.seconds,
    )
    count = max(opts.sampling.batch_size, opts.optimiser.finish_points)
    points, weights = _fixed_points(fine, out, count)
    points = points.to(fine.device, dtype).requires_grad_(True)
    if weights is not None:
        weights = weights.to(fine.device, dtype)
    beta = opts.game.beta

    def objective() -> torch.Tensor:
        o = fine.formulation.losses(out, points, ("hjb", "fp"), (), weights)
        return o["hjb"] + o["fp"] + beta * o["int_u"]

    def closure_of(optimizer: torch.optim.LBFGS, ps: list[torch.Tensor]):
        def closure() -> torch.Tensor:
            optimizer.zero_grad(set_to_none=True)
            loss = objective()
            grads = torch.autograd.grad(loss, ps, allow_unused=True)
            for p, g in zip(ps, grads):
                p.grad = g if g is not None else torch.zeros_like(p)
            return loss

        return closure

    fine.formulation.fix_gauge(value, density)
    best_loss = float(objective().detach())
    best = [p.detach().clone() for p in params]
    bar = tqdm(
        total=steps,
        disable=None if progress else True,
        desc=f"L-BFGS {fine.problem.name}",
        unit="it",
        dynamic_ncols=True,
    )
    start = time.perf_counter()
    done = 0
    try:
        while done < steps:
            inner = min(_INNER, steps - done)
            for optimizer, ps in zip(optimizers, blocks):
                optimizer.param_groups[0]["max_iter"] = max(1, inner // len(blocks))
                optimizer.step(closure_of(optimizer, ps))
            done += inner
            fine.formulation.fix_gauge(value, density)
            loss = float(objective().detach())
            finite = math.isfinite(loss) and all(bool(torch.isfinite(p).all()) for p in params)
            if not finite:
                bar.write(
                    f"warning: L-BFGS step {done}: the loss became {loss}; kept the best "
                    f"parameters (loss {best_loss:.3e}) and ended the finish",
                    file=sys.stderr,
                )
                break
            if loss < best_loss:
                best_loss = loss
                best = [p.detach().clone() for p in params]
            record = fine.formulation.evaluate(out)
            record.update(
                iteration=st.iteration + done,
                seconds=st.seconds + time.perf_counter() - start,
                loss_finish=loss,
            )
            out.history.append(record)
            bar.set_postfix({"loss": f"{loss:.2e}"}, refresh=False)
            bar.update(inner)
    finally:
        bar.close()
    with torch.no_grad():
        for p, b in zip(params, best):
            p.copy_(b)
    out.iteration = st.iteration + done
    out.seconds = st.seconds + time.perf_counter() - start
    fine.formulation.evaluate(out)  # (sets the constant estimate of the kept parameters)
    return out


# finish name -> function(float64 trainer, first phase's state, progress) -> state
FINISHES = {"lbfgs": finish_lbfgs}
