"""A generic SCIM 2.0 application: scim2-server (an independent RFC 7643/7644 implementation) behind the sandbox knobs."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from typing import Any

from ._app import HTTPError, Request, Response, Simulator, route
from ._knobs import Limit
from ._scim_profiles import ScimBehaviour, behaviour

__all__ = ["ScimApp"]

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
_SCIM_JSON = "application/scim+json"


class ScimApp(Simulator):
    """RFC 7644 service provider at ``/scim/v2``: Users, Groups, filters, PATCH, PUT, DELETE, ETags, discovery.

    ``profile`` (or ``use_profile`` at run time) makes it behave as one application does
    (``_scim_profiles``): PATCH or Bulk refused, what ``active: false`` and DELETE do, its rate limit.
    """

    system = "scim"
    default_limits = {"requests": Limit(6000, 60, 600)}  # no vendor: a typical SaaS SCIM budget of 100 requests/s

    def __init__(self, company: Any, profile: str = "generic", **kw: Any):
        super().__init__(company, **kw)
        from scim2_models import Email, EnterpriseUser, Group, GroupMember, Name, Role, User
        from scim2_server.applications.asgi import ASGIApplication
        from scim2_server.memory import AsyncInMemoryStorage, InMemoryStorage
        from scim2_server.utils import load_default_provider, load_default_resource_types

        seed = company.seed

        class _SeededStorage(InMemoryStorage):
            counter = 0

            def generate_id(self, resource_type: Any, resource: Any) -> str:
                _SeededStorage.counter += 1
                return hashlib.sha256(f"{seed}:{resource_type.name}:{self.counter}".encode()).hexdigest()[:32]

        self.token = "scim-" + secrets.token_urlsafe(24)
        # filter.supported in ServiceProviderConfig. False: /Groups ignores ?filter= and answers every
        # group, as some applications do (RFC 7644 makes filtering optional).
        self.behaviour: ScimBehaviour = behaviour("generic")
        self.use_profile(profile)
        self.storage = _SeededStorage()
        self.inner = ASGIApplication(AsyncInMemoryStorage(self.storage), load_default_provider())
        types = load_default_resource_types()
        user_model = self.inner.service.get_model(
            next(t for t in self.inner.provider.resource_types if t.name == "User")
        )
        ids: dict[str, str] = {}
        members: dict[str, list[str]] = {}
        for ident in company.in_system("scim"):
            user = User[EnterpriseUser](
                user_name=ident.email,
                external_id=ident.employee_id or ident.key,
                active=True,
                display_name=ident.name,
                title=ident.title or None,
                timezone=ident.timezone,
                name=Name(given_name=ident.given_name, family_name=ident.family_name, formatted=ident.name),
                emails=[Email(value=ident.email, type=Email.Type.work, primary=True)],
                roles=[Role(value="admin")] if ident.admin else None,
            )
            if ident.employee_id:
                user[EnterpriseUser] = EnterpriseUser(
                    employee_number=ident.employee_id, department=ident.department or None
                )
            # stored as the server's own model of the resource type (as a POST would be), so that a later
            # PUT can compare against it (a plain scim2_models User lacks the provider's field names)
            stored = user_model.model_validate(user.model_dump(mode="json", by_alias=True, exclude_none=True))
            created = self.storage.create(types["User"], stored)
            created_id = str(created.id)  # the storage always assigns one
            ids[ident.email] = created_id
            for g in ident.groups:
                members.setdefault(g, []).append(created_id)
        for name in company.groups:
            self.storage.create(
                types["Group"],
                Group(
                    display_name=name,
                    members=[
                        GroupMember.model_validate({"value": uid, "type": "User"}) for uid in members.get(name, [])
                    ]
                    or None,
                ),
            )

    def use_profile(self, name: str, **changes: Any) -> ScimBehaviour:
        """Behave as application ``name`` from now on (``changes``: knobs of ``ScimBehaviour``)."""
        self.behaviour = behaviour(name, **changes)
        limit = self.behaviour.limit or self.default_limits["requests"]
        self.limits["requests"] = Limit(limit.count, limit.per, limit.burst)
        self.limiter.reset()
        return self.behaviour

    @property
    def filter_supported(self) -> bool:
        """filter.supported in ServiceProviderConfig. False: /Groups ignores ?filter= and answers every
        group, as some applications do (RFC 7644 makes filtering optional)."""
        return self.behaviour.filter_members

    @filter_supported.setter
    def filter_supported(self, value: bool) -> None:
        from dataclasses import replace

        self.behaviour = replace(self.behaviour, filter_members=value)

    # ----- framework hooks --------------------------------------------------------------------
    def connector_settings(self, secret: Callable[[str, str], str]) -> dict[str, Any]:
        settings = {"base_url": f"{self.base_url}/scim/v2", "token": secret("scim-token", self.token)}
        if self.behaviour.vendor and self.behaviour.name != "generic":
            settings["profile"] = self.behaviour.name  # the connector reads the same application's profile
        return settings

    def authenticate(self, req: Request) -> None:
        if req.path.endswith("/ServiceProviderConfig"):
            return
        scheme, _, tok = req.header("authorization").partition(" ")
        if scheme.lower() != "bearer" or tok != self.token:
            raise HTTPError(
                401,
                "Authentication is required" if not tok else "The bearer token is not valid",
                headers={"WWW-Authenticate": 'Bearer realm="scim"'},
            )

    def client_key(self, req: Request) -> str:
        return ""

    def throttle(self, req: Request, retry_after: float, why: str) -> Response:
        resp = self.error(HTTPError(429, "Too many requests; retry later"))
        resp.headers["Retry-After"] = str(max(1, int(retry_after + 0.999)))
        return resp

    def error(self, err: HTTPError) -> Response:
        body: dict[str, Any] = {"schemas": [ERROR], "status": str(err.status), "detail": err.message}
        if err.reason and err.reason not in ("notFound", "invalid", "backendError", "forced"):
            body["scimType"] = err.reason
        return Response(err.status, body, dict(err.headers), content_type=_SCIM_JSON)

    # ----- inspection -------------------------------------------------------------------------
    def _find(self, key: str) -> Any:
        k = key.lower()
        r: Any
        for r in self.storage.resources:
            if getattr(r, "user_name", None) is None:
                continue
            if (
                r.id == key
                or r.user_name.lower() == k
                or (r.external_id or "").lower() == k
                or any((e.value or "").lower() == k for e in r.emails or ())
            ):
                return r
        return None

    def account(self, key: str) -> dict[str, Any] | None:
        r = self._find(key)
        if r is None:
            return None
        out = r.model_dump(mode="json", exclude_none=True, by_alias=True)
        resources: list[Any] = list(self.storage.resources)
        out["groups"] = sorted(
            g.display_name
            for g in resources
            if getattr(g, "display_name", None)
            and getattr(g, "user_name", None) is None
            and any(m.value == r.id for m in (g.members or ()))
        )
        return out

    def accounts(self) -> list[dict[str, Any]]:
        found = (self.account(str(r.id)) for r in self.storage.resources if getattr(r, "user_name", None) is not None)
        return [a for a in found if a is not None]

    # ----- SCIM: delegate to scim2-server -----------------------------------------------------
    async def _forward(self, req: Request) -> Response:
        from scim2_server.requests import ScimRequest

        path = req.path.removeprefix("/scim")
        if req.lie and req.method in ("PATCH", "PUT", "DELETE"):
            return await self._lie(req, path)
        quirk = await self._quirk(req, path)
        if quirk is not None:
            return quirk
        host = req.header("host") or self.base_url.split("://", 1)[-1]
        query = dict(req.query)
        listing = req.method == "GET" and path.rstrip("/") in ("/v2/Users", "/v2/Groups")
        if listing:
            if self.knobs.page_cap > 0:  # every listing pages, whatever count the client asks for
                asked = int(query["count"]) if query.get("count", "").isdigit() else self.knobs.page_cap
                query["count"] = str(self.knobs.page(asked))
            if not self.filter_supported and path.rstrip("/") == "/v2/Groups":
                query.pop("filter", None)
        sreq = ScimRequest(
            method=req.method,
            base_url=f"http://{host}/scim/v2",
            path=self.inner.split_path(path),
            query=query,
            headers=list(req.headers.items()),
            body=req.body,
        )
        sresp = await self.inner.serve(sreq)
        if path.rstrip("/") == "/v2/ServiceProviderConfig" and isinstance(sresp.body, dict):
            sresp.body["filter"] = {
                **(sresp.body.get("filter") or {}),
                "supported": self.filter_supported,
                "maxResults": self.knobs.page_cap or 1000,
            }
            sresp.body["patch"] = {**(sresp.body.get("patch") or {}), "supported": self.behaviour.patch}
            if not self.behaviour.bulk:
                sresp.body["bulk"] = {"supported": False, "maxOperations": 0, "maxPayloadSize": 0}
        headers = {k: v for k, v in sresp.headers.items() if k.lower() not in ("content-type", "content-length")}
        ctype = next((v for k, v in sresp.headers.items() if k.lower() == "content-type"), _SCIM_JSON)
        return Response(int(sresp.status), sresp.body, headers, content_type=ctype)

    async def _quirk(self, req: Request, path: str) -> Response | None:
        """The profile's departures from plain RFC 7644 for this request, or None to serve it as is."""
        b = self.behaviour
        user = path.startswith("/v2/Users/") and path.count("/") == 3
        if req.method == "PATCH" and not b.patch:
            return self.error(HTTPError(501, "PATCH is not supported by this service provider"))
        if path.rstrip("/") == "/v2/Bulk" and not b.bulk:
            return self.error(HTTPError(501, "Bulk is not supported by this service provider"))
        if user and req.method == "DELETE" and b.delete == "deactivate":
            done = await self._serve_instead(req, path, "PATCH", _deactivation(False))
            return Response(204, None) if int(done.status) < 300 else self._scim_response(done)
        if user and req.method in ("PATCH", "PUT") and _deactivates(req.json()):
            if b.deactivate == "ignore":
                return await self._lie(req, path)
            if b.deactivate == "remove":
                done = await self._serve_instead(req, path, "DELETE", None)
                return Response(204, None) if int(done.status) < 300 else self._scim_response(done)
        return None

    async def _serve_instead(self, req: Request, path: str, method: str, body: Any) -> Any:
        """Serve another request than the client's on the same resource (what the application does instead)."""
        import json

        from scim2_server.requests import ScimRequest

        headers = [(k, v) for k, v in req.headers.items() if k.lower() not in ("content-length", "if-match")]
        sreq = ScimRequest(
            method=method,
            base_url=f"http://{req.header('host')}/scim/v2",
            path=self.inner.split_path(path),
            headers=headers,
            body=json.dumps(body).encode() if body is not None else b"",
        )
        return await self.inner.serve(sreq)

    def _scim_response(self, sresp: Any) -> Response:
        return Response(int(sresp.status), sresp.body, content_type=_SCIM_JSON)

    async def _lie(self, req: Request, path: str) -> Response:
        """Acknowledge a write as the server would, without applying it."""
        from scim2_server.requests import ScimRequest

        sreq = ScimRequest(
            method="GET",
            base_url=f"http://{req.header('host')}/scim/v2",
            path=self.inner.split_path(path),
            headers=list(req.headers.items()),
        )
        current = await self.inner.serve(sreq)
        if int(current.status) != 200:
            return Response(int(current.status), current.body, content_type=_SCIM_JSON)
        if req.method in ("PATCH", "DELETE"):
            return Response(204, None, {"ETag": current.headers.get("ETag", "")} if req.method == "PATCH" else {})
        body = req.json() or {}
        return Response(
            200,
            {**(current.body or {}), **{k: v for k, v in body.items() if k not in ("id", "meta")}},
            content_type=_SCIM_JSON,
        )

    def match(self, method: str, path: str) -> Any:
        """Everything under /scim/v2 goes to the SCIM server, which answers 404/405 itself."""
        if path == "/scim/v2" or path.startswith("/scim/v2/"):
            return self._forward, method in ("PUT", "PATCH", "DELETE"), "requests", {}
        return None

    @route("GET", "/scim/v2/{path}", limit="requests")
    async def _forward_route(self, req: Request) -> Response:
        """(documentation only: match() routes every method and depth under /scim/v2 to the SCIM server)"""
        return await self._forward(req)


PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _deactivation(active: bool) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "active", "value": active}]}


def _false(value: Any) -> bool:
    return value is False or (isinstance(value, str) and value.strip().lower() == "false")


def _deactivates(body: Any) -> bool:
    """Whether a PATCH or PUT body sets ``active`` to false (PatchOp with or without a path, or a full user)."""
    if not isinstance(body, dict):
        return False
    if "Operations" not in body:
        return _false(body.get("active"))
    for op in body.get("Operations") or ():
        if not isinstance(op, dict) or str(op.get("op", "")).lower() not in ("replace", "add"):
            continue
        value = op.get("value")
        if str(op.get("path") or "").lower() == "active" and _false(value):
            return True
        if not op.get("path") and isinstance(value, dict) and _false(value.get("active")):
            return True
    return False
