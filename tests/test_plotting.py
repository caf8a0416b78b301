"""Figures read without the text: no empty axes, every axes labelled, errors drawn against what is
known (the reference when given, else the exact solution), the continuation's viscosity on its own
axis, one legend entry per grid in the reference's Newton panel.

The solutions are stand-ins (closed-form u and m with a small error, a fixed training history), so
the figures are deterministic and nothing is trained; the references are real (small grids)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from mfgsolve import ErgodicMFG, Torus, load_problem, reference_solve
from mfgsolve.metrics._integrals import known_solution
from mfgsolve.plotting import _figure, figures, panels, populations, reference_figures, space_time

ROOT = Path(__file__).resolve().parent.parent
PROBLEMS = ROOT / "problems"


def _seed_without_exact() -> ErgodicMFG:
    """The seed problem (first order, so trained with the viscosity continuation), no ``exact``."""
    x = sp.Symbol("x")
    u, m = sp.Function("u")(x), sp.Function("m")(x)
    H = sp.Symbol("H")
    return ErgodicMFG(
        domain=Torus([x]),
        value=u,
        density=m,
        constant=H,
        hjb=u.diff(x) ** 2 / 2 + sp.sin(2 * sp.pi * x) - sp.log(m) - H,
        fp=-(m * u.diff(x)).diff(x),
        name="seed-no-exact",
    )


def _history(errors: bool, viscosity: bool = True) -> list[dict]:
    """A training history as the ergodic trainer records it (every 10 iterations)."""
    out = []
    for k, it in enumerate((10, 20, 30, 40)):
        h = {
            "iteration": it,
            "loss_hjb": 1e-2 / (k + 1),
            "loss_fp": 2e-2 / (k + 1),
            "hjb_residual": 3e-2 / (k + 1),
            "fp_residual": 4e-2 / (k + 1),
        }
        if viscosity:
            h["viscosity"] = 0.05 * 0.5**k
        if errors:
            h.update(u_l2=1e-2 / (k + 1), m_rel_l2=2e-2 / (k + 1))
        out.append(h)
    return out


def problem_functions(problem):
    """The problem's exact u and m as functions of points."""
    u, m, _ = known_solution(problem)
    return u, m


class StandIn:
    """A solution: u and m given as functions of points, a fixed history."""

    kind = "network"
    constant = 0.2

    def __init__(self, problem, value, density, history):
        self.problem, self._u, self._m, self.history = problem, value, density, history
        self.info = {"method": "stand-in"}

    def value(self, points):
        return self._u(np.asarray(points, dtype=float))

    def density(self, points):
        return self._m(np.asarray(points, dtype=float))


def _seed_like(problem, history) -> StandIn:
    """Close to the seed's solution u = 0, m = exp(sin 2 pi x) / I0(1) (in any dimension)."""

    def m(p):
        return (
            np.exp(np.sin(2 * np.pi * p[:, 0]))
            / np.i0(1.0)
            * (1 + 0.02 * np.cos(2 * np.pi * p[:, 0]))
        )

    return StandIn(problem, lambda p: 0.01 * np.sin(2 * np.pi * p[:, 0]), m, history)


@pytest.fixture
def drawn(monkeypatch):
    """The figures as they are saved, by file name (the PNGs are still written)."""
    figs: dict[str, object] = {}

    def keep(fig, path, dpi=110):
        figs[Path(path).name] = fig
        return _figure.save(fig, path, dpi=dpi)

    monkeypatch.setattr(panels, "save", keep)
    monkeypatch.setattr(space_time, "save", keep)
    monkeypatch.setattr(populations, "save", keep)
    return figs


def _is_colorbar(ax) -> bool:
    return ax.get_label() == "<colorbar>"


def _is_twin(ax) -> bool:
    return not ax.xaxis.get_visible()


def assert_readable(fig) -> None:
    """Every axes draws something and is labelled; no placeholder text; no blank row or column."""
    assert fig.axes
    used: dict[object, tuple[set, set]] = {}
    for ax in fig.axes:
        if not (_is_colorbar(ax) or _is_twin(ax)):
            spec = ax.get_subplotspec()
            rows, cols = used.setdefault(spec.get_gridspec(), (set(), set()))
            rows.update(spec.rowspan)
            cols.update(spec.colspan)
    for grid, (rows, cols) in used.items():
        assert rows == set(range(grid.nrows)) and cols == set(range(grid.ncols)), (
            "a blank row/column"
        )
    for ax in fig.axes:
        what = f"axes {ax.get_title()!r} ({ax.get_ylabel()!r})"
        assert ax.lines or ax.images or ax.collections, f"{what} is empty"
        assert ax.get_ylabel(), f"{what} has no y label"
        assert not ax.texts, f"{what} holds text {[t.get_text() for t in ax.texts]}"
        if not (_is_colorbar(ax) or _is_twin(ax)):
            assert ax.get_title(), f"{what} has no title"
            assert ax.get_xlabel(), f"{what} has no x label"


