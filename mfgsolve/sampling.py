"""Collocation points and quadrature rules on the problem's domain.

Quadrature (for Z = int exp(f), int u and error integrals):
- torus, d <= 2: the uniform (periodic trapezoidal) grid, spectrally accurate for smooth periodic
  integrands;
- box, d <= 2: tensor Gauss-Legendre;
- d >= 3: scrambled Sobol points (quasi-Monte Carlo), equal weights.

Collocation points: ``"sobol"`` (default; a scrambled Sobol set moved by a fresh random shift every
iteration, modulo the period on a torus: stratified and unbiased), ``"uniform"`` (i.i.d.), or
``"density"``: part of the batch resampled from the current density m (importance sampling, so a
peaked density is resolved where its mass is) with weights that make the losses estimates of the
same integrals, approximately: the resampling is from a finite candidate pool (:func:`density_resample`).

Finite-horizon problems: :class:`SliceSampler` draws each batch as stratified times x a shifted
Sobol set in space (so the density's per-time normaliser is exact at the batch's times), and
:func:`space_time_nodes` tiles a space quadrature over uniform times (error integrals).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .problem import Box, Rd, Torus

__all__ = [
    "QUADRATURE_SIZES",
    "CollocationSampler",
    "GaussianQuadrature",
    "GaussianSampler",
    "Quadrature",
    "SliceSampler",
    "density_resample",
    "evaluation_chunk",
    "gaussian_quadrature",
    "quadrature",
    "quadrature_size",
    "space_time_nodes",
    "tile_in_time",
]

# Quadrature nodes by purpose, for d = 1, d = 2 and d >= 3: the one table of these sizes (a grid in
# d <= 2, Sobol points above; see :func:`quadrature`).
QUADRATURE_SIZES: dict[str, tuple[int, int, int]] = {
    "normaliser": (256, 64 * 64, 4096),  # Z and int u at each training loss (ergodic)
    "normaliser-per-time": (128, 32 * 32, 2048),  # Z(t) at each batch time (finite horizon)
    "history": (1024, 128 * 128, 2**15),  # errors recorded during training (ergodic)
    "history-per-time": (256, 64 * 64, 4096),  # the same at each of 11 times (finite horizon)
    "compare": (1024, 128 * 128, 2**15),  # compare(), space (at each of 33 times in finite horizon)
    "compare-endpoints": (1024, 128 * 128, 2**14),  # compare() at t0 and T
    "over-time": (512, 64 * 64, 64 * 64),  # errors_over_time, at each time
}


def evaluation_chunk(dim: int) -> int:
    """Nodes per chunk when evaluating residuals (second derivatives): 4096 up to d = 16, fewer
    above, so that the memory of one chunk's derivatives stays about that of d = 16."""
    return 4096 if dim <= 16 else max(256, 65536 // dim)


def quadrature_size(purpose: str, dim: int) -> int:
    """Nodes of the quadrature for ``purpose`` (a key of :data:`QUADRATURE_SIZES`) in ``dim``."""
    return QUADRATURE_SIZES[purpose][min(dim, 3) - 1]


@dataclass
class Quadrature:
    """Nodes (n, d) and weights (n,) with sum(w * g(nodes)) ~ int_domain g.

    ``log_w``: the weights' logarithms when they are kept (importance weights on R^d, which
    overflow float32: about 1e61 in d = 100); else log(weights).
    """

    nodes: torch.Tensor
    weights: torch.Tensor
    rule: str
    log_w: torch.Tensor | None = None

    @property
    def log_weights(self) -> torch.Tensor:
        return torch.log(self.weights) if self.log_w is None else self.log_w

    def integrate(self, values: torch.Tensor) -> torch.Tensor:
        return (self.weights * values).sum(-1)

    def to(self, device: torch.device | str, dtype: torch.dtype) -> Quadrature:
        log_w = None if self.log_w is None else self.log_w.to(device, dtype)
        return Quadrature(
            self.nodes.to(device, dtype), self.weights.to(device, dtype), self.rule, log_w
        )


def standard_normal(u: torch.Tensor) -> torch.Tensor:
    """Standard normal points from points in the unit cube (inverse CDF, clipped off 0 and 1)."""
    return torch.special.ndtri(u.clamp(1e-12, 1 - 1e-12))


def standard_normal_log_pdf(z: torch.Tensor) -> torch.Tensor:
    """log of the standard normal density of (n, d) points: (n,)."""
    return -0.5 * (z * z).sum(-1) - 0.5 * z.shape[-1] * math.log(2 * math.pi)


@dataclass
class GaussianQuadrature:
    """Importance-sampling nodes for integrals over the whole space R^d.

    ``z`` are standard normal points (scrambled Sobol, inverse CDF) and ``log_w = -log n - log
    phi(z)``, so that ``sum exp(log_w) g(z) ~ int g dz``. :meth:`mapped` moves them to the
    Gaussian N(mean, diag(scale^2)) a solver currently uses as its reference measure.
    """

    z: torch.Tensor
    log_w: torch.Tensor
    rule: str = "gaussian"

    def mapped(self, mean: torch.Tensor, scale: torch.Tensor) -> Quadrature:
        """The rule for int g(x) dx with nodes x = mean + scale * z (float64 weights)."""
        mean, scale = mean.detach(), scale.detach()
        nodes = mean + scale * self.z.to(mean)
        log_w = self.log_w.to(scale.device, torch.float64) + torch.log(scale.double()).sum()
        rule = f"importance sampling, N(mean, scale^2) ({len(nodes)} Sobol nodes)"
        return Quadrature(nodes, torch.exp(log_w), rule, log_w.to(mean.dtype))


def gaussian_quadrature(
    dim: int, points: int, seed: int = 0, factors: Sequence[float] = (1.0,)
) -> GaussianQuadrature:
    """:class:`GaussianQuadrature` with about ``points`` nodes (a power of 2) in ``dim``.

    ``factors``: the proposal is the equal mixture of N(0, f^2 I) over them (each its own
    scrambled Sobol set). The errors of m are weighted by m^2, whose mass lies at 1/sqrt(2) of
    m's own radius in high dimension: the evaluation rules mix the factors 1/sqrt(2) and 1.
    """
    n = 2 ** max(1, math.ceil(math.log2(points / len(factors))))
    parts = []
    for k, factor in enumerate(factors):
        engine = torch.quasirandom.SobolEngine(dim, scramble=True, seed=seed + 7919 * k)
        parts.append(factor * standard_normal(engine.draw(n, dtype=torch.float64)))
    z = torch.cat(parts)
    log_q = torch.logsumexp(
        torch.stack([standard_normal_log_pdf(z / f) - dim * math.log(f) for f in factors]), dim=0
    ) - math.log(len(factors))
    return GaussianQuadrature(z, -math.log(len(z)) - log_q)


class GaussianSampler:
    """Collocation points on R^d in standard coordinates: a scrambled Sobol set moved by a fresh
    random shift every iteration, mapped to normal points, each scaled by a factor from 0.6 to
    1.25 (log-uniform, the last Sobol coordinate). The solver maps them by its reference Gaussian.

    The factor matters in high dimension, where the mass of N(0, I) lies on the shell |z| ~
    sqrt(d): the error of m is weighted by m^2, whose mass lies at |z| ~ sqrt(d / 2), and the
    residuals must be small there too.

    Args:
        dim: the space dimension.
        batch_size: points per batch.
        generator: a seeded ``torch.Generator`` (CPU).
    """

    SCALES = (0.6, 1.25)

    def __init__(self, dim: int, batch_size: int, generator: torch.Generator | None = None):
        self.dim, self.batch_size = dim, int(batch_size)
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=self.generator))
        engine = torch.quasirandom.SobolEngine(dim + 1, scramble=True, seed=seed)
        self._base = engine.draw(self.batch_size, dtype=torch.float64)

    def sample(self) -> torch.Tensor:
        """A (batch_size, dim) float64 tensor of standard-coordinate points."""
        shift = torch.rand(self.dim + 1, generator=self.generator, dtype=torch.float64)
        u = torch.remainder(self._base + shift, 1.0)
        lo, hi = (math.log(s) for s in self.SCALES)
        factor = torch.exp(lo + (hi - lo) * u[:, -1:])
        return factor * standard_normal(u[:, :-1])

    def state_dict(self) -> dict:
        return {"rng": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["rng"].cpu())


