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
from sympy.core.function import AppliedUndef
from torch import nn

from .._symbolic import evaluate_numeric_constants
from .._walls import wall_faces
from ..lowering.space_time import points_function
from ..problem import MFG, ProblemError
from ..sampling import quadrature
from .features import problem_features
from .layers import SQRT_SHIFT, InputMap, make_body, stack_populations

if TYPE_CHECKING:
    from ..options import SolverOptions

__all__ = [
    "MassOverTime",
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


def wall_flattening(
    x: torch.Tensor, a: float | None, b: float | None, ell: torch.Tensor
) -> torch.Tensor:
    """The coordinate sigma(x) on [a, b] with sigma(a) = a and
    sigma'(x) = (1 - exp(-(x - a) / l)) (1 - exp(-(b - x) / l)): zero slope at both walls, the
    identity as l -> 0, and within about l of the walls only (l: the boundary layer's width).
    With one wall (``b`` or ``a`` None), the factor of that wall alone:
    ``sigma = x - l (1 - exp(-(x - a) / l))`` or ``x + l (1 - exp(-(b - x) / l))``."""
    if a is None and b is None:
        return x
    if b is None:
        return x - ell * (1 - torch.exp(-(x - a) / ell))
    if a is None:
        return x + ell * (1 - torch.exp(-(b - x) / ell))
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
        mass: on a domain with exits, where the mass leaves, the network of the mass
            ``M(t) = exp((t - t0) g(t))`` (:class:`MassOverTime`): the density is then
            ``M(t)`` times the normalised shape above (m0 of mass 1, so M(t0) = 1). None: mass 1.
        exit_layer: an :class:`ExitLayer` (a domain with exits): its log factor is added to
            the unnormalised log m.
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
        mass: nn.Module | None = None,
        exit_layer: nn.Module | None = None,
    ):
        super().__init__()
        self.inputs, self.body, self.log_initial, self.t0 = inputs, body, log_initial, float(t0)
        self.mass, self.exit_layer = mass, exit_layer
        self.register_buffer("nodes", nodes)
        self.register_buffer("log_weights", log_weights)
        self.wall_layer = None
        if wall_layer is not None:
            lower, upper, rate, shift = wall_layer
            self.wall_layer = (  # (None: a face that is not a wall throughout, not flattened)
                [None if a is None else float(a) for a in lower],
                [None if b is None else float(b) for b in upper],
                float(rate),
                float(shift),
            )

    def unnormalized(self, points: torch.Tensor) -> torch.Tensor:
        """log m0(x) + (t - t0) N(t, x); with exact walls, log m0(sigma_t(x)) + (t - t0) N; with
        exits, plus the :class:`ExitLayer`."""
        net = self.body(self.inputs(points)).squeeze(-1)
        tau = points[:, 0] - self.t0
        base = self.log_initial(self._flattened(points, tau)) + tau * net
        if self.exit_layer is None:
            return base
        return base + self.exit_layer(points, self._flattened if self.wall_layer else None)

    def _flattened(self, points: torch.Tensor, tau: torch.Tensor | None = None) -> torch.Tensor:
        """The points with each exact wall's :func:`wall_flattening` (the points themselves
        without exact walls); ``tau``: t - t0 of the points, when already computed."""
        if self.wall_layer is None:
            return points
        if tau is None:
            tau = points[:, 0] - self.t0
        lower, upper, rate, shift = self.wall_layer
        # l(t0) = 0 (sigma = identity there) with a finite slope, so m_t stays finite at t0
        ell = layer_width(tau, rate, shift)
        cols = [points[:, :1]]
        for i, (a, b) in enumerate(zip(lower, upper)):
            cols.append(wall_flattening(points[:, 1 + i], a, b, ell)[:, None])
        return torch.cat(cols, dim=1)

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
        """(k, q) quadrature weights w_j m(t_k, y_j): rows sum to 1, or to the mass M(t_k) left
        in the domain when it has exits."""
        probs = torch.softmax(self._slice_logits(times), dim=-1)
        if self.mass is None:
            return probs
        return probs * torch.exp(self.mass(times))[:, None]

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
        log_m = self.unnormalized(points) - per_point
        return log_m if self.mass is None else log_m + self.mass(points[:, 0])


