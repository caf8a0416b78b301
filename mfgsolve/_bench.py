"""The runner of ``mfgsolve bench``: find the benchmarks of a source checkout, run one, write a table.

The benchmarks are not part of the installed package: they live in ``benchmarks/`` of the source
checkout, next to ``problems/``. :func:`find_root` finds that checkout (``--root DIR``, else the
current folder or the nearest parent holding ``benchmarks/registry.py`` and ``problems/``);
:func:`load_registry` reads ``benchmarks/registry.py`` (NAME -> (file, description)) and
:func:`load_benchmark` loads a benchmark's file by path, under the private module name
``_mfgsolve_benchmarks`` (so the files import their shared helpers as ``from ._common import ...``).
Each benchmark file defines ``run(out_dir, quick=False, *, root) -> rows``; :func:`run_benchmark`
runs it and writes ``bench.json`` into the output folder.
"""

from __future__ import annotations

import importlib
import importlib.util
import platform
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from ._io import atomic_write_json
from .errors import BadInput

__all__ = ["find_root", "load_registry", "load_benchmark", "run_benchmark", "format_table"]

#: the file that marks a checkout's benchmarks folder, relative to the root
REGISTRY = Path("benchmarks") / "registry.py"
_PACKAGE = "_mfgsolve_benchmarks"  # the module name the benchmarks folder is loaded under


def _is_root(folder: Path) -> bool:
    return (folder / REGISTRY).is_file() and (folder / "problems").is_dir()


def find_root(root: str | Path | None = None, cwd: str | Path | None = None) -> Path:
    """The checkout that holds ``benchmarks/`` and ``problems/``.

    ``root`` (``--root DIR``) when given, else ``cwd`` (default: the current folder) or its nearest
    parent that has ``benchmarks/registry.py`` and ``problems/``. Raises :class:`BadInput` (one
    line) when there is none.
    """
    if root is not None:
        folder = Path(root).expanduser().resolve()
        if not _is_root(folder):
            raise BadInput(
                f"--root {root} has no {REGISTRY.as_posix()} and problems/; "
                "fix: pass the mfgsolve source checkout that holds benchmarks/ and problems/"
            )
        return folder
    start = Path(cwd or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if _is_root(folder):
            return folder
    raise BadInput(
        f"no benchmarks/ folder in {start} or its parents; "
        "fix: run from an mfgsolve source checkout or pass --root DIR"
    )


def _package(root: Path) -> ModuleType:
    """The benchmarks folder of ``root`` as the module ``_mfgsolve_benchmarks`` (loaded by path)."""
    folder = str((Path(root) / "benchmarks").resolve())
    cached = sys.modules.get(_PACKAGE)
    if cached is not None and list(getattr(cached, "__path__", [])) == [folder]:
        return cached
    for name in [n for n in sys.modules if n == _PACKAGE or n.startswith(_PACKAGE + ".")]:
        del sys.modules[name]  # another root's benchmarks: forget them
    init = Path(folder) / "__init__.py"
    if init.is_file():
        spec = importlib.util.spec_from_file_location(
            _PACKAGE, init, submodule_search_locations=[folder]
        )
        package = importlib.util.module_from_spec(spec)
        sys.modules[_PACKAGE] = package
        spec.loader.exec_module(package)
    else:
        package = ModuleType(_PACKAGE)
        package.__path__ = [folder]
        sys.modules[_PACKAGE] = package
    importlib.invalidate_caches()
    return package


def _import(root: Path, name: str, what: str) -> ModuleType:
    """Import ``benchmarks/<name>.py`` of ``root``; a file that fails is one line of bad input."""
    try:
        return importlib.import_module(f"{_PACKAGE}.{name}")
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - any failure of the file is bad input
        sys.modules.pop(f"{_PACKAGE}.{name}", None)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise BadInput(
            f"{root / 'benchmarks' / (name + '.py')}: {what} does not import "
            f"({type(exc).__name__}: {first[:160]}); fix: correct it, or pass --root another checkout"
        ) from None


def load_registry(root: str | Path) -> dict[str, tuple[str, str]]:
    """``benchmarks/registry.py`` of ``root``: NAME -> (file in ``benchmarks/``, description)."""
    root = Path(root)
    _package(root)
    registry = _import(root, "registry", "the benchmark registry")
    benchmarks = getattr(registry, "BENCHMARKS", None)
    ok = isinstance(benchmarks, dict) and all(
        isinstance(name, str)
        and isinstance(entry, (tuple, list))
        and len(entry) == 2
        and all(isinstance(part, str) for part in entry)
        for name, entry in benchmarks.items()
    )
    if not ok:
        raise BadInput(
            f"{root / REGISTRY}: BENCHMARKS is not a dict NAME -> (file, description); "
            "fix: correct it, or pass --root another checkout"
        )
    return {name: (entry[0], entry[1]) for name, entry in benchmarks.items()}


def load_benchmark(root: str | Path, name: str) -> ModuleType:
    """The module of benchmark ``name`` (its file in ``root/benchmarks``, loaded by path)."""
    root = Path(root)
    registry = load_registry(root)
    if name not in registry:
        raise KeyError(name)
    file, _ = registry[name]
    path = root / "benchmarks" / file
    if not path.is_file():
        raise BadInput(
            f"benchmark {name!r}: {path} does not exist; fix: restore it or its entry in {root / REGISTRY}"
        )
    return _import(root, Path(file).stem, f"benchmark {name!r}")


def format_table(rows: list[dict[str, Any]]) -> str:
    """Rows of dicts as a fixed-width text table."""
    if not rows:
        return "(no rows)"
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]

    def fmt(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.4g}"
        return str(v)

    cells = [[fmt(r.get(k)) for k in keys] for r in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    lines = [
        "  ".join(k.ljust(w) for k, w in zip(keys, widths)),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def run_benchmark(
    name: str, out_dir: Path, quick: bool = False, *, root: str | Path
) -> list[dict[str, Any]]:
    """Run benchmark ``name`` of the checkout ``root``, write ``bench.json`` into ``out_dir`` and
    return its rows."""
    import torch

    root = Path(root).resolve()
    module = load_benchmark(root, name)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows = module.run(out_dir, quick, root=root)
    meta = {
        "benchmark": name,
        "quick": quick,
        "seconds": round(time.perf_counter() - t0, 2),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },
        "rows": rows,
    }
    atomic_write_json(out_dir / "bench.json", meta)
    return rows
