"""Durations: the one parser (config/_durations) and the audit's SLA in seconds over it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from offboard.audit._cases import sla_seconds
from offboard.config._durations import parse_duration, parse_offset


@pytest.mark.parametrize(
    ("text", "seconds"), [("24h", 86400), ("4h", 14400), ("90m", 5400), ("2d", 172800), ("3600s", 3600), ("3600", 3600)]
)
def test_sla_in_seconds(text, seconds):
    assert sla_seconds(text) == seconds


@pytest.mark.parametrize("text", ["soon", "0", "0h", "-4h", "", "1.5h"])
def test_sla_refused(text):
    with pytest.raises(ValueError, match="is not a duration"):
        sla_seconds(text)


def test_configuration_durations_need_a_unit():
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration("0s") == timedelta(0)
    with pytest.raises(ValueError, match="'30' is not a duration such as 30d, 12h or 15m"):
        parse_duration("30")


def test_day_offsets():
    assert parse_offset("-2d") == timedelta(days=-2) and parse_offset("+1w") == timedelta(days=7)
    with pytest.raises(ValueError, match="not a day offset"):
        parse_offset("2h")


# CaseRecord.findings takes a one-pass shortcut for a clean case (CaseRecord._clean); it must never hide
# what the full check (CaseRecord._findings) finds.
_times = st.sampled_from(
    [
        "2026-01-01T00:00:00.000Z",
        "2026-01-01T00:00:30.000Z",
        "2026-01-01T02:00:00.000Z",
        "2026-01-01T00:00:00Z",
        "yesterday",
        None,
        5,
    ]
)
_results = st.sampled_from(["verified", "failed", "skipped", "unverified", "waiting", "undone", None, 3])


@settings(max_examples=2000, deadline=None)
@given(
    plan=st.lists(st.sampled_from(["a", "b", "c"]), max_size=3, unique=True),
    follow=st.booleans(),  # an action per planned item, verified 30 s after termination (most cases look so)
    acted=st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d"]), _results, _times), max_size=3),
    opened=st.booleans(),
    closed=st.sampled_from([None, "complete", "complete", "incomplete", "cancelled", "partial", 7]),
    counts=st.sampled_from(["right", "off", "missing", "not a dict"]),
    elapsed=st.sampled_from(["right", "off", "missing", "text"]),
    termination=st.one_of(st.just("2026-01-01T00:00:00.000Z"), _times),
    undone=st.sampled_from([None, None, None, [], ["x"]]),
    sla=st.sampled_from([None, 10, 3600, 86400]),
)
def test_the_clean_shortcut_agrees_with_the_full_check(
    plan, follow, acted, opened, closed, counts, elapsed, termination, undone, sla
):
    from offboard.audit._cases import CaseBook

    def account(name):
        return {"id": f"id-{name}", "name": name}

    book = CaseBook()
    person = {"id": "p-1"}
    if opened:
        items = [{"system": "s", "account": account(n), "kind": "disable_account"} for n in plan]
        book.add({"type": "case_opened", "case": "c", "person": person, "plan": items, "termination_at": termination})
    if follow:
        acted = [(name, "verified", "2026-01-01T00:00:30.000Z") for name in plan] + acted
    for name, result, responded in acted:
        book.add(
            {
                "type": "action",
                "case": "c",
                "person": person,
                "system": "s",
                "account": account(name),
                "kind": "disable_account",
                "result": result,
                "responded_at": responded,
            }
        )
    if undone is not None:
        book.add({"type": "case_undone", "case": "c", "actor": "ann", "failed": undone})
    if closed is not None:
        record = book.cases.get("c")
        true_counts = record.counts() if record else {}
        claimed = {
            "right": true_counts,
            "off": {**true_counts, "verified": 99},
            "missing": None,
            "not a dict": "3",
        }[counts]
        entry = {"type": "case_closed", "case": "c", "person": person, "status": closed, "counts": claimed}
        book.add({k: v for k, v in entry.items() if v is not None})
        record = book.cases["c"]
        ms = record.elapsed_ms()
        if elapsed != "missing":
            entry["elapsed_ms"] = {"right": ms, "off": (ms or 0) + 5000, "text": "5"}[elapsed]
        record.closed = {k: v for k, v in entry.items() if v is not None}
    assume("c" in book.cases)
    record = book.cases["c"]
    assert record.findings(sla) == record._findings(sla)
    if record._clean(sla):
        assert record._findings(sla) == []
