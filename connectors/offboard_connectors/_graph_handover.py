"""The Microsoft 365 handover through Graph v1.0, mixed into the Entra connector.

- ``set_auto_reply``: the mailbox's automatic replies (``mailboxSettings.automaticRepliesSetting``),
  naming who takes over; undo restores the previous setting.
- ``remove_forwarding``: inbox rules that forward or redirect mail (``messageRules`` with
  ``forwardTo``, ``forwardAsAttachmentTo`` or ``redirectTo``) are deleted; undo re-creates them.
- ``transfer_ownership``: the manager (or the policy's ``handover: {to: ...}``) gets write access to
  the OneDrive root (``driveItem: invite``); undo deletes that permission.
- ``wipe_devices`` and ``revoke_app_grants``: in ``_graph_apps.py``.

What Graph cannot do (shared mailbox conversion, mailbox-level forwarding, litigation hold) is
returned by ``manual_tasks`` as checklist tasks with the Exchange Online PowerShell command.
"""

from __future__ import annotations

import json
import string
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from offboard import Account, Action, ActionKind, Leftover, ManualTask, Person, Receipt, Verification
from offboard.errors import NotFound, PermanentError

from ._graph_apps import APP_ROLES, DEVICE_OBJECTS, DEVICES_READ, DEVICES_RETIRE, GRANTS, GraphApps, _seg

if TYPE_CHECKING:
    import httpx

__all__ = ["GraphHandover", "HANDOVER_COVERED_BY", "HANDOVER_ORDERING", "HANDOVER_PERMISSIONS"]

MAILBOX = "MailboxSettings.ReadWrite"
FILES = "Files.ReadWrite.All"
MANAGER = "User.Read.All"
HANDOVER_PERMISSIONS = (MAILBOX, FILES, DEVICES_READ, DEVICES_RETIRE, DEVICE_OBJECTS, GRANTS, APP_ROLES)
HANDOVER_COVERED_BY: dict[str, set[str]] = {
    MAILBOX: set(),
    FILES: {"Sites.ReadWrite.All"},
    DEVICES_READ: {"DeviceManagementManagedDevices.ReadWrite.All"},
    DEVICES_RETIRE: set(),
    DEVICE_OBJECTS: {"Directory.ReadWrite.All"},
    GRANTS: {"Directory.ReadWrite.All"},
    APP_ROLES: {"Directory.ReadWrite.All"},
}
K = ActionKind
#: The Exchange Online mailbox and the OneDrive go with the licence and with the user: hand them over first.
HANDOVER_ORDERING: tuple[tuple[ActionKind, ActionKind], ...] = tuple(
    (first, then)
    for first in (K.SET_AUTO_REPLY, K.REMOVE_FORWARDING, K.TRANSFER_OWNERSHIP)
    for then in (K.REMOVE_LICENSES, K.DELETE_ACCOUNT)
) + ((K.WIPE_DEVICES, K.DELETE_ACCOUNT), (K.REVOKE_APP_GRANTS, K.DELETE_ACCOUNT))
HANDOVER_KINDS = frozenset(
    {K.SET_AUTO_REPLY, K.REMOVE_FORWARDING, K.TRANSFER_OWNERSHIP, K.WIPE_DEVICES, K.REVOKE_APP_GRANTS}
)
DEFAULT_AUTO_REPLY = "{name} is no longer with the company. Please contact {manager}, who is taking over."
DEFAULT_AUTO_REPLY_NO_MANAGER = "{name} is no longer with the company. Your message has not been forwarded."
_FORWARDS = ("forwardTo", "forwardAsAttachmentTo", "redirectTo")
_REPLY_KEYS = (
    "status",
    "externalAudience",
    "internalReplyMessage",
    "externalReplyMessage",
    "scheduledStartDateTime",
    "scheduledEndDateTime",
)
_RULE_KEYS = ("displayName", "sequence", "isEnabled", "conditions", "actions", "exceptions")
_NO_MAILBOX = (
    "has no Exchange Online mailbox Graph can reach (inactive, soft-deleted or hosted on-premises: "
    "MailboxNotEnabledForRESTAPI)"
)


