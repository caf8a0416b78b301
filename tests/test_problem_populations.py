"""Several populations (ergodic): validation, the manufactured two-population family, the lowered
residuals and the generic reference against the closed forms, and the network solver end to end."""

import numpy as np
import pytest
import sympy as sp
import torch

from mfgsolve import (
    DiscountedMFG,
    ErgodicMFG,
    ProblemError,
    ReferenceSolution,
    Solution,
    Torus,
    compare,
    load_problem,
    reference_solve,
    solve,
)
from mfgsolve.lowering import lower, lower_populations
from mfgsolve.reference import SchemeNotApplicable

pytestmark = pytest.mark.usefixtures("one_thread")

FILE = "problems/two_populations_torus.py"
x = sp.Symbol("x")
u1, u2, m1, m2 = (sp.Function(n)(x) for n in ("u1", "u2", "m1", "m2"))
H1, H2 = sp.symbols("H1 H2")


def _hjb(u, m, other, H):
    return u.diff(x) ** 2 / 2 - sp.log(m) - other / 2 - H


def _fp(u, m):
    return -m.diff(x, 2) / 10 - (m * u.diff(x)).diff(x)


def _two(**kw):
    args = dict(
        domain=Torus([x]),
        value=[u1, u2],
        density=[m1, m2],
        constant=[H1, H2],
        hjb=[_hjb(u1, m1, m2, H1), _hjb(u2, m2, m1, H2)],
        fp=[_fp(u1, m1), _fp(u2, m2)],
        name="two",
    )
    args.update(kw)
    return ErgodicMFG(**args)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"density": [m1]}, "2 value function(s) but 1 density function(s)"),
        ({"constant": [H1]}, "2 populations but 1 constant item(s)"),
        ({"constant": H1}, "2 populations but 1 constant item(s)"),
        ({"constant": [H1, H1]}, "share the ergodic constant"),
        ({"hjb": [_hjb(u1, m1, m2, H1)]}, "2 populations but 1 hjb item(s)"),
        ({"fp": [_fp(u1, m1), _fp(u2, m2), _fp(u2, m2)]}, "2 populations but 3 fp item(s)"),
        (
            {"hjb": [_hjb(u1, m1, m2, H1) + H2, _hjb(u2, m2, m1, H2)]},
            "HJB 1 residual contains another population's constant",
        ),
        ({"fp": [_fp(u1, m1), _fp(u2, m2) + H2]}, "FP 2 residual contains the ergodic constant"),
        (
            {"hjb": [_hjb(u1, m1, m2, H1), _hjb(u1, m2, m1, H2)]},
            "HJB 2 residual does not contain the value u2(x)",
        ),
        ({"density": [m1, u1]}, "given twice among the values and densities"),
        ({"exact": {sp.Function("w")(x): 0}}, "use keys among u1(x), u2(x), m1(x), m2(x), H1, H2"),
    ],
)
def test_bad_population_problems_get_one_line_errors(kwargs, message):
    with pytest.raises(ProblemError) as err:
        _two(**kwargs)
    text = str(err.value)
    assert message in text and "fix:" in text and "\n" not in text


def test_a_single_population_attribute_of_several_points_to_the_tuple():
    problem = _two()
    assert problem.populations == 2 and problem.constants == (H1, H2)
    for attribute, plural in (("hjb", "hjbs"), ("value", "values"), ("constant", "constants")):
        with pytest.raises(ProblemError, match=f"fix: use problem.{plural}\\[k\\]"):
            getattr(problem, attribute)
    with pytest.raises(ProblemError, match="lower one population at a time"):
        lower(problem)


