"""Intune managed devices, Entra device objects, delegated permission grants and app role
assignments: the rest of the Entra simulator's handover surface (state seeded by ``_entra_handover``).

- ``GET /users/{id}/managedDevices`` (DeviceManagementManagedDevices.Read.All),
  ``POST /deviceManagement/managedDevices/{id}/retire`` (…PrivilegedOperations.All; no body; 204);
- ``GET /devices?$filter=deviceId eq '…'``, ``PATCH /devices/{id}`` (Device.ReadWrite.All; 204);
- ``GET /users/{id}/oauth2PermissionGrants``, ``DELETE|POST /oauth2PermissionGrants`` (204, 201; a second
  grant for the same client, consent type, principal and resource: 409);
- ``GET|POST /users/{id}/appRoleAssignments``, ``DELETE /users/{id}/appRoleAssignments/{a}`` (201, 204).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ._app import HTTPError, Request, Response, route
from ._entra_handover import _DEFAULT_ROLE, _META, _id, _not_found

__all__ = ["EntraApps"]

_DEVICE_WRITABLE = {
    "accountEnabled",
    "operatingSystem",
    "operatingSystemVersion",
    "displayName",
    "isCompliant",
    "isManaged",
    "extensionAttributes",
}


class EntraApps:
    """Mixed into the Entra simulator after ``EntraHandover`` (which seeds the state used here)."""

    users: dict[str, dict[str, Any]]
    managed_devices: dict[str, dict[str, Any]]
    devices: dict[str, dict[str, Any]]
    grants: dict[str, dict[str, Any]]
    app_roles: dict[str, dict[str, Any]]
    service_principals: dict[str, dict[str, Any]]

    if TYPE_CHECKING:  # provided by the Entra simulator and EntraHandover; declared for the type checker only

        def _user(self, key: str) -> dict[str, Any]: ...

        @staticmethod
        def _body(req: Request, what: str) -> dict[str, Any]: ...

        @staticmethod
        def _unknown(fields: Any, allowed: set[str], typename: str) -> None: ...

    # ----- Intune managed devices and Entra device objects -------------------------------------
    @route(
        "GET",
        "/v1.0/users/{id}/managedDevices",
        perm=("DeviceManagementManagedDevices.Read.All", "DeviceManagementManagedDevices.ReadWrite.All"),
    )
    async def list_managed_devices(self, req: Request) -> Response:
        user = self._user(req.params["id"])
        value = [dict(d) for d in self.managed_devices.values() if d["userId"] == user["id"]]
        return Response(200, {"@odata.context": f"{_META}#users('{user['id']}')/managedDevices", "value": value})

    @route(
        "POST",
        "/v1.0/deviceManagement/managedDevices/{device}/retire",
        perm=("DeviceManagementManagedDevices.PrivilegedOperations.All",),
    )
    async def retire(self, req: Request) -> Response:
        device = self.managed_devices.get(req.params["device"])
        if device is None:
            raise HTTPError(404, f"ManagedDevice {req.params['device']} not found", reason="ResourceNotFound")
        if req.body.strip():
            raise HTTPError(400, "This action takes no request body.", reason="BadRequest")
        if not req.lie:
            device["managementState"] = "retirePending"
        return Response(204)

    @route("GET", "/v1.0/devices", perm=("Device.Read.All", "Device.ReadWrite.All", "Directory.Read.All"))
    async def list_devices(self, req: Request) -> Response:
        flt = req.query.get("$filter", "")
        prefix = "deviceId eq '"
        if flt and not (flt.startswith(prefix) and flt.endswith("'")):
            raise HTTPError(
                400, f"Unsupported or invalid query filter clause: {flt}", reason="Request_UnsupportedQuery"
            )
        wanted = flt[len(prefix) : -1] if flt else None
        select = [s for s in req.query.get("$select", "").split(",") if s]
        value = [
            {k: v for k, v in d.items() if not select or k in select}
            for d in self.devices.values()
            if wanted is None or d["deviceId"] == wanted
        ]
        return Response(200, {"@odata.context": f"{_META}#devices", "value": value})

    @route("PATCH", "/v1.0/devices/{device}", perm=("Device.ReadWrite.All", "Directory.ReadWrite.All"))
    async def update_device(self, req: Request) -> Response:
        device = self.devices.get(req.params["device"])
        if device is None:
            raise _not_found(req.params["device"])
        body = self._body(req, "device")
        self._unknown(body, _DEVICE_WRITABLE, "microsoft.graph.device")
        if "accountEnabled" in body and not isinstance(body["accountEnabled"], bool):
            raise HTTPError(400, "Invalid value specified for property 'accountEnabled'.", reason="Request_BadRequest")
        if not req.lie:
            device.update(body)
        return Response(204)

    # ----- delegated permission grants and app role assignments --------------------------------
    @route(
        "GET",
        "/v1.0/users/{id}/oauth2PermissionGrants",
        perm=("DelegatedPermissionGrant.Read.All", "DelegatedPermissionGrant.ReadWrite.All", "Directory.Read.All"),
    )
    async def list_user_grants(self, req: Request) -> Response:
        user = self._user(req.params["id"])
        value = [dict(g) for g in self.grants.values() if g["principalId"] == user["id"]]
        return Response(200, {"@odata.context": f"{_META}#oauth2PermissionGrants", "value": value})

    @route(
        "DELETE",
        "/v1.0/oauth2PermissionGrants/{grant}",
        perm=("DelegatedPermissionGrant.ReadWrite.All", "Directory.ReadWrite.All"),
    )
    async def delete_grant(self, req: Request) -> Response:
        if req.params["grant"] not in self.grants:
            raise _not_found(req.params["grant"])
        if not req.lie:
            del self.grants[req.params["grant"]]
        return Response(204)

    @route(
        "POST",
        "/v1.0/oauth2PermissionGrants",
        perm=("DelegatedPermissionGrant.ReadWrite.All", "Directory.ReadWrite.All"),
    )
    async def create_grant(self, req: Request) -> Response:
        body = self._body(req, "oAuth2PermissionGrant")
        self._unknown(
            body,
            {"clientId", "consentType", "principalId", "resourceId", "scope"},
            "microsoft.graph.oAuth2PermissionGrant",
        )
        for key in ("clientId", "consentType", "resourceId"):
            if not body.get(key):
                raise HTTPError(400, f"Required property '{key}' is missing.", reason="Request_BadRequest")
        if body["clientId"] not in self.service_principals or body["resourceId"] not in self.service_principals:
            raise _not_found(
                body["clientId"] if body["clientId"] not in self.service_principals else body["resourceId"]
            )
        if body["consentType"] == "Principal":
            self._user(str(body.get("principalId") or ""))
        same = [
            g
            for g in self.grants.values()
            if (g["clientId"], g["consentType"], g["principalId"], g["resourceId"])
            == (body["clientId"], body["consentType"], body.get("principalId"), body["resourceId"])
        ]
        if same:
            raise HTTPError(
                409,
                "Permission entry already exists.",
                reason="Request_MultipleObjectsWithSameKeyValue",
            )
        grant = {
            "id": _id(
                "grant", body["clientId"], body.get("principalId"), body["resourceId"], datetime.now(UTC).isoformat()
            ),
            "clientId": body["clientId"],
            "consentType": body["consentType"],
            "principalId": body.get("principalId"),
            "resourceId": body["resourceId"],
            "scope": body.get("scope") or "",
        }
        if not req.lie:
            self.grants[grant["id"]] = grant
        return Response(201, {"@odata.context": f"{_META}#oauth2PermissionGrants/$entity", **grant})

    @route(
        "GET",
        "/v1.0/users/{id}/appRoleAssignments",
        perm=("User.Read.All", "AppRoleAssignment.ReadWrite.All", "Directory.Read.All"),
    )
    async def list_app_roles(self, req: Request) -> Response:
        user = self._user(req.params["id"])
        value = [dict(a) for a in self.app_roles.values() if a["principalId"] == user["id"]]
        return Response(200, {"@odata.context": f"{_META}#users('{user['id']}')/appRoleAssignments", "value": value})

    @route(
        "DELETE",
        "/v1.0/users/{id}/appRoleAssignments/{assignment}",
        perm=("AppRoleAssignment.ReadWrite.All", "Directory.ReadWrite.All"),
    )
    async def delete_app_role(self, req: Request) -> Response:
        user = self._user(req.params["id"])
        found = self.app_roles.get(req.params["assignment"])
        if found is None or found["principalId"] != user["id"]:
            raise _not_found(req.params["assignment"])
        if not req.lie:
            del self.app_roles[found["id"]]
        return Response(204)

    @route(
        "POST",
        "/v1.0/users/{id}/appRoleAssignments",
        perm=("AppRoleAssignment.ReadWrite.All", "Directory.ReadWrite.All"),
    )
    async def create_app_role(self, req: Request) -> Response:
        user = self._user(req.params["id"])
        body = self._body(req, "appRoleAssignment")
        self._unknown(body, {"principalId", "resourceId", "appRoleId"}, "microsoft.graph.appRoleAssignment")
        if body.get("principalId") != user["id"]:
            raise HTTPError(400, "principalId must be the user in the request URL.", reason="Request_BadRequest")
        resource = self.service_principals.get(str(body.get("resourceId")))
        if resource is None:
            raise _not_found(str(body.get("resourceId")))
        if body.get("appRoleId") != _DEFAULT_ROLE:
            raise HTTPError(400, "Permission being assigned was not found on application", reason="Request_BadRequest")
        if any(a["principalId"] == user["id"] and a["resourceId"] == resource["id"] for a in self.app_roles.values()):
            raise HTTPError(
                400,
                "Permission being assigned already exists on the object",
                reason="Request_BadRequest",
            )
        assignment = {
            "id": _id("assignment", user["id"], resource["id"], datetime.now(UTC).isoformat()),
            "appRoleId": body["appRoleId"],
            "createdDateTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "principalDisplayName": user["displayName"],
            "principalId": user["id"],
            "principalType": "User",
            "resourceDisplayName": resource["displayName"],
            "resourceId": resource["id"],
        }
        if not req.lie:
            self.app_roles[assignment["id"]] = assignment
        return Response(201, {"@odata.context": f"{_META}#appRoleAssignments/$entity", **assignment})
