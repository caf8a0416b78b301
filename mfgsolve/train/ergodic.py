"""Ergodic MFGs for the training loop: networks, collocation, losses and evaluation.

Unknowns: u_theta, f_omega with m = exp(f) / Z (Z by quadrature at each loss) and the constant
Hbar: at its least-squares value when it enters the HJB linearly (the mean of the rest of the
residual), else a trained scalar. ``int u = 0`` is the penalty ``(int u)^2`` weighted by ``beta``.
A :class:`~mfgsolve.DiscountedMFG` has neither: its discount term fixes u (the penalty is 0).
A first-order problem trained adversarially gets the vanishing-viscosity continuation
(:mod:`mfgsolve._continuation`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from .. import distributed
from .._continuation import continuation_viscosity, viscosity_signs
from ..lowering import (
    Residuals,
    field_name,
    fields_of,
    lower_populations,
    second_estimates,
    uses_laplacian,
)
from ..metrics._integrals import exact_functions, field_errors, population_errors
from ..metrics.whole_space import EVALUATION_FACTORS, whole_space_errors
from ..nn import build_networks
from ..options import SolverOptions
from ..problem import Rd
from ..sampling import (
    CollocationSampler,
    GaussianSampler,
    Quadrature,
    density_resample,
    evaluation_chunk,
    gaussian_quadrature,
    quadrature,
)

__all__ = ["ErgodicFormulation"]


RESIDUAL_NODES = 4096  # the reported residual norms use the evaluation rule's first nodes


def _in_chunks(net, nodes: torch.Tensor) -> torch.Tensor:
    """A network's values at many nodes, 8,192 at a time (no graph: call under no_grad)."""
    return torch.cat([net(c) for c in nodes.split(8192)])


