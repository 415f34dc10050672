"""\"Did you mean\": the nearest known names to a mistyped one."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["nearest", "did_you_mean"]


def nearest(word: str, known: Iterable[str], n: int = 3) -> list[str]:
    """Up to ``n`` known names close to ``word`` (case-insensitive), closest first."""
    names = {k.lower(): k for k in known if k}
    close = difflib.get_close_matches(word.lower(), list(names), n=n, cutoff=0.6)
    return [names[c] for c in close]


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """`` Did you mean 'x'?`` (with a leading space), or an empty string when nothing is close."""
    close = nearest(word, known)
    if not close:
        return ""
    return " Did you mean " + " or ".join(repr(c) for c in close) + "?"
