"""The Okta simulator's side of what a user can reach beyond signing in: group memberships, OAuth grants,
app assignments, and the System Log of what changed (Okta Management API, as in okta-management-openapi-spec)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ._app import HTTPError, Request, Response, route

if TYPE_CHECKING:
    from ._app import Simulator

    _Base = Simulator
else:
    _Base = object

__all__ = ["OktaAccess"]


class OktaAccess(_Base):
    """Mixed into the Okta simulator."""

    if TYPE_CHECKING:  # provided by the Okta simulator; declared for the type checker only
        users: dict[str, dict[str, Any]]
        groups: dict[str, dict[str, Any]]
        apps: dict[str, dict[str, Any]]
        events: list[dict[str, Any]]

        def _require(self, key: str) -> dict[str, Any]: ...
        def _page(self, req: Request, items: list[Any], default: int = 200, most: int = 200) -> Response: ...

    # ----- groups -------------------------------------------------------------------------------
    def _membership(self, req: Request) -> tuple[dict[str, Any], dict[str, Any]]:
        group = self.groups.get(req.params["groupId"])
        if group is None:
            raise HTTPError(
                404, f"Not found: Resource not found: {req.params['groupId']} (UserGroup)", reason="E0000007"
            )
        user = self.users.get(req.params["userId"])
        if user is None:
            raise HTTPError(404, f"Not found: Resource not found: {req.params['userId']} (User)", reason="E0000007")
        if group["type"] != "OKTA_GROUP":
            raise HTTPError(
                403,
                "You do not have permission to perform the requested action",
                reason="E0000006",
                headers={"x-causes": f"Memberships of {group['type']} groups cannot be changed."},
            )
        return group, user

    @route("DELETE", "/api/v1/groups/{groupId}/users/{userId}", perm="okta.groups.manage")
    async def unassign(self, req: Request) -> Response:
        group, user = self._membership(req)
        if not req.lie:
            group["members"].discard(user["id"])
        return Response(204)

    @route("PUT", "/api/v1/groups/{groupId}/users/{userId}", perm="okta.groups.manage")
    async def assign(self, req: Request) -> Response:
        group, user = self._membership(req)
        if user["status"] == "DEPROVISIONED":
            raise HTTPError(403, "This operation is not allowed in the user's current status.", reason="E0000038")
        if not req.lie:
            group["members"].add(user["id"])
        return Response(204)

    # ----- grants -------------------------------------------------------------------------------
    @route("GET", "/api/v1/users/{userId}/grants", perm=("okta.users.read", "okta.users.manage"))
    async def grants(self, req: Request) -> Response:
        user = self._require(req.params["userId"])
        active = [g for g in user["grants"] if g["status"] == "ACTIVE"]
        page = self._page(req, active, default=20, most=200)
        page.body = [
            {
                "id": g["id"],
                "status": "ACTIVE",
                "clientId": g["clientId"],
                "userId": user["id"],
                "issuer": self.base_url,
                "scopeId": "okta.users.read.self",
                "source": "END_USER",
                "created": "2025-03-01T10:00:00.000Z",
                "lastUpdated": "2025-03-01T10:00:00.000Z",
            }
            for g in page.body
        ]
        return page

    @route("DELETE", "/api/v1/users/{userId}/grants", perm="okta.users.manage")
    async def revoke_grants(self, req: Request) -> Response:
        user = self._require(req.params["userId"])
        if not req.lie:
            for grant in user["grants"]:
                grant["status"] = "REVOKED"
        return Response(204)

    # ----- apps ---------------------------------------------------------------------------------
    def _scope(self, app: dict[str, Any], user_id: str) -> str | None:
        """USER for a direct assignment, GROUP through the app's group (while the user is ACTIVE there)."""
        if user_id in app["users"]:
            return app["users"][user_id]
        group = self.groups.get(app["group"] or "")
        return "GROUP" if group is not None and user_id in group["members"] else None

    def _app(self, app_id: str) -> dict[str, Any]:
        app = self.apps.get(app_id)
        if app is None:
            raise HTTPError(404, f"Not found: Resource not found: {app_id} (AppInstance)", reason="E0000007")
        return app

    @route("GET", "/api/v1/users/{id}/appLinks", perm=("okta.users.read", "okta.users.manage"))
    async def app_links(self, req: Request) -> Response:
        user = self._require(req.params["id"])
        links = []
        for n, app in enumerate(a for a in self.apps.values() if self._scope(a, user["id"])):
            links.append(
                {
                    "id": f"{app['id']}-{user['id']}",
                    "label": app["label"],
                    "appName": app["name"],
                    "appInstanceId": app["id"],
                    "appAssignmentId": f"0ua{app['id'][3:10]}{user['id'][3:10]}",
                    "linkUrl": f"{self.base_url}/home/{app['name']}/{app['id']}/1",
                    "logoUrl": f"{self.base_url}/assets/img/logos/{app['name']}.png",
                    "credentialsSetup": False,
                    "hidden": False,
                    "sortOrder": n,
                }
            )
        return Response(200, links)

    @route("GET", "/api/v1/apps/{appId}/users/{userId}", perm=("okta.apps.read", "okta.apps.manage"))
    async def app_user(self, req: Request) -> Response:
        app = self._app(req.params["appId"])
        user = self._require(req.params["userId"])
        scope = self._scope(app, user["id"])
        if scope is None:
            raise HTTPError(404, f"Not found: Resource not found: {user['id']} (AppUser)", reason="E0000007")
        return Response(
            200,
            {
                "id": user["id"],
                "scope": scope,
                "status": "PROVISIONED",
                "created": "2024-02-01T09:00:00.000Z",
                "lastUpdated": "2024-02-01T09:00:00.000Z",
                "statusChanged": "2024-02-01T09:00:00.000Z",
                "syncState": "DISABLED",
                "credentials": {"userName": user["profile"]["login"]},
                "profile": {},
                "_links": {"app": {"href": f"{self.base_url}/api/v1/apps/{app['id']}"}},
            },
        )

    @route("DELETE", "/api/v1/apps/{appId}/users/{userId}", perm="okta.apps.manage")
    async def unassign_app(self, req: Request) -> Response:
        app = self._app(req.params["appId"])
        user = self._require(req.params["userId"])
        scope = self._scope(app, user["id"])
        if scope is None:
            raise HTTPError(404, f"Not found: Resource not found: {user['id']} (AppUser)", reason="E0000007")
        if scope == "GROUP":  # a group assignment goes with the group membership, not by itself
            raise HTTPError(
                403,
                "You do not have permission to perform the requested action",
                reason="E0000006",
                headers={"x-causes": "The user is assigned to this app through a group."},
            )
        if not req.lie:
            app["users"].pop(user["id"], None)
        return Response(204)

    # ----- System Log ---------------------------------------------------------------------------
    @route("GET", "/api/v1/logs", perm="okta.logs.read")
    async def logs(self, req: Request) -> Response:
        events = list(self.events)
        expression = req.query.get("filter", "")
        for term in (t for t in re.split(r"\s+and\s+", expression, flags=re.IGNORECASE) if t.strip()):
            m = re.match(r'^\s*(eventType|target\.id|actor\.id)\s+eq\s+"([^"]*)"\s*$', term)
            if m is None:
                raise HTTPError(
                    400,
                    "Invalid search criteria.",
                    reason="E0000031",
                    headers={"x-causes": f"filter: {term.strip()!r}"},
                )
            attr, wanted = m.groups()
            if attr == "eventType":
                events = [e for e in events if e["eventType"] == wanted]
            elif attr == "actor.id":
                events = [e for e in events if e["actor"]["id"] == wanted]
            else:
                events = [e for e in events if any(t["id"] == wanted for t in e["target"])]
        since = req.query.get("since")
        if since:
            events = [e for e in events if e["published"] >= since]
        if req.query.get("sortOrder", "ASCENDING") == "DESCENDING":
            events.reverse()
        return self._page(req, events, default=100, most=1000)
