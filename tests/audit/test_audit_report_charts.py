"""The report's charts: the numbers drawn equal the numbers in the tables, and the pages stay valid HTML.

The report is built from a real signed log of 45 people across five systems (some late, some
incomplete, open or undone; written by ``benchmarks.bench_report.write_period``), rendered, and
read back with html5lib: the SVGs' ``data-*`` attributes on one side, the tables' text (and the
per-system and checklist tables' own times) on the other.
"""

from __future__ import annotations

import re
import statistics
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser

import html5lib
import pytest

from benchmarks.bench_report import SYSTEMS, write_period
from offboard.audit import _charts
from offboard.audit._report import Period, build_report, duration
from offboard.audit._report_html import render_person, render_report

END = datetime(2026, 3, 31, 23, 0, tzinfo=UTC)
PERIOD = Period(END.date() - timedelta(days=42), END.date())
SLA = 24 * 3600


def parse(html: str) -> ET.Element:
    """html5lib in strict mode: any HTML parse error fails the test; namespaces stripped from tags."""
    root = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(html)
    for el in root.iter():
        if isinstance(el.tag, str) and "}" in el.tag:
            el.tag = el.tag.split("}", 1)[1]
    return root


def text(el: ET.Element | None) -> str:
    return " ".join("".join(el.itertext()).split()) if el is not None else ""


def by_class(root: ET.Element, tag: str, cls: str) -> list[ET.Element]:
    return [el for el in root.iter(tag) if cls in (el.get("class") or "").split()]


def table_rows(table: ET.Element) -> list[list[ET.Element]]:
    return [list(tr.findall("td")) for tr in table.iter("tr") if tr.findall("td")]


def table_by_caption(root: ET.Element, start: str) -> ET.Element:
    found = [t for t in root.iter("table") if text(t.find("caption")).startswith(start)]
    assert found, f"no table captioned {start!r}"
    return found[0]


def moment(cell: ET.Element) -> datetime | None:
    """The UTC time a cell shows (its ``<time datetime>``), or None for a dash."""
    found = cell.find(".//time")
    return datetime.fromisoformat(found.get("datetime").replace("Z", "+00:00")) if found is not None else None


def ms(later: datetime, start: datetime) -> int:
    return int((later - start).total_seconds() * 1000)


@pytest.fixture(scope="module")
def period_report(tmp_path_factory):
    directory = tmp_path_factory.mktemp("charts") / "audit"
    write_period(directory, 45, end=END)
    built = build_report(directory, period=PERIOD, sla_seconds=SLA, now=END)
    html = render_report(built)
    return built, html, parse(html)


def summary(root: ET.Element) -> dict[str, str]:
    table = by_class(root, "table", "summary")[0]
    return {text(tr.find("th")): text(tr.find("td")) for tr in table.iter("tr")}


def people(root: ET.Element) -> list[dict[str, object]]:
    """The people table: per row the termination, time-to-revoke text and deadline tag."""
    table = by_class(root, "table", "people")[0]
    head = [text(th) for th in table.iter("th")]
    rows = []
    for cells in table_rows(table):
        row = dict(zip(head, cells))
        rows.append(
            {
                "termination": moment(row["Termination"]),
                "ttr": text(row["Time to revoke"]),
                "deadline": text(row["Deadline"].find(".//span[@class='tag good']"))
                or text(row["Deadline"].find(".//span[@class='tag bad']"))
                or text(row["Deadline"].find(".//span[@class='tag none']")),
            }
        )
    return rows


def figure(root: ET.Element, kind: str) -> tuple[ET.Element, ET.Element, ET.Element]:
    """A figure's SVG, its table of numbers and its caption."""
    fig = [f for f in root.iter("figure") if f.get("data-figure") == kind][0]
    return fig.find(".//svg"), fig.find(".//table"), fig.find("figcaption")


def test_the_report_has_every_chart_with_a_text_alternative(period_report):
    built, html, root = period_report
    assert len(built.people) == 45 and {i.system for c in built.cases for i in c.items} == set(SYSTEMS)
    kinds = [f.get("data-figure") for f in root.iter("figure")]
    assert kinds.count("distribution") == kinds.count("systems") == kinds.count("weeks") == 1
    assert kinds.count("timeline") == 45  # one per case, in each person's section
    for svg in root.iter("svg"):
        label = svg.get("aria-label")
        assert svg.get("role") == "img" and label and text(svg.find("title")) == label
        assert svg.get("id") is None and not list(svg.iter("script")) and not list(svg.iter("image"))
    for fig in root.iter("figure"):
        assert text(fig.find("figcaption")) == fig.find(".//svg").get("aria-label")
        assert text(fig.find(".//table/caption")) == "The numbers drawn"
    assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    # grayscale: every fill and stroke is a gray (r = g = b), so nothing is told by hue alone
    colours = set(re.findall(r'(?:fill|stroke)="(#[0-9a-f]{6})"', html))
    assert colours and all(c[1:3] == c[3:5] == c[5:7] for c in colours), colours


