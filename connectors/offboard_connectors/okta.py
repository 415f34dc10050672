"""Okta: suspend (reversible) or deactivate (destructive) people, end their sessions and OAuth tokens,
remove group memberships and OAuth grants, through the official ``okta`` SDK (Management API).

The SDK is asynchronous (aiohttp); each connector call runs one short event loop of its own, so the
engine's worker threads stay the only concurrency. The SDK's own retries are turned off
(``rateLimit.maxRetries: 0``): the engine owns retries and reads ``RateLimited.retry_after``, which this
connector takes from Okta's ``X-Rate-Limit-Reset`` (UTC epoch seconds) less the answer's ``Date``.
"""

from __future__ import annotations

import asyncio
import email.utils
import re
import threading
from datetime import UTC, datetime
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
    ConnectorError,
    NotFound,
    PermanentError,
    PermissionDenied,
    RateLimited,
    TransientError,
)

from ._http import is_loopback, mapped, short

USERS_READ = "okta.users.read"
USERS_MANAGE = "okta.users.manage"
GROUPS_MANAGE = "okta.groups.manage"
LOGS_READ = "okta.logs.read"
APPS_READ = "okta.apps.read"
APPS_MANAGE = "okta.apps.manage"
#: What each lane's requests need; a 403 names them.
_NEEDS = {
    "users": (USERS_READ,),
    "user_get": (USERS_READ,),
    "user_write": (USERS_MANAGE,),
    "groups_id": (GROUPS_MANAGE,),
    "logs": (LOGS_READ,),
    "apps": (APPS_MANAGE,),
    "other": (USERS_READ,),
}
_DISABLED = {"SUSPENDED", "DEPROVISIONED"}
_IDEMPOTENT_PREFIXES = ("get_", "list_", "revoke_user_")
_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="next"')


class _Transport(Exception):
    """A request that got no HTTP answer (connection refused, reset, TLS, timeout)."""

    def __init__(self, error: BaseException):
        super().__init__(str(error))
        self.error = error


def _http_client_class(ssl_context: Any, *, loopback: bool) -> type:
    """The SDK's HTTP client with our TLS context, no proxy for loopback, and transport failures raised.

    The SDK returns a transport failure as a value that its API methods then dereference as a response
    (an ``AttributeError``); raising it here keeps the real cause."""
    from okta.http_client import HTTPClient

    class _HTTPClient(HTTPClient):
        def __init__(self, http_config: dict[str, Any]):
            super().__init__(http_config)
            if ssl_context is not None:
                self._ssl_context = ssl_context
            if loopback:  # the SDK takes HTTPS_PROXY from the environment, and NO_PROXY not at all
                self._proxy = None

        async def send_request(self, request: dict[str, Any]) -> Any:
            answer = await super().send_request(request)
            if answer[3] is not None:
                raise _Transport(answer[3])
            return answer

    return _HTTPClient


