"""Box faces: walls, periodic axes and exits (doors). Validation in one line, the manufactured exit
family checked symbolically, the reference against its closed forms (order 2, the exit's ghost
values, doors), mass and exit times, and the network solver on a box with exits."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
import torch

from mfgsolve import (
    MFG,
    Box,
    DiscountedMFG,
    ErgodicMFG,
    Exit,
    ProblemError,
    compare,
    load_problem,
    reference_solve,
    solve,
)
from mfgsolve._mass import exit_summary, exit_time
from mfgsolve.metrics._integrals import exact_functions
from mfgsolve.metrics.exits import mass_over_time
from mfgsolve.nn.layers import InputMap

pytestmark = pytest.mark.usefixtures("one_thread")

FILE = "problems/exit_box.py"
t, x, y, p, q = sp.symbols("t x y p q")


# ----- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("boundary", "message"),
    [
        (lambda: {(x, 0.5): "exit"}, r"key \(x, 0.5\) is not a face: x runs over \[0, 1\]"),
        (lambda: {(x, 1): "periodic"}, "'periodic' is given for the face x = 1 alone"),
        (lambda: {x: "periodic", y: "periodic"}, "a Box periodic in every axis is a Torus"),
        (lambda: "periodic", "a Box periodic in every axis is a Torus"),
        (lambda: {(x, 1): Exit(x)}, "depends on x, the coordinate normal to the face"),
        (lambda: {(x, 1): Exit(0, where=y > 2)}, r"\(y > 2\) holds at no point of the face"),
        (lambda: {(x, 1): "exitt"}, "unknown Box boundary 'exitt'.*did you mean 'exit'"),
        (lambda: {x: "exit", (x, 0): "neumann"}, "the face x = 0 is given twice"),
        (lambda: 5, "Box boundary 5 is not a name or a dict"),
        (lambda: {sp.Symbol("z"): "exit"}, "key z is neither a coordinate of the box nor a face"),
        (
            lambda: {(x, 1): Exit(0, where=sp.Symbol("a") < y)},
            r"has symbols \['a'\] besides the face's coordinates",
        ),
        (lambda: {(x, 1): Exit(0, where=y)}, "Exit where=y is not a condition"),
        (lambda: {(x, 1): Exit("0")}, "not strings"),
        (lambda: {(x, 1): Exit(y < 1)}, "Exit value y < 1 is not a formula"),
        (lambda: {(x, 1): Exit(0, where=sp.false)}, "empty door"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_a_bad_boundary_is_one_line_naming_the_fix(boundary, message):
    with pytest.raises(ProblemError, match=message) as info:
        Box([x, y], [(0, 1), (0, 1)], boundary=boundary())
    text = str(info.value)
    assert "; fix: " in text and "\n" not in text


def test_a_door_on_a_one_dimensional_face_is_refused():
    with pytest.raises(ProblemError, match="a face of a 1-D box is a point; fix: drop where"):
        Box([x], [(0, 1)], boundary={(x, 1): Exit(0, where=x > 0)})


def test_faces_periodic_axes_and_exits_are_read_from_the_boundary():
    door = Exit(1, where=sp.Abs(x - sp.Rational(1, 2)) < sp.Rational(1, 4))
    box = Box([x, y], [(0, 1), (-1, 2)], boundary={x: "periodic", (y, 2): door})
    assert box.periodic_axes == (True, False)
    assert [(f.axis, f.side, f.position) for f in box.faces] == [(1, 0, -1.0), (1, 1, 2.0)]
    assert [f.condition for f in box.faces] == ["neumann", door]
    assert [f.label for f in box.exits] == ["y = 2"]
    assert box.has_walls  # the door leaves a wall on the rest of its face
    assert not Box([x], [(0, 1)], boundary={x: "exit"}).has_walls
    assert Box([x], [(0, 1)]).conditions == (("neumann", "neumann"),)


def _viscous(domain, nu=0.1, time=(t, 0, 1), m0=1):
    u, m = sp.Function("u")(t, *domain.symbols), sp.Function("m")(t, *domain.symbols)
    return MFG.from_hamiltonian(
        domain,
        time,
        u,
        m,
        hamiltonian=sum(s**2 for s in (p, q)[: domain.dim]) / 2,
        momenta=(p, q)[: domain.dim],
        coupling=m,
        viscosity=nu,
        terminal={u: 0},
        initial={m: m0},
        name="exit-test",
    )


def test_exits_are_refused_for_stationary_problems_in_one_line():
    u, m, H = sp.Function("u")(x), sp.Function("m")(x), sp.Symbol("H")
    box = Box([x], [(0, 1)], boundary={(x, 1): "exit"})
    hjb, fp = u.diff(x, 2) + u.diff(x) ** 2 / 2 - sp.log(m), m.diff(x, 2) + (m * u.diff(x)).diff(x)
    with pytest.raises(ProblemError, match="lets mass leave, so a stationary problem"):
        ErgodicMFG(box, u, m, H, hjb - H, fp)
    with pytest.raises(ProblemError, match="lets mass leave, so a stationary problem"):
        DiscountedMFG(box, u, m, hjb - u, fp)


def test_an_exit_needs_diffusion_across_its_face():
    with pytest.raises(ProblemError, match="no second derivative of u in x; fix: add viscosity"):
        _viscous(Box([x], [(0, 1)], boundary={(x, 1): "exit"}), nu=0)
    # diffusion only along the face does not count: an anisotropic FP without d^2/dx^2
    box = Box([x, y], [(0, 1), (0, 1)], boundary={(x, 1): "exit"})
    u, m = sp.Function("u")(t, x, y), sp.Function("m")(t, x, y)
    with pytest.raises(ProblemError, match="FP residual has no second derivative of m in x"):
        MFG(
            box,
            (t, 0, 1),
            u,
            m,
            hjb=-u.diff(t) - u.diff(x, 2) - u.diff(y, 2),
            fp=m.diff(t) - m.diff(y, 2) - m.diff(x),
            terminal={u: 0},
            initial={m: 1},
        )


def test_an_exit_value_in_other_symbols_is_refused():
    box = Box([x], [(0, 1)], boundary={(x, 1): Exit(sp.Symbol("c"))})
    with pytest.raises(ProblemError, match=r"has symbols \['c'\] besides the face's coordinates"):
        _viscous(box)


# ----- the manufactured family, symbolically -------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [{"d": 1}, {"d": 2}, {"d": 2, "y": "periodic"}],
    ids=["1d", "2d-walls", "2d-periodic"],
)
def test_the_manufactured_exit_solution_meets_its_boundary_conditions(settings):
    problem = load_problem(FILE, **settings)
    u_s, m_s = (sp.sympify(problem.exact[f]) for f in ("value", "density"))
    xs = problem.space
    (exit_face,) = problem.domain.exits
    b = exit_face.condition.value
    assert sp.simplify(u_s.subs(xs[0], 1) - b) == 0  # u = the exit cost on the exit
    assert sp.simplify(m_s.subs(xs[0], 1)) == 0  # m absorbed
    assert sp.simplify(u_s.diff(xs[0]).subs(xs[0], 0)) == 0  # the wall x = 0
    assert sp.simplify(m_s.diff(xs[0]).subs(xs[0], 0)) == 0
    if len(xs) == 2:
        if settings.get("y") == "periodic":
            for f in (u_s, m_s):
                assert sp.simplify(f.subs(xs[1], 1) - f.subs(xs[1], 0)) == 0
        else:
            for f in (u_s, m_s):
                for wall in (0, 1):
                    assert sp.simplify(f.diff(xs[1]).subs(xs[1], wall)) == 0
    mass0 = sp.integrate(m_s.subs(t, 0), *((v, 0, 1) for v in xs))
    assert sp.simplify(mass0 - 1) == 0
    # the residuals vanish at the chosen solution (30 digits at random points)
    subs = {problem.value: u_s, problem.density: m_s}
    rng = np.random.default_rng(0)
    for residual in (problem.hjb, problem.fp):
        r = residual.subs(subs).doit()
        for pt in rng.integers(1, 1000, (3, 1 + len(xs))):
            val = r.subs({v: sp.Rational(int(c), 1000) for v, c in zip((t, *xs), pt)}).evalf(30)
            assert abs(val) < 1e-20


# ----- the reference ---------------------------------------------------------------------------


def test_the_exit_reference_converges_at_second_order_to_the_closed_form():
    problem = load_problem(FILE)
    errors = []
    for n in (32, 64):
        ref = reference_solve(problem, grid=n, time_steps=n, richardson=False)
        errors.append((compare(ref)["m_rel_l2"], compare(ref)["u_l2"]))
    assert errors[1][0] < 1e-4
    for k in range(2):
        assert 1.8 < np.log2(errors[0][k] / errors[1][k]) < 2.2, errors


def test_the_reference_interpolates_the_boundary_values_on_the_exit():
    """Evaluated on the exit face, the reference's u is the exit cost b(t) and its m is 0 (the
    ghost values beyond the exit are reflected about them); a wall keeps the mirror."""
    problem = load_problem(FILE)
    ref = reference_solve(problem, grid=64, time_steps=64, richardson=False)
    times = np.linspace(0.1, 1, 7)
    on_exit = np.column_stack([times, np.ones_like(times)])
    assert np.max(np.abs(ref.density(on_exit))) < 1e-3
    assert np.max(np.abs(ref.value(on_exit) - np.sin(times) / 4)) < 1e-3
    u_ex, m_ex, _ = exact_functions(problem)
    near = np.column_stack([times, np.full_like(times, 0.995)])
    assert np.max(np.abs(ref.density(near) - m_ex(near))) < 1e-4


def test_an_exit_over_the_whole_face_equals_a_door_that_covers_it():
    whole = _viscous(Box([x, y], [(0, 1), (0, 1)], boundary={(y, 1): Exit(0)}))
    door = _viscous(Box([x, y], [(0, 1), (0, 1)], boundary={(y, 1): Exit(0, where=sp.Abs(x) < 2)}))
    a = reference_solve(whole, grid=8, time_steps=8, richardson=False)
    b = reference_solve(door, grid=8, time_steps=8, richardson=False)
    assert np.array_equal(a.m, b.m) and np.array_equal(a.u, b.u)


def test_a_door_lets_out_less_than_the_whole_face_and_keeps_its_symmetry():
    half = _viscous(
        Box(
            [x, y],
            [(0, 1), (0, 1)],
            boundary={(y, 1): Exit(0, where=sp.Abs(x - sp.Rational(1, 2)) < sp.Rational(1, 4))},
        )
    )
    whole = _viscous(Box([x, y], [(0, 1), (0, 1)], boundary={(y, 1): Exit(0)}))
    a = reference_solve(half, grid=16, time_steps=16, richardson=False)
    b = reference_solve(whole, grid=16, time_steps=16, richardson=False)
    assert 0 < a.info["mass_left"] < b.info["mass_left"]
    assert np.allclose(a.m, a.m[:, ::-1, :], atol=1e-12)  # the door is symmetric about x = 1/2


def test_a_door_between_the_nodes_of_the_grid_is_refused_in_one_line():
    problem = _viscous(
        Box([x, y], [(0, 1), (0, 1)], boundary={(y, 1): Exit(0, where=sp.Abs(x - 0.5) < 0.01)})
    )
    with pytest.raises(ProblemError, match="holds at no boundary node of the 8x8 grid"):
        reference_solve(problem, grid=8, time_steps=8, richardson=False)


def test_a_box_with_a_periodic_axis_solves_as_the_torus_along_it():
    """A problem that does not depend on y, on a box periodic in y, is the 1-D problem."""
    plane = _viscous(Box([x, y], [(0, 1), (0, 1)], boundary={y: "periodic", (x, 1): "exit"}))
    line = _viscous(Box([x], [(0, 1)], boundary={(x, 1): "exit"}))
    a = reference_solve(plane, grid=(16, 4), time_steps=16, richardson=False)
    b = reference_solve(line, grid=16, time_steps=16, richardson=False)
    assert np.allclose(a.m[:, :, 0], b.m, rtol=1e-10, atol=1e-12)
    assert np.allclose(a.m[:, :, 0], a.m[:, :, 3], rtol=1e-12, atol=1e-14)


# ----- mass and exit times -----------------------------------------------------------------------


def test_the_exit_time_interpolates_the_mass_curve():
    times = np.linspace(0, 1, 11)
    mass = 1 - times  # linear: the fraction q has left at t = q
    assert exit_time(times, mass, 0.5) == pytest.approx(0.5)
    assert exit_time(times, mass, 0.93) == pytest.approx(0.93)
    assert np.isnan(exit_time(times, 1 - times / 2, 0.9))
    summary = exit_summary(times, np.stack([mass, 1 - times / 2]))
    assert summary["exit_time_50"] == pytest.approx(1.0)  # the later population's
    assert summary["mass_left"] == pytest.approx(0.5)  # the smaller share


def test_the_mass_over_time_is_the_integral_of_the_closed_form():
    problem = load_problem(FILE)
    _u, m_ex, _ = exact_functions(problem)
    times = np.linspace(0, 1, 5)
    m_s = sp.sympify(problem.exact["density"])
    exact = [float(sp.integrate(m_s.subs(t, tk), (x, 0, 1))) for tk in times]
    assert np.allclose(mass_over_time(m_ex, problem, times), exact, rtol=1e-10)
    ref = reference_solve(problem, grid=64, time_steps=64, richardson=False)
    assert ref.info["mass_left"] == pytest.approx(1 - exact[-1], rel=1e-3)  # O(h^2), h = 1/64
    metrics = compare(ref)
    assert metrics["mass_left_exact"] == pytest.approx(1 - exact[-1], rel=1e-10)


# ----- networks ----------------------------------------------------------------------------------


def test_the_input_map_is_periodic_along_the_periodic_axis_of_a_box():
    box = Box([x, y], [(0, 1), (0, 2)], boundary={y: "periodic"})
    inputs = InputMap(box, (0.0, 1.0), harmonics=2)
    assert inputs.out_features == 1 + 4 + 1  # time, (cos, sin) x 2 harmonics of y, x
    pts = torch.tensor([[0.3, 0.2, 0.0], [0.3, 0.2, 2.0], [0.3, 0.7, 0.0]], dtype=torch.float64)
    feats = inputs(pts)
    assert torch.allclose(feats[0], feats[1]) and not torch.allclose(feats[0], feats[2])


def test_a_short_network_run_with_an_exit_keeps_mass_one_at_the_start_and_loses_it():
    problem = load_problem(FILE)
    sol = solve(problem, iterations=40, seed=0, progress=False)
    times = np.array([0.0, 0.5, 1.0])
    mass = mass_over_time(sol.density, problem, times)
    assert mass[0] == pytest.approx(1.0, abs=1e-5)  # m0 of mass 1 (its floor included)
    assert mass[2] < mass[1] < mass[0]
    metrics = compare(sol)
    assert np.isfinite(metrics["m_rel_l2"]) and "exit_time_50_exact" in metrics


class _Fields:
    """A result made of functions (for the verdict's exit check)."""

    def __init__(self, problem, value, density):
        self.problem, self.value, self.density = problem, value, density


def test_the_verdicts_exit_check_passes_the_closed_form_and_fails_a_violated_exit():
    from mfgsolve.metrics.verdict import _exit_errors

    problem = load_problem(FILE, d=2)
    u_ex, m_ex, _ = exact_functions(problem)
    nodes = np.random.default_rng(0).random((256, 2))
    times = np.linspace(0, 1, 5)
    good = _exit_errors(_Fields(problem, u_ex, m_ex), nodes, times)
    assert good["exit_u_relative"] < 1e-12 and good["exit_m_relative"] < 1e-12

    def lifted(pts):  # the value 0.2 too high near the exit x = 1
        return u_ex(pts) + 0.2 * np.exp(-((1 - pts[:, 1]) ** 2) / 0.01)

    def leaking(pts):  # a density that does not vanish on the exit
        return m_ex(pts) + 0.2

    bad_u = _exit_errors(_Fields(problem, lifted, m_ex), nodes, times)
    bad_m = _exit_errors(_Fields(problem, u_ex, leaking), nodes, times)
    assert bad_u["exit_u_relative"] > 0.05 and bad_u["exit_m_relative"] < 1e-12
    assert bad_m["exit_m_relative"] > 0.05


def test_walls_beside_an_exit_are_exact_by_construction_face_by_face():
    """The evacuation room: the side walls and the floor are walls throughout (exact), the top
    face has a door (its wall part keeps the loss). Both networks have zero normal derivatives on
    the exact walls for t > t0 (the density's exit layer reads m0 on the flattened coordinates,
    and its distance to the door is flat at the floor; the door's smoothed edge reaches the side
    walls with the tail of its sigmoid, ~4e-7 here); on the door's face they do not."""
    from mfgsolve.nn import build_networks, exact_walls_obstacle
    from mfgsolve.options import SolverOptions

    problem = load_problem("problems/evacuation_room_2d.py")
    assert exact_walls_obstacle(problem) is None
    opts = SolverOptions.build(problem, {})
    assert opts.network.walls == "exact"
    torch.manual_seed(0)
    value, density = build_networks(problem, opts, "cpu", torch.float64)
    rng = np.random.default_rng(0)
    n = 64
    t_ = 0.05 + 1.9 * rng.random(n)
    s = rng.random(n)
    faces = {
        "x = 0": np.column_stack([t_, np.zeros(n), s]),
        "x = 1": np.column_stack([t_, np.ones(n), s]),
        "y = 0": np.column_stack([t_, s, np.zeros(n)]),
        "y = 1": np.column_stack([t_, s, np.ones(n)]),
    }
    normal = {"x = 0": 1, "x = 1": 1, "y = 0": 2, "y = 1": 2}
    for label, pts in faces.items():
        p_ = torch.tensor(pts, requires_grad=True)
        for net, exact in ((value, 1e-12), (density, 1e-6)):
            (grad,) = torch.autograd.grad(net(p_).sum(), p_)
            dn = grad[:, normal[label]].abs().max().item()
            if label == "y = 1":
                assert dn > 1e-3, (label, dn)
            else:
                assert dn < exact, (label, dn)


def test_one_sided_wall_flattening_has_zero_slope_at_its_wall_only():
    from mfgsolve.nn import wall_flattening

    ell = torch.tensor(0.05, dtype=torch.float64)
    for a, b in ((0.5, None), (None, 2.0)):
        x = torch.tensor([0.5, 2.0], dtype=torch.float64, requires_grad=True)
        (slope,) = torch.autograd.grad(wall_flattening(x, a, b, ell).sum(), x)
        wall = 0 if a is not None else 1
        assert abs(float(slope[wall])) < 1e-12 and abs(float(slope[1 - wall]) - 1) < 1e-6


def test_the_density_vanishes_on_an_exit_by_construction_after_t0():
    """An initial density positive on the exit (m0 = 2 - x) is taken to 0 there by the exit
    layer for t > t0, with the wall opposite built exactly (m0 read through the wall's
    flattening on both sides of the ratio m0(exit) / m0(x)); at t0 it is m0."""
    from mfgsolve.nn import build_networks
    from mfgsolve.options import SolverOptions

    problem = _viscous(Box([x], [(0, 1)], boundary={(x, 1): "exit"}), m0=2 - x)
    opts = SolverOptions.build(problem, {})
    assert opts.network.walls == "exact"
    torch.manual_seed(0)
    _value, density = build_networks(problem, opts, "cpu", torch.float64)
    times = torch.tensor([0.1, 0.5, 1.0], dtype=torch.float64)
    on_exit = torch.stack([times, torch.ones(3, dtype=torch.float64)], 1)
    inside = torch.stack([times, torch.full((3,), 0.5, dtype=torch.float64)], 1)
    with torch.no_grad():
        assert torch.all(torch.exp(density(on_exit)) < 1e-20 * torch.exp(density(inside)))
        start = torch.tensor([[0.0, 0.3], [0.0, 0.999]], dtype=torch.float64)  # (1 itself: 0)
        m0 = (2 - start[:, 1]) / 1.5  # mass 1
        assert torch.allclose(torch.exp(density(start)), m0, rtol=1e-5)


def test_the_exit_layer_drains_the_door_and_leaves_the_rest_of_its_face_a_wall():
    """On the evacuation room's top face at t > t0 the exit layer's factor is ~0 in the door
    (|x - 1/2| < 1/8) and ~1 beside it, wherever the door is (not moved by the walls'
    flattening); the door's edges are smoothed over delta = 1/50, so the points are 4 delta or
    more inside or outside."""
    from mfgsolve.nn import build_networks
    from mfgsolve.options import SolverOptions

    problem = load_problem("problems/evacuation_room_2d.py")
    opts = SolverOptions.build(problem, {})
    _value, density = build_networks(problem, opts, "cpu", torch.float64)
    xs = torch.tensor([0.45, 0.5, 0.55, 0.1, 0.25, 0.75, 0.9], dtype=torch.float64)
    for t_ in (0.3, 1.0, 2.0):
        pts = torch.stack([torch.full_like(xs, t_), xs, torch.ones_like(xs)], 1)
        factor = torch.exp(density.exit_layer(pts, density._flattened))
        assert torch.all(factor[:3] < 0.03), factor
        assert torch.all(factor[3:] > 0.99), factor