def test_one_population_written_as_lists_is_the_plain_problem():
    u, m, H = sp.Function("u")(x), sp.Function("m")(x), sp.Symbol("H")
    hjb, fp = u.diff(x) ** 2 / 2 - sp.log(m) + sp.cos(2 * sp.pi * x) - H, _fp(u, m)
    plain = ErgodicMFG(Torus([x]), u, m, H, hjb, fp)
    listed = ErgodicMFG(Torus([x]), [u], [m], [H], [hjb], [fp])
    assert listed.populations == 1 and listed.hjb == plain.hjb and listed.value == u
    a, b = lower(plain), lower(listed)
    assert a.hjb.terms == b.hjb.terms and str(a.hjb.expr) == str(b.hjb.expr)


# ----- the manufactured family ---------------------------------------------------------------


def _residuals_at_exact(problem):
    """Every population's HJB and FP residual with the closed forms substituted."""
    exact = problem.exact
    subs = {}
    for k in range(problem.populations):
        subs[problem.values[k]] = exact["value"][k]
        subs[problem.densities[k]] = exact["density"][k]
        subs[problem.constants[k]] = sp.nsimplify(exact["constant"][k])  # 1/3, -1/4
    params = {s: sp.nsimplify(v) for s, v in problem.params.items()}  # exact: 1/2, 1/10
    out = []
    for expr in (*problem.hjbs, *problem.fps):
        e = expr.subs(params).subs(subs).doit()
        out.append(e)
    return out


def test_the_manufactured_family_solves_its_residuals():
    problem = load_problem(FILE)
    for residual in _residuals_at_exact(problem):  # 1-D: exactly zero
        assert sp.simplify(residual) == 0
    problem2 = load_problem(FILE, d=2, c=0.25)
    xs = problem2.space
    rng = np.random.default_rng(0)
    for residual in _residuals_at_exact(problem2):  # 2-D: zero at random points to 30 digits
        for point in rng.random((3, 2)):
            value = residual.subs(dict(zip(xs, map(sp.Rational, point.round(6))))).evalf(40)
            assert abs(value) < 1e-30
    for k in range(2):
        mass = sp.integrate(problem2.exact["density"][k], (xs[0], 0, 1), (xs[1], 0, 1))
        mean = sp.integrate(problem2.exact["value"][k], (xs[0], 0, 1), (xs[1], 0, 1))
        assert sp.simplify(mass - 1) == 0 and sp.simplify(mean) == 0


class _ExactFields:
    """The closed forms as torch fields of several populations (for the lowered residuals)."""

    def __init__(self, problem):
        xs = problem.space
        self.u = [sp.lambdify(xs, e, "torch") for e in problem.exact["value"]]
        self.m = [sp.lambdify(xs, e, "torch") for e in problem.exact["density"]]

    def _at(self, fn, points):
        out = fn(*points.unbind(-1))
        return out if torch.is_tensor(out) else torch.full_like(points[:, 0], float(out))

    def value(self, points, k):
        return self._at(self.u[k], points)

    def log_density(self, points, k):
        return torch.log(self._at(self.m[k], points))


