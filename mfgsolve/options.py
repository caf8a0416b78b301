"""Options of the network solvers: grouped, resolved once per problem into a frozen object.

A user passes options as flat keywords (``solve(problem, width=64, lr=1e-3)``, ``--option
width=64``); :meth:`SolverOptions.build` checks them against :data:`SPECS` (one table: each
option's group, default, the problem kinds it applies to and its range), fills the defaults that
depend on the problem and the method, and returns a new frozen :class:`SolverOptions` whose groups
(``optimiser``, ``game``, ``network``, ``sampling``, ``derivatives``, ``run``) the trainer reads.
Nothing is changed afterwards. "Does this option apply here?" is decided here and nowhere else.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._messages import shown, unknown_names
from .errors import OptionError, ProblemError
from .problem import Box, Problem, Rd
from .sampling import quadrature_size

__all__ = ["SPECS", "SolverOptions", "option_names", "problem_kind"]

ERGODIC, FINITE_HORIZON = "ergodic", "finite_horizon"
_BOTH = (ERGODIC, FINITE_HORIZON)


@dataclass(frozen=True)
class _Spec:
    group: str
    default: Any
    kinds: tuple[str, ...] = _BOTH
    check: Callable[[Any], bool] | None = None
    need: str = ""  # what a valid value is (the message of a failed check)


def _int(v: Any, lo: int, hi: int | None = None) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= lo and (hi is None or v <= hi)


def _pos_int(v: Any) -> bool:
    return _int(v, 1)


def _ints(lo: int, hi: int | None = None) -> Callable[[Any], bool]:
    return lambda v: _int(v, lo, hi)


def _number(v: Any) -> bool:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    return abs(v) <= sys.float_info.max  # finite, and an int that converts to a float


def _one_of(*values: Any) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, str) and v in values


def _betas(v: Any) -> bool:
    return (
        isinstance(v, (list, tuple)) and len(v) == 2 and all(_number(b) and 0 <= b < 1 for b in v)
    )


def _activation(v: Any) -> bool:
    from .nn.layers import _ACTIVATIONS

    return isinstance(v, str) and v in _ACTIVATIONS


def _derivatives(v: Any) -> bool:
    from .derivatives import ENGINES

    return isinstance(v, str) and v in ENGINES


def _folder(v: Any) -> bool:
    """A folder name (that is not the name of an existing file)."""
    if not isinstance(v, (str, os.PathLike)) or not str(v).strip():
        return False
    path = Path(v)
    return not any(p.exists() and not p.is_dir() for p in (path, *path.parents))


# Upper ends of the sizes: far beyond any run these networks are for, and low enough that a typo
# (width=100000) is an error now instead of an allocation that fails (or swaps) later.
MAX_ITERATIONS = 10**9
MAX_POINTS = 2**24  # batch_size, quadrature_points, eval_points
MAX_WIDTH, MAX_DEPTH, MAX_HARMONICS, MAX_STEPS = 4096, 64, 64, 1000

# name: group, default (None: resolved per problem below), kinds it applies to, check
SPECS: dict[str, _Spec] = {
    "iterations": _Spec(
        "optimiser",
        None,
        check=_ints(1, MAX_ITERATIONS),
        need=f"iterations must be an integer from 1 to {MAX_ITERATIONS:,}",
    ),
    "batch_size": _Spec(
        "sampling",
        512,
        check=_ints(2, MAX_POINTS),
        need=f"batch_size must be an integer from 2 to 2**{MAX_POINTS.bit_length() - 1}",
    ),
    "lr": _Spec(
        "optimiser", None, check=lambda v: _number(v) and v > 0, need="lr must be a positive number"
    ),
    "lr_ratio": _Spec(
        "optimiser", None, check=lambda v: _number(v) and v > 0, need="lr_ratio must be > 0"
    ),
    "lr_final": _Spec(
        "optimiser",
        0.02,
        check=lambda v: _number(v) and 0 < v <= 1,
        need="lr_final is a fraction of lr in (0, 1]",
    ),
    "schedule": _Spec(
        "optimiser",
        "cosine",
        check=_one_of("cosine", "constant"),
        need="schedule must be 'cosine' or 'constant'",
    ),
    "warmup": _Spec("optimiser", 0, check=_ints(0), need="warmup must be an integer >= 0"),
    "betas": _Spec(
        "optimiser", (0.5, 0.9), check=_betas, need="betas must be two numbers in [0, 1)"
    ),
    "optimizer": _Spec(
        "optimiser", "adam", check=_one_of("adam", "sgd"), need="optimizer must be 'adam' or 'sgd'"
    ),
    "grad_clip": _Spec(
        "optimiser",
        1.0,
        check=lambda v: _number(v) and v >= 0,
        need="grad_clip must be >= 0 (0 disables)",
    ),
    "max_recoveries": _Spec(
        "optimiser",
        3,
        check=_ints(0, 1000),
        need="max_recoveries must be an integer from 0 to 1000",
    ),
    "finish": _Spec(
        "optimiser",
        "none",
        check=_one_of("none", "lbfgs"),
        need="finish must be 'none' or 'lbfgs' (a float64 L-BFGS phase after the first one)",
    ),
    "finish_iterations": _Spec(
        "optimiser",
        500,
        check=_ints(1, MAX_ITERATIONS),
        need=f"finish_iterations must be an integer from 1 to {MAX_ITERATIONS:,}",
    ),
    "finish_points": _Spec(
        "optimiser",
        0,
        check=_ints(0, MAX_POINTS),
        need="finish_points must be an integer from 0 (automatic: 4 batches) to 2**24",
    ),
    "disc_steps": _Spec(
        "game",
        None,
        check=_ints(1, MAX_STEPS),
        need=f"disc_steps must be an integer from 1 to {MAX_STEPS}",
    ),
    "gen_steps": _Spec(
        "game",
        1,
        check=_ints(1, MAX_STEPS),
        need=f"gen_steps must be an integer from 1 to {MAX_STEPS}",
    ),
    "beta": _Spec("game", 1.0, check=lambda v: _number(v) and v >= 0, need="beta must be >= 0"),
    "constant": _Spec(
        "game",
        "auto",
        (ERGODIC,),
        _one_of("auto", "least_squares", "trained"),
        "constant must be 'auto', 'least_squares' or 'trained'",
    ),
    "continuation": _Spec(
        "game",
        None,
        (ERGODIC,),
        lambda v: _number(v) and v >= 0,
        "continuation must be a viscosity >= 0 (0 disables it)",
    ),
    "continuation_final": _Spec(
        "game",
        0.1,
        (ERGODIC,),
        lambda v: _number(v) and 0 <= v <= 1,
        "continuation_final must be in [0, 1]",
    ),
    "architecture": _Spec(
        "network", "mlp", check=_one_of("mlp", "dgm"), need="architecture must be 'mlp' or 'dgm'"
    ),
    "width": _Spec(
        "network",
        48,
        check=_ints(1, MAX_WIDTH),
        need=f"width must be an integer from 1 to {MAX_WIDTH}",
    ),
    "depth": _Spec(
        "network",
        3,
        check=_ints(1, MAX_DEPTH),
        need=f"depth must be an integer from 1 to {MAX_DEPTH}",
    ),
    "activation": _Spec(
        "network",
        "tanh",
        check=_activation,
        need="activation must be 'tanh', 'silu', 'softplus', 'gelu' or 'sin'",
    ),
    "harmonics": _Spec(
        "network",
        1,
        check=_ints(1, MAX_HARMONICS),
        need=f"harmonics must be an integer from 1 to {MAX_HARMONICS}",
    ),
    "features": _Spec(
        "network",
        "problem",
        check=_one_of("problem", "axes"),
        need="features must be 'problem' (the per-axis Fourier inputs plus the plane waves and "
        "coefficient functions of the residuals) or 'axes' (per-axis inputs only)",
    ),
    "time_feature": _Spec(
        "network",
        None,
        (FINITE_HORIZON,),
        _one_of("linear", "sqrt"),
        "time_feature must be 'linear' or 'sqrt'",
    ),
    "walls": _Spec(
        "network",
        None,
        (FINITE_HORIZON,),
        _one_of("exact", "loss"),
        "walls must be 'exact' or 'loss'",
    ),
    "sampling": _Spec(
        "sampling",
        "sobol",
        check=_one_of("sobol", "uniform", "density"),
        need="sampling must be 'sobol', 'uniform' or 'density'",
    ),
    "density_fraction": _Spec(
        "sampling",
        0.5,
        (ERGODIC,),
        lambda v: _number(v) and 0 <= v < 1,
        "density_fraction must be in [0, 1)",
    ),
    "quadrature_points": _Spec(
        "sampling",
        0,
        check=_ints(0, MAX_POINTS),
        need="quadrature_points must be an integer from 0 (automatic) to 2**24",
    ),
    "time_slices": _Spec(
        "sampling",
        0,
        (FINITE_HORIZON,),
        _ints(0, 2**20),
        "time_slices must be an integer from 0 (automatic) to 2**20",
    ),
    "boundary_weight": _Spec(
        "sampling",
        1.0,
        (FINITE_HORIZON,),
        lambda v: _number(v) and v >= 0,
        "boundary_weight must be >= 0",
    ),
    "derivatives": _Spec(
        "derivatives",
        "auto",
        check=_derivatives,
        need="derivatives must be 'auto', 'autograd', 'func' or 'hutchinson'",
    ),
    "hutchinson_probes": _Spec(
        "derivatives",
        4,
        (ERGODIC,),
        _ints(1, 1024),
        "hutchinson_probes must be an integer from 1 to 1024",
    ),
    "ema": _Spec(
        "run", 0.99, check=lambda v: _number(v) and 0 <= v < 1, need="ema must be in [0, 1)"
    ),
    "eval_every": _Spec("run", 50, check=_pos_int, need="eval_every must be >= 1"),
    "eval_points": _Spec(
        "run",
        0,
        check=_ints(0, MAX_POINTS),
        need="eval_points must be an integer from 0 (automatic) to 2**24",
    ),
    "checkpoint_dir": _Spec(
        "run",
        None,
        check=_folder,
        need="checkpoint_dir must name a folder (a non-empty path, not an existing file)",
    ),
    "checkpoint_every": _Spec("run", 500, check=_pos_int, need="checkpoint_every must be >= 1"),
    "diagnostics": _Spec(
        "run", False, check=lambda v: isinstance(v, bool), need="diagnostics is True or False"
    ),
    "threads": _Spec(
        "run",
        None,
        check=lambda v: v is None or _int(v, 1, 1024),
        need="threads must be an integer from 1 to 1024 (or None: the default, 1)",
    ),
}

# The order of the flat options as saved with a solution (and as shown in docs/cli.md).
_ORDER = [
    "iterations",
    "batch_size",
    "lr",
    "lr_ratio",
    "lr_final",
    "schedule",
    "warmup",
    "betas",
    "optimizer",
    "disc_steps",
    "gen_steps",
    "grad_clip",
    "beta",
    "architecture",
    "width",
    "depth",
    "activation",
    "harmonics",
    "features",
    "ema",
    "sampling",
    "density_fraction",
    "quadrature_points",
    "constant",
    "eval_every",
    "eval_points",
    "max_recoveries",
    "checkpoint_dir",
    "checkpoint_every",
    "diagnostics",
    "time_slices",
    "boundary_weight",
    "walls",
    "time_feature",
    "derivatives",
    "hutchinson_probes",
    "continuation",
    "continuation_final",
    "threads",
    "finish",
    "finish_iterations",
    "finish_points",
]
assert set(_ORDER) == set(SPECS)

# Defaults that depend on the problem kind (quadrature sizes by dimension: sampling.QUADRATURE_SIZES).
_LR = {ERGODIC: 2e-3, FINITE_HORIZON: 4e-3}  # finite horizon: docs/finite_horizon.md
_QUADRATURE = {ERGODIC: "normaliser", FINITE_HORIZON: "normaliser-per-time"}
_MINMAX_LR_RATIO = 0.3  # the min-max game's density lr / value lr (docs/solver.md#the-min-max-game)
_CONTINUATION = 0.05  # adversarial, first-order ergodic problems (mfgsolve._continuation)


def option_names() -> list[str]:
    """Every option name, in the saved order."""
    return list(_ORDER)


def problem_kind(problem: Any) -> str:
    """The problem's ``kind`` when it is one these options serve ('ergodic', 'finite_horizon')."""
    if isinstance(problem, Problem) and problem.kind in (ERGODIC, FINITE_HORIZON):
        return problem.kind
    raise ProblemError(
        f"cannot solve a {type(problem).__name__} with these options; fix: pass an ErgodicMFG or MFG"
    )


