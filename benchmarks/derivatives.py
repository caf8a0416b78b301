"""Benchmark: the derivative engines (mfgsolve.derivatives) as the dimension grows.

Time of one gradient + Laplacian evaluation and the backward pass to the weights, for a width-48,
depth-3 tanh MLP on the periodic embedding (the default value network's shape), batch 512, one
thread, for each engine; the median of repeated calls. The "auto" column is the engine picked.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from mfgsolve.derivatives import choose_engine, make_cache

DIMS = (1, 2, 4, 8, 16, 32, 64, 128)


def _network(d: int) -> torch.nn.Module:
    layers: list[torch.nn.Module] = [torch.nn.Linear(2 * d, 48), torch.nn.Tanh()]
    for _ in range(2):
        layers += [torch.nn.Linear(48, 48), torch.nn.Tanh()]
    return torch.nn.Sequential(*layers, torch.nn.Linear(48, 1))


def _time(engine: str, d: int, repeats: int) -> float:
    torch.manual_seed(0)
    net = _network(d)

    def field(p: torch.Tensor) -> torch.Tensor:
        angles = 2 * torch.pi * p
        return net(torch.cat([torch.sin(angles), torch.cos(angles)], -1)).squeeze(-1)

    x = torch.rand(512, d, requires_grad=True)
    gen = torch.Generator().manual_seed(0)
    times = []
    for k in range(repeats + 2):
        t0 = time.perf_counter()
        cache = make_cache(engine, x, field, generator=gen)
        grad_sq = sum(cache((i,)) ** 2 for i in range(d))
        loss = (cache("lap") + grad_sq).square().mean()
        loss.backward()
        if k >= 2:
            times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def run(out_dir: Path, quick: bool = False, *, root: Path) -> list[dict[str, Any]]:
    """One row per dimension: seconds per engine and the automatic choice."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rows = []
        for d in DIMS[:3] if quick else DIMS:
            repeats = 3 if quick else (10 if d <= 32 else 4)
            row: dict[str, Any] = {"d": d}
            for engine in ("autograd", "func", "hutchinson"):
                row[f"{engine}_s"] = round(_time(engine, d, repeats), 5)
            row["auto"] = choose_engine("auto", d)
            rows.append(row)
        return rows
    finally:
        torch.set_num_threads(threads)
