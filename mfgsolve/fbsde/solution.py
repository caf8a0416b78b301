"""``FBSDESolution`` (evaluate, sample paths, save / load, figures) and ``compare_fbsde``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from mfgsolve._io import (
    CheckpointError,
    atomic_torch_save,
    atomic_write_csv,
    atomic_write_json,
    read_json,
    safe_torch_load,
)

from .problem import FBSDE, exact_u

if TYPE_CHECKING:
    from ._models import Adversarial, DeepBSDE

__all__ = ["FBSDESolution", "compare_fbsde"]

_WEIGHTS = "fbsde_model.pt"
_META = "fbsde_solution.json"


class FBSDESolution:
    """A trained FBSDE model.

    Attributes:
        problem: the :class:`FBSDE`.
        method: ``"deep_bsde"`` or ``"adversarial"``.
        y0: the estimate of Y_0 = u(t0, x0): with a deterministic x0 and ``y0_estimate`` set, the
            mean condition on fresh paths (``solve_fbsde(y0_paths=...)``), else the network's value.
        y0_estimate: ``{"y0", "standard_error", "paths", "network"}`` or None; ``network`` is the
            value read off the trained model at (t0, x0).
        history: one dict per iteration (iteration, loss, y0, seconds, y0_rel_error when known).
        seed: the training seed.
        info: method, iterations, seconds (and the training sizes after ``solve_fbsde``).
    """

    kind = "fbsde"

    def __init__(
        self,
        problem: FBSDE,
        model: DeepBSDE | Adversarial,
        history: list[dict[str, Any]],
        seed: int = 0,
    ):
        self.problem = problem
        self.model = model
        self.method = model.config.method
        self.history = history
        self.seed = seed
        self.y0_estimate: dict[str, Any] | None = None
        last = history[-1] if history else {}
        self.info: dict[str, Any] = {
            "method": self.method,
            "iterations": last.get("iteration"),
            "seconds": last.get("seconds"),
        }

    @property
    def _dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def y0(self) -> float:
        """Y_0 at x0 (the mean of X_0 when X_0 is random)."""
        if self.y0_estimate is not None:
            return float(self.y0_estimate["y0"])
        x0 = torch.tensor(self.problem.x0[None, :], dtype=self._dtype)
        with torch.no_grad():
            return float(self.model.y0_at(x0)[0])

    def value(self, points: Any) -> np.ndarray:
        """u(t, x) at ``points`` of shape (n, 1 + d), time first.

        The adversarial model learns u on the whole time interval; the deep BSDE model only at t0
        (Y_0 at x0, or as a function of x when X_0 is random).

        Raises:
            ValueError: wrong shape, or a time where this method does not define u.
        """
        pts = np.asarray(points, dtype=float)
        d = self.problem.dim
        if pts.ndim != 2 or pts.shape[1] != 1 + d:
            raise ValueError(
                f"problem '{self.problem.name}': points have shape {pts.shape}, need (n, {1 + d}); "
                "fix: pass time first, then the d coordinates"
            )
        t = pts[:, 0]
        x = torch.tensor(pts[:, 1:], dtype=self._dtype)
        p = self.problem
        if np.any(t < p.t0 - 1e-12) or np.any(t > p.T + 1e-12):
            raise ValueError(
                f"problem '{p.name}': times outside [{p.t0}, {p.T}]; fix: use times in the horizon"
            )
        out = np.empty(len(pts))
        with torch.no_grad():
            if self.method == "deep_bsde":
                if not np.allclose(t, p.t0):
                    raise ValueError(
                        f"problem '{p.name}': the deep BSDE solution defines u only at t = {p.t0}; "
                        "fix: evaluate at t0, or solve with method='adversarial' for u(t, x)"
                    )
                if p.x0_std == 0 and not np.allclose(pts[:, 1:], p.x0[None, :]):
                    raise ValueError(
                        f"problem '{p.name}': the deep BSDE solution defines u(t0, x) only at x0 "
                        "(X_0 is deterministic); fix: evaluate at x0, or use method='adversarial'"
                    )
                return self.model.y0_at(x).double().numpy()
            terminal = np.isclose(t, p.T)
            if np.any(terminal):
                out[terminal] = self.model.terminal(x[terminal]).reshape(-1).double().numpy()
            inner = ~terminal
            if np.any(inner):
                for tk in np.unique(t[inner]):
                    sel = inner & (t == tk)
                    out[sel] = self.model.uz(float(tk), x[sel])[0].reshape(-1).double().numpy()
        return out

    def paths(self, n: int = 256, seed: int = 12345) -> dict[str, np.ndarray]:
        """Simulate ``n`` paths with the trained model (fixed ``seed``).

        Returns:
            ``{"t": (N+1,), "x": (n, N+1, d), "y": (n, N+1), "z": (n, N, d), "u": (n, N+1) or
            absent}``, where ``u`` is the closed form u(t_k, X_k) when the problem has one.
        """
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            sim = self.model.simulate(n, gen)
        times = np.asarray(self.model.times())
        xs = torch.stack(sim["x"], dim=1)
        out = {
            "t": times,
            "x": xs.double().numpy(),
            "y": torch.cat(sim["y"], dim=1).double().numpy(),
            "z": torch.stack(sim["z"], dim=1).double().numpy(),
        }
        if self.problem.exact and "u" in self.problem.exact:
            us = []
            for k, tk in enumerate(times):
                xk = sim["x"][k].double()
                t_col = torch.full((n, 1), float(tk), dtype=torch.float64)
                us.append(exact_u(self.problem, t_col, xk))
            out["u"] = torch.stack(us, dim=1).numpy()
        return out

    # ---------------------------------------------------------------------------- persistence
    def save(self, directory: str | Path) -> Path:
        """Write the weights (``fbsde_model.pt``), metadata and history into ``directory``, atomically."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        atomic_torch_save(directory / _WEIGHTS, state)
        meta = {
            "format": "mfgsolve-fbsde-1",
            "problem": self.problem.name,
            "dim": self.problem.dim,
            "config": self.model.config.to_dict(),
            "dtype": str(self._dtype).replace("torch.", ""),
            "seed": self.seed,
            "y0": self.y0,
            "y0_estimate": self.y0_estimate,
            "history": self.history,
        }
        atomic_write_json(directory / _META, meta)
        atomic_write_csv(directory / "history.csv", self.history)
        return directory

    @classmethod
    def load(cls, directory: str | Path, problem: FBSDE) -> FBSDESolution:
        """Rebuild a solution written by :meth:`save` for ``problem``.

        Raises:
            CheckpointError: missing or damaged files, or a checkpoint of another problem.
        """
        from ._models import Adversarial, DeepBSDE, ModelConfig

        directory = Path(directory)
        meta = read_json(directory / _META)
        if not isinstance(meta, dict) or meta.get("format") != "mfgsolve-fbsde-1":
            raise CheckpointError(
                f"{directory}: not an FBSDE solution; fix: point to a folder written by FBSDESolution.save"
            )
        if meta.get("dim") != problem.dim:
            raise CheckpointError(
                f"{directory}: saved for dim={meta.get('dim')}, problem '{problem.name}' has "
                f"dim={problem.dim}; fix: load it with the problem it was trained on"
            )
        dtype = meta.get("dtype", "float32")
        history = meta.get("history", [])
        seed = meta.get("seed", 0)
        if (
            not isinstance(dtype, str)
            or dtype not in ("float32", "float64")
            or not isinstance(history, list)
            or not isinstance(seed, int)
        ):
            raise CheckpointError(
                f"{directory}: damaged {_META} (dtype, history or seed); fix: re-run"
            )
        try:
            config = ModelConfig(**meta["config"])
            model = (DeepBSDE if config.method == "deep_bsde" else Adversarial)(problem, config)
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError):
            raise CheckpointError(f"{directory}: damaged model config; fix: re-run") from None
        model = model.to(getattr(torch, dtype))
        state = safe_torch_load(directory / _WEIGHTS)
        try:
            model.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as exc:
            first = str(exc).strip().splitlines()[0][:160]
            raise CheckpointError(
                f"{directory}: weights do not match the problem ({first}); fix: re-run"
            ) from None
        model.eval()
        sol = cls(problem, model, list(history), seed=seed)
        estimate = meta.get("y0_estimate")
        if isinstance(estimate, dict) and isinstance(estimate.get("y0"), (int, float)):
            sol.y0_estimate = estimate
        return sol

    # ---------------------------------------------------------------------------- figures
    def figures(self, out_dir: str | Path) -> list[Path]:
        """Loss and Y_0 error curves, and sample paths of X and Y against the exact u(t, X_t).

        Returns:
            The PNG files written.
        """
        from ..plotting._figure import save as _save_fig
        from ..plotting._figure import subplots

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        name = self.problem.name or "fbsde"
        files = []
        it = np.array([h["iteration"] for h in self.history])
        loss = np.array([h["loss"] for h in self.history])
        y0 = np.array([h["y0"] for h in self.history])
        rel = [h.get("y0_rel_error") for h in self.history]
        fig, axes = subplots(1, 2, figsize=(10, 3.8))
        axes[0].semilogy(it, loss, lw=0.8)
        axes[0].set_xlabel("iteration")
        axes[0].set_ylabel(
            "terminal mismatch / Var g" if self.method == "deep_bsde" else "mean r_n^2 (residual)"
        )
        axes[0].set_title(f"{name}: training loss [{self.method}]")
        axes[0].grid(alpha=0.3, which="both")
        if all(r is not None for r in rel) and rel:
            axes[1].semilogy(it, np.maximum(np.array(rel, dtype=float), 1e-8), lw=0.8)
            axes[1].axhline(5e-3, color="k", ls="--", lw=0.8, label="0.5% target")
            axes[1].set_ylabel("|Y0 - u(0, x0)| / |u(0, x0)|")
            axes[1].legend()
            axes[1].set_title("relative error of Y0")
        else:
            axes[1].plot(it, y0, lw=0.8)
            axes[1].set_ylabel("Y0")
            axes[1].set_title("Y0 estimate")
        axes[1].set_xlabel("iteration")
        axes[1].grid(alpha=0.3, which="both")
        fig.tight_layout()
        files.append(_save_fig(fig, out_dir / f"{name}_{self.method}_training.png"))

        paths = self.paths(n=64)
        t = paths["t"]
        fig, axes = subplots(1, 2, figsize=(10, 3.8))
        for k in range(5):
            axes[0].plot(t, paths["x"][k, :, 0], lw=1)
        axes[0].set_xlabel("t")
        axes[0].set_ylabel("X_t (first component)")
        axes[0].set_title("sample paths of X")
        axes[0].grid(alpha=0.3)
        for k in range(5):
            color = f"C{k}"
            label_y = "Y_t (learned)" if k == 0 else None
            axes[1].plot(t, paths["y"][k], color=color, lw=1.2, label=label_y)
            if "u" in paths:
                label_u = "u(t, X_t) (exact)" if k == 0 else None
                axes[1].plot(
                    t, paths["u"][k], color=color, ls="--", marker=".", lw=0.8, label=label_u
                )
        axes[1].set_xlabel("t")
        axes[1].set_ylabel("Y_t")
        axes[1].set_title("Y along paths" + (" vs exact u(t, X_t)" if "u" in paths else ""))
        axes[1].legend()
        axes[1].grid(alpha=0.3)
        fig.tight_layout()
        files.append(_save_fig(fig, out_dir / f"{name}_{self.method}_paths.png"))
        return files

    def __repr__(self) -> str:
        return f"FBSDESolution(problem={self.problem.name!r}, method={self.method!r}, y0={self.y0:.6g})"


