"""The one training loop: optimisers, torch lr schedulers, EMA, NaN rollback, checkpoints, progress,
callbacks and data-parallel averaging, for every problem kind and every game.

Two strategies are plugged in:
- a *formulation* of the problem kind (:data:`FORMULATIONS`: ergodic, finite horizon): networks,
  sampler, batches, losses of each player, evaluation, and the values a solution keeps;
- a *game* (:data:`mfgsolve.train.games.GAMES`: adversarial, joint): the players' optimisers and
  what one iteration does.

Stabilisation used by default (measured in docs/solver.md): Adam with betas (0.5, 0.9), cosine
learning-rate decay, gradient-norm clipping, the ergodic constant at its least-squares value when it
enters linearly, and evaluation with an exponential moving average (EMA) of the weights.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from .. import distributed
from .._io import atomic_torch_save, safe_torch_load
from ..errors import CheckpointError, OptionError, TrainingDiverged
from ..options import SolverOptions
from .ergodic import ErgodicFormulation
from .finish import FINISHES, finish_options
from .finite_horizon import FiniteHorizonFormulation
from .games import GAMES
from .state import EMA, TrainState, load_state_dict, lr_factor, state_dict, weights_constant

__all__ = ["FORMULATIONS", "Trainer", "train"]

FORMULATIONS: dict[str, type] = {
    "ergodic": ErgodicFormulation,
    "finite_horizon": FiniteHorizonFormulation,
}

# what a checkpoint must agree with to be resumed (where and how often it is written may differ,
# and the finish that follows the first phase)
_RESUMABLE_CHANGES = (
    "checkpoint_dir",
    "checkpoint_every",
    "threads",
    "finish",
    "finish_iterations",
    "finish_points",
)


class _NonFinite(Exception):
    pass


class Trainer:
    """Trains the networks of ``problem`` with resolved ``opts`` (``opts.method`` names the game).

    Args:
        problem: the problem ``opts`` were resolved for.
        opts: :class:`~mfgsolve.options.SolverOptions` from ``SolverOptions.build``.
        seed: fixes initialisation and collocation (the caller's global RNG is left untouched).
        device, dtype: where the networks live.
        progress: show a tqdm bar (process 0 of a data-parallel run only).
        callbacks: callables receiving each evaluation record (a dict).
        formulation: a formulation class to use instead of ``FORMULATIONS[opts.kind]`` (e.g. the
            same problem with hand-written residuals, for a benchmark).
    """

    def __init__(
        self,
        problem,
        opts: SolverOptions,
        seed: int,
        device,
        dtype,
        progress: bool = False,
        callbacks: Sequence[Callable[[dict], None]] = (),
        formulation: type | None = None,
    ):
        self.problem, self.opts, self.method = problem, opts, opts.method
        self.seed, self.device, self.dtype = seed, torch.device(device), dtype
        self.rank, self.world_size = distributed.world()
        # one progress bar and one checkpoint writer per run: process 0's
        self.progress, self.callbacks = progress and self.rank == 0, list(callbacks)
        self.game = GAMES[opts.method]()
        self.formulation = (formulation or FORMULATIONS[opts.kind])(
            problem, opts, seed, self.device, dtype, (self.rank, self.world_size)
        )
        if self.world_size > 1:
            self.formulation.check_parallel()
            if opts.run.diagnostics:
                raise OptionError(
                    "diagnostics=True is not available in a data-parallel run (they need the whole "
                    "batch in one process); fix: measure them in a one-process run"
                )
            if opts.optimiser.finish != "none":
                raise OptionError(
                    f"finish={opts.optimiser.finish!r} is not available in a data-parallel run (L-BFGS "
                    "would step each process's points apart); fix: finish in one process (resume "
                    "the checkpoint there with the finish option)"
                )
            if opts.sampling.batch_size % self.world_size:
                raise OptionError(
                    f"batch_size {opts.sampling.batch_size} is not divisible by the {self.world_size} processes; "
                    "fix: choose a batch_size that is a multiple of --nproc_per_node"
                )

    # ----- state -----------------------------------------------------------------------------
    def init_state(self) -> TrainState:
        """A fresh state: networks initialised from ``seed`` within a forked global RNG."""
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.seed)
            value_net, density_net, constant = self.formulation.build()
            gen_params = list(value_net.parameters()) + ([constant] if constant is not None else [])
            disc_params = list(density_net.parameters())
            optimizers = self.game.optimizers(gen_params, disc_params, self.opts)
            factor = lr_factor(self.opts.optimiser)
            schedulers = [torch.optim.lr_scheduler.LambdaLR(o, factor) for o in optimizers]
            ema = self.opts.run.ema
            ema_v = EMA(value_net, ema) if ema > 0 else None
            ema_d = EMA(density_net, ema) if ema > 0 else None
        generator = torch.Generator().manual_seed(self.seed)
        sampler = self.formulation.make_sampler(generator)
        return TrainState(
            value_net, density_net, constant, optimizers, schedulers, ema_v, ema_d, sampler
        )

    def fingerprint(self) -> dict[str, Any]:
        """What a checkpoint must agree with to be resumed."""
        opts = {k: v for k, v in self.opts.flat().items() if k not in _RESUMABLE_CHANGES}
        hjb, fp = (" ; ".join(map(str, e)) for e in (self.problem.hjbs, self.problem.fps))
        residuals = f"{hjb} | {fp} | {sorted(map(str, self.problem.params.items()))}"
        return {
            "problem": self.problem.name,
            "residuals": residuals,
            "method": self.method,
            "seed": self.seed,
            "options": {k: str(v) for k, v in opts.items()},
        }

    def state_dict(self, st: TrainState) -> dict[str, Any]:
        return state_dict(st, self.fingerprint())

    def load_state_dict(self, st: TrainState, sd: dict[str, Any]) -> None:
        load_state_dict(st, sd, self.fingerprint())

    # ----- losses ----------------------------------------------------------------------------
    def losses(
        self,
        st: TrainState,
        players: Sequence[str],
        frozen: Sequence[str],
        points: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """The losses of ``players`` ("hjb", "fp") on a fresh batch (or at ``points``); fields in
        ``frozen`` ("u", "m") act as constants: their networks run with weights that do not
        require grad, so their x-derivatives are exact and no graph through their parameters is
        recorded."""
        weights = None
        if points is None:
            points, weights = self.formulation.batch(st)
        nets = {"u": st.value_net, "m": st.density_net}
        with weights_constant(*(nets[name] for name in frozen)):
            return self.formulation.losses(st, points, players, frozen, weights)

    @staticmethod
    def mean(loss: torch.Tensor) -> float:
        """A batch loss as recorded: the mean over the processes of a data-parallel run."""
        return float(distributed.all_mean(loss.detach()))

    def _step(self, opt: torch.optim.Optimizer, loss: torch.Tensor, params) -> float:
        opt.zero_grad(set_to_none=True)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        for p, g in zip(params, grads):
            p.grad = g if g is not None else torch.zeros_like(p)
        distributed.average_gradients(params)
        clip = self.opts.optimiser.grad_clip
        norm = torch.nn.utils.clip_grad_norm_(params, clip if clip > 0 else float("inf"))
        if not torch.isfinite(norm):
            return float("nan")
        opt.step()
        return float(norm)

    def iterate(self, st: TrainState) -> dict[str, float]:
        """One iteration of the game, then the schedulers and the weight averages."""

        def step(index: int, loss: torch.Tensor, label: str) -> float:
            # the mean over the processes: in a data-parallel run all reach the same verdict
            value = self.mean(loss)
            if not math.isfinite(value):
                raise _NonFinite(f"{label} loss became {value}")
            norm = self._step(st.optimizers[index], loss, st.params(index))
            if not math.isfinite(norm):
                raise _NonFinite(f"gradient of the {label} loss became non-finite")
            return norm

        record = self.game.iterate(self, st, step)
        record.update(self.formulation.record(st))
        for s in st.schedulers:
            s.step()
        if st.ema_value is not None:
            st.ema_value.update(st.value_net)
            st.ema_density.update(st.density_net)
        return record

    # ----- training-dynamics diagnostics (Cao & Guo 2020; see mfgsolve.dynamics) ----------------
    def _lrs(self, st: TrainState) -> dict[str, float]:
        return {
            "generator": st.optimizers[0].param_groups[0]["lr"],
            "discriminator": st.optimizers[1].param_groups[0]["lr"],
        }

    def diagnostics(self, st: TrainState) -> dict[str, float]:
        """Gradient noise, size of the eta/2 J g correction and beta = 2B/eta for each player.

        Both losses are taken as functions of both players' parameters (nothing frozen), so the
        cross-Jacobian blocks of the game enter the correction.
        """
        from ..dynamics.diagnostics import game_diagnostics

        def both(points: torch.Tensor) -> dict[str, torch.Tensor]:
            pts = points.detach().requires_grad_(True)
            return self.losses(st, ("hjb", "fp"), (), points=pts)

        beta = self.opts.game.beta
        losses = {
            "generator": lambda p: (lambda o: o["hjb"] + beta * o["int_u"])(both(p)),
            "discriminator": lambda p: both(p)["fp"],
        }
        params = {"generator": st.params(0), "discriminator": st.params(1)}
        points = st.sampler.sample().to(self.device, self.dtype)
        diag = game_diagnostics(losses, params, self._lrs(st), points, n_groups=8)
        return {f"diag/{k}": float(v) for k, v in diag.items()}

    def _rollback(self, st: TrainState, good: dict[str, Any]) -> None:
        """Restore the last good state and halve the learning rates in force before the failure
        (so two failures within one evaluation window halve them twice)."""
        before = [list(s.base_lrs) for s in st.schedulers]
        self.load_state_dict(st, good)
        for s, lrs in zip(st.schedulers, before):
            scales = [lr / 2 / base for lr, base in zip(lrs, s.base_lrs)]
            s.base_lrs = [lr / 2 for lr in lrs]
            for group, scale in zip(s.optimizer.param_groups, scales):
                group["lr"] *= scale

    # ----- main loop -------------------------------------------------------------------------
    def run(self, st: TrainState) -> TrainState:
        opts = self.opts
        run, iterations = opts.run, opts.optimiser.iterations
        ckpt = Path(run.checkpoint_dir) / "train_state.pt" if run.checkpoint_dir else None
        good = copy.deepcopy(self.state_dict(st))
        recoveries = 0
        warned = False
        bar = tqdm(
            total=iterations,
            initial=st.iteration,
            disable=None if self.progress else True,
            desc=f"{self.method} {self.problem.name}",
            unit="it",
            dynamic_ncols=True,
        )
        start = time.perf_counter() - st.seconds
        try:
            while st.iteration < iterations:
                try:
                    record = self.iterate(st)
                except _NonFinite as exc:
                    recoveries += 1
                    if recoveries > opts.optimiser.max_recoveries:
                        raise TrainingDiverged(
                            f"problem '{self.problem.name}': iteration {st.iteration + 1}: {exc} after {opts.optimiser.max_recoveries} rollbacks with halved learning rate; "
                            "fix: lower lr (e.g. --lr), raise batch_size, or tighten grad_clip"
                        ) from None
                    it = st.iteration
                    self._rollback(st, good)
                    bar.write(
                        f"warning: iteration {it + 1}: {exc}; rolled back to iteration {st.iteration} and halved the learning rate",
                        file=sys.stderr,
                    )
                    continue
                st.iteration += 1
                if st.iteration % run.eval_every == 0 or st.iteration == iterations:
                    record.update(self.formulation.evaluate(st))
                    if run.diagnostics and self.method == "adversarial":
                        diag = self.diagnostics(st)
                        record.update(diag)
                        advice = (
                            None
                            if warned
                            else _suggest(diag, opts.sampling.batch_size, self._lrs(st))
                        )
                        if advice:
                            bar.write(
                                f"warning: iteration {st.iteration}: {advice}", file=sys.stderr
                            )
                            warned = True
                    st.seconds = time.perf_counter() - start
                    record["iteration"] = st.iteration
                    record["seconds"] = st.seconds
                    record["lr"] = st.optimizers[0].param_groups[0]["lr"]
                    st.history.append(record)
                    post = {
                        k: f"{record[k]:.2e}"
                        for k in ("loss_hjb", "loss_fp", "m_rel_l2")
                        if k in record
                    }
                    bar.set_postfix(post, refresh=False)
                    good = copy.deepcopy(self.state_dict(st))
                    for cb in self.callbacks:
                        cb(dict(record))
                if (
                    ckpt is not None
                    and self.rank == 0
                    and (st.iteration % run.checkpoint_every == 0 or st.iteration == iterations)
                ):
                    st.seconds = time.perf_counter() - start
                    atomic_torch_save(ckpt, self.state_dict(st))
                bar.update(1)
        finally:
            bar.close()
        st.seconds = time.perf_counter() - start
        return st


def _suggest(diag: dict[str, float], batch_size: int, lrs: dict[str, float]) -> str | None:
    from ..dynamics.diagnostics import suggest

    return suggest({k.removeprefix("diag/"): v for k, v in diag.items()}, batch_size, lrs)


def train(
    problem,
    opts: SolverOptions,
    *,
    seed: int,
    device,
    dtype,
    progress: bool = False,
    callbacks: Sequence[Callable[[dict], None]] = (),
    resume: bool = False,
) -> tuple[Trainer, TrainState]:
    """Run (or resume from ``opts.run.checkpoint_dir``) training, then the finish if
    ``opts.optimiser.finish`` names one (:mod:`.finish`); returns (trainer, final state)."""
    trainer = Trainer(problem, opts, seed, device, dtype, progress, callbacks)
    st = trainer.init_state()
    if resume and opts.run.checkpoint_dir:
        path = Path(opts.run.checkpoint_dir) / "train_state.pt"
        if path.exists():
            trainer.load_state_dict(st, safe_torch_load(path, map_location=trainer.device))
            if st.iteration > opts.optimiser.iterations:
                raise CheckpointError(
                    f"{path}: checkpoint at iteration {st.iteration}, past the run's "
                    f"{opts.optimiser.iterations} iterations; fix: delete it and start afresh"
                )
    trainer.run(st)
    if opts.optimiser.finish != "none":  # in float64, the problem as written
        fine = Trainer(problem, finish_options(opts), seed, device, torch.float64)
        return fine, FINISHES[opts.optimiser.finish](fine, st, progress)
    return trainer, st
