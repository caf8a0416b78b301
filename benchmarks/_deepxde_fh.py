"""``problems/manufactured_fh_torus_1d.py`` written the way DeepXDE's users write a PINN (the
finite-horizon peer of ``bench peers``).

    -u_t - nu u_xx + u_x^2 / 2 - log m = f_H,    m_t - nu m_xx - (m u_x)_x = f_F,   t in [0, 1],
    u(1, x) = u*(1, x),  m(0, x) = m*(0, x),  on the unit circle, nu = 1/10.

3 x 48 tanh on (sin 2 pi x, cos 2 pi x, t), the data imposed by output transforms
(u = g + (1 - t) N_u, m = m0 exp(t N_m)), the manufactured sources by sympy, Hammersley points.
This file is the user code whose lines ``bench peers`` counts: the lines of ``build``.
"""

import math

import deepxde as dde
import sympy as sp
import torch


def build(points: int):
    ts, xs = sp.symbols("t x")
    nu = sp.Rational(1, 10)
    u_star = (2 - ts) * sp.cos(2 * sp.pi * xs + sp.pi * ts / 2) / 4
    m_star = 1 + sp.sin(2 * sp.pi * (xs - ts / 2)) / 2
    f_h = -u_star.diff(ts) - nu * u_star.diff(xs, 2) + u_star.diff(xs) ** 2 / 2 - sp.log(m_star)
    f_f = m_star.diff(ts) - nu * m_star.diff(xs, 2) - (m_star * u_star.diff(xs)).diff(xs)
    source_h = sp.lambdify((ts, xs), f_h.evalf(), "torch")
    source_f = sp.lambdify((ts, xs), f_f.evalf(), "torch")
    g = sp.lambdify(xs, u_star.subs(ts, 1).evalf(), "torch")
    m0 = sp.lambdify(xs, m_star.subs(ts, 0).evalf(), "torch")
    geom = dde.geometry.GeometryXTime(dde.geometry.Interval(0, 1), dde.geometry.TimeDomain(0, 1))

    def pde(X, y):
        x, t = X[:, 0:1], X[:, 1:2]
        m = y[:, 1:2]
        u_x, u_t = dde.grad.jacobian(y, X, i=0, j=0), dde.grad.jacobian(y, X, i=0, j=1)
        m_x, m_t = dde.grad.jacobian(y, X, i=1, j=0), dde.grad.jacobian(y, X, i=1, j=1)
        u_xx = dde.grad.hessian(y, X, component=0, i=0, j=0)
        m_xx = dde.grad.hessian(y, X, component=1, i=0, j=0)
        hjb = -u_t - 0.1 * u_xx + u_x**2 / 2 - torch.log(m) - source_h(t, x)
        fp = m_t - 0.1 * m_xx - (m_x * u_x + m * u_xx) - source_f(t, x)
        return [hjb, fp]

    def features(X):
        x, t = X[:, 0:1], X[:, 1:2]
        return torch.cat([torch.sin(2 * math.pi * x), torch.cos(2 * math.pi * x), t], dim=1)

    def data(X, y):
        x, t = X[:, 0:1], X[:, 1:2]
        u = g(x) + (1 - t) * y[:, 0:1]
        m = m0(x) * torch.exp(t * y[:, 1:2])
        return torch.cat([u, m], dim=1)

    data_ = dde.data.TimePDE(geom, pde, [], num_domain=points, train_distribution="Hammersley")
    net = dde.nn.FNN([3] + [48] * 3 + [2], "tanh", "Glorot normal")
    net.apply_feature_transform(features)
    net.apply_output_transform(data)
    return dde.Model(data_, net)
