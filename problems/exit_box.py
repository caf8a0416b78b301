"""Manufactured finite-horizon MFG with an exit: the density leaves through the face x = 1.

On [0, 1]^d (d = 1 or 2), t in [0, 1], with a congestion coupling m:

    -u_t - nu Lap u + |grad u|^2 / 2 - m - f(t, x) = 0,
     m_t - nu Lap m - div(m grad u) - s(t, x) = 0,

    x = 0: a wall (u_x = 0, m_x = 0);  x = 1: an exit, u = b(t, y) and m = 0 (absorbed);
    y (d = 2): walls at y = 0, 1 (``y="wall"``, the default) or periodic (``y="periodic"``).

The chosen solution (w(y) = cos(pi y) between walls, cos(2 pi y) when periodic; no y in 1-D):

    b(t, y) = sin(t) / 4 + w(y) / 8,
    u* = b(t, y) + (2 - t) (1 - x^2) (1 + w(y) / 4) / 2,
    m* = (pi / 2) exp(-t / 2) cos(pi x / 2) (1 + t x^2 / 2) (1 + t w(y) / 2).

u* has u_x = 0 at the wall and equals the exit cost b on the exit; m* has m_x = 0 at the wall,
vanishes on the exit at every time, has mass 1 at t = 0 and loses mass afterwards (its drift
-grad u* = (2 - t) x (...) carries it to the exit). sympy derives the sources f, s. The
residuals are written as they are (not with ``from_hamiltonian``), so a wall means homogeneous
Neumann conditions for u and m, which m* and u* satisfy.

A family: ``load_problem("problems/exit_box.py", d=2)`` or ``mfgsolve solve FILE --set d=2``;
``problem`` below is d = 1, nu = 1/5.
"""

import numbers

import sympy as sp

from mfgsolve import MFG, Box, Exit


def _number(name, value, lo, hi):
    """A real number in [lo, hi] as an exact sympy number (a float by its shortest decimal)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not lo <= value <= hi:
        raise ValueError(f"{name} must be a number in [{lo}, {hi}], got {value!r}")
    if isinstance(value, (float, sp.Float)):
        return sp.Rational(repr(float(value)))
    return sp.nsimplify(value)


def make_problem(d: int = 1, nu: float = 0.2, y: str = "wall") -> MFG:
    """The manufactured exit problem in dimension ``d`` (1 or 2) with viscosity ``nu``; ``y``:
    "wall" or "periodic", the faces of the second axis (d = 2)."""
    if isinstance(d, float) and d.is_integer():
        d = int(d)
    if isinstance(d, bool) or d not in (1, 2):
        raise ValueError(f"d must be 1 or 2, got {d!r}")
    if y not in ("wall", "periodic"):
        raise ValueError(f"y must be 'wall' or 'periodic', got {y!r}")
    viscosity = _number("nu", nu, 0.01, 10)
    t, x = sp.symbols("t x")
    xs = [x] if d == 1 else [x, sp.Symbol("y")]
    w = sp.Integer(0) if d == 1 else sp.cos((1 if y == "wall" else 2) * sp.pi * xs[1])
    u, m = sp.Function("u")(t, *xs), sp.Function("m")(t, *xs)
    b = sp.sin(t) / 4 + w / 8
    u_star = b + (2 - t) * (1 - x**2) * (1 + w / 4) / 2
    m_star = (
        sp.pi / 2 * sp.exp(-t / 2) * sp.cos(sp.pi * x / 2) * (1 + t * x**2 / 2) * (1 + t * w / 2)
    )

    def hjb(uu, mm):
        grad2 = sum(uu.diff(v) ** 2 for v in xs)
        lap = sum(uu.diff(v, 2) for v in xs)
        return -uu.diff(t) - viscosity * lap + grad2 / 2 - mm

    def fp(uu, mm):
        lap = sum(mm.diff(v, 2) for v in xs)
        return mm.diff(t) - viscosity * lap - sum((mm * uu.diff(v)).diff(v) for v in xs)

    f, s = hjb(u_star, m_star), fp(u_star, m_star)
    boundary = {(x, 1): Exit(b)}
    if d == 2 and y == "periodic":
        boundary[xs[1]] = "periodic"
    return MFG(
        Box(xs, [(0, 1)] * d, boundary=boundary),
        (t, 0, 1),
        u,
        m,
        hjb=hjb(u, m) - f,
        fp=fp(u, m) - s,
        terminal={u: u_star.subs(t, 1)},
        initial={m: m_star.subs(t, 0)},
        exact={u: u_star, m: m_star},
        name=f"exit-box-{d}d" + ("-periodic" if d == 2 and y == "periodic" else ""),
    )


problem = make_problem()
