"""The torch thread count of a solve: set for its duration, the caller's setting restored."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["torch_threads"]


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Within the block torch runs ``threads`` intra-op threads (None: as the caller set them);
    the caller's number is restored afterwards, also on an error."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        if threads is not None:
            torch.set_num_threads(before)
