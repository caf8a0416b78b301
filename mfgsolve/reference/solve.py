"""``reference_solve``: choose a discretisation, run Newton on one or three grids, extrapolate."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np

from .._mass import exit_summary
from .._messages import did_you_mean, shown
from ..problem import MFG, ErgodicMFG, ProblemError, Rd
from ._fields import Fields
from ._grid import Grid
from .errors import ReferenceSolveError, SchemeNotApplicable
from .solution import ReferenceSolution

_SCHEMES = ("auto", "monotone", "generic")


def _default_grid(problem, scheme: str) -> tuple[int, ...]:
    d = problem.dim
    if problem.kind == "ergodic":
        n = (
            {1: 1600, 2: 128, 3: 24}.get(d, 16)
            if scheme == "monotone"
            else {1: 400, 2: 64}.get(d, 16)
        )
    else:
        n = {1: 200, 2: 32}.get(d, 12)
    return (n,) * d


MAX_NODES = 2**18  # space nodes of the grid asked for (Richardson also solves twice as fine)
MAX_TIME_STEPS = 10**5
MAX_SPACE_TIME_NODES = 2**21  # finite horizon: space nodes x time levels of that grid


def _parse_grid(problem, grid) -> tuple[int, ...] | None:
    if grid is None:
        return None
    try:
        sizes = (grid,) * problem.dim if np.isscalar(grid) else tuple(grid)
    except TypeError:
        sizes = ()
    if len(sizes) != problem.dim or not all(
        isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 4 for n in sizes
    ):
        raise ProblemError(
            f"problem '{problem.name}': grid={shown(grid)} is not {problem.dim} integer size(s) >= 4; "
            f"fix: pass grid=200 or grid=({', '.join(['64'] * problem.dim)})"
        )
    if math.prod(int(n) for n in sizes) > MAX_NODES:
        raise ProblemError(
            f"problem '{problem.name}': grid={shown(grid)} has more than 2**18 nodes; "
            "fix: use a coarser grid (Richardson extrapolation refines it once more)"
        )
    return tuple(int(n) for n in sizes)


# name -> (what a valid value is, check); None is each option's default where it has one
_OPTIONS = {
    "scheme": ("'auto', 'monotone' or 'generic'", lambda v: isinstance(v, str) and v in _SCHEMES),
    "richardson": ("True, False or None", lambda v: v is None or isinstance(v, bool)),
    "time_steps": (
        f"an integer from 1 to {MAX_TIME_STEPS:,} (or None)",
        lambda v: v is None or (_int(v) and 1 <= v <= MAX_TIME_STEPS),
    ),
    "tol": (
        "a positive number",
        lambda v: _number(v) and v > 0,
    ),
    "max_iter": ("an integer from 1 to 10,000", lambda v: _int(v) and 1 <= v <= 10_000),
    "continuation": ("True, False or None", lambda v: v is None or isinstance(v, bool)),
    "linear_solver": (
        "'auto', 'direct' or 'gmres'",
        lambda v: isinstance(v, str) and v in ("auto", "direct", "gmres"),
    ),
}


def _int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _number(v) -> bool:
    return (
        isinstance(v, (int, float, np.integer, np.floating))
        and not isinstance(v, bool)
        and bool(abs(v) <= sys.float_info.max)
    )


def check_options(problem, options: dict) -> None:
    """Refuse unknown reference options and bad values (the CLI's ``--option``), one line each.

    Raises:
        ProblemError: an unknown name (with the nearest valid one), a bad value, or an option
            of the other problem kind.
    """
    name = getattr(problem, "name", None)
    unknown = sorted(set(map(str, options)) - set(_OPTIONS))
    if unknown:
        listed = "[" + ", ".join(shown(u) for u in unknown) + "]"
        fix = did_you_mean(unknown, _OPTIONS)
        if "grid" in unknown:
            fix += " (the grid is --grid N on the command line, grid= in Python)"
        raise ProblemError(f"problem '{name}': unknown reference option(s) {listed}; fix: {fix}")
    for key, value in options.items():
        need, ok = _OPTIONS[key]
        if not ok(value):
            raise ProblemError(
                f"problem '{name}': bad reference option {key}={shown(value)}: {key} must be "
                f"{need}; fix: give a valid {key}, or leave it out for its default"
            )
    kind = getattr(problem, "kind", None)
    only = {"time_steps": "finite_horizon", "continuation": "ergodic"}
    for key, of in only.items():
        if options.get(key) is not None and kind != of:
            what = "finite-horizon" if of == "finite_horizon" else "ergodic"
            raise ProblemError(
                f"problem '{name}': {key} applies only to {what} problems; fix: drop it"
            )
    if kind == "ergodic" and options.get("linear_solver", "auto") != "auto":
        raise ProblemError(
            f"problem '{name}': linear_solver applies only to finite-horizon problems; fix: drop it"
        )


def _choose_scheme(problem, scheme: str):
    """Return (scheme name, numeric parts or None)."""
    from ._hamiltonian import monotone_parts

    if scheme not in _SCHEMES:
        raise ProblemError(
            f"problem '{problem.name}': unknown scheme {scheme!r}; fix: use one of {', '.join(_SCHEMES)}"
        )
    if problem.populations > 1:
        if scheme == "monotone":
            raise SchemeNotApplicable(
                f"problem '{problem.name}': the monotone scheme serves one population, this "
                f"problem has {problem.populations}; fix: use scheme='generic' (or 'auto')"
            )
        return "generic", None
    if scheme in ("auto", "monotone"):
        try:
            return "monotone", monotone_parts(problem)
        except SchemeNotApplicable as exc:
            if scheme == "monotone":
                raise SchemeNotApplicable(
                    f"{exc}; fix: use scheme='generic' or build the problem with from_hamiltonian"
                ) from None
    return "generic", None


def _prolong(problem, coarse: Grid, fields: Fields, fine: Grid, times=None, fine_times=None):
    """Interpolate a coarse solution onto a finer grid (initial guess for Newton)."""
    sol = ReferenceSolution(
        problem, coarse.axes, fields.u, fields.m, times=times, constant=fields.constant
    )
    if times is None:
        pts = fine.points
        shape = fine.shape
    else:
        tt = np.repeat(fine_times, fine.size)
        pts = np.column_stack([tt, np.tile(fine.points, (len(fine_times), 1))])
        shape = (len(fine_times), *fine.shape)
    if problem.populations > 1:  # (n, K) -> (K, *shape)
        u, m = sol.value(pts).T, sol.density(pts).T
        shape = (problem.populations, *shape)
        return Fields(u.reshape(shape), m.reshape(shape), fields.constant)
    return Fields(sol.value(pts).reshape(shape), sol.density(pts).reshape(shape), fields.constant)


def _rel(diff: np.ndarray, ref: np.ndarray, w: np.ndarray) -> float:
    den = np.sqrt(np.sum(w * ref**2))
    return float(np.sqrt(np.sum(w * diff**2)) / den) if den > 0 else float("nan")


def _abs(diff: np.ndarray, w: np.ndarray) -> float:
    return float(np.sqrt(np.sum(w * diff**2)))


def reference_solve(
    problem: ErgodicMFG | MFG,
    *,
    grid: int | Sequence[int] | None = None,
    scheme: str = "auto",
    richardson: bool | None = None,
    time_steps: int | None = None,
    tol: float = 1e-11,
    max_iter: int = 30,
    continuation: bool | None = None,
    linear_solver: str = "auto",
) -> ReferenceSolution:
    """Solve an MFG by finite differences and Newton's method.

    Args:
        problem: an :class:`~mfgsolve.ErgodicMFG` or :class:`~mfgsolve.MFG`.
        grid: nodes per space axis (an int for all axes, or one per axis). The returned solution
            lives on this grid. Default: 1,600 (1-D) / 128^2 (2-D) for the monotone ergodic scheme.
        scheme: ``"monotone"`` (structure-preserving, needs ``from_hamiltonian``), ``"generic"``
            (centred differences of the sympy residuals; trapezoidal rule in time for finite
            horizon), or ``"auto"`` (monotone when possible).
        richardson: extrapolate from the grid and its refinement, with the observed order checked
            on a third, coarser grid. Default: on in d <= 2 (in 2-D finite horizon it solves
            16^2 x 16, 32^2 x 32 and 64^2 x 64: about 30 s, error 2.5e-3 instead of 1.1e-2).
        time_steps: number of time steps (finite horizon; default: as many as space nodes in 1-D).
        tol: Newton tolerance on the row-scaled residual (infinity norm).
        max_iter: Newton iterations per grid.
        continuation: if Newton fails, continue from a larger viscosity down to the problem's
            (monotone scheme). Default: on failure only.
        linear_solver: finite horizon: ``"direct"`` (sparse LU of the space-time Jacobian),
            ``"gmres"`` (preconditioned by one backward HJB and one forward FP sweep) or ``"auto"``
            (direct for small systems: the monotone scheme below 20,000 space-time nodes, the
            generic one in 1-D below 40,000).

    Returns:
        A :class:`ReferenceSolution` with its error estimate, Newton history and run info.

    Raises:
        ProblemError: bad options or a problem the reference solver does not cover.
        ReferenceSolveError: Newton (with its fallbacks) did not converge; one line with the fix.
    """
    if not isinstance(problem, (ErgodicMFG, MFG)):
        raise ProblemError(
            f"reference_solve needs an ErgodicMFG or MFG, got {type(problem).__name__}; "
            "fix: FBSDE problems have no grid reference (use their closed form)"
        )
    if isinstance(problem.domain, Rd):
        raise ProblemError(
            f"problem '{problem.name}' is posed on Rd: the finite-difference reference solves "
            "bounded domains; fix: compare against the problem's closed form (exact=), or pose "
            "it on a Box that holds the mass"
        )
    if problem.dim > 3 or (problem.kind != "ergodic" and problem.dim > 2):
        raise ProblemError(
            f"problem '{problem.name}' is {problem.dim}-dimensional: the grid reference covers "
            "d <= 3 (ergodic) and d <= 2 (finite horizon); fix: compare against problem.exact instead"
        )
    check_options(
        problem,
        {
            k: v
            for k, v in {
                "scheme": scheme,
                "richardson": richardson,
                "time_steps": time_steps,
                "tol": tol,
                "max_iter": max_iter,
                "continuation": continuation,
                "linear_solver": linear_solver,
            }.items()
            if v is not None
        },
    )
    start = time.perf_counter()
    name, parts = _choose_scheme(problem, scheme)
    sizes = _parse_grid(problem, grid) or _default_grid(problem, name)
    if richardson is None:
        richardson = problem.dim <= 2
    if richardson and any(n % 2 for n in sizes):
        raise ProblemError(
            f"problem '{problem.name}': Richardson extrapolation needs even grid sizes, got {sizes}; "
            "fix: use an even grid or richardson=False"
        )
    if problem.kind == "ergodic":
        solver = _ergodic_solver(problem, name, parts, tol, max_iter, continuation)
        nt = None
    else:
        nt = (
            int(time_steps)
            if time_steps is not None
            else max(16, sizes[0] if problem.dim == 1 else 32)
        )
        if math.prod(sizes) * (nt + 1) > MAX_SPACE_TIME_NODES:
            raise ProblemError(
                f"problem '{problem.name}': a grid of {'x'.join(map(str, sizes))} nodes and {nt} "
                "time steps has more than 2**21 space-time nodes; fix: use a coarser grid or "
                "fewer time_steps (Richardson extrapolation refines them once more)"
            )
        if richardson and nt % 2:
            raise ProblemError(
                f"problem '{problem.name}': Richardson extrapolation needs an even time_steps, got {nt}; fix: use an even number"
            )
        solver = _finite_horizon_solver(problem, name, parts, tol, max_iter, linear_solver)
    order = 1.0 if name == "monotone" else 2.0
    label_grids = []
    if not richardson:
        g = Grid(problem.domain, sizes)
        f = solver(g, nt, None)
        label_grids.append(_label(sizes, nt))
        out_grid, out_fields, estimate, rich_info = g, f, {}, {"richardson": "off"}
        history = f.history
    else:
        grids = [Grid(problem.domain, [n // 2 for n in sizes]), Grid(problem.domain, sizes)]
        grids.append(grids[1].refined(2))
        nts = [None] * 3 if nt is None else [nt // 2, nt, 2 * nt]
        results: list[Fields] = []
        history = []
        for level, (g, n_t) in enumerate(zip(grids, nts)):
            guess = None
            if results:
                guess = _prolong(
                    problem,
                    grids[level - 1],
                    results[-1],
                    g,
                    _times(problem, nts[level - 1]),
                    _times(problem, n_t),
                )
            f = solver(g, n_t, guess)
            for h in f.history:
                history.append({"grid": _label(g.shape, n_t), **h})
            results.append(f)
            label_grids.append(_label(g.shape, n_t))
        if getattr(solver, "upwinded", None):  # one-sided differences: the scheme is first order
            order = 1.0
        out_grid, out_fields, estimate, rich_info = _extrapolate(problem, grids, results, order, nt)
    times = _times(problem, nt)
    w = out_grid.weights()
    # the mass of m at every time of every population: sum over the space axes (the last ones)
    space_axes = tuple(range(out_fields.m.ndim - out_grid.dim, out_fields.m.ndim))
    mass = np.sum(w * out_fields.m, axis=space_axes)
    mass_info = (
        exit_summary(times, mass)
        if problem.domain.exits
        else {"mass_drift": float(np.max(np.abs(mass - 1.0)))}
    )
    info = {
        "scheme": name,
        "grid": list(out_grid.shape),
        "time_steps": None if nt is None else len(times) - 1,
        "grids_solved": label_grids,
        "newton_iterations": out_fields.iterations,
        "seconds": time.perf_counter() - start,
        **mass_info,
        "m_min": float(out_fields.m.min()),
        **({"upwinded": list(solver.upwinded)} if getattr(solver, "upwinded", None) else {}),
        **rich_info,
    }
    return ReferenceSolution(
        problem,
        out_grid.axes,
        out_fields.u,
        out_fields.m,
        times=times,
        constant=out_fields.constant,
        error_estimate=estimate,
        history=history,
        info=info,
    )


def _label(shape, nt) -> str:
    s = "x".join(str(n) for n in shape)
    return s if nt is None else f"{s}|{nt}"


def _times(problem, nt):
    if nt is None:
        return None
    return np.linspace(problem.t0, problem.T, nt + 1)


def _extrapolate(problem, grids: list[Grid], res: list[Fields], order: float, nt):
    """Richardson extrapolation from grids (h/2 -> res[2], h -> res[1]) with the order observed
    against the coarse grid (2h -> res[0]); with several populations for each of them (each
    u_k has int u_k = 0), all on the middle grid when every one is extrapolated, else all on the
    finest grid. The estimates and observed orders are the worst population's."""
    time_axis = nt is not None
    mean_free_u = not time_axis and bool(getattr(problem, "constants", ()))  # int u = 0
    conserved = not problem.domain.exits  # (with an exit the mass leaves: not renormalised)
    K = problem.populations
    if K == 1:
        return _extrapolate_one(grids, res, order, nt, mean_free_u, conserved)
    parts = [
        _extrapolate_one(grids, [_population(r, k) for r in res], order, nt, mean_free_u, conserved)
        for k in range(K)
    ]
    info: dict = {}
    for key, value in parts[0][3].items():
        finite = [v for v in (p[3][key] for p in parts) if isinstance(v, float) and np.isfinite(v)]
        info[key] = min(finite) if key.startswith("observed") and finite else value
    if all(g is parts[0][0] for g, _f, _e, _i in parts):
        grid = parts[0][0]
        fields = [f for _g, f, _e, _i in parts]
        ests = [e for _g, _f, e, _i in parts]
    else:  # not all extrapolated: the finest grid for all, estimated without extrapolation
        grid = grids[2]
        fields = [_population(res[2], k) for k in range(K)]
        ests = [
            {**e, "m_rel_l2": e.get("unextrapolated_m_rel_l2", e["m_rel_l2"])}
            for _g, _f, e, _i in parts
        ]
        info["richardson"] = "rejected for a population; finest grid returned for all"
    constants = [f.constant for f in fields]
    out = Fields(
        np.stack([f.u for f in fields]),
        np.stack([f.m for f in fields]),
        None if constants[0] is None else constants,
        [],
        max(r.iterations for r in res),
    )
    est: dict = {}
    for key in ests[0]:
        finite = [e[key] for e in ests if key in e and np.isfinite(e[key])]
        worst = min if key == "observed_order" else max
        est[key] = worst(finite) if finite else float("nan")
    return grid, out, est, info


def _population(fields: Fields, k: int) -> Fields:
    """Population k's part of the fields of several populations."""
    constant = fields.constant[k] if fields.constant else None
    return Fields(fields.u[k], fields.m[k], constant, [], fields.iterations)


def _extrapolate_one(
    grids: list[Grid], res: list[Fields], order: float, nt, mean_free_u: bool, conserved: bool
):
    """:func:`_extrapolate` of one population (``conserved``: the extrapolated m is brought back
    to mass 1, at every time over a finite horizon)."""
    g0, g1, _g2 = grids
    time_axis = nt is not None

    def restrict(coarse: Grid, fine_field: np.ndarray) -> np.ndarray:
        out = coarse.restrict(fine_field)
        return out[::2] if time_axis else out

    def weights(g: Grid, field_: np.ndarray) -> np.ndarray:
        w = g.weights()
        return np.broadcast_to(w, field_.shape) / (field_.shape[0] if time_axis else 1)

    m1_on0 = restrict(g0, res[1].m)
    m2_on0 = restrict(g0, restrict(g1, res[2].m))
    u1_on0 = restrict(g0, res[1].u)
    u2_on0 = restrict(g0, restrict(g1, res[2].u))
    w0 = weights(g0, res[0].m)
    e01 = _rel(m1_on0 - res[0].m, res[0].m, w0)
    e12 = _rel(m2_on0 - m1_on0, res[0].m, w0)
    eu01 = _abs(u1_on0 - res[0].u, w0)
    eu12 = _abs(u2_on0 - u1_on0, w0)
    roundoff = 1e-11
    observed = float(np.log2(e01 / e12)) if e12 > roundoff and e01 > 0 else float("nan")
    observed_u = float(np.log2(eu01 / eu12)) if eu12 > roundoff and eu01 > 0 else float("nan")
    info = {"richardson_order": order, "observed_order_m": observed, "observed_order_u": observed_u}
    c = None
    if res[0].constant is not None:
        c = [r.constant for r in res]
        dc01, dc12 = abs(c[1] - c[0]), abs(c[2] - c[1])
        info["observed_order_constant"] = (
            float(np.log2(dc01 / dc12)) if dc12 > roundoff and dc01 > 0 else float("nan")
        )
    if e12 <= roundoff and eu12 <= roundoff:
        # the discrete solution does not change with the grid: nothing to extrapolate
        info["richardson"] = "not needed (grid-independent to round-off)"
        est = {"m_rel_l2": e12, "u_l2": eu12, "observed_order": observed}
        if c is not None:
            est["constant_abs"] = abs(c[2] - c[1])
        return g1, res[1], est, info
    if not np.isfinite(observed) and e12 <= roundoff:
        observed = observed_u  # m does not change with the grid (e.g. m = const): judge by u
    good = np.isfinite(observed) and abs(observed - order) <= 0.5 * order
    if not good:
        info["richardson"] = (
            f"rejected (observed order {observed:.2f} vs scheme order {order:g}); finest grid returned"
        )
        factor = 2**order - 1
        est = {
            "m_rel_l2": e12 / factor,
            "u_l2": eu12 / factor,
            "observed_order": observed,
        }
        if c is not None:
            est["constant_abs"] = abs(c[2] - c[1]) / factor
        return grids[2], res[2], est, info
    k = 2.0**order
    m2_on1, u2_on1 = restrict(g1, res[2].m), restrict(g1, res[2].u)
    m_ex = (k * m2_on1 - res[1].m) / (k - 1)
    u_ex = (k * u2_on1 - res[1].u) / (k - 1)
    w1 = g1.weights()
    if time_axis:
        mass = np.sum(w1 * m_ex, axis=tuple(range(1, m_ex.ndim)), keepdims=True)
    else:
        mass = np.sum(w1 * m_ex)
        if mean_free_u:
            u_ex = u_ex - np.sum(w1 * u_ex) / np.sum(w1)
    if conserved:
        m_ex = m_ex / mass
    # error estimate: the extrapolant from (2h, h) against the one from (h, h/2), on the 2h nodes;
    # it bounds the error of the coarser extrapolant, hence (conservatively) of the one returned
    m_ex0 = (k * m1_on0 - res[0].m) / (k - 1)
    u_ex0 = (k * u1_on0 - res[0].u) / (k - 1)
    m_ex_on0, u_ex_on0 = restrict(g0, m_ex), restrict(g0, u_ex)
    if mean_free_u:
        u_ex0 = u_ex0 - np.sum(w0 * u_ex0) / np.sum(w0)
        u_ex_on0 = u_ex_on0 - np.sum(w0 * u_ex_on0) / np.sum(w0)
    est = {
        "m_rel_l2": _rel(m_ex_on0 - m_ex0, m_ex_on0, w0),
        "u_l2": _abs(u_ex_on0 - u_ex0, w0),
        "observed_order": observed,
        "unextrapolated_m_rel_l2": e12 / (k - 1),
    }
    constant = None
    if c is not None:
        constant = (k * c[2] - c[1]) / (k - 1)
        est["constant_abs"] = abs(constant - (k * c[1] - c[0]) / (k - 1))
    info["richardson"] = "applied"
    fields = Fields(u_ex, m_ex, constant, [], res[1].iterations + res[2].iterations)
    fields.iterations = max(r.iterations for r in res)
    return g1, fields, est, info


# --- per-problem-kind solvers on one grid ----------------------------------------------------


def _ergodic_solver(problem, scheme, parts, tol, max_iter, continuation) -> Callable:
    from ._newton import newton, solve_by_homotopy

    label = f"reference solve of problem '{problem.name}'"

    if scheme == "monotone":
        from ._monotone_ergodic import ErgodicMonotoneSystem

        def solve(grid: Grid, nt, guess: Fields | None) -> Fields:
            system = ErgodicMonotoneSystem(grid, parts)
            z0 = system.initial_guess() if guess is None else _pack(guess)
            try:
                if continuation:
                    raise ReferenceSolveError("continuation requested")
                r = newton(system, z0, tol=tol, max_iter=max_iter, label=label)
                hist = r.history
            except ReferenceSolveError:
                if continuation is False:
                    raise
                r, hist = _viscosity_continuation(grid, parts, system, z0, tol, max_iter, label)
            u, m, lam = system.split(r.z)
            return Fields(u.reshape(grid.shape), m.reshape(grid.shape), lam, hist, r.iterations)

        return solve

    from ._generic import GenericErgodicSystem

    def solve_generic(grid: Grid, nt, guess: Fields | None) -> Fields:
        system = GenericErgodicSystem(problem, grid)
        solve_generic.upwinded = system.upwinded  # type: ignore[attr-defined]
        z0 = system.initial_guess() if guess is None else system.pack(guess)
        fix = "try a finer grid" + (" or scheme='monotone'" if system.K == 1 else "")
        try:
            r = newton(system, z0, tol=tol, max_iter=max_iter, label=label, fix=fix)
            z, history, iterations = r.z, r.history, r.iterations
        except ReferenceSolveError:  # too far from the solution: continue from the guess
            z, history = solve_by_homotopy(system, z0, tol, label, fix)
            iterations = sum(h.get("iterations", 0) for h in history)
        u, m, lam = system.split(z)
        shape = grid.shape if system.K == 1 else (system.K, *grid.shape)
        return Fields(u.reshape(shape), m.reshape(shape), lam, history, iterations)

    return solve_generic


def _pack(f: Fields) -> np.ndarray:
    return np.concatenate([f.u.ravel(), f.m.ravel(), [f.constant or 0.0]])


def _viscosity_continuation(grid, parts, system, z0, tol, max_iter, label):
    """Solve with viscosities nu + c 2^-j, each from the previous solution, down to nu."""
    from ._monotone_ergodic import ErgodicMonotoneSystem
    from ._newton import newton

    nu = parts.viscosity
    base = max(0.1, nu)
    history = []
    z = z0
    total = 0
    for j in range(0, 12):
        stage = ErgodicMonotoneSystem(grid, parts, viscosity=nu + base * 2.0**-j)
        r = newton(stage, z, tol=max(tol, 1e-9), max_iter=max_iter, label=label)
        history += [{"stage_viscosity": stage.nu, **h} for h in r.history]
        z, total = r.z, total + r.iterations
    r = newton(
        system, z, tol=tol, max_iter=max_iter, label=label + " (after viscosity continuation)"
    )
    history += [{"stage_viscosity": nu, **h} for h in r.history]
    r.history = history
    return r, history


def _finite_horizon_solver(problem, scheme, parts, tol, max_iter, linear_solver) -> Callable:
    from ._finite_horizon import finite_horizon_solver

    return finite_horizon_solver(problem, scheme, parts, tol, max_iter, linear_solver)
