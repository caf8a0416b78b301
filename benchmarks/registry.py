"""The benchmarks ``mfgsolve bench NAME`` runs: NAME -> (file in this folder, one-line description).

Each file defines ``run(out_dir, quick=False, *, root) -> rows`` (``root``: the checkout holding
``benchmarks/`` and ``problems/``).
"""

from __future__ import annotations

BENCHMARKS: dict[str, tuple[str, str]] = {
    "seed-1d": (
        "seed_1d.py",
        "seed problem in 1-D, 3 seeds: m_rel_l2, u_l2 <= 1e-2, |H error| <= 1e-3 in <= 60 s",
    ),
    "seed-4d": (
        "seed_4d.py",
        "seed problem in 4-D, 3 seeds, adversarial and joint: m_rel_l2 <= 5e-2 in <= 10 min",
    ),
    "defaults": (
        "defaults.py",
        "default options on problems they were not tuned on (double well, viscous 1-D/2-D, non-separable 2-D)",
    ),
    "lowering": (
        "lowering.py",
        "step time with sympy-lowered vs hand-written residuals (target ratio <= 1.10)",
    ),
    "derivatives": (
        "derivatives.py",
        "derivative engines (reverse mode, torch.func, Hutchinson): gradient + Laplacian time, d = 1..128",
    ),
    "scaling": (
        "scaling.py",
        "seed problem family d = 1, 2, 4, 8, 16 and the seed 4-D problem: time, step time, errors",
    ),
    "finite-horizon": (
        "finite_horizon.py",
        "finite-horizon MFGs: LQ mean-coupled, manufactured 1-D/2-D, crowd motion vs reference",
    ),
    "reference": (
        "reference.py",
        "finite-difference reference: accuracy, order, speed",
    ),
    "dynamics": (
        "dynamics.py",
        "SDE model of GAN training: weak-error slopes; WGAN W1",
    ),
    "fbsde": (
        "fbsde.py",
        "FBSDE solvers in d = 100: error of u(0, x0) and time",
    ),
    "unseen": (
        "unseen.py",
        "defaults on problems/unseen (mixed directions, d = 2..16, FH d = 1, 2): m_rel_l2 <= 5e-2 in <= 15 min",
    ),
    "classes": (
        "classes.py",
        "problem classes (discounted, two populations, exits; manufactured, d = 1, 2): networks m <= 1e-2, u <= 2e-2 in <= 15 min, reference; evacuation through a door against the reference",
    ),
    "verdict": (
        "verdict.py",
        "convergence verdict vs exact error on default and deliberately failed runs (>= 95 % agree)",
    ),
    "high-d": (
        "high_d.py",
        "d = 10, 32, 64, 100: torus family, LQ ergodic and finite-horizon on R^d; seconds, s/it, peak RSS, errors with standard errors",
    ),
    "peers": (
        "peers.py",
        "mfgsolve vs DeepXDE (optional extra) on the seed 1-D and 4-D: seconds to 1e-2 and 1e-3, final errors, s/iteration, lines of user code",
    ),
    "startup": (
        "startup.py",
        "start-up: --help <= 0.5 s; check and import mfgsolve <= 1.2 x import torch, sympy",
    ),
}
