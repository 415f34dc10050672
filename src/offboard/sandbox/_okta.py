"""Okta: the Management API's users, lifecycle, sessions, groups, grants and System Log, over TLS.

Behaviour follows Okta's Management API (okta-management-openapi-spec and developer.okta.com):

* authentication ``Authorization: SSWS <api token>`` (or ``Bearer`` for an OAuth service app); a bad token is
  401 ``E0000011`` "Invalid token provided"; a missing scope is 403 ``E0000006``;
* every error is ``{errorCode, errorSummary, errorLink, errorId, errorCauses}``;
* lists page with a ``Link: <...?after=CURSOR>; rel="next"`` header (an opaque ``after`` cursor);
* every answer carries ``X-Rate-Limit-Limit``, ``-Remaining`` and ``-Reset`` (UTC epoch seconds) for the
  endpoint's bucket; over the limit: 429 ``E0000047`` with the same headers and no ``Retry-After``;
* lifecycle: suspend only from ``ACTIVE`` and unsuspend only from ``SUSPENDED`` (else 400 ``E0000001``);
  deactivate from any status but ``DEPROVISIONED`` (there: 403 ``E0000038`` "This operation is not allowed in the
  user's current status"), which removes the user's group memberships, app assignments, sessions and grants;
  ``activate`` from ``DEPROVISIONED`` starts a fresh activation (status ``PROVISIONED``, no memberships back);
* ``DELETE /api/v1/users/{id}/sessions`` clears sessions (and tokens with ``oauthTokens=true``) and writes a
  ``user.session.clear`` event to the System Log (``GET /api/v1/logs``), the only read-back Okta offers.
"""

from __future__ import annotations

import email.utils
import hashlib
import re
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from ._app import HTTPError, Request, Response, Simulator, route
from ._knobs import Limit
from ._okta_access import OktaAccess

__all__ = ["Okta"]

#: Okta's published per-minute limits (Enterprise column of "Management rate limits"), one bucket each.
_BUCKETS = {
    "users": Limit(600, 60),  # GET or POST /api/v1/users
    "user_get": Limit(1000, 60),  # GET /api/v1/users/{idOrLogin}
    "user_write": Limit(600, 60),  # POST, PUT, DELETE /api/v1/users/{id}
    "groups_id": Limit(600, 60),  # /api/v1/groups/{id}
    "logs": Limit(50, 60),  # /api/v1/logs
    "apps": Limit(100, 60),  # /api/v1/apps/* (create, list and other app actions)
    "other": Limit(600, 60),  # most other /api/v1 calls
}
_SEARCHABLE = ("profile.login", "profile.email", "profile.secondEmail", "id", "status", "profile.employeeNumber")
_TERM = re.compile(r'^\s*([A-Za-z.]+)\s+(eq|sw)\s+"((?:[^"\\]|\\.)*)"\s*$')


_CODES = {400: "E0000001", 401: "E0000011", 403: "E0000006", 404: "E0000007", 405: "E0000022", 429: "E0000047"}


