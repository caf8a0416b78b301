"""``Solution``: the trained networks of a run, evaluated as numpy functions, saved and loaded safely.

It follows the result protocol of :mod:`mfgsolve.result` (``kind = "network"``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ._io import atomic_torch_save, atomic_write_json, read_json, safe_torch_load
from ._messages import shown
from .errors import CheckpointError, ProblemError
from .nn import build_networks
from .options import SPECS, SolverOptions
from .problem import MFG, ErgodicMFG, load_problem

if TYPE_CHECKING:
    from .metrics.verdict import Verdict

__all__ = ["DTYPES", "Solution"]

DTYPES = {"float32": torch.float32, "float64": torch.float64}


class Solution:
    """A network solution of an MFG.

    Attributes:
        problem: the problem solved.
        constant: the ergodic constant Hbar (ergodic problems), else None; with several
            populations a list of one constant per population.
        history: list of dicts (iteration, seconds, losses, errors against ``problem.exact`` if known).
        info: method, options, seed, seconds, iterations.
    """

    kind = "network"

    def __init__(
        self,
        problem: ErgodicMFG | MFG,
        value_net: torch.nn.Module,
        density_net: torch.nn.Module,
        log_z: float | list[float],
        constant: float | list[float] | None,
        history: list[dict[str, float]],
        info: dict[str, Any],
    ):
        self.problem = problem
        self._value_net = value_net.eval()
        self._density_net = density_net.eval()
        self.populations = getattr(problem, "populations", 1)
        self._log_z = (
            float(log_z)
            if self.populations == 1
            else torch.as_tensor([float(v) for v in log_z], dtype=torch.float64)
        )
        self.constant = constant
        self.history = history
        self.info = info

    @property
    def verdict(self) -> Verdict:
        """Whether the run converged and why (:mod:`mfgsolve.metrics.verdict`), judged from the
        residuals, the mass and the training record, never from the exact solution. Computed on
        first use and kept in ``info["verdict"]`` (so saved with the solution)."""
        from .metrics.verdict import Verdict, assess

        saved = self.info.get("verdict")
        if isinstance(saved, dict):
            return Verdict.from_dict(saved)
        verdict = assess(self)
        self.info["verdict"] = verdict.as_dict()
        return verdict

    @property
    def converged(self) -> bool:
        """``verdict.converged``."""
        return self.verdict.converged

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
        """u at ``points`` (n, d) -> (n,); with K populations (n, K), column k population k."""
        pts = self._as_points(points)
        return torch.cat([self._value_net(c) for c in pts.split(16384)]).double().cpu().numpy()

    @torch.no_grad()
    def log_density(self, points: Any) -> np.ndarray:
        """log m at ``points`` (n, d) -> (n,) (or (n, K) for K populations)."""
        pts = self._as_points(points)
        f = torch.cat([self._density_net(c) for c in pts.split(16384)]).double()
        if self.populations > 1:
            return (f.cpu() - self._log_z).numpy()
        return (f - self._log_z).cpu().numpy()

    def density(self, points: Any) -> np.ndarray:
        """m at ``points`` (n, d) -> (n,) (or (n, K)); positive, with int m = 1 by construction."""
        return np.exp(self.log_density(points))

    def fields(self) -> tuple[torch.nn.Module, torch.nn.Module, Any]:
        """The networks and log Z (a float, or a tensor of K for several populations), for
        residual evaluation by autograd."""
        return self._value_net, self._density_net, self._log_z

    # ----- persistence ----------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write ``solution.pt`` (tensors only) and ``solution.json`` into ``directory`` atomically."""
        directory = Path(directory)
        self.verdict  # noqa: B018 - judged once, saved with the info
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
            "problem_source": _absolute(getattr(self.problem, "source", None)),
            "problem_settings": dict(getattr(self.problem, "settings", None) or {}),
            "log_z": self._log_z if self.populations == 1 else self._log_z.tolist(),
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
            if not source or not isinstance(source, str):
                raise CheckpointError(
                    f"{directory}: the solution does not record its problem file; fix: pass problem="
                )
            settings = meta.get("problem_settings") or {}
            if not isinstance(settings, dict):
                raise CheckpointError(
                    f"{directory}: damaged solution.json (problem_settings is not a dict); "
                    "fix: pass problem=, or re-run the solve"
                )
            problem = load_problem(source, **settings)
        _check_meta(directory, meta, problem)
        info = meta["info"]
        try:
            opts = SolverOptions.build(
                problem,
                {k: v for k, v in (info.get("options") or {}).items() if k in SPECS},
                saved=True,
                method=info.get("method", "adversarial"),
            )
        except ProblemError as exc:
            raise CheckpointError(
                f"{directory}: the recorded options do not fit the problem ({exc}); fix: pass the problem it was solved for, or re-run the solve"
            ) from None
        dtype = DTYPES[meta.get("dtype", "float32")]
        value_net, density_net = build_networks(problem, opts, torch.device(device), dtype)
        state = safe_torch_load(directory / "solution.pt", map_location=device)
        try:
            value_net.load_state_dict(state["value_net"])
            density_net.load_state_dict(state["density_net"])
        except (KeyError, IndexError, RuntimeError, TypeError, ValueError, AttributeError) as exc:
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


