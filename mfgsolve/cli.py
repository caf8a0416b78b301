"""The ``mfgsolve`` command: check, solve, reference, compare, bench.

Exit status: 0 done; 2 bad input (one line on stderr naming the file, the problem and the fix);
1 a run that failed (diverged training, a reference solve that did not converge).
"""

from __future__ import annotations

import argparse
import ast
import difflib
import re
import sys
from pathlib import Path
from typing import Any

from .errors import BadInput

__all__ = ["main"]


class _BadInput(BadInput):
    """A command-line argument that is wrong (one line: what, and the fix)."""


def _parse_option(text: str, flag: str = "--option") -> tuple[str, Any]:
    if "=" not in text:
        example = "d=8" if flag == "--set" else "width=64"
        raise _BadInput(f"{flag} {text!r} is not KEY=VALUE; fix: write e.g. {flag} {example}")
    key, raw = text.split("=", 1)
    try:
        value = ast.literal_eval(raw)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        value = raw  # not a Python literal: the text itself
    return key.strip().replace("-", "_"), value


def _settings(args) -> dict[str, Any]:
    """The ``--set KEY=VALUE`` settings of a problem family (none for commands without --set)."""
    return dict(_parse_option(o, "--set") for o in (getattr(args, "set", None) or []))


def _load(path: str, args=None):
    from .problem import load_problem

    return load_problem(path, **_settings(args))


def _default_dir(args, problem, leaf: str) -> Path:
    """runs/<problem>/<leaf>[-<settings>]: where a command writes when not given --out."""
    settings = [o.replace("=", "") for o in (getattr(args, "set", None) or [])]
    return Path("runs") / problem.name / "-".join([leaf, *settings])


def _out_dir(args, problem, leaf: str) -> Path:
    out = Path(args.out) if args.out else _default_dir(args, problem, leaf)
    if out.exists() and not out.is_dir():
        raise _BadInput(f"--out {out} is an existing file, not a folder; fix: name a folder")
    return out


# files that mark a folder as holding results (a finished run, or a killed one's checkpoint)
_RESULT_FILES = ("metrics.json", "solution/solution.json", "solution/reference.json")


def _refuse_to_replace(out: Path, args, what: str) -> None:
    """Stop before a command replaces results it did not write in this call."""
    if getattr(args, "overwrite", False) or not out.is_dir():
        return
    held = [name for name in _RESULT_FILES if (out / name).is_file()]
    if (out / "checkpoint" / "train_state.pt").is_file():
        held.append("checkpoint/train_state.pt")
    if held:
        resume = "--resume to continue it, " if what == "run" else ""
        raise _BadInput(
            f"{out} already holds a {what} ({', '.join(held)}); "
            f"fix: {resume}--overwrite to replace it, or --out another folder"
        )


_LEGEND = (
    "m_rel_l2 = |m - m*|/|m*| and u_l2 = |u - u*| (L2 on the domain{normalised}){constant}; "
    "*_residual: RMS of the equation as written (its scale is that of the equation's terms: not an "
    "error); *_relative: that RMS over the RMS size of its terms (what the verdict judges)"
)


def _print_metrics(metrics: dict[str, Any], title: str, legend: bool = False) -> None:
    print(title)
    for key, val in metrics.items():
        if isinstance(val, list) and val and all(isinstance(v, float) for v in val):
            val = "[" + ", ".join(f"{v:.4g}" for v in val) + "]"  # one per population
        print(f"  {key:16s} {val:.4g}" if isinstance(val, float) else f"  {key:16s} {val}")
    if legend and any(k in metrics for k in ("m_rel_l2", "u_l2", "hjb_residual")):
        ergodic = "constant" in metrics  # an ergodic constant: u is normalised by int u = 0
        whole_space = "importance sampling" in str(metrics.get("quadrature", ""))
        normalised = "; u normalised to int u = 0" if ergodic else ""
        if whole_space:  # (mfgsolve.metrics.whole_space)
            normalised = "; on Rd: u in L2(m*), up to a constant"
        text = _LEGEND.format(
            normalised=normalised,
            constant=", constant_abs = |c - c*|" if ergodic else "",
        )
        print(f"  ({text})")


