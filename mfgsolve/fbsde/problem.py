"""Forward-backward SDEs written as on paper, in sympy, vectorised in the dimension.

    dX_t = b(t, X_t, Y_t, Z_t) dt + sigma(t, X_t) dW_t,        X_0 = x0,
    dY_t = -f(t, X_t, Y_t, Z_t) dt + Z_t . dW_t,               Y_T = g(X_T),

with W a d-dimensional Brownian motion. When the FBSDE comes from the semilinear parabolic PDE

    u_t + b . grad u + 1/2 tr(sigma sigma^T Hess u) + f(t, x, u, sigma^T grad u) = 0,  u(T) = g,

then Y_t = u(t, X_t) and Z_t = sigma^T grad u(t, X_t) (a vector of dimension d).

``x`` (state) and ``z`` (gradient) are vector symbols: expressions act component-wise, ``vsum`` sums
over components and ``E`` averages over the population (McKean-Vlasov terms); see
:mod:`mfgsolve.fbsde._lower` and docs/fbsde.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import sympy as sp
import torch

from mfgsolve.errors import ProblemError
from mfgsolve.problem import Problem, check_time_interval

from ._lower import E, LoweringError, compile_expr, is_vector, vsum

__all__ = ["FBSDE", "vsum", "E"]

MAX_DIM = 100_000  # far beyond the d = 100 benchmarks; a typo (dim=10**9) is an error, not 8 GB


def _fail(name: str | None, what: str, fix: str) -> ProblemError:
    prefix = f"problem '{name}': " if name else ""
    return ProblemError(f"{prefix}{what}; fix: {fix}")


def _number(value: Any, what: str, name: str | None, fix: str) -> float:
    try:
        number = float(sp.sympify(value).evalf())
    except (TypeError, ValueError, sp.SympifyError, AttributeError):
        raise _fail(name, f"{what} is not a number ({value!r})", fix) from None
    if not math.isfinite(number):
        raise _fail(name, f"{what} is not finite ({value!r})", fix)
    return number


class FBSDE(Problem):
    """A (possibly mean-field) forward-backward SDE in dimension ``dim``.

    Args:
        time: ``(t, t0, T)`` with ``T > t0``.
        state: the vector symbol for X (e.g. ``sp.Symbol("x")``); expressions act component-wise.
        dim: dimension d of X and W (>= 1).
        x0: initial state, a number (all components) or a sequence of d numbers.
        value: the scalar symbol for Y.
        gradient: the vector symbol for Z = sigma^T grad u.
        drift: b(t, x, y, z), a vector (or scalar, broadcast to every component) expression.
        diffusion: sigma(t, x): a scalar or component-wise (diagonal) expression in t and x, or a
            d x d sympy Matrix / numpy array (full diffusion) of expressions in t only.
        driver: f(t, x, y, z), a scalar expression (reduce vectors with ``vsum``).
        terminal: g(x), a scalar expression in x.
        x0_std: standard deviation of a Gaussian spread of X_0 around x0 (0: deterministic);
            when > 0, Y_0 = u(t0, X_0) is learned as a function of X_0.
        params: ``{symbol: number}`` for free constants.
        exact: a closed form u(t, x) (sympy, in t and x), a number (u(t0, x0)), or a dict with keys
            ``"u"``, ``"y0"``, ``"y0_error"`` (error bar of a Monte Carlo reference), ``"source"``.
        name: a short name (set from the file name by ``load_problem`` when None).
    """

    kind = "fbsde"

    def __init__(
        self,
        time,
        state,
        dim,
        x0,
        value,
        gradient,
        drift,
        diffusion,
        driver,
        terminal,
        *,
        x0_std=0.0,
        params=None,
        exact=None,
        name=None,
    ):
        self.name = str(name) if name is not None else None
        self.source: str | None = None
        self.params = self._check_params(params)
        self.time, self.t0, self.T = self._check_time(time)
        self.state, self.value_symbol, self.gradient = self._check_symbols(state, value, gradient)
        if (
            isinstance(dim, bool)
            or not isinstance(dim, (int, np.integer))
            or not 1 <= dim <= MAX_DIM
        ):
            raise _fail(
                self.name,
                f"dim={dim!r} is not a positive integer (at most {MAX_DIM:,})",
                "write dim=100",
            )
        self.dim = int(dim)
        self.x0 = self._check_x0(x0)
        self.x0_std = _number(x0_std, "x0_std", self.name, "give a number >= 0")
        if self.x0_std < 0:
            raise _fail(self.name, f"x0_std={self.x0_std} is negative", "give a number >= 0")
        t, x, y, z = self.time, self.state, self.value_symbol, self.gradient
        self.drift = self._check_expr("drift", drift, {t, x, y, z}, scalar=False)
        self.driver = self._check_expr("driver", driver, {t, x, y, z}, scalar=True)
        self.terminal = self._check_expr("terminal", terminal, {x}, scalar=True)
        self.diffusion, self.full_diffusion = self._check_diffusion(diffusion)
        self.exact = self._check_exact(exact)
        self._compiled: dict[str, Any] | None = None
        self._probe()

    # ----------------------------------------------------------------------------- validation
    def _check_params(self, params: Mapping | None) -> dict[sp.Symbol, float]:
        if params is None:
            return {}
        if not isinstance(params, Mapping):
            raise _fail(self.name, "params is not a dict", "write params={sigma: 0.1}")
        out = {}
        for key, val in params.items():
            if not isinstance(key, sp.Symbol):
                raise _fail(
                    self.name, f"params key {key!r} is not a sympy Symbol", "use sympy Symbols"
                )
            out[key] = _number(val, f"params[{key}]", self.name, "give numbers")
        return out

    def _check_time(self, time) -> tuple[sp.Symbol, float, float]:
        return check_time_interval(time, self.params, self.name)

    def _check_symbols(self, state, value, gradient):
        for sym, role, example in (
            (state, "state", "state=sp.Symbol('x')"),
            (value, "value", "value=sp.Symbol('y')"),
            (gradient, "gradient", "gradient=sp.Symbol('z')"),
        ):
            if not isinstance(sym, sp.Symbol):
                raise _fail(self.name, f"{role} {sym!r} is not a sympy Symbol", f"write {example}")
        names = [self.time, state, value, gradient]
        if len(set(names)) != 4:
            raise _fail(
                self.name,
                f"time, state, value and gradient symbols must differ, got {names}",
                "use four different symbols, e.g. t, x, y, z",
            )
        if set(names) & set(self.params):
            raise _fail(
                self.name, "a params key is also the time/state/value/gradient symbol", "rename it"
            )
        return state, value, gradient

    def _check_x0(self, x0) -> np.ndarray:
        if isinstance(x0, (int, float, sp.Basic, np.number)):
            return np.full(self.dim, _number(x0, "x0", self.name, "give numbers"))
        try:
            values = [_number(v, "x0 entry", self.name, "give numbers") for v in x0]
        except TypeError:
            raise _fail(self.name, f"x0={x0!r} is not a number or a list", "write x0=0") from None
        if len(values) != self.dim:
            raise _fail(
                self.name,
                f"x0 has {len(values)} entries but dim={self.dim}",
                "give one number (used for all components) or d numbers",
            )
        return np.asarray(values, dtype=float)

    def _check_expr(self, label: str, expr, allowed: set, scalar: bool) -> sp.Expr:
        try:
            expr = sp.sympify(expr)
        except (sp.SympifyError, TypeError):
            raise _fail(
                self.name, f"{label} {expr!r} is not a sympy expression", "write a formula"
            ) from None
        if isinstance(expr, (sp.MatrixBase, np.ndarray)):
            raise _fail(
                self.name,
                f"{label} is a matrix",
                "write it with the vector symbols (component-wise), reducing with vsum(...)",
            )
        expr = expr.subs(self.params)
        extra = expr.free_symbols - allowed
        if extra:
            names = sorted(map(str, extra))
            allowed_names = sorted(map(str, allowed))
            raise _fail(
                self.name,
                f"{label} uses symbols {names} (allowed: {allowed_names})",
                "add numbers for constants in params={...}",
            )
        if expr.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
            raise _fail(self.name, f"{label} is not finite", "give a finite formula")
        if expr.atoms(sp.Derivative) or expr.atoms(sp.core.function.AppliedUndef):
            raise _fail(
                self.name,
                f"{label} contains derivatives or unknown functions",
                "write it in the symbols only (the gradient is the symbol z)",
            )
        if scalar and self.dim > 1 and is_vector(expr, {self.state, self.gradient}):
            raise _fail(
                self.name,
                f"{label} is a vector expression (x or z appears outside vsum)",
                "reduce vectors to a scalar, e.g. vsum(z**2) for |z|^2",
            )
        return expr

    def _check_diffusion(self, diffusion) -> tuple[Any, bool]:
        if isinstance(diffusion, (sp.MatrixBase, np.ndarray)):
            matrix = sp.Matrix(diffusion)
            if matrix.shape != (self.dim, self.dim):
                raise _fail(
                    self.name,
                    f"diffusion matrix has shape {matrix.shape}, need ({self.dim}, {self.dim})",
                    "give a d x d matrix, or a scalar / component-wise expression",
                )
            matrix = matrix.subs(self.params)
            extra = matrix.free_symbols - {self.time}
            if extra:
                raise _fail(
                    self.name,
                    f"full diffusion matrix depends on {sorted(map(str, extra))}",
                    "a full matrix may depend on t only; use a component-wise expression for state dependence",
                )
            return matrix, True
        expr = self._check_expr("diffusion", diffusion, {self.time, self.state}, scalar=False)
        return expr, False

    def _check_exact(self, exact) -> dict[str, Any] | None:
        if exact is None:
            return None
        if not isinstance(exact, Mapping):
            exact = (
                {"u": exact}
                if isinstance(exact, sp.Basic) and exact.free_symbols
                else {"y0": exact}
            )
        unknown = set(exact) - {"u", "y0", "y0_error", "source"}
        if unknown:
            raise _fail(
                self.name,
                f"exact has unknown keys {sorted(unknown)}",
                "use keys 'u', 'y0', 'y0_error', 'source'",
            )
        out: dict[str, Any] = {}
        if "u" in exact:
            out["u"] = self._check_expr("exact u", exact["u"], {self.time, self.state}, scalar=True)
        for key in ("y0", "y0_error"):
            if key in exact:
                out[key] = _number(exact[key], f"exact {key}", self.name, "give a number")
        if "source" in exact:
            out["source"] = str(exact["source"])
        if "u" in out and "y0" not in out and self.x0_std == 0:
            fn = compile_expr(out["u"], {self.time: "t", self.state: "x"})
            env = {
                "t": torch.full((1, 1), self.t0, dtype=torch.float64),
                "x": torch.tensor(self.x0[None, :], dtype=torch.float64),
            }
            out["y0"] = float(torch.as_tensor(fn(env)).reshape(-1)[0])
        return out

    def _probe(self) -> None:
        """Evaluate every term on a small batch to catch unsupported functions and non-finite values."""
        try:
            fns = self.compiled()
        except LoweringError as exc:
            raise _fail(
                self.name, str(exc), "use exp, log, sin, cos, tanh, sqrt, Abs, Max, Min, vsum, E"
            ) from None
        gen = torch.Generator().manual_seed(0)
        n, d = 16, self.dim
        x = torch.tensor(self.x0, dtype=torch.float64) + 0.1 * torch.randn(
            n, d, generator=gen, dtype=torch.float64
        )
        env = {
            "t": torch.full((n, 1), self.t0, dtype=torch.float64),
            "x": x,
            "y": torch.randn(n, 1, generator=gen, dtype=torch.float64),
            "z": 0.1 * torch.randn(n, d, generator=gen, dtype=torch.float64),
        }
        with np.errstate(all="ignore"):
            for label in ("drift", "driver", "terminal", "diffusion"):
                if label == "diffusion" and self.full_diffusion:
                    value = fns["diffusion"](env["t"][:1])
                else:
                    value = torch.as_tensor(fns[label](env))
                if not torch.all(torch.isfinite(value)):
                    raise _fail(
                        self.name,
                        f"{label} is not finite near x0",
                        "check divisions, logs and square roots",
                    )

    # ----------------------------------------------------------------------------- lowering
    def compiled(self) -> dict[str, Any]:
        """Torch evaluators of drift, diffusion, driver, terminal (and exact u), built once."""
        if self._compiled is not None:
            return self._compiled
        keys = {self.time: "t", self.state: "x", self.value_symbol: "y", self.gradient: "z"}
        out: dict[str, Any] = {
            "drift": compile_expr(self.drift, keys),
            "driver": compile_expr(self.driver, keys),
            "terminal": compile_expr(self.terminal, keys),
        }
        if self.full_diffusion:
            entries = [[compile_expr(e, keys) for e in row] for row in self.diffusion.tolist()]

            def matrix(t: torch.Tensor) -> torch.Tensor:
                env = {"t": t.reshape(-1)[:1].reshape(1, 1)}
                rows = [
                    torch.stack([torch.as_tensor(f(env), dtype=t.dtype).reshape(()) for f in r])
                    for r in entries
                ]
                return torch.stack(rows)

            out["diffusion"] = matrix
        else:
            out["diffusion"] = compile_expr(self.diffusion, keys)
        if self.exact and "u" in self.exact:
            out["u"] = compile_expr(self.exact["u"], keys)
        self._compiled = out
        return out

    @property
    def mean_field(self) -> bool:
        """Whether any term has a McKean-Vlasov expectation ``E(...)``."""
        exprs = [self.drift, self.driver, self.terminal]
        return any(e.has(E) for e in exprs)

    @property
    def horizon(self) -> float:
        return self.T - self.t0

    def __repr__(self) -> str:
        return f"FBSDE(name={self.name!r}, dim={self.dim}, T={self.T})"


def exact_u(problem: FBSDE, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor | None:
    """Evaluate the closed form u(t, x) on a batch (``t`` (n, 1), ``x`` (n, d)); None if unknown."""
    fns = problem.compiled()
    if "u" not in fns:
        return None
    return torch.as_tensor(fns["u"]({"t": t, "x": x})).expand(x.shape[0], 1).reshape(-1)
