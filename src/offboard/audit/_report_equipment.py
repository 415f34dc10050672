"""The auditors' report section on loaned equipment: per person, what came back, in what state, and what is missing.

Built from the return tasks of each case (``return-<tag>``) and what the task pages recorded
(``task`` entries with ``equipment``; ``equipment_return`` entries for a missing item, whose task
stays open). A return task with nothing recorded shows as "not recorded" (closed on the CLI, or
still open).
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

from ._report import AuditReport

__all__ = ["equipment_rows", "equipment_section"]

RETURNED = ("good", "worn", "damaged")


def equipment_rows(report: AuditReport) -> list[dict[str, Any]]:
    """One row per return task of the report's cases: person, item, condition, who recorded it and when."""
    rows = []
    for person in report.people:
        for case in person.cases:
            for task in case.tasks:
                if not task.id.startswith("return-"):
                    continue
                item = task.equipment or {}
                photo = item.get("photo") if isinstance(item.get("photo"), dict) else None
                rows.append(
                    {
                        "person": person.id,
                        "case": case.case,
                        "task": task.id,
                        "item": " ".join(str(v) for v in (item.get("kind"), item.get("asset_tag")) if v)
                        or task.title
                        or task.id,
                        "condition": str(item.get("condition") or "not recorded"),
                        "asset_tag_confirmed": item.get("asset_tag_confirmed"),
                        "status": task.status,
                        "by": task.by,
                        "at": task.at or item.get("recorded_at"),
                        "photo_sha256": photo.get("sha256") if photo else None,
                        "note": item.get("note") or task.note or "",
                    }
                )
    return rows


def _counts(rows: list[dict[str, Any]]) -> str:
    returned = sum(r["condition"] in RETURNED for r in rows)
    damaged = sum(r["condition"] == "damaged" for r in rows)
    missing = sum(r["condition"] == "missing" for r in rows)
    unknown = sum(r["condition"] == "not recorded" for r in rows)
    return (
        f"<p>{len(rows)} loaned item(s): {returned} returned ({damaged} damaged), {missing} missing, "
        f"{unknown} with no condition recorded.</p>"
    )


def equipment_section(report: AuditReport, person_href: Callable[[str], str]) -> str:
    """The section's HTML: the counts, then a table of every item per person."""
    rows = equipment_rows(report)
    if not rows:
        return '<p class="none">No loaned equipment in these cases.</p>'
    head = ["Person", "Item", "Condition", "Asset tag confirmed", "Recorded by", "At", "Photo (SHA-256)", "Note"]
    body = []
    for r in rows:
        confirmed = {True: "yes", False: "no", None: ""}.get(r["asset_tag_confirmed"], "")
        photo = f"<code>{escape(r['photo_sha256'][:16])}\u2026</code>" if r["photo_sha256"] else ""
        cells = [
            f'<a href="{escape(person_href(r["person"]))}">{escape(r["person"])}</a>',
            escape(r["item"]),
            f"<strong>{escape(r['condition'])}</strong>"
            if r["condition"] in ("missing", "damaged")
            else escape(r["condition"]),
            confirmed,
            escape(r["by"] or ""),
            escape(r["at"] or ""),
            photo,
            escape(r["note"]),
        ]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return (
        _counts(rows)
        + '<table class="equipment"><caption>Loaned equipment per person</caption><thead><tr>'
        + "".join(f'<th scope="col">{escape(h)}</th>' for h in head)
        + "</tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table>"
    )
