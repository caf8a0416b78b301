"""Solver options (mfgsolve.options): one table, resolved once into a frozen object."""

import dataclasses
from pathlib import Path

import pytest

from mfgsolve import OptionError, ProblemError, load_problem
from mfgsolve.options import SPECS, SolverOptions, option_names
from mfgsolve.sampling import QUADRATURE_SIZES

ROOT = Path(__file__).resolve().parent.parent
SEED = load_problem(ROOT / "problems" / "ergodic_torus_1d.py")
SEED4 = load_problem(ROOT / "problems" / "ergodic_torus_4d.py")
FH1 = load_problem(ROOT / "problems" / "fh_torus_1d.py")
BOX1 = load_problem(ROOT / "problems" / "fh_box_1d.py")

# a valid value of each option, for the kind it applies to (independent of the table's defaults)
VALID = {
    "iterations": 7,
    "batch_size": 64,
    "lr": 1e-3,
    "lr_ratio": 2.0,
    "lr_final": 0.5,
    "schedule": "constant",
    "warmup": 3,
    "betas": (0.9, 0.99),
    "optimizer": "sgd",
    "grad_clip": 0.5,
    "max_recoveries": 1,
    "disc_steps": 3,
    "gen_steps": 2,
    "beta": 0.5,
    "constant": "trained",
    "continuation": 0.02,
    "continuation_final": 0.5,
    "architecture": "dgm",
    "width": 16,
    "depth": 2,
    "activation": "silu",
    "harmonics": 2,
    "features": "axes",
    "time_feature": "linear",
    "walls": "loss",
    "sampling": "uniform",
    "density_fraction": 0.3,
    "quadrature_points": 64,
    "time_slices": 4,
    "boundary_weight": 2.0,
    "derivatives": "autograd",
    "hutchinson_probes": 2,
    "ema": 0.5,
    "eval_every": 5,
    "eval_points": 128,
    "checkpoint_dir": "somewhere",
    "checkpoint_every": 5,
    "diagnostics": True,
    "threads": 1,
    "finish": "lbfgs",
    "finish_iterations": 10,
    "finish_points": 256,
}


def test_every_option_is_in_the_table_once():
    assert sorted(VALID) == sorted(SPECS) == sorted(option_names())


def test_resolved_options_are_frozen_and_complete():
    opts = SolverOptions.build(SEED, {"width": 16})
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.network.width = 32
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.kind = "finite_horizon"
    flat = opts.flat()
    assert list(flat) == option_names()
    assert flat["width"] == 16 and opts.given == frozenset({"width"})
    # nothing left unresolved
    assert all(flat[k] is not None for k in ("iterations", "lr", "disc_steps", "continuation"))
    # building again gives an equal object: build changes nothing it was given
    given = {"width": 16}
    assert SolverOptions.build(SEED, given) == opts and given == {"width": 16}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_each_option_is_accepted_where_it_applies_and_refused_where_not(name):
    value = VALID[name]
    extra = {"sampling": "density"} if name == "density_fraction" else {}
    for problem, kind in ((SEED, "ergodic"), (BOX1, "finite_horizon")):
        if name in ("continuation", "constant") and kind == "ergodic":
            problem = SEED  # first-order, linear constant: both apply
        if name in ("finish_iterations", "finish_points"):
            extra = {"finish": "lbfgs"}
        if name == "hutchinson_probes":
            extra = {"derivatives": "hutchinson"}
            problem = SEED4 if kind == "ergodic" else problem
        if kind in SPECS[name].kinds:
            opts = SolverOptions.build(problem, {name: value, **extra})
            assert opts.flat()[name] == (list(value) if name == "betas" else value)
        else:
            with pytest.raises(OptionError, match=f"{name} applies only to") as info:
                SolverOptions.build(problem, {name: value, **extra})
            assert "fix:" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "name, bad",
    [
        ("iterations", 0),
        ("batch_size", 1),
        ("lr", -1.0),
        ("lr", float("nan")),
        ("lr_final", 0.0),
        ("schedule", "linear"),
        ("betas", (0.5,)),
        ("optimizer", "lbfgs"),
        ("grad_clip", -1),
        ("width", 0),
        ("ema", 1.0),
        ("eval_every", 0),
        ("sampling", "grid"),
        ("derivatives", "magic"),
        ("architecture", "resnet"),
        ("checkpoint_every", -5),
    ],
)
def test_bad_values_are_one_line_errors(name, bad):
    with pytest.raises(OptionError) as info:
        SolverOptions.build(SEED, {name: bad})
    assert "fix:" in str(info.value) and "\n" not in str(info.value)
    assert isinstance(info.value, ProblemError)  # bad input: exit status 2 in the CLI


