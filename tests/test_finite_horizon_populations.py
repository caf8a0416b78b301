"""Several populations over a finite horizon: validation, the manufactured family, the lowered
residuals and the generic space-time reference against the closed forms, and the network solver
end to end."""

import numpy as np
import pytest
import scipy.integrate
import sympy as sp
import torch

from mfgsolve import (
    MFG,
    Box,
    Expectation,
    ProblemError,
    ReferenceSolution,
    Solution,
    Torus,
    compare,
    load_problem,
    reference_solve,
    solve,
)
from mfgsolve.lowering.space_time import (
    lower_finite_horizon,
    lower_finite_horizon_populations,
    residuals_and_caches,
)
from mfgsolve.nn.layers import PopulationStack

pytestmark = pytest.mark.usefixtures("one_thread")

FILE = "problems/two_populations_fh_torus.py"
t, x = sp.symbols("t x")
u1, u2, m1, m2 = (sp.Function(n)(t, x) for n in ("u1", "u2", "m1", "m2"))


def _hjb(u, m, other):
    return -u.diff(t) - u.diff(x, 2) / 10 + u.diff(x) ** 2 / 2 - sp.log(m) - other / 2


def _fp(u, m):
    return m.diff(t) - m.diff(x, 2) / 10 - (m * u.diff(x)).diff(x)


def _two(**kw):
    args = dict(
        domain=Torus([x]),
        time=(t, 0, 1),
        value=[u1, u2],
        density=[m1, m2],
        hjb=[_hjb(u1, m1, m2), _hjb(u2, m2, m1)],
        fp=[_fp(u1, m1), _fp(u2, m2)],
        terminal={u1: sp.cos(2 * sp.pi * x), u2: 0},
        initial={m1: 1 + sp.sin(2 * sp.pi * x) / 2, m2: 1},
    )
    args.update(kw)
    return MFG(**args)


# ----- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"terminal": {u1: 0}}, "no terminal condition for u2 at t = T; fix: add terminal=\\{u1"),
        ({"initial": {m2: 1}}, "no initial condition for m1 at t = t0; fix: add initial=\\{m1"),
        ({"initial": {m1: 1, m2: 1, u1: 0}}, "initial condition names u1.*, not m1 or m2"),
        ({"hjb": [_hjb(u1, m1, m2)]}, "2 populations but 1 hjb item.*fix: give one item"),
        ({"fp": [_fp(u1, m1), _fp(u1, m1)]}, "FP 2 residual does not contain the density m2"),
        ({"initial": {m1: 1, m2: -1}}, "initial density of m2 -1 is negative"),
        ({"initial": {m1: 1, m2: sp.sin(2 * sp.pi * x)}}, "initial density of m2 is negative"),
    ],
)
def test_bad_finite_horizon_populations_get_one_line_errors(kwargs, message):
    with pytest.raises(ProblemError, match=message) as info:
        _two(**kwargs)
    assert "\n" not in str(info.value)


def test_a_single_population_attribute_of_several_points_to_the_tuple():
    problem = _two()
    assert problem.populations == 2 and problem.terminals[0] == sp.cos(2 * sp.pi * x)
    assert problem.initials == (1 + sp.sin(2 * sp.pi * x) / 2, 1)
    for attribute, plural in (("terminal", "terminals"), ("initial", "initials"), ("fp", "fps")):
        with pytest.raises(ProblemError, match=f"fix: use problem.{plural}\\[k\\]"):
            getattr(problem, attribute)
    with pytest.raises(ProblemError, match="lower one population at a time"):
        lower_finite_horizon(problem)


def test_one_population_written_as_lists_is_the_plain_problem():
    u, m = sp.Function("u")(t, x), sp.Function("m")(t, x)
    kw = dict(terminal={u: sp.cos(2 * sp.pi * x)}, initial={m: 1})
    plain = MFG(Torus([x]), (t, 0, 1), u, m, _hjb(u, m, 0), _fp(u, m), **kw)
    listed = MFG(Torus([x]), (t, 0, 1), [u], [m], [_hjb(u, m, 0)], [_fp(u, m)], **kw)
    assert listed.populations == 1 and listed.terminal == plain.terminal
    a, b = lower_finite_horizon(plain), lower_finite_horizon(listed)
    assert a.hjb.terms == b.hjb.terms and str(a.fp.expr) == str(b.fp.expr)


def test_several_populations_on_a_box_are_refused_in_one_line():
    problem = _two(domain=Box([x], [(0, 1)]))
    with pytest.raises(ProblemError, match="solved on a Torus; fix: use a Torus domain"):
        solve(problem, iterations=1, progress=False)


