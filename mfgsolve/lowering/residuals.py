"""Lower sympy residuals to torch functions of collocation points and the unknown fields.

A residual such as ``u_x**2/2 + sin(2 pi x) - log(m) - H`` becomes a callable that takes a batch of
points and a :class:`Fields` object (anything that can evaluate u and log m at points) and returns
the residual at every point. The algebra is printed by sympy's torch printer (``lambdify``); every
``Derivative`` of u or m, of any order and mixed, is computed by autograd with respect to the points,
with lower orders cached and reused so that each backward pass yields a whole gradient row.

Exact rewrites done before printing:
- ``params`` are substituted and subexpressions without free symbols (``besseli(0, 1)``) are evaluated
  to floats (the torch printer knows no Bessel functions, and there is nothing to differentiate);
- ``log(m)`` is lowered to the network's log-density ``f - log Z`` (no ``log(exp(.))`` round trip);
- a constant that enters the HJB residual linearly (``... - H``) is split off, so a solver can use its
  least-squares value instead of training it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import sympy as sp
import torch
from sympy.core.function import AppliedUndef
from sympy.printing.codeprinter import PrintMethodNotImplementedError

from .._symbolic import evaluate_numeric_constants
from ..derivatives import DerivativeCache, make_cache
from ..problem import MFG, ErgodicMFG, ProblemError, Rd, field_name, split_field_name

__all__ = [
    "DerivativeCache",
    "ErgodicFields",
    "Fields",
    "LoweredResidual",
    "PopulationFields",
    "Residuals",
    "field_name",
    "lower",
    "lower_populations",
    "split_field_name",
]


class Fields(Protocol):
    """What a lowered residual needs from the solver: u and log m as functions of points."""

    def value(self, points: torch.Tensor) -> torch.Tensor:  # (n, D) -> (n,)
        ...

    def log_density(self, points: torch.Tensor) -> torch.Tensor:  # (n, D) -> (n,)
        ...


class ErgodicFields:
    """The networks of an ergodic problem as :class:`Fields`: u and the normalised log m = f - log Z
    (``log_z`` computed by the caller, by quadrature)."""

    def __init__(self, value_net, density_net, log_z):
        self.value_net, self.density_net, self.log_z = value_net, density_net, log_z

    def value(self, points):
        return self.value_net(points)

    def log_density(self, points):
        return self.density_net(points) - self.log_z


class PopulationFields:
    """The networks of an ergodic problem with several populations as :class:`Fields`:
    ``value(points, k)`` and the normalised ``log_density(points, k)`` of population k, from a
    value stack and a density stack (:class:`mfgsolve.nn.layers.PopulationStack`) and the
    vector ``log_z`` of their normalisers."""

    def __init__(self, value_net, density_net, log_z):
        self.value_net, self.density_net, self.log_z = value_net, density_net, log_z

    def value(self, points, k: int):
        return self.value_net.nets[k](points)

    def log_density(self, points, k: int):
        return self.density_net.nets[k](points) - self.log_z[k]


def fields_of(problem, value_net, density_net, log_z) -> Fields:
    """:class:`ErgodicFields` for one population, :class:`PopulationFields` for several."""
    if problem.populations > 1:
        return PopulationFields(value_net, density_net, log_z)
    return ErgodicFields(value_net, density_net, log_z)


def _lower_log_density(expr: sp.Expr, density: AppliedUndef, log_symbol: sp.Symbol) -> sp.Expr:
    """Rewrite log(m**k * ...) as k*log(m) + ..., then log(m) as the network's log-density symbol."""

    def has_density_log(e: sp.Basic) -> bool:
        return isinstance(e, sp.log) and e.args[0].has(density) and e.args[0] != density

    expr = expr.replace(has_density_log, lambda e: sp.expand_log(e, force=True))
    return expr.replace(
        lambda e: isinstance(e, sp.log) and e.args[0] == density, lambda e: log_symbol
    )


def _use_laplacians(expr: sp.Expr, fields: dict, coords: tuple[sp.Symbol, ...]) -> sp.Expr:
    """Replace sum_i d2f/dx_i^2 by a Laplacian symbol where the residual uses f's pure second
    derivatives only through that sum (an exact rewrite: d2f/dx_0^2 -> L - sum_{i>0} d2f/dx_i^2
    must cancel every other one). Lets a derivative engine compute a trace instead of d terms."""
    if len(coords) < 2:
        return expr
    for func, (_name, symbol) in fields.items():
        second = [sp.Derivative(func, (x, 2)) for x in coords]
        if not any(expr.has(s) for s in second):
            continue
        trial = expr.xreplace({second[0]: symbol - sp.Add(*second[1:])})
        if any(trial.has(s) for s in second[1:]):
            trial = sp.expand_mul(trial)
        if not any(trial.has(s) for s in second):
            expr = trial
    return expr


