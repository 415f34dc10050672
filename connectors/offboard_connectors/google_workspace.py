"""Google Workspace through the Admin SDK (Directory + Data Transfer), service account with domain-wide delegation."""

from __future__ import annotations

import json
import threading
from typing import Any

from pydantic import Field

from offboard import (
    Account,
    AccountPage,
    Action,
    ActionKind,
    CheckResult,
    Connector,
    ConnectorSettings,
    Person,
    Receipt,
    Secret,
    Verification,
    hookimpl,
)
from offboard.errors import (
    AuthError,
    ConfigError,
    NotFound,
    PermanentError,
    PermissionDenied,
    TransientError,
)

from ._google_handover import HANDOVER_SCOPES, ORDERING, GoogleHandover
from ._google_people import GoogleCustomSchema
from ._google_transport import GoogleTransport
from ._http import mapped

_S = "https://www.googleapis.com/auth/"
USER = _S + "admin.directory.user"
SECURITY = _S + "admin.directory.user.security"
GROUP_READ = _S + "admin.directory.group.readonly"
GROUP_MEMBER = _S + "admin.directory.group.member"
TRANSFER = _S + "admin.datatransfer"
BASE_SCOPES = (USER, SECURITY, GROUP_READ, GROUP_MEMBER, TRANSFER)  # the main token's
SCOPES = (*BASE_SCOPES, *HANDOVER_SCOPES)  # every scope the connector uses (each handover API has its own token)
_USER_FIELDS = "id,primaryEmail,aliases,suspended,isAdmin,orgUnitPath,externalIds,name"


