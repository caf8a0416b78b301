"""Finite-horizon MFGs for the training loop, in space-time: networks, batches, losses, errors.

The networks carry the terminal and initial data by construction (:mod:`mfgsolve.nn.space_time`);
each batch is ``time_slices`` stratified times x a shifted Sobol set in space
(:class:`mfgsolve.sampling.SliceSampler`), so the density's per-time normaliser is exact at the
batch's times. On a Box with ``walls="loss"`` the Neumann and no-flux residuals are losses at wall
points that join the batch's derivative pass; the Neumann residual is weighted by the density at
the wall, ``m |domain|`` (detached): u enters the equilibrium only through the drift of m, so the
wall condition is enforced where the population reaches the wall. Faces that are walls
throughout take no loss with ``walls="exact"`` (they hold by construction). On an exit, u = the
exit cost is a loss at exit points (values only), and the FP residual and the exit's m are
measured relative to the density's mass M(t) (see :meth:`_mass_at`). See docs/finite_horizon.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .._walls import wall_faces
from ..errors import ProblemError
from ..lowering.space_time import (
    RowView,
    lower_finite_horizon_populations,
    residuals_and_caches,
)
from ..metrics._integrals import field_errors, known_solution, population_errors
from ..nn import build_networks
from ..options import SolverOptions
from ..sampling import SliceSampler, quadrature_size, space_time_nodes

__all__ = ["FiniteHorizonFormulation"]

_EVAL_TIMES = 11


class FiniteHorizonFormulation:
    """What the loop needs of a finite-horizon problem (see :class:`mfgsolve.train.loop.Trainer`)."""

    kind = "finite_horizon"

    def __init__(self, problem, opts: SolverOptions, seed: int, device, dtype, world):
        self.problem, self.opts, self.seed = problem, opts, seed
        self.device, self.dtype = device, dtype
        self.rank, self.world_size = world
        self.populations = problem.populations
        self.by_population = lower_finite_horizon_populations(problem)
        self.residuals = self.by_population[0]  # (its wall residuals: one population on a Box)
        self.slices = opts.sampling.time_slices
        self.per_slice = max(2, opts.sampling.batch_size // self.slices)
        nodes, weights = space_time_nodes(
            problem.domain,
            problem.t0,
            problem.T,
            quadrature_size("history-per-time", problem.dim),
            _EVAL_TIMES,
            seed + 1,
        )
        self.eval_nodes, self.eval_weights = nodes, weights
        u_ex, m_ex, _ = known_solution(problem)
        self.exact = (u_ex(nodes) if u_ex else None, m_ex(nodes) if m_ex else None, None)

    def build(self):
        """(value network, density network, None); call under a seeded RNG."""
        value_net, density_net = build_networks(self.problem, self.opts, self.device, self.dtype)
        return value_net, density_net, None

    def make_sampler(self, generator: torch.Generator) -> SliceSampler:
        return SliceSampler(
            self.problem, self.slices, self.per_slice, self.opts.sampling.sampling, generator
        )

    def batch(self, st) -> tuple[torch.Tensor, None]:
        points = st.sampler.sample().to(self.device, self.dtype)
        return points.requires_grad_(True), None

    def record(self, st) -> dict[str, float]:
        return {}

    def fix_gauge(self, value_net, density_net=None) -> None:
        """Nothing: a finite-horizon value is fixed by its terminal data."""

    # ----- losses ----------------------------------------------------------------------------
    def _face_points(self, st, points: torch.Tensor) -> tuple[list, list]:
        """Points on the box's faces at the batch's times: (wall points per axis as
        (axis, points), exit points per exit of ``self.residuals.exits``); empty on a torus and
        for exact walls without exits."""
        res = self.residuals
        exact = self.opts.network.walls == "exact"  # (the faces that are walls throughout)
        if not res.exits and (not res.neumann or exact):
            return [], []
        times = torch.unique(points[:, 0].detach()).double().cpu()
        per_face = max(2, self.per_slice // (2 * self.problem.dim))
        axes = sorted({f.axis for f in self.problem.domain.faces})
        symbols = self.problem.domain.symbols
        built = wall_faces(self.problem.domain) if exact else None
        walls, exits = [], [[] for _ in res.exits]
        for axis, pts, side in st.sampler.sample_boundary(times, per_face, axes):
            at_exit = torch.zeros(len(pts), dtype=torch.bool)
            for j, (face, _value) in enumerate(res.exits):
                if face.axis != axis:
                    continue
                on_face = (side == face.side).numpy()
                door = face.condition.door_mask(symbols, pts[:, 1:].numpy()) & on_face
                exits[j].append(pts[torch.as_tensor(door)])
                at_exit |= torch.as_tensor(door)
            if axis in res.neumann:
                keep = ~at_exit
                if built is not None:  # walls by construction: no loss there
                    for s, by_construction in enumerate(built[axis]):
                        keep &= ~((side == s) & by_construction)
                if bool(keep.any()):
                    walls.append((axis, pts[keep]))
        return walls, [torch.cat(e) if e else torch.zeros(0, 1 + self.problem.dim) for e in exits]

    def _boundary_losses(
        self, pts: torch.Tensor, caches: dict, which: torch.Tensor, players: Sequence[str]
    ) -> dict[str, Any]:
        """Neumann and no-flux losses at the wall points ``pts`` (``which``: the axis of each
        point's face), from derivative caches taken at ``pts``."""
        res = self.residuals
        out = {"neumann": 0.0, "flux": 0.0}
        for i in res.neumann:
            on_face = which == i
            if not bool(on_face.any()):
                continue
            if "hjb" in players:
                # weighted by the (detached) density at the wall, m |domain|: see the module doc
                weight = caches["m"](()).detach() * self.problem.domain.volume
                du_n = res.neumann[i](pts, caches)
                out["neumann"] = out["neumann"] + (weight * du_n**2)[on_face].mean()
            if "fp" in players:
                out["flux"] = out["flux"] + (res.flux[i](pts, caches)[on_face] ** 2).mean()
        return out

    def _mass_at(self, st, points: torch.Tensor) -> torch.Tensor:
        """The density's mass M(t) at each point's time (a domain with exits: the density is
        M(t) times a normalised shape, :class:`~mfgsolve.nn.space_time.MassOverTime`),
        differentiable in the density's parameters.

        The FP residual and the exit's m are measured relative to it: the FP equation is linear
        in m, so shrinking m would shrink their squares too, and a density that let its mass
        vanish (m = 0 solves the FP equation) would win the FP loss. Relative to the mass, a
        uniform rescaling changes nothing, and a loss of mass costs its rate, d log M / dt.
        """
        return torch.exp(st.density_net.mass(points[:, 0].detach()))

    def _exit_losses(self, st, exits: list[torch.Tensor], players: Sequence[str]) -> dict:
        """At each exit's points, u = the exit cost (the value's loss) and m = 0 (the
        density's, as m |domain| relative to the mass at the point's time): values only, no
        derivatives."""
        out: dict[str, Any] = {"exit_u": 0.0, "exit_m": 0.0}
        volume = self.problem.domain.volume
        for (_face, value), pts in zip(self.residuals.exits, exits):
            if not len(pts):
                continue
            pts = pts.to(self.device, self.dtype)
            if "hjb" in players:
                gap = st.value_net(pts) - value(pts)
                out["exit_u"] = out["exit_u"] + (gap**2).mean()
            if "fp" in players:
                m = torch.exp(st.density_net(pts)) * volume / self._mass_at(st, pts)
                out["exit_m"] = out["exit_m"] + (m**2).mean()
        return out

    def losses(self, st, points, players: Sequence[str], frozen: Sequence[str], weights=None):
        """HJB and/or FP losses (plus the box's wall and exit losses, weighted by
        ``boundary_weight``).

        The wall points join the batch in one derivative pass, so the density's per-time
        normaliser (the costly part: a quadrature at every batch time) is computed once."""
        which = [p for p in ("hjb", "fp") if p in players]
        walls, exits = self._face_points(st, points)
        n = points.shape[0]
        if walls:
            wall = torch.cat([p for _axis, p in walls]).to(self.device, self.dtype)
            pts = torch.cat([points.detach(), wall]).requires_grad_(True)
        else:
            pts = points
        r, caches = residuals_and_caches(
            self.by_population, st.value_net, st.density_net, pts, frozen, which
        )
        r = {k: v[:n] for k, v in r.items()}
        if "fp" in r and self.residuals.exits:
            r["fp"] = r["fp"] / self._mass_at(st, points)
        bnd: dict[str, Any] = {}
        if walls:
            face = torch.cat([torch.full((len(p),), axis) for axis, p in walls])
            wall_caches = RowView(caches, slice(n, None))
            bnd = self._boundary_losses(pts[n:], wall_caches, face.to(self.device), players)
        if exits:
            bnd.update(self._exit_losses(st, exits, players))
        w = self.opts.sampling.boundary_weight
        zero = torch.zeros((), device=self.device, dtype=self.dtype)
        out: dict[str, torch.Tensor] = {"int_u": zero, "constant": torch.tensor(float("nan"))}
        if "hjb" in r:
            out["hjb"] = self._mean_square(r["hjb"]) + w * (
                bnd.get("neumann", 0.0) + bnd.get("exit_u", 0.0)
            )
        if "fp" in r:
            out["fp"] = self._mean_square(r["fp"]) + w * (
                bnd.get("flux", 0.0) + bnd.get("exit_m", 0.0)
            )
        return out

    def _mean_square(self, r: torch.Tensor) -> torch.Tensor:
        """The mean squared residual, summed over the populations (columns) when several."""
        return (r**2).mean() if self.populations == 1 else (r**2).mean(dim=0).sum()

    # ----- evaluation ------------------------------------------------------------------------
    def evaluate(self, st) -> dict[str, float]:
        value_net, density_net = st.eval_nets()
        nodes = torch.as_tensor(self.eval_nodes, dtype=self.dtype, device=self.device)
        with torch.no_grad():
            u = torch.cat([value_net(c) for c in nodes.split(16384)]).double().cpu().numpy()
            m = torch.exp(torch.cat([density_net(c) for c in nodes.split(16384)]))
            m = m.double().cpu().numpy()
        u_ref, m_ref, _ = self.exact
        if self.populations > 1:
            return population_errors(u, m, u_ref, m_ref, self.eval_weights)
        return field_errors(u, m, u_ref, m_ref, self.eval_weights)

    def finish(self, st) -> tuple[float | list[float], None, str]:
        """(log Z: 0, each density normalises itself per time, one per population when several;
        no constant; the quadrature)."""
        log_z = 0.0 if self.populations == 1 else [0.0] * self.populations
        return log_z, None, "space-time nodes"

    def check_parallel(self) -> None:
        raise ProblemError(
            f"problem '{self.problem.name}': data-parallel training is for ergodic problems; "
            "fix: run finite-horizon problems in one process"
        )
