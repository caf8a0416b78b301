"""The training loop (mfgsolve.train) with the adversarial and joint games on the seed problem
(short runs, fixed seeds)."""

from pathlib import Path

import numpy as np
import pytest
import sympy as sp
import torch

from mfgsolve import ErgodicMFG, Solution, Torus, compare, load_problem, solve
from mfgsolve.errors import CheckpointError, TrainingDiverged
from mfgsolve.options import SolverOptions
from mfgsolve.train import Trainer

ROOT = Path(__file__).resolve().parent.parent
SEED = load_problem(ROOT / "problems" / "ergodic_torus_1d.py")


def test_short_adversarial_run_moves_towards_the_exact_solution():
    sol = solve(SEED, iterations=300, seed=0, progress=False, eval_every=50)
    first, last = sol.history[0], sol.history[-1]
    # exact: u = 0, m = exp(sin 2 pi x)/I0(1) (the initial density is ~uniform: error ~0.5)
    assert last["m_rel_l2"] < 0.15 < compare_uniform()
    assert last["u_l2"] < 0.05
    assert abs(sol.constant - float(sp.log(sp.besseli(0, 1)))) < 0.05
    assert last["loss_hjb"] < first["loss_hjb"] or last["m_rel_l2"] < first["m_rel_l2"]


def compare_uniform() -> float:
    """Relative L2 error of the uniform density against the exact one (independent of the solver)."""
    xs = np.arange(4096) / 4096
    m = np.exp(np.sin(2 * np.pi * xs))
    m /= m.mean()
    return float(np.sqrt(np.mean((1 - m) ** 2) / np.mean(m**2)))


def test_joint_baseline_runs_on_the_same_networks():
    sol = solve(SEED, method="joint", iterations=200, seed=0, progress=False)
    assert sol.info["method"] == "joint"
    assert sol.history[-1]["m_rel_l2"] < 0.2


