"""The state of a training run: networks, optimisers, schedulers, EMA, sampler RNG, history.

Everything a run needs to continue lives in :class:`TrainState`; :func:`state_dict` and
:func:`load_state_dict` turn it into tensors and plain data (checkpoints load with
``weights_only=True``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import CheckpointError

__all__ = ["EMA", "TrainState", "lr_factor", "make_optimizer", "weights_constant"]

STATE_FORMAT = "mfgsolve-train-state-1"


class EMA:
    """Exponential moving average of a module's parameters (a shadow copy used for evaluation)."""

    def __init__(self, module: torch.nn.Module, decay: float):
        self.decay = decay
        self.shadow = copy.deepcopy(module).requires_grad_(False)
        self.count = 0

    @torch.no_grad()
    def update(self, module: torch.nn.Module) -> None:
        self.count += 1
        # Bias-corrected decay: the average starts as a plain mean and tends to `decay`.
        d = min(self.decay, (1 + self.count) / (10 + self.count))
        src = [p.detach() for p in module.parameters()]
        torch._foreach_lerp_(list(self.shadow.parameters()), src, 1 - d)


@contextmanager
def weights_constant(*modules: torch.nn.Module):
    """Within the block, the modules' parameters do not require grad: a network evaluated there
    records no graph through its weights (its derivatives in the inputs stay exact)."""
    params = [p for module in modules for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def lr_factor(optimiser: Any) -> Callable[[int], float]:
    """The learning-rate factor of a step for ``torch.optim.lr_scheduler.LambdaLR``: linear
    warm-up, then cosine decay from 1 to ``lr_final`` over the run (or constant)."""
    total = max(1, optimiser.iterations)

    def factor(step: int) -> float:
        warm = min(1.0, (step + 1) / optimiser.warmup) if optimiser.warmup > 0 else 1.0
        if optimiser.schedule == "constant":
            return warm
        progress = min(1.0, step / total)
        return warm * (
            optimiser.lr_final + (1 - optimiser.lr_final) * 0.5 * (1 + math.cos(math.pi * progress))
        )

    return factor


def make_optimizer(params, lr: float, optimiser: Any) -> torch.optim.Optimizer:
    """Adam (with the options' betas) or plain SGD over ``params``."""
    if optimiser.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, betas=tuple(optimiser.betas))
    return torch.optim.SGD(params, lr=lr)


@dataclass
class TrainState:
    """Everything a run needs to continue: networks, optimisers, EMA, RNG, history.

    Attributes:
        value_net, density_net: the players' networks.
        constant: a trained ergodic constant (None when it is a least-squares value or absent).
        optimizers, schedulers: one per player of the game (one for the joint loss).
        ema_value, ema_density: weight averages used for evaluation (None: ema=0).
        sampler: the collocation sampler (its generator is the run's random stream).
        iteration, history, constant_estimate, seconds: progress so far.
    """

    value_net: torch.nn.Module
    density_net: torch.nn.Module
    constant: torch.Tensor | None
    optimizers: list[torch.optim.Optimizer]
    schedulers: list[torch.optim.lr_scheduler.LambdaLR]
    ema_value: EMA | None
    ema_density: EMA | None
    sampler: Any
    iteration: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    constant_estimate: float = float("nan")
    seconds: float = 0.0

    def eval_nets(self) -> tuple[torch.nn.Module, torch.nn.Module]:
        """The networks used for evaluation: the weight averages if kept, else the live ones."""
        if self.ema_value is not None:
            return self.ema_value.shadow, self.ema_density.shadow
        return self.value_net, self.density_net

    def params(self, index: int) -> list[torch.Tensor]:
        """The parameters stepped by optimiser ``index``."""
        return [p for g in self.optimizers[index].param_groups for p in g["params"]]


