"""Networks for the unknowns: MLP and DGM bodies, exact periodic embedding, density head exp(f)/Z.

- :class:`InputMap` turns raw coordinates into network features: on a torus each space coordinate
  becomes (cos, sin) of 2 pi k x / L for k = 1..K (so every network is exactly periodic); on a box
  coordinates are scaled to [-1, 1]; time is scaled to [-1, 1].
- :class:`MLP` and :class:`DGM` (Sirignano & Spiliopoulos 2018) are the bodies.
- :class:`ValueNetwork` is u_theta; :class:`DensityNetwork` is f_omega with m = exp(f)/Z, Z computed
  by quadrature (per time slice for finite-horizon problems), so m > 0 and int m = 1 by construction.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..problem import Box, Torus

__all__ = ["InputMap", "MLP", "DGM", "ValueNetwork", "DensityNetwork", "make_body"]

_ACTIVATIONS = {
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
    "softplus": nn.Softplus,
    "gelu": nn.GELU,
    "sin": None,
}


class _Sin(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x)


def _activation(name: str) -> nn.Module:
    if name not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; fix: use one of {sorted(_ACTIVATIONS)}")
    return _Sin() if name == "sin" else _ACTIVATIONS[name]()


SQRT_SHIFT = 0.01  # sqrt(tau + shift): a finite slope, 5 at tau = 0


class InputMap(nn.Module):
    """Feature map of (time?, space) coordinates.

    Args:
        domain: the problem's Torus or Box.
        time_interval: (t0, T) for finite-horizon problems (time is the first input column), else None.
        harmonics: number K of Fourier modes per periodic coordinate.
        time_feature: "linear" (time scaled to [-1, 1]) or "sqrt", which adds a second time input
            ``sqrt(tau + 0.01)`` (tau = (t - t0) / (T - t0), scaled to [-1, 1]): it stretches the
            start of the interval, where diffusion from the initial density acts on a sqrt(t)
            scale; its derivative stays finite at t0.
        even_walls: on a Box, space inputs even about the walls instead of linear ones:
            ``cos(pi (x - lo) / (hi - lo))`` on an axis whose faces are both walls (one-to-one on
            the axis and even about both walls, so every function of them has a zero normal
            derivative there: exact Neumann conditions), ``cos(pi (x - lo) / (2 (hi - lo)))``
            when only the lower face is a wall, ``cos(pi (hi - x) / (2 (hi - lo)))`` when only
            the upper one is (see :func:`mfgsolve._walls.wall_faces`).
        extra: a module of the points giving more inputs (``out_features`` columns), e.g.
            :class:`mfgsolve.nn.features.ProblemFeatures`.
    """

    def __init__(
        self,
        domain: Torus | Box,
        time_interval: tuple[float, float] | None = None,
        harmonics: int = 1,
        time_feature: str = "linear",
        even_walls: bool = False,
        extra: nn.Module | None = None,
    ):
        super().__init__()
        self.extra = extra  # features taken from the problem (mfgsolve.nn.features), appended
        if time_feature not in ("linear", "sqrt"):
            raise ValueError(f"time_feature must be 'linear' or 'sqrt', not {time_feature!r}")
        self.sqrt_time = time_feature == "sqrt" and time_interval is not None
        self.periodic = bool(domain.periodic)
        # a box may have periodic axes: those get the embedding, the others the wall inputs
        self.register_buffer(
            "periodic_axes", torch.tensor(domain.periodic_axes, dtype=torch.bool), persistent=False
        )
        self.mixed = any(domain.periodic_axes) and not self.periodic
        self.even_walls = even_walls and not self.periodic
        if self.even_walls:
            from .._walls import wall_faces

            # per non-periodic axis: 0 linear, 1 both faces walls, 2 the lower, 3 the upper
            kinds = [
                {(True, True): 1, (True, False): 2, (False, True): 3}.get(sides, 0)
                for sides, periodic in zip(wall_faces(domain), domain.periodic_axes)
                if not periodic
            ]
            self.register_buffer("wall_kinds", torch.tensor(kinds), persistent=False)
            self.all_walls = all(k == 1 for k in kinds)
        self.has_time = time_interval is not None
        lower = torch.as_tensor(domain.lower, dtype=torch.float64)
        upper = torch.as_tensor(domain.upper, dtype=torch.float64)
        self.register_buffer("lower", lower)
        self.register_buffer("length", upper - lower)
        self.register_buffer("modes", torch.arange(1, harmonics + 1, dtype=torch.float64))
        t0, T = time_interval if time_interval is not None else (0.0, 1.0)
        self.t0, self.T = float(t0), float(T)
        self.harmonics = harmonics
        periodic_count = sum(domain.periodic_axes)
        space = 2 * harmonics * periodic_count + (domain.dim - periodic_count)
        self.out_features = space + (1 if self.has_time else 0) + (1 if self.sqrt_time else 0)
        if extra is not None:
            self.out_features += extra.out_features

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        feats = []
        if self.has_time:
            tau = (points[:, :1] - self.t0) / (self.T - self.t0)
            feats.append(2 * tau - 1)
            x = points[:, 1:]
        else:
            x = points
        lower = self.lower.to(x.dtype)
        length = self.length.to(x.dtype)
        if self.mixed:  # the periodic axes' embedding, then the other axes' inputs
            periodic = self.periodic_axes
            feats += self._embedding(x[:, periodic], lower[periodic], length[periodic])
            x, lower, length = x[:, ~periodic], lower[~periodic], length[~periodic]
        if self.periodic:
            feats += self._embedding(x, lower, length)
        elif self.even_walls and self.all_walls:
            feats.append(torch.cos(math.pi * (x - lower) / length))
        elif self.even_walls:
            feats.append(_even_inputs(x, lower, length, self.wall_kinds))
        else:
            feats.append(2 * (x - lower) / length - 1)
        if self.sqrt_time:  # last, after the space features
            lo, hi = math.sqrt(SQRT_SHIFT), math.sqrt(1 + SQRT_SHIFT)
            feats.append(2 * (torch.sqrt(tau + SQRT_SHIFT) - lo) / (hi - lo) - 1)
        if self.extra is not None:
            feats.append(self.extra(points))
        return torch.cat(feats, dim=1)

    def _embedding(self, x, lower, length) -> list[torch.Tensor]:
        """(cos, sin)(2 pi k (x - lower) / length), k = 1..K, of periodic coordinates."""
        phase = (2 * math.pi) * (x - lower) / length  # (n, d)
        angles = (phase[:, :, None] * self.modes.to(x.dtype)).flatten(1)  # (n, d*K)
        return [torch.cos(angles), torch.sin(angles)]


def _even_inputs(x, lower, length, kinds) -> torch.Tensor:
    """The space inputs of :class:`InputMap` with ``even_walls`` per axis (``kinds``: 0 linear,
    1 walls on both faces, 2 the lower face, 3 the upper face)."""
    cols = []
    for i, kind in enumerate(kinds.tolist()):
        s = (x[:, i] - lower[i]) / length[i]  # in [0, 1]
        if kind == 1:
            cols.append(torch.cos(math.pi * s))
        elif kind == 2:
            cols.append(torch.cos(math.pi * s / 2))
        elif kind == 3:
            cols.append(torch.cos(math.pi * (1 - s) / 2))
        else:
            cols.append(2 * s - 1)
    return torch.stack(cols, dim=1)


class MLP(nn.Module):
    """Fully connected network ``in -> [width] * depth -> out``."""

    def __init__(
        self,
        in_features: int,
        out_features: int = 1,
        width: int = 48,
        depth: int = 3,
        activation: str = "tanh",
    ):
        super().__init__()
        layers: list[nn.Module] = []
        size = in_features
        for _ in range(depth):
            layers += [nn.Linear(size, width), _activation(activation)]
            size = width
        layers.append(nn.Linear(size, out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    @property
    def output(self) -> nn.Linear:
        """The last (linear) layer."""
        return self.net[-1]


class _DGMLayer(nn.Module):
    """One gated layer of Sirignano & Spiliopoulos (2018), eq. (4.2)."""

    def __init__(self, in_features: int, width: int, activation: str):
        super().__init__()
        self.U = nn.Linear(in_features, 4 * width)
        self.W = nn.Linear(width, 3 * width, bias=False)
        self.Wh = nn.Linear(width, width, bias=False)
        self.act = _activation(activation)
        self.width = width

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        ux = self.U(x)
        uz, ug, ur, uh = ux.split(self.width, dim=1)
        wz, wg, wr = self.W(s).split(self.width, dim=1)
        z = self.act(uz + wz)
        g = self.act(ug + wg)
        r = self.act(ur + wr)
        h = self.act(uh + self.Wh(s * r))
        return (1 - g) * h + z * s


class DGM(nn.Module):
    """The DGM architecture: an input layer, ``depth`` gated layers fed with the input, a linear output."""

    def __init__(
        self,
        in_features: int,
        out_features: int = 1,
        width: int = 48,
        depth: int = 3,
        activation: str = "tanh",
    ):
        super().__init__()
        self.inp = nn.Linear(in_features, width)
        self.act = _activation(activation)
        self.layers = nn.ModuleList(_DGMLayer(in_features, width, activation) for _ in range(depth))
        self.out = nn.Linear(width, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.act(self.inp(x))
        for layer in self.layers:
            s = layer(x, s)
        return self.out(s)

    @property
    def output(self) -> nn.Linear:
        """The last (linear) layer."""
        return self.out


def make_body(
    architecture: str, in_features: int, width: int, depth: int, activation: str
) -> nn.Module:
    """Build an ``"mlp"`` or ``"dgm"`` body."""
    if architecture == "mlp":
        return MLP(in_features, 1, width, depth, activation)
    if architecture == "dgm":
        return DGM(in_features, 1, width, depth, activation)
    raise ValueError(f"unknown architecture {architecture!r}; fix: use 'mlp' or 'dgm'")


class ValueNetwork(nn.Module):
    """u_theta(points) -> (n,)."""

    def __init__(self, inputs: InputMap, body: nn.Module):
        super().__init__()
        self.inputs = inputs
        self.body = body

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return self.body(self.inputs(points)).squeeze(-1)

    @torch.no_grad()
    def shift_(self, delta: torch.Tensor) -> None:
        """Add the constant ``delta`` to u (through the last layer's bias)."""
        self.body.output.bias.add_(delta.reshape(-1).to(self.body.output.bias))


class DensityNetwork(nn.Module):
    """f_omega with m = exp(f) / Z; Z = int exp(f) by the quadrature given at each call.

    ``log_density(points, log_z)`` returns f - log Z; ``log_normalizer(nodes, log_weights)`` returns
    log Z = logsumexp(f(nodes) + log w), a scalar (ergodic) or, for finite-horizon problems, one
    value per time slice (nodes of shape (nt, nq, 1 + d)).
    """

    def __init__(self, inputs: InputMap, body: nn.Module):
        super().__init__()
        self.inputs = inputs
        self.body = body

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return self.body(self.inputs(points)).squeeze(-1)

    def log_normalizer(self, nodes: torch.Tensor, log_weights: torch.Tensor) -> torch.Tensor:
        """log int exp(f) by quadrature: nodes (nq, D) or (nt, nq, D); log_weights (nq,)."""
        shape = nodes.shape[:-1]
        f = self.forward(nodes.reshape(-1, nodes.shape[-1])).reshape(shape)
        return torch.logsumexp(f + log_weights, dim=-1)


# The shape parameters on R^d (envelope mean and log-scale, growth coefficients) are stored
# divided by this factor: Adam moves a parameter by about lr per step whatever its gradient, and
# these must travel O(1) (a mean moved by one scale) within the first hundred steps.
SHAPE_RATE = 10.0
# the envelope stays within the domain's window (mean within 4 scales of the centre) and its
# spread within a factor 4 of the domain's scale: the domain says where the mass is
ENVELOPE_REACH = (4.0, math.log(4.0))


class GrowingValueNetwork(ValueNetwork):
    """u on the whole space R^d: ``g(x) + sum_i (a_i xi_i^2 / 2 + b_i xi_i)``, xi = (x - c) / s
    (the domain's centre and scale), with a >= 0 (from 0.13) and b (from 0) trained: a network
    of bounded activations is bounded, and the value of a problem on R^d grows, quadratically for
    the linear-quadratic class. a >= 0 keeps u bounded below, which selects the ergodic HJB's
    solution (u = -a |x|^2 / 2 solves it too, with another constant, and drives m away)."""

    def __init__(self, inputs: InputMap, body: nn.Module, center, scale):
        super().__init__(inputs, body)
        d = len(center)
        self.register_buffer("center", torch.as_tensor(center, dtype=torch.float64))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float64))
        self.quadratic = nn.Parameter(torch.zeros(d, dtype=torch.float64))
        self.linear = nn.Parameter(torch.zeros(d, dtype=torch.float64))

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        xi = (points - self.center.to(points)) / self.scale.to(points)
        a = nn.functional.softplus(SHAPE_RATE * self.quadratic - 2.0)  # >= 0: u bounded below
        b = SHAPE_RATE * self.linear
        growth = (xi * (0.5 * a * xi + b)).sum(-1)
        return super().forward(points) + growth


