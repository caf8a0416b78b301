"""Benchmark ``peers``: mfgsolve against DeepXDE (1.15, PyTorch backend) on the seed problem.

Installs nothing: DeepXDE comes from the optional extra (``pip install ".[peers]"``); without it
the benchmark stops with one line. Both libraries run one after the other in this process, with
one torch thread each, on the seed problem in 1-D and 4-D (u = 0, m = exp(sum sin 2 pi x_i) / Z,
closed form). DeepXDE is written as its users write a PINN (``_deepxde_seed.py``: Adam at lr 1e-3,
then L-BFGS); mfgsolve runs its default (adversarial; 1-D only, the 4-D one is ``bench seed-4d``),
the joint loss, the min-max game, and those two followed by the L-BFGS finish
(``finish="lbfgs"``).

Columns: seconds to m_rel_l2 <= 1e-2 and <= 1e-3 (first evaluation that is), final m_rel_l2,
u_l2 and |Hbar error|, s per first-order iteration, seconds in all, and the lines of user code
(the problem file; DeepXDE's ``build``). Times include each library's own evaluations.
"""

from __future__ import annotations

import inspect
import math
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from mfgsolve._threads import torch_threads
from mfgsolve.errors import BadInput

from ._common import problem_path

_PROBLEMS = {1: "ergodic_torus_1d.py", 4: "ergodic_torus_4d.py"}
# DeepXDE's settings: the recipe in 1-D; in 4-D more points and Adam steps
_DEEPXDE = {1: dict(points=512, adam=1000, lbfgs=2000), 4: dict(points=4096, adam=3000, lbfgs=3000)}


def _then_lbfgs(method: str, first: int, finish: int) -> tuple[str, dict[str, Any]]:
    label = f"{method} {first} + L-BFGS {finish}"
    options = dict(method=method, iterations=first, finish="lbfgs", finish_iterations=finish)
    return label, options


# mfgsolve's runs: (label, options); the default (adversarial) in 1-D only (4-D: bench seed-4d)
_RUNS = {
    1: [
        ("default (adversarial)", {}),
        ("joint", {"method": "joint"}),
        ("minmax", {"method": "minmax"}),
        _then_lbfgs("joint", 200, 400),
        _then_lbfgs("minmax", 200, 400),
    ],
    4: [_then_lbfgs("joint", 600, 400), _then_lbfgs("minmax", 1000, 400)],
}
_FH_RUNS = [("default (adversarial)", {}), _then_lbfgs("joint", 600, 400)]
_EVAL = {1: 1024, 4: 4096}
# the finite-horizon row (DeepXDE: evaluations every 250 Adam steps, 100 L-BFGS iterations)
_FH = dict(points=2000, adam=2000, lbfgs=2000, every=250)
_EVERY = 20  # DeepXDE: Adam steps / L-BFGS iterations between evaluations
_MFGSOLVE_EVERY = {1: 20, 4: 50}  # mfgsolve: first-phase iterations between evaluations


def _deepxde():
    """DeepXDE with its PyTorch backend, or a one-line error."""
    os.environ.setdefault("DDE_BACKEND", "pytorch")
    try:
        import deepxde as dde
    except ImportError:
        raise BadInput(
            "bench peers needs DeepXDE, which is not installed; fix: pip install '.[peers]'"
        ) from None
    if dde.backend.backend_name != "pytorch":
        raise BadInput(
            f"DeepXDE runs on its {dde.backend.backend_name} backend; fix: set DDE_BACKEND=pytorch"
        )
    return dde


def _exact(d: int, x: np.ndarray) -> tuple[np.ndarray, float]:
    """m* at x (n, d) and Hbar*."""
    i0 = float(np.i0(1.0))
    return np.exp(np.sin(2 * np.pi * x).sum(axis=1)) / i0**d, d * math.log(i0)


def _eval_points(d: int) -> np.ndarray:
    if d == 1:
        return ((np.arange(_EVAL[1]) + 0.5) / _EVAL[1])[:, None]
    from scipy.stats import qmc

    return qmc.Sobol(d, scramble=True, seed=0).random(_EVAL[d])


def _user_lines(source: str) -> int:
    """Lines of code: not blank, not a comment, not inside a docstring."""
    lines, in_doc = 0, False
    for raw in source.splitlines():
        line = raw.strip()
        if in_doc:
            in_doc = '"""' not in line
            continue
        if line.startswith('"""'):
            in_doc = '"""' not in line[3:]
            continue
        if line and not line.startswith("#"):
            lines += 1
    return lines


def _times(trace: list[tuple[float, float]], level: float) -> float | None:
    return next((round(s, 2) for s, e in trace if e <= level), None)


