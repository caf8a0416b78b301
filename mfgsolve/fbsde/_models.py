"""The two FBSDE models: deep BSDE (Han, Jentzen & E 2018) and the adversarial (weak-form) variant.

Both simulate X by Euler-Maruyama on a uniform grid of ``steps`` intervals with Brownian increments
drawn from a seeded ``torch.Generator``; McKean-Vlasov terms ``E(...)`` are means over the batch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from ._nets import MLP
from .problem import FBSDE


@dataclass
class ModelConfig:
    """Everything needed to rebuild a model (saved next to its weights)."""

    method: str
    dim: int
    steps: int
    width: int
    depth: int
    activation: str
    network: str  # "shared" (one net of (t, x)) or "per_step" (deep BSDE only)
    y0_init: float
    y_scale: float
    random_x0: bool
    z_scale: float = 1.0
    skip: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Normalizer(nn.Module):
    """Affine input scaling of x (per component) measured on pilot paths."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class FBSDEModel(nn.Module):
    """Base class: the dynamics of the problem and the Euler-Maruyama forward step."""

    def __init__(self, problem: FBSDE, config: ModelConfig):
        super().__init__()
        self.problem = problem
        self.config = config
        self.fns = problem.compiled()
        self.norm = _Normalizer(problem.dim)
        self.register_buffer("x0", torch.tensor(problem.x0))

    @property
    def h(self) -> float:
        return self.problem.horizon / self.config.steps

    def times(self) -> list[float]:
        return [self.problem.t0 + n * self.h for n in range(self.config.steps + 1)]

    def features(self, t: float, x: torch.Tensor) -> torch.Tensor:
        tau = torch.full_like(x[:, :1], (t - self.problem.t0) / self.problem.horizon)
        return torch.cat([tau, self.norm(x)], dim=1)

    def initial_state(self, batch: int, gen: torch.Generator) -> torch.Tensor:
        x = self.x0.to(self._dtype).expand(batch, -1).clone()
        if self.problem.x0_std > 0:
            x = x + self.problem.x0_std * torch.randn(x.shape, generator=gen, dtype=self._dtype)
        return x

    @property
    def _dtype(self) -> torch.dtype:
        return self.norm.mean.dtype

    def env(self, t: float, x, y, z) -> dict[str, torch.Tensor]:
        return {"t": torch.full_like(x[:, :1], t), "x": x, "y": y, "z": z}

    def forward_step(self, env: dict[str, torch.Tensor], dw: torch.Tensor) -> torch.Tensor:
        x = env["x"]
        drift = self.fns["drift"](env)
        if self.problem.full_diffusion:
            noise = dw @ self.fns["diffusion"](env["t"]).to(x.dtype).T
        else:
            noise = self.fns["diffusion"](env) * dw
        return x + drift * self.h + noise

    def driver(self, env: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.as_tensor(self.fns["driver"](env)).expand_as(env["y"])

    def terminal(self, x: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(self.fns["terminal"]({"x": x})).expand(x.shape[0], 1)

    def increments(self, batch: int, gen: torch.Generator) -> torch.Tensor:
        shape = (self.config.steps, batch, self.problem.dim)
        return math.sqrt(self.h) * torch.randn(shape, generator=gen, dtype=self._dtype)


class DeepBSDE(FBSDEModel):
    """Y_0 (a number, or a network of X_0) and Z_n = z(t_n, X_n); Y is run forward by Euler.

    The loss is the terminal mismatch E|Y_N - g(X_N)|^2 (Han, Jentzen & E 2018).
    """

    def __init__(self, problem: FBSDE, config: ModelConfig):
        super().__init__(problem, config)
        d = problem.dim
        if config.random_x0:
            self.y0_net = MLP(d, 1, config.width, config.depth, config.activation)
        else:
            self.y0_param = nn.Parameter(torch.zeros(1))
        if config.network == "per_step":
            self.z_nets = nn.ModuleList(
                MLP(d, d, config.width, config.depth, config.activation, skip=config.skip)
                for _ in range(config.steps)
            )
        else:
            self.z_net = MLP(
                1 + d, d, config.width, config.depth, config.activation, skip=config.skip
            )

    def y_initial(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        if c.random_x0:
            return c.y0_init + c.y_scale * self.y0_net(self.norm(x))
        return (c.y0_init + c.y_scale * self.y0_param).expand(x.shape[0], 1)

    def z(self, n: int, t: float, x: torch.Tensor) -> torch.Tensor:
        if self.config.network == "per_step":
            return self.config.z_scale * self.z_nets[n](self.norm(x))
        return self.config.z_scale * self.z_net(self.features(t, x))

    def simulate(self, batch: int, gen: torch.Generator) -> dict[str, Any]:
        """Run X and Y forward; returns lists of X_n, Y_n, Z_n (tensors) and the loss."""
        x = self.initial_state(batch, gen)
        y = self.y_initial(x)
        dws = self.increments(batch, gen)
        xs, ys, zs = [x], [y], []
        for n, t in enumerate(self.times()[:-1]):
            z = self.z(n, t, x)
            env = self.env(t, x, y, z)
            f = self.driver(env)
            x_next = self.forward_step(env, dws[n])
            y = y - f * self.h + (z * dws[n]).sum(dim=1, keepdim=True)
            x = x_next
            xs.append(x)
            ys.append(y)
            zs.append(z)
        mismatch = (y - self.terminal(x)) / self.config.y_scale
        return {"x": xs, "y": ys, "z": zs, "loss": mismatch.pow(2).mean()}

    def y0_at(self, x: torch.Tensor) -> torch.Tensor:
        return self.y_initial(x).reshape(-1)

    @torch.no_grad()
    def y0_moment(self, n: int, gen: torch.Generator, chunk: int = 4096) -> tuple[float, float]:
        """Y_0 corrected by the mean terminal mismatch on ``n`` fresh paths: ``Y_0 + E[g - Y_N]``.

        For a driver independent of y this is the least-squares optimal Y_0 for the learned Z (the
        trained parameter only fluctuates around it); otherwise it is one Newton step towards
        ``E[Y_N] = E[g(X_N)]``, the same mean condition as :meth:`Adversarial.y0_moment`.

        Returns:
            ``(estimate, standard error)``.
        """
        total, total_sq, count = 0.0, 0.0, 0
        while count < n:
            m = min(chunk, n - count)
            sim = self.simulate(m, gen)
            gap = (self.terminal(sim["x"][-1]) - sim["y"][-1]).double().reshape(-1)
            total += float(gap.sum())
            total_sq += float(gap.pow(2).sum())
            count += m
        mean = total / count
        var = max(total_sq / count - mean**2, 0.0)
        x0 = self.x0.to(self._dtype)[None, :]
        return float(self.y0_at(x0)[0]) + mean, math.sqrt(var / count)


class Adversarial(FBSDEModel):
    """Generator u(t, x), z(t, x) against a discriminator a(t, x), c(t, x) testing the weak form.

    With the integrated residuals r_n = [g(X_N) + sum_{k >= n} (f_k h - z_k . dW_k) - u(t_n, X_n)] / s
    (the martingale terms z_k . dW_k, k > n, detached), the discrete BSDE is equivalent to the
    conditional moment conditions
    E[r_n | X_n] = 0 and E[r_n xi_n | X_n] = 0 (xi_n = dW_n / sqrt(h)). The discriminator is the test
    function phi = a(t_n, X_n) + c(t_n, X_n) . xi_n / sqrt(h) and the game is

        min_gen max_disc  E[phi r] - 1/2 E[a^2 + |c|^2],

    whose inner maximum is 1/2 E[E[r|X]^2 + |E[r xi|X]|^2 / h]: zero exactly at the discrete solution.
    """

    def __init__(self, problem: FBSDE, config: ModelConfig):
        super().__init__(problem, config)
        d = problem.dim
        self.generator = MLP(
            1 + d, 1 + d, config.width, config.depth, config.activation, skip=config.skip
        )
        self.discriminator = MLP(
            1 + d, 1 + d, config.width, config.depth, config.activation, 1.0, skip=config.skip
        )

    def uz(self, t: float, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.generator(self.features(t, x))
        c = self.config
        return c.y0_init + c.y_scale * out[:, :1], c.z_scale * out[:, 1:]

    def test_functions(self, t: float, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.discriminator(self.features(t, x))
        return out[:, :1], out[:, 1:]

    def _stacked_features(self, xs: torch.Tensor) -> torch.Tensor:
        """Features of a (steps, batch, d) stack of states at t_0 .. t_{N-1}."""
        n, b, _ = xs.shape
        tau = torch.arange(n, dtype=xs.dtype).reshape(n, 1, 1) / self.config.steps
        return torch.cat([tau.expand(n, b, 1), self.norm(xs)], dim=-1)

    def simulate(self, batch: int, gen: torch.Generator) -> dict[str, Any]:
        """Paths X_n (no gradient), then u_n, z_n and the residuals r_n for all steps at once.

        r_n = [g(X_N) + sum_{k >= n} (f_k h - z_k . dW_k) - u(t_n, X_n)] / s, where the martingale
        terms z_k . dW_k with k > n are detached: they only act as a control variate (zero
        conditional mean given X_n, and zero correlation with xi_n). The driver terms f_k h of later
        steps keep their gradient: detached, they made the generator chase a moving target (a
        semi-gradient, as in TD learning) that was biased at t0 and diverged for stiff drivers.
        X is simulated with the current generator when the drift depends on y or z (coupled FBSDE).
        """
        x = self.initial_state(batch, gen)
        dws = self.increments(batch, gen)
        times = self.times()
        coupled = bool(
            self.problem.drift.free_symbols & {self.problem.value_symbol, self.problem.gradient}
        )
        xs = [x]
        with torch.no_grad():
            zero_y = torch.zeros_like(x[:, :1])
            for n, t in enumerate(times[:-1]):
                y, z = self.uz(t, x) if coupled else (zero_y, torch.zeros_like(x))
                x = self.forward_step(self.env(t, x, y, z), dws[n])
                xs.append(x)
        g = self.terminal(x)
        states = torch.stack(xs[:-1])  # (N, B, d)
        out = self.generator(self._stacked_features(states))
        c = self.config
        y = c.y0_init + c.y_scale * out[..., :1]
        z = c.z_scale * out[..., 1:]
        t_col = torch.tensor(times[:-1], dtype=x.dtype).reshape(-1, 1, 1).expand_as(y)
        f = torch.as_tensor(
            self.fns["driver"]({"t": t_col, "x": states, "y": y, "z": z})
        ).expand_as(y)
        noise = (z * dws).sum(dim=-1, keepdim=True)
        inc = f * self.h - noise
        # the driver terms of later steps keep their gradient (the weak-form residual is then a
        # genuine objective of the generator); only the martingale terms z_k . dW_k are detached
        later_terms = f * self.h - noise.detach()
        later = torch.flip(torch.cumsum(torch.flip(later_terms, [0]), 0), [0]) - later_terms
        r = (g.unsqueeze(0) + later + inc - y) / c.y_scale
        return {
            "x": xs,
            "y": list(y.unbind(0)) + [g],
            "z": list(z.unbind(0)),
            "r": r,
            "states": states,
            "dw": dws,
        }

    def game(self, sim: dict[str, Any], detach_residual: bool) -> torch.Tensor:
        """The game value E[phi r] - 1/2 E[a^2 + |c|^2], averaged over steps and paths."""
        out = self.discriminator(self._stacked_features(sim["states"]))
        a, c = out[..., :1], out[..., 1:]
        if detach_residual:
            r = sim["r"].detach()
        else:
            r = sim["r"]
            a, c = a.detach(), c.detach()
        sqrt_h = math.sqrt(self.h)
        xi = sim["dw"] / sqrt_h
        test = a * r + (c * xi).sum(dim=-1, keepdim=True) * r / sqrt_h
        return test.mean() - 0.5 * (a.pow(2).mean() + c.pow(2).sum(-1).mean())

    def y0_at(self, x: torch.Tensor) -> torch.Tensor:
        return self.uz(self.problem.t0, x)[0].reshape(-1)

    @torch.no_grad()
    def y0_moment(self, n: int, gen: torch.Generator, chunk: int = 4096) -> tuple[float, float]:
        """Y_0 from the moment condition E[r_0] = 0 on ``n`` fresh paths: the mean of
        ``g(X_N) + sum_k (f_k h - z_k . dW_k)`` with the generator's u_k, z_k (z as control variate).

        Returns:
            ``(estimate, standard error)``.
        """
        total, total_sq, count = 0.0, 0.0, 0
        while count < n:
            m = min(chunk, n - count)
            sim = self.simulate(m, gen)
            values = (sim["r"][0] * self.config.y_scale + sim["y"][0]).double().reshape(-1)
            total += float(values.sum())
            total_sq += float(values.pow(2).sum())
            count += m
        mean = total / count
        var = max(total_sq / count - mean**2, 0.0)
        return mean, math.sqrt(var / count)
