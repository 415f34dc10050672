"""Google Workspace: the service-account token endpoint, Admin SDK Directory, Data Transfer and batch."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable
from typing import Any

from ._app import HTTPError, Request, Response, Simulator, route
from ._google_common import _NEED, _OUS, _SCOPE, SCOPES, D, _etag, _uid
from ._google_directory import GoogleDirectorySim
from ._google_handover import GMAIL_SCOPES, GoogleHandoverSim
from ._google_transfer import GoogleTransferSim
from ._knobs import Limit

__all__ = ["GoogleWorkspace"]


class GoogleWorkspace(GoogleHandoverSim, GoogleDirectorySim, GoogleTransferSim, Simulator):
    """A Workspace customer: users, security (tokens, ASPs, backup codes), groups, org units, Drive transfers."""

    system = "google_workspace"
    # Admin SDK: 2,400 queries per minute per user per project (403 userRateLimitExceeded).
    default_limits = {"user": Limit(2400, 60), "token": Limit(1000, 60)}
    # Admin privileges of the impersonated admin, named like the scopes without the URL prefix (deny() some to test 403s).
    default_granted = frozenset(s.removeprefix(_SCOPE) for s in SCOPES)

    def __init__(self, company: Any, **kw: Any):
        super().__init__(company, **kw)
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._pem = self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        self.client_email = f"offboard@sandbox-{company.seed}.iam.gserviceaccount.com"
        self.client_id = _uid(company.seed, "service-account")
        self.authorized_scopes = set(SCOPES)  # domain-wide delegation grants; remove some to test missing rights
        self.transfer_seconds = 1.0
        self._tokens: dict[str, tuple[str, frozenset[str]]] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self._index: dict[str, str] = {}
        self.groups: dict[str, dict[str, Any]] = {}
        self.transfers: dict[str, dict[str, Any]] = {}
        self.customer_id = "C0sandbx"
        dom = company.domain
        self.domains = {dom.lower()}  # the customer's domains; addresses elsewhere are foreign (403 on users.get)
        for name, desc in company.groups.items():
            gid = f"0{_uid(company.seed, 'g' + name)[:16]}"
            self.groups[gid] = {"id": gid, "email": f"{name}@{dom}", "name": name, "description": desc, "members": {}}
        by_name = {g["name"]: gid for gid, g in self.groups.items()}
        admin = None
        for ident in company.in_system("google_workspace"):
            uid = _uid(company.seed, ident.key)
            ou = (
                "/Admins"
                if ident.admin
                else "/Service Accounts"
                if ident.kind == "orphan"
                else "/Contractors"
                if ident.person and ident.person.type == "contractor"
                else "/Employees"
            )
            aliases = list(ident.person.aliases) if ident.person else []
            user = {
                "kind": "admin#directory#user",
                "id": uid,
                "etag": _etag(),
                "primaryEmail": ident.email,
                "name": {"givenName": ident.given_name, "familyName": ident.family_name, "fullName": ident.name},
                "isAdmin": ident.admin,
                "isDelegatedAdmin": False,
                "lastLoginTime": "2025-01-01T09:00:00.000Z",
                "creationTime": "2023-01-01T00:00:00.000Z",
                "agreedToTerms": True,
                "suspended": False,
                "archived": False,
                "changePasswordAtNextLogin": False,
                "ipWhitelisted": False,
                "emails": [{"address": ident.email, "primary": True}],
                "externalIds": [{"value": ident.employee_id, "type": "organization"}] if ident.employee_id else [],
                "organizations": [{"title": ident.title, "department": ident.department, "primary": True}]
                if ident.department
                else [],
                "customerId": self.customer_id,
                "orgUnitPath": ou,
                "isMailboxSetup": True,
                "isEnrolledIn2Sv": True,
                "isEnforcedIn2Sv": False,
                "includeInGlobalAddressList": True,
                "aliases": aliases,
                "_tokens": {
                    cid: {
                        "kind": "admin#directory#token",
                        "clientId": cid,
                        "displayText": name,
                        "anonymous": False,
                        "nativeApp": False,
                        "scopes": ["openid", _SCOPE + "calendar"],
                        "userKey": uid,
                        "etag": _etag(),
                    }
                    for cid, name in ident.oauth_apps
                },
                "_asps": {
                    1000 + i: {
                        "kind": "admin#directory#asp",
                        "codeId": 1000 + i,
                        "name": f"Mail client {i + 1}",
                        "creationTime": "1700000000000",
                        "lastTimeUsed": "1710000000000",
                        "userKey": uid,
                        "etag": _etag(),
                    }
                    for i in range(ident.app_passwords)
                },
                "relations": [{"type": "manager", "value": ident.person.manager}]
                if ident.person and ident.person.manager
                else [],
                "_custom": {
                    "Offboarding": {
                        "endDate": ident.person.end_date.date().isoformat() if ident.person.end_date else None,
                        "personType": ident.person.type,
                    }
                }
                if ident.person
                else {},
                "_codes": [f"{(int(uid[-8:]) * (i + 7)) % 10**8:08d}" for i in range(10)] if ident.admin else [],
                "_sessions": 2,
                "_drive_files": 5 + int(uid[-2:]) % 40,
            }
            self.users[uid] = user
            self._index[ident.email.lower()] = uid
            for a in aliases:
                self._index[a.lower()] = uid
            for g in ident.groups:
                if g in by_name:
                    self.groups[by_name[g]]["members"][uid] = "OWNER" if ident.admin else "MEMBER"
            if ident.admin and admin is None:
                admin = ident.email
        if admin is None:  # a company without break-glass admins still needs a delegated admin to impersonate
            admin = f"sandbox-admin@{dom}"
            uid = _uid(company.seed, "sandbox-admin")
            self.users[uid] = {
                "kind": "admin#directory#user",
                "id": uid,
                "etag": _etag(),
                "primaryEmail": admin,
                "name": {"givenName": "Sandbox", "familyName": "Admin", "fullName": "Sandbox Admin"},
                "isAdmin": True,
                "suspended": False,
                "archived": False,
                "orgUnitPath": "/Admins",
                "aliases": [],
                "emails": [],
                "customerId": self.customer_id,
                "_tokens": {},
                "_asps": {},
                "_codes": [],
                "_sessions": 0,
                "_drive_files": 0,
            }
            self._index[admin] = uid
        self.admin_email = admin
        self._init_handover(company)

    # ----- framework hooks --------------------------------------------------------------------
    def service_account_info(self) -> dict[str, Any]:
        """The JSON key file of the sandbox service account (token_uri points here)."""
        return {
            "type": "service_account",
            "project_id": f"sandbox-{self.company.seed}",
            "private_key_id": hashlib.sha1(self._pem.encode()).hexdigest(),
            "private_key": self._pem,
            "client_email": self.client_email,
            "client_id": self.client_id,
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": f"{self.base_url}/token",
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "universe_domain": "googleapis.com",
        }

    def connector_settings(self, secret: Callable[[str, str], str]) -> dict[str, Any]:
        return {
            "service_account": secret("google-service-account.json", json.dumps(self.service_account_info(), indent=1)),
            "subject": self.admin_email,
            "customer": "my_customer",
            "domain": self.company.domain,
            "api_url": f"{self.base_url}/",
        }

    def authenticate(self, req: Request) -> None:
        if req.path == "/token" or req.path == "/batch":
            return
        scheme, _, token = req.header("authorization").partition(" ")
        if scheme.lower() != "bearer" or token not in self._tokens:
            raise HTTPError(
                401,
                "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
                reason="required" if not token else "authError",
                headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
            )

    def client_key(self, req: Request) -> str:
        token = req.header("authorization")[7:]
        return self._tokens.get(token, ("", frozenset()))[0]

    def _scope(self, req: Request, need: str) -> None:
        scopes = self._tokens[req.header("authorization")[7:]][1]
        if self.granted.isdisjoint(_NEED[need]):  # the impersonated admin's role lacks the privilege
            raise HTTPError(403, "Not Authorized to access this resource/api", reason="forbidden")
        if not any(_SCOPE + s in scopes for s in _NEED[need]):
            raise HTTPError(
                403,
                "Request had insufficient authentication scopes.",
                reason="insufficientPermissions",
                headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", error="insufficient_scope"'},
            )

    def rate_limit(self, req: Request, limit: str | None) -> float:
        if req.path == "/batch":
            return 0.0
        if req.path == "/token":
            return self.limiter.take("token", "")
        return self.limiter.take("user", self.client_key(req))

    def throttle(self, req: Request, retry_after: float, why: str) -> Response:
        if req.path == "/token":
            return Response(429, {"error": "rate_limit_exceeded", "error_description": "Rate limit exceeded"})
        msg = (
            "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per user' of service "
            f"'admin.googleapis.com' for consumer 'project_number:{self.client_id[:12]}'."
        )
        return self.error(HTTPError(403, msg, reason="userRateLimitExceeded"))

    def forced(self, req: Request, status: int, retry_after: float | None) -> Response:
        if status == 429:
            resp = self.error(
                HTTPError(429, "Resource has been exhausted (e.g. check quota).", reason="rateLimitExceeded")
            )
            if retry_after is not None:
                resp.headers["Retry-After"] = str(int(retry_after))
            return resp
        return super().forced(req, status, retry_after)

    def error(self, err: HTTPError) -> Response:
        status_names = {
            400: "INVALID_ARGUMENT",
            401: "UNAUTHENTICATED",
            403: "PERMISSION_DENIED",
            404: "NOT_FOUND",
            409: "ALREADY_EXISTS",
            412: "FAILED_PRECONDITION",
            429: "RESOURCE_EXHAUSTED",
            500: "INTERNAL",
            503: "UNAVAILABLE",
        }
        reason = err.reason or "invalid"
        body = {
            "error": {
                "code": err.status,
                "message": err.message,
                "errors": [
                    {
                        "message": err.message,
                        "domain": "usageLimits" if "RateLimit" in reason else "global",
                        "reason": reason,
                    }
                ],
                "status": status_names.get(err.status, "UNKNOWN"),
            }
        }
        return Response(err.status, body, dict(err.headers))

    def unavailable(self, req: Request, status: int) -> Response:
        return self.error(
            HTTPError(
                status,
                "Backend Error" if status == 500 else "The service is currently unavailable.",
                reason="backendError",
            )
        )

    # ----- inspection -------------------------------------------------------------------------
    def _find(self, key: str) -> dict[str, Any] | None:
        return self.users.get(self._index.get(key.lower(), key))

    def account(self, key: str) -> dict[str, Any] | None:
        user = self._find(key)
        if user is None:
            return None
        out = {k: v for k, v in user.items() if not k.startswith("_")}
        out["tokens"] = sorted(user["_tokens"])
        out["asps"] = sorted(user["_asps"])
        out["verification_codes"] = len(user["_codes"])
        out["sessions"] = user["_sessions"]
        out["drive_files"] = user["_drive_files"]
        out["groups"] = sorted(g["email"] for g in self.groups.values() if user["id"] in g["members"])
        mail = user.get("_mail") or {}
        out["mail_delegates"] = sorted(mail.get("delegates") or ())
        out["auto_reply"] = bool((mail.get("vacation") or {}).get("enableAutoReply"))
        out["forwarding"] = sorted(mail.get("forwarding") or ())
        out["forwarding_filters"] = len(mail.get("filters") or ())
        out["licenses"] = [sku for _, sku in self.licenses_of(user["id"])]
        out["devices"] = sorted(d["status"] for d in self.devices_of(user["id"]))
        out["calendars"] = user.get("_calendars", 0)
        return out

    def accounts(self) -> list[dict[str, Any]]:
        return [self.account(uid) for uid in list(self.users)]  # type: ignore[misc]

    # ----- token ------------------------------------------------------------------------------
    @route("POST", "/token", write=False)
    async def token(self, req: Request) -> Response:
        form = req.form()

        def fail(error: str, text: str, status: int = 400) -> Response:
            return Response(status, {"error": error, "error_description": text})

        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return fail("unsupported_grant_type", "Invalid grant_type: " + form.get("grant_type", ""))
        claims = self._verify_jwt(form.get("assertion", ""))
        if claims is None:
            return fail("invalid_grant", "Invalid JWT Signature.")
        now = time.time()
        if claims.get("iss") != self.client_email:
            return fail("invalid_client", "The OAuth client was not found.", 401)
        if (
            claims.get("aud") not in (f"{self.base_url}/token", "https://oauth2.googleapis.com/token")
            or not claims.get("exp")
            or claims["exp"] < now - 300
        ):
            return fail(
                "invalid_grant",
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
            )
        sub = str(claims.get("sub") or "")
        scopes = frozenset(str(claims.get("scope", "")).split())
        subject = self._find(sub) if sub else None
        if (
            not sub
            or subject is None
            or not (subject.get("isAdmin") or scopes <= GMAIL_SCOPES)  # any user, for their own Gmail settings
            or (subject.get("suspended") and subject.get("isAdmin"))
            or not scopes
            or not scopes <= self.authorized_scopes
        ):
            return fail(
                "unauthorized_client",
                "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.",
                401,
            )
        tok = "ya29.sbx-" + secrets.token_urlsafe(32)
        self._tokens[tok] = (sub.lower(), scopes)
        return Response(
            200, {"access_token": tok, "expires_in": 3599, "token_type": "Bearer", "scope": " ".join(sorted(scopes))}
        )

    def _verify_jwt(self, assertion: str) -> dict[str, Any] | None:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        try:
            head, payload, sig = assertion.split(".")
            pad = lambda s: base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))  # noqa: E731
            if json.loads(pad(head)).get("alg") != "RS256":
                return None
            self._key.public_key().verify(pad(sig), f"{head}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
            return json.loads(pad(payload))
        except (ValueError, InvalidSignature, json.JSONDecodeError):
            return None

    # ----- users ------------------------------------------------------------------------------
    def _user(self, key: str) -> dict[str, Any]:
        user = self._find(key)
        if user is None:
            raise HTTPError(404, "Resource Not Found: userKey", reason="notFound")
        return user

    @staticmethod
    def _out(user: dict[str, Any], req: Request | None = None) -> dict[str, Any]:
        out = {k: v for k, v in user.items() if not k.startswith("_")}
        if req is not None and user.get("_custom"):
            projection = req.query.get("projection", "basic")
            masks = {m.strip() for m in req.query.get("customFieldMask", "").split(",") if m.strip()}
            if projection == "full" or (projection == "custom" and masks):
                custom = {
                    k: {f: v for f, v in fields.items() if v is not None}
                    for k, fields in user["_custom"].items()
                    if projection == "full" or k in masks
                }
                if custom:
                    out["customSchemas"] = custom
        return out

    @route("GET", D + "/users/{userKey}")
    async def users_get(self, req: Request) -> Response:
        self._scope(req, "users_read")
        key = req.params["userKey"]
        if "@" in key and key.rpartition("@")[2].lower() not in self.domains:
            # Google answers an address at a domain the customer does not own with 403, not 404.
            raise HTTPError(403, "Not Authorized to access this resource/api", reason="forbidden")
        return Response(200, self._out(self._user(key), req))

    @route("GET", D + "/users")
    async def users_list(self, req: Request) -> Response:
        self._scope(req, "users_read")
        q = req.query
        if not q.get("customer") and not q.get("domain"):
            raise HTTPError(400, "Bad Request", reason="badRequest")
        if q.get("domain") and q["domain"] != self.company.domain:
            raise HTTPError(403, "Not Authorized to access this resource/api", reason="forbidden")
        users = list(self.users.values())
        for term in re.findall(r"(\w+)([:=])('[^']*'|\S+)", q.get("query", "")):
            field, _, value = term
            value = value.strip("'").lower()
            if field == "email":
                users = [
                    u
                    for u in users
                    if u["primaryEmail"].lower() == value or value in (a.lower() for a in u.get("aliases", []))
                ]
            elif field == "isSuspended":
                users = [u for u in users if str(u["suspended"]).lower() == value]
            elif field == "externalId":
                users = [u for u in users if any(e.get("value", "").lower() == value for e in u.get("externalIds", []))]
            elif field == "orgUnitPath":
                users = [u for u in users if u["orgUnitPath"].lower() == value]
            else:
                raise HTTPError(400, "Invalid Input", reason="invalid")
        size = int(q.get("maxResults", "100"))
        if not 1 <= size <= 500:
            raise HTTPError(400, "Invalid Input: maxResults", reason="invalid")
        size = self.knobs.page(size)
        start = int(q.get("pageToken", "0") or 0)
        body: dict[str, Any] = {
            "kind": "admin#directory#users",
            "etag": _etag(),
            "users": [self._out(u, req) for u in users[start : start + size]],
        }
        if start + size < len(users):
            body["nextPageToken"] = str(start + size)
        return Response(200, body)

    async def _update(self, req: Request) -> Response:
        self._scope(req, "users_write")
        user = self._user(req.params["userKey"])
        body = req.json()
        if not isinstance(body, dict):
            raise HTTPError(400, "Invalid Input", reason="invalid")
        for k in ("id", "isAdmin", "kind", "suspensionReason", "creationTime", "lastLoginTime"):
            if k in body and body[k] != user.get(k):
                raise HTTPError(400, f"Invalid Input: {k}", reason="invalid")
        if "orgUnitPath" in body and body["orgUnitPath"] not in _OUS:
            raise HTTPError(400, "Invalid Input: INVALID_OU_ID", reason="invalid")
        if not req.lie:
            for k, v in body.items():
                if k in ("password", "hashFunction"):
                    user["_sessions"] = 0
                    continue
                if isinstance(v, dict) and isinstance(user.get(k), dict):
                    user[k] = {**user[k], **v}
                else:
                    user[k] = v
            if "suspended" in body:
                if body["suspended"]:
                    user["suspensionReason"] = "ADMIN"
                    user["_sessions"] = 0
                else:
                    user.pop("suspensionReason", None)
            user["etag"] = _etag()
        return Response(
            200,
            self._out(user)
            if not req.lie
            else {**self._out(user), **{k: v for k, v in body.items() if k != "password"}},
        )

    @route("PUT", D + "/users/{userKey}")
    async def users_update(self, req: Request) -> Response:
        return await self._update(req)

    @route("PATCH", D + "/users/{userKey}")
    async def users_patch(self, req: Request) -> Response:
        return await self._update(req)

    @route("DELETE", D + "/users/{userKey}")
    async def users_delete(self, req: Request) -> Response:
        self._scope(req, "users_write")
        user = self._user(req.params["userKey"])
        if not req.lie:
            self.users.pop(user["id"])
            for g in self.groups.values():
                g["members"].pop(user["id"], None)
            for k in [k for k, v in self._index.items() if v == user["id"]]:
                del self._index[k]
        return Response(204)

    @route("POST", D + "/users/{userKey}/signOut")
    async def users_sign_out(self, req: Request) -> Response:
        self._scope(req, "security")
        user = self._user(req.params["userKey"])
        if not req.lie:
            user["_sessions"] = 0
        return Response(204)

    # ----- batch ------------------------------------------------------------------------------
    @route("POST", "/batch", write=False)
    async def batch(self, req: Request) -> Response:
        ctype = req.header("content-type")
        m = re.search(r'boundary="?([^";]+)"?', ctype)
        if not ctype.startswith("multipart/mixed") or not m:
            raise HTTPError(
                400, "Failed to parse batch request, error: Missing boundary in multipart.", reason="badRequest"
            )
        text = req.body.decode("utf-8", "replace").replace("\r\n", "\n")
        parts = [p for p in text.split("--" + m.group(1)) if p.strip() and p.strip() != "--"]
        if len(parts) > 1000:
            raise HTTPError(400, "A batch request cannot contain more than 1000 calls.", reason="badRequest")
        batch_id = str(uuid.uuid4())
        boundary = "batch_" + secrets.token_hex(12)
        out: list[str] = []
        for part in parts:
            head, _, http = part.lstrip("\n").partition("\n\n")
            cid = next(
                (line.split(":", 1)[1].strip() for line in head.split("\n") if line.lower().startswith("content-id:")),
                "",
            )
            request_line, _, rest = http.partition("\n")
            hdr_text, _, body = rest.partition("\n\n")
            try:
                method, target, _ = request_line.split(" ", 2)
            except ValueError:
                raise HTTPError(
                    400, "Failed to parse batch request, error: bad request line.", reason="badRequest"
                ) from None
            headers = {
                k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in hdr_text.split("\n") if ":" in h)
            }
            headers.setdefault("authorization", req.header("authorization"))
            path, _, qs = target.partition("?")
            if path.startswith("http"):
                path = "/" + path.split("/", 3)[3]
            from urllib.parse import unquote

            inner = Request(method.upper(), unquote(path), qs, headers, body.rstrip("\n").encode())
            inner.batch = batch_id
            resp = await self.dispatch(inner)
            payload = resp.encoded().decode()
            reason = {
                200: "OK",
                204: "No Content",
                400: "Bad Request",
                401: "Unauthorized",
                403: "Forbidden",
                404: "Not Found",
                409: "Conflict",
                429: "Too Many Requests",
                500: "Internal Server Error",
                503: "Service Unavailable",
            }.get(resp.status, "Status")
            cid_out = f"<response-{cid.strip('<>')}>"
            lines = [
                f"HTTP/1.1 {resp.status} {reason}",
                "Content-Type: application/json; charset=UTF-8",
                "Vary: Origin",
                "Vary: X-Origin",
            ]
            lines += [f"{k}: {v}" for k, v in resp.headers.items()]
            out.append(
                f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: {cid_out}\r\n\r\n"
                + "\r\n".join(lines)
                + "\r\n\r\n"
                + payload
                + "\r\n"
            )
        body_out = "".join(out) + f"--{boundary}--\r\n"
        return Response(200, body_out.encode(), content_type=f"multipart/mixed; boundary={boundary}")