@pytest.mark.parametrize("d", [1, 2])
def test_the_lowered_residuals_vanish_at_the_exact_solution(d):
    problem = load_problem(FILE, d=d)
    fields = _ExactFields(problem)
    pts = torch.rand(64, d, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    pts.requires_grad_(True)
    by_population = lower_populations(problem)
    caches = by_population[0].caches(pts, fields, create_graph=False)
    for k, res in enumerate(by_population):
        H = problem.exact["constant"][k]
        hjb = res.hjb(pts, caches) + res.constant_coefficient * H
        assert float(hjb.detach().abs().max()) < 1e-12
        assert float(res.fp(pts, caches).detach().abs().max()) < 1e-12
        # the other population's fields enter: a wrong density for it breaks the HJB equation
    wrong = _ExactFields(problem)
    wrong.m = [wrong.m[0], lambda *a: torch.ones_like(a[0])]
    caches = by_population[0].caches(pts.detach().requires_grad_(True), wrong, create_graph=False)
    hjb1 = by_population[0].hjb(caches["u1"].points, caches)
    assert float((hjb1 + problem.exact["constant"][0]).detach().abs().max()) > 1e-2


def test_the_reference_is_second_order_and_reproduces_the_closed_form():
    problem = load_problem(FILE)
    errors = []
    for n in (40, 80):
        ref = reference_solve(problem, grid=n, richardson=False)
        errors.append(compare(ref)["m_rel_l2"])
    assert 1.9 < np.log2(errors[0] / errors[1]) < 2.1
    ref = reference_solve(problem, grid=80)
    c = compare(ref)
    assert ref.info["richardson"] == "applied" and c["m_rel_l2"] < min(1e-6, errors[1] / 100)
    assert c["m_rel_l2"] <= ref.error_estimate["m_rel_l2"]
    assert c["constant_abs"] < 1e-7 and len(ref.constant) == 2


def test_the_reference_keeps_the_populations_apart():
    """Listing the populations the other way round gives the same solution, the other way round;
    and each population's interpolant meets its own grid values (also when evaluated twice)."""
    problem = load_problem(FILE, d=2)
    ref = reference_solve(problem, grid=16, richardson=False)
    swapped = ErgodicMFG(
        problem.domain,
        problem.values[::-1],
        problem.densities[::-1],
        list(problem.constants[::-1]),
        list(problem.hjbs[::-1]),
        list(problem.fps[::-1]),
        params=problem.params,
    )
    other = reference_solve(swapped, grid=16, richardson=False)
    assert np.allclose(other.u[::-1], ref.u, atol=1e-10) and np.allclose(other.m[::-1], ref.m)
    assert np.allclose(other.constant[::-1], ref.constant)
    mesh = np.meshgrid(*ref.grid, indexing="ij")
    nodes = np.stack([a.ravel() for a in mesh], axis=1)
    for _ in range(2):
        m = ref.density(nodes)
        for k in range(2):
            assert np.allclose(m[:, k], ref.m[k].ravel(), atol=1e-10)


def test_a_saved_reference_of_two_populations_loads(tmp_path):
    problem = load_problem(FILE)
    ref = reference_solve(problem, grid=40, richardson=False)
    back = ReferenceSolution.load(ref.save(tmp_path / "ref"), problem=problem)
    assert back.constant == ref.constant and back.u.shape == (2, 40)
    pts = np.array([[0.1], [0.7]])
    assert np.array_equal(back.value(pts), ref.value(pts))
    import json

    meta = json.loads((tmp_path / "ref" / "reference.json").read_text())
    meta["constant"] = meta["constant"][0]
    (tmp_path / "ref" / "reference.json").write_text(json.dumps(meta))
    from mfgsolve.errors import CheckpointError

    with pytest.raises(CheckpointError, match="constant is not a list of 2 numbers"):
        ReferenceSolution.load(tmp_path / "ref", problem=problem)


def test_the_monotone_scheme_is_refused_for_several_populations():
    with pytest.raises(
        SchemeNotApplicable, match="serves one population.*fix: use scheme='generic'"
    ):
        reference_solve(load_problem(FILE), scheme="monotone")


def test_a_short_network_run_learns_both_populations_and_saves(tmp_path):
    problem = load_problem(FILE)
    sol = solve(problem, method="joint", iterations=300, seed=0, progress=False)
    c = compare(sol)
    nodes = np.linspace(0, 1, 256, endpoint=False)[:, None]
    u_exact = np.stack(
        [sp.lambdify(problem.space, e, "numpy")(nodes[:, 0]) for e in problem.exact["value"]], 1
    )
    for k in (1, 2):  # u learned: well below the error of u = 0
        assert c[f"u_l2_{k}"] < 0.1 * np.sqrt(np.mean(u_exact[:, k - 1] ** 2))
        assert c[f"m_rel_l2_{k}"] < 0.1
    assert c["m_rel_l2"] == max(c["m_rel_l2_1"], c["m_rel_l2_2"])
    assert sol.value(nodes).shape == (256, 2) and len(sol.constant) == 2
    mass = sol.density(nodes).mean(axis=0)
    assert np.allclose(mass, 1, atol=1e-4)
    assert {"constant_1", "constant_2", "m_rel_l2_1", "m_rel_l2_2"} <= set(sol.history[-1])
    back = Solution.load(sol.save(tmp_path / "sol"), problem=problem)
    assert back.constant == sol.constant
    assert np.array_equal(back.density(nodes), sol.density(nodes))
    assert back.verdict.reason == sol.verdict.reason


@pytest.mark.parametrize("constant", ["least_squares", "trained"])
def test_a_two_population_run_resumes_bitwise(tmp_path, constant):
    """Interrupted after a checkpoint and resumed, a run of two populations ends bitwise equal
    (with least-squares constants, and with the K constants trained as one tensor)."""
    problem = load_problem(FILE)
    kw = dict(iterations=30, seed=1, progress=False, eval_every=10, checkpoint_every=10)
    kw["constant"] = constant
    full = solve(problem, checkpoint_dir=str(tmp_path / "full"), **kw)

    def crash(record):
        if record["iteration"] == 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        solve(problem, checkpoint_dir=str(tmp_path / "run"), callbacks=[crash], **kw)
    resumed = solve(problem, checkpoint_dir=str(tmp_path / "run"), resume=True, **kw)
    pts = np.linspace(0, 1, 9)[:, None]
    assert np.array_equal(resumed.density(pts), full.density(pts))
    assert np.array_equal(resumed.value(pts), full.value(pts))
    assert resumed.constant == full.constant


def test_the_continuation_is_refused_for_several_populations():
    from mfgsolve.errors import OptionError

    with pytest.raises(OptionError, match="continuation does not apply: the problem has several"):
        solve(load_problem(FILE, nu=0.1), continuation=0.1, iterations=1, progress=False)


@pytest.mark.slow
@pytest.mark.parametrize("d", [1, 2])
def test_the_default_solver_meets_the_two_population_targets(d):
    problem = load_problem(FILE, d=d)
    c = compare(solve(problem, seed=0, progress=False))
    assert c["m_rel_l2"] <= 1e-2 and c["u_rel_l2"] <= 2e-2


# ----- segregation (no closed form: against the reference) ---------------------------------------

SEGREGATION = "problems/segregation_torus.py"


def _overlap(ref) -> float:
    return float(np.sum(ref.quadrature_weights() * ref.m[0] * ref.m[1]))


def test_the_cross_aversion_segregates_the_populations():
    """The reference of the segregation problem: each population keeps away from the other (the
    overlap int m1 m2 drops against the potentials alone), and the two are mirror images (the
    problem is symmetric under x -> x + 1/2 with the populations swapped)."""
    alone = reference_solve(load_problem(SEGREGATION, c=0), grid=100)
    averse = reference_solve(load_problem(SEGREGATION), grid=100)
    assert _overlap(averse) < 0.6 * _overlap(alone) < 0.6
    assert np.allclose(np.roll(averse.m[0], 50), averse.m[1], atol=1e-8)
    assert abs(averse.constant[0] - averse.constant[1]) < 1e-9


def test_the_generic_reference_continues_from_the_guess_where_newton_fails():
    from mfgsolve.reference._generic import GenericErgodicSystem
    from mfgsolve.reference._grid import Grid
    from mfgsolve.reference._newton import newton
    from mfgsolve.reference.errors import ReferenceSolveError

    problem = load_problem(SEGREGATION)
    system = GenericErgodicSystem(problem, Grid(problem.domain, [200]))
    with pytest.raises(ReferenceSolveError):  # plain Newton from the uniform state fails here
        newton(system, system.initial_guess(), label="plain")
    ref = reference_solve(problem, grid=200, richardson=False)
    assert any(h.get("stage") == "homotopy" for h in ref.history)
    fine = reference_solve(problem, grid=400, richardson=False)  # the same state, resolved
    nodes = ref.grid[0][:, None]
    assert np.max(np.abs(ref.density(nodes) - fine.density(nodes))) < 1e-3


@pytest.mark.slow
def test_the_network_finds_the_segregated_state():
    problem = load_problem(SEGREGATION)
    ref = reference_solve(problem)
    assert compare(solve(problem, seed=0, progress=False), ref)["m_rel_l2"] <= 3e-2


# ----- discounted, several populations -------------------------------------------------------


def _discounted_two(rho=0.5):
    """Two discounted populations (rho u_k - nu u_k'' + u_k'^2/2 - ln m_k - m_j/4 = f_k) with a
    manufactured solution whose values have means 1/5 and -1/3 (nothing normalises u)."""
    r, nu = sp.Rational(rho), sp.Rational(1, 10)
    us_star = [
        sp.Rational(1, 5) + sp.sin(2 * sp.pi * x) / 7,
        -sp.Rational(1, 3) + sp.cos(2 * sp.pi * x) / 9,
    ]
    ms_star = [1 + sp.cos(2 * sp.pi * x) / 2, 1 - sp.sin(2 * sp.pi * x) / 3]
    U, M = [u1, u2], [m1, m2]

    def hjb(k, uu, mm):
        return (
            r * uu[k]
            - nu * uu[k].diff(x, 2)
            + uu[k].diff(x) ** 2 / 2
            - sp.log(mm[k])
            - mm[1 - k] / 4
        )

    def fp(k, uu, mm):
        return -nu * mm[k].diff(x, 2) - (mm[k] * uu[k].diff(x)).diff(x)

    return DiscountedMFG(
        Torus([x]),
        U,
        M,
        [hjb(k, U, M) - hjb(k, us_star, ms_star).doit() for k in (0, 1)],
        [fp(k, U, M) - fp(k, us_star, ms_star).doit() for k in (0, 1)],
        exact={u1: us_star[0], u2: us_star[1], m1: ms_star[0], m2: ms_star[1]},
        name="discounted-two",
    )


def test_discounted_populations_have_a_rate_each_and_no_constants():
    problem = _discounted_two()
    assert problem.populations == 2 and problem.discount == (0.5, 0.5) and problem.constants == ()
    hjbs = [u1 - sp.log(m1), u2.diff(x) ** 2 / 2 - sp.log(m2)]
    with pytest.raises(ProblemError, match="does not contain u2\\(x\\) itself.*fix: add the"):
        DiscountedMFG(Torus([x]), [u1, u2], [m1, m2], hjbs, [_fp(u1, m1), _fp(u2, m2)])


def test_the_reference_and_a_short_run_of_discounted_populations(tmp_path):
    problem = _discounted_two()
    ref = reference_solve(problem)
    c = compare(ref)
    assert ref.constant is None and c["m_rel_l2"] < 1e-8 and c["u_rel_l2"] < 1e-8
    assert abs(ref.info["observed_order_m"] - 2) < 0.1
    back = ReferenceSolution.load(ref.save(tmp_path / "ref"), problem=problem)
    assert back.constant is None and np.array_equal(back.u, ref.u)
    sol = solve(problem, method="joint", iterations=300, seed=0, progress=False)
    c = compare(sol)
    assert sol.constant is None and c["u_rel_l2"] < 0.1 and c["m_rel_l2"] < 0.1
    means = sol.value(np.linspace(0, 1, 256, endpoint=False)[:, None]).mean(axis=0)
    assert abs(means[0] - 0.2) < 0.05 and abs(means[1] + 1 / 3) < 0.05  # u is not normalised
    loaded = Solution.load(sol.save(tmp_path / "sol"), problem=problem)
    assert loaded.constant is None
