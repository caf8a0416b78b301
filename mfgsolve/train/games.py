"""The training games, as strategies plugged into the one loop (:class:`mfgsolve.train.loop.Trainer`).

A game says which optimisers there are (one per player) and what one iteration does with them.

- ``"adversarial"`` (Cao, Guo & Lauriere 2020): the generator is the value network (and a trained
  constant), minimising ``L_HJB + beta (int u)^2``; the discriminator is the density network,
  minimising ``L_FP``. Updates alternate (``disc_steps`` discriminator steps, then ``gen_steps``
  generator steps); each player steps only its own parameters, the other's field entering as a
  constant (its x-derivatives stay exact: the FP flux (m u')' keeps u'').
- ``"joint"``: one optimiser minimises ``L_HJB + L_FP + beta (int u)^2`` over all parameters: the
  plain DGM / PINN baseline on the same networks.

- ``"minmax"``: for potential MFGs, the saddle point of their Lagrangian (:class:`MinMaxGame`).

A new game is one class with ``optimizers`` and ``iterate``, registered in :data:`GAMES`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch

from .state import TrainState, make_optimizer

__all__ = ["GAMES", "AdversarialGame", "Game", "JointGame", "MinMaxGame"]

# one step of a player: (optimiser index, loss, label) -> gradient norm (raises on NaN/Inf)
Step = Callable[[int, torch.Tensor, str], float]


class Game(Protocol):
    """A training game: its players' optimisers and one iteration."""

    name: str

    def optimizers(self, gen_params, disc_params, opts) -> list[torch.optim.Optimizer]: ...

    def iterate(self, trainer, st: TrainState, step: Step) -> dict[str, float]: ...


def two_players(gen_params, disc_params, opts) -> list[torch.optim.Optimizer]:
    """One optimiser per player: the generator's at ``lr``, the discriminator's at
    ``lr * lr_ratio`` (the adversarial and min-max games)."""
    o = opts.optimiser
    return [
        make_optimizer(gen_params, o.lr, o),
        make_optimizer(disc_params, o.lr * o.lr_ratio, o),
    ]


class AdversarialGame:
    """Generator (value) against discriminator (density), alternating steps."""

    name = "adversarial"

    def optimizers(self, gen_params, disc_params, opts) -> list[torch.optim.Optimizer]:
        return two_players(gen_params, disc_params, opts)

    def iterate(self, trainer, st: TrainState, step: Step) -> dict[str, float]:
        game = trainer.opts.game
        record: dict[str, float] = {}
        for _ in range(game.disc_steps):
            loss = trainer.losses(st, players=("fp",), frozen=("u",))["fp"]
            record["loss_fp"] = trainer.mean(loss)
            record["grad_disc"] = step(1, loss, "FP")
        for _ in range(game.gen_steps):
            out = trainer.losses(st, players=("hjb",), frozen=("m",))
            loss = out["hjb"] + game.beta * out["int_u"]
            record["loss_hjb"], record["loss_int_u"] = (
                trainer.mean(out["hjb"]),
                trainer.mean(out["int_u"]),
            )
            record["grad_gen"] = step(0, loss, "HJB")
        record.update(constant_record(out["constant"]))
        return record


def constant_record(constant: torch.Tensor) -> dict[str, float]:
    """The batch's ergodic constant(s) for the record: ``constant_batch``, or with several
    populations ``constant_batch_1``, ``constant_batch_2``, ..."""
    if constant.numel() == 1:
        return {"constant_batch": float(constant)}
    return {f"constant_batch_{k + 1}": float(c) for k, c in enumerate(constant.reshape(-1))}


class JointGame:
    """One loss, one optimiser: the PINN / DGM baseline."""

    name = "joint"

    def optimizers(self, gen_params, disc_params, opts) -> list[torch.optim.Optimizer]:
        return [make_optimizer(gen_params + disc_params, opts.optimiser.lr, opts.optimiser)]

    def iterate(self, trainer, st: TrainState, step: Step) -> dict[str, float]:
        beta = trainer.opts.game.beta
        record: dict[str, float] = {}
        out = trainer.losses(st, players=("hjb", "fp"), frozen=())
        loss = out["hjb"] + out["fp"] + beta * out["int_u"]
        record["loss_hjb"], record["loss_fp"], record["loss_int_u"] = (
            trainer.mean(out["hjb"]),
            trainer.mean(out["fp"]),
            trainer.mean(out["int_u"]),
        )
        record["grad_gen"] = step(0, loss, "HJB+FP")
        record.update(constant_record(out["constant"]))
        return record


class MinMaxGame:
    """The saddle point of the Lagrangian of a potential MFG: the value network minimises
    ``L(u, m) + beta (int u)^2``, the density network maximises ``L`` (by steps along its
    Fisher-Rao gradient; alternating, ``disc_steps`` for the density then ``gen_steps`` for
    the value).
    See :mod:`mfgsolve.lowering.potential` and docs/solver.md#the-min-max-game."""

    name = "minmax"

    def optimizers(self, gen_params, disc_params, opts) -> list[torch.optim.Optimizer]:
        return two_players(gen_params, disc_params, opts)

    def iterate(self, trainer, st: TrainState, step: Step) -> dict[str, float]:
        game = trainer.opts.game
        record: dict[str, float] = {}
        for _ in range(game.disc_steps):
            ascent = trainer.losses(st, players=("ascent",), frozen=("u",))["ascent"]
            record["grad_disc"] = step(1, ascent, "Lagrangian (density)")
        for _ in range(game.gen_steps):
            out = trainer.losses(st, players=("lagrangian",), frozen=("m",))
            record["lagrangian"] = trainer.mean(out["lagrangian"])
            record["loss_int_u"] = trainer.mean(out["int_u"])
            record["grad_gen"] = step(
                0, out["lagrangian"] + game.beta * out["int_u"], "Lagrangian (value)"
            )
        return record


GAMES: dict[str, type] = {
    "adversarial": AdversarialGame,
    "joint": JointGame,
    "minmax": MinMaxGame,
}
