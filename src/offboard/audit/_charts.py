"""Small SVG chart builders for the auditors' report: static, inline, readable in grayscale.

Each builder takes plain numbers and returns one ``<svg>`` element as a string: no scripts, no
external references, no ids (so any number of charts can share a page), an accessible name
(``role="img"``, ``aria-label`` and a ``<title>``), and the numbers it draws as ``data-*``
attributes so a test (or a curious reader of the source) can check them against the tables.
Marks differ by shape, outline and lightness, never by hue alone; every mark also has a text label
or a ``<title>`` shown on hover.

Times are milliseconds on a linear axis that starts at 0 (the termination).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape

__all__ = [
    "Bin",
    "Lane",
    "Mark",
    "SystemBar",
    "Week",
    "bins_for",
    "distribution",
    "short",
    "systems",
    "timeline",
    "weeks",
]

WIDTH = 720
FONT = 12
INK, MID, LIGHT, PAPER = "#111", "#6b6b6b", "#c8c8c8", "#fff"  # distinct in grayscale as they are
SECOND, MINUTE, HOUR, DAY = 1000, 60_000, 3_600_000, 86_400_000
STEPS = (
    [SECOND * n for n in (1, 2, 5, 10, 15, 30)]
    + [MINUTE * n for n in (1, 2, 5, 10, 15, 30)]
    + [HOUR * n for n in (1, 2, 3, 6, 12)]
    + [DAY * n for n in (1, 2, 7, 14, 30, 90, 365)]
)


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _n(value: float) -> str:
    """A coordinate, in whole pixels of the 720-wide view box (finer is invisible and costs bytes)."""
    return str(round(value))


def short(ms: int | float) -> str:
    """A compact duration for axis ticks and labels: ``0``, ``45 s``, ``5 min``, ``6 h``, ``3 d``."""
    ms = int(ms)
    if ms == 0:
        return "0"
    for unit, size in (("d", DAY), ("h", HOUR), ("min", MINUTE), ("s", SECOND)):
        if abs(ms) >= (2 * DAY if unit == "d" else size):  # "30 h", then "2 d", as the report's durations
            value = ms / size
            shown = f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"
            return f"{shown} {unit}"
    return f"{ms} ms"


def step_for(span_ms: float, parts: int = 6) -> int:
    """A round tick step that cuts ``span_ms`` into about ``parts`` pieces."""
    want = max(span_ms, 1) / parts
    return next((s for s in STEPS if s >= want), STEPS[-1] * math.ceil(want / STEPS[-1]))


def _svg(kind: str, height: float, label: str, body: list[str], data: Mapping[str, object]) -> str:
    attrs = "".join(f' data-{k}="{v if isinstance(v, int) else _e(v)}"' for k, v in data.items() if v is not None)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart-{kind}" viewBox="0 0 {WIDTH} {_n(height)}" '
        f'width="{WIDTH}" height="{_n(height)}" role="img" aria-label="{_e(label)}" font-size="{FONT}" '
        f'font-family="system-ui, sans-serif" data-chart="{kind}"{attrs}><title>{_e(label)}</title>'
        + "".join(body)
        + "</svg>"
    )


def _text(x: float, y: float, text: str, anchor: str = "start", extra: str = "", *, safe: bool = False) -> str:
    """A label; ``safe`` for text made here (numbers, durations) that needs no escaping."""
    return f'<text x="{_n(x)}" y="{_n(y)}" text-anchor="{anchor}"{extra}>{text if safe else _e(text)}</text>'


def _axis(x0: float, x1: float, y: float, top: float, end_ms: float, step: int) -> list[str]:
    """A time axis along ``y`` from 0 to ``end_ms`` with light grid lines up to ``top`` (one path each)."""
    grid, ticks, labels = [], [], []
    tick = 0
    while tick <= end_ms:
        x = _n(x0 + (x1 - x0) * tick / end_ms)
        grid.append(f"M{x} {_n(top)}V{_n(y)}")
        ticks.append(f"M{x} {_n(y)}v4")
        labels.append(f'<text x="{x}" y="{_n(y + 16)}" text-anchor="middle">{short(tick)}</text>')
        tick += step
    return [
        f'<path d="{"".join(grid)}" stroke="#e2e2e2"/>',
        f'<path d="M{_n(x0)} {_n(y)}H{_n(x1)}{"".join(ticks)}" stroke="{INK}" fill="none"/>',
        *labels,
    ]


def _deadline(x: float, top: float, bottom: float, label: str) -> list[str]:
    """The deadline: a heavy dashed vertical line, labelled above it."""
    return [
        f'<g class="deadline"><line x1="{_n(x)}" y1="{_n(top)}" x2="{_n(x)}" y2="{_n(bottom)}" stroke="{INK}" '
        f'stroke-width="2" stroke-dasharray="6 4"/>'
        + _text(x, top - 4, label, "middle", ' font-weight="600"', safe=True)
        + "</g>"
    ]


def _end(*values: float | None) -> float:
    """The axis end: the largest value plus a margin, rounded up to a whole tick."""
    top = max([v for v in values if v is not None] + [1])
    step = step_for(top * 1.05)
    return float(math.ceil(top * 1.05 / step) * step)


# -- time to revoke: a histogram ---------------------------------------------------------


@dataclass(frozen=True)
class Bin:
    """Cases whose time to revoke is in [start_ms, end_ms); ``over`` of them missed the deadline."""

    start_ms: int
    end_ms: int
    count: int
    over: int


def bins_for(values_ms: Sequence[int], sla_ms: int, parts: int = 12) -> list[Bin]:
    """Equal round-width bins from 0 covering every value; the deadline falls on a bin edge when it can."""
    if not values_ms:
        return []
    values_ms = [max(v, 0) for v in values_ms]  # revoked before the termination time: drawn at 0
    top = max(values_ms)
    width = step_for(max(top, 1), parts)
    if sla_ms % width and top > sla_ms:  # let one edge be the deadline: cases on each side of it stay apart
        width = next((s for s in STEPS if s >= width and sla_ms % s == 0), width)
    count = top // width + 1
    out = []
    for n in range(count):
        start, end = n * width, (n + 1) * width
        inside = [v for v in values_ms if start <= v < end]
        out.append(Bin(start, end, len(inside), sum(v > sla_ms for v in inside)))
    return out


def distribution(
    values_ms: Sequence[int],
    sla_ms: int,
    median_ms: int | None,
    worst_ms: int | None,
    label: str,
    spell: Callable[[int], str] = short,
) -> str:
    """A histogram of times to revoke with the deadline line and the median and worst marked.

    ``spell`` writes the median and worst as the tables beside the chart do (ticks stay short).
    """
    bins = bins_for(values_ms, sla_ms)
    left, right, top, bottom = 44, WIDTH - 16, 34, 196
    end = _end(bins[-1].end_ms if bins else None, sla_ms)
    step = step_for(end)
    x = lambda ms: left + (right - left) * ms / end  # noqa: E731
    tallest = max([b.count for b in bins] + [1])
    y = lambda n: bottom - (bottom - top - 20) * n / tallest  # noqa: E731
    body = _axis(left, right, bottom, top, end, step)
    for n in range(0, tallest + 1, max(1, math.ceil(tallest / 4))):
        body.append(_text(left - 6, y(n) + 4, str(n), "end"))
    body.append(_text(left, bottom + 34, "time from termination to the last account revoked", "start"))
    body.append(_text(left - 36, top - 16, "cases", "start"))
    for b in bins:
        if not b.count:
            continue
        x0, x1 = x(b.start_ms) + 1, x(b.end_ms) - 1
        fill = INK if b.over == b.count else (MID if b.over else LIGHT)
        what = f"{b.count} case{'s' if b.count != 1 else ''} from {short(b.start_ms)} to {short(b.end_ms)}" + (
            f", {b.over} over the deadline" if b.over else ""
        )
        body.append(
            f'<g class="bin" data-from-ms="{b.start_ms}" data-to-ms="{b.end_ms}" data-count="{b.count}" '
            f'data-over="{b.over}"><title>{_e(what)}</title><rect x="{_n(x0)}" y="{_n(y(b.count))}" '
            f'width="{_n(max(x1 - x0, 1.5))}" height="{_n(bottom - y(b.count))}" fill="{fill}" stroke="{INK}"/>'
            + _text((x0 + x1) / 2, y(b.count) - 4, str(b.count), "middle")
            + "</g>"
        )
    body += _deadline(x(sla_ms), top, bottom, f"deadline {short(sla_ms)}")
    for name, value, dy in (("median", median_ms, 0), ("worst", worst_ms, 14)):
        if value is None:
            continue
        mx = x(value)
        shape = (
            f'<path d="M{_n(mx)} {_n(bottom + 2)}l-6 10h12z" fill="{PAPER if name == "median" else INK}" '
            f'stroke="{INK}" stroke-width="1.5"/>'
        )
        anchor = "end" if mx > right - 150 else "start"
        body.append(
            f'<g class="{name}" data-ms="{value}">{shape}'
            + _text(mx + (-8 if anchor == "end" else 8), top + 2 + dy, f"{name} {spell(value)}", anchor)
            + f'<line x1="{_n(mx)}" y1="{_n(top + 6 + dy)}" x2="{_n(mx)}" y2="{_n(bottom)}" stroke="{INK}" '
            f'stroke-dasharray="{"1 3" if name == "median" else "3 2"}"/></g>'
        )
    over = sum(b.over for b in bins)
    data = {"count": len(values_ms), "over": over, "sla-ms": sla_ms, "median-ms": median_ms, "worst-ms": worst_ms}
    return _svg("distribution", bottom + 44, label, body, data)


# -- per system: median and worst bars --------------------------------------------------


@dataclass(frozen=True)
class SystemBar:
    system: str
    cases: int
    revoked: int
    median_ms: int | None
    worst_ms: int | None
    over: int


def systems(rows: Sequence[SystemBar], sla_ms: int, label: str, spell: Callable[[int], str] = short) -> str:
    """One row per system (as given: slowest first): the worst as a light bar, the median as a dark one."""
    left, right, top, row = 100, WIDTH - 290, 30, 34
    bottom = top + row * max(len(rows), 1)
    end = _end(*(r.worst_ms for r in rows), sla_ms)
    x = lambda ms: left + (right - left) * ms / end  # noqa: E731
    body = _axis(left, right, bottom, top, end, step_for(end))
    for n, r in enumerate(rows):
        y0 = top + n * row
        name = r.system if len(r.system) <= 15 else r.system[:14] + "\u2026"
        parts = [
            f'<g class="system" data-system="{_e(r.system)}" data-cases="{r.cases}" data-revoked="{r.revoked}" '
            f'data-median-ms="{_e(r.median_ms if r.median_ms is not None else "")}" '
            f'data-worst-ms="{_e(r.worst_ms if r.worst_ms is not None else "")}" data-over="{r.over}">'
        ]
        parts.append(f"<title>{_e(_system_text(r))}</title>")
        parts.append(_text(left - 8, y0 + row / 2 + 4, name, "end", ' font-weight="600"' if n == 0 else ""))
        if r.worst_ms is not None:
            parts.append(
                f'<rect class="worst" x="{_n(left)}" y="{_n(y0 + 5)}" width="{_n(max(x(r.worst_ms) - left, 1.5))}" '
                f'height="{_n(row - 10)}" fill="{LIGHT}" stroke="{INK}"/>'
            )
        if r.median_ms is not None:
            parts.append(
                f'<rect class="median" x="{_n(left)}" y="{_n(y0 + 11)}" width="{_n(max(x(r.median_ms) - left, 1.5))}" '
                f'height="{_n(row - 22)}" fill="{INK}"/>'
            )
        summary = (
            f"median {spell(r.median_ms or 0)} \u00b7 worst {spell(r.worst_ms)}"
            if r.worst_ms is not None
            else "no time"
        )
        parts.append(_text(right + 8, y0 + row / 2 - 2, summary))
        late = f"{r.over} over the deadline" if r.over else "none over the deadline"
        parts.append(_text(right + 8, y0 + row / 2 + 12, late, "start", ' font-weight="700"' if r.over else ""))
        parts.append("</g>")
        body.append("".join(parts))
    body += _deadline(x(sla_ms), top - 2, bottom, f"deadline {short(sla_ms)}")
    body.append(f'<rect x="{left}" y="{_n(bottom + 26)}" width="14" height="10" fill="{LIGHT}" stroke="{INK}"/>')
    body.append(_text(left + 18, bottom + 35, "worst"))
    body.append(f'<rect x="{left + 70}" y="{_n(bottom + 28)}" width="14" height="6" fill="{INK}"/>')
    body.append(_text(left + 88, bottom + 35, "median"))
    data = {"sla-ms": sla_ms, "systems": len(rows)}
    return _svg("systems", bottom + 44, label, body, data)


def _system_text(r: SystemBar) -> str:
    if r.worst_ms is None:
        return f"{r.system}: no account fully revoked in {r.cases} cases; {r.over} over the deadline"
    return (
        f"{r.system}: {r.cases} cases, median {short(r.median_ms or 0)}, worst {short(r.worst_ms)}, "
        f"{r.over} over the deadline"
    )


# -- per person: a timeline with one lane per system --------------------------------------


@dataclass(frozen=True)
class Mark:
    """A moment on a lane: an account revoked or failed, a task due or done."""

    at_ms: int
    kind: str  # "revoked" | "failed" | "due" | "done"
    text: str


@dataclass
class Lane:
    name: str
    end_ms: int | None  # when the lane was finished (the last account revoked, the last task done); None if not
    marks: list[Mark] = field(default_factory=list)
    tasks: bool = False


def timeline(lanes: Sequence[Lane], sla_ms: int | None, label: str, spell: Callable[[int], str] = short) -> str:
    """From termination (0) to the last moment shown: a bar per system up to its last revocation, marks on it."""
    left, right, top, row = 130, WIDTH - 110, 24, 26
    bottom = top + row * max(len(lanes), 1)
    moments = [m.at_ms for lane in lanes for m in lane.marks] + [lane.end_ms or 0 for lane in lanes]
    end = _end(*moments, sla_ms)
    x = lambda ms: left + (right - left) * max(ms, 0) / end  # noqa: E731
    body = _axis(left, right, bottom, top, end, step_for(end))
    for n, lane in enumerate(lanes):
        y0, mid = top + n * row, top + n * row + row / 2
        name = lane.name if len(lane.name) <= 18 else lane.name[:17] + "\u2026"
        full = _e(lane.name)
        parts = [
            f'<g class="lane" data-lane="{full}" data-tasks="{str(lane.tasks).lower()}" '
            f'data-end-ms="{"" if lane.end_ms is None else lane.end_ms}"><title>{full}</title>',
            _text(left - 8, mid + 4, name, "end"),
        ]
        if not lane.tasks:
            if lane.end_ms is not None:
                parts.append(
                    f'<rect x="{_n(left)}" y="{_n(y0 + 7)}" width="{_n(max(x(lane.end_ms) - left, 1.5))}" '
                    f'height="{_n(row - 14)}" fill="{LIGHT}" stroke="{INK}"/>'
                )
            else:  # never finished: an open, dashed bar to the end of the axis
                parts.append(
                    f'<rect x="{_n(left)}" y="{_n(y0 + 7)}" width="{_n(right - left)}" height="{_n(row - 14)}" '
                    f'fill="none" stroke="{INK}" stroke-dasharray="4 3"/>'
                )
        else:
            parts.append(f'<line x1="{left}" y1="{_n(mid)}" x2="{right}" y2="{_n(mid)}" stroke="{LIGHT}"/>')
        at = _n(mid)
        parts.extend(_mark(x(mark.at_ms), at, mark) for mark in lane.marks)
        ending = "not finished" if lane.end_ms is None else _e(spell(lane.end_ms))
        bold = ' font-weight="700"' if lane.end_ms is None else ""
        parts.append(_text(right + 8, mid + 4, ending, "start", bold, safe=True))
        parts.append("</g>")
        body.append("".join(parts))
    if sla_ms is not None:
        body += _deadline(x(sla_ms), top - 2, bottom, f"deadline {short(sla_ms)}")
    data = {"sla-ms": sla_ms, "lanes": len(lanes)}
    return _svg("timeline", bottom + 30, label, body, data)


SHAPES = {  # at (x, y): a mark's shape, as a path or an element (one string template each)
    "revoked": '<circle cx="{x}" cy="{y}" r="4" fill="' + INK + '"/>',
    "failed": '<path d="M{x} {y}m-5 -5l10 10m0 -10l-10 10" stroke="' + INK + '" stroke-width="2.5"/>',
    "due": '<path d="M{x} {y}m0 -6l6 6l-6 6l-6 -6z" fill="' + PAPER + '" stroke="' + INK + '" stroke-width="1.5"/>',
    "done": '<path d="M{x} {y}m-4.5 -4.5h9v9h-9z" fill="' + MID + '" stroke="' + INK + '"/>',
}


def _mark(x: float, y: str, mark: Mark) -> str:
    """Revoked: a filled circle; failed: a cross; task due: a hollow diamond; task done: a filled square."""
    shape = SHAPES.get(mark.kind, SHAPES["revoked"]).format(x=_n(x), y=y)
    return (
        f'<g class="mark" data-kind="{_e(mark.kind)}" data-at-ms="{mark.at_ms}"><title>{_e(mark.text)}</title>'
        f"{shape}</g>"
    )


# -- over time: cases per week and the share within the deadline -------------------------


@dataclass(frozen=True)
class Week:
    start: str  # the Monday, YYYY-MM-DD
    cases: int
    within: int
    over: int

    @property
    def share(self) -> float | None:
        """Within the deadline out of those decided (within or over); None when none is decided yet."""
        decided = self.within + self.over
        return self.within / decided if decided else None


def weeks(rows: Sequence[Week], label: str) -> str:
    """Bars of cases per week on the left axis, the share within the deadline as dots and a line on the right."""
    left, right, top, bottom = 44, WIDTH - 52, 30, 190
    tallest = max([w.cases for w in rows] + [1])
    slot = (right - left) / max(len(rows), 1)
    y = lambda n: bottom - (bottom - top) * n / tallest  # noqa: E731
    ys = lambda share: bottom - (bottom - top) * share  # noqa: E731
    body = [f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="{INK}"/>']
    for n in range(0, tallest + 1, max(1, math.ceil(tallest / 4))):
        body.append(f'<line x1="{left}" y1="{_n(y(n))}" x2="{right}" y2="{_n(y(n))}" stroke="#e2e2e2"/>')
        body.append(_text(left - 6, y(n) + 4, str(n), "end"))
    for pct in (0, 50, 100):
        body.append(_text(right + 6, ys(pct / 100) + 4, f"{pct}%"))
    body.append(_text(left - 36, top - 14, "cases"))
    body.append(_text(right + 50, top - 14, "within deadline", "end"))
    points = []
    every = max(1, math.ceil(len(rows) / 12))  # label at most about a dozen weeks
    for n, w in enumerate(rows):
        x0 = left + n * slot
        share = w.share
        what = f"week of {w.start}: {w.cases} cases, {w.within} within and {w.over} over the deadline" + (
            f" ({share:.0%} within)" if share is not None else ""
        )
        parts = [
            f'<g class="week" data-week="{w.start}" data-cases="{w.cases}" data-within="{w.within}" '
            f'data-over="{w.over}" data-share="{"" if share is None else f"{share:.4f}"}"><title>{_e(what)}</title>'
        ]
        if w.cases:
            parts.append(
                f'<rect x="{_n(x0 + slot * 0.18)}" y="{_n(y(w.cases))}" width="{_n(slot * 0.64)}" '
                f'height="{_n(bottom - y(w.cases))}" fill="{LIGHT}" stroke="{INK}"/>'
            )
            parts.append(_text(x0 + slot / 2, y(w.cases) - 4, str(w.cases), "middle"))
        if share is not None:
            cx, cy = x0 + slot / 2, ys(share)
            points.append(f"{_n(cx)},{_n(cy)}")
            parts.append(f'<circle cx="{_n(cx)}" cy="{_n(cy)}" r="4" fill="{INK}" stroke="{PAPER}"/>')
        if n % every == 0:
            parts.append(_text(x0 + slot / 2, bottom + 16, w.start[5:], "middle"))
        parts.append("</g>")
        body.append("".join(parts))
    if len(points) > 1:
        body.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="{INK}" stroke-width="1.5"/>')
    body.append(_text(left, bottom + 34, "week starting (Monday, MM-DD)"))
    return _svg("weeks", bottom + 44, label, body, {"weeks": len(rows)})
