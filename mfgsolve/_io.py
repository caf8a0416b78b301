"""Atomic, safe file writing and reading shared by solvers, the reference and the CLI.

Everything mfgsolve writes goes through these helpers: data is written to a temporary file in the
target directory and then renamed over the destination, so a crash never leaves a half-written
checkpoint or metrics file behind. Checkpoints are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CheckpointError


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def _finite_or_none(obj: Any) -> Any:
    """JSON has no NaN/Inf: write them as null so files stay standard."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Mapping):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_none(v) for v in obj]
    return obj


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    text = json.dumps(_finite_or_none(obj), indent=2, sort_keys=True, default=_json_default)
    atomic_write_bytes(path, (text + "\n").encode())


def atomic_write_csv(path: str | os.PathLike, rows: Iterable[Mapping[str, Any]]) -> None:
    """Write a list of dict rows as CSV (union of keys as header), atomically."""
    rows = list(rows)
    header: list[str] = []
    for row in rows:
        for key in row:
            if key not in header:
                header.append(key)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    atomic_write_bytes(path, buf.getvalue().encode())


def atomic_torch_save(path: str | os.PathLike, obj: Any) -> None:
    """``torch.save`` to memory, then write atomically."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def safe_torch_load(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """Load a checkpoint without unpickling arbitrary objects (``weights_only=True``).

    Raises:
        CheckpointError: the file is missing, truncated, or holds objects other than tensors and
            plain containers.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"{path}: no such checkpoint; fix: point to a folder written by mfgsolve"
        )
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means the file is not ours or is damaged
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{path}: not a valid mfgsolve checkpoint ({first[:160]}); "
            "fix: delete it and re-run, or point to another folder"
        ) from None


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file written by :func:`atomic_write_json`, with a clear error."""
    path = Path(path)
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise CheckpointError(
            f"{path}: file not found; fix: point to a folder written by mfgsolve"
        ) from None
    except json.JSONDecodeError as exc:
        raise CheckpointError(
            f"{path}: corrupted JSON ({exc.msg}); fix: delete it and re-run"
        ) from None
    except UnicodeDecodeError:
        raise CheckpointError(
            f"{path}: corrupted JSON (not UTF-8 text); fix: delete it and re-run"
        ) from None
    except RecursionError:
        raise CheckpointError(
            f"{path}: corrupted JSON (nested too deeply); fix: delete it and re-run"
        ) from None
    except OSError as exc:  # a folder in its place, a path through a file, no permission
        raise CheckpointError(
            f"{path}: cannot be read ({exc.strerror or type(exc).__name__}); "
            "fix: point to a folder written by mfgsolve"
        ) from None
