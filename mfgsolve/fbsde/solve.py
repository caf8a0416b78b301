"""``solve_fbsde``: train the deep BSDE or the adversarial model on an :class:`FBSDE`."""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from .._messages import did_you_mean, shown
from .._run_arguments import check_device, check_seed
from .._threads import torch_threads
from ..errors import FBSDEDivergedError, OptionError
from ..train.state import lr_factor
from ._models import Adversarial, DeepBSDE, FBSDEModel, ModelConfig
from .problem import FBSDE
from .solution import FBSDESolution

__all__ = ["solve_fbsde", "FBSDEDivergedError", "DEFAULTS"]

METHODS = ("deep_bsde", "adversarial")

#: Defaults per method (chosen on the d = 10 and d = 100 closed-form tests and kept on the d = 100
#: problems, each run <= 10 minutes on one CPU thread; see docs/fbsde.md, section 6).
DEFAULTS: dict[str, dict[str, Any]] = {
    "deep_bsde": {
        "iterations": 4000,
        "batch_size": 256,
        "lr": 1e-2,
        "steps": 20,
        "width": None,  # d + 10
        "depth": 2,
        "activation": "relu",
        "network": "shared",
        "skip": True,
        "lr_final": 1e-4,
        "y0_lr_factor": 10.0,
        "y0_paths": 65536,
    },
    "adversarial": {
        "iterations": 3000,
        "batch_size": 64,
        "lr": 5e-3,
        "steps": 20,
        "width": None,
        "depth": 2,
        "activation": "tanh",
        "network": "shared",
        "skip": True,
        "lr_final": 5e-5,
        "disc_lr": None,  # 2 x lr
        "betas": (0.9, 0.999),
        "disc_steps": 5,
        "y0_paths": 65536,
    },
}

_OPTIONS = {
    "betas",
    "checkpoint_dir",
    "threads",
    "resume",
    "disc_steps",
    "skip",
    "y0_lr_factor",
    "steps",
    "width",
    "depth",
    "activation",
    "network",
    "lr_final",
    "disc_lr",
    "pilot_size",
    "y0_paths",
}


def _bad(problem: FBSDE, what: str, fix: str) -> OptionError:
    return OptionError(f"problem '{problem.name}': {what}; fix: {fix}")


def _positive_int(problem, value, name: str, most: int | None = None, least: int = 1) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < least
        or (most is not None and value > most)
    ):
        what = "a positive integer" if least == 1 else f"an integer >= {least}"
        if most is not None:
            what += f" (at most {most:,})"
        raise _bad(problem, f"{name}={shown(value)} is not {what}", f"give e.g. {name}=1000")
    return value


def _positive_number(problem, value, name: str) -> float:
    ok = (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and 0 < value <= sys.float_info.max
    )
    if not ok:
        raise _bad(
            problem, f"{name}={shown(value)} is not a positive number", f"give e.g. {name}=1e-3"
        )
    return float(value)


# options of one method only (the other refuses them, as the MFG solvers refuse what does not apply)
_ONLY = {
    "y0_lr_factor": "deep_bsde",
    "disc_lr": "adversarial",
    "disc_steps": "adversarial",
    "betas": "adversarial",
}
_ACTIVATIONS = ("relu", "tanh", "softplus", "silu")


def _check_options(problem: FBSDE, method: str, options: dict[str, Any]) -> None:
    """Refuse every bad option value before any computation (one line each)."""
    for name, only in _ONLY.items():
        if options.get(name) is not None and method != only:
            raise _bad(problem, f"{name} applies only to method={only!r}", "drop it")
    for name in ("steps", "width", "depth", "disc_steps", "pilot_size", "y0_paths"):
        value = options.get(name)
        if value is None:
            continue
        most = {"steps": 10**5, "width": 4096, "depth": 64, "disc_steps": 1000}.get(name, 2**22)
        least = {"pilot_size": 2, "y0_paths": 0}.get(name, 1)
        _positive_int(problem, value, name, most, least=least)
    for name in ("lr_final", "y0_lr_factor", "disc_lr"):
        if options.get(name) is not None:
            _positive_number(problem, options[name], name)
    activation = options.get("activation")
    if activation is not None and not (isinstance(activation, str) and activation in _ACTIVATIONS):
        raise _bad(
            problem,
            f"activation={shown(activation)} is not one of {', '.join(_ACTIVATIONS)}",
            "give e.g. activation='tanh'",
        )
    network = options.get("network")
    if network is not None and not (isinstance(network, str) and network in ("shared", "per_step")):
        raise _bad(
            problem,
            f"network={shown(network)} is not 'shared' or 'per_step'",
            "use network='shared' (or 'per_step' with deep_bsde)",
        )
    skip = options.get("skip")
    if skip is not None and not isinstance(skip, bool):
        raise _bad(problem, f"skip={shown(skip)} is not True or False", "give skip=True or False")
    betas = options.get("betas")
    if betas is not None and not (
        isinstance(betas, (list, tuple))
        and len(betas) == 2
        and all(
            isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1 for b in betas
        )
    ):
        raise _bad(
            problem, f"betas={shown(betas)} is not two numbers in [0, 1)", "give betas=(0.9, 0.999)"
        )
    folder = options.get("checkpoint_dir")
    if folder is not None:
        path = (
            Path(folder) if isinstance(folder, (str, os.PathLike)) and str(folder).strip() else None
        )
        if path is None or any(p.exists() and not p.is_dir() for p in (path, *path.parents)):
            raise _bad(
                problem,
                f"checkpoint_dir={shown(folder)} does not name a folder",
                "give a folder path that is not an existing file",
            )


