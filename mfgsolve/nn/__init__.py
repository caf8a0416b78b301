"""Networks for the unknowns: input maps, bodies (MLP, DGM), value and density fields.

- :mod:`.layers`: :class:`InputMap` (exact periodic embedding on a torus), :class:`MLP`,
  :class:`DGM`, :class:`ValueNetwork`, :class:`DensityNetwork` (f with m = exp(f) / Z);
- :mod:`.space_time`: finite-horizon networks with the terminal and initial data built in;
- :mod:`.build`: :func:`build_networks`, the pair of networks for a problem and its options.
"""

from .._walls import exact_walls_obstacle
from .build import build_networks
from .layers import DGM, MLP, DensityNetwork, InputMap, ValueNetwork, make_body
from .space_time import SpaceTimeDensity, SpaceTimeValue, wall_flattening

__all__ = [
    "DGM",
    "MLP",
    "DensityNetwork",
    "InputMap",
    "SpaceTimeDensity",
    "SpaceTimeValue",
    "ValueNetwork",
    "build_networks",
    "exact_walls_obstacle",
    "make_body",
    "wall_flattening",
]
