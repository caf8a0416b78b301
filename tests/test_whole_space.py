"""The whole space R^d (``Rd``): domain validation, importance-sampled integrals and errors
against closed forms, the FP residual divided by m, the networks' built-in decay, the refusals,
and a small solve against the closed form of problems/lq_ergodic_rd.py."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
import torch

from mfgsolve import MFG, ErgodicMFG, Rd, Torus, compare, load_problem, reference_solve, solve
from mfgsolve.errors import OptionError, ProblemError
from mfgsolve.lowering.residuals import relative_fp
from mfgsolve.metrics.whole_space import replicate_summary, whole_space_errors
from mfgsolve.nn.layers import EnvelopeDensityNetwork, GrowingValueNetwork
from mfgsolve.options import SolverOptions
from mfgsolve.sampling import GaussianSampler, gaussian_quadrature

ROOT = Path(__file__).resolve().parents[1]
LQ = ROOT / "problems" / "lq_ergodic_rd.py"


# ----- the domain ---------------------------------------------------------------------------
def test_rd_per_axis_center_and_scale():
    x, y = sp.symbols("x y")
    domain = Rd([x, y], center=[1, -2], scale=0.5)
    assert domain.center == (1.0, -2.0) and domain.scale == (0.5, 0.5)
    assert np.allclose(domain.lower, [-1, -4]) and np.allclose(domain.upper, [3, 0])
    assert domain.exits == () and not domain.periodic


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(scale=0), "Rd scale must be > 0"),
        (dict(scale=[1, 2, 3]), "Rd has 2 symbols but 3 values of scale"),
        (dict(center=[0]), "Rd has 2 symbols but 1 values of center"),
        (dict(center="middle"), "Rd center and scale must be numbers"),
        (dict(scale=float("inf")), "Rd scale is not finite"),
    ],
)
def test_rd_errors_are_one_line(kwargs, message):
    x, y = sp.symbols("x y")
    with pytest.raises(ProblemError) as info:
        Rd([x, y], **kwargs)
    assert message in str(info.value) and "fix:" in str(info.value)
    assert "\n" not in str(info.value)


# ----- integrals by importance sampling -------------------------------------------------------
def _gaussian_l2_distance_squared(var_a: float, var_b: float, d: int) -> float:
    """int (N(0, a I) - N(0, b I))^2 dx, exactly: int N_a N_b = (2 pi (a + b))^(-d/2)."""

    def cross(a: float, b: float) -> float:
        return (2 * math.pi * (a + b)) ** (-d / 2)

    return cross(var_a, var_a) + cross(var_b, var_b) - 2 * cross(var_a, var_b)


@pytest.mark.parametrize("d", [1, 3, 10])
def test_quadrature_integrates_a_gaussian_of_another_mean_and_scale(d):
    rng = np.random.default_rng(d)
    mean, scale = rng.normal(size=d), np.exp(rng.normal(scale=0.1, size=d))
    q = gaussian_quadrature(d, 2**14, seed=1).mapped(torch.tensor(mean), torch.tensor(scale))
    x = q.nodes.numpy()
    # a Gaussian with the same mean and 1.1x the scale: its integral is 1
    s2 = (1.1 * scale) ** 2
    log_g = -0.5 * np.sum((x - mean) ** 2 / s2, axis=1) - 0.5 * np.sum(np.log(2 * np.pi * s2))
    total = np.exp(np.logaddexp.reduce(q.log_w.numpy() + log_g))
    assert abs(total - 1) < 2e-2 * math.sqrt(d)


@pytest.mark.parametrize("d", [1, 10, 100])
def test_m_error_against_the_closed_form_l2_distance_of_two_gaussians(d):
    """m_rel_l2 of N(0, a I) against N(0, I) is known exactly; d = 100 needs log-densities."""
    a = 1.0 + 0.2 / math.sqrt(d)
    q = gaussian_quadrature(d, 2**15, seed=3, factors=(2**-0.5, 1.0))
    z = q.z.numpy()
    log_ref = -0.5 * np.sum(z**2, axis=1) - 0.5 * d * math.log(2 * math.pi)
    log_m = -0.5 * np.sum(z**2, axis=1) / a - 0.5 * d * math.log(2 * math.pi * a)
    got = whole_space_errors(None, log_m, None, log_ref, q.log_w.numpy())["m_rel_l2"]
    exact = math.sqrt(_gaussian_l2_distance_squared(a, 1.0, d) / (4 * math.pi) ** (-d / 2))
    assert got == pytest.approx(exact, rel=2e-2)


def test_u_error_ignores_the_constant_and_weighs_by_the_reference_density():
    q = gaussian_quadrature(2, 2**14, seed=0)
    z = q.z.numpy()
    log_ref = -0.5 * np.sum(z**2, axis=1) - math.log(2 * math.pi)
    u_ref = np.sum(z**2, axis=1) / 2
    same = whole_space_errors(u_ref + 7.0, log_ref, u_ref, log_ref, q.log_w.numpy())
    assert same["u_l2"] < 1e-12
    # u = u_ref + 0.1 z_1: under N(0, I) the error is 0.1 * std(z_1) = 0.1, |u_ref - E u_ref| = 1
    tilted = whole_space_errors(u_ref + 0.1 * z[:, 0], log_ref, u_ref, log_ref, q.log_w.numpy())
    assert tilted["u_l2"] == pytest.approx(0.1, rel=2e-2)
    assert tilted["u_rel_l2"] == pytest.approx(0.1, rel=3e-2)


def test_replicates_where_the_weights_collapse_onto_one_node_drop_the_relative_u_error():
    # far in R^100 every weight but one underflows: u* has no spread on the rule, so one
    # replicate has no u_rel_l2; the summary keeps what all replicates have
    q = gaussian_quadrature(2, 256, seed=0)
    z = q.z.numpy()
    u_ref = np.sum(z**2, axis=1) / 2
    log_ref = -0.5 * np.sum(z**2, axis=1)
    collapsed = np.full_like(log_ref, -1e4)
    collapsed[0] = 0.0
    degenerate = whole_space_errors(u_ref + 0.1, log_ref, u_ref, collapsed, q.log_w.numpy())
    assert "u_l2" in degenerate and "u_rel_l2" not in degenerate
    good = whole_space_errors(u_ref + 0.1 * z[:, 0], log_ref, u_ref, log_ref, q.log_w.numpy())
    mean, se = replicate_summary([good, degenerate, good])
    assert "u_rel_l2" not in mean and "u_rel_l2" not in se
    assert mean["u_l2"] == pytest.approx((2 * good["u_l2"] + degenerate["u_l2"]) / 3)
    assert se["u_l2"] > 0 and set(se) == {"m_rel_l2", "u_l2"}


def test_sampler_is_reproducible_and_covers_the_narrower_shell():
    a = GaussianSampler(50, 512, torch.Generator().manual_seed(4)).sample()
    b = GaussianSampler(50, 512, torch.Generator().manual_seed(4)).sample()
    assert torch.equal(a, b)
    radius = a.norm(dim=1) / math.sqrt(50)
    # the mass of m^2 lies at 1/sqrt(2) of m's radius: some points must be there
    assert (radius < 0.8).any() and (radius > 1.1).any()


# ----- the FP residual divided by m -----------------------------------------------------------
def _lq(d: int = 2):
    return load_problem(LQ, d=d)


def test_relative_fp_equals_fp_over_m_at_arbitrary_functions():
    """FP / m computed symbolically from derivatives of log m, against the FP of concrete
    functions divided by m (an independent evaluation)."""
    problem = _lq(2)
    x1, x2 = problem.domain.symbols
    quotient, logs = relative_fp(problem.fps[0], problem)
    (log_fn,) = logs
    u_fn = sp.sin(x1) * x2 + x1**2
    log_m = -(x1**2) / 3 - x2**2 + x1 * x2 / 5
    direct = (
        problem.fps[0].subs({problem.value: u_fn, problem.density: sp.exp(log_m)}).doit()
    ) / sp.exp(log_m)
    via_logs = quotient.subs({problem.value: u_fn, log_fn: log_m}).doit()
    f = sp.lambdify((x1, x2), direct - via_logs)
    for p in np.random.default_rng(0).normal(size=(5, 2)):
        assert abs(float(f(*p))) < 1e-10


def test_relative_fp_keeps_a_source_divided_by_m():
    """A manufactured FP (linear in m plus a source s(x)) is affine: FP / m = ... + s / m."""
    x, y = sp.symbols("x y")
    u, m = sp.Function("u")(x, y), sp.Function("m")(x, y)
    H = sp.Symbol("H")
    fp = -(m.diff(x, 2) + m.diff(x, y)) / 2 - (m * u.diff(y)).diff(y) - sp.exp(-(x**2)) * y
    problem = ErgodicMFG(
        domain=Rd([x, y]),
        value=u,
        density=m,
        constant=H,
        hjb=(u.diff(x) ** 2 + u.diff(y) ** 2) / 2 - (x**2 + y**2) / 2 - sp.log(m) - H,
        fp=fp,
    )
    quotient, logs = relative_fp(problem.fps[0], problem)
    (log_fn,) = logs
    u_fn, log_m = sp.cos(x) * y**2, -(x**2) / 2 - y**2 / 3 + x * y / 7
    direct = fp.subs({u: u_fn, m: sp.exp(log_m)}).doit() / sp.exp(log_m)
    via_logs = quotient.subs({u: u_fn, log_fn: log_m}).doit()
    f = sp.lambdify((x, y), direct - via_logs)
    for p in np.random.default_rng(1).normal(size=(5, 2)):
        assert abs(float(f(*p))) < 1e-9


def test_relative_fp_refuses_a_residual_not_linear_in_m():
    x = sp.Symbol("x")
    u, m = sp.Function("u")(x), sp.Function("m")(x)
    H = sp.Symbol("H")
    problem = ErgodicMFG(
        domain=Rd([x]),
        value=u,
        density=m,
        constant=H,
        hjb=u.diff(x) ** 2 / 2 - x**2 / 2 - sp.log(m) - H,
        fp=-((m**2 * u.diff(x)).diff(x)),
    )
    with pytest.raises(ProblemError, match="affine in m"):
        relative_fp(problem.fps[0], problem)


# ----- the networks ---------------------------------------------------------------------------
def test_envelope_network_normaliser_matches_a_grid_integral():
    """log Z by importance sampling from the envelope against a fine grid in 2-D."""
    from mfgsolve.nn.layers import InputMap, make_body

    x, y = sp.symbols("x y")
    domain = Rd([x, y], center=[0.5, -0.5], scale=[1.0, 0.7])
    torch.manual_seed(0)
    net = EnvelopeDensityNetwork(
        InputMap(domain), make_body("mlp", 2, 16, 2, "tanh"), domain.center, domain.scale
    ).double()
    mean, scale = net.reference()
    assert torch.allclose(mean, torch.tensor(domain.center, dtype=torch.float64))
    q = gaussian_quadrature(2, 2**14, seed=0).mapped(mean, scale)
    with torch.no_grad():
        log_z = float(net.log_normalizer(q.nodes, q.log_w))
        g = np.linspace(-8, 8, 801)
        X, Y = np.meshgrid(g, g, indexing="ij")
        pts = torch.tensor(np.stack([X.ravel(), Y.ravel()], axis=1))
        grid = float(torch.logsumexp(net(pts), 0)) + 2 * math.log(g[1] - g[0])
    assert log_z == pytest.approx(grid, abs=5e-3)


def test_value_network_grows_and_is_bounded_below():
    from mfgsolve.nn.layers import InputMap, make_body

    x = sp.Symbol("x")
    domain = Rd([x])
    torch.manual_seed(0)
    net = GrowingValueNetwork(
        InputMap(domain), make_body("mlp", 1, 8, 2, "tanh"), domain.center, domain.scale
    ).double()
    with torch.no_grad():
        u = net(torch.tensor([[-100.0], [0.0], [100.0]], dtype=torch.float64))
    assert u[0] > u[1] + 100 and u[2] > u[1] + 100


# ----- the problem family ----------------------------------------------------------------------
def _assert_closed_form_solves_the_residuals(problem) -> None:
    """problem.exact substituted into the HJB and FP residuals, at normal points: < 1e-9."""
    ex = problem.exact
    sub = {
        problem.value: ex["value"],
        problem.density: ex["density"],
        problem.constant: ex["constant"],
    }
    xs = problem.domain.symbols
    points = np.random.default_rng(problem.dim).normal(size=(6, problem.dim))
    for expr in (problem.hjbs[0], problem.fps[0]):
        f = sp.lambdify(xs, expr.subs(sub).doit())
        assert max(abs(float(f(*p))) for p in points) < 1e-9


@pytest.mark.parametrize("d", [1, 3, 8])
def test_lq_closed_form_solves_the_residuals(d):
    problem = _lq(d)
    _assert_closed_form_solves_the_residuals(problem)


def test_lq_family_rejects_a_bad_dimension():
    with pytest.raises(ValueError, match="d must be an integer from 1 to 256"):
        _lq(0)


# ----- refusals ---------------------------------------------------------------------------------
def test_reference_solver_refuses_rd_in_one_line():
    with pytest.raises(ProblemError, match="posed on Rd") as info:
        reference_solve(_lq(1))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "method, options, message",
    [
        ("minmax", {}, "min-max game needs uniform collocation points"),
        ("adversarial", {"sampling": "density"}, "collocation points follow"),
    ],
)
def test_solver_refuses_what_rd_does_not_support(method, options, message):
    with pytest.raises(OptionError, match=message):
        SolverOptions.build(_lq(1), options, method=method)


def test_finite_horizon_on_rd_is_refused_by_the_network_solver():
    t, x = sp.symbols("t x")
    u, m = sp.Function("u")(t, x), sp.Function("m")(t, x)
    problem = MFG(
        domain=Rd([x]),
        time=(t, 0, 1),
        value=u,
        density=m,
        hjb=-u.diff(t) - u.diff(x, 2) / 2 + u.diff(x) ** 2 / 2,
        fp=m.diff(t) - m.diff(x, 2) / 2 - (m * u.diff(x)).diff(x),
        terminal={u: x**2 / 2},
        initial={m: sp.exp(-(x**2) / 2) / sp.sqrt(2 * sp.pi)},
    )
    with pytest.raises(OptionError, match="finite-horizon problems on a Torus or Box"):
        SolverOptions.build(problem, {})


def test_compare_refuses_user_points_on_rd():
    sol = solve(_lq(1), method="joint", iterations=2, seed=0, progress=False, eval_every=1)
    with pytest.raises(ProblemError, match="without points="):
        compare(sol, points=np.zeros((3, 1)))


# ----- solving ----------------------------------------------------------------------------------
def test_joint_solve_in_2d_meets_the_closed_form():
    sol = solve(_lq(2), method="joint", iterations=300, seed=0, progress=False)
    errors = compare(sol)
    assert errors["m_rel_l2"] < 3e-2 and errors["u_rel_l2"] < 5e-2
    assert errors["m_rel_l2_se"] < 1e-3 and errors["constant_abs"] < 5e-3
    assert sol.converged
    # the envelope moved towards the exact mean c = (1, 1) / sqrt(2)
    mean, _ = sol.fields()[1].reference()
    assert float(mean.mean()) > 0.2


def test_same_seed_same_numbers():
    runs = [solve(_lq(2), iterations=20, seed=3, progress=False, eval_every=10) for _ in range(2)]
    assert runs[0].history == [
        {**h, "seconds": runs[0].history[i]["seconds"]} for i, h in enumerate(runs[1].history)
    ]


def test_torus_problems_keep_their_networks():
    """The decay is built in on Rd only (a torus keeps plain networks)."""
    x = sp.Symbol("x")
    u, m = sp.Function("u")(x), sp.Function("m")(x)
    H = sp.Symbol("H")
    problem = ErgodicMFG(
        domain=Torus([x]),
        value=u,
        density=m,
        constant=H,
        hjb=u.diff(x) ** 2 / 2 - sp.log(m) - H,
        fp=-((m * u.diff(x)).diff(x)),
    )
    sol = solve(problem, method="joint", iterations=2, seed=0, progress=False)
    assert not hasattr(sol.fields()[1], "reference")


@pytest.mark.parametrize("d", [1, 3, 6])
def test_quartic_family_closed_form_solves_the_residuals_with_mass_one(d):
    """problems/unseen/rd_quartic_nd.py: non-Gaussian, non-separable; its Z (a radial quadrature
    in the file) against plain importance sampling from N(0, I)."""
    problem = load_problem(ROOT / "problems" / "unseen" / "rd_quartic_nd.py", d=d)
    _assert_closed_form_solves_the_residuals(problem)
    z = np.random.default_rng(0).normal(size=(400_000, d))
    log_q = -0.5 * np.sum(z**2, axis=1) - 0.5 * d * math.log(2 * math.pi)
    m = sp.lambdify(problem.domain.symbols, problem.exact["density"])(*z.T)
    assert np.mean(m / np.exp(log_q)) == pytest.approx(1.0, abs=1e-2)
