"""The L-BFGS finish (mfgsolve/train/finish.py): errors against the exact solutions, the gauge,
float64 results, determinism, resume, rollback and option errors."""

from pathlib import Path

import numpy as np
import pytest
import torch

from mfgsolve import compare, load_problem, solve
from mfgsolve.errors import OptionError
from mfgsolve.train.ergodic import ErgodicFormulation

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[1]
SEED = load_problem(ROOT / "problems" / "ergodic_torus_1d.py")
VISCOUS = load_problem(ROOT / "problems" / "viscous_torus_1d.py")
FINITE = load_problem(ROOT / "problems" / "manufactured_fh_torus_1d.py")
SHORT = dict(method="joint", iterations=100, seed=0, progress=False)


@pytest.fixture(scope="module")
def seed_runs():
    """The seed problem after 100 joint iterations, without and with 100 L-BFGS iterations."""
    first = solve(SEED, **SHORT)
    finished = solve(SEED, **SHORT, finish="lbfgs", finish_iterations=100)
    return first, finished


def test_finish_goes_far_beyond_the_first_phase_against_the_exact_solution(seed_runs):
    first, finished = seed_runs
    before, after = compare(first), compare(finished)
    assert before["m_rel_l2"] > 5e-3  # the first phase alone is far from converged
    assert after["m_rel_l2"] < before["m_rel_l2"] / 10
    assert after["m_rel_l2"] < 1e-3 and after["u_l2"] < 1e-4 and after["constant_abs"] < 1e-5


def test_finish_records_its_iterations_and_keeps_float64_networks(seed_runs, tmp_path):
    first, finished = seed_runs
    its = [h["iteration"] for h in finished.history]
    assert its[: len(first.history)] == [h["iteration"] for h in first.history]
    assert its[-1] == 200 and all(
        "loss_finish" in h for h in finished.history[len(first.history) :]
    )
    assert finished.dtype == torch.float64 and finished.info["iterations"] == 200
    finished.save(tmp_path / "sol")
    loaded = type(finished).load(tmp_path / "sol")
    pts = np.linspace(0, 1, 7)[:, None]
    assert np.array_equal(loaded.density(pts), finished.density(pts))


def test_finish_is_deterministic(seed_runs):
    _, finished = seed_runs
    again = solve(SEED, **SHORT, finish="lbfgs", finish_iterations=100)
    pts = np.linspace(0, 1, 9)[:, None]
    assert np.array_equal(again.density(pts), finished.density(pts))
    assert np.array_equal(again.value(pts), finished.value(pts))


def test_the_value_is_centred_exactly():
    """The ergodic value is fixed up to a constant; the finish holds int u = 0 exactly (the
    penalty alone let u drift by 3e-3 on this problem)."""
    sol = solve(VISCOUS, **SHORT, finish="lbfgs", finish_iterations=40)
    x = (np.arange(512) + 0.5)[:, None] / 512
    assert abs(float(np.mean(sol.value(x)))) < 1e-9


def test_a_first_phase_resumed_with_the_finish_equals_one_run(tmp_path):
    """The finish options may change on resume: phase 1 is the same, and the finish draws its
    points from the checkpointed sampler."""
    kw = dict(SHORT, iterations=40, eval_every=20)
    one = solve(SEED, **kw, finish="lbfgs", finish_iterations=20)
    solve(SEED, **kw, checkpoint_dir=str(tmp_path))
    resumed = solve(
        SEED, **kw, checkpoint_dir=str(tmp_path), resume=True, finish="lbfgs", finish_iterations=20
    )
    pts = np.linspace(0, 1, 9)[:, None]
    assert np.array_equal(resumed.density(pts), one.density(pts))


def test_a_non_finite_loss_ends_the_finish_on_the_best_parameters(monkeypatch, capsys):
    """A NaN from the 30th loss on: the phase stops with a warning and keeps finite networks
    no worse than where it started."""
    calls = {"n": 0}
    losses = ErgodicFormulation.losses

    def failing(self, *args, **kwargs):
        out = losses(self, *args, **kwargs)
        if self.dtype == torch.float64:
            calls["n"] += 1
            if calls["n"] >= 30:
                out["hjb"] = out["hjb"] * float("nan")
        return out

    monkeypatch.setattr(ErgodicFormulation, "losses", failing)
    first = solve(SEED, **SHORT)
    sol = solve(SEED, **SHORT, finish="lbfgs", finish_iterations=100)
    assert "the loss became nan; kept the best parameters" in capsys.readouterr().err
    pts = np.linspace(0, 1, 33)[:, None]
    assert np.all(np.isfinite(sol.density(pts))) and np.all(np.isfinite(sol.value(pts)))
    assert compare(sol)["m_rel_l2"] <= compare(first)["m_rel_l2"]


def test_finish_on_a_finite_horizon_problem_against_its_closed_form():
    first = solve(FINITE, iterations=150, seed=0, progress=False)
    sol = solve(
        FINITE, iterations=150, seed=0, progress=False, finish="lbfgs", finish_iterations=60
    )
    assert compare(sol)["m_rel_l2"] < 0.7 * compare(first)["m_rel_l2"]


@pytest.mark.parametrize("name", ["finish_iterations", "finish_points"])
def test_finish_sizes_without_the_finish_are_refused(name):
    with pytest.raises(OptionError, match=rf"^{name} applies only to finish='lbfgs'; fix: "):
        solve(SEED, iterations=1, progress=False, **{name: 10})


def test_unknown_finish_is_refused():
    with pytest.raises(OptionError, match=r"finish must be 'none' or 'lbfgs'.*fix:"):
        solve(SEED, iterations=1, progress=False, finish="newton")