def compare_fbsde(sol: FBSDESolution, n_paths: int = 512, seed: int = 12345) -> dict[str, Any]:
    """Errors of an FBSDE solution against ``problem.exact``.

    Returns:
        ``y0``, ``y0_exact``, ``y0_rel`` (relative error of u(t0, x0); when X_0 is random and a
        closed form u is known, the relative L2 error of Y_0(X_0) over X_0 samples), and with a closed
        form u: ``path_rel_l2`` (relative L2 error of Y_t - u(t, X_t) over paths and times) and
        ``path_max_abs``. Keys are absent (or None) when the problem gives no exact value.
    """
    problem = sol.problem
    exact = problem.exact or {}
    out: dict[str, Any] = {"y0": sol.y0, "y0_exact": exact.get("y0"), "y0_rel": None}
    if exact.get("y0_error") is not None:
        out["y0_exact_error"] = exact["y0_error"]
    if "y0" in exact and problem.x0_std == 0:
        ref = exact["y0"]
        out["y0_rel"] = abs(sol.y0 - ref) / abs(ref) if ref != 0 else abs(sol.y0 - ref)
    if "u" in exact:
        paths = sol.paths(n=n_paths, seed=seed)
        err = paths["y"] - paths["u"]
        out["path_rel_l2"] = float(np.sqrt(np.mean(err**2) / np.mean(paths["u"] ** 2)))
        out["path_max_abs"] = float(np.abs(err).max())
        if problem.x0_std > 0:
            e0 = err[:, 0]
            out["y0_rel"] = float(np.sqrt(np.mean(e0**2) / np.mean(paths["u"][:, 0] ** 2)))
            if out["y0_exact"] is None:
                x0 = torch.tensor(problem.x0[None, :], dtype=torch.float64)
                t0 = torch.full((1, 1), problem.t0, dtype=torch.float64)
                out["y0_exact"] = float(exact_u(problem, t0, x0)[0])
    return out
