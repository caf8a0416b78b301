"""Two toy games where the training dynamics are known: a linear-quadratic game and a Dirac-GAN.

Both have additive Gaussian minibatch noise: a data sample ``x = (x_1, x_2) ~ N(0, diag(s^2))``
enters the per-sample loss linearly, ``l = objective - x_1 theta + x_2 omega``, so the per-sample
drift noise is exactly ``x`` and its covariance ``Sigma = diag(s_theta^2, s_omega^2)`` is known in
closed form.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class _NoisyGame:
    noise_theta: float = 1.0
    noise_omega: float = 1.0

    def noise_cov(self) -> np.ndarray:
        """Closed-form per-sample drift covariance ``Sigma``."""
        return np.diag([self.noise_theta**2, self.noise_omega**2])

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` data samples, one per row (n, 2)."""
        z = torch.randn(n, 2, generator=generator, dtype=torch.float64)
        return z * torch.tensor([self.noise_theta, self.noise_omega], dtype=torch.float64)

    def objective(self, theta: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, theta: torch.Tensor, omega: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        """Minibatch loss: the objective plus the data's linear terms, averaged over ``batch``."""
        x = batch.mean(dim=0)
        return self.objective(theta, omega) - x[0] * theta.sum() + x[1] * omega.sum()


@dataclass(frozen=True)
class LinearQuadraticGame(_NoisyGame):
    """``g(theta, omega) = a/2 theta^2 + b theta omega - c/2 omega^2`` (scalar players).

    The benchmark uses ``a != c`` (an anisotropic game). With ``a = c = 0`` (pure bilinear,
    isotropic) there is no attracting equilibrium: simultaneous updates spiral out and the moments
    grow with the horizon, though the exact weak-error orders still hold (measured slopes 1.03 and
    2.00 for the alternating scheme, ``T = 2``).
    """

    a: float = 1.0
    b: float = 1.0
    c: float = 0.3

    def objective(self, theta: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
        t, o = theta.sum(), omega.sum()
        return 0.5 * self.a * t**2 + self.b * t * o - 0.5 * self.c * o**2

    def drift_matrix(self) -> np.ndarray:
        """``A`` with ``b(x) = A x``, from ``b = (-g_theta, g_omega)``."""
        a, b, c = self.a, self.b, self.c
        return np.array([[-a, -b], [b, -c]])

    def correction_matrix(self, scheme: str = "alternating") -> np.ndarray:
        """``C`` with ``c(x) = C x``, by hand from the seed's matrix (alternating) or ``-A^2/2``."""
        a, b, c = self.a, self.b, self.c
        A = self.drift_matrix()
        if scheme == "simultaneous":
            return -0.5 * A @ A
        if scheme == "alternating":
            # 1/2 [[g_tt, -g_to], [-g_ot, -g_oo]] (-g_theta, g_omega); g_tt=a, g_to=g_ot=b, g_oo=-c
            return 0.5 * np.array([[a, -b], [-b, c]]) @ A
        # generator first: c = -1/2 J b + (0, d_theta b_omega b_theta)
        return -0.5 * A @ A + np.array([[0.0, 0.0], [A[1, 0] * A[0, 0], A[1, 0] * A[0, 1]]])


@dataclass(frozen=True)
class DiracGAN(_NoisyGame):
    """Regularised Dirac-GAN (Mescheder et al. 2018) with a standard GAN loss.

    Data ``delta_0``, generator ``delta_theta``, linear discriminator ``D(x) = omega x``:
    ``g = f(omega theta) + a/2 theta^2 - c/2 omega^2`` with ``f(t) = -log(1 + exp(-t))``; ``c`` is a
    gradient penalty on the discriminator and ``a`` a weight decay on the generator. Without them
    (``a = c = 0``) the linearisation at the equilibrium is a pure rotation: simultaneous updates
    spiral out and alternating ones cycle (Mescheder et al. 2018).
    """

    a: float = 0.3
    c: float = 1.0

    def objective(self, theta: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
        t, o = theta.sum(), omega.sum()
        return -F.softplus(-o * t) + 0.5 * self.a * t**2 - 0.5 * self.c * o**2
