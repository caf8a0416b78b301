"""``solve(problem, ...)``: the one entry point of the network solvers, for every problem kind.

Ergodic and finite-horizon MFGs train in :mod:`mfgsolve.train` and return a
:class:`~mfgsolve.solution.Solution`; FBSDEs train in :mod:`mfgsolve.fbsde` and return an
:class:`~mfgsolve.fbsde.FBSDESolution`. Both follow the result protocol of
:mod:`mfgsolve.result`. The caller's global random state is left as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from ._messages import shown
from ._run_arguments import check_device as _device
from ._run_arguments import check_seed
from ._threads import torch_threads
from .errors import OptionError, ProblemError
from .options import SolverOptions
from .problem import Problem
from .solution import DTYPES, Solution
from .train import train

__all__ = ["solve"]


def _dtype(dtype: torch.dtype | str | None) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, str) and dtype in DTYPES:
        return DTYPES[dtype]
    if dtype in DTYPES.values():
        return dtype
    raise OptionError(f"unknown dtype {shown(dtype)}; fix: use 'float32' or 'float64'")


def _solve_fbsde(problem, method, seed, device, dtype, progress, callbacks, resume, sizes, options):
    from .fbsde import solve_fbsde

    return solve_fbsde(
        problem,
        method=method,
        seed=seed,
        device=device,
        dtype=dtype,
        progress=progress,
        callbacks=callbacks,
        resume=resume,  # refused there with a one-line error
        **sizes,
        **options,
    )


def _solve_mfg(problem, method, seed, device, dtype, progress, callbacks, resume, sizes, options):
    dtype = _dtype(dtype)
    opts = SolverOptions.build(problem, {**sizes, **options}, method=method)
    with torch_threads(opts.run.threads):
        trainer, st = train(
            problem,
            opts,
            seed=seed,
            device=device,
            dtype=dtype,
            progress=progress,
            callbacks=callbacks,
            resume=resume,
        )
        value_net, density_net = st.eval_nets()
        log_z, constant, rule = trainer.formulation.finish(st)
    info = {
        "method": method,
        "seed": seed,
        "iterations": st.iteration,
        "seconds": st.seconds,
        "options": opts.flat(),
        "device": str(device),
        "quadrature": rule,
    }
    return Solution(problem, value_net, density_net, log_z, constant, st.history, info)


# problem kind -> how to solve it (a new problem kind registers its solver here)
SOLVERS: dict[str, Callable] = {
    "ergodic": _solve_mfg,
    "finite_horizon": _solve_mfg,
    "fbsde": _solve_fbsde,
}


def solve(
    problem: Any,
    *,
    method: str = "adversarial",
    iterations: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | str | None = None,
    progress: bool = True,
    callbacks: Sequence[Callable[[dict], None]] = (),
    resume: bool = False,
    **options: Any,
) -> Any:
    """Solve a problem with neural networks.

    Args:
        problem: an :class:`ErgodicMFG`, a finite-horizon :class:`MFG` (trained in space-time) or
            an :class:`FBSDE`.
        method: "adversarial" (generator u vs discriminator m on the residuals, alternating),
            "joint" (one residual loss) or "minmax" (the saddle point of the Lagrangian of a
            potential ergodic MFG, :mod:`mfgsolve.lowering.potential`); for FBSDEs
            "adversarial" or "deep_bsde".
        iterations, batch_size, lr: main training options (None: the defaults, see
            :class:`~mfgsolve.options.SolverOptions`).
        seed: fixes network initialisation and collocation points; same seed, same numbers on CPU.
        device, dtype: torch device and dtype (float32 by default).
        progress: show a tqdm progress bar (auto-disabled when stderr is not a terminal).
        callbacks: callables receiving each evaluation record (a dict) during training.
        resume: continue from ``checkpoint_dir``'s last checkpoint if there is one.
        **options: any other solver option (``mfgsolve.options.SPECS``; FBSDE options for FBSDEs).

    Returns:
        a :class:`Solution` (an :class:`~mfgsolve.fbsde.FBSDESolution` for FBSDE problems).

    Raises:
        ProblemError / OptionError: bad input (one line). TrainingDiverged: the run failed.
    """
    solver = SOLVERS.get(problem.kind) if isinstance(problem, Problem) else None
    if solver is None:
        raise ProblemError(
            f"cannot solve a {type(problem).__name__}; fix: pass an ErgodicMFG, MFG or FBSDE (see load_problem)"
        )
    sizes = {"iterations": iterations, "batch_size": batch_size, "lr": lr}
    seed = check_seed(seed)
    device = _device(device)
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):  # the caller's random stream stays untouched
        return solver(
            problem, method, seed, device, dtype, progress, callbacks, resume, sizes, options
        )