def test_the_time_to_revoke_chart_draws_the_summary_numbers(period_report):
    built, html, root = period_report
    svg, numbers, caption = figure(root, "distribution")
    s = summary(root)
    counted = [k for k in s if k.startswith("Median time to revoke")][0]
    assert svg.get("data-count") == re.search(r"over (\d+) fully", counted).group(1)
    assert duration(int(svg.get("data-median-ms"))) == s[counted]
    assert s["Worst time to revoke"].startswith(duration(int(svg.get("data-worst-ms"))) + " (case")
    assert int(svg.get("data-sla-ms")) == SLA * 1000
    bins = [g for g in svg.iter("g") if g.get("class") == "bin"]
    assert sum(int(g.get("data-count")) for g in bins) == int(svg.get("data-count"))
    assert sum(int(g.get("data-over")) for g in bins) == int(svg.get("data-over"))
    # the same numbers in the table beside it
    rows = [[text(c) for c in r] for r in table_rows(numbers)]
    drawn = [
        [
            f"{_charts.short(int(g.get('data-from-ms')))} to {_charts.short(int(g.get('data-to-ms')))}",
            g.get("data-count"),
            g.get("data-over"),
        ]
        for g in bins
    ]
    assert rows[:-2] == drawn
    assert rows[-2] == ["median", s[counted], ""] and rows[-1][1] == duration(int(svg.get("data-worst-ms")))
    # and in the people table: the revoked rows marked over the deadline
    timed = [p for p in people(root) if p["ttr"] != "not every account revoked"]
    assert len(timed) == int(svg.get("data-count"))
    assert sum(p["deadline"] == "OVER DEADLINE" for p in timed) == int(svg.get("data-over")) > 0
    assert f"median {s[counted]}" in text(caption)


def case_sections(root: ET.Element) -> list[dict[str, object]]:
    """Each case's facts, per-system answers, checklist and timeline figure, read from its section."""
    out = []
    for block in by_class(root, "div", "case"):
        facts = {text(dt): dd for dt, dd in zip(block.iter("dt"), block.iter("dd"))}
        systems: dict[str, list[datetime | None]] = {}
        timeline = table_by_caption(block, "Per-system timeline")
        for cells in table_rows(timeline):
            verified = text(cells[5]).startswith("verified")
            systems.setdefault(text(cells[0]), []).append(moment(cells[4]) if verified else None)
        tasks = {}
        checklist = [t for t in block.iter("table") if text(t.find("caption")).startswith("Checklist")]
        for cells in table_rows(checklist[0]) if checklist else []:
            tasks[text(cells[0])] = (moment(cells[3]), text(cells[4]), moment(cells[6]))
        out.append(
            {
                "termination": moment(facts["Termination"]),
                "status": text(facts["Status"]),
                "systems": systems,
                "tasks": tasks,
                "figure": [f for f in block.iter("figure") if f.get("data-figure") == "timeline"][0],
            }
        )
    return out


def test_the_per_system_bars_equal_the_per_system_timelines(period_report):
    built, html, root = period_report
    svg, numbers, _ = figure(root, "systems")
    # recomputed from every case's per-system timeline table (the times the systems answered)
    times: dict[str, list[int]] = {}
    cases: dict[str, int] = {}
    over: dict[str, int] = {}
    for case in case_sections(root):
        if case["status"].startswith("cancelled"):
            continue
        start = case["termination"]
        for system, answered in case["systems"].items():
            cases[system] = cases.get(system, 0) + 1
            if all(answered):
                took = max(ms(a, start) for a in answered)
                times.setdefault(system, []).append(took)
                over[system] = over.get(system, 0) + (took > SLA * 1000)
            elif END > start + timedelta(seconds=SLA):
                over[system] = over.get(system, 0) + 1
    groups = [g for g in svg.iter("g") if g.get("class") == "system"]
    assert {g.get("data-system") for g in groups} == set(SYSTEMS)
    worst_first = [int(g.get("data-worst-ms")) for g in groups]
    assert worst_first == sorted(worst_first, reverse=True) and groups[0].get("data-system") == "github"
    rows = {text(r[0]): [text(c) for c in r[1:]] for r in table_rows(numbers)}
    for g in groups:
        system = g.get("data-system")
        assert int(g.get("data-cases")) == cases[system]
        assert int(g.get("data-revoked")) == len(times[system])
        assert int(g.get("data-median-ms")) == int(statistics.median(times[system]))
        assert int(g.get("data-worst-ms")) == max(times[system])
        assert int(g.get("data-over")) == over[system]
        assert rows[system] == [
            g.get("data-cases"),
            g.get("data-revoked"),
            duration(int(g.get("data-median-ms"))),
            duration(int(g.get("data-worst-ms"))),
            g.get("data-over"),
        ]
    assert over["github"] >= 5 and over["slack"] >= 4  # the late and the incomplete cases are drawn as such


