"""The Google Workspace simulator's Directory API beyond users: a user's security (OAuth tokens, app passwords,
backup codes), groups and their members, and org units, shaped as in ``admin.directory_v1``'s discovery document."""

from __future__ import annotations

from typing import Any

from ._app import HTTPError, Request, Response, route
from ._google_common import _OUS, D, GoogleParts, _etag

__all__ = ["GoogleDirectorySim"]


class GoogleDirectorySim(GoogleParts):
    """Mixed into the Google Workspace simulator."""

    # ----- security: tokens, ASPs, backup codes -----------------------------------------------
    @route("GET", D + "/users/{userKey}/tokens")
    async def tokens_list(self, req: Request) -> Response:
        self._scope(req, "security")
        user = self._user(req.params["userKey"])
        return Response(
            200, {"kind": "admin#directory#tokenList", "etag": _etag(), "items": list(user["_tokens"].values())}
        )

    @route("GET", D + "/users/{userKey}/tokens/{clientId}")
    async def tokens_get(self, req: Request) -> Response:
        self._scope(req, "security")
        tok = self._user(req.params["userKey"])["_tokens"].get(req.params["clientId"])
        if tok is None:
            raise HTTPError(404, "Resource Not Found: clientId", reason="notFound")
        return Response(200, tok)

    @route("DELETE", D + "/users/{userKey}/tokens/{clientId}")
    async def tokens_delete(self, req: Request) -> Response:
        self._scope(req, "security")
        user = self._user(req.params["userKey"])
        if req.params["clientId"] not in user["_tokens"]:
            raise HTTPError(404, "Resource Not Found: clientId", reason="notFound")
        if not req.lie:
            del user["_tokens"][req.params["clientId"]]
        return Response(204)

    @route("GET", D + "/users/{userKey}/asps")
    async def asps_list(self, req: Request) -> Response:
        self._scope(req, "security")
        user = self._user(req.params["userKey"])
        return Response(200, {"kind": "admin#directory#asps", "etag": _etag(), "items": list(user["_asps"].values())})

    def _asp(self, req: Request) -> tuple[dict[str, Any], int]:
        user = self._user(req.params["userKey"])
        try:
            code = int(req.params["codeId"])
        except ValueError:
            raise HTTPError(400, "Invalid Input: codeId", reason="invalid") from None
        if code not in user["_asps"]:
            raise HTTPError(404, "Resource Not Found: codeId", reason="notFound")
        return user, code

    @route("GET", D + "/users/{userKey}/asps/{codeId}")
    async def asps_get(self, req: Request) -> Response:
        self._scope(req, "security")
        user, code = self._asp(req)
        return Response(200, user["_asps"][code])

    @route("DELETE", D + "/users/{userKey}/asps/{codeId}")
    async def asps_delete(self, req: Request) -> Response:
        self._scope(req, "security")
        user, code = self._asp(req)
        if not req.lie:
            del user["_asps"][code]
        return Response(204)

    @route("GET", D + "/users/{userKey}/verificationCodes")
    async def codes_list(self, req: Request) -> Response:
        self._scope(req, "security")
        user = self._user(req.params["userKey"])
        items = [
            {"kind": "admin#directory#verificationCode", "userId": user["id"], "verificationCode": c, "etag": _etag()}
            for c in user["_codes"]
        ]
        return Response(200, {"kind": "admin#directory#verificationCodesList", "etag": _etag(), "items": items})

    @route("POST", D + "/users/{userKey}/verificationCodes/invalidate")
    async def codes_invalidate(self, req: Request) -> Response:
        self._scope(req, "security")
        user = self._user(req.params["userKey"])
        if not req.lie:
            user["_codes"] = []
        return Response(204)

    # ----- groups and members -----------------------------------------------------------------
    def _group(self, key: str) -> dict[str, Any]:
        g = self.groups.get(key) or next((g for g in self.groups.values() if g["email"].lower() == key.lower()), None)
        if g is None:
            raise HTTPError(404, "Resource Not Found: groupKey", reason="notFound")
        return g

    def _group_out(self, g: dict[str, Any]) -> dict[str, Any]:
        return {
            "kind": "admin#directory#group",
            "id": g["id"],
            "etag": _etag(),
            "email": g["email"],
            "name": g["name"],
            "directMembersCount": str(len(g["members"])),
            "description": g["description"],
            "adminCreated": True,
        }

    @route("GET", D + "/groups")
    async def groups_list(self, req: Request) -> Response:
        self._scope(req, "groups_read")
        groups = list(self.groups.values())
        if req.query.get("userKey"):
            uid = self._user(req.query["userKey"])["id"]
            groups = [g for g in groups if uid in g["members"]]
        elif not req.query.get("customer") and not req.query.get("domain"):
            raise HTTPError(400, "Bad Request", reason="badRequest")
        return Response(
            200, {"kind": "admin#directory#groups", "etag": _etag(), "groups": [self._group_out(g) for g in groups]}
        )

    @route("GET", D + "/groups/{groupKey}")
    async def groups_get(self, req: Request) -> Response:
        self._scope(req, "groups_read")
        return Response(200, self._group_out(self._group(req.params["groupKey"])))

    def _member_out(self, uid: str, role: str) -> dict[str, Any]:
        return {
            "kind": "admin#directory#member",
            "etag": _etag(),
            "id": uid,
            "email": self.users[uid]["primaryEmail"],
            "role": role,
            "type": "USER",
            "status": "ACTIVE",
        }

    @route("GET", D + "/groups/{groupKey}/members")
    async def members_list(self, req: Request) -> Response:
        self._scope(req, "groups_read")
        g = self._group(req.params["groupKey"])
        return Response(
            200,
            {
                "kind": "admin#directory#members",
                "etag": _etag(),
                "members": [self._member_out(u, r) for u, r in g["members"].items() if u in self.users],
            },
        )

    def _member(self, req: Request) -> tuple[dict[str, Any], str]:
        g = self._group(req.params["groupKey"])
        user = self._find(req.params["memberKey"])
        if user is None or user["id"] not in g["members"]:
            raise HTTPError(404, "Resource Not Found: memberKey", reason="notFound")
        return g, user["id"]

    @route("GET", D + "/groups/{groupKey}/members/{memberKey}")
    async def members_get(self, req: Request) -> Response:
        self._scope(req, "groups_read")
        g, uid = self._member(req)
        return Response(200, self._member_out(uid, g["members"][uid]))

    @route("GET", D + "/groups/{groupKey}/hasMember/{memberKey}")
    async def members_has(self, req: Request) -> Response:
        self._scope(req, "groups_read")
        g = self._group(req.params["groupKey"])
        user = self._find(req.params["memberKey"])
        if user is None:
            raise HTTPError(400, "Invalid Input: memberKey", reason="invalid")
        return Response(200, {"isMember": user["id"] in g["members"]})

    @route("DELETE", D + "/groups/{groupKey}/members/{memberKey}")
    async def members_delete(self, req: Request) -> Response:
        self._scope(req, "members_write")
        g, uid = self._member(req)
        if not req.lie:
            del g["members"][uid]
        return Response(204)

    @route("POST", D + "/groups/{groupKey}/members")
    async def members_insert(self, req: Request) -> Response:
        self._scope(req, "members_write")
        g = self._group(req.params["groupKey"])
        body = req.json() or {}
        user = self._find(str(body.get("email") or body.get("id") or ""))
        if user is None:
            raise HTTPError(404, "Resource Not Found: memberKey", reason="notFound")
        if user["id"] in g["members"]:
            raise HTTPError(409, "Member already exists.", reason="duplicate")
        role = body.get("role", "MEMBER")
        if not req.lie:
            g["members"][user["id"]] = role
        return Response(200, self._member_out(user["id"], role))

    # ----- org units --------------------------------------------------------------------------
    @route("GET", D + "/customer/{customerId}/orgunits")
    async def orgunits_list(self, req: Request) -> Response:
        self._scope(req, "orgunits")
        units = [
            {
                "kind": "admin#directory#orgUnit",
                "name": p.rsplit("/", 1)[-1],
                "orgUnitPath": p,
                "orgUnitId": f"id:{abs(hash(p)) % 10**8:08d}",
                "parentOrgUnitPath": "/",
                "description": "",
            }
            for p in _OUS
            if p != "/"
        ]
        return Response(200, {"kind": "admin#directory#orgUnits", "etag": _etag(), "organizationUnits": units})