def _grid_size(dim: int, points: int) -> int:
    return max(2, round(points ** (1.0 / dim)))


def quadrature(
    domain: Torus | Box,
    points: int = 256,
    rule: str = "auto",
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> Quadrature:
    """A quadrature rule with about ``points`` nodes.

    Args:
        domain: the problem's domain.
        points: number of nodes (in d <= 2 a grid of about points**(1/d) per axis).
        rule: "auto", "grid", "gauss" or "sobol".
        seed: scrambling seed for "sobol".

    Returns:
        :class:`Quadrature`.
    """
    d = domain.dim
    if isinstance(domain, Rd):
        raise ValueError("quadrature() covers bounded domains; on Rd use gaussian_quadrature()")
    if rule == "auto":
        rule = ("grid" if domain.periodic else "gauss") if d <= 2 else "sobol"
    lo, hi = np.asarray(domain.lower, float), np.asarray(domain.upper, float)
    if rule == "grid":
        n = _grid_size(d, points)
        axes = [
            lo[i] + (hi[i] - lo[i]) * (np.arange(n) + (0.0 if domain.periodic else 0.5)) / n
            for i in range(d)
        ]
        w_axes = [np.full(n, (hi[i] - lo[i]) / n) for i in range(d)]
    elif rule == "gauss":
        n = _grid_size(d, points)
        g, gw = np.polynomial.legendre.leggauss(n)
        axes = [lo[i] + (hi[i] - lo[i]) * (g + 1) / 2 for i in range(d)]
        w_axes = [gw * (hi[i] - lo[i]) / 2 for i in range(d)]
    elif rule == "sobol":
        m = 2 ** max(1, math.ceil(math.log2(points)))
        engine = torch.quasirandom.SobolEngine(d, scramble=True, seed=seed)
        u = engine.draw(m, dtype=torch.float64).numpy()
        nodes = lo + (hi - lo) * u
        weights = np.full(m, float(np.prod(hi - lo)) / m)
        return Quadrature(
            torch.as_tensor(nodes, dtype=dtype), torch.as_tensor(weights, dtype=dtype), "sobol"
        )
    else:
        raise ValueError(
            f"unknown quadrature rule {rule!r}; fix: use 'auto', 'grid', 'gauss' or 'sobol'"
        )
    mesh = np.meshgrid(*axes, indexing="ij")
    nodes = np.stack([a.ravel() for a in mesh], axis=1)
    wmesh = np.meshgrid(*w_axes, indexing="ij")
    weights = np.prod(np.stack([w.ravel() for w in wmesh], axis=1), axis=1)
    return Quadrature(
        torch.as_tensor(nodes, dtype=dtype), torch.as_tensor(weights, dtype=dtype), rule
    )


class CollocationSampler:
    """Draws a batch of collocation points per iteration, reproducibly from a torch Generator.

    Args:
        domain: the problem's domain.
        batch_size: points per batch.
        method: "sobol" (randomly shifted scrambled Sobol set) or "uniform".
        generator: a seeded ``torch.Generator`` (CPU).
        time_interval: (t0, T) to prepend a time column (finite-horizon problems).
    """

    def __init__(
        self,
        domain: Torus | Box,
        batch_size: int,
        method: str = "sobol",
        generator: torch.Generator | None = None,
        time_interval: tuple[float, float] | None = None,
    ):
        if method not in ("sobol", "uniform", "density"):
            raise ValueError(
                f"unknown sampling method {method!r}; fix: use 'sobol', 'uniform' or 'density'"
            )
        self.domain = domain
        self.batch_size = int(batch_size)
        self.method = method
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self.time_interval = time_interval
        self.dim = domain.dim + (1 if time_interval is not None else 0)
        self.lower = torch.as_tensor(
            np.r_[[time_interval[0]] if time_interval else [], domain.lower], dtype=torch.float64
        )
        self.upper = torch.as_tensor(
            np.r_[[time_interval[1]] if time_interval else [], domain.upper], dtype=torch.float64
        )
        if method in ("sobol", "density"):  # "density" resamples from Sobol candidates
            seed = int(torch.randint(0, 2**31 - 1, (1,), generator=self.generator))
            engine = torch.quasirandom.SobolEngine(self.dim, scramble=True, seed=seed)
            self._base = engine.draw(self.batch_size, dtype=torch.float64)

    def sample(self) -> torch.Tensor:
        """A (batch_size, dim) float64 tensor of points in the domain (time first if any)."""
        if self.method == "uniform":
            u = torch.rand(self.batch_size, self.dim, generator=self.generator, dtype=torch.float64)
        else:
            shift = torch.rand(self.dim, generator=self.generator, dtype=torch.float64)
            u = torch.remainder(self._base + shift, 1.0)
        return self.lower + (self.upper - self.lower) * u

    def state_dict(self) -> dict:
        return {"rng": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["rng"].cpu())  # (a checkpoint mapped to a GPU)


def density_resample(
    pool: torch.Tensor,
    log_density: torch.Tensor,
    batch_size: int,
    fraction: float,
    volume: float,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch drawn from the mixture q = (1 - fraction) uniform + fraction m, with weights 1/q.

    The first ``batch_size - k`` candidates (uniform or stratified) are kept; ``k = fraction *
    batch_size`` more are drawn from all candidates with probabilities proportional to m (sampling
    importance resampling, so they follow m as the pool grows). The weight of a point is the uniform
    density over the mixture's, ``1 / ((1 - f) + f |Omega| m(x))`` with ``m`` normalised, so that
    ``mean(w * g(x))`` estimates ``int g / |Omega|`` like a uniform batch does. The estimate is exact
    in the limit of a large pool; with a pool of a few batches and a density far from uniform (large
    d, peaked m) the resampled points under-represent m's peaks and the weighted loss is biased (the
    zero-residual minimiser is not: any positive weighting keeps it).

    Args:
        pool: (N, d) candidate points, N >= batch_size, uniformly distributed.
        log_density: (N,) log m at the candidates (normalised: int m = 1).
        batch_size: points to return.
        fraction: share of the batch drawn from m, in [0, 1).
        volume: |Omega|.
        generator: the random generator of the draw (CPU).

    Returns:
        (points (batch_size, d), weights (batch_size,)).
    """
    k = int(round(fraction * batch_size))
    probs = torch.softmax(log_density.detach().double().cpu(), 0)
    index = (
        torch.multinomial(probs, k, replacement=True, generator=generator)
        if k > 0
        else torch.zeros(0, dtype=torch.long)
    ).to(pool.device)
    points = torch.cat([pool[: batch_size - k], pool[index]])
    log_m = torch.cat([log_density[: batch_size - k], log_density[index]]).detach()
    share = (batch_size - k) / batch_size
    weights = 1.0 / (share + (1 - share) * volume * torch.exp(log_m))
    return points, weights.to(pool.dtype)


class SliceSampler:
    """Collocation points as ``slices`` stratified times x ``per_slice`` space points each.

    Space points are a scrambled Sobol set with a fresh random shift per slice (modulo the
    domain), or i.i.d. uniform. On a box, :meth:`sample_boundary` gives points on the faces at
    given times.
    """

    def __init__(
        self,
        problem: Any,
        slices: int,
        per_slice: int,
        method: str,
        generator: torch.Generator,
    ):
        if method not in ("sobol", "uniform"):
            raise ValueError(
                f"sampling method {method!r} is not for finite-horizon problems; fix: use 'sobol' or 'uniform'"
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

    def sample_boundary(
        self, times: torch.Tensor, per_face: int, axes: Sequence[int] | None = None
    ) -> list[tuple[int, torch.Tensor, torch.Tensor]]:
        """Points on the faces x_i = lo_i and x_i = hi_i at each time, for each axis i of
        ``axes`` (default: every axis): (i, points, side) with side 0 (lower face) or 1 per
        point."""
        out = []
        for i in range(self.dim) if axes is None else axes:
            blocks, sides = [], []
            for t in times:
                for side, position in enumerate((self.lower[i], self.upper[i])):
                    u = torch.rand(
                        per_face, self.dim, generator=self.generator, dtype=torch.float64
                    )
                    x = self.lower + (self.upper - self.lower) * u
                    x[:, i] = position
                    blocks.append(torch.cat([t.expand(per_face, 1), x], dim=1))
                    sides.append(torch.full((per_face,), side))
            out.append((i, torch.cat(blocks), torch.cat(sides)))
        return out

    def state_dict(self) -> dict:
        return {"rng": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["rng"].cpu())  # (a checkpoint mapped to a GPU)


def space_time_nodes(
    domain: Torus | Box, t0: float, T: float, space_points: int, times: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """A space quadrature tiled over ``times`` uniform times in [t0, T]: (n, 1 + d) nodes (time
    first) and weights that average over time (they sum to the domain's volume)."""
    q = quadrature(domain, space_points, seed=seed)
    return tile_in_time(q.nodes.numpy(), q.weights.numpy(), np.linspace(t0, T, times))


def tile_in_time(
    nodes: np.ndarray, weights: np.ndarray, times: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Space nodes (q, d) with weights, repeated at each of ``times``: (q * nt, 1 + d) points
    (time first) and weights averaged over time."""
    nt = len(times)
    pts = np.concatenate([np.repeat(times, len(nodes))[:, None], np.tile(nodes, (nt, 1))], axis=1)
    return pts, np.tile(weights, nt) / nt
