"""Ergodic MFGs for the training loop: networks, collocation, losses and evaluation.

Unknowns: u_theta, f_omega with m = exp(f) / Z (Z by quadrature at each loss) and the constant
Hbar: at its least-squares value when it enters the HJB linearly (the mean of the rest of the
residual), else a trained scalar. ``int u = 0`` is the penalty ``(int u)^2`` weighted by ``beta``.
A :class:`~mfgsolve.DiscountedMFG` has neither: its discount term fixes u (the penalty is 0).
A first-order problem trained adversarially gets the vanishing-viscosity continuation
(:mod:`mfgsolve._continuation`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .. import distributed
from .._continuation import continuation_viscosity, viscosity_signs
from ..lowering import ErgodicFields, Residuals, lower, second_estimates, uses_laplacian
from ..metrics._integrals import exact_functions, field_errors
from ..nn import build_networks
from ..options import SolverOptions
from ..sampling import CollocationSampler, density_resample, quadrature

__all__ = ["ErgodicFormulation"]


def weighted_mean(values: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    return values.mean() if weights is None else (weights * values).mean()


class ErgodicFormulation:
    """What the loop needs of an ergodic problem (see :class:`mfgsolve.train.loop.Trainer`)."""

    kind = "ergodic"

    def __init__(self, problem, opts: SolverOptions, seed: int, device, dtype, world):
        self.problem, self.opts, self.seed = problem, opts, seed
        self.device, self.dtype = device, dtype
        self.rank, self.world_size = world
        self.residuals: Residuals = lower(problem)
        self.has_constant = problem.constant is not None
        game = opts.game
        self.least_squares = (
            self.residuals.constant_coefficient is not None and game.constant != "trained"
        )
        self.continuation = viscosity_signs(problem) if game.continuation > 0 else None
        self._lap_hjb = uses_laplacian(self.residuals.hjb) or self.continuation is not None
        self._lap_fp = uses_laplacian(self.residuals.fp) or self.continuation is not None
        self.engine = opts.engine
        # evaluation is exact: the stochastic trace only serves training
        self.eval_engine = "func" if self.engine == "hutchinson" else self.engine
        self.quad = quadrature(problem.domain, opts.sampling.quadrature_points, seed=seed).to(
            device, dtype
        )
        self.eval_quad = quadrature(problem.domain, opts.run.eval_points, seed=seed + 1)
        u_ex, m_ex, c_ex = exact_functions(problem)
        nodes = self.eval_quad.nodes.numpy()
        self.exact = (u_ex(nodes) if u_ex else None, m_ex(nodes) if m_ex else None, c_ex)

    # ----- building --------------------------------------------------------------------------
    def build(self):
        """(value network, density network, trained constant or None); call under a seeded RNG."""
        value_net, density_net = build_networks(self.problem, self.opts, self.device, self.dtype)
        constant = None
        if self.has_constant and not self.least_squares:
            constant = torch.zeros((), device=self.device, dtype=self.dtype, requires_grad=True)
        return value_net, density_net, constant

    def make_sampler(self, generator: torch.Generator) -> CollocationSampler:
        s = self.opts.sampling
        return CollocationSampler(self.problem.domain, s.batch_size, s.sampling, generator)

    # ----- losses ----------------------------------------------------------------------------
    def _log_z(self, density_net) -> torch.Tensor:
        return density_net.log_normalizer(self.quad.nodes, self.quad.log_weights)

    def _int_u(self, value_net) -> torch.Tensor:
        if not self.has_constant:  # a discounted problem: no normalisation of u
            return torch.zeros((), device=self.device, dtype=self.dtype)
        return self.quad.integrate(value_net(self.quad.nodes)) / self.problem.domain.volume

    def viscosity(self, iteration: int) -> float:
        """The continuation's artificial viscosity at ``iteration`` (0 without continuation)."""
        if self.continuation is None:
            return 0.0
        game = self.opts.game
        return continuation_viscosity(
            game.continuation, game.continuation_final, iteration, self.opts.optimiser.iterations
        )

    def _hjb(self, points, caches, constants=(), eps: float = 0.0) -> torch.Tensor:
        """The HJB residual (without a least-squares constant) plus the continuation's viscosity;
        ``constants``: a trained constant (added as ``c * Hbar`` where it enters linearly)."""
        r = self._with_constant(self.residuals.hjb, points, caches, constants)
        return r + (self.continuation[0] * eps) * caches["u"]("lap") if eps else r

    def _with_constant(self, hjb, points, caches, constants) -> torch.Tensor:
        """The lowered HJB at a given constant: a linear constant was split off by the lowering
        (HJB = rest + c * Hbar), a nonlinear one is an argument of the residual."""
        coeff = self.residuals.constant_coefficient
        if coeff is not None and constants:
            return hjb(points, caches) + coeff * constants[0]
        return hjb(points, caches, constants)

    def _fp(self, points, caches, eps: float = 0.0) -> torch.Tensor:
        """The FP residual plus the continuation's viscosity."""
        r = self.residuals.fp(points, caches)
        return r + (self.continuation[1] * eps) * caches["m"]("lap") if eps else r

    def _hjb_loss(
        self, points, caches, constant, weights, caches_b=None, eps: float = 0.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean squared HJB residual; with ``caches_b`` (a second, independent stochastic
        estimate) the mean of the product of the two residuals, an unbiased estimate of it."""
        res = self.residuals
        if self.least_squares:
            rest = self._hjb(points, caches, eps=eps)
            rest_b = self._hjb(points, caches_b, eps=eps) if caches_b is not None else rest
            if self.world_size > 1 or weights is not None or caches_b is not None:
                # the (weighted) mean over the global batch; as the residuals then sum to zero
                # over it, the gradient through this mean vanishes and detaching it changes nothing
                total = distributed.all_mean(weighted_mean((rest + rest_b) / 2, weights))
                mass = distributed.all_mean(weighted_mean(torch.ones_like(rest), weights))
                c_star = -(total / mass) / res.constant_coefficient
            else:
                c_star = -rest.mean() / res.constant_coefficient
            r = rest + res.constant_coefficient * c_star
            r_b = rest_b + res.constant_coefficient * c_star if caches_b is not None else r
            return weighted_mean(r * r_b, weights), c_star.detach()
        given = [constant] if constant is not None else []
        r = self._hjb(points, caches, given, eps)
        r_b = self._hjb(points, caches_b, given, eps) if caches_b is not None else r
        estimate = constant.detach() if constant is not None else torch.tensor(float("nan"))
        return weighted_mean(r * r_b, weights), estimate

    def losses(self, st, points, players: Sequence[str], frozen: Sequence[str], weights=None):
        """The losses of ``players`` ("hjb", "fp") at ``points``; fields in ``frozen`` act as
        constants (the loop holds their weights constant). Returns a dict with "hjb" (and
        "int_u", "constant") and/or "fp"."""
        log_z = self._log_z(st.density_net)
        fields = ErgodicFields(st.value_net, st.density_net, log_z)
        caches = self.residuals.caches(
            points,
            fields,
            frozen=frozen,
            engine=self.engine,
            probes=self.opts.derivatives.hutchinson_probes,
            generator=st.sampler.generator,
            shard=(self.rank, self.world_size),
        )
        stochastic = self.engine == "hutchinson"
        eps = self.viscosity(st.iteration)
        out: dict[str, torch.Tensor] = {}
        if "hjb" in players:
            second = second_estimates(caches) if stochastic and self._lap_hjb else None
            out["hjb"], out["constant"] = self._hjb_loss(
                points, caches, st.constant, weights, second, eps
            )
            out["int_u"] = self._int_u(st.value_net) ** 2
        if "fp" in players:
            fp = self._fp(points, caches, eps)
            if stochastic and self._lap_fp:  # unbiased: the product of two independent estimates
                fp = fp * self._fp(points, second_estimates(caches), eps)
            else:
                fp = fp**2
            out["fp"] = weighted_mean(fp, weights)
        return out

    def batch(self, st) -> tuple[torch.Tensor, torch.Tensor | None]:
        """This process's collocation points (requiring grad) and importance weights (or None)."""
        s = self.opts.sampling
        points = st.sampler.sample()  # the whole batch, in every process
        weights = None
        if s.sampling == "density":
            pool = torch.cat([points] + [st.sampler.sample() for _ in range(3)])
            with torch.no_grad():
                dev_pool = pool.to(self.device, self.dtype)
                log_m = st.density_net(dev_pool) - self._log_z(st.density_net)
            points, weights = density_resample(
                dev_pool,
                log_m,
                s.batch_size,
                s.density_fraction,
                self.problem.domain.volume,
                st.sampler.generator,
            )
            weights = distributed.shard(weights)
        points = distributed.shard(points).to(self.device, self.dtype)
        return points.requires_grad_(True), weights

    def record(self, st) -> dict[str, float]:
        """Per-iteration values recorded besides the losses."""
        return {"viscosity": self.viscosity(st.iteration)} if self.continuation is not None else {}

    # ----- evaluation ------------------------------------------------------------------------
    def eval_log_z(self, density_net) -> torch.Tensor:
        """log Z on the (larger) evaluation quadrature: used for everything reported, not for training."""
        nodes = self.eval_quad.nodes.to(self.device, self.dtype)
        with torch.no_grad():
            f = torch.cat([density_net(c) for c in nodes.split(8192)])
        return torch.logsumexp(f + self.eval_quad.log_weights.to(self.device, self.dtype), dim=0)

    def validate(
        self, value_net, density_net, constant, residuals: bool = True
    ) -> dict[str, float]:
        """The ergodic constant and the RMS HJB and FP residuals on the evaluation quadrature.

        When the constant enters linearly (HJB = rest + c * Hbar) it is the density-weighted least-squares
        value ``-int m rest / c``: the average of the rest of the residual under the computed invariant
        measure m. With a log coupling, first-order errors of log m average out under this measure
        (int m = 1), so the estimate is second order in the error of m; a uniform average would be first
        order. Otherwise the trained constant is used. Residual norms use at most the first 4096 nodes.
        """
        nodes = self.eval_quad.nodes.to(self.device, self.dtype)
        weights = self.eval_quad.weights
        with torch.no_grad():
            log_z = self.eval_log_z(density_net)
        fields = ErgodicFields(value_net, density_net, log_z)
        rests, masses = [], []
        first = None  # the residual norms use the first chunk; keep no other graph alive
        coeff = self.residuals.constant_coefficient
        for chunk, w in zip(nodes.split(4096), weights.split(4096)):
            pts = chunk.clone().requires_grad_(True)
            caches = self.residuals.caches(pts, fields, create_graph=False, engine=self.eval_engine)
            if self.least_squares:
                rest = self.residuals.hjb(pts, caches).detach().double().cpu()
                m = torch.exp(caches["logm"](()).detach().double().cpu())
                rests.append(float((w * m * rest).sum()))
                masses.append(float((w * m).sum()))
            if first is None:
                first = (pts, caches, w)
            if not residuals and not self.least_squares:
                break
        if self.least_squares:
            value = -sum(rests) / sum(masses) / coeff
        else:
            value = float(constant.detach()) if constant is not None else None
        out = {"constant": value} if value is not None else {}
        if residuals:
            pts, caches, w = first
            if self.least_squares:
                hjb = self.residuals.hjb(pts, caches) + coeff * value
            elif value is None:
                hjb = self.residuals.hjb(pts, caches)
            else:
                hjb = self._with_constant(
                    self.residuals.hjb,
                    pts,
                    caches,
                    [torch.as_tensor(value, dtype=self.dtype, device=self.device)],
                )
            fp = self.residuals.fp(pts, caches)
            total = float(w.sum())
            out["hjb_residual"] = float((w * hjb.detach().double().cpu() ** 2).sum() / total) ** 0.5
            out["fp_residual"] = float((w * fp.detach().double().cpu() ** 2).sum() / total) ** 0.5
        return out

    def evaluate(self, st) -> dict[str, float]:
        """Constant, residual norms and (with a known solution) errors of the evaluated networks."""
        value_net, density_net = st.eval_nets()
        nodes = self.eval_quad.nodes.to(self.device, self.dtype)
        with torch.no_grad():
            log_z = self.eval_log_z(density_net)
            u = torch.cat([value_net(c) for c in nodes.split(8192)]).double().cpu().numpy()
            m = (
                torch.exp(torch.cat([density_net(c) for c in nodes.split(8192)]) - log_z)
                .double()
                .cpu()
                .numpy()
            )
        out = self.validate(value_net, density_net, st.constant)
        st.constant_estimate = out.get("constant", float("nan"))
        u_ref, m_ref, c_ref = self.exact
        weights = self.eval_quad.weights.numpy()
        out.update(field_errors(u, m, u_ref, m_ref, weights, out.get("constant"), c_ref))
        return out

    def finish(self, st) -> tuple[float, float | None, str]:
        """(log Z of the evaluated density, the ergodic constant or None, the quadrature's
        description)."""
        value_net, density_net = st.eval_nets()
        with torch.no_grad():
            log_z = float(self.eval_log_z(density_net))
        if not self.has_constant:
            return log_z, None, self.eval_quad.rule
        if st.history:
            constant = st.constant_estimate
        else:
            constant = self.validate(value_net, density_net, st.constant, residuals=False)[
                "constant"
            ]
        return log_z, float(constant), self.eval_quad.rule

    def check_parallel(self) -> None:
        """Data-parallel training is available for ergodic problems."""
