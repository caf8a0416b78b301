"""Finite-horizon MFGs with the adversarial (and joint) network solver, in space-time.

Unknowns on [t0, T] x domain: the value u(t, x) (generator) and the density m(t, x) (discriminator).

Exact by construction (see docs/finite_horizon.md):
- terminal condition: ``u(t, x) = g(x) + (T - t) N_u(t, x)``, so u(T, .) = g exactly;
- initial condition, positivity and mass: ``log m(t, x) = log m0(x) + (t - t0) N_m(t, x) - log Z(t)``
  with ``Z(t) = int m0 exp((t - t0) N_m)`` by a fixed space quadrature at each time; so m > 0,
  int m(t, .) = 1 for every t (to quadrature accuracy) and m(t0, .) = m0 / int m0.

Each batch of collocation points is ``time_slices`` times (stratified in [t0, T]) x a shifted Sobol
set in space, so log Z is computed exactly at the times in the batch (no interpolation in t). Its time
derivative enters m_t; it is obtained by autograd at the slice times and attached to each point with
the correct first t-derivative (second t-derivatives of m are therefore not available: residuals
with m_tt are rejected).

Box domains, ``walls="exact"`` (the default where it applies, see :func:`exact_walls_obstacle`):
Neumann for u and no flux for m hold by construction. Both networks see the space coordinates
through ``cos(pi (x_i - lo_i) / (hi_i - lo_i))`` (even about every wall), and the density uses
``log m0(sigma_t(x))``, where ``sigma_t`` flattens each axis within
``l(t) = sqrt(2 nu (t - t0 + s)) - sqrt(2 nu s)``, ``s = 0.01 (T - t0)``, of its walls (:func:`wall_flattening`; the identity at t0, so m(t0) = m0 still): every normal
derivative of u and log m vanishes for t > t0, and with dH/dp_n = 0 at p_n = 0 so does the flux.
m0 itself may violate no flux (a blob next to a wall); the flattening is the boundary layer
through which the solution forgets that, on the diffusive scale sqrt(nu t).

Box domains, ``walls="loss"``: homogeneous Neumann for u and no flux for m are boundary losses
lowered from sympy:
``d u / d x_i = 0`` and ``J_i = -nu d m / d x_i - m dH/dp_i(x, grad u) = 0`` on the faces x_i = lo_i,
hi_i (the flux needs the Hamiltonian structure: build Box problems with ``MFG.from_hamiltonian``).
The Neumann residual is weighted by the density at the wall, ``m |domain|`` (detached): u enters the
equilibrium only through the drift of m, so the wall condition is enforced where the population
reaches the wall; where m is negligible (a problem on R truncated to a box) it would only create a
boundary layer in u that pollutes the interior. The flux J is itself proportional to m.

Nonlocal terms ``Expectation(...)`` (:mod:`mfgsolve.nonlocal_terms`) are evaluated with the same
per-time quadrature, weighted by the current normalised density.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import sympy as sp
import torch
from torch import nn

from ._metrics import exact_functions, field_errors
from ._symbolic import evaluate_numeric_constants
from .adversarial import (
    _EMA,
    SolverOptions,
    TrainState,
    _optimizer,
    _resolve_continuation,
    _schedule,
    _Trainer,
)
from .lowering import LoweredResidual, _lower_one
from .nets import SQRT_SHIFT, InputMap, make_body
from .nonlocal_terms import LoweredExpectation, extract_expectations
from .problem import MFG, Box, ProblemError
from .sampling import quadrature

__all__ = [
    "FiniteHorizonTrainer",
    "SpaceTimeValue",
    "SpaceTimeDensity",
    "lower_finite_horizon",
    "finite_horizon_figures",
    "errors_over_time",
    "exact_reference",
]


def _torch_function(expr: sp.Expr, symbols: Sequence[sp.Symbol]) -> Callable:
    """A torch function of the space columns of ``points`` (n, 1 + d) -> (n,)."""
    fn = sp.lambdify(list(symbols), evaluate_numeric_constants(expr), modules="torch")

    def evaluate(points: torch.Tensor) -> torch.Tensor:
        cols = [points[:, 1 + i] for i in range(len(symbols))]
        out = fn(*cols)
        if not torch.is_tensor(out):
            out = torch.as_tensor(out, dtype=points.dtype, device=points.device)
        return out.to(points.dtype).expand(points.shape[0])

    return evaluate


# ---------------------------------------------------------------------------------------------
# Networks
# ---------------------------------------------------------------------------------------------


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


def exact_walls_obstacle(problem: MFG) -> str | None:
    """Why the Neumann and no-flux walls of a box problem cannot be imposed by construction, or
    None when they can: it needs a constant viscosity nu > 0, dH/dp_i = 0 whenever p_i = 0 (no
    drift through a wall when du/dn = 0, so no flux reduces to dm/dn = 0), and a terminal cost
    with zero normal derivative on the walls (u = g + (T - t) N keeps dg/dn)."""
    if not isinstance(problem.domain, Box):
        return "the domain is not a Box"
    form = problem.hamiltonian_form
    if form is None:
        return "the problem is not built with MFG.from_hamiltonian"
    nu = problem.substitute(sp.sympify(form.viscosity))
    if nu.free_symbols or not (nu.is_number and float(nu) > 0):
        return f"the viscosity {nu} is not a positive constant"
    terminal = problem.substitute(problem.terminal)
    for x, p, (lo, hi) in zip(problem.domain.symbols, form.momenta, problem.domain.bounds):
        h_p = problem.substitute(sp.diff(form.hamiltonian, p)).subs(p, 0)
        if sp.simplify(h_p) != 0:
            return f"dH/d{p} does not vanish at {p} = 0 (a drift through the walls of {x})"
        for wall in (lo, hi):
            if sp.simplify(terminal.diff(x).subs(x, wall)) != 0:
                return f"the terminal cost has a non-zero normal derivative at {x} = {wall}"
    return None


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


def _quadrature_points(problem, opts: SolverOptions):
    return quadrature(problem.domain, opts.quadrature_points, seed=0)


def build_networks(
    problem: MFG, opts: SolverOptions, device, dtype
) -> tuple[SpaceTimeValue, SpaceTimeDensity]:
    """The value and density networks of a finite-horizon problem (exact terminal/initial data)."""
    space = problem.domain.symbols
    terminal = _torch_function(problem.terminal, space)
    log_m0_expr = sp.expand_log(sp.log(problem.initial), force=True)
    log_initial = _torch_function(log_m0_expr, space)
    q = _quadrature_points(problem, opts)
    m0 = np.exp(
        log_initial(torch.cat([torch.zeros(len(q.nodes), 1, dtype=q.nodes.dtype), q.nodes], 1))
        .double()
        .numpy()
    )
    if not np.all(np.isfinite(m0)) or np.min(m0) <= 0:
        raise ProblemError(
            f"problem '{problem.name}': the initial density is not positive on the whole domain, which the exact construction log m = log m0 + ... needs; fix: add a small positive floor to m0"
        )
    exact_walls = opts.walls == "exact"
    nets = []
    for _ in range(2):
        inputs = InputMap(
            problem.domain,
            (problem.t0, problem.T),
            opts.harmonics,
            opts.time_feature,
            even_walls=exact_walls,
        )
        body = make_body(
            opts.architecture, inputs.out_features, opts.width, opts.depth, opts.activation
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
    return value.to(device, dtype), density.to(device, dtype)


# ---------------------------------------------------------------------------------------------
# Lowering
# ---------------------------------------------------------------------------------------------


class FiniteHorizonResiduals:
    """Lowered HJB and FP residuals (with their expectations) and, on a box, boundary residuals.

    Attributes:
        hjb, fp: lowered residuals; their ``constants`` are the expectation placeholders.
        hjb_expectations, fp_expectations: the lowered expectations, in placeholder order.
        neumann: per dimension, the lowered du/dx_i (box only, else empty).
        flux: per dimension, the lowered FP flux J_i (box only, else empty).
    """

    def __init__(self, problem: MFG):
        self.problem = problem
        hjb_expr, self.hjb_expectations = extract_expectations(
            problem.substitute(problem.hjb), problem, "HJB"
        )
        fp_expr, self.fp_expectations = extract_expectations(
            problem.substitute(problem.fp), problem, "FP"
        )
        self.hjb = _lower_one(
            "HJB", hjb_expr, problem, tuple(e.symbol for e in self.hjb_expectations)
        )
        self.fp = _lower_one("FP", fp_expr, problem, tuple(e.symbol for e in self.fp_expectations))
        for res in (self.hjb, self.fp):
            for name, index in res.terms:
                if name in ("m", "logm") and index.count(0) >= 2:
                    raise ProblemError(
                        f"problem '{problem.name}': {res.label} residual has a second time derivative of m; fix: the finite-horizon solver supports m_t only"
                    )
        self.neumann: list[LoweredResidual] = []
        self.flux: list[LoweredResidual] = []
        if isinstance(problem.domain, Box):
            form = problem.hamiltonian_form
            if form is None:
                raise ProblemError(
                    f"problem '{problem.name}': no-flux boundaries on a Box need the FP flux; fix: build the problem with MFG.from_hamiltonian"
                )
            u, m = problem.value, problem.density
            grad_u = [u.diff(x) for x in problem.domain.symbols]
            for x, p in zip(problem.domain.symbols, form.momenta):
                self.neumann.append(_lower_one(f"Neumann[{x}]", u.diff(x), problem, ()))
                h_p = sp.diff(form.hamiltonian, p).subs(
                    dict(zip(form.momenta, grad_u)), simultaneous=True
                )
                flux = -form.viscosity * m.diff(x) - m * h_p
                self.flux.append(_lower_one(f"no-flux[{x}]", flux, problem, ()))

    def caches(self, points, fields, frozen=(), create_graph=True):
        """Derivative caches of u, m, log m (as :meth:`mfgsolve.lowering.Residuals.caches`)."""
        from .lowering import Residuals

        return Residuals.caches(self, points, fields, frozen, create_graph)  # type: ignore[arg-type]


def lower_finite_horizon(problem: MFG) -> FiniteHorizonResiduals:
    """Lower a finite-horizon problem's residuals, expectations and boundary conditions."""
    if not isinstance(problem, MFG):
        raise ProblemError(
            f"problem '{getattr(problem, 'name', '?')}' is not a finite-horizon MFG; fix: pass an MFG"
        )
    return FiniteHorizonResiduals(problem)


