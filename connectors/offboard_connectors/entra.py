"""Microsoft Entra ID through Microsoft Graph, with msal client credentials (secret or certificate)."""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, model_validator

from offboard import (
    Account,
    AccountPage,
    Action,
    ActionKind,
    CheckResult,
    Connector,
    ConnectorSettings,
    PeopleSource,
    Person,
    Receipt,
    Secret,
    Verification,
    hookimpl,
)
from offboard.errors import (
    AuthError,
    ConfigError,
    ConnectorError,
    NotFound,
    OffboardError,
    PermanentError,
    PermissionDenied,
    RateLimited,
    TransientError,
)
from offboard.people import person_type

from ._graph_handover import HANDOVER_COVERED_BY, HANDOVER_KINDS, HANDOVER_PERMISSIONS, GraphHandover
from ._http import (
    IDEMPOTENT_METHODS,
    error_for,
    is_loopback,
    make_client,
    mapped,
    raise_for_status,
    raise_pending,
    retry_after,
    send,
    short,
)

if TYPE_CHECKING:  # SDKs load on first use: `offboard --help` must start fast
    import httpx
    import requests

READ = "User.Read.All"
DISABLE = "User.EnableDisableAccount.All"
SESSIONS = "User.RevokeSessions.All"
MEMBERS = "GroupMember.ReadWrite.All"
LICENSES = "LicenseAssignment.ReadWrite.All"
DELETE = "User.ReadWrite.All"
#: Changing the members of a role-assignable group (isAssignableToRole) needs this as well as MEMBERS.
ROLE_GROUPS = "RoleManagement.ReadWrite.Directory"
PRIVILEGED_ROLE = "Privileged Authentication Administrator (directory role)"
#: Higher-privileged application permissions that also grant each least-privileged one.
COVERED_BY = {
    READ: {"User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"},
    DISABLE: {"User.ReadWrite.All", "Directory.ReadWrite.All"},
    SESSIONS: {"User.ReadWrite.All", "Directory.ReadWrite.All"},
    MEMBERS: {"Group.ReadWrite.All", "Directory.ReadWrite.All"},
    LICENSES: {"User.ReadWrite.All", "Directory.ReadWrite.All"},
    DELETE: {"Directory.ReadWrite.All"},
    ROLE_GROUPS: set(),
    **HANDOVER_COVERED_BY,
}
GRAPH_SCOPE = ["https://graph.microsoft.com/.default"]
USER_FIELDS = "id,userPrincipalName,mail,displayName,accountEnabled,onPremisesSyncEnabled,employeeId"
BATCH_SIZE = 20  # Graph's $batch maximum
#: A revocation younger than this already covers the sessions (Entra takes minutes to apply one).
RECENT_REVOCATION = timedelta(minutes=5)


