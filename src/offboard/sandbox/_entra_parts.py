"""What the Entra simulator provides to its mixins (token endpoint, groups, batching), declared once for the type
checker; nothing at run time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._app import Request, Simulator
    from ._entra_cert import AppCertificate

    _Base = Simulator
else:
    _Base = object

__all__ = ["EntraParts"]


class EntraParts(_Base):
    if TYPE_CHECKING:
        users: dict[str, dict[str, Any]]
        groups: dict[str, dict[str, Any]]
        tenant_id: str
        client_id: str
        client_secret: str
        can_delete_users: bool
        _tokens: set[str]

        @property
        def certificate(self) -> AppCertificate: ...
        def _user(self, key: str) -> dict[str, Any]: ...
        def _render(self, req: Request, user: dict[str, Any]) -> dict[str, Any]: ...
        def _delete(self, uid: str) -> None: ...