@dataclass
class LoweredResidual:
    """A residual ready for torch: ``fn(*coords, *constants, *field_terms)``.

    Attributes:
        label: "HJB" or "FP".
        expr: the rewritten sympy expression (dummies for field terms).
        terms: list of (field, derivative index) in argument order; field is "u", "m" or "logm";
            the index is a tuple of coordinate indices or "lap" (the Laplacian).
        constants: the unknown scalar symbols in argument order (e.g. the ergodic constant).
        fn: the lambdified torch function.
    """

    label: str
    expr: sp.Expr
    coords: tuple[sp.Symbol, ...]
    terms: list[tuple[str, tuple[int, ...] | str]]
    constants: tuple[sp.Symbol, ...]
    fn: Callable[..., torch.Tensor]
    needs: set[str] = field(default_factory=set)

    def __call__(
        self,
        points: torch.Tensor,
        caches: dict[str, DerivativeCache],
        constants: Sequence[torch.Tensor | float] = (),
    ) -> torch.Tensor:
        """Evaluate at ``points`` given derivative caches for "u", "m" and "logm"."""
        coords = [points[:, i] for i in range(points.shape[1])]
        args = [*coords, *constants, *(caches[name](index) for name, index in self.terms)]
        out = self.fn(*args)
        if not torch.is_tensor(out):
            out = torch.as_tensor(out, dtype=points.dtype, device=points.device)
        if out.dim() == 0 or out.shape[0] != points.shape[0]:
            out = out.expand(points.shape[0]).clone()
        return out


def relative_fp(expr: sp.Expr, problem) -> tuple[sp.Expr, dict[AppliedUndef, str]]:
    """The FP residual divided by m, in the derivatives of log m (the whole space R^d).

    On R^d the density decays (in d = 100 a Gaussian's m is about 1e-60 where its mass is), so a
    residual proportional to m says nothing in floating point. An FP residual is affine in m (a
    manufactured problem adds a source s(x)): with m = exp(l), FP / m is a polynomial in the
    derivatives of l (-nu Lap m / m = -nu (Lap l + |grad l|^2)) plus s(x) exp(-l). Returns that
    expression, with l the function ``logm``, and the map from it to its field name.

    Raises:
        ProblemError: the FP residual is not affine in m (m**2, m inside a function).
    """
    coords = tuple(problem.values[0].args)
    expr = evaluate_numeric_constants(problem.substitute(expr))
    ((name, density),) = [
        (n, fn) for n, fn in problem.named_unknowns() if split_field_name(n)[0] == "m"
    ]  # (one population: problems on Rd have one)
    log_m = sp.Function("log" + name)(*coords)
    # m and each of its derivatives as a symbol z: affine means d FP / dz free of every z
    atoms = [density] + sorted(
        (a for a in expr.atoms(sp.Derivative) if a.expr == density), key=sp.default_sort_key
    )
    zs = [sp.Dummy(f"z{i}") for i in range(len(atoms))]
    ratio = {z: _over_density(atom, log_m) for z, atom in zip(zs, atoms)}
    # one pass over the expanded terms (sp.diff in each z takes 30 s in d = 100)
    linear, source = [], []
    for term in sp.Add.make_args(sp.expand(expr.xreplace(dict(zip(atoms, zs))))):
        factors = sp.Mul.make_args(term)
        hits = [f for f in factors if f.has(*zs)]
        if not hits:
            source.append(term)
        elif len(hits) == 1 and hits[0] in ratio:
            rest = [f for f in factors if f is not hits[0]]
            linear.append(sp.Mul(*rest) * ratio[hits[0]])
        else:
            raise ProblemError(
                f"problem '{problem.name}': on Rd the FP residual is solved divided by m, which "
                "needs it affine in m (no m**2, no m inside a function); fix: write the FP "
                "residual linear in m (plus a source), or solve the problem on a Box"
            )
    quotient = sp.expand(sp.Add(*linear))
    if source:  # a source s(x), divided by m
        quotient = quotient + sp.Add(*source) * sp.exp(-log_m)
    return quotient, {log_m: "log" + name}


def _over_density(atom: sp.Expr, log_m: AppliedUndef) -> sp.Expr:
    """A derivative of m divided by m, in derivatives of l = log m: m_i / m = l_i, m_ij / m =
    l_ij + l_i l_j (higher orders through exp(l))."""
    if not isinstance(atom, sp.Derivative):
        return sp.Integer(1)
    variables = [v for v, count in atom.variable_count for _ in range(int(count))]
    if len(variables) == 1:
        return sp.Derivative(log_m, variables[0])
    if len(variables) == 2:
        a, b = variables
        return sp.Derivative(log_m, a, b) + sp.Derivative(log_m, a) * sp.Derivative(log_m, b)
    grown = sp.Derivative(sp.exp(log_m), *variables).doit()
    return sp.expand(sp.powsimp(sp.expand(grown * sp.exp(-log_m)), combine="exp"))


