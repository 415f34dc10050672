"""Google Workspace through the Admin SDK (Directory + Data Transfer), service account with domain-wide delegation."""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field

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
from offboard.people import end_date, person_type

from ._google_handover import HANDOVER_SCOPES, ORDERING, GoogleHandover
from ._http import IDEMPOTENT_METHODS, error_for, is_loopback, mapped, short

_S = "https://www.googleapis.com/auth/"
USER = _S + "admin.directory.user"
SECURITY = _S + "admin.directory.user.security"
GROUP_READ = _S + "admin.directory.group.readonly"
GROUP_MEMBER = _S + "admin.directory.group.member"
TRANSFER = _S + "admin.datatransfer"
BASE_SCOPES = (USER, SECURITY, GROUP_READ, GROUP_MEMBER, TRANSFER)  # the main token's
SCOPES = (*BASE_SCOPES, *HANDOVER_SCOPES)  # every scope the connector uses (each handover API has its own token)
_QUOTA_REASONS = {"userRateLimitExceeded", "rateLimitExceeded", "quotaExceeded"}
_USER_FIELDS = "id,primaryEmail,aliases,suspended,isAdmin,orgUnitPath,externalIds,name"


class GoogleWorkspaceConnector(GoogleHandover, Connector):
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

    # -- transport ----------------------------------------------------------------

    def _http(self, credentials: Any = None) -> Any:
        import google_auth_httplib2
        import httplib2

        class RecordingHttp(httplib2.Http):
            """Keeps the last answer's status and headers: google-auth drops Retry-After on token errors."""

            last: tuple[int, dict[str, str]] = (0, {})

            def request(self, *args: Any, **kw: Any) -> Any:
                response, content = super().request(*args, **kw)
                self.last = (int(response.status), {k: v for k, v in response.items() if isinstance(v, str)})
                return response, content

        proxy = None if is_loopback(self._api) else httplib2.proxy_info_from_environment
        raw = RecordingHttp(timeout=self.settings.timeout, ca_certs=self.settings.ca_file, proxy_info=proxy)
        return google_auth_httplib2.AuthorizedHttp(credentials or self._credentials, http=raw)

    def _token_error(self, exc: Exception, what: str) -> ConnectorError:
        """A refused token request: rate limit, outage, or credentials/delegation refused."""
        services = getattr(self._local, "services", None)
        status, headers = services["http"].http.last if services else (0, {})
        reason = _refresh_reason(exc)
        if status == 429:
            from ._http import retry_after

            return RateLimited(
                f"{what}: token endpoint rate limited",
                retry_after=retry_after(headers),
                system=self.instance,
                status=429,
            )
        if status >= 500 or getattr(exc, "retryable", False):
            return TransientError(f"{what}: token endpoint failed (HTTP {status})", system=self.instance, status=status)
        return AuthError(f"{what}: token refused: {reason}", system=self.instance, status=status or None)

    def _svc(self, api: str = "directory") -> Any:
        services = getattr(self._local, "services", None)
        if services is None:
            from googleapiclient.discovery import build

            http = self._http()
            opts = {"api_endpoint": self._api}
            services = self._local.services = {
                "http": http,
                "directory": build("admin", "directory_v1", http=http, static_discovery=True, client_options=opts),
                "transfer": build("admin", "datatransfer_v1", http=http, static_discovery=True, client_options=opts),
            }
        return services[api]

    def _run(self, request: Any, what: str, scope: str, idempotent: bool | None = None) -> Any:
        """Execute one request; the engine retries it on its own when it is idempotent (by default a
        GET, PUT or DELETE, RFC 9110 9.2.2: Directory's updates are PUTs of the fields they set)."""
        if idempotent is None:
            idempotent = getattr(request, "method", "POST") in IDEMPOTENT_METHODS
        return self.request(lambda: self._execute(request, what, scope), idempotent=idempotent)

    def _execute(self, request: Any, what: str, scope: str, requests: int = 1) -> Any:
        """Send ``request`` once (``requests``: how many Google counts against the quota; a batch's inner ones)."""
        import google.auth.exceptions
        import httplib2
        from googleapiclient.errors import HttpError

        for _ in range(requests):
            self.throttle("queries")
        try:
            return request.execute()
        except HttpError as exc:
            raise self._error(exc, what, scope) from None
        except google.auth.exceptions.RefreshError as exc:
            raise self._token_error(exc, what) from None
        except google.auth.exceptions.TransportError as exc:
            raise TransientError(
                f"{what}: token endpoint unreachable: {type(exc).__name__}", system=self.instance
            ) from None
        except TimeoutError as exc:
            raise TransientError(f"{what}: timed out ({type(exc).__name__})", system=self.instance) from None
        except (OSError, httplib2.HttpLib2Error) as exc:
            raise TransientError(f"{what}: {type(exc).__name__}: {short(str(exc))}", system=self.instance) from None

    def _error(self, exc: Any, what: str, scope: str) -> ConnectorError:
        status = int(exc.resp.status)
        headers = {k: v for k, v in exc.resp.items() if isinstance(v, str)}
        reasons, message = _reasons(exc)
        if status == 403 and reasons & _QUOTA_REASONS:
            from ._http import retry_after

            return RateLimited(
                f"{what}: quota exceeded ({', '.join(sorted(reasons))})",
                retry_after=retry_after(headers),
                system=self.instance,
                status=403,
            )
        return error_for(status, headers, message, system=self.instance, what=what, permissions=(scope,))

    def _directory(self, resource: str, api: str = "directory") -> Any:
        """A collection of the thread's Directory (or Data Transfer) client: ``users``, ``members``..."""
        return self._collection(self._svc(api), resource)

    def _collection(self, service: Any, *path: str) -> Any:
        """``service.<path[0]>().<path[1]>()...``, built once per thread and client: each ``service.users()``
        makes googleapiclient build every method of the collection again from the discovery document, which
        was half of the engine process's CPU in a bulk run (``docs/performance.md``, "Mass terminations")."""
        cache = self._local.__dict__.setdefault("collections", {})
        key = (id(service), path)
        held = cache.get(key)
        if held is None or held[0] is not service:  # the client is kept with it: its id is never reused
            found = service
            for name in path:
                found = getattr(found, name)()
            held = cache[key] = (service, found)
        return held[1]

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

    def _pages(
        self, method: Callable[..., Any], key: str, what: str, scope: str, **params: Any
    ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token = None
        while True:
            body = self._run(method(pageToken=token, **params) if token else method(**params), what, scope) or {}
            items += body.get(key) or []
            token = body.get("nextPageToken")
            if not token:
                return items

    def _batch(self, calls: list[tuple[Any, str]], scope: str, ok_missing: bool = True) -> list[Any]:
        """Run requests in one Google batch (up to 1000); returns their bodies, raising the first error.

        When every request is idempotent (reads, deletes whose repeat answers 404 and ``ok_missing``
        takes as done), the batch is one request to the engine and a retry sends again only the
        items that failed with a retryable error (a 5xx, a quota answer)."""
        from googleapiclient.errors import HttpError
        from googleapiclient.http import BatchHttpRequest

        results: list[Any] = [None] * len(calls)
        errors: list[ConnectorError | None] = [None] * len(calls)
        idempotent = all(getattr(request, "method", "POST") in IDEMPOTENT_METHODS for request, _ in calls)

        def send(pending: list[int]) -> None:
            if len(pending) == 1:  # one item left: sent on its own, it cannot fail twice (envelope and item)
                index = pending[0]
                try:
                    results[index] = self._execute(calls[index][0], calls[index][1], scope)
                except ConnectorError as err:
                    if err.retryable:
                        raise
                    if not (ok_missing and isinstance(err, NotFound)):
                        errors[index] = err
                pending.clear()
                return
            retry: dict[int, ConnectorError] = {}

            def done(request_id: str, response: Any, exception: Exception | None) -> None:
                index = int(request_id)
                if exception is None:
                    results[index] = response
                    return
                err = (
                    self._error(exception, calls[index][1], scope)
                    if isinstance(exception, HttpError)
                    else TransientError(f"{calls[index][1]}: {type(exception).__name__}", system=self.instance)
                )
                if ok_missing and isinstance(err, NotFound):
                    return
                if err.retryable:
                    retry[index] = err
                else:
                    errors[index] = err

            batch = BatchHttpRequest(callback=done, batch_uri=self._api + "batch")
            for index in pending:
                batch.add(calls[index][0], request_id=str(index))
            self._execute(batch, "batch request", scope, requests=len(pending))
            progress = len(retry) < len(pending)
            pending[:] = sorted(retry)
            if pending:
                first = retry[pending[0]]
                if progress and isinstance(first, TransientError):
                    first.partial = True  # only the items that failed are sent again
                raise first

        for start in range(0, len(calls), 1000):
            pending = list(range(start, min(start + 1000, len(calls))))
            self.request(functools.partial(send, pending), idempotent=idempotent)
        first = next((e for e in errors if e is not None), None)
        if first is not None:
            raise first
        return results

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


class GoogleCustomSchema(PeopleSource):
    """People from Google Workspace users, the end date from a custom schema field (e.g. Offboarding.endDate)."""

    name = "google_custom_schema"

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid")
        connector: dict[str, Any] = Field(
            description="the google_workspace connector's settings (service_account, subject, ...)"
        )
        schema_name: str = Field("Offboarding", alias="schema")
        end_date_field: str = "endDate"
        type_field: str | None = "personType"
        timezone_field: str | None = "timeZone"
        contractor_values: list[str] = Field(default_factory=lambda: ["contractor", "external", "consultant"])
        timezone: str = "UTC"

    settings: Settings

    def people(self) -> Iterator[Person]:
        connector = GoogleWorkspaceConnector("people:google_workspace", self.settings.connector)
        token = None
        try:
            while True:
                params: dict[str, Any] = {
                    "customer": connector.settings.customer,
                    "maxResults": 500,
                    "projection": "custom",
                    "customFieldMask": self.settings.schema_name,
                }
                if token:
                    params["pageToken"] = token
                body = connector._run(connector._directory("users").list(**params), "list users for people", USER) or {}
                for user in body.get("users") or []:
                    yield self._person(user)
                token = body.get("nextPageToken")
                if not token:
                    break
        except ConnectorError as exc:
            raise OffboardError(f"people source {self.name}: {type(exc).__name__}: {exc}") from None
        finally:
            connector.close()

    def _person(self, user: dict[str, Any]) -> Person:
        s = self.settings
        fields = (user.get("customSchemas") or {}).get(s.schema_name) or {}
        email = user.get("primaryEmail")
        tz = (fields.get(s.timezone_field) if s.timezone_field else None) or s.timezone
        try:
            zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"unknown time zone {tz!r}", where=f"{email}: {s.schema_name}.{s.timezone_field}"
            ) from None
        manager = next((r.get("value") for r in user.get("relations") or [] if r.get("type") == "manager"), None)
        employee_id = next(
            (e.get("value") for e in user.get("externalIds") or [] if e.get("type") == "organization"), None
        )
        return Person(
            id=email or user["id"],
            email=email,
            aliases=tuple(user.get("aliases") or ()),
            employee_id=employee_id,
            name=(user.get("name") or {}).get("fullName"),
            type=person_type(fields.get(s.type_field) if s.type_field else None, s.contractor_values),
            manager=manager,
            end_date=end_date(fields.get(s.end_date_field), zone, where=f"{email}: {s.schema_name}.{s.end_date_field}"),
            timezone=tz,
            active=not user.get("suspended"),
        )


