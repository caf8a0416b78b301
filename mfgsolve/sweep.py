"""Ablation sweeps: a grid of learning rates x batch sizes x seeds, in parallel processes, resumable.

Each run writes ``<out>/lr<lr>-bs<batch>-seed<k>/`` (``metrics.json``, ``history.csv``); a run whose
``metrics.json`` exists is not run again, so an interrupted sweep resumes where it stopped. The
sweep then writes ``sweep.json``/``sweep.csv`` (one row per run: final errors and an oscillation
measure) and ``sweep.png`` (error curves per setting; final error vs lr and vs batch size).
"""

from __future__ import annotations

import itertools
import os
import statistics
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ._io import atomic_write_csv, atomic_write_json, read_json
from ._messages import shown
from .errors import BadInput, CheckpointError

__all__ = ["run_sweep", "oscillation"]


def oscillation(values: list[float]) -> float:
    """Oscillation of an error curve: median |log10 e_{k+1} - log10 e_k| over its second half."""
    vals = np.log10(
        np.maximum(np.asarray([v for v in values if v is not None], dtype=float), 1e-300)
    )
    tail = vals[len(vals) // 2 :]
    return float(np.median(np.abs(np.diff(tail)))) if len(tail) > 1 else 0.0


def _run_dir(out: Path, lr: float, batch: int, seed: int) -> Path:
    return out / f"lr{lr:g}-bs{batch}-seed{seed}"


def _one_run(
    args: tuple[str, float, int, int, dict[str, Any], str, dict[str, Any]],
) -> dict[str, Any]:
    problem_file, lr, batch, seed, options, out, settings = args
    import torch

    torch.set_num_threads(1)
    from .metrics import compare
    from .problem import load_problem
    from .solver import solve

    run_dir = _run_dir(Path(out), lr, batch, seed)
    if (run_dir / "metrics.json").exists():
        row = read_json(run_dir / "metrics.json")
        if not isinstance(row, dict) or any(k not in row for k in _ROW):
            raise CheckpointError(
                f"{run_dir / 'metrics.json'}: not the metrics of a sweep run; "
                "fix: delete it (the run is then done again) or sweep into another --out"
            )
        return row
    problem = load_problem(problem_file, **settings)
    sol = solve(
        problem,
        lr=lr,
        batch_size=batch,
        seed=seed,
        progress=False,
        checkpoint_dir=str(run_dir / "checkpoint"),
        resume=True,
        **options,
    )
    metrics = compare(sol) if problem.exact else {}
    curve = [h.get("m_rel_l2") for h in sol.history if h.get("m_rel_l2") is not None]
    row = {
        "lr": lr,
        "batch_size": batch,
        "seed": seed,
        "seconds": sol.info["seconds"],
        "m_rel_l2": metrics.get("m_rel_l2"),
        "u_l2": metrics.get("u_l2"),
        "constant_abs": metrics.get("constant_abs"),
        "oscillation": oscillation(curve) if curve else None,
    }
    atomic_write_csv(run_dir / "history.csv", sol.history)
    atomic_write_json(run_dir / "metrics.json", row)
    return row


_ROW = ("lr", "batch_size", "seed", "m_rel_l2", "oscillation")
MAX_SEEDS, MAX_JOBS, MAX_RUNS = 10_000, 1024, 100_000


# set by the sweep for each run: not options the runs share
_PER_RUN = {"lr": "--lr", "batch_size": "--batch-size", "seed": "--seeds", "resume": None}
_PER_RUN.update({"checkpoint_dir": None, "progress": None})


def check_grid(
    lrs: list, batch_sizes: list, seeds: Any, jobs: Any = None, options: Any = ()
) -> None:
    """The grid's shape: non-empty lists, 1 to 10,000 seeds, 1 to 1,024 jobs, and no shared
    option that each run sets itself (one line otherwise)."""
    for key in options:
        if key in _PER_RUN:
            fix = f"give the values with {_PER_RUN[key]}" if _PER_RUN[key] else "drop it"
            raise BadInput(f"the sweep sets {key} of each run itself; fix: {fix}")
    if not lrs or not batch_sizes:
        what = "--lr" if not lrs else "--batch-size"
        raise BadInput(f"{what} lists no values; fix: give e.g. {what} 1e-3,3e-4")

    def whole(v: Any, most: int) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= most

    if not whole(seeds, MAX_SEEDS):
        raise BadInput(
            f"seeds={shown(seeds)} is not an integer from 1 to {MAX_SEEDS:,}; fix: give e.g. --seeds 3"
        )
    if jobs is not None and not whole(jobs, MAX_JOBS):
        raise BadInput(
            f"jobs={shown(jobs)} is not an integer from 1 to {MAX_JOBS:,}; "
            "fix: give e.g. --jobs 2, or leave it out for the number of cores"
        )
    runs = len(lrs) * len(batch_sizes) * seeds
    if runs > MAX_RUNS:
        raise BadInput(
            f"the sweep has {runs:,} runs (more than {MAX_RUNS:,}); fix: use fewer values or seeds"
        )


def check_sweep(problem: Any, lrs: list, batch_sizes: list, seeds: Any, jobs: Any, options) -> None:
    """Refuse a bad sweep before any run: the grid's shape and every run's options."""
    from .options import SolverOptions

    check_grid(lrs, batch_sizes, seeds, jobs, options)
    for lr, batch in itertools.product(dict.fromkeys(lrs), dict.fromkeys(batch_sizes)):
        SolverOptions.build(problem, {**options, "lr": lr, "batch_size": batch})


def run_sweep(
    problem_file: str,
    lrs: list[float],
    batch_sizes: list[int],
    seeds: int,
    out: Path,
    jobs: int | None = None,
    settings: dict[str, Any] | None = None,
    **options: Any,
) -> list[dict[str, Any]]:
    """Run the grid and write the table and figure. Returns one row per run.

    Args:
        problem_file: path of the problem file (re-loaded in each worker process).
        lrs, batch_sizes: the grid.
        seeds: number of seeds per setting (0 .. seeds-1).
        out: output folder.
        jobs: parallel processes (default: the number of cores).
        settings: settings of a problem family (``load_problem(problem_file, **settings)``).
        **options: other solver options, the same for every run.
    """
    check_grid(lrs, batch_sizes, seeds, jobs, options)
    out.mkdir(parents=True, exist_ok=True)
    tasks = [
        (str(problem_file), lr, bs, seed, options, str(out), dict(settings or {}))
        for lr, bs, seed in itertools.product(lrs, batch_sizes, range(seeds))
    ]
    jobs = jobs or os.cpu_count() or 1
    if jobs == 1:
        rows = [_one_run(t) for t in tasks]
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            rows = list(pool.map(_one_run, tasks))
    atomic_write_json(out / "sweep.json", rows)
    atomic_write_csv(out / "sweep.csv", rows)
    _plot(rows, out)
    return rows


def _plot(rows: list[dict[str, Any]], out: Path) -> None:
    """sweep.png: error curves (seed 0; colour = lr, line style = batch), final error and
    oscillation against lr and batch size (median over seeds, bars from min to max)."""
    import csv

    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    from .plotting._figure import colormap, subplots
    from .plotting._figure import save as _save

    lrs = sorted({r["lr"] for r in rows})
    batches = sorted({r["batch_size"] for r in rows})
    colours = colormap("viridis")(np.linspace(0.0, 0.85, len(lrs)))
    styles = ["-", "--", ":", "-."]
    fig, axes = subplots(2, 2, figsize=(13, 9), constrained_layout=True)
    ax = axes[0, 0]
    for row in rows:
        if row["seed"] != 0:
            continue
        hist = _run_dir(Path(out), row["lr"], row["batch_size"], 0) / "history.csv"
        if not hist.exists():
            continue
        with open(hist) as fh:
            recs = [r for r in csv.DictReader(fh) if r.get("m_rel_l2")]
        ax.semilogy(
            [float(r["iteration"]) for r in recs],
            [float(r["m_rel_l2"]) for r in recs],
            color=colours[lrs.index(row["lr"])],
            linestyle=styles[batches.index(row["batch_size"]) % len(styles)],
            label=f"lr {row['lr']:g}, batch {row['batch_size']}",
        )
    ax.set_title("relative L2 error of m during training (seed 0)")
    ax.set_xlabel("iteration")
    ax.set_ylabel("m_rel_l2")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=len(batches))
    panels = (
        (axes[0, 1], "m_rel_l2", "lr", "batch_size", "final m_rel_l2"),
        (axes[1, 0], "m_rel_l2", "batch_size", "lr", "final m_rel_l2"),
        (axes[1, 1], "oscillation", "lr", "batch_size", "oscillation of the error curve"),
    )
    for ax, value, key, other, ylabel in panels:
        xs = sorted({r[key] for r in rows})
        plotted: list[float] = []
        for k, val in enumerate(sorted({r[other] for r in rows})):
            groups = [
                [r[value] for r in rows if r[key] == x and r[other] == val and r[value] is not None]
                for x in xs
            ]
            med = np.array([statistics.median(g) if g else np.nan for g in groups])
            lo = np.array([min(g) if g else np.nan for g in groups])
            hi = np.array([max(g) if g else np.nan for g in groups])
            plotted += [v for v in lo if np.isfinite(v)]
            shift = 1 + 0.04 * (k - 1)  # spread the error bars apart
            ax.errorbar(
                np.asarray(xs, dtype=float) * shift,
                med,
                yerr=[med - lo, hi - med],
                fmt="o-",
                capsize=3,
                label=f"{other.replace('_', ' ')} {val:g}",
            )
        ax.set_xscale("log")
        if plotted and min(plotted) > 0:  # (a short run can have zero oscillation)
            ax.set_yscale("log")
        ax.xaxis.set_major_locator(FixedLocator(xs))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel(key.replace("_", " "))
        ax.set_ylabel(f"{ylabel} (median, min-max over seeds)")
        ax.set_title(f"{ylabel} vs {key.replace('_', ' ')}")
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    _save(fig, out / "sweep.png")
