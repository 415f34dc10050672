"""Microsoft Entra ID: the v2.0 token endpoint with OIDC discovery, and Microsoft Graph v1.0."""

from __future__ import annotations

import functools
import secrets
import uuid
from collections.abc import Callable
from typing import Any

from ._app import HTTPError, Request, Response, Simulator, route
from ._entra_apps import EntraApps
from ._entra_batch import EntraBatch
from ._entra_cert import AppCertificate
from ._entra_groups import EntraGroups
from ._entra_handover import EntraHandover
from ._entra_odata import _filter
from ._entra_token import EntraToken, _now
from ._knobs import Limit

__all__ = ["Entra"]

_SKU_IDS = {
    "SPE_E3": "05e9a617-0261-4cee-bb44-138d3ef5d965",
    "EMS": "efccb6f7-5641-4e0e-bd10-b4976e1bf68e",
    "POWER_BI_PRO": "f8a1db68-be16-40ed-86d5-cb42ce701560",
    "VISIOCLIENT": "c5928f49-12ba-48f7-ada3-0d743a3601d5",
}
_DEFAULT_SELECT = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)
_CLIENT_ID = "00000000-0000-0000-0000-0000000ff0b0"
_GROUP_NS = uuid.UUID("6ba7b811-9dad-11d1-80b4-00c04fd430c8")