def _saved_reference(path: Path, problem, warn: bool):
    """The reference saved in ``path`` (a ``mfgsolve reference`` folder or its solution/), or None
    when there is none; a damaged one is an error, or with ``warn`` a warning and None."""
    from .errors import CheckpointError
    from .reference import ReferenceSolution

    for folder in (path, path / "solution"):
        if (folder / "reference.json").is_file():
            try:
                return ReferenceSolution.load(folder, problem=problem)
            except CheckpointError as exc:
                if not warn:
                    raise
                print(f"mfgsolve: warning: {exc}; drawing without it", file=sys.stderr)
                return None
    return None


# ----- commands ----------------------------------------------------------------------------------


def cmd_check(args) -> int:
    from .problem import ErgodicMFG

    problem = _load(args.file, args)
    print(f"problem '{problem.name}' ({type(problem).__name__}) from {args.file}")
    if problem.kind == "fbsde":
        print(f"  state       X in R^{problem.dim}, time [{problem.t0}, {problem.T}]")
        print(f"  {problem!r}")
        print("ok")
        return 0
    print(f"  domain      {problem.domain!r}, dimension {problem.dim}")
    several = problem.populations > 1
    if several:
        constants = problem.constants or [None] * problem.populations
        unknowns = f"{problem.populations} populations: " + "; ".join(
            f"value {v}, density {d}" + (f", constant {c}" if c is not None else "")
            for v, d, c in zip(problem.values, problem.densities, constants)
        )
        if not problem.constants:
            unknowns += f" (no ergodic constants: discounts {problem.discount})"
    else:
        unknowns = f"value {problem.value}, density {problem.density}"
    if isinstance(problem, ErgodicMFG) and not several:
        if problem.constant is not None:
            unknowns += f", constant {problem.constant}"
        else:
            rate = f"{problem.discount:g}" if problem.discount is not None else "nonlinear in u"
            unknowns += f" (no ergodic constant: discount {rate})"
    elif not isinstance(problem, ErgodicMFG):
        unknowns += f"; time {problem.time} in [{problem.t0}, {problem.T}]"
    print(f"  unknowns    {unknowns}")
    if problem.kind == "finite_horizon":
        from .lowering.space_time import lower_finite_horizon_populations

        lowered_sets = lower_finite_horizon_populations(problem)
    else:
        from .lowering import lower_populations

        lowered_sets = lower_populations(problem)
    coords = [str(s) for s in problem.values[0].args]
    for k, res in enumerate(lowered_sets):
        suffix = f" {k + 1}" if several else ""
        for label, lowered in (("HJB", res.hjb), ("FP", res.fp)):
            terms = []
            for name, index in lowered.terms:
                if name.startswith("logm"):
                    terms.append(f"log {name[3:]} (exact: f - log Z)")
                elif index == "lap":
                    terms.append(f"Laplacian of {name}")
                else:
                    terms.append(name + ("_" + "".join(coords[i] for i in index) if index else ""))
            print(f"  {label + suffix:11s} uses {', '.join(terms)}")
    if isinstance(problem, ErgodicMFG) and problem.constants:
        for constant, res in zip(problem.constants, lowered_sets):
            how = (
                "enters linearly: least-squares value each step"
                if res.constant_coefficient is not None
                else "nonlinear: trained"
            )
            print(f"  constant    {constant} {how}")
    elif not isinstance(problem, ErgodicMFG):
        for v, g in zip(problem.values, problem.terminals):
            print(f"  terminal    {v.func}(T, x) = {g}")
        for d, m0 in zip(problem.densities, problem.initials):
            print(f"  initial     {d.func}(t0, x) = {m0}")
    print(f"  params      {({str(k): v for k, v in problem.params.items()}) or 'none'}")
    print(f"  exact       {', '.join(sorted(problem.exact)) or 'none'}")
    print(
        f"  structure   {'from_hamiltonian (monotone reference scheme)' if problem.hamiltonian_form else 'generic residuals'}"
    )
    print("ok")
    return 0


