"""Whether the walls of a finite-horizon problem on a box can be imposed by construction."""

from __future__ import annotations

import sympy as sp

from .problem import MFG, Box

__all__ = ["exact_walls_obstacle", "wall_faces"]


def wall_faces(domain) -> tuple[tuple[bool, bool], ...]:
    """Per axis, whether its lower and upper faces are walls throughout (not periodic, no exit
    or door): the faces where the walls can be imposed by construction."""
    if not isinstance(domain, Box):
        return tuple((False, False) for _ in range(domain.dim))
    out = [[False, False] for _ in range(domain.dim)]
    for face in domain.faces:
        out[face.axis][face.side] = face.condition == "neumann"
    return tuple((lo, hi) for lo, hi in out)


def exact_walls_obstacle(problem: MFG) -> str | None:
    """Why the Neumann and no-flux walls of a box problem cannot be imposed by construction, or
    None when they can: it needs a face that is a wall throughout (a face with a door keeps the
    loss on its wall part), a constant viscosity nu > 0, dH/dp_i = 0 whenever p_i = 0 on the
    axes of such faces (no drift through a wall when du/dn = 0, so no flux reduces to dm/dn = 0),
    and a terminal cost with zero normal derivative on them (u = g + (T - t) N keeps dg/dn)."""
    if not isinstance(problem.domain, Box):
        return "the domain is not a Box"
    walls = wall_faces(problem.domain)
    if not any(lo or hi for lo, hi in walls):
        return "no face of the box is a wall throughout"
    form = problem.hamiltonian_form
    if form is None:
        return "the problem is not built with MFG.from_hamiltonian"
    nu = problem.substitute(sp.sympify(form.viscosity))
    if nu.free_symbols or not (nu.is_number and float(nu) > 0):
        return f"the viscosity {nu} is not a positive constant"
    terminal = problem.substitute(problem.terminal)
    domain = problem.domain
    for x, p, bounds, sides in zip(domain.symbols, form.momenta, domain.bounds, walls):
        if not any(sides):
            continue
        h_p = problem.substitute(sp.diff(form.hamiltonian, p)).subs(p, 0)
        if sp.simplify(h_p) != 0:
            return f"dH/d{p} does not vanish at {p} = 0 (a drift through the walls of {x})"
        for wall, is_wall in zip(bounds, sides):
            if is_wall and sp.simplify(terminal.diff(x).subs(x, wall)) != 0:
                return f"the terminal cost has a non-zero normal derivative at {x} = {wall}"
    return None
