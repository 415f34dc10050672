"""RFC 6962 / RFC 9162 Merkle trees: hashes, roots, inclusion and consistency proofs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from hashlib import sha256
from typing import Any

__all__ = [
    "EMPTY_ROOT",
    "leaf_hash",
    "leaf_hashes",
    "node_hash",
    "CompactRange",
    "Subtrees",
    "Tree",
    "root_of",
    "verify_inclusion",
    "verify_consistency",
]

EMPTY_ROOT = sha256(b"").digest()

_native: Any
try:  # the C extension (hatch_build.py): the same hashes without a Python call per hash
    from . import _native  # type: ignore[attr-defined,no-redef]
except ImportError:  # pragma: no cover - depends on the build
    _native = None


def leaf_hash(data: bytes) -> bytes:
    """The leaf hash ``SHA-256(0x00 || data)``."""
    return sha256(b"\x00" + data).digest()


def leaf_hashes(lines: list[bytes], accelerated: bool = True) -> bytes:
    """``leaf_hash`` of each line, 32 bytes each (``accelerated=False``: with hashlib alone)."""
    if _native is not None and accelerated:
        return bytes(_native.leaf_hashes(lines))
    sha = sha256
    return b"".join([sha(b"\x00" + line).digest() for line in lines])


def _node_hashes(level: bytes, skip: int, pairs: int, accelerated: bool) -> bytes:
    """``node_hash`` of ``pairs`` pairs of hashes in ``level`` from byte ``skip``, 32 bytes each."""
    if _native is not None and accelerated:
        return bytes(_native.node_hashes(level, skip, pairs))
    sha = sha256
    return b"".join([sha(b"\x01" + level[i : i + 64]).digest() for i in range(skip, skip + 64 * pairs, 64)])


def node_hash(left: bytes, right: bytes) -> bytes:
    """The interior node hash ``SHA-256(0x01 || left || right)``."""
    return sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class CompactRange:
    """The right edge of a growing tree: the root at every size with O(log n) memory."""

    __slots__ = ("size", "_stack")

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[bytes] = []

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash."""
        n, stack, h = self.size, self._stack, leaf
        while n & 1:
            h = sha256(b"\x01" + stack.pop() + h).digest()
            n >>= 1
        stack.append(h)
        self.size += 1

    def append_subtree(self, level: int, node: bytes) -> None:
        """Add the root of a perfect subtree of ``2**level`` leaves (the size must be a multiple of it)."""
        if self.size & ((1 << level) - 1):
            raise ValueError(f"a subtree of 2**{level} leaves cannot start at leaf {self.size}")
        n, stack, h = self.size >> level, self._stack, node
        while n & 1:
            h = sha256(b"\x01" + stack.pop() + h).digest()
            n >>= 1
        stack.append(h)
        self.size += 1 << level

    def copy(self) -> CompactRange:
        """An independent copy."""
        other = CompactRange()
        other.size, other._stack = self.size, list(self._stack)
        return other

    def extend(self, leaves: Iterable[bytes]) -> None:
        """Add many leaf hashes."""
        for leaf in leaves:
            self.append(leaf)

    def root(self) -> bytes:
        """The RFC 6962 root of the leaves added so far."""
        stack = self._stack
        if not stack:
            return EMPTY_ROOT
        r = stack[-1]
        for h in reversed(stack[:-1]):
            r = sha256(b"\x01" + h + r).digest()
        return r


def root_of(leaves: Sequence[bytes]) -> bytes:
    """The root of a list of leaf hashes."""
    cr = CompactRange()
    cr.extend(leaves)
    return cr.root()