def _check_meta(directory: Path, meta: dict[str, Any], problem: Any) -> None:
    """The fields of a solution.json that loading reads: present, of the right type, and saved
    for this problem (one line naming the first that is not)."""

    def damaged(what: str) -> CheckpointError:
        return CheckpointError(
            f"{directory}: damaged solution.json ({what}); fix: re-run the solve, or point to "
            "another folder"
        )

    name = getattr(problem, "name", None)
    if meta.get("problem") != name:
        raise CheckpointError(
            f"{directory}: the solution is of problem {shown(meta.get('problem'))}, not {name!r}; "
            "fix: pass the problem file (and --set settings) it was solved for"
        )
    for key in ("log_z", "constant", "info", "history"):
        if key not in meta:
            raise damaged(f"no {key!r}")
    populations = getattr(problem, "populations", 1)
    if populations > 1:
        keys = ("log_z", "constant") if getattr(problem, "constants", ()) else ("log_z",)
        if len(keys) == 1 and meta["constant"] is not None:
            raise damaged("constant is not null (a problem without ergodic constants has none)")
        for key in keys:
            items = meta[key]
            if not (
                isinstance(items, list)
                and len(items) == populations
                and all(_finite(v) for v in items)
            ):
                raise damaged(f"{key} is not a list of {populations} finite numbers")
    else:
        if not _finite(meta["log_z"]):
            raise damaged("log_z is not a finite number")
        # an ergodic constant where the problem has one (not a DiscountedMFG or a finite horizon)
        has_constant = getattr(problem, "constant", None) is not None
        if (has_constant and not _finite(meta["constant"])) or (
            not has_constant and meta["constant"] is not None
        ):
            raise damaged("constant is not " + ("a finite number" if has_constant else "null"))
    info = meta["info"]
    if not isinstance(info, dict) or not isinstance(info.get("options", {}), dict):
        raise damaged("info is not a dict of the run's method and options")
    if not isinstance(info.get("method", "adversarial"), str):
        raise damaged("info.method is not a method name")
    verdict = info.get("verdict")
    if verdict is not None and not (
        isinstance(verdict, dict)
        and isinstance(verdict.get("converged"), bool)
        and isinstance(verdict.get("reason"), str)
        and isinstance(verdict.get("checks") or {}, dict)
    ):
        raise damaged("info.verdict is not a verdict (converged, reason, checks)")
    history = meta["history"]
    if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
        raise damaged("history is not a list of records")
    dtype = meta.get("dtype", "float32")
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise damaged(f"dtype {shown(meta.get('dtype'))} is not 'float32' or 'float64'")


def _finite(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and abs(value) <= sys.float_info.max
    )


def _absolute(source: str | None) -> str | None:
    """A problem file's path made absolute (a saved solution is loaded from anywhere)."""
    return str(Path(source).resolve()) if source else None