class EntraConnector(GraphHandover, Connector):
    """Microsoft Entra ID (Azure AD) users, groups and licenses via Graph v1.0."""

    name = "entra"
    # Identity writes: 3,000 per 2 min 30 s per app and tenant = 20/s.
    default_rate = 20.0
    default_concurrency = 8
    permissions = (READ, DISABLE, SESSIONS, MEMBERS, LICENSES, DELETE, ROLE_GROUPS, *HANDOVER_PERMISSIONS)
    residual_kinds = Connector.residual_kinds | {ActionKind.REMOVE_FORWARDING, ActionKind.REVOKE_APP_GRANTS}

    class Settings(ConnectorSettings):
        tenant_id: str
        client_id: str
        client_secret: Secret | None = None
        certificate: Secret | None = Field(None, description="PEM private key of the app's certificate")
        certificate_thumbprint: str | None = None
        authority_url: str = Field(
            "https://login.microsoftonline.com", description="the authority host; /{tenant_id} is appended"
        )
        graph_url: str = "https://graph.microsoft.com/v1.0"
        ca_file: str | None = None
        accounts: dict[str, str] = Field(default_factory=dict, description="person -> userPrincipalName or id")
        timeout: float = 30.0
        page_size: int = Field(200, ge=1, le=999)

        @model_validator(mode="after")
        def _one_credential(self) -> EntraConnector.Settings:
            if bool(self.client_secret) == bool(self.certificate):
                raise ValueError("give exactly one of client_secret or certificate")
            if self.certificate and not self.certificate_thumbprint:
                raise ValueError("certificate needs certificate_thumbprint (the SHA-1 thumbprint shown in the portal)")
            if self.authority_url.startswith("http://") and not is_loopback(self.authority_url):
                raise ValueError(
                    "authority_url must be https (plain http is allowed only on loopback, for the sandbox)"
                )
            return self

    settings: Settings

    def __init__(self, instance: str, settings: Any = None):
        import msal
        import requests

        super().__init__(instance, settings)
        s = self.settings
        credential: Any = (
            s.client_secret.reveal()
            if s.client_secret
            else {
                "private_key": s.certificate.reveal(),  # type: ignore[union-attr]  # the validator requires one of the two
                "thumbprint": s.certificate_thumbprint,
            }
        )
        authority = f"{s.authority_url.rstrip('/')}/{s.tenant_id}"
        session = requests.Session()
        session.trust_env = not is_loopback(authority)
        if s.ca_file:
            session.verify = s.ca_file
        origin = "/".join(authority.split("/")[:3])
        if authority.startswith("http://"):  # sandbox: msal only accepts https, so rewrite on the wire
            self._auth_http = _AuthorityHttp(session, "https://" + origin[len("http://") :], origin)
            authority = "https://" + authority[len("http://") :]
        else:
            self._auth_http = _AuthorityHttp(session)
        http_client: Any = self._auth_http
        try:
            self._msal = msal.ConfidentialClientApplication(
                s.client_id,
                client_credential=credential,
                authority=authority,
                http_client=http_client,
                instance_discovery=False,
                timeout=s.timeout,
            )
        except (ValueError, msal.exceptions.MsalServiceError) as exc:
            status, headers = self._auth_http.last
            if status == 429 or status >= 500:  # authority discovery throttled or down: the engine retries
                raise error_for(status, headers, short(str(exc)), system=instance, what="authority discovery") from None
            raise ConfigError(f"entra settings: {short(str(exc))}", where=instance) from None
        except requests.RequestException as exc:
            raise TransientError(f"cannot reach the authority: {type(exc).__name__}", system=instance) from None
        self._client = make_client(s.graph_url.rstrip("/") + "/", timeout=s.timeout, ca_file=s.ca_file)

    def close(self) -> None:
        self._client.close()

    # -- token and HTTP ---------------------------------------------------------

    def _token(self) -> str:
        import requests
        from msal.exceptions import MsalServiceError

        try:
            result = self._msal.acquire_token_for_client(scopes=GRAPH_SCOPE)
        except MsalServiceError:  # the authority's metadata request failed: classify by its HTTP status
            status, headers = self._auth_http.last
            raise error_for(
                status or 503, headers, "authority metadata request failed", system=self.instance, what="token request"
            ) from None
        except requests.RequestException as exc:
            raise TransientError(f"token request failed: {type(exc).__name__}", system=self.instance) from None
        except ValueError as exc:  # msal raises ValueError for unreadable answers
            raise TransientError(f"token request failed: {short(str(exc))}", system=self.instance) from None
        if "access_token" in result:
            return result["access_token"]
        error = result.get("error", "unknown_error")
        text = f"token request refused: {error}: {short(result.get('error_description', ''), 200)}"
        status, headers = self._auth_http.last
        if status == 429:
            raise RateLimited(text, retry_after=retry_after(headers), system=self.instance, status=429)
        if status >= 500 or error == "temporarily_unavailable":
            raise TransientError(text, system=self.instance, status=status or None)
        raise AuthError(text, system=self.instance, status=status or None)

    def _call(
        self, method: str, path: str, what: str, permission: str, idempotent: bool | None = None, **kw: Any
    ) -> httpx.Response:
        """One Graph request; the engine retries it on its own when it is idempotent (a GET, PUT or
        DELETE unless the caller says otherwise: a PATCH that sets a field is)."""
        headers = dict(kw.pop("headers", None) or {})

        def attempt() -> httpx.Response:
            headers["Authorization"] = f"Bearer {self._token()}"
            response = send(self._client, method, path, system=self.instance, what=what, headers=headers, **kw)
            return raise_for_status(response, system=self.instance, what=what, permissions=(permission,))

        return self.request(attempt, idempotent=method in IDEMPOTENT_METHODS if idempotent is None else idempotent)

    def _user(self, key: str, select: str = USER_FIELDS) -> dict[str, Any] | None:
        try:
            return self._call("GET", f"users/{_seg(key)}", f"read user {key}", READ, params={"$select": select}).json()
        except NotFound:
            return None

    def _require(self, action: Action, select: str = USER_FIELDS) -> dict[str, Any]:
        user = self._user(action.account.id, select)
        if user is None:
            raise NotFound(f"user {action.account.name} ({action.account.id}) not found", system=self.instance)
        return user

    # -- read side ------------------------------------------------------------

    def check(self) -> CheckResult:
        try:
            token = self._token()
            self._call("GET", "users", "list users", READ, params={"$top": "1", "$select": "id"})
        except AuthError as exc:
            return CheckResult(
                False, identity=self.settings.client_id, missing=getattr(exc, "permissions", ()), detail=str(exc)
            )
        roles = _roles(token)
        if roles is None:
            return CheckResult(
                True, identity=self.settings.client_id, detail="token has no roles claim; permissions not listed"
            )
        lacking = [p for p in self.permissions if p not in roles and not (COVERED_BY[p] & roles)]
        # The handover permissions matter only to policies with handover steps: named, not failing the check.
        missing = tuple(p for p in lacking if p not in HANDOVER_PERMISSIONS)
        optional = [p for p in lacking if p in HANDOVER_PERMISSIONS]
        detail = "missing application permissions: " + ", ".join(missing) if missing else "all permissions granted"
        if optional:
            detail += "; the handover steps would also need: " + ", ".join(optional)
        return CheckResult(not missing, identity=self.settings.client_id, missing=missing, detail=detail)

    def discover(self, person: Person) -> list[Account]:
        found: dict[str, Account] = {}
        explicit = mapped(person, self.settings.accounts)
        if explicit:
            user = self._user(explicit)
            return [self._account(user)] if user else []
        filters = [_email_filter(e) for e in person.emails]
        if person.employee_id:
            filters.append(f"employeeId eq {_odata(person.employee_id)}")
        for odata_filter in filters:
            params = {"$filter": odata_filter, "$select": USER_FIELDS, "$count": "true"}
            body = self._call(
                "GET", "users", "search users", READ, params=params, headers={"ConsistencyLevel": "eventual"}
            ).json()
            for user in body.get("value") or []:
                found.setdefault(user["id"], self._account(user))
        return list(found.values())

    def list_accounts(self, cursor: str | None = None) -> AccountPage:
        if cursor:
            if not cursor.startswith(self.settings.graph_url.rstrip("/") + "/"):
                raise PermanentError("list cursor does not belong to this Graph endpoint", system=self.instance)
            body = self._call("GET", cursor, "list users", READ).json()
        else:
            params = {"$select": USER_FIELDS, "$top": str(self.settings.page_size)}
            body = self._call("GET", "users", "list users", READ, params=params).json()
        accounts = tuple(self._account(u) for u in body.get("value") or [])
        return AccountPage(accounts, body.get("@odata.nextLink"))

    def verify(self, action: Action, receipt: Receipt | None = None) -> Verification:
        kind, who = action.kind, action.account.name
        if kind in HANDOVER_KINDS:
            return self.verify_handover(action, receipt)
        if kind is ActionKind.DELETE_ACCOUNT:
            gone = self._user(action.account.id, "id") is None
            return Verification(action, gone, {"exists": not gone}, f"{who}: {'deleted' if gone else 'still exists'}")
        if kind is ActionKind.DISABLE_ACCOUNT:
            user = self._require(action)
            enabled = bool(user.get("accountEnabled"))
            return Verification(
                action, not enabled, {"accountEnabled": enabled}, f"{who}: accountEnabled is {str(enabled).lower()}"
            )
        if kind is ActionKind.REVOKE_SESSIONS:
            user = self._require(action, "id,userType,signInSessionsValidFromDateTime")
            if _guest(user):
                return Verification(
                    action,
                    False,
                    {
                        "userType": user.get("userType"),
                        "signInSessionsValidFromDateTime": user.get("signInSessionsValidFromDateTime"),
                    },
                    f"{who}: {_GUEST_NOTE}",
                )
            valid_from = _when(user.get("signInSessionsValidFromDateTime"))
            before = _when((receipt.before if receipt else {}).get("signInSessionsValidFromDateTime"))
            if receipt is not None and not receipt.changed:  # already revoked recently, so nothing moved
                ok = valid_from is not None and _recent(valid_from)
            else:
                ok = valid_from is not None and (valid_from > before if before else _recent(valid_from))
            return Verification(
                action,
                ok,
                {"signInSessionsValidFromDateTime": user.get("signInSessionsValidFromDateTime")},
                f"{who}: sessions {'revoked' if ok else 'not revoked'}",
            )
        if kind is ActionKind.REMOVE_MEMBERSHIPS:
            groups = self._removable_groups(action.account.id)
            names = sorted(g.get("displayName") or g["id"] for g in groups)
            detail = f"{who}: still in {', '.join(names)}" if names else f"{who}: in no removable group"
            synced = self._synced_groups(action.account.id)
            if synced:
                detail += f"; {_synced_note(synced)}"
            return Verification(action, not groups, {"groups": names, "on_premises_groups": synced}, detail)
        if kind is ActionKind.REMOVE_LICENSES:
            direct, inherited = self._licenses(action)
            detail = (
                f"{who}: direct licenses {', '.join(d['skuId'] for d in direct)} remain"
                if direct
                else f"{who}: no direct licenses"
            )
            return Verification(
                action, not direct, {"direct": [d["skuId"] for d in direct], "inherited": inherited}, detail
            )
        raise PermanentError(f"entra cannot verify {kind.value}", system=self.instance)

    # -- write side -----------------------------------------------------------

    def disable_account(self, action: Action) -> Receipt:
        user = self._require(action)
        if user.get("onPremisesSyncEnabled"):
            raise PermanentError(
                f"{action.account.name} is synced from on-premises AD; accountEnabled is mastered there: "
                "disable it with the ldap connector",
                system=self.instance,
            )
        self.keep_before(action, {"accountEnabled": bool(user.get("accountEnabled"))})
        if not user.get("accountEnabled"):
            return Receipt(action, changed=False, before={"accountEnabled": False}, detail="already disabled")
        self._set_enabled(action, False)
        return Receipt(action, changed=True, before={"accountEnabled": True}, reference=user["id"])

    def undo_disable_account(self, receipt: Receipt) -> Receipt:
        user = self._require(receipt.action)
        wanted = bool(receipt.before.get("accountEnabled", True))
        if bool(user.get("accountEnabled")) == wanted:
            return Receipt(receipt.action, changed=False, before={"accountEnabled": wanted})
        self._set_enabled(receipt.action, wanted)
        return Receipt(receipt.action, changed=True, before={"accountEnabled": not wanted}, reference=user["id"])

    def revoke_sessions(self, action: Action) -> Receipt:
        user = self._require(action, "id,userType,signInSessionsValidFromDateTime")
        previous = user.get("signInSessionsValidFromDateTime")
        before = {"signInSessionsValidFromDateTime": previous}
        if _guest(user):
            before["userType"] = user.get("userType")
        valid_from = _when(previous)
        if valid_from is not None and _recent(valid_from):
            return Receipt(action, changed=False, before=before, detail=f"sessions already revoked at {previous}")
        self._call(
            "POST",
            f"users/{_seg(user['id'])}/revokeSignInSessions",
            f"revoke sessions of {action.account.name}",
            SESSIONS,
            content=b"",
        )
        detail = _GUEST_NOTE if _guest(user) else ""
        return Receipt(action, changed=True, before=before, reference=user["id"], detail=detail)

    def remove_memberships(self, action: Action) -> Receipt:
        user_id = action.account.id
        what = f"remove {action.account.name} from groups"
        everything = self._groups(user_id)
        # Role-assignable groups go last, in their own batch: they also need RoleManagement.ReadWrite.Directory.
        plain = [g for g in everything if _removable(g) and not g.get("isAssignableToRole")]
        roles = [g for g in everything if _removable(g) and g.get("isAssignableToRole")]

        def refs(groups: list[dict[str, Any]]) -> list[tuple[str, str, Any]]:
            return [("DELETE", f"/groups/{g['id']}/members/{user_id}/$ref", None) for g in groups]

        failed = self._batch(refs(plain), MEMBERS, what, ok_statuses=(204, 404))
        if roles:
            try:
                failed += self._batch(refs(roles), ROLE_GROUPS, what, ok_statuses=(204, 404))
            except PermissionDenied:
                failed += [f"HTTP 403: a role-assignable group; the app needs {ROLE_GROUPS}"] * len(roles)
        groups = plain + roles
        removed = [g for g, f in zip(groups, failed) if f is None]
        before = {"groups": [{"id": g["id"], "displayName": g.get("displayName")} for g in removed]}
        problems = [f"{g.get('displayName') or g['id']}: {f}" for g, f in zip(groups, failed) if f]
        detail = f"removed from {len(removed)} group(s)" + (
            f"; could not remove: {'; '.join(problems)}" if problems else ""
        )
        synced = sorted(g.get("displayName") or g["id"] for g in everything if g.get("onPremisesSyncEnabled"))
        if synced:
            detail += f"; {_synced_note(synced)}"
        return Receipt(action, changed=bool(removed), before=before, detail=detail)

    def undo_remove_memberships(self, receipt: Receipt) -> Receipt:
        user_id = receipt.action.account.id
        current = {g["id"] for g in self._groups(user_id)}
        missing = [g for g in receipt.before.get("groups", []) if g["id"] not in current]
        base = self.settings.graph_url.rstrip("/")
        requests_ = [
            ("POST", f"/groups/{g['id']}/members/$ref", {"@odata.id": f"{base}/directoryObjects/{user_id}"})
            for g in missing
        ]
        failed = self._batch(requests_, MEMBERS, f"re-add {receipt.action.account.name} to groups", ok_statuses=(204,))
        problems = [f"{g.get('displayName') or g['id']}: {f}" for g, f in zip(missing, failed) if f]
        if problems:
            raise PermanentError(f"could not restore memberships: {'; '.join(problems)}", system=self.instance)
        return Receipt(receipt.action, changed=bool(missing), before={"groups": sorted(current)})

    def remove_licenses(self, action: Action) -> Receipt:
        direct, inherited = self._licenses(action)
        before = {"licenses": direct}
        if not direct:
            return Receipt(action, changed=False, before=before, detail=_inherited_note(inherited))
        body = {"addLicenses": [], "removeLicenses": [d["skuId"] for d in direct]}
        self._call(
            "POST",
            f"users/{_seg(action.account.id)}/assignLicense",
            f"remove licenses of {action.account.name}",
            LICENSES,
            json=body,
        )
        return Receipt(action, changed=True, before=before, detail=_inherited_note(inherited))

    def undo_remove_licenses(self, receipt: Receipt) -> Receipt:
        direct, _ = self._licenses(receipt.action)
        have = {d["skuId"] for d in direct}
        add = [
            {"skuId": d["skuId"], "disabledPlans": d.get("disabledPlans") or []}
            for d in receipt.before.get("licenses", [])
            if d["skuId"] not in have
        ]
        if add:
            self._call(
                "POST",
                f"users/{_seg(receipt.action.account.id)}/assignLicense",
                f"restore licenses of {receipt.action.account.name}",
                LICENSES,
                json={"addLicenses": add, "removeLicenses": []},
            )
        return Receipt(receipt.action, changed=bool(add), before={"licenses": direct})

    def delete_account(self, action: Action) -> Receipt:
        user = self._user(action.account.id)
        if user is None:
            return Receipt(action, changed=False, detail="already deleted")
        self._call("DELETE", f"users/{_seg(user['id'])}", f"delete {action.account.name}", DELETE)
        before = {"accountEnabled": user.get("accountEnabled"), "userPrincipalName": user.get("userPrincipalName")}
        return Receipt(
            action,
            changed=True,
            before=before,
            reference=user["id"],
            detail="soft-deleted: restorable from deleted items for 30 days",
        )

    # -- helpers --------------------------------------------------------------

    def _account(self, user: dict[str, Any]) -> Account:
        attributes = {k: user[k] for k in ("employeeId", "onPremisesSyncEnabled") if user.get(k) is not None}
        return Account(
            system=self.instance,
            id=user["id"],
            name=user.get("userPrincipalName") or user["id"],
            email=user.get("mail") or user.get("userPrincipalName"),
            active=bool(user.get("accountEnabled", True)),
            attributes=attributes,
        )

    def _set_enabled(self, action: Action, enabled: bool) -> None:
        verb = "enable" if enabled else "disable"
        try:
            self._call(
                "PATCH",
                f"users/{_seg(action.account.id)}",
                f"{verb} {action.account.name}",
                DISABLE,
                idempotent=True,  # sets accountEnabled: a repeat leaves it as one request would
                json={"accountEnabled": enabled},
            )
        except PermissionDenied as exc:
            raise PermissionDenied(
                f"{exc}; if {action.account.name} holds an admin role, the app also needs a directory role such as "
                f"{PRIVILEGED_ROLE}",
                permissions=(DISABLE, PRIVILEGED_ROLE),
                system=self.instance,
                status=403,
            ) from None

    def _groups(self, user_id: str) -> list[dict[str, Any]]:
        """Direct group memberships (every page)."""
        out: list[dict[str, Any]] = []
        path: str | None = f"users/{_seg(user_id)}/memberOf/microsoft.graph.group"
        params: dict[str, str] | None = {
            "$select": "id,displayName,groupTypes,mailEnabled,securityEnabled,isAssignableToRole,onPremisesSyncEnabled"
        }
        while path:
            body = self._call("GET", path, "list group memberships", READ, params=params).json()
            out += body.get("value") or []
            path, params = body.get("@odata.nextLink"), None
        return out

    def _removable_groups(self, user_id: str) -> list[dict[str, Any]]:
        """Memberships Graph can remove: not dynamic, not mail-enabled (Exchange manages those), not
        synced from on-premises AD (mastered there)."""
        return [g for g in self._groups(user_id) if _removable(g)]

    def _synced_groups(self, user_id: str) -> list[str]:
        return sorted(g.get("displayName") or g["id"] for g in self._groups(user_id) if g.get("onPremisesSyncEnabled"))

    def _licenses(self, action: Action) -> tuple[list[dict[str, Any]], list[str]]:
        """(direct licenses with their disabled plans, skuIds inherited from groups)."""
        user = self._require(action, "id,assignedLicenses,licenseAssignmentStates")
        states = user.get("licenseAssignmentStates") or []
        direct_skus = {s.get("skuId") for s in states if not s.get("assignedByGroup")}
        inherited = sorted({s.get("skuId") for s in states if s.get("assignedByGroup")} - direct_skus)
        if not states:  # tenants without state details: every assigned license counts as direct
            direct_skus = {lic.get("skuId") for lic in user.get("assignedLicenses") or []}
        direct = [
            {"skuId": lic["skuId"], "disabledPlans": list(lic.get("disabledPlans") or [])}
            for lic in user.get("assignedLicenses") or []
            if lic.get("skuId") in direct_skus
        ]
        return direct, inherited

    def _batch(
        self, items: list[tuple[str, str, Any]], permission: str, what: str, ok_statuses: tuple[int, ...]
    ) -> list[str | None]:
        """Send ``items`` through ``$batch`` (20 a time); per item, None or why it failed for good."""
        results: list[str | None] = [None] * len(items)
        idempotent = all(method in IDEMPOTENT_METHODS for method, _, _ in items)

        def send_batch(pending: list[int]) -> None:
            """One ``$batch`` of the ``pending`` items; those that failed and may be retried stay pending."""
            payload: dict[str, list[dict[str, Any]]] = {"requests": []}
            for index in pending:
                method, url, body = items[index]
                entry: dict[str, Any] = {"id": str(index), "method": method, "url": url}
                if body is not None:
                    entry["body"] = body
                    entry["headers"] = {"Content-Type": "application/json"}
                payload["requests"].append(entry)
            answer = self._call("POST", "$batch", what, permission, idempotent=False, json=payload).json()
            retry: dict[int, ConnectorError] = {}
            for item in answer.get("responses") or []:
                index, status = int(item["id"]), int(item.get("status", 0))
                if status in ok_statuses:
                    continue
                body = item.get("body") or {}
                message = (body.get("error") or {}).get("message", "") if isinstance(body, dict) else str(body)
                error = error_for(
                    status,
                    item.get("headers") or {},
                    message,
                    system=self.instance,
                    what=what,
                    permissions=(permission,),
                )
                if getattr(error, "retryable", False) or isinstance(error, AuthError):
                    retry[index] = error
                else:
                    results[index] = f"HTTP {status} {short(message, 120)}"
            raise_pending(retry, pending)  # only the items that failed are sent again

        for start in range(0, len(items), BATCH_SIZE):
            # Graph documents each item of a $batch as its own request with its own status: a retry
            # sends again only the items answered 429 or 5xx (https://learn.microsoft.com/en-us/graph/json-batching).
            pending = list(range(start, min(start + BATCH_SIZE, len(items))))
            self.request(functools.partial(send_batch, pending), idempotent=idempotent)
        return results