class OktaConnector(Connector):
    """Okta orgs (Workforce Identity), through the Management API."""

    name = "okta"
    default_concurrency = 4
    # Okta's per-minute limits per org and endpoint (developer.okta.com "Management rate limits",
    # Enterprise column), one lane each; the lanes match the simulator's buckets.
    rate_limits = {
        "users": (600 / 60, 20),  # GET /api/v1/users (search, list)
        "user_get": (1000 / 60, 20),  # GET /api/v1/users/{id}
        "user_write": (600 / 60, 20),  # lifecycle, sessions, grants under /api/v1/users/{id}
        "groups_id": (600 / 60, 20),  # /api/v1/groups/{id}/users/{userId}
        "logs": (50 / 60, 5),  # /api/v1/logs
        "apps": (100 / 60, 10),  # /api/v1/apps/* (app assignments)
        "other": (600 / 60, 20),  # GET /api/v1/users/{id}/groups and other /api/v1 calls
    }
    permissions = (USERS_READ, USERS_MANAGE, GROUPS_MANAGE, LOGS_READ, APPS_READ, APPS_MANAGE)
    # Requests per action in a bulk run (before-state read, apply, read-back), for the ETA ``offboard plan``
    # prints, measured against the sandbox: the sessions' read-back reads the System Log (the "logs" lane).
    calls = {
        ActionKind.REVOKE_SESSIONS: {"user_get": 2, "logs": 2, "user_write": 1},
        ActionKind.DISABLE_ACCOUNT: {"user_get": 3, "user_write": 1},
        ActionKind.REMOVE_MEMBERSHIPS: {"other": 3, "groups_id": 3},
    }
    reads = {
        ActionKind.DISABLE_ACCOUNT: {"user_get": 1},
        ActionKind.REMOVE_MEMBERSHIPS: {"other": 1},
    }
    residual_kinds = frozenset(
        {ActionKind.DISABLE_ACCOUNT, ActionKind.REMOVE_MEMBERSHIPS, ActionKind.REVOKE_APP_GRANTS}
    )

    class Settings(ConnectorSettings):
        org_url: str = Field(description="https://YOUR-ORG.okta.com")
        token: Secret = Field(description="API token (SSWS) of an admin holding the roles in docs/connectors/okta.md")
        ca_file: str | None = Field(None, description="CA bundle that signed the org's certificate (tests)")
        accounts: dict[str, str] = Field(default_factory=dict, description="person -> Okta user id or login")
        page_size: int = Field(200, ge=1, le=200)
        timeout: int = Field(30, ge=1)
        oauth_tokens: bool = Field(True, description="revoke OAuth/OIDC tokens with the sessions (oauthTokens=true)")
        unassign_apps: bool = Field(
            False, description="revoke_app_grants also unassigns direct app assignments (destructive in Okta)"
        )

    settings: Settings

    def __init__(self, instance: str, settings: Any = None):
        super().__init__(instance, settings)
        self._client: Any = None
        self._local = threading.local()
        self._loops: list[asyncio.AbstractEventLoop] = []
        self._loops_lock = threading.Lock()

    # -- transport --------------------------------------------------------------------------

    def _sdk(self) -> Any:
        if self._client is None:
            import ssl

            from okta.client import Client

            s = self.settings
            context = ssl.create_default_context(cafile=s.ca_file) if s.ca_file else None
            self._client = Client(
                {
                    "orgUrl": s.org_url.rstrip("/"),
                    "token": s.token.reveal(),
                    "authorizationMode": "SSWS",
                    "rateLimit": {"maxRetries": 0},
                    "requestTimeout": s.timeout,
                    "httpClient": _http_client_class(context, loopback=is_loopback(s.org_url)),
                }
            )
        return self._client

    def _loop(self) -> asyncio.AbstractEventLoop:
        """This thread's event loop for the SDK's coroutines, made once: ``asyncio.run`` made and tore down a
        loop, and a thread for its name lookups, for every request (half a millisecond of CPU each)."""
        loop = getattr(self._local, "loop", None)
        if loop is None:
            loop = self._local.loop = asyncio.new_event_loop()
            with self._loops_lock:
                self._loops.append(loop)
        return loop

    def _call(self, lane: str, what: str, operation: str, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        """Run the SDK's ``operation``; return ``(data, response)`` or raise the offboard error for its failure."""
        self.throttle(lane)
        method = getattr(self._sdk(), operation)

        def attempt() -> tuple[Any, Any]:
            try:
                answer: tuple[Any, ...] = self._loop().run_until_complete(method(*args, **kwargs))
            except _Transport as exc:
                raise self._transport_error(what, exc.error) from None
            except (TypeError, ValueError, AttributeError, KeyError) as exc:  # the SDK could not read Okta's answer
                raise PermanentError(
                    f"{what}: the okta SDK failed on Okta's answer: {type(exc).__name__}: {short(str(exc))}",
                    system=self.instance,
                ) from None
            data, response, error = answer if len(answer) == 3 else (None, answer[0], answer[1])
            if error is not None:
                raise self._api_error(lane, what, error)
            return data, response

        # Reads, and the DELETEs that end all of a user's sessions or grants (a repeat finds none and
        # answers 204): the engine may send them again; suspends, unassignments and the rest are sent once.
        return self.request(attempt, lane=lane, idempotent=operation.startswith(_IDEMPOTENT_PREFIXES))

    def _transport_error(self, what: str, error: BaseException) -> ConnectorError:
        from ._tls import tls_problem

        problem = tls_problem(error, self.settings.org_url, self.settings.ca_file)
        if problem is not None:
            return PermanentError(f"{what}: {problem}", system=self.instance)
        return TransientError(f"{what}: {type(error).__name__}: {short(str(error))}", system=self.instance)

    def _api_error(self, lane: str, what: str, error: Any) -> ConnectorError:
        status = int(getattr(error, "status", 0) or 0)
        code = str(getattr(error, "error_code", "") or "")
        summary = str(getattr(error, "error_summary", "") or getattr(error, "message", "") or "")
        causes = [str(c.get("errorSummary")) for c in getattr(error, "error_causes", None) or [] if isinstance(c, dict)]
        headers = getattr(error, "headers", None) or getattr(error, "response_headers", None) or {}
        text = f"{what}: Okta said HTTP {status}" + (f" {code}" if code else "") + f": {short(summary)}"
        if causes:
            text += " (" + short("; ".join(causes)) + ")"
        if status == 429 or code == "E0000047":
            return RateLimited(text, retry_after=_reset_after(headers), lane=lane, system=self.instance, status=429)
        if status == 401 or code == "E0000011":
            return AuthError(text, system=self.instance, status=status)
        if status == 403 and code == "E0000006":
            needed = _NEEDS.get(lane, ())
            return PermissionDenied(
                f"{text}; the token's admin needs {', '.join(needed)}", permissions=needed, system=self.instance
            )
        if status == 404 or code == "E0000007":
            return NotFound(text, system=self.instance, status=status)
        if status >= 500 or status == 408:
            return TransientError(text, system=self.instance, status=status)
        return PermanentError(text, system=self.instance, status=status)

    # -- reads ------------------------------------------------------------------------------

    def _user(self, key: str) -> Any | None:
        try:
            user, _ = self._call("user_get", f"read user {key}", "get_user", key)
        except NotFound:
            return None
        return user

    def _require(self, action: Action) -> Any:
        user = self._user(action.account.id)
        if user is None:
            raise NotFound(f"user {action.account.name} ({action.account.id}) not found", system=self.instance)
        return user

    def _groups(self, user_id: str) -> list[Any]:
        # listUserGroups has no paging parameters: Okta answers with every group at once.
        groups, _ = self._call("other", f"list groups of {user_id}", "list_user_groups", user_id)
        return list(groups or [])

    def _grants(self, user_id: str) -> list[Any]:
        grants: list[Any] = []
        after: str | None = None
        while True:
            page, response = self._call(
                "user_get",
                f"list OAuth grants of {user_id}",
                "list_user_grants",
                user_id,
                after=after,
                limit=200,
            )
            grants += list(page or [])
            after = _next_after(response)
            if after is None:
                return grants

    def _last_clear(self, user_id: str, since: str | None) -> str | None:
        """When the System Log last recorded this user's sessions cleared (``user.session.clear``)."""
        found: str | None = None
        after: str | None = None
        expression = f'eventType eq "user.session.clear" and target.id eq "{user_id}"'
        while True:
            page, response = self._call(
                "logs",
                f"read the System Log for {user_id}",
                "list_log_events",
                since=since,
                filter=expression,
                after=after,
                limit=1000,
            )
            for event in page or []:
                published = _iso(getattr(event, "published", None))
                if published and (found is None or published > found):
                    found = published
            after = _next_after(response)
            if after is None or not page:
                return found

    def _removable(self, groups: list[Any]) -> list[Any]:
        # Only Okta-mastered groups take membership changes; Everyone (BUILT_IN) and APP_GROUPs do not.
        return [g for g in groups if _value(getattr(g, "type", "")) == "OKTA_GROUP"]

    # -- read side --------------------------------------------------------------------------

    def check(self) -> CheckResult:
        try:
            self._call("users", "list users", "list_users", limit=1)
        except AuthError as exc:
            return CheckResult(False, detail=str(exc), missing=getattr(exc, "permissions", ()))
        return CheckResult(
            True,
            identity=f"API token at {self.settings.org_url}",
            detail="users readable; write rights are proven on first use (Okta has no read of a token's roles)",
        )

    def discover(self, person: Person) -> list[Account]:
        explicit = mapped(person, self.settings.accounts)
        if explicit:
            user = self._user(explicit)
            return [self._account(user)] if user is not None else []
        emails = [e for e in person.emails if '"' not in e and "\\" not in e]
        if not emails:
            return []
        terms = [
            f'{attr} eq "{e}"' for e in emails for attr in ("profile.login", "profile.email", "profile.secondEmail")
        ]
        found: dict[str, Account] = {}
        after: str | None = None
        while True:
            page, response = self._call(
                "users",
                f"search users for {person.id}",
                "list_users",
                search=" or ".join(terms),
                after=after,
                limit=self.settings.page_size,
            )
            for user in page or []:
                found.setdefault(str(user.id), self._account(user))
            after = _next_after(response)
            if after is None:
                return list(found.values())

    def list_accounts(self, cursor: str | None = None) -> AccountPage:
        page, response = self._call("users", "list users", "list_users", after=cursor, limit=self.settings.page_size)
        return AccountPage(tuple(self._account(u) for u in page or []), _next_after(response))

    def verify(self, action: Action, receipt: Receipt | None = None) -> Verification:
        who = action.account.name
        kind = action.kind
        if kind in (ActionKind.DISABLE_ACCOUNT, ActionKind.DELETE_ACCOUNT):
            user = self._require(action)
            status = _value(user.status)
            wanted = {"DEPROVISIONED"} if kind is ActionKind.DELETE_ACCOUNT else _DISABLED
            return Verification(action, status in wanted, {"status": status}, f"{who}: status {status}")
        if kind is ActionKind.REMOVE_MEMBERSHIPS:
            left = sorted(_group_name(g) for g in self._removable(self._groups(action.account.id)))
            detail = f"{who}: in no Okta group" if not left else f"{who}: still in {', '.join(left)}"
            return Verification(action, not left, {"groups": left}, detail)
        if kind is ActionKind.REVOKE_APP_GRANTS:
            grants = sorted(str(getattr(g, "client_id", None) or g.id) for g in self._grants(action.account.id))
            detail = f"{who}: {len(grants)} OAuth grant(s)" + (f" ({', '.join(grants)})" if grants else "")
            apps: list[str] = []
            if self.settings.unassign_apps:
                apps = sorted(str(link.label or link.app_instance_id) for link in self._direct_apps(action.account.id))
                detail += f", {len(apps)} direct app assignment(s)" + (f" ({', '.join(apps)})" if apps else "")
            return Verification(action, not grants and not apps, {"grants": grants, "apps": apps}, detail)
        if kind is ActionKind.REVOKE_SESSIONS:
            user = self._require(action)
            last_login = _iso(getattr(user, "last_login", None))
            cleared = self._last_clear(action.account.id, last_login)
            ok = last_login is None or (cleared is not None and cleared >= last_login)
            detail = (
                f"{who}: sessions cleared at {cleared} (last sign-in {last_login or 'never'})"
                if ok
                else f"{who}: signed in at {last_login}, no session clear since"
            )
            return Verification(action, ok, {"last_login": last_login, "cleared": cleared}, detail)
        raise PermanentError(f"okta cannot verify {kind.value}", system=self.instance)

    # -- write side -------------------------------------------------------------------------

    def before_disable_account(self, action: Action) -> dict[str, Any]:
        return {"status": _value(self._require(action).status)}

    def disable_account(self, action: Action) -> Receipt:
        status = _value(self._require(action).status)
        if status in _DISABLED:
            return Receipt(action, changed=False, before={"status": status}, detail=f"already {status}")
        if status != "ACTIVE":  # Okta suspends only ACTIVE users (400 otherwise): say so before asking
            raise PermanentError(
                f"suspend {action.account.name}: Okta suspends only ACTIVE users; this one is {status}",
                system=self.instance,
            )
        self._call("user_write", f"suspend {action.account.name}", "suspend_user", action.account.id)
        return Receipt(action, changed=True, before={"status": status}, reference=action.account.id, detail="suspended")

    def undo_disable_account(self, receipt: Receipt) -> Receipt:
        action = receipt.action
        status = _value(self._require(action).status)
        wanted = str(receipt.before.get("status") or "ACTIVE")
        if status == wanted or wanted != "ACTIVE":
            return Receipt(action, changed=False, before={"status": status})
        if status != "SUSPENDED":
            raise PermanentError(
                f"unsuspend {action.account.name}: it is {status}, not SUSPENDED; Okta unsuspends only suspended users",
                system=self.instance,
            )
        self._call("user_write", f"unsuspend {action.account.name}", "unsuspend_user", action.account.id)
        return Receipt(action, changed=True, before={"status": status}, detail="unsuspended")

    def delete_account(self, action: Action) -> Receipt:
        """Deactivate: Okta deprovisions the user from every app and group. Destructive: no undo."""
        status = _value(self._require(action).status)
        if status == "DEPROVISIONED":
            return Receipt(action, changed=False, before={"status": status}, detail="already deactivated")
        self._call(
            "user_write",
            f"deactivate {action.account.name}",
            "deactivate_user",
            action.account.id,
            send_email=False,
        )
        return Receipt(
            action, changed=True, before={"status": status}, reference=action.account.id, detail="deactivated"
        )

    def revoke_sessions(self, action: Action) -> Receipt:
        current = self.verify(action)
        if current.ok:
            return Receipt(
                action, changed=False, before=dict(current.observed), detail="no session since the last clear"
            )
        self._call(
            "user_write",
            f"clear sessions of {action.account.name}",
            "revoke_user_sessions",
            action.account.id,
            oauth_tokens=self.settings.oauth_tokens,
        )
        return Receipt(action, changed=True, before=dict(current.observed), detail="sessions cleared")

    def before_remove_memberships(self, action: Action) -> dict[str, Any]:
        return {"groups": [_group_ref(g) for g in self._removable(self._groups(action.account.id))]}

    def remove_memberships(self, action: Action) -> Receipt:
        groups = self._removable(self._groups(action.account.id))
        for group in groups:
            self._call(
                "groups_id",
                f"remove {action.account.name} from {_group_name(group)}",
                "unassign_user_from_group",
                str(group.id),
                action.account.id,
            )
        return Receipt(action, changed=bool(groups), before={"groups": [_group_ref(g) for g in groups]})

    def undo_remove_memberships(self, receipt: Receipt) -> Receipt:
        action = receipt.action
        current = {str(g.id) for g in self._groups(action.account.id)}
        added = []
        for group in receipt.before.get("groups") or []:
            if group["id"] in current:
                continue
            self._call(
                "groups_id",
                f"re-add {action.account.name} to {group.get('name')}",
                "assign_user_to_group",
                group["id"],
                action.account.id,
            )
            added.append(group)
        return Receipt(
            action,
            changed=bool(added),
            before={"groups": [g for g in receipt.before.get("groups") or [] if g not in added]},
        )

    def revoke_app_grants(self, action: Action) -> Receipt:
        """Revoke every OAuth grant (consent) the person gave and, with ``unassign_apps``, remove the direct app
        assignments. Not reversible: the person would consent again, and Okta calls unassigning "a destructive
        operation" (the app may deprovision the user's account and data)."""
        grants = self._grants(action.account.id)
        if grants:
            self._call(
                "user_write",
                f"revoke OAuth grants of {action.account.name}",
                "revoke_user_grants",
                action.account.id,
            )
        apps = self._direct_apps(action.account.id) if self.settings.unassign_apps else []
        for link in apps:
            self._call(
                "apps",
                f"unassign {action.account.name} from {link.label}",
                "unassign_user_from_application",
                str(link.app_instance_id),
                action.account.id,
                send_email=False,
            )
        before = {
            "grants": [{"id": str(g.id), "client_id": str(getattr(g, "client_id", "") or "")} for g in grants],
            "apps": [{"id": str(link.app_instance_id), "label": str(link.label)} for link in apps],
        }
        return Receipt(action, changed=bool(grants or apps), before=before)

    def _direct_apps(self, user_id: str) -> list[Any]:
        """App links of the apps assigned to the user directly (scope USER); group assignments go with the group."""
        links, _ = self._call("other", f"list apps of {user_id}", "list_app_links", user_id)
        direct = []
        for link in links or []:
            try:
                assignment, _ = self._call(
                    "apps",
                    f"read app assignment of {user_id}",
                    "get_application_user",
                    str(link.app_instance_id),
                    user_id,
                )
            except NotFound:  # unassigned since the links were read
                continue
            if str(getattr(assignment, "scope", "") or "") == "USER":
                direct.append(link)
        return direct

    # -- helpers ----------------------------------------------------------------------------

    def _account(self, user: Any) -> Account:
        profile = user.profile
        login = str(getattr(profile, "login", "") or user.id)
        status = _value(user.status)
        return Account(
            system=self.instance,
            id=str(user.id),
            name=login,
            email=getattr(profile, "email", None),
            active=status not in _DISABLED,
            attributes={"status": status, "second_email": getattr(profile, "second_email", None)},
        )

    def close(self) -> None:
        self._client = None
        with self._loops_lock:
            loops, self._loops = self._loops, []
        for loop in loops:
            if not loop.is_running():  # a thread still inside a call closes nothing of its own
                loop.close()
        self._local = threading.local()


def _value(status: Any) -> str:
    return str(getattr(status, "value", status) or "")


def _group_name(group: Any) -> str:
    profile = getattr(group, "profile", None)
    return str(getattr(profile, "name", None) or group.id)


def _group_ref(group: Any) -> dict[str, str]:
    return {"id": str(group.id), "name": _group_name(group)}


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    return str(value)


def _next_after(response: Any) -> str | None:
    """The ``after`` cursor of the ``Link: <...>; rel="next"`` header, None on the last page."""
    from urllib.parse import parse_qs, urlsplit

    headers = getattr(response, "headers", None) or {}
    links = (
        headers.getall("Link", [])
        if hasattr(headers, "getall")
        else [v for k, v in headers.items() if k.lower() == "link"]
    )
    for link in links:
        for url in _NEXT.findall(link):
            after = parse_qs(urlsplit(url).query).get("after")
            if after:
                return after[0]
    return None


def _reset_after(headers: Any) -> float | None:
    """Seconds until ``X-Rate-Limit-Reset`` (epoch), measured against the answer's own ``Date``."""
    items = list(headers.items()) if hasattr(headers, "items") else []
    reset = next((str(v) for k, v in items if str(k).lower() == "x-rate-limit-reset"), None)
    if not reset:
        return None
    try:
        when = float(reset)
    except ValueError:
        return None
    dates = []
    for key, value in items:
        if str(key).lower() == "date":
            try:
                dates.append(email.utils.parsedate_to_datetime(str(value)).timestamp())
            except (TypeError, ValueError):
                continue
    now = max(dates) if dates else datetime.now(UTC).timestamp()
    return max(0.0, when - now)


@hookimpl
def register_connectors(register):
    register(OktaConnector)
