"""Training dynamics of GANs: the SDE approximation of gradient descent-ascent and WGAN as OT.

Cao & Guo (2020) model stochastic gradient descent-ascent with learning rate ``eta`` and batch size
``B`` by an SDE whose drift carries an ``eta / 2`` correction and whose diffusion is
``sqrt(2 / beta) Sigma^(1/2)``, ``beta = 2 B / eta``; the corrected SDE is weakly second order in
``eta``. This package computes those objects with ``torch.func`` (:mod:`.game`), simulates iterates
and SDEs with coupled noise (:mod:`.simulate`), propagates exact moments for quadratic games
(:mod:`.linear`), measures weak errors (:mod:`.weak_error`), diagnoses real training runs
(:mod:`.diagnostics`) and estimates W1 with a WGAN critic against exact optimal transport
(:mod:`.wgan`).
"""

from .diagnostics import CORRECTION_WARN, NOISE_WARN, game_diagnostics, suggest
from .game import (
    SCHEMES,
    DynamicsError,
    corrected_drift,
    correction,
    drift,
    drift_covariance,
    drift_jvp,
    mean_field,
)
from .integrators import METHODS, simulate, simulate_minibatch_sga
from .linear import exact_weak_errors, linearise, ou_moments, sga_moments
from .toys import DiracGAN, LinearQuadraticGame
from .weak_error import coupled_weak_errors, fit_slope, second_moment
from .wgan import CriticResult, critic_w1, exact_w1

__all__ = [
    "CORRECTION_WARN",
    "METHODS",
    "NOISE_WARN",
    "SCHEMES",
    "CriticResult",
    "DiracGAN",
    "DynamicsError",
    "LinearQuadraticGame",
    "corrected_drift",
    "correction",
    "coupled_weak_errors",
    "critic_w1",
    "drift",
    "drift_covariance",
    "drift_jvp",
    "exact_w1",
    "exact_weak_errors",
    "fit_slope",
    "game_diagnostics",
    "linearise",
    "mean_field",
    "ou_moments",
    "second_moment",
    "sga_moments",
    "simulate",
    "simulate_minibatch_sga",
    "suggest",
]
