"""Slack: the Web API (HTTP 200 ``ok:false`` errors, tiered limits) and SCIM v1/v2 Users and Groups."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from typing import Any

from ._app import HTTPError, Request, Response, Simulator, route
from ._knobs import Limit
from ._slack_handover import HANDOVER_SCOPES, HANDOVER_TIERS, SlackHandover
from ._slack_scim import SlackScim

__all__ = ["Slack"]

_TIERS = {
    "auth.test": "special",
    "users.lookupByEmail": "tier3",
    "users.info": "tier4",
    "users.list": "tier2",
    "admin.users.session.reset": "tier2",
    "admin.users.session.list": "tier2",
    "chat.postMessage": "chat",
    "conversations.open": "tier3",
}
_SCOPES = {
    "users.lookupByEmail": "users:read.email",
    "users.info": "users:read",
    "users.list": "users:read",
    "admin.users.session.reset": "admin.users:write",
    "admin.users.session.list": "admin.users:read",
    "chat.postMessage": "chat:write",
    "conversations.open": "im:write",
    "auth.test": None,
}
_SCOPES.update(HANDOVER_SCOPES)
_TIERS.update(HANDOVER_TIERS)


def _sid(prefix: str, seed: int, key: str) -> str:
    return prefix + hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:10].upper()


class Slack(SlackHandover, SlackScim, Simulator):
    """An Enterprise Grid org: Web API methods the connectors use, and SCIM provisioning."""

    system = "slack"
    default_limits = {  # per method per workspace (Web API tiers) and org-wide SCIM limits
        "tier1": Limit(1, 60, 1),
        "tier2": Limit(20, 60, 20),
        "tier3": Limit(50, 60, 50),
        "tier4": Limit(100, 60, 100),
        "special": Limit(100, 60),
        "chat": Limit(1, 1, 3),
        "scim_write": Limit(600, 60, 180),
        "scim_read": Limit(1000, 60),
        "scim_user_get": Limit(300, 60),
        "scim_user_write": Limit(180, 60, 20),
    }
    default_granted = frozenset(
        {"admin", "admin.users:read", "admin.users:write", "users:read", "users:read.email", "chat:write", "im:write"}
        | {"channels:read", "groups:read"}
    )

    def __init__(self, company: Any, **kw: Any):
        super().__init__(company, **kw)
        self.token = (
            "xoxp-"
            + "-".join(str(int(hashlib.sha256(f"{company.seed}:{i}".encode()).hexdigest()[:8], 16)) for i in range(3))
            + "-"
            + secrets.token_hex(16)
        )
        self.team_id, self.enterprise_id = "T0SANDBOX1", "E0SANDBOX1"
        self.users: dict[str, dict[str, Any]] = {}
        self._index: dict[str, str] = {}
        self.groups: dict[str, dict[str, Any]] = {}
        self.messages: list[dict[str, Any]] = []
        for name in company.groups:
            gid = _sid("S", company.seed, "g" + name)
            self.groups[gid] = {"id": gid, "displayName": name, "members": set()}
        by_name = {g["displayName"]: gid for gid, g in self.groups.items()}
        owner_done = False
        for ident in company.in_system("slack"):
            uid = _sid("U", company.seed, ident.key)
            primary_owner = ident.admin and not owner_done
            owner_done = owner_done or primary_owner
            self.users[uid] = {
                "id": uid,
                "team_id": self.team_id,
                "name": ident.local,
                "real_name": ident.name,
                "email": ident.email,
                "given": ident.given_name,
                "family": ident.family_name,
                "title": ident.title,
                "tz": ident.timezone,
                "deleted": False,
                "is_admin": ident.admin,
                "is_owner": ident.admin,
                "is_primary_owner": primary_owner,
                "is_bot": False,
                "employee_id": ident.employee_id,
                "external_id": ident.employee_id or "",
                "is_restricted": bool(ident.person and ident.person.type == "contractor"),
                "sessions": [f"{uid}-s{i}" for i in range(2)],
                "updated": 1700000000,
            }
            self._index[ident.email.lower()] = uid
            self._index[ident.local.lower()] = uid
            for g in ident.groups:
                if g in by_name:
                    self.groups[by_name[g]]["members"].add(uid)
        self._init_handover()

    # ----- framework hooks --------------------------------------------------------------------
    def connector_settings(self, secret: Callable[[str, str], str]) -> dict[str, Any]:
        return {
            "token": secret("slack-token", self.token),
            "api_url": f"{self.base_url}/api/",
            "scim_url": f"{self.base_url}/scim/v2/",
            "scim_v1_url": f"{self.base_url}/scim/v1/",
        }

    def _token(self, req: Request) -> str:
        scheme, _, tok = req.header("authorization").partition(" ")
        return tok if scheme.lower() == "bearer" else ""

    def authenticate(self, req: Request) -> None:
        if req.path.startswith("/api/"):
            tok = self._token(req) or req.form().get("token", "")
            if not tok:
                raise HTTPError(200, "not_authed")
            if tok != self.token:
                raise HTTPError(200, "invalid_auth")
        elif self._token(req) != self.token:
            raise HTTPError(401, "invalid_authentication", reason="scim")

    def rate_limit(self, req: Request, limit: str | None) -> float:
        if req.path.startswith("/api/"):
            method = req.params.get("method", "")
            tier = _TIERS.get(method, "tier3")
            key = req.form().get("channel", "") if tier == "chat" else method
            return self.limiter.take(tier, key)
        wait = self.limiter.take("scim_write" if req.write else "scim_read", "org")
        if not wait and req.params.get("id") and "/Users/" in req.path:
            wait = self.limiter.take(
                "scim_user_write" if req.write else "scim_user_get", req.method if req.write else ""
            )
        return wait

    def throttle(self, req: Request, retry_after: float, why: str) -> Response:
        headers = {"Retry-After": str(max(1, int(retry_after + 0.999)))}
        if req.path.startswith("/api/"):
            return Response(429, {"ok": False, "error": "ratelimited"}, headers)
        resp = self.render(req, HTTPError(429, "Too many requests", reason="scim"))
        resp.headers.update(headers)
        return resp

    def forbidden(self, req: Request, needed: tuple[str, ...]) -> Response:
        return Response(
            200,
            {
                "ok": False,
                "error": "missing_scope",
                "needed": ",".join(needed),
                "provided": ",".join(sorted(self.granted)),
            },
        )

    def render(self, req: Request, err: HTTPError) -> Response:
        if req.path.startswith("/api/"):
            return Response(
                200 if err.status == 200 else err.status, {"ok": False, "error": err.message}, dict(err.headers)
            )
        if req.path.startswith("/scim/v1"):
            return Response(err.status, {"Errors": {"description": err.message, "code": err.status}}, dict(err.headers))
        return Response(
            err.status,
            {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": str(err.status),
                "detail": err.message,
            },
            dict(err.headers),
            content_type="application/scim+json; charset=utf-8",
        )

    def error(self, err: HTTPError) -> Response:
        return Response(
            200 if err.status == 200 else err.status, {"ok": False, "error": err.message}, dict(err.headers)
        )

    def unavailable(self, req: Request, status: int) -> Response:
        if req.path.startswith("/api/"):
            return Response(
                status, {"ok": False, "error": "service_unavailable" if status == 503 else "internal_error"}
            )
        return self.render(req, HTTPError(status, "Internal error", reason="scim"))

    def forced(self, req: Request, status: int, retry_after: float | None) -> Response:
        if status == 429:
            resp = self.throttle(req, retry_after or 1, "forced")
            if retry_after is None:
                resp.headers.pop("Retry-After")
            return resp
        if status >= 500:
            return self.unavailable(req, status)
        if req.path.startswith("/api/"):
            # The Web API answers HTTP 200 with an error code: invalid_auth for rejected credentials,
            # missing_scope (with needed/provided) for a missing right.
            if status == 401:
                return Response(200, {"ok": False, "error": "invalid_auth"})
            if status == 403:
                needed = _SCOPES.get(req.params.get("method", "")) or "admin"
                provided = ",".join(sorted(self.granted - {needed}))
                return Response(200, {"ok": False, "error": "missing_scope", "needed": needed, "provided": provided})
            return Response(status, {"ok": False, "error": "invalid_request"})
        return self.render(req, HTTPError(status, f"forced status {status}", reason="scim"))

    def decorate(self, req: Request, resp: Response) -> None:
        if req.path.startswith("/api/"):
            resp.headers["x-oauth-scopes"] = ",".join(sorted(self.granted))
            needed = _SCOPES.get(req.params.get("method", ""))
            if needed:
                resp.headers["x-accepted-oauth-scopes"] = needed

    def not_found(self, req: Request) -> Response:
        if req.path.startswith("/scim/"):
            return self.render(req, HTTPError(404, "Resource not found", reason="scim"))
        return Response(404, {"ok": False, "error": "unknown_method"})

    # ----- inspection -------------------------------------------------------------------------
    def _find(self, key: str) -> dict[str, Any] | None:
        return self.users.get(self._index.get(key.lower(), key))

    def account(self, key: str) -> dict[str, Any] | None:
        u = self._find(key)
        if u is None:
            return None
        return {
            **{k: v for k, v in u.items()},
            "sessions": list(u["sessions"]),
            "active": not u["deleted"],
            "groups": sorted(g["displayName"] for g in self.groups.values() if u["id"] in g["members"]),
        }

    def accounts(self) -> list[dict[str, Any]]:
        return [self.account(uid) for uid in list(self.users)]  # type: ignore[misc]

    # ----- Web API ----------------------------------------------------------------------------
    def _web_user(self, u: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": u["id"],
            "team_id": u["team_id"],
            "name": u["name"],
            "deleted": u["deleted"],
            "real_name": u["real_name"],
            "tz": u["tz"],
            "is_admin": u["is_admin"],
            "is_owner": u["is_owner"],
            "is_primary_owner": u["is_primary_owner"],
            "is_restricted": u["is_restricted"],
            "is_bot": False,
            "updated": u["updated"],
            "profile": {
                "email": u["email"],
                "real_name": u["real_name"],
                "display_name": u["name"],
                "title": u["title"],
                "first_name": u["given"],
                "last_name": u["family"],
            },
            "enterprise_user": {"enterprise_id": self.enterprise_id, "id": u["id"]},
        }

    @route("POST", "/api/{method}", write=False)
    async def web_post(self, req: Request) -> Response:
        return await self._web(req)

    @route("GET", "/api/{method}", write=False)
    async def web_get(self, req: Request) -> Response:
        return await self._web(req)

    async def _web(self, req: Request) -> Response:
        method = req.params["method"]
        needed = _SCOPES.get(method, "?")
        if needed == "?":
            return Response(200, {"ok": False, "error": "unknown_method", "req_method": method})
        if needed and needed not in self.granted:
            return self.forbidden(req, (needed,))
        args = req.form()
        fn = getattr(self, "_m_" + method.replace(".", "_"))
        return Response(200, await fn(req, args))

    def _arg_user(self, args: dict[str, str], name: str = "user") -> dict[str, Any]:
        uid = args.get(name, "")
        if not uid:
            raise HTTPError(200, "invalid_arguments")
        u = self.users.get(uid)
        if u is None:
            raise HTTPError(200, "user_not_found")
        return u

    async def _m_auth_test(self, req: Request, args: dict[str, str]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://corp-example.enterprise.slack.com/",
            "team": "Corp Example",
            "user": "offboard-admin",
            "team_id": self.team_id,
            "user_id": "U0OFFBOARD",
            "enterprise_id": self.enterprise_id,
            "is_enterprise_install": False,
        }

    async def _m_users_lookupByEmail(self, req: Request, args: dict[str, str]) -> dict[str, Any]:
        email = args.get("email", "")
        if not email:
            raise HTTPError(200, "invalid_arguments")
        uid = self._index.get(email.lower())
        if uid is None or "@" not in email:
            raise HTTPError(200, "users_not_found")
        return {"ok": True, "user": self._web_user(self.users[uid])}

    async def _m_users_info(self, req: Request, args: dict[str, str]) -> dict[str, Any]:
        return {"ok": True, "user": self._web_user(self._arg_user(args))}

    async def _m_users_list(self, req: Request, args: dict[str, str]) -> dict[str, Any]:
        limit = self.knobs.page(int(args.get("limit", "200") or 200))
        start = int(args.get("cursor", "0") or 0) if args.get("cursor", "").isdigit() else 0
        ids = list(self.users)
        page = ids[start : start + limit]
        nxt = str(start + limit) if start + limit < len(ids) else ""
        return {
            "ok": True,
            "members": [self._web_user(self.users[u]) for u in page],
            "response_metadata": {"next_cursor": nxt},
        }

    async def _m_admin_users_session_reset(self, req: Request, args: dict[str, str]) -> dict[str, Any]:
        u = self._arg_user(args, "user_id")
        if u["is_primary_owner"]:
            raise HTTPError(200, "cannot_reset_primary_owner")
        if not req.lie:
            mobile, web = args.get("mobile_only") == "true", args.get("web_only") == "true"
            if not mobile and not web:
                u["sessions"] = []
        return {"ok": True}

    async def _m_admin_users_session_list(self, req: Request, args: dict[str, str]) -> dict[str, Any]:
        # Slack: "user_id and team_id (which must be used together)"; cursor-paginated, limit 1-1000.
        if bool(args.get("user_id")) != bool(args.get("team_id")):
            raise HTTPError(200, "invalid_arguments")
        limit = int(args.get("limit", "1000") or 1000) if args.get("limit", "1000").isdigit() else 0
        if not 1 <= limit <= 1000:
            raise HTTPError(200, "invalid_limit")
        if args.get("user_id"):
            u = self._arg_user(args, "user_id")
            if args["team_id"] != u["team_id"]:
                raise HTTPError(200, "team_not_found")
            owners = [u]
        else:
            owners = list(self.users.values())
        sessions = [
            {
                "user_id": o["id"],
                "team_id": o["team_id"],
                "session_id": s,
                "created": {"device_hardware": "Computer", "os": "Mac", "ip": "203.0.113.7"},
            }
            for o in owners
            for s in o["sessions"]
        ]
        cursor = args.get("cursor", "")
        start = int(cursor) if cursor.isdigit() else 0
        size = self.knobs.page(limit)
        following = start + size
        return {
            "ok": True,
            "active_sessions": sessions[start:following],
            "response_metadata": {"next_cursor": str(following) if following < len(sessions) else ""},
        }

    async def _m_chat_postMessage(self, req: Request, args: dict[str, str]) -> dict[str, Any]:
        channel = args.get("channel", "")
        if not channel:
            raise HTTPError(200, "channel_not_found")
        if not args.get("text") and not args.get("blocks"):
            raise HTTPError(200, "no_text")
        ts = f"{time.time():.6f}"
        msg = {"channel": channel, "ts": ts, "text": args.get("text", "")}
        self.messages.append(msg)
        return {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "message": {"type": "message", "text": msg["text"], "ts": ts, "user": "U0OFFBOARD"},
        }

    async def _m_conversations_open(self, req: Request, args: dict[str, str]) -> dict[str, Any]:
        return {
            "ok": True,
            "channel": {"id": "D" + hashlib.sha1(args.get("users", "").encode()).hexdigest()[:10].upper()},
        }