def _group_class(name: str, names: list[str]) -> type:
    return dataclasses.make_dataclass(
        name, [(n, Any) for n in names], frozen=True, namespace={"__doc__": f"{name} options."}
    )


_GROUPS = {
    g: _group_class(g.capitalize() + "Options", [n for n in _ORDER if SPECS[n].group == g])
    for g in ("optimiser", "game", "network", "sampling", "derivatives", "run")
}


@dataclass(frozen=True)
class SolverOptions:
    """Resolved options of the network solvers (frozen; build with :meth:`build`).

    Groups (each a frozen dataclass; see docs/cli.md for every option):
        optimiser: iterations, lr, lr_ratio, lr_final, schedule, warmup, betas, optimizer,
            grad_clip, max_recoveries, finish, finish_iterations, finish_points.
        game: disc_steps, gen_steps, beta, constant, continuation, continuation_final.
        network: architecture, width, depth, activation, harmonics, features, time_feature, walls.
        sampling: batch_size, sampling, density_fraction, quadrature_points, time_slices,
            boundary_weight.
        derivatives: derivatives, hutchinson_probes; ``engine`` is the engine they resolve to.
        run: ema, eval_every, eval_points, checkpoint_dir, checkpoint_every, diagnostics,
            threads.

    Attributes:
        kind: the problem kind the options were resolved for.
        method: the method ("adversarial", "joint" or "minmax").
        engine: the derivative engine of the training residuals.
        given: names the user set (the rest are defaults).
    """

    optimiser: Any
    game: Any
    network: Any
    sampling: Any
    derivatives: Any
    run: Any
    kind: str
    method: str
    engine: str
    given: frozenset[str]

    def flat(self) -> dict[str, Any]:
        """All options as one flat dict (JSON-ready: betas as a list), in the saved order."""
        out = {}
        for name in _ORDER:
            value = getattr(getattr(self, SPECS[name].group), name)
            out[name] = list(value) if name == "betas" else value
        return out

    @classmethod
    def build(
        cls,
        problem: Any,
        overrides: Mapping[str, Any],
        saved: bool = False,
        method: str = "adversarial",
    ) -> SolverOptions:
        """Check ``overrides`` and resolve every default for ``problem`` and ``method``.

        Args:
            problem: an ErgodicMFG or a finite-horizon MFG.
            overrides: user options (None values mean "default").
            saved: the overrides are a saved full set: options that do not apply are then not an
                error (every option is present), and sets saved before ``time_feature`` and
                ``walls`` existed get the linear time input and wall losses they were run with.
            method: "adversarial", "joint" or "minmax" (the continuation and its step counts
                depend on it).

        Returns:
            the resolved, frozen options.

        Raises:
            OptionError: an unknown option, a bad value, or an option that does not apply.
        """
        kind = problem_kind(problem)
        if not isinstance(overrides, Mapping):
            raise OptionError(
                f"solver options are a {type(overrides).__name__}, not a dict; fix: pass name=value pairs"
            )
        unknown = sorted(set(map(str, overrides)) - set(SPECS))
        if unknown:
            raise OptionError(unknown_names("solver option", unknown, SPECS))
        if method not in ("adversarial", "joint", "minmax"):
            raise OptionError(
                f"unknown method {shown(method)}; fix: use method='adversarial', 'joint' or 'minmax'"
            )
        if method == "minmax":
            from .lowering.potential import NotPotential, potential_form

            try:
                potential_form(problem)
            except NotPotential as exc:
                raise OptionError(
                    f"{exc}; fix: use method='adversarial' (the residual game) or 'joint'"
                ) from None
        overrides = {k: v for k, v in overrides.items() if v is not None}
        if saved:  # sets saved before an option existed get what they were run with
            overrides = {"features": "axes", **overrides}
        if saved and kind == FINITE_HORIZON:
            overrides = {"time_feature": "linear", "walls": "loss", **overrides}
        given = frozenset() if saved else frozenset(overrides)
        for name, value in overrides.items():
            spec = SPECS[name]
            try:
                ok = spec.check is None or bool(spec.check(value))
            except (TypeError, ValueError, ArithmeticError):
                ok = False
            if not ok:
                raise OptionError(
                    f"bad solver option {name}={shown(value)}: {spec.need}; "
                    f"fix: give a valid {name}, or leave it out for its default"
                )
        if "betas" in overrides:
            overrides["betas"] = tuple(overrides["betas"])
        _refuse_what_does_not_apply(problem, kind, given, overrides)
        _refuse_on_whole_space(problem, kind, method, overrides)
        values = {name: overrides.get(name, spec.default) for name, spec in SPECS.items()}
        _resolve_defaults(problem, kind, method, values, given, saved)
        engine = _engine(problem, kind, values, given)
        groups = {
            g: klass(**{n: values[n] for n in _ORDER if SPECS[n].group == g})
            for g, klass in _GROUPS.items()
        }
        return cls(**groups, kind=kind, method=method, engine=engine, given=given)