def _panels(fig) -> dict[str, object]:
    """The main axes of a figure by title."""
    return {ax.get_title(): ax for ax in fig.axes if not (_is_colorbar(ax) or _is_twin(ax))}


def _written(paths, names) -> None:
    assert {p.name for p in paths} == set(names)
    assert all(p.stat().st_size > 10_000 for p in paths)


def test_panels_without_exact_or_reference_leave_the_error_panels_out(tmp_path, drawn):
    sol = _seed_like(_seed_without_exact(), _history(errors=False))
    _written(figures(sol, None, tmp_path), ["panels.png"])
    fig = drawn["panels.png"]
    assert_readable(fig)
    assert set(_panels(fig)) == {"value u", "density m", "HJB residual", "FP residual"}
    assert [ln.get_label() for ln in _panels(fig)["value u"].lines] == ["network"]


def test_panels_draw_pointwise_errors_against_the_reference(tmp_path, drawn):
    problem = _seed_without_exact()
    ref = reference_solve(problem, grid=64)
    sol = _seed_like(problem, _history(errors=False))
    _written(figures(sol, ref, tmp_path), ["panels.png"])
    fig = drawn["panels.png"]
    assert_readable(fig)
    by_title = _panels(fig)
    assert set(by_title) == {
        "value u",
        "density m",
        "pointwise error of u (vs reference)",
        "pointwise error of m (vs reference)",
        "HJB residual",
        "FP residual",
    }
    assert "reference" in fig.get_suptitle()
    assert [ln.get_label() for ln in by_title["density m"].lines] == ["network", "reference"]
    # the curves are |u - u_ref| and |m - m_ref| / max m_ref at the plotted points
    (line,) = by_title["pointwise error of u (vs reference)"].lines
    xs, err = line.get_data()
    pts = xs[:, None]
    expected = np.abs(sol.value(pts) - ref.value(pts))  # (zeros drawn at a floor: log scale)
    np.testing.assert_allclose(err, expected, rtol=1e-9, atol=1e-7 * expected.max())
    assert by_title["pointwise error of u (vs reference)"].get_ylabel() == "|u - u_ref|"
    (line,) = by_title["pointwise error of m (vs reference)"].lines
    m_ref = ref.density(pts)
    expected = np.abs(sol.density(pts) - m_ref) / np.max(m_ref)
    np.testing.assert_allclose(line.get_ydata(), expected, rtol=1e-9, atol=1e-7 * expected.max())


def test_panels_with_the_exact_solution_show_training_and_pointwise_errors(tmp_path, drawn):
    problem = load_problem(PROBLEMS / "ergodic_torus_1d.py")
    sol = _seed_like(problem, _history(errors=True))
    figures(sol, None, tmp_path)
    fig = drawn["panels.png"]
    assert_readable(fig)
    assert set(_panels(fig)) == {
        "value u",
        "density m",
        "pointwise error of u (vs exact)",
        "pointwise error of m (vs exact)",
        "L2 error of u (vs exact)",
        "relative L2 error of m (vs exact)",
        "HJB residual",
        "FP residual",
    }
    assert [ln.get_label() for ln in _panels(fig)["value u"].lines] == ["network", "exact"]


def test_panels_leave_out_an_error_not_recorded(tmp_path, drawn):
    problem = load_problem(PROBLEMS / "ergodic_torus_1d.py")
    history = [{k: v for k, v in h.items() if k != "u_l2"} for h in _history(errors=True)]
    figures(_seed_like(problem, history), None, tmp_path)
    fig = drawn["panels.png"]
    assert_readable(fig)
    assert "relative L2 error of m (vs exact)" in _panels(fig)
    assert "L2 error of u (vs exact)" not in _panels(fig)


