"""Networks of finite-horizon problems in space-time, with the data imposed by construction.

- terminal condition: ``u(t, x) = g(x) + (T - t) N_u(t, x)`` (:class:`SpaceTimeValue`), so
  u(T, .) = g exactly;
- initial condition, positivity and mass: ``log m(t, x) = log m0(x) + (t - t0) N_m(t, x) - log Z(t)``
  with ``Z(t) = int m0 exp((t - t0) N_m)`` by a fixed space quadrature at each time
  (:class:`SpaceTimeDensity`); its ``forward`` returns the normalised log m, the convention of every
  density field (the ergodic one subtracts its log Z in :mod:`mfgsolve.train.ergodic`).

Box domains, ``walls="exact"`` (the default where it applies, see :func:`exact_walls_obstacle`):
Neumann for u and no flux for m hold by construction. Both networks see the space coordinates
through ``cos(pi (x_i - lo_i) / (hi_i - lo_i))`` (even about every wall), and the density uses
``log m0(sigma_t(x))``, where ``sigma_t`` flattens each axis within
``l(t) = sqrt(2 nu (t - t0 + s)) - sqrt(2 nu s)``, ``s = 0.01 (T - t0)``, of its walls
(:func:`wall_flattening`; the identity at t0, so m(t0) = m0 still): every normal derivative of u
and log m vanishes for t > t0, and with dH/dp_n = 0 at p_n = 0 so does the flux. m0 itself may
violate no flux (a blob next to a wall); the flattening is the boundary layer through which the
solution forgets that, on the diffusive scale sqrt(nu t). See docs/finite_horizon.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import sympy as sp
import torch
from torch import nn

from .._symbolic import evaluate_numeric_constants
from ..problem import MFG, ProblemError
from ..sampling import quadrature
from .features import problem_features
from .layers import SQRT_SHIFT, InputMap, make_body, stack_populations

if TYPE_CHECKING:
    from ..options import SolverOptions

__all__ = [
    "SpaceTimeDensity",
    "SpaceTimeValue",
    "space_time_networks",
    "torch_function",
    "wall_flattening",
]


def torch_function(expr: sp.Expr, symbols: Sequence[sp.Symbol]) -> Callable:
    """A torch function of the space columns of ``points`` (n, 1 + d) -> (n,)."""
    fn = sp.lambdify(list(symbols), evaluate_numeric_constants(expr), modules="torch")

    def evaluate(points: torch.Tensor) -> torch.Tensor:
        cols = [points[:, 1 + i] for i in range(len(symbols))]
        out = fn(*cols)
        if not torch.is_tensor(out):
            out = torch.as_tensor(out, dtype=points.dtype, device=points.device)
        return out.to(points.dtype).expand(points.shape[0])

    return evaluate


class SpaceTimeValue(nn.Module):
    """u(t, x) = g(x) + (T - t) N(t, x): the terminal condition holds exactly.

    Args:
        inputs: feature map of (t, x).
        body: the network N.
        terminal: torch function of points giving g(x).
        T: the horizon.
    """

    def __init__(self, inputs: InputMap, body: nn.Module, terminal: Callable, T: float):
        super().__init__()
        self.inputs, self.body, self.terminal, self.T = inputs, body, terminal, float(T)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        net = self.body(self.inputs(points)).squeeze(-1)
        return self.terminal(points) + (self.T - points[:, 0]) * net


def wall_flattening(x: torch.Tensor, a: float, b: float, ell: torch.Tensor) -> torch.Tensor:
    """The coordinate sigma(x) on [a, b] with sigma(a) = a and
    sigma'(x) = (1 - exp(-(x - a) / l)) (1 - exp(-(b - x) / l)): zero slope at both walls, the
    identity as l -> 0, and within about l of the walls only (l: the boundary layer's width)."""
    length = b - a
    u = x - a
    tail = torch.exp(-length / ell)
    return (
        a
        + u * (1 + tail)
        - ell * (1 - torch.exp(-u / ell))
        - ell * (torch.exp(-(length - u) / ell) - tail)
    )


class SpaceTimeDensity(nn.Module):
    """Normalised log m(t, x) = log m0(x) + (t - t0) N(t, x) - log Z(t).

    ``forward`` returns the normalised log-density: Z(t) is a quadrature over fixed space nodes at
    each distinct time of the batch; its t-derivative is attached to every point so that autograd
    gives the exact d/dt log m (first order in t).

    Args:
        inputs, body: the network N.
        log_initial: torch function of points giving log m0(x).
        t0: initial time.
        nodes: (q, d) space quadrature nodes; log_weights: (q,) their log weights.
        wall_layer: exact walls on a box: (lower bounds, upper bounds, rate, shift); log m0 is
            then taken at :func:`wall_flattening` of each axis with the layer width
            ``l = sqrt(rate (t - t0 + shift)) - sqrt(rate shift)``. None: log m0(x) itself.
    """

    def __init__(
        self,
        inputs: InputMap,
        body: nn.Module,
        log_initial: Callable,
        t0: float,
        nodes: torch.Tensor,
        log_weights: torch.Tensor,
        wall_layer: tuple[Sequence[float], Sequence[float], float, float] | None = None,
    ):
        super().__init__()
        self.inputs, self.body, self.log_initial, self.t0 = inputs, body, log_initial, float(t0)
        self.register_buffer("nodes", nodes)
        self.register_buffer("log_weights", log_weights)
        self.wall_layer = None
        if wall_layer is not None:
            lower, upper, rate, shift = wall_layer
            self.wall_layer = (
                [float(a) for a in lower],
                [float(b) for b in upper],
                float(rate),
                float(shift),
            )

    def unnormalized(self, points: torch.Tensor) -> torch.Tensor:
        """log m0(x) + (t - t0) N(t, x); with exact walls, log m0(sigma_t(x)) + (t - t0) N."""
        net = self.body(self.inputs(points)).squeeze(-1)
        tau = points[:, 0] - self.t0
        if self.wall_layer is None:
            return self.log_initial(points) + tau * net
        lower, upper, rate, shift = self.wall_layer
        # l = sqrt(rate (tau + shift)) - sqrt(rate shift): l(t0) = 0 (sigma = identity there) with
        # a finite slope, so m_t stays finite at t0; written to avoid cancellation, plus a floor
        # that keeps 1 / l finite
        ell = rate * tau / (torch.sqrt(rate * (tau + shift)) + math.sqrt(rate * shift)) + 1e-12
        cols = [points[:, :1]]
        for i, (a, b) in enumerate(zip(lower, upper)):
            cols.append(wall_flattening(points[:, 1 + i], a, b, ell)[:, None])
        return self.log_initial(torch.cat(cols, dim=1)) + tau * net

    def _slice_logits(self, times: torch.Tensor) -> torch.Tensor:
        """(k, q): unnormalised log m at (t_k, y_j) plus log w_j."""
        k, q = times.shape[0], self.nodes.shape[0]
        pts = torch.cat(
            [times[:, None, None].expand(k, q, 1), self.nodes[None].expand(k, q, -1)], dim=-1
        ).reshape(k * q, -1)
        return self.unnormalized(pts).reshape(k, q) + self.log_weights

    def slices(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Distinct times of ``points`` (k,) and the index (n,) of each point's time among them."""
        return torch.unique(points[:, 0].detach(), return_inverse=True)

    def probabilities(self, times: torch.Tensor) -> torch.Tensor:
        """(k, q) normalised quadrature weights w_j m(t_k, y_j) (rows sum to 1)."""
        return torch.softmax(self._slice_logits(times), dim=-1)

    def log_normalizer(self, times: torch.Tensor, with_derivative: bool = False):
        """log Z at ``times`` (k,), and d log Z / dt if asked (differentiable in the parameters)."""
        chunk = max(1, 65536 // self.nodes.shape[0])
        logs, ders = [], []
        for tk in times.split(chunk):
            if with_derivative:
                with torch.enable_grad():
                    tq = tk.detach().clone().requires_grad_(True)
                    log_z = torch.logsumexp(self._slice_logits(tq), dim=-1)
                    (der,) = torch.autograd.grad(log_z.sum(), tq, create_graph=True)
                ders.append(der)
            else:
                log_z = torch.logsumexp(self._slice_logits(tk), dim=-1)
            logs.append(log_z)
        return torch.cat(logs), (torch.cat(ders) if with_derivative else None)

    def forward(self, points: torch.Tensor, time_derivative: bool = True) -> torch.Tensor:
        """Normalised log m at ``points``; ``time_derivative=False`` skips d log Z / dt (the
        t-derivative of the result is then wrong: for callers that need m and x-derivatives only)."""
        times, index = self.slices(points)
        need_dt = time_derivative and torch.is_grad_enabled() and points.requires_grad
        log_z, d_log_z = self.log_normalizer(times, with_derivative=need_dt)
        t = points[:, 0]
        per_point = log_z[index]
        if need_dt:  # value log Z(t_i), t-derivative d log Z / dt (t_i)
            per_point = per_point + d_log_z[index] * (t - t.detach())
        return self.unnormalized(points) - per_point


def space_time_networks(
    problem: MFG, opts: SolverOptions, device, dtype
) -> tuple[nn.Module, nn.Module]:
    """The value and density networks of a finite-horizon problem (exact terminal/initial data).

    With several populations: one value and one density network per population, stacked
    (:class:`~mfgsolve.nn.layers.PopulationStack`), built in the order u_1, m_1, u_2, m_2, ...
    """
    q = quadrature(problem.domain, opts.sampling.quadrature_points, seed=0)
    pairs = [_population_networks(problem, opts, k, q) for k in range(problem.populations)]
    value, density = stack_populations(pairs)
    return value.to(device, dtype), density.to(device, dtype)


def _population_networks(
    problem: MFG, opts: SolverOptions, k: int, q
) -> tuple[SpaceTimeValue, SpaceTimeDensity]:
    """Population k's value and density networks, with its terminal and initial data."""
    space = problem.domain.symbols
    terminal = torch_function(problem.terminals[k], space)
    log_m0_expr = sp.expand_log(sp.log(problem.initials[k]), force=True)
    log_initial = torch_function(log_m0_expr, space)
    m0 = np.exp(
        log_initial(torch.cat([torch.zeros(len(q.nodes), 1, dtype=q.nodes.dtype), q.nodes], 1))
        .double()
        .numpy()
    )
    if not np.all(np.isfinite(m0)) or np.min(m0) <= 0:
        of = f" of {problem.densities[k].func}" if problem.populations > 1 else ""
        raise ProblemError(
            f"problem '{problem.name}': the initial density{of} is not positive on the whole domain, which the exact construction log m = log m0 + ... needs; fix: add a small positive floor to m0"
        )
    net = opts.network
    exact_walls = net.walls == "exact"
    nets = []
    for _ in range(2):
        inputs = InputMap(
            problem.domain,
            (problem.t0, problem.T),
            net.harmonics,
            net.time_feature,
            even_walls=exact_walls,
            extra=problem_features(problem, net.features, net.harmonics, time=True),
        )
        body = make_body(
            net.architecture, inputs.out_features, net.width, net.depth, net.activation
        )
        nets.append((inputs, body))
    value = SpaceTimeValue(*nets[0], terminal, problem.T)
    wall_layer = None
    if exact_walls:
        # layer width l(t) ~ sqrt(2 nu (t - t0)), that of diffusion from the walls, with the time
        # shift of the sqrt time input (a finite slope at t0)
        nu = float(problem.substitute(sp.sympify(problem.hamiltonian_form.viscosity)))
        lower = [float(lo) for lo, _ in problem.domain.bounds]
        upper = [float(hi) for _, hi in problem.domain.bounds]
        wall_layer = (lower, upper, 2 * nu, SQRT_SHIFT * (problem.T - problem.t0))
    density = SpaceTimeDensity(
        *nets[1], log_initial, problem.t0, q.nodes, q.log_weights, wall_layer=wall_layer
    )
    return value, density
