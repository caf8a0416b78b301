"""Finite-horizon solver: exact terminal/initial data, per-time normalisation, lowering, training."""

import json
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
import torch

from mfgsolve import MFG, Box, Solution, Torus, compare, load_problem, solve
from mfgsolve.lowering import DerivativeCache
from mfgsolve.lowering.space_time import SpaceTimeFields, evaluate_residuals, lower_finite_horizon
from mfgsolve.metrics import errors_over_time
from mfgsolve.nn import build_networks, exact_walls_obstacle, wall_flattening
from mfgsolve.options import SolverOptions
from mfgsolve.plotting import figures
from mfgsolve.problem import ProblemError
from mfgsolve.train import Trainer

ROOT = Path(__file__).resolve().parent.parent
FH1 = load_problem(ROOT / "problems" / "fh_torus_1d.py")
BOX1 = load_problem(ROOT / "problems" / "fh_box_1d.py")


pytestmark = pytest.mark.usefixtures("one_thread")


def _nets(problem, dtype=torch.float64, seed=0, **options):
    torch.manual_seed(seed)
    opts = SolverOptions.build(problem, options)
    return build_networks(problem, opts, "cpu", dtype)


@pytest.mark.parametrize("time_feature", ["linear", "sqrt"])
@pytest.mark.parametrize("problem", [FH1, BOX1], ids=["torus", "box"])
def test_terminal_initial_mass_and_positivity_hold_by_construction(problem, time_feature):
    value, density = _nets(problem, time_feature=time_feature)  # random weights: nothing trained
    lo, hi = problem.domain.lower[0], problem.domain.upper[0]
    xs = np.linspace(lo, hi, 4001)
    g = sp.lambdify(problem.domain.symbols, problem.terminal, "numpy")
    m0 = sp.lambdify(problem.domain.symbols, problem.initial, "numpy")
    pts_T = torch.as_tensor(np.c_[np.full_like(xs, problem.T), xs])
    np.testing.assert_allclose(value(pts_T).detach().numpy(), g(xs), atol=1e-12)
    pts_0 = torch.as_tensor(np.c_[np.full_like(xs, problem.t0), xs])
    m_at_0 = torch.exp(density(pts_0)).detach().numpy()
    mass0 = np.trapezoid(np.broadcast_to(m0(xs), xs.shape), xs)
    np.testing.assert_allclose(m_at_0, m0(xs) / mass0, rtol=1e-6)
    for t in (0.13, 0.5, 0.97):
        pts = torch.as_tensor(np.c_[np.full_like(xs, t), xs])
        m = torch.exp(density(pts)).detach().numpy()
        assert m.min() > 0
        # mass by an independent fine trapezoid rule (the network uses 128 nodes)
        assert abs(np.trapezoid(m, xs) - 1) < 1e-6


def test_time_derivative_of_normalised_log_density_matches_finite_differences():
    _, density = _nets(FH1, seed=3)
    xs = np.array([0.1, 0.4, 0.77])
    t, h = 0.4, 1e-5
    pts = torch.as_tensor(np.c_[np.full(3, t), xs]).requires_grad_(True)
    cache = DerivativeCache(pts, density(pts))
    d_t = cache((0,)).detach().numpy()
    with torch.no_grad():
        plus = density(torch.as_tensor(np.c_[np.full(3, t + h), xs])).numpy()
        minus = density(torch.as_tensor(np.c_[np.full(3, t - h), xs])).numpy()
    np.testing.assert_allclose(d_t, (plus - minus) / (2 * h), rtol=1e-6, atol=1e-8)


class _ExactFields:
    """u and log m of a problem's closed-form solution as torch functions (for the lowering)."""

    def __init__(self, problem):
        coords = tuple(problem.value.args)
        self._u = sp.lambdify(coords, problem.exact["value"], "torch")
        self._logm = sp.lambdify(coords, sp.log(problem.exact["density"]), "torch")

    def value(self, p):
        return self._u(*p.T) + 0 * p[:, 0]

    def log_density(self, p):
        return self._logm(*p.T) + 0 * p[:, 0]


