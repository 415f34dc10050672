"""Slack: deactivate through SCIM (v2, falling back to v1), reset sessions on Enterprise Grid."""

from __future__ import annotations

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

from ._http import IDEMPOTENT_METHODS, error_for, is_loopback, mapped, retry_after, short
from ._slack_handover import CHANNELS_READ, HANDOVER_LANES, PRIVATE_READ, SlackHandover

SCIM_SCOPE = "admin"
LOOKUP_SCOPE = "users:read.email"
USERS_READ = "users:read"  # users.info, for the workspace (team_id) a session listing needs
SESSION_READ = "admin.users:read"
SESSION_WRITE = "admin.users:write"
PATCH_V2 = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
CORE_V1 = "urn:scim:schemas:core:1.0"
_AUTH = {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive", "no_permission"}
_DENIED = {"not_an_admin", "not_allowed_token_type", "access_denied", "ekm_access_denied", "not_an_enterprise_admin"}
_PLAN = {"feature_not_enabled", "team_not_on_enterprise_plan", "not_an_enterprise"}
_TRANSIENT = {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"}
_MISSING = {"users_not_found", "user_not_found"}
#: Web API methods (every one a POST) that the engine may send again on their own: those that only read,
#: and admin.users.session.reset, which ends whatever sessions the user has (a repeat ends none more).
_IDEMPOTENT_WEB = frozenset(
    {
        "users.lookupByEmail",
        "users.info",
        "users.conversations",
        "admin.users.session.list",
        "admin.users.session.reset",
    }
)


class SlackConnector(SlackHandover, Connector):
    """Slack workspaces and Enterprise Grid orgs."""

    name = "slack"
    # Slack limits per method and per kind of SCIM request, so each has its own lane
    # (published limits: docs.slack.dev/reference/scim-api/rate-limits, Web API tiers).
    default_rate = None
    default_concurrency = 4
    rate_limits = {
        "scim_write": (3.0, 20),  # PUT/PATCH/DELETE /Users/<id>: 180 a minute, burst 20
        "scim_user_read": (5.0, 300),  # GET /Users/<id>: 300 a minute, burst 300
        "scim_read": (1000 / 60, 1000),  # other GETs: 1,000 a minute, burst 1,000
        "users.lookupByEmail": (50 / 60, 10),  # Tier 3
        "users.info": (100 / 60, 20),  # Tier 4
        "admin.users.session.list": (20 / 60, 5),  # Tier 2
        "admin.users.session.reset": (20 / 60, 5),  # Tier 2
        **HANDOVER_LANES,
    }
    permissions = (
        SCIM_SCOPE,
        USERS_READ,
        LOOKUP_SCOPE,
        SESSION_READ,
        SESSION_WRITE,
        CHANNELS_READ,
        PRIVATE_READ,
    )
    # Requests per action in a bulk run (docs/connectors/slack.md, "Calls per action").
    calls = {
        # GET /Users/<id> (before-state: active, groups for undo), DELETE /Users/<id>, GET to read back
        ActionKind.DISABLE_ACCOUNT: {"scim_user_read": 2, "scim_write": 1},
        # bulk: admin.users.session.reset without listing first (nothing to undo), one list to read back
        ActionKind.REVOKE_SESSIONS: {"admin.users.session.reset": 1, "admin.users.session.list": 1},
        # GET /Users/<id> (its groups), a PATCH /Groups/<id> per user group (three on average in the sandbox,
        # measured: 297 for 100 people), users.conversations for the channel note, GET to read back. It runs
        # before the disable (``ordering``), so in a bulk run it is part of the critical phase.
        ActionKind.REMOVE_MEMBERSHIPS: {"scim_user_read": 2, "scim_write": 3, "users.conversations": 1},
    }
    reads = {
        ActionKind.DISABLE_ACCOUNT: {"scim_user_read": 1},
        ActionKind.REVOKE_SESSIONS: {"admin.users.session.list": 1},
        ActionKind.REMOVE_MEMBERSHIPS: {"scim_user_read": 1},
    }
    # Slack: a deactivated member is "signed out of your workspace(s) on all devices and unable to sign back in";
    # DELETE /Users/<id> is documented as the SCIM call that deactivates (docs.slack.dev/reference/scim-api).
    implied = {
        ActionKind.REVOKE_SESSIONS: (
            ActionKind.DISABLE_ACCOUNT,
            "https://slack.com/help/articles/204475027-Deactivate-a-members-account",
        )
    }

    class Settings(ConnectorSettings):
        token: Secret = Field(description="user token (xoxp-) of an Org/Workspace Owner with the admin scope")
        api_url: str = "https://slack.com/api/"
        scim_url: str = "https://api.slack.com/scim/v2/"
        scim_v1_url: str = "https://api.slack.com/scim/v1/"
        scim_version: str = Field("auto", pattern="^(auto|v1|v2)$")
        session_reset: bool = Field(True, description="reset sessions with admin.users.session.reset (Enterprise Grid)")
        channel_note: bool = Field(
            True, description="list the channels a leaver created in remove_memberships' receipt (users.conversations)"
        )
        accounts: dict[str, str] = Field(default_factory=dict, description="person -> Slack user id")
        timeout: int = 30
        page_size: int = Field(200, ge=1, le=1000)

    settings: Settings

    def __init__(self, instance: str, settings: Any = None):
        from slack_sdk import WebClient
        from slack_sdk.scim import SCIMClient

        super().__init__(instance, settings)
        s = self.settings
        token = s.token.reveal()
        self._web = WebClient(token=token, base_url=_slash(s.api_url), timeout=s.timeout)
        self._scim = {
            "v2": SCIMClient(token=token, base_url=_slash(s.scim_url), timeout=s.timeout),
            "v1": SCIMClient(token=token, base_url=_slash(s.scim_v1_url), timeout=s.timeout),
        }
        for client, url in ((self._web, s.api_url), (self._scim["v2"], s.scim_url), (self._scim["v1"], s.scim_v1_url)):
            if is_loopback(url):
                client.proxy = None  # slack_sdk reads HTTPS_PROXY and ignores NO_PROXY
        self._version: str | None = None if s.scim_version == "auto" else s.scim_version

    # -- transport --------------------------------------------------------------

    def _api(self, method: str, what: str, scope: str, **params: Any) -> dict[str, Any]:
        from slack_sdk.errors import SlackApiError, SlackRequestError

        self.throttle(method)

        def attempt() -> dict[str, Any]:
            try:
                return getattr(self._web, method.replace(".", "_"))(**params).data
            except SlackApiError as exc:
                error = self._web_error(exc, what, scope)
                if isinstance(error, RateLimited):
                    error.lane = method
                raise error from None
            except (SlackRequestError, OSError) as exc:
                raise TransientError(f"{what}: {type(exc).__name__}: {short(str(exc))}", system=self.instance) from None

        return self.request(attempt, lane=method, idempotent=method in _IDEMPOTENT_WEB)

    def _web_error(self, exc: Any, what: str, scope: str) -> ConnectorError:
        response = exc.response
        status = getattr(response, "status_code", 200)
        data = response.data if isinstance(response.data, dict) else {}
        code = str(data.get("error") or "")
        headers = {k: v if isinstance(v, str) else ",".join(v) for k, v in (response.headers or {}).items()}
        text = f"{what}: Slack said {code or 'HTTP ' + str(status)}"
        if status == 429 or code == "ratelimited":
            return RateLimited(text, retry_after=retry_after(headers), system=self.instance, status=429)
        if code == "missing_scope":
            needed = tuple(p.strip() for p in str(data.get("needed") or scope).split(",") if p.strip())
            return PermissionDenied(
                f"{text}: missing scope {', '.join(needed)}", permissions=needed, system=self.instance
            )
        if code in _AUTH:
            return AuthError(text, system=self.instance, status=status)
        if code in _DENIED:
            return PermissionDenied(
                f"{text}: the token's user lacks {scope}", permissions=(scope,), system=self.instance
            )
        if code in _PLAN:
            return PermanentError(f"{text}: this needs Slack Enterprise Grid", system=self.instance)
        if code in _MISSING:
            return NotFound(text, system=self.instance)
        if status >= 500 or code in _TRANSIENT:
            return TransientError(text, system=self.instance, status=status)
        return PermanentError(text, system=self.instance, status=status)

    def _call_scim(self, version: str, verb: str, path: str, what: str, **kw: Any) -> dict[str, Any]:
        from slack_sdk.errors import SlackRequestError

        lane = "scim_write" if verb != "GET" else ("scim_user_read" if path.startswith("Users/") else "scim_read")
        self.throttle(lane)

        def attempt() -> dict[str, Any]:
            try:
                response = self._scim[version].api_call(http_verb=verb, path=path, **kw)
            except (SlackRequestError, OSError) as exc:
                raise TransientError(f"{what}: {type(exc).__name__}: {short(str(exc))}", system=self.instance) from None
            if 200 <= response.status_code < 300:
                return response.body if isinstance(response.body, dict) else {}
            body = response.body if isinstance(response.body, dict) else {}
            errors = body.get("Errors") or body.get("errors") or {}
            if isinstance(errors, list):
                errors = errors[0] if errors else {}
            message = (
                (errors.get("description") if isinstance(errors, dict) else None)
                or body.get("detail")
                or response.raw_body
            )
            headers = {k: v if isinstance(v, str) else ",".join(v) for k, v in (response.headers or {}).items()}
            error = error_for(
                response.status_code,
                headers,
                str(message or ""),
                system=self.instance,
                what=what,
                permissions=(SCIM_SCOPE,),
            )
            if isinstance(error, RateLimited):
                error.lane = lane
            raise error

        return self.request(attempt, lane=lane, idempotent=verb in IDEMPOTENT_METHODS)

    def _scim_version(self) -> str:
        if self._version is None:
            try:
                self._call_scim("v2", "GET", "ServiceProviderConfig", "probe SCIM v2")
                self._version = "v2"
            except (NotFound, PermanentError):
                self._version = "v1"  # no SCIM v2 here: Slack's SCIM 1.1 API
        return self._version

    def _scim_user(self, user_id: str) -> dict[str, Any] | None:
        try:
            return self._call_scim(self._scim_version(), "GET", f"Users/{user_id}", f"read user {user_id}")
        except NotFound:
            return None

    def _require(self, action: Action) -> dict[str, Any]:
        user = self._scim_user(action.account.id)
        if user is None:
            raise NotFound(f"user {action.account.name} ({action.account.id}) not found", system=self.instance)
        return user

    # -- read side ------------------------------------------------------------

    def check(self) -> CheckResult:
        from slack_sdk.errors import SlackApiError

        try:
            answer = self._web.auth_test()
        except SlackApiError as exc:
            error = self._web_error(exc, "auth.test", SCIM_SCOPE)
            if isinstance(error, AuthError):
                return CheckResult(False, detail=str(error), missing=getattr(error, "permissions", ()))
            raise error from None
        identity = f"{answer.get('user')} in {answer.get('team')}"
        header = next((v for k, v in (answer.headers or {}).items() if k.lower() == "x-oauth-scopes"), None)
        needed = [SCIM_SCOPE, USERS_READ, LOOKUP_SCOPE]
        needed += [SESSION_READ, SESSION_WRITE] if self.settings.session_reset else []
        if header is None:
            return CheckResult(True, identity=identity, detail="Slack sent no x-oauth-scopes header; scopes not listed")
        granted = {p.strip() for p in (header if isinstance(header, str) else ",".join(header)).split(",")}
        missing = tuple(p for p in needed if p not in granted)
        detail = ("missing scopes: " + ", ".join(missing)) if missing else "all scopes granted"
        unlisted = [p for p in (CHANNELS_READ, PRIVATE_READ) if p not in granted and self.settings.channel_note]
        if unlisted:  # only the channel note of remove_memberships reads channels
            detail += "; without " + ", ".join(unlisted) + " the channels a leaver created are not listed"
        return CheckResult(not missing, identity=identity, missing=missing, detail=detail)

    def discover(self, person: Person) -> list[Account]:
        explicit = mapped(person, self.settings.accounts)
        if explicit:
            user = self._scim_user(explicit)
            return [self._account(user)] if user else []
        found: dict[str, Account] = {}
        for email in person.emails:
            try:
                answer = self._api("users.lookupByEmail", "look up user by email", LOOKUP_SCOPE, email=email)
            except NotFound:
                continue
            user = answer.get("user") or {}
            if user.get("id") and not user.get("is_bot"):
                found.setdefault(
                    user["id"],
                    Account(
                        system=self.instance,
                        id=user["id"],
                        name=(user.get("profile") or {}).get("email") or email,
                        email=email,
                        active=not user.get("deleted"),
                        admin=bool(user.get("is_admin") or user.get("is_owner")),
                        attributes={"handle": user.get("name"), "team_id": user.get("team_id")},
                    ),
                )
        return list(found.values())

    def list_accounts(self, cursor: str | None = None) -> AccountPage:
        start = int(cursor or 1)
        body = self._call_scim(
            self._scim_version(),
            "GET",
            "Users",
            "list users",
            query_params={"startIndex": start, "count": self.settings.page_size},
        )
        users = body.get("Resources") or []
        following = start + len(users)
        total = int(body.get("totalResults") or 0)
        return AccountPage(
            tuple(self._account(u) for u in users), str(following) if users and following <= total else None
        )

    def verify(self, action: Action, receipt: Receipt | None = None) -> Verification:
        who = action.account.name
        if action.kind is ActionKind.DISABLE_ACCOUNT:
            user = self._require(action)
            active = bool(user.get("active", True))
            return Verification(
                action, not active, {"active": active}, f"{who}: {'still active' if active else 'deactivated'}"
            )
        if action.kind is ActionKind.REVOKE_SESSIONS:
            sessions = self._sessions(action)
            return Verification(
                action, not sessions, {"active_sessions": len(sessions)}, f"{who}: {len(sessions)} active session(s)"
            )
        if action.kind is ActionKind.REMOVE_MEMBERSHIPS:
            return self.verify_memberships(action)
        raise PermanentError(f"slack cannot verify {action.kind.value}", system=self.instance)

    # -- write side -----------------------------------------------------------

    def disable_account(self, action: Action) -> Receipt:
        user = self._require(action)
        if not user.get("active", True):
            self.keep_before(action, {"active": False})
            return Receipt(action, changed=False, before={"active": False}, detail="already deactivated")
        # Slack drops a deactivated user from every user group: keep them so undo can put them back.
        groups = [
            {"value": g.get("value"), "display": g.get("display")} for g in user.get("groups") or [] if g.get("value")
        ]
        self.keep_before(action, {"active": True, "groups": groups})
        self._set_active(action, False)
        return Receipt(
            action,
            changed=True,
            before={"active": True, "groups": groups},
            reference=action.account.id,
            detail=f"deactivated through SCIM {self._scim_version()}",
        )

    def undo_disable_account(self, receipt: Receipt) -> Receipt:
        user = self._require(receipt.action)
        wanted = bool(receipt.before.get("active", True))
        if bool(user.get("active", True)) == wanted:
            return Receipt(receipt.action, changed=False, before={"active": wanted})
        self._set_active(receipt.action, wanted)
        version = self._scim_version()
        current = {g.get("value") for g in (self._require(receipt.action).get("groups") or [])}
        for group in receipt.before.get("groups") or []:
            if group["value"] in current:
                continue
            member = [{"value": receipt.action.account.id}]
            body = (
                {"schemas": [PATCH_V2], "Operations": [{"op": "add", "path": "members", "value": member}]}
                if version == "v2"
                else {"schemas": [CORE_V1], "members": member}
            )
            self._call_scim(
                version, "PATCH", f"Groups/{group['value']}", f"re-add to {group.get('display')}", body_params=body
            )
        return Receipt(receipt.action, changed=True, before={"active": not wanted})

    def revoke_sessions(self, action: Action) -> Receipt:
        if action.params.get("bulk"):  # one Tier 2 call, not two: the count before is detail, not undo state
            self._reset(action)
            return Receipt(action, changed=True, before={}, detail="sessions reset (bulk: not listed first)")
        sessions = self._sessions(action)
        if not sessions:
            return Receipt(action, changed=False, before={"active_sessions": 0}, detail="no active sessions")
        self._reset(action)
        return Receipt(action, changed=True, before={"active_sessions": len(sessions)})

    def _reset(self, action: Action) -> None:
        if not self.settings.session_reset:
            raise PermanentError(
                "session reset is turned off (session_reset: false; it needs Enterprise Grid)", system=self.instance
            )
        self._api(
            "admin.users.session.reset",
            f"reset sessions of {action.account.name}",
            SESSION_WRITE,
            user_id=action.account.id,
        )

    # -- helpers --------------------------------------------------------------

    def _sessions(self, action: Action) -> list[dict[str, Any]]:
        if not self.settings.session_reset:
            raise PermanentError(
                "session reset is turned off (session_reset: false; it needs Enterprise Grid)", system=self.instance
            )
        # Slack: user_id and team_id "must be used together"; the list is cursor-paginated.
        team = self._team_id(action)
        sessions: list[dict[str, Any]] = []
        cursor = ""
        while True:
            params: dict[str, Any] = {"user_id": action.account.id, "team_id": team, "limit": 1000}
            if cursor:
                params["cursor"] = cursor
            answer = self._api(
                "admin.users.session.list", f"list sessions of {action.account.name}", SESSION_READ, **params
            )
            sessions += list(answer.get("active_sessions") or [])
            cursor = str((answer.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                return sessions

    def _team_id(self, action: Action) -> str:
        team = action.account.attributes.get("team_id")
        if team:
            return str(team)
        answer = self._api("users.info", f"read workspace of {action.account.name}", USERS_READ, user=action.account.id)
        team = (answer.get("user") or {}).get("team_id")
        if not team:
            raise PermanentError(f"Slack gave no workspace (team_id) for {action.account.name}", system=self.instance)
        return str(team)

    def _set_active(self, action: Action, active: bool) -> None:
        version = self._scim_version()
        verb = "reactivate" if active else "deactivate"
        what = f"{verb} {action.account.name}"
        if not active:
            # Slack documents DELETE /Users/<id> as the call that deactivates a user (v1 and v2).
            self._call_scim(version, "DELETE", f"Users/{action.account.id}", what)
            return
        if version == "v2":
            body = {"schemas": [PATCH_V2], "Operations": [{"op": "replace", "path": "active", "value": True}]}
        else:
            body = {"schemas": [CORE_V1], "active": True}
        self._call_scim(version, "PATCH", f"Users/{action.account.id}", what, body_params=body)

    def _account(self, user: dict[str, Any]) -> Account:
        emails = user.get("emails") or []
        primary = next((e for e in emails if e.get("primary")), emails[0] if emails else {})
        return Account(
            system=self.instance,
            id=user["id"],
            name=primary.get("value") or user.get("userName") or user["id"],
            email=primary.get("value"),
            active=bool(user.get("active", True)),
            attributes={"handle": user.get("userName")},
        )


def _slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


@hookimpl
def register_connectors(register):
    register(SlackConnector)
