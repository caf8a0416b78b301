"""Potential MFGs: recognise the structure in the sympy residuals and lower the Lagrangian.

An ergodic MFG (one population) is *potential* when its residuals are, up to a nonzero factor
each,

    HJB:  -nu Lap u + H(x, grad u) - f(x, m) - Hbar = 0,
    FP:   -nu Lap m - div(m dH/dp(x, grad u)) = 0,

with a constant nu >= 0, H convex in p and f nondecreasing in m. The system is then the
saddle point (min over u, max over m >= 0 with int m = 1, Hbar the multiplier) of

    L(u, m) = int [ nu grad m . grad u + m H(x, grad u) - F(x, m) ] dx,      dF/dm = f,

convex in u, concave in m (Cirant & Nurbekyan 2018; Cao, Guo & Lauriere 2020): its first
variation in m is the HJB equation, in u the FP equation (:func:`lagrangian_density` gives L's
density for sympy's Euler-Lagrange equations; a test checks them against the residuals). With
m = exp(f_net) / Z, grad m = m grad f_net, so only first derivatives appear.

:func:`potential_form` recognises the structure from ``from_hamiltonian`` or from raw residuals
and raises :class:`NotPotential` (one line saying why) otherwise; :func:`lower_lagrangian` turns
L's density into a torch function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import sympy as sp
import torch

from .._symbolic import evaluate_numeric_constants

__all__ = [
    "LoweredLagrangian",
    "NotPotential",
    "PotentialForm",
    "lagrangian_density",
    "lower_lagrangian",
    "potential_form",
]


class NotPotential(Exception):
    """The problem is not a potential MFG (the message says why, in one line)."""


@dataclass(frozen=True)
class PotentialForm:
    """The pieces of a potential ergodic MFG, in the space symbols, ``momenta`` and ``mass``.

    Attributes:
        hamiltonian: H(x, p) with H(x, 0) = 0 (a potential term of H moves into ``coupling``).
        momenta: the symbols p_1..p_d.
        coupling: f(x, M), where M (``mass``) stands for the density's value.
        potential: F(x, M) with dF/dM = f.
        viscosity: nu, a number >= 0.
        mass: the symbol M.
    """

    hamiltonian: sp.Expr
    momenta: tuple[sp.Symbol, ...]
    coupling: sp.Expr
    potential: sp.Expr
    viscosity: float
    mass: sp.Symbol


def _reason(problem, text: str) -> NotPotential:
    return NotPotential(f"problem '{problem.name}' is not a potential MFG: {text}")


def _first_and_second(expr: sp.Expr, fn, xs, prefix: str):
    """``expr`` with fn's first derivatives as symbols p_i and its second as q_ij (i <= j);
    returns (expression, p symbols, q symbols by (i, j))."""
    d = len(xs)
    ps = sp.symbols(f"{prefix}p1:{d + 1}", real=True)
    qs = {}
    subs = {}
    for i in range(d):
        for j in range(i, d):
            q = sp.Symbol(f"{prefix}q{i + 1}{j + 1}", real=True)
            qs[(i, j)] = q
            subs[sp.Derivative(fn, xs[i], xs[j]) if i != j else sp.Derivative(fn, (xs[i], 2))] = q
    out = expr.subs(subs)
    out = out.subs({sp.Derivative(fn, xs[i]): ps[i] for i in range(d)})
    return out, ps, qs


def potential_form(problem) -> PotentialForm:
    """The potential structure of ``problem``, or :class:`NotPotential` saying why not.

    Args:
        problem: a validated problem.

    Returns:
        a :class:`PotentialForm`.
    """
    from ..problem import DiscountedMFG

    if problem.kind != "ergodic":
        raise _reason(problem, f"the min-max game serves ergodic MFGs (this one is {problem.kind})")
    if isinstance(problem, DiscountedMFG):
        raise _reason(
            problem, "the min-max game serves ergodic MFGs with a constant, not discounted ones"
        )
    if problem.populations > 1:
        raise _reason(problem, "the min-max game serves one population")
    xs = tuple(problem.domain.symbols)
    u, m, c = problem.value, problem.density, problem.constant
    mass = sp.Symbol("M", positive=True)
    hjb = sp.expand(problem.substitute(problem.hjb).doit())
    fp = sp.expand(problem.substitute(problem.fp).doit())
    if any(a.has(m) for a in hjb.atoms(sp.Derivative)):
        raise _reason(problem, "its HJB equation has derivatives of the density")
    g, ps, qs = _first_and_second(hjb, u, xs, "")
    if g.has(sp.Derivative):
        raise _reason(problem, "its HJB equation has derivatives of u beyond the second")
    g = g.subs(m, mass)
    if g.has(u):
        raise _reason(problem, "u itself (not only its derivatives) enters its HJB equation")
    a = sp.diff(g, c)
    if not a.is_number or a == 0 or sp.diff(g, c, 2) != 0:
        raise _reason(problem, "the constant does not enter its HJB equation as a constant term")
    g = sp.expand((g - a * c) / (-a))  # now HJB = g - c up to the factor -a
    nu = None
    for (i, j), q in qs.items():
        coeff = sp.diff(g, q)
        want_zero = i != j
        if coeff.free_symbols or sp.diff(g, q, 2) != 0:
            raise _reason(problem, "its diffusion is not nu Lap u with a constant nu")
        if want_zero and coeff != 0:
            raise _reason(problem, "its diffusion has mixed second derivatives")
        if not want_zero:
            value = float(-coeff)
            if nu is not None and abs(value - nu) > 1e-14 * (1 + abs(nu)):
                raise _reason(problem, "its diffusion differs between the axes")
            nu = value
    nu = 0.0 if nu is None else nu
    if nu < 0:
        raise _reason(problem, "its viscosity is negative")
    g1 = g.subs({q: 0 for q in qs.values()})
    at_zero = g1.subs({p: 0 for p in ps})
    hamiltonian = sp.expand(g1 - at_zero)
    coupling = -at_zero
    if hamiltonian.has(mass):
        raise _reason(problem, "its Hamiltonian and coupling do not separate (H depends on m)")
    fp_expected = -sum(
        nu * sp.Derivative(m, (x, 2))
        + sp.Derivative(m * sp.diff(hamiltonian, p).subs(_momenta_back(ps, u, xs)), x)
        for x, p in zip(xs, ps)
    )
    fp_expected = sp.expand(fp_expected.doit())
    if not _proportional(fp, fp_expected, xs, (u, m)):
        raise _reason(
            problem, "its FP equation is not -nu Lap m - div(m dH/dp) of its HJB equation"
        )
    _check_convexity(problem, hamiltonian, coupling, xs, ps, mass)
    potential = sp.integrate(coupling, mass)
    if potential.has(sp.Integral):
        raise _reason(problem, f"sympy cannot integrate its coupling {coupling} in m")
    return PotentialForm(hamiltonian, ps, coupling, potential, nu, mass)


def _momenta_back(ps, u, xs) -> dict:
    return {p: sp.Derivative(u, x) for p, x in zip(ps, xs)}


def _proportional(a: sp.Expr, b: sp.Expr, xs, unknowns) -> bool:
    """a = lam b for a nonzero number lam, as functions of x and of the unknowns and their
    derivatives (each taken as an independent variable): compared at 16 random points, which
    avoids sympy's simplify (minutes on the residuals of 8-D problems)."""
    atoms = set()
    for e in (a, b):
        atoms |= {d for d in e.atoms(sp.Derivative) if d.expr in unknowns}
    jets = {d: sp.Symbol(f"_jet{k}") for k, d in enumerate(sorted(atoms, key=sp.default_sort_key))}
    names = {fn: sp.Symbol(f"_value{k}") for k, fn in enumerate(unknowns)}
    args = [*xs, *jets.values(), *names.values()]
    rng = np.random.default_rng(0)
    points = np.column_stack(
        [
            rng.random((16, len(xs))),
            rng.uniform(-1, 1, (16, len(jets))),
            rng.uniform(0.5, 2, (16, len(names))),
        ]
    )

    def values(e: sp.Expr) -> np.ndarray:
        e = evaluate_numeric_constants(e.subs(jets).subs(names))
        fn = sp.lambdify(args, e, "numpy")
        with np.errstate(all="ignore"):
            return np.broadcast_to(np.asarray(fn(*points.T), dtype=float), (16,))

    va, vb = values(a), values(b)
    if not (np.all(np.isfinite(va)) and np.all(np.isfinite(vb))):
        return False
    if np.max(np.abs(vb)) == 0:
        return np.max(np.abs(va)) == 0
    lam = float(va @ vb / (vb @ vb))
    scale = np.max(np.abs(va)) + np.max(np.abs(vb))
    return lam != 0 and bool(np.max(np.abs(va - lam * vb)) <= 1e-9 * scale)