def _lower_one(
    label: str,
    expr: sp.Expr,
    problem,
    constants: tuple[sp.Symbol, ...],
    log_functions: dict[AppliedUndef, str] | None = None,
) -> LoweredResidual:
    coords = tuple(problem.values[0].args)
    expr = problem.substitute(expr)
    expr = evaluate_numeric_constants(expr)
    unknowns = list(problem.named_unknowns())
    if log_functions:  # (the relative FP residual on Rd: derivatives of log m, no m)
        unknowns += [(name, fn) for fn, name in log_functions.items()]
    log_symbols: dict[str, sp.Symbol] = {}
    for name, fn in unknowns:
        if split_field_name(name)[0] == "m":
            log_name = "log" + name
            log_symbols[log_name] = sp.Dummy(log_name)
            expr = _lower_log_density(expr, fn, log_symbols[log_name])
    index_of = {s: i for i, s in enumerate(coords)}
    names = {fn.func: name for name, fn in unknowns}
    laplacians = {fn: (name, sp.Dummy(f"lap_{name}")) for name, fn in unknowns}
    if isinstance(problem, ErgodicMFG):  # (space-time residuals keep their terms: no "lap" in x, t)
        expr = _use_laplacians(expr, laplacians, coords)
    replacements: dict[sp.Basic, sp.Symbol] = {}
    terms: list[tuple[str, tuple[int, ...] | str]] = []

    def term_symbol(name: str, index: tuple[int, ...] | str) -> sp.Symbol:
        key = (name, index)
        if key not in terms:
            terms.append(key)
        return dummies[key]

    dummies: dict[tuple[str, tuple[int, ...] | str], sp.Symbol] = {}
    for name, symbol in laplacians.values():
        if symbol in expr.free_symbols:
            dummies[(name, "lap")] = symbol
            terms.append((name, "lap"))
    # Derivatives first (they contain the bare functions).
    for d in sorted(expr.atoms(sp.Derivative), key=sp.default_sort_key):
        name = names[d.expr.func]
        index = tuple(sorted(index_of[v] for v, c in d.variable_count for _ in range(int(c))))
        dummies.setdefault((name, index), sp.Dummy(f"{name}_{''.join(map(str, index))}"))
        replacements[d] = term_symbol(name, index)
    expr = expr.xreplace(replacements)
    for f in expr.atoms(AppliedUndef):
        name = names[f.func]
        dummies.setdefault((name, ()), sp.Dummy(name))
        expr = expr.xreplace({f: term_symbol(name, ())})
    for log_name, logm in log_symbols.items():
        if logm in expr.free_symbols:
            dummies[(log_name, ())] = logm
            terms.append((log_name, ()))
    leftover = expr.atoms(AppliedUndef) | expr.atoms(sp.Derivative)
    if leftover:  # pragma: no cover - guarded by problem validation
        raise ProblemError(
            f"problem '{problem.name}': {label} residual has terms that cannot be lowered: {leftover}; fix: simplify the residual"
        )
    args = [*coords, *constants, *(dummies[t] for t in terms)]
    try:
        fn = sp.lambdify(args, expr, modules="torch", cse=True)
    except PrintMethodNotImplementedError as exc:
        func = str(exc).split(":")[-1].strip().splitlines()[0]
        raise ProblemError(
            f"problem '{problem.name}': {label} residual uses {func}, which has no torch equivalent; "
            "fix: rewrite it with elementary functions (exp, log, sin, sqrt, ...) or evaluate it to a number"
        ) from None
    needs = {name for name, _ in terms}
    return LoweredResidual(label, expr, coords, terms, constants, fn, needs)