# what solve takes as arguments of its own: --option cannot set them
_OWN_ARGUMENTS = ("method", "seed", "device", "dtype", "progress", "callbacks", "resume", "problem")


def _options(args) -> dict[str, Any]:
    opts = dict(_parse_option(o) for o in (args.option or []))
    for key in _OWN_ARGUMENTS:
        if key in opts:
            flag = "--quiet" if key == "progress" else f"--{key}"
            fix = f"use {flag}" if key not in ("callbacks", "problem") else "drop it"
            raise _BadInput(f"--option {key} is not a solver option; fix: {fix}")
    for key in ("iterations", "batch_size", "lr"):
        val = getattr(args, key, None)
        if val is not None:
            opts[key] = val
    return opts


def cmd_solve(args) -> int:
    from ._io import atomic_write_csv, atomic_write_json
    from .distributed import init_from_environment, world
    from .metrics import compare
    from .plotting import figures
    from .solver import solve

    problem = _load(args.file, args)
    try:
        process_device = init_from_environment(args.device)
    except ValueError as exc:
        raise _BadInput(str(exc)) from None
    parallel = process_device is not None
    if parallel:
        args.device = process_device
    if isinstance(args.resume, str):
        if args.out and Path(args.out).resolve() != Path(args.resume).resolve():
            raise _BadInput(
                f"--resume {args.resume} and --out {args.out} name different folders; "
                "fix: give only --resume DIR (the run folder to continue)"
            )
        args.out = args.resume
    out = _out_dir(args, problem, f"solve-{args.method}-seed{args.seed}")
    opts = _options(args)
    opts.setdefault("checkpoint_dir", str(out / "checkpoint"))
    _check_run_arguments(problem, args, opts)  # bad input: one line, before any folder is looked at
    if args.resume:
        if not out.is_dir():
            raise _BadInput(
                f"--resume {out}: no such folder; fix: name the folder of the run to continue "
                "(as written by mfgsolve solve), or drop --resume to start a new run"
            )
        if not (Path(opts["checkpoint_dir"]) / "train_state.pt").exists():
            # a run killed before its first checkpoint: say so, then start
            print(
                f"mfgsolve: warning: no checkpoint in {opts['checkpoint_dir']}; starting afresh",
                file=sys.stderr,
            )
    else:
        _refuse_to_replace(out, args, "run")
    reference = None
    if _reference_can_stand_in(problem):
        reference = _saved_reference(_default_dir(args, problem, "reference"), problem, warn=True)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)  # a run killed from here on can be resumed
    progress = not args.quiet and sys.stderr.isatty()
    try:
        sol = solve(
            problem,
            method=args.method,
            seed=args.seed,
            device=args.device,
            dtype=args.dtype,
            progress=progress,
            resume=bool(args.resume),
            **opts,
        )
    except BadInput:
        if created and not any(out.iterdir()):
            out.rmdir()  # bad input writes nothing
        raise
    if parallel:
        import torch.distributed as dist

        rank = world()[0]
        dist.destroy_process_group()
        if rank != 0:  # process 0 writes the results
            return 0
    against = "exact solution"
    if sol.kind == "fbsde":  # FBSDE solutions draw their own figures
        metrics = compare(sol)
        sol.save(out / "solution")
        paths = sol.figures(out)
    else:
        if reference is not None:  # u or m has no closed form, and a reference is saved
            metrics = compare(sol, reference)
            against = f"reference in {_default_dir(args, problem, 'reference')}"
        elif _has_exact(problem):
            metrics = compare(sol)
        else:
            metrics = {"constant": sol.constant} if sol.constant is not None else {}
            against = "nothing (no exact solution; `mfgsolve reference` saves a reference)"
        sol.save(out / "solution")
        paths = figures(sol, reference, out)
    atomic_write_csv(out / "history.csv", sol.history)
    verdict = sol.verdict if sol.kind == "network" else None  # judged without the exact solution
    metrics = {
        **metrics,
        "compared_with": against,
        "seconds": sol.info.get("seconds"),
        "iterations": sol.info.get("iterations"),
    }
    if verdict is not None:
        metrics["converged"] = verdict.converged
        metrics["verdict"] = verdict.reason
    atomic_write_json(out / "metrics.json", metrics)
    shown_metrics = {k: v for k, v in metrics.items() if k not in ("converged", "verdict")}
    _print_metrics(
        shown_metrics, f"{problem.name}: {args.method}, random seed {args.seed}", legend=True
    )
    print(f"wrote {out}/metrics.json, history.csv, {', '.join(p.name for p in paths)}, solution/")
    if verdict is not None:
        print(f"verdict: {verdict.reason}")
        if not verdict.converged:
            print(f"mfgsolve: failed: problem '{problem.name}': {verdict.reason}", file=sys.stderr)
            return 1
    return 0


