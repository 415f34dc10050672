"""The SCIM side of ``offboard connectors probe``: a test user to deactivate, a second read, and conformance.

``offboard.engine._probe`` drives the probe; a connector takes part by having ``create_probe_account``,
``remove_probe_account`` and ``probe_checks`` (the SCIM connector mixes this class in).
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from offboard import Account
from offboard.errors import PermanentError

from ._http import escape_filter

if TYPE_CHECKING:
    import httpx

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
#: scim2-tester checks the conformance run asks for: discovery, reading users and PATCH replace.
CONFORMANCE_TAGS = {"discovery", "crud:read", "patch:replace"}


class ScimProbe:
    """Mixed into ``ScimConnector``: what ``offboard connectors probe`` asks of a SCIM application."""

    if TYPE_CHECKING:  # provided by ScimConnector
        instance: str
        _client: httpx.Client

        def _call(self, method: str, path: str, what: str, permission: str, **kw: Any) -> httpx.Response: ...
        def _account(self, user: dict[str, Any]) -> Account: ...
        def _search(self, resource: str, scim_filter: str, permission: str = ...) -> list[dict[str, Any]]: ...

    def create_probe_account(self, domain: str = "probe.offboard.invalid") -> Account:
        """Create an active test user with a name no person has (``offboard-probe-<random>@domain``)."""
        name = f"offboard-probe-{secrets.token_hex(4)}@{domain}"
        body = {
            "schemas": [USER_SCHEMA],
            "userName": name,
            "active": True,
            "displayName": "offboard probe (safe to delete)",
            "name": {"givenName": "offboard", "familyName": "probe"},
            "emails": [{"value": name, "type": "work", "primary": True}],
        }
        created = self._call("POST", "Users", f"create probe user {name}", "write /Users", json=body).json()
        if not isinstance(created, dict) or not created.get("id"):
            raise PermanentError(f"creating probe user {name} answered no id", system=self.instance)
        return self._account(created)

    def remove_probe_account(self, account: Account) -> None:
        self._call("DELETE", f"Users/{account.id}", f"delete probe user {account.name}", "write /Users")

    def probe_checks(self, account: Account) -> list[tuple[str, bool, str]]:
        """Reads beyond ``verify``'s ``GET /Users/{id}``: the user as a filtered search returns it (a
        different code path in many applications, and the one IdPs read)."""
        found = self._search("Users", f"userName eq {escape_filter(account.name)}")
        match = [u for u in found if str(u.get("id")) == account.id]
        if not match:
            return [("search by userName", False, f"{account.name} is not found by a userName filter")]
        active = is_active(match[0])
        return [("search by userName", not active, f"{account.name}: active: {str(active).lower()} in search")]

    def conformance(self) -> list[tuple[str, str, str]]:
        """RFC 7644 checks from scim2-tester on the User resource (creates and deletes its own test users):
        ``(title, status, reason)`` each. Needs the ``probe`` extra (scim2-tester, scim2-client)."""
        try:
            from scim2_client.client import BaseSyncSCIMClient
            from scim2_tester import check_server
        except ImportError:
            raise PermanentError(
                "--conformance needs scim2-tester and scim2-client: pip install 'offboard[probe]'",
                system=self.instance,
            ) from None
        http = self._client

        class _Client(BaseSyncSCIMClient):  # scim2-client over the connector's httpx client
            def _stays_under_base_url(self, endpoint: str) -> bool:
                url, base = http.build_request("GET", endpoint).url, http.base_url
                same = (url.scheme, url.host, url.port) == (base.scheme, base.host, base.port)
                return same and url.raw_path.startswith(base.raw_path)

            def _parse_json(self, response: Any) -> Any:
                return response.json()

            def request(self, method: str, url: str, **kwargs: Any) -> Any:
                return http.request(method, url, **kwargs)

        client = _Client()
        client.discover()
        results = check_server(client, include_tags=CONFORMANCE_TAGS, resource_types=["User"])
        return [(r.title or "?", r.status.name.lower(), r.reason or "") for r in results]


def is_active(user: dict[str, Any]) -> bool:
    """A SCIM user's ``active``; some servers answer the string \"False\"."""
    value = user.get("active", True)
    if isinstance(value, str):
        return value.strip().lower() != "false"
    return bool(value)
