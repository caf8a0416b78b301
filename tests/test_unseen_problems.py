"""The benchmark problems of problems/unseen/: their exact solutions are exact.

For each family and a few settings: the stated equations are the residuals (up to a source free of
the unknowns), the exact (u, m, Hbar) makes both residuals vanish at random points in float64, m is
positive with mass 1 and u has mean 0 (ergodic), checked by a quadrature that does not use the
file's own formula for Z: a tensor trapezoid grid for d <= 4 (spectrally accurate for these smooth
periodic integrands), the few independent directions m depends on for larger d, and independent
formulas for the normalising constants of the pairwise and product potentials.
"""

import functools
import itertools
import math
import re
from pathlib import Path

import mpmath
import numpy as np
import pytest
import sympy as sp
from scipy import integrate, special
from sympy.core.function import AppliedUndef

from mfgsolve import ProblemError, load_problem, solve

pytestmark = pytest.mark.usefixtures("one_thread")

UNSEEN = Path(__file__).resolve().parents[1] / "problems" / "unseen"

CASES = [
    ("plane_waves_nd", {"d": 2}),
    ("plane_waves_nd", {"d": 4, "waves": 4}),
    ("plane_waves_nd", {"d": 8, "waves": 3, "amplitude": -1.5}),
    ("plane_waves_nd", {"d": 16}),
    ("cosine_product_nd", {"d": 2}),
    ("cosine_product_nd", {"d": 4}),
    ("cosine_product_nd", {"d": 8}),
    ("cosine_product_nd", {"d": 16, "amplitude": 3}),
    ("pairwise_nd", {"d": 2}),
    ("pairwise_nd", {"d": 4, "amplitude": -2}),
    ("pairwise_nd", {"d": 8}),
    ("pairwise_nd", {"d": 16}),
    ("pairwise_nd", {"d": 3, "pairs": "ring"}),
    ("pairwise_nd", {"d": 16, "pairs": "ring"}),
    ("viscous_plane_waves_nd", {"d": 2}),
    ("viscous_plane_waves_nd", {"d": 4, "waves": 4, "nu": 0.3}),
    ("viscous_plane_waves_nd", {"d": 16}),
    ("nonquadratic_nd", {"d": 2}),
    ("nonquadratic_nd", {"d": 2, "hamiltonian": "quartic", "nu": 0}),
    ("nonquadratic_nd", {"d": 4}),
    ("nonquadratic_nd", {"d": 4, "hamiltonian": "quartic"}),
    ("manufactured_fh_mixed", {"d": 1}),
    ("manufactured_fh_mixed", {"d": 2, "nu": 0.2, "T": 0.5}),
]
IDS = [f"{name}-" + "-".join(f"{k}{v}" for k, v in s.items()) for name, s in CASES]


@functools.cache
def _load(name: str, settings: tuple):
    return load_problem(UNSEEN / f"{name}.py", **dict(settings))


def load(name: str, settings: dict):
    return _load(name, tuple(sorted(settings.items())))


def exact(problem):
    """The exact (u, m, Hbar) as sympy expressions (Hbar None for finite horizon)."""
    e = problem.exact
    return sp.sympify(e["value"]), sp.sympify(e["density"]), e.get("constant")


def numeric(problem, expr):
    """A float64 numpy function of an (n, dim) array of points (time first for finite horizon)."""
    fn = sp.lambdify(problem.value.args, problem.substitute(sp.sympify(expr)), ["scipy", "numpy"])

    def evaluate(points):
        return np.broadcast_to(np.asarray(fn(*points.T), dtype=float), (len(points),))

    return evaluate


def size_of_terms(problem, expr, points):
    """sum_i |term_i| at ``points`` for the terms of the sum ``expr``: the size float64 rounds."""
    terms = sp.Add.make_args(expr)
    fn = sp.lambdify(problem.value.args, list(terms), ["scipy", "numpy"])
    values = fn(*points.T)
    return sum(np.abs(np.broadcast_to(np.asarray(v, dtype=float), (len(points),))) for v in values)


def random_points(problem, n=50, seed=0):
    rng = np.random.default_rng(seed)
    pts = rng.random((n, problem.dim))
    if problem.kind == "finite_horizon":
        times = problem.t0 + (problem.T - problem.t0) * rng.random((n, 1))
        pts = np.hstack([times, pts])
    return pts


def viscosity(name, settings, problem):
    if name == "manufactured_fh_mixed":
        return sp.nsimplify(settings.get("nu", 0.05))
    nus = [v for k, v in problem.params.items() if str(k) == "nu"]
    return sp.nsimplify(nus[0]) if nus else 0


