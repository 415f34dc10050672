"""The GitHub simulator's GraphQL: an organization's SAML external identities and its members' verified-domain
emails, shaped as in ``@octokit/graphql-schema`` (enterprise queries are ``GitHubEnterprise``'s)."""

from __future__ import annotations

import json
import re
from typing import Any

from ._app import Request, Response, route
from ._github_ent import GitHubParts

__all__ = ["GitHubGraphQL"]


class GitHubGraphQL(GitHubParts):
    """Mixed into the GitHub simulator."""

    # ----- GraphQL: SAML external identities --------------------------------------------------
    @route("POST", "/graphql", write=False, perm=("admin:org", "read:org"))
    async def graphql(self, req: Request) -> Response:
        body = req.json()
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return Response(
                400, {"message": "Problems parsing JSON", "documentation_url": "https://docs.github.com/graphql"}
            )
        query, variables = body["query"], body.get("variables") or {}
        text = re.sub(r"\$(\w+)", lambda m: json.dumps(variables.get(m.group(1))), re.sub(r"^\s*query[^{]*", "", query))
        enterprise = self.graphql_enterprise(text, self._external_identities)
        if enterprise is not None:
            return enterprise
        m = re.search(r"organization\s*\(\s*login\s*:\s*(\"[^\"]*\"|null)\s*\)", text)
        if not m or ("externalIdentities" not in text and "membersWithRole" not in text):
            return Response(
                200,
                {
                    "errors": [
                        {
                            "message": "The sandbox supports organization { samlIdentityProvider { externalIdentities } "
                            "membersWithRole } and enterprise queries only."
                        }
                    ]
                },
            )
        org = json.loads(m.group(1))
        if (org or "").lower() != self.org.lower():
            return Response(
                200,
                {
                    "data": {"organization": None},
                    "errors": [
                        {
                            "type": "NOT_FOUND",
                            "path": ["organization"],
                            "locations": [{"line": 2, "column": 3}],
                            "message": f"Could not resolve to an Organization with the login of '{org}'.",
                        }
                    ],
                },
            )
        if "membersWithRole" in text:
            return Response(200, {"data": {"organization": {"membersWithRole": self._members_with_role(text)}}})
        # With SAML configured at the enterprise level the organization has no identity provider of its own.
        provider = self._external_identities(text) if self.saml_level == "org" else None
        return Response(200, {"data": {"organization": {"samlIdentityProvider": provider}}})

    def _members_with_role(self, text: str) -> dict[str, Any]:
        """``membersWithRole(first, after) { nodes { login organizationVerifiedDomainEmails(login) } }``: members
        only (outside collaborators are not members); a member's verified email in the company's domain."""
        a = re.search(r"membersWithRole\s*\(([^)]*)\)", text)
        args = dict(re.findall(r"(\w+)\s*:\s*(\"[^\"]*\"|\d+|null)", a.group(1))) if a else {}
        args = {k: json.loads(v) for k, v in args.items()}
        recs = [r for r in self.members.values() if r["state"] == "active"]
        after = str(args.get("after") or "0")
        start = int(after) if after.isdigit() else 0
        first = min(int(args.get("first") or 100), 100)
        page = recs[start : start + first]
        domain = "@" + self.company.domain.lower()
        nodes = [
            {
                "login": r["login"],
                "organizationVerifiedDomainEmails": [r["email"]] if r["email"].lower().endswith(domain) else [],
            }
            for r in page
        ]
        return {
            "totalCount": len(recs),
            "nodes": nodes,
            "pageInfo": {
                "hasNextPage": start + first < len(recs),
                "endCursor": str(start + len(page)) if page else None,
            },
        }

    def _external_identities(self, text: str) -> dict[str, Any]:
        """``samlIdentityProvider { externalIdentities(...) }`` for the arguments in ``text``."""
        a = re.search(r"externalIdentities\s*\(([^)]*)\)", text)
        args = dict(re.findall(r"(\w+)\s*:\s*(\"[^\"]*\"|\d+|null)", a.group(1))) if a else {}
        args = {k: json.loads(v) for k, v in args.items()}
        # Only organization members authenticate through the organization's SAML SSO; outside collaborators
        # are exempt from it and have no external identity (GitHub docs, "About identity and access
        # management with SAML single sign-on": outside collaborators are not required to use SAML SSO).
        recs = [r for r in self.members.values() if r["state"] in ("active", "pending")]
        if args.get("userName"):
            recs = [r for r in recs if r["email"].lower() == str(args["userName"]).lower()]
        if args.get("login"):
            recs = [r for r in recs if r["login"].lower() == str(args["login"]).lower()]
        start = int(args.get("after") or 0) if str(args.get("after") or "0").isdigit() else 0
        first = int(args.get("first") or 100)
        page = recs[start : start + first]
        nodes = [
            {
                "guid": f"{r['id']:x}-guid",
                "id": f"EI_{r['id']}",
                "samlIdentity": {"nameId": r["email"], "username": r["email"], "emails": [{"value": r["email"]}]},
                "scimIdentity": {"username": None, "emails": []},
                "user": {"login": r["login"]},
            }
            for r in page
        ]
        conn = {
            "totalCount": len(recs),
            "nodes": nodes,
            "edges": [{"node": n, "cursor": str(start + i + 1)} for i, n in enumerate(nodes)],
            "pageInfo": {
                "hasNextPage": start + first < len(recs),
                "endCursor": str(start + len(page)) if page else None,
            },
        }
        return {"externalIdentities": conn}