def state_dict(st: TrainState, fingerprint: dict[str, Any]) -> dict[str, Any]:
    """The state as tensors and plain data, with the run's ``fingerprint``."""
    return {
        "format": STATE_FORMAT,
        "iteration": st.iteration,
        "value_net": st.value_net.state_dict(),
        "density_net": st.density_net.state_dict(),
        "constant": st.constant.detach().clone() if st.constant is not None else None,
        "optimizers": [o.state_dict() for o in st.optimizers],
        "schedulers": [s.state_dict() for s in st.schedulers],
        "ema_value": st.ema_value.shadow.state_dict() if st.ema_value else None,
        "ema_density": st.ema_density.shadow.state_dict() if st.ema_density else None,
        "ema_count": st.ema_value.count if st.ema_value else 0,
        "sampler": st.sampler.state_dict(),
        "history": st.history,
        "seconds": st.seconds,
        "constant_estimate": st.constant_estimate,
        "run": fingerprint,
    }


def check_fingerprint(saved: dict[str, Any] | None, now: dict[str, Any]) -> None:
    """Refuse a checkpoint written by a different run (one line naming what differs)."""
    if saved is None:  # a checkpoint from before fingerprints: shapes are still checked
        return
    if not isinstance(saved, dict) or not isinstance(saved.get("options", {}), dict):
        raise CheckpointError(
            "checkpoint is damaged (its run fingerprint is not a dict); fix: delete it and start afresh"
        )
    diffs = [k for k in ("problem", "residuals", "method", "seed") if saved.get(k) != now[k]]
    diffs += [
        f"{k} ({saved.get('options', {}).get(k)} -> {v})"
        for k, v in now["options"].items()
        if saved.get("options", {}).get(k) != v
    ]
    if diffs:
        raise CheckpointError(
            f"checkpoint was written by a different run (differs in: {', '.join(diffs)}); "
            "fix: resume with the same problem file, settings, method, seed and options, or start afresh"
        )


def load_state_dict(st: TrainState, sd: dict[str, Any], fingerprint: dict[str, Any]) -> None:
    """Restore ``st`` from :func:`state_dict`'s output (checked against ``fingerprint``)."""
    if not isinstance(sd, dict) or sd.get("format") != STATE_FORMAT:
        raise CheckpointError(
            "checkpoint is not an mfgsolve training state; fix: point to a run folder written by mfgsolve"
        )
    check_fingerprint(sd.get("run"), fingerprint)
    _check_progress(sd)
    try:
        st.value_net.load_state_dict(sd["value_net"])
        st.density_net.load_state_dict(sd["density_net"])
        if st.constant is not None and sd["constant"] is not None:
            with torch.no_grad():
                st.constant.copy_(sd["constant"])
        for o, s in zip(st.optimizers, sd["optimizers"]):
            o.load_state_dict(s)
        for s, d in zip(st.schedulers, sd["schedulers"]):
            s.load_state_dict(d)
        if st.ema_value is not None:
            st.ema_value.shadow.load_state_dict(sd["ema_value"])
            st.ema_density.shadow.load_state_dict(sd["ema_density"])
            st.ema_value.count = st.ema_density.count = int(sd["ema_count"])
        st.sampler.load_state_dict(sd["sampler"])
        st.iteration = int(sd["iteration"])
        st.history = list(sd["history"])
        st.seconds = float(sd["seconds"])
        st.constant_estimate = float(sd["constant_estimate"])
    except (KeyError, IndexError, RuntimeError, ValueError, TypeError, AttributeError) as exc:
        msg = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise CheckpointError(
            f"checkpoint does not match this problem and options ({msg}); fix: resume with the same problem file and options, or start afresh"
        ) from None


def _check_progress(sd: dict[str, Any]) -> None:
    """The plain-data fields of a state: present and of the right type (one line otherwise)."""

    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    checks = {
        "iteration": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        "ema_count": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        "seconds": lambda v: number(v) and math.isfinite(v) and v >= 0,
        "constant_estimate": number,
        "history": lambda v: isinstance(v, list) and all(isinstance(h, dict) for h in v),
    }
    for key, ok in checks.items():
        if key not in sd or not ok(sd[key]):
            raise CheckpointError(
                f"checkpoint is damaged ({key} is {'missing' if key not in sd else 'invalid'}); "
                "fix: delete it and start afresh"
            )
