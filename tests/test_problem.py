"""Problem validation: every listed mistake gives one clear line naming the problem and the fix."""

import math
from pathlib import Path

import pytest
import sympy as sp

from mfgsolve import MFG, Box, ErgodicMFG, Expectation, ProblemError, Torus, load_problem

x, y, t = sp.symbols("x y t")
H, sigma = sp.symbols("H sigma")
u, m = sp.Function("u")(x), sp.Function("m")(x)
ut, mt = sp.Function("u")(t, x), sp.Function("m")(t, x)
HJB = u.diff(x) ** 2 / 2 + sp.sin(2 * sp.pi * x) - sp.log(m) - H
FP = -(m * u.diff(x)).diff(x)


def ergodic(**kw):
    args = dict(domain=Torus([x]), value=u, density=m, constant=H, hjb=HJB, fp=FP, name="p")
    args.update(kw)
    return ErgodicMFG(**args)


def finite(**kw):
    args = dict(
        domain=Torus([x]),
        time=(t, 0, 1),
        value=ut,
        density=mt,
        hjb=-ut.diff(t) + ut.diff(x) ** 2 / 2 - mt,
        fp=mt.diff(t) - (mt * ut.diff(x)).diff(x),
        terminal={ut: sp.cos(2 * sp.pi * x)},
        initial={mt: 1 + sp.sin(2 * sp.pi * x) / 2},
        name="q",
    )
    args.update(kw)
    return MFG(**args)


def test_valid_problems_build():
    p = ergodic(
        exact={
            u: 0,
            m: sp.exp(sp.sin(2 * sp.pi * x)) / sp.besseli(0, 1),
            H: sp.log(sp.besseli(0, 1)),
        }
    )
    assert p.dim == 1 and math.isclose(p.exact["constant"], 0.2359143585, rel_tol=1e-9)
    q = finite()
    assert q.T == 1.0 and q.dim == 1


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(hjb="u'**2/2"), "HJB residual is a string"),
        (dict(hjb=[1, 2]), "hjb is a list of 2 but there is one population"),
        (dict(hjb=sp.Eq(u, 1)), "HJB residual is an equation; fix: write the residual lhs - rhs"),
        (dict(hjb=HJB + sp.Function("v")(x)), "unknown function v\\(x\\)"),
        (dict(fp=-(u.diff(x, 2))), "FP residual does not contain the density"),
        (
            dict(hjb=sp.sin(2 * sp.pi * x) - sp.log(m) - H),
            "HJB residual does not contain the value",
        ),
        (dict(hjb=u.diff(x) ** 2 / 2 - sp.log(m)), "does not contain the ergodic constant"),
        (dict(value=sp.Function("u")(y)), "arguments \\(y,\\) but the coordinates are \\(x,\\)"),
        (
            dict(hjb=HJB + u.diff(x) * sp.Derivative(m, y)),
            "unknown function m\\(x, y\\)|differentiates with respect to y|coordinates",
        ),
        (dict(hjb=HJB + sigma * u.diff(x, 2)), "free symbols without a value: sigma.*params"),
        (dict(hjb=HJB + sigma, params={sigma: "abc"}), "params\\[sigma\\] is not a number"),
        (dict(hjb=HJB + sp.zoo), "nan/zoo/oo"),
        (dict(exact={sp.Function("w")(x): 0}), "exact names w\\(x\\)"),
        (dict(density=u), "value and density are the same function"),
        (dict(constant=x), "constant x is also a coordinate"),
        (dict(domain="torus"), "domain is str, not a Torus, Box or Rd"),
        (dict(constant="H"), "constant 'H' is not a sympy Symbol"),
        (dict(fp=FP + H), "FP residual contains the ergodic constant"),
    ],
)
def test_ergodic_errors(kwargs, pattern):
    with pytest.raises(ProblemError, match=pattern) as info:
        ergodic(**kwargs)
    message = str(info.value)
    assert "\n" not in message and "fix:" in message and message.startswith("problem 'p'")


def test_derivative_in_a_symbol_that_is_not_a_coordinate():
    z = sp.Symbol("z")
    with pytest.raises(ProblemError, match="differentiates with respect to z|free symbols"):
        ergodic(hjb=HJB + sp.Derivative(u, z), params={})


