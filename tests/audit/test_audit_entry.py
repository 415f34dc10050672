"""Canonical entries: the strict parser, and the optional orjson fast path agreeing with it."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offboard.audit._entry import EntryError, _orjson, canonical, fast_parse, parse_entry

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


@pytest.mark.skipif(_orjson is None, reason="orjson not installed")
def test_orjson_encoder_matches_stdlib_for_every_bmp_code_point():
    stdlib = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
    for cp in list(range(0, 0xD800)) + list(range(0xE000, 0x10000, 7)) + list(range(0x10000, 0x110000, 4099)):
        obj = {"k": chr(cp), chr(cp): [chr(cp), 1]}
        assert _orjson.dumps(obj, option=_orjson.OPT_SORT_KEYS) == stdlib(obj).encode(), hex(cp)