class _AuthorityHttp:
    """msal's http_client: remembers the last answer's status and headers (msal drops Retry-After).

    For a loopback sandbox authority it also rewrites https to http: msal insists on https URLs.
    """

    def __init__(self, session: requests.Session, https: str = "", http: str = ""):
        self._session, self._https, self._http = session, https, http
        self.last: tuple[int, dict[str, str]] = (0, {})

    def _url(self, url: str) -> str:
        return self._http + url[len(self._https) :] if self._https and url.startswith(self._https) else url

    def _keep(self, response: Any) -> Any:
        self.last = (response.status_code, dict(response.headers))
        return response

    def get(self, url: str, **kw: Any) -> Any:
        return self._keep(self._session.get(self._url(url), **kw))

    def post(self, url: str, **kw: Any) -> Any:
        return self._keep(self._session.post(self._url(url), **kw))

    def close(self) -> None:
        self._session.close()


class EntraLeaveDate(PeopleSource):
    """People from Entra ID users, the end date from ``employeeLeaveDateTime`` (needs User-LifeCycleInfo.Read.All)."""

    name = "entra_leave_date"

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid")
        connector: dict[str, Any] = Field(
            description="the entra connector's settings (tenant_id, client_id, client_secret, ...)"
        )
        contractor_values: list[str] = Field(default_factory=lambda: ["contractor", "external", "consultant"])
        timezone: str = "UTC"

    settings: Settings

    SELECT = (
        "id,userPrincipalName,mail,otherMails,displayName,employeeId,employeeType,employeeLeaveDateTime,accountEnabled"
    )

    def people(self) -> Iterator[Person]:
        connector = EntraConnector("people:entra", self.settings.connector)
        what = "list users for people"
        try:
            body = connector._call(
                "GET",
                "users",
                what,
                READ,
                params={"$select": self.SELECT, "$expand": "manager($select=mail,userPrincipalName)", "$top": "999"},
            ).json()
            while True:
                for user in body.get("value") or []:
                    yield self._person(user)
                link = body.get("@odata.nextLink")
                if not link:
                    break
                body = connector._call("GET", link, what, READ).json()
        except ConnectorError as exc:
            raise OffboardError(f"people source {self.name}: {type(exc).__name__}: {exc}") from None
        finally:
            connector.close()

    def _person(self, user: dict[str, Any]) -> Person:
        email = user.get("mail") or user.get("userPrincipalName")
        leave = user.get("employeeLeaveDateTime")
        manager = user.get("manager") or {}
        return Person(
            id=email or user["id"],
            email=email,
            aliases=tuple(user.get("otherMails") or ()),
            employee_id=user.get("employeeId"),
            name=user.get("displayName"),
            type=person_type(user.get("employeeType"), self.settings.contractor_values),
            manager=manager.get("mail") or manager.get("userPrincipalName"),
            end_date=datetime.fromisoformat(leave.replace("Z", "+00:00")) if leave else None,
            timezone=self.settings.timezone,
            active=bool(user.get("accountEnabled", True)),
        )


