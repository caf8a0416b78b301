"""Exact solution of the 1-D linear-quadratic MFG with mean coupling, from Riccati ODEs.

Model (minimisation; the mean z(t) = E[X_t] under the population density):
    dX = (A X + Abar z + B alpha) dt + sigma dW,
    running cost (Q x^2 + Qbar (x - S z)^2 + R alpha^2) / 2,
    terminal cost (Q_T x^2 + Qbar_T (x - S_T z(T))^2) / 2,   X_0 ~ N(z0, Sigma0).

HJB (nu = sigma^2 / 2, optimal alpha = -B u_x / R):
    -u_t - nu u_xx + B^2 u_x^2 / (2 R) - (A x + Abar z) u_x - (Q x^2 + Qbar (x - S z)^2) / 2 = 0;
FP: m_t - nu m_xx + ((A x + Abar z - B^2 u_x / R) m)_x = 0.

With u = P x^2 / 2 + r x + s, matching powers of x gives
    P' = -2 A P + B^2 P^2 / R - Q - Qbar,                      P(T) = Q_T + Qbar_T,
    -r' = (A - B^2 P / R) r + (P Abar - Qbar S) z,              r(T) = -Qbar_T S_T z(T),
    s' = -nu P + B^2 r^2 / (2 R) - Abar z r - Qbar S^2 z^2 / 2,  s(T) = Qbar_T S_T^2 z(T)^2 / 2,
and m(t) = N(z, Sigma) with
    z' = (A + Abar) z - B^2 (P z + r) / R,  z(0) = z0;   Sigma' = 2 (A - B^2 P / R) Sigma + sigma^2.
P is solved backward; (z, r) is a linear two-point problem, solved exactly by superposition of two
forward solutions; s backward. All with ``scipy.integrate.solve_ivp`` (DOP853, rtol 1e-11).

In d dimensions with the same coefficients on every axis (running cost Q |x|^2 + Qbar |x - S z|^2,
z = E[X] a vector) the problem decouples axis by axis: u = sum_i u_1(t, x_i) and
m = prod_i m_1(t, x_i), each from the 1-D solution started at its own z0_i
(:class:`LinearQuadraticMeanFieldNd`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.integrate import solve_ivp
from scipy.special import ndtr

__all__ = ["LinearQuadraticMeanField", "LinearQuadraticMeanFieldNd"]

_TOL = {"method": "DOP853", "rtol": 1e-11, "atol": 1e-12, "dense_output": True}


@dataclass
class LinearQuadraticMeanField:
    """The exact solution (value u(t, x) and Gaussian density m(t, x)) of the LQ MFG above.

    Attributes are the model coefficients; ``t0``, ``T`` the time interval. ``value`` and
    ``density`` take (n, 2) points (t, x) and return (n,) arrays, as a ``Solution`` does.
    """

    A: float = 0.0
    Abar: float = 0.0
    B: float = 1.0
    R: float = 1.0
    Q: float = 0.0
    Qbar: float = 1.0
    S: float = 1.0
    Q_T: float = 0.0
    Qbar_T: float = 0.0
    S_T: float = 1.0
    sigma: float = 0.5
    z0: float = 0.0
    Sigma0: float = 1.0
    t0: float = 0.0
    T: float = 1.0

    def __post_init__(self) -> None:
        if not (self.R > 0 and self.Sigma0 > 0 and self.t0 < self.T):
            raise ValueError("need R > 0, Sigma0 > 0 and T > t0; fix: change the coefficients")
        self._solve()

    def _solve(self) -> None:
        A, Abar, B, R = self.A, self.Abar, self.B, self.R
        span = (self.t0, self.T)
        self._P = solve_ivp(
            lambda t, P: -2 * A * P + B**2 * P**2 / R - self.Q - self.Qbar,
            span[::-1],
            [self.Q_T + self.Qbar_T],
            **_TOL,
        ).sol

        def zr(t, y):
            P = self._P(t)[0]
            z, r = y
            return [
                (A + Abar) * z - B**2 * (P * z + r) / R,
                -(A - B**2 * P / R) * r - (P * Abar - self.Qbar * self.S) * z,
            ]

        def mismatch(r0: float) -> tuple[float, object]:
            sol = solve_ivp(zr, span, [self.z0, r0], **_TOL)
            zT, rT = sol.y[:, -1]
            return rT + self.Qbar_T * self.S_T * zT, sol.sol

        f0, _ = mismatch(0.0)
        f1, _ = mismatch(1.0)
        r0 = -f0 / (f1 - f0)  # the mismatch is affine in r(0)
        self.terminal_mismatch, self._zr = mismatch(r0)
        zT = self._zr(self.T)[0]
        nu = self.sigma**2 / 2

        def s_rhs(t, s):
            P = self._P(t)[0]
            z, r = self._zr(t)
            return [
                -nu * P + B**2 * r**2 / (2 * R) - Abar * z * r - self.Qbar * self.S**2 * z**2 / 2
            ]

        self._s = solve_ivp(s_rhs, span[::-1], [self.Qbar_T * self.S_T**2 * zT**2 / 2], **_TOL).sol
        self._Sigma = solve_ivp(
            lambda t, v: [2 * (A - B**2 * self._P(t)[0] / R) * v[0] + self.sigma**2],
            span,
            [self.Sigma0],
            **_TOL,
        ).sol

    # ----- the coefficients ----------------------------------------------------------------
    def P(self, t) -> np.ndarray:
        return self._P(np.asarray(t, float))[0]

    def r(self, t) -> np.ndarray:
        return self._zr(np.asarray(t, float))[1]

    def s(self, t) -> np.ndarray:
        return self._s(np.asarray(t, float))[0]

    def mean(self, t) -> np.ndarray:
        return self._zr(np.asarray(t, float))[0]

    def variance(self, t) -> np.ndarray:
        return self._Sigma(np.asarray(t, float))[0]

    # ----- the fields ----------------------------------------------------------------------
    @staticmethod
    def _split(points) -> tuple[np.ndarray, np.ndarray]:
        pts = np.asarray(points, dtype=float)
        if pts.ndim != 2 or pts.shape[1] != 2:
            raise ValueError(f"points must have shape (n, 2) (t, x), got {pts.shape}")
        return pts[:, 0], pts[:, 1]

    def value(self, points) -> np.ndarray:
        """u(t, x) = P(t) x^2 / 2 + r(t) x + s(t)."""
        t, x = self._split(points)
        return self.P(t) * x**2 / 2 + self.r(t) * x + self.s(t)

    def density(self, points) -> np.ndarray:
        """m(t, x): the Gaussian N(z(t), Sigma(t)) density on the real line."""
        t, x = self._split(points)
        var = self.variance(t)
        return np.exp(-((x - self.mean(t)) ** 2) / (2 * var)) / np.sqrt(2 * np.pi * var)

    def mass_outside(self, lower: float, upper: float, times: int = 201) -> float:
        """Largest mass of N(z(t), Sigma(t)) outside [lower, upper] over t (truncation check)."""
        ts = np.linspace(self.t0, self.T, times)
        sd = np.sqrt(self.variance(ts))
        z = self.mean(ts)
        return float(np.max(ndtr((lower - z) / sd) + ndtr((z - upper) / sd)))


# coefficients shared by every axis of the d-dimensional model (all but d and z0)
_SHARED = ("A", "Abar", "B", "R", "Q", "Qbar", "S", "Q_T", "Qbar_T", "S_T", "sigma", "Sigma0")
_CHUNK = 1 << 20  # numbers per block of points in ``log_density`` (bounds the temporaries)


@dataclass
class LinearQuadraticMeanFieldNd:
    """The exact solution of the LQ MFG above in d dimensions, the same coefficients on every axis.

    The model decouples coordinate by coordinate: u(t, x) = sum_i u_1(t, x_i; z0_i) and
    m(t, x) = prod_i m_1(t, x_i; z0_i) (X_0 ~ N(z0, Sigma0 I)), with u_1, m_1 the
    :class:`LinearQuadraticMeanField` solution started at mean z0_i. One 1-D solution is solved per
    distinct value of z0_i (``axes``), so equal z0_i cost one Riccati solve for any d.

    Attributes are the coefficients of :class:`LinearQuadraticMeanField` (scalars, shared by every
    axis), ``d`` the dimension and ``z0`` the initial mean (one number per axis, or one for all).
    ``value``, ``density`` and ``log_density`` take (n, 1 + d) points (t, x_1..x_d) and return (n,)
    arrays. In high d the density is tiny where the mass is (e^(-d/2) (2 pi Sigma)^(-d/2): 1e-10
    to 1e-22 at d = 100) and underflows a few standard deviations away: use ``log_density``.
    """

    d: int = 2
    A: float = 0.0
    Abar: float = 0.0
    B: float = 1.0
    R: float = 1.0
    Q: float = 0.0
    Qbar: float = 1.0
    S: float = 1.0
    Q_T: float = 0.0
    Qbar_T: float = 0.0
    S_T: float = 1.0
    sigma: float = 0.5
    z0: float | Sequence[float] = 0.0
    Sigma0: float = 1.0
    t0: float = 0.0
    T: float = 1.0
    axes: dict[float, LinearQuadraticMeanField] = field(
        init=False, repr=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        if isinstance(self.d, bool) or not isinstance(self.d, (int, np.integer)) or self.d < 1:
            raise ValueError(f"d must be an integer >= 1, got {self.d!r}")
        self.d = int(self.d)
        z0 = np.asarray(self.z0, dtype=float)
        if z0.ndim == 0:
            z0 = np.full(self.d, float(z0))
        if z0.shape != (self.d,) or not np.all(np.isfinite(z0)):
            raise ValueError(f"z0 must be one finite number or {self.d} of them, got {self.z0!r}")
        self._z0 = z0
        shared = {name: getattr(self, name) for name in (*_SHARED, "t0", "T")}
        values, inverse = np.unique(z0, return_inverse=True)
        for v in values:  # one Riccati solve per distinct initial mean
            self.axes[float(v)] = LinearQuadraticMeanField(**shared, z0=float(v))
        self._groups = [self.axes[float(v)] for v in values]
        self._axis_group = inverse.reshape(-1)  # axis i uses self._groups[self._axis_group[i]]
        # (d, k) indicator: column k sums the coordinates of the axes started at values[k]
        self._indicator = np.zeros((self.d, len(values)))
        self._indicator[np.arange(self.d), self._axis_group] = 1.0
        self._counts = self._indicator.sum(0)

    def axis(self, i: int) -> LinearQuadraticMeanField:
        """The 1-D solution of axis ``i`` (0-based)."""
        return self._groups[self._axis_group[i]]

    # ----- the coefficients ----------------------------------------------------------------
    def mean(self, t) -> np.ndarray:
        """The mean vector z(t) = E[X_t]: shape (d,) for a scalar t, (len(t), d) for an array."""
        tt = np.asarray(t, dtype=float)
        per_group = np.stack([g.mean(tt.reshape(-1)) for g in self._groups], -1)
        out = per_group[:, self._axis_group]
        return out[0] if tt.ndim == 0 else out.reshape(*tt.shape, self.d)

    def variance(self, t) -> np.ndarray:
        """The variance Sigma(t) of every coordinate (the covariance is Sigma(t) I)."""
        return self._groups[0].variance(t)

    # ----- the fields ----------------------------------------------------------------------
    def _split(self, points) -> tuple[np.ndarray, np.ndarray]:
        pts = np.asarray(points, dtype=float)
        if pts.ndim != 2 or pts.shape[1] != 1 + self.d:
            raise ValueError(
                f"points must have shape (n, {1 + self.d}) (t, x_1..x_{self.d}), got {pts.shape}"
            )
        return pts[:, 0], pts[:, 1:]

    def _at_times(self, t: np.ndarray, *names: str) -> list[np.ndarray]:
        """Per point, the 1-D coefficients ``names`` of every group, each (n, k): the dense
        outputs are evaluated once per distinct time."""
        times, where = np.unique(t, return_inverse=True)
        return [
            np.stack([getattr(g, name)(times) for g in self._groups], -1)[where] for name in names
        ]

    def value(self, points) -> np.ndarray:
        """u(t, x) = sum_i (P(t) x_i^2 / 2 + r_i(t) x_i + s_i(t))."""
        t, x = self._split(points)
        P, r, s = self._at_times(t, "P", "r", "s")
        sums = x @ self._indicator  # (n, k): sum of the coordinates of each group
        return P[:, 0] * np.einsum("ij,ij->i", x, x) / 2 + (r * sums + s * self._counts).sum(-1)

    def log_density(self, points) -> np.ndarray:
        """log m(t, x) = sum_i log N(x_i; z_i(t), Sigma(t)) (finite where m underflows)."""
        t, x = self._split(points)
        z, var = self._at_times(t, "mean", "variance")
        out = np.empty(len(t))
        rows = max(1, _CHUNK // self.d)
        for a in range(0, len(t), rows):  # blocks of points: the (rows, d) temporaries stay small
            dev = x[a : a + rows] - z[a : a + rows][:, self._axis_group]
            sq = (dev * dev) @ self._indicator  # (rows, k) squared distances per group
            v = var[a : a + rows]
            out[a : a + rows] = (-(sq / (2 * v)) - self._counts * np.log(2 * np.pi * v) / 2).sum(-1)
        return out

    def density(self, points) -> np.ndarray:
        """m(t, x) = prod_i N(x_i; z_i(t), Sigma(t)), as exp of ``log_density``."""
        return np.exp(self.log_density(points))