def _check_run_arguments(problem, args, opts: dict[str, Any]) -> None:
    """Seed, device and (MFG) solver options, checked as ``solve`` would, without solving."""
    from ._run_arguments import check_device, check_seed

    check_seed(args.seed)
    check_device(args.device)
    if problem.kind != "fbsde":  # FBSDE options are checked by solve_fbsde before any work
        from .options import SolverOptions

        SolverOptions.build(problem, opts, method=args.method)


def _has_exact(problem) -> bool:
    """Whether the problem carries its solution (closed forms or a computed exact solution)."""
    return bool(getattr(problem, "exact", None)) or (
        getattr(problem, "exact_solution", None) is not None
    )


def _reference_can_stand_in(problem) -> bool:
    """Whether a finite-difference reference can stand in for a missing (or partial) exact
    solution: an MFG whose u or m has no closed form."""
    if problem.kind not in ("ergodic", "finite_horizon"):
        return False
    from .metrics import known_solution

    u_exact, m_exact, _ = known_solution(problem)
    return u_exact is None or m_exact is None


def cmd_reference(args) -> int:
    from ._io import atomic_write_json
    from .metrics import compare
    from .plotting import reference_figures
    from .reference import reference_solve

    problem = _load(args.file, args)
    out = _out_dir(args, problem, "reference")
    kwargs = dict(_parse_option(o) for o in (args.option or []))
    from .reference.solve import check_options

    check_options(problem, kwargs)  # unknown names and bad values: one line, before any work
    _refuse_to_replace(out, args, "reference")
    ref = reference_solve(problem, grid=args.grid, **kwargs)
    ref.save(out / "solution")
    metrics: dict[str, Any] = {"info": ref.info, "error_estimate": ref.error_estimate}
    if problem.exact:
        metrics["exact"] = compare(ref)
    atomic_write_json(out / "metrics.json", metrics)
    reference_figures(ref, out)
    _print_metrics(
        {
            **{f"estimate_{k}": v for k, v in ref.error_estimate.items()},
            **{f"exact_{k}": v for k, v in metrics.get("exact", {}).items()},
            **{
                k: ref.info[k]
                for k in ("mass_left", "exit_time_50", "exit_time_90")
                if k in ref.info
            },
        },
        f"{problem.name}: reference",
    )
    print(f"wrote {out}")
    return 0


def cmd_compare(args) -> int:
    from ._io import atomic_write_json
    from .metrics import compare
    from .plotting import figures
    from .solution import Solution

    problem = _load(args.file, args)
    out = _out_dir(args, problem, "compare")
    sol_dir = (
        Path(args.solution)
        if args.solution
        else _default_dir(args, problem, "solve-adversarial-seed0") / "solution"
    )
    if (
        not (sol_dir / "solution.json").exists()
        and (sol_dir / "solution" / "solution.json").exists()
    ):
        sol_dir = sol_dir / "solution"
    sol = Solution.load(sol_dir, problem=problem)
    if args.exact or getattr(problem, "exact_solution", None) is not None:
        ref = None  # closed forms (problem.exact or a computed exact solution such as Riccati LQ)
        against = "exact"
    else:
        ref_dir = (
            Path(args.reference) if args.reference else _default_dir(args, problem, "reference")
        )
        ref = _saved_reference(ref_dir, problem, warn=False)
        if ref is None and args.reference:
            raise _BadInput(
                f"--reference {ref_dir}: no reference.json there; fix: name a folder written by "
                "mfgsolve reference"
            )
        if ref is None:
            from .reference import reference_solve

            print(f"no reference saved in {ref_dir}; solving it now (mfgsolve reference saves one)")
            ref = reference_solve(problem)
            against = "reference (solved now)"
        else:
            against = f"reference in {ref_dir}"
    metrics = compare(sol, ref)
    atomic_write_json(out / "metrics.json", metrics)
    paths = figures(sol, ref, out)
    _print_metrics(metrics, f"{problem.name}: network vs {against}", legend=True)
    print(f"wrote {out}/metrics.json, {', '.join(p.name for p in paths)}")
    return 0