def _expectation_values(
    expectations: list[LoweredExpectation],
    points: torch.Tensor,
    density: SpaceTimeDensity,
    frozen: bool,
) -> list[torch.Tensor]:
    if not expectations:
        return []
    times, index = density.slices(points)
    probs = density.probabilities(times)
    if frozen:
        probs = probs.detach()
    nodes = density.nodes
    return [e(points, index, times, nodes, probs) for e in expectations]


def _needs_time_derivative(lowered: Sequence[LoweredResidual]) -> bool:
    """Whether any of ``lowered`` has a t-derivative of m or log m (time is input column 0)."""
    return any(name in ("m", "logm") and 0 in index for res in lowered for name, index in res.terms)


def evaluate_residuals(
    residuals: FiniteHorizonResiduals,
    value_net: nn.Module,
    density_net: SpaceTimeDensity,
    points: torch.Tensor,
    frozen: Sequence[str] = (),
    which: Sequence[str] = ("hjb", "fp"),
    create_graph: bool = True,
) -> dict[str, torch.Tensor]:
    """HJB and/or FP residuals at ``points`` (which must require grad)."""
    values, _ = _residuals_and_caches(
        residuals, value_net, density_net, points, frozen, which, create_graph
    )
    return values


def _residuals_and_caches(
    residuals: FiniteHorizonResiduals,
    value_net: nn.Module,
    density_net: SpaceTimeDensity,
    points: torch.Tensor,
    frozen: Sequence[str],
    which: Sequence[str],
    create_graph: bool = True,
) -> tuple[dict[str, torch.Tensor], dict]:
    """The residuals named in ``which`` at ``points`` and the derivative caches they were
    computed from (the trainer reuses those for the wall losses)."""
    lowered = [getattr(residuals, name) for name in which]
    fields = _Fields(value_net, density_net, _needs_time_derivative(lowered))
    caches = residuals.caches(points, fields, frozen=frozen, create_graph=create_graph)
    out = {}
    if "hjb" in which:
        ex = _expectation_values(residuals.hjb_expectations, points, density_net, "m" in frozen)
        out["hjb"] = residuals.hjb(points, caches, ex)
    if "fp" in which:
        ex = _expectation_values(residuals.fp_expectations, points, density_net, "m" in frozen)
        out["fp"] = residuals.fp(points, caches, ex)
    return out, caches


