"""``Solution``: the trained networks of a run, evaluated as numpy functions, saved and loaded safely."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._io import CheckpointError, atomic_torch_save, atomic_write_json, read_json, safe_torch_load
from .adversarial import SolverOptions, build_networks, options_dict, train
from .nets import DensityNetwork, ValueNetwork
from .problem import MFG, ErgodicMFG, ProblemError, load_problem

__all__ = ["Solution", "solve"]

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


class Solution:
    """A network solution of an MFG.

    Attributes:
        problem: the problem solved.
        constant: the ergodic constant Hbar (ergodic problems), else None.
        history: list of dicts (iteration, seconds, losses, errors against ``problem.exact`` if known).
        info: method, options, seed, seconds, iterations.
    """

    def __init__(
        self,
        problem: ErgodicMFG | MFG,
        value_net: ValueNetwork,
        density_net: DensityNetwork,
        log_z: float,
        constant: float | None,
        history: list[dict[str, float]],
        info: dict[str, Any],
    ):
        self.problem = problem
        self._value_net = value_net.eval()
        self._density_net = density_net.eval()
        self._log_z = float(log_z)
        self.constant = constant
        self.history = history
        self.info = info

    @property
    def device(self) -> torch.device:
        return next(self._value_net.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self._value_net.parameters()).dtype

    def _as_points(self, points: Any) -> torch.Tensor:
        arr = np.asarray(points, dtype=float)
        expected = self.problem.dim + (0 if isinstance(self.problem, ErgodicMFG) else 1)
        if arr.ndim == 1 and expected == 1:
            arr = arr[:, None]
        if arr.ndim != 2 or arr.shape[1] != expected:
            raise ValueError(
                f"points must have shape (n, {expected}), got {arr.shape}; fix: pass one row per point"
                + ("" if isinstance(self.problem, ErgodicMFG) else " with time first")
            )
        return torch.as_tensor(arr, dtype=self.dtype, device=self.device)

    @torch.no_grad()
    def value(self, points: Any) -> np.ndarray:
        """u at ``points`` (n, d) -> (n,)."""
        pts = self._as_points(points)
        return torch.cat([self._value_net(c) for c in pts.split(16384)]).double().cpu().numpy()

    @torch.no_grad()
    def log_density(self, points: Any) -> np.ndarray:
        """log m at ``points`` (n, d) -> (n,)."""
        pts = self._as_points(points)
        return (
            (torch.cat([self._density_net(c) for c in pts.split(16384)]).double() - self._log_z)
            .cpu()
            .numpy()
        )

    def density(self, points: Any) -> np.ndarray:
        """m at ``points`` (n, d) -> (n,); positive, with int m = 1 by construction."""
        return np.exp(self.log_density(points))

    def fields(self) -> tuple[ValueNetwork, DensityNetwork, float]:
        """The networks and log Z, for residual evaluation by autograd."""
        return self._value_net, self._density_net, self._log_z

    # ----- persistence ----------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write ``solution.pt`` (tensors only) and ``solution.json`` into ``directory`` atomically."""
        directory = Path(directory)
        atomic_torch_save(
            directory / "solution.pt",
            {
                "value_net": self._value_net.state_dict(),
                "density_net": self._density_net.state_dict(),
            },
        )
        meta = {
            "format": "mfgsolve-solution-1",
            "problem": self.problem.name,
            "problem_source": getattr(self.problem, "source", None),
            "log_z": self._log_z,
            "constant": self.constant,
            "info": self.info,
            "history": self.history,
            "dtype": str(self.dtype).replace("torch.", ""),
        }
        atomic_write_json(directory / "solution.json", meta)
        return directory

    @classmethod
    def load(
        cls, directory: str | Path, problem: ErgodicMFG | MFG | None = None, device: str = "cpu"
    ) -> Solution:
        """Load a saved solution (``weights_only=True``); the problem is re-read from its file if not given."""
        directory = Path(directory)
        meta = read_json(directory / "solution.json")
        if not isinstance(meta, dict) or meta.get("format") != "mfgsolve-solution-1":
            raise CheckpointError(
                f"{directory}: not an mfgsolve solution folder; fix: point to a folder written by Solution.save or `mfgsolve solve`"
            )
        if problem is None:
            source = meta.get("problem_source")
            if not source:
                raise CheckpointError(
                    f"{directory}: the solution does not record its problem file; fix: pass problem="
                )
            problem = load_problem(source)
        opts = SolverOptions.build(
            problem,
            {
                k: v
                for k, v in meta["info"]["options"].items()
                if k in SolverOptions.__dataclass_fields__
            },
            saved=True,
        )
        dtype = _DTYPES.get(meta.get("dtype", "float32"), torch.float32)
        value_net, density_net = build_networks(problem, opts, torch.device(device), dtype)
        state = safe_torch_load(directory / "solution.pt", map_location=device)
        try:
            value_net.load_state_dict(state["value_net"])
            density_net.load_state_dict(state["density_net"])
        except (KeyError, RuntimeError, TypeError) as exc:
            raise CheckpointError(
                f"{directory}: weights do not match the recorded networks ({str(exc).splitlines()[0][:120]}); fix: re-run the solve"
            ) from None
        return cls(
            problem,
            value_net,
            density_net,
            meta["log_z"],
            meta["constant"],
            meta["history"],
            meta["info"],
        )


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
        problem: an :class:`ErgodicMFG`, a finite-horizon :class:`MFG` (trained in space-time, see
            :mod:`mfgsolve.finite_horizon`) or an ``FBSDE`` (dispatched to :mod:`mfgsolve.fbsde`).
        method: "adversarial" (generator u vs discriminator m, alternating) or "joint" (one loss).
        iterations, batch_size, lr: main training options (None: the defaults of SolverOptions).
        seed: fixes network initialisation and collocation points; same seed, same numbers on CPU.
        device, dtype: torch device and dtype (float32 by default).
        progress: show a tqdm progress bar (auto-disabled when stderr is not a terminal).
        callbacks: callables receiving each evaluation record (a dict) during training.
        resume: continue from ``checkpoint_dir``'s last checkpoint if there is one.
        **options: any other :class:`~mfgsolve.adversarial.SolverOptions` field.

    Returns:
        :class:`Solution` (or the FBSDE solution for FBSDE problems).
    """
    try:
        from .fbsde.problem import FBSDE
    except ImportError:  # pragma: no cover - the FBSDE extension is part of the package
        FBSDE = None  # noqa: N806
    if FBSDE is not None and isinstance(problem, FBSDE):
        from .fbsde import solve_fbsde

        return solve_fbsde(
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
            resume=resume,  # refused there with a one-line error
            **options,
        )
    if not isinstance(problem, (ErgodicMFG, MFG)):
        raise ProblemError(
            f"cannot solve a {type(problem).__name__}; fix: pass an ErgodicMFG, MFG or FBSDE (see load_problem)"
        )
    if isinstance(dtype, str):
        if dtype not in _DTYPES:
            raise ProblemError(f"unknown dtype {dtype!r}; fix: use 'float32' or 'float64'")
        dtype = _DTYPES[dtype]
    dtype = dtype or torch.float32
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ProblemError("device='cuda' but no CUDA device is available; fix: use device='cpu'")
    opts = SolverOptions.build(
        problem, {"iterations": iterations, "batch_size": batch_size, "lr": lr, **options}
    )
    trainer, st = train(
        problem,
        method=method,
        opts=opts,
        seed=seed,
        device=device,
        dtype=dtype,
        progress=progress,
        callbacks=callbacks,
        resume=resume,
    )
    value_net, density_net = trainer.eval_nets(st)
    with torch.no_grad():
        log_z = float(
            trainer.eval_log_z(density_net)
            if hasattr(trainer, "eval_quad")
            else trainer._log_z(density_net)
        )
    constant = (
        st.constant_estimate
        if st.history
        else trainer.final_constant(value_net, density_net, st.constant)
    )
    info = {
        "method": method,
        "seed": seed,
        "iterations": st.iteration,
        "seconds": st.seconds,
        "options": options_dict(opts),
        "device": str(device),
        "quadrature": getattr(getattr(trainer, "eval_quad", None), "rule", "space-time nodes"),
    }
    # no ergodic constant for finite-horizon problems (m is normalised per time slice)
    constant = None if isinstance(problem, MFG) else float(constant)
    return Solution(problem, value_net, density_net, log_z, constant, st.history, info)
