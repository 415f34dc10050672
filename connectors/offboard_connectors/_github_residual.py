"""What a leaver can still take up in a GitHub organization that no read-back of an account shows: a pending
invitation to join it.

An invitation sent to the person's email address (or a sub-address of it, ``alice+gh@corp.example``, which
lands in the same mailbox) needs no GitHub account yet, so ``discover`` finds nothing for it and no action
of offboard removes it: accepting it makes the person a member again. An invitation by login is a
``pending`` membership, which ``verify(disable_account)`` already reads and ``disable_account`` cancels.

"List pending organization invitations": ``GET /orgs/{org}/invitations`` (``per_page`` up to 100,
``page``), each with ``login`` (null for an email invitation), ``email``, ``role`` and ``created_at``;
it needs an organization owner's token (``admin:org``):
https://docs.github.com/en/rest/orgs/members#list-pending-organization-invitations
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from offboard import Account, ActionKind, Leftover, Person
from offboard.errors import PermissionDenied

__all__ = ["Invitations", "pending_invitations", "mailbox"]

Call = Callable[..., Any]  # GitHubConnector._call(method, path, what, params=...) -> httpx.Response


class Invitations:
    """The organization's pending invitations, read at most once per ``fresh_for`` seconds: the list is the
    organization's, not a person's, and a bulk run's closing checks would otherwise read it once per person
    (``offboard check`` makes a new connector each run, so it always reads afresh)."""

    def __init__(self, call: Call, org: str, fresh_for: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self._call, self._org, self._fresh_for, self._clock = call, org, fresh_for, clock
        self._read: tuple[float, list[dict[str, Any]]] | None = None
        self._lock = threading.Lock()

    def read(self) -> list[dict[str, Any]]:
        with self._lock:  # one listing at a time: the threads of a bulk run wait for it instead of repeating it
            if self._read is not None and self._clock() - self._read[0] < self._fresh_for:
                return self._read[1]
            found: list[dict[str, Any]] = []
            page = 1
            while True:
                batch = self._call(
                    "GET",
                    f"orgs/{quote(self._org, safe='')}/invitations",
                    "list pending invitations",
                    params={"per_page": 100, "page": page},
                ).json()
                found += batch
                if len(batch) < 100:
                    break
                page += 1
            self._read = (self._clock(), found)
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