def _train_deepxde(dde, model, measure, adam: int, lbfgs: int, every: int, variables=()):
    """DeepXDE's schedule, Adam at lr 1e-3 then L-BFGS, with ``measure(model) -> (error,
    record)`` every ``every`` Adam steps and L-BFGS iterations; returns (trace of (seconds,
    error), the last record, Adam's seconds, seconds in all). Times include the evaluations."""
    trace: list[tuple[float, float]] = []
    final: dict[str, float] = {}
    start = time.perf_counter()

    class Errors(dde.callbacks.Callback):
        def __init__(self, period: int):
            super().__init__()
            self.period, self.count = period, 0

        def on_epoch_end(self):
            self.count += 1
            if self.count % self.period == 0:
                error, record = measure(self.model)
                trace.append((time.perf_counter() - start, error))
                final.update(record)

    extra = {"external_trainable_variables": list(variables)} if variables else {}
    with torch_threads(1):
        start = time.perf_counter()
        model.compile("adam", lr=1e-3, **extra)
        model.train(iterations=adam, callbacks=[Errors(every)], verbose=0)
        adam_seconds = time.perf_counter() - start
        dde.optimizers.set_LBFGS_options(maxiter=lbfgs)
        dde.optimizers.config.LBFGS_options["iter_per_step"] = every  # an evaluation each
        model.compile("L-BFGS", **extra)
        model.train(callbacks=[Errors(1)], verbose=0)
        seconds = time.perf_counter() - start
    return trace, final, adam_seconds, seconds


def run_deepxde(d: int, seed: int) -> dict[str, Any]:
    """DeepXDE on the seed problem in ``d`` dimensions: a row (see the module doc)."""
    dde = _deepxde()
    from . import _deepxde_seed

    cfg = _DEEPXDE[d]
    x_eval = _eval_points(d)
    m_star, h_star = _exact(d, x_eval)
    dde.config.set_random_seed(seed)
    model, hbar = _deepxde_seed.build(d, cfg["points"])

    def measure(model) -> tuple[float, dict[str, float]]:
        y = model.predict(x_eval)
        m_rel = float(np.linalg.norm(y[:, 1] - m_star) / np.linalg.norm(m_star))
        return m_rel, {
            "m_rel_l2": m_rel,
            "u_l2": float(np.sqrt(np.mean(y[:, 0] ** 2))),  # (u* = 0)
            "constant_abs": abs(float(hbar.detach()) - h_star),
        }

    trace, final, adam_seconds, seconds = _train_deepxde(
        dde, model, measure, cfg["adam"], cfg["lbfgs"], _EVERY, [hbar]
    )
    return {
        "library": "deepxde",
        "run": f"Adam {cfg['adam']} + L-BFGS {cfg['lbfgs']}, {cfg['points']} points",
        "seed": seed,
        "s_to_1e-2": _times(trace, 1e-2),
        "s_to_1e-3": _times(trace, 1e-3),
        **{k: final.get(k) for k in ("m_rel_l2", "u_l2", "constant_abs")},
        "s_per_it": round(adam_seconds / cfg["adam"], 5),
        "seconds": round(seconds, 2),
        "user_lines": _user_lines(inspect.getsource(_deepxde_seed.build)),
    }