def _pilot(problem: FBSDE, steps: int, n: int, dtype: torch.dtype, seed: int) -> dict[str, Any]:
    """Simulate X with y = z = 0 to set the input normalisation and the scale of Y."""
    config = ModelConfig("pilot", problem.dim, steps, 1, 0, "relu", "shared", 0.0, 1.0, False)
    model = FBSDEModel(problem, config).to(dtype)
    gen = torch.Generator().manual_seed(10_000 + seed)
    with torch.no_grad():
        x = model.initial_state(n, gen)
        dws = model.increments(n, gen)
        zero_y = torch.zeros(n, 1, dtype=dtype)
        zero_z = torch.zeros(n, problem.dim, dtype=dtype)
        xs = [x]
        for k, t in enumerate(model.times()[:-1]):
            x = model.forward_step(model.env(t, x, zero_y, zero_z), dws[k])
            xs.append(x)
        g = model.terminal(x).reshape(-1)
    if not torch.all(torch.isfinite(g)):
        raise _bad(
            problem,
            "the forward SDE blows up on the time grid (non-finite g(X_T))",
            "use more steps or check drift and diffusion",
        )
    allx = torch.cat(xs)
    std = allx.std(dim=0)
    std = torch.where(std > 1e-6, std, torch.ones_like(std))
    y_scale = float(g.std()) if float(g.std()) > 1e-8 else max(abs(float(g.mean())), 1.0)
    return {"mean": allx.mean(dim=0), "std": std, "y0_init": float(g.mean()), "y_scale": y_scale}


def solve_fbsde(
    problem: FBSDE,
    *,
    method: str = "adversarial",
    iterations: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    seed: int = 0,
    device: str = "cpu",
    dtype: torch.dtype | str | None = None,
    progress: bool = True,
    callbacks: Iterable[Callable[[dict[str, Any]], Any]] = (),
    **options: Any,
) -> FBSDESolution:
    """Solve an FBSDE for Y_0 = u(t0, x0) and the maps (t, x) -> (Y, Z).

    Args:
        problem: the :class:`FBSDE`.
        method: ``"deep_bsde"`` (Han, Jentzen & E 2018: Y_0 and a Z network, terminal mismatch loss)
            or ``"adversarial"`` (generator u, z against a weak-form discriminator; docs/fbsde.md).
        iterations, batch_size, lr: training sizes (defaults in :data:`DEFAULTS`).
        seed: fixes the initialisation and every Brownian path.
        device, dtype: torch device and dtype (default float32; ``"float64"`` accepted).
        progress: show a tqdm bar.
        callbacks: called each iteration with ``{"iteration", "losses", "y0"}``.
        **options: ``steps`` (time steps, 20), ``width`` (hidden width, d + 10), ``depth`` (2),
            ``activation``, ``skip`` (linear input-to-output path, True), ``network`` (``"shared"``
            net of (t, x) or ``"per_step"`` nets, deep BSDE), ``lr_final`` (end of the cosine
            schedule), ``y0_lr_factor`` (deep BSDE: lr multiplier of the Y_0 parameter),
            ``disc_lr``, ``disc_steps``, ``betas`` (adversarial), ``pilot_size``, ``y0_paths``
            (fresh paths for the final estimate of Y_0 from the mean condition at t0, 65,536;
            0: read Y_0 off the network; used when x0 is deterministic; see
            :attr:`FBSDESolution.y0_estimate`),
            ``checkpoint_dir`` (save the solution there at the end), ``threads`` (torch intra-op
            threads during training, restored afterwards; 1 is fastest for these small networks on
            a busy machine); ``resume`` is refused.

    Returns:
        An :class:`FBSDESolution`.

    Raises:
        ValueError: bad arguments (one line). FBSDEDivergedError: the loss became non-finite.
    """
    threads = options.pop("threads", None)
    if threads is not None and (
        isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= 1024
    ):
        raise OptionError(
            f"threads={shown(threads)} is not a positive integer (at most 1024); fix: give threads=1"
        )
    with torch_threads(threads):
        return _solve(
            problem,
            method=method,
            iterations=iterations,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            device=device,
            dtype=dtype,
            progress=progress,
            callbacks=callbacks,
            **options,
        )


