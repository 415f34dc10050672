"""Google Workspace pieces of the simulator for handover: Gmail settings (delegates, vacation, auto-forwarding,
filters, forwarding addresses), Directory mobile devices, the Enterprise License Manager API and Vault holds.

Shaped as Google documents them (the discovery documents shipped in google-api-python-client: gmail.v1,
admin.directory_v1, licensing.v1, vault.v1). Gmail settings are read and written as the mailbox's own user
(domain-wide delegation with that user as the token's subject); another subject gets 403. Google refuses a
suspended user's Gmail settings calls (GAM-team/GAM#727, GAM-team/got-your-back#258); the simulator answers
them with Gmail's answer for a mailbox that is not running: 400 failedPrecondition "Mail service not enabled".
"""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Any

from ._app import HTTPError, Request, Response, route

__all__ = ["GoogleHandoverSim", "GMAIL_SCOPES", "HANDOVER_NEED", "CALENDAR_APP"]

_SCOPE = "https://www.googleapis.com/auth/"
G = "/gmail/v1/users/{userId}/settings"
MOBILE = "/admin/directory/v1/customer/{customerId}/devices/mobile"
LIC = "/apps/licensing/v1/product/{productId}/sku/{skuId}"
GMAIL_SCOPES = frozenset(_SCOPE + s for s in ("gmail.settings.basic", "gmail.settings.sharing"))
HANDOVER_SCOPES = (
    "gmail.settings.basic",
    "gmail.settings.sharing",
    "admin.directory.device.mobile",
    "admin.directory.device.mobile.action",
    "admin.directory.device.mobile.readonly",
    "apps.licensing",
    "ediscovery",
    "ediscovery.readonly",
)
#: need -> scopes that grant it (any of), as the discovery documents list them per method
HANDOVER_NEED = {
    "gmail_read": ("gmail.settings.basic", "gmail.settings.sharing"),
    "gmail_basic": ("gmail.settings.basic",),
    "gmail_sharing": ("gmail.settings.sharing",),
    "mobile_read": (
        "admin.directory.device.mobile",
        "admin.directory.device.mobile.action",
        "admin.directory.device.mobile.readonly",
    ),
    "mobile_action": ("admin.directory.device.mobile", "admin.directory.device.mobile.action"),
    "licensing": ("apps.licensing",),
    "vault_read": ("ediscovery", "ediscovery.readonly"),
}
CALENDAR_APP = 435070579839
WORKSPACE_SKUS = {"1010020020", "1010020025", "1010020026", "1010020027", "1010020028"}
ARCHIVED_SKUS = {"1010340001", "1010340003", "1010340004", "1010340005", "1010340006"}
_PRODUCT_SKUS = {"Google-Apps": WORKSPACE_SKUS, "101034": ARCHIVED_SKUS}


