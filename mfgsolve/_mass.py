"""The mass in the domain over time, and when it has left (finite-horizon problems with exits).

The initial density has mass 1, so the mass that has left by time t is ``1 - M(t)`` with
``M(t) = int m(t, x) dx``. The exit time of a fraction q is the first time at which ``1 - M``
reaches q (linear interpolation between the times given), NaN when it does not within [t0, T].
"""

from __future__ import annotations

import numpy as np

__all__ = ["EXIT_FRACTIONS", "exit_summary", "exit_time"]

EXIT_FRACTIONS = (0.5, 0.9)  # reported as exit_time_50 and exit_time_90


def exit_time(times: np.ndarray, mass: np.ndarray, fraction: float) -> float:
    """The first time at which the mass that has left, ``1 - mass``, reaches ``fraction``.

    Args:
        times: increasing times (t0 first).
        mass: the mass in the domain at those times.
        fraction: in (0, 1).

    Returns:
        The time (linear interpolation), or NaN if the fraction has not left by the last time.
    """
    left = 1.0 - np.asarray(mass, dtype=float)
    times = np.asarray(times, dtype=float)
    above = np.flatnonzero(left >= fraction)
    if len(above) == 0:
        return float("nan")
    j = int(above[0])
    if j == 0:
        return float(times[0])
    a, b = left[j - 1], left[j]
    return float(times[j - 1] + (fraction - a) / (b - a) * (times[j] - times[j - 1]))


def exit_summary(times: np.ndarray, mass: np.ndarray) -> dict:
    """``mass`` (the curve, a list), ``mass_left`` (at the last time) and ``exit_time_50``,
    ``exit_time_90``; ``mass`` of shape (K, nt) (several populations) gives the worst population's
    numbers under these keys (the least mass left, the latest exit) and each one's with a suffix."""
    mass = np.asarray(mass, dtype=float)
    if mass.ndim == 2:
        parts = [exit_summary(times, row) for row in mass]
        out: dict = {"mass": [p["mass"] for p in parts]}
        for key in parts[0]:
            if key == "mass":
                continue
            for k, p in enumerate(parts):
                out[f"{key}_{k + 1}"] = p[key]
            values = [p[key] for p in parts]
            worst = np.nan if any(np.isnan(values)) else max(values)
            out[key] = min(values) if key == "mass_left" else float(worst)
        return out
    out = {"mass": [float(v) for v in mass], "mass_left": float(1.0 - mass[-1])}
    for q in EXIT_FRACTIONS:
        out[f"exit_time_{round(100 * q)}"] = exit_time(times, mass, q)
    return out
