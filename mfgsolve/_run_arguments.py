"""Checks of the arguments every solver takes (device, seed), shared by the MFG and FBSDE solvers."""

from __future__ import annotations

from typing import Any

import torch

from ._messages import shown
from .errors import OptionError

__all__ = ["MAX_SEED", "check_device", "check_seed"]


def check_device(device: str | torch.device) -> torch.device:
    """The torch device: the CPU, or a CUDA device that exists (one line otherwise)."""
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise OptionError(
            f"unknown device {shown(device)}; fix: use 'cpu', 'cuda' or 'cuda:N'"
        ) from None
    if device.type == "cpu" and device.index in (None, 0):
        return device
    if device.type != "cuda":
        raise OptionError(
            f"device {str(device)!r} is not supported; fix: use 'cpu', 'cuda' or 'cuda:N'"
        )
    if not torch.cuda.is_available():
        raise OptionError("device='cuda' but no CUDA device is available; fix: use device='cpu'")
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise OptionError(
            f"device {str(device)!r}: there are {torch.cuda.device_count()} CUDA device(s); "
            "fix: use device='cuda' or an index below that"
        )
    return device


MAX_SEED = 2**62  # seeds + small offsets stay within torch's and numpy's seed ranges


def check_seed(seed: Any) -> int:
    """The seed, an integer from 0 to 2**62 (one line otherwise)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise OptionError(
            f"seed={shown(seed)} is not an integer from 0 to 2**62; fix: give e.g. seed=0"
        )
    return seed
