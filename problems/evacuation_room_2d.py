"""A crowd leaves a room through a door (no closed form; checked against the reference).

In the manner of the crowd-evacuation examples of Achdou & Lauriere ("Mean field games and
applications: numerical aspects", 2020): the room is the unit square; its walls reflect, and
the middle quarter of the top wall, |x - 1/2| < 1/8 at y = 1, is a door. Each person pays for
the time spent in the room (1 per unit time), for effort (|alpha|^2 / 2) and for crowding
(kappa m), and pays nothing on leaving:

    -u_t - nu Lap u + |grad u|^2 / 2 - 1 - kappa m = 0,
     m_t - nu Lap m - div(m grad u) = 0,
    walls: u_n = 0, no flux;   door: u = 0 (exit cost), m = 0 (the crowd leaves),
    u(T) = 0,   m(0) = a crowd around (1/2, 2/5) on a thin uniform background;
    t in [0, 2], nu = 1/10, kappa = 1.

The door's edges, 3/8 and 5/8, fall on cell faces of the reference's grids (16, 32 and 64 cells
per axis), so every grid has the same door. The mass in the room falls from 1 as the crowd
leaves; ``compare`` reports the mass left at T and the times by which half and 90 % of the crowd
have left (``exit_time_50``, ``exit_time_90``).
"""

import sympy as sp

from mfgsolve import MFG, Box, Exit

t, x, y, p, q = sp.symbols("t x y p q")
u, m = sp.Function("u")(t, x, y), sp.Function("m")(t, x, y)

nu = sp.Rational(1, 10)
kappa = 1
s0 = sp.Rational(3, 20)
blob = sp.exp(-((x - sp.Rational(1, 2)) ** 2 + (y - sp.Rational(2, 5)) ** 2) / (2 * s0**2))
crowd = sp.Rational(3, 4) * blob / (2 * sp.pi * s0**2) + sp.Rational(1, 4)

room = Box(
    [x, y],
    [(0, 1), (0, 1)],
    boundary={(y, 1): Exit(0, where=sp.Abs(x - sp.Rational(1, 2)) < sp.Rational(1, 8))},
)

problem = MFG.from_hamiltonian(
    room,
    (t, 0, 2),
    u,
    m,
    hamiltonian=(p**2 + q**2) / 2 - 1,
    momenta=[p, q],
    coupling=kappa * m,
    viscosity=nu,
    terminal={u: 0},
    initial={m: crowd},
    name="evacuation-room-2d",
)