class EnvelopeDensityNetwork(DensityNetwork):
    """f on the whole space R^d with a Gaussian envelope: ``f(x) = g(x) - sum_i (x_i - mu_i)^2 /
    (2 s_i^2)``, g a network (bounded, so Z is finite), mu and log s trained (from the domain's
    centre and scale). The envelope N(mu, diag(s^2)) is the solver's reference measure:
    collocation points and the quadrature of Z follow it (:meth:`reference`)."""

    def __init__(self, inputs: InputMap, body: nn.Module, center, scale):
        super().__init__(inputs, body)
        self.register_buffer("center", torch.as_tensor(center, dtype=torch.float64))
        self.register_buffer("log_scale0", torch.log(torch.as_tensor(scale, dtype=torch.float64)))
        d = len(center)
        self.shift = nn.Parameter(torch.zeros(d, dtype=torch.float64))  # in units of the scale
        self.log_stretch = nn.Parameter(torch.zeros(d, dtype=torch.float64))

    def envelope(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log standard deviation) of the envelope, differentiable: within the domain's
        window (centre +- 4 scales) and from a quarter to 4 times the domain's scale."""
        reach, stretch = ENVELOPE_REACH
        log_scale = self.log_scale0 + stretch * torch.tanh(SHAPE_RATE * self.log_stretch / stretch)
        shift = reach * torch.tanh(SHAPE_RATE * self.shift / reach)
        return self.center + shift * torch.exp(self.log_scale0), log_scale

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        mean, log_scale = self.envelope()
        z = (points - mean) * torch.exp(-log_scale)
        return super().forward(points) - 0.5 * (z * z).sum(-1)

    @torch.no_grad()
    def reference(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, standard deviation) of the envelope, detached."""
        mean, log_scale = self.envelope()
        return mean.detach().clone(), torch.exp(log_scale.detach())


class PopulationStack(nn.Module):
    """The networks of several populations as one module (one player of the game).

    ``forward(points)`` -> (n, K), column k from ``nets[k]``; for density networks
    ``log_normalizer(nodes, log_weights)`` -> (K,), one log Z per population.
    """

    def __init__(self, nets: list[nn.Module]):
        super().__init__()
        self.nets = nn.ModuleList(nets)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return torch.stack([net(points) for net in self.nets], dim=-1)

    def shift_(self, delta: torch.Tensor) -> None:
        """Add ``delta[k]`` to population k's value network (value networks only)."""
        for net, d in zip(self.nets, delta.reshape(-1)):
            net.shift_(d)

    def log_normalizer(self, nodes: torch.Tensor, log_weights: torch.Tensor) -> torch.Tensor:
        return torch.stack([net.log_normalizer(nodes, log_weights) for net in self.nets])


def stack_populations(pairs: list[tuple[nn.Module, nn.Module]]) -> tuple[nn.Module, nn.Module]:
    """The (value, density) networks of a problem from each population's pair: the pair itself
    for one population, each role's networks as one :class:`PopulationStack` for several."""
    if len(pairs) == 1:
        return pairs[0]
    return PopulationStack([v for v, _ in pairs]), PopulationStack([d for _, d in pairs])