def _fh_nodes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, t) evaluation nodes of the finite-horizon row (256 x 11) and u*, m* there."""
    xs = (np.arange(256) + 0.5) / 256
    nodes = np.array([[x, t] for t in np.linspace(0, 1, 11) for x in xs])
    x, t = nodes[:, 0], nodes[:, 1]
    u_star = (2 - t) * np.cos(2 * np.pi * x + np.pi * t / 2) / 4
    m_star = 1 + np.sin(2 * np.pi * (x - t / 2)) / 2
    return nodes, u_star, m_star


def run_deepxde_fh(seed: int) -> dict[str, Any]:
    """DeepXDE on ``manufactured_fh_torus_1d.py``: a row; the target is m and u within 1e-2."""
    dde = _deepxde()
    from . import _deepxde_fh

    nodes, u_star, m_star = _fh_nodes()
    dde.config.set_random_seed(seed)
    model = _deepxde_fh.build(_FH["points"])

    def measure(model) -> tuple[float, dict[str, float]]:
        y = model.predict(nodes)
        m_rel = float(np.linalg.norm(y[:, 1] - m_star) / np.linalg.norm(m_star))
        u_rel = float(np.linalg.norm(y[:, 0] - u_star) / np.linalg.norm(u_star))
        return max(m_rel, u_rel), {"m_rel_l2": m_rel, "u_rel_l2": u_rel}

    trace, final, adam_seconds, seconds = _train_deepxde(
        dde, model, measure, _FH["adam"], _FH["lbfgs"], _FH["every"]
    )
    return {
        "library": "deepxde",
        "run": f"Adam {_FH['adam']} + L-BFGS {_FH['lbfgs']}, {_FH['points']} points",
        "seed": seed,
        "s_to_1e-2": _times(trace, 1e-2),
        **final,
        "s_per_it": round(adam_seconds / _FH["adam"], 5),
        "seconds": round(seconds, 2),
        "user_lines": _user_lines(inspect.getsource(_deepxde_fh.build)),
    }


def _solve_timed(path: Path, seed: int, error, **options: Any):
    """Solve the problem file ``path`` with one thread; returns (solution, trace of (seconds,
    ``error(record)``) over the history, s per first-phase iteration, seconds in all)."""
    from mfgsolve import load_problem, solve

    problem = load_problem(path)
    t0 = time.perf_counter()
    sol = solve(problem, seed=seed, progress=False, threads=1, **options)
    seconds = time.perf_counter() - t0
    trace = [(h["seconds"], error(h)) for h in sol.history]
    first_order = sol.info["options"]["iterations"]
    first_seconds = next(h["seconds"] for h in sol.history if h["iteration"] == first_order)
    return sol, trace, round(first_seconds / first_order, 5), round(seconds, 2)


def run_mfgsolve_fh(root: Path, seed: int, label: str, **options: Any) -> dict[str, Any]:
    """mfgsolve on ``manufactured_fh_torus_1d.py`` with ``options``: a row."""
    path = problem_path(root, "manufactured_fh_torus_1d.py")
    worst = lambda h: max(h["m_rel_l2"], h["u_rel_l2"])  # noqa: E731
    sol, trace, s_per_it, seconds = _solve_timed(path, seed, worst, eval_every=50, **options)
    last = sol.history[-1]
    return {
        "library": "mfgsolve",
        "run": label,
        "seed": seed,
        "s_to_1e-2": _times(trace, 1e-2),
        "m_rel_l2": last["m_rel_l2"],
        "u_rel_l2": last["u_rel_l2"],
        "s_per_it": s_per_it,
        "seconds": seconds,
        "user_lines": _user_lines(path.read_text()),
    }


def run_mfgsolve(root: Path, d: int, seed: int, label: str, **options: Any) -> dict[str, Any]:
    """mfgsolve on the seed problem in ``d`` dimensions with ``options``: a row."""
    path = problem_path(root, _PROBLEMS[d])
    every = {"eval_every": _MFGSOLVE_EVERY[d], "eval_points": _EVAL[d]}
    sol, trace, s_per_it, seconds = _solve_timed(
        path, seed, lambda h: h["m_rel_l2"], **every, **options
    )
    last = sol.history[-1]
    return {
        "library": "mfgsolve",
        "run": label,
        "seed": seed,
        "s_to_1e-2": _times(trace, 1e-2),
        "s_to_1e-3": _times(trace, 1e-3),
        "m_rel_l2": last["m_rel_l2"],
        "u_l2": last["u_l2"],
        "constant_abs": last["constant_abs"],
        "s_per_it": s_per_it,
        "seconds": seconds,
        "user_lines": _user_lines(path.read_text()),
    }


def _median(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out = {"library": rows[0]["library"], "run": rows[0]["run"], "seed": "median"}
    for key in (
        "s_to_1e-2",
        "s_to_1e-3",
        "m_rel_l2",
        "u_l2",
        "u_rel_l2",
        "constant_abs",
        "s_per_it",
    ):
        vals = [r[key] for r in rows if r.get(key) is not None]
        out[key] = statistics.median(vals) if vals else None
    if "s_to_1e-3" in rows[0]:
        out["reached_1e-3"] = f"{sum(r['s_to_1e-3'] is not None for r in rows)}/{len(rows)}"
    else:
        out["reached_1e-2"] = f"{sum(r['s_to_1e-2'] is not None for r in rows)}/{len(rows)}"
    return out


def run(out_dir: Path, quick: bool = False, *, root: Path) -> list[dict[str, Any]]:
    _deepxde()  # (stop at once when it is missing)
    seeds = (0,) if quick else (0, 1, 2)
    dims = (1,) if quick else (1, 4)
    rows: list[dict[str, Any]] = []
    for d in dims:
        runs = _RUNS[d]
        if quick:
            runs = runs[-1:]
        groups = [[run_deepxde(d, s) for s in seeds]]
        groups += [[run_mfgsolve(root, d, s, label, **o) for s in seeds] for label, o in runs]
        for group in groups:
            for row in group:
                row["d"] = d
            rows += group + ([_median(group) | {"d": d}] if len(group) > 1 else [])
    if not quick:  # the finite-horizon row: seconds until m and u are both within 1e-2
        groups = [[run_deepxde_fh(s) for s in seeds]]
        groups += [[run_mfgsolve_fh(root, s, label, **o) for s in seeds] for label, o in _FH_RUNS]
        for group in groups:
            for row in group:
                row["d"] = "1 + t"
            rows += group + [_median(group) | {"d": "1 + t"}]
    return rows
