"""compare: errors by randomized QMC in d >= 3, against integrals known independently."""

from pathlib import Path

import numpy as np
import pytest

from mfgsolve import compare, load_problem
from mfgsolve.metrics._integrals import exact_functions

ROOT = Path(__file__).resolve().parent.parent


class _Perturbed:
    """The exact solution of the d-dimensional seed family, perturbed by known amounts:
    m (1 + eps sin 2 pi x1) and u = delta cos 2 pi x2 (exact u = 0)."""

    def __init__(self, problem, eps: float, delta: float):
        self.problem = problem
        _, self._m, self.constant = exact_functions(problem)
        self.eps, self.delta = eps, delta

    def density(self, x):
        return self._m(x) * (1 + self.eps * np.sin(2 * np.pi * x[:, 0]))

    def value(self, x):
        return self.delta * np.cos(2 * np.pi * x[:, 1])


@pytest.mark.parametrize("d", [3, 6])
def test_rqmc_errors_match_independent_integrals_with_their_standard_error(d):
    problem = load_problem(ROOT / "problems" / "ergodic_torus_nd.py", d=d)
    eps, delta = 0.05, 0.01
    out = compare(_Perturbed(problem, eps, delta))
    # |m eps s1| / |m| = eps sqrt(int e^{2 a s} s^2 / int e^{2 a s}) with s = sin 2 pi x, a = 1/sqrt(d):
    # the other coordinates factor out; 1-D periodic trapezoid sums are spectrally exact here
    a, s = 1 / np.sqrt(d), np.sin(2 * np.pi * np.arange(4096) / 4096)
    weight = np.exp(2 * a * s)
    m_rel = eps * np.sqrt(np.sum(weight * s**2) / np.sum(weight))
    u_l2 = delta / np.sqrt(2)
    assert out["m_rel_l2"] == pytest.approx(m_rel, rel=1e-3)
    assert out["u_l2"] == pytest.approx(u_l2, rel=1e-3)
    assert abs(out["m_rel_l2"] - m_rel) <= 4 * out["m_rel_l2_se"] + 1e-12
    assert out["m_rel_l2_se"] <= 5e-4 * out["m_rel_l2"]  # three significant digits
    assert out["log_z_se"] < 1e-3 and "randomized Sobol" in out["quadrature"]
    # int of delta cos(2 pi x2) is 0: the estimate is within its standard error's reach
    assert abs(out["mean_u"]) <= 4 * out["mean_u_se"] + 1e-12 and out["mean_u_se"] < 1e-5
