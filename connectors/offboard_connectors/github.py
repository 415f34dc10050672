"""GitHub organizations: remove members and outside collaborators, revoke SAML SSO credentials, EMU suspend."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pydantic import Field, model_validator

from offboard import (
    Account,
    AccountPage,
    Action,
    ActionKind,
    CheckResult,
    Connector,
    ConnectorSettings,
    Leftover,
    Person,
    Receipt,
    Secret,
    Verification,
    hookimpl,
)
from offboard.errors import AuthError, ConfigError, NotFound, PermanentError, PermissionDenied, RateLimited

from ._github_commits import commit_emails_of, login_by_commit_email
from ._github_ids import all_external_identities, verified_domain_emails
from ._github_residual import (
    InvitationDesk,
    Invitations,
    invitation_accounts,
    is_invitation,
    listed_invitations,
    pages,
    pending_invitations,
)
from ._http import IDEMPOTENT_METHODS, error_for, escape_filter, make_client, mapped, retry_after, send, short

if TYPE_CHECKING:
    import httpx

ORG = "admin:org"
ENTERPRISE = "admin:enterprise"  # enterprise SAML, Copilot seats, enterprise membership (not SCIM)
SCIM = "scim:enterprise"  # the EMU SCIM API; admin:enterprise does not include it
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
VERIFIED_EMAILS_TTL = 300.0  # seconds discover reuses members' verified-domain emails (organizations without SAML)
_EXTERNAL_IDENTITY = """
query($org: String!, $email: String!) {
  organization(login: $org) {
    samlIdentityProvider {
      externalIdentities(first: 5, userName: $email) {
        nodes { samlIdentity { nameId username } user { login } }
      }
    }
  }
}"""
_ENTERPRISE_IDENTITY = """
query($enterprise: String!, $email: String!) {
  enterprise(slug: $enterprise) {
    ownerInfo {
      samlIdentityProvider {
        externalIdentities(first: 5, userName: $email) {
          nodes { samlIdentity { nameId username } user { login } }
        }
      }
    }
  }
}"""
_ENTERPRISE_MEMBER = """
query($enterprise: String!, $login: String!) {
  enterprise(slug: $enterprise) {
    id
    members(first: 10, query: $login) {
      nodes {
        ... on User { id login }
        ... on EnterpriseUserAccount { id login user { id login } }
      }
    }
  }
}"""
_REMOVE_ENTERPRISE_MEMBER = """
mutation($enterpriseId: ID!, $userId: ID!) {
  removeEnterpriseMember(input: {enterpriseId: $enterpriseId, userId: $userId}) {
    clientMutationId
  }
}"""


class GitHubConnector(Connector):
    """A GitHub organization (classic or SAML SSO), or an Enterprise Managed Users enterprise."""

    name = "github"
    default_rate = None  # no bucket per call: each request takes a token of its resource's lane
    default_concurrency = 4
    # GitHub meters each resource in its own fixed hourly window (x-ratelimit-resource): a personal access token
    # gets 5,000 REST ("core") requests and 5,000 GraphQL points an hour (a lookup costs one); GitHub asks for no
    # more than 1,000 EMU SCIM provisioning changes an hour. One token per request, not per call: a call that
    # pages or reads back sends several, and at a token per call a 10,000-person run spent an hour's 5,000 core
    # requests in under five minutes, then waited out the window (403, x-ratelimit-remaining 0). The bursts cover a
    # few people's requests at once (one person takes about 13), and are small enough that where GitHub's window
    # ends before the bucket's, what is sent past the quota waits at most burst / rate, 72 s, for the reset.
    rate_limits = {
        "core": (5000 / 3600, 100),
        "graphql": (5000 / 3600, 100),
        "scim": (1000 / 3600, 20),
    }
    # Requests per action in a bulk run (before-state read, apply, read-back), for the ETA ``offboard plan``
    # prints, measured against the sandbox's company (organization mode, SAML SSO, accounts from the inventory).
    calls = {
        ActionKind.REVOKE_TOKENS: {"core": 4.1},  # credential authorizations listed (by login), each revoked; list
        ActionKind.DISABLE_ACCOUNT: {"core": 4},  # membership read, the removal; membership, collaborators
        ActionKind.REMOVE_MEMBERSHIPS: {"core": 4},  # membership and collaborators; the same to read back
    }
    reads = {
        ActionKind.REVOKE_TOKENS: {"core": 1},
        ActionKind.DISABLE_ACCOUNT: {"core": 2},
        ActionKind.REMOVE_MEMBERSHIPS: {"core": 2},
    }
    permissions = (ORG, ENTERPRISE, SCIM)

    class Settings(ConnectorSettings):
        org: str
        token: Secret
        api_url: str = "https://api.github.com"
        graphql_url: str | None = Field(
            None, description="default: {api_url}/graphql; on GitHub Enterprise Server https://HOST/api/graphql"
        )
        enterprise: str | None = None
        emu: bool = Field(False, description="Enterprise Managed Users: disable means SCIM suspend")
        saml_lookup: bool = True
        logins_file: str | None = Field(None, description="YAML mapping of person (email or id) to GitHub login")
        accounts: dict[str, str] = Field(default_factory=dict, description="person -> login")
        commit_emails: bool = Field(
            False,
            description="also link logins to people by the author email of commits GitHub linked to them in the "
            "organization's repositories (commit search: 30 requests a minute; needs repo read access)",
        )
        timeout: float = 30.0
        ca_file: str | None = None
        page_size: int = Field(100, ge=1, le=100, description="list_accounts page size (GitHub's maximum: 100)")

        @model_validator(mode="after")
        def _emu_needs_enterprise(self) -> GitHubConnector.Settings:
            if self.emu and not self.enterprise:
                raise ValueError("emu: true needs enterprise (the enterprise slug)")
            return self

    settings: Settings

    def __init__(self, instance: str, settings: Any = None):
        super().__init__(instance, settings)
        s = self.settings
        self._client = make_client(
            s.api_url.rstrip("/") + "/",
            token=s.token.reveal(),
            timeout=s.timeout,
            ca_file=s.ca_file,
            headers={"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"},
        )
        self._logins = dict(s.accounts)
        if s.logins_file:
            self._logins.update(_load_logins(s.logins_file, instance))
        self._org = quote(s.org, safe="")
        self._scim = f"scim/v2/enterprises/{quote(s.enterprise or '', safe='')}/Users"
        self._enterprise = quote(s.enterprise or "", safe="")
        self._identities: dict[str, dict[str, Any]] | None = None  # login (lower) -> who, for list_accounts
        self._without_saml = False  # the last SAML lookup found no identity provider at all
        self._verified: tuple[float, dict[str, str]] | None = None  # (read at, verified email -> login)
        self._identity_error: str | None = None
        self._invitations = Invitations(self._call, s.org)
        self._invitation_desk = InvitationDesk(self._call, self._invitations, s.org, self.keep_before)

    @property
    def graphql_url(self) -> str:
        """GraphQL endpoint: api.github.com/graphql, or https://HOST/api/graphql on GitHub Enterprise Server
        (whose REST root is https://HOST/api/v3)."""
        if self.settings.graphql_url:
            return self.settings.graphql_url
        api = self.settings.api_url.rstrip("/")
        if api.endswith("/api/v3"):
            return api[: -len("/v3")] + "/graphql"
        return api + "/graphql"

    def close(self) -> None:
        self._client.close()

    # -- HTTP -------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        what: str,
        scope: str = ORG,
        ok: tuple[int, ...] = (),
        idempotent: bool | None = None,
        **kw: Any,
    ) -> httpx.Response:
        """One request; the engine retries it on its own when it is idempotent (GET, PUT, DELETE unless
        the caller says otherwise)."""
        lane = _lane(path, self.graphql_url)
        self.throttle(lane)

        def attempt() -> httpx.Response:
            response = send(self._client, method, path, system=self.instance, what=what, **kw)
            if response.is_success or response.status_code in ok:
                return response
            status, headers = response.status_code, response.headers
            try:
                body = response.json()
            except ValueError:
                body = {}
            message = (
                str((body or {}).get("detail") or (body or {}).get("message") or response.text)
                if isinstance(body, dict)
                else response.text
            )
            limited = (
                headers.get("x-ratelimit-remaining") == "0"
                or "retry-after" in headers
                or "rate limit" in message.lower()
            )
            if status in (403, 429) and limited:
                wait = retry_after(headers)
                # Secondary limits may come without headers: GitHub asks for at least a minute then.
                return_wait = wait if wait is not None else 60.0
                raise RateLimited(
                    f"{what}: {short(message)}", retry_after=return_wait, system=self.instance, status=status
                )
            if status == 403:
                accepted = headers.get("x-accepted-oauth-scopes") or scope
                scopes = tuple(p.strip() for p in accepted.split(",") if p.strip()) or (scope,)
                raise error_for(403, headers, message, system=self.instance, what=what, permissions=scopes)
            raise error_for(status, headers, message, system=self.instance, what=what, permissions=(scope,))

        return self.request(
            attempt, lane=lane, idempotent=method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        )

    # -- read side ------------------------------------------------------------

    def check(self) -> CheckResult:
        try:
            response = self._call("GET", f"orgs/{self._org}", "read organization")
        except AuthError as exc:
            return CheckResult(
                False, identity=self.settings.org, missing=getattr(exc, "permissions", ()), detail=str(exc)
            )
        s = self.settings
        # EMU: SCIM is the lever (scim:enterprise); otherwise an enterprise needs admin:enterprise.
        needed = [ORG] + ([SCIM] if s.emu else [ENTERPRISE] if s.enterprise else [])
        header = response.headers.get("x-oauth-scopes")
        if header is None:  # fine-grained tokens and GitHub Apps send no scope header
            return CheckResult(True, identity=self.settings.org, detail="no x-oauth-scopes header; scopes not listed")
        granted = {p.strip() for p in header.split(",")}
        missing = tuple(p for p in needed if p not in granted)
        return CheckResult(
            not missing,
            identity=self.settings.org,
            missing=missing,
            detail="missing token scopes: " + ", ".join(missing) if missing else "all scopes granted",
        )

    def discover(self, person: Person) -> list[Account]:
        if self.settings.emu:
            return self._discover_emu(person)
        login = mapped(person, self._logins)
        if not login and self.settings.saml_lookup:
            login = self._saml_login(person)
            if not login and self._without_saml:  # as the listing does: members' verified-domain emails
                login = self._verified_login(person)
        if not login and self.settings.commit_emails:
            login = login_by_commit_email(self._call, self.settings.org, person.emails)
        account = self._member(login) if login else None
        # Email invitations to the person's mailboxes: accepting one makes them a member again.
        return ([account] if account else []) + invitation_accounts(self._invitations, self.instance, person)

    def list_accounts(self, cursor: str | None = None) -> AccountPage:
        """Members page by page, then outside collaborators (cursor ``c<page>``): both hold access; then the
        email invitations (cursor ``i``): accepting one makes its addressee a member."""
        size = self.settings.page_size
        if cursor == "i":
            return AccountPage(tuple(listed_invitations(self._invitations, self.instance)), None)
        if cursor and cursor.startswith("c"):
            page = int(cursor[1:])
            people = self._call(
                "GET",
                f"orgs/{self._org}/outside_collaborators",
                "list outside collaborators",
                params={"per_page": size, "page": page},
            ).json()
            accounts = tuple(self._listed(c["login"], "outside_collaborator") for c in people)
            return AccountPage(accounts, f"c{page + 1}" if len(people) == size else "i")
        page = int(cursor or 1)
        if not self.settings.emu and (cursor is None or self._identities is None):
            self._identities = self._read_identities()  # once per listing, in bulk: who each login is
        if self.settings.emu:  # the cursor is the SCIM startIndex: the server may answer fewer than asked
            start = page
            body = self._call(
                "GET", self._scim, "list SCIM users", SCIM, params={"startIndex": start, "count": size}
            ).json()
            users = body.get("Resources") or []
            accounts = tuple(self._emu_account(u) for u in users)
            following = start + len(users)
            more = following <= int(body.get("totalResults") or 0)
            return AccountPage(accounts, str(following) if accounts and more else None)
        else:
            members = self._call(
                "GET", f"orgs/{self._org}/members", "list members", params={"per_page": size, "page": page}
            ).json()
            accounts = tuple(self._listed(m["login"], "member") for m in members)
            if len(members) < size:
                return AccountPage(accounts, "c1")
            return AccountPage(accounts, str(page + 1))

    def verify(self, action: Action, receipt: Receipt | None = None) -> Verification:
        if is_invitation(action.account):
            return self._invitation_desk.verify(action)
        who = action.account.name
        if action.kind is ActionKind.DISABLE_ACCOUNT:
            if _is_emu(action.account):
                user = self._emu_user(action.account.id)
                active = bool(user and user.get("active", True))
                return Verification(
                    action, not active, {"active": active}, f"{who}: {'still active' if active else 'suspended'}"
                )
            state = self._access(action.account)
            return Verification(
                action, state is None, {"access": state}, f"{who}: {state or 'no access to the organization'}"
            )
        if action.kind is ActionKind.REVOKE_TOKENS:
            creds = self._credentials(action.account)
            return Verification(
                action,
                not creds,
                {"credentials": len(creds)},
                f"{who}: {len(creds)} SAML-authorized credential(s) left",
            )
        if action.kind is ActionKind.REMOVE_LICENSES:
            seat = self._copilot_seat(action.account)
            held = _seat_held(seat)
            return Verification(
                action,
                not held,
                {"copilot_seat": held, "pending_cancellation_date": (seat or {}).get("pending_cancellation_date")},
                f"{who}: {'holds a Copilot seat' if held else 'no Copilot seat (or pending cancellation)'}",
            )
        if action.kind is ActionKind.REMOVE_MEMBERSHIPS and not self.settings.enterprise:
            state = self._access(action.account)
            return Verification(
                action, state is None, {"access": state}, f"{who}: {state or 'no access to the organization'}"
            )
        if action.kind is ActionKind.REMOVE_MEMBERSHIPS:
            _, user_id = self._enterprise_member(action.account)
            return Verification(
                action,
                user_id is None,
                {"enterprise_member": user_id is not None},
                f"{who}: {'still' if user_id else 'no longer'} a member of enterprise {self.settings.enterprise}",
            )
        raise PermanentError(f"github cannot verify {action.kind.value}", system=self.instance)

    def residual(self, person: Person, accounts: list[Account]) -> list[Leftover]:
        """Pending invitations to the organization for the person's mailboxes or mapped login
        (``_github_residual``); an Enterprise Managed Users enterprise invites nobody (SCIM provisions)."""
        if self.settings.emu:
            return []
        login = mapped(person, self._logins)
        return pending_invitations(self._invitations, self.instance, self.settings.org, person, accounts, {login or ""})

    # -- write side -----------------------------------------------------------

    def apply(self, action: Action) -> Receipt:
        if is_invitation(action.account):  # an email invitation: cancelled, nothing else to act on
            return self._invitation_desk.apply(action)
        return super().apply(action)

    def read_before(self, action: Action) -> dict[str, Any] | None:
        if is_invitation(action.account):
            return self._invitation_desk.read_before(action)
        return super().read_before(action)

    def undo(self, receipt: Receipt) -> Receipt:
        if is_invitation(receipt.action.account):
            return self._invitation_desk.undo(receipt)
        return super().undo(receipt)

    def disable_account(self, action: Action) -> Receipt:
        account, who = action.account, action.account.name
        if _is_emu(account):
            user = self._emu_user(account.id)
            if user is None:
                raise NotFound(f"SCIM user {who} not found", system=self.instance)
            self.keep_before(action, {"active": bool(user.get("active", True))})
            if not user.get("active", True):
                return Receipt(action, changed=False, before={"active": False}, detail="already suspended")
            self._emu_set_active(account, False)
            return Receipt(action, changed=True, before={"active": True}, reference=account.id)
        state, membership = self._reach(account)
        if state is None:
            self.keep_before(action, {})
            return Receipt(action, changed=False, before={}, detail="no access left in the organization")
        login = quote(account.id, safe="")
        if membership is None:  # an outside collaborator
            self.keep_before(action, {"kind": "outside_collaborator"})
            self._call(
                "DELETE", f"orgs/{self._org}/outside_collaborators/{login}", f"remove outside collaborator {who}"
            )
            return Receipt(action, changed=True, before={"kind": "outside_collaborator"})
        # the membership ``_reach`` read is the before-state (reading it again cost a request per person)
        before = {"kind": "member", "role": membership.get("role"), "state": membership.get("state")}
        self.keep_before(action, before)
        # 404: not a member (any more): a resent removal whose first answer was lost, the membership already gone
        self._call(
            "DELETE", f"orgs/{self._org}/memberships/{login}", f"remove {who} from {self.settings.org}", ok=(404,)
        )
        return Receipt(action, changed=True, before=before, detail=f"removed {membership.get('state')} membership")

    def undo_disable_account(self, receipt: Receipt) -> Receipt:
        account, before = receipt.action.account, receipt.before
        if _is_emu(account):
            user = self._emu_user(account.id)
            if user is None:
                raise NotFound(f"SCIM user {account.name} not found", system=self.instance)
            if bool(user.get("active", True)) == bool(before.get("active", True)):
                return Receipt(receipt.action, changed=False, before={"active": before.get("active", True)})
            self._emu_set_active(account, bool(before.get("active", True)))
            return Receipt(receipt.action, changed=True, before={"active": bool(user.get("active", True))})
        if before.get("kind") != "member":
            raise PermanentError(
                f"{account.name}: outside-collaborator access cannot be restored automatically; "
                "re-add them to each repository",
                system=self.instance,
            )
        if self._access(account) is not None:
            return Receipt(receipt.action, changed=False, detail="already has access")
        role = "admin" if before.get("role") == "admin" else "member"
        self._call(
            "PUT",
            f"orgs/{self._org}/memberships/{quote(account.id, safe='')}",
            f"re-invite {account.name}",
            json={"role": role},
        )
        return Receipt(
            receipt.action,
            changed=True,
            pending=True,
            before={},
            detail=f"invited back as {role}; access returns when {account.name} accepts (teams are not restored)",
        )

    def revoke_tokens(self, action: Action) -> Receipt:
        creds = self._credentials(action.account)
        for cred in creds:
            self._call(
                "DELETE",
                f"orgs/{self._org}/credential-authorizations/{cred['credential_id']}",
                f"revoke SAML authorization of {action.account.name}",
                ok=(404,),
            )
        before = {
            "credentials": [
                {k: c.get(k) for k in ("credential_id", "credential_type", "token_last_eight", "fingerprint")}
                for c in creds
            ]
        }
        return Receipt(
            action, changed=bool(creds), before=before, detail=f"revoked {len(creds)} SAML-authorized credential(s)"
        )

    def remove_licenses(self, action: Action) -> Receipt:
        """Cancel the person's Copilot seat (enterprise-level when ``enterprise`` is set, else the org's).
        GitHub sets it to "pending cancellation": access ends at the end of the billing cycle."""
        self._not_emu(action)
        seat = self._copilot_seat(action.account)
        if not _seat_held(seat):
            detail = "no Copilot seat" if seat is None else "Copilot seat already pending cancellation"
            return Receipt(action, changed=False, before={"copilot_seat": False}, detail=detail)
        login = _login(action.account)
        self._call(
            "DELETE",
            f"{self._copilot_base()}/copilot/billing/selected_users",
            f"cancel the Copilot seat of {action.account.name}",
            self._copilot_scope(),
            json={"selected_usernames": [login]},
        )
        return Receipt(
            action,
            changed=True,
            before={"copilot_seat": True, "plan_type": (seat or {}).get("plan_type")},
            detail="Copilot seat set to pending cancellation (ends with the billing cycle)",
        )

    def undo_remove_licenses(self, receipt: Receipt) -> Receipt:
        if not receipt.before.get("copilot_seat"):
            return Receipt(receipt.action, changed=False)
        self._call(
            "POST",
            f"{self._copilot_base()}/copilot/billing/selected_users",
            f"assign a Copilot seat to {receipt.action.account.name}",
            self._copilot_scope(),
            json={"selected_usernames": [_login(receipt.action.account)]},
        )
        return Receipt(receipt.action, changed=True, before={"copilot_seat": False})

    def is_destructive(self, kind: ActionKind) -> bool:
        """Removal from the enterprise has no undo (re-invite to its organizations); without ``enterprise:``
        remove_memberships changes nothing, so it is destructive only where an enterprise is configured."""
        if kind is ActionKind.REMOVE_MEMBERSHIPS:
            return bool(self.settings.enterprise)
        return super().is_destructive(kind)

    def remove_memberships(self, action: Action) -> Receipt:
        """Remove the user from the enterprise (GraphQL ``removeEnterpriseMember``: every organization of
        it, and the enterprise's seat), for users removed from every org who stay enterprise members.
        Without ``enterprise:`` the organization is the only membership, which disable_account removes."""
        self._not_emu(action)
        if not self.settings.enterprise:
            state = self._access(action.account)
            if state is None:
                return Receipt(action, changed=False, detail="no organization access; no enterprise configured")
            raise PermanentError(
                f"{action.account.name}: still {state} of {self.settings.org}; remove_memberships removes enterprise "
                "membership (set enterprise:), disable_account removes organization membership: put it first",
                system=self.instance,
            )
        enterprise_id, user_id = self._enterprise_member(action.account)
        if user_id is None:
            return Receipt(
                action, changed=False, before={"enterprise_member": False}, detail="not an enterprise member"
            )
        self._graphql(
            _REMOVE_ENTERPRISE_MEMBER,
            {"enterpriseId": enterprise_id, "userId": user_id},
            f"remove {action.account.name} from enterprise {self.settings.enterprise}",
            ENTERPRISE,
        )
        return Receipt(
            action,
            changed=True,
            before={"enterprise_member": True},
            detail=f"removed from enterprise {self.settings.enterprise} (no undo: re-invite to its organizations)",
        )

    # -- helpers --------------------------------------------------------------

    def _not_emu(self, action: Action) -> None:
        if _is_emu(action.account):
            raise PermanentError(
                f"{action.account.name}: under Enterprise Managed Users, {action.kind.value} is not offered: "
                "suspend with disable_account (SCIM); the identity provider manages membership and Copilot access",
                system=self.instance,
            )

    def _copilot_base(self) -> str:
        return f"enterprises/{self._enterprise}" if self.settings.enterprise else f"orgs/{self._org}"

    def _copilot_scope(self) -> str:
        return ENTERPRISE if self.settings.enterprise else ORG

    def _copilot_seat(self, account: Account) -> dict[str, Any] | None:
        login = quote(_login(account), safe="")
        response = self._call(
            "GET",
            f"{self._copilot_base()}/members/{login}/copilot",
            f"read the Copilot seat of {account.name}",
            self._copilot_scope(),
            ok=(404, 422),  # 404: no seat; 422: not a member of the organization
        )
        return None if response.status_code in (404, 422) else response.json()

    def _enterprise_member(self, account: Account) -> tuple[str, str | None]:
        """(the enterprise's node id, the user's node id or None when not an enterprise member)."""
        if not self.settings.enterprise:
            raise PermanentError(
                "removing enterprise membership needs enterprise: (the enterprise slug)", system=self.instance
            )
        login = _login(account)
        data = self._graphql(
            _ENTERPRISE_MEMBER,
            {"enterprise": self.settings.enterprise, "login": login},
            f"read enterprise membership of {account.name}",
            ENTERPRISE,
        )
        enterprise = data.get("enterprise")
        if not enterprise:
            raise NotFound(f"enterprise {self.settings.enterprise} not found", system=self.instance)
        for node in (enterprise.get("members") or {}).get("nodes") or []:
            user = node.get("user") or node
            if str(user.get("login") or "").lower() == login.lower():
                return enterprise["id"], user.get("id")
        return enterprise["id"], None

    def _graphql(self, query: str, variables: dict[str, Any], what: str, scope: str = ORG) -> dict[str, Any]:
        reads = query.lstrip().startswith(("query", "{"))  # a query only reads; a mutation is not sent twice
        body = self._call(
            "POST", self.graphql_url, what, scope, idempotent=reads, json={"query": query, "variables": variables}
        ).json()
        errors = [e for e in body.get("errors") or [] if e.get("type") != "NOT_FOUND"]
        if errors and not any((body.get("data") or {}).values()):
            message = "; ".join(str(e.get("message")) for e in errors)
            if any(e.get("type") in ("FORBIDDEN", "INSUFFICIENT_SCOPES") for e in errors):
                raise PermissionDenied(f"{what}: {short(message)}", permissions=(scope,), system=self.instance)
            raise PermanentError(f"{what} failed: {short(message)}", system=self.instance)
        return body.get("data") or {}

    def _saml_login(self, person: Person) -> str | None:
        """The login linked to one of the person's emails by SAML SSO: the organization's identity
        provider, or the enterprise's (``Enterprise.ownerInfo.samlIdentityProvider``) when SAML is
        configured at the enterprise level, where the organization has none."""
        for email in person.emails:
            data = self._graphql(
                _EXTERNAL_IDENTITY, {"org": self.settings.org, "email": email}, "look up SAML identity"
            )
            provider = (data.get("organization") or {}).get("samlIdentityProvider")
            if provider is None and self.settings.enterprise:
                data = self._graphql(
                    _ENTERPRISE_IDENTITY,
                    {"enterprise": self.settings.enterprise, "email": email},
                    "look up enterprise SAML identity",
                    ENTERPRISE,
                )
                provider = ((data.get("enterprise") or {}).get("ownerInfo") or {}).get("samlIdentityProvider")
            self._without_saml = provider is None
            for node in ((provider or {}).get("externalIdentities") or {}).get("nodes") or []:
                if node.get("user") and node["user"].get("login"):
                    return node["user"]["login"]
        return None

    def _verified_login(self, person: Person) -> str | None:
        """The member with one of the person's emails among their organization-verified-domain emails (read in
        bulk, 100 members a request, and kept for ``VERIFIED_EMAILS_TTL`` seconds for the next people)."""
        now = time.monotonic()
        if self._verified is None or now - self._verified[0] > VERIFIED_EMAILS_TTL:
            found: dict[str, dict[str, Any]] = {}
            verified_domain_emails(self._graphql, self.settings.org, found)
            by_email = {e.lower(): login for login, who in found.items() for e in who["emails"]}
            self._verified = (now, by_email)
        return next((self._verified[1][e] for e in person.emails if e in self._verified[1]), None)

    def _listed(self, login: str, kind: str) -> Account:
        """A listed login with what identifies its person (email, SAML NameID), so the inventory can correlate it."""
        attributes: dict[str, Any] = {"kind": kind}
        who = (self._identities or {}).get(login.lower())
        if who is None and self.settings.commit_emails:  # what discover finds by a person's email, from this side
            emails = commit_emails_of(self._call, self.settings.org, login)
            who = {"email": emails[0], "emails": emails, "identified_by": "commit_email"} if emails else None
        if who:
            attributes.update({k: v for k, v in who.items() if k != "email"})
        elif self._identity_error:
            attributes["correlation"] = self._identity_error
        return Account(self.instance, login, login, email=(who or {}).get("email"), attributes=attributes)

    def _read_identities(self) -> dict[str, dict[str, Any]]:
        """login (lower) -> {email, emails, saml_name_id, identified_by} for every login GitHub links to a person,
        read in bulk (100 a request): the SAML external identities of the organization's identity provider, or of
        the enterprise's when SAML is configured there; without SAML, members' verified-domain emails."""
        self._identity_error = None
        out: dict[str, dict[str, Any]] = {}
        if not self.settings.saml_lookup:
            self._identity_error = "saml_lookup is off: map logins with accounts: or logins_file"
        else:
            try:
                if not all_external_identities(self._graphql, self.settings.org, self.settings.enterprise, out):
                    verified_domain_emails(self._graphql, self.settings.org, out)
            except PermissionDenied as exc:
                # The listing still holds: the accounts go uncorrelated and sweeps say so (docs/connectors/github.md).
                self._identity_error = f"cannot read who the logins are: {exc}"
        # An admin's mapping (``accounts:``, ``logins_file``) wins, as it does in ``discover``; it is how logins no
        # identity names are correlated: outside collaborators never sign in through the organization's SAML SSO.
        for person, login in self._logins.items():
            out[login.lower()] = {
                "email": person if "@" in person else None,
                "emails": [person] if "@" in person else [],
                "mapped_person": person,
                "identified_by": "mapping",
            }
        return out

    def _member(self, login: str) -> Account | None:
        account = Account(self.instance, login, login, attributes={"kind": "member"})
        state = self._access(account)
        if state is None:
            return None
        kind = "outside_collaborator" if state.startswith("outside") else "member"
        return Account(
            self.instance, login, login, admin=state.endswith("admin"), attributes={"kind": kind, "access": state}
        )

    def _access(self, account: Account) -> str | None:
        """'member (active, admin)', 'outside collaborator', or None when the login has no org access."""
        return self._reach(account)[0]

    def _reach(self, account: Account) -> tuple[str | None, dict[str, Any] | None]:
        """``_access``, and the membership GitHub answered (None for a collaborator or no access)."""
        login = quote(account.id, safe="")
        response = self._call(
            "GET", f"orgs/{self._org}/memberships/{login}", f"read membership of {account.name}", ok=(404,)
        )
        if response.status_code == 200:
            body = response.json()
            return f"member ({body.get('state')}, {body.get('role')})", body
        for collaborators in pages(self._call, f"orgs/{self._org}/outside_collaborators", "list outside collaborators"):
            if any(c.get("login", "").lower() == account.id.lower() for c in collaborators):
                return "outside collaborator", None
        return None, None

    def _credentials(self, account: Account) -> list[dict[str, Any]]:
        login = account.attributes.get("login") or account.name
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            response = self._call(
                "GET",
                f"orgs/{self._org}/credential-authorizations",
                "list SAML credential authorizations",
                params={"login": login, "per_page": 100, "page": page},
                ok=(404,),
            )
            if response.status_code == 404:  # the organization has no SAML SSO: nothing is authorized through it
                return out
            batch = response.json()
            out += [c for c in batch if str(c.get("login", login)).lower() == login.lower()]
            if len(batch) < 100:
                return out
            page += 1

    def _discover_emu(self, person: Person) -> list[Account]:
        explicit = mapped(person, self._logins)
        names = [explicit] if explicit else list(person.emails)
        found: dict[str, Account] = {}
        for name in names:
            body = self._call(
                "GET",
                self._scim,
                "search SCIM users",
                SCIM,
                params={"filter": f"userName eq {escape_filter(name)}"},
            ).json()
            for user in body.get("Resources") or []:
                found.setdefault(user["id"], self._emu_account(user))
        if not explicit and person.employee_id:
            body = self._call(
                "GET",
                self._scim,
                "search SCIM users",
                SCIM,
                params={"filter": f"externalId eq {escape_filter(person.employee_id)}"},
            ).json()
            for user in body.get("Resources") or []:
                found.setdefault(user["id"], self._emu_account(user))
        return list(found.values())

    def _emu_account(self, user: dict[str, Any]) -> Account:
        emails = user.get("emails") or []
        primary = next((e.get("value") for e in emails if e.get("primary")), emails[0].get("value") if emails else None)
        return Account(
            self.instance,
            user["id"],
            user.get("userName") or user["id"],
            email=primary,
            active=bool(user.get("active", True)),
            attributes={"kind": "emu", "login": user.get("userName")},
        )

    def _emu_user(self, scim_id: str) -> dict[str, Any] | None:
        response = self._call("GET", f"{self._scim}/{quote(scim_id, safe='')}", "read SCIM user", SCIM, ok=(404,))
        return None if response.status_code == 404 else response.json()

    def _emu_set_active(self, account: Account, active: bool) -> None:
        body = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "active", "value": active}]}
        verb = "unsuspend" if active else "suspend"
        self._call("PATCH", f"{self._scim}/{quote(account.id, safe='')}", f"{verb} {account.name}", SCIM, json=body)


def _login(account: Account) -> str:
    return str(account.attributes.get("login") or account.id)


def _seat_held(seat: dict[str, Any] | None) -> bool:
    return seat is not None and not seat.get("pending_cancellation_date")


def _is_emu(account: Account) -> bool:
    return account.attributes.get("kind") == "emu"


def _load_logins(path: str, instance: str) -> dict[str, str]:
    import yaml

    try:
        data = yaml.safe_load(Path(path).expanduser().read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read logins_file {path}: {exc.strerror}", where=instance) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"logins_file {path} is not valid YAML: {short(str(exc), 200)}", where=instance) from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ConfigError(f"logins_file {path} must map people (email or id) to GitHub logins", where=instance)
    return data


@hookimpl
def register_connectors(register):
    register(GitHubConnector)


def _lane(path: str, graphql_url: str) -> str:
    """The rate-limit lane (GitHub's ``x-ratelimit-resource``) of a request to ``path``."""
    if path == graphql_url:
        return "graphql"
    return "scim" if "/scim/v2/" in path or path.startswith("scim/v2/") else "core"
