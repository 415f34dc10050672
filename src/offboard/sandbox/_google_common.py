"""What the Google Workspace simulator's modules share: API paths, OAuth scopes and the scopes each route needs."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import TYPE_CHECKING, Any

from ._app import Request
from ._google_handover import HANDOVER_NEED, HANDOVER_SCOPES

D = "/admin/directory/v1"
T = "/admin/datatransfer/v1"
_SCOPE = "https://www.googleapis.com/auth/"
SCOPES = tuple(
    _SCOPE + s
    for s in (
        "admin.directory.user",
        "admin.directory.user.readonly",
        "admin.directory.user.security",
        "admin.directory.group",
        "admin.directory.group.readonly",
        "admin.directory.group.member",
        "admin.directory.group.member.readonly",
        "admin.directory.orgunit",
        "admin.directory.orgunit.readonly",
        "admin.datatransfer",
        "admin.datatransfer.readonly",
        *HANDOVER_SCOPES,
    )
)
_NEED = {  # route prefix -> scopes that grant it (any of)
    "users_read": ("admin.directory.user", "admin.directory.user.readonly"),
    "users_write": ("admin.directory.user",),
    "security": ("admin.directory.user.security",),
    "groups_read": (
        "admin.directory.group",
        "admin.directory.group.readonly",
        "admin.directory.group.member",
        "admin.directory.group.member.readonly",
    ),
    "members_write": ("admin.directory.group", "admin.directory.group.member"),
    "orgunits": ("admin.directory.orgunit", "admin.directory.orgunit.readonly"),
    "transfer": ("admin.datatransfer",),
    "transfer_read": ("admin.datatransfer", "admin.datatransfer.readonly"),
    **HANDOVER_NEED,
}
_DRIVE_APP = 55656082996
_OUS = ("/", "/Employees", "/Contractors", "/Suspended", "/Admins", "/Service Accounts")


def _etag() -> str:
    return f'"{base64.urlsafe_b64encode(secrets.token_bytes(18)).decode()}"'


def _uid(seed: int, key: str) -> str:
    return str(1 + int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest(), 16) % 10**20).rjust(21, "1")


class GoogleParts:
    """What the Google Workspace simulator provides to its mixins, declared once for the type checker."""

    if TYPE_CHECKING:
        users: dict[str, dict[str, Any]]
        groups: dict[str, dict[str, Any]]
        transfers: dict[str, dict[str, Any]]
        customer_id: str
        transfer_seconds: float
        company: Any
        seed: int

        def _scope(self, req: Request, need: str) -> None: ...
        def _user(self, key: str) -> dict[str, Any]: ...
        def _find(self, key: str) -> dict[str, Any] | None: ...
