"""Conformance kit for connector authors, also loaded as a pytest plugin.

Subclass :class:`ConnectorContract` in your connector's test module and provide
these fixtures::

    connector     a configured instance talking to a live (test) target
    person        a Person holding one active account there; fresh per test
    target_state  a function(account) -> dict: the account's state as read
                  independently of the connector's write path (enabled flag,
                  memberships, ...). Used to prove reads never write and undo restores.
    fault         a function(status, retry_after=None) -> context manager that makes
                  the target answer the connector's next requests with that HTTP
                  status (call pytest.skip inside for protocols without HTTP status)
    secret_values the secret strings the connector was configured with

Optional fixture: ``lie``, a function() -> context manager inside which the target
acknowledges writes without applying them; with it, the kit checks that such a write
fails verification and the failure names the account.

Optional fixture: ``list_connector``, a connector whose ``list_accounts`` needs at least
three pages on the test target (a small page size); default: ``connector``. Every connector
that can list must page through everything, each account once.

Optional class attributes: ``kinds`` (the action kinds to exercise; default: every
capability except ``delete_account``) and ``retry_after_reported`` (False when the
system sends no Retry-After with its rate-limit answers).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any, ClassVar

import pytest
import structlog

from .connector import Connector
from .errors import AuthError, PermissionDenied, RateLimited, TransientError
from .models import Action, ActionKind, Person, Receipt

__all__ = ["ConnectorContract", "actions_for"]

_ORDER = list(ActionKind)


def actions_for(connector: Connector, person: Person, kinds: Iterable[ActionKind] | None = None) -> list[Action]:
    """The actions the contract runs for ``person``, in policy order."""
    accounts = connector.discover(person)
    assert accounts, f"{connector!r} found no account for {person.id}"
    wanted = set(kinds if kinds is not None else connector.capabilities() - {ActionKind.DELETE_ACCOUNT})
    wanted &= connector.capabilities()
    return [Action(k, a) for a in accounts for k in _ORDER if k in wanted]


class ConnectorContract:
    """Tests every connector must pass. Subclass and provide the fixtures above."""

    kinds: ClassVar[tuple[ActionKind, ...] | None] = None
    retry_after_reported: ClassVar[bool] = True

    def _actions(self, connector: Connector, person: Person) -> list[Action]:
        return actions_for(connector, person, self.kinds)

    def test_declares_itself(self, connector):
        assert connector.name, "a connector needs a name"
        assert connector.capabilities(), "a connector must support at least one action kind"
        assert connector.reversible() <= connector.capabilities()

    def test_check_succeeds(self, connector):
        result = connector.check()
        assert result.ok, f"check() failed: {result.detail} missing={result.missing}"

    def test_discover_finds_the_account(self, connector, person):
        accounts = connector.discover(person)
        assert accounts, f"no account found for {person.id}"
        for account in accounts:
            assert account.system == connector.instance
            assert account.id and account.name

    def test_discover_unknown_person_finds_nothing(self, connector):
        nobody = Person(id="nobody-7f3a@nowhere.invalid", email="nobody-7f3a@nowhere.invalid", employee_id="X-0000000")
        assert connector.discover(nobody) == []

    def test_read_side_never_writes(self, connector, person, target_state):
        actions = self._actions(connector, person)
        before = {a.account.id: target_state(a.account) for a in actions}
        connector.check()
        connector.discover(person)
        for action in actions:
            connector.verify(action)
        after = {a.account.id: target_state(a.account) for a in actions}
        assert after == before, "check/discover/verify changed the target"

    def test_apply_then_verify(self, connector, person):
        for action in self._actions(connector, person):
            receipt = connector.apply(action)
            assert isinstance(receipt, Receipt) and receipt.action == action
            verification = connector.verify(action, receipt)
            assert verification.ok or (receipt.pending and verification.pending), (
                f"{action.key} not verified after apply: {verification.detail}"
            )
            # The read-back in words: what was read (``active: false``, ``in no group``), not the action's name.
            detail = verification.detail.strip()
            assert detail and action.kind.value not in detail, f"{action.key} read back as {detail!r}"

    def test_unapplied_action_does_not_verify(self, connector, person):
        for action in self._actions(connector, person):
            if action.kind in (ActionKind.DISABLE_ACCOUNT, ActionKind.REMOVE_MEMBERSHIPS):
                assert not connector.verify(action).ok, f"{action.key} verifies before it was applied"

    def test_second_apply_is_a_no_op(self, connector, person, target_state):
        """A second run, even by another case (the engine passes ``case`` in the params), changes nothing."""
        actions = self._actions(connector, person)
        for action in actions:
            connector.apply(Action(action.kind, action.account, {**action.params, "case": "case-contract-first"}))
        state = {a.account.id: target_state(a.account) for a in actions}
        for action in actions:
            again = connector.apply(Action(action.kind, action.account, {**action.params, "case": "case-contract-2nd"}))
            assert again.changed is False, f"second {action.key} (another case) reported a change"
        assert {a.account.id: target_state(a.account) for a in actions} == state

    def test_undo_restores_the_before_state(self, connector, person, target_state):
        actions = [a for a in self._actions(connector, person) if a.kind in connector.reversible()]
        if not actions:
            pytest.skip(f"{connector.name} has no reversible action kinds")
        before = {a.account.id: target_state(a.account) for a in actions}
        receipts = [connector.apply(a) for a in actions]
        assert {a.account.id: target_state(a.account) for a in actions} != before, "apply changed nothing"
        for receipt in reversed(receipts):
            connector.undo(receipt)
        assert {a.account.id: target_state(a.account) for a in actions} == before

    def test_a_lying_write_fails_verify_naming_the_account(self, connector, person, request):
        try:
            lie = request.getfixturevalue("lie")
        except pytest.FixtureLookupError:
            pytest.skip("this test module provides no `lie` fixture")
        actions = [a for a in self._actions(connector, person) if a.kind is ActionKind.DISABLE_ACCOUNT]
        if not actions:
            pytest.skip(f"{connector.name} does not disable accounts")
        action = actions[0]
        with lie():
            receipt = connector.apply(action)
        verification = connector.verify(action, receipt)
        assert not verification.ok, f"{action.key} verified although the write was never applied"
        assert action.account.name in verification.detail, "the failure must name the account"

    def test_list_accounts_pages_through_at_least_three_pages(self, connector, person, request):
        if not connector.can_list():
            pytest.skip(f"{connector.name} cannot list accounts")
        try:
            lister = request.getfixturevalue("list_connector")
        except pytest.FixtureLookupError:
            lister = connector
        seen: list[str] = []
        cursor, pages = None, 0
        while True:
            page = lister.list_accounts(cursor)
            seen += [a.id for a in page.accounts]
            pages += 1
            assert pages < 10_000, "list_accounts never ends"
            if page.cursor is None:
                break
            cursor = page.cursor  # (it may repeat: Samba's paged-results cookie names the search, not a place)
        assert pages >= 3, (
            f"list_accounts took {pages} page(s); give the kit a list_connector with a page size small enough "
            "for three pages, so following cursors is tested"
        )
        assert len(seen) == len(set(seen)), "list_accounts returned an account twice"
        missing = {a.id for a in connector.discover(person)} - set(seen)
        assert not missing, f"list_accounts missed {sorted(missing)}"

    def test_foreign_account_lookup_does_not_abort_discovery(self, connector, person):
        """An address at a domain the target does not own (a partner's, a personal one) is "not ours",
        whatever the target answers for it (Google: 403), and the person's own accounts are still found."""
        foreign = "someone-7f3a@partner-7f3a.example"
        mixed = Person(
            id=person.id, email=foreign, aliases=(*person.emails,), employee_id=person.employee_id, name=person.name
        )
        assert {a.id for a in connector.discover(mixed)} == {a.id for a in connector.discover(person)}
        assert connector.discover(Person(id=foreign, email=foreign)) == []

    def test_401_maps_to_auth_error(self, connector, person, fault):
        connector.check()  # a token first, so the answer under test comes from the API itself
        with fault(401):
            with pytest.raises(AuthError) as info:
                connector.discover(person)
        assert not isinstance(info.value, PermissionDenied), "401 is rejected credentials, not a missing right"

    def test_403_maps_to_permission_denied(self, connector, person, fault):
        connector.check()  # a token first, so the answer under test comes from the API itself
        with fault(403):
            with pytest.raises((PermissionDenied, RateLimited)) as info:
                connector.discover(person)
        assert not getattr(info.value, "retryable", False) or isinstance(info.value, RateLimited)

    def test_429_maps_to_rate_limited(self, connector, person, fault):
        with fault(429, retry_after=7):
            with pytest.raises(RateLimited) as info:
                connector.discover(person)
        if self.retry_after_reported:
            assert info.value.retry_after == pytest.approx(7)

    def test_5xx_maps_to_transient_error(self, connector, person, fault):
        with fault(503):
            with pytest.raises(TransientError):
                connector.discover(person)

    def test_no_secret_in_receipts_reprs_or_logs(self, connector, person, secret_values, caplog):
        caplog.set_level(logging.DEBUG)
        texts: list[str] = [repr(connector), str(connector), repr(connector.settings)]
        saved = structlog.get_config()
        structlog.configure(
            wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG), cache_logger_on_first_use=False
        )
        try:
            with structlog.testing.capture_logs() as logs:  # every level, whatever an earlier test configured
                for action in self._actions(connector, person):
                    receipt = connector.apply(action)
                    texts += [repr(receipt), json.dumps(receipt.to_dict(), default=str)]
                    verification = connector.verify(action, receipt)
                    texts += [repr(verification), json.dumps(verification.to_dict(), default=str)]
        finally:
            structlog.configure(**saved)
        texts += [json.dumps(logs, default=str), caplog.text]
        _assert_no_secrets(secret_values, texts)


def _assert_no_secrets(secret_values: Iterable[str], texts: Iterable[str]) -> None:
    texts = list(texts)
    for secret in secret_values:
        for text in texts:
            assert secret not in text, "a secret value leaked into receipts, reprs or logs"


def pytest_configure(config: Any) -> None:
    config.addinivalue_line("markers", "connector_contract: a test from offboard.testing.ConnectorContract")