def test_each_player_steps_only_its_own_parameters():
    opts = SolverOptions.build(SEED, {"iterations": 1, "ema": 0})
    trainer = Trainer(SEED, opts, 0, "cpu", torch.float32)
    st = trainer.init_state()
    u0 = [p.detach().clone() for p in st.value_net.parameters()]
    f0 = [p.detach().clone() for p in st.density_net.parameters()]
    disc_params = list(st.density_net.parameters())
    pts = trainer.formulation.batch(st)[0]
    loss = trainer.losses(st, ("fp",), ("u",), points=pts)["fp"]
    trainer._step(st.optimizers[1], loss, disc_params)
    assert all(torch.equal(a, b) for a, b in zip(u0, st.value_net.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(f0, st.density_net.parameters()))
    f1 = [p.detach().clone() for p in st.density_net.parameters()]
    out = trainer.losses(st, ("hjb",), ("m",))
    trainer._step(st.optimizers[0], out["hjb"] + out["int_u"], list(st.value_net.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(f1, st.density_net.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(u0, st.value_net.parameters()))


def test_frozen_player_records_no_graph_and_keeps_requires_grad():
    """A frozen network enters the other player's loss as a constant (no path to its weights), and
    its parameters require grad again afterwards, also when the loss raises."""
    opts = SolverOptions.build(SEED, {"iterations": 1})
    trainer = Trainer(SEED, opts, 0, "cpu", torch.float32)
    st = trainer.init_state()
    pts = trainer.formulation.batch(st)[0]
    loss = trainer.losses(st, ("fp",), ("u",), points=pts)["fp"]
    value_params = list(st.value_net.parameters())
    assert not any(
        g is not None for g in torch.autograd.grad(loss, value_params, allow_unused=True)
    )
    assert all(g is not None for g in torch.autograd.grad(loss, list(st.density_net.parameters())))
    assert all(p.requires_grad for p in value_params)

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    trainer.formulation.losses = broken
    with pytest.raises(RuntimeError, match="boom"):
        trainer.losses(st, ("hjb",), ("m",), points=pts)
    assert all(p.requires_grad for p in st.density_net.parameters())


def test_discriminator_sees_u_second_derivative():
    """The FP flux -(m u')' keeps u'' when u is frozen for the discriminator step (m uniform: FP = -u'')."""
    opts = SolverOptions.build(SEED, {"iterations": 1})
    trainer = Trainer(SEED, opts, 0, "cpu", torch.float64)
    # Evaluate the FP residual of u = sin(2 pi x)/10 (exactly representable via a closed form check)
    x = sp.Symbol("x")
    pts = torch.linspace(0, 1, 65, dtype=torch.float64)[:-1, None].requires_grad_(True)

    class F:
        def value(self, p):
            return torch.sin(2 * torch.pi * p[:, 0]) / 10

        def log_density(self, p):
            return torch.zeros(p.shape[0], dtype=p.dtype)

    residuals = trainer.formulation.residuals
    caches = residuals.caches(pts, F(), frozen=("u",))
    fp = residuals.fp(pts, caches)
    want = sp.lambdify(x, -sp.diff(sp.sin(2 * sp.pi * x) / 10, x, 2), "numpy")(
        pts.detach().numpy()[:, 0]
    )
    np.testing.assert_allclose(fp.detach().numpy(), want, rtol=1e-10, atol=1e-10)


def test_same_seed_same_numbers_and_different_seeds_differ():
    a = solve(SEED, iterations=40, seed=3, progress=False, eval_every=20)
    b = solve(SEED, iterations=40, seed=3, progress=False, eval_every=20)
    c = solve(SEED, iterations=40, seed=4, progress=False, eval_every=20)
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert strip(a.history) == strip(b.history)
    assert strip(a.history) != strip(c.history)
    pts = np.linspace(0, 1, 11)[:, None]
    assert np.array_equal(a.density(pts), b.density(pts))


def test_solution_save_load_roundtrip(tmp_path):
    sol = solve(SEED, iterations=20, seed=0, progress=False, eval_every=10)
    sol.save(tmp_path / "sol")
    back = Solution.load(tmp_path / "sol")
    pts = np.random.default_rng(0).random((20, 1))
    assert np.array_equal(sol.value(pts), back.value(pts))
    assert np.array_equal(sol.density(pts), back.density(pts))
    assert back.constant == sol.constant and back.history == sol.history
    assert np.isclose(compare(back)["m_rel_l2"], compare(sol)["m_rel_l2"])


def test_corrupted_solution_is_refused(tmp_path):
    sol = solve(SEED, iterations=10, seed=0, progress=False, eval_every=10)
    sol.save(tmp_path / "sol")
    (tmp_path / "sol" / "solution.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a valid mfgsolve checkpoint"):
        Solution.load(tmp_path / "sol")


def test_nan_in_training_stops_with_a_clear_message():
    x, H = sp.Symbol("x"), sp.Symbol("H")
    u, m = sp.Function("u")(x), sp.Function("m")(x)
    bad = ErgodicMFG(
        Torus([x]), u, m, H, sp.sqrt(u - 100) - sp.log(m) - H, -(m * u.diff(x)).diff(x), name="bad"
    )
    with pytest.raises(
        TrainingDiverged,
        match=r"problem 'bad': iteration 1: HJB loss became nan after 3 rollbacks.*fix:",
    ):
        solve(bad, iterations=50, progress=False)


def test_unknown_option_is_a_clear_error():
    from mfgsolve import ProblemError

    with pytest.raises(ProblemError, match="unknown solver option.*'widht'"):
        solve(SEED, iterations=5, progress=False, widht=3)
    with pytest.raises(ProblemError, match="lr must be a positive number"):
        solve(SEED, iterations=5, lr=-1.0, progress=False)
    # options that would not apply are refused, not ignored
    with pytest.raises(ProblemError, match="density_fraction applies only to sampling='density'"):
        solve(SEED, iterations=5, density_fraction=0.3, progress=False)
    with pytest.raises(ProblemError, match="hutchinson_probes applies only to the Hutchinson"):
        solve(SEED, iterations=5, hutchinson_probes=8, progress=False)


def test_hutchinson_probes_are_refused_where_the_engine_is_not_hutchinson():
    """In d = 64 "auto" means Hutchinson only when a residual has a Laplacian: with second
    derivatives weighted per coordinate it is reverse mode, and the probes would be ignored
    (without the continuation, whose viscosity terms are Laplacians)."""
    import sympy as sp

    from mfgsolve import ErgodicMFG, ProblemError, Torus

    xs = sp.symbols("x1:65")
    u, m, H = sp.Function("u")(*xs), sp.Function("m")(*xs), sp.Symbol("H")
    weighted = ErgodicMFG(
        domain=Torus(xs),
        value=u,
        density=m,
        constant=H,
        hjb=sum(u.diff(x) ** 2 for x in xs) / 2 - sp.log(m) - H,
        fp=-sum((i + 1) * (m * u.diff(x)).diff(x) for i, x in enumerate(xs)),
        name="weighted-64",
    )
    with pytest.raises(ProblemError, match="hutchinson_probes applies only.*'autograd' here"):
        solve(weighted, iterations=1, hutchinson_probes=8, continuation=0, progress=False)


def test_checkpoint_resume_gives_the_same_result(tmp_path):
    """A run interrupted after its iteration-40 checkpoint and resumed ends bitwise equal."""
    kw = dict(iterations=60, seed=1, progress=False, eval_every=10, checkpoint_every=20)
    full = solve(SEED, checkpoint_dir=str(tmp_path / "full"), **kw)

    def crash(record):
        if record["iteration"] == 50:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        solve(SEED, checkpoint_dir=str(tmp_path / "run"), callbacks=[crash], **kw)
    resumed = solve(SEED, checkpoint_dir=str(tmp_path / "run"), resume=True, **kw)
    pts = np.linspace(0, 1, 9)[:, None]
    assert np.array_equal(resumed.density(pts), full.density(pts))
    assert np.array_equal(resumed.value(pts), full.value(pts))
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert strip(resumed.history) == strip(full.history)


def test_training_dynamics_diagnostics_are_recorded_and_warn(capsys):
    """diagnostics=True records, per player, noise, eta/2 correction size and beta = 2B/eta."""
    sol = solve(
        SEED,
        iterations=10,
        eval_every=10,
        diagnostics=True,
        progress=False,
        lr=0.5,
        lr_final=1.0,
        schedule="constant",
        batch_size=64,
    )
    rec = sol.history[-1]
    for player in ("generator", "discriminator"):
        assert rec[f"diag/{player}/beta"] == pytest.approx(2 * 64 / 0.5)
        assert rec[f"diag/{player}/grad_norm"] >= 0 and rec[f"diag/{player}/correction_ratio"] >= 0
    assert "lower its lr" in capsys.readouterr().err


def test_steps_per_iteration_for_each_player():
    """disc_steps and gen_steps set how many updates each player makes per iteration."""
    opts = SolverOptions.build(SEED, {"iterations": 1, "disc_steps": 3, "gen_steps": 2})
    trainer = Trainer(SEED, opts, 0, "cpu", torch.float32)
    st = trainer.init_state()
    trainer.iterate(st)
    steps = [int(next(iter(o.state.values()))["step"]) for o in st.optimizers]
    assert steps == [2, 3]  # [generator, discriminator]


class _FaultyTrainer(Trainer):
    """Injects NaN once at each chosen (iteration, kind): kind 'fp' or 'hjb' poisons that loss,
    'grad' makes a finite loss have a NaN gradient."""

    def __init__(self, faults, *args):
        super().__init__(*args)
        self.faults, self.current = set(faults), 0

    def iterate(self, st):
        self.current = st.iteration + 1
        return super().iterate(st)

    def losses(self, st, players, frozen, points=None):
        out = super().losses(st, players, frozen, points)
        for kind in ("fp", "hjb"):
            if (self.current, kind) in self.faults and kind in out:
                self.faults.discard((self.current, kind))
                out[kind] = out[kind] * float("nan")
        return out

    def _step(self, opt, loss, params):
        if (self.current, "grad") in self.faults:
            self.faults.discard((self.current, "grad"))
            loss = loss + torch.sqrt(params[0] * 0).sum()  # value 0, gradient 0 * inf = NaN
        return super()._step(opt, loss, params)


def _faulty_run(faults, tmp_path, max_recoveries=3):
    opts = SolverOptions.build(
        SEED,
        {
            "iterations": 60,
            "eval_every": 10,
            "checkpoint_every": 10,
            "checkpoint_dir": str(tmp_path),
            "max_recoveries": max_recoveries,
        },
    )
    trainer = _FaultyTrainer(faults, SEED, opts, 0, "cpu", torch.float32)
    st = trainer.init_state()
    trainer.run(st)
    return trainer, st


def _checkpoint_is_finite(path):
    state = torch.load(path / "train_state.pt", weights_only=True)
    tensors = []

    def walk(obj):
        if isinstance(obj, torch.Tensor):
            tensors.append(obj)
        elif isinstance(obj, dict):
            for v in obj.values():
                walk(v)
        elif isinstance(obj, (list, tuple)):
            for v in obj:
                walk(v)

    walk(state)
    return bool(tensors) and all(
        torch.isfinite(t.float()).all() for t in tensors if t.is_floating_point()
    )


_RNG = np.random.default_rng(7)
_FAULT_SETS = [
    [
        (int(it), kind)
        for it, kind in zip(
            _RNG.integers(1, 61, size=n), _RNG.choice(["fp", "hjb", "grad"], size=n)
        )
    ]
    for n in (1, 1, 1, 2, 2, 3, 4, 5)
]


@pytest.mark.parametrize("faults", _FAULT_SETS, ids=str)
def test_injected_nan_is_recovered_or_stops_cleanly(faults, tmp_path, capsys):
    """Every injected NaN (loss or gradient, generator or discriminator) is caught at its step: up to
    max_recoveries rollbacks with halved lr the run finishes finite; beyond, it stops naming the
    iteration and the loss. The checkpoint on disk never holds a NaN."""
    n = len(set(faults))
    if n <= 3:
        trainer, st = _faulty_run(faults, tmp_path)
        assert st.iteration == 60 and not trainer.faults  # every fault fired and was recovered
        assert capsys.readouterr().err.count("rolled back") == n
        assert st.schedulers[0].base_lrs[0] == pytest.approx(2e-3 / 2**n)  # halved per rollback
        assert all(np.isfinite(r["m_rel_l2"]) for r in st.history)
    else:
        with pytest.raises(
            TrainingDiverged,
            match=r"iteration \d+: (FP|HJB) loss became nan|gradient of the (FP|HJB) loss",
        ):
            _faulty_run(faults, tmp_path)
    assert _checkpoint_is_finite(tmp_path) or not (tmp_path / "train_state.pt").exists()


def test_resume_refuses_a_checkpoint_of_a_different_run(tmp_path):
    kw = dict(iterations=20, checkpoint_dir=str(tmp_path), checkpoint_every=10, progress=False)
    solve(SEED, **kw)
    with pytest.raises(CheckpointError, match=r"differs in: lr \(0.002 -> 0.001\).*fix:"):
        solve(SEED, lr=1e-3, resume=True, **kw)
    with pytest.raises(CheckpointError, match=r"differs in: seed"):
        solve(SEED, seed=5, resume=True, **kw)


def test_two_rollbacks_in_one_evaluation_window_halve_the_rate_twice(tmp_path, capsys):
    """Faults at iterations 12 and 15 both roll back to the snapshot of iteration 10: the rate in
    force before each failure is halved, so it ends at a quarter (the snapshot's rate halved
    twice), in the scheduler's base rates and in the optimiser's current rate."""
    trainer, st = _faulty_run([(12, "fp"), (15, "hjb")], tmp_path)
    assert capsys.readouterr().err.count("rolled back to iteration 10") == 2
    for scheduler in st.schedulers:
        assert scheduler.base_lrs[0] == pytest.approx(2e-3 / 4)
    factor = trainer_factor(trainer, st.iteration)
    assert st.optimizers[0].param_groups[0]["lr"] == pytest.approx(2e-3 / 4 * factor)


def trainer_factor(trainer, step):
    from mfgsolve.train.state import lr_factor

    return lr_factor(trainer.opts.optimiser)(step)


def test_the_rate_is_halved_from_the_step_after_a_rollback(tmp_path):
    """The iteration replayed after a rollback already runs at the halved rate."""
    seen = []

    class Recording(_FaultyTrainer):
        def _step(self, opt, loss, params):
            seen.append((self.current, opt.param_groups[0]["lr"]))
            return super()._step(opt, loss, params)

    opts = SolverOptions.build(SEED, {"iterations": 12, "eval_every": 10, "ema": 0})
    trainer = Recording([(12, "fp")], SEED, opts, 0, "cpu", torch.float32)
    trainer.run(trainer.init_state())
    factor = lr_factor_of(opts)
    # the discriminator's step of the replayed iteration 11 (after the rollback to iteration 10)
    replayed = [lr for it, lr in seen if it == 11][-1]
    assert replayed == pytest.approx(2e-3 / 2 * factor(10))


def lr_factor_of(opts):
    from mfgsolve.train.state import lr_factor

    return lr_factor(opts.optimiser)


def test_solve_leaves_the_callers_random_state_untouched():
    """solve() draws from its own seeded generators: the caller's torch stream goes on as if
    solve had not run, and the result does not depend on the caller's state."""
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = solve(SEED, iterations=5, eval_every=5, seed=0, progress=False)
    assert torch.equal(torch.rand(3), expected)
    torch.manual_seed(999)
    b = solve(SEED, iterations=5, eval_every=5, seed=0, progress=False)
    pts = np.linspace(0, 1, 7)[:, None]
    assert np.array_equal(a.density(pts), b.density(pts))


def test_a_trained_constant_works_where_it_enters_linearly():
    """constant='trained' on the seed problem (Hbar enters linearly, so the lowering splits it
    off): the trained scalar is added back as c * Hbar, and it moves towards log I0(1)."""
    sol = solve(SEED, constant="trained", iterations=200, eval_every=100, seed=0, progress=False)
    exact = float(sp.log(sp.besseli(0, 1)))
    first = abs(0.0 - exact)  # the trained constant starts at 0
    assert np.isfinite(sol.constant) and abs(sol.constant - exact) < first / 2