def test_the_weekly_chart_equals_the_people_table(period_report):
    built, html, root = period_report
    svg, numbers, _ = figure(root, "weeks")
    weeks = [g for g in svg.iter("g") if g.get("class") == "week"]
    assert len(weeks) == int(svg.get("data-weeks")) == 7  # 2026-02-16 .. 2026-03-30, Mondays
    assert sum(int(g.get("data-cases")) for g in weeks) == int(summary(root)["Cases"]) == 45
    rows = people(root)
    for g, cells in zip(weeks, table_rows(numbers)):
        monday = date.fromisoformat(g.get("data-week"))
        assert monday.weekday() == 0
        mine = [p for p in rows if monday <= p["termination"].date() < monday + timedelta(days=7)]
        within = sum(p["deadline"] == "within deadline" for p in mine)
        late = sum(p["deadline"] == "OVER DEADLINE" for p in mine)
        assert (int(g.get("data-cases")), int(g.get("data-within")), int(g.get("data-over"))) == (
            len(mine),
            within,
            late,
        )
        share = g.get("data-share")
        assert share == (f"{within / (within + late):.4f}" if within + late else "")
        shown = [text(c) for c in cells]
        assert shown[:4] == [g.get("data-week"), g.get("data-cases"), g.get("data-within"), g.get("data-over")]
        assert shown[4] == (f"{float(share):.0%}" if share else "\u2014")


def test_each_timeline_equals_its_cases_tables(period_report):
    built, html, root = period_report
    checked_tasks = 0
    for case in case_sections(root):
        svg = case["figure"].find(".//svg")
        numbers = {text(r[0]): [text(c) for c in r[1:]] for r in table_rows(case["figure"].find(".//table"))}
        start = case["termination"]
        lanes = {g.get("data-lane"): g for g in svg.iter("g") if g.get("class") == "lane"}
        assert set(lanes) == set(case["systems"]) | set(case["tasks"])
        for system, answered in case["systems"].items():
            end = lanes[system].get("data-end-ms")
            expected = str(max(ms(a, start) for a in answered)) if all(answered) else ""
            assert end == expected, (system, end, expected)
            assert numbers[system][2] == (duration(int(end)) if end else "not finished")
            marks = [m for m in lanes[system].iter("g") if m.get("class") == "mark"]
            assert sorted(int(m.get("data-at-ms")) for m in marks if m.get("data-kind") == "revoked") == sorted(
                ms(a, start) for a in answered if a
            )
        for title, (due, status, at) in case["tasks"].items():
            lane = lanes[title]
            marks = {m.get("data-kind"): int(m.get("data-at-ms")) for m in lane.iter("g") if m.get("class") == "mark"}
            assert marks["due"] == ms(due, start) and numbers[title][1] == duration(ms(due, start))
            if status == "done":
                checked_tasks += 1
                assert marks["done"] == int(lane.get("data-end-ms")) == ms(at, start)
                assert numbers[title][2] == duration(ms(at, start))
            else:
                assert "done" not in marks and numbers[title][2] == "not finished"
        assert int(svg.get("data-sla-ms")) == SLA * 1000
    assert checked_tasks > 30


def test_a_person_page_shows_the_same_timeline(period_report):
    built, html, root = period_report
    person = built.people[4]  # late: github answered 30 hours after termination
    from offboard.audit._report_html import Links

    page = render_person(built, person, Links(person=lambda p: f"/p/{p}"))
    mine = [f for f in parse(page).iter("figure") if f.get("data-figure") == "timeline"]
    in_report = by_class(root, "section", "person")[4]
    theirs = [f for f in in_report.iter("figure") if f.get("data-figure") == "timeline"]
    assert len(mine) == 1 and ET.tostring(mine[0]) == ET.tostring(theirs[0])
    assert "OVER DEADLINE" in text(in_report) and mine[0].find(".//svg").get("data-lanes") == "7"


# -- the builders ---------------------------------------------------------------------------


def test_short_durations_and_round_steps():
    assert [_charts.short(v) for v in (0, 999, 45_000, 300_000, 90 * 60_000, 30 * 3_600_000, 3 * 86_400_000)] == [
        "0",
        "999 ms",
        "45 s",
        "5 min",
        "1.5 h",
        "30 h",
        "3 d",
    ]
    assert _charts.step_for(24 * 3_600_000) == 6 * 3_600_000 and _charts.step_for(60_000) == 10_000


