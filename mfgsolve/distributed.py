"""Data-parallel training on ``torch.distributed`` (gloo on CPU, NCCL on CUDA), launched by torchrun.

Every process draws the same global collocation batch (same seed, same sampler) and keeps its shard
(``batch_size / world_size`` points); gradients are averaged over the processes with one
``all_reduce`` per update, before clipping and the optimiser step, so the processes stay in sync
and take the step a single process would take on the whole batch (up to the order of the floating
point sums). The batch least-squares constant is the mean over the global batch.

Why not ``DistributedDataParallel``: its reducer hooks run on ``.backward()`` and it does not
support the double backward the residuals need (derivatives in x, then in the weights); the
solver takes ``torch.autograd.grad`` of each player's loss, so the reduction is explicit here.

    torchrun --standalone --nproc_per_node 2 -m mfgsolve solve problems/ergodic_torus_4d.py
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

__all__ = ["world", "init_from_environment", "shard", "average_gradients", "all_mean"]


def world() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_from_environment(device: str = "cpu") -> str | None:
    """Join the process group torchrun describes (``WORLD_SIZE`` > 1).

    Args:
        device: "cpu" (gloo) or "cuda" (NCCL; each process takes ``cuda:LOCAL_RANK``).

    Returns:
        None outside torchrun; else the device this process trains on.

    Raises:
        ValueError: CUDA asked for but not available, or a single CUDA index given to all processes.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available():
        return None
    cuda = str(device).startswith("cuda")
    if cuda:
        if not torch.cuda.is_available():
            raise ValueError(
                "device 'cuda' under torchrun but no CUDA device is available; fix: use --device cpu"
            )
        if str(device) != "cuda":
            raise ValueError(
                f"device {device!r} would put every process on one GPU; fix: use --device cuda "
                "(each process takes cuda:LOCAL_RANK)"
            )
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        torch.cuda.set_device(torch.device(device))
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return str(device)


def shard(points: torch.Tensor) -> torch.Tensor:
    """This process's contiguous share of a global batch (rows split evenly)."""
    rank, size = world()
    if size == 1:
        return points
    n = points.shape[0] // size
    return points[rank * n : (rank + 1) * n]


def average_gradients(params: list[torch.Tensor]) -> None:
    """Replace each ``p.grad`` by its mean over the processes (one flat all_reduce)."""
    _, size = world()
    if size == 1:
        return
    flat = torch.cat([p.grad.reshape(-1) for p in params])
    dist.all_reduce(flat)
    flat /= size
    offset = 0
    for p in params:
        n = p.grad.numel()
        p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
        offset += n


def all_mean(value: torch.Tensor) -> torch.Tensor:
    """Mean of a (detached) tensor over the processes; the tensor itself outside a process group."""
    _, size = world()
    if size == 1:
        return value
    out = value.detach().clone()
    dist.all_reduce(out)
    return out / size