# what an option of one kind only applies to, where "<kind> problems" says too little
_ONLY = {
    "hutchinson_probes": "the Hutchinson engine of ergodic problems",
    "continuation": "first-order ergodic problems (an artificial viscosity)",
}


def _refuse_on_whole_space(problem, kind: str, method: str, values: dict) -> None:
    """One line for what the network solver does not do on R^d (:class:`~mfgsolve.Rd`)."""
    if not isinstance(problem.domain, Rd):
        return
    name = f"problem '{problem.name}'"
    if kind == FINITE_HORIZON:
        raise OptionError(
            f"{name}: the network solver takes finite-horizon problems on a Torus or Box, not on "
            "Rd; fix: pose it on a Box that holds the mass (as problems/lq_mean_1d.py does)"
        )
    if getattr(problem, "populations", 1) > 1:
        raise OptionError(
            f"{name}: several populations on Rd are not solved; fix: pose them on a Box or Torus"
        )
    if method == "minmax":
        raise OptionError(
            f"{name}: the min-max game needs uniform collocation points, and on Rd they follow "
            "the density; fix: use method='adversarial' or 'joint'"
        )
    if values.get("sampling", "sobol") != "sobol":
        raise OptionError(
            f"{name}: on Rd collocation points follow the density's Gaussian envelope (sampling "
            f"{values['sampling']!r} is for bounded domains); fix: drop sampling="
        )