_GUEST_NOTE = (
    "guest (external) user: revokeSignInSessions does not end their sessions, which their home tenant "
    "issues; not verified. What works here: disable_account (accountEnabled false blocks sign-in to this "
    "tenant) or delete_account; their home organization can revoke their sessions"
)


def _guest(user: dict[str, Any]) -> bool:
    return str(user.get("userType") or "").lower() == "guest"


def _removable(group: dict[str, Any]) -> bool:
    types = group.get("groupTypes") or []
    return (
        "DynamicMembership" not in types
        and not (group.get("mailEnabled") and "Unified" not in types)
        and not group.get("onPremisesSyncEnabled")
    )


def _synced_note(names: list[str]) -> str:
    return (
        f"skipped {', '.join(names)}: synced from the on-premises directory (Active Directory), where its members "
        "are mastered; Graph cannot change them: remove the membership in AD, e.g. with the ldap connector"
    )


def _seg(key: str) -> str:
    """A user id or UPN as one URL path segment (guest UPNs carry '#EXT#')."""
    return quote(key, safe="@")


def _odata(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _email_filter(email: str) -> str:
    v = _odata(email)
    smtp = _odata("smtp:" + email)
    return f"userPrincipalName eq {v} or mail eq {v} or otherMails/any(m:m eq {v}) or proxyAddresses/any(p:p eq {smtp})"


def _roles(token: str) -> set[str] | None:
    """The ``roles`` claim of an access token (not validated: we only read what we were granted)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return None
    roles = claims.get("roles") if isinstance(claims, dict) else None
    return set(roles) if isinstance(roles, list) else None


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _recent(when: datetime) -> bool:
    return datetime.now(UTC) - when < RECENT_REVOCATION


def _inherited_note(inherited: Iterable[str]) -> str:
    inherited = list(inherited)
    return f"group-assigned licenses left to group membership: {', '.join(inherited)}" if inherited else ""


@hookimpl
def register_connectors(register):
    register(EntraConnector)


@hookimpl
def register_people_sources(register):
    register(EntraLeaveDate)