class GoogleWorkspaceConnector(GoogleTransport, GoogleHandover, Connector):
    """Google Workspace users: suspend, sign out, tokens and app passwords, groups, Drive and Calendar
    transfer, and the handover steps of ``_google_handover`` (Gmail, devices, licences, Vault)."""

    name = "google_workspace"
    # Google counts *requests*, not connector calls: "2,400 queries per minute per user per Google Cloud
    # project" (developers.google.com/admin-sdk/directory/v1/limits), and each request inside a batch counts
    # as one (developers.google.com/admin-sdk/directory/v1/guides/batch: a batch of n is n requests against
    # the quota). So every request takes a token of the "queries" lane (``_run``), a batch one per inner
    # request; the system's own bucket is unlimited unless the configuration sets ``rate``.
    default_rate = None
    default_concurrency = 10
    rate_limits = {"queries": (40.0, 40)}  # 2,400 a minute = 40/s; a burst of one second's worth
    # Requests per action in a bulk run (before-state read, apply, read-back), for the ETA ``offboard plan``
    # prints: measured against the sandbox's company (docs/connectors/google_workspace.md, "Calls per action");
    # the variable parts (tokens, groups, filters, devices, licence SKUs read) are that company's averages.
    calls = {
        ActionKind.DISABLE_ACCOUNT: {"queries": 3},  # users.get, users.update; users.get to read back
        ActionKind.REVOKE_SESSIONS: {"queries": 1},  # users.signOut; nothing to read back
        ActionKind.REVOKE_TOKENS: {"queries": 8.4},  # 3 lists, a batch of deletes; 3 lists to read back
        ActionKind.REMOVE_MEMBERSHIPS: {"queries": 7.7},  # groups.list, members.get and .delete batches; 1 list
        ActionKind.TRANSFER_OWNERSHIP: {"queries": 5},  # users.get, transfers.list, applications.list, insert; get
        ActionKind.HANDOVER_MAILBOX: {"queries": 5},
        ActionKind.SET_AUTO_REPLY: {"queries": 4},
        ActionKind.REMOVE_FORWARDING: {"queries": 9.1},
        ActionKind.REVOKE_APP_GRANTS: {"queries": 6},
        ActionKind.WIPE_DEVICES: {"queries": 2.4},
        ActionKind.REMOVE_LICENSES: {"queries": 32},  # one licenseAssignments.get per SKU the product offers
    }
    reads = {
        ActionKind.DISABLE_ACCOUNT: {"queries": 1},
        ActionKind.REVOKE_TOKENS: {"queries": 3},
        ActionKind.REMOVE_MEMBERSHIPS: {"queries": 1},
        ActionKind.REMOVE_FORWARDING: {"queries": 3},
        ActionKind.REVOKE_APP_GRANTS: {"queries": 3},
        ActionKind.WIPE_DEVICES: {"queries": 1},
        ActionKind.REMOVE_LICENSES: {"queries": 10},
    }
    # ``residual()`` at a case's close, per account: tokens, asps, verificationCodes; Gmail's auto-forwarding
    # read, which it refuses for the suspended account (so filters, forwarding addresses and delegates are not read).
    residual_calls = {"queries": 4}
    permissions = SCOPES
    ordering = ORDERING

    class Settings(ConnectorSettings):
        service_account: Secret = Field(description="the service account key JSON")
        subject: str = Field(description="a Workspace admin the service account impersonates")
        customer: str = "my_customer"
        domain: str | None = None
        api_url: str = "https://admin.googleapis.com/"
        offboarded_org_unit: str | None = Field(None, description="move suspended users here, e.g. /Offboarded")
        transfer_applications: list[str] = Field(default_factory=lambda: ["Drive and Docs", "Calendar"])
        archive_licenses: bool = Field(
            True, description="remove_licenses assigns the matching Archived User SKU (else only removes)"
        )
        accounts: dict[str, str] = Field(default_factory=dict, description="person -> primary email or user id")
        timeout: float = 30.0
        ca_file: str | None = None
        page_size: int = Field(200, ge=1, le=500)

    settings: Settings

    def __init__(self, instance: str, settings: Any = None):
        from google.oauth2 import service_account

        super().__init__(instance, settings)
        s = self.settings
        try:
            info = json.loads(s.service_account.reveal())
            self._credentials = service_account.Credentials.from_service_account_info(
                info, scopes=list(BASE_SCOPES), subject=s.subject
            )
        except (ValueError, KeyError, TypeError) as exc:
            # Never echo the key: name only what is wrong with its shape.
            raise ConfigError(
                f"service_account is not a usable key JSON ({type(exc).__name__})", where=instance
            ) from None
        self._info = info
        self._api = s.api_url if s.api_url.endswith("/") else s.api_url + "/"
        self._local = threading.local()  # httplib2 is not thread-safe: one transport per thread
        self._admin: dict[str, Any] | None = None

    def _get_user(self, key: str) -> dict[str, Any] | None:
        try:
            return self._run(self._directory("users").get(userKey=key, fields=_USER_FIELDS), f"read user {key}", USER)
        except NotFound:
            return None
        except PermissionDenied:
            # Google answers users.get for an address at a domain the customer does not own with
            # 403 "Not Authorized to access this resource/api", the same answer as a missing right.
            # If the admin can read its own user, the rights are there: the address is not ours.
            if "@" in key and key.lower() != self.settings.subject.lower() and self._own_admin():
                return None
            raise

    def _own_admin(self) -> dict[str, Any]:
        """The impersonated admin's own user (id, customerId), read once."""
        if self._admin is None:
            self._admin = (
                self._run(
                    self._directory("users").get(userKey=self.settings.subject, fields="id,primaryEmail,customerId"),
                    f"read the admin {self.settings.subject}",
                    USER,
                )
                or {}
            )
        return self._admin

    def _customer_id(self) -> str:
        """The immutable customer id the Data Transfer API takes (it documents no ``my_customer`` alias)."""
        if self.settings.customer != "my_customer":
            return self.settings.customer
        found = self._own_admin().get("customerId")
        if not found:
            raise PermanentError(
                f"Google gave no customerId for {self.settings.subject}; set customer: to the account's customer id",
                system=self.instance,
            )
        return str(found)

    def _require(self, action: Action) -> dict[str, Any]:
        user = self._get_user(action.account.id)
        if user is None:
            raise NotFound(f"user {action.account.name} ({action.account.id}) not found", system=self.instance)
        return user

    # -- read side ------------------------------------------------------------

    def check(self) -> CheckResult:
        identity = f"{self._info.get('client_email', '?')} as {self.settings.subject}"
        try:
            self._run(self._directory("users").list(customer=self.settings.customer, maxResults=1), "list users", USER)
        except AuthError as exc:
            missing = self._missing_scopes() or tuple(getattr(exc, "permissions", ()))
            return CheckResult(False, identity=identity, missing=missing, detail=str(exc))
        missing = self._missing_scopes()
        if missing:
            return CheckResult(
                False, identity=identity, missing=missing, detail="domain-wide delegation lacks: " + ", ".join(missing)
            )
        return CheckResult(True, identity=identity, detail="all scopes delegated")

    def _missing_scopes(self) -> tuple[str, ...]:
        """Ask for a token per scope: the ones refused are not delegated to the service account."""
        import google.auth.exceptions
        import google_auth_httplib2
        from google.oauth2 import service_account

        missing = []
        for scope in SCOPES:
            creds = service_account.Credentials.from_service_account_info(
                self._info, scopes=[scope], subject=self.settings.subject
            )
            try:
                creds.refresh(google_auth_httplib2.Request(self._http(creds).http))
            except google.auth.exceptions.RefreshError:
                missing.append(scope)
            except google.auth.exceptions.TransportError as exc:
                raise TransientError(
                    f"token endpoint unreachable: {type(exc).__name__}", system=self.instance
                ) from None
        return tuple(missing)

    def discover(self, person: Person) -> list[Account]:
        found: dict[str, Account] = {}
        explicit = mapped(person, self.settings.accounts)
        keys = [explicit] if explicit else list(person.emails)
        for key in keys:
            user = self._get_user(key)
            if user is not None:
                found.setdefault(user["id"], self._account(user, person))
        if not explicit and person.employee_id:
            query = f"externalId:'{person.employee_id}'"
            users = self._run(
                self._directory("users").list(
                    customer=self.settings.customer, query=query, fields=f"users({_USER_FIELDS})"
                ),
                "search users",
                USER,
            )
            for user in (users or {}).get("users") or []:
                found.setdefault(user["id"], self._account(user, person))
        return list(found.values())

    def list_accounts(self, cursor: str | None = None) -> AccountPage:
        params: dict[str, Any] = {
            "customer": self.settings.customer,
            "maxResults": self.settings.page_size,
            "fields": f"nextPageToken,users({_USER_FIELDS})",
        }
        if cursor:
            params["pageToken"] = cursor
        body = self._run(self._directory("users").list(**params), "list users", USER) or {}
        return AccountPage(tuple(self._account(u) for u in body.get("users") or []), body.get("nextPageToken"))

    def verify(self, action: Action, receipt: Receipt | None = None) -> Verification:
        kind, who, key = action.kind, action.account.name, action.account.id
        handover = self.verify_handover(action, receipt)
        if handover is not None:
            return handover
        if kind is ActionKind.DELETE_ACCOUNT:
            gone = self._get_user(key) is None
            return Verification(action, gone, {"exists": not gone}, f"{who}: {'deleted' if gone else 'still exists'}")
        if kind is ActionKind.DISABLE_ACCOUNT:
            user = self._require(action)
            suspended = bool(user.get("suspended"))
            ou = user.get("orgUnitPath")
            want_ou = self.settings.offboarded_org_unit
            ok = suspended and (not want_ou or ou == want_ou)
            detail = f"{who}: suspended={str(suspended).lower()}" + (f", org unit {ou}" if want_ou else "")
            return Verification(action, ok, {"suspended": suspended, "orgUnitPath": ou}, detail)
        if kind is ActionKind.REVOKE_SESSIONS:
            # Google exposes no session state to read back; the 204 from signOut is all there is.
            accepted = bool(receipt and receipt.changed is not None)
            return Verification(
                action,
                accepted,
                {"readable": False},
                f"{who}: sign-out {'accepted' if accepted else 'not requested'}; Google has no session read-back",
            )
        if kind is ActionKind.REVOKE_TOKENS:
            left = self._credentials_of(key)
            ok = not any(left.values())
            names = [f"{n} {k}" for k, n in ((k, len(v) if isinstance(v, list) else v) for k, v in left.items()) if n]
            return Verification(
                action,
                ok,
                {k: (len(v) if isinstance(v, list) else v) for k, v in left.items()},
                f"{who}: " + ("no tokens, app passwords or backup codes left" if ok else "left: " + ", ".join(names)),
            )
        if kind is ActionKind.REMOVE_MEMBERSHIPS:
            groups = self._groups(key)
            names = sorted(g.get("email") or g["id"] for g in groups)
            return Verification(
                action,
                not groups,
                {"groups": names},
                f"{who}: still in {', '.join(names)}" if names else f"{who}: in no group",
            )
        if kind is ActionKind.TRANSFER_OWNERSHIP:
            transfer = self._transfer(action, receipt)
            status = (transfer or {}).get("overallTransferStatusCode")
            pending = status in ("new", "inProgress")
            return Verification(
                action,
                status == "completed",
                {"transfer": (transfer or {}).get("id"), "status": status},
                f"{who}: data transfer {status or 'not found'}",
                pending=pending,
            )
        raise PermanentError(f"google_workspace cannot verify {kind.value}", system=self.instance)

    # -- write side -----------------------------------------------------------

    def disable_account(self, action: Action) -> Receipt:
        user = self._require(action)
        before = {"suspended": bool(user.get("suspended")), "orgUnitPath": user.get("orgUnitPath")}
        self.keep_before(action, before)
        body: dict[str, Any] = {}
        if not user.get("suspended"):
            body["suspended"] = True
        ou = self.settings.offboarded_org_unit
        if ou and user.get("orgUnitPath") != ou:
            body["orgUnitPath"] = ou
        if not body:
            return Receipt(action, changed=False, before=before, detail="already suspended")
        self._run(
            self._directory("users").update(userKey=user["id"], body=body), f"suspend {action.account.name}", USER
        )
        return Receipt(action, changed=True, before=before, reference=user["id"])

    def undo_disable_account(self, receipt: Receipt) -> Receipt:
        user = self._require(receipt.action)
        body: dict[str, Any] = {}
        if bool(user.get("suspended")) != bool(receipt.before.get("suspended")):
            body["suspended"] = bool(receipt.before.get("suspended"))
        if receipt.before.get("orgUnitPath") and user.get("orgUnitPath") != receipt.before["orgUnitPath"]:
            body["orgUnitPath"] = receipt.before["orgUnitPath"]
        if body:
            self._run(
                self._directory("users").update(userKey=user["id"], body=body),
                f"restore {receipt.action.account.name}",
                USER,
            )
        return Receipt(
            receipt.action,
            changed=bool(body),
            before={"suspended": bool(user.get("suspended")), "orgUnitPath": user.get("orgUnitPath")},
        )

    def revoke_sessions(self, action: Action) -> Receipt:
        self._run(
            self._directory("users").signOut(userKey=action.account.id), f"sign out {action.account.name}", SECURITY
        )
        return Receipt(action, changed=True, detail="signed out of every web and device session")

    def revoke_tokens(self, action: Action) -> Receipt:
        key, who = action.account.id, action.account.name
        found = self._credentials_of(key)
        calls = [
            (self._directory("tokens").delete(userKey=key, clientId=t["clientId"]), f"delete token of {who}")
            for t in found["tokens"]
        ]
        calls += [
            (self._directory("asps").delete(userKey=key, codeId=a["codeId"]), f"delete app password of {who}")
            for a in found["asps"]
        ]
        if calls:
            self._batch(calls, SECURITY)
        if found["verification_codes"]:
            self._run(
                self._directory("verificationCodes").invalidate(userKey=key),
                f"invalidate backup codes of {who}",
                SECURITY,
            )
        before = {
            "tokens": [{"clientId": t["clientId"], "displayText": t.get("displayText")} for t in found["tokens"]],
            "asps": [{"codeId": a["codeId"], "name": a.get("name")} for a in found["asps"]],
            "verification_codes": found["verification_codes"],
        }
        changed = bool(calls or found["verification_codes"])
        return Receipt(
            action,
            changed=changed,
            before=before,
            detail=f"{len(found['tokens'])} token(s), {len(found['asps'])} app password(s), "
            f"{found['verification_codes']} backup code(s) revoked",
        )

    def remove_memberships(self, action: Action) -> Receipt:
        key, who = action.account.id, action.account.name
        groups = self._groups(key)
        if not groups:
            return Receipt(action, changed=False, before={"groups": []})
        members = self._batch(
            [
                (self._directory("members").get(groupKey=g["id"], memberKey=key), f"read membership of {who}")
                for g in groups
            ],
            GROUP_MEMBER,
        )
        before = [
            {"id": g["id"], "email": g.get("email"), "role": (m or {}).get("role", "MEMBER")}
            for g, m in zip(groups, members)
        ]
        self._batch(
            [
                (
                    self._directory("members").delete(groupKey=g["id"], memberKey=key),
                    f"remove {who} from {g.get('email')}",
                )
                for g in groups
            ],
            GROUP_MEMBER,
        )
        return Receipt(action, changed=True, before={"groups": before}, detail=f"removed from {len(groups)} group(s)")

    def undo_remove_memberships(self, receipt: Receipt) -> Receipt:
        key = receipt.action.account.id
        current = {g["id"] for g in self._groups(key)}
        missing = [g for g in receipt.before.get("groups", []) if g["id"] not in current]
        if missing:
            self._batch(
                [
                    (
                        self._directory("members").insert(
                            groupKey=g["id"], body={"id": key, "role": g.get("role", "MEMBER")}
                        ),
                        f"re-add {receipt.action.account.name} to {g.get('email')}",
                    )
                    for g in missing
                ],
                GROUP_MEMBER,
            )
        return Receipt(receipt.action, changed=bool(missing), before={"groups": sorted(current)})

    def transfer_ownership(self, action: Action) -> Receipt:
        target = action.params.get("to") or action.params.get("handover_to") or action.account.attributes.get("manager")
        if not target:
            raise PermanentError(
                f"{action.account.name}: no manager or 'to' given to transfer data to", system=self.instance
            )
        new_owner = self._get_user(target)
        if new_owner is None:
            raise NotFound(f"transfer target {target} not found", system=self.instance)
        existing = self._transfer(action, None, new_owner["id"])
        if existing is not None:
            status = existing.get("overallTransferStatusCode")
            return Receipt(
                action,
                changed=False,
                before={"to": target},
                reference=existing.get("id"),
                pending=status != "completed",
                detail=f"transfer {existing.get('id')} already {status}",
            )
        apps = (
            self._run(
                self._directory("applications", "transfer").list(customerId=self._customer_id()),
                "list transfer applications",
                TRANSFER,
            )
            or {}
        )
        wanted = {n.lower() for n in self.settings.transfer_applications}
        chosen = [a for a in apps.get("applications") or [] if (a.get("name") or "").lower() in wanted]
        if not chosen:
            raise PermanentError(
                f"no transfer application named {', '.join(self.settings.transfer_applications)}", system=self.instance
            )
        body = {
            "oldOwnerUserId": action.account.id,
            "newOwnerUserId": new_owner["id"],
            "applicationDataTransfers": [
                {"applicationId": a["id"], "applicationTransferParams": a.get("transferParams") or []} for a in chosen
            ],
        }
        created = (
            self._run(
                self._directory("transfers", "transfer").insert(body=body),
                f"transfer data of {action.account.name} to {target}",
                TRANSFER,
            )
            or {}
        )
        return Receipt(
            action,
            changed=True,
            before={"to": target},
            reference=created.get("id"),
            pending=True,
            detail=f"transfer {created.get('id')} to {target} requested; pending until Google completes it",
        )

    def delete_account(self, action: Action) -> Receipt:
        user = self._get_user(action.account.id)
        if user is None:
            return Receipt(action, changed=False, detail="already deleted")
        holds = self.vault_holds(action.account)
        if holds:
            raise PermanentError(
                f"{action.account.name} is under Vault hold ({'; '.join(holds)}): not deleted", system=self.instance
            )
        self._run(self._directory("users").delete(userKey=user["id"]), f"delete {action.account.name}", USER)
        return Receipt(
            action,
            changed=True,
            before={"suspended": bool(user.get("suspended")), "orgUnitPath": user.get("orgUnitPath")},
            reference=user["id"],
            detail="deleted: restorable with users.undelete for 20 days",
        )

    # -- helpers --------------------------------------------------------------

    def _account(self, user: dict[str, Any], person: Person | None = None) -> Account:
        attributes: dict[str, Any] = {"orgUnitPath": user.get("orgUnitPath")}
        if person is not None and person.manager:
            attributes["manager"] = person.manager
        return Account(
            system=self.instance,
            id=user["id"],
            name=user.get("primaryEmail") or user["id"],
            email=user.get("primaryEmail"),
            active=not user.get("suspended"),
            admin=bool(user.get("isAdmin")),
            attributes=attributes,
        )

    def _groups(self, key: str) -> list[dict[str, Any]]:
        return self._pages(
            self._directory("groups").list,
            "groups",
            "list groups",
            GROUP_READ,
            userKey=key,
            fields="nextPageToken,groups(id,email,name)",
        )

    def _credentials_of(self, key: str) -> dict[str, Any]:
        tokens = self._run(self._directory("tokens").list(userKey=key), "list tokens", SECURITY) or {}
        asps = self._run(self._directory("asps").list(userKey=key), "list app passwords", SECURITY) or {}
        codes = self._run(self._directory("verificationCodes").list(userKey=key), "list backup codes", SECURITY) or {}
        return {
            "tokens": tokens.get("items") or [],
            "asps": asps.get("items") or [],
            "verification_codes": len(codes.get("items") or []),
        }

    def _transfer(self, action: Action, receipt: Receipt | None, new_owner: str | None = None) -> dict[str, Any] | None:
        transfers = self._directory("transfers", "transfer")
        if receipt is not None and receipt.reference:
            try:
                return self._run(transfers.get(dataTransferId=receipt.reference), "read transfer", TRANSFER)
            except NotFound:
                return None
        params: dict[str, Any] = {"customerId": self._customer_id(), "oldOwnerUserId": action.account.id}
        if new_owner:
            params["newOwnerUserId"] = new_owner
        found = self._pages(transfers.list, "dataTransfers", "list transfers", TRANSFER, **params)
        live = [t for t in found if t.get("overallTransferStatusCode") != "failed"]
        return live[-1] if live else None


@hookimpl
def register_connectors(register):
    register(GoogleWorkspaceConnector)


@hookimpl
def register_people_sources(register):
    register(GoogleCustomSchema)
