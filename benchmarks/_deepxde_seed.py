"""The seed problem written the way DeepXDE's users write a PINN (the peer of ``bench peers``).

    |grad u|^2 / 2 + sum_i sin(2 pi x_i) = ln m + Hbar,   -div(m grad u) = 0   on the torus T^d,
    int u = 0,  int m = 1.

3 x 48 tanh, exact periodicity by a sin/cos feature transform, m = exp(second output), Hbar a
``dde.Variable``, int u = 0 and int m = 1 as batch-mean residuals, Hammersley points. This file
is the user code whose lines ``bench peers`` counts: the lines from ``def build`` to its return.
"""

import math

import deepxde as dde
import torch


def build(d: int, points: int):
    pi2 = 2 * math.pi
    geom = dde.geometry.Hypercube([0.0] * d, [1.0] * d) if d > 1 else dde.geometry.Interval(0, 1)
    hbar = dde.Variable(0.0)

    def pde(x, y):
        u, m = y[:, 0:1], y[:, 1:2]
        hjb = -torch.log(m) - hbar
        fp = 0.0
        for i in range(d):
            u_i = dde.grad.jacobian(y, x, i=0, j=i)
            m_i = dde.grad.jacobian(y, x, i=1, j=i)
            u_ii = dde.grad.hessian(y, x, component=0, i=i, j=i)
            hjb = hjb + u_i**2 / 2 + torch.sin(pi2 * x[:, i : i + 1])
            fp = fp - (m_i * u_i + m * u_ii)
        mean_u = torch.mean(u) * torch.ones_like(u)
        mass = (torch.mean(m) - 1) * torch.ones_like(m)
        return [hjb, fp, mean_u, mass]

    data = dde.data.PDE(geom, pde, [], num_domain=points, train_distribution="Hammersley")
    net = dde.nn.FNN([2 * d] + [48] * 3 + [2], "tanh", "Glorot normal")
    net.apply_feature_transform(
        lambda x: torch.cat([torch.sin(pi2 * x), torch.cos(pi2 * x)], dim=1)
    )
    net.apply_output_transform(lambda x, y: torch.cat([y[:, :1], torch.exp(y[:, 1:])], dim=1))
    return dde.Model(data, net), hbar
