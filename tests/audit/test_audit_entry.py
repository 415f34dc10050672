"""Canonical entries: the strict parser, and the optional orjson fast path agreeing with it."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offboard.audit._entry import EntryError, _orjson, canonical, fast_parse, fast_parse_many, parse_entry

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_canonical_roundtrip_and_fast_path_agree(obj):
    line = canonical(obj)
    assert parse_entry(line) == obj
    fast = fast_parse(line)
    assert fast is None or fast == obj
    noisy = json.dumps(obj, ensure_ascii=True).encode()
    if noisy != line:  # any other spelling is rejected by both paths
        assert fast_parse(noisy) is None
        with pytest.raises(EntryError):
            parse_entry(noisy)


@pytest.mark.parametrize(
    "line",
    [
        b'{"a":1.0}',
        b'{"a":[1,2.5]}',
        b'{"a":1e5}',
        b'{"a":-0.0}',
        b'{"a":NaN}',
        b'{"a":1,"a":1}',
        b'{"b":1,"a":2}',
        b'{"a": 1}',
        b'\xef\xbb\xbf{"a":1}',
        b'{"a":1}\r',
        b'{"a":"\\u00e9"}',
        b'{"a":"\\/"}',
        b'{"a":"\xff"}',
        b"[1]",
        b'{"a":"\\ud800"}',
        b'{"a":"\x7f\\u007f"}',
    ],
)
def test_non_canonical_lines_rejected_by_both_paths(line):
    assert fast_parse(line) is None
    with pytest.raises(EntryError):
        parse_entry(line)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.dictionaries(st.text(max_size=8), json_values, max_size=5), min_size=1, max_size=6), st.data())
def test_batch_parse_accepts_exactly_what_each_line_would(objs, data):
    """The batch fast path gives an entry only where the line alone is canonical: with one line spoiled
    (re-spelled, split in two values, merged with its neighbour, or given a float), never that line's value."""
    lines = [canonical(o) for o in objs]
    assert fast_parse_many(lines) in ([None] * len(lines), objs)
    i = data.draw(st.integers(0, len(lines) - 1))
    spoil = data.draw(st.sampled_from(["ascii", "two", "merge", "float"]))
    bad = list(lines)
    if spoil == "ascii":
        bad[i] = json.dumps(objs[i], ensure_ascii=True).encode()
    elif spoil == "two":
        bad[i] = lines[i] + b"," + lines[i]
    elif spoil == "merge" and i + 1 < len(lines):
        bad[i : i + 2] = [lines[i] + b"," + lines[i + 1], b"{}"]
    elif spoil == "float":
        bad[i] = lines[i][:-1] + (b',"zz":1.5}' if lines[i] != b"{}" else b'"zz":1.5}')
    for line, got in zip(bad, fast_parse_many(bad)):
        if got is not None:
            assert fast_parse(line) == got
            assert canonical(got) == line


def test_batch_parse_leaves_suspect_batches_to_the_line_by_line_path():
    lines = [canonical({"seq": n}) for n in range(3)]
    assert fast_parse_many(lines) == [{"seq": 0}, {"seq": 1}, {"seq": 2}]
    assert fast_parse_many([*lines, b'{"seq":9007199254740993}']) == [None] * 4  # a long integer: checked alone
    assert fast_parse_many([*lines, b'{"a":1,"a":1}']) == [None] * 4  # a duplicate key re-encodes differently
    assert fast_parse_many([*lines, b"{}{}"]) == [None] * 4


@pytest.mark.skipif(_orjson is None, reason="orjson not installed")
def test_orjson_encoder_matches_stdlib_for_every_bmp_code_point():
    stdlib = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
    for cp in list(range(0, 0xD800)) + list(range(0xE000, 0x10000, 7)) + list(range(0x10000, 0x110000, 4099)):
        obj = {"k": chr(cp), chr(cp): [chr(cp), 1]}
        assert _orjson.dumps(obj, option=_orjson.OPT_SORT_KEYS) == stdlib(obj).encode(), hex(cp)
