"""The Microsoft 365 side of the Entra simulator: what a handover touches through Graph v1.0.

Mailbox settings and inbox rules (Exchange Online), the OneDrive root and its sharing
permissions, and the user's manager (devices and app grants: ``_entra_apps.py``). Shapes, permissions and status codes
follow the Graph v1.0 reference and its CSDL (msgraph-metadata ``schemas/v1.0-Prod.csdl``):

- ``GET|PATCH /users/{id}/mailboxSettings`` (MailboxSettings.Read / .ReadWrite; 200 with the
  updated properties; a user without an Exchange Online mailbox: 404 MailboxNotEnabledForRESTAPI);
- ``GET|POST /users/{id}/mailFolders/inbox/messageRules``, ``DELETE .../messageRules/{rule}`` (201, 204);
- ``GET /users/{id}/drive``, ``GET /drives/{d}/root``, ``POST /drives/{d}/items/{i}/invite``
  (Files.ReadWrite.All; 200 ``{value: [permission]}``; an app cannot invite new guests),
  ``GET|DELETE /drives/{d}/items/{i}/permissions[/{p}]`` (204);
- ``GET /users/{id}/manager`` (404 when none is set).

It seeds the state of ``_entra_apps.py`` too (managed devices, device objects, grants, app role assignments).

``GET /users/{id}/registeredDevices`` is not served: Graph does not support it with application
permissions, so the connector reaches devices through Intune (``azureADDeviceId``).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ._app import HTTPError, Request, Response, route

__all__ = ["EntraHandover"]

_NS = uuid.UUID("0b9e4f3c-6f2a-4d0e-9a61-5c1f3e7d2a10")
_GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"  # Microsoft Graph's appId in every tenant
_DEFAULT_ROLE = "00000000-0000-0000-0000-000000000000"  # "default access" app role
#: Third-party enterprise apps of the sandbox tenant: (display name, delegated scopes people consent to).
_APPS = (
    ("Calendar Sync Pro", "Calendars.ReadWrite offline_access"),
    ("CRM for Outlook", "Mail.Read Contacts.Read offline_access"),
    ("Meeting Notes AI", "OnlineMeetings.Read Calendars.Read"),
)
#: An enterprise app people are assigned to (an app role assignment), like an SSO app.
_ASSIGNED_APP = "Expense Portal"
_AUTO_REPLY_STATUS = ("disabled", "alwaysEnabled", "scheduled")
_AUDIENCE = ("none", "contactsOnly", "all")
_RULE_FIELDS = {"displayName", "sequence", "isEnabled", "conditions", "actions", "exceptions"}
_RULE_READONLY = {"id", "hasError", "isReadOnly"}
_ACTION_FIELDS = {
    "assignCategories",
    "copyToFolder",
    "delete",
    "forwardAsAttachmentTo",
    "forwardTo",
    "markAsRead",
    "markImportance",
    "moveToFolder",
    "permanentDelete",
    "redirectTo",
    "stopProcessingRules",
}
_INVITE_FIELDS = {
    "recipients",
    "message",
    "requireSignIn",
    "sendInvitation",
    "roles",
    "expirationDateTime",
    "password",
    "retainInheritedPermissions",
}
_META = "https://graph.microsoft.com/v1.0/$metadata"


def _id(*parts: Any) -> str:
    return str(uuid.uuid5(_NS, ":".join(str(p) for p in parts)))


def _pick(uid: str, salt: str, modulo: int) -> int:
    return int(hashlib.sha256(f"{uid}:{salt}".encode()).hexdigest()[:8], 16) % modulo


def _not_found(what: str) -> HTTPError:
    return HTTPError(
        404,
        f"Resource '{what}' does not exist or one of its queried reference-property objects are not present.",
        reason="Request_ResourceNotFound",
    )


class EntraHandover:
    """Mixed into the Entra simulator (which provides users, groups, the company and the helpers)."""

    users: dict[str, dict[str, Any]]
    company: Any
    base_url: str

    if TYPE_CHECKING:  # provided by the Entra simulator; declared for the type checker only

        def _user(self, key: str) -> dict[str, Any]: ...

        def _find(self, key: str) -> dict[str, Any] | None: ...

    def _init_handover(self) -> None:
        seed = self.company.seed
        graph_sp = _id(seed, "sp", "graph")
        self.service_principals: dict[str, dict[str, Any]] = {
            graph_sp: {"id": graph_sp, "appId": _GRAPH_APP_ID, "displayName": "Microsoft Graph", "appRoles": []}
        }
        apps = []
        for name, scope in _APPS:
            sp = _id(seed, "sp", name)
            self.service_principals[sp] = {"id": sp, "appId": _id(seed, "app", name), "displayName": name}
            apps.append((sp, scope))
        expense = _id(seed, "sp", _ASSIGNED_APP)
        self.service_principals[expense] = {"id": expense, "appId": _id(seed, "app", _ASSIGNED_APP)}
        self.service_principals[expense]["displayName"] = _ASSIGNED_APP
        self.mailboxes: dict[str, dict[str, Any]] = {}
        self.drives: dict[str, dict[str, Any]] = {}
        self.managed_devices: dict[str, dict[str, Any]] = {}
        self.devices: dict[str, dict[str, Any]] = {}
        self.grants: dict[str, dict[str, Any]] = {}
        self.app_roles: dict[str, dict[str, Any]] = {}
        # Tenant-wide admin consent: never one person's to revoke.
        admin_grant = _id(seed, "grant", "admin-consent")
        self.grants[admin_grant] = {
            "id": admin_grant,
            "clientId": apps[0][0],
            "consentType": "AllPrincipals",
            "principalId": None,
            "resourceId": graph_sp,
            "scope": "User.Read",
        }
        for uid, user in self.users.items():
            local = str(user["mail"]).split("@", 1)[0]
            rules = [
                {
                    "id": _id(uid, "rule", "newsletters"),
                    "displayName": "Newsletters",
                    "sequence": 1,
                    "isEnabled": True,
                    "hasError": False,
                    "isReadOnly": False,
                    "conditions": {"senderContains": ["newsletter"]},
                    "actions": {"moveToFolder": "Newsletters", "stopProcessingRules": True},
                }
            ]
            if _pick(uid, "forward", 3) == 0:  # a leaver's forwarder to a personal address
                rules.append(
                    {
                        "id": _id(uid, "rule", "forward"),
                        "displayName": "Keep a copy",
                        "sequence": 2,
                        "isEnabled": True,
                        "hasError": False,
                        "isReadOnly": False,
                        "conditions": {},
                        "actions": {
                            "forwardTo": [
                                {"emailAddress": {"name": local, "address": f"{local}@personal-mail.example"}}
                            ],
                            "stopProcessingRules": False,
                        },
                    }
                )
            self.mailboxes[uid] = {
                "timeZone": "UTC",
                "dateFormat": "yyyy-MM-dd",
                "timeFormat": "HH:mm",
                "userPurpose": "user",
                "archiveFolder": _id(uid, "folder", "archive"),
                "language": {"locale": "en-US", "displayName": "English (United States)"},
                "automaticRepliesSetting": {
                    "status": "disabled",
                    "externalAudience": "all",
                    "internalReplyMessage": "",
                    "externalReplyMessage": "",
                    "scheduledStartDateTime": {"dateTime": "2024-01-01T00:00:00.0000000", "timeZone": "UTC"},
                    "scheduledEndDateTime": {"dateTime": "2024-01-02T00:00:00.0000000", "timeZone": "UTC"},
                },
                "delegateMeetingMessageDeliveryOptions": "sendToDelegateOnly",
                "_rules": rules,
            }
            drive = "b!" + _id(uid, "drive").replace("-", "")
            self.drives[drive] = {
                "id": drive,
                "driveType": "business",
                "owner": uid,
                "root": _id(uid, "root"),
                "permissions": [],
            }
            user["_drive"] = drive
            n_devices = 1 + _pick(uid, "devices", 2)
            for n, (name, os) in enumerate((("LAPTOP", "Windows"), ("PHONE", "iOS"))[:n_devices]):
                device_id = _id(uid, "azure-device", n)
                obj = _id(uid, "device-object", n)
                self.devices[obj] = {
                    "id": obj,
                    "deviceId": device_id,
                    "displayName": f"{name}-{local[:8].upper()}",
                    "accountEnabled": True,
                    "operatingSystem": os,
                    "isManaged": True,
                }
                managed = _id(uid, "managed-device", n)
                self.managed_devices[managed] = {
                    "id": managed,
                    "userId": uid,
                    "userPrincipalName": user["userPrincipalName"],
                    "deviceName": f"{name}-{local[:8].upper()}",
                    "operatingSystem": os,
                    "managedDeviceOwnerType": "company",
                    "managementState": "managed",
                    "azureADDeviceId": device_id,
                    "enrolledDateTime": "2024-02-01T09:00:00Z",
                }
            for sp, scope in apps[: _pick(uid, "grants", len(apps) + 1)]:
                gid = _id(uid, "grant", sp)
                self.grants[gid] = {
                    "id": gid,
                    "clientId": sp,
                    "consentType": "Principal",
                    "principalId": uid,
                    "resourceId": graph_sp,
                    "scope": scope,
                }
            if _pick(uid, "assigned", 2) == 0:
                aid = _id(uid, "assignment", expense)
                self.app_roles[aid] = {
                    "id": aid,
                    "appRoleId": _DEFAULT_ROLE,
                    "createdDateTime": "2024-03-01T10:00:00Z",
                    "principalDisplayName": user["displayName"],
                    "principalId": uid,
                    "principalType": "User",
                    "resourceDisplayName": _ASSIGNED_APP,
                    "resourceId": expense,
                }

    # ----- inspection -------------------------------------------------------------------------
    def handover_state(self, uid: str) -> dict[str, Any]:
        """What a handover changes for one user, without ids Graph mints anew on a re-create."""
        box = self.mailboxes.get(uid)
        drive = self.drives.get(self.users.get(uid, {}).get("_drive", ""), {})
        devices = [d for d in self.managed_devices.values() if d["userId"] == uid]
        by_device_id = {d["deviceId"]: d for d in self.devices.values()}
        return {
            "auto_reply": None if box is None else dict(box["automaticRepliesSetting"]),
            "inbox_rules": None
            if box is None
            else sorted((r["displayName"], json.dumps(r["actions"], sort_keys=True)) for r in box["_rules"]),
            "drive_shared_with": sorted(
                (p["grantedTo"]["user"].get("email") or "", tuple(p["roles"])) for p in drive.get("permissions", [])
            ),
            "devices": sorted(
                (
                    d["deviceName"],
                    d["managementState"],
                    by_device_id.get(d["azureADDeviceId"], {}).get("accountEnabled"),
                )
                for d in devices
            ),
            "grants": sorted(
                (g["clientId"], g["resourceId"], g["scope"]) for g in self.grants.values() if g["principalId"] == uid
            ),
            "app_roles": sorted(
                (a["resourceId"], a["appRoleId"]) for a in self.app_roles.values() if a["principalId"] == uid
            ),
        }

    def complete_retirements(self) -> int:
        """Devices check in: every retirePending managed device leaves management (gone from the list)."""
        done = [k for k, d in self.managed_devices.items() if d["managementState"] == "retirePending"]
        for key in done:
            del self.managed_devices[key]
        return len(done)

    # ----- helpers ----------------------------------------------------------------------------
    def _mailbox(self, key: str) -> tuple[dict[str, Any], dict[str, Any]]:
        user = self._user(key)
        box = self.mailboxes.get(user["id"])
        if box is None:
            raise HTTPError(
                404,
                "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
                reason="MailboxNotEnabledForRESTAPI",
            )
        return user, box

    @staticmethod
    def _body(req: Request, what: str) -> dict[str, Any]:
        body = req.json()
        if not isinstance(body, dict):
            raise HTTPError(400, f"Empty Payload. JSON content expected for {what}.", reason="BadRequest")
        return body

    @staticmethod
    def _unknown(fields: Any, allowed: set[str], typename: str) -> None:
        for key in fields:
            if key not in allowed and not str(key).startswith("@odata."):
                raise HTTPError(
                    400,
                    f"The property '{key}' does not exist on type '{typename}'. Make sure to only use property "
                    "names that are defined by the type or mark the type as open type.",
                    reason="RequestBodyRead",
                )

    # ----- manager ----------------------------------------------------------------------------
    @route("GET", "/v1.0/users/{id}/manager", perm=("User.Read.All", "User.ReadWrite.All", "Directory.Read.All"))
    async def get_manager(self, req: Request) -> Response:
        user = self._user(req.params["id"])
        boss = self._find(user["_manager"]) if user.get("_manager") else None
        if boss is None:
            raise _not_found("manager")
        body = {k: boss.get(k) for k in ("id", "displayName", "mail", "userPrincipalName")}
        return Response(
            200, {"@odata.context": f"{_META}#directoryObjects/$entity", "@odata.type": "#microsoft.graph.user", **body}
        )

    # ----- mailbox settings and inbox rules ---------------------------------------------------
    @route(
        "GET",
        "/v1.0/users/{id}/mailboxSettings",
        perm=("MailboxSettings.Read", "MailboxSettings.ReadWrite"),
    )
    async def get_mailbox_settings(self, req: Request) -> Response:
        user, box = self._mailbox(req.params["id"])
        body = {k: v for k, v in box.items() if not k.startswith("_")}
        return Response(200, {"@odata.context": f"{_META}#users('{user['id']}')/mailboxSettings", **body})

    @route("PATCH", "/v1.0/users/{id}/mailboxSettings", perm=("MailboxSettings.ReadWrite",))
    async def update_mailbox_settings(self, req: Request) -> Response:
        user, box = self._mailbox(req.params["id"])
        body = self._body(req, "mailboxSettings")
        self._unknown(body, {k for k in box if not k.startswith("_")}, "microsoft.graph.mailboxSettings")
        if "userPurpose" in body:
            raise HTTPError(400, "Property 'userPurpose' is read-only and cannot be set.", reason="ErrorInvalidRequest")
        setting = body.get("automaticRepliesSetting")
        if setting is not None:
            if not isinstance(setting, dict):
                raise HTTPError(400, "automaticRepliesSetting must be an object.", reason="RequestBodyRead")
            self._unknown(setting, set(box["automaticRepliesSetting"]), "microsoft.graph.automaticRepliesSetting")
            if "status" in setting and setting["status"] not in _AUTO_REPLY_STATUS:
                raise HTTPError(
                    400,
                    f"The value '{setting['status']}' is not valid for automaticRepliesStatus.",
                    reason="RequestBodyRead",
                )
            if "externalAudience" in setting and setting["externalAudience"] not in _AUDIENCE:
                raise HTTPError(
                    400,
                    f"The value '{setting['externalAudience']}' is not valid for externalAudienceScope.",
                    reason="RequestBodyRead",
                )
        if not req.lie:
            for key, value in body.items():
                if key == "automaticRepliesSetting":
                    box[key] = {**box[key], **value}
                elif not key.startswith("@"):
                    box[key] = value
        shown = {k: box[k] for k in body if k in box}
        return Response(200, {"@odata.context": f"{_META}#users('{user['id']}')/mailboxSettings", **shown})

    @route(
        "GET",
        "/v1.0/users/{id}/mailFolders/inbox/messageRules",
        perm=("MailboxSettings.Read", "MailboxSettings.ReadWrite"),
    )
    async def list_message_rules(self, req: Request) -> Response:
        user, box = self._mailbox(req.params["id"])
        return Response(
            200,
            {
                "@odata.context": f"{_META}#users('{user['id']}')/mailFolders('inbox')/messageRules",
                "value": [dict(r) for r in box["_rules"]],
            },
        )

    @route("POST", "/v1.0/users/{id}/mailFolders/inbox/messageRules", perm=("MailboxSettings.ReadWrite",))
    async def create_message_rule(self, req: Request) -> Response:
        user, box = self._mailbox(req.params["id"])
        body = self._body(req, "messageRule")
        self._unknown(body, _RULE_FIELDS | _RULE_READONLY, "microsoft.graph.messageRule")
        self._unknown(body.get("actions") or {}, _ACTION_FIELDS, "microsoft.graph.messageRuleActions")
        if not body.get("displayName") or not isinstance(body.get("sequence"), int):
            raise HTTPError(
                400, "A message rule needs displayName and an integer sequence.", reason="ErrorInvalidRequest"
            )
        if not body.get("actions"):
            raise HTTPError(400, "A message rule needs at least one action.", reason="ErrorInvalidRequest")
        rule = {
            "id": _id(user["id"], "rule", body["displayName"], len(box["_rules"]), datetime.now(UTC).isoformat()),
            "displayName": body["displayName"],
            "sequence": body["sequence"],
            "isEnabled": bool(body.get("isEnabled", True)),
            "hasError": False,
            "isReadOnly": False,
            "conditions": body.get("conditions") or {},
            "actions": body["actions"],
        }
        if body.get("exceptions"):
            rule["exceptions"] = body["exceptions"]
        if not req.lie:
            box["_rules"].append(rule)
        context = f"{_META}#users('{user['id']}')/mailFolders('inbox')/messageRules/$entity"
        return Response(201, {"@odata.context": context, **rule})

    @route("DELETE", "/v1.0/users/{id}/mailFolders/inbox/messageRules/{rule}", perm=("MailboxSettings.ReadWrite",))
    async def delete_message_rule(self, req: Request) -> Response:
        _, box = self._mailbox(req.params["id"])
        found = [r for r in box["_rules"] if r["id"] == req.params["rule"]]
        if not found:
            raise HTTPError(404, "The specified object was not found in the store.", reason="ErrorItemNotFound")
        if found[0].get("isReadOnly"):
            raise HTTPError(403, "Access is denied. Check credentials and try again.", reason="ErrorAccessDenied")
        if not req.lie:
            box["_rules"].remove(found[0])
        return Response(204)

    # ----- OneDrive ---------------------------------------------------------------------------
    def _drive(self, drive_id: str) -> dict[str, Any]:
        drive = self.drives.get(drive_id)
        if drive is None or drive["owner"] not in self.users:
            raise HTTPError(404, "Item not found", reason="itemNotFound")
        return drive

    def _render_drive(self, drive: dict[str, Any]) -> dict[str, Any]:
        owner = self.users[drive["owner"]]
        return {
            "id": drive["id"],
            "driveType": drive["driveType"],
            "name": "OneDrive",
            "webUrl": f"https://corp-my.sharepoint.example/personal/{owner['mail'].replace('@', '_').replace('.', '_')}/Documents",
            "owner": {"user": {"id": owner["id"], "displayName": owner["displayName"], "email": owner["mail"]}},
        }

    def _root_item(self, drive: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": drive["root"],
            "name": "root",
            "root": {},
            "folder": {"childCount": 12},
            "parentReference": {"driveId": drive["id"], "driveType": drive["driveType"]},
        }

    @route("GET", "/v1.0/users/{id}/drive", perm=("Files.Read.All", "Files.ReadWrite.All", "Sites.Read.All"))
    async def get_user_drive(self, req: Request) -> Response:
        user = self._user(req.params["id"])
        drive = self.drives.get(user.get("_drive", ""))
        if drive is None:
            raise HTTPError(404, "User's mysite not found.", reason="ResourceNotFound")
        return Response(200, {"@odata.context": f"{_META}#drives/$entity", **self._render_drive(drive)})

    @route("GET", "/v1.0/drives/{drive}/root", perm=("Files.Read.All", "Files.ReadWrite.All", "Sites.Read.All"))
    async def get_drive_root(self, req: Request) -> Response:
        drive = self._drive(req.params["drive"])
        return Response(
            200, {"@odata.context": f"{_META}#drives('{drive['id']}')/root/$entity", **self._root_item(drive)}
        )

    def _item(self, req: Request) -> dict[str, Any]:
        drive = self._drive(req.params["drive"])
        if req.params["item"] != drive["root"]:
            raise HTTPError(404, "Item not found", reason="itemNotFound")
        return drive

    @route(
        "GET",
        "/v1.0/drives/{drive}/items/{item}/permissions",
        perm=("Files.Read.All", "Files.ReadWrite.All", "Sites.Read.All"),
    )
    async def list_item_permissions(self, req: Request) -> Response:
        drive = self._item(req)
        owner = self.users[drive["owner"]]
        inherited = {
            "id": "aTowIy5mfG1lbWJlcnNoaXB8" + owner["id"][:8],
            "roles": ["owner"],
            "grantedTo": {"user": {"id": owner["id"], "displayName": owner["displayName"], "email": owner["mail"]}},
        }
        return Response(
            200,
            {"@odata.context": f"{_META}#Collection(permission)", "value": [inherited, *drive["permissions"]]},
        )

    @route("POST", "/v1.0/drives/{drive}/items/{item}/invite", perm=("Files.ReadWrite.All", "Sites.ReadWrite.All"))
    async def invite(self, req: Request) -> Response:
        drive = self._item(req)
        body = self._body(req, "invite")
        self._unknown(body, _INVITE_FIELDS, "microsoft.graph.invite parameters")
        recipients = body.get("recipients")
        if not isinstance(recipients, list) or not recipients:
            raise HTTPError(400, "Invalid request: recipients is required.", reason="invalidRequest")
        roles = body.get("roles") or []
        if not roles or any(r not in ("read", "write") for r in roles):
            raise HTTPError(400, "Invalid request: roles must be read or write.", reason="invalidRequest")
        if drive["driveType"] == "personal":
            raise HTTPError(
                400, "Permissions can't be created on the root of a personal drive.", reason="invalidRequest"
            )
        created = []
        for recipient in recipients:
            email = (recipient or {}).get("email") if isinstance(recipient, dict) else None
            who = self._find(email) if email else None
            if who is None:
                raise HTTPError(400, "New guests can't be invited using app-only access.", reason="invalidRequest")
            existing = [
                p for p in drive["permissions"] if p["grantedTo"]["user"]["id"] == who["id"] and p["roles"] == roles
            ]
            if existing:
                created.append(existing[0])
                continue
            perm = {
                "id": _id(drive["id"], "perm", who["id"], ",".join(roles)),
                "roles": list(roles),
                "grantedTo": {"user": {"id": who["id"], "displayName": who["displayName"], "email": who["mail"]}},
                "grantedToV2": {"user": {"id": who["id"], "displayName": who["displayName"], "email": who["mail"]}},
            }
            if not req.lie:
                drive["permissions"].append(perm)
            created.append(perm)
        return Response(200, {"@odata.context": f"{_META}#Collection(permission)", "value": created})

    @route(
        "DELETE",
        "/v1.0/drives/{drive}/items/{item}/permissions/{perm}",
        perm=("Files.ReadWrite.All", "Sites.ReadWrite.All"),
    )
    async def delete_item_permission(self, req: Request) -> Response:
        drive = self._item(req)
        found = [p for p in drive["permissions"] if p["id"] == req.params["perm"]]
        if not found:
            raise HTTPError(404, "Item not found", reason="itemNotFound")
        if not req.lie:
            drive["permissions"].remove(found[0])
        return Response(204)