def test_bins_put_the_deadline_on_an_edge_and_count_every_value():
    sla = 24 * 3_600_000
    values = [60_000, 7 * 60_000, sla - 1, sla, sla + 1, 30 * 3_600_000]
    bins = _charts.bins_for(values, sla)
    assert sum(b.count for b in bins) == len(values) and sum(b.over for b in bins) == 2
    assert any(b.end_ms == sla for b in bins) and bins[0].start_ms == 0
    assert _charts.bins_for([], sla) == []
    assert sum(b.count for b in _charts.bins_for([-5_000, 1_000], sla)) == 2  # revoked before termination: at 0


def test_names_from_the_log_are_escaped_in_the_charts():
    hostile = '<script>alert("x")</script>&'
    svg = _charts.systems([_charts.SystemBar(hostile, 1, 1, 5, 9, 0)], 10, f"label {hostile}")
    svg += _charts.timeline([_charts.Lane(hostile, 5, [_charts.Mark(5, "revoked", hostile)])], 10, hostile)
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    parse(f"<!DOCTYPE html><html><head><title>t</title></head><body>{svg}</body></html>")


def test_empty_inputs_draw_an_axis_and_say_so(period_report):
    sla = SLA * 1000
    for svg in (
        _charts.distribution([], sla, None, None, "nothing"),
        _charts.systems([], sla, "nothing"),
        _charts.timeline([], sla, "nothing"),
        _charts.weeks([], "nothing"),
    ):
        root = parse(f"<!DOCTYPE html><html><head><title>t</title></head><body>{svg}</body></html>")
        assert root.find(".//svg").get("aria-label") == "nothing"


# -- valid HTML at 0, 1 and 1,000 people ----------------------------------------------------


class Structure(HTMLParser):
    """Every element closed in order (void elements aside), ids unique, every in-page link resolving."""

    VOID = {"meta", "br", "hr", "img", "input", "link", "col", "wbr", "source", "area", "base", "embed"}
    SVG_EMPTY = {"line", "rect", "circle", "path", "polyline"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.ids: set[str] = set()
        self.links: set[str] = set()
        self.problems: list[str] = []

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        if "id" in values:
            if values["id"] in self.ids:
                self.problems.append(f"duplicate id {values['id']}")
            self.ids.add(values["id"])
        if (values.get("href") or "").startswith("#"):
            self.links.add(values["href"][1:])
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag, attrs):
        if tag not in self.SVG_EMPTY:
            self.problems.append(f"self-closed <{tag}/>")

    def handle_endtag(self, tag):
        if not self.open or self.open[-1] != tag:
            self.problems.append(f"</{tag}> closes <{self.open[-1] if self.open else None}>")
            return
        self.open.pop()


def structure(html: str) -> list[str]:
    checker = Structure()
    checker.feed(html)
    checker.close()
    return (
        checker.problems + [f"unclosed {t}" for t in checker.open] + [f"no #{x}" for x in checker.links - checker.ids]
    )


def test_the_checkers_catch_invalid_html():
    with pytest.raises(Exception):  # noqa: B017 - html5lib's ParseError carries no public type of its own
        parse("<!DOCTYPE html><html><head><title>t</title></head><body><table><tr><div>x</div></table></body></html>")
    assert structure('<p id="a"><b></p><a href="#nowhere">x</a><span id="a"></span>')


@pytest.mark.parametrize("count", [0, 1])
def test_small_reports_are_valid_html(tmp_path, count):
    directory = tmp_path / "audit"
    # an empty period still needs a sealed log: its one case lies long before the period
    write_period(directory, max(count, 1), end=END if count else END - timedelta(days=400))
    built = build_report(directory, period=PERIOD, sla_seconds=SLA, now=END)
    assert len(built.people) == count
    html = render_report(built)
    root = parse(html)
    assert structure(html) == []
    kinds = [f.get("data-figure") for f in root.iter("figure")]
    assert kinds == ["distribution", "systems", "weeks"] + ["timeline"] * count


def test_the_45_people_report_is_valid_html(period_report):
    assert structure(period_report[1]) == []  # html5lib (strict) parsed it in the fixture


@pytest.mark.slow
def test_a_report_of_1000_people_is_valid_html(tmp_path):
    directory = tmp_path / "audit"
    write_period(directory, 1000, end=END)
    built = build_report(directory, period=PERIOD, sla_seconds=SLA, now=END)
    html = render_report(built)
    assert len(built.people) == 1000 and html.count('data-figure="timeline"') == 1000
    assert structure(html) == []
    parse(html)  # html5lib, strict: the whole 12 MB page
