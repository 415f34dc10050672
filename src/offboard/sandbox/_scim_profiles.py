"""How the SCIM simulator behaves as one application or another (docs/connectors/scim-profiles.md).

The simulator's own reading of each vendor's documentation, kept apart from the connector's
(``offboard_connectors._scim_profiles``) so that a test can hold one against the other. Besides the
vendor profiles, two behaviours no vendor documents but real applications show: ``ignores-active``
(``active: false`` is answered 200/204 and changes nothing) and ``active-removes`` (``active: false``
deletes the user and its identity, as GitHub's organization SCIM does).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from ._knobs import Limit

__all__ = ["ScimBehaviour", "BEHAVIOURS", "behaviour"]


@dataclass(frozen=True)
class ScimBehaviour:
    """What the simulated application does; every field but ``name`` is a knob a test may change."""

    name: str = "generic"
    patch: bool = True  # False: PATCH answers 501 and ServiceProviderConfig says patch.supported false
    bulk: bool = True  # False: /Bulk answers 501 and bulk.supported is false
    filter_members: bool = True  # False: /Groups ignores ?filter= (filter.supported false)
    # what a write of active:false does: suspend (as asked), ignore (acknowledged, nothing changes),
    # remove (the user is deleted: GitHub organization SCIM)
    deactivate: Literal["suspend", "ignore", "remove"] = "suspend"
    # what DELETE /Users/{id} does: remove the user, or deactivate it (Slack)
    delete: Literal["remove", "deactivate"] = "remove"
    limit: Limit | None = None  # the application's request budget (None: the simulator's default)
    vendor: bool = True  # a vendor's profile (the connector has one of the same name), not a test behaviour


BEHAVIOURS: dict[str, ScimBehaviour] = {
    b.name: b
    for b in (
        ScimBehaviour(),
        ScimBehaviour("atlassian"),
        ScimBehaviour("zoom", bulk=False, limit=Limit(60, 60, 1)),  # 1 request/s per account
        ScimBehaviour("salesforce"),
        ScimBehaviour("notion", bulk=False),
        ScimBehaviour("1password", bulk=False),
        ScimBehaviour("aws-identity-center", bulk=False),
        ScimBehaviour("slack", bulk=False, delete="deactivate", limit=Limit(600, 60, 180)),
        ScimBehaviour("github-emu", bulk=False),
        ScimBehaviour("ignores-active", deactivate="ignore", vendor=False),
        ScimBehaviour("active-removes", deactivate="remove", vendor=False),
    )
}


def behaviour(name: str, **changes: object) -> ScimBehaviour:
    """The behaviour called ``name``, with ``changes`` to its knobs; a clear error for unknown names."""
    try:
        base = BEHAVIOURS[name]
    except KeyError:
        raise ValueError(f"unknown SCIM profile {name!r}; known: {', '.join(sorted(BEHAVIOURS))}") from None
    return replace(base, **changes)  # type: ignore[arg-type]
