"""Devices and app grants of the Microsoft 365 handover (``wipe_devices``, ``revoke_app_grants``),
mixed into the Entra connector through ``GraphHandover``.

- ``wipe_devices``: Intune-managed devices are retired (company data removed) and their Entra device
  objects disabled; neither is reversible through Graph (a retired device re-enrols). Graph does not
  list a user's ``registeredDevices`` with application permissions, so devices are reached through
  Intune (``azureADDeviceId``).
- ``revoke_app_grants``: the person's delegated permission grants (``consentType`` Principal; the
  tenant-wide admin consent is not theirs) and app role assignments are deleted; undo re-creates them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from offboard import Action, ActionKind, Receipt, Verification
from offboard.errors import NotFound

if TYPE_CHECKING:
    import httpx

__all__ = ["GraphApps", "APP_ROLES", "DEVICE_OBJECTS", "DEVICES_READ", "DEVICES_RETIRE", "GRANTS"]

DEVICES_READ = "DeviceManagementManagedDevices.Read.All"
DEVICES_RETIRE = "DeviceManagementManagedDevices.PrivilegedOperations.All"
DEVICE_OBJECTS = "Device.ReadWrite.All"
GRANTS = "DelegatedPermissionGrant.ReadWrite.All"
APP_ROLES = "AppRoleAssignment.ReadWrite.All"
K = ActionKind
_RETIRED = ("retirePending", "retireIssued")


class GraphApps:
    """Devices and app grants for ``EntraConnector`` (which provides ``_call``)."""

    if TYPE_CHECKING:

        def _call(self, method: str, path: str, what: str, permission: str, **kw: Any) -> httpx.Response: ...

    # -- devices --------------------------------------------------------------------------

    def _managed_devices(self, action: Action) -> list[dict[str, Any]]:
        body = self._call(
            "GET",
            f"users/{_seg(action.account.id)}/managedDevices",
            f"list the managed devices of {action.account.name}",
            DEVICES_READ,
            params={"$select": "id,deviceName,operatingSystem,managementState,azureADDeviceId,managedDeviceOwnerType"},
        ).json()
        return list(body.get("value") or [])

    def _device_object(self, device_id: str) -> dict[str, Any] | None:
        body = self._call(
            "GET",
            "devices",
            f"read device {device_id}",
            DEVICE_OBJECTS,
            params={"$filter": f"deviceId eq '{device_id}'", "$select": "id,deviceId,displayName,accountEnabled"},
        ).json()
        found = body.get("value") or []
        return found[0] if found else None

    def wipe_devices(self, action: Action) -> Receipt:
        devices = self._managed_devices(action)
        before: list[dict[str, Any]] = []
        changed = False
        for device in devices:
            entry = {k: device.get(k) for k in ("id", "deviceName", "managementState", "azureADDeviceId")}
            if device.get("managementState") not in _RETIRED:
                self._call(
                    "POST",
                    f"deviceManagement/managedDevices/{_seg(device['id'])}/retire",
                    f"retire {device.get('deviceName')} of {action.account.name}",
                    DEVICES_RETIRE,
                    content=b"",
                )
                changed = True
            obj = self._device_object(device["azureADDeviceId"]) if device.get("azureADDeviceId") else None
            if obj is not None:
                entry["entra_device"] = {"id": obj["id"], "accountEnabled": obj.get("accountEnabled")}
                if obj.get("accountEnabled"):
                    self._call(
                        "PATCH",
                        f"devices/{_seg(obj['id'])}",
                        f"disable device {obj.get('displayName')} of {action.account.name}",
                        DEVICE_OBJECTS,
                        json={"accountEnabled": False},
                    )
                    changed = True
            before.append(entry)
        names = ", ".join(str(d.get("deviceName")) for d in devices) or "none"
        detail = f"retired and disabled: {names}" if devices else "no Intune-managed devices"
        kept: dict[str, Any] = {"devices": before}
        if changed:
            kept["irreversible"] = [
                f"retired {names}: company data is removed and a device must re-enrol in Intune; "
                "device objects can be re-enabled in the Entra admin center"
            ]
        return Receipt(action, changed=changed, before=kept, detail=detail)

    # -- app grants ------------------------------------------------------------------------

    def _grants(self, action: Action) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        uid = _seg(action.account.id)
        grants = self._call(
            "GET", f"users/{uid}/oauth2PermissionGrants", f"list the app consents of {action.account.name}", GRANTS
        ).json()
        roles = self._call(
            "GET", f"users/{uid}/appRoleAssignments", f"list the app assignments of {action.account.name}", APP_ROLES
        ).json()
        mine = [
            g
            for g in grants.get("value") or []
            if g.get("consentType") == "Principal" and g.get("principalId") == action.account.id
        ]
        return mine, list(roles.get("value") or [])

    def before_revoke_app_grants(self, action: Action) -> dict[str, Any]:
        return _grants_before(*self._grants(action))

    def revoke_app_grants(self, action: Action) -> Receipt:
        grants, roles = self._grants(action)
        for grant in grants:
            try:
                self._call(
                    "DELETE",
                    f"oauth2PermissionGrants/{_seg(grant['id'])}",
                    f"revoke an app consent of {action.account.name}",
                    GRANTS,
                )
            except NotFound:
                pass
        for role in roles:
            try:
                self._call(
                    "DELETE",
                    f"users/{_seg(action.account.id)}/appRoleAssignments/{_seg(role['id'])}",
                    f"remove {action.account.name} from app {role.get('resourceDisplayName')}",
                    APP_ROLES,
                )
            except NotFound:
                pass
        before = _grants_before(grants, roles)
        detail = f"revoked {len(grants)} delegated grant(s) and {len(roles)} app assignment(s)"
        return Receipt(action, changed=bool(grants or roles), before=before, detail=detail)

    def undo_revoke_app_grants(self, receipt: Receipt) -> Receipt:
        action = receipt.action
        grants, roles = self._grants(action)
        have_grants = {(g.get("clientId"), g.get("resourceId")) for g in grants}
        have_roles = {(r.get("resourceId"), r.get("appRoleId")) for r in roles}
        made = 0
        for grant in receipt.before.get("grants") or []:
            if (grant.get("clientId"), grant.get("resourceId")) not in have_grants:
                self._call(
                    "POST",
                    "oauth2PermissionGrants",
                    f"restore an app consent of {action.account.name}",
                    GRANTS,
                    json=grant,
                )
                made += 1
        for role in receipt.before.get("app_roles") or []:
            if (role.get("resourceId"), role.get("appRoleId")) not in have_roles:
                body = {
                    "principalId": action.account.id,
                    "resourceId": role["resourceId"],
                    "appRoleId": role["appRoleId"],
                }
                self._call(
                    "POST",
                    f"users/{_seg(action.account.id)}/appRoleAssignments",
                    f"restore app {role.get('resourceDisplayName')} for {action.account.name}",
                    APP_ROLES,
                    json=body,
                )
                made += 1
        return Receipt(action, changed=bool(made), detail=f"restored {made} grant(s) and assignment(s)")

    def verify_apps(self, action: Action) -> Verification:
        who = action.account.name
        if action.kind is K.WIPE_DEVICES:
            devices = self._managed_devices(action)
            unretired: list[str] = []
            enabled: list[str] = []
            for device in devices:
                if device.get("managementState") not in _RETIRED:
                    unretired.append(str(device.get("deviceName")))
                obj = self._device_object(device["azureADDeviceId"]) if device.get("azureADDeviceId") else None
                if obj is not None and obj.get("accountEnabled"):
                    enabled.append(str(obj.get("displayName")))
            pending = [str(d.get("deviceName")) for d in devices if d.get("managementState") in _RETIRED]
            parts = [f"not retired: {', '.join(unretired)}"] if unretired else []
            parts += [f"device objects enabled: {', '.join(enabled)}"] if enabled else []
            if not parts:
                parts = [f"retire pending until check-in: {', '.join(pending)}" if pending else "no managed device"]
            observed = {"not_retired": unretired, "enabled_device_objects": enabled, "retire_pending": pending}
            return Verification(action, not unretired and not enabled, observed, f"{who}: {'; '.join(parts)}")
        grants, roles = self._grants(action)  # revoke_app_grants
        apps = sorted({str(g.get("clientId")) for g in grants})
        assigned = sorted({str(r.get("resourceDisplayName") or r.get("resourceId")) for r in roles})
        parts = [f"consents to {len(apps)} app(s)"] if apps else []
        parts += [f"assigned to {', '.join(assigned)}"] if assigned else []
        detail = f"{who}: {'; '.join(parts)} remain" if parts else f"{who}: no delegated grant or app assignment"
        return Verification(action, not parts, {"grant_clients": apps, "assigned_apps": assigned}, detail)


def _grants_before(grants: list[dict[str, Any]], roles: list[dict[str, Any]]) -> dict[str, Any]:
    kept_grants = [
        {k: g.get(k) for k in ("clientId", "consentType", "principalId", "resourceId", "scope")} for g in grants
    ]
    kept_roles = [{k: r.get(k) for k in ("resourceId", "appRoleId", "resourceDisplayName")} for r in roles]
    return {
        "grants": sorted(kept_grants, key=lambda g: (str(g["clientId"]), str(g["resourceId"]))),
        "app_roles": sorted(kept_roles, key=lambda r: (str(r["resourceId"]), str(r["appRoleId"]))),
    }


def _seg(key: str) -> str:
    return quote(str(key), safe="@!")