def _reasons(exc: Any) -> tuple[set[str], str]:
    try:
        body = json.loads(exc.content.decode("utf-8", "replace"))
        error = body.get("error") or {}
        reasons = {e.get("reason") for e in error.get("errors") or [] if isinstance(e, dict)}
        status = error.get("status")
        if status == "RESOURCE_EXHAUSTED":
            reasons.add("rateLimitExceeded")
        return {r for r in reasons if r}, str(error.get("message") or "")
    except (ValueError, AttributeError):
        return set(), short(
            exc.content.decode("utf-8", "replace") if isinstance(exc.content, bytes) else str(exc.content)
        )


def _refresh_reason(exc: Exception) -> str:
    """The OAuth error code only: the refresh error's args can carry the whole token response."""
    args = exc.args
    if len(args) > 1 and isinstance(args[1], dict):
        data = args[1]
        if isinstance(data.get("error"), dict):
            data = data["error"]
        code = data.get("error") or data.get("status") or data.get("code") or ""
        description = data.get("error_description") or data.get("message") or ""
        return short(f"{code}: {description}", 200)
    return short(type(exc).__name__, 200)


@hookimpl
def register_connectors(register):
    register(GoogleWorkspaceConnector)


@hookimpl
def register_people_sources(register):
    register(GoogleCustomSchema)