@pytest.mark.parametrize(
    "name", ["fh_torus_1d", "fh_box_1d", "manufactured_fh_torus_1d", "manufactured_fh_torus_2d"]
)
def test_lowered_residuals_vanish_at_the_exact_solution(name):
    problem = load_problem(ROOT / "problems" / f"{name}.py")
    res = lower_finite_horizon(problem)
    rng = np.random.default_rng(0)
    lo, hi = problem.domain.lower, problem.domain.upper
    pts = np.c_[
        rng.uniform(problem.t0, problem.T, 64), lo + (hi - lo) * rng.random((64, problem.dim))
    ]
    pts = torch.as_tensor(pts).requires_grad_(True)
    caches = res.caches(pts, _ExactFields(problem))
    assert float(res.hjb(pts, caches).detach().abs().max()) < 1e-9
    assert float(res.fp(pts, caches).detach().abs().max()) < 1e-9
    # and they do not vanish for a wrong density (the check can fail)
    wrong = _ExactFields(problem)
    wrong.log_density = lambda p: 0 * p[:, 0]
    assert float(res.fp(pts, res.caches(pts, wrong)).detach().abs().max()) > 1e-2


def test_box_boundary_residuals_are_neumann_and_no_flux():
    res = lower_finite_horizon(BOX1)
    walls = torch.as_tensor(
        [[0.3, 0.0], [0.8, 1.0], [0.5, 0.0]], dtype=torch.float64
    ).requires_grad_(True)
    caches = res.caches(walls, _ExactFields(BOX1))
    assert float(res.neumann[0](walls, caches).detach().abs().max()) < 1e-12
    assert float(res.flux[0](walls, caches).detach().abs().max()) < 1e-12
    inside = torch.as_tensor([[0.3, 0.3]], dtype=torch.float64).requires_grad_(True)
    caches = res.caches(inside, _ExactFields(BOX1))
    assert float(res.neumann[0](inside, caches).detach().abs()) > 1e-3  # u_x != 0 off the walls


def test_problem_errors_are_one_line_problem_errors():
    t, x, p = sp.symbols("t x p")
    u, m = sp.Function("u")(t, x), sp.Function("m")(t, x)
    box = MFG(
        Box([x], [(0, 1)]),
        (t, 0, 1),
        u,
        m,
        hjb=-u.diff(t) + u.diff(x) ** 2 / 2 - m,
        fp=m.diff(t) - (m * u.diff(x)).diff(x),
        terminal={u: 0},
        initial={m: 1},
        name="box-generic",
    )
    # written as raw residuals, a box has no flux to take: its walls are du/dx = 0, dm/dx = 0
    walls = lower_finite_horizon(box)
    assert walls.neumann[0].label == "Neumann[x]" and walls.flux[0].label == "Neumann[m, x]"
    wave = MFG(
        Torus([x]),
        (t, 0, 1),
        u,
        m,
        hjb=-u.diff(t) + u.diff(x) ** 2 / 2 - m,
        fp=m.diff(t, 2) - m.diff(x, 2),
        terminal={u: 0},
        initial={m: 1},
        name="wave",
    )
    with pytest.raises(ProblemError, match="second time derivative"):
        lower_finite_horizon(wave)
    vanishing = MFG.from_hamiltonian(
        Torus([x]),
        (t, 0, 1),
        u,
        m,
        hamiltonian=p**2 / 2,
        momenta=[p],
        coupling=m,
        terminal={u: 0},
        initial={m: sp.sin(sp.pi * x) ** 2},
        name="vanishing-m0",
    )
    with pytest.raises(ProblemError, match="not positive") as info:
        solve(vanishing, iterations=1, progress=False)
    assert "\n" not in str(info.value)
    with pytest.raises(ProblemError, match="hutchinson_probes applies only.*of ergodic problems"):
        solve(FH1, iterations=1, hutchinson_probes=8, progress=False)