class Subtrees:
    """Every perfect, aligned subtree inside leaves ``first``.. of a tree, computed level by level.

    Level ``k`` holds, 32 bytes each, the subtrees of ``2**k`` leaves that start at a multiple of
    ``2**k`` at or after ``first`` and end at or before the last leaf given. A stretch of the log
    is then, up to any size, a few of these (``cover``), which a compact range of the entries
    before it takes in (``CompactRange.append_subtree``). One pass per level in a comprehension
    instead of a loop per leaf: the same hashes (RFC 9162 section 2.1.1), in bulk."""

    __slots__ = ("first", "end", "_levels", "_starts")

    def __init__(self, first: int, leaf_hashes: bytes, accelerated: bool = True):
        if len(leaf_hashes) % 32:
            raise ValueError("leaf hashes must be 32 bytes each")
        self.first = first
        self.end = first + len(leaf_hashes) // 32
        self._levels = [leaf_hashes]
        self._starts = [first]  # per level, the index (in subtrees of that level) of its first subtree
        level, start = leaf_hashes, first
        while True:
            up = (start + 1) >> 1  # the first whole parent: ceil(start / 2)
            skip = (2 * up - start) * 32  # a lone left child is not a parent's
            pairs = (len(level) - skip) // 64
            if pairs <= 0:
                break
            level = _node_hashes(level, skip, pairs, accelerated)
            start = up
            self._levels.append(level)
            self._starts.append(start)

    def cover(self, end: int) -> list[tuple[int, bytes]]:
        """Leaves ``first``..``end - 1`` as (level, hash) of aligned subtrees, left to right, largest first."""
        if not self.first <= end <= self.end:
            raise ValueError(f"size {end} is outside leaves {self.first}..{self.end}")
        out: list[tuple[int, bytes]] = []
        pos, top = self.first, len(self._levels) - 1
        while pos < end:
            k = min(top, (pos & -pos).bit_length() - 1) if pos else top
            while pos + (1 << k) > end:
                k -= 1
            at = ((pos >> k) - self._starts[k]) * 32
            out.append((k, self._levels[k][at : at + 32]))
            pos += 1 << k
        return out


class Tree:
    """Every perfect subtree of a list of leaf hashes: roots and proofs at any size in O(log n)."""

    def __init__(self, leaf_hashes: bytes | Sequence[bytes]):
        level = leaf_hashes if isinstance(leaf_hashes, (bytes, bytearray)) else b"".join(leaf_hashes)
        if len(level) % 32:
            raise ValueError("leaf hashes must be 32 bytes each")
        self.size = len(level) // 32
        self._levels = [bytes(level)]
        while len(level) >= 64:
            level = b"".join(sha256(b"\x01" + level[i : i + 64]).digest() for i in range(0, len(level) - 63, 64))
            self._levels.append(level)

    def leaf(self, index: int) -> bytes:
        """The leaf hash at ``index``."""
        return self._levels[0][index * 32 : index * 32 + 32]

    def _subtree(self, start: int, end: int) -> bytes:
        n = end - start
        if n & (n - 1) == 0 and start % n == 0:
            level = n.bit_length() - 1
            offset = (start >> level) * 32
            return self._levels[level][offset : offset + 32]
        k = _split(n)
        return node_hash(self._subtree(start, start + k), self._subtree(start + k, end))

    def _check(self, size: int) -> None:
        if not 0 <= size <= self.size:
            raise ValueError(f"tree size {size} is outside 0..{self.size}")

    def root(self, size: int | None = None) -> bytes:
        """The root at ``size`` (default: all leaves)."""
        size = self.size if size is None else size
        self._check(size)
        return EMPTY_ROOT if size == 0 else self._subtree(0, size)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 9162 PATH(index, D[0:size]): sibling hashes from the leaf up."""
        self._check(size)
        if not 0 <= index < size:
            raise ValueError(f"index {index} is not below tree size {size}")
        path: list[bytes] = []
        start, end = 0, size
        while end - start > 1:
            k = _split(end - start)
            if index < start + k:
                path.append(self._subtree(start + k, end))
                end = start + k
            else:
                path.append(self._subtree(start, start + k))
                start += k
        path.reverse()
        return path

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        """RFC 9162 PROOF(first, D[0:second]); empty when first is 0 or equals second."""
        self._check(second)
        if not 0 <= first <= second:
            raise ValueError(f"cannot prove consistency from size {first} to the smaller size {second}")
        if first == 0 or first == second:
            return []
        proof: list[bytes] = []
        m, start, end, complete = first, 0, second, True
        while True:
            n = end - start
            if m == n:
                if not complete:
                    proof.append(self._subtree(start, end))
                break
            k = _split(n)
            if m <= k:
                proof.append(self._subtree(start + k, end))
                end = start + k
            else:
                proof.append(self._subtree(start, start + k))
                start, m, complete = start + k, m - k, False
        proof.reverse()
        return proof


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2, with ``index < size`` and an exactly consumed path."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if len(p) != 32 or sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 section 2.1.4.2, plus the edge cases first == 0 and first == second."""
    if not 0 <= first <= second or any(len(p) != 32 for p in proof):
        return False
    if first == 0:
        return not proof and first_root == EMPTY_ROOT
    if first == second:
        return not proof and first_root == second_root
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root