@pytest.mark.parametrize(
    "make, pattern",
    [
        (lambda: Box([x], [(1, 0)]), "need lo < hi"),
        (lambda: Box([x, y], [(0, 1)]), "2 symbols but 1 bounds"),
        (lambda: Box([x], [(0, "a")]), "not a number"),
        (lambda: Box([x], [(0, 1)], boundary="dirichlet"), "unknown Box boundary"),
        (lambda: Torus([]), "empty Torus domain"),
        (lambda: Torus([x], lengths=[-1]), "lengths must be > 0"),
        (lambda: Torus(["x"]), "not a sympy Symbol"),
        (lambda: Torus([x, x]), "repeated symbols"),
    ],
)
def test_domain_errors(make, pattern):
    with pytest.raises(ProblemError, match=pattern):
        make()


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(terminal=None), "no terminal condition"),
        (dict(initial=None), "no initial condition"),
        (dict(time=(t, 0, 0)), "horizon T=0.0 is not after"),
        (dict(time=(t, 0, -1)), "not after the initial time"),
        (dict(time=(x, 0, 1)), "time symbol x is also a space coordinate"),
        (dict(initial={mt: sp.sin(2 * sp.pi * x)}), "initial density is negative"),
        (dict(initial={mt: -1}), "initial density -1 is negative"),
        (dict(terminal={mt: 0}), "terminal condition names m"),
        (dict(value=u), "arguments \\(x,\\) but the coordinates are \\(t, x\\)"),
    ],
)
def test_finite_horizon_errors(kwargs, pattern):
    with pytest.raises(ProblemError, match=pattern) as info:
        finite(**kwargs)
    assert "fix:" in str(info.value)


def test_every_problem_kind_is_a_problem():
    from mfgsolve.fbsde import FBSDE
    from mfgsolve.problem import Problem

    assert issubclass(FBSDE, Problem) and FBSDE.kind == "fbsde"
    for p, kind in ((ergodic(), "ergodic"), (finite(), "finite_horizon")):
        assert isinstance(p, Problem) and p.kind == kind and p.dim == 1 and p.name


def test_unknown_evaluated_elsewhere_points_to_expectation():
    # m(t, x + 1/2) is a nonlocal term written as a shifted unknown: the message says how to
    # write it with Expectation (supported), not that nonlocal terms are unsupported
    shifted = sp.Function("m")(t, x + sp.Rational(1, 2))
    with pytest.raises(ProblemError) as info:
        finite(hjb=-ut.diff(t) + ut.diff(x) ** 2 / 2 - shifted)
    msg = str(info.value)
    assert msg.startswith("problem 'q': HJB residual evaluates m(t, x + 1/2) at (t, x + 1/2)")
    assert "not supported" not in msg and "plain unknown" not in msg
    assert "Expectation(phi, m(t, x))" in msg and "Expectation(K, m(t, x), y)" in msg
    assert "\n" not in msg
    # and the advice works: both forms build
    finite(hjb=-ut.diff(t) + ut.diff(x) ** 2 / 2 - Expectation(sp.cos(2 * sp.pi * x), mt))
    finite(hjb=-ut.diff(t) + ut.diff(x) ** 2 / 2 - Expectation(sp.cos(x - y), mt, y))


def test_from_hamiltonian_builds_the_seed_residuals():
    p1 = ErgodicMFG.from_hamiltonian(
        Torus([x]),
        u,
        m,
        H,
        hamiltonian=sp.Symbol("p") ** 2 / 2 + sp.sin(2 * sp.pi * x),
        momenta=[sp.Symbol("p")],
        coupling=sp.log(m),
        viscosity=0,
    )
    assert sp.simplify(p1.hjb - HJB) == 0
    assert sp.simplify(p1.fp - FP.doit()) == 0
    assert p1.hamiltonian_form is not None


def test_from_hamiltonian_finite_horizon_adds_time_derivatives():
    p = sp.Symbol("p")
    q = MFG.from_hamiltonian(
        Torus([x]),
        (t, 0, 1),
        ut,
        mt,
        hamiltonian=p**2 / 2,
        momenta=[p],
        coupling=mt,
        viscosity=sp.Rational(1, 10),
        terminal={ut: 0},
        initial={mt: 1},
    )
    expected_hjb = -ut.diff(t) - ut.diff(x, 2) / 10 + ut.diff(x) ** 2 / 2 - mt
    assert sp.simplify(q.hjb - expected_hjb) == 0
    assert sp.simplify(q.fp - (mt.diff(t) - mt.diff(x, 2) / 10 - (mt * ut.diff(x)).diff(x))) == 0