def _check_convexity(problem, hamiltonian, coupling, xs, ps, mass) -> None:
    """H convex in p and f nondecreasing in m, at 64 random points (x in the domain, p in
    [-5, 5]^d, m in [1e-3, 10])."""
    rng = np.random.default_rng(0)
    n = 64
    domain = problem.domain
    bounds = getattr(domain, "bounds", None) or [(0.0, length) for length in domain.lengths]
    x = [lo + (hi - lo) * rng.random(n) for lo, hi in bounds]
    p = [rng.uniform(-5, 5, n) for _ in ps]
    d = len(ps)
    hess = sp.hessian(evaluate_numeric_constants(hamiltonian), ps)
    fn = sp.lambdify([*xs, *ps], hess, "numpy")
    with np.errstate(all="ignore"):
        values = np.asarray(
            [np.asarray(fn(*[v[k] for v in x], *[v[k] for v in p]), float) for k in range(n)]
        ).reshape(n, d, d)
    if not np.all(np.isfinite(values)) or np.min(np.linalg.eigvalsh(values)) < -1e-10:
        raise _reason(problem, "its Hamiltonian is not convex in grad u")
    slope = sp.lambdify([*xs, mass], evaluate_numeric_constants(sp.diff(coupling, mass)), "numpy")
    ms = np.exp(rng.uniform(np.log(1e-3), np.log(10.0), n))
    with np.errstate(all="ignore"):
        s = np.broadcast_to(np.asarray(slope(*x, ms), float), (n,))
    if not np.all(np.isfinite(s)) or np.min(s) < 0:
        raise _reason(problem, "its coupling decreases in m (the Lagrangian is not concave in m)")