def _floats(text: str, what: str, cast=float) -> list:
    try:
        return [cast(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise _BadInput(
            f"--{what} {text!r} is not a comma-separated list of numbers; fix: write e.g. --{what} 1e-3,3e-4"
        ) from None


def cmd_sweep(args) -> int:
    from ._bench import format_table
    from .sweep import run_sweep

    problem = _load(args.file, args)
    out = _out_dir(args, problem, "sweep")
    lrs = _floats(args.lr, "lr")
    batches = _floats(args.batch_size, "batch-size", int)
    opts = dict(_parse_option(o) for o in (args.option or []))
    if args.iterations is not None:
        opts["iterations"] = args.iterations
    from .sweep import check_sweep

    check_sweep(problem, lrs, batches, args.seeds, args.jobs, opts)  # bad input: exit 2 now
    rows = run_sweep(
        args.file, lrs, batches, args.seeds, out, jobs=args.jobs, settings=_settings(args), **opts
    )
    print(format_table(rows))
    print(f"wrote {out}/sweep.json, sweep.csv, sweep.png")
    return 0


def cmd_bench(args) -> int:
    from ._bench import find_root, format_table, load_registry, run_benchmark

    root = find_root(args.root)  # the checkout holding benchmarks/ and problems/
    benchmarks = load_registry(root)
    if args.name is None:
        for name, (_, text) in benchmarks.items():
            print(f"  {name:15s} {text}")
        return 0
    if args.name not in benchmarks:
        raise _BadInput(f"unknown benchmark {args.name!r}; fix: use one of {', '.join(benchmarks)}")
    out = Path(args.out) if args.out else Path("runs") / "bench" / args.name
    rows = run_benchmark(args.name, out, quick=args.quick, root=root)
    print(format_table(rows))
    print(f"wrote {out}/bench.json")
    return 0


# ----- parser ------------------------------------------------------------------------------------


def _add_set(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="a setting of a problem family (a file with make_problem), e.g. --set d=8",
    )


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors on one line like every other error (exit status 2)."""

    def error(self, message: str):
        command = self.prog.removeprefix("mfgsolve").strip()
        where = f"{command}: " if command else ""
        fix = f"see `{self.prog} --help`"
        choice = re.search(r"invalid choice: '(.*)' \(choose from (.*)\)$", message)
        if choice:  # a mistyped command or --dtype: the nearest choice
            near = difflib.get_close_matches(choice[1], re.findall(r"'([^']*)'", choice[2]), n=1)
            fix = f"did you mean {near[0]!r}? (or {fix})" if near else fix
        self.exit(2, f"mfgsolve: error: {where}{_one_line(message)}; fix: {fix}\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="mfgsolve",
        description="Solve mean field games written in sympy with GANs; check them against finite differences.",
    )
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("check", help="validate a problem file and show what the lowering found")
    c.add_argument("file")
    _add_set(c)
    c.set_defaults(func=cmd_check)

    s = sub.add_parser(
        "solve", help="train the networks; write metrics.json, history.csv, figures, checkpoints"
    )
    s.add_argument("file")
    _add_set(s)
    s.add_argument(
        "--method",
        default="adversarial",
        help="adversarial (default), joint, or minmax (potential ergodic MFGs); deep_bsde for FBSDEs",
    )
    s.add_argument("--iterations", type=int)
    s.add_argument("--batch-size", type=int, dest="batch_size")
    s.add_argument("--lr", type=float)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="cpu")
    s.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    s.add_argument(
        "--option",
        action="append",
        metavar="KEY=VALUE",
        help="any solver option, e.g. --option width=64",
    )
    s.add_argument("--out", help="output folder (default runs/<problem>/solve-<method>-seed<k>)")
    s.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        metavar="DIR",
        help="continue a killed run from the checkpoint in DIR (default: the output folder)",
    )
    s.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the results already in the output folder (without it, solve refuses)",
    )
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_solve)

    r = sub.add_parser("reference", help="finite-difference reference solution")
    r.add_argument("file")
    _add_set(r)
    r.add_argument("--grid", type=int, help="grid points per axis")
    r.add_argument("--option", action="append", metavar="KEY=VALUE")
    r.add_argument("--out")
    r.add_argument(
        "--overwrite", action="store_true", help="replace a reference already in the output folder"
    )
    r.set_defaults(func=cmd_reference)

    k = sub.add_parser(
        "compare", help="errors and figures of a saved solution against the reference or exact"
    )
    k.add_argument("file")
    _add_set(k)
    k.add_argument(
        "--solution", help="folder written by `mfgsolve solve` (default: its default folder)"
    )
    k.add_argument(
        "--reference",
        help="folder written by `mfgsolve reference` (default: its default folder if it holds "
        "one, else the reference is solved now)",
    )
    k.add_argument(
        "--exact", action="store_true", help="compare with the problem's exact solution instead"
    )
    k.add_argument("--out")
    k.set_defaults(func=cmd_compare)

    w = sub.add_parser(
        "sweep", help="ablation grid of lr x batch size x seeds (parallel, resumable)"
    )
    w.add_argument("file")
    _add_set(w)
    w.add_argument("--lr", default="1e-3,3e-4,1e-4", help="comma-separated learning rates")
    w.add_argument(
        "--batch-size", default="64,256,1024", dest="batch_size", help="comma-separated batch sizes"
    )
    w.add_argument("--seeds", type=int, default=3)
    w.add_argument("--iterations", type=int)
    w.add_argument("--jobs", type=int, help="parallel processes (default: number of cores)")
    w.add_argument("--option", action="append", metavar="KEY=VALUE")
    w.add_argument("--out")
    w.set_defaults(func=cmd_sweep)

    b = sub.add_parser("bench", help="run a benchmark and write its table (no NAME: list them)")
    b.add_argument("name", nargs="?")
    b.add_argument("--quick", action="store_true", help="a short smoke version")
    b.add_argument("--out")
    b.add_argument(
        "--root",
        metavar="DIR",
        help="the mfgsolve source checkout holding benchmarks/ and problems/ "
        "(default: the current folder or its nearest parent that has them)",
    )
    b.set_defaults(func=cmd_bench)
    return p


def _one_line(exc: Exception) -> str:
    """The message on one line, whatever it quotes (a name or a path may hold a line break)."""
    return str(exc).replace("\r", "\\r").replace("\n", "\\n")


def _check_out(args) -> None:
    """--out names a folder that can be made: neither it nor a folder above it is a file."""
    out = getattr(args, "out", None)
    if not out:
        return
    path = Path(out)
    try:
        blocked = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
    except (OSError, ValueError):
        raise _BadInput(f"--out {out!r} is not a usable path; fix: name a folder") from None
    if blocked is not None:
        what = "an existing file" if blocked == path else f"under the file {blocked}"
        raise _BadInput(f"--out {out} is {what}, not a folder; fix: name a folder")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mfgsolve`` console script."""
    from .errors import BadInput, RunFailed

    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2, its one line printed)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        _check_out(args)
        return int(args.func(args) or 0)
    except BadInput as exc:  # problem, option, checkpoint and argument errors
        print(f"mfgsolve: error: {_one_line(exc)}", file=sys.stderr)
        return exc.exit_status
    except RunFailed as exc:  # diverged training, a reference solve that did not converge
        print(f"mfgsolve: failed: {_one_line(exc)}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("mfgsolve: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
