"""The generic SCIM connector against scim2-server (a real third-party SCIM server) and the sandbox."""

from __future__ import annotations

import contextlib
import json

import pytest
from pydantic import ValidationError

from offboard import Account, Action, ActionKind, Person, Secret
from offboard.errors import AuthError, PermissionDenied
from offboard.testing import ConnectorContract
from offboard_connectors.scim import ScimConnector

from ._support import SandboxContract, raw_client, unique
from .conftest import SCIM2_TOKEN

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


def _seed(client, email: str, employee_id: str) -> str:
    user = {
        "schemas": [USER],
        "userName": email,
        "externalId": employee_id,
        "active": True,
        "emails": [{"value": email, "type": "work", "primary": True}],
    }
    response = client.post("Users", json=user)
    assert response.status_code == 201, response.text
    user_id = response.json()["id"]
    for name in ("engineering", "all-staff"):
        group = {"schemas": [GROUP], "displayName": f"{name}-{unique()}", "members": [{"value": user_id}]}
        assert client.post("Groups", json=group).status_code == 201
    return user_id


def _state(client, account) -> dict:
    user = client.get(f"Users/{account.id}")
    if user.status_code == 404:
        return {"exists": False}
    groups = client.get("Groups", params={"filter": f'members.value eq "{account.id}"'}).json()
    return {
        "active": user.json().get("active"),
        "groups": sorted(g["id"] for g in groups.get("Resources") or []),
    }


@pytest.fixture
def client(scim2_server):
    """A plain HTTP client of scim2-server, to seed and read it beside the connector."""
    with raw_client(scim2_server[0], SCIM2_TOKEN) as client:
        yield client


