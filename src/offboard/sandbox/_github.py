"""GitHub: org memberships, outside collaborators, invitations, SAML credentials, GraphQL identities, EMU SCIM."""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from ._app import HTTPError, Request, Response, Simulator, route
from ._github_commits import GitHubCommits
from ._github_emu import GitHubEmu
from ._github_ent import GitHubEnterprise
from ._github_graphql import GitHubGraphQL
from ._knobs import Limit

__all__ = ["GitHub"]

API = "https://api.github.com"
_DOCS = "https://docs.github.com/rest"


def _num(seed: int, key: str) -> int:
    return 1000 + int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:8], 16) % 90_000_000


def simple_user(login: str, uid: int) -> dict[str, Any]:
    u = f"{API}/users/{login}"
    return {
        "login": login,
        "id": uid,
        "node_id": f"MDQ6VXNlcj{uid}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
        "gravatar_id": "",
        "url": u,
        "html_url": f"https://github.com/{login}",
        "followers_url": f"{u}/followers",
        "following_url": f"{u}/following{{/other_user}}",
        "gists_url": f"{u}/gists{{/gist_id}}",
        "starred_url": f"{u}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{u}/subscriptions",
        "organizations_url": f"{u}/orgs",
        "repos_url": f"{u}/repos",
        "events_url": f"{u}/events{{/privacy}}",
        "received_events_url": f"{u}/received_events",
        "type": "User",
        "site_admin": False,
        "user_view_type": "public",
    }


