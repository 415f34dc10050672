"""The OData ``$filter`` subset Microsoft Graph supports on users, for the Entra simulator: eq/ne,
startswith/endswith, any() over collections, and/or; advanced queries need ``ConsistencyLevel: eventual``."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ._app import HTTPError, Request

_EQ = re.compile(r"^\s*(\w+)\s+(eq|ne)\s+'((?:[^']|'')*)'\s*$", re.I)
_STARTS = re.compile(r"^\s*(startswith|endswith)\((\w+)\s*,\s*'((?:[^']|'')*)'\)\s*$", re.I)
_ANY = re.compile(r"^\s*(\w+)/any\((\w+):\s*\2\s+eq\s+'((?:[^']|'')*)'\)\s*$", re.I)
_FILTERABLE = {
    "id",
    "userprincipalname",
    "mail",
    "employeeid",
    "displayname",
    "givenname",
    "surname",
    "accountenabled",
    "department",
    "jobtitle",
    "usertype",
}


def _filter(expr: str, req: Request) -> Callable[[dict[str, Any]], bool]:
    """Compile the subset of OData $filter Graph supports on users: eq/ne, startswith/endswith, any(), and/or."""
    advanced = req.header("consistencylevel").lower() == "eventual"
    for joiner, combine in ((" or ", any), (" and ", all)):
        if joiner in expr.lower():
            parts = re.split(joiner, expr, flags=re.I)
            preds = [_filter(p, req) for p in parts]

            def joined(
                u: dict[str, Any], preds: list[Callable[[dict[str, Any]], bool]] = preds, combine: Any = combine
            ) -> bool:
                return bool(combine(p(u) for p in preds))

            return joined

    def bad() -> HTTPError:
        return HTTPError(400, f"Invalid filter clause: {expr}", reason="BadRequest")

    m = _EQ.match(expr)
    if m:
        attr, op, val = m.group(1), m.group(2).lower(), m.group(3).replace("''", "'")
        if attr.lower() not in _FILTERABLE:
            raise HTTPError(
                400,
                f"Property '{attr}' does not exist as a declared property or extension property.",
                reason="Request_UnsupportedQuery",
            )
        if op == "ne" and not advanced:
            raise HTTPError(
                400,
                "Unsupported or invalid query filter clause specified for property 'ne' of resource 'User'.",
                reason="Request_UnsupportedQuery",
            )
        key = next(
            k
            for k in (
                "id",
                "userPrincipalName",
                "mail",
                "employeeId",
                "displayName",
                "givenName",
                "surname",
                "accountEnabled",
                "department",
                "jobTitle",
                "userType",
            )
            if k.lower() == attr.lower()
        )
        fold = key in ("userPrincipalName", "mail")
        want = val.lower() if fold else val

        def eq(u: dict[str, Any]) -> bool:
            have = u.get(key)
            have = have.lower() if fold and isinstance(have, str) else have
            return (str(have) if key == "accountEnabled" else have) == (
                want if key != "accountEnabled" else want.lower()
            )

        return eq if op == "eq" else (lambda u: not eq(u))
    m = _STARTS.match(expr)
    if m:
        fn, attr, val = m.group(1).lower(), m.group(2), m.group(3).replace("''", "'").lower()
        if fn == "endswith" and not advanced:
            raise HTTPError(
                400,
                "Operator 'endsWith' is not supported because the 'ConsistencyLevel:eventual' header is missing. Refer to https://aka.ms/graph-docs/advanced-queries for more information",
                reason="Request_UnsupportedQuery",
            )
        text_key = next(
            (
                k
                for k in ("userPrincipalName", "mail", "displayName", "givenName", "surname")
                if k.lower() == attr.lower()
            ),
            None,
        )
        if text_key is None:
            raise bad()
        if fn == "startswith":
            return lambda u: str(u.get(text_key) or "").lower().startswith(val)
        return lambda u: str(u.get(text_key) or "").lower().endswith(val)
    m = _ANY.match(expr)
    if m:
        attr, val = m.group(1), m.group(3).replace("''", "'").lower()
        list_key = next((k for k in ("proxyAddresses", "otherMails") if k.lower() == attr.lower()), None)
        if list_key is None:
            raise bad()
        return lambda u: any(str(x).lower() == val for x in u.get(list_key) or ())
    raise bad()