class TestScimAgainstScim2Server(ConnectorContract):
    """The contract, against scim2-server from PyPI."""

    @pytest.fixture
    def connector(self, scim2_server):
        connector = ScimConnector("app", {"base_url": scim2_server[0], "token": Secret(SCIM2_TOKEN, "test")})
        yield connector
        connector.close()

    @pytest.fixture
    def list_connector(self, scim2_server, client):
        for _ in range(5):  # enough users for three pages of two
            _seed(client, f"{unique('l')}@corp.example", unique("E"))
        settings = {"base_url": scim2_server[0], "token": Secret(SCIM2_TOKEN, "test"), "page_size": 2}
        lister = ScimConnector("app", settings)
        yield lister
        lister.close()

    @pytest.fixture
    def person(self, client):
        email = f"{unique('u')}@corp.example"
        employee_id = unique("E")
        _seed(client, email, employee_id)
        return Person(id=email, email=email, employee_id=employee_id)

    @pytest.fixture
    def target_state(self, client):
        return lambda account: _state(client, account)

    @pytest.fixture
    def fault(self, scim2_server):
        return scim2_server[1].fault

    @pytest.fixture
    def secret_values(self):
        return [SCIM2_TOKEN]

    # -- beyond the contract ----------------------------------------------------

    def test_discover_by_alias_and_employee_id(self, connector, client):
        email = f"{unique('u')}@corp.example"
        alias = f"{unique('alias')}@corp.example"
        user = {
            "schemas": [USER],
            "userName": unique("handle"),
            "externalId": "EMP-" + unique(),
            "active": True,
            "emails": [{"value": alias, "type": "work"}],
        }
        created = client.post("Users", json=user).json()
        by_alias = connector.discover(Person(id=email, email=email, aliases=(alias,)))
        assert [a.id for a in by_alias] == [created["id"]]
        by_employee = connector.discover(Person(id="x", employee_id=user["externalId"]))
        assert [a.id for a in by_employee] == [created["id"]]

    def test_explicit_mapping(self, scim2_server, client):
        handle = unique("svc")
        created = client.post("Users", json={"schemas": [USER], "userName": handle, "active": True}).json()
        connector = ScimConnector(
            "app",
            {
                "base_url": scim2_server[0],
                "token": Secret(SCIM2_TOKEN, "test"),
                "accounts": {"Pat@Corp.Example": handle},
            },
        )
        assert [a.id for a in connector.discover(Person(id="pat@corp.example"))] == [created["id"]]

    @pytest.fixture
    def lie(self, scim2_server):
        @contextlib.contextmanager
        def lying():
            scim2_server[1].lie_for.add("/Users/")
            try:
                yield
            finally:
                scim2_server[1].lie_for.discard("/Users/")

        return lying

    def test_403_names_the_missing_permission(self, connector, person, scim2_server):
        account = connector.discover(person)[0]
        scim2_server[1].deny["PATCH"] = "token is read-only"
        try:
            with pytest.raises(PermissionDenied) as info:
                connector.apply(Action(ActionKind.DISABLE_ACCOUNT, account))
        finally:
            scim2_server[1].deny.pop("PATCH")
        assert info.value.permissions == ("write /Users",)
        assert "write /Users" in str(info.value) and "token is read-only" in str(info.value)

    def test_put_fallback_when_patch_is_not_supported(self, connector, person, client):
        account = connector.discover(person)[0]
        connector._patch = False  # what a ServiceProviderConfig with patch.supported=false leads to
        receipt = connector.apply(Action(ActionKind.DISABLE_ACCOUNT, account))
        assert receipt.changed and client.get(f"Users/{account.id}").json()["active"] is False
        assert connector.verify(Action(ActionKind.DISABLE_ACCOUNT, account)).ok

    def test_put_fallback_when_patch_answers_501(self, connector, person, client, scim2_server):
        """A server whose ServiceProviderConfig says PATCH but whose PATCH answers 501 Not Implemented
        (RFC 9110 15.6.2: not a failure that passes): PUT at once, not retried until the attempts run out."""
        account = connector.discover(person)[0]
        connector._service_config()
        scim2_server[1].refuse["PATCH /Users/"] = 501
        try:
            receipt = connector.apply(Action(ActionKind.DISABLE_ACCOUNT, account))
        finally:
            scim2_server[1].refuse.clear()
        assert receipt.changed and client.get(f"Users/{account.id}").json()["active"] is False
        assert connector._patch is False

    def test_the_read_back_says_what_was_read(self, connector, person):
        account = connector.discover(person)[0]
        disable, groups = Action(ActionKind.DISABLE_ACCOUNT, account), Action(ActionKind.REMOVE_MEMBERSHIPS, account)
        assert (
            connector.verify(disable).detail == f"{account.name}: active: true"
        )  # was "disable_account does not hold"
        connector.apply(disable)
        assert connector.verify(disable).detail == f"{account.name}: active: false"  # was "disable_account holds"
        connector.apply(groups)
        assert connector.verify(groups).detail == f"{account.name}: in no group"

    def test_delete_as_a_later_step(self, connector, person, client):
        account = connector.discover(person)[0]
        action = Action(ActionKind.DELETE_ACCOUNT, account)
        assert not connector.verify(action).ok
        assert connector.apply(action).changed
        assert client.get(f"Users/{account.id}").status_code == 404
        assert connector.verify(action).ok
        assert connector.apply(action).changed is False

    def test_list_accounts_pages_through_everyone(self, scim2_server, client):
        connector = ScimConnector(
            "app", {"base_url": scim2_server[0], "token": Secret(SCIM2_TOKEN, "test"), "page_size": 2}
        )
        total = client.get("Users", params={"count": "0"}).json()["totalResults"]
        seen, cursor, pages = [], None, 0
        while True:
            page = connector.list_accounts(cursor)
            seen += [a.id for a in page.accounts]
            pages += 1
            cursor = page.cursor
            if cursor is None:
                break
        assert len(seen) == len(set(seen)) == total and pages >= total // 2

    def test_bad_token_is_an_auth_error_and_check_says_so(self, scim2_server, person):
        connector = ScimConnector("app", {"base_url": scim2_server[0], "token": Secret("wrong-token-value", "t")})
        result = connector.check()
        assert not result.ok and "401" in result.detail
        with pytest.raises(AuthError):
            connector.discover(person)

    def test_inline_secret_is_refused(self, scim2_server):
        with pytest.raises(ValidationError, match="must not be written inline"):
            ScimConnector("app", {"base_url": scim2_server[0], "token": "plain-text-token"})

    def test_unreachable_server_is_transient(self):
        from offboard.errors import TransientError

        connector = ScimConnector("app", {"base_url": "http://127.0.0.1:9/", "timeout": 2})
        with pytest.raises(TransientError):
            connector.check()


