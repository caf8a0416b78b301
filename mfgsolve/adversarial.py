"""The generic adversarial solver for ergodic MFGs (Cao, Guo & Lauriere 2020) and its joint baseline.

Generator: u_theta (and the ergodic constant), minimising ``L_G = L_HJB + beta * (int u)^2``.
Discriminator: f_omega with m = exp(f)/Z, minimising ``L_D = L_FP``.
Updates alternate, each player stepping only its own parameters; the other player's field enters
as a constant (its x-derivatives are still exact: the FP flux (m u')' keeps u'').

``method="joint"`` minimises ``L_HJB + L_FP + beta * (int u)^2`` over all parameters with one
optimiser: the plain DGM / PINN baseline on the same networks.

Stabilisation used by default (measured in docs/solver.md): Adam with betas (0.5, 0.9), cosine
learning-rate decay, gradient-norm clipping, the ergodic constant at its least-squares value when
it enters linearly, and evaluation with an exponential moving average (EMA) of the weights.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from . import distributed
from ._continuation import NotApplicable, continuation_viscosity, viscosity_signs
from ._io import atomic_torch_save, safe_torch_load
from ._metrics import exact_functions, field_errors
from .derivatives import ENGINES, choose_engine
from .lowering import Residuals, lower, second_estimates, uses_laplacian
from .nets import DensityNetwork, InputMap, ValueNetwork, make_body
from .problem import MFG, Box, ErgodicMFG, ProblemError
from .sampling import CollocationSampler, density_resample, quadrature

__all__ = ["SolverOptions", "TrainingDiverged", "train"]


class TrainingDiverged(RuntimeError):
    """Training produced NaN/Inf and could not recover. The message names the iteration and loss."""


_DEFAULT_LR = 2e-3
_DEFAULT_LR_FINITE_HORIZON = 4e-3


@dataclass
class SolverOptions:
    """Options of the adversarial and joint solvers (all can be passed to ``solve`` as keywords).

    Attributes:
        iterations: generator updates (None: 1,500 with ``continuation`` in 1-D, whose schedule
            then reaches the same accuracy sooner, 2,000 otherwise).
        batch_size: collocation points per iteration.
        lr: generator learning rate (peak; None: 2e-3 for ergodic problems, 4e-3 for
            finite-horizon ones, whose space-time fit gains from the larger step, see
            docs/finite_horizon.md).
        lr_ratio: discriminator lr / generator lr.
        lr_final: learning rate at the end of the cosine schedule, as a fraction of ``lr``.
        schedule: "cosine" or "constant".
        warmup: iterations of linear warm-up.
        betas: Adam betas.
        optimizer: "adam" or "sgd".
        disc_steps: discriminator updates per iteration (None: 1 with ``continuation``, whose
            game each player's step contracts, 2 otherwise).
        gen_steps: generator updates per iteration (after the discriminator's).
        grad_clip: max gradient norm per player (0 disables).
        beta: weight of the (int u)^2 penalty.
        architecture: "mlp" or "dgm"; width, depth, activation, harmonics: network shape.
        ema: decay of the weight average used for evaluation (0 disables).
        sampling: "sobol", "uniform" or "density" collocation points ("density": a share
            ``density_fraction`` of each batch resampled from the current m, importance-weighted).
        density_fraction: share of the batch drawn from m with sampling="density".
        quadrature_points: nodes for Z and int u (grid in d <= 2, Sobol above).
        constant: "auto" (least squares when linear), "least_squares" or "trained".
        eval_every: iterations between error evaluations recorded in ``history``.
        eval_points: quadrature nodes for the errors recorded in ``history``.
        max_recoveries: NaN/Inf rollbacks (with halved lr) before giving up.
        checkpoint_dir, checkpoint_every: periodic checkpoints (atomic) and resume.
        diagnostics: record gradient-noise and SDE-correction diagnostics (see mfgsolve.dynamics).
        time_slices: finite-horizon problems: times per batch (batch_size // time_slices space
            points each; 0: 16).
        boundary_weight: finite-horizon problems on a box: weight of the Neumann / no-flux losses.
        walls: finite-horizon problems on a box: "exact" (Neumann for u and no flux for m by
            construction: even space inputs, and m0 flattened within a layer of width about
            sqrt(2 nu (t - t0)) of the walls) or "loss" (boundary losses). None: "exact" where
            the problem allows it (see ``finite_horizon.exact_walls_obstacle``), else "loss".
        time_feature: finite-horizon problems: "linear" time input, or "sqrt", which adds
            sqrt(tau + 0.01) of the scaled time tau (resolves the fast start of diffusion from m0;
            see docs/finite_horizon.md). None: "sqrt" for finite-horizon problems.
        derivatives: derivative engine of the ergodic residuals: "auto" (by dimension), "autograd",
            "func" (torch.func, exact Laplacian) or "hutchinson" (stochastic trace); see
            :mod:`mfgsolve.derivatives`. Evaluation always uses an exact engine.
        hutchinson_probes: Rademacher probes per point for "hutchinson".
        continuation: artificial viscosity at the start of training of a first-order (nu = 0)
            ergodic problem, lowered linearly to ``continuation * continuation_final`` at the
            last iteration (see :mod:`mfgsolve._continuation`). None: 0.05 for the adversarial
            method on first-order problems, 0 otherwise; 0 disables it.
        continuation_final: the viscosity at the end, as a fraction of ``continuation``.
    """

    iterations: int | None = None
    batch_size: int = 512
    lr: float | None = None
    lr_ratio: float = 1.0
    lr_final: float = 0.02
    schedule: str = "cosine"
    warmup: int = 0
    betas: tuple[float, float] = (0.5, 0.9)
    optimizer: str = "adam"
    disc_steps: int | None = None
    gen_steps: int = 1
    grad_clip: float = 1.0
    beta: float = 1.0
    architecture: str = "mlp"
    width: int = 48
    depth: int = 3
    activation: str = "tanh"
    harmonics: int = 1
    ema: float = 0.99
    sampling: str = "sobol"
    density_fraction: float = 0.5
    quadrature_points: int = 0
    constant: str = "auto"
    eval_every: int = 50
    eval_points: int = 0
    max_recoveries: int = 3
    checkpoint_dir: str | None = None
    checkpoint_every: int = 500
    diagnostics: bool = False
    time_slices: int = 0
    boundary_weight: float = 1.0
    walls: str | None = None
    time_feature: str | None = None
    derivatives: str = "auto"
    hutchinson_probes: int = 4
    continuation: float | None = None
    continuation_final: float = 0.1

    @classmethod
    def build(cls, problem, overrides: dict[str, Any], saved: bool = False) -> SolverOptions:
        """Options for ``problem`` from user ``overrides`` (or, ``saved=True``, a saved full set:
        then options that do not apply are not an error, every option being present)."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ProblemError(
                f"unknown solver option(s) {unknown}; fix: use some of {sorted(names)}"
            )
        if saved and isinstance(problem, MFG):
            # saved before these options existed: those runs had the linear time input only
            # and boundary losses
            overrides = {"time_feature": "linear", "walls": "loss", **overrides}
        opts = cls(**{k: v for k, v in overrides.items() if v is not None})
        d = problem.dim
        given = set() if saved else {k for k, v in overrides.items() if v is not None}
        if "time_feature" in given and not isinstance(problem, MFG):
            raise ProblemError(
                "time_feature applies only to finite-horizon problems (an ergodic problem has no time); fix: drop it"
            )
        if "walls" in given and not (isinstance(problem, MFG) and isinstance(problem.domain, Box)):
            raise ProblemError(
                "walls applies only to finite-horizon problems on a Box; fix: drop it"
            )
        if "density_fraction" in given and opts.sampling != "density":
            raise ProblemError(
                "density_fraction applies only to sampling='density'; fix: add sampling='density' or drop it"
            )
        opts._given = frozenset(given)  # not a field: for checks that need the lowered residuals
        if opts.lr is None:
            opts.lr = _DEFAULT_LR_FINITE_HORIZON if isinstance(problem, MFG) else _DEFAULT_LR
        if isinstance(problem, MFG):  # a space quadrature per time slice: smaller defaults
            opts.time_feature = opts.time_feature or "sqrt"
            if isinstance(problem.domain, Box) and opts.walls in (None, "exact"):
                from .finite_horizon import exact_walls_obstacle

                obstacle = exact_walls_obstacle(problem)
                if obstacle is not None and opts.walls == "exact" and not saved:
                    raise ProblemError(
                        f"problem '{problem.name}': walls='exact' does not apply: {obstacle}; fix: use walls='loss'"
                    )
                opts.walls = "exact" if obstacle is None else "loss"
            opts.time_slices = (
                opts.time_slices if opts.time_slices > 0 else min(16, opts.batch_size // 2)
            )
            if opts.quadrature_points <= 0:
                opts.quadrature_points = 128 if d == 1 else (32 * 32 if d == 2 else 2048)
        if opts.quadrature_points <= 0:
            opts.quadrature_points = 256 if d == 1 else (64 * 64 if d == 2 else 4096)
        if opts.eval_points <= 0:
            opts.eval_points = 1024 if d == 1 else (128 * 128 if d == 2 else 2**15)
        opts.validate()
        return opts

    def validate(self) -> None:
        checks = [
            (self.iterations is None or self.iterations >= 1, "iterations must be >= 1"),
            (self.batch_size >= 2, "batch_size must be >= 2"),
            (
                isinstance(self.lr, (int, float)) and self.lr > 0 and math.isfinite(self.lr),
                "lr must be a positive number",
            ),
            (self.lr_ratio > 0, "lr_ratio must be > 0"),
            (0 < self.lr_final <= 1, "lr_final is a fraction of lr in (0, 1]"),
            (self.schedule in ("cosine", "constant"), "schedule must be 'cosine' or 'constant'"),
            (self.optimizer in ("adam", "sgd"), "optimizer must be 'adam' or 'sgd'"),
            (self.disc_steps is None or self.disc_steps >= 1, "disc_steps must be >= 1"),
            (self.gen_steps >= 1, "gen_steps must be >= 1"),
            (self.grad_clip >= 0, "grad_clip must be >= 0 (0 disables)"),
            (self.beta >= 0, "beta must be >= 0"),
            (0 <= self.ema < 1, "ema must be in [0, 1)"),
            (
                self.constant in ("auto", "least_squares", "trained"),
                "constant must be 'auto', 'least_squares' or 'trained'",
            ),
            (self.width >= 1 and self.depth >= 1, "width and depth must be >= 1"),
            (self.harmonics >= 1, "harmonics must be >= 1"),
            (self.time_slices >= 0, "time_slices must be >= 0 (0: automatic)"),
            (self.boundary_weight >= 0, "boundary_weight must be >= 0"),
            (self.walls in (None, "exact", "loss"), "walls must be 'exact' or 'loss'"),
            (
                self.time_feature in (None, "linear", "sqrt"),
                "time_feature must be 'linear' or 'sqrt'",
            ),
            (
                self.derivatives in ENGINES,
                f"derivatives must be one of {', '.join(repr(e) for e in ENGINES)}",
            ),
            (self.hutchinson_probes >= 1, "hutchinson_probes must be >= 1"),
            (
                self.sampling in ("sobol", "uniform", "density"),
                "sampling must be 'sobol', 'uniform' or 'density'",
            ),
            (0 <= self.density_fraction < 1, "density_fraction must be in [0, 1)"),
            (
                self.continuation is None
                or (
                    isinstance(self.continuation, (int, float))
                    and self.continuation >= 0
                    and math.isfinite(self.continuation)
                ),
                "continuation must be a viscosity >= 0 (0 disables it)",
            ),
            (0 <= self.continuation_final <= 1, "continuation_final must be in [0, 1]"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ProblemError(f"bad solver option: {msg}; fix: change that option")


class _EMA:
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


class _Fields:
    """u and log m of the current networks (``log_z`` precomputed by quadrature)."""

    def __init__(self, value_net, density_net, log_z):
        self.value_net, self.density_net, self.log_z = value_net, density_net, log_z

    def value(self, points):
        return self.value_net(points)

    def log_density(self, points):
        return self.density_net(points) - self.log_z


def _schedule(opts: SolverOptions) -> Callable[[int], float]:
    total = max(1, opts.iterations)

    def factor(step: int) -> float:
        warm = min(1.0, (step + 1) / opts.warmup) if opts.warmup > 0 else 1.0
        if opts.schedule == "constant":
            return warm
        progress = min(1.0, step / total)
        return warm * (
            opts.lr_final + (1 - opts.lr_final) * 0.5 * (1 + math.cos(math.pi * progress))
        )

    return factor


def _optimizer(params, lr: float, opts: SolverOptions) -> torch.optim.Optimizer:
    if opts.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, betas=tuple(opts.betas))
    return torch.optim.SGD(params, lr=lr)


@dataclass
class TrainState:
    """Everything a run needs to continue: networks, optimisers, EMA, RNG, history."""

    value_net: ValueNetwork
    density_net: DensityNetwork
    constant: torch.Tensor | None  # trained constant (None when least squares)
    optimizers: list[torch.optim.Optimizer]
    schedulers: list[torch.optim.lr_scheduler.LambdaLR]
    ema_value: _EMA | None
    ema_density: _EMA | None
    sampler: CollocationSampler
    iteration: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    constant_estimate: float = float("nan")
    seconds: float = 0.0


def build_networks(
    problem, opts: SolverOptions, device, dtype
) -> tuple[ValueNetwork, DensityNetwork]:
    if isinstance(problem, MFG):
        from .finite_horizon import build_networks as build_space_time

        return build_space_time(problem, opts, device, dtype)
    time_interval = (problem.t0, problem.T) if hasattr(problem, "T") else None
    nets = []
    for _ in range(2):
        inputs = InputMap(problem.domain, time_interval, opts.harmonics)
        body = make_body(
            opts.architecture, inputs.out_features, opts.width, opts.depth, opts.activation
        )
        nets.append((inputs, body))
    value_net = ValueNetwork(*nets[0]).to(device, dtype)
    density_net = DensityNetwork(*nets[1]).to(device, dtype)
    return value_net, density_net


class _Trainer:
    def _setup(self, problem, method, opts, seed, device, dtype, progress, callbacks) -> None:
        """Checks and attributes shared by the ergodic and the finite-horizon trainers."""
        if method not in ("adversarial", "joint"):
            raise ProblemError(
                f"unknown method {method!r}; fix: use method='adversarial' or 'joint'"
            )
        self.problem, self.method, self.opts = problem, method, opts
        self.seed, self.device, self.dtype = seed, torch.device(device), dtype
        self.rank, self.world_size = distributed.world()
        # one progress bar and one checkpoint writer per run: process 0's
        self.progress, self.callbacks = progress and self.rank == 0, list(callbacks)
        if self.world_size > 1:
            if isinstance(problem, MFG):
                raise ProblemError(
                    f"problem '{problem.name}': data-parallel training is for ergodic problems; "
                    "fix: run finite-horizon problems in one process"
                )
            if opts.diagnostics:
                raise ProblemError(
                    "diagnostics=True is not available in a data-parallel run (they need the whole "
                    "batch in one process); fix: measure them in a one-process run"
                )
            if opts.batch_size % self.world_size:
                raise ProblemError(
                    f"batch_size {opts.batch_size} is not divisible by the {self.world_size} processes; "
                    "fix: choose a batch_size that is a multiple of --nproc_per_node"
                )

    def __init__(
        self,
        problem: ErgodicMFG,
        method: str,
        opts: SolverOptions,
        seed: int,
        device,
        dtype,
        progress: bool,
        callbacks: Sequence[Callable],
    ):
        if not isinstance(problem, ErgodicMFG):
            raise ProblemError(
                f"problem '{problem.name}': this trainer handles ErgodicMFG problems; fix: call solve(), which picks the trainer for the problem type"
            )
        self._setup(problem, method, opts, seed, device, dtype, progress, callbacks)
        self.residuals: Residuals = lower(problem)
        use_ls = self.residuals.constant_coefficient is not None and opts.constant != "trained"
        if opts.constant == "least_squares" and self.residuals.constant_coefficient is None:
            raise ProblemError(
                f"problem '{problem.name}': constant='least_squares' needs the constant to enter the HJB linearly; fix: use constant='trained'"
            )
        self.least_squares = use_ls
        self.continuation = _resolve_continuation(problem, method, opts)
        self._lap_hjb = uses_laplacian(self.residuals.hjb) or self.continuation is not None
        self._lap_fp = uses_laplacian(self.residuals.fp) or self.continuation is not None
        try:
            self.engine = choose_engine(
                opts.derivatives, problem.dim, laplacian=self._lap_hjb or self._lap_fp
            )
        except ValueError as exc:
            raise ProblemError(f"problem '{problem.name}': {exc}") from None
        if "hutchinson_probes" in getattr(opts, "_given", ()) and self.engine != "hutchinson":
            raise ProblemError(
                f"problem '{problem.name}': hutchinson_probes applies only to the Hutchinson engine "
                f"(derivatives={opts.derivatives!r} is {self.engine!r} here); fix: add "
                "derivatives='hutchinson' or drop it"
            )
        # evaluation is exact: the stochastic trace only serves training
        self.eval_engine = "func" if self.engine == "hutchinson" else self.engine
        self.quad = quadrature(problem.domain, opts.quadrature_points, seed=seed).to(
            self.device, dtype
        )
        self.eval_quad = quadrature(problem.domain, opts.eval_points, seed=seed + 1)
        u_ex, m_ex, c_ex = exact_functions(problem)
        nodes = self.eval_quad.nodes.numpy()
        self.exact = (u_ex(nodes) if u_ex else None, m_ex(nodes) if m_ex else None, c_ex)

    # ----- state -----------------------------------------------------------------------------
    def init_state(self) -> TrainState:
        torch.manual_seed(self.seed)
        opts = self.opts
        value_net, density_net = build_networks(self.problem, opts, self.device, self.dtype)
        constant = None
        if not self.least_squares:
            constant = torch.zeros((), device=self.device, dtype=self.dtype, requires_grad=True)
        gen_params = list(value_net.parameters()) + ([constant] if constant is not None else [])
        disc_params = list(density_net.parameters())
        if self.method == "adversarial":
            optimizers = [
                _optimizer(gen_params, opts.lr, opts),
                _optimizer(disc_params, opts.lr * opts.lr_ratio, opts),
            ]
        else:
            optimizers = [_optimizer(gen_params + disc_params, opts.lr, opts)]
        factor = _schedule(opts)
        schedulers = [torch.optim.lr_scheduler.LambdaLR(o, factor) for o in optimizers]
        ema_v = _EMA(value_net, opts.ema) if opts.ema > 0 else None
        ema_d = _EMA(density_net, opts.ema) if opts.ema > 0 else None
        generator = torch.Generator().manual_seed(self.seed)
        sampler = CollocationSampler(self.problem.domain, opts.batch_size, opts.sampling, generator)
        return TrainState(
            value_net, density_net, constant, optimizers, schedulers, ema_v, ema_d, sampler
        )

    def state_dict(self, st: TrainState) -> dict[str, Any]:
        return {
            "format": "mfgsolve-train-state-1",
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
            "run": self._fingerprint(),
        }

    # what a checkpoint must agree with to be resumed (where and how often it is written may differ)
    _RESUMABLE_CHANGES = ("checkpoint_dir", "checkpoint_every")

    def _fingerprint(self) -> dict[str, Any]:
        opts = {
            k: v for k, v in options_dict(self.opts).items() if k not in self._RESUMABLE_CHANGES
        }
        residuals = f"{self.problem.hjb} | {self.problem.fp} | {sorted(map(str, self.problem.params.items()))}"
        return {
            "problem": self.problem.name,
            "residuals": residuals,
            "method": self.method,
            "seed": self.seed,
            "options": {k: str(v) for k, v in opts.items()},
        }

    def _check_fingerprint(self, saved: dict[str, Any] | None) -> None:
        if saved is None:  # a checkpoint from before fingerprints: shapes are still checked
            return
        now = self._fingerprint()
        diffs = [k for k in ("problem", "residuals", "method", "seed") if saved.get(k) != now[k]]
        diffs += [
            f"{k} ({saved['options'].get(k)} -> {v})"
            for k, v in now["options"].items()
            if saved.get("options", {}).get(k) != v
        ]
        if diffs:
            raise ProblemError(
                f"checkpoint was written by a different run (differs in: {', '.join(diffs)}); "
                "fix: resume with the same problem file, settings, method, seed and options, or start afresh"
            )

    def load_state_dict(self, st: TrainState, sd: dict[str, Any]) -> None:
        if sd.get("format") != "mfgsolve-train-state-1":
            raise ProblemError(
                "checkpoint is not an mfgsolve training state; fix: point to a run folder written by mfgsolve"
            )
        self._check_fingerprint(sd.get("run"))
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
        except (KeyError, RuntimeError, ValueError) as exc:
            msg = str(exc).splitlines()[0][:160]
            raise ProblemError(
                f"checkpoint does not match this problem and options ({msg}); fix: resume with the same problem file and options, or start afresh"
            ) from None
        st.iteration = int(sd["iteration"])
        st.history = list(sd["history"])
        st.seconds = float(sd["seconds"])
        st.constant_estimate = float(sd["constant_estimate"])

    # ----- losses ----------------------------------------------------------------------------
    def _log_z(self, density_net: DensityNetwork) -> torch.Tensor:
        return density_net.log_normalizer(self.quad.nodes, self.quad.log_weights)

    def _int_u(self, value_net: ValueNetwork) -> torch.Tensor:
        return self.quad.integrate(value_net(self.quad.nodes)) / self.problem.domain.volume

    def _viscosity(self, iteration: int) -> float:
        """The continuation's artificial viscosity at ``iteration`` (0 without continuation)."""
        if self.continuation is None:
            return 0.0
        return continuation_viscosity(
            self.opts.continuation, self.opts.continuation_final, iteration, self.opts.iterations
        )

    def _hjb(self, points, caches, constants=(), eps: float = 0.0) -> torch.Tensor:
        """The HJB residual (without a least-squares constant) plus the continuation's viscosity."""
        r = self.residuals.hjb(points, caches, constants)
        return r + (self.continuation[0] * eps) * caches["u"]("lap") if eps else r

    def _fp(self, points, caches, eps: float = 0.0) -> torch.Tensor:
        """The FP residual plus the continuation's viscosity."""
        r = self.residuals.fp(points, caches)
        return r + (self.continuation[1] * eps) * caches["m"]("lap") if eps else r

    def _hjb_loss(
        self, points, caches, constant, weights, caches_b=None, eps: float = 0.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean squared HJB residual; with ``caches_b`` (a second, independent stochastic
        estimate) the mean of the product of the two residuals, an unbiased estimate of it."""
        res = self.residuals
        if self.least_squares:
            rest = self._hjb(points, caches, eps=eps)
            rest_b = self._hjb(points, caches_b, eps=eps) if caches_b is not None else rest
            if self.world_size > 1 or weights is not None or caches_b is not None:
                # the (weighted) mean over the global batch; as the residuals then sum to zero
                # over it, the gradient through this mean vanishes and detaching it changes nothing
                total = distributed.all_mean(_weighted_mean((rest + rest_b) / 2, weights))
                mass = distributed.all_mean(_weighted_mean(torch.ones_like(rest), weights))
                c_star = -(total / mass) / res.constant_coefficient
            else:
                c_star = -rest.mean() / res.constant_coefficient
            r = rest + res.constant_coefficient * c_star
            r_b = rest_b + res.constant_coefficient * c_star if caches_b is not None else r
            return _weighted_mean(r * r_b, weights), c_star.detach()
        r = self._hjb(points, caches, [constant], eps)
        r_b = self._hjb(points, caches_b, [constant], eps) if caches_b is not None else r
        return _weighted_mean(r * r_b, weights), constant.detach()

    def losses(
        self,
        st: TrainState,
        points: torch.Tensor,
        frozen: Sequence[str],
        weights: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """HJB, FP and int-u losses at ``points`` (importance ``weights`` if given); fields listed
        in ``frozen`` act as constants: their networks run with weights that do not require grad,
        so their x-derivatives are exact and no graph through their parameters is recorded."""
        nets = {"u": st.value_net, "m": st.density_net}
        with weights_constant(*(nets[name] for name in frozen)):
            return self._losses(st, points, frozen, weights)

    def _losses(self, st, points, frozen, weights) -> dict[str, torch.Tensor]:
        log_z = self._log_z(st.density_net)
        fields = _Fields(st.value_net, st.density_net, log_z)
        caches = self.residuals.caches(
            points,
            fields,
            frozen=frozen,
            engine=self.engine,
            probes=self.opts.hutchinson_probes,
            generator=st.sampler.generator,
            shard=(self.rank, self.world_size),
        )
        stochastic = self.engine == "hutchinson"
        eps = self._viscosity(st.iteration)
        out: dict[str, torch.Tensor] = {}
        if "u" not in frozen or self.method == "joint":
            second = second_estimates(caches) if stochastic and self._lap_hjb else None
            out["hjb"], out["constant"] = self._hjb_loss(
                points, caches, st.constant, weights, second, eps
            )
            out["int_u"] = self._int_u(st.value_net) ** 2
        if "m" not in frozen or self.method == "joint":
            fp = self._fp(points, caches, eps)
            if stochastic and self._lap_fp:  # unbiased: the product of two independent estimates
                fp = fp * self._fp(points, second_estimates(caches), eps)
            else:
                fp = fp**2
            out["fp"] = _weighted_mean(fp, weights)
        return out

    # ----- one iteration ---------------------------------------------------------------------
    def _batch(self, st: TrainState) -> tuple[torch.Tensor, torch.Tensor | None]:
        """This process's collocation points (requiring grad) and importance weights (or None)."""
        points = st.sampler.sample()  # the whole batch, in every process
        weights = None
        if self.opts.sampling == "density":
            pool = torch.cat([points] + [st.sampler.sample() for _ in range(3)])
            with torch.no_grad():
                dev_pool = pool.to(self.device, self.dtype)
                log_m = st.density_net(dev_pool) - self._log_z(st.density_net)
            points, weights = density_resample(
                dev_pool,
                log_m,
                self.opts.batch_size,
                self.opts.density_fraction,
                self.problem.domain.volume,
                st.sampler.generator,
            )
            weights = distributed.shard(weights)
        points = distributed.shard(points).to(self.device, self.dtype)
        return points.requires_grad_(True), weights

    def _step(
        self, opt: torch.optim.Optimizer, loss: torch.Tensor, params: list[torch.Tensor]
    ) -> float:
        opt.zero_grad(set_to_none=True)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        for p, g in zip(params, grads):
            p.grad = g if g is not None else torch.zeros_like(p)
        distributed.average_gradients(params)
        norm = torch.nn.utils.clip_grad_norm_(
            params, self.opts.grad_clip if self.opts.grad_clip > 0 else float("inf")
        )
        if not torch.isfinite(norm):
            return float("nan")
        opt.step()
        return float(norm)

    def iterate(self, st: TrainState) -> dict[str, float]:
        opts = self.opts
        record: dict[str, float] = {}
        gen_params = [p for g in st.optimizers[0].param_groups for p in g["params"]]
        if self.method == "adversarial":
            disc_params = [p for g in st.optimizers[1].param_groups for p in g["params"]]
            for _ in range(opts.disc_steps):
                pts, w = self._batch(st)
                loss = self.losses(st, pts, frozen=("u",), weights=w)["fp"]
                record["loss_fp"] = _mean(loss)
                record["grad_disc"] = self._guarded_step(
                    st.optimizers[1], loss, disc_params, "FP", st
                )
            for _ in range(opts.gen_steps):
                pts, w = self._batch(st)
                out = self.losses(st, pts, frozen=("m",), weights=w)
                loss = out["hjb"] + opts.beta * out["int_u"]
                record["loss_hjb"], record["loss_int_u"] = (
                    _mean(out["hjb"]),
                    _mean(out["int_u"]),
                )
                record["grad_gen"] = self._guarded_step(
                    st.optimizers[0], loss, gen_params, "HJB", st
                )
        else:
            pts, w = self._batch(st)
            out = self.losses(st, pts, frozen=(), weights=w)
            loss = out["hjb"] + out["fp"] + opts.beta * out["int_u"]
            record["loss_hjb"], record["loss_fp"], record["loss_int_u"] = (
                _mean(out["hjb"]),
                _mean(out["fp"]),
                _mean(out["int_u"]),
            )
            record["grad_gen"] = self._guarded_step(
                st.optimizers[0], loss, gen_params, "HJB+FP", st
            )
        record["constant_batch"] = float(out["constant"])
        if self.continuation is not None:
            record["viscosity"] = self._viscosity(st.iteration)
        for s in st.schedulers:
            s.step()
        if st.ema_value is not None:
            st.ema_value.update(st.value_net)
            st.ema_density.update(st.density_net)
        return record

    def _guarded_step(self, opt, loss, params, label, st) -> float:
        # the mean over the processes: in a data-parallel run all reach the same verdict
        value = _mean(loss)
        if not math.isfinite(value):
            raise _NonFinite(f"{label} loss became {value}")
        norm = self._step(opt, loss, params)
        if not math.isfinite(norm):
            raise _NonFinite(f"gradient of the {label} loss became non-finite")
        return norm

    # ----- evaluation ------------------------------------------------------------------------
    def eval_nets(self, st: TrainState) -> tuple[ValueNetwork, DensityNetwork]:
        if st.ema_value is not None:
            return st.ema_value.shadow, st.ema_density.shadow
        return st.value_net, st.density_net

    def eval_log_z(self, density_net: DensityNetwork) -> torch.Tensor:
        """log Z on the (larger) evaluation quadrature: used for everything reported, not for training."""
        nodes = self.eval_quad.nodes.to(self.device, self.dtype)
        with torch.no_grad():
            f = torch.cat([density_net(c) for c in nodes.split(8192)])
        return torch.logsumexp(f + self.eval_quad.log_weights.to(self.device, self.dtype), dim=0)

    def final_constant(self, value_net, density_net, constant) -> float:
        """The ergodic constant of the current networks (see :meth:`validate`)."""
        return self.validate(value_net, density_net, constant, residuals=False)["constant"]

    def validate(
        self, value_net, density_net, constant, residuals: bool = True
    ) -> dict[str, float]:
        """The ergodic constant and the RMS HJB and FP residuals on the evaluation quadrature.

        When the constant enters linearly (HJB = rest + c * Hbar) it is the density-weighted least-squares
        value ``-int m rest / c``: the average of the rest of the residual under the computed invariant
        measure m. With a log coupling, first-order errors of log m average out under this measure
        (int m = 1), so the estimate is second order in the error of m; a uniform average would be first
        order. Otherwise the trained constant is used. Residual norms use at most the first 4096 nodes.
        """
        nodes = self.eval_quad.nodes.to(self.device, self.dtype)
        weights = self.eval_quad.weights
        with torch.no_grad():
            log_z = self.eval_log_z(density_net)
        fields = _Fields(value_net, density_net, log_z)
        rests, masses = [], []
        first = None  # the residual norms use the first chunk; keep no other graph alive
        coeff = self.residuals.constant_coefficient
        for chunk, w in zip(nodes.split(4096), weights.split(4096)):
            pts = chunk.clone().requires_grad_(True)
            caches = self.residuals.caches(pts, fields, create_graph=False, engine=self.eval_engine)
            if self.least_squares:
                rest = self.residuals.hjb(pts, caches).detach().double().cpu()
                m = torch.exp(caches["logm"](()).detach().double().cpu())
                rests.append(float((w * m * rest).sum()))
                masses.append(float((w * m).sum()))
            if first is None:
                first = (pts, caches, w)
            if not residuals and not self.least_squares:
                break
        value = -sum(rests) / sum(masses) / coeff if self.least_squares else float(constant)
        out = {"constant": value}
        if residuals:
            pts, caches, w = first
            if self.least_squares:
                hjb = self.residuals.hjb(pts, caches) + coeff * value
            else:
                hjb = self.residuals.hjb(
                    pts, caches, [torch.as_tensor(value, dtype=self.dtype, device=self.device)]
                )
            fp = self.residuals.fp(pts, caches)
            total = float(w.sum())
            out["hjb_residual"] = float((w * hjb.detach().double().cpu() ** 2).sum() / total) ** 0.5
            out["fp_residual"] = float((w * fp.detach().double().cpu() ** 2).sum() / total) ** 0.5
        return out

    def evaluate(self, st: TrainState) -> dict[str, float]:
        value_net, density_net = self.eval_nets(st)
        nodes = self.eval_quad.nodes.to(self.device, self.dtype)
        with torch.no_grad():
            log_z = self.eval_log_z(density_net)
            u = torch.cat([value_net(c) for c in nodes.split(8192)]).double().cpu().numpy()
            m = (
                torch.exp(torch.cat([density_net(c) for c in nodes.split(8192)]) - log_z)
                .double()
                .cpu()
                .numpy()
            )
        out = self.validate(value_net, density_net, st.constant)
        st.constant_estimate = out["constant"]
        u_ref, m_ref, c_ref = self.exact
        out.update(
            field_errors(u, m, u_ref, m_ref, self.eval_quad.weights.numpy(), out["constant"], c_ref)
        )
        return out

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
        from .dynamics.diagnostics import game_diagnostics

        def both(points: torch.Tensor) -> dict[str, torch.Tensor]:
            return self.losses(st, points.detach().requires_grad_(True), frozen=())

        losses = {
            "generator": lambda p: (lambda o: o["hjb"] + self.opts.beta * o["int_u"])(both(p)),
            "discriminator": lambda p: both(p)["fp"],
        }
        params = {
            "generator": [p for g in st.optimizers[0].param_groups for p in g["params"]],
            "discriminator": [p for g in st.optimizers[1].param_groups for p in g["params"]],
        }
        points = st.sampler.sample().to(self.device, self.dtype)
        diag = game_diagnostics(losses, params, self._lrs(st), points, n_groups=8)
        return {f"diag/{k}": float(v) for k, v in diag.items()}

    # ----- main loop -------------------------------------------------------------------------
    def run(self, st: TrainState) -> TrainState:
        opts = self.opts
        ckpt = Path(opts.checkpoint_dir) / "train_state.pt" if opts.checkpoint_dir else None
        good = copy.deepcopy(self.state_dict(st))
        recoveries = 0
        warned = False
        bar = tqdm(
            total=opts.iterations,
            initial=st.iteration,
            disable=None if self.progress else True,
            desc=f"{self.method} {self.problem.name}",
            unit="it",
            dynamic_ncols=True,
        )
        start = time.perf_counter() - st.seconds
        try:
            while st.iteration < opts.iterations:
                try:
                    record = self.iterate(st)
                except _NonFinite as exc:
                    recoveries += 1
                    if recoveries > opts.max_recoveries:
                        raise TrainingDiverged(
                            f"problem '{self.problem.name}': iteration {st.iteration + 1}: {exc} after {opts.max_recoveries} rollbacks with halved learning rate; "
                            "fix: lower lr (e.g. --lr), raise batch_size, or tighten grad_clip"
                        ) from None
                    it = st.iteration
                    self.load_state_dict(st, good)
                    for s in st.schedulers:
                        s.base_lrs = [lr / 2 for lr in s.base_lrs]
                    bar.write(
                        f"warning: iteration {it + 1}: {exc}; rolled back to iteration {st.iteration} and halved the learning rate",
                        file=sys.stderr,
                    )
                    continue
                st.iteration += 1
                if st.iteration % opts.eval_every == 0 or st.iteration == opts.iterations:
                    record.update(self.evaluate(st))
                    if opts.diagnostics and self.method == "adversarial":
                        diag = self.diagnostics(st)
                        record.update(diag)
                        advice = None if warned else _suggest(diag, opts.batch_size, self._lrs(st))
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
                    and (
                        st.iteration % opts.checkpoint_every == 0 or st.iteration == opts.iterations
                    )
                ):
                    st.seconds = time.perf_counter() - start
                    atomic_torch_save(ckpt, self.state_dict(st))
                bar.update(1)
        finally:
            bar.close()
        st.seconds = time.perf_counter() - start
        return st


def _resolve_continuation(problem, method: str, opts: SolverOptions) -> tuple[int, int] | None:
    """The signs of the continuation's viscosity terms, or None when it is off; sets
    ``opts.continuation`` to the viscosity actually used, and ``opts.disc_steps`` and
    ``opts.iterations`` (None resolves them by method and problem). Used by the ergodic and the
    finite-horizon trainers."""
    given = opts.continuation is not None
    if isinstance(problem, MFG) and opts.continuation:
        raise ProblemError(
            f"problem '{problem.name}': continuation (an artificial viscosity) is for first-order "
            "ergodic problems; fix: drop it"
        )
    if isinstance(problem, MFG):
        start = 0.0
    else:
        start = opts.continuation if given else (0.05 if method == "adversarial" else 0.0)
    signs = None
    if start > 0:
        try:
            signs = viscosity_signs(problem)
        except NotApplicable as exc:
            if given:
                raise ProblemError(
                    f"problem '{problem.name}': continuation does not apply: {exc}; fix: drop continuation"
                ) from None
    opts.continuation = start if signs is not None else 0.0
    if opts.disc_steps is None:
        opts.disc_steps = 1 if signs is not None else 2
    if opts.iterations is None:
        opts.iterations = 1500 if signs is not None and problem.dim == 1 else 2000
    return signs


def _suggest(diag: dict[str, float], batch_size: int, lrs: dict[str, float]) -> str | None:
    from .dynamics.diagnostics import suggest

    return suggest({k.removeprefix("diag/"): v for k, v in diag.items()}, batch_size, lrs)


def _weighted_mean(values: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    return values.mean() if weights is None else (weights * values).mean()


def _mean(loss: torch.Tensor) -> float:
    """A batch loss as recorded: the mean over the processes of a data-parallel run."""
    return float(distributed.all_mean(loss.detach()))


class _NonFinite(Exception):
    pass


def train(
    problem: ErgodicMFG,
    *,
    method: str,
    opts: SolverOptions,
    seed: int,
    device,
    dtype,
    progress: bool,
    callbacks: Sequence[Callable],
    resume: bool = False,
):
    """Run (or resume) training; returns (trainer, final state)."""
    trainer_class = _Trainer
    if isinstance(problem, MFG):
        from .finite_horizon import FiniteHorizonTrainer as trainer_class  # noqa: N813
    trainer = trainer_class(problem, method, opts, seed, device, dtype, progress, callbacks)
    st = trainer.init_state()
    if resume and opts.checkpoint_dir:
        path = Path(opts.checkpoint_dir) / "train_state.pt"
        if path.exists():
            trainer.load_state_dict(st, safe_torch_load(path, map_location=trainer.device))
    trainer.run(st)
    return trainer, st


def options_dict(opts: SolverOptions) -> dict[str, Any]:
    d = asdict(opts)
    d["betas"] = list(d["betas"])
    return d