def _oid(prefix: str, seed: int, key: str) -> str:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()
    return prefix + "".join(c if c.isdigit() else c.upper() if int(c, 16) % 2 else c for c in digest[:17])


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{datetime.now(UTC).microsecond // 1000:03d}Z"


class Okta(OktaAccess, Simulator):
    """An Okta org: people with lifecycle status, groups (Everyone built in), OAuth grants and sessions."""

    system = "okta"
    scheme = "https"
    default_limits = _BUCKETS
    default_granted = frozenset(
        {
            "okta.users.read",
            "okta.users.manage",
            "okta.groups.manage",
            "okta.logs.read",
            "okta.apps.read",
            "okta.apps.manage",
        }
    )

    def __init__(self, company: Any, **kw: Any):
        super().__init__(company, **kw)
        self.token = "00" + hashlib.sha256(f"okta:{company.seed}".encode()).hexdigest()[:12] + secrets.token_hex(14)
        self.users: dict[str, dict[str, Any]] = {}
        self.groups: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        everyone = _oid("00g", company.seed, "Everyone")
        self.groups[everyone] = {"id": everyone, "type": "BUILT_IN", "name": "Everyone", "members": set()}
        for name, description in company.groups.items():
            gid = _oid("00g", company.seed, name)
            self.groups[gid] = {
                "id": gid,
                "type": "OKTA_GROUP",
                "name": name,
                "description": description,
                "members": set(),
            }
        by_name = {g["name"]: gid for gid, g in self.groups.items()}
        # Apps: Zoom assigned to each person directly (scope USER), GitHub SSO through the engineering group.
        self.apps: dict[str, dict[str, Any]] = {}
        for name, label, group in (("zoomus", "Zoom", None), ("githubcloud", "GitHub SSO", "engineering")):
            aid = _oid("0oa", company.seed, name)
            self.apps[aid] = {"id": aid, "name": name, "label": label, "group": by_name.get(group or ""), "users": {}}
        for ident in company.in_system("okta"):
            uid = _oid("00u", company.seed, ident.key)
            person = ident.person
            second = person.aliases[0] if person is not None and person.aliases else None
            self.users[uid] = {
                "id": uid,
                "status": "ACTIVE",
                "created": "2024-01-15T09:00:00.000Z",
                "lastLogin": "2026-01-05T08:30:00.000Z",
                "statusChanged": "2024-01-15T09:00:00.000Z",
                "profile": {
                    "login": ident.email,
                    "email": ident.email,
                    "secondEmail": second,
                    "firstName": ident.given_name,
                    "lastName": ident.family_name,
                    "employeeNumber": ident.employee_id,
                    "title": ident.title,
                },
                "admin": ident.admin,
                "sessions": 2,
                "grants": [
                    {"id": _oid("oag", company.seed, f"{ident.key}:{app}"), "clientId": app, "status": "ACTIVE"}
                    for app, _ in ident.oauth_apps
                ],
            }
            self.groups[everyone]["members"].add(uid)
            for app in self.apps.values():
                if app["group"] is None:
                    app["users"][uid] = "USER"
            for g in ident.groups:
                if g in by_name:
                    self.groups[by_name[g]]["members"].add(uid)

    # ----- framework hooks --------------------------------------------------------------------
    def connector_settings(self, secret: Callable[[str, str], str]) -> dict[str, Any]:
        return {
            "org_url": self.base_url,
            "token": secret("okta-token", self.token),
            "ca_file": str(self.data_dir / "sandbox-ca.pem"),
        }

    def authenticate(self, req: Request) -> None:
        # okta SDK 3.x joins its authorization mode and the token without a space ("SSWS00ab..."), and the
        # requests it sends work against Okta, so both spellings are accepted.
        header = req.header("authorization")
        scheme = next((s for s in ("SSWS", "Bearer") if header.startswith(s)), "")
        if not scheme or header[len(scheme) :].strip() != self.token:
            raise HTTPError(401, "Invalid token provided", reason="E0000011")

    def client_key(self, req: Request) -> str:
        return "org"  # Okta's buckets are per org (and per endpoint)

    def rate_limit(self, req: Request, limit: str | None) -> float:
        return self.limiter.take(self._bucket(req), "org")

    def _bucket(self, req: Request) -> str:
        parts = req.path.rstrip("/").split("/")  # ['', 'api', 'v1', 'users', id, ...]
        if req.path.startswith("/api/v1/logs"):
            return "logs"
        if len(parts) >= 4 and parts[3] == "users":
            if len(parts) == 4:
                return "users"
            if len(parts) == 5 and req.method == "GET":
                return "user_get"
            return "user_write" if req.write else "other"
        if len(parts) >= 5 and parts[3] == "groups":
            return "groups_id"
        if len(parts) >= 4 and parts[3] == "apps":
            return "apps"
        return "other"

    def _rate_headers(self, req: Request, wait: float = 0.0) -> dict[str, str]:
        bucket = self._bucket(req)
        limit = self.limits[bucket]
        left = self.limiter.remaining(bucket, "org")
        per = limit.per * self.knobs.window_scale
        now = int(time.time())  # Date and X-Rate-Limit-Reset from one clock reading, in whole seconds
        reset = now + int((wait if wait else per) + 0.999)
        return {
            "Date": email.utils.formatdate(now, usegmt=True),
            "X-Rate-Limit-Limit": str(int(limit.count)),
            "X-Rate-Limit-Remaining": str(max(0, int(left))),
            "X-Rate-Limit-Reset": str(reset),
        }

    def _body(self, code: str, summary: str, causes: list[str] | None = None) -> dict[str, Any]:
        return {
            "errorCode": code,
            "errorSummary": summary,
            "errorLink": code,
            "errorId": "oae" + secrets.token_urlsafe(16)[:22],
            "errorCauses": [{"errorSummary": c} for c in causes or []],
        }

    def error(self, err: HTTPError) -> Response:
        code = err.reason if re.fullmatch(r"E\d{7}", err.reason or "") else _CODES.get(err.status, "E0000001")
        causes = list(err.headers.pop("x-causes", "").split("\n")) if err.headers.get("x-causes") else []
        return Response(err.status, self._body(code, err.message, causes), dict(err.headers))

    def throttle(self, req: Request, retry_after: float, why: str) -> Response:
        body = self._body("E0000047", "API call exceeded rate limit due to too many requests.")
        return Response(429, body, self._rate_headers(req, max(retry_after, 0.0)))

    def forced(self, req: Request, status: int, retry_after: float | None) -> Response:
        if status == 429:
            return self.throttle(req, retry_after if retry_after is not None else 60.0, "forced")
        if status == 401:
            return self.error(HTTPError(401, "Invalid token provided", reason="E0000011"))
        if status == 403:
            return self.error(
                HTTPError(403, "You do not have permission to perform the requested action", reason="E0000006")
            )
        if status >= 500:
            return self.unavailable(req, status)
        return super().forced(req, status, retry_after)

    def forbidden(self, req: Request, needed: tuple[str, ...]) -> Response:
        return self.error(
            HTTPError(403, "You do not have permission to perform the requested action", reason="E0000006")
        )

    def unavailable(self, req: Request, status: int) -> Response:
        if status == 503:
            return self.error(HTTPError(503, "Service Unavailable", reason="E0000010"))
        return self.error(HTTPError(status, "Internal Server Error", reason="E0000009"))

    def not_found(self, req: Request) -> Response:
        return self.error(HTTPError(404, f"Not found: Resource not found: {req.path} (Resource)", reason="E0000007"))

    def decorate(self, req: Request, resp: Response) -> None:
        if resp.status != 429:
            resp.headers.update(self._rate_headers(req))
        resp.headers.setdefault("Date", email.utils.formatdate(usegmt=True))
        resp.headers["X-Okta-Request-Id"] = secrets.token_urlsafe(12)

    # ----- inspection -------------------------------------------------------------------------
    def _find(self, key: str) -> dict[str, Any] | None:
        if key in self.users:
            return self.users[key]
        low = key.lower()
        for user in self.users.values():
            login = str(user["profile"]["login"]).lower()
            if low in (login, login.split("@", 1)[0]):
                return user
        return None

    def account(self, key: str) -> dict[str, Any] | None:
        user = self._find(key)
        if user is None:
            return None
        return {
            "id": user["id"],
            "login": user["profile"]["login"],
            "status": user["status"],
            "active": user["status"] == "ACTIVE",
            "groups": sorted(g["name"] for g in self.groups.values() if user["id"] in g["members"]),
            "grants": sorted(g["clientId"] for g in user["grants"] if g["status"] == "ACTIVE"),
            "apps": sorted(a["label"] for a in self.apps.values() if self._scope(a, user["id"])),
            "sessions": user["sessions"],
        }

    def accounts(self) -> list[dict[str, Any]]:
        return [a for uid in list(self.users) if (a := self.account(uid)) is not None]

    def sign_in(self, key: str) -> None:
        """The person signs in again: a new session and a newer ``lastLogin``."""
        user = self._require(key)
        user["sessions"] += 1
        user["lastLogin"] = _now()

    # ----- helpers ----------------------------------------------------------------------------
    def _require(self, key: str) -> dict[str, Any]:
        user = self._find(key)
        if user is None:
            raise HTTPError(404, f"Not found: Resource not found: {key} (User)", reason="E0000007")
        return user

    def _user(self, user: dict[str, Any]) -> dict[str, Any]:
        base = f"{self.base_url}/api/v1/users/{user['id']}"
        return {
            "id": user["id"],
            "status": user["status"],
            "created": user["created"],
            "activated": user["created"],
            "statusChanged": user["statusChanged"],
            "lastLogin": user["lastLogin"],
            "lastUpdated": user["statusChanged"],
            "passwordChanged": user["created"],
            "type": {"id": "oty1sandbox000000001"},
            "profile": {k: v for k, v in user["profile"].items() if v is not None},
            "credentials": {"provider": {"type": "OKTA", "name": "OKTA"}},
            "_links": {"self": {"href": base}},
        }

    def _group(self, group: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": group["id"],
            "created": "2024-01-01T00:00:00.000Z",
            "lastUpdated": "2024-01-01T00:00:00.000Z",
            "lastMembershipUpdated": "2024-01-01T00:00:00.000Z",
            "objectClass": ["okta:user_group"] if group["type"] != "APP_GROUP" else ["okta:windows_security_principal"],
            "type": group["type"],
            "profile": {"name": group["name"], "description": group.get("description") or group["name"]},
            "_links": {"self": {"href": f"{self.base_url}/api/v1/groups/{group['id']}"}},
        }

    def _page(self, req: Request, items: list[Any], default: int = 200, most: int = 200) -> Response:
        raw_limit = req.query.get("limit", str(default))
        if not raw_limit.isdigit() or int(raw_limit) < 1:
            raise HTTPError(
                400,
                "Api validation failed: limit",
                reason="E0000001",
                headers={"x-causes": "limit: must be a positive integer"},
            )
        size = self.knobs.page(min(int(raw_limit), most))
        after = req.query.get("after", "")
        start = 0
        if after:
            try:
                start = int(after.removeprefix("c"), 36)
            except ValueError:
                raise HTTPError(
                    400,
                    "Api validation failed: after",
                    reason="E0000001",
                    headers={"x-causes": "after: invalid cursor"},
                ) from None
        chunk = items[start : start + size]
        links = [f'<{self.base_url}{req.path}?{req.query_string}>; rel="self"']
        if start + size < len(items):
            query = {k: v for k, v in req.query.items() if k != "after"}
            query["after"] = "c" + _b36(start + size)
            qs = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in query.items())
            links.append(f'<{self.base_url}{req.path}?{qs}>; rel="next"')
        return Response(200, chunk, {"Link": ", ".join(links)})

    def _search(self, expression: str) -> Callable[[dict[str, Any]], bool]:
        terms = [t for t in re.split(r"\s+or\s+", expression.strip(), flags=re.IGNORECASE) if t.strip()]
        checks: list[tuple[str, str, str]] = []
        for term in terms:
            m = _TERM.match(term.strip().strip("()"))
            if m is None or m.group(1) not in _SEARCHABLE:
                raise HTTPError(
                    400,
                    "Invalid search criteria.",
                    reason="E0000031",
                    headers={"x-causes": f"search: unsupported expression {term.strip()!r}"},
                )
            checks.append((m.group(1), m.group(2), m.group(3).replace('\\"', '"').lower()))

        def value(user: dict[str, Any], attr: str) -> str:
            if attr.startswith("profile."):
                return str(user["profile"].get(attr[8:]) or "").lower()
            return str(user.get(attr) or "").lower()

        return lambda u: any((value(u, a) == v) if op == "eq" else value(u, a).startswith(v) for a, op, v in checks)

    def _event(self, kind: str, user: dict[str, Any], outcome: str = "SUCCESS") -> None:
        self.events.append(
            {
                "uuid": secrets.token_hex(16),
                "published": _now(),
                "eventType": kind,
                "severity": "INFO",
                "displayMessage": "User session cleared" if kind == "user.session.clear" else kind,
                "outcome": {"result": outcome},
                "actor": {"id": "0oasandboxservice01", "type": "PublicClientApp", "displayName": "offboard"},
                "target": [
                    {
                        "id": user["id"],
                        "type": "User",
                        "alternateId": user["profile"]["login"],
                        "displayName": f"{user['profile']['firstName']} {user['profile']['lastName']}",
                    }
                ],
            }
        )

    def _transition(self, user: dict[str, Any], status: str) -> None:
        user["status"] = status
        user["statusChanged"] = _now()

    # ----- users --------------------------------------------------------------------------------
    @route("GET", "/api/v1/users", perm=("okta.users.read", "okta.users.manage"))
    async def list_users(self, req: Request) -> Response:
        users = list(self.users.values())
        if "search" in req.query or "filter" in req.query:
            match = self._search(req.query.get("search") or req.query.get("filter") or "")
            users = [u for u in users if match(u)]
        else:  # a plain list omits DEPROVISIONED users (a search or filter returns them)
            users = [u for u in users if u["status"] != "DEPROVISIONED"]
        page = self._page(req, users, most=200)
        page.body = [self._user(u) for u in page.body]
        return page

    @route("GET", "/api/v1/users/{id}", perm=("okta.users.read", "okta.users.manage"))
    async def get_user(self, req: Request) -> Response:
        return Response(200, self._user(self._require(req.params["id"])))

    @route("POST", "/api/v1/users/{id}/lifecycle/suspend", perm="okta.users.manage")
    async def suspend(self, req: Request) -> Response:
        user = self._require(req.params["id"])
        if user["status"] != "ACTIVE":
            raise HTTPError(
                400,
                "Api validation failed: status",
                reason="E0000001",
                headers={"x-causes": f"Cannot suspend a user that is not ACTIVE (status {user['status']})."},
            )
        if not req.lie:
            self._transition(user, "SUSPENDED")
        return Response(200, {})

    @route("POST", "/api/v1/users/{id}/lifecycle/unsuspend", perm="okta.users.manage")
    async def unsuspend(self, req: Request) -> Response:
        user = self._require(req.params["id"])
        if user["status"] != "SUSPENDED":
            raise HTTPError(
                400,
                "Api validation failed: status",
                reason="E0000001",
                headers={"x-causes": f"Cannot unsuspend a user that is not SUSPENDED (status {user['status']})."},
            )
        if not req.lie:
            self._transition(user, "ACTIVE")
        return Response(200, {})

    @route("POST", "/api/v1/users/{id}/lifecycle/deactivate", perm="okta.users.manage")
    async def deactivate(self, req: Request) -> Response:
        user = self._require(req.params["id"])
        if user["status"] == "DEPROVISIONED":
            raise HTTPError(403, "This operation is not allowed in the user's current status.", reason="E0000038")
        if not req.lie:
            # Deprovisioned from every app and group; sessions and grants end with the account.
            self._transition(user, "DEPROVISIONED")
            for group in self.groups.values():
                if group["type"] != "BUILT_IN":
                    group["members"].discard(user["id"])
            user["sessions"] = 0
            for grant in user["grants"]:
                grant["status"] = "REVOKED"
            for app in self.apps.values():
                app["users"].pop(user["id"], None)
        return Response(200, {})

    @route("POST", "/api/v1/users/{id}/lifecycle/activate", perm="okta.users.manage")
    async def activate(self, req: Request) -> Response:
        user = self._require(req.params["id"])
        if user["status"] not in ("STAGED", "DEPROVISIONED"):
            raise HTTPError(403, "Activation failed because the user is already active", reason="E0000016")
        self._transition(user, "PROVISIONED")  # waits for the person to finish activation
        return Response(200, {"activationUrl": f"{self.base_url}/welcome/{secrets.token_urlsafe(12)}"})

    @route("DELETE", "/api/v1/users/{userId}/sessions", perm="okta.users.manage")
    async def clear_sessions(self, req: Request) -> Response:
        user = self._require(req.params["userId"])
        for flag in ("oauthTokens", "forgetDevices"):
            if flag in req.query and req.query[flag] not in ("true", "false"):
                raise HTTPError(
                    400,
                    f"Api validation failed: {flag}",
                    reason="E0000001",
                    headers={"x-causes": f"{flag}: must be true or false"},
                )
        if not req.lie:
            user["sessions"] = 0
            if req.query.get("oauthTokens") == "true":
                for grant in user["grants"]:
                    grant["tokens"] = 0
            self._event("user.session.clear", user)
        return Response(204)

    @route("GET", "/api/v1/users/{id}/groups", perm=("okta.users.read", "okta.users.manage"))
    async def user_groups(self, req: Request) -> Response:
        user = self._require(req.params["id"])
        # listUserGroups takes no paging parameters: every group comes in one answer.
        return Response(200, [self._group(g) for g in self.groups.values() if user["id"] in g["members"]])


def _b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out