def _write(tmp_path, text, name="prob.py"):
    path = tmp_path / name
    path.write_text(text)
    return path


HEADER = "import sympy as sp\nfrom mfgsolve import ErgodicMFG, Torus\nx = sp.Symbol('x')\nu, m = sp.Function('u')(x), sp.Function('m')(x)\nH = sp.Symbol('H')\n"


@pytest.mark.parametrize(
    "body, pattern",
    [
        (
            "problem = ErgodicMFG(Torus([x]), u, m, H, u.diff(x)**2 - sp.log(m) - H, -(m*u.diff(x)).diff(x)\n",
            "syntax error",
        ),
        (
            "problem = ErgodicMFG(Torus([x]), u, m, H, u.diff(x)**2 - log(m) - H, -(m*u.diff(x)).diff(x))\n",
            ":6: NameError: name 'log' is not defined; fix: define it",
        ),
        ("something = 1\n", "defines no `problem`"),
        ("problem = 42\n", "`problem` is a int, not an ErgodicMFG"),
        (
            "problem = ErgodicMFG(Torus([x]), u, m, H, u.diff(x)**2 - sp.log(m), -(m*u.diff(x)).diff(x))\n",
            "does not contain the ergodic constant",
        ),
    ],
)
def test_load_problem_errors_name_the_file(tmp_path, body, pattern):
    path = _write(tmp_path, HEADER + body)
    with pytest.raises(ProblemError, match=pattern) as info:
        load_problem(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_load_problem_missing_file(tmp_path):
    with pytest.raises(ProblemError, match="no such problem file"):
        load_problem(tmp_path / "nope.py")


def test_load_problem_names_unnamed_problem_after_file(tmp_path):
    path = _write(
        tmp_path,
        HEADER
        + "problem = ErgodicMFG(Torus([x]), u, m, H, u.diff(x)**2/2 - sp.log(m) - H, -(m*u.diff(x)).diff(x))\n",
        "my_game.py",
    )
    assert load_problem(path).name == "my-game"


@pytest.mark.parametrize("which", ["value", "density"])
@pytest.mark.parametrize("kind", ["ergodic", "finite_horizon"])
def test_from_hamiltonian_refuses_an_unknown_not_applied_to_the_coordinates(kind, which):
    """sp.Function("u") itself (not u(x)): the usual one-line error, before any differentiation
    (it used to fail inside sympy with "First variable cannot be a number")."""
    p = sp.Symbol("p")
    coords = "x" if kind == "ergodic" else "t, x"
    unknowns = {"value": ut if kind != "ergodic" else u, "density": mt if kind != "ergodic" else m}
    unknowns[which] = sp.Function("u" if which == "value" else "m")
    common = dict(hamiltonian=p**2 / 2, momenta=[p], coupling=unknowns["density"], name="h")
    with pytest.raises(ProblemError) as info:
        if kind == "ergodic":
            ErgodicMFG.from_hamiltonian(
                Torus([x]), unknowns["value"], unknowns["density"], H, **common
            )
        else:
            MFG.from_hamiltonian(
                Torus([x]),
                (t, 0, 1),
                unknowns["value"],
                unknowns["density"],
                terminal={ut: 0},
                initial={mt: 1},
                **common,
            )
    msg = str(info.value)
    assert msg.startswith(f"problem 'h': {which} ") and "\n" not in msg
    assert "not an unknown function applied to the coordinates" in msg
    assert f"fix: apply it to the coordinates: {which}={unknowns[which]}({coords})" in msg


def test_from_hamiltonian_unknown_with_other_arguments_is_named():
    p = sp.Symbol("p")
    with pytest.raises(
        ProblemError, match=r"value u\(y\) has arguments \(y,\) but the coordinates"
    ):
        ErgodicMFG.from_hamiltonian(
            Torus([x]), sp.Function("u")(y), m, H, hamiltonian=p**2 / 2, momenta=[p], coupling=m
        )


def test_unknown_setting_of_a_family_suggests_the_nearest(tmp_path):
    family = Path(__file__).resolve().parent.parent / "problems" / "ergodic_torus_nd.py"
    with pytest.raises(
        ProblemError, match=r"unknown setting\(s\) \['ampltude'\]; fix: did you mean 'amplitude'\?"
    ):
        load_problem(family, ampltude=0.5)
    with pytest.raises(
        ProblemError, match=r"unknown setting\(s\) \['zzz'\]; fix: use some of \['amplitude', 'd'\]"
    ):
        load_problem(family, zzz=1)