class ExitLayer(nn.Module):
    """The log of a factor that takes the initial density to 0 on the exits for t > t0:

        prod over exits e of  1 - chi_e(x) r_e(x) exp(-d_e(x) / l(t)),

    with d_e the distance to the exit's face, ``l(t) = sqrt(2 nu (t - t0) + ...)`` the width of
    the absorbing boundary layer (:func:`layer_width`, 0 at t0, so m(t0) = m0 still), chi_e the
    door (1 on a whole face, else ``sigmoid(margin / delta)`` of the door's margin, positive
    inside the door, ``delta`` = 1/50 of the smallest side of the box) and
    ``r_e = min(1, m0(x_e) / m0(x))`` the initial density on the face (at x's projection x_e)
    relative to x's: an initial density that is positive on an exit gets the boundary layer
    through which the exit drains it (so the outflow nu dm/dn is carried by the layer, not by a
    log-singularity the network cannot represent), one that already vanishes there (compatible
    data) is left as it is.

    Args:
        exits: per exit, (axis, position, door margin as a torch function of the points or
            None, the box's length across when the opposite face is a wall throughout or None);
            with a wall opposite the distance to the exit is ``(2 L / pi) sin(pi d / (2 L))``,
            d near the exit and flat at the wall, so the walls built exactly stay exact.
        log_initial: log m0 as a torch function of the points.
        t0: initial time; rate, shift: the layer width's parameters (as for the walls).
        delta: the door edges' width.
    """

    def __init__(
        self, exits, log_initial: Callable, t0: float, rate: float, shift: float, delta: float
    ):
        super().__init__()
        self.exits, self.log_initial = list(exits), log_initial
        self.t0, self.rate, self.shift, self.delta = (
            float(t0),
            float(rate),
            float(shift),
            float(delta),
        )

    def forward(self, points: torch.Tensor, flatten: Callable | None = None) -> torch.Tensor:
        """The log factor at ``points``; ``flatten``: the exact walls' flattening of points
        (:func:`wall_flattening`), through which m0 is read, as in the density itself, so that
        its slope vanishes on those walls too (default: none). The door is read at the points
        themselves: its smoothed edge reaches a wall beside it with the sigmoid's tail."""
        flatten = flatten or (lambda pts: pts)
        flat = flatten(points)
        tau = points[:, 0] - self.t0
        ell = layer_width(tau, self.rate, self.shift)
        log_m0 = self.log_initial(flat)
        out = torch.zeros_like(tau)
        for axis, position, margin, across in self.exits:
            on_face = points.clone()
            on_face[:, 1 + axis] = position
            ratio = torch.exp(torch.clamp(self.log_initial(flatten(on_face)) - log_m0, max=0.0))
            distance = torch.abs(points[:, 1 + axis] - position)
            if across is not None:  # a wall opposite: a distance flat there (exact walls stay)
                distance = (2 * across / math.pi) * torch.sin(math.pi * distance / (2 * across))
            decay = ratio * torch.exp(-distance / ell)
            if margin is not None:  # (at the true points: the flattening moves the door)
                decay = decay * torch.sigmoid(margin(points) / self.delta)
            # (on a whole exit face the factor is 0 for t > t0: clamped, a density of ~0 there)
            out = out + torch.log(torch.clamp(1 - decay, min=1e-30))
        return out


def layer_width(tau: torch.Tensor, rate: float, shift: float) -> torch.Tensor:
    """``l = sqrt(rate (tau + shift)) - sqrt(rate shift)``: 0 at tau = 0 with a finite slope,
    written to avoid cancellation, plus a floor that keeps 1 / l finite."""
    return rate * tau / (torch.sqrt(rate * (tau + shift)) + math.sqrt(rate * shift)) + 1e-12