def _refuse_what_does_not_apply(problem, kind: str, given: frozenset, values: dict) -> None:
    """One line for an option the user set that has no effect on this problem."""
    for name in sorted(given):
        if kind not in SPECS[name].kinds:
            if kind == ERGODIC:
                what = "finite-horizon problems (an ergodic problem has no time)"
            else:
                what = _ONLY.get(name, "ergodic problems")
            raise OptionError(
                f"problem '{problem.name}': {name} applies only to {what}; fix: drop it"
            )
    if "walls" in given and not isinstance(problem.domain, Box):
        raise OptionError("walls applies only to finite-horizon problems on a Box; fix: drop it")
    if "density_fraction" in given and values.get("sampling", "sobol") != "density":
        raise OptionError(
            "density_fraction applies only to sampling='density'; fix: add sampling='density' or drop it"
        )
    for name in ("finish_iterations", "finish_points"):
        if name in given and values.get("finish", "none") == "none":
            raise OptionError(
                f"{name} applies only to finish='lbfgs'; fix: add finish='lbfgs' or drop it"
            )
    if kind == FINITE_HORIZON and values.get("sampling") == "density":
        raise OptionError(
            "sampling method 'density' is for ergodic problems; fix: use 'sobol' or 'uniform' for a finite-horizon problem"
        )
    if kind == FINITE_HORIZON and values.get("derivatives", "auto") not in ("auto", "autograd"):
        raise OptionError(
            f"problem '{problem.name}': derivatives={values['derivatives']!r} is for ergodic problems; "
            "fix: leave derivatives='auto' (finite-horizon residuals use reverse mode)"
        )


