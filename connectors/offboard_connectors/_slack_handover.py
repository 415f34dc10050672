"""The Slack handover, mixed into the Slack connector.

- ``remove_memberships``: the person leaves every user group (``usergroups.users.update`` with the
  group's member list minus them: Slack takes the *entire* list; ``[]`` empties a group); undo puts
  them back. It runs before ``disable_account`` (``ordering``): Slack drops a deactivated user from
  its user groups, and the receipt must still see them to restore them.
- The channels the person created, and among them the Slack Connect (externally shared) ones, are
  listed in that receipt and its read-back, so the case record names them. Slack has no API that
  transfers a channel (its ``creator`` is fixed; channel managers are set in the client): the plan
  carries a checklist task for that instead (``manual_tasks``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from offboard import Action, ActionKind, ManualTask, Person, Receipt, Verification
from offboard.errors import PermissionDenied

__all__ = ["SlackHandover", "GROUPS_READ", "GROUPS_WRITE", "CHANNELS_READ", "PRIVATE_READ", "HANDOVER_LANES"]

GROUPS_READ = "usergroups:read"
GROUPS_WRITE = "usergroups:write"
CHANNELS_READ = "channels:read"
PRIVATE_READ = "groups:read"
#: Web API tiers (per method per workspace): usergroups.* are Tier 2 (20 a minute), users.conversations Tier 3.
HANDOVER_LANES = {
    "usergroups.list": (20 / 60, 5),
    "usergroups.users.update": (20 / 60, 5),
    "users.conversations": (50 / 60, 10),  # Tier 3
}
_PAGE = 200
#: Kinds that make a plan a handover (the person's work goes to someone), on whichever system.
HANDOVER = frozenset(
    {
        ActionKind.HANDOVER_MAILBOX,
        ActionKind.SET_AUTO_REPLY,
        ActionKind.REMOVE_FORWARDING,
        ActionKind.TRANSFER_OWNERSHIP,
    }
)


class SlackHandover:
    """User groups and the channel note for ``SlackConnector`` (which provides ``_api`` and ``instance``)."""

    instance: str
    ordering: ClassVar[tuple[tuple[ActionKind, ActionKind], ...]] = (
        (ActionKind.REMOVE_MEMBERSHIPS, ActionKind.DISABLE_ACCOUNT),
    )

    if TYPE_CHECKING:

        def _api(self, method: str, what: str, scope: str, **params: Any) -> dict[str, Any]: ...

    def _usergroups(self) -> list[dict[str, Any]]:
        answer = self._api("usergroups.list", "list user groups", GROUPS_READ, include_users=True)
        return list(answer.get("usergroups") or [])

    def _set_members(self, group: dict[str, Any], members: list[str], what: str) -> None:
        self._api(
            "usergroups.users.update",
            what,
            GROUPS_WRITE,
            usergroup=group["id"],
            users=",".join(members) if members else "[]",
        )

    def _created_channels(self, user_id: str) -> list[dict[str, Any]]:
        """Channels ``user_id`` created among those they are in (public, and private ones the token's user
        shares; not archived), every page of ``users.conversations``."""
        found: list[dict[str, Any]] = []
        cursor = ""
        while True:
            answer = self._api(
                "users.conversations",
                "list the channels of a user",
                PRIVATE_READ,
                user=user_id,
                types="public_channel,private_channel",
                exclude_archived=True,
                limit=_PAGE,
                **({"cursor": cursor} if cursor else {}),
            )
            found += [c for c in answer.get("channels") or [] if c.get("creator") == user_id]
            cursor = ((answer.get("response_metadata") or {}).get("next_cursor")) or ""
            if not cursor:
                return found

    def _channel_note(self, user_id: str) -> tuple[dict[str, list[str]], str]:
        try:
            channels = self._created_channels(user_id)
        except PermissionDenied as exc:  # a note, not the action: say what is missing and go on
            need = ", ".join(exc.permissions) or f"{CHANNELS_READ}, {PRIVATE_READ}"
            return {}, f"channels not listed: the token lacks {need}"
        created = sorted("#" + str(c.get("name")) for c in channels)
        connect = sorted("#" + str(c.get("name")) for c in channels if c.get("is_ext_shared"))
        note = ""
        if created:
            note = f"channels they created (Slack cannot transfer them; see the checklist): {', '.join(created)}"
        if connect:
            note += f"; Slack Connect channels among them, shared with other organizations: {', '.join(connect)}"
        return {"channels_created": created, "slack_connect_channels": connect}, note

    def remove_memberships(self, action: Action) -> Receipt:
        uid, who = action.account.id, action.account.name
        groups = [g for g in self._usergroups() if uid in (g.get("users") or [])]
        for group in groups:
            rest = [u for u in group.get("users") or [] if u != uid]
            self._set_members(group, rest, f"remove {who} from user group @{group.get('handle')}")
        channels, note = self._channel_note(uid)
        before = {"usergroups": [{"id": g["id"], "handle": g.get("handle")} for g in groups], **channels}
        detail = f"removed from {len(groups)} user group(s)" + (
            f": {', '.join('@' + str(g.get('handle')) for g in groups)}" if groups else ""
        )
        return Receipt(action, changed=bool(groups), before=before, detail="; ".join(p for p in (detail, note) if p))

    def undo_remove_memberships(self, receipt: Receipt) -> Receipt:
        uid, who = receipt.action.account.id, receipt.action.account.name
        current = {g["id"]: g for g in self._usergroups()}
        restored = []
        for entry in receipt.before.get("usergroups") or []:
            group = current.get(entry["id"])
            if group is None or uid in (group.get("users") or []):
                continue
            self._set_members(group, [*(group.get("users") or []), uid], f"put {who} back in @{entry.get('handle')}")
            restored.append(entry.get("handle"))
        return Receipt(receipt.action, changed=bool(restored), detail=f"back in {len(restored)} user group(s)")

    def verify_memberships(self, action: Action) -> Verification:
        uid, who = action.account.id, action.account.name
        left = sorted("@" + str(g.get("handle")) for g in self._usergroups() if uid in (g.get("users") or []))
        channels, note = self._channel_note(uid)
        detail = f"{who}: still in {', '.join(left)}" if left else f"{who}: in no user group"
        return Verification(
            action, not left, {"usergroups": left, **channels}, "; ".join(p for p in (detail, note) if p)
        )

    def manual_tasks(self, actions: list[Action], person: Person) -> list[ManualTask]:
        """The channel handover, when the plan hands work over (on any system) and holds a Slack account."""
        if not any(a.account.system == self.instance for a in actions):
            return []
        if not any(a.kind in HANDOVER for a in actions):
            return []  # a plain disable (the bundled policies) hands nothing over
        manager = person.manager or "the manager"
        return [
            ManualTask(
                "channels",
                f"Hand over the Slack channels {person.id} created or managed to {manager} (Slack has no API for "
                "it: channel details > Settings > Channel Managers), and review the Slack Connect channels "
                "among them with the other organizations (the case record lists them)",
                owner="it",
                due="0d",
                blocking=False,
            )
        ]
