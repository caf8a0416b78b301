"""Whether the walls of a finite-horizon problem on a box can be imposed by construction."""

from __future__ import annotations

import sympy as sp

from .problem import MFG, Box

__all__ = ["exact_walls_obstacle"]


def exact_walls_obstacle(problem: MFG) -> str | None:
    """Why the Neumann and no-flux walls of a box problem cannot be imposed by construction, or
    None when they can: it needs a constant viscosity nu > 0, dH/dp_i = 0 whenever p_i = 0 (no
    drift through a wall when du/dn = 0, so no flux reduces to dm/dn = 0), and a terminal cost
    with zero normal derivative on the walls (u = g + (T - t) N keeps dg/dn)."""
    if not isinstance(problem.domain, Box):
        return "the domain is not a Box"
    form = problem.hamiltonian_form
    if form is None:
        return "the problem is not built with MFG.from_hamiltonian"
    nu = problem.substitute(sp.sympify(form.viscosity))
    if nu.free_symbols or not (nu.is_number and float(nu) > 0):
        return f"the viscosity {nu} is not a positive constant"
    terminal = problem.substitute(problem.terminal)
    for x, p, (lo, hi) in zip(problem.domain.symbols, form.momenta, problem.domain.bounds):
        h_p = problem.substitute(sp.diff(form.hamiltonian, p)).subs(p, 0)
        if sp.simplify(h_p) != 0:
            return f"dH/d{p} does not vanish at {p} = 0 (a drift through the walls of {x})"
        for wall in (lo, hi):
            if sp.simplify(terminal.diff(x).subs(x, wall)) != 0:
                return f"the terminal cost has a non-zero normal derivative at {x} = {wall}"
    return None