class GraphHandover(GraphApps):
    """Handover actions for ``EntraConnector`` (which provides ``_call``, ``_user``, ``_require``)."""

    instance: str
    ordering: ClassVar[tuple[tuple[ActionKind, ActionKind], ...]] = HANDOVER_ORDERING

    if TYPE_CHECKING:

        def _call(self, method: str, path: str, what: str, permission: str, **kw: Any) -> httpx.Response: ...
        def _user(self, key: str, select: str = ...) -> dict[str, Any] | None: ...
        def _require(self, action: Action, select: str = ...) -> dict[str, Any]: ...

    # -- who takes over -----------------------------------------------------------------

    def _successor(self, action: Action, required: bool = True) -> dict[str, Any] | None:
        """Who takes over: the policy's ``handover_to`` / ``to`` / ``transfer_to``, else the manager in Entra."""
        params = action.params or {}
        ref = next((params[k] for k in ("handover_to", "to", "transfer_to") if params.get(k)), None)
        who = action.account.name
        if ref and ref != "manager":
            found = self._user(str(ref), "id,displayName,mail,userPrincipalName")
            if found is None:
                raise PermanentError(f"handover target {ref!r} for {who} is not a user in Entra", system=self.instance)
        else:
            try:
                found = self._call(
                    "GET",
                    f"users/{_seg(action.account.id)}/manager",
                    f"read the manager of {who}",
                    MANAGER,
                    params={"$select": "id,displayName,mail,userPrincipalName"},
                ).json()
            except NotFound:
                found = None
        if found is None and required:
            raise PermanentError(
                f"{who} has no manager in Entra and the policy names no one to hand over to "
                "(set the manager, or handover: {to: someone@...} in the policy)",
                system=self.instance,
            )
        if found is not None and found.get("id") == action.account.id:
            raise PermanentError(f"{who} cannot hand over to themself", system=self.instance)
        return found

    # -- automatic replies ----------------------------------------------------------------

    def _mailbox_settings(self, action: Action) -> dict[str, Any] | None:
        try:
            return self._call(
                "GET",
                f"users/{_seg(action.account.id)}/mailboxSettings",
                f"read the mailbox settings of {action.account.name}",
                MAILBOX,
            ).json()
        except NotFound:
            self._require(action, "id")  # the user is there: it is the mailbox that is not
            return None

    def _reply_text(self, action: Action) -> str:
        template = str((action.params or {}).get("auto_reply") or "")
        if template and (action.params or {}).get("handover_to"):
            return template  # the engine filled in the policy's handover.auto_reply for this person
        successor = self._successor(action, required=bool(template and "{manager}" in template))
        if not template:
            template = DEFAULT_AUTO_REPLY if successor else DEFAULT_AUTO_REPLY_NO_MANAGER
        user = self._require(action, "id,displayName,mail")
        values = {
            "name": user.get("displayName") or action.account.name,
            "email": user.get("mail") or action.account.name,
            "manager": "" if successor is None else _label(successor),
            "manager_email": "" if successor is None else (successor.get("mail") or successor["userPrincipalName"]),
        }
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
        except ValueError:  # a lone brace: text the engine already filled in, used as it is
            return template
        unknown = sorted(fields - set(values))
        if unknown:
            raise PermanentError(
                f"auto_reply template: unknown placeholder(s) {', '.join('{' + u + '}' for u in unknown)}; "
                f"use {', '.join('{' + v + '}' for v in values)}",
                system=self.instance,
            )
        return template.format(**values)

    def before_set_auto_reply(self, action: Action) -> dict[str, Any]:
        settings = self._mailbox_settings(action)
        current = (settings or {}).get("automaticRepliesSetting") or {}
        return {"automaticRepliesSetting": {k: current[k] for k in _REPLY_KEYS if k in current}}

    def set_auto_reply(self, action: Action) -> Receipt:
        settings = self._mailbox_settings(action)
        if settings is None:
            raise PermanentError(
                f"{action.account.name} {_NO_MAILBOX}; set the reply where the mailbox lives", system=self.instance
            )
        current = settings.get("automaticRepliesSetting") or {}
        before = {"automaticRepliesSetting": {k: current[k] for k in _REPLY_KEYS if k in current}}
        text = self._reply_text(action)
        wanted = {"status": "alwaysEnabled", "externalAudience": "all"}
        wanted |= {"internalReplyMessage": text, "externalReplyMessage": text}
        if all(current.get(k) == v for k, v in wanted.items()):
            return Receipt(action, changed=False, before=before, detail="auto-reply already on")
        self._patch_reply(action, wanted, "set the auto-reply of")
        return Receipt(action, changed=True, before=before, detail=f"auto-reply on: {text[:120]}")

    def undo_set_auto_reply(self, receipt: Receipt) -> Receipt:
        previous = dict(receipt.before.get("automaticRepliesSetting") or {"status": "disabled"})
        settings = self._mailbox_settings(receipt.action)
        if settings is None:
            raise PermanentError(f"{receipt.action.account.name} {_NO_MAILBOX}", system=self.instance)
        current = settings.get("automaticRepliesSetting") or {}
        if all(current.get(k) == v for k, v in previous.items()):
            return Receipt(receipt.action, changed=False, before={"automaticRepliesSetting": current})
        self._patch_reply(receipt.action, previous, "restore the auto-reply of")
        return Receipt(receipt.action, changed=True, before={"automaticRepliesSetting": current})

    def _patch_reply(self, action: Action, setting: dict[str, Any], verb: str) -> None:
        self._call(
            "PATCH",
            f"users/{_seg(action.account.id)}/mailboxSettings",
            f"{verb} {action.account.name}",
            MAILBOX,
            json={"automaticRepliesSetting": setting},
        )

    # -- forwarding inbox rules -------------------------------------------------------------

    def _rules(self, action: Action) -> list[dict[str, Any]] | None:
        try:
            body = self._call(
                "GET",
                f"users/{_seg(action.account.id)}/mailFolders/inbox/messageRules",
                f"list the inbox rules of {action.account.name}",
                MAILBOX,
            ).json()
        except NotFound:
            self._require(action, "id")
            return None
        return list(body.get("value") or [])

    def before_remove_forwarding(self, action: Action) -> dict[str, Any]:
        rules = self._rules(action) or []
        return {"rules": _kept([r for r in rules if _forwards(r) and not r.get("isReadOnly")])}

    def remove_forwarding(self, action: Action) -> Receipt:
        rules = self._rules(action)
        if rules is None:
            return Receipt(action, changed=False, detail=f"{action.account.name} {_NO_MAILBOX}: no inbox rules")
        forwarding = [r for r in rules if _forwards(r)]
        removed, kept = [], []
        for rule in forwarding:
            if rule.get("isReadOnly"):
                kept.append(rule)
                continue
            try:
                self._call(
                    "DELETE",
                    f"users/{_seg(action.account.id)}/mailFolders/inbox/messageRules/{_seg(rule['id'])}",
                    f"delete inbox rule {rule.get('displayName')!r} of {action.account.name}",
                    MAILBOX,
                )
            except NotFound:
                continue  # gone already
            removed.append(rule)
        before = {"rules": _kept(removed)}
        detail = f"removed {len(removed)} forwarding rule(s)" + "".join(
            f"; {r.get('displayName')!r} -> {', '.join(_targets(r))}" for r in removed
        )
        if kept:
            detail += (
                f"; read-only rule(s) left (remove in Exchange): {', '.join(str(r.get('displayName')) for r in kept)}"
            )
        return Receipt(action, changed=bool(removed), before=before, detail=detail)

    def undo_remove_forwarding(self, receipt: Receipt) -> Receipt:
        rules = self._rules(receipt.action) or []
        have = {(r.get("displayName"), _canonical(r.get("actions"))) for r in rules}
        restored = 0
        for rule in receipt.before.get("rules") or []:
            if (rule.get("displayName"), _canonical(rule.get("actions"))) in have:
                continue
            body = {k: v for k, v in rule.items() if k in _RULE_KEYS and v not in (None, {})}
            body.setdefault("conditions", rule.get("conditions") or {})
            self._call(
                "POST",
                f"users/{_seg(receipt.action.account.id)}/mailFolders/inbox/messageRules",
                f"re-create inbox rule {rule.get('displayName')!r} of {receipt.action.account.name}",
                MAILBOX,
                json=body,
            )
            restored += 1
        return Receipt(receipt.action, changed=bool(restored), detail=f"re-created {restored} rule(s)")

    # -- OneDrive -------------------------------------------------------------------------

    def _drive_root(self, action: Action) -> tuple[str, str] | None:
        who = action.account.name
        try:
            drive = self._call("GET", f"users/{_seg(action.account.id)}/drive", f"read the OneDrive of {who}", FILES)
        except NotFound:
            self._require(action, "id")
            return None
        drive_id = drive.json()["id"]
        root = self._call("GET", f"drives/{_seg(drive_id)}/root", f"read the OneDrive root of {who}", FILES).json()
        return drive_id, root["id"]

    def _shares(self, drive_id: str, item_id: str, who: str) -> list[dict[str, Any]]:
        body = self._call(
            "GET",
            f"drives/{_seg(drive_id)}/items/{_seg(item_id)}/permissions",
            f"list who can open the OneDrive of {who}",
            FILES,
        ).json()
        return list(body.get("value") or [])

    def transfer_ownership(self, action: Action) -> Receipt:
        who = action.account.name
        place = self._drive_root(action)
        if place is None:
            return Receipt(action, changed=False, detail=f"{who} has no OneDrive provisioned: nothing to hand over")
        successor = self._successor(action)
        assert successor is not None  # required=True raises instead
        drive_id, item_id = place
        existing = _grant_for(self._shares(drive_id, item_id, who), successor)
        before = {"drive": drive_id, "item": item_id, "to": successor["id"], "permission": None}
        if existing is not None:
            return Receipt(
                action,
                changed=False,
                before=before,
                reference=existing.get("id"),
                detail=f"{_label(successor)} can already edit the OneDrive of {who}",
            )
        body = {
            "recipients": [{"email": successor.get("mail") or successor["userPrincipalName"]}],
            "roles": ["write"],
            "requireSignIn": True,
            "sendInvitation": bool((action.params or {}).get("notify", True)),
            "message": f"The OneDrive of {who}, shared with you for the handover.",
        }
        answer = self._call(
            "POST",
            f"drives/{_seg(drive_id)}/items/{_seg(item_id)}/invite",
            f"share the OneDrive of {who} with {_label(successor)}",
            FILES,
            json=body,
        ).json()
        made = (answer.get("value") or [{}])[0]
        return Receipt(
            action,
            changed=True,
            before={**before, "permission": made.get("id")},
            reference=made.get("id"),
            detail=f"OneDrive shared with {_label(successor)} (write)",
        )

    def undo_transfer_ownership(self, receipt: Receipt) -> Receipt:
        before = receipt.before
        made = before.get("permission")
        if not made:  # the access was there before offboard: leave it
            return Receipt(receipt.action, changed=False, detail="the access predates offboard; left as it was")
        path = f"drives/{_seg(before['drive'])}/items/{_seg(before['item'])}/permissions/{_seg(made)}"
        try:
            self._call("DELETE", path, f"unshare the OneDrive of {receipt.action.account.name}", FILES)
        except NotFound:
            return Receipt(receipt.action, changed=False, detail="the sharing permission is gone already")
        return Receipt(receipt.action, changed=True, detail="OneDrive sharing removed")

    # -- read back ---------------------------------------------------------------------------

    def verify_handover(self, action: Action, receipt: Receipt | None) -> Verification:
        who, kind = action.account.name, action.kind
        if kind is K.SET_AUTO_REPLY:
            settings = self._mailbox_settings(action)
            if settings is None:
                return Verification(action, False, {"mailbox": None}, f"{who} {_NO_MAILBOX}")
            reply = settings.get("automaticRepliesSetting") or {}
            text = self._reply_text(action)
            on = reply.get("status") == "alwaysEnabled" and reply.get("internalReplyMessage") == text
            observed = {"status": reply.get("status"), "internalReplyMessage": reply.get("internalReplyMessage")}
            return Verification(action, on, observed, f"{who}: automatic replies {reply.get('status')}")
        if kind is K.REMOVE_FORWARDING:
            rules = self._rules(action)
            if rules is None:
                return Verification(action, True, {"mailbox": None}, f"{who} {_NO_MAILBOX}: no inbox rules")
            left = [r for r in rules if _forwards(r)]
            names = [f"{r.get('displayName')} -> {', '.join(_targets(r))}" for r in left]
            detail = f"{who}: forwarding rules left: {'; '.join(names)}" if left else f"{who}: no forwarding inbox rule"
            return Verification(action, not left, {"forwarding_rules": names}, detail)
        if kind is K.TRANSFER_OWNERSHIP:
            place = self._drive_root(action)
            if place is None:
                return Verification(action, True, {"drive": None}, f"{who}: no OneDrive provisioned")
            successor = self._successor(action)
            assert successor is not None
            share = _grant_for(self._shares(*place, who), successor)
            detail = f"{who}: OneDrive {'editable' if share else 'not shared'} by {_label(successor)}"
            return Verification(
                action, share is not None, {"shared_with": _label(successor), "write": bool(share)}, detail
            )
        if kind in (K.WIPE_DEVICES, K.REVOKE_APP_GRANTS):
            return self.verify_apps(action)
        raise PermanentError(f"entra cannot verify {kind.value}", system=self.instance)

    # -- what the leaver set up lately -------------------------------------------------------

    def recent_setups(self, person: Person, accounts: list[Account], since: datetime) -> list[Leftover]:
        """Read-only: forwarding inbox rules and delegated grants (Graph keeps no creation date for either,
        so all are listed, saying so) and app role assignments created since ``since``, for the plan and
        the case record: what a security team checks for exfiltration set-ups."""
        out: list[Leftover] = []
        since = since if since.tzinfo else since.replace(tzinfo=UTC)
        for account in accounts:
            probe = Action(K.REMOVE_FORWARDING, account)
            for rule in [r for r in self._rules(probe) or [] if _forwards(r)]:
                targets = ", ".join(_targets(rule))
                text = f"inbox rule {rule.get('displayName')!r} forwards to {targets} (Graph records no creation date)"
                out.append(Leftover(account, K.REMOVE_FORWARDING, text))
            grants, roles = self._grants(Action(K.REVOKE_APP_GRANTS, account))
            for grant in grants:
                text = f"delegated consent to app {grant.get('clientId')}: {grant.get('scope')} (no creation date)"
                out.append(Leftover(account, K.REVOKE_APP_GRANTS, text))
            for role in roles:
                created = _when(role.get("createdDateTime"))
                if created is not None and created >= since:
                    text = f"assigned to app {role.get('resourceDisplayName')} on {role.get('createdDateTime')}"
                    out.append(Leftover(account, K.REVOKE_APP_GRANTS, text))
        return out

    # -- the checklist ---------------------------------------------------------------------

    def manual_tasks(self, actions: list[Action], person: Person) -> list[ManualTask]:
        """Exchange Online steps Graph has no API for, as checklist tasks with the command to run."""
        mine = [a for a in actions if a.account.system == self.instance]
        kinds = {a.kind for a in mine}
        names = sorted({a.account.name for a in mine})
        if not names or not kinds & {K.SET_AUTO_REPLY, K.REMOVE_FORWARDING, K.TRANSFER_OWNERSHIP}:
            return []  # only a policy that hands the mailbox over gets the Exchange steps
        box = names[0]  # one Entra account per person
        manager = person.manager or "<manager>"
        tasks = []
        if kinds & {K.SET_AUTO_REPLY, K.TRANSFER_OWNERSHIP}:
            tasks.append(
                ManualTask(
                    "exchange-shared-mailbox",
                    f"Before the licence goes, make {box}'s mailbox shared and give {manager} full access: "
                    f"Set-Mailbox -Identity {box} -Type Shared; "
                    f"Add-MailboxPermission -Identity {box} -User {manager} -AccessRights FullAccess",
                    owner="it",
                    due="0d",
                    blocking=True,
                )
            )
        if K.REMOVE_FORWARDING in kinds:
            tasks.append(
                ManualTask(
                    "exchange-mailbox-forwarding",
                    f"Clear {box}'s mailbox forwarding, which Graph cannot see: Set-Mailbox -Identity {box} "
                    "-ForwardingSmtpAddress $null -ForwardingAddress $null -DeliverToMailboxAndForward $false",
                    owner="it",
                    due="0d",
                    blocking=True,
                )
            )
        tasks.append(
            ManualTask(
                "exchange-litigation-hold",
                f"If {person.id} is under legal hold, put {box}'s mailbox on litigation hold before the licence "
                f"goes: Set-Mailbox -Identity {box} -LitigationHoldEnabled $true",
                owner="it",
                due="0d",
                blocking=False,
            )
        )
        return tasks