def _resolve_defaults(problem, kind: str, method: str, values: dict, given, saved: bool) -> None:
    """Fill the defaults that depend on the problem and the method (in place, on a plain dict)."""
    from ._continuation import NotApplicable, viscosity_signs

    dim = problem.dim
    if values["lr"] is None:
        values["lr"] = _LR[kind]
    if values["lr_ratio"] is None:  # the min-max game: a slower density (docs/solver.md)
        values["lr_ratio"] = _MINMAX_LR_RATIO if method == "minmax" else 1.0
    if values["quadrature_points"] <= 0:
        values["quadrature_points"] = quadrature_size(_QUADRATURE[kind], dim)
    if values["threads"] is None:  # one thread: docs/solver.md#threads (2 cost 3.4x when shared)
        values["threads"] = 1
    if values["finish_points"] <= 0:
        values["finish_points"] = 4 * values["batch_size"]
    if values["eval_points"] <= 0:
        values["eval_points"] = quadrature_size("history", dim)
    # the continuation (first-order ergodic problems): its viscosity, disc_steps, iterations
    signs = None
    if kind == ERGODIC:
        start = values["continuation"]
        if start is None:
            start = _CONTINUATION if method == "adversarial" else 0.0
        if start > 0:
            try:
                signs = viscosity_signs(problem)
            except NotApplicable as exc:
                if "continuation" in given:
                    raise OptionError(
                        f"problem '{problem.name}': continuation does not apply: {exc}; fix: drop continuation"
                    ) from None
        values["continuation"] = start if signs is not None else 0.0
    else:
        values["continuation"] = 0.0
    if values["disc_steps"] is None:
        values["disc_steps"] = 1 if signs is not None else 2
    if values["iterations"] is None:
        values["iterations"] = 1500 if signs is not None and dim == 1 else 2000
    if values["constant"] == "least_squares" and kind == ERGODIC:
        from .lowering import lower_populations

        if any(r.constant_coefficient is None for r in lower_populations(problem)):
            raise OptionError(
                f"problem '{problem.name}': constant='least_squares' needs the constant to enter the HJB linearly; fix: use constant='trained'"
            )
    if kind == FINITE_HORIZON:
        values["time_feature"] = values["time_feature"] or "sqrt"
        if isinstance(problem.domain, Box) and values["walls"] in (None, "exact"):
            from ._walls import exact_walls_obstacle

            obstacle = exact_walls_obstacle(problem)
            if obstacle is not None and values["walls"] == "exact" and not saved:
                raise OptionError(
                    f"problem '{problem.name}': walls='exact' does not apply: {obstacle}; fix: use walls='loss'"
                )
            values["walls"] = "exact" if obstacle is None else "loss"
        if values["time_slices"] <= 0:
            values["time_slices"] = min(16, values["batch_size"] // 2)


def _engine(problem, kind: str, values: dict, given) -> str:
    """The derivative engine of the training residuals (finite horizon: reverse mode)."""
    from .derivatives import ENGINES, choose_engine

    if values["derivatives"] not in ENGINES:
        raise OptionError(
            f"bad solver option: derivatives must be one of {', '.join(repr(e) for e in ENGINES)}; fix: change that option"
        )
    if kind == FINITE_HORIZON:
        return "autograd"
    from .lowering import lower_populations, uses_laplacian

    laplacian = values["continuation"] > 0 or any(
        uses_laplacian(r.hjb) or uses_laplacian(r.fp) for r in lower_populations(problem)
    )
    try:
        engine = choose_engine(values["derivatives"], problem.dim, laplacian=laplacian)
    except ValueError as exc:
        raise OptionError(f"problem '{problem.name}': {exc}") from None
    if "hutchinson_probes" in given and engine != "hutchinson":
        raise OptionError(
            f"problem '{problem.name}': hutchinson_probes applies only to the Hutchinson engine "
            f"(derivatives={values['derivatives']!r} is {engine!r} here); fix: add "
            "derivatives='hutchinson' or drop it"
        )
    return engine
