"""The parallel verify: the same report however the log is cut into stretches; the float screen never misses."""

from __future__ import annotations

import json
import math
import re

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offboard.audit import _verify, verify_log
from offboard.audit._entry import _maybe_float, fast_parse
from offboard.audit._merkle import leaf_hash

PEOPLE = ("p-alice", "p-bob", "p-carol", "p-dan")


@pytest.fixture
def big_log(audit_home, audit_kit):
    """Twelve interleaved cases, a checkpoint after each, some entries out of time order."""
    directory = audit_home / "audit"
    with audit_kit.open_log(directory) as log:
        for i in range(12):
            audit_kit.write_case(
                log,
                PEOPLE[i % 4],
                f"case-{i}",
                systems=("entra", "github", "slack")[: 1 + i % 3],
                results={"slack": "failed"} if i == 5 else None,
                close=i != 7,
            )
            log.checkpoint()
    return directory


def reports(directory, **options) -> list[dict]:
    out = []
    for processes in (1, 2, 3, 5):
        report = verify_log(directory, processes=processes, **options).as_dict()
        out.append(report)
    return out


def lines_of(directory):
    return (directory / "entries.jsonl").read_bytes().splitlines()


def write(directory, lines, fix_cache=True):
    (directory / "entries.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))
    if fix_cache:
        (directory / "leafhashes.bin").write_bytes(b"".join(leaf_hash(line) for line in lines))


def test_the_log_is_really_cut_into_stretches(big_log, monkeypatch):
    started = []
    real = _verify._Workers

    def spy(path, ranges):
        started.append(len(ranges))
        return real(path, ranges)

    monkeypatch.setattr(_verify, "_Workers", spy)
    report = verify_log(big_log, processes=3, sla_seconds=60)
    assert started == [3]
    assert report.exit_code == 2  # case-5 failed on slack, case-7 never closed, the SLA of 60 s missed


def test_more_bad_entries_than_listed_same_report_at_every_cut(big_log):
    lines = lines_of(big_log)
    write(big_log, [line.replace(b'"v":1', b'"v":2') for line in lines] * 3)  # 3 x 38 entries, all bad
    first, *others = reports(big_log)
    assert first["exit_code"] == 1
    assert first["problems"][_verify.MAX_LISTED]["what"].startswith("... and ")
    assert all(other == first for other in others)


def test_untouched_log_same_report_at_every_cut(big_log):
    first, *others = reports(big_log, sla_seconds=3600)
    assert first["exit_code"] == 2 and first["problems"]
    assert all(other == first for other in others)


MUTATIONS = ["delete", "swap", "duplicate", "retime_back", "garbage", "torn", "cache", "person_prev", "float"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutations=st.lists(st.tuples(st.sampled_from(MUTATIONS), st.integers(0, 10**6)), min_size=1, max_size=4))
def test_tampered_logs_same_report_at_every_cut(big_log, tmp_path_factory, mutations):
    directory = tmp_path_factory.mktemp("log") / "audit"
    import shutil

    shutil.copytree(big_log, directory)
    lines = lines_of(directory)
    fix_cache, torn = True, b""
    for kind, at in mutations:
        i = at % len(lines)
        if kind == "delete":
            del lines[i]
        elif kind == "swap" and i + 1 < len(lines):
            lines[i], lines[i + 1] = lines[i + 1], lines[i]
        elif kind == "duplicate":
            lines.insert(i, lines[i])
        elif kind == "retime_back":  # an hour earlier: a time-order finding, whichever stretch it lands in
            lines[i] = re.sub(
                rb'"time":"(\d{4}-\d\d-\d\dT)(\d\d)',
                lambda m: b'"time":"' + m[1] + b"%02d" % ((int(m[2]) + 23) % 24),
                lines[i],
                count=1,
            )
        elif kind == "garbage":
            lines[i] = b'{"not": "canonical"}'
        elif kind == "torn":
            torn = b'{"half'
        elif kind == "cache":
            fix_cache = False
        elif kind == "person_prev":
            lines[i] = lines[i].replace(b'"person_prev":null', b'"person_prev":0', 1)
        elif kind == "float":
            lines[i] = lines[i].replace(b'"attempts":1', b'"attempts":1.0', 1)
    write(directory, lines, fix_cache)
    if torn:
        with open(directory / "entries.jsonl", "ab") as f:
            f.write(torn)
    first, *others = reports(directory, sla_seconds=3600)
    assert all(other == first for other in others), json.dumps([first, others], indent=1)[:4000]


finite = st.floats(allow_nan=False, allow_infinity=False)
values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=6) | finite,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=10,
)


def _has_float(value) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_float(v) for v in value)
    return False


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=6), values, max_size=5))
def test_the_float_screen_never_misses_a_float(obj):
    line = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    if _has_float(obj):
        assert _maybe_float(line), line
        assert fast_parse(line) is None


@pytest.mark.parametrize("number", [1.5, -1.5, 1e16, -1e16, 1e-7, -1.5e-7, 1.5e300, 0.0, -0.0, math.pi, 5e-324])
@pytest.mark.parametrize(
    "shape", ['{"a":%s}', '{"a":[%s]}', '{"a":[1,%s]}', '{"a":[true,%s,false]}', '{"a":{"b":%s},"c":true}']
)
def test_the_float_screen_on_every_position(number, shape):
    line = (shape % orjson.dumps(number).decode()).encode()
    assert _maybe_float(line)
