"""Google Workspace handover and leftovers: Gmail delegation, auto-reply and forwarding (Gmail API, impersonating
the leaver), managed mobile devices (Directory API), licences (Enterprise License Manager API) and Vault holds.

Mixed into ``GoogleWorkspaceConnector``, which provides ``_run``, ``_svc``, ``_require``, ``_get_user``,
``_credentials_of``, ``_batch`` and the settings. Gmail's settings calls act as the mailbox's own user
(domain-wide delegation with the user as subject); Google refuses them once the user is suspended, so the
connector's ``ordering`` puts them before ``disable_account``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from offboard import Account, Action, ActionKind, Leftover, Person, Receipt, Verification
from offboard.errors import AuthError, NotFound, PermanentError

from ._google_transport import client

_S = "https://www.googleapis.com/auth/"
GMAIL_BASIC = _S + "gmail.settings.basic"  # vacation, filters, reading delegates and forwarding
GMAIL_SHARING = _S + "gmail.settings.sharing"  # delegates, auto-forwarding, forwarding addresses
MOBILE_ACTION = _S + "admin.directory.device.mobile.action"  # list devices and wipe the account on them
LICENSING = _S + "apps.licensing"
VAULT_READ = _S + "ediscovery.readonly"
HANDOVER_SCOPES = (GMAIL_BASIC, GMAIL_SHARING, MOBILE_ACTION, LICENSING, VAULT_READ)
GMAIL_SCOPES = (GMAIL_BASIC, GMAIL_SHARING)

#: Google Workspace SKUs (product ``Google-Apps``) and their Archived User SKU (product ``101034``),
#: as listed on Google's "Products and SKUs" page of the Enterprise License Manager API.
ARCHIVED_SKU = {
    "1010020020": "1010340001",  # Enterprise Plus
    "1010020025": "1010340003",  # Business Plus
    "1010020026": "1010340004",  # Enterprise Standard
    "1010020027": "1010340005",  # Business Starter
    "1010020028": "1010340006",  # Business Standard
}
WORKSPACE_PRODUCT = "Google-Apps"
ARCHIVED_PRODUCT = "101034"
#: Gmail clients a thread keeps (the users whose steps it ran last; one user's steps run on one thread).
_GMAIL_CLIENTS = 8
_WIPED = {"ACCOUNT_WIPING", "ACCOUNT_WIPED", "WIPING", "WIPED"}


def _ms(value: Any) -> datetime | None:
    """A Google epoch-milliseconds string (tokens, app passwords) as a datetime."""
    try:
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    except (TypeError, ValueError):
        return None


def _rfc3339(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


class GoogleHandover:
    """Handover steps of the Google Workspace connector (see the module docstring)."""

    settings: Any
    instance: str
    _credentials: Any
    _local: threading.local

    if TYPE_CHECKING:  # provided by GoogleWorkspaceConnector

        def _run(self, request: Any, what: str, scope: str, idempotent: bool | None = None) -> Any: ...
        def _svc(self, api: str = "directory") -> Any: ...
        def _directory(self, resource: str, api: str = "directory") -> Any: ...
        def _collection(self, service: Any, *path: str) -> Any: ...
        def _get_user(self, key: str) -> dict[str, Any] | None: ...
        def _credentials_of(self, key: str) -> dict[str, Any]: ...
        def _batch(self, calls: list[tuple[Any, str]], scope: str, ok_missing: bool = True) -> list[Any]: ...
        def _http(self, credentials: Any = None) -> Any: ...

    # -- transport ---------------------------------------------------------------------------------

    def _gmail(self, email: str, *path: str) -> Any:
        """The Gmail settings of ``email`` (or their collection ``path``, e.g. ``delegates``), acting as that
        user: one client per thread and user, built once. A thread keeps the clients of its last few users
        only: a client holds its collections and an HTTP client, and a bulk run's thread meets thousands of
        users, each once."""
        cache = getattr(self._local, "gmail", None)
        if cache is None:
            cache = self._local.gmail = OrderedDict()
        held: dict[tuple[str, ...], Any] | None = cache.get(email)
        if held is None:
            creds = self._credentials.with_subject(email).with_scopes(list(GMAIL_SCOPES))
            gmail = client("gmail", "v1", self._http(creds), self.settings.api_url)
            held = {(): gmail.users().settings()}
            cache[email] = held
            while len(cache) > _GMAIL_CLIENTS:
                # httplib2 keeps its connections open until closed (httplib2/httplib2#148): a client let go
                # without closing held its sockets, CLOSE_WAIT once the server ended them (1,051 in a
                # 1,000-person run), until the garbage collector came by
                cache.popitem(last=False)[1][()].close()
        else:
            cache.move_to_end(email)
        found = held.get(path)
        if found is None:
            found = held[()]
            for name in path:
                found = getattr(found, name)()
            held[path] = found
        return found

    def _google(self, name: str, version: str, scope: str) -> Any:
        """An API client whose token carries only ``scope`` (the admin as subject): a tenant that has not
        delegated it loses only the steps that need it, not the connector's other calls."""
        self._svc()  # the thread's transport and clients, built on first use
        services = self._local.services
        key = f"{name}:{version}:{scope}"
        if key not in services:
            services[key] = client(
                name, version, self._http(self._credentials.with_scopes([scope])), self.settings.api_url
            )
        return services[key]

    def _successor(self, action: Action) -> str:
        to = action.params.get("handover_to") or action.params.get("to")
        if not to:
            raise PermanentError(
                f"{action.account.name}: nobody to hand over to (the person has no manager and the policy's "
                "handover.to names nobody)",
                system=self.instance,
            )
        user = self._get_user(str(to))
        if user is None:
            raise NotFound(f"handover target {to} is not a user of this Workspace", system=self.instance)
        if user.get("suspended"):
            raise PermanentError(
                f"handover target {to} is suspended; Gmail refuses it as a delegate", system=self.instance
            )
        return str(user.get("primaryEmail") or to)

    # -- handover_mailbox: the successor becomes a Gmail delegate ---------------------------------

    def _delegates(self, email: str) -> list[dict[str, Any]]:
        body = self._run(
            self._gmail(email, "delegates").list(userId=email),
            f"list delegates of {email}",
            GMAIL_BASIC,
        )
        return list((body or {}).get("delegates") or [])

    def before_handover_mailbox(self, action: Action) -> dict[str, Any]:
        return {"delegates": [d["delegateEmail"] for d in self._delegates(action.account.name)]}

    def handover_mailbox(self, action: Action) -> Receipt:
        email, to = action.account.name, self._successor(action)
        before = self.before_handover_mailbox(action)
        if to.lower() in {d.lower() for d in before["delegates"]}:
            return Receipt(action, changed=False, before=before, reference=to, detail=f"{to} is already a delegate")
        self._run(
            self._gmail(email, "delegates").create(userId=email, body={"delegateEmail": to}),
            f"make {to} a delegate of {email}",
            GMAIL_SHARING,
        )
        return Receipt(action, changed=True, before=before, reference=to, detail=f"{to} can read and send as {email}")

    def _verify_handover_mailbox(self, action: Action, receipt: Receipt | None) -> Verification:
        email = action.account.name
        to = (receipt.reference if receipt else None) or action.params.get("handover_to")
        found = {d["delegateEmail"].lower(): d.get("verificationStatus") for d in self._delegates(email)}
        status = found.get(str(to).lower()) if to else None
        return Verification(
            action,
            status == "accepted",
            {"delegates": sorted(found), "status": status},
            f"{email}: delegate {to} {status or 'missing'}",
        )

    def undo_handover_mailbox(self, receipt: Receipt) -> Receipt:
        email, to = receipt.action.account.name, receipt.reference
        kept = {d.lower() for d in receipt.before.get("delegates") or ()}
        current = {d["delegateEmail"].lower() for d in self._delegates(email)}
        changed = bool(to and to.lower() in current and to.lower() not in kept)
        if changed:
            self._run(
                self._gmail(email, "delegates").delete(userId=email, delegateEmail=to),
                f"remove delegate {to} of {email}",
                GMAIL_SHARING,
            )
        return Receipt(receipt.action, changed=changed, before={"delegates": sorted(current)})

    # -- set_auto_reply -------------------------------------------------------------------------------

    def before_set_auto_reply(self, action: Action) -> dict[str, Any]:
        email = action.account.name
        body = self._run(self._gmail(email).getVacation(userId=email), f"read auto-reply of {email}", GMAIL_BASIC)
        return {"vacation": dict(body or {})}

    def _reply(self, action: Action) -> dict[str, Any]:
        text = action.params.get("auto_reply")
        if not text:
            raise PermanentError(f"{action.account.name}: no auto-reply text in the plan", system=self.instance)
        return {
            "enableAutoReply": True,
            "responseSubject": str(action.params.get("auto_reply_subject") or ""),
            "responseBodyPlainText": str(text),
            "restrictToContacts": False,
            "restrictToDomain": False,
        }

    def set_auto_reply(self, action: Action) -> Receipt:
        email, want = action.account.name, self._reply(action)
        before = self.before_set_auto_reply(action)
        current = before["vacation"]
        if all(current.get(k) == v for k, v in want.items()) and not current.get("endTime"):
            return Receipt(action, changed=False, before=before, detail="auto-reply already set")
        self._run(self._gmail(email).updateVacation(userId=email, body=want), f"set auto-reply of {email}", GMAIL_BASIC)
        return Receipt(action, changed=True, before=before, detail="auto-reply on, naming the successor")

    def _verify_set_auto_reply(self, action: Action) -> Verification:
        email, want = action.account.name, self._reply(action)
        got = self.before_set_auto_reply(action)["vacation"]
        ok = bool(got.get("enableAutoReply")) and got.get("responseBodyPlainText") == want["responseBodyPlainText"]
        return Verification(
            action,
            ok,
            {"enableAutoReply": bool(got.get("enableAutoReply"))},
            f"{email}: auto-reply {'on' if ok else 'not set as planned'}",
        )

    def undo_set_auto_reply(self, receipt: Receipt) -> Receipt:
        email = receipt.action.account.name
        old = dict(receipt.before.get("vacation") or {"enableAutoReply": False})
        self._run(
            self._gmail(email).updateVacation(userId=email, body=old), f"restore auto-reply of {email}", GMAIL_BASIC
        )
        return Receipt(receipt.action, changed=True, before={})

    # -- remove_forwarding: auto-forwarding off, forwarding filters and addresses removed -------------

    def _forwarding(self, email: str) -> dict[str, Any]:
        gmail = self._gmail(email)
        auto = self._run(gmail.getAutoForwarding(userId=email), f"read auto-forwarding of {email}", GMAIL_BASIC) or {}
        filters = (
            self._run(self._gmail(email, "filters").list(userId=email), f"list filters of {email}", GMAIL_BASIC) or {}
        )
        addresses = (
            self._run(
                self._gmail(email, "forwardingAddresses").list(userId=email),
                f"list forwarding of {email}",
                GMAIL_BASIC,
            )
            or {}
        )
        return {
            "autoForwarding": dict(auto),
            "filters": [f for f in filters.get("filter") or [] if (f.get("action") or {}).get("forward")],
            "forwardingAddresses": list(addresses.get("forwardingAddresses") or []),
        }

    def before_remove_forwarding(self, action: Action) -> dict[str, Any]:
        return self._forwarding(action.account.name)

    def remove_forwarding(self, action: Action) -> Receipt:
        """No undo: Google sends a forwarding address outside the domain a verification mail its owner must
        confirm, and a forwarding filter needs a verified address; the receipt keeps what was removed."""
        email = action.account.name
        gmail = self._gmail(email)
        before = self._forwarding(email)
        changed = False
        if before["autoForwarding"].get("enabled"):
            self._run(
                gmail.updateAutoForwarding(userId=email, body={"enabled": False}),
                f"turn off auto-forwarding of {email}",
                GMAIL_SHARING,
            )
            changed = True
        for item in before["filters"]:
            try:
                self._run(
                    self._gmail(email, "filters").delete(userId=email, id=item["id"]),
                    f"delete filter of {email}",
                    GMAIL_BASIC,
                )
            except NotFound:
                pass
            changed = True
        for address in before["forwardingAddresses"]:
            try:
                self._run(
                    self._gmail(email, "forwardingAddresses").delete(
                        userId=email, forwardingEmail=address["forwardingEmail"]
                    ),
                    f"delete forwarding address of {email}",
                    GMAIL_SHARING,
                )
            except NotFound:
                pass
            changed = True
        external = [a["forwardingEmail"] for a in before["forwardingAddresses"]]
        detail = (
            f"auto-forwarding {'off' if before['autoForwarding'].get('enabled') else 'was off'}; "
            f"{len(before['filters'])} forwarding filter(s), {len(external)} forwarding address(es) removed"
        )
        return Receipt(action, changed=changed, before=before, detail=detail)

    def _verify_remove_forwarding(self, action: Action) -> Verification:
        left = self._forwarding(action.account.name)
        on = bool(left["autoForwarding"].get("enabled"))
        observed = {
            "autoForwarding": on,
            "filters": len(left["filters"]),
            "forwardingAddresses": [a.get("forwardingEmail") for a in left["forwardingAddresses"]],
        }
        ok = not on and not left["filters"] and not left["forwardingAddresses"]
        return Verification(
            action, ok, observed, f"{action.account.name}: " + ("no forwarding left" if ok else f"left: {observed}")
        )

    # -- revoke_app_grants: third-party OAuth grants (Directory tokens) --------------------------------

    def revoke_app_grants(self, action: Action) -> Receipt:
        key, who = action.account.id, action.account.name
        tokens = self._credentials_of(key)["tokens"]
        if tokens:
            self._batch(
                [
                    (self._directory("tokens").delete(userKey=key, clientId=t["clientId"]), f"revoke grant of {who}")
                    for t in tokens
                ],
                _S + "admin.directory.user.security",
            )
        before = {"grants": [{"clientId": t["clientId"], "displayText": t.get("displayText")} for t in tokens]}
        return Receipt(action, changed=bool(tokens), before=before, detail=f"{len(tokens)} app grant(s) revoked")

    def _verify_revoke_app_grants(self, action: Action) -> Verification:
        tokens = self._credentials_of(action.account.id)["tokens"]
        names = sorted(t.get("displayText") or t["clientId"] for t in tokens)
        return Verification(
            action,
            not tokens,
            {"grants": names},
            f"{action.account.name}: " + (f"grants left: {', '.join(names)}" if names else "no app grants left"),
        )

    # -- wipe_devices: the account (not the whole device) wiped from managed mobile devices ---------

    def _devices(self, email: str) -> list[dict[str, Any]]:
        svc = self._collection(self._google("admin", "directory_v1", MOBILE_ACTION), "mobiledevices")
        items: list[dict[str, Any]] = []
        token = None
        while True:
            params: dict[str, Any] = {"customerId": self.settings.customer, "query": f"email:{email}"}
            if token:
                params["pageToken"] = token
            body = self._run(svc.list(**params), f"list mobile devices of {email}", MOBILE_ACTION) or {}
            items += [
                d for d in body.get("mobiledevices") or [] if email.lower() in [e.lower() for e in d.get("email") or []]
            ]
            token = body.get("nextPageToken")
            if not token:
                return items

    def wipe_devices(self, action: Action) -> Receipt:
        email = action.account.name
        devices = self._devices(email)
        todo = [d for d in devices if d.get("status") not in _WIPED]
        for device in todo:
            self._run(
                self._collection(self._google("admin", "directory_v1", MOBILE_ACTION), "mobiledevices").action(
                    customerId=self.settings.customer,
                    resourceId=device["resourceId"],
                    body={"action": "admin_account_wipe"},
                ),
                f"wipe {email} from device {device.get('model') or device['resourceId']}",
                MOBILE_ACTION,
            )
        before = {
            "devices": [
                {"resourceId": d["resourceId"], "model": d.get("model"), "status": d.get("status")} for d in devices
            ]
        }
        return Receipt(action, changed=bool(todo), before=before, detail=f"account wiped from {len(todo)} device(s)")

    def _verify_wipe_devices(self, action: Action) -> Verification:
        devices = self._devices(action.account.name)
        left = [d.get("model") or d["resourceId"] for d in devices if d.get("status") not in _WIPED]
        return Verification(
            action,
            not left,
            {"devices": {d["resourceId"]: d.get("status") for d in devices}},
            f"{action.account.name}: "
            + (f"not wiped: {', '.join(left)}" if left else f"{len(devices)} device(s) wiped"),
        )

    # -- remove_licenses: Workspace licence to Archived User, or removed ----------------------------

    def _licensing(self) -> Any:
        return self._collection(self._google("licensing", "v1", LICENSING), "licenseAssignments")

    def _assigned(self, email: str) -> list[dict[str, str]]:
        """The Workspace and Archived User licences ``email`` holds: one batch of licenseAssignments.get
        (Google answers 404 for a SKU the user does not hold)."""
        wanted = [(WORKSPACE_PRODUCT, sku) for sku in ARCHIVED_SKU]
        wanted += [(ARCHIVED_PRODUCT, sku) for sku in ARCHIVED_SKU.values()]
        found = self._batch(
            [
                (self._licensing().get(productId=p, skuId=sku, userId=email), f"read licence {sku} of {email}")
                for p, sku in wanted
            ],
            LICENSING,
        )
        return [{"productId": p, "skuId": sku} for (p, sku), body in zip(wanted, found) if body]

    def before_remove_licenses(self, action: Action) -> dict[str, Any]:
        return {"licenses": self._assigned(action.account.name)}

    def remove_licenses(self, action: Action) -> Receipt:
        """Archived User when ``archive_licenses`` is on and an Archived User SKU matches; else removal."""
        email = action.account.name
        before = self.before_remove_licenses(action)
        held = [lic for lic in before["licenses"] if lic["productId"] == WORKSPACE_PRODUCT]
        done = []
        for lic in held:
            archived = ARCHIVED_SKU.get(lic["skuId"]) if self.settings.archive_licenses else None
            if archived and {"productId": ARCHIVED_PRODUCT, "skuId": archived} not in before["licenses"]:
                self._run(
                    self._licensing().insert(productId=ARCHIVED_PRODUCT, skuId=archived, body={"userId": email}),
                    f"assign Archived User licence to {email}",
                    LICENSING,
                )
            self._run(
                self._licensing().delete(productId=WORKSPACE_PRODUCT, skuId=lic["skuId"], userId=email),
                f"remove licence {lic['skuId']} of {email}",
                LICENSING,
            )
            done.append(f"{lic['skuId']} -> {archived or 'removed'}")
        return Receipt(action, changed=bool(done), before=before, detail="; ".join(done) or "no Workspace licence")

    def _verify_remove_licenses(self, action: Action) -> Verification:
        now = self._assigned(action.account.name)
        active = [lic["skuId"] for lic in now if lic["productId"] == WORKSPACE_PRODUCT]
        archived = [lic["skuId"] for lic in now if lic["productId"] == ARCHIVED_PRODUCT]
        return Verification(
            action,
            not active,
            {"licenses": active, "archived": archived},
            f"{action.account.name}: "
            + (
                f"still licensed {', '.join(active)}"
                if active
                else f"archived user {', '.join(archived)}"
                if archived
                else "no licence"
            ),
        )

    def undo_remove_licenses(self, receipt: Receipt) -> Receipt:
        email = receipt.action.account.name
        now = self._assigned(email)
        wanted = list(receipt.before.get("licenses") or ())
        for lic in wanted:
            if lic not in now:
                self._run(
                    self._licensing().insert(productId=lic["productId"], skuId=lic["skuId"], body={"userId": email}),
                    f"restore licence {lic['skuId']} of {email}",
                    LICENSING,
                )
        for lic in now:
            if lic not in wanted and lic["productId"] == ARCHIVED_PRODUCT:
                self._run(
                    self._licensing().delete(productId=lic["productId"], skuId=lic["skuId"], userId=email),
                    f"release Archived User licence of {email}",
                    LICENSING,
                )
        return Receipt(receipt.action, changed=True, before={"licenses": now})

    # -- Vault holds: no deletion while one holds the account --------------------------------------

    def vault_holds(self, account: Account) -> list[str]:
        """Names of open Vault matters' holds covering ``account`` (by account or by its org unit)."""
        vault = self._google("vault", "v1", VAULT_READ).matters()
        user = self._get_user(account.id) or {}
        ou_id = user.get("orgUnitId")
        names: list[str] = []
        token = None
        while True:
            params: dict[str, Any] = {"state": "OPEN", "pageSize": 100}
            if token:
                params["pageToken"] = token
            body = self._run(vault.list(**params), "list Vault matters", VAULT_READ) or {}
            for matter in body.get("matters") or []:
                holds = (
                    self._run(
                        vault.holds().list(matterId=matter["matterId"], view="FULL_HOLD"),
                        "list Vault holds",
                        VAULT_READ,
                    )
                    or {}
                )
                for hold in holds.get("holds") or []:
                    ids = {a.get("accountId") for a in hold.get("accounts") or []}
                    mails = {(a.get("email") or "").lower() for a in hold.get("accounts") or []}
                    if (
                        account.id in ids
                        or account.name.lower() in mails
                        or (ou_id and (hold.get("orgUnit") or {}).get("orgUnitId") == ou_id)
                    ):
                        names.append(f"{matter.get('name')}: {hold.get('name')}")
            token = body.get("nextPageToken")
            if not token:
                return names

    # -- recent set-ups and leftovers ----------------------------------------------------------------

    def recent_setups(
        self, person: Person, accounts: list[Account], since: datetime, backup_codes: bool = False
    ) -> list[Leftover]:
        """Forwarding, filters, delegates, OAuth grants and app passwords of ``person`` (the ones Google
        dates, created after ``since``; Gmail dates none of its settings, so all of those are listed);
        with ``backup_codes``, also the 2-Step Verification backup codes still valid (Google dates none)."""
        out: list[Leftover] = []
        for account in accounts:
            if account.system != self.instance:
                continue
            email = account.name
            creds = self._credentials_of(account.id)
            for t in creds["tokens"]:
                out.append(
                    Leftover(
                        account, ActionKind.REVOKE_APP_GRANTS, f"OAuth grant to {t.get('displayText') or t['clientId']}"
                    )
                )
            for a in creds["asps"]:
                made = _ms(a.get("creationTime"))
                if made is None or made >= since:
                    out.append(
                        Leftover(
                            account,
                            ActionKind.REVOKE_TOKENS,
                            f"app password {a.get('name')!r} created {made:%Y-%m-%d}"
                            if made
                            else f"app password {a.get('name')!r}",
                        )
                    )
            if backup_codes and creds["verification_codes"]:
                n = creds["verification_codes"]
                out.append(Leftover(account, ActionKind.REVOKE_TOKENS, f"{n} valid 2-Step Verification backup code(s)"))
            try:
                fwd = self._forwarding(email)
                delegates = self._delegates(email)
            except PermanentError:  # Gmail refuses a suspended user's settings: nothing can be listed there
                continue
            except AuthError as exc:  # read-only listing: say what could not be read, never stop the connector
                why = f"Gmail settings not read ({type(exc).__name__}: {exc})"
                out.append(Leftover(account, ActionKind.REMOVE_FORWARDING, why))
                continue
            if fwd["autoForwarding"].get("enabled"):
                out.append(
                    Leftover(
                        account,
                        ActionKind.REMOVE_FORWARDING,
                        f"auto-forwarding to {fwd['autoForwarding'].get('emailAddress')}",
                    )
                )
            for f in fwd["filters"]:
                out.append(
                    Leftover(account, ActionKind.REMOVE_FORWARDING, f"filter forwarding to {f['action']['forward']}")
                )
            for a in fwd["forwardingAddresses"]:
                out.append(
                    Leftover(
                        account,
                        ActionKind.REMOVE_FORWARDING,
                        f"forwarding address {a.get('forwardingEmail')} ({a.get('verificationStatus')})",
                    )
                )
            for d in delegates:
                out.append(Leftover(account, ActionKind.HANDOVER_MAILBOX, f"mailbox delegate {d.get('delegateEmail')}"))
        return out

    def residual(self, person: Person, accounts: list[Account]) -> list[Leftover]:
        """What could still sign in or carry mail or data out: OAuth grants, app passwords and backup codes
        (each named: the check prints these instead of ``verify``'s count of the same), forwarding (not
        delegates: the successor's delegation is the handover itself)."""
        since = datetime.now(UTC) - timedelta(days=3650)
        found = self.recent_setups(person, accounts, since, backup_codes=True)
        return [x for x in found if x.kind is not ActionKind.HANDOVER_MAILBOX]

    def verify_handover(self, action: Action, receipt: Receipt | None) -> Verification | None:
        """The read-back of a handover kind, or None for the kinds ``GoogleWorkspaceConnector.verify`` reads."""
        kind = action.kind
        if kind is ActionKind.HANDOVER_MAILBOX:
            return self._verify_handover_mailbox(action, receipt)
        if kind is ActionKind.SET_AUTO_REPLY:
            return self._verify_set_auto_reply(action)
        if kind is ActionKind.REMOVE_FORWARDING:
            return self._verify_remove_forwarding(action)
        if kind is ActionKind.REVOKE_APP_GRANTS:
            return self._verify_revoke_app_grants(action)
        if kind is ActionKind.WIPE_DEVICES:
            return self._verify_wipe_devices(action)
        if kind is ActionKind.REMOVE_LICENSES:
            return self._verify_remove_licenses(action)
        return None


#: Gmail refuses a suspended user's settings calls, and a licence removed before the mailbox and the
#: files are handed over takes them with it: these steps come first (the engine plans and runs them so).
ORDERING = (
    (ActionKind.HANDOVER_MAILBOX, ActionKind.DISABLE_ACCOUNT),
    (ActionKind.SET_AUTO_REPLY, ActionKind.DISABLE_ACCOUNT),
    (ActionKind.REMOVE_FORWARDING, ActionKind.DISABLE_ACCOUNT),
    (ActionKind.HANDOVER_MAILBOX, ActionKind.REMOVE_LICENSES),
    (ActionKind.SET_AUTO_REPLY, ActionKind.REMOVE_LICENSES),
    (ActionKind.TRANSFER_OWNERSHIP, ActionKind.REMOVE_LICENSES),
    (ActionKind.HANDOVER_MAILBOX, ActionKind.DELETE_ACCOUNT),
    (ActionKind.TRANSFER_OWNERSHIP, ActionKind.DELETE_ACCOUNT),
)