def stated_operators(name, settings, problem):
    """The left-hand sides of the docstring's equations applied to the problem's unknowns."""
    u, m = problem.value, problem.density
    xs = problem.space
    nu = viscosity(name, settings, problem)
    grad = [u.diff(x) for x in xs]
    lap_u = sum(u.diff(x, 2) for x in xs)
    lap_m = sum(m.diff(x, 2) for x in xs)
    if name == "nonquadratic_nd":
        q = sum(g**2 for g in grad)
        if settings.get("hamiltonian", "relativistic") == "relativistic":
            ham, drift = sp.sqrt(1 + q) - 1, [g / sp.sqrt(1 + q) for g in grad]
        else:
            ham, drift = q / 2 + q**2 / 4, [(1 + q) * g for g in grad]
    else:
        ham, drift = sum(g**2 for g in grad) / 2, grad
    hjb = -nu * lap_u + ham - sp.log(m)
    fp = -nu * lap_m - sum((m * b).diff(x) for b, x in zip(drift, xs))
    if problem.kind == "finite_horizon":
        t = problem.time
        return -u.diff(t) + hjb, m.diff(t) + fp
    return hjb - problem.constant, fp


MANUFACTURED = ("nonquadratic_nd", "manufactured_fh_mixed")  # sources in both equations
SMALL = [(name, s) for name, s in CASES if s["d"] <= 8]


@pytest.mark.parametrize(
    ("name", "settings"), SMALL, ids=[i for i, c in zip(IDS, CASES) if c in SMALL]
)
def test_residuals_are_the_stated_equations_plus_a_source(name, settings):
    problem = load(name, settings)
    hjb_op, fp_op = stated_operators(name, settings, problem)
    for label, residual, op in (("HJB", problem.hjb, hjb_op), ("FP", problem.fp, fp_op)):
        source = problem.substitute(residual) - problem.substitute(op.doit())
        if source.atoms(AppliedUndef):  # equal up to algebra?
            source = sp.expand(source)
        assert not source.atoms(AppliedUndef), f"{label}: the unknowns enter otherwise than stated"
        if problem.kind == "ergodic":
            assert problem.constant not in source.free_symbols, label
        if label == "FP" and name not in MANUFACTURED:
            assert source == 0, "these families have no FP source"


@pytest.mark.parametrize(("name", "settings"), CASES, ids=IDS)
def test_exact_solution_satisfies_both_residuals(name, settings):
    problem = load(name, settings)
    u_star, m_star, hbar = exact(problem)
    sub = {problem.value: u_star, problem.density: m_star}
    if problem.kind == "ergodic":
        sub[problem.constant] = hbar
    points = random_points(problem)
    hjb_op, fp_op = stated_operators(name, settings, problem)
    for label, residual, op in (("HJB", problem.hjb, hjb_op), ("FP", problem.fp, fp_op)):
        exprs = [problem.substitute(residual)]
        if name in MANUFACTURED:
            # the sources cancel the file's own operator symbolically; through the stated
            # operator (written independently above) the check has content
            exprs.append(problem.substitute(op) + exprs[0] - problem.substitute(op.doit()))
        for expr in exprs:
            value = problem.substitute(expr.subs(sub).doit())
            scale = size_of_terms(problem, value, points)
            res = numeric(problem, value)(points)
            assert np.all(np.isfinite(res)), label
            assert np.max(np.abs(res) / (1 + scale)) < 1e-10, (label, np.max(np.abs(res)))


def _grid(dim, n):
    axes = np.meshgrid(*[np.arange(n) / n] * dim, indexing="ij")
    return np.stack([a.ravel() for a in axes], axis=1)


def _directions(problem, exprs):
    """The distinct wave vectors k (up to sign) of the sin/cos(2 pi k . x + phase) in ``exprs``."""
    found = []
    for expr in exprs:
        for atom in problem.substitute(sp.sympify(expr)).atoms(sp.sin, sp.cos):
            k = [sp.nsimplify(atom.args[0].diff(x) / (2 * sp.pi)) for x in problem.space]
            assert all(c.is_integer for c in k), atom
            k = [int(c) for c in k]
            sign = next(np.sign(c) for c in k if c)
            k = [sign * c for c in k]
            if k not in found:
                found.append(k)
    return np.array(found)