class MassOverTime(nn.Module):
    """log M(t) = s(t) g(t): the log of the mass left in a domain with exits, M(t0) = 1.

    ``s = (T - t0) (sqrt(tau + 0.01) - 0.1)``, tau = (t - t0) / (T - t0): an initial density
    positive on an exit drains through a layer of width sqrt(t - t0) at first, so the mass falls
    like sqrt(t - t0); s follows that (with a finite slope at t0, as the networks' sqrt time
    input). g sees t scaled to [-1, 1] and that sqrt input.

    Args:
        t0, T: the time interval.
        width: of g's two hidden layers (tanh).
    """

    def __init__(self, t0: float, T: float, width: int = 16):
        super().__init__()
        self.t0, self.T = float(t0), float(T)
        self.g = make_body("mlp", 2, width, 2, "tanh")
        last = self.g.net[-1]
        with torch.no_grad():  # M = 1 at the start: no mass leaves until the losses say so
            last.weight.zero_()
            last.bias.zero_()

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """log M at the times ``t`` (n,) -> (n,) (differentiable in t)."""
        tau = (t - self.t0) / (self.T - self.t0)
        root = torch.sqrt(tau + SQRT_SHIFT) - math.sqrt(SQRT_SHIFT)
        top = math.sqrt(1 + SQRT_SHIFT) - math.sqrt(SQRT_SHIFT)
        inputs = torch.stack([2 * tau - 1, 2 * root / top - 1], dim=1)
        return (self.T - self.t0) * root * self.g(inputs).squeeze(-1)


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
    exits = bool(problem.domain.exits)
    nodes = torch.cat([torch.zeros(len(q.nodes), 1, dtype=q.nodes.dtype), q.nodes], 1)
    if exits:
        log_initial = _floored_log_initial(problem.initials[k], space, nodes, q.weights)
    else:
        log_m0_expr = sp.expand_log(sp.log(problem.initials[k]), force=True)
        log_initial = torch_function(log_m0_expr, space)
        m0 = np.exp(log_initial(nodes).double().numpy())
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
        walls = wall_faces(problem.domain)
        lower = [float(lo) if w else None for (w, _), (lo, _) in zip(walls, problem.domain.bounds)]
        upper = [float(hi) if w else None for (_, w), (_, hi) in zip(walls, problem.domain.bounds)]
        wall_layer = (lower, upper, 2 * nu, SQRT_SHIFT * (problem.T - problem.t0))
    density = SpaceTimeDensity(
        *nets[1],
        log_initial,
        problem.t0,
        q.nodes,
        q.log_weights,
        wall_layer=wall_layer,
        mass=MassOverTime(problem.t0, problem.T) if exits else None,
        exit_layer=_exit_layer(problem, log_initial) if exits else None,
    )
    return value, density


def _exit_layer(problem: MFG, log_initial: Callable) -> ExitLayer:
    """The :class:`ExitLayer` of a problem with exits: the layer's width from the FP
    equation's diffusion across each exit (its coefficient of d^2 m / dx_k^2, the largest over
    the exits and 64 random points), the doors' margins as torch functions."""
    domain = problem.domain
    args = (problem.time, *domain.symbols)
    rng = np.random.default_rng(0)
    pts = np.column_stack(
        [
            problem.t0 + (problem.T - problem.t0) * rng.random(64),
            *(lo + (hi - lo) * rng.random(64) for lo, hi in domain.bounds),
        ]
    )
    fp = problem.substitute(problem.fp)
    nu = 0.0
    exits = []
    for face in domain.exits:
        second = sp.Derivative(problem.density, (face.symbol, 2))
        coeff = evaluate_numeric_constants(-sp.diff(fp, second))
        if coeff.atoms(AppliedUndef) or coeff.has(sp.Derivative):  # depends on the unknowns
            coeff = coeff.subs({problem.density: 1, problem.value: 0}).doit()
        vals = sp.lambdify(args, coeff, "numpy")(*pts.T)
        nu = max(nu, float(np.max(np.abs(np.broadcast_to(np.asarray(vals, float), (64,))))))
        margin = face.condition.door_margin()
        opposite_wall = wall_faces(domain)[face.axis][1 - face.side]
        exits.append(
            (
                face.axis,
                face.position,
                None if margin is None else points_function(args, margin),
                domain.lengths[face.axis] if opposite_wall else None,
            )
        )
    delta = min(domain.lengths) / 50
    shift = SQRT_SHIFT * (problem.T - problem.t0)
    return ExitLayer(exits, log_initial, problem.t0, 2 * nu, shift, delta)


EXIT_M0_FLOOR = 1e-6  # relative to max m0 (see _floored_log_initial)


def _floored_log_initial(m0_expr: sp.Expr, space, nodes: torch.Tensor, weights) -> Callable:
    """log m0 for a domain with exits: ``log((m0 + f) / M)`` with the floor
    ``f = 1e-6 max m0`` and M its mass (by the quadrature ``nodes``, ``weights``).

    With exits the density has no normaliser (the mass that leaves is gone), so m0 is given mass
    1 once. An initial density compatible with an exit vanishes there, where log m0 would be
    -inf (or NaN, rounded below 0): the floor keeps it finite at the exit points, at a change of
    m0 of 1e-6 of its maximum.
    """
    m0_fn = torch_function(m0_expr, space)
    values = torch.clamp(m0_fn(nodes).double(), min=0.0)
    floor = EXIT_M0_FLOOR * float(values.max())
    log_mass = float(torch.log(torch.sum(weights.double() * (values + floor))))

    def evaluate(points: torch.Tensor) -> torch.Tensor:
        return torch.log(torch.clamp(m0_fn(points), min=0.0) + floor) - log_mass

    return evaluate