def test_per_kind_defaults_come_from_the_one_table():
    for problem, key in ((SEED, "normaliser"), (SEED4, "normaliser"), (FH1, "normaliser-per-time")):
        opts = SolverOptions.build(problem, {})
        assert opts.sampling.quadrature_points == QUADRATURE_SIZES[key][min(problem.dim, 3) - 1]
    assert SolverOptions.build(SEED, {}).run.eval_points == QUADRATURE_SIZES["history"][0]
    # the method decides the continuation and with it disc_steps and iterations (1-D)
    adv = SolverOptions.build(SEED, {}, method="adversarial")
    joint = SolverOptions.build(SEED, {}, method="joint")
    assert (adv.game.continuation, adv.game.disc_steps, adv.optimiser.iterations) == (0.05, 1, 1500)
    assert (joint.game.continuation, joint.game.disc_steps, joint.optimiser.iterations) == (
        0.0,
        2,
        2000,
    )


def test_a_saved_set_loads_even_with_options_of_another_kind():
    saved = SolverOptions.build(SEED, {}).flat()
    assert saved["time_feature"] is None  # recorded with every option
    opts = SolverOptions.build(SEED, saved, saved=True)
    assert opts.flat() == saved and opts.given == frozenset()


def test_unknown_option_and_method():
    with pytest.raises(OptionError, match=r"unknown solver option\(s\) \['widht'\]"):
        SolverOptions.build(SEED, {"widht": 3})
    with pytest.raises(OptionError, match="unknown method 'gan'"):
        SolverOptions.build(SEED, {}, method="gan")


@pytest.mark.parametrize(
    "typo, name", [("widht", "width"), ("iteratons", "iterations"), ("lr_finall", "lr_final")]
)
def test_an_unknown_option_suggests_the_nearest_name(typo, name):
    with pytest.raises(OptionError) as info:
        SolverOptions.build(SEED, {typo: 3})
    assert str(info.value) == f"unknown solver option(s) [{typo!r}]; fix: did you mean {name!r}?"
    with pytest.raises(OptionError, match=r"\['qqq'\]; fix: use some of \['activation', "):
        SolverOptions.build(SEED, {"qqq": 3})  # nothing near: the valid names


def test_unknown_reference_and_fbsde_options_suggest_the_nearest_name():
    from mfgsolve.fbsde import solve_fbsde
    from mfgsolve.reference import reference_solve
    from mfgsolve.reference.solve import check_options

    with pytest.raises(
        ProblemError, match=r"unknown reference option\(s\) \['tlo'\]; fix: did you mean 'tol'\?"
    ):
        check_options(SEED, {"tlo": 1e-9})
    with pytest.raises(ProblemError, match=r"\['grid'\]; .*the grid is --grid N"):
        check_options(SEED, {"grid": 64})
    with pytest.raises(ProblemError, match=r"bad reference option tol=-1: tol must be a positive"):
        reference_solve(SEED, tol=-1)
    with pytest.raises(ProblemError, match="time_steps applies only to finite-horizon problems"):
        reference_solve(SEED, time_steps=8)
    fbsde = load_problem(ROOT / "problems" / "fbsde_systemic_risk.py")
    with pytest.raises(
        OptionError, match=r"unknown options \['setps'\]; fix: did you mean 'steps'\?"
    ):
        solve_fbsde(fbsde, setps=4)


@pytest.mark.parametrize(
    "name, bad",
    [
        ("warmup", True),  # a bool is not an integer here
        ("quadrature_points", -1),
        ("width", 10**6),  # beyond any network here: an error now, not an allocation later
        ("iterations", 10**10),
        ("lr", 10**400),  # does not convert to a float
        ("betas", 5),
        ("betas", "ab"),
        ("activation", "relu6"),
        ("diagnostics", 1),
        ("derivatives", ["auto"]),
        ("checkpoint_dir", ""),
        ("checkpoint_dir", 5),
    ],
)
def test_more_bad_values_are_one_line_errors(name, bad):
    with pytest.raises(OptionError) as info:
        SolverOptions.build(SEED, {name: bad})
    msg = str(info.value)
    assert msg.startswith(f"bad solver option {name}=") and "fix:" in msg and "\n" not in msg


def test_checkpoint_dir_may_not_be_a_file(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    for folder in (a_file, a_file / "below"):
        with pytest.raises(OptionError, match="checkpoint_dir must name a folder"):
            SolverOptions.build(SEED, {"checkpoint_dir": str(folder)})
    SolverOptions.build(SEED, {"checkpoint_dir": str(tmp_path / "new")})  # a new folder is fine


def test_threads_hold_during_the_solve_and_the_callers_setting_comes_back():
    import torch

    from mfgsolve import solve

    problem = load_problem(ROOT / "problems" / "ergodic_torus_1d.py")
    before = torch.get_num_threads()
    seen = []
    solve(
        problem,
        iterations=4,
        eval_every=2,
        threads=3,
        progress=False,
        callbacks=[lambda r: seen.append(torch.get_num_threads())],
    )
    assert seen and set(seen) == {3} and torch.get_num_threads() == before
    with pytest.raises(OptionError, match="threads must be an integer from 1 to 1024"):
        solve(problem, iterations=1, threads=0, progress=False)