class _RowView(dict):
    """The derivative caches restricted to some rows: ``view[name](index)`` is
    ``caches[name](index)[rows]`` (the wall points of a merged batch)."""

    def __init__(self, caches: dict, rows: slice):
        super().__init__()
        self.caches, self.rows = caches, rows

    def __missing__(self, name: str):
        cache, rows = self.caches[name], self.rows

        def derivative(index):
            return cache(index)[rows]

        self[name] = derivative
        return derivative


class _Fields:
    """The two networks as fields for the derivative caches; ``time_derivative``: whether the
    density's normaliser carries its t-derivative (needed only for m_t)."""

    def __init__(self, value_net, density_net, time_derivative: bool = True):
        self.value_net, self.density_net = value_net, density_net
        self.time_derivative = time_derivative

    def value(self, points):
        return self.value_net(points)

    def log_density(self, points):
        return self.density_net(points, time_derivative=self.time_derivative)


# ---------------------------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------------------------


class SliceSampler:
    """Collocation points as ``slices`` stratified times x ``per_slice`` space points each.

    Space points are a scrambled Sobol set with a fresh random shift per slice (modulo the
    domain), or i.i.d. uniform. On a box, :meth:`sample_boundary` gives points on the faces at
    given times.
    """

    def __init__(
        self,
        problem: MFG,
        slices: int,
        per_slice: int,
        method: str,
        generator: torch.Generator,
    ):
        if method not in ("sobol", "uniform"):
            what = "is for ergodic problems" if method == "density" else "is unknown here"
            raise ProblemError(
                f"sampling method {method!r} {what}; fix: use 'sobol' or 'uniform' for a finite-horizon problem"
            )
        self.t0, self.T = problem.t0, problem.T
        self.lower = torch.as_tensor(problem.domain.lower, dtype=torch.float64)
        self.upper = torch.as_tensor(problem.domain.upper, dtype=torch.float64)
        self.dim = problem.dim
        self.slices, self.per_slice, self.method = slices, per_slice, method
        self.generator = generator
        if method == "sobol":
            seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
            engine = torch.quasirandom.SobolEngine(self.dim, scramble=True, seed=seed)
            self._base = engine.draw(per_slice, dtype=torch.float64)

    def times(self) -> torch.Tensor:
        """(slices,) stratified times in [t0, T)."""
        k = torch.arange(self.slices, dtype=torch.float64)
        jitter = torch.rand(self.slices, generator=self.generator, dtype=torch.float64)
        return self.t0 + (self.T - self.t0) * (k + jitter) / self.slices

    def _space(self, count: int) -> torch.Tensor:
        if self.method == "uniform":
            return torch.rand(count, self.dim, generator=self.generator, dtype=torch.float64)
        shift = torch.rand(self.dim, generator=self.generator, dtype=torch.float64)
        return torch.remainder(self._base[:count] + shift, 1.0)

    def sample(self) -> torch.Tensor:
        """(slices * per_slice, 1 + d) float64 points, time first."""
        times = self.times()
        blocks = []
        for t in times:
            x = self.lower + (self.upper - self.lower) * self._space(self.per_slice)
            blocks.append(torch.cat([t.expand(self.per_slice, 1), x], dim=1))
        return torch.cat(blocks)

    def sample_boundary(self, times: torch.Tensor, per_face: int) -> list[torch.Tensor]:
        """Per dimension i, points on the faces x_i = lo_i and x_i = hi_i at each time."""
        out = []
        for i in range(self.dim):
            blocks = []
            for t in times:
                for side in (self.lower[i], self.upper[i]):
                    u = torch.rand(
                        per_face, self.dim, generator=self.generator, dtype=torch.float64
                    )
                    x = self.lower + (self.upper - self.lower) * u
                    x[:, i] = side
                    blocks.append(torch.cat([t.expand(per_face, 1), x], dim=1))
            out.append(torch.cat(blocks))
        return out

    def state_dict(self) -> dict:
        return {"rng": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["rng"].cpu())  # (a checkpoint mapped to a GPU)


