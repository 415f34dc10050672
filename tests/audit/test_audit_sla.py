"""Durations: the one parser (config/_durations) and the audit's SLA in seconds over it."""

from __future__ import annotations

from datetime import timedelta

import pytest

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
