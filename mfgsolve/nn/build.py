"""The value and density networks of a problem, by problem kind (one registry, no type tests)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from torch import nn

from ..problem import Rd
from .features import problem_features
from .layers import (
    DensityNetwork,
    EnvelopeDensityNetwork,
    GrowingValueNetwork,
    InputMap,
    ValueNetwork,
    make_body,
    stack_populations,
)
from .space_time import space_time_networks

if TYPE_CHECKING:
    from ..options import SolverOptions

__all__ = ["NETWORK_BUILDERS", "build_networks"]


def ergodic_networks(problem, opts: SolverOptions, device, dtype) -> tuple[nn.Module, nn.Module]:
    """u_theta and f_omega (m = exp(f) / Z) on the problem's domain, exactly periodic on a torus.

    With several populations: one value and one density network per population, stacked
    (:class:`PopulationStack`), built in the order u_1, f_1, u_2, f_2, ...
    """
    net = opts.network

    def one() -> tuple[InputMap, nn.Module]:
        extra = problem_features(problem, net.features, net.harmonics, time=False)
        inputs = InputMap(problem.domain, None, net.harmonics, extra=extra)
        body = make_body(
            net.architecture, inputs.out_features, net.width, net.depth, net.activation
        )
        return inputs, body

    pairs = []
    for _ in range(problem.populations):
        value_parts, density_parts = one(), one()
        if isinstance(problem.domain, Rd):  # growth and decay built in
            where = (problem.domain.center, problem.domain.scale)
            value, density = GrowingValueNetwork, EnvelopeDensityNetwork
            pairs.append((value(*value_parts, *where), density(*density_parts, *where)))
        else:
            pairs.append((ValueNetwork(*value_parts), DensityNetwork(*density_parts)))
    value_net, density_net = stack_populations(pairs)
    return value_net.to(device, dtype), density_net.to(device, dtype)


NETWORK_BUILDERS: dict[str, Callable] = {
    "ergodic": ergodic_networks,
    "finite_horizon": space_time_networks,
}


def build_networks(problem, opts: SolverOptions, device, dtype) -> tuple[nn.Module, nn.Module]:
    """The (value, density) networks for ``problem`` with resolved ``opts`` (kind ``opts.kind``).

    Args:
        problem: the problem the options were resolved for.
        opts: resolved :class:`~mfgsolve.options.SolverOptions`.
        device, dtype: where the networks live.

    Returns:
        (value network, density network).
    """
    return NETWORK_BUILDERS[opts.kind](problem, opts, device, dtype)
