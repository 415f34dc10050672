"""What a leaver can still take up in a GitHub organization that no membership shows: a pending invitation.

An invitation sent to the person's email address (or a sub-address of it, ``alice+gh@corp.example``, which
lands in the same mailbox) needs no GitHub account yet: accepting it makes the person a member again.
``discover`` returns each one as an account of kind ``invitation`` (id: the invited address), and
``InvitationDesk`` acts on it: ``disable_account`` cancels it, its read-back lists the invitations afresh,
its undo sends it again; every other kind has nothing to act on. An invitation by login is a ``pending``
membership, which ``verify(disable_account)`` already reads and ``disable_account`` cancels. ``residual``
still lists any invitation to the person's mailboxes that is pending (one sent after discovery, say).

"List pending organization invitations": ``GET /orgs/{org}/invitations`` (``per_page`` up to 100,
``page``), each with ``login`` (null for an email invitation), ``email``, ``role`` and ``created_at``;
it needs an organization owner's token (``admin:org``):
https://docs.github.com/en/rest/orgs/members#list-pending-organization-invitations
"Cancel an organization invitation": ``DELETE /orgs/{org}/invitations/{invitation_id}``, 204 (404 when it is
gone; owners only): https://docs.github.com/en/rest/orgs/members#cancel-an-organization-invitation
"Create an organization invitation": ``POST /orgs/{org}/invitations`` with ``email`` and ``role``
(``admin``, ``direct_member``, ``billing_manager``, ``reinstate``), 201:
https://docs.github.com/en/rest/orgs/members#create-an-organization-invitation
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

from offboard import Account, Action, ActionKind, Leftover, Person, Receipt, Verification
from offboard.errors import PermissionDenied

__all__ = [
    "Invitations",
    "InvitationDesk",
    "invitation_accounts",
    "listed_invitations",
    "is_invitation",
    "pending_invitations",
    "mailbox",
    "pages",
]

INVITATION = "invitation"
ROLES = ("admin", "direct_member", "billing_manager", "reinstate")

Call = Callable[..., Any]  # GitHubConnector._call(method, path, what, params=...) -> httpx.Response


def pages(call: Call, path: str, what: str) -> Iterator[list[dict[str, Any]]]:
    """Each page of a GitHub list (``per_page`` 100, ``page`` from 1) until one comes back short."""
    page = 1
    while True:
        batch = call("GET", path, what, params={"per_page": 100, "page": page}).json()
        yield batch
        if len(batch) < 100:
            return
        page += 1


class Invitations:
    """The organization's pending invitations, read at most once per ``fresh_for`` seconds: the list is the
    organization's, not a person's, and a bulk run's closing checks would otherwise read it once per person
    (``offboard check`` makes a new connector each run, so it always reads afresh).

    No lock is held while listing: the callers run inside engine calls that hold one of the system's
    concurrency slots, and a listing that backs off gives its slot up and takes one back; threads waiting
    on a lock with the other slots would never let it (seen: a 200-person run under faults hung). Callers
    that arrive together before the first listing ends each list once."""

    def __init__(self, call: Call, org: str, fresh_for: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self._call, self._org, self._fresh_for, self._clock = call, org, fresh_for, clock
        self._read: tuple[float, list[dict[str, Any]]] | None = None
        self._lock = threading.Lock()  # guards ``_read`` only, never held across a request

    def read(self, fresh: bool = False) -> list[dict[str, Any]]:
        """The pending invitations; ``fresh``: listed now, whatever was read before (a read-back)."""
        with self._lock:
            kept = self._read
        if not fresh and kept is not None and self._clock() - kept[0] < self._fresh_for:
            return kept[1]
        started = self._clock()
        path = f"orgs/{quote(self._org, safe='')}/invitations"
        found = [item for batch in pages(self._call, path, "list pending invitations") for item in batch]
        with self._lock:
            if self._read is None or self._read[0] <= started:  # a listing that began later is newer: keep it
                self._read = (started, found)
        return found


def mailbox(email: str) -> str:
    """``alice+gh@corp.example`` -> ``alice@corp.example``: the address mail to it is delivered to."""
    local, at, domain = email.strip().lower().rpartition("@")
    if not at:
        return email.strip().lower()
    return f"{local.split('+', 1)[0]}@{domain}"


def pending_invitations(
    invitations: Invitations, instance: str, org: str, person: Person, accounts: list[Account], logins: set[str]
) -> list[Leftover]:
    """Invitations to ``org`` addressed to one of ``person``'s mailboxes or to a login not among ``accounts``
    (those ``discover`` found, whose pending membership the read-back already covers)."""
    mailboxes = {mailbox(e) for e in person.emails}
    found_logins = {a.id.lower() for a in accounts if a.system == instance}
    wanted_logins = {x.lower() for x in logins if x} - found_logins
    if not mailboxes and not wanted_logins:
        return []
    try:
        listed = invitations.read()
    except PermissionDenied as exc:  # a token that may not list them: say so, never pass silently
        who = person.email or person.id
        return [
            Leftover(
                Account(instance, who, who, attributes={"kind": "invitation"}),
                ActionKind.DISABLE_ACCOUNT,
                f"pending invitations not read ({type(exc).__name__}: {exc})",
            )
        ]
    out: list[Leftover] = []
    for invitation in listed:
        login = str(invitation.get("login") or "")
        email = str(invitation.get("email") or "")
        if not (login.lower() in wanted_logins or (email and mailbox(email) in mailboxes)):
            continue
        key = login or email
        sent = str(invitation.get("created_at") or "")[:10]
        out.append(
            Leftover(
                Account(instance, key, key, attributes={"kind": "invitation", "invitation": invitation.get("id")}),
                ActionKind.DISABLE_ACCOUNT,
                f"pending invitation to {org} as {invitation.get('role') or 'member'}"
                + (f", sent {sent}" if sent else "")
                + " (accepting it makes them a member again; cancel it in the organization's invitations)",
            )
        )
    return out


def is_invitation(account: Account) -> bool:
    """Whether ``account`` is an email invitation that ``discover`` found (not a login)."""
    return account.attributes.get("kind") == INVITATION


def invitation_accounts(invitations: Invitations, instance: str, person: Person) -> list[Account]:
    """The email invitations to ``person``'s mailboxes, one account per invited address; none when the
    token may not list them (``residual`` then says the invitations were not read)."""
    mailboxes = {mailbox(e) for e in person.emails}
    if not mailboxes:
        return []
    try:
        listed = invitations.read()
    except PermissionDenied:
        return []
    return [
        invitation_account(instance, invitation)
        for invitation in _by_address(listed)
        if mailbox(str(invitation["email"])) in mailboxes
    ]


def listed_invitations(invitations: Invitations, instance: str) -> list[Account]:
    """Every email invitation of the organization, for the inventory (correlated by the invited mailbox);
    none when the token may not list them."""
    try:
        return [invitation_account(instance, invitation) for invitation in _by_address(invitations.read())]
    except PermissionDenied:
        return []


def invitation_account(instance: str, invitation: dict[str, Any]) -> Account:
    """An email invitation as an account: its id and name are the invited address, ``emails`` its mailbox."""
    email = str(invitation["email"])
    return Account(
        instance,
        email,
        email,
        email=email,
        attributes={
            "kind": INVITATION,
            "invitation": invitation.get("id"),
            "role": invitation.get("role"),
            "emails": [mailbox(email)],
        },
    )


def _by_address(listed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The email invitations (no login), the first of each address."""
    out: dict[str, dict[str, Any]] = {}
    for invitation in listed:
        if not invitation.get("login") and invitation.get("email"):
            out.setdefault(str(invitation["email"]).lower(), invitation)
    return list(out.values())