def lagrangian_density(problem, form: PotentialForm) -> sp.Expr:
    """L's density ``nu grad m . grad u + m H(x, grad u) - F(x, m)`` in the problem's unknowns."""
    xs = tuple(problem.domain.symbols)
    u, m = problem.value, problem.density
    back = _momenta_back(form.momenta, u, xs)
    mixed = sum(sp.Derivative(m, x) * sp.Derivative(u, x) for x in xs)
    return (
        form.viscosity * mixed + m * form.hamiltonian.subs(back) - form.potential.subs(form.mass, m)
    )


@dataclass
class LoweredLagrangian:
    """L as torch functions of the points (n, d), grad u (n, d), log m (n,) and grad log m
    (n, d; None without viscosity, where it does not enter): ``per_mass`` is
    ``psi = nu grad log m . grad u + H(x, grad u) - F(x, m) / m`` (so that L = E_m[psi]);
    ``variation`` is ``H(x, grad u) - f(x, m)``, the first variation dL/dm without its term
    -nu Lap u (taken by parts against the test function)."""

    hamiltonian: Callable
    potential: Callable
    coupling: Callable
    viscosity: float

    def per_mass(self, points, u_grad, log_m, logm_grad) -> torch.Tensor:
        m = torch.exp(log_m)
        cols = [points[:, i] for i in range(points.shape[1])]
        big_f = _as_column(self.potential(*cols, m, log_m), points)
        out = self._hamiltonian(points, cols, u_grad) - big_f / m
        if self.viscosity:
            out = out + self.viscosity * (logm_grad * u_grad).sum(dim=1)
        return out

    def variation(self, points, u_grad, log_m) -> torch.Tensor:
        cols = [points[:, i] for i in range(points.shape[1])]
        f = _as_column(self.coupling(*cols, torch.exp(log_m), log_m), points)
        return self._hamiltonian(points, cols, u_grad) - f

    def _hamiltonian(self, points, cols, u_grad) -> torch.Tensor:
        grads = [u_grad[:, i] for i in range(u_grad.shape[1])]
        return _as_column(self.hamiltonian(*cols, *grads), points)


def _as_column(value, points: torch.Tensor) -> torch.Tensor:
    if not torch.is_tensor(value):
        value = torch.as_tensor(value, dtype=points.dtype, device=points.device)
    return value.to(points.dtype).expand(points.shape[0])


def lower_lagrangian(problem, form: PotentialForm) -> LoweredLagrangian:
    """The torch form of L (:class:`LoweredLagrangian`). F(x, m) and f(x, m) are evaluated
    with log m given too: ``log(M)`` in them is read as that argument (m log m stays finite
    as m -> 0)."""
    xs = tuple(problem.domain.symbols)
    log_mass = sp.Symbol("log_M", real=True)

    def in_m(expr: sp.Expr) -> Callable:
        expr = sp.expand_log(expr, force=True).subs(sp.log(form.mass), log_mass)
        return sp.lambdify([*xs, form.mass, log_mass], evaluate_numeric_constants(expr), "torch")

    h = sp.lambdify([*xs, *form.momenta], evaluate_numeric_constants(form.hamiltonian), "torch")
    return LoweredLagrangian(h, in_m(form.potential), in_m(form.coupling), form.viscosity)