# ----- the manufactured family -----------------------------------------------------------------


def _residuals_at_exact(problem):
    exact = problem.exact
    subs = {}
    for k in range(problem.populations):
        subs[problem.values[k]] = exact["value"][k]
        subs[problem.densities[k]] = exact["density"][k]
    params = {s: sp.nsimplify(v) for s, v in problem.params.items()}
    return [e.subs(params).subs(subs).doit() for e in (*problem.hjbs, *problem.fps)]


@pytest.mark.parametrize("d", [1, 2])
def test_the_manufactured_family_solves_its_residuals_and_conserves_mass(d):
    problem = load_problem(FILE, d=d)
    coords = problem.values[0].args
    rng = np.random.default_rng(0)
    for residual in _residuals_at_exact(problem):  # zero at random points to 30 digits
        for point in rng.random((3, d + 1)):
            value = residual.subs(dict(zip(coords, map(sp.Rational, point.round(6))))).evalf(40)
            assert abs(value) < 1e-30
    xs = problem.space
    box = [(xi, 0, 1) for xi in xs]
    for k in range(2):
        mass = sp.integrate(problem.exact["density"][k], *box)
        assert sp.simplify(mass - 1) == 0  # at every t: the sources have zero mean in x
        at_t1 = problem.exact["value"][k].subs(t, 1)
        assert sp.simplify(problem.terminals[k] - at_t1) == 0
        assert sp.simplify(problem.initials[k] - problem.exact["density"][k].subs(t, 0)) == 0


class _ExactStack(torch.nn.Module):
    """The closed forms of every population as a population stack of space-time fields (the
    density with the interface of :class:`~mfgsolve.nn.SpaceTimeDensity` its lowering uses)."""

    def __init__(self, problem, role):
        super().__init__()
        coords = problem.values[0].args
        exprs = problem.exact[role]
        self.fns = [sp.lambdify(coords, e, "torch") for e in exprs]
        self.role = role

    def column(self, k, points):
        out = self.fns[k](*points.unbind(-1))
        out = out if torch.is_tensor(out) else torch.full_like(points[:, 0], float(out))
        return out if self.role == "value" else torch.log(out)


class _Field(torch.nn.Module):
    def __init__(self, stack, k):
        super().__init__()
        self.stack, self.k = stack, k

    def forward(self, points, time_derivative=True):
        return self.stack.column(self.k, points)


def _exact_networks(problem):
    return tuple(
        PopulationStack([_Field(_ExactStack(problem, role), k) for k in range(2)])
        for role in ("value", "density")
    )


@pytest.mark.parametrize("d", [1, 2])
def test_the_lowered_residuals_vanish_at_the_exact_solution(d):
    problem = load_problem(FILE, d=d)
    value_net, density_net = _exact_networks(problem)
    gen = torch.Generator().manual_seed(0)
    pts = torch.rand(64, d + 1, dtype=torch.float64, generator=gen).requires_grad_(True)
    lowered = lower_finite_horizon_populations(problem)
    r, _ = residuals_and_caches(lowered, value_net, density_net, pts, (), ("hjb", "fp"), False)
    assert r["hjb"].shape == (64, 2) and r["fp"].shape == (64, 2)
    assert float(r["hjb"].detach().abs().max()) < 1e-12
    assert float(r["fp"].detach().abs().max()) < 1e-12
    # the other population's density enters: swap the densities and the HJB equations break
    swapped = PopulationStack(list(density_net.nets)[::-1])
    pts = pts.detach().requires_grad_(True)
    r, _ = residuals_and_caches(lowered, value_net, swapped, pts, (), ("hjb",), False)
    assert float(r["hjb"].detach().abs().max()) > 1e-2


def test_an_expectation_against_the_other_population_is_lowered_against_it():
    problem = _two(hjb=[_hjb(u1, m1, 0) - Expectation(x, m2), _hjb(u2, m2, 0)])
    lowered = lower_finite_horizon_populations(problem)
    assert [e.population for e in lowered[0].hjb_expectations] == [1]
    bad = _two(hjb=[_hjb(u1, m1, 0) - Expectation(x, u2), _hjb(u2, m2, 0)])
    with pytest.raises(ProblemError, match="not the density m1 or m2; fix:"):
        lower_finite_horizon_populations(bad)


# ----- the reference ---------------------------------------------------------------------------