def _when(value: Any) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _kept(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rules as a receipt keeps them: what re-creating one needs, in a stable order."""
    out = [{k: r[k] for k in _RULE_KEYS if k in r and r[k] not in (None, {})} for r in rules]
    return sorted(out, key=lambda r: (str(r.get("displayName")), _canonical(r.get("actions"))))


def _canonical(value: Any) -> str:
    """A JSON value as text that does not depend on key order (a stored receipt's keys are sorted)."""
    return json.dumps(value or {}, sort_keys=True)


def _forwards(rule: dict[str, Any]) -> bool:
    actions = rule.get("actions") or {}
    return any(actions.get(k) for k in _FORWARDS)


def _targets(rule: dict[str, Any]) -> list[str]:
    actions = rule.get("actions") or {}
    return [
        str((r.get("emailAddress") or {}).get("address"))
        for k in _FORWARDS
        for r in actions.get(k) or []
        if isinstance(r, dict)
    ]


def _grant_for(shares: list[dict[str, Any]], user: dict[str, Any]) -> dict[str, Any] | None:
    for share in shares:
        granted = ((share.get("grantedToV2") or share.get("grantedTo") or {}).get("user")) or {}
        if granted.get("id") == user["id"] and {"write", "owner"} & set(share.get("roles") or ()):
            return share
    return None


def _label(user: dict[str, Any]) -> str:
    return str(user.get("mail") or user.get("userPrincipalName") or user.get("id"))