class InvitationDesk:
    """Actions on an invitation account: ``disable_account`` cancels every pending invitation to its address
    (read afresh, so one sent again after discovery is cancelled too), its undo invites the address again with
    the role it had; the other kinds have nothing to act on (no login, no token, no seat, no enterprise)."""

    def __init__(self, call: Call, invitations: Invitations, org: str, keep_before: Callable[..., None]):
        self._call, self._invitations, self._org, self._keep_before = call, invitations, org, keep_before

    def pending(self, account: Account) -> list[dict[str, Any]]:
        """The pending invitations to ``account``'s address, listed now."""
        return [
            inv
            for inv in self._invitations.read(fresh=True)
            if not inv.get("login") and str(inv.get("email") or "").lower() == account.id.lower()
        ]

    def read_before(self, action: Action) -> dict[str, Any] | None:
        if action.kind is not ActionKind.DISABLE_ACCOUNT:
            return None
        return self._before(self.pending(action.account))

    def apply(self, action: Action) -> Receipt:
        account = action.account
        if action.kind is not ActionKind.DISABLE_ACCOUNT:
            return Receipt(action, changed=False, detail=f"an email invitation holds no {action.kind.value} to act on")
        found = self.pending(account)
        before = self._before(found)
        self._keep_before(action, before)
        for invitation in found:  # 404: cancelled already (a resent request whose first answer was lost)
            self._call(
                "DELETE",
                f"orgs/{quote(self._org, safe='')}/invitations/{int(invitation['id'])}",
                f"cancel the invitation of {account.name}",
                ok=(404,),
            )
        detail = f"cancelled {len(found)} pending invitation(s)" if found else "no pending invitation"
        return Receipt(action, changed=bool(found), before=before, detail=detail)

    def verify(self, action: Action) -> Verification:
        if action.kind is not ActionKind.DISABLE_ACCOUNT:
            return Verification(action, True, {}, f"{action.account.name}: an email invitation, nothing to read back")
        left = self.pending(action.account)
        what = f"{len(left)} pending invitation(s)" if left else "none pending"
        return Verification(action, not left, {"pending_invitations": len(left)}, f"{action.account.name}: {what}")

    def undo(self, receipt: Receipt) -> Receipt:
        action, before = receipt.action, receipt.before
        if action.kind is not ActionKind.DISABLE_ACCOUNT or not before.get("pending"):
            return Receipt(action, changed=False, detail="no invitation was pending")
        if self.pending(action.account):
            return Receipt(action, changed=False, before={"pending": True}, detail="an invitation is pending")
        role = before.get("role") if before.get("role") in ROLES else "direct_member"
        self._call(
            "POST",
            f"orgs/{quote(self._org, safe='')}/invitations",
            f"invite {action.account.name} again",
            json={"email": action.account.name, "role": role},
        )
        return Receipt(
            action,
            changed=True,
            pending=True,
            before={"pending": False},
            detail=f"invited again as {role}; GitHub mails a new invitation (teams are not restored)",
        )

    @staticmethod
    def _before(found: list[dict[str, Any]]) -> dict[str, Any]:
        return {"kind": INVITATION, "pending": bool(found), "role": found[0].get("role") if found else None}
