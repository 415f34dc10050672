"""RFC 6962/9162 conformance: CT reference roots and paths, proofs, bit flips, edge cases."""

from __future__ import annotations

from hashlib import sha256

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offboard.audit._merkle import (
    EMPTY_ROOT,
    CompactRange,
    Tree,
    leaf_hash,
    node_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)

CT_INPUTS = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_PATHS = [
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]
CT_LEAVES = [leaf_hash(bytes.fromhex(x)) for x in CT_INPUTS]


@pytest.mark.parametrize("size", range(9))
def test_ct_reference_roots(size):
    assert Tree(CT_LEAVES[:size]).root().hex() == CT_ROOTS[size]
    assert root_of(CT_LEAVES[:size]).hex() == CT_ROOTS[size]
    assert Tree(CT_LEAVES).root(size).hex() == CT_ROOTS[size]


def test_empty_root_is_sha256_of_nothing():
    assert EMPTY_ROOT == sha256(b"").digest() == CompactRange().root()


@pytest.mark.parametrize("index,size,path", CT_PATHS)
def test_ct_reference_inclusion_paths(index, size, path):
    tree = Tree(CT_LEAVES)
    assert [p.hex() for p in tree.inclusion_proof(index, size)] == path
    assert verify_inclusion(CT_LEAVES[index], index, size, [bytes.fromhex(p) for p in path], tree.root(size))


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def _leaves(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))), st.data())
def test_every_inclusion_proof_verifies_and_every_bit_flip_fails(size_index, data):
    size, index = size_index
    tree = Tree(_leaves(size))
    proof, root, leaf = tree.inclusion_proof(index, size), tree.root(), tree.leaf(index)
    assert verify_inclusion(leaf, index, size, proof, root)
    bit = data.draw(st.integers(0, 255))
    assert not verify_inclusion(_flip(leaf, bit), index, size, proof, root)
    assert not verify_inclusion(leaf, index, size, proof, _flip(root, bit))
    if proof:
        k = data.draw(st.integers(0, len(proof) - 1))
        bad = list(proof)
        bad[k] = _flip(bad[k], bit)
        assert not verify_inclusion(leaf, index, size, bad, root)
        assert not verify_inclusion(leaf, index, size, proof[:-1], root)
    assert not verify_inclusion(leaf, index, size, proof + [root], root)
    assert not verify_inclusion(leaf, index + size, size, proof, root)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n))), st.data())
def test_every_consistency_proof_verifies_and_every_bit_flip_fails(sizes, data):
    first, second = sizes
    tree = Tree(_leaves(second))
    old, new = tree.root(first), tree.root(second)
    proof = tree.consistency_proof(first, second)
    assert verify_consistency(first, second, old, new, proof)
    bit = data.draw(st.integers(0, 255))
    assert not verify_consistency(first, second, _flip(old, bit), new, proof)
    assert not verify_consistency(first, second, old, _flip(new, bit), proof)
    if proof:
        k = data.draw(st.integers(0, len(proof) - 1))
        bad = list(proof)
        bad[k] = _flip(bad[k], bit)
        assert not verify_consistency(first, second, old, new, bad)
        assert not verify_consistency(first, second, old, new, proof[:-1])
    assert not verify_consistency(first, second, old, new, proof + [new])


def test_consistency_edge_cases():
    tree = Tree(_leaves(13))
    r = tree.root
    # empty proof when first < second
    assert not verify_consistency(5, 13, r(5), r(13), [])
    # first > second
    assert not verify_consistency(13, 5, r(13), r(5), tree.consistency_proof(5, 13))
    with pytest.raises(ValueError):
        tree.consistency_proof(13, 5)
    # first == second: empty proof and equal roots only
    assert verify_consistency(7, 7, r(7), r(7), [])
    assert not verify_consistency(7, 7, r(7), r(8), [])
    assert not verify_consistency(7, 7, r(7), r(7), [r(3)])
    # first == 0: trivially consistent, empty proof, empty root
    assert verify_consistency(0, 13, EMPTY_ROOT, r(13), [])
    assert not verify_consistency(0, 13, r(1), r(13), [])
    assert not verify_consistency(0, 13, EMPTY_ROOT, r(13), [r(1)])
    # first a power of two (the proof omits the old root, the verifier prepends it)
    for first in (1, 2, 4, 8):
        proof = tree.consistency_proof(first, 13)
        assert verify_consistency(first, 13, r(first), r(13), proof)
        assert not verify_consistency(first, 13, r(first), r(13), [r(first)] + proof)


def test_second_preimage_internal_node_as_leaf_fails():
    tree = Tree(_leaves(4))
    left, right = tree.root(2), Tree(_leaves(4)[2:]).root()
    assert node_hash(left, right) == tree.root(4)
    # Presenting the 64 bytes of the internal node as a 2-leaf "tree" of one leaf fails.
    fake_leaf = leaf_hash(left + right)
    assert fake_leaf != tree.root(4)
    assert not verify_inclusion(fake_leaf, 0, 1, [], tree.root(4))
    assert not verify_inclusion(fake_leaf, 0, 2, [tree.root(2)], tree.root(4))


def test_index_and_size_bounds():
    tree = Tree(_leaves(5))
    assert not verify_inclusion(tree.leaf(0), 5, 5, tree.inclusion_proof(4, 5), tree.root())
    assert not verify_inclusion(tree.leaf(0), 0, 0, [], EMPTY_ROOT)
    with pytest.raises(ValueError):
        tree.inclusion_proof(5, 5)
    with pytest.raises(ValueError):
        tree.root(6)


def test_exhaustive_bit_flips_small_trees():
    for size in range(1, 10):
        tree = Tree(_leaves(size))
        root = tree.root()
        for index in range(size):
            proof, leaf = tree.inclusion_proof(index, size), tree.leaf(index)
            for bit in range(256):
                assert not verify_inclusion(_flip(leaf, bit), index, size, proof, root)
                assert not verify_inclusion(leaf, index, size, proof, _flip(root, bit))
                for k in range(len(proof)):
                    bad = list(proof)
                    bad[k] = _flip(bad[k], bit)
                    assert not verify_inclusion(leaf, index, size, bad, root)
        for first in range(1, size):
            proof = tree.consistency_proof(first, size)
            for bit in range(0, 256, 7):
                for k in range(len(proof)):
                    bad = list(proof)
                    bad[k] = _flip(bad[k], bit)
                    assert not verify_consistency(first, size, tree.root(first), root, bad)
