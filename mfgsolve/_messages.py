"""Pieces of the one-line error messages: the nearest valid name of a typo, a value shown short."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

__all__ = ["did_you_mean", "shown", "unknown_names"]


def did_you_mean(unknown: Iterable[str], valid: Iterable[str]) -> str:
    """The fix for unknown names: the nearest valid name of each (difflib), else the valid ones.

    >>> did_you_mean(["widht"], ["width", "depth"])
    "did you mean 'width'?"
    """
    valid = sorted({str(v) for v in valid})
    unknown = [str(u) for u in unknown]
    near = {u: difflib.get_close_matches(u, valid, n=1) for u in unknown}
    if unknown and all(near.values()):
        pairs = [
            repr(near[u][0]) + (f" for {shown(u)}" if len(unknown) > 1 else "") for u in unknown
        ]
        return f"did you mean {' and '.join(pairs)}?"
    hint = "; ".join(f"did you mean {near[u][0]!r} for {shown(u)}?" for u in unknown if near[u])
    return f"use some of {valid}" + (f" ({hint})" if hint else "")


def unknown_names(what: str, unknown: Iterable[str], valid: Iterable[str]) -> str:
    """``unknown <what>(s) [...]; fix: did you mean ...?`` (one line)."""
    unknown = sorted(str(u) for u in unknown)
    listed = "[" + ", ".join(shown(u) for u in unknown) + "]"
    return f"unknown {what}(s) {listed}; fix: {did_you_mean(unknown, valid)}"


def shown(value: Any, limit: int = 60) -> str:
    """``repr(value)`` on one line and at most ``limit`` characters."""
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - e.g. an int too large to print
        text = f"<{type(value).__name__}>"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
