"""GitHub Enterprise Cloud pieces of the GitHub simulator: enterprise-level SAML, enterprise membership
(GraphQL ``removeEnterpriseMember``) and Copilot seat assignments, shaped as in ``@octokit/openapi``
``ghec.json`` and ``@octokit/graphql-schema``."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from ._app import HTTPError, Request, Response, route

__all__ = ["GitHubEnterprise"]

_INSUFFICIENT = (
    "Your token has not been granted the required scopes to execute this query. The '{field}' field requires one of "
    "the following scopes: ['{scope}'], but your token has only been granted the: [{granted}] scopes. Please modify "
    "your token's scopes at: https://github.com/settings/tokens."
)


class GitHubParts:
    """What the GitHub simulator provides to its mixins, declared once for the type checker; nothing at run time."""

    if TYPE_CHECKING:
        members: dict[str, dict[str, Any]]
        scim_users: dict[str, dict[str, Any]]
        credentials: dict[int, dict[str, Any]]
        org: str
        enterprise: str
        granted: set[str]
        saml_level: str
        company: Any
        knobs: Any

        def graphql_enterprise(self, text: str, identities: Any) -> Response | None: ...
        def _page(self, req: Request, items: list[Any]) -> Response: ...


class GitHubEnterprise(GitHubParts):
    """Mixed into the GitHub simulator: Copilot seats, enterprise membership and enterprise-level SAML."""

    def _init_enterprise(self) -> None:
        # Where SAML SSO is configured: "org" (organization.samlIdentityProvider) or "enterprise"
        # (Enterprise.ownerInfo.samlIdentityProvider; the organization then has none); "none": no SAML at all.
        self.saml_level = "org"
        # Enterprise members stay members after removal from every organization (and keep Copilot seats).
        self.enterprise_members: set[str] = {
            login for login, rec in self.members.items() if rec["state"] in ("active", "pending")
        }
        self.copilot_seats: dict[str, dict[str, Any]] = {
            login: {"created_at": "2024-06-01T10:00:00Z", "pending_cancellation_date": None, "plan_type": "business"}
            for login in self.enterprise_members
        }

    # ----- Copilot ----------------------------------------------------------------------------
    def _seat(self, login: str) -> dict[str, Any]:
        from ._github import simple_user

        seat = self.copilot_seats.get(login.lower())
        rec = self.members.get(login.lower())
        if seat is None or rec is None:
            raise HTTPError(404, "Not Found")
        return {
            **seat,
            "updated_at": seat["created_at"],
            "last_activity_at": "2025-01-10T08:00:00Z",
            "last_activity_editor": "vscode/1.96.0/copilot/1.250.0",
            "assignee": simple_user(rec["login"], rec["id"]),
        }

    def _where(self, req: Request) -> None:
        if "enterprise" in req.params and req.params["enterprise"].lower() != self.enterprise.lower():
            raise HTTPError(404, "Not Found")
        if "org" in req.params and req.params["org"].lower() != self.org.lower():
            raise HTTPError(404, "Not Found")

    @route("GET", "/enterprises/{enterprise}/members/{username}/copilot", perm=("manage_billing:copilot", "read:org"))
    async def enterprise_copilot_seat(self, req: Request) -> Response:
        self._where(req)
        if req.params["username"].lower() not in self.enterprise_members:
            raise HTTPError(404, "Not Found")
        return Response(200, self._seat(req.params["username"]))

    @route("GET", "/orgs/{org}/members/{username}/copilot", perm=("manage_billing:copilot", "read:org"))
    async def org_copilot_seat(self, req: Request) -> Response:
        self._where(req)
        rec = self.members.get(req.params["username"].lower())
        if rec is None or rec["state"] != "active":
            raise HTTPError(422, "User does not exist or is not a member of the organization")
        return Response(200, self._seat(req.params["username"]))

    def _selected(self, req: Request) -> list[str]:
        body = req.json()
        names = body.get("selected_usernames") if isinstance(body, dict) else None
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise HTTPError(422, 'Invalid request.\n\n"selected_usernames" is a required array of at least 1 item.')
        return names

    async def _cancel(self, req: Request) -> Response:
        self._where(req)
        cancelled = 0
        for name in self._selected(req):
            seat = self.copilot_seats.get(name.lower())
            if seat is not None and seat["pending_cancellation_date"] is None:
                cancelled += 1
                if not req.lie:
                    seat["pending_cancellation_date"] = "2099-12-31"  # end of the billing cycle
        return Response(200, {"seats_cancelled": cancelled})

    async def _assign(self, req: Request) -> Response:
        self._where(req)
        created = 0
        for name in self._selected(req):
            if name.lower() not in self.enterprise_members:
                raise HTTPError(422, f"User {name} is not a member of the enterprise")
            seat = self.copilot_seats.get(name.lower())
            if seat is not None and seat["pending_cancellation_date"] is not None:
                created += 1  # an existing seat refreshed: its cancellation is withdrawn
                if not req.lie:
                    seat["pending_cancellation_date"] = None
            elif seat is None:
                created += 1
                if not req.lie:
                    self.copilot_seats[name.lower()] = {
                        "created_at": "2025-02-01T10:00:00Z",
                        "pending_cancellation_date": None,
                        "plan_type": "business",
                    }
        return Response(201, {"seats_created": created})

    @route(
        "DELETE",
        "/enterprises/{enterprise}/copilot/billing/selected_users",
        perm=("manage_billing:copilot", "admin:enterprise"),
    )
    async def enterprise_copilot_cancel(self, req: Request) -> Response:
        return await self._cancel(req)

    @route("DELETE", "/orgs/{org}/copilot/billing/selected_users", perm=("manage_billing:copilot", "admin:org"))
    async def org_copilot_cancel(self, req: Request) -> Response:
        return await self._cancel(req)

    @route(
        "POST",
        "/enterprises/{enterprise}/copilot/billing/selected_users",
        perm=("manage_billing:copilot", "admin:enterprise"),
    )
    async def enterprise_copilot_assign(self, req: Request) -> Response:
        return await self._assign(req)

    @route("POST", "/orgs/{org}/copilot/billing/selected_users", perm=("manage_billing:copilot", "admin:org"))
    async def org_copilot_assign(self, req: Request) -> Response:
        return await self._assign(req)

    # ----- GraphQL: enterprise ----------------------------------------------------------------
    def _insufficient(self, field: str, scope: str) -> Response:
        granted = ", ".join(f"'{g}'" for g in sorted(self.granted))
        return Response(
            200,
            {
                "errors": [
                    {
                        "type": "INSUFFICIENT_SCOPES",
                        "locations": [{"line": 2, "column": 3}],
                        "message": _INSUFFICIENT.format(field=field, scope=scope, granted=granted),
                    }
                ]
            },
        )

    def graphql_enterprise(self, text: str, external_identities: Any) -> Response | None:
        """Answer the enterprise queries and mutation in ``text`` (variables already inlined), or None."""
        if "admin:enterprise" not in self.granted and ("enterprise(" in text or "removeEnterpriseMember" in text):
            field = "removeEnterpriseMember" if "removeEnterpriseMember" in text else "enterprise"
            return self._insufficient(field, "admin:enterprise")
        node_id = f"E_kgDO{self.enterprise}"
        m = re.search(r"removeEnterpriseMember\s*\(\s*input\s*:\s*\{([^}]*)\}", text)
        if m:
            args = {k: json.loads(v) for k, v in re.findall(r"(\w+)\s*:\s*(\"[^\"]*\"|null)", m.group(1))}
            login = next((r["login"] for r in self.members.values() if f"U_{r['id']}" == args.get("userId")), None)
            if args.get("enterpriseId") != node_id or login is None:
                return Response(
                    200,
                    {
                        "data": {"removeEnterpriseMember": None},
                        "errors": [
                            {
                                "type": "NOT_FOUND",
                                "path": ["removeEnterpriseMember"],
                                "message": "Could not resolve to a node with the global id of "
                                f"'{args.get('userId') if login is None else args.get('enterpriseId')}'",
                            }
                        ],
                    },
                )
            self.enterprise_members.discard(login.lower())
            self.copilot_seats.pop(login.lower(), None)
            rec = self.members[login.lower()]
            if rec["state"] in ("active", "pending"):
                rec["state"], rec["teams"] = "removed", []
            return Response(200, {"data": {"removeEnterpriseMember": {"clientMutationId": None}}})
        m = re.search(r"enterprise\s*\(\s*slug\s*:\s*(\"[^\"]*\"|null)\s*\)", text)
        if not m:
            return None
        slug = json.loads(m.group(1))
        if (slug or "").lower() != self.enterprise.lower():
            return Response(
                200,
                {
                    "data": {"enterprise": None},
                    "errors": [
                        {
                            "type": "NOT_FOUND",
                            "path": ["enterprise"],
                            "message": f"Could not resolve to an Enterprise with the URL slug of '{slug}'.",
                        }
                    ],
                },
            )
        out: dict[str, Any] = {"id": node_id}
        if "samlIdentityProvider" in text:
            provider = external_identities(text) if self.saml_level == "enterprise" else None
            out["ownerInfo"] = {"samlIdentityProvider": provider}
        mm = re.search(r"members\s*\(([^)]*)\)", text)
        if mm:
            args = {k: json.loads(v) for k, v in re.findall(r"(\w+)\s*:\s*(\"[^\"]*\"|\d+|null)", mm.group(1))}
            query = str(args.get("query") or "").lower()
            logins = sorted(login for login in self.enterprise_members if query in login)
            nodes = [
                {"__typename": "User", "id": f"U_{self.members[x]['id']}", "login": self.members[x]["login"]}
                for x in logins[: int(args.get("first") or 100)]
            ]
            out["members"] = {"totalCount": len(logins), "nodes": nodes}
        return Response(200, {"data": {"enterprise": out}})
