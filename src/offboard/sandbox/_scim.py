"""A generic SCIM 2.0 application: scim2-server (an independent RFC 7643/7644 implementation) behind the sandbox knobs."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from typing import Any

from ._app import HTTPError, Request, Response, Simulator, route
from ._knobs import Limit

__all__ = ["ScimApp"]

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
_SCIM_JSON = "application/scim+json"


class ScimApp(Simulator):
    """RFC 7644 service provider at ``/scim/v2``: Users, Groups, filters, PATCH, PUT, DELETE, ETags, discovery."""

    system = "scim"
    default_limits = {"requests": Limit(6000, 60, 600)}  # no vendor: a typical SaaS SCIM budget of 100 requests/s

    def __init__(self, company: Any, **kw: Any):
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
        self.filter_supported = True
        self.storage = _SeededStorage()
        self.inner = ASGIApplication(AsyncInMemoryStorage(self.storage), load_default_provider())
        types = load_default_resource_types()
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
            created = self.storage.create(types["User"], user)
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

    # ----- framework hooks --------------------------------------------------------------------
    def connector_settings(self, secret: Callable[[str, str], str]) -> dict[str, Any]:
        return {"base_url": f"{self.base_url}/scim/v2", "token": secret("scim-token", self.token)}

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
        headers = {k: v for k, v in sresp.headers.items() if k.lower() not in ("content-type", "content-length")}
        ctype = next((v for k, v in sresp.headers.items() if k.lower() == "content-type"), _SCIM_JSON)
        return Response(int(sresp.status), sresp.body, headers, content_type=ctype)

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