def _mean_along_directions(problem, ks, expr, n=24):
    """int over T^d of f(x), for f a function of k . x (k in ks, linearly independent): the law of
    (k . x mod 1)_k is uniform on T^J (all its nonzero Fourier modes vanish), so this is the
    J-dimensional trapezoid rule in theta = K x, at points x = (B^-1 theta, 0) with B = K[:, cols]."""
    J, d = ks.shape
    assert np.linalg.matrix_rank(ks) == J, "dependent directions"
    cols = next(
        c for c in itertools.combinations(range(d), J) if abs(np.linalg.det(ks[:, c])) > 0.5
    )
    theta = _grid(J, n)
    x = np.zeros((len(theta), d))
    x[:, cols] = np.linalg.solve(ks[:, cols], theta.T).T
    assert np.allclose(x @ ks.T, theta)
    values = numeric(problem, expr)(x)
    return float(np.mean(values)), values


def _pairwise_partition(d, a, pairs):
    """Z of the pairwise potential by routes other than the file's series."""
    if pairs == "ring":
        # the d-dimensional tensor trapezoid rule on n^d points, summed by a transfer matrix
        n = 64
        s = np.arange(n) / n
        kernel = np.exp(a / math.sqrt(d) * np.cos(2 * np.pi * (s[:, None] - s[None, :]))) / n
        return float(np.trace(np.linalg.matrix_power(kernel, d)))
    # Hubbard-Stratonovich: exp(c |S|^2) = E_z exp(2 sqrt(c) Re(conj(z) S)), z standard complex
    # Gaussian, and E_x exp(2 sqrt(c) Re(conj(z) S)) = I0(2 sqrt(c) |z|)^d
    c = a / (2 * math.sqrt(d * (d - 1) / 2))
    g = 2 * math.sqrt(c)

    def f(r):
        return 2 * r * np.exp(-r * r + d * g * r) * special.i0e(g * r) ** d

    value, _ = integrate.quad(f, 0, np.inf, epsabs=0, epsrel=1e-13, limit=200)
    return math.exp(-c * d) * value


def _product_partition(d, a):
    with mpmath.workdps(30):
        return float(mpmath.hyper([mpmath.mpf(1) / 2] * (d - 1), [1] * d, mpmath.mpf(a) ** 2 / 4))


