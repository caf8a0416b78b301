"""Small networks used by the FBSDE solvers."""

from __future__ import annotations

import torch
from torch import nn

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "softplus": nn.Softplus, "silu": nn.SiLU}


class MLP(nn.Module):
    """Fully connected network ``in_dim -> width x depth -> out_dim``.

    Args:
        in_dim, out_dim: input and output sizes.
        width: hidden width.
        depth: number of hidden layers.
        activation: one of relu, tanh, softplus, silu.
        out_scale: multiplies the initial weights of the last layer (small: start near zero).
        skip: add a linear map from the input to the output (zero at start); a narrow ReLU layer
            represents near-linear maps such as Z = c(t) x in high dimension poorly without it.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        width: int,
        depth: int,
        activation: str = "relu",
        out_scale: float = 0.1,
        skip: bool = False,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        size = in_dim
        for _ in range(depth):
            layers += [nn.Linear(size, width), _ACTIVATIONS[activation]()]
            size = width
        last = nn.Linear(size, out_dim)
        with torch.no_grad():
            last.weight.mul_(out_scale)
            last.bias.zero_()
        layers.append(last)
        self.net = nn.Sequential(*layers)
        self.skip = nn.Linear(in_dim, out_dim, bias=False) if skip else None
        if self.skip is not None:
            nn.init.zeros_(self.skip.weight)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        out = self.net(inputs)
        return out if self.skip is None else out + self.skip(inputs)