def weighted_mean(values: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    return values.mean() if weights is None else (weights * values).mean()


class ErgodicFormulation:
    """What the loop needs of an ergodic problem (see :class:`mfgsolve.train.loop.Trainer`)."""

    kind = "ergodic"

    def __init__(self, problem, opts: SolverOptions, seed: int, device, dtype, world):
        self.problem, self.opts, self.seed = problem, opts, seed
        self.device, self.dtype = device, dtype
        self.rank, self.world_size = world
        self.populations = problem.populations
        self.by_population: list[Residuals] = lower_populations(problem)
        self.residuals: Residuals = self.by_population[0]
        self.has_constant = bool(problem.constants)
        game = opts.game
        self.least_squares = (
            all(r.constant_coefficient is not None for r in self.by_population)
            and game.constant != "trained"
        )
        self.continuation = viscosity_signs(problem) if game.continuation > 0 else None
        self._lap_hjb = (
            any(uses_laplacian(r.hjb) for r in self.by_population) or self.continuation is not None
        )
        self._lap_fp = (
            any(uses_laplacian(r.fp) for r in self.by_population) or self.continuation is not None
        )
        self._lagrangian_density = None  # (lowered on first use: the min-max game)
        self.engine = opts.engine
        # evaluation is exact: the stochastic trace only serves training
        # (reverse mode for the stochastic trace: the constant needs first derivatives only, at
        # every evaluation node, and "func" computes the Laplacian with them: 21.9 s against 3.1 s
        # per evaluation in d = 100)
        self.eval_engine = "autograd" if self.engine == "hutchinson" else self.engine
        # on R^d the rules are importance sampling from the density's envelope, mapped at each use
        self.whole_space = isinstance(problem.domain, Rd)
        if self.whole_space:
            points, d = opts.sampling.quadrature_points, problem.dim
            self.quad = gaussian_quadrature(d, points, seed)
            self.eval_quad = gaussian_quadrature(
                d, opts.run.eval_points, seed + 1, EVALUATION_FACTORS
            )
            self.exact_functions = exact_functions(problem)
        else:
            self.quad = quadrature(problem.domain, opts.sampling.quadrature_points, seed=seed).to(
                device, dtype
            )
            self.eval_quad = quadrature(problem.domain, opts.run.eval_points, seed=seed + 1)
            u_ex, m_ex, c_ex = exact_functions(problem)
            nodes = self.eval_quad.nodes.numpy()
            self.exact = (u_ex(nodes) if u_ex else None, m_ex(nodes) if m_ex else None, c_ex)

    def _name(self, role: str, k: int) -> str:
        """The cache name of population k's field ``role`` ("u", "m", "logm")."""
        return field_name(role, k if self.populations > 1 else None)

    # ----- building --------------------------------------------------------------------------
    def build(self):
        """(value network, density network, trained constant or None); call under a seeded RNG."""
        value_net, density_net = build_networks(self.problem, self.opts, self.device, self.dtype)
        constant = None
        if self.has_constant and not self.least_squares:
            shape = () if self.populations == 1 else (self.populations,)
            constant = torch.zeros(shape, device=self.device, dtype=self.dtype, requires_grad=True)
        return value_net, density_net, constant

    def make_sampler(self, generator: torch.Generator) -> CollocationSampler | GaussianSampler:
        s = self.opts.sampling
        if self.whole_space:
            return GaussianSampler(self.problem.dim, s.batch_size, generator)
        return CollocationSampler(self.problem.domain, s.batch_size, s.sampling, generator)

    def _reference(self, density_net) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, scale) of the density's envelope: the reference measure on R^d."""
        return density_net.reference()

    def _training_quad(self, density_net) -> Quadrature:
        """The rule for Z and int u: fixed on a bounded domain, the envelope's on R^d."""
        if not self.whole_space:
            return self.quad
        return self.quad.mapped(*self._reference(density_net))

    def _evaluation_quad(self, density_net) -> Quadrature:
        """The (larger) rule for what is reported."""
        if not self.whole_space:
            return self.eval_quad
        mean, scale = self._reference(density_net)
        return self.eval_quad.mapped(mean.double().cpu(), scale.double().cpu())

    # ----- losses ----------------------------------------------------------------------------
    def _log_z(self, density_net) -> torch.Tensor:
        quad = self._training_quad(density_net)
        return density_net.log_normalizer(quad.nodes, quad.log_weights)

    def _int_u(self, value_net, density_net=None) -> torch.Tensor:
        """int u per unit volume (one per population when there are several); on R^d, where u
        grows, the mean of u under the reference measure (the envelope of ``density_net``)."""
        if not self.has_constant:  # a discounted problem: no normalisation of u
            return torch.zeros((), device=self.device, dtype=self.dtype)
        if self.whole_space:
            return value_net(self._training_quad(density_net).nodes).mean()
        u = value_net(self.quad.nodes)
        if self.populations == 1:
            return self.quad.integrate(u) / self.problem.domain.volume
        return self.quad.integrate(u.transpose(0, 1)) / self.problem.domain.volume

    @torch.no_grad()
    def fix_gauge(self, value_net, density_net=None) -> None:
        """Shift u to int u = 0 (each population's; the value of an ergodic MFG is defined up to a
        constant, which the penalty (int u)^2 only weakly pins). Nothing for a discounted
        problem, whose u is unique."""
        if self.has_constant:
            value_net.shift_(-self._int_u(value_net, density_net))

    def viscosity(self, iteration: int) -> float:
        """The continuation's artificial viscosity at ``iteration`` (0 without continuation)."""
        if self.continuation is None:
            return 0.0
        game = self.opts.game
        return continuation_viscosity(
            game.continuation, game.continuation_final, iteration, self.opts.optimiser.iterations
        )

    def _hjb(self, points, caches, constants=(), eps: float = 0.0, k: int = 0) -> torch.Tensor:
        """Population k's HJB residual (without a least-squares constant) plus the
        continuation's viscosity; ``constants``: a trained constant (added as ``c * Hbar``
        where it enters linearly)."""
        r = self._with_constant(self.by_population[k], points, caches, constants)
        return r + (self.continuation[0] * eps) * caches[self._name("u", k)]("lap") if eps else r

    def _with_constant(self, res: Residuals, points, caches, constants) -> torch.Tensor:
        """The lowered HJB of ``res`` at a given constant: a linear constant was split off by
        the lowering (HJB = rest + c * Hbar), a nonlinear one is an argument of the residual."""
        coeff = res.constant_coefficient
        if coeff is not None and constants:
            return res.hjb(points, caches) + coeff * constants[0]
        return res.hjb(points, caches, constants)

    def _fp(self, points, caches, eps: float = 0.0, k: int = 0) -> torch.Tensor:
        """Population k's FP residual plus the continuation's viscosity."""
        r = self.by_population[k].fp(points, caches)
        if not eps:
            return r
        if self.whole_space:  # the FP divided by m: Lap m / m = Lap log m + |grad log m|^2
            log_m = caches[self._name("logm", k)]
            grad = sum(log_m((i,)) ** 2 for i in range(self.problem.dim))
            return r + (self.continuation[1] * eps) * (log_m("lap") + grad)
        return r + (self.continuation[1] * eps) * caches[self._name("m", k)]("lap")

    def _hjb_loss(
        self, points, caches, constant, weights, caches_b=None, eps: float = 0.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The HJB loss summed over the populations, and the constants (a scalar for one
        population, one per population otherwise)."""
        if self.populations == 1:
            return self._one_hjb_loss(points, caches, constant, weights, caches_b, eps, 0)
        losses, estimates = [], []
        for k in range(self.populations):
            given = constant[k] if constant is not None else None
            loss, estimate = self._one_hjb_loss(points, caches, given, weights, caches_b, eps, k)
            losses.append(loss)
            estimates.append(estimate)
        return torch.stack(losses).sum(), torch.stack(estimates)

    def _one_hjb_loss(
        self, points, caches, constant, weights, caches_b, eps: float, k: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean squared HJB residual of population k; with ``caches_b`` (a second, independent
        stochastic estimate) the mean of the product of the two residuals, an unbiased estimate
        of it."""
        res = self.by_population[k]
        if self.least_squares:
            rest = self._hjb(points, caches, eps=eps, k=k)
            rest_b = self._hjb(points, caches_b, eps=eps, k=k) if caches_b is not None else rest
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
        r = self._hjb(points, caches, given, eps, k)
        r_b = self._hjb(points, caches_b, given, eps, k) if caches_b is not None else r
        estimate = constant.detach() if constant is not None else torch.tensor(float("nan"))
        return weighted_mean(r * r_b, weights), estimate

    def _minmax(self, st, points, weights, player: str) -> dict[str, torch.Tensor]:
        """The min-max game's loss of ``player`` for a potential problem (first derivatives
        only; docs/solver.md#the-min-max-game):

        - "lagrangian" (the value's): L(u, m) = E_m[psi] and the penalty (int u)^2. E_m is the
          batch's self-normalised mean (weights m(x_i), times the importance weights when
          sampling from m), which has int m = 1 on the batch itself;
        - "ascent" (the density's): a loss whose gradient is minus L's gradient in m in the
          Fisher-Rao metric, ``-mean[phi f + nu grad u . grad f]`` with phi = H - f(x, m)
          (centred, detached): the first variation dL/dm against the density network's change,
          not weighted by m (the plain gradient, weighted by m, is slow where m is small:
          4-D seed, 1,000 steps of the density alone, error 8e-2 against 1.5e-2).
        """
        if self._lagrangian_density is None:
            from ..lowering.potential import lower_lagrangian, potential_form

            self._lagrangian_density = lower_lagrangian(self.problem, potential_form(self.problem))
        lagrangian = self._lagrangian_density
        log_z = self._log_z(st.density_net)
        u = st.value_net(points)
        f = st.density_net(points)
        # (the density's step holds u constant: its gradient needs no graph of its own)
        du = torch.autograd.grad(u.sum(), points, create_graph=player != "ascent")[0]
        if player == "ascent":
            phi = lagrangian.variation(points, du, f - log_z).detach()
            phi = phi - weighted_mean(phi, weights) / weighted_mean(torch.ones_like(phi), weights)
            pairing = phi * f
            if lagrangian.viscosity:
                df = torch.autograd.grad(f.sum(), points, create_graph=True)[0]
                pairing = pairing + lagrangian.viscosity * (du * df).sum(dim=1)
            return {"ascent": -weighted_mean(pairing, weights)}
        df = None  # (grad log m enters L only through the viscous term)
        if lagrangian.viscosity:
            df = torch.autograd.grad(f.sum(), points, create_graph=True)[0]
        psi = lagrangian.per_mass(points, du, f - log_z, df)
        logits = f if weights is None else f + torch.log(weights)
        value = (torch.softmax(logits, dim=0) * psi).sum()
        return {"lagrangian": value, "int_u": self._int_u(st.value_net, st.density_net) ** 2}

    def losses(self, st, points, players: Sequence[str], frozen: Sequence[str], weights=None):
        """The losses of ``players`` ("hjb", "fp"; or one of "lagrangian", "ascent" for the
        min-max game, :meth:`_minmax`) at ``points``; fields in ``frozen`` act as constants
        (the loop holds their weights constant). Returns a dict with "hjb" (and "int_u",
        "constant") and/or "fp"; or "lagrangian" and "int_u"; or "ascent"."""
        if "lagrangian" in players or "ascent" in players:
            return self._minmax(st, points, weights, players[0])
        log_z = self._log_z(st.density_net)
        fields = fields_of(self.problem, st.value_net, st.density_net, log_z)
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
            int_u = self._int_u(
                st.value_net, st.density_net
            )  # the penalty (int u)^2, summed over populations
            out["int_u"] = int_u**2 if self.populations == 1 else (int_u**2).sum()
        if "fp" in players:
            total = None
            for k in range(self.populations):
                fp = self._fp(points, caches, eps, k)
                if stochastic and self._lap_fp:  # unbiased: the product of two estimates
                    fp = fp * self._fp(points, second_estimates(caches), eps, k)
                else:
                    fp = fp**2
                loss = weighted_mean(fp, weights)
                total = loss if total is None else total + loss
            out["fp"] = total
        return out

    def batch(self, st) -> tuple[torch.Tensor, torch.Tensor | None]:
        """This process's collocation points (requiring grad) and importance weights (or None)."""
        s = self.opts.sampling
        points = st.sampler.sample()  # the whole batch, in every process
        weights = None
        if self.whole_space:  # standard coordinates -> the envelope's Gaussian
            mean, scale = self._reference(st.density_net)
            points = mean.double().cpu() + scale.double().cpu() * points
        if s.sampling == "density":
            pool = torch.cat([points] + [st.sampler.sample() for _ in range(3)])
            with torch.no_grad():
                dev_pool = pool.to(self.device, self.dtype)
                log_m = st.density_net(dev_pool) - self._log_z(st.density_net)
                if self.populations > 1:  # the mixture of the populations' densities
                    log_m = torch.logsumexp(log_m, dim=-1) - math.log(self.populations)
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
        """log Z on the (larger) evaluation quadrature: used for everything reported, not for
        training (one value per population when there are several)."""
        quad = self._evaluation_quad(density_net)
        with torch.no_grad():
            f = _in_chunks(density_net, quad.nodes.to(self.device, self.dtype))
        return self._log_z_from(f, quad)

    def _log_z_from(self, f: torch.Tensor, quad: Quadrature) -> torch.Tensor:
        """log Z from the density network's values ``f`` at the nodes of ``quad``."""
        log_w = quad.log_weights.to(self.device, self.dtype)
        if self.populations > 1:
            return torch.logsumexp(f + log_w[:, None], dim=0)
        return torch.logsumexp(f + log_w, dim=0)

    def validate(
        self, value_net, density_net, constant, residuals: bool = True
    ) -> dict[str, float]:
        """The ergodic constant(s) and the RMS HJB and FP residuals on the evaluation quadrature.

        When the constant enters linearly (HJB = rest + c * Hbar) it is the density-weighted least-squares
        value ``-int m rest / c``: the average of the rest of the residual under the computed invariant
        measure m. With a log coupling, first-order errors of log m average out under this measure
        (int m = 1), so the estimate is second order in the error of m; a uniform average would be first
        order. Otherwise the trained constant is used. Residual norms use at most the first 4096 nodes;
        with several populations they are the RMS over all populations, and the constants are
        ``constant_1``, ``constant_2``, ... (population k's own density weighs its residual).
        """
        quad = self._evaluation_quad(density_net)
        nodes = quad.nodes.to(self.device, self.dtype)
        weights = quad.weights.double().cpu()
        with torch.no_grad():
            log_z = self.eval_log_z(density_net)
        fields = fields_of(self.problem, value_net, density_net, log_z)
        K = self.populations
        rests, masses = [[] for _ in range(K)], [[] for _ in range(K)]
        given = constant is not None and not self.least_squares
        # the residual norms use the first RESIDUAL_NODES nodes: their values are kept, detached
        kept: list[tuple[torch.Tensor, list, list]] = []
        size = evaluation_chunk(self.problem.dim)
        for i, (chunk, w) in enumerate(zip(nodes.split(size), weights.split(size))):
            pts = chunk.clone().requires_grad_(True)
            caches = self.residuals.caches(pts, fields, create_graph=False, engine=self.eval_engine)
            if self.least_squares:
                for k, res in enumerate(self.by_population):
                    rest = res.hjb(pts, caches).detach().double().cpu()
                    m = torch.exp(caches[self._name("logm", k)](()).detach().double().cpu())
                    rests[k].append(float((w * m * rest).sum()))
                    masses[k].append(float((w * m).sum()))
            if residuals and i * size < RESIDUAL_NODES:
                hjbs, fps = [], []
                for k, res in enumerate(self.by_population):
                    if given:
                        value = constant.detach().reshape(-1)[k]
                        hjbs.append(self._with_constant(res, pts, caches, [value]).detach())
                    else:
                        hjbs.append(res.hjb(pts, caches).detach())
                    fps.append(res.fp(pts, caches).detach())
                kept.append((w, hjbs, fps))
            elif not self.least_squares:
                break
        values: list[float | None] = []
        for k, res in enumerate(self.by_population):
            if self.least_squares:
                values.append(-sum(rests[k]) / sum(masses[k]) / res.constant_coefficient)
            elif constant is not None:
                values.append(float(constant.detach().reshape(-1)[k]))
            else:
                values.append(None)
        if K == 1:
            out = {"constant": values[0]} if values[0] is not None else {}
        else:
            out = {f"constant_{k + 1}": v for k, v in enumerate(values) if v is not None}
        if residuals:
            w = torch.cat([w for w, _, _ in kept])
            if self.whole_space:  # RMS under the reference measure (Lebesgue's has no mass)
                w = torch.ones_like(w)
            total = float(w.sum())
            sq_hjb = sq_fp = 0.0
            for k, res in enumerate(self.by_population):
                hjb = torch.cat([h[k] for _, h, _ in kept])
                if self.least_squares:
                    hjb = hjb + res.constant_coefficient * values[k]
                fp = torch.cat([f[k] for _, _, f in kept])
                sq_hjb += float((w * hjb.double().cpu() ** 2).sum() / total)
                sq_fp += float((w * fp.double().cpu() ** 2).sum() / total)
            out["hjb_residual"] = (sq_hjb / K) ** 0.5
            out["fp_residual"] = (sq_fp / K) ** 0.5
        return out

    def evaluate(self, st) -> dict[str, float]:
        """Constant, residual norms and (with a known solution) errors of the evaluated networks."""
        value_net, density_net = st.eval_nets()
        if self.whole_space:
            return self._evaluate_whole_space(st, value_net, density_net)
        nodes = self.eval_quad.nodes.to(self.device, self.dtype)
        with torch.no_grad():
            f = _in_chunks(density_net, nodes)
            log_z = self._log_z_from(f, self.eval_quad)
            u = _in_chunks(value_net, nodes).double().cpu().numpy()
            m = torch.exp(f - log_z).double().cpu().numpy()
        out = self.validate(value_net, density_net, st.constant)
        u_ref, m_ref, c_ref = self.exact
        weights = self.eval_quad.weights.numpy()
        if self.populations == 1:
            st.constant_estimate = out.get("constant", float("nan"))
            out.update(field_errors(u, m, u_ref, m_ref, weights, out.get("constant"), c_ref))
        else:
            constants = [out.get(f"constant_{k + 1}") for k in range(self.populations)]
            out.update(population_errors(u, m, u_ref, m_ref, weights, constants, c_ref))
        return out

    def _evaluate_whole_space(self, st, value_net, density_net) -> dict[str, float]:
        """:meth:`evaluate` on R^d: importance-sampled errors from log-densities
        (:mod:`mfgsolve.metrics.whole_space`)."""
        quad = self._evaluation_quad(density_net)
        nodes = quad.nodes.to(self.device, self.dtype)
        with torch.no_grad():
            f = _in_chunks(density_net, nodes)  # (once: it gives log Z and log m)
            log_z = self._log_z_from(f, quad)
            u = _in_chunks(value_net, nodes).double().cpu().numpy()
            log_m = (f - log_z).double().cpu().numpy()
        out = self.validate(value_net, density_net, st.constant)
        st.constant_estimate = out.get("constant", float("nan"))
        u_fn, m_fn, c_ref = self.exact_functions
        points = quad.nodes.numpy()
        with np.errstate(divide="ignore"):
            log_m_ref = np.log(m_fn(points)) if m_fn else None
        out.update(
            whole_space_errors(
                u,
                log_m,
                u_fn(points) if u_fn else None,
                log_m_ref,
                quad.log_w.double().numpy(),
                out.get("constant"),
                c_ref,
            )
        )
        return out

    def finish(self, st) -> tuple[float, float | None, str]:
        """(log Z of the evaluated density, the ergodic constant or None, the quadrature's
        description); with several populations a list of log Z and a list of constants."""
        value_net, density_net = st.eval_nets()
        with torch.no_grad():
            log_z = self.eval_log_z(density_net)
        if self.populations > 1:
            log_zs = [float(v) for v in log_z]
            if not self.has_constant:
                return log_zs, None, self._rule(density_net)
            out = self.validate(value_net, density_net, st.constant, residuals=False)
            constants = [float(out[f"constant_{k + 1}"]) for k in range(self.populations)]
            return log_zs, constants, self._rule(density_net)
        log_z = float(log_z)
        if not self.has_constant:
            return log_z, None, self._rule(density_net)
        if st.history:
            constant = st.constant_estimate
        else:
            constant = self.validate(value_net, density_net, st.constant, residuals=False)[
                "constant"
            ]
        return log_z, float(constant), self._rule(density_net)

    def _rule(self, density_net) -> str:
        return self._evaluation_quad(density_net).rule

    def check_parallel(self) -> None:
        """Data-parallel training is available for ergodic problems."""