def _solve(
    problem: FBSDE,
    *,
    method: str = "adversarial",
    iterations: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    seed: int = 0,
    device: str = "cpu",
    dtype: torch.dtype | None = None,
    progress: bool = True,
    callbacks: Iterable[Callable[[dict[str, Any]], Any]] = (),
    **options: Any,
) -> FBSDESolution:
    """Body of :func:`solve_fbsde` (same arguments)."""
    if not isinstance(problem, FBSDE):
        raise ValueError(
            f"solve_fbsde needs an FBSDE, got {type(problem).__name__}; fix: build it with FBSDE(...)"
        )
    if not isinstance(method, str) or method not in METHODS:
        raise _bad(problem, f"unknown method {shown(method)}", f"use one of {', '.join(METHODS)}")
    unknown = set(map(str, options)) - _OPTIONS
    if unknown:
        listed = "[" + ", ".join(shown(u) for u in sorted(unknown)) + "]"
        raise _bad(problem, f"unknown options {listed}", did_you_mean(sorted(unknown), _OPTIONS))
    if options.get("resume"):
        raise _bad(
            problem,
            "resume is not supported for FBSDE training (runs take minutes)",
            "run again without --resume",
        )
    _check_options(problem, method, options)
    cfg = dict(DEFAULTS[method])
    cfg.update({k: v for k, v in options.items() if v is not None})
    iterations = _positive_int(
        problem, cfg["iterations"] if iterations is None else iterations, "iterations", 10**9
    )
    batch_size = _positive_int(
        problem, cfg["batch_size"] if batch_size is None else batch_size, "batch_size", 2**20
    )
    steps = _positive_int(problem, cfg["steps"], "steps")
    lr = _positive_number(problem, cfg["lr"] if lr is None else lr, "lr")
    if method == "adversarial" and cfg["network"] != "shared":
        raise _bad(
            problem,
            f"network={cfg['network']!r} is not available for {method}",
            "use network='shared' (or 'per_step' with deep_bsde)",
        )
    if isinstance(dtype, str):
        if dtype not in ("float32", "float64"):
            raise _bad(problem, f"unknown dtype {shown(dtype)}", "use 'float32' or 'float64'")
        dtype = getattr(torch, dtype)
    if dtype is not None and dtype not in (torch.float32, torch.float64):
        raise _bad(problem, f"unknown dtype {shown(dtype)}", "use 'float32' or 'float64'")
    dtype = dtype or torch.float32
    seed = check_seed(seed)
    device = check_device(device)

    torch.manual_seed(seed)
    pilot = _pilot(problem, steps, int(cfg.get("pilot_size", 4096)), torch.float64, seed)
    width = int(cfg["width"] or problem.dim + 10)
    config = ModelConfig(
        method=method,
        dim=problem.dim,
        steps=steps,
        width=width,
        depth=int(cfg["depth"]),
        activation=str(cfg["activation"]),
        network=str(cfg["network"]),
        y0_init=pilot["y0_init"],
        y_scale=pilot["y_scale"],
        random_x0=problem.x0_std > 0,
        skip=bool(cfg["skip"]),
        z_scale=pilot["y_scale"] / math.sqrt(problem.horizon * problem.dim),
    )
    model: DeepBSDE | Adversarial = (DeepBSDE if method == "deep_bsde" else Adversarial)(
        problem, config
    )
    model.norm.mean.copy_(pilot["mean"])
    model.norm.std.copy_(pilot["std"])
    model = model.to(device=device, dtype=dtype)

    lr_final = float(cfg["lr_final"])

    # cosine decay of every group's lr to lr_final / lr of its start value: the schedule of the
    # MFG solvers (mfgsolve.train.state.lr_factor)
    factor = lr_factor(
        SimpleNamespace(iterations=iterations, warmup=0, schedule="cosine", lr_final=lr_final / lr)
    )

    def schedule(opt: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
        return torch.optim.lr_scheduler.LambdaLR(opt, factor)

    if method == "deep_bsde":
        y0_params = [p for n, p in model.named_parameters() if n == "y0_param"]
        other = [p for n, p in model.named_parameters() if n != "y0_param"]
        groups = [{"params": other}]
        if y0_params:
            groups.append({"params": y0_params, "lr": float(cfg["y0_lr_factor"]) * lr})
        opts = [torch.optim.Adam(groups, lr=lr)]
    else:
        disc_lr = float(cfg["disc_lr"] or 2 * lr)
        opts = [
            torch.optim.Adam(model.generator.parameters(), lr=lr, betas=tuple(cfg["betas"])),
            torch.optim.Adam(
                model.discriminator.parameters(), lr=disc_lr, betas=tuple(cfg["betas"])
            ),
        ]
    scheds = [schedule(o) for o in opts]
    gen = torch.Generator().manual_seed(seed)
    x0 = torch.tensor(problem.x0[None, :], dtype=dtype)
    y0_exact = problem.exact.get("y0") if problem.exact else None
    callbacks = list(callbacks)
    history: list[dict[str, Any]] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        # disable=None: no bar when stderr is not a terminal (logs, pipes)
        bar = tqdm(total=iterations, desc=f"{problem.name} [{method}]", leave=False, disable=None)
    start = time.perf_counter()
    for it in range(1, iterations + 1):
        if method == "deep_bsde":
            sim = model.simulate(batch_size, gen)
            loss = sim["loss"]
            opts[0].zero_grad(set_to_none=True)
            loss.backward()
            opts[0].step()
            losses = {"terminal": float(loss.detach())}
        else:
            sim = model.simulate(batch_size, gen)
            gen_opt, disc_opt = opts
            for _ in range(int(cfg["disc_steps"])):
                disc_opt.zero_grad(set_to_none=True)
                (-model.game(sim, detach_residual=True)).backward()
                disc_opt.step()
            gen_opt.zero_grad(set_to_none=True)
            game = model.game(sim, detach_residual=False)
            game.backward()
            gen_opt.step()
            residual = sim["r"].detach().pow(2).mean()
            losses = {"game": float(game.detach()), "residual": float(residual)}
        for s in scheds:
            s.step()
        main = losses.get("terminal", losses.get("residual"))
        if not math.isfinite(main):
            if bar is not None:
                bar.close()
            raise FBSDEDivergedError(
                f"problem '{problem.name}': {method} diverged at iteration {it} (loss {main}); "
                "fix: lower lr or use more time steps"
            )
        with torch.no_grad():
            y0 = float(model.y0_at(x0)[0])
        row: dict[str, Any] = {
            "iteration": it,
            "loss": main,
            **{f"loss_{k}": v for k, v in losses.items()},
            "y0": y0,
            "seconds": time.perf_counter() - start,
        }
        if y0_exact is not None and problem.x0_std == 0 and y0_exact != 0:
            row["y0_rel_error"] = abs(y0 - y0_exact) / abs(y0_exact)
        history.append(row)
        info = {"iteration": it, "losses": losses, "y0": y0}
        for cb in callbacks:
            cb(info)
        if bar is not None:
            bar.update(1)
            if it % 50 == 0:
                bar.set_postfix(loss=f"{main:.3g}", y0=f"{y0:.5g}")
    if bar is not None:
        bar.close()
    model.eval()
    sol = FBSDESolution(problem, model, history, seed=seed)
    sol.info = {
        "method": method,
        "iterations": iterations,
        "seconds": time.perf_counter() - start,
        "batch_size": batch_size,
        "lr": lr,
        "steps": steps,
    }
    y0_paths = int(cfg["y0_paths"])
    if y0_paths and problem.x0_std == 0:
        # Y_0 from the mean condition at t0 on fresh paths (docs/fbsde.md, section 6): the
        # network's value at the single point (t0, x0) carries its pointwise error
        est, err = model.y0_moment(y0_paths, torch.Generator().manual_seed(20_000 + seed))
        if math.isfinite(est):
            with torch.no_grad():
                network = float(model.y0_at(x0)[0])
            sol.y0_estimate = {
                "y0": est,
                "standard_error": err,
                "paths": y0_paths,
                "network": network,
            }
    sol.info["seconds"] = time.perf_counter() - start
    if cfg.get("checkpoint_dir"):
        sol.save(cfg["checkpoint_dir"])
    return sol