def test_the_viscosity_has_its_own_axis(tmp_path, drawn):
    history = _history(errors=False)
    figures(_seed_like(_seed_without_exact(), history), None, tmp_path)
    fig = drawn["panels.png"]
    residual = _panels(fig)["HJB residual"]
    viscosity = [h["viscosity"] for h in history]
    for ax in _panels(fig).values():  # on no main axes, by label or by data
        for line in ax.lines:
            assert not line.get_label().startswith("continuation viscosity")
            ys = np.abs(line.get_ydata())
            assert not (len(ys) == len(viscosity) and np.allclose(ys, viscosity))
    (twin,) = [ax for ax in fig.axes if _is_twin(ax)]
    assert twin in residual.get_shared_x_axes().get_siblings(residual)
    assert "viscosity" in twin.get_ylabel() and twin.get_yscale() == "log"
    (line,) = twin.lines
    np.testing.assert_allclose(line.get_ydata(), viscosity)
    # ... named in the residual panel's legend
    assert "viscosity" in " ".join(t.get_text() for t in residual.get_legend().get_texts())
    # without the continuation (second-order problems) there is no twin axis
    figures(_seed_like(_seed_without_exact(), _history(False, viscosity=False)), None, tmp_path)
    assert not [ax for ax in drawn["panels.png"].axes if _is_twin(ax)]


def test_2d_pointwise_errors_are_maps(tmp_path, drawn):
    problem = load_problem(PROBLEMS / "viscous_torus_2d.py")
    u_ex, m_ex = problem_functions(problem)
    sol = StandIn(
        problem,
        lambda p: u_ex(p) + 0.01 * np.sin(2 * np.pi * p[:, 1]),
        lambda p: m_ex(p) * (1 + 0.02 * np.cos(2 * np.pi * p[:, 0])),
        _history(errors=True, viscosity=False),
    )
    _written(figures(sol, None, tmp_path), ["panels.png", "maps.png"])
    for name in ("panels.png", "maps.png"):
        assert_readable(drawn[name])
    maps = _panels(drawn["panels.png"])
    for key in ("u", "m"):
        ax = maps[f"pointwise error of {key} (vs exact)"]
        assert ax.collections, "a heat map"
    assert set(_panels(drawn["maps.png"])) == {
        "value u (network)",
        "density m (network)",
        "signed error of m (vs exact)",
    }


@pytest.mark.parametrize("richardson", [True, False])
def test_reference_newton_panel_marks_each_grid(tmp_path, drawn, richardson):
    ref = reference_solve(_seed_without_exact(), grid=64, richardson=richardson)
    _written(reference_figures(ref, tmp_path), ["reference.png"])
    fig = drawn["reference.png"]
    assert_readable(fig)
    newton = _panels(fig)["Newton convergence"]
    grids = ref.info["grids_solved"]
    assert len(grids) == (3 if richardson else 1)
    legend = [t.get_text() for t in newton.get_legend().get_texts()]
    assert legend == [f"N = {g}" for g in grids]
    assert len(newton.lines) == len(grids)
    residuals = [h["residual"] for h in ref.history if h.get("residual") is not None]
    assert sum(len(ln.get_ydata()) for ln in newton.lines) == len(residuals)
    assert len({ln.get_marker() for ln in newton.lines}) == len(grids)


def test_finite_horizon_1d_against_the_reference(tmp_path, drawn):
    problem = load_problem(PROBLEMS / "fh_torus_1d.py")
    ref = reference_solve(problem, grid=32, time_steps=16)
    u_ex, m_ex = problem_functions(problem)
    sol = StandIn(
        problem,
        lambda p: u_ex(p) + 0.01 * p[:, 0],
        lambda p: m_ex(p) * (1 + 0.02 * np.sin(2 * np.pi * p[:, 1])),
        [dict(h, u_rel_l2=h["u_l2"]) for h in _history(errors=True, viscosity=False)],
    )
    paths = figures(sol, ref, tmp_path) + reference_figures(ref, tmp_path)
    _written(paths, ["spacetime.png", "error_vs_time.png", "history.png", "reference.png"])
    for fig in drawn.values():
        assert_readable(fig)
    assert "value u: network - reference" in _panels(drawn["spacetime.png"])
    legend = [
        t.get_text()
        for t in _panels(drawn["reference.png"])["Newton convergence"].get_legend().get_texts()
    ]
    assert legend == ["N = 16, Nt = 8", "N = 32, Nt = 16", "N = 64, Nt = 32"]