class TestScimBulk:
    """Removing a member from many groups through /Bulk (RFC 7644 3.7), against scim2-server, which
    advertises Bulk (maxOperations 1000, maxPayloadSize 1 MiB) in its ServiceProviderConfig."""

    @pytest.fixture
    def gate(self, scim2_server):
        gate = scim2_server[1]
        gate.seen.clear()
        yield gate
        gate.refuse.clear()
        gate.bulk_faults.clear()

    @pytest.fixture
    def connector(self, scim2_server):
        from offboard.config._config import Limits
        from offboard.engine._retry import call_with_retries

        connector = ScimConnector("app", {"base_url": scim2_server[0], "token": Secret(SCIM2_TOKEN, "test")})
        # as inside an engine call: a request that fails for a reason that passes is sent again (no waiting here)
        connector.request = lambda send, lane=None, idempotent=True: call_with_retries(  # type: ignore[method-assign]
            send, system="app", limits=Limits(), pause=lambda lane, s: None, sleep=lambda s: None
        )[0]
        yield connector
        connector.close()

    def _member_of(self, client, n: int) -> tuple[Action, list[str]]:
        email = f"{unique('b')}@corp.example"
        user_id = client.post("Users", json={"schemas": [USER], "userName": email, "active": True}).json()["id"]
        groups = []
        for _ in range(n):
            group = {"schemas": [GROUP], "displayName": unique("g"), "members": [{"value": user_id}]}
            groups.append(client.post("Groups", json=group).json()["id"])
        return Action(ActionKind.REMOVE_MEMBERSHIPS, Account(system="app", id=user_id, name=email)), groups

    def _groups_of(self, client, user_id: str) -> set[str]:
        found = client.get("Groups", params={"filter": f'members.value eq "{user_id}"'}).json()
        return {g["id"] for g in found.get("Resources") or []}

    def _writes(self, gate) -> list[tuple[str, str]]:
        return [(m, p.rsplit("/", 1)[-1]) for m, p in gate.seen if m != "GET"]

    def test_one_bulk_request_removes_the_member_from_every_group(self, connector, client, gate):
        action, groups = self._member_of(client, 5)
        gate.seen.clear()
        receipt = connector.apply(action)
        assert self._writes(gate) == [("POST", "Bulk")]  # not five PATCHes
        assert self._groups_of(client, action.account.id) == set()
        assert receipt.changed and receipt.detail == "removed from 5 group(s) through /Bulk"
        assert {g["id"] for g in receipt.before["groups"]} == set(groups)
        assert connector.verify(action).ok

    def test_requests_hold_at_most_max_operations(self, connector, client, gate):
        action, _ = self._member_of(client, 5)
        connector._service_config()
        assert connector._bulk == (1000, 1048576)  # what scim2-server's ServiceProviderConfig says
        connector._bulk = (2, 1048576)  # as a service provider with maxOperations 2 would say
        gate.seen.clear()
        connector.apply(action)
        assert self._writes(gate) == [("POST", "Bulk")] * 3  # 2 + 2 + 1
        assert self._groups_of(client, action.account.id) == set()

    def test_payload_and_operation_limits_cut_the_requests(self):
        from offboard_connectors._scim_bulk import bulk_chunks

        operations = [{"method": "PATCH", "path": f"/Groups/{i:04d}", "data": {}} for i in range(7)]
        assert bulk_chunks(operations, 3, 1 << 20) == [[0, 1, 2], [3, 4, 5], [6]]
        one = len(json.dumps(operations[0])) + 1
        envelope = len(json.dumps({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": []}))
        assert bulk_chunks(operations, 100, envelope + 2 * one) == [[0, 1], [2, 3], [4, 5], [6]]
        assert bulk_chunks(operations, 100, 10) == [[i] for i in range(7)]  # one alone even if it is too large

    def test_an_operation_answered_503_is_sent_again_alone(self, connector, client, gate):
        action, groups = self._member_of(client, 4)
        gate.bulk_faults[groups[2]] = (503, "")
        gate.seen.clear()
        connector.apply(action)
        bulks = [p for m, p in gate.seen if m == "POST"]
        assert len(bulks) == 2 and not gate.bulk_faults  # the retry held only the failed operation
        assert self._groups_of(client, action.account.id) == set()

    def test_no_target_means_already_removed(self, connector, client, gate):
        """A retried request whose operations already went through: each answers 400 noTarget, which is done."""
        from offboard_connectors._scim_bulk import remove_in_bulk

        action, groups = self._member_of(client, 3)
        assert remove_in_bulk(connector, action.account.id, groups, (1000, 1 << 20)) == ([], None)
        again = remove_in_bulk(connector, action.account.id, groups, (1000, 1 << 20))  # the real server's noTarget
        assert again == ([], None)
        assert self._groups_of(client, action.account.id) == set()

    def test_a_lasting_failure_is_raised_after_the_others_are_removed(self, connector, client, gate):
        """One operation answered 400 mutability, one answered 501 (its own PATCH follows): the 501's group and
        the third are removed before the action fails naming the first."""
        from offboard.errors import PermanentError

        action, groups = self._member_of(client, 3)
        gate.bulk_faults[groups[0]] = (400, "mutability")
        gate.bulk_faults[groups[1]] = (501, "")
        with pytest.raises(PermanentError) as info:
            connector.apply(action)
        assert groups[0] in str(info.value) and "HTTP 400" in str(info.value)
        assert self._groups_of(client, action.account.id) == {groups[0]}  # the other two went through
        assert not connector.verify(action).ok

    def test_a_refused_bulk_request_falls_back_to_one_patch_per_group(self, connector, client, gate):
        """ServiceProviderConfig said Bulk, the endpoint answers 501: PATCH each group, and /Bulk is not asked again."""
        action, groups = self._member_of(client, 3)
        gate.refuse["/Bulk"] = 501
        gate.seen.clear()
        connector.apply(action)
        writes = self._writes(gate)
        assert writes[0] == ("POST", "Bulk") and sorted(writes[1:]) == sorted(("PATCH", g) for g in groups)
        assert self._groups_of(client, action.account.id) == set() and connector._bulk is False
        second, _ = self._member_of(client, 2)
        gate.seen.clear()
        connector.apply(second)
        assert [m for m, _ in self._writes(gate)] == ["PATCH", "PATCH"]

    def test_one_group_is_one_patch(self, connector, client, gate):
        action, groups = self._member_of(client, 1)
        gate.seen.clear()
        connector.apply(action)
        assert self._writes(gate) == [("PATCH", groups[0])]


SYSTEM = "scim"


class TestScimAgainstSandbox(SandboxContract):
    """The same contract against the sandbox's SCIM 2.0 app."""

    connector_class = ScimConnector
    instance = "app"

    @pytest.fixture
    def target_state(self, sandbox):
        sim = sandbox.sim(SYSTEM)
        return lambda account: {k: v for k, v in (sim.account(account.id) or {}).items() if k not in ("meta",)}

    def _many_groups(self, sandbox, person, connector) -> tuple[str, set[str]]:
        """Put the person's user in more groups than three pages hold; return its id and group ids."""
        sim = sandbox.sim(SYSTEM)
        settings = sim.connector_settings(lambda name, value: value)
        client = raw_client(settings["base_url"] + "/", settings["token"])
        user_id = connector.discover(person)[0].id
        for i in range(3 * sim.knobs.page_cap + 1):
            group = {"schemas": [GROUP], "displayName": f"extra-{i}-{unique()}", "members": [{"value": user_id}]}
            assert client.post("Groups", json=group).status_code == 201
        return user_id, {g["id"] for g in client.get("Groups", params={"count": "1000"}).json()["Resources"]}

    @pytest.mark.parametrize("filter_supported", [True, False])
    def test_memberships_over_many_pages_with_and_without_filter(
        self, connector, sandbox_people, sandbox, filter_supported
    ):
        """ServiceProviderConfig decides filter vs paging /Groups; every listing follows totalResults."""
        sim = sandbox.sim(SYSTEM)
        person = next(sandbox_people).person
        user_id, _ = self._many_groups(sandbox, person, connector)
        expected = set(sim.account(user_id)["groups"])
        assert len(expected) > 3 * sim.knobs.page_cap
        sim.filter_supported = filter_supported
        try:
            account = connector.discover(person)[0]
            action = Action(ActionKind.REMOVE_MEMBERSHIPS, account)
            before = connector.verify(action)
            assert set(before.observed["groups"]) == expected
            receipt = connector.apply(action)
            assert len(receipt.before["groups"]) == len(expected)
            assert sim.account(user_id)["groups"] == [] and connector.verify(action).ok
            if not filter_supported:
                assert not sim.log.entries(contains="members.value")
        finally:
            sim.filter_supported = True
