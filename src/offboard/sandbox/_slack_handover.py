"""The handover side of the Slack simulator: channels (user groups are the SCIM Groups of ``_slack.py``).

- ``users.conversations`` (``channels:read``, and ``groups:read`` for private channels; the channels
  ``user`` is a member of; ``types``, ``exclude_archived``, ``limit`` up to 1000, cursor paging in
  ``response_metadata.next_cursor``, pages may be shorter than ``limit``; Tier 3).

Channels carry ``creator`` and, for Slack Connect, ``is_ext_shared`` with the other organization's team id.
No method transfers a channel's creator: Slack has none, so neither has the simulator. The token's
user (the admin running offboard) is in no channel, so another user's private channels are not listed.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ._app import HTTPError, Request

__all__ = ["SlackHandover", "HANDOVER_SCOPES", "HANDOVER_TIERS"]

HANDOVER_SCOPES = {"users.conversations": "channels:read"}
HANDOVER_TIERS = {"users.conversations": "tier3"}
_PARTNER_TEAM = "T0PARTNER9"


class SlackHandover:
    """Mixed into the Slack simulator (which provides users, granted and the team id)."""

    users: dict[str, dict[str, Any]]
    granted: set[str]
    team_id: str
    company: Any
    knobs: Any

    def _init_handover(self) -> None:
        self.channels: dict[str, dict[str, Any]] = {}
        for uid in sorted(self.users):
            pick = int(hashlib.sha256(f"{self.company.seed}:{uid}:channels".encode()).hexdigest()[:8], 16)
            local = self.users[uid]["name"].split(".")[0]
            if pick % 3 == 0:
                self._add_channel(f"proj-{local}-{pick % 97}", uid, private=False, external=False)
            if pick % 5 == 0:
                self._add_channel(f"ext-partner-{local}", uid, private=False, external=True)
            if pick % 7 == 0:
                self._add_channel(f"priv-{local}", uid, private=True, external=False)

    def _add_channel(self, name: str, creator: str, *, private: bool, external: bool) -> dict[str, Any]:
        cid = ("G" if private else "C") + hashlib.sha256(f"{name}:{creator}".encode()).hexdigest()[:9].upper()
        channel = {
            "id": cid,
            "name": name,
            "is_channel": not private,
            "is_group": private,
            "is_private": private,
            "is_archived": False,
            "is_general": False,
            "is_shared": external,
            "is_ext_shared": external,
            "is_org_shared": False,
            "is_pending_ext_shared": False,
            "creator": creator,
            "created": 1704067200,
            "context_team_id": self.team_id,
            "shared_team_ids": [self.team_id, _PARTNER_TEAM] if external else [self.team_id],
            "members": {creator},
        }
        self.channels[cid] = channel
        return channel

    async def _m_users_conversations(self, req: Request, args: dict[str, str]) -> dict[str, Any]:
        uid = args.get("user", "")
        if uid and uid not in self.users:
            raise HTTPError(200, "user_not_found")
        types = {t.strip() for t in (args.get("types") or "public_channel").split(",") if t.strip()}
        unknown = types - {"public_channel", "private_channel", "mpim", "im"}
        if unknown:
            raise HTTPError(200, "invalid_types")
        if "private_channel" in types and "groups:read" not in self.granted:
            return {
                "ok": False,
                "error": "missing_scope",
                "needed": "groups:read",
                "provided": ",".join(sorted(self.granted)),
            }
        try:
            limit = int(args.get("limit") or 100)
        except ValueError:
            raise HTTPError(200, "invalid_limit") from None
        if not 1 <= limit <= 1000:
            raise HTTPError(200, "invalid_limit")
        exclude_archived = args.get("exclude_archived", "").lower() in ("1", "true")
        rows = [
            c
            for c in sorted(self.channels.values(), key=lambda c: c["id"])
            if ("private_channel" if c["is_private"] else "public_channel") in types
            and not (exclude_archived and c["is_archived"])
            and (not uid or uid in c["members"])
            # another user's private channels only where the token's user is a member too (it is in none here)
            and not (uid and c["is_private"])
        ]
        try:
            start = int(args.get("cursor") or 0)
        except ValueError:
            raise HTTPError(200, "invalid_cursor") from None
        page = rows[start : start + self.knobs.page(limit)]  # Slack may answer fewer than limit: follow the cursor
        nxt = start + len(page)
        return {
            "ok": True,
            "channels": [{k: v for k, v in c.items() if k != "members"} for c in page],
            "response_metadata": {"next_cursor": str(nxt) if nxt < len(rows) else ""},
        }
