"""Active Directory's side of the directory connector: who counts as an administrator (adminCount and
transitive membership of the protected groups) and what a disable writes there."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from offboard import Action, Receipt
from offboard.errors import NotFound, PermanentError, PermissionDenied

from ._ldap_support import (
    _ADMIN_TTL,
    _NEVER_EXPIRES,
    _STAMP,
    ACCOUNTDISABLE,
    AD_ADMIN_GROUPS,
    IN_CHAIN,
    SCRAMBLED,
    DirectoryParts,
    _all,
    _filetime,
    _parent,
    _random_ad_password,
    _rdn,
    _same_dn,
    escape_filter_chars,
    ldap3,
)


class ActiveDirectory(DirectoryParts):
    """Mixed into LdapConnector."""

    def _ad_admins(self) -> frozenset[str]:
        """DNs (lowercased) of every member, direct or nested, of AD's protected groups and ``admin_groups``.

        ``adminCount`` alone misses fresh members and accounts AdminSDHolder cleanup reset; the
        transitive match (LDAP_MATCHING_RULE_IN_CHAIN) finds them. Read at most every few minutes."""
        cached = self._admins
        if cached is not None and time.monotonic() - cached[0] < _ADMIN_TTL:
            return cached[1]
        s = self.settings
        root = (
            ",".join(p for p in (x.strip() for x in s.base_dn.split(",")) if p.lower().startswith("dc=")) or s.base_dn
        )
        names = [*AD_ADMIN_GROUPS, *(g for g in s.admin_groups if "=" not in g)]
        groups = [g for g in s.admin_groups if "=" in g]
        terms = "".join(f"(cn={escape_filter_chars(n)})(sAMAccountName={escape_filter_chars(n)})" for n in names)
        groups += [e["dn"] for e in self._search(root, f"(&(objectClass=group)(|{terms}))", ["cn"])]
        members: set[str] = set()
        if groups:
            chain = "".join(f"(memberOf:{IN_CHAIN}:={escape_filter_chars(g)})" for g in dict.fromkeys(groups))
            members = {e["dn"].lower() for e in self._search(root, f"(&(objectClass=user)(|{chain}))", ["cn"])}
        admins = frozenset(members)
        self._admins = (time.monotonic(), admins)
        return admins

    def _disable_ad(self, action: Action) -> Receipt:
        s = self.settings
        entry = self._entry(action.account, ("allowedAttributesEffective",))
        a, dn = entry["attributes"], entry["dn"]
        before = self._disable_before(entry)
        uac, expires = before["userAccountControl"], before["accountExpires"]
        description = before["description"]
        changes: dict[str, list] = {}
        if not uac & ACCOUNTDISABLE:
            changes["userAccountControl"] = [(ldap3.MODIFY_REPLACE, [uac | ACCOUNTDISABLE])]
        now = _filetime(time.time())
        if s.set_account_expires and (expires in _NEVER_EXPIRES or int(expires) > now):
            changes["accountExpires"] = [(ldap3.MODIFY_REPLACE, [str(now)])]
        case = action.params.get("case")
        stamped = any(_STAMP in d for d in description)
        # stamp when this disables, or once on an account disabled by hand; never re-stamp a disabled
        # account with a later case's id: a second disable changes nothing and says so
        if (
            s.stamp_description
            and (not uac & ACCOUNTDISABLE or not stamped)
            and not any(_STAMP in d and (not case or str(case) in d) for d in description)
        ):
            stamp = f"{_STAMP} on {datetime.now(UTC):%Y-%m-%d}" + (f", case {case}" if case else "")
            changes["description"] = [(ldap3.MODIFY_REPLACE, [stamp])]
        move_to = s.disabled_ou if s.disabled_ou and not _same_dn(_parent(dn), s.disabled_ou) else None
        # Check every right first, so a missing one never leaves the account half done.
        allowed = {v.lower() for v in _all(a, "allowedAttributesEffective")}
        needed = [k for k in changes] + (["cn"] if move_to else [])  # a move writes the RDN attribute
        missing = [f"write {k} on user objects" for k in needed if k.lower() not in allowed]
        if move_to and "user" not in self._child_classes(move_to):
            missing.append(f"create user objects in {move_to}")
        if missing:
            raise PermissionDenied(
                f"cannot disable {dn}: the service account lacks: {', '.join(missing)}",
                permissions=tuple(missing),
                system=self.instance,
            )
        if s.scramble_password and "userAccountControl" in changes:  # only when this apply disables
            self._scramble_ad(dn)
            before["irreversible"] = [SCRAMBLED]
        if changes:
            self._modify(dn, changes, f"disable {dn}", tuple(f"write {k} on user objects" for k in changes))
        done = list(changes)
        if move_to:
            try:
                self._move(dn, move_to)
                done.append(f"moved to {move_to}")
            except (PermissionDenied, PermanentError, NotFound) as exc:
                # The account is disabled: keep the receipt so undo stays possible; verify reports the location.
                self.log.warning("account disabled but not moved", account=action.account.name, error=str(exc))
                done.append(f"NOT moved to {move_to}: {exc}")
        changed = bool(changes) or any(d.startswith("moved") for d in done)
        if changed:
            self.log.info("account disabled", account=action.account.name, detail=done)
        return Receipt(action, changed, before, detail=", ".join(done) or "already disabled")

    def _scramble_ad(self, dn: str) -> None:
        """Reset the password to a random one nobody learns (AD wants it quoted, in UTF-16-LE)."""
        value = f'"{_random_ad_password()}"'.encode("utf-16-le")
        self._modify(
            dn,
            {"unicodePwd": [(ldap3.MODIFY_REPLACE, [value])]},
            f"scramble the password of {dn}",
            ("Reset Password on user objects",),
        )

    def _move(self, dn: str, parent: str) -> str:
        rdn = _rdn(dn)
        result, _ = self._call("modify_dn", dn, rdn, new_superior=parent)
        if result["result"] != 0:
            self._raise(
                result,
                f"move {dn} to {parent}",
                (f"create user objects in {parent}", "delete user objects in its OU", "write name"),
            )
        return f"{rdn},{parent}"

    def _child_classes(self, dn: str) -> set[str]:
        found = list(self._search(dn, "(objectClass=*)", ["allowedChildClassesEffective"], ldap3.BASE))
        if not found:
            raise NotFound(f"disabled_ou {dn} does not exist", system=self.instance)
        return {v.lower() for v in _all(found[0]["attributes"], "allowedChildClassesEffective")}