class GoogleHandoverSim:
    """Mixed into the GoogleWorkspace simulator (which provides users, domains, _find, _scope, _tokens)."""

    users: dict[str, dict[str, Any]]
    domains: set[str]
    customer_id: str
    _tokens: dict[str, tuple[str, frozenset[str]]]

    if TYPE_CHECKING:  # provided by GoogleWorkspace

        def _find(self, key: str) -> dict[str, Any] | None: ...
        def _scope(self, req: Request, need: str) -> None: ...

    def _init_handover(self, company: Any) -> None:
        """Seed mail settings, devices, licences and an empty Vault from the company's identities."""
        self.devices: dict[str, dict[str, Any]] = {}
        self.licenses: set[tuple[str, str, str]] = set()  # (productId, skuId, user id)
        self.matters: dict[str, dict[str, Any]] = {}
        by_email = {i.email.lower(): i for i in company.in_system("google_workspace")}
        for uid, user in self.users.items():
            ident = by_email.get(user["primaryEmail"].lower())
            mail: dict[str, Any] = {
                "delegates": {},
                "vacation": {"enableAutoReply": False},
                "autoForwarding": {"enabled": False},
                "filters": {},
                "forwarding": {},
            }
            user["_mail"] = mail
            user["_calendars"] = 2 if ident is not None and ident.person is not None else 0
            if ident is None:
                continue
            self.licenses.add(("Google-Apps", "1010020020", uid))
            for target in getattr(ident, "mail_forward_to", ()) or ():
                mail["forwarding"][target] = "accepted"
                fid = "ANe1Bm" + secrets.token_hex(6)
                mail["filters"][fid] = {
                    "id": fid,
                    "criteria": {"from": "*"},
                    "action": {"forward": target},
                }
            if getattr(ident, "mail_forward_to", ()):  # the leaver's app password is a recent one
                for asp in user.get("_asps", {}).values():
                    asp["creationTime"] = str(int((time.time() - 3 * 86400) * 1000))
            for delegate in getattr(ident, "mail_delegates", ()) or ():
                mail["delegates"][delegate] = "accepted"
            for n, model in enumerate(getattr(ident, "mobile_devices", ()) or ()):
                rid = f"AFiQxQ8{uid[-8:]}{n}"
                self.devices[rid] = {
                    "kind": "admin#directory#mobiledevice",
                    "resourceId": rid,
                    "deviceId": f"android-{uid[-6:]}{n}",
                    "email": [user["primaryEmail"]],
                    "name": [user["name"]["fullName"]],
                    "model": model,
                    "os": "Android 14",
                    "type": "ANDROID",
                    "status": "APPROVED",
                    "firstSync": "2024-03-01T09:00:00.000Z",
                    "lastSync": "2025-01-01T09:00:00.000Z",
                }

    # ----- inspection ---------------------------------------------------------------------------------
    def mail(self, key: str) -> dict[str, Any]:
        """A user's mail settings (delegates, vacation, autoForwarding, filters, forwarding) for tests."""
        user = self._find(key)
        return {} if user is None else user["_mail"]

    def licenses_of(self, key: str) -> list[tuple[str, str]]:
        user = self._find(key)
        return sorted((p, s) for p, s, u in self.licenses if user is not None and u == user["id"])

    def devices_of(self, key: str) -> list[dict[str, Any]]:
        user = self._find(key)
        return [d for d in self.devices.values() if user is not None and user["primaryEmail"] in d["email"]]

    def add_app_password(self, key: str, name: str, created_ms: int | None = None) -> int:
        """Behind offboard's back, as the user would in their account settings: an app password for ``key``.

        Shaped as the Directory API's Asp resource (admin.directory_v1 discovery document, schema ``Asp``;
        https://developers.google.com/workspace/admin/directory/reference/rest/v1/asps): ``codeId`` an
        integer, ``creationTime`` and ``lastTimeUsed`` int64 milliseconds as strings. Returns the codeId."""
        user = self._find(key)
        if user is None:
            raise KeyError(key)
        code = max([*user["_asps"], 1999]) + 1
        user["_asps"][code] = {
            "kind": "admin#directory#asp",
            "codeId": code,
            "name": name,
            "creationTime": str(created_ms if created_ms is not None else int(time.time() * 1000)),
            "lastTimeUsed": "0",
            "userKey": user["id"],
            "etag": f'"{secrets.token_hex(8)}"',
        }
        return code

    def add_hold(self, matter: str, hold: str, emails: list[str]) -> None:
        """Open a Vault matter with a hold on these accounts."""
        mid = f"{len(self.matters) + 1:04d}-matter"
        accounts = []
        for email in emails:
            user = self._find(email)
            if user is not None:
                accounts.append({"accountId": user["id"], "email": user["primaryEmail"]})
        self.matters[mid] = {
            "matterId": mid,
            "name": matter,
            "state": "OPEN",
            "holds": [{"holdId": f"h{len(self.matters)}", "name": hold, "corpus": "MAIL", "accounts": accounts}],
        }

    # ----- Gmail ----------------------------------------------------------------------------------------
    def _mailbox(self, req: Request, need: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The mailbox ``userId`` names, as its own user; refused for another subject and for a suspended user."""
        token = req.header("authorization")[7:]
        subject, scopes = self._tokens.get(token, ("", frozenset()))
        if not any(_SCOPE + s in scopes for s in HANDOVER_NEED[need]):
            raise HTTPError(
                403,
                "Request had insufficient authentication scopes.",
                reason="insufficientPermissions",
                headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", error="insufficient_scope"'},
            )
        key = req.params["userId"]
        user = self._find(subject) if key == "me" else self._find(key)
        if user is None or user["primaryEmail"].lower() != subject.lower() and key.lower() != subject.lower():
            raise HTTPError(403, f"Delegation denied for {subject}", reason="forbidden")
        if user.get("suspended"):
            raise HTTPError(400, "Mail service not enabled", reason="failedPrecondition")
        return user, user["_mail"]

    @route("GET", G + "/delegates")
    async def gmail_delegates_list(self, req: Request) -> Response:
        _, mail = self._mailbox(req, "gmail_read")
        items = [{"delegateEmail": e, "verificationStatus": s} for e, s in mail["delegates"].items()]
        return Response(200, {"delegates": items} if items else {})

    @route("GET", G + "/delegates/{delegateEmail}")
    async def gmail_delegates_get(self, req: Request) -> Response:
        _, mail = self._mailbox(req, "gmail_read")
        email = req.params["delegateEmail"]
        if email not in mail["delegates"]:
            raise HTTPError(404, "Requested entity was not found.", reason="notFound")
        return Response(200, {"delegateEmail": email, "verificationStatus": mail["delegates"][email]})

    @route("POST", G + "/delegates")
    async def gmail_delegates_create(self, req: Request) -> Response:
        user, mail = self._mailbox(req, "gmail_sharing")
        body = req.json()
        email = str((body or {}).get("delegateEmail") or "") if isinstance(body, dict) else ""
        if not email:
            raise HTTPError(400, "Invalid delegate", reason="invalidArgument")
        target = self._find(email)
        if target is None or email.rpartition("@")[2].lower() not in self.domains:
            raise HTTPError(400, "Invalid delegate", reason="invalidArgument")
        if target["primaryEmail"].lower() != email.lower():  # an alias: Google wants the primary address
            raise HTTPError(400, "Invalid delegate: use the primary email address", reason="invalidArgument")
        if target.get("suspended"):
            raise HTTPError(400, "Delegate user is suspended", reason="failedPrecondition")
        if target["id"] == user["id"]:
            raise HTTPError(400, "Invalid delegate", reason="invalidArgument")
        if email in mail["delegates"]:
            raise HTTPError(409, "Delegate already exists", reason="alreadyExists")
        if len(mail["delegates"]) >= 25:
            raise HTTPError(400, "Too many delegates", reason="failedPrecondition")
        if not req.lie:
            mail["delegates"][target["primaryEmail"]] = "accepted"
        return Response(200, {"delegateEmail": target["primaryEmail"], "verificationStatus": "accepted"})

    @route("DELETE", G + "/delegates/{delegateEmail}")
    async def gmail_delegates_delete(self, req: Request) -> Response:
        _, mail = self._mailbox(req, "gmail_sharing")
        email = req.params["delegateEmail"]
        if email not in mail["delegates"]:
            raise HTTPError(404, "Requested entity was not found.", reason="notFound")
        if not req.lie:
            del mail["delegates"][email]
        return Response(204)

    @route("GET", G + "/vacation")
    async def gmail_vacation_get(self, req: Request) -> Response:
        _, mail = self._mailbox(req, "gmail_read")
        return Response(200, dict(mail["vacation"]))

    @route("PUT", G + "/vacation")
    async def gmail_vacation_update(self, req: Request) -> Response:
        _, mail = self._mailbox(req, "gmail_basic")
        body = req.json()
        allowed = {
            "enableAutoReply",
            "responseSubject",
            "responseBodyPlainText",
            "responseBodyHtml",
            "restrictToContacts",
            "restrictToDomain",
            "startTime",
            "endTime",
        }
        if not isinstance(body, dict) or set(body) - allowed:
            raise HTTPError(400, "Invalid JSON payload received.", reason="invalidArgument")
        if body.get("enableAutoReply") and not (body.get("responseBodyPlainText") or body.get("responseBodyHtml")):
            raise HTTPError(400, "Vacation responder requires a message body", reason="invalidArgument")
        saved = {k: v for k, v in body.items() if v is not None}
        if not req.lie:
            mail["vacation"] = saved
        return Response(200, saved)

    @route("GET", G + "/autoForwarding")
    async def gmail_forwarding_get(self, req: Request) -> Response:
        _, mail = self._mailbox(req, "gmail_read")
        return Response(200, dict(mail["autoForwarding"]))

    @route("PUT", G + "/autoForwarding")
    async def gmail_forwarding_update(self, req: Request) -> Response:
        _, mail = self._mailbox(req, "gmail_sharing")
        body = req.json()
        if not isinstance(body, dict) or set(body) - {"enabled", "emailAddress", "disposition"}:
            raise HTTPError(400, "Invalid JSON payload received.", reason="invalidArgument")
        if body.get("enabled"):
            address = body.get("emailAddress")
            if mail["forwarding"].get(address) != "accepted":
                raise HTTPError(400, "Forwarding address must be verified", reason="failedPrecondition")
        saved = {k: v for k, v in body.items() if v is not None}
        if not req.lie:
            mail["autoForwarding"] = saved
        return Response(200, saved)

    @route("GET", G + "/filters")
    async def gmail_filters_list(self, req: Request) -> Response:
        _, mail = self._mailbox(req, "gmail_read")
        items = list(mail["filters"].values())
        return Response(200, {"filter": items} if items else {})

    @route("GET", G + "/filters/{id}")
    async def gmail_filters_get(self, req: Request) -> Response:
        _, mail = self._mailbox(req, "gmail_read")
        found = mail["filters"].get(req.params["id"])
        if found is None:
            raise HTTPError(404, "Filter not found", reason="notFound")
        return Response(200, found)

    @route("POST", G + "/filters")
    async def gmail_filters_create(self, req: Request) -> Response:
        _, mail = self._mailbox(req, "gmail_basic")
        body = req.json()
        if not isinstance(body, dict) or not body.get("criteria") or not body.get("action"):
            raise HTTPError(400, "Filter doesn't have any criteria", reason="invalidArgument")
        forward = (body.get("action") or {}).get("forward")
        if forward and mail["forwarding"].get(forward) != "accepted":
            raise HTTPError(400, "Forwarding address not verified", reason="failedPrecondition")
        if len(mail["filters"]) >= 1000:
            raise HTTPError(400, "Too many filters", reason="failedPrecondition")
        fid = "ANe1Bm" + secrets.token_hex(6)
        item = {"id": fid, "criteria": body["criteria"], "action": body["action"]}
        if not req.lie:
            mail["filters"][fid] = item
        return Response(200, item)

    @route("DELETE", G + "/filters/{id}")
    async def gmail_filters_delete(self, req: Request) -> Response:
        _, mail = self._mailbox(req, "gmail_basic")
        if req.params["id"] not in mail["filters"]:
            raise HTTPError(404, "Filter not found", reason="notFound")
        if not req.lie:
            del mail["filters"][req.params["id"]]
        return Response(204)

    @route("GET", G + "/forwardingAddresses")
    async def gmail_addresses_list(self, req: Request) -> Response:
        _, mail = self._mailbox(req, "gmail_read")
        items = [{"forwardingEmail": e, "verificationStatus": s} for e, s in mail["forwarding"].items()]
        return Response(200, {"forwardingAddresses": items} if items else {})

    @route("GET", G + "/forwardingAddresses/{forwardingEmail}")
    async def gmail_addresses_get(self, req: Request) -> Response:
        _, mail = self._mailbox(req, "gmail_read")
        email = req.params["forwardingEmail"]
        if email not in mail["forwarding"]:
            raise HTTPError(404, "Requested entity was not found.", reason="notFound")
        return Response(200, {"forwardingEmail": email, "verificationStatus": mail["forwarding"][email]})

    @route("POST", G + "/forwardingAddresses")
    async def gmail_addresses_create(self, req: Request) -> Response:
        _, mail = self._mailbox(req, "gmail_sharing")
        body = req.json()
        email = str((body or {}).get("forwardingEmail") or "") if isinstance(body, dict) else ""
        if "@" not in email:
            raise HTTPError(400, "Invalid forwarding address", reason="invalidArgument")
        if email in mail["forwarding"]:
            raise HTTPError(409, "Forwarding address already exists", reason="alreadyExists")
        # An address outside the customer's domains must confirm Google's verification mail first.
        status = "accepted" if email.rpartition("@")[2].lower() in self.domains else "pending"
        if not req.lie:
            mail["forwarding"][email] = status
        return Response(200, {"forwardingEmail": email, "verificationStatus": status})

    @route("DELETE", G + "/forwardingAddresses/{forwardingEmail}")
    async def gmail_addresses_delete(self, req: Request) -> Response:
        _, mail = self._mailbox(req, "gmail_sharing")
        email = req.params["forwardingEmail"]
        if email not in mail["forwarding"]:
            raise HTTPError(404, "Requested entity was not found.", reason="notFound")
        if not req.lie:
            del mail["forwarding"][email]
            if mail["autoForwarding"].get("emailAddress") == email:
                mail["autoForwarding"] = {"enabled": False}
        return Response(204)

    # ----- Directory: mobile devices ----------------------------------------------------------------
    def _customer(self, req: Request) -> None:
        if req.params["customerId"] not in ("my_customer", self.customer_id):
            raise HTTPError(400, "Bad Request", reason="badRequest")

    @route("GET", MOBILE)
    async def mobile_list(self, req: Request) -> Response:
        self._scope(req, "mobile_read")
        self._customer(req)
        items = list(self.devices.values())
        query = req.query.get("query", "")
        if query.startswith("email:"):
            email = query[6:].strip("'\"").lower()
            items = [d for d in items if email in (e.lower() for e in d["email"])]
        elif query:
            raise HTTPError(400, "Invalid Input: query", reason="invalid")
        size = int(req.query.get("maxResults", "100"))
        if not 1 <= size <= 100:
            raise HTTPError(400, "Invalid Input: maxResults", reason="invalid")
        start = int(req.query.get("pageToken", "0") or 0)
        body: dict[str, Any] = {"kind": "admin#directory#mobiledevices", "mobiledevices": items[start : start + size]}
        if start + size < len(items):
            body["nextPageToken"] = str(start + size)
        return Response(200, body)

    @route("POST", MOBILE + "/{resourceId}/action")
    async def mobile_action(self, req: Request) -> Response:
        self._scope(req, "mobile_action")
        self._customer(req)
        device = self.devices.get(req.params["resourceId"])
        if device is None:
            raise HTTPError(404, "Resource Not Found: resourceId", reason="notFound")
        body = req.json()
        action = (body or {}).get("action") if isinstance(body, dict) else None
        states = {
            "admin_account_wipe": "ACCOUNT_WIPING",
            "admin_remote_wipe": "WIPING",
            "approve": "APPROVED",
            "block": "BLOCKED",
            "cancel_remote_wipe_then_activate": "APPROVED",
            "cancel_remote_wipe_then_block": "BLOCKED",
        }
        if action not in states:
            raise HTTPError(400, "Invalid Input: action", reason="invalid")
        if not req.lie:
            device["status"] = states[action]
        return Response(204)

    # ----- Enterprise License Manager ------------------------------------------------------------------
    def _sku(self, req: Request) -> tuple[str, str]:
        product, sku = req.params["productId"], req.params["skuId"]
        if sku not in _PRODUCT_SKUS.get(product, ()):
            raise HTTPError(400, "Invalid productId or skuId", reason="invalid")
        return product, sku

    def _license_user(self, key: str) -> dict[str, Any]:
        user = self._find(key)
        if user is None:
            raise HTTPError(404, "Resource Not Found: userId", reason="notFound")
        return user

    def _assignment(self, product: str, sku: str, user: dict[str, Any]) -> dict[str, Any]:
        return {
            "kind": "licensing#licenseAssignment",
            "etags": f'"{secrets.token_hex(8)}"',
            "productId": product,
            "skuId": sku,
            "userId": user["primaryEmail"],
            "selfLink": f"/apps/licensing/v1/product/{product}/sku/{sku}/user/{user['primaryEmail']}",
        }

    @route("GET", LIC + "/user/{userId}")
    async def license_get(self, req: Request) -> Response:
        self._scope(req, "licensing")
        product, sku = self._sku(req)
        user = self._license_user(req.params["userId"])
        if (product, sku, user["id"]) not in self.licenses:
            raise HTTPError(404, "User does not have a license for specified sku and product", reason="notFound")
        return Response(200, self._assignment(product, sku, user))

    @route("POST", LIC + "/user")
    async def license_insert(self, req: Request) -> Response:
        self._scope(req, "licensing")
        product, sku = self._sku(req)
        body = req.json()
        if not isinstance(body, dict) or not body.get("userId") or set(body) - {"userId"}:
            raise HTTPError(400, "Invalid Input: userId", reason="invalid")
        user = self._license_user(str(body["userId"]))
        if any(p == product and u == user["id"] for p, _, u in self.licenses):
            # one SKU per product per user: reassigning within a product is patch/update
            raise HTTPError(412, "User already has a license for this product", reason="conditionNotMet")
        if not req.lie:
            self.licenses.add((product, sku, user["id"]))
        return Response(200, self._assignment(product, sku, user))

    @route("DELETE", LIC + "/user/{userId}")
    async def license_delete(self, req: Request) -> Response:
        self._scope(req, "licensing")
        product, sku = self._sku(req)
        user = self._license_user(req.params["userId"])
        if (product, sku, user["id"]) not in self.licenses:
            raise HTTPError(404, "User does not have a license for specified sku and product", reason="notFound")
        if not req.lie:
            self.licenses.discard((product, sku, user["id"]))
        return Response(204)

    # ----- Vault -------------------------------------------------------------------------------------
    @route("GET", "/v1/matters")
    async def vault_matters(self, req: Request) -> Response:
        self._scope(req, "vault_read")
        state = req.query.get("state")
        items = [
            {k: v for k, v in m.items() if k != "holds"}
            for m in self.matters.values()
            if not state or m["state"] == state
        ]
        return Response(200, {"matters": items} if items else {})

    @route("GET", "/v1/matters/{matterId}/holds")
    async def vault_holds(self, req: Request) -> Response:
        self._scope(req, "vault_read")
        matter = self.matters.get(req.params["matterId"])
        if matter is None:
            raise HTTPError(404, "Requested entity was not found.", reason="notFound")
        return Response(200, {"holds": matter["holds"]} if matter["holds"] else {})