def _check_against(problem, m_star, potential, Z):
    """m* = exp(V) / Z at random points, for Z computed independently: then int m* = 1."""
    pts = random_points(problem, 200, seed=1)
    expected = np.exp(numeric(problem, potential)(pts)) / Z
    assert np.allclose(numeric(problem, m_star)(pts), expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize(("name", "settings"), CASES, ids=IDS)
def test_density_is_positive_with_mass_one(name, settings):
    problem = load(name, settings)
    u_star, m_star, _ = exact(problem)
    d = problem.dim
    xs = problem.space
    if problem.kind == "finite_horizon":
        pts = _grid(d, 64)
        density = numeric(problem, m_star)
        for time in np.linspace(problem.t0, problem.T, 5):
            m = density(np.hstack([np.full((len(pts), 1), time), pts]))
            assert m.min() > 0
            assert abs(m.mean() - 1) < 1e-12
        # the conditions the solver imposes are those of the exact solution
        for condition, expected, time in (
            (problem.initial, m_star, problem.t0),
            (problem.terminal, u_star, problem.T),
        ):
            tx = np.hstack([np.full((len(pts), 1), time), pts])
            given = np.broadcast_to(sp.lambdify(xs, condition, "numpy")(*pts.T), (len(pts),))
            assert np.allclose(given, numeric(problem, expected)(tx), rtol=0, atol=1e-14)
        return
    if d <= 4:
        pts = _grid(d, 64 if d <= 2 else 20)
        m, u = numeric(problem, m_star)(pts), numeric(problem, u_star)(pts)
        assert m.min() > 0
        assert abs(m.mean() - 1) < 1e-12
        assert abs(u.mean()) < 1e-12
    elif name in ("pairwise_nd", "cosine_product_nd"):  # dependent directions: formulas for Z
        a = sp.nsimplify(settings.get("amplitude", 2 if name == "cosine_product_nd" else 0))
        if name == "cosine_product_nd":
            potential = a * sp.Mul(*(sp.cos(2 * sp.pi * x) for x in xs))
            Z = _product_partition(d, float(a))
        else:
            pairs = settings.get("pairs", "all")
            if pairs == "all":
                a = a or 1 / sp.sqrt(2)
                links = list(itertools.combinations(range(d), 2))
            else:
                a = a or 1
                links = [(i, (i + 1) % d) for i in range(d)]
            potential = (
                a / sp.sqrt(len(links)) * sum(sp.cos(2 * sp.pi * (xs[i] - xs[j])) for i, j in links)
            )
            Z = _pairwise_partition(d, float(a), pairs)
        _check_against(problem, m_star, potential, Z)
        assert sp.sympify(u_star) == 0
    else:  # a function of a few independent combinations k . x
        ks = _directions(problem, [u_star, m_star])
        assert len(ks) <= 4
        mass, m = _mean_along_directions(problem, ks, m_star)
        assert m.min() > 0
        assert abs(mass - 1) < 1e-12
        assert abs(_mean_along_directions(problem, ks, u_star)[0]) < 1e-12


def test_normalising_constants_agree_with_independent_routes():
    """The files' series for Z against tensor grids (small d) and the formulas of the tests."""
    pairwise = load("pairwise_nd", {"d": 2})
    assert math.isclose(pairwise.exact["constant"], math.log(special.i0(1 / math.sqrt(2))))
    for d in (3, 4):
        for pairs in ("all", "ring"):
            Z = math.exp(load("pairwise_nd", {"d": d, "pairs": pairs}).exact["constant"])
            a = 1 / math.sqrt(2) if pairs == "all" else 1.0
            assert math.isclose(Z, _pairwise_partition(d, a, pairs), rel_tol=1e-12)
    for d in (2, 3, 4, 8):
        Z = math.exp(load("cosine_product_nd", {"d": d}).exact["constant"])
        assert math.isclose(Z, _product_partition(d, min(2 ** ((d - 1) / 2), 2)), rel_tol=1e-13)


BAD = [
    ("plane_waves_nd", {"d": 1}, "d must be an integer from 2 to 64, got 1"),
    ("plane_waves_nd", {"d": 2.5}, "d must be an integer"),
    ("plane_waves_nd", {"d": True}, "d must be an integer"),
    ("plane_waves_nd", {"d": 2, "waves": 3}, "waves must be an integer from 1 to 2"),
    ("plane_waves_nd", {"amplitude": float("nan")}, "amplitude must be a number from -4 to 4"),
    ("plane_waves_nd", {"amplitude": "1"}, "amplitude must be a number"),
    ("cosine_product_nd", {"amplitude": 5}, "amplitude must be a number from -4 to 4"),
    ("cosine_product_nd", {"d": 65}, "d must be an integer from 2 to 64"),
    ("pairwise_nd", {"pairs": "star"}, "pairs must be 'all' or 'ring', got 'star'"),
    ("pairwise_nd", {"d": 2, "pairs": "ring"}, "d must be an integer from 3 to 32"),
    ("viscous_plane_waves_nd", {"nu": 0}, "nu must be a number above 0 and at most 10"),
    ("viscous_plane_waves_nd", {"nu": -0.1}, "nu must be a number above 0"),
    (
        "nonquadratic_nd",
        {"hamiltonian": "cubic"},
        "hamiltonian must be 'relativistic' or 'quartic'",
    ),
    ("nonquadratic_nd", {"d": 17}, "d must be an integer from 2 to 16"),
    ("nonquadratic_nd", {"nu": float("inf")}, "nu must be a number from 0 to 10"),
    ("manufactured_fh_mixed", {"d": 3}, "d must be 1 or 2, got 3"),
    ("manufactured_fh_mixed", {"T": 0}, "T must be a number above 0"),
]


@pytest.mark.parametrize(("name", "settings", "message"), BAD, ids=[f"{b[0]}-{b[2]}" for b in BAD])
def test_bad_settings_raise_one_clear_error(name, settings, message):
    with pytest.raises(ProblemError, match="ValueError: " + re.escape(message)):
        load_problem(UNSEEN / f"{name}.py", **settings)
    module_default = load_problem(UNSEEN / f"{name}.py")  # the file's own `problem` still loads
    assert module_default.name.startswith("unseen-")


@pytest.mark.parametrize(
    ("name", "settings"),
    [("plane_waves_nd", {"d": 2}), ("nonquadratic_nd", {"d": 2})],
    ids=["plane-waves-d2", "nonquadratic-d2"],
)
def test_a_few_training_iterations_run(name, settings):
    problem = load(name, settings)
    solution = solve(problem, iterations=5, progress=False, seed=0)
    points = random_points(problem, 16)
    assert np.all(np.isfinite(solution.value(points)))
    assert np.all(solution.density(points) > 0)
