"""Generic SCIM 2.0 (RFC 7643/7644): deactivate, remove group memberships, delete later.

``profile`` names the application (``_scim_profiles``: atlassian, zoom, slack, ...): what is known of
its PATCH, filter and Bulk support, what ``active: false`` and DELETE do there (reversible or
destructive), and its rate limit. ``generic`` learns all of it from ``/ServiceProviderConfig``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator

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
from offboard.errors import AuthError, NotFound, PermanentError

from ._http import IDEMPOTENT_METHODS, escape_filter, make_client, mapped, raise_for_status, send
from ._scim_bulk import remove_in_bulk as _remove_in_bulk
from ._scim_probe import ScimProbe
from ._scim_probe import is_active as _active
from ._scim_profiles import PROFILES, ScimProfile

if TYPE_CHECKING:
    import httpx

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER_READ = "read /Users"
USER_WRITE = "write /Users"
GROUP_WRITE = "write /Groups"
# Attributes a server owns; they must not be sent back in a PUT.
_READ_ONLY = ("meta", "groups")


class ScimConnector(ScimProbe, Connector):
    """Any application that speaks SCIM 2.0 (RFC 7644) with a bearer token."""

    name = "scim"
    default_rate = 10.0  # no published limit; a polite default, override per app
    default_concurrency = 4
    permissions = (USER_READ, USER_WRITE, GROUP_WRITE)

    # DELETE has no undo in general; the instance's profile decides (``is_destructive``)
    destructive_kinds = frozenset({ActionKind.DELETE_ACCOUNT})

    class Settings(ConnectorSettings):
        base_url: str = Field(description="SCIM root URL; /Users and /Groups live below it")
        profile: str = Field("generic", description="the application: " + ", ".join(sorted(PROFILES)))
        token: Secret | None = None
        employee_id_attribute: str | None = "externalId"
        accounts: dict[str, str] = Field(default_factory=dict, description="person -> SCIM userName")
        groups: bool = True
        timeout: float = 30.0
        ca_file: str | None = None
        page_size: int = Field(100, ge=1, le=1000)
        probe_user: str | None = Field(None, description="test account `offboard connectors probe` deactivates")

        @field_validator("profile")
        @classmethod
        def _known_profile(cls, value: str) -> str:
            if value not in PROFILES:
                raise ValueError(f"unknown SCIM profile {value!r}; known: {', '.join(sorted(PROFILES))}")
            return value

    settings: Settings
    profile: ScimProfile

    @classmethod
    def rate_for(cls, settings: ConnectorSettings) -> float | None:
        """The profile's published rate, else the generic default."""
        profile = PROFILES.get(str(getattr(settings, "profile", "generic")))
        return profile.rate if profile is not None and profile.rate is not None else cls.default_rate

    def is_destructive(self, kind: ActionKind) -> bool:
        if kind is ActionKind.DISABLE_ACCOUNT:
            return self.profile.deactivate == "destructive"
        if kind is ActionKind.DELETE_ACCOUNT:
            return self.profile.delete != "reversible"
        return super().is_destructive(kind)

    def __init__(self, instance: str, settings: Any = None):
        super().__init__(instance, settings)
        s = self.settings
        base = s.base_url if s.base_url.endswith("/") else s.base_url + "/"
        self._client = make_client(
            base,
            token=s.token.reveal() if s.token else None,
            timeout=s.timeout,
            ca_file=s.ca_file,
            headers={"Accept": "application/scim+json, application/json"},
        )
        self.profile = PROFILES[s.profile]
        # what the profile documents; None: learned from ServiceProviderConfig or a refused PATCH
        self._patch: bool | None = self.profile.patch
        self._filter: bool | None = self.profile.filter_members
        # /Bulk's (maxOperations, maxPayloadSize) where ServiceProviderConfig says it is supported; False: not used
        self._bulk: tuple[int, int] | bool | None = False if self.profile.bulk is False else None

    def close(self) -> None:
        self._client.close()

    # -- HTTP -----------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        what: str,
        permission: str,
        idempotent: bool | None = None,
        done_if: str = "",
        **kw: Any,
    ) -> httpx.Response:
        """One request; the engine retries it on its own when it is idempotent (a GET, PUT or DELETE
        unless the caller says otherwise). ``done_if``: a ``scimType`` whose 400 answer means the
        change is already made (RFC 7644 3.12 ``noTarget`` for a remove whose value is gone)."""
        if "json" in kw:
            kw["headers"] = {"Content-Type": "application/scim+json"}

        def attempt() -> httpx.Response:
            response = send(self._client, method, path, system=self.instance, what=what, **kw)
            if done_if and response.status_code == 400 and _scim_type(response) == done_if:
                return response
            return raise_for_status(response, system=self.instance, what=what, permissions=(permission,))

        return self.request(attempt, idempotent=method in IDEMPOTENT_METHODS if idempotent is None else idempotent)

    def _user(self, user_id: str) -> dict[str, Any] | None:
        try:
            return self._call("GET", f"Users/{user_id}", f"read user {user_id}", USER_READ).json()
        except NotFound:
            return None

    def _search(self, resource: str, scim_filter: str, permission: str = USER_READ) -> list[dict[str, Any]]:
        return self._listing(resource, f"search {resource} ({scim_filter})", permission, {"filter": scim_filter})

    def _listing(self, resource: str, what: str, permission: str, params: dict[str, str]) -> list[dict[str, Any]]:
        """Every resource of a query: pages by startIndex until ``totalResults`` (RFC 7644 3.4.2.4)."""
        found: list[dict[str, Any]] = []
        start = 1
        while True:
            query = {**params, "startIndex": str(start), "count": str(self.settings.page_size)}
            body = self._call("GET", resource, what, permission, params=query).json()
            page = list(body.get("Resources") or [])
            found += page
            total = int(body.get("totalResults") or 0)
            start += len(page)
            if not page or start > total:
                return found

    # -- read side ------------------------------------------------------------

    def check(self) -> CheckResult:
        try:
            self._call("GET", "Users", "list users", USER_READ, params={"count": "1"})
        except AuthError as exc:
            missing = tuple(getattr(exc, "permissions", ()) or ())
            return CheckResult(False, identity=self.settings.base_url, missing=missing, detail=str(exc))
        return CheckResult(True, identity=self.settings.base_url)

    def discover(self, person: Person) -> list[Account]:
        filters: list[str] = []
        explicit = mapped(person, self.settings.accounts)
        if explicit:
            filters.append(f"userName eq {escape_filter(explicit)}")
        for email in person.emails:
            filters.append(f"userName eq {escape_filter(email)}")
            filters.append(f"emails.value eq {escape_filter(email)}")
        if person.employee_id and self.settings.employee_id_attribute:
            filters.append(f"{self.settings.employee_id_attribute} eq {escape_filter(person.employee_id)}")
        found: dict[str, Account] = {}
        for scim_filter in filters:
            for user in self._search("Users", scim_filter):
                found.setdefault(user["id"], self._account(user))
            if explicit and found:
                break  # an explicit mapping wins over guessing
        return list(found.values())

    def list_accounts(self, cursor: str | None = None) -> AccountPage:
        start = int(cursor or 1)
        params = {"startIndex": str(start), "count": str(self.settings.page_size)}
        body = self._call("GET", "Users", "list users", USER_READ, params=params).json()
        users = list(body.get("Resources") or [])
        total = int(body.get("totalResults") or 0)
        following = start + len(users)
        nxt = str(following) if users and following <= total else None
        return AccountPage(tuple(self._account(u) for u in users), nxt)

    def verify(self, action: Action, receipt: Receipt | None = None) -> Verification:
        user = self._user(action.account.id)
        if action.kind is ActionKind.DELETE_ACCOUNT:
            if user is not None and self.profile.delete == "reversible":  # the app's DELETE deactivates (Slack)
                active = _active(user)
                return Verification(action, not active, {"exists": True, "active": active}, _detail(action, not active))
            return Verification(action, user is None, {"exists": user is not None}, _detail(action, user is None))
        if user is None:
            return Verification(action, True, {"exists": False}, f"{action.account.name} no longer exists")
        if action.kind is ActionKind.DISABLE_ACCOUNT:
            active = _active(user)
            return Verification(action, not active, {"active": active}, _detail(action, not active))
        if action.kind is ActionKind.REMOVE_MEMBERSHIPS:
            groups = self._groups_of(action.account.id)
            names = sorted(g.get("displayName") or g["id"] for g in groups)
            return Verification(action, not groups, {"groups": names}, _detail(action, not groups, names))
        raise PermanentError(f"scim cannot verify {action.kind.value}", system=self.instance)

    # -- write side -----------------------------------------------------------

    def disable_account(self, action: Action) -> Receipt:
        user = self._require(action)
        self.keep_before(action, {"active": _active(user)})
        if not _active(user):
            return Receipt(action, changed=False, before={"active": False}, detail="already inactive")
        self._set_active(user, False)
        return Receipt(action, changed=True, before={"active": True}, reference=user["id"])

    def undo_disable_account(self, receipt: Receipt) -> Receipt:
        user = self._require(receipt.action)
        wanted = bool(receipt.before.get("active", True))
        if _active(user) == wanted:
            return Receipt(receipt.action, changed=False, before={"active": wanted})
        self._set_active(user, wanted)
        return Receipt(receipt.action, changed=True, before={"active": _active(user)}, reference=user["id"])

    def remove_memberships(self, action: Action) -> Receipt:
        user_id = self._require(action)["id"]
        groups = self._groups_of(user_id)
        one_by_one, failure = [g["id"] for g in groups], None
        limits = self._bulk_limits() if len(groups) > 1 and self._patch_supported() else None
        if limits:  # one request for up to maxOperations groups (RFC 7644 3.7), what is left one PATCH each
            one_by_one, failure = _remove_in_bulk(self, user_id, one_by_one, limits)
        for group_id in one_by_one:
            self._change_member(group_id, user_id, remove=True)
        if failure is not None:  # raised once every other group is done
            raise failure
        before = {"groups": [{"id": g["id"], "display": g.get("displayName")} for g in groups]}
        how = " through /Bulk" if len(one_by_one) < len(groups) else ""
        return Receipt(action, changed=bool(groups), before=before, detail=f"removed from {len(groups)} group(s){how}")

    def undo_remove_memberships(self, receipt: Receipt) -> Receipt:
        user_id = receipt.action.account.id
        current = {g["id"] for g in self._groups_of(user_id)}
        restored = [g for g in receipt.before.get("groups", []) if g["id"] not in current]
        for group in restored:
            self._change_member(group["id"], user_id, remove=False)
        return Receipt(receipt.action, changed=bool(restored), before={"groups": sorted(current)})

    def delete_account(self, action: Action) -> Receipt:
        user = self._user(action.account.id)
        if user is None:
            return Receipt(action, changed=False, detail="already deleted")
        self._call("DELETE", f"Users/{user['id']}", f"delete user {action.account.name}", USER_WRITE)
        before = {"active": _active(user), "userName": user.get("userName")}
        return Receipt(action, changed=True, before=before, reference=user["id"])

    def undo_delete_account(self, receipt: Receipt) -> Receipt:
        """Where the application's DELETE only deactivates (the profile says ``delete: reversible``), put
        ``active`` back as it was before the deletion; elsewhere the user is gone and the engine names the
        step as not undoable."""
        if self.profile.delete != "reversible":
            raise PermanentError(
                f"{receipt.action.account.name} was deleted in {self.profile.title}; it cannot be restored",
                system=self.instance,
            )
        user = self._require(receipt.action)
        wanted = bool(receipt.before.get("active", True))  # a user disabled before its deletion stays disabled
        if _active(user) == wanted:
            return Receipt(receipt.action, changed=False, before={"active": wanted})
        self._set_active(user, wanted)
        return Receipt(receipt.action, changed=True, before={"active": _active(user)}, reference=user["id"])

    # -- helpers --------------------------------------------------------------

    def _account(self, user: dict[str, Any]) -> Account:
        emails = user.get("emails") or []
        primary = next((e for e in emails if e.get("primary")), emails[0] if emails else {})
        return Account(
            system=self.instance,
            id=user["id"],
            name=user.get("userName") or user["id"],
            email=primary.get("value"),
            active=_active(user),
            attributes={"externalId": user.get("externalId")} if user.get("externalId") else {},
        )

    def _require(self, action: Action) -> dict[str, Any]:
        user = self._user(action.account.id)
        if user is None:
            raise NotFound(f"user {action.account.name} ({action.account.id}) not found", system=self.instance)
        return user

    def _groups_of(self, user_id: str) -> list[dict[str, Any]]:
        """The groups ``user_id`` is a member of. Filtering is optional in SCIM (RFC 7644 3.4.2.2), so
        ServiceProviderConfig decides: ``members.value eq`` where filter is supported, else every group
        paged through with only the attributes needed, and the members matched here."""
        if not self.settings.groups:
            return []
        if self._filter is None:
            self._service_config()
        if self._filter:
            return self._search("Groups", f"members.value eq {escape_filter(user_id)}")
        groups = self._listing("Groups", "list groups", USER_READ, {"attributes": "displayName,members"})
        return [g for g in groups if any(str(m.get("value")) == user_id for m in g.get("members") or ())]

    def _bulk_limits(self) -> tuple[int, int] | None:
        """/Bulk's (maxOperations, maxPayloadSize) where the application supports it, else None."""
        if self._bulk is None:
            self._service_config()
        return self._bulk if isinstance(self._bulk, tuple) else None

    def _service_config(self) -> None:
        if self._patch is not None and self._filter is not None and self._bulk is not None:
            return
        try:
            config = self._call("GET", "ServiceProviderConfig", "read ServiceProviderConfig", USER_READ).json()
        except (NotFound, PermanentError):
            config = {}  # no discovery endpoint: assume what RFC 7644 servers commonly do, learn from refusals
        if self._patch is None or self._filter is None:
            if self._patch is None:
                self._patch = bool((config.get("patch") or {}).get("supported", True))
            self._filter = bool((config.get("filter") or {}).get("supported", not config))
        if self._bulk is None:  # RFC 7643 5: bulk.supported, maxOperations and maxPayloadSize are required
            bulk = config.get("bulk") or {}
            ops, size = bulk.get("maxOperations"), bulk.get("maxPayloadSize")
            if bulk.get("supported") is True and type(ops) is int and type(size) is int and ops > 1 and size > 0:
                self._bulk = (ops, size)
            else:
                self._bulk = False

    def _change_member(self, group_id: str, user_id: str, remove: bool) -> None:
        """Remove ``user_id`` from the group or add it back: PATCH where supported, else GET and PUT."""
        what = f"update group {group_id}"
        if self._patch_supported():
            if remove:
                op: dict[str, Any] = {"op": "remove", "path": f"members[value eq {escape_filter(user_id)}]"}
            else:
                op = {"op": "add", "path": "members", "value": [{"value": user_id}]}
            try:
                # A remove sent again after it went through finds no member to remove: RFC 7644 3.5.2.2 answers
                # 400 noTarget, which means done here; an add sent twice would duplicate, so it is sent once.
                self._call(
                    "PATCH",
                    f"Groups/{group_id}",
                    what,
                    GROUP_WRITE,
                    idempotent=remove,
                    done_if="noTarget" if remove else "",
                    json={"schemas": [PATCH_OP], "Operations": [op]},
                )
                return
            except PermanentError as exc:
                if exc.status not in (405, 501):
                    raise
                self._patch = False  # the server refuses PATCH: use PUT from now on
        group = self._call("GET", f"Groups/{group_id}", f"read group {group_id}", USER_READ).json()
        members = [str(m.get("value")) for m in group.get("members") or () if isinstance(m, dict)]
        members = [m for m in members if m != user_id] + ([] if remove else [user_id])
        replacement = {k: v for k, v in group.items() if k != "meta"}
        replacement["members"] = [{"value": m} for m in members]
        self._call("PUT", f"Groups/{group_id}", what, GROUP_WRITE, json=replacement)

    def _patch_supported(self) -> bool:
        if self._patch is None:
            self._service_config()  # no discovery endpoint: try PATCH and fall back on refusal
        return bool(self._patch)

    def _set_active(self, user: dict[str, Any], active: bool) -> None:
        what = f"{'enable' if active else 'deactivate'} user {user.get('userName') or user['id']}"
        if self._patch_supported():
            body = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "active", "value": active}]}
            try:
                self._call("PATCH", f"Users/{user['id']}", what, USER_WRITE, idempotent=True, json=body)  # sets active
                return
            except PermanentError as exc:
                if exc.status not in (405, 501):
                    raise
                self._patch = False  # the server refuses PATCH: use PUT from now on
        replacement = {k: v for k, v in user.items() if k not in _READ_ONLY}
        replacement["active"] = active
        self._call("PUT", f"Users/{user['id']}", what, USER_WRITE, json=replacement)


def _scim_type(response: httpx.Response) -> str:
    """The ``scimType`` of a SCIM error answer (RFC 7644 3.12), or ""."""
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("scimType") or "") if isinstance(body, dict) else ""


def _detail(action: Action, ok: bool, remaining: list[str] | None = None) -> str:
    """What the read-back showed, in words: the attribute and its value, or the groups left."""
    who = action.account.name
    if action.kind is ActionKind.DELETE_ACCOUNT:
        return f"{who}: {'no longer exists' if ok else 'still exists'}"
    if action.kind is ActionKind.DISABLE_ACCOUNT:
        return f"{who}: active: {'false' if ok else 'true'}"
    if remaining:
        return f"{who}: still in {', '.join(remaining)}"
    return f"{who}: in no group"


@hookimpl
def register_connectors(register):
    register(ScimConnector)