def test_each_player_steps_only_its_own_parameters_in_space_time():
    opts = SolverOptions.build(FH1, {"iterations": 1, "ema": 0, "batch_size": 64})
    trainer = Trainer(FH1, opts, 0, "cpu", torch.float32)
    st = trainer.init_state()
    u0 = [q.detach().clone() for q in st.value_net.parameters()]
    f0 = [q.detach().clone() for q in st.density_net.parameters()]
    loss = trainer.losses(st, ("fp",), ("u",))["fp"]
    trainer._step(st.optimizers[1], loss, list(st.density_net.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(u0, st.value_net.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(f0, st.density_net.parameters()))


def test_short_adversarial_run_learns_and_reports_endpoint_errors(tmp_path):
    sol = solve(FH1, iterations=150, batch_size=256, seed=0, progress=False, eval_every=50)
    first, last = sol.history[0], sol.history[-1]
    assert last["m_rel_l2"] < 0.05 and last["m_rel_l2"] < first["m_rel_l2"]
    assert last["u_l2"] < 0.03
    assert sol.constant is None
    out = compare(sol)
    # exact by construction: the initial density and the terminal value
    assert out["m_rel_l2_initial"] < 1e-5 and out["u_l2_final"] < 1e-5
    assert out["m_rel_l2"] == pytest.approx(last["m_rel_l2"], rel=0.3)
    assert np.isfinite(out["hjb_residual"]) and np.isfinite(out["fp_residual"])
    sol.save(tmp_path / "run")
    back = Solution.load(tmp_path / "run", problem=FH1)
    pts = np.c_[np.linspace(0, 1, 7), np.linspace(0, 0.9, 7)]
    np.testing.assert_allclose(back.density(pts), sol.density(pts), rtol=1e-6)
    np.testing.assert_allclose(back.value(pts), sol.value(pts), rtol=1e-6)
    paths = figures(sol, None, tmp_path / "figs")
    assert {p.name for p in paths} == {"spacetime.png", "error_vs_time.png", "history.png"}
    assert all(p.stat().st_size > 10_000 for p in paths)
    errs = errors_over_time(sol, times=5)
    assert errs["m_rel_l2"][0] < 1e-5 and errs["u_l2"][-1] < 1e-5


def test_joint_baseline_and_box_boundary_losses_run():
    sol = solve(
        BOX1, method="joint", iterations=60, batch_size=128, seed=1, progress=False, walls="loss"
    )
    assert sol.info["method"] == "joint"
    assert sol.history[-1]["m_rel_l2"] < 0.2


def test_box_losses_in_one_pass_equal_the_losses_written_out():
    """The wall points share the batch's derivative pass; the losses equal the interior residuals
    from a separate pass plus the Neumann and no-flux terms written out by hand for fh_box_1d
    (H = p^2/2 + V: flux = -nu m_x - m u_x)."""
    opts = SolverOptions.build(
        BOX1,
        {"iterations": 1, "batch_size": 64, "boundary_weight": 3.0, "walls": "loss"},
        method="joint",
    )
    trainer = Trainer(BOX1, opts, 0, "cpu", torch.float64)
    form = trainer.formulation
    st = trainer.init_state()
    with torch.no_grad():  # move the networks away from their initial (nearly flat) state
        for q in list(st.value_net.parameters()) + list(st.density_net.parameters()):
            q.add_(0.3 * torch.randn_like(q))
    points, _ = form.batch(st)
    rng = st.sampler.generator.get_state()
    got = form.losses(st, points, ("hjb", "fp"), ())
    st.sampler.generator.set_state(rng)
    wall_points, exits = form._face_points(st, points)
    assert exits == []  # (no exit on this box)
    walls = torch.cat([p for _axis, p in wall_points]).requires_grad_(True)
    interior = evaluate_residuals(form.residuals, st.value_net, st.density_net, points)
    u = st.value_net(walls)
    m = torch.exp(st.density_net(walls))
    (u_x,) = torch.autograd.grad(u.sum(), walls, create_graph=True)
    (m_x,) = torch.autograd.grad(m.sum(), walls, create_graph=True)
    u_x, m_x = u_x[:, 1], m_x[:, 1]
    nu = 0.2
    neumann = (m.detach() * 1.0 * u_x**2).mean()  # weight m |domain|, |domain| = 1
    flux = ((-nu * m_x - m * u_x) ** 2).mean()
    want_hjb = (interior["hjb"] ** 2).mean() + 3.0 * neumann
    want_fp = (interior["fp"] ** 2).mean() + 3.0 * flux
    assert float(neumann.detach()) > 1e-4 and float(flux.detach()) > 1e-4
    assert torch.allclose(got["hjb"], want_hjb, rtol=1e-10)
    assert torch.allclose(got["fp"], want_fp, rtol=1e-10)
    # gradients in the parameters agree too (the merged pass keeps the graph)
    params = list(st.density_net.parameters())
    g_got = torch.autograd.grad(got["fp"], params, retain_graph=True)
    g_want = torch.autograd.grad(want_fp, params)
    for a, b in zip(g_got, g_want):
        assert torch.allclose(a, b, rtol=1e-8, atol=1e-12)


def test_residuals_without_the_normaliser_time_derivative_agree_where_it_is_not_needed():
    """The HJB player's step skips d log Z / dt (its residual has no m_t): same HJB residual;
    the FP residual, which has m_t, still gets it."""
    opts = SolverOptions.build(BOX1, {"iterations": 1, "batch_size": 64})
    trainer = Trainer(BOX1, opts, 0, "cpu", torch.float64)
    st = trainer.init_state()
    form = trainer.formulation
    points, _ = form.batch(st)
    both = evaluate_residuals(form.residuals, st.value_net, st.density_net, points)
    hjb_only = evaluate_residuals(
        form.residuals, st.value_net, st.density_net, points, frozen=("m",), which=("hjb",)
    )
    assert torch.allclose(both["hjb"], hjb_only["hjb"], rtol=1e-12, atol=1e-12)
    fields = SpaceTimeFields(st.value_net, st.density_net, time_derivative=False)
    caches = form.residuals.caches(points, fields)
    wrong_fp = form.residuals.fp(points, caches, [])
    assert not torch.allclose(both["fp"], wrong_fp, rtol=1e-6)  # m_t needs the normaliser's


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, target",
    [("lq_mean_1d", 2e-2), ("manufactured_fh_torus_1d", 1e-2)],
)
def test_default_adversarial_run_meets_the_accuracy_target(name, target):
    problem = load_problem(ROOT / "problems" / f"{name}.py")
    out = compare(solve(problem, seed=0, progress=False))
    assert out["m_rel_l2"] <= target and out["u_rel_l2"] <= target


def test_time_feature_is_checked():
    with pytest.raises(ProblemError, match="time_feature applies only to finite-horizon"):
        SolverOptions.build(
            load_problem(ROOT / "problems" / "ergodic_torus_1d.py"), {"time_feature": "sqrt"}
        )
    with pytest.raises(ProblemError, match="time_feature must be"):
        SolverOptions.build(FH1, {"time_feature": "cubic"})


def test_defaults_depend_on_the_kind_of_problem():
    ergodic = SolverOptions.build(load_problem(ROOT / "problems" / "ergodic_torus_1d.py"), {})
    assert (ergodic.optimiser.lr, ergodic.network.time_feature) == (2e-3, None)
    fh = SolverOptions.build(FH1, {})
    assert (fh.optimiser.lr, fh.network.time_feature) == (4e-3, "sqrt")
    given = SolverOptions.build(FH1, {"lr": 1e-3, "time_feature": "linear"})
    assert (given.optimiser.lr, given.network.time_feature) == (1e-3, "linear")
    with pytest.raises(ProblemError, match="lr must be a positive number"):
        SolverOptions.build(FH1, {"lr": -1.0})


def test_a_solution_saved_before_time_feature_existed_loads_with_the_linear_input(tmp_path):
    sol = solve(FH1, seed=0, progress=False, iterations=2, time_feature="linear", eval_every=1)
    sol.save(tmp_path)
    meta_file = tmp_path / "solution.json"
    meta = json.loads(meta_file.read_text())
    del meta["info"]["options"]["time_feature"]
    meta_file.write_text(json.dumps(meta))
    loaded = Solution.load(tmp_path, FH1)
    pts = np.array([[0.3, 0.2], [0.7, 0.9]])
    np.testing.assert_array_equal(loaded.value(pts), sol.value(pts))
    np.testing.assert_array_equal(loaded.density(pts), sol.density(pts))


CROWD = load_problem(ROOT / "problems" / "crowd_box_2d.py")


def test_wall_flattening_has_zero_slope_at_both_walls_and_tends_to_the_identity():
    x = torch.linspace(0.5, 2.0, 301, dtype=torch.float64, requires_grad=True)
    for width in (0.05, 0.3, 1.0):
        ell = torch.tensor(width, dtype=torch.float64)
        sigma = wall_flattening(x, 0.5, 2.0, ell)
        (slope,) = torch.autograd.grad(sigma.sum(), x)
        assert abs(float(sigma[0].detach()) - 0.5) < 1e-15
        assert abs(float(slope[0])) < 1e-12 and abs(float(slope[-1])) < 1e-12
        assert bool((slope[1:-1] > 0).all())  # one-to-one
        assert float(sigma.detach().max()) <= 2.0
    ell = torch.tensor(1e-8, dtype=torch.float64)
    assert float((wall_flattening(x, 0.5, 2.0, ell) - x).detach().abs().max()) < 1e-7


@pytest.mark.parametrize("problem", [BOX1, CROWD], ids=["box-1d", "crowd-2d"])
def test_exact_walls_hold_by_construction(problem):
    """walls='exact' (the default where it applies): du/dn = 0 and d(log m)/dn = 0 on every wall
    (so no flux, as dH/dp_n = 0 there) at t > t0, and still m(t0) = m0."""
    opts = SolverOptions.build(problem, {})
    assert opts.network.walls == "exact"
    value, density = _nets(problem)
    d = problem.dim
    gen = torch.Generator().manual_seed(0)
    base = torch.rand(64, 1 + d, generator=gen, dtype=torch.float64)
    for t in (1e-3, 0.4, 1.0):
        for i, (lo, hi) in enumerate(problem.domain.bounds):
            for wall in (lo, hi):
                pts = base.clone()
                pts[:, 0] = t
                pts[:, 1 + i] = float(wall)
                pts.requires_grad_(True)
                (du,) = torch.autograd.grad(value(pts).sum(), pts)
                (dlogm,) = torch.autograd.grad(density(pts).sum(), pts)
                assert float(du[:, 1 + i].abs().max()) < 1e-10
                assert float(dlogm[:, 1 + i].abs().max()) < 1e-10
    start = base.clone()
    start[:, 0] = problem.t0
    lo = torch.tensor([float(a) for a, _ in problem.domain.bounds], dtype=torch.float64)
    hi = torch.tensor([float(b) for _, b in problem.domain.bounds], dtype=torch.float64)
    start[:, 1:] = lo + (hi - lo) * start[:, 1:]
    with torch.no_grad():
        log_m = density(start)
        log_m0 = density.log_initial(start) - torch.logsumexp(
            density.log_initial(
                torch.cat([torch.zeros(len(density.nodes), 1).double(), density.nodes], 1)
            )
            + density.log_weights,
            0,
        )
    assert float((log_m - log_m0).abs().max()) < 1e-6


def test_exact_walls_are_used_only_where_they_apply():
    lq = load_problem(ROOT / "problems" / "lq_mean_1d.py")
    assert "drift through the walls" in exact_walls_obstacle(lq)
    assert SolverOptions.build(lq, {}).network.walls == "loss"
    with pytest.raises(ProblemError, match="walls='exact' does not apply: dH/dp does not vanish"):
        SolverOptions.build(lq, {"walls": "exact"})
    with pytest.raises(
        ProblemError, match="walls applies only to finite-horizon problems on a Box"
    ):
        SolverOptions.build(FH1, {"walls": "exact"})
    with pytest.raises(ProblemError, match="walls must be"):
        SolverOptions.build(BOX1, {"walls": "reflecting"})
    t, x, p = sp.symbols("t x p")
    u, m = sp.Function("u")(t, x), sp.Function("m")(t, x)
    sloped = MFG.from_hamiltonian(
        Box([x], [(0, 1)]),
        (t, 0, 1),
        u,
        m,
        hamiltonian=p**2 / 2,
        momenta=[p],
        coupling=m,
        viscosity=sp.Rational(1, 10),
        terminal={u: x},
        initial={m: 1},
        name="sloped-terminal",
    )
    assert "terminal cost has a non-zero normal derivative" in exact_walls_obstacle(sloped)
    assert SolverOptions.build(sloped, {}).network.walls == "loss"
