"""\"Did you mean\": the nearest known names to a mistyped one."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["nearest", "did_you_mean"]


def nearest(word: str, known: Iterable[str], n: int = 3) -> list[str]:
    """Up to ``n`` known names close to ``word`` (case-insensitive), closest first."""
    names = {k.lower(): k for k in known if k}
    target = word.lower()
    matcher = difflib.SequenceMatcher()
    matcher.set_seq2(target)
    scored = []
    for name in names:
        matcher.set_seq1(name)
        if matcher.real_quick_ratio() >= 0.6 and matcher.quick_ratio() >= 0.6:
            ratio = matcher.ratio()
            if ratio >= 0.6:
                scored.append((ratio, name))
    scored.sort(key=lambda pair: (-pair[0], pair[1]))
    best = scored[0][0] if scored else 0.0
    # Only the ones about as close as the best: "user1" should not also suggest "user2" and "user0".
    return [names[name] for ratio, name in scored[:n] if ratio >= best - 0.04]


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """`` Did you mean 'x'?`` (with a leading space), or an empty string when nothing is close."""
    close = nearest(word, known)
    if not close:
        return ""
    return " Did you mean " + " or ".join(repr(c) for c in close) + "?"
