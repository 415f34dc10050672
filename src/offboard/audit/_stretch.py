"""A stretch of the log read whole: its bytes, where each line starts, its batches proven canonical."""

from __future__ import annotations

from array import array
from itertools import accumulate, repeat
from operator import add
from pathlib import Path
from typing import Any

from . import _entry
from ._entry import fast_parse_batch, fast_parse_span
from ._merkle import leaf_hashes

__all__ = ["Stretch", "read_stretch"]


class Stretch:
    """Whole lines of ``entries.jsonl`` read from byte ``begin``: ``data``, and ``starts``, each line's
    file offset and one past the last (an ``array("Q")``).

    With the C extension (``_entry.NATIVE``) no bytes object is made per line: the leaf hashes, the
    canonical proof and the arrays msgspec decodes are cut from ``data`` by ``starts``, and lines are
    split out only for a batch that goes line by line. ``plain()`` is the same stretch read with the
    standard library alone (the reference path)."""

    __slots__ = ("data", "begin", "count", "native", "_starts", "_lines")

    def __init__(self, data: bytes, begin: int, native: bool = True):
        if data and data[-1:] != b"\n":
            raise ValueError("a stretch ends with a line feed")
        self.data, self.begin = data, begin
        self.native = native and _entry.NATIVE
        self._starts: array[int] | None = None
        self._lines: list[bytes] | None = None
        # With the extension the line offsets are found now (one memchr per line); without it,
        # counting is enough until they are asked for.
        self.count = len(self.starts) - 1 if self.native else data.count(b"\n")

    def __len__(self) -> int:
        return self.count

    @property
    def starts(self) -> array[int]:
        """Each line's file offset, and one past the last."""
        if self._starts is None:
            self._starts = array("Q")
            if self.native:
                self._starts.frombytes(_entry._native.line_starts(self.data, self.begin))
            else:
                sizes = map(add, map(len, self._split()), repeat(1))  # each line and its LF
                self._starts.extend(accumulate(sizes, initial=self.begin))
        return self._starts

    def _split(self) -> list[bytes]:
        if self._lines is None:
            self._lines = self.data.split(b"\n")
            self._lines.pop()
        return self._lines

    def plain(self) -> Stretch:
        """This stretch without the C extension."""
        return self if not self.native else Stretch(self.data, self.begin, native=False)

    def lines(self, start: int = 0, stop: int | None = None) -> list[bytes]:
        """Lines ``start``..``stop - 1`` (without their LF)."""
        if not self.native:
            return self._split()[start:stop]
        stop = len(self) if stop is None else min(stop, len(self))
        if start >= stop:
            return []
        return self.data[self.starts[start] - self.begin : self.starts[stop] - self.begin - 1].split(b"\n")

    def leaf_hashes(self) -> bytes:
        """``leaf_hash`` of every line, 32 bytes each."""
        if self.native:
            return bytes(_entry._native.span_leaf_hashes(self.data, self.starts))
        return leaf_hashes(self._split(), accelerated=False)

    def proven(self, start: int, stop: int) -> list[Any] | None:
        """The entries of lines ``start``..``stop - 1`` if proven canonical at once, else None."""
        if self.native:
            return fast_parse_span(self.data, self.starts, start, stop)
        return fast_parse_batch(self.lines(start, stop))


def read_stretch(path: Path, begin: int, end: int) -> Stretch:
    """The lines in bytes ``begin``..``end`` (``end`` just after a newline)."""
    with open(path, "rb") as f:
        f.seek(begin)
        data = f.read(end - begin)
    if len(data) != end - begin or (data and data[-1:] != b"\n"):
        raise OSError(f"{path} changed while it was being verified")
    return Stretch(data, begin)
