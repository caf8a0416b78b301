"""Networks: exact periodicity, density normalisation by construction, DGM shapes."""

import math

import numpy as np
import pytest
import sympy as sp
import torch

from mfgsolve import Box, Torus
from mfgsolve.nn import DGM, MLP, DensityNetwork, InputMap, ValueNetwork, make_body
from mfgsolve.sampling import quadrature

x, y, z = sp.symbols("x y z")


def _net(domain, arch="mlp", cls=ValueNetwork, time_interval=None, harmonics=1):
    torch.manual_seed(0)
    inputs = InputMap(domain, time_interval, harmonics)
    return cls(inputs, make_body(arch, inputs.out_features, 16, 2, "tanh")).double()


@pytest.mark.parametrize("arch", ["mlp", "dgm"])
def test_torus_networks_are_exactly_periodic(arch):
    domain = Torus([x, y], lengths=[1.0, 2.5])
    net = _net(domain, arch, harmonics=2)
    pts = torch.rand(50, 2, dtype=torch.float64) * torch.tensor([1.0, 2.5], dtype=torch.float64)
    shifted = pts + torch.tensor([1.0, -2.5], dtype=torch.float64)
    assert torch.allclose(net(pts), net(shifted), atol=1e-12)
    # derivatives are periodic too
    p1, p2 = pts.clone().requires_grad_(True), shifted.clone().requires_grad_(True)
    g1 = torch.autograd.grad(net(p1).sum(), p1)[0]
    g2 = torch.autograd.grad(net(p2).sum(), p2)[0]
    assert torch.allclose(g1, g2, atol=1e-10)


def test_density_head_integrates_to_one_and_is_positive():
    domain = Torus([x, y])
    dens = _net(domain, cls=DensityNetwork)
    q = quadrature(domain, 64 * 64)
    log_z = dens.log_normalizer(q.nodes, q.log_weights)
    fine = quadrature(domain, 256 * 256)
    m = torch.exp(dens(fine.nodes) - log_z)
    assert bool((m > 0).all())
    assert (
        abs(float(fine.integrate(m).detach()) - 1.0) < 1e-10
    )  # periodic trapezoid: spectrally accurate


def test_box_input_scaling_and_time():
    domain = Box([x], [(-2.0, 3.0)])
    inputs = InputMap(domain, time_interval=(0.0, 2.0))
    feats = inputs(torch.tensor([[0.0, -2.0], [2.0, 3.0]], dtype=torch.float64))
    assert torch.allclose(feats, torch.tensor([[-1.0, -1.0], [1.0, 1.0]], dtype=torch.float64))


def test_sqrt_time_feature_values_and_finite_slope_at_the_start():
    domain = Box([x], [(-2.0, 3.0)])
    inputs = InputMap(domain, time_interval=(1.0, 3.0), time_feature="sqrt")
    assert inputs.out_features == 3
    t = torch.tensor([1.0, 1.5, 3.0], dtype=torch.float64, requires_grad=True)
    pts = torch.stack([t, torch.zeros(3, dtype=torch.float64)], dim=1)
    feats = inputs(pts)
    tau = np.array([0.0, 0.25, 1.0])
    lo, hi = math.sqrt(0.01), math.sqrt(1.01)
    want = 2 * (np.sqrt(tau + 0.01) - lo) / (hi - lo) - 1
    np.testing.assert_allclose(feats[:, 2].detach().numpy(), want, atol=1e-14)
    np.testing.assert_allclose(feats[:, 0].detach().numpy(), 2 * tau - 1, atol=1e-14)
    (slope,) = torch.autograd.grad(feats[:, 2].sum(), t)
    # d/dt = 2 / (hi - lo) * 1 / (2 sqrt(tau + 0.01)) / (T - t0): finite at t0
    want_slope = 2 / (hi - lo) / (2 * np.sqrt(tau + 0.01)) / 2.0
    np.testing.assert_allclose(slope.numpy(), want_slope, rtol=1e-12)
    with pytest.raises(ValueError, match="time_feature"):
        InputMap(domain, time_interval=(0.0, 1.0), time_feature="log")


def test_dgm_and_mlp_output_shapes():
    for body in (MLP(5, 1, 8, 3), DGM(5, 1, 8, 3)):
        assert body(torch.randn(7, 5)).shape == (7, 1)


def test_unknown_architecture_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown architecture 'resnet'"):
        make_body("resnet", 2, 8, 2, "tanh")
    with pytest.raises(ValueError, match="unknown activation"):
        make_body("mlp", 2, 8, 2, "relu6")


@pytest.mark.parametrize(
    "rule, dim, tol",
    [("grid", 1, 1e-12), ("grid", 2, 1e-12), ("sobol", 3, 2e-3), ("gauss", 2, 1e-8)],
)
def test_quadrature_rules_integrate_known_functions(rule, dim, tol):
    syms = sp.symbols(f"a0:{dim}")
    domain = Torus(syms) if rule != "gauss" else Box(syms, [(0, 1)] * dim)
    q = quadrature(domain, 4096 if dim > 2 else 256, rule=rule)
    vals = torch.exp(torch.sin(2 * math.pi * q.nodes).sum(1))
    exact = 1.2660658777520082**dim  # I0(1)^d
    assert abs(float(q.integrate(vals)) - exact) / exact < tol


def test_sampler_is_reproducible_and_stays_in_the_domain():
    from mfgsolve.sampling import CollocationSampler

    domain = Box([x, y], [(0, 2), (-1, 1)])
    a = CollocationSampler(domain, 64, "sobol", torch.Generator().manual_seed(3))
    b = CollocationSampler(domain, 64, "sobol", torch.Generator().manual_seed(3))
    pa, pb = a.sample(), b.sample()
    assert torch.equal(pa, pb)
    assert not torch.equal(pa, a.sample())
    arr = pa.numpy()
    assert np.all(arr[:, 0] >= 0) and np.all(arr[:, 0] <= 2) and np.all(np.abs(arr[:, 1]) <= 1)
