"""The Slack handover, mixed into the Slack connector.

- ``remove_memberships``: the person leaves every user group. Slack's SCIM Groups are its user groups:
  the SCIM user lists them (``groups``), and ``PATCH /Groups/{id}`` removes the member (v2: a ``remove``
  operation on ``members[value eq "..."]``; v1: ``operation: delete``). SCIM's limits (org-wide, hundreds
  a minute) suit bulk runs far better than the Web API's Tier 2 ``usergroups.*`` methods, and the
  ``admin`` scope covers it. Undo adds them back. It runs before ``disable_account`` (``ordering``):
  Slack drops a deactivated user from its user groups, and the receipt must still see them.
- The channels the person created, and among them the Slack Connect (externally shared) ones, are
  listed in that receipt (``users.conversations``, Tier 3; setting ``channel_note``), so the case
  record names them. Slack has no API that transfers a channel (its ``creator`` is fixed; channel
  managers are set in the client): a handover plan carries a checklist task instead (``manual_tasks``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from offboard import Action, ActionKind, ManualTask, Person, Receipt, Verification
from offboard.errors import NotFound, PermissionDenied

__all__ = ["SlackHandover", "CHANNELS_READ", "PRIVATE_READ", "HANDOVER_LANES"]

CHANNELS_READ = "channels:read"
PRIVATE_READ = "groups:read"
#: Web API tier of the channel listing (per method per workspace): Tier 3, 50 a minute.
HANDOVER_LANES = {"users.conversations": (50 / 60, 10)}
_PAGE = 200
_PATCH_V2 = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
_CORE_V1 = "urn:scim:schemas:core:1.0"
#: Kinds that make a plan a handover (the person's work goes to someone), on whichever system.
K = ActionKind
HANDOVER = frozenset({K.HANDOVER_MAILBOX, K.SET_AUTO_REPLY, K.REMOVE_FORWARDING, K.TRANSFER_OWNERSHIP})


class SlackHandover:
    """User groups and the channel note for ``SlackConnector`` (which provides the API calls and settings)."""

    instance: str
    settings: Any
    ordering: ClassVar[tuple[tuple[ActionKind, ActionKind], ...]] = (
        (ActionKind.REMOVE_MEMBERSHIPS, ActionKind.DISABLE_ACCOUNT),
    )

    if TYPE_CHECKING:

        def _api(self, method: str, what: str, scope: str, **params: Any) -> dict[str, Any]: ...
        def _call_scim(self, version: str, verb: str, path: str, what: str, **kw: Any) -> dict[str, Any]: ...
        def _scim_version(self) -> str: ...
        def _require(self, action: Action) -> dict[str, Any]: ...

    def _user_groups(self, action: Action) -> list[dict[str, Any]]:
        """The user groups the SCIM user is in: ``{value, display}``."""
        return [
            {"value": g.get("value"), "display": g.get("display")}
            for g in self._require(action).get("groups") or []
            if g.get("value")
        ]

    def _patch_member(self, group: dict[str, Any], user_id: str, add: bool, what: str) -> None:
        version = self._scim_version()
        member = [{"value": user_id}]
        if version == "v2":
            op = (
                {"op": "add", "path": "members", "value": member}
                if add
                else {"op": "remove", "path": f'members[value eq "{user_id}"]'}
            )
            body: dict[str, Any] = {"schemas": [_PATCH_V2], "Operations": [op]}
        else:
            body = {"schemas": [_CORE_V1], "members": member if add else [{**member[0], "operation": "delete"}]}
        self._call_scim(version, "PATCH", f"Groups/{group['value']}", what, body_params=body)

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
        if not self.settings.channel_note:
            return {}, ""
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
        groups = self._user_groups(action)
        removed = []
        for group in groups:
            try:
                self._patch_member(group, uid, False, f"remove {who} from user group {group.get('display')}")
            except NotFound:
                continue  # the group is gone
            removed.append(group)
        channels, note = self._channel_note(uid)
        detail = f"removed from {len(removed)} user group(s)" + (
            f": {', '.join(str(g.get('display')) for g in removed)}" if removed else ""
        )
        return Receipt(
            action,
            changed=bool(removed),
            before={"groups": removed, **channels},
            detail="; ".join(p for p in (detail, note) if p),
        )

    def undo_remove_memberships(self, receipt: Receipt) -> Receipt:
        uid, who = receipt.action.account.id, receipt.action.account.name
        current = {g["value"] for g in self._user_groups(receipt.action)}
        restored = []
        for group in receipt.before.get("groups") or []:
            if group["value"] in current:
                continue
            self._patch_member(group, uid, True, f"put {who} back in user group {group.get('display')}")
            restored.append(group.get("display"))
        return Receipt(receipt.action, changed=bool(restored), detail=f"back in {len(restored)} user group(s)")

    def verify_memberships(self, action: Action) -> Verification:
        who = action.account.name
        left = sorted(str(g.get("display") or g["value"]) for g in self._user_groups(action))
        detail = f"{who}: still in user groups {', '.join(left)}" if left else f"{who}: in no user group"
        return Verification(action, not left, {"usergroups": left}, detail)

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
