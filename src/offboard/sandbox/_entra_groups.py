"""The Entra simulator's groups (Microsoft Graph v1.0 ``/groups``, members and ``$ref``)."""

from __future__ import annotations

from typing import Any

from ._app import HTTPError, Request, Response, route
from ._entra_parts import EntraParts

__all__ = ["EntraGroups"]


class EntraGroups(EntraParts):
    """Mixed into the Entra simulator."""

    # ----- groups -----------------------------------------------------------------------------
    def _group(self, gid: str) -> dict[str, Any]:
        g = self.groups.get(gid)
        if g is None:
            raise HTTPError(
                404,
                f"Resource '{gid}' does not exist or one of its queried reference-property objects are not present.",
                reason="Request_ResourceNotFound",
            )
        return g

    @route(
        "GET",
        "/v1.0/groups/{gid}/members",
        perm=("GroupMember.Read.All", "GroupMember.ReadWrite.All", "Directory.Read.All"),
    )
    async def group_members(self, req: Request) -> Response:
        g = self._group(req.params["gid"])
        value = [
            {"@odata.type": "#microsoft.graph.user", **self._render(req, self.users[u])}
            for u in sorted(g["members"])
            if u in self.users
        ]
        return Response(
            200, {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#directoryObjects", "value": value}
        )

    @route(
        "POST",
        "/v1.0/groups/{gid}/members/$ref",
        perm=("GroupMember.ReadWrite.All", "Group.ReadWrite.All", "Directory.ReadWrite.All"),
    )
    async def add_member(self, req: Request) -> Response:
        g = self._group(req.params["gid"])
        ref = (req.json() or {}).get("@odata.id", "")
        uid = ref.rstrip("/").rsplit("/", 1)[-1]
        if uid not in self.users:
            raise HTTPError(
                404,
                f"Resource '{uid}' does not exist or one of its queried reference-property objects are not present.",
                reason="Request_ResourceNotFound",
            )
        self._check_group_writable(g)
        if uid in g["members"]:
            raise HTTPError(
                400,
                "One or more added object references already exist for the following modified properties: 'members'.",
                reason="Request_BadRequest",
            )
        if not req.lie:
            g["members"].add(uid)
        return Response(204)

    def _check_group_writable(self, g: dict[str, Any]) -> None:
        if g.get("onPremisesSyncEnabled"):
            raise HTTPError(
                400,
                "Unable to update the specified properties for on-premises mastered Directory Sync objects or objects currently undergoing migration.",
                reason="Request_BadRequest",
            )
        if g.get("isAssignableToRole") and "RoleManagement.ReadWrite.Directory" not in self.granted:
            raise HTTPError(
                403, "Insufficient privileges to complete the operation.", reason="Authorization_RequestDenied"
            )
        if "DynamicMembership" in g["groupTypes"]:
            raise HTTPError(
                400,
                "Insufficient privileges to complete the operation. Members of a dynamic group cannot be added or removed.",
                reason="Request_BadRequest",
            )

    @route(
        "DELETE",
        "/v1.0/groups/{gid}/members/{uid}/$ref",
        perm=("GroupMember.ReadWrite.All", "Group.ReadWrite.All", "Directory.ReadWrite.All"),
    )
    async def remove_member(self, req: Request) -> Response:
        g = self._group(req.params["gid"])
        uid = req.params["uid"]
        self._check_group_writable(g)
        if uid not in g["members"]:
            raise HTTPError(
                404,
                f"Resource '{g['id']}' does not exist or one of its queried reference-property objects are not present.",
                reason="Request_ResourceNotFound",
            )
        if not req.lie:
            g["members"].discard(uid)
        return Response(204)

    @route(
        "DELETE",
        "/v1.0/groups/{gid}/members/{uid}",
        perm=("GroupMember.ReadWrite.All", "Group.ReadWrite.All", "Directory.ReadWrite.All"),
    )
    async def remove_member_without_ref(self, req: Request) -> Response:
        """Without /$ref Graph deletes the member object itself from the directory (the real, dangerous behaviour)."""
        self._group(req.params["gid"])
        user = self._user(req.params["uid"])
        if not self.can_delete_users or self.granted.isdisjoint({"User.ReadWrite.All", "Directory.ReadWrite.All"}):
            raise HTTPError(
                403, "Insufficient privileges to complete the operation.", reason="Authorization_RequestDenied"
            )
        if not req.lie:
            self._delete(user["id"])
        return Response(204)