def test_the_reference_is_second_order_and_reproduces_the_closed_form():
    problem = load_problem(FILE)
    errors, drifts = [], []
    for n in (24, 48):
        ref = reference_solve(problem, grid=n, time_steps=n, richardson=False)
        errors.append(compare(ref)["m_rel_l2"])
        drifts.append(ref.info["mass_drift"])  # centred differences: O(h^2), not conserved
        assert ref.u.shape == (2, n + 1, n)
    assert 1.8 < np.log2(errors[0] / errors[1]) < 2.2
    assert 1.8 < np.log2(drifts[0] / drifts[1]) < 2.2
    ref = reference_solve(problem, grid=48, time_steps=48)
    c = compare(ref)
    assert ref.info["richardson"] == "applied" and c["m_rel_l2"] < errors[1] / 20
    assert c["m_rel_l2"] <= ref.error_estimate["m_rel_l2"]
    assert c["u_rel_l2"] < 1e-4


def test_uncoupled_populations_are_each_the_one_population_reference():
    """With no cross-coupling, the two-population system is two independent one-population
    problems: its reference (one Newton system of 2K blocks) equals theirs, population by
    population (each solved by the K = 1 code), in the listed order."""
    problem = load_problem(FILE, c=0)
    kw = dict(grid=20, time_steps=20, richardson=False)
    both = reference_solve(problem, **kw)
    for k in range(2):
        u, m = problem.values[k], problem.densities[k]
        one = MFG(
            problem.domain,
            (t, 0, 1),
            u,
            m,
            problem.hjbs[k].subs(problem.params),
            problem.fps[k].subs(problem.params),
            terminal={u: problem.terminals[k]},
            initial={m: problem.initials[k]},
        )
        single = reference_solve(one, **kw)
        assert np.allclose(both.u[k], single.u, atol=1e-10)
        assert np.allclose(both.m[k], single.m, atol=1e-10)


def test_the_gmres_and_direct_solvers_agree_for_two_populations():
    problem = load_problem(FILE)
    kw = dict(grid=16, time_steps=16, richardson=False)
    direct = reference_solve(problem, linear_solver="direct", **kw)
    gmres = reference_solve(problem, linear_solver="gmres", **kw)
    assert np.allclose(direct.u, gmres.u, atol=1e-9) and np.allclose(direct.m, gmres.m, atol=1e-9)


def test_a_saved_reference_of_two_populations_over_time_loads(tmp_path):
    problem = load_problem(FILE)
    ref = reference_solve(problem, grid=16, time_steps=16, richardson=False)
    back = ReferenceSolution.load(ref.save(tmp_path / "ref"), problem=problem)
    pts = np.array([[0.0, 0.1], [0.5, 0.7], [1.0, 0.3]])
    assert back.value(pts).shape == (3, 2)
    assert np.array_equal(back.density(pts), ref.density(pts))


# ----- the network solver ----------------------------------------------------------------------


def test_a_short_network_run_learns_both_populations_and_saves(tmp_path):
    problem = load_problem(FILE)
    sol = solve(problem, iterations=150, seed=0, progress=False)
    c = compare(sol)
    for k in (1, 2):
        assert c[f"m_rel_l2_{k}"] < 0.05 and c[f"u_rel_l2_{k}"] < 0.05
    assert c["m_rel_l2"] == max(c["m_rel_l2_1"], c["m_rel_l2_2"])
    pts = np.column_stack([np.repeat([0.0, 0.5, 1.0], 64), np.tile(np.arange(64) / 64, 3)])
    m = sol.density(pts).reshape(3, 64, 2)
    assert np.allclose(m.mean(axis=1), 1, atol=1e-6)  # each population's mass at every time
    u_exact = np.stack([sp.lambdify((t, x), e)(1.0, pts[128:, 1]) for e in problem.exact["value"]])
    assert np.allclose(sol.value(pts)[128:], u_exact.T, atol=1e-6)  # u_k(T) = g_k (float32)
    assert {"m_rel_l2_1", "m_rel_l2_2"} <= set(sol.history[-1])
    back = Solution.load(sol.save(tmp_path / "sol"), problem=problem)
    assert np.array_equal(back.density(pts), sol.density(pts))
    assert back.verdict.reason == sol.verdict.reason