@dataclass
class Residuals:
    """The lowered HJB and FP residuals of a problem.

    Attributes:
        hjb: the HJB residual; for an ergodic problem with a linear constant, without the constant.
        fp: the FP residual.
        constant_coefficient: c such that HJB = hjb + c * Hbar when the constant enters linearly
            (so the least-squares Hbar for given u, m is ``-mean(hjb) / c``); None otherwise.
        hjb_constants: unknown scalars still inside ``hjb`` (the constant when it is nonlinear).
    """

    problem: ErgodicMFG | MFG
    hjb: LoweredResidual
    fp: LoweredResidual
    constant_coefficient: float | None
    hjb_constants: tuple[sp.Symbol, ...]

    def caches(
        self,
        points: torch.Tensor,
        fields: Fields,
        frozen: Sequence[str] = (),
        create_graph: bool = True,
        engine: str = "autograd",
        probes: int = 4,
        generator: torch.Generator | None = None,
        shard: tuple[int, int] = (0, 1),
    ) -> dict[str, DerivativeCache]:
        """Lazy derivative caches of u, m and log m at ``points`` (points must require grad).

        Args:
            points, fields: where and what to differentiate.
            frozen: fields ("u", "m") whose terms are detached from the parameters.
            create_graph: keep the graph for a parameter update.
            engine: a resolved derivative engine ("autograd", "func", "hutchinson").
            probes, generator, shard: Hutchinson probes per point, their random generator, and
                (rank, processes) of a data-parallel run.
        """

        def field(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
            role, k = split_field_name(name)
            which = () if k is None else (k,)  # population k of several
            if role == "u":
                return lambda p: fields.value(p, *which)
            if role == "logm":
                return lambda p: fields.log_density(p, *which)
            return lambda p: torch.exp(fields.log_density(p, *which))

        class _Lazy(dict):
            def __missing__(inner, name: str) -> DerivativeCache:  # noqa: N805
                role, _k = split_field_name(name)
                if role not in ("u", "m", "logm"):
                    raise KeyError(name)
                if role == "m" and engine == "autograd":  # reuse the log-density forward pass
                    cache = DerivativeCache(
                        points, torch.exp(inner["log" + name].values), "m" in frozen, create_graph
                    )
                else:
                    is_frozen = ("u" if role == "u" else "m") in frozen
                    cache = make_cache(
                        engine,
                        points,
                        field(name),
                        is_frozen,
                        create_graph,
                        probes,
                        generator,
                        shard,
                    )
                inner[name] = cache
                return cache

        return _Lazy()


def second_estimates(caches: dict[str, DerivativeCache]) -> dict[str, DerivativeCache]:
    """Caches giving the independent second Hutchinson estimate of each Laplacian (others as is)."""

    class _Second(dict):
        def __missing__(inner, name: str) -> DerivativeCache:  # noqa: N805
            cache = caches[name]
            second = cache.second_estimate()
            inner[name] = second
            return second

    return _Second()


def uses_laplacian(residual: LoweredResidual) -> bool:
    """Whether a lowered residual has a Laplacian term (so a stochastic trace enters it)."""
    return any(index == "lap" for _, index in residual.terms)


def lower(problem: ErgodicMFG | MFG, population: int | None = None) -> Residuals:
    """Lower a problem's HJB and FP residuals to torch callables.

    Args:
        problem: a validated :class:`ErgodicMFG` or :class:`MFG`.
        population: with several populations, which one's residuals (0-based); their terms
            name the fields "u1", "m2", ... (:func:`field_name`).

    Returns:
        :class:`Residuals`.
    """
    if not isinstance(problem, (ErgodicMFG, MFG)):
        raise ProblemError(f"cannot lower {type(problem).__name__}; fix: pass an ErgodicMFG or MFG")
    if population is None and problem.populations > 1:
        raise ProblemError(
            f"problem '{problem.name}' has {problem.populations} populations; fix: lower one "
            "population at a time (lower(problem, k))"
        )
    k = 0 if population is None else population
    coefficient = None
    hjb_expr = problem.hjbs[k]
    hjb_constants: tuple[sp.Symbol, ...] = ()
    constant = (
        problem.constants[k] if isinstance(problem, ErgodicMFG) and problem.constants else None
    )
    if constant is not None:
        H = constant
        substituted = problem.substitute(hjb_expr)
        slope = sp.diff(substituted, H)
        if slope.is_number and slope != 0:
            coefficient = float(slope)
            hjb_expr = substituted.subs(H, 0)
        else:
            hjb_constants = (H,)
    hjb = _lower_one("HJB", hjb_expr, problem, hjb_constants)
    if isinstance(problem.domain, Rd):
        fp = _lower_one("FP", *_relative(problem.fps[k], problem))
    else:
        fp = _lower_one("FP", problem.fps[k], problem, ())
    return Residuals(problem, hjb, fp, coefficient, hjb_constants)


def _relative(expr: sp.Expr, problem) -> tuple:
    quotient, logs = relative_fp(expr, problem)
    return quotient, problem, (), logs


def lower_populations(problem: ErgodicMFG) -> list[Residuals]:
    """The lowered residuals of every population (one item for a one-population problem)."""
    if problem.populations == 1:
        return [lower(problem)]
    return [lower(problem, k) for k in range(problem.populations)]