class Entra(EntraHandover, EntraApps, EntraToken, EntraGroups, EntraBatch, Simulator):
    """Entra ID tenant: msal-compatible token endpoint and the Graph users/groups/licenses/$batch surface."""

    system = "entra"
    scheme = "https"
    # Identity and access throttling (api-facts 1.3): resource units per app+tenant per 10 s, writes per 150 s.
    default_limits = {"ru": Limit(5000, 10), "writes": Limit(3000, 150), "token": Limit(2000, 10)}
    # Application permissions granted to the sandbox app (least privilege plus User.ReadWrite.All, as many tenants have).
    default_granted = frozenset(
        {
            "User.Read.All",
            "User.EnableDisableAccount.All",
            "User.RevokeSessions.All",
            "GroupMember.ReadWrite.All",
            "LicenseAssignment.ReadWrite.All",
            "User.ReadWrite.All",
            "Organization.Read.All",
            "RoleManagement.ReadWrite.Directory",
            # the handover actions (_entra_handover.py)
            "MailboxSettings.ReadWrite",
            "Files.ReadWrite.All",
            "DeviceManagementManagedDevices.Read.All",
            "DeviceManagementManagedDevices.PrivilegedOperations.All",
            "Device.ReadWrite.All",
            "DelegatedPermissionGrant.ReadWrite.All",
            "AppRoleAssignment.ReadWrite.All",
        }
    )

    def __init__(self, company: Any, **kw: Any):
        super().__init__(company, **kw)
        self.tenant_id = company.tenant_id
        self.client_id = _CLIENT_ID
        self.client_secret = "sbx~" + secrets.token_urlsafe(24)
        self.can_delete_users = (
            True  # the app holds User.ReadWrite.All: DELETE members/{id} without $ref deletes the user
        )
        self._tokens: set[str] = set()
        self.users: dict[str, dict[str, Any]] = {}
        self.deleted: dict[str, dict[str, Any]] = {}
        self._index: dict[str, str] = {}
        self.groups: dict[str, dict[str, Any]] = {}
        self.roles: dict[str, set[str]] = {"62e90394-69f5-4237-9190-012177145e10": set()}  # Global Administrator
        for name, desc in company.groups.items():
            gid = str(uuid.uuid5(_GROUP_NS, f"{company.seed}:{name}"))
            dynamic = name == "all-staff"
            self.groups[gid] = {
                "id": gid,
                "displayName": name,
                "description": desc,
                "mailEnabled": False,
                "securityEnabled": True,
                "groupTypes": ["DynamicMembership"] if dynamic else [],
                "members": set(),
                "membershipRule": "(user.accountEnabled -eq true)" if dynamic else None,
                "onPremisesSyncEnabled": None,
                "isAssignableToRole": False,
            }
        lic_gid = str(uuid.uuid5(_GROUP_NS, f"{company.seed}:licensing-ems"))
        self.groups[lic_gid] = {
            "id": lic_gid,
            "displayName": "licensing-ems",
            "description": "Group-based EMS licensing",
            "mailEnabled": False,
            "securityEnabled": True,
            "groupTypes": [],
            "members": set(),
            "membershipRule": None,
            "assignedLicenses": [_SKU_IDS["EMS"]],
            "onPremisesSyncEnabled": None,
            "isAssignableToRole": False,
        }
        # A group synced from on-premises AD (Graph cannot change its members) and a role-assignable
        # group (changing its members needs RoleManagement.ReadWrite.Directory); members added by tests.
        for name, synced, assignable in (("onprem-finance", True, False), ("role-helpdesk-admins", False, True)):
            gid = str(uuid.uuid5(_GROUP_NS, f"{company.seed}:{name}"))
            self.groups[gid] = {
                "id": gid,
                "displayName": name,
                "description": "synced from on-premises AD" if synced else "role-assignable",
                "mailEnabled": False,
                "securityEnabled": True,
                "groupTypes": [],
                "members": set(),
                "membershipRule": None,
                "onPremisesSyncEnabled": True if synced else None,
                "isAssignableToRole": assignable,
            }
        by_name = {g["displayName"]: gid for gid, g in self.groups.items()}
        limit = 3500 if len(company.identities) < 50 else 5000 if len(company.identities) <= 500 else 8000
        self.limits["ru"].count = limit
        for ident in company.in_system("entra"):
            uid = str(uuid.uuid5(_GROUP_NS, f"{company.seed}:user:{ident.key}"))
            states = [
                {"skuId": _SKU_IDS[s], "assignedByGroup": None, "state": "Active", "error": "None"}
                for s in ident.licenses
            ]
            states += [
                {"skuId": _SKU_IDS[s], "assignedByGroup": lic_gid, "state": "Active", "error": "None"}
                for s in ident.licenses_from_group
            ]
            user = {
                "id": uid,
                "userPrincipalName": ident.email,
                "mail": ident.email,
                "displayName": ident.name,
                "givenName": ident.given_name,
                "surname": ident.family_name,
                "jobTitle": ident.title or None,
                "department": ident.department or None,
                "employeeId": ident.employee_id,
                "accountEnabled": True,
                "businessPhones": [],
                "mobilePhone": None,
                "officeLocation": None,
                "preferredLanguage": "en-US",
                "onPremisesSyncEnabled": None,
                "userType": "Member",
                "proxyAddresses": [f"SMTP:{ident.email}"],
                "otherMails": [],
                "signInSessionsValidFromDateTime": "2024-01-01T00:00:00Z",
                "assignedLicenses": [{"skuId": s["skuId"], "disabledPlans": []} for s in states],
                "licenseAssignmentStates": states,
                "createdDateTime": "2023-01-01T00:00:00Z",
                "employeeType": ("Contractor" if ident.person.type == "contractor" else "Employee")
                if ident.person
                else None,
                "employeeLeaveDateTime": ident.person.end_date.strftime("%Y-%m-%dT%H:%M:%SZ")
                if ident.person and ident.person.end_date
                else None,
                "_manager": ident.person.manager if ident.person else None,
            }
            if ident.person and ident.person.aliases:
                user["proxyAddresses"] += [f"smtp:{a}" for a in ident.person.aliases]
            self.users[uid] = user
            self._index[ident.email.lower()] = uid
            for g in ident.groups:
                if g in by_name:
                    self.groups[by_name[g]]["members"].add(uid)
            if ident.licenses_from_group:
                self.groups[lic_gid]["members"].add(uid)
            if ident.admin:
                self.roles["62e90394-69f5-4237-9190-012177145e10"].add(uid)
        self._init_handover()

    @functools.cached_property
    def certificate(self) -> AppCertificate:
        """The app's registered certificate (``private_key_pem``, ``thumbprint``), for the certificate flow."""
        return AppCertificate(self.client_id)

    # ----- framework hooks --------------------------------------------------------------------
    def connector_settings(self, secret: Callable[[str, str], str]) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "client_id": self.client_id,
            "client_secret": secret("entra-client-secret", self.client_secret),
            "authority_url": self.base_url,
            "graph_url": f"{self.base_url}/v1.0",
            "ca_file": str(self.data_dir / "sandbox-ca.pem"),
        }

    def authenticate(self, req: Request) -> None:
        if not req.path.startswith("/v1.0"):
            return
        scheme, _, token = req.header("authorization").partition(" ")
        if not token:
            raise HTTPError(401, "Access token is empty.", reason="InvalidAuthenticationToken")
        if scheme.lower() != "bearer" or token not in self._tokens:
            raise HTTPError(
                401, "Access token validation failure. Invalid audience.", reason="InvalidAuthenticationToken"
            )

    def client_key(self, req: Request) -> str:
        return "app"

    def rate_limit(self, req: Request, limit: str | None) -> float:
        if limit == "token":
            return self.limiter.take("token", "")
        if not req.path.startswith("/v1.0") or req.path == "/v1.0/$batch":
            return 0.0
        cost = self._cost(req)
        wait = self.limiter.take("ru", "app", cost)
        if not wait and req.write:
            wait = self.limiter.take("writes", "app")
        return wait

    def _cost(self, req: Request) -> int:
        path = req.path
        if req.write:
            return 1
        cost = 1
        if path == "/v1.0/users":
            cost = 2
        elif path.endswith("/members"):
            cost = 3
        elif path.endswith(("/memberOf", "/memberOf/microsoft.graph.group")):
            cost = 2
        elif path == "/v1.0/subscribedSkus":
            cost = 3
        q = req.query
        if "$select" in q:
            cost -= 1
        if "$expand" in q:
            cost += 1
        return max(cost, 1)

    def decorate(self, req: Request, resp: Response) -> None:
        if req.path.startswith("/v1.0") and req.path != "/v1.0/$batch":
            resp.headers.setdefault("x-ms-resource-unit", str(self._cost(req)))
            resp.headers.setdefault("request-id", str(uuid.uuid4()))

    def throttle(self, req: Request, retry_after: float, why: str) -> Response:
        if not req.path.startswith("/v1.0"):
            body = {
                "error": "temporarily_unavailable",
                "error_description": "AADSTS50196: The server terminated an operation because it encountered a client request loop.",
                "error_codes": [50196],
            }
            return Response(429, body, {"Retry-After": str(max(1, int(retry_after + 0.999)))})
        info = "WriteLimitExceeded" if req.write else "ResourceUnitLimitExceeded"
        resp = self.error(HTTPError(429, "Too many requests", reason="TooManyRequests"))
        resp.headers.update(
            {
                "Retry-After": str(max(1, int(retry_after + 0.999))),
                "x-ms-throttle-scope": f"Tenant_Application/{'ReadWrite' if req.write else 'Read'}/{self.client_id}/{self.tenant_id}",
                "x-ms-throttle-information": info,
            }
        )
        return resp

    def error(self, err: HTTPError) -> Response:
        body = {
            "error": {
                "code": err.reason or "Request_BadRequest",
                "message": err.message,
                "innerError": {
                    "date": _now()[:-1],
                    "request-id": str(uuid.uuid4()),
                    "client-request-id": str(uuid.uuid4()),
                },
            }
        }
        return Response(err.status, body, dict(err.headers))

    def unavailable(self, req: Request, status: int) -> Response:
        code = "serviceNotAvailable" if status == 503 else "generalException"
        msg = "Service unavailable." if status == 503 else "An unexpected error occurred."
        resp = self.error(HTTPError(status, msg, reason=code))
        if status == 503:
            resp.headers["Retry-After"] = "2"
        return resp

    def forbidden(self, req: Request, needed: tuple[str, ...]) -> Response:
        return self.error(
            HTTPError(403, "Insufficient privileges to complete the operation.", reason="Authorization_RequestDenied")
        )

    # ----- inspection -------------------------------------------------------------------------
    def _find(self, key: str) -> dict[str, Any] | None:
        uid = self._index.get(key.lower(), key)
        return self.users.get(uid)

    def account(self, key: str) -> dict[str, Any] | None:
        user = self._find(key)
        if user is None:
            uid = self._index.get(key.lower(), key)
            gone = self.deleted.get(uid)
            return None if gone is None else {**_public(gone), "deleted": True}
        out = _public(user)
        out["groups"] = sorted(g["displayName"] for g in self.groups.values() if user["id"] in g["members"])
        out["licenses"] = sorted(_sku_name(s["skuId"]) for s in user["assignedLicenses"])
        out["admin"] = any(user["id"] in m for m in self.roles.values())
        out.update(self.handover_state(user["id"]))
        return out

    def accounts(self) -> list[dict[str, Any]]:
        return [self.account(uid) for uid in list(self.users)]  # type: ignore[misc]

    # ----- users ------------------------------------------------------------------------------
    def _user(self, key: str) -> dict[str, Any]:
        user = self._find(key)
        if user is None:
            raise HTTPError(
                404,
                f"Resource '{key}' does not exist or one of its queried reference-property objects are not present.",
                reason="Request_ResourceNotFound",
            )
        return user

    def _render(self, req: Request, user: dict[str, Any]) -> dict[str, Any]:
        select = req.query.get("$select")
        keys = [k.strip() for k in select.split(",")] if select else _DEFAULT_SELECT
        out = {k: user.get(k) for k in keys if not k.startswith(("@", "_"))}
        if req.query.get("$expand", "").startswith("manager"):
            boss = self._find(user["_manager"]) if user.get("_manager") else None
            out["manager"] = (
                None
                if boss is None
                else {
                    "@odata.type": "#microsoft.graph.user",
                    "id": boss["id"],
                    "mail": boss["mail"],
                    "userPrincipalName": boss["userPrincipalName"],
                    "displayName": boss["displayName"],
                }
            )
        return out

    @route("GET", "/v1.0/users", perm=("User.Read.All", "User.ReadWrite.All", "Directory.Read.All"))
    async def list_users(self, req: Request) -> Response:
        users = list(self.users.values())
        flt = req.query.get("$filter")
        if flt:
            users = [u for u in users if _filter(flt, req)(u)]
        top = int(req.query.get("$top", "100") or 100)
        if not 1 <= top <= 999:
            raise HTTPError(
                400,
                "Invalid page size specified: '%d'. Must be between 1 and 999 inclusive." % top,
                reason="Request_UnsupportedQuery",
            )
        top = self.knobs.page(top)  # Graph may answer fewer than $top: clients follow @odata.nextLink
        skip = int(req.query.get("$skiptoken", "0") or 0)
        page = users[skip : skip + top]
        body: dict[str, Any] = {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users",
            "value": [self._render(req, u) for u in page],
        }
        if req.query.get("$count") == "true":
            body["@odata.count"] = len(users)
        if skip + top < len(users):
            q = {k: v for k, v in req.query.items() if k != "$skiptoken"}
            q["$skiptoken"] = str(skip + top)
            from urllib.parse import urlencode

            body["@odata.nextLink"] = f"{self.base_url}/v1.0/users?{urlencode(q)}"
        return Response(200, body)

    @route("GET", "/v1.0/users/{id}", perm=("User.Read.All", "User.ReadWrite.All", "Directory.Read.All"))
    async def get_user(self, req: Request) -> Response:
        body = self._render(req, self._user(req.params["id"]))
        body["@odata.context"] = "https://graph.microsoft.com/v1.0/$metadata#users/$entity"
        return Response(200, body)

    @route(
        "PATCH",
        "/v1.0/users/{id}",
        perm=("User.EnableDisableAccount.All", "User.ReadWrite.All", "Directory.ReadWrite.All"),
    )
    async def update_user(self, req: Request) -> Response:
        user = self._user(req.params["id"])
        body = req.json()
        if not isinstance(body, dict) or not body:
            raise HTTPError(400, "Empty Payload. JSON content expected.", reason="BadRequest")
        readonly = {
            "_manager",
            "id",
            "createdDateTime",
            "signInSessionsValidFromDateTime",
            "assignedLicenses",
            "licenseAssignmentStates",
        }
        for k in body:
            if k in readonly:
                raise HTTPError(400, f"Property '{k}' is read-only and cannot be set.", reason="Request_BadRequest")
        if any(user["id"] in m for m in self.roles.values()):
            raise HTTPError(
                403, "Insufficient privileges to complete the operation.", reason="Authorization_RequestDenied"
            )
        if user.get("onPremisesSyncEnabled") and "accountEnabled" in body:
            raise HTTPError(
                400,
                "Unable to update the specified properties for on-premises mastered Directory Sync objects or objects currently undergoing migration.",
                reason="Request_BadRequest",
            )
        if not req.lie:
            user.update(body)
        return Response(204)

    @route("DELETE", "/v1.0/users/{id}", perm=("User.ReadWrite.All", "Directory.ReadWrite.All"))
    async def delete_user(self, req: Request) -> Response:
        user = self._user(req.params["id"])
        if any(user["id"] in m for m in self.roles.values()):
            raise HTTPError(
                403, "Insufficient privileges to complete the operation.", reason="Authorization_RequestDenied"
            )
        if not req.lie:
            self._delete(user["id"])
        return Response(204)

    def _delete(self, uid: str) -> None:
        user = self.users.pop(uid)
        self.deleted[uid] = user
        for g in self.groups.values():
            g["members"].discard(uid)

    @route(
        "POST",
        "/v1.0/users/{id}/revokeSignInSessions",
        perm=("User.RevokeSessions.All", "User.ReadWrite.All", "Directory.ReadWrite.All"),
    )
    async def revoke_sessions(self, req: Request) -> Response:
        user = self._user(req.params["id"])
        if not req.lie:
            user["signInSessionsValidFromDateTime"] = _now()
        return Response(
            200, {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Edm.Boolean", "value": True}
        )

    def _member_of(self, uid: str, groups_only: bool) -> list[dict[str, Any]]:
        out = [
            {
                "@odata.type": "#microsoft.graph.group",
                "id": g["id"],
                "displayName": g["displayName"],
                "description": g["description"],
                "groupTypes": g["groupTypes"],
                "mailEnabled": g["mailEnabled"],
                "securityEnabled": g["securityEnabled"],
                "membershipRule": g["membershipRule"],
                "onPremisesSyncEnabled": g.get("onPremisesSyncEnabled"),
                "isAssignableToRole": g.get("isAssignableToRole", False),
            }
            for g in self.groups.values()
            if uid in g["members"]
        ]
        if not groups_only:
            out += [
                {
                    "@odata.type": "#microsoft.graph.directoryRole",
                    "id": rid,
                    "displayName": "Global Administrator",
                    "roleTemplateId": rid,
                }
                for rid, m in self.roles.items()
                if uid in m
            ]
        return out

    @route(
        "GET",
        "/v1.0/users/{id}/memberOf",
        perm=("User.Read.All", "GroupMember.Read.All", "GroupMember.ReadWrite.All", "Directory.Read.All"),
    )
    async def member_of(self, req: Request) -> Response:
        user = self._user(req.params["id"])
        return Response(
            200,
            {
                "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#directoryObjects",
                "value": self._member_of(user["id"], False),
            },
        )

    @route(
        "GET",
        "/v1.0/users/{id}/memberOf/microsoft.graph.group",
        perm=("User.Read.All", "GroupMember.Read.All", "GroupMember.ReadWrite.All", "Directory.Read.All"),
    )
    async def member_of_groups(self, req: Request) -> Response:
        user = self._user(req.params["id"])
        return Response(
            200,
            {
                "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#groups",
                "value": self._member_of(user["id"], True),
            },
        )

    @route(
        "GET",
        "/v1.0/users/{id}/licenseDetails",
        perm=("User.Read.All", "LicenseAssignment.ReadWrite.All", "Directory.Read.All"),
    )
    async def license_details(self, req: Request) -> Response:
        user = self._user(req.params["id"])
        value = [
            {
                "id": f"{user['id']}_{a['skuId']}",
                "skuId": a["skuId"],
                "skuPartNumber": _sku_name(a["skuId"]),
                "servicePlans": [],
            }
            for a in user["assignedLicenses"]
        ]
        return Response(
            200,
            {
                "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users('{}')/licenseDetails".format(
                    user["id"]
                ),
                "value": value,
            },
        )

    @route(
        "POST",
        "/v1.0/users/{id}/assignLicense",
        perm=("LicenseAssignment.ReadWrite.All", "User.ReadWrite.All", "Directory.ReadWrite.All"),
    )
    async def assign_license(self, req: Request) -> Response:
        user = self._user(req.params["id"])
        body = req.json() or {}
        if not isinstance(body, dict) or "addLicenses" not in body or "removeLicenses" not in body:
            raise HTTPError(
                400,
                "Invalid value specified for property 'addLicenses' of resource 'User'.",
                reason="Request_BadRequest",
            )
        states = {s["skuId"]: s for s in user["licenseAssignmentStates"]}
        known = set(_SKU_IDS.values())
        for sku in body["removeLicenses"]:
            if sku not in known:
                raise HTTPError(
                    400, f"License {sku} does not correspond to a valid company License.", reason="Request_BadRequest"
                )
            st = states.get(sku)
            if st is not None and st["assignedByGroup"]:
                raise HTTPError(
                    400,
                    "User license is inherited from a group membership and it cannot be removed directly from the user.",
                    reason="Request_BadRequest",
                )
            if st is None:
                raise HTTPError(400, f"User does not have a corresponding license {sku}.", reason="Request_BadRequest")
        for add in body["addLicenses"]:
            if add.get("skuId") not in known:
                raise HTTPError(
                    400,
                    f"License {add.get('skuId')} does not correspond to a valid company License.",
                    reason="Request_BadRequest",
                )
        if not req.lie:
            for sku in body["removeLicenses"]:
                states.pop(sku, None)
            for add in body["addLicenses"]:
                states.setdefault(
                    add["skuId"], {"skuId": add["skuId"], "assignedByGroup": None, "state": "Active", "error": "None"}
                )
            user["licenseAssignmentStates"] = list(states.values())
            user["assignedLicenses"] = [{"skuId": s, "disabledPlans": []} for s in states]
        out = self._render(req, user)
        out["@odata.context"] = "https://graph.microsoft.com/v1.0/$metadata#users/$entity"
        return Response(200, out)

    @route(
        "GET",
        "/v1.0/subscribedSkus",
        perm=("Organization.Read.All", "LicenseAssignment.ReadWrite.All", "Directory.Read.All"),
    )
    async def subscribed_skus(self, req: Request) -> Response:
        value = [
            {
                "id": f"{self.tenant_id}_{sid}",
                "skuId": sid,
                "skuPartNumber": name,
                "capabilityStatus": "Enabled",
                "consumedUnits": sum(
                    1 for u in self.users.values() if any(a["skuId"] == sid for a in u["assignedLicenses"])
                ),
                "prepaidUnits": {"enabled": 10000, "suspended": 0, "warning": 0},
            }
            for name, sid in _SKU_IDS.items()
        ]
        return Response(
            200, {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#subscribedSkus", "value": value}
        )

    @route("GET", "/v1.0/organization")
    async def organization(self, req: Request) -> Response:
        return Response(
            200,
            {
                "value": [
                    {
                        "id": self.tenant_id,
                        "displayName": "Corp Example",
                        "verifiedDomains": [{"name": self.company.domain, "isDefault": True}],
                    }
                ]
            },
        )


def _public(user: dict[str, Any]) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in user.items() if not k.startswith("_")}


def _sku_name(sku_id: str) -> str:
    return next((n for n, s in _SKU_IDS.items() if s == sku_id), sku_id)
