"""Benchmark: cost of the sympy-lowered residuals against hand-written torch residuals.

One adversarial iteration on the seed 1-D problem (two discriminator updates, one generator
update, same networks, batch, seed and optimiser; no viscosity continuation, whose extra terms
the hand-written residuals do not have) is timed with the residuals lowered from sympy and with
the same residuals written by hand in torch. The ratio is the lowering overhead.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import torch

from mfgsolve.options import SolverOptions
from mfgsolve.problem import load_problem
from mfgsolve.train import Trainer
from mfgsolve.train.ergodic import ErgodicFormulation

from ._common import problem_path


class HandWrittenSeed(ErgodicFormulation):
    """The seed problem with its residuals written directly in torch:
    (u')^2/2 + sin(2 pi x) - (f - log Z) - H and -(m u')' = -m u'' - m' u'."""

    def losses(self, st, points, players, frozen, weights=None) -> dict[str, torch.Tensor]:
        # (called by Trainer.losses, which holds the frozen player's weights constant)
        log_z = self._log_z(st.density_net)
        u = st.value_net(points)
        (u_x,) = torch.autograd.grad(u.sum(), points, create_graph=True)
        u_x = u_x[:, 0]
        if "u" in frozen:  # discriminator step
            (u_xx,) = torch.autograd.grad(u_x.sum(), points, create_graph=True)
            m = torch.exp(st.density_net(points) - log_z)
            (m_x,) = torch.autograd.grad(m.sum(), points, create_graph=True)
            fp = -m * u_xx[:, 0].detach() - m_x[:, 0] * u_x.detach()
            return {"fp": (fp**2).mean()}
        log_m = (st.density_net(points) - log_z).detach()  # generator step
        rest = u_x**2 / 2 + torch.sin(2 * torch.pi * points[:, 0]) - log_m
        r = rest - rest.mean()
        return {
            "hjb": (r**2).mean(),
            "constant": rest.mean().detach(),
            "int_u": self._int_u(st.value_net) ** 2,
        }


def _time_iterations(root: Path, hand_written: bool, iterations: int, repeats: int) -> list[float]:
    problem = load_problem(problem_path(root, "ergodic_torus_1d.py"))
    opts = SolverOptions.build(
        problem, {"iterations": iterations, "ema": 0, "continuation": 0, "disc_steps": 2}
    )
    formulation = HandWrittenSeed if hand_written else None
    trainer = Trainer(problem, opts, 0, "cpu", torch.float32, formulation=formulation)
    times = []
    for _ in range(repeats):
        st = trainer.init_state()
        for _ in range(5):  # warm-up
            trainer.iterate(st)
        t0 = time.perf_counter()
        for _ in range(iterations):
            trainer.iterate(st)
        times.append((time.perf_counter() - t0) / iterations)
    return times


def run(out_dir: Path, quick: bool = False, *, root: Path) -> list[dict[str, Any]]:
    """Median seconds per iteration, lowered vs hand-written, interleaved to share machine noise."""
    iterations, repeats = (20, 2) if quick else (200, 5)
    lowered, hand = [], []
    for _ in range(repeats):
        lowered += _time_iterations(root, False, iterations, 1)
        hand += _time_iterations(root, True, iterations, 1)
    lo, ha = statistics.median(lowered), statistics.median(hand)
    ratio = lo / ha
    return [
        {"residuals": "sympy-lowered", "s_per_it": round(lo, 5), "runs": len(lowered)},
        {"residuals": "hand-written torch", "s_per_it": round(ha, 5), "runs": len(hand)},
        {
            "residuals": "ratio lowered / hand-written",
            "s_per_it": round(ratio, 3),
            "target": "<= 1.10",
            "met": ratio <= 1.10,
        },
    ]