def test_a_two_population_run_is_reproducible_and_resumes_bitwise(tmp_path):
    problem = load_problem(FILE)
    kw = dict(iterations=20, seed=1, progress=False, eval_every=10, checkpoint_every=10)
    full = solve(problem, checkpoint_dir=str(tmp_path / "full"), **kw)
    again = solve(problem, **{k: v for k, v in kw.items() if k != "checkpoint_every"})

    def crash(record):
        if record["iteration"] == 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        solve(problem, checkpoint_dir=str(tmp_path / "run"), callbacks=[crash], **kw)
    resumed = solve(problem, checkpoint_dir=str(tmp_path / "run"), resume=True, **kw)
    pts = np.array([[0.2, 0.1], [0.9, 0.6]])
    for other in (again, resumed):
        assert np.array_equal(other.density(pts), full.density(pts))
        assert np.array_equal(other.value(pts), full.value(pts))


@pytest.mark.slow
@pytest.mark.parametrize("d", [1, 2])
def test_the_default_solver_meets_the_two_population_targets(d):
    problem = load_problem(FILE, d=d)
    c = compare(solve(problem, seed=0, progress=False))
    assert c["m_rel_l2"] <= 1e-2 and c["u_rel_l2"] <= 2e-2
    ref = reference_solve(problem)
    assert compare(ref)["m_rel_l2"] <= (1e-4 if d == 1 else 1e-3)


def test_a_cross_population_mean_field_term_has_a_second_order_reference():
    """Another form of the class: a non-quadratic Hamiltonian sqrt(1 + p^2), a viscosity per
    population, and each HJB coupled to the other population through an expectation,
    Expectation(sin(2 pi x), m_other); sympy manufactures the sources (the expectation of the
    closed form integrated exactly). The reference converges at order 2 to the closed forms."""
    vs = [sp.Function(f"v{k}")(t, x) for k in (1, 2)]
    ns = [sp.Function(f"n{k}")(t, x) for k in (1, 2)]
    nus, T = [sp.Rational(1, 5), sp.Rational(1, 20)], sp.Rational(1, 2)
    v_star = [
        (1 + t) * sp.cos(2 * sp.pi * (x - t)) / (3 * sp.pi),
        (T - t + 1) * sp.sin(4 * sp.pi * x) / (8 * sp.pi),
    ]
    n_star = [
        1 + sp.sin(2 * sp.pi * (x + t)) / 3,
        1 + sp.cos(2 * sp.pi * x) * sp.cos(sp.pi * t) / 2,
    ]

    def hjb(k, vv, nn, mean):
        slope = sp.sqrt(1 + vv[k].diff(x) ** 2)
        coupling = nn[k] ** 2 / 4 + mean(nn[1 - k]) * sp.cos(2 * sp.pi * x)
        return -vv[k].diff(t) - nus[k] * vv[k].diff(x, 2) + slope - coupling

    def fp(k, vv, nn):
        drift = vv[k].diff(x) / sp.sqrt(1 + vv[k].diff(x) ** 2)
        return nn[k].diff(t) - nus[k] * nn[k].diff(x, 2) - (nn[k] * drift).diff(x)

    # int sin(2 pi x) n_k* dx by hand (sympy's integrate takes a minute here), checked below
    means = {n_star[0]: sp.cos(2 * sp.pi * t) / 6, n_star[1]: sp.Integer(0)}
    for n, value in means.items():
        at = sp.Rational(3, 10)
        quad = scipy.integrate.quad(sp.lambdify(x, (sp.sin(2 * sp.pi * x) * n).subs(t, at)), 0, 1)
        assert abs(quad[0] - float(value.subs(t, at))) < 1e-12

    def exact_mean(n):
        return means[n]

    def mean(n):
        return Expectation(sp.sin(2 * sp.pi * x), n)

    problem = MFG(
        Torus([x]),
        (t, 0, T),
        vs,
        ns,
        [hjb(k, vs, ns, mean) - hjb(k, v_star, n_star, exact_mean) for k in (0, 1)],
        [fp(k, vs, ns) - fp(k, v_star, n_star) for k in (0, 1)],
        terminal={vs[k]: v_star[k].subs(t, T) for k in (0, 1)},
        initial={ns[k]: n_star[k].subs(t, 0) for k in (0, 1)},
        exact={**dict(zip(vs, v_star)), **dict(zip(ns, n_star))},
    )
    lowered = lower_finite_horizon_populations(problem)
    assert [e.population for e in lowered[0].hjb_expectations] == [1]
    errors = []
    for n in (24, 48):
        ref = reference_solve(problem, grid=n, time_steps=n, richardson=False)
        errors.append(compare(ref)["m_rel_l2"])
    assert 1.8 < np.log2(errors[0] / errors[1]) < 2.2, errors
