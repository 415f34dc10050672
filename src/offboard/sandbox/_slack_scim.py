"""The Slack simulator's SCIM API (v1 and v2: Users and Groups), as docs.slack.dev/reference/scim-api describes it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ._app import HTTPError, Request, Response, route
from ._scimutil import compile_filter, patch_operations

if TYPE_CHECKING:
    from ._app import Simulator

    _Base = Simulator
else:
    _Base = object

__all__ = ["SlackScim", "V1", "V2", "V2E"]

V1 = "urn:scim:schemas:core:1.0"
V2 = "urn:ietf:params:scim:schemas:core:2.0:User"
V2E = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


class SlackScim(_Base):
    """Mixed into the Slack simulator."""

    if TYPE_CHECKING:  # provided by the Slack simulator; declared for the type checker only
        users: dict[str, dict[str, Any]]
        groups: dict[str, dict[str, Any]]

    # ----- SCIM -------------------------------------------------------------------------------
    def _scim_user(self, u: dict[str, Any], v1: bool) -> dict[str, Any]:
        out = {
            "schemas": [V1] if v1 else [V2, V2E],
            "id": u["id"],
            "externalId": u["external_id"],
            "userName": u["name"],
            "nickName": u["name"],
            "name": {"givenName": u["given"], "familyName": u["family"]},
            "displayName": u["real_name"],
            "title": u["title"],
            "timezone": u["tz"],
            "active": not u["deleted"],
            "userType": "Member",
            "emails": [{"value": u["email"], "primary": True, "type": "work"}],
            "groups": [
                {"value": gid, "display": g["displayName"]} for gid, g in self.groups.items() if u["id"] in g["members"]
            ],
            "meta": {
                "created": "2023-01-01T00:00:00-00:00",
                "location": f"https://api.slack.com/scim/{'v1' if v1 else 'v2'}/Users/{u['id']}",
            },
        }
        ext = {"employeeNumber": u["employee_id"] or ""}
        out["urn:scim:schemas:extension:enterprise:1.0" if v1 else V2E] = ext
        return out

    def _scim_get(self, req: Request) -> dict[str, Any]:
        u = self.users.get(req.params["id"])
        if u is None:
            raise HTTPError(404, "Resource " + req.params["id"] + " not found", reason="scim")
        return u

    def _scim_list(self, req: Request, v1: bool) -> Response:
        q = req.query
        users = list(self.users.values())
        if q.get("filter"):
            pred = compile_filter(q["filter"], {"email": "emails", "userName": "userName"})
            users = [u for u in users if pred(self._scim_user(u, v1))]
        start = max(int(q.get("startIndex", "1") or 1), 1)
        count = self.knobs.page(min(int(q.get("count", "100") or 100), 1000))
        page = users[start - 1 : start - 1 + count]
        body = {
            "totalResults": len(users),
            "itemsPerPage": len(page),
            "startIndex": start,
            "Resources": [self._scim_user(u, v1) for u in page],
        }
        body["schemas"] = [V1] if v1 else ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]
        return Response(200, body, content_type="application/json; charset=utf-8")

    async def _scim_patch(self, req: Request, v1: bool, replace: bool = False) -> Response:
        u = self._scim_get(req)
        changes = patch_operations(req.json(), v1=v1)
        if "active" in changes and changes["active"] is False and u["is_primary_owner"]:
            raise HTTPError(403, "cannot_disable_primary_owner", reason="scim")
        if not req.lie:
            self._apply(u, changes)
        return Response(
            200,
            self._scim_user(u, v1)
            if not req.lie
            else {**self._scim_user(u, v1), **{k: v for k, v in changes.items() if k == "active"}},
        )

    def _apply(self, u: dict[str, Any], changes: dict[str, Any]) -> None:
        if "active" in changes:
            active = changes["active"]
            active = active.lower() == "true" if isinstance(active, str) else bool(active)
            if not active and not u["deleted"]:
                u["sessions"] = []
                for g in self.groups.values():
                    g["members"].discard(u["id"])
            u["deleted"] = not active
        if "title" in changes:
            u["title"] = changes["title"]
        if "displayName" in changes:
            u["real_name"] = changes["displayName"]
        u["updated"] = int(time.time())

    async def _scim_delete(self, req: Request, v1: bool) -> Response:
        u = self._scim_get(req)
        if u["is_primary_owner"]:
            raise HTTPError(403, "cannot_disable_primary_owner", reason="scim")
        if not req.lie:
            self._apply(u, {"active": False})
        return Response(204) if not v1 else Response(200, {})

    @route("GET", "/scim/v1/Users")
    async def scim1_list(self, req: Request) -> Response:
        return self._scim_list(req, True)

    @route("GET", "/scim/v2/Users")
    async def scim2_list(self, req: Request) -> Response:
        return self._scim_list(req, False)

    @route("GET", "/scim/v1/Users/{id}")
    async def scim1_get(self, req: Request) -> Response:
        return Response(200, self._scim_user(self._scim_get(req), True))

    @route("GET", "/scim/v2/Users/{id}")
    async def scim2_get(self, req: Request) -> Response:
        return Response(200, self._scim_user(self._scim_get(req), False))

    @route("PATCH", "/scim/v1/Users/{id}")
    async def scim1_patch(self, req: Request) -> Response:
        return await self._scim_patch(req, True)

    @route("PATCH", "/scim/v2/Users/{id}")
    async def scim2_patch(self, req: Request) -> Response:
        return await self._scim_patch(req, False)

    @route("PUT", "/scim/v1/Users/{id}")
    async def scim1_put(self, req: Request) -> Response:
        return await self._scim_patch(req, True)

    @route("PUT", "/scim/v2/Users/{id}")
    async def scim2_put(self, req: Request) -> Response:
        body = req.json()
        if not isinstance(body, dict) or "userName" not in body:
            raise HTTPError(400, "userName is required", reason="scim")
        return await self._scim_patch(req, True)

    @route("DELETE", "/scim/v1/Users/{id}")
    async def scim1_delete(self, req: Request) -> Response:
        return await self._scim_delete(req, True)

    @route("DELETE", "/scim/v2/Users/{id}")
    async def scim2_delete(self, req: Request) -> Response:
        return await self._scim_delete(req, False)

    def _scim_group(self, g: dict[str, Any], v1: bool) -> dict[str, Any]:
        return {
            "schemas": [V1] if v1 else ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "id": g["id"],
            "displayName": g["displayName"],
            "members": [
                {"value": u, "display": self.users[u]["real_name"]} for u in sorted(g["members"]) if u in self.users
            ],
        }

    @route("GET", "/scim/v2/Groups")
    async def scim2_groups(self, req: Request) -> Response:
        groups = [self._scim_group(g, False) for g in self.groups.values()]
        if req.query.get("filter"):
            pred = compile_filter(req.query["filter"])
            groups = [g for g in groups if pred(g)]
        return Response(
            200,
            {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                "totalResults": len(groups),
                "itemsPerPage": len(groups),
                "startIndex": 1,
                "Resources": groups,
            },
        )

    async def _group_patch(self, req: Request, v1: bool) -> Response:
        import re as _re

        g = self.groups.get(req.params["id"])
        if g is None:
            raise HTTPError(404, "Resource " + req.params["id"] + " not found", reason="scim")
        body = req.json() or {}
        adds: list[str] = []
        removals: list[str] = []
        if v1:
            for m in body.get("members") or ():
                (removals if str(m.get("operation", "")).lower() == "delete" else adds).append(m.get("value"))
        for op in body.get("Operations") or ():
            path, kind = str(op.get("path") or ""), str(op.get("op", "")).lower()
            if not path.startswith("members"):
                continue
            m = _re.search(r'value eq "([^"]+)"', path)
            values = [m.group(1)] if m else [v.get("value") for v in op.get("value") or ()]
            (removals if kind == "remove" else adds).extend(values)
        unknown = [u for u in adds if u not in self.users]
        if unknown:
            raise HTTPError(400, f"Unknown member {unknown[0]}", reason="scim")
        if not req.lie:
            g["members"].update(adds)
            g["members"].difference_update(removals)
        return Response(204) if not v1 else Response(200, self._scim_group(g, True))

    @route("PATCH", "/scim/v2/Groups/{id}")
    async def scim2_group_patch(self, req: Request) -> Response:
        return await self._group_patch(req, False)

    @route("PATCH", "/scim/v1/Groups/{id}")
    async def scim1_group_patch(self, req: Request) -> Response:
        return await self._group_patch(req, True)

    @route("GET", "/scim/v1/Groups")
    async def scim1_groups(self, req: Request) -> Response:
        groups = [self._scim_group(g, True) for g in self.groups.values()]
        return Response(
            200,
            {
                "schemas": [V1],
                "totalResults": len(groups),
                "itemsPerPage": len(groups),
                "startIndex": 1,
                "Resources": groups,
            },
        )

    @route("GET", "/scim/v2/ServiceProviderConfig")
    async def scim2_config(self, req: Request) -> Response:
        return Response(
            200,
            {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
                "patch": {"supported": True},
                "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
                "filter": {"supported": True, "maxResults": 1000},
                "changePassword": {"supported": False},
                "sort": {"supported": False},
                "etag": {"supported": False},
                "authenticationSchemes": [
                    {
                        "type": "oauthbearertoken",
                        "name": "OAuth Bearer Token",
                        "description": "Slack user token with the admin scope",
                        "primary": True,
                    }
                ],
            },
        )

    @route("GET", "/scim/v1/ServiceProviderConfigs")
    async def scim1_config(self, req: Request) -> Response:
        return Response(
            200,
            {
                "schemas": [V1],
                "patch": {"supported": True},
                "bulk": {"supported": False},
                "filter": {"supported": True, "maxResults": 1000},
                "changePassword": {"supported": False},
                "sort": {"supported": False},
                "etag": {"supported": False},
                "authenticationSchemes": [{"type": "oauthbearertoken", "name": "OAuth Bearer Token", "primary": True}],
            },
        )
