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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .problem import Box, Torus

__all__ = ["Quadrature", "quadrature", "CollocationSampler", "density_resample"]


@dataclass
class Quadrature:
    """Nodes (n, d) and weights (n,) with sum(w * g(nodes)) ~ int_domain g."""

    nodes: torch.Tensor
    weights: torch.Tensor
    rule: str

    @property
    def log_weights(self) -> torch.Tensor:
        return torch.log(self.weights)

    def integrate(self, values: torch.Tensor) -> torch.Tensor:
        return (self.weights * values).sum(-1)

    def to(self, device: torch.device | str, dtype: torch.dtype) -> Quadrature:
        return Quadrature(self.nodes.to(device, dtype), self.weights.to(device, dtype), self.rule)


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
