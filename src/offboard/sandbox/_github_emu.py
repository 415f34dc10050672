"""The GitHub simulator's SCIM API of an Enterprise Managed Users enterprise (``/scim/v2/enterprises/{enterprise}/Users``),
shaped as in ``@octokit/openapi`` ``ghec.json``."""

from __future__ import annotations

from typing import Any

from ._app import HTTPError, Request, Response, route
from ._github_ent import GitHubParts
from ._scimutil import compile_filter, patch_operations

API = "https://api.github.com"
SCIM_USER = "urn:ietf:params:scim:schemas:core:2.0:User"


__all__ = ["GitHubEmu"]


class GitHubEmu(GitHubParts):
    """Mixed into the GitHub simulator."""

    # ----- EMU SCIM ---------------------------------------------------------------------------
    def _ent(self, req: Request) -> None:
        if req.params["enterprise"].lower() != self.enterprise.lower():
            raise HTTPError(404, "Not Found")

    def _scim_out(self, u: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in u.items() if k != "login"}
        out["schemas"] = [SCIM_USER]
        out["meta"] = {
            "resourceType": "User",
            "created": "2023-01-01T00:00:00Z",
            "lastModified": "2025-01-01T00:00:00Z",
            "location": f"{API}/scim/v2/enterprises/{self.enterprise}/Users/{u['id']}",
        }
        return out

    def _scim_user(self, req: Request) -> dict[str, Any]:
        self._ent(req)
        u = self.scim_users.get(req.params["id"])
        if u is None:
            raise HTTPError(404, "Resource not found")
        return u

    @route("GET", "/scim/v2/enterprises/{enterprise}/Users", perm="scim:enterprise")
    async def scim_list(self, req: Request) -> Response:
        self._ent(req)
        users = list(self.scim_users.values())
        if req.query.get("filter"):
            users = [u for u in users if compile_filter(req.query["filter"])(u)]
        start = max(int(req.query.get("startIndex", "1") or 1), 1)
        count = self.knobs.page(int(req.query.get("count", "30") or 30))
        page = users[start - 1 : start - 1 + count]
        return Response(
            200,
            {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                "totalResults": len(users),
                "itemsPerPage": len(page),
                "startIndex": start,
                "Resources": [self._scim_out(u) for u in page],
            },
            content_type="application/scim+json; charset=utf-8",
        )

    @route("GET", "/scim/v2/enterprises/{enterprise}/Users/{id}", perm="scim:enterprise")
    async def scim_get(self, req: Request) -> Response:
        return Response(200, self._scim_out(self._scim_user(req)), content_type="application/scim+json; charset=utf-8")

    def _scim_apply(self, u: dict[str, Any], changes: dict[str, Any], req: Request) -> None:
        if req.lie:
            return
        if "active" in changes:
            active = bool(changes["active"])
            rec = self.members.get(u["login"].lower())
            if not active and u["active"]:  # suspend: obfuscate the handle and email, drop credentials
                if rec is not None:
                    rec["state"] = "suspended"
                    for cid in [c for c, v in self.credentials.items() if v["login"] == u["login"]]:
                        del self.credentials[cid]
            elif active and not u["active"] and rec is not None:
                rec["state"] = "active"
            u["active"] = active
        for k in ("displayName", "externalId", "userName", "name", "emails", "roles"):
            if k in changes:
                u[k] = changes[k]

    @route("PATCH", "/scim/v2/enterprises/{enterprise}/Users/{id}", perm="scim:enterprise")
    async def scim_patch(self, req: Request) -> Response:
        u = self._scim_user(req)
        changes = patch_operations(req.json())
        for path in changes.get("_remove", ()):
            raise HTTPError(400, f"Unsupported remove of {path}", reason="invalidPath")
        self._scim_apply(u, changes, req)
        return Response(
            200,
            self._scim_out(u)
            if not req.lie
            else {**self._scim_out(u), **{k: v for k, v in changes.items() if k == "active"}},
            content_type="application/scim+json; charset=utf-8",
        )

    @route("PUT", "/scim/v2/enterprises/{enterprise}/Users/{id}", perm="scim:enterprise")
    async def scim_put(self, req: Request) -> Response:
        u = self._scim_user(req)
        body = req.json()
        if (
            not isinstance(body, dict)
            or not body.get("userName")
            or not body.get("displayName")
            or not body.get("emails")
        ):
            raise HTTPError(400, "userName, displayName and emails are required", reason="invalidValue")
        self._scim_apply(u, {**body, "active": body.get("active", True)}, req)
        return Response(200, self._scim_out(u), content_type="application/scim+json; charset=utf-8")

    @route("DELETE", "/scim/v2/enterprises/{enterprise}/Users/{id}", perm="scim:enterprise")
    async def scim_delete(self, req: Request) -> Response:
        u = self._scim_user(req)
        if not req.lie:
            self._scim_apply(u, {"active": False}, req)
            rec = self.members.get(u["login"].lower())
            if rec is not None:
                rec["state"] = "deleted"
            del self.scim_users[u["id"]]
        return Response(204)