def test_finite_horizon_without_exact_or_reference(tmp_path, drawn):
    problem = load_problem(PROBLEMS / "crowd_box_2d.py")
    sol = StandIn(
        problem,
        lambda p: 1 + np.cos(np.pi * p[:, 1]) * (1 - p[:, 0]),
        lambda p: 1 + 0.5 * np.cos(np.pi * p[:, 1]) * np.cos(np.pi * p[:, 2]),
        [{"iteration": it, "loss_hjb": 1.0 / it, "loss_fp": 2.0 / it} for it in (10, 20, 30)],
    )
    _written(figures(sol, None, tmp_path), ["snapshots_m.png", "snapshots_u.png", "history.png"])
    for fig in drawn.values():
        assert_readable(fig)
    assert len(_panels(drawn["snapshots_m.png"])) == 4  # the network at four times only
    assert set(_panels(drawn["history.png"])) == {"losses"}


@pytest.mark.parametrize("known", ["none", "value"])
def test_finite_horizon_1d_without_a_known_density(tmp_path, drawn, known):
    problem = copy.copy(load_problem(PROBLEMS / "fh_torus_1d.py"))
    u_ex, m_ex = problem_functions(problem)
    problem.exact = {"value": problem.exact["value"]} if known == "value" else {}
    sol = StandIn(
        problem,
        lambda p: u_ex(p) + 0.01 * p[:, 0],
        lambda p: m_ex(p) * (1 + 0.02 * np.sin(2 * np.pi * p[:, 1])),
        [{"iteration": it, "loss_hjb": 1.0 / it, "loss_fp": 2.0 / it} for it in (10, 20, 30)],
    )
    names = {p.name for p in figures(sol, None, tmp_path)}
    assert names == (
        {"spacetime.png", "history.png", "error_vs_time.png"}
        if known == "value"
        else {"spacetime.png", "history.png"}
    )
    fig = drawn["spacetime.png"]
    assert_readable(fig)
    titles = set(_panels(fig))
    assert "density m: network (stand-in)" in titles
    assert ("value u: network - exact" in titles) == (known == "value")
    assert not any(t.startswith("density m: network - ") for t in titles)
    assert ("no exact m" in fig.get_suptitle()) == (known == "value")


def test_two_populations_get_a_column_each_and_their_densities_together(tmp_path, drawn):
    problem = load_problem(PROBLEMS / "two_populations_torus.py")
    ref = reference_solve(problem, grid=64)
    _written(reference_figures(ref, tmp_path), ["reference.png"])
    fig = drawn["reference.png"]
    assert_readable(fig)
    by_title = _panels(fig)
    assert {
        "population 1: value",
        "population 2: density",
        "the 2 densities (reference)",
        "pointwise error of m_k vs exact",
    } <= set(by_title)
    # population 2's panel draws population 2 (its reference and its exact density)
    xs, m2 = by_title["population 2: density"].lines[0].get_data()
    np.testing.assert_allclose(m2, ref.density(xs[:, None])[:, 1])
    np.testing.assert_allclose(
        by_title["population 2: density"].lines[1].get_ydata(),
        known_solution(problem)[1](xs[:, None])[:, 1],
    )


def test_two_populations_in_2d_are_maps_with_their_errors(tmp_path, drawn):
    problem = load_problem(PROBLEMS / "two_populations_torus.py", d=2)
    ref = reference_solve(problem, grid=16, richardson=False)
    sol = copy.copy(ref)  # a result compared with the exact solution: a map and an error each
    _written(reference_figures(sol, tmp_path), ["reference.png"])
    fig = drawn["reference.png"]
    assert_readable(fig)
    titles = set(_panels(fig))
    assert {"population 1: density (reference)", "population 2: m - m_exact"} <= titles


def test_history_curves_mark_where_the_lbfgs_finish_took_over():
    from matplotlib.figure import Figure

    from mfgsolve.plotting._figure import history_curve

    first = [{"iteration": i, "m_rel_l2": 1.0 / i} for i in (50, 100)]
    finish = [{"iteration": i, "m_rel_l2": 1e-3 / i, "loss_finish": 1e-6} for i in (120, 140)]
    labels = []
    for history in (first, first + finish):
        ax = Figure().add_subplot()
        history_curve(ax, history, [("m_rel_l2", "m")], "t", "y")
        marks = [ln for ln in ax.get_lines() if ln.get_label() == "L-BFGS finish from here"]
        labels.append([float(ln.get_xdata()[0]) for ln in marks])
    assert labels == [[], [100.0]]