class GitHub(GitHubEnterprise, GitHubGraphQL, GitHubEmu, GitHubCommits, Simulator):
    """A GitHub Enterprise Cloud org with SAML SSO, plus an EMU enterprise's SCIM endpoint."""

    system = "github"
    # Primary: 5,000/h for a PAT (15,000 for GHEC apps); secondary: 900 points/min per endpoint, 100 concurrent.
    default_limits = {
        "primary": Limit(5000, 3600),
        "graphql": Limit(5000, 3600),
        "secondary": Limit(900, 60),
        "scim": Limit(1000, 3600),
        "search": Limit(30, 60),  # the search API's own limit for an authenticated caller
    }
    default_granted = frozenset(
        {"admin:org", "read:org", "repo", "admin:enterprise", "scim:enterprise", "read:user", "user:email"}
    )
    max_concurrent = 100

    def __init__(self, company: Any, **kw: Any):
        super().__init__(company, **kw)
        self.org = company.org
        self.enterprise = company.enterprise
        self.token = "ghp_" + secrets.token_urlsafe(27).replace("-", "a").replace("_", "b")[:36]
        self.token_login = "offboard-bot"
        self.members: dict[str, dict[str, Any]] = {}  # login (lower) -> record
        self.invitations: dict[int, dict[str, Any]] = {}
        self.credentials: dict[int, dict[str, Any]] = {}
        self.scim_users: dict[str, dict[str, Any]] = {}
        self._window: dict[str, list[float]] = {}  # primary fixed windows: resource -> [start, used]
        self._inflight = 0
        for ident in company.in_system("github"):
            login = ident.github_login
            uid = _num(company.seed, login)
            rec = {
                "login": login,
                "id": uid,
                "email": ident.email,
                "role": "admin" if ident.admin else "member",
                "state": "collaborator" if ident.outside_collaborator else "active",
                "name": ident.name,
                "teams": [g for g in ident.groups if g in ("engineering", "oncall", "managers")],
                "scim_id": None,
            }
            self.members[login.lower()] = rec
            for i in range(ident.github_credentials):
                cid = _num(company.seed, f"{login}:cred{i}")
                kind = ("personal access token", "SSH key", "OAuth app token")[i % 3]
                cred = {
                    "login": login,
                    "credential_id": cid,
                    "credential_type": kind,
                    "credential_authorized_at": "2024-03-01T10:00:00Z",
                    "credential_accessed_at": "2025-01-10T08:00:00Z",
                    "authorized_credential_id": cid + 1,
                    "authorized_credential_title": f"{kind} {i + 1}",
                    "authorized_credential_note": "laptop",
                    "authorized_credential_expires_at": None,
                }
                if kind == "SSH key":  # fingerprint only for SSH keys; token_last_eight and scopes only for tokens
                    cred["fingerprint"] = hashlib.sha256(f"{cid}".encode()).hexdigest()[:16]
                else:
                    cred["token_last_eight"] = hashlib.sha256(f"{cid}".encode()).hexdigest()[:8]
                    cred["scopes"] = ["repo", "read:org"]
                self.credentials[cid] = cred
            if (
                ident.kind == "person"
                and ident.person
                and ident.person.type == "contractor"
                and not ident.outside_collaborator
                and len(self.invitations) < 3
            ):
                inv = _num(company.seed, f"invite:{login}")
                self.invitations[inv] = {
                    "id": inv,
                    "login": None,
                    "email": f"{ident.local}+gh@{company.domain}",
                    "role": "direct_member",
                }
            sid = hashlib.sha256(f"{company.seed}:scim:{login}".encode()).hexdigest()
            sid = f"{sid[:8]}-{sid[8:12]}-{sid[12:16]}-{sid[16:20]}-{sid[20:32]}"
            rec["scim_id"] = sid
            self.scim_users[sid] = {
                "id": sid,
                "externalId": ident.employee_id or ident.key,
                "userName": ident.email,
                "displayName": ident.name,
                "name": {"givenName": ident.given_name, "familyName": ident.family_name, "formatted": ident.name},
                "emails": [{"value": ident.email, "type": "work", "primary": True}],
                "active": True,
                "roles": [{"value": "enterprise_owner" if ident.admin else "user", "primary": False}],
                "login": login,
            }
        self._init_enterprise()
        self._init_commits(company.seed)

    # ----- framework hooks --------------------------------------------------------------------
    def connector_settings(self, secret: Callable[[str, str], str]) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "org": self.org,
            "token": secret("github-token", self.token),
            "api_url": self.base_url,
        }
        # Outside collaborators sign in without the organization's SAML SSO, so no external identity names
        # them: an admin maps their logins by hand, as the sandbox's config does here.
        collaborators = {r["email"]: r["login"] for r in self.members.values() if r["state"] == "collaborator"}
        if collaborators:
            settings["accounts"] = dict(sorted(collaborators.items()))
        return settings

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self._inflight += 1
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._inflight -= 1

    def authenticate(self, req: Request) -> None:
        scheme, _, tok = req.header("authorization").partition(" ")
        if req.path.startswith("/scim/") and not req.header("user-agent"):
            raise HTTPError(
                403,
                "Request forbidden by administrative rules. Please make sure your request has a User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required). Check https://developer.github.com for other possible causes.",
            )
        if scheme.lower() not in ("token", "bearer") or tok != self.token:
            if req.path == "/rate_limit" and not tok:
                return
            raise HTTPError(401, "Requires authentication" if not tok else "Bad credentials")

    def _resource(self, req: Request) -> str:
        if req.path.startswith("/search/"):
            return "search"
        return "graphql" if req.path == "/graphql" else "scim" if req.path.startswith("/scim/") else "core"

    def _primary(self, resource: str) -> tuple[int, int, int]:
        """(limit, used, reset epoch) of the fixed primary window."""
        limit = self.limits["primary" if resource == "core" else resource]
        per = limit.per * self.knobs.window_scale
        now = time.time()
        win = self._window.get(resource)
        if win is None or now >= win[0] + per:
            win = self._window[resource] = [now, 0]
        return int(limit.count), int(win[1]), math.ceil(win[0] + per)

    def rate_limit(self, req: Request, limit: str | None) -> float:
        if req.path == "/rate_limit" or not self.knobs.rate_limits:
            return 0.0
        if self._inflight > self.max_concurrent:
            return -1.0
        resource = self._resource(req)
        lim, used, reset = self._primary(resource)
        if used >= lim:
            return max(reset - time.time(), 1.0)
        self._window[resource][1] += 1
        points = 5 if req.write else 1
        wait = self.limiter.take("secondary", f"{req.method} {req.path}", points)
        return -max(wait, 1.0) if wait else 0.0

    def throttle(self, req: Request, retry_after: float, why: str) -> Response:
        resource = self._resource(req)
        lim, used, reset = self._primary(resource)
        if why == "limit" and retry_after > 0 and used >= lim:  # primary limit: 403 with remaining 0, no retry-after
            status = 403 if self.faults.rng.random() < 0.5 else 429
            msg = f"API rate limit exceeded for user ID {_num(0, self.token_login)}. If you reach out to GitHub Support for help, please include the request ID {secrets.token_hex(8).upper()}."
            return Response(
                status,
                {
                    "message": msg,
                    "documentation_url": f"{_DOCS}/overview/rate-limits-for-the-rest-api",
                    "status": str(status),
                },
            )
        status = 403 if self.faults.rng.random() < 0.5 else 429
        headers = {"retry-after": str(max(1, int(abs(retry_after) + 0.999)))} if self.faults.rng.random() < 0.7 else {}
        msg = (
            "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub "
            f"Support for help, please include the request ID {secrets.token_hex(8).upper()}."
        )
        return Response(
            status,
            {
                "message": msg,
                "documentation_url": f"{_DOCS}/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
                "status": str(status),
            },
            headers,
        )

    def forced(self, req: Request, status: int, retry_after: float | None) -> Response:
        if status in (403, 429) and retry_after is not None or status == 429:
            msg = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
            headers = {"retry-after": str(int(retry_after))} if retry_after is not None else {}
            return Response(
                status,
                {
                    "message": msg,
                    "documentation_url": f"{_DOCS}/overview/rate-limits-for-the-rest-api",
                    "status": str(status),
                },
                headers,
            )
        return super().forced(req, status, retry_after)

    def error(self, err: HTTPError) -> Response:
        body = {"message": err.message, "documentation_url": _DOCS, "status": str(err.status)}
        return Response(err.status, body, dict(err.headers))

    def render(self, req: Request, err: HTTPError) -> Response:
        if req.path.startswith("/scim/"):
            body = {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": err.status,
                "detail": err.message,
                "message": err.message,
                "documentation_url": f"{_DOCS}/enterprise-admin/scim",
            }
            if err.reason:
                body["scimType"] = err.reason
            return Response(err.status, body, dict(err.headers), content_type="application/scim+json; charset=utf-8")
        return self.error(err)

    def unavailable(self, req: Request, status: int) -> Response:
        return self.error(HTTPError(status, "Server Error" if status == 500 else "Service Unavailable"))

    def forbidden(self, req: Request, needed: tuple[str, ...]) -> Response:
        resp = self.error(
            HTTPError(
                403,
                "Must have admin rights to Repository."
                if "repo" in needed
                else "You must be an organization owner or have the admin:org scope.",
            )
        )
        resp.headers["x-accepted-oauth-scopes"] = ", ".join(needed)
        return resp

    def decorate(self, req: Request, resp: Response) -> None:
        resource = self._resource(req)
        lim, used, reset = self._primary(resource)
        h = resp.headers
        h["x-ratelimit-limit"] = str(lim)
        h["x-ratelimit-remaining"] = str(max(lim - used, 0))
        h["x-ratelimit-used"] = str(used)
        h["x-ratelimit-reset"] = str(reset)
        h["x-ratelimit-resource"] = resource
        h["x-oauth-scopes"] = ", ".join(sorted(self.granted))
        h["x-github-api-version-selected"] = "2022-11-28"
        h["x-github-request-id"] = secrets.token_hex(8).upper()
        h.setdefault("x-accepted-oauth-scopes", "")

    def not_found(self, req: Request) -> Response:
        return self.render(req, HTTPError(404, "Not Found"))

    # ----- inspection -------------------------------------------------------------------------
    def _rec(self, login: str) -> dict[str, Any] | None:
        rec = self.members.get(login.lower())
        if rec is None:
            rec = next((r for r in self.members.values() if r["email"].lower() == login.lower()), None)
        return rec

    def account(self, key: str) -> dict[str, Any] | None:
        rec = self._rec(key)
        if rec is None:
            return None
        scim = self.scim_users.get(rec["scim_id"] or "")
        return {
            **rec,
            "teams": list(rec["teams"]),
            "member": rec["state"] in ("active", "pending"),
            "credentials": sorted(c["credential_id"] for c in self.credentials.values() if c["login"] == rec["login"]),
            "scim_active": None if scim is None else scim["active"],
        }

    def accounts(self) -> list[dict[str, Any]]:
        return [self.account(k) for k in list(self.members)]  # type: ignore[misc]

    # ----- REST -------------------------------------------------------------------------------
    def _org(self, req: Request) -> None:
        if req.params.get("org", "").lower() != self.org.lower():
            raise HTTPError(404, "Not Found")

    def _org_simple(self) -> dict[str, Any]:
        u = f"{API}/orgs/{self.org}"
        return {
            "login": self.org,
            "id": _num(0, self.org),
            "node_id": "O_kgDOSANDBOX",
            "url": u,
            "repos_url": f"{u}/repos",
            "events_url": f"{u}/events",
            "hooks_url": f"{u}/hooks",
            "issues_url": f"{u}/issues",
            "members_url": f"{u}/members{{/member}}",
            "public_members_url": f"{u}/public_members{{/member}}",
            "avatar_url": "https://avatars.githubusercontent.com/u/1?v=4",
            "description": "Corp Example",
        }

    def _page(self, req: Request, items: list[Any]) -> Response:
        per = min(int(req.query.get("per_page", "30") or 30), 100)
        page = max(int(req.query.get("page", "1") or 1), 1)
        chunk = items[(page - 1) * per : page * per]
        headers = {}
        if page * per < len(items):
            last = (len(items) + per - 1) // per
            kept = "".join(f"&{k}={quote(v, safe='')}" for k, v in req.query.items() if k not in ("page", "per_page"))
            base = f"{self.base_url}{req.path}?per_page={per}{kept}"
            headers["link"] = f'<{base}&page={page + 1}>; rel="next", <{base}&page={last}>; rel="last"'
        return Response(200, chunk, headers)

    @route("GET", "/user", perm=("read:user", "admin:org"))
    async def user(self, req: Request) -> Response:
        return Response(200, {**simple_user(self.token_login, _num(0, self.token_login)), "name": "Offboard bot"})

    @route("GET", "/rate_limit")
    async def rate_limit_status(self, req: Request) -> Response:
        res = {}
        for r in ("core", "graphql", "scim", "search"):
            lim, used, reset = self._primary(r)
            res[r] = {"limit": lim, "used": used, "remaining": max(lim - used, 0), "reset": reset}
        return Response(200, {"resources": res, "rate": res["core"]})

    @route("GET", "/orgs/{org}", perm=("read:org", "admin:org"))
    async def get_org(self, req: Request) -> Response:
        self._org(req)
        return Response(
            200,
            {
                **self._org_simple(),
                "html_url": f"https://github.com/{self.org}",
                "type": "Organization",
                "created_at": "2020-01-01T00:00:00Z",
                "updated_at": "2025-01-01T00:00:00Z",
                "has_organization_projects": True,
                "has_repository_projects": True,
                "public_repos": 3,
                "public_gists": 0,
                "followers": 0,
                "following": 0,
                "archived_at": None,
            },
        )

    @route("GET", "/orgs/{org}/members", perm=("read:org", "admin:org"))
    async def list_members(self, req: Request) -> Response:
        self._org(req)
        role = req.query.get("role", "all")
        items = [
            simple_user(r["login"], r["id"])
            for r in self.members.values()
            if r["state"] == "active" and (role == "all" or r["role"] == role)
        ]
        return self._page(req, items)

    def _member(self, req: Request) -> dict[str, Any]:
        self._org(req)
        rec = self.members.get(req.params["username"].lower())
        if rec is None:
            raise HTTPError(404, "Not Found")
        return rec

    @route("GET", "/orgs/{org}/members/{username}", perm=("read:org", "admin:org"))
    async def check_member(self, req: Request) -> Response:
        self._org(req)
        rec = self.members.get(req.params["username"].lower())
        if rec is None or rec["state"] != "active":
            raise HTTPError(404, "User does not exist or is not a member of the organization")
        return Response(204)

    def _remove(self, rec: dict[str, Any], req: Request) -> None:
        if not req.lie:
            rec["state"] = "removed"
            rec["teams"] = []

    @route("DELETE", "/orgs/{org}/members/{username}", perm="admin:org")
    async def remove_member(self, req: Request) -> Response:
        rec = self._member(req)
        if rec["state"] == "active":
            self._remove(rec, req)
        return Response(204)

    def _membership(self, rec: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": f"{API}/orgs/{self.org}/memberships/{rec['login']}",
            "state": rec["state"],
            "role": rec["role"],
            "organization_url": f"{API}/orgs/{self.org}",
            "organization": self._org_simple(),
            "user": simple_user(rec["login"], rec["id"]),
        }

    @route("GET", "/orgs/{org}/memberships/{username}", perm=("read:org", "admin:org"))
    async def get_membership(self, req: Request) -> Response:
        rec = self._member(req)
        if rec["state"] not in ("active", "pending"):
            raise HTTPError(404, "Not Found")
        return Response(200, self._membership(rec))

    @route("PUT", "/orgs/{org}/memberships/{username}", perm="admin:org")
    async def set_membership(self, req: Request) -> Response:
        rec = self._member(req)
        body = req.json() or {}
        role = body.get("role", "member")
        if role not in ("admin", "member"):
            raise HTTPError(422, "Validation Failed")
        if not req.lie:
            if rec["state"] != "active":
                rec["state"] = "pending"  # re-adding sends an invitation the user must accept
            rec["role"] = role
        return Response(200, self._membership(rec))

    @route("DELETE", "/orgs/{org}/memberships/{username}", perm="admin:org")
    async def remove_membership(self, req: Request) -> Response:
        rec = self._member(req)
        if rec["state"] not in ("active", "pending"):
            raise HTTPError(404, "Not Found")
        self._remove(rec, req)
        return Response(204)

    @route("GET", "/orgs/{org}/outside_collaborators", perm=("read:org", "admin:org"))
    async def outside_collaborators(self, req: Request) -> Response:
        self._org(req)
        return self._page(
            req, [simple_user(r["login"], r["id"]) for r in self.members.values() if r["state"] == "collaborator"]
        )

    @route("PUT", "/orgs/{org}/outside_collaborators/{username}", perm="admin:org")
    async def convert_to_collaborator(self, req: Request) -> Response:
        rec = self._member(req)
        if rec["state"] != "active":
            raise HTTPError(404, "Not Found")
        if not req.lie:
            rec["state"] = "collaborator"
        return Response(204)

    @route("DELETE", "/orgs/{org}/outside_collaborators/{username}", perm="admin:org")
    async def remove_collaborator(self, req: Request) -> Response:
        self._org(req)
        rec = self.members.get(req.params["username"].lower())
        if rec is not None and rec["state"] == "active":
            raise HTTPError(422, "You cannot specify an organization member to remove as an outside collaborator.")
        if rec is not None and rec["state"] == "collaborator":
            self._remove(rec, req)
        return Response(204)

    def invite(self, email: str | None = None, login: str | None = None, role: str = "direct_member") -> int:
        """Behind offboard's back, as an owner would on the organization's People page: invite ``email``
        (an email invitation: ``login`` null until accepted) or an existing ``login`` (a pending membership)."""
        if login is not None:
            rec = self.members[login.lower()]
            rec["state"], rec["role"] = "pending", "admin" if role == "admin" else "member"
            return _num(0, f"invite:{rec['login']}")
        inv = _num(len(self.invitations), f"invite:{email}")
        self.invitations[inv] = {"id": inv, "login": None, "email": email, "role": role}
        return inv

    @route("GET", "/orgs/{org}/invitations", perm="admin:org")
    async def list_invitations(self, req: Request) -> Response:
        self._org(req)
        inviter = simple_user(self.token_login, _num(0, self.token_login))
        # An invitation by login is the user's pending membership: GitHub lists it here too, with its login
        # and a null email (https://docs.github.com/en/rest/orgs/members#list-pending-organization-invitations).
        pending = {
            _num(0, f"invite:{r['login']}"): {
                "id": _num(0, f"invite:{r['login']}"),
                "login": r["login"],
                "email": None,
                "role": "admin" if r["role"] == "admin" else "direct_member",
            }
            for r in self.members.values()
            if r["state"] == "pending"
        }
        items = [
            {
                **inv,
                "created_at": "2025-01-02T10:00:00Z",
                "failed_at": None,
                "failed_reason": None,
                "inviter": inviter,
                "team_count": 0,
                "node_id": f"OI_{inv['id']}",
                "invitation_teams_url": f"{API}/organizations/1/invitations/{inv['id']}/teams",
                "invitation_source": "member",
            }
            for inv in [*self.invitations.values(), *pending.values()]
        ]
        return self._page(req, items)

    @route("POST", "/orgs/{org}/invitations", perm="admin:org")
    async def create_invitation(self, req: Request) -> Response:
        """By email only here (``invitee_id`` names a GitHub user: a login's invitation is PUT membership);
        201 with the invitation, 422 for a missing address or a role outside the documented four
        (https://docs.github.com/en/rest/orgs/members#create-an-organization-invitation)."""
        self._org(req)
        body = req.json() or {}
        email, role = body.get("email"), body.get("role", "direct_member")
        if not isinstance(email, str) or "@" not in email:
            raise HTTPError(422, "Validation Failed")
        if role not in ("admin", "direct_member", "billing_manager", "reinstate"):
            raise HTTPError(422, "Validation Failed")
        if any(str(inv["email"]).lower() == email.lower() for inv in self.invitations.values()):
            raise HTTPError(422, "Validation Failed")  # GitHub: "Invitee has already been invited"
        role = "direct_member" if role == "reinstate" else role
        invitation = {"id": _num(len(self.invitations), f"invite:{email}"), "login": None, "email": email, "role": role}
        if not req.lie:
            self.invite(email=email, role=role)
        return Response(201, {**invitation, "created_at": "2025-01-02T10:00:00Z", "team_count": 0})

    @route("DELETE", "/orgs/{org}/invitations/{invitation_id}", perm="admin:org")
    async def cancel_invitation(self, req: Request) -> Response:
        self._org(req)
        try:
            inv = int(req.params["invitation_id"])
        except ValueError:
            raise HTTPError(404, "Not Found") from None
        rec = next((r for r in self.members.values() if _num(0, f"invite:{r['login']}") == inv), None)
        if rec is not None and rec["state"] == "pending":  # cancelling a login's invitation ends its membership
            if not req.lie:
                rec["state"] = "removed"
            return Response(204)
        if inv not in self.invitations:
            raise HTTPError(404, "Not Found")
        if not req.lie:
            del self.invitations[inv]
        return Response(204)

    @route("GET", "/orgs/{org}/credential-authorizations", perm=("read:org", "admin:org"))
    async def credential_authorizations(self, req: Request) -> Response:
        self._org(req)
        login = req.query.get("login", "").lower()
        items = [c for c in self.credentials.values() if not login or c["login"].lower() == login]
        return self._page(req, items)

    @route("DELETE", "/orgs/{org}/credential-authorizations/{credential_id}", perm="admin:org")
    async def revoke_credential(self, req: Request) -> Response:
        self._org(req)
        try:
            cid = int(req.params["credential_id"])
        except ValueError:
            raise HTTPError(404, "Not Found") from None
        if cid not in self.credentials:
            raise HTTPError(404, "Not Found")
        if not req.lie:
            del self.credentials[cid]
        return Response(204)

    @route("GET", "/users/{username}")
    async def get_user(self, req: Request) -> Response:
        rec = self.members.get(req.params["username"].lower())
        if rec is None:
            raise HTTPError(404, "Not Found")
        return Response(
            200,
            {
                **simple_user(rec["login"], rec["id"]),
                "name": rec["name"],
                "company": None,
                "blog": "",
                "location": None,
                "email": None,
                "hireable": None,
                "bio": None,
                "public_repos": 1,
                "public_gists": 0,
                "followers": 0,
                "following": 0,
                "created_at": "2020-01-01T00:00:00Z",
                "updated_at": "2025-01-01T00:00:00Z",
            },
        )
