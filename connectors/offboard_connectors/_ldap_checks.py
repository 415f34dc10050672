"""What the directory connector checks without writing: the service account's rights (``check``) and,
for a disable's read-back, whether the lock really locks (OpenLDAP's ppolicy must have pwdLockout: TRUE)."""

from __future__ import annotations

import secrets
from typing import Any

from offboard import Account, Action, Verification
from offboard.errors import NotFound

from ._ldap_support import (
    _LOCK_ATTR,
    ACCOUNTDISABLE,
    PPOLICY_CONTROL,
    DirectoryParts,
    _all,
    _first,
    _is_locked,
    _parent,
    _ppolicy_error,
    _same_dn,
    _unbind,
    ldap3,
    lx,
)


class LdapChecks(DirectoryParts):
    """Mixed into LdapConnector."""

    def _verify_disabled(self, action: Action, entry: dict) -> Verification:
        a, flavor = entry["attributes"], self.settings.flavor
        if flavor == "ad":
            uac = int(_first(a, "userAccountControl") or 0)
            target = self.settings.disabled_ou
            misplaced = bool(target and not _same_dn(_parent(entry["dn"]), target))
            ok = bool(uac & ACCOUNTDISABLE) and not misplaced
            detail = (
                "ACCOUNTDISABLE bit is not set"
                if not uac & ACCOUNTDISABLE
                else (f"disabled, but not in {target}" if misplaced else "ACCOUNTDISABLE bit is set")
            )
            if ok and target:
                detail += f", in {target}"
            return Verification(action, ok, {"userAccountControl": uac, "dn": entry["dn"]}, detail)
        value = _first(a, _LOCK_ATTR[flavor])
        observed: dict[str, Any] = {_LOCK_ATTR[flavor]: value}
        if not _is_locked(flavor, value, forever=True):
            state = f"is {value}" if value else "is not set"
            return Verification(action, False, observed, f"{_LOCK_ATTR[flavor]} {state}")
        if flavor == "openldap":  # a refused probe bind proves nothing where the lock is not enforced
            problem = self._lockout_problem(action.account)
            if problem:
                return Verification(action, False, observed, problem)
        outcome = self._bind_probe(entry["dn"])
        observed["bind"] = outcome
        if outcome == "success":
            return Verification(action, False, observed, "a bind as the account still succeeds")
        if outcome == "accountLocked":
            return Verification(action, True, observed, "bind refused: account locked")
        if flavor == "openldap" and not self._server_supports(PPOLICY_CONTROL):
            return Verification(action, False, observed, "the server has no ppolicy overlay: the lock is not enforced")
        return Verification(action, True, observed, f"bind refused ({outcome}); server did not say why")

    def _lockout_problem(self, account: Account) -> str | None:
        """Why ``pwdAccountLockedTime`` would not lock ``account`` (no pwdLockout: TRUE in its policy), or None.

        The effective policy is the entry's ``pwdPolicySubentry``, else ``ppolicy_dn`` (the overlay's
        ``ppolicy_default``), else the only ``pwdPolicy`` entry under the directory's root."""
        entry = self._entry(account, ("pwdPolicySubentry",))
        policy = _first(entry["attributes"], "pwdPolicySubentry") or self.settings.ppolicy_dn
        lockout: str | None = None
        if policy:
            try:
                found = list(self._search(policy, "(objectClass=*)", ["pwdLockout"], ldap3.BASE))
            except NotFound:
                found = []
            if not found:
                return f"its password policy {policy} does not exist or is not readable; pwdLockout cannot be checked"
            lockout = _first(found[0]["attributes"], "pwdLockout")
        else:
            s = self.settings
            domain = [p for p in (x.strip() for x in s.base_dn.split(",")) if p.lower().startswith("dc=")]
            found = list(self._search(",".join(domain) or s.base_dn, "(objectClass=pwdPolicy)", ["pwdLockout"]))
            if len(found) != 1:
                return (
                    f"its effective password policy cannot be told ({len(found)} pwdPolicy entries readable, no "
                    "pwdPolicySubentry): set ppolicy_dn to the overlay's ppolicy_default"
                )
            policy, lockout = found[0]["dn"], _first(found[0]["attributes"], "pwdLockout")
        if str(lockout).upper() != "TRUE":
            return (
                f"the effective password policy {policy} has pwdLockout: {lockout or 'unset'}, so "
                "pwdAccountLockedTime does not stop logins; set pwdLockout: TRUE there (and ppolicy_use_lockout)"
            )
        return None

    def _bind_probe(self, dn: str) -> str:
        """Bind as the account with a throwaway password and the ppolicy control; say how it went."""
        conn = ldap3.Connection(
            self._server(),
            user=dn,
            password=secrets.token_urlsafe(24),
            client_strategy=ldap3.SAFE_SYNC,
            auto_referrals=False,
            receive_timeout=self.settings.timeout,
            raise_exceptions=False,
        )
        try:
            conn.open()
            if self.settings.start_tls:
                conn.start_tls()
            bound, result, _, _ = conn.bind(controls=[(PPOLICY_CONTROL, False, None)])
        except lx.LDAPException as exc:
            raise self._network_error(exc) from None
        finally:
            _unbind(conn)
        if bound:
            return "success"
        control = (result.get("controls") or {}).get(PPOLICY_CONTROL) or {}
        if _ppolicy_error(control.get("value")) == 1 or "inactivated" in (result.get("message") or "").lower():
            return "accountLocked"
        return str(result.get("description"))

    def _server_supports(self, oid: str) -> bool:
        root = list(self._search("", "(objectClass=*)", ["supportedControl"], ldap3.BASE))
        return bool(root) and oid in _all(root[0]["attributes"], "supportedControl")

    def _samples(self, base: str, flt: str, attrs: list[str], limit: int) -> list[dict]:
        """Up to ``limit`` entries to test rights on: not the service account, not AD's critical objects."""
        if self._ad:
            flt = f"(&{flt}(!(isCriticalSystemObject=TRUE)))"
        result, response = self._call(
            "search", base, flt, search_scope=ldap3.SUBTREE, attributes=attrs, size_limit=limit
        )
        if result["result"] not in (0, 4):
            self._raise(result, f"search {flt} under {base}")
        return [
            e for e in response if e.get("type") == "searchResEntry" and not _same_dn(e["dn"], self.settings.bind_dn)
        ][:limit]

    def _rights(self, entries: list[dict], needed: list[tuple[str, str]], allowed) -> tuple[list[str], list[str]]:
        """A right is missing when no sampled entry grants it; partly granted ones become notes."""
        missing, notes = [], []
        for attr, right in needed:
            lacking = [e["dn"] for e in entries if not allowed(e, attr)]
            if len(lacking) == len(entries):
                missing.append(right)
            elif lacking:
                where = sorted({_parent(dn) for dn in lacking})
                notes.append(f"{right} not granted under {'; '.join(where)}")
        return missing, notes

    def _ad_rights(self) -> tuple[list[str], list[str]]:
        s = self.settings
        effective = "allowedAttributesEffective"
        allowed = lambda e, attr: attr.lower() in {v.lower() for v in _all(e["attributes"], effective)}  # noqa: E731
        users = self._samples(s.base_dn, self._user_filter(), [effective], 50)
        if not users:
            return [], [f"no user under {s.base_dn} to check rights against"]
        names = ["userAccountControl"] + ["accountExpires"] * s.set_account_expires
        names += ["description"] * s.stamp_description + ["cn"] * bool(s.disabled_ou)
        missing, notes = self._rights(users, [(n, f"write {n} on user objects") for n in names], allowed)
        groups = self._samples(s.group_base_dn or s.base_dn, "(objectClass=group)", [effective], 50)
        more, extra = self._rights(groups, [("member", "write member on group objects")], allowed)
        missing, notes = missing + more, notes + extra
        if s.disabled_ou and "user" not in self._child_classes(s.disabled_ou):
            missing.append(f"create user objects in {s.disabled_ou}")
        notes += ["not checkable without writing: Reset Password on user objects"] * s.scramble_password
        if s.disabled_ou:
            notes.append("not checkable without writing: delete user objects and write name, in their OU")
        return missing, notes

    def _ldap_rights(self) -> tuple[list[str], list[str]]:
        """Probe with deletes of values that cannot exist: refused (50) or noSuchAttribute (16)."""
        s, flavor = self.settings, self.settings.flavor
        lock, verb = _LOCK_ATTR[flavor], "manage" if flavor == "openldap" else "write"
        probes = {
            lock: "19700101000000Z" if flavor == "openldap" else "offboard-rights-probe",
            "userPassword": "offboard-rights-probe",
            "memberUid": "offboard-rights-probe",
        }

        def allowed(entry: dict, attr: str) -> bool:
            value = probes.get(attr, "cn=offboard-rights-probe")
            result, _ = self._call("modify", entry["dn"], {attr: [(ldap3.MODIFY_DELETE, [value])]})
            if result["result"] == 0:  # cannot happen with these values; say so rather than hide it
                self.log.warning("rights probe changed an entry", dn=entry["dn"], attribute=attr)
            return result["result"] != 50

        users = self._samples(s.base_dn, self._user_filter(), ["objectClass"], 5)
        if not users:
            return [], [f"no user under {s.base_dn} to check rights against"]
        needed = [(lock, f"{verb} {lock} on people")]
        needed += [("userPassword", "write userPassword on people")] * s.scramble_password
        missing, notes = self._rights(users, needed, allowed)
        group_flt = "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup))"
        groups = self._samples(s.group_base_dn or s.base_dn, group_flt, ["objectClass"], 5)
        for cls, attr in (
            ("groupofnames", "member"),
            ("groupofuniquenames", "uniqueMember"),
            ("posixgroup", "memberUid"),
        ):
            of_kind = [g for g in groups if cls in {c.lower() for c in _all(g["attributes"], "objectClass")}]
            if of_kind:
                more, extra = self._rights(of_kind, [(attr, f"write {attr} on groups")], allowed)
                missing, notes = missing + more, notes + extra
        return missing, notes