# ---------------------------------------------------------------------------------------------
# Trainer
# ---------------------------------------------------------------------------------------------


def exact_reference(problem: MFG):
    """(value, density) numpy callables of the known solution: ``problem.exact_solution`` (an object
    with ``value``/``density`` methods, e.g. from Riccati ODEs) or the closed forms in
    ``problem.exact``; (None, None) when neither is given."""
    obj = getattr(problem, "exact_solution", None)
    if obj is not None:
        return obj.value, obj.density
    u_ex, m_ex, _ = exact_functions(problem)
    return u_ex, m_ex


def _space_time_nodes(problem: MFG, space_points: int, times: int, seed: int):
    q = quadrature(problem.domain, space_points, seed=seed)
    nodes, w = q.nodes.numpy(), q.weights.numpy()
    ts = np.linspace(problem.t0, problem.T, times)
    pts = np.concatenate([np.repeat(ts, len(nodes))[:, None], np.tile(nodes, (times, 1))], axis=1)
    return pts, np.tile(w, times) / times


class FiniteHorizonTrainer(_Trainer):
    """The adversarial / joint trainer of :mod:`mfgsolve.adversarial`, in space-time.

    Reuses the base loop (alternating updates, schedules, EMA, rollback on NaN, checkpoints) and
    replaces networks, sampling, losses and evaluation.
    """

    def __init__(
        self,
        problem: MFG,
        method: str,
        opts: SolverOptions,
        seed: int,
        device,
        dtype,
        progress: bool,
        callbacks: Sequence[Callable],
    ):
        if not isinstance(problem, MFG):
            raise ProblemError(
                f"problem '{problem.name}' is not a finite-horizon MFG; fix: use the ergodic trainer"
            )
        self._setup(problem, method, opts, seed, device, dtype, progress, callbacks)
        if opts.derivatives not in ("auto", "autograd"):
            raise ProblemError(
                f"problem '{problem.name}': derivatives={opts.derivatives!r} is for ergodic problems; "
                "fix: leave derivatives='auto' (finite-horizon residuals use reverse mode)"
            )
        if "hutchinson_probes" in getattr(opts, "_given", ()):
            raise ProblemError(
                f"problem '{problem.name}': hutchinson_probes applies only to the Hutchinson engine "
                "of ergodic problems; fix: drop it"
            )
        self.continuation = _resolve_continuation(problem, method, opts)  # None: never here
        self.residuals = lower_finite_horizon(problem)
        self.least_squares = False
        self.slices = opts.time_slices
        self.per_slice = max(2, opts.batch_size // self.slices)
        space_eval = 256 if problem.dim == 1 else (64 * 64 if problem.dim == 2 else 4096)
        nodes, weights = _space_time_nodes(problem, space_eval, 11, seed + 1)
        self.eval_nodes, self.eval_weights = nodes, weights
        u_ex, m_ex = exact_reference(problem)
        self.exact = (u_ex(nodes) if u_ex else None, m_ex(nodes) if m_ex else None, None)

    def init_state(self) -> TrainState:
        torch.manual_seed(self.seed)
        opts = self.opts
        value_net, density_net = build_networks(self.problem, opts, self.device, self.dtype)
        gen_params, disc_params = list(value_net.parameters()), list(density_net.parameters())
        if self.method == "adversarial":
            optimizers = [
                _optimizer(gen_params, opts.lr, opts),
                _optimizer(disc_params, opts.lr * opts.lr_ratio, opts),
            ]
        else:
            optimizers = [_optimizer(gen_params + disc_params, opts.lr, opts)]
        factor = _schedule(opts)
        schedulers = [torch.optim.lr_scheduler.LambdaLR(o, factor) for o in optimizers]
        ema_v = _EMA(value_net, opts.ema) if opts.ema > 0 else None
        ema_d = _EMA(density_net, opts.ema) if opts.ema > 0 else None
        generator = torch.Generator().manual_seed(self.seed)
        sampler = SliceSampler(self.problem, self.slices, self.per_slice, opts.sampling, generator)
        return TrainState(
            value_net, density_net, None, optimizers, schedulers, ema_v, ema_d, sampler
        )

    def _log_z(self, density_net) -> torch.Tensor:
        """The density network normalises itself per time: no global log Z."""
        return torch.zeros((), device=self.device, dtype=self.dtype)

    def _face_points(self, st: TrainState, points: torch.Tensor) -> list[torch.Tensor]:
        """Per dimension, wall points at the batch's times (box only, else empty)."""
        if not self.residuals.neumann or self.opts.walls == "exact":
            return []
        times = torch.unique(points[:, 0].detach()).double().cpu()
        per_face = max(2, self.per_slice // (2 * self.problem.dim))
        return st.sampler.sample_boundary(times, per_face)

    def _boundary_losses(
        self,
        pts: torch.Tensor,
        caches: dict,
        which: torch.Tensor,
        frozen: Sequence[str],
    ) -> dict[str, Any]:
        """Neumann and no-flux losses at the wall points ``pts`` (``which``: the dimension of
        each point's face), from derivative caches taken at ``pts``."""
        res = self.residuals
        out = {"neumann": 0.0, "flux": 0.0}
        for i in range(self.problem.dim):
            on_face = which == i
            if "u" not in frozen or self.method == "joint":
                # weighted by the (detached) density at the wall, m |domain|: see the module doc
                weight = caches["m"](()).detach() * self.problem.domain.volume
                du_n = res.neumann[i](pts, caches)
                out["neumann"] = out["neumann"] + (weight * du_n**2)[on_face].mean()
            if "m" not in frozen or self.method == "joint":
                out["flux"] = out["flux"] + (res.flux[i](pts, caches)[on_face] ** 2).mean()
        return out

    def _losses(
        self,
        st: TrainState,
        points: torch.Tensor,
        frozen: Sequence[str],
        weights: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """HJB and FP losses (plus the box boundary losses, weighted by ``boundary_weight``);
        ``weights`` is always None here (no density sampling in space-time). Called by
        :meth:`_Trainer.losses`, which holds the frozen networks' weights constant.

        The wall points join the batch in one derivative pass, so the density's per-time
        normaliser (the costly part: a quadrature at every batch time) is computed once."""
        res = self.residuals
        which = []
        if "u" not in frozen or self.method == "joint":
            which.append("hjb")
        if "m" not in frozen or self.method == "joint":
            which.append("fp")
        faces = self._face_points(st, points)
        n = points.shape[0]
        if faces:
            wall = torch.cat(faces).to(self.device, self.dtype)
            pts = torch.cat([points.detach(), wall]).requires_grad_(True)
        else:
            pts = points
        r, caches = _residuals_and_caches(res, st.value_net, st.density_net, pts, frozen, which)
        r = {k: v[:n] for k, v in r.items()}
        bnd: dict[str, Any] = {}
        if faces:
            face = torch.cat([torch.full((len(f),), i) for i, f in enumerate(faces)])
            wall_caches = _RowView(caches, slice(n, None))
            bnd = self._boundary_losses(pts[n:], wall_caches, face.to(self.device), frozen)
        w = self.opts.boundary_weight
        zero = torch.zeros((), device=self.device, dtype=self.dtype)
        out: dict[str, torch.Tensor] = {"int_u": zero, "constant": torch.tensor(float("nan"))}
        if "hjb" in r:
            out["hjb"] = (r["hjb"] ** 2).mean() + w * bnd.get("neumann", 0.0)
        if "fp" in r:
            out["fp"] = (r["fp"] ** 2).mean() + w * bnd.get("flux", 0.0)
        return out

    def final_constant(self, value_net, density_net, constant) -> float:
        return float("nan")

    def evaluate(self, st: TrainState) -> dict[str, float]:
        value_net, density_net = self.eval_nets(st)
        nodes = torch.as_tensor(self.eval_nodes, dtype=self.dtype, device=self.device)
        with torch.no_grad():
            u = torch.cat([value_net(c) for c in nodes.split(16384)]).double().cpu().numpy()
            m = torch.exp(torch.cat([density_net(c) for c in nodes.split(16384)]))
            m = m.double().cpu().numpy()
        u_ref, m_ref, _ = self.exact
        return field_errors(u, m, u_ref, m_ref, self.eval_weights)


def residual_norms(solution, nodes: np.ndarray, weights: np.ndarray) -> dict[str, float]:
    """RMS (quadrature-weighted) HJB and FP residuals of a finite-horizon network solution."""
    value_net, density_net, _ = solution.fields()
    res = lower_finite_horizon(solution.problem)
    dtype = next(value_net.parameters()).dtype
    device = next(value_net.parameters()).device
    sq = {"hjb": 0.0, "fp": 0.0}
    order = np.argsort(nodes[:, 0], kind="stable")  # chunks share time slices
    for idx in np.array_split(order, max(1, len(nodes) // 4096)):
        pts = torch.as_tensor(nodes[idx], dtype=dtype, device=device).requires_grad_(True)
        r = evaluate_residuals(res, value_net, density_net, pts, create_graph=False)
        w = torch.as_tensor(weights[idx])
        for key in sq:
            sq[key] += float((w * r[key].detach().double().cpu() ** 2).sum())
    total = float(np.sum(weights))
    return {"hjb_residual": (sq["hjb"] / total) ** 0.5, "fp_residual": (sq["fp"] / total) ** 0.5}


def default_time_slices(problem: MFG, batch_size: int) -> int:
    """Times per batch: 16, fewer for small batches (at least 2 space points per time)."""
    return max(1, min(16, batch_size // 2))


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------


def errors_over_time(
    solution: Any, reference: Any = None, times: int = 41
) -> dict[str, np.ndarray]:
    """Relative L2 errors of m and u (absolute L2 of u too) at each of ``times`` uniform times.

    Args:
        solution: anything with ``problem``, ``value(points)``, ``density(points)``.
        reference: the same interface, or None for the problem's known solution.
        times: number of time nodes in [t0, T].

    Returns:
        dict with ``t``, ``m_rel_l2``, ``u_l2`` and ``u_rel_l2`` arrays (NaN where unknown).
    """
    problem = solution.problem
    u_ref, m_ref = (
        (reference.value, reference.density) if reference is not None else exact_reference(problem)
    )
    q = quadrature(problem.domain, 512 if problem.dim == 1 else 64 * 64, seed=3)
    nodes, w = q.nodes.numpy(), q.weights.numpy()
    ts = np.linspace(problem.t0, problem.T, times)
    out = {k: np.full(times, np.nan) for k in ("m_rel_l2", "u_l2", "u_rel_l2")}
    out["t"] = ts
    for k, t in enumerate(ts):
        pts = np.concatenate([np.full((len(nodes), 1), t), nodes], axis=1)
        errs = field_errors(
            solution.value(pts),
            solution.density(pts),
            u_ref(pts) if u_ref else None,
            m_ref(pts) if m_ref else None,
            w,
        )
        for key in ("m_rel_l2", "u_l2", "u_rel_l2"):
            if key in errs:
                out[key][k] = errs[key]
    return out


def finite_horizon_figures(
    solution: Any, reference: Any = None, out_dir: str | Path = ".", prefix: str = ""
) -> list[Path]:
    """Draw the finite-horizon panels into ``out_dir`` (PNG); returns the paths written.

    - ``spacetime.png`` (1-D): heat maps over (x, t) of u and m, the reference's, and the errors;
    - ``snapshots_m.png`` / ``snapshots_u.png`` (d >= 2): maps at four times (first two coordinates,
      the others at the middle of the domain): network, reference and error;
    - ``error_vs_time.png``: relative L2 errors of m and u at each time;
    - ``history.png``: errors and losses against iterations (network solutions).

    Args:
        solution: a finite-horizon ``Solution`` (or ``ReferenceSolution``).
        reference: the reference (value/density interface) or None for the problem's known solution.
        out_dir: folder for the PNG files.
        prefix: prepended to the file names.
    """
    from ._plotting import save as _save
    from ._plotting import subplots
    from .compare import _heatmap, _history_curve

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    problem = solution.problem
    u_ref, m_ref = (
        (reference.value, reference.density) if reference is not None else exact_reference(problem)
    )
    ref_label = "reference" if reference is not None else "exact"
    method = solution.info.get("method", "") if hasattr(solution, "info") else ""
    paths: list[Path] = []
    names = [str(s) for s in problem.domain.symbols]
    lo, hi = problem.domain.lower, problem.domain.upper
    if problem.dim == 1:
        nx, nt = 201, 101
        xs, ts = np.linspace(lo[0], hi[0], nx), np.linspace(problem.t0, problem.T, nt)
        T_, X_ = np.meshgrid(ts, xs, indexing="ij")
        pts = np.stack([T_.ravel(), X_.ravel()], axis=1)
        rows = [("value u", solution.value, u_ref), ("density m", solution.density, m_ref)]
        fig, axes = subplots(2, 3, figsize=(15, 7.5), constrained_layout=True)
        for r, (title, f_net, f_ref) in enumerate(rows):
            net = f_net(pts).reshape(nt, nx)
            ref = f_ref(pts).reshape(nt, nx) if f_ref is not None else None
            panels = [(net, f"{title}: network ({method})", "viridis")]
            if ref is not None:
                panels += [(ref, f"{title}: {ref_label}", "viridis")]
                panels += [(net - ref, f"{title}: network - {ref_label}", "RdBu_r")]
            for c, (data, label, cmap) in enumerate(panels):
                _heatmap(fig, axes[r, c], X_, T_, data, label, cmap, names[0], str(problem.time))
            for c in range(len(panels), 3):
                axes[r, c].axis("off")
        fig.suptitle(f"{problem.name}: space-time fields")
        paths.append(out_dir / f"{prefix}spacetime.png")
        _save(fig, paths[-1])
    else:
        n = 64
        gx, gy = np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n)
        X, Y = np.meshgrid(gx, gy, indexing="ij")
        mid = (lo + hi) / 2
        times = np.linspace(problem.t0, problem.T, 4)
        for title, key, f_net, f_ref in (
            ("density m", "m", solution.density, m_ref),
            ("value u", "u", solution.value, u_ref),
        ):
            nrows = 3 if f_ref is not None else 1
            fig, axes = subplots(
                nrows, 4, figsize=(16, 3.6 * nrows), constrained_layout=True, squeeze=False
            )
            for c, t in enumerate(times):
                pts = np.tile(np.r_[t, mid], (n * n, 1))
                pts[:, 1], pts[:, 2] = X.ravel(), Y.ravel()
                net = f_net(pts).reshape(n, n)
                data = [(net, f"network, t={t:.3g}", "viridis")]
                if f_ref is not None:
                    ref = f_ref(pts).reshape(n, n)
                    data += [(ref, f"{ref_label}, t={t:.3g}", "viridis")]
                    data += [(net - ref, f"error, t={t:.3g}", "RdBu_r")]
                for r, (vals, label, cmap) in enumerate(data):
                    _heatmap(
                        fig, axes[r, c], X, Y, vals, f"{key}: {label}", cmap, names[0], names[1]
                    )
                    axes[r, c].title.set_fontsize(10)
                    axes[r, c].set_aspect("equal")
            fig.suptitle(f"{problem.name}: {title} at four times ({method})")
            paths.append(out_dir / f"{prefix}snapshots_{key}.png")
            _save(fig, paths[-1])
    if u_ref is not None or m_ref is not None:
        errs = errors_over_time(solution, reference)
        fig, ax = subplots(figsize=(7, 4.5), constrained_layout=True)
        for key, label in (
            ("m_rel_l2", "relative L2 error of m"),
            ("u_rel_l2", "relative L2 error of u"),
            ("u_l2", "L2 error of u"),
        ):
            if np.any(np.isfinite(errs[key])):
                ax.semilogy(errs["t"], errs[key], label=label)
        ax.set_xlabel(str(problem.time))
        ax.set_ylabel("error at time t")
        ax.set_title(f"{problem.name}: error vs time ({method}, against {ref_label})")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        paths.append(out_dir / f"{prefix}error_vs_time.png")
        _save(fig, paths[-1])
    history = getattr(solution, "history", []) or []
    if history:
        fig, axes = subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
        _history_curve(
            axes[0],
            history,
            [("m_rel_l2", "relative L2 error of m"), ("u_rel_l2", "relative L2 error of u")],
            "errors (time-averaged)",
            "error",
        )
        _history_curve(
            axes[1],
            history,
            [("loss_hjb", "HJB loss (batch)"), ("loss_fp", "FP loss (batch)")],
            "losses",
            "mean squared residual",
        )
        fig.suptitle(f"{problem.name}: training ({method})")
        paths.append(out_dir / f"{prefix}history.png")
        _save(fig, paths[-1])
    return paths
