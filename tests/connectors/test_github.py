"""The GitHub connector against the sandbox: organization mode and Enterprise Managed Users (SCIM)."""

from __future__ import annotations

import secrets

import pytest

from offboard import Action, ActionKind, Person
from offboard.errors import PermissionDenied
from offboard.testing import ConnectorContract
from offboard_connectors._github_residual import mailbox
from offboard_connectors.github import GitHubConnector

SYSTEM = "github"


def sandbox_org(sandbox) -> str:
    return sandbox.config()["connectors"][SYSTEM]["settings"]["org"]


def _spare(sandbox, nth: int):
    """The ``nth`` person from the end of the org's active employees with a login: tests that need a member no
    other test has touched take theirs there, while ``sandbox_people`` hands people out from the front (on two
    workers, a test taking the company's first member found it already removed by a contract test)."""
    return [
        i
        for i in sandbox.company.in_system(SYSTEM)
        if i.kind == "person" and i.person is not None and i.person.active and not (i.protected or i.admin)
        if i.github_login and not i.outside_collaborator and i.person.type == "employee"
    ][-nth]


class _GitHubFixtures:
    extra: dict = {}

    @pytest.fixture
    def connector(self, sandbox_settings, sandbox):
        settings = {
            **sandbox_settings,
            **{k: (sandbox.company.enterprise if v == "ENTERPRISE" else v) for k, v in self.extra.items()},
        }
        connector = GitHubConnector("github", settings)
        yield connector
        connector.close()

    @pytest.fixture
    def list_connector(self, connector, sandbox_settings, sandbox):
        settings = {
            **sandbox_settings,
            **{k: (sandbox.company.enterprise if v == "ENTERPRISE" else v) for k, v in self.extra.items()},
        }
        lister = GitHubConnector("github", {**settings, "page_size": 3})
        yield lister
        lister.close()

    @pytest.fixture
    def person(self, sandbox_people):
        return next(i for i in sandbox_people if i.github_login and not i.outside_collaborator).person

    @pytest.fixture
    def target_state(self, sandbox):
        sim = sandbox.sim(SYSTEM)
        return lambda account: sim.account(account.id) or sim.account(account.name)

    @pytest.fixture
    def fault(self, sandbox):
        return sandbox.sim(SYSTEM).force

    @pytest.fixture
    def secret_values(self, sandbox_secrets):
        return sandbox_secrets

    @pytest.fixture
    def lie(self, sandbox):
        return lambda: sandbox.sim(SYSTEM).knobs_set(lie_rate=1.0)


class TestGitHubOrganization(_GitHubFixtures, ConnectorContract):
    # remove_memberships is the enterprise's (TestGitHubEnterprise below)
    kinds = (ActionKind.DISABLE_ACCOUNT, ActionKind.REVOKE_TOKENS, ActionKind.REMOVE_LICENSES)

    def test_undo_restores_the_before_state(self, connector, person, sandbox):
        """GitHub cannot restore a removed membership: undo re-invites with the same role and says it is pending."""
        account = connector.discover(person)[0]
        receipt = connector.apply(Action(ActionKind.DISABLE_ACCOUNT, account))
        undone = connector.undo(receipt)
        assert undone.pending and "invited back" in undone.detail
        assert sandbox.sim(SYSTEM).log.entries(method="PUT", contains=f"/memberships/{account.id}")

    def test_403_names_the_missing_scope(self, connector, person, sandbox):
        sim = sandbox.sim(SYSTEM)
        account = connector.discover(person)[0]
        granted = sim.granted
        sim.granted = frozenset(granted - {"admin:org"})
        try:
            with pytest.raises(PermissionDenied) as info:
                connector.apply(Action(ActionKind.DISABLE_ACCOUNT, account))
            result = connector.check()
        finally:
            sim.granted = granted
        assert "admin:org" in info.value.permissions and "admin:org" in str(info.value)
        assert not result.ok and "admin:org" in result.missing

    def test_outside_collaborator_is_removed(self, connector, sandbox):
        ident = next(i for i in sandbox.company.in_system(SYSTEM) if i.outside_collaborator and i.github_login)
        found = connector.discover(ident.person or Person(id=ident.email, email=ident.email))
        assert found and found[0].attributes["kind"] == "outside_collaborator"
        action = Action(ActionKind.DISABLE_ACCOUNT, found[0])
        assert connector.apply(action).changed and connector.verify(action).ok

    def test_the_residual_check_finds_a_pending_invitation_to_the_persons_mailbox(
        self, connector, sandbox_settings, sandbox
    ):
        sim = sandbox.sim(SYSTEM)
        ident = _spare(sandbox, 2)
        local, _, domain = ident.email.partition("@")
        accounts = connector.discover(ident.person)
        assert connector.residual(ident.person, accounts) == []  # nothing pending: clean
        other = sim.invite(email=f"someone.else+{local}@{domain}")  # another mailbox: not theirs
        mine = sim.invite(email=f"{local.upper()}+gh@{domain}", role="admin")  # a sub-address of theirs
        assert connector.residual(ident.person, accounts) == []  # the same connector within a minute: its last read
        fresh = GitHubConnector("github", sandbox_settings)  # as the next `offboard check` run
        sim.log.clear()
        try:
            found = fresh.residual(ident.person, accounts)
            again = fresh.residual(ident.person, accounts)
        finally:
            fresh.close()
            del sim.invitations[other], sim.invitations[mine]
        assert [(x.account.name, x.kind, x.account.attributes["invitation"]) for x in found] == [
            (f"{local.upper()}+gh@{domain}", ActionKind.DISABLE_ACCOUNT, mine)
        ]
        assert f"pending invitation to {sim.org} as admin, sent 2025-01-02" in found[0].detail
        assert again == found and len(sim.log.entries(contains="/invitations")) == 1  # listed once, not per person
        assert {e.method for e in sim.log.entries()} == {"GET"}  # read-only
        granted = sim.granted
        sim.granted = frozenset(granted - {"admin:org"})  # a read:org token cannot list invitations
        unreadable = GitHubConnector("github", sandbox_settings)
        try:
            unread = unreadable.residual(ident.person, accounts)
        finally:
            sim.granted = granted
            unreadable.close()
        assert len(unread) == 1 and "pending invitations not read (PermissionDenied" in unread[0].detail

    def test_an_email_invitation_is_discovered_cancelled_read_back_and_sent_again_by_undo(self, connector, sandbox):
        """Accepting an invitation to the person's mailbox would make them a member again: discover finds it,
        disable_account cancels it (read back afresh), the other kinds have nothing to do, undo invites again."""
        sim = sandbox.sim(SYSTEM)
        ident = _spare(sandbox, 2)
        local, _, domain = ident.email.partition("@")
        address = f"{local}+gh@{domain}"
        mine = sim.invite(email=address, role="admin")
        sim.invite(email=f"someone.else+{local}@{domain}")  # another mailbox: not theirs
        try:
            accounts = connector.discover(ident.person)
            invitations = [a for a in accounts if a.attributes.get("kind") == "invitation"]
            assert [(a.name, a.attributes["invitation"]) for a in invitations] == [(address, mine)]
            assert any(a.id == ident.github_login for a in accounts)  # the login too
            cancel = Action(ActionKind.DISABLE_ACCOUNT, invitations[0])
            assert connector.read_before(cancel) == {"kind": "invitation", "pending": True, "role": "admin"}
            assert not connector.verify(cancel).ok
            sim.log.clear()
            receipt = connector.apply(cancel)
            assert receipt.changed and mine not in sim.invitations
            assert [(e.method, e.path) for e in sim.log.entries() if e.method != "GET"] == [
                ("DELETE", f"/orgs/{sim.org}/invitations/{mine}")
            ]
            assert connector.verify(cancel).ok
            assert connector.residual(ident.person, accounts) == []
            assert not connector.apply(cancel).changed  # nothing pending any more
            for kind in (ActionKind.REVOKE_TOKENS, ActionKind.REMOVE_LICENSES, ActionKind.REMOVE_MEMBERSHIPS):
                other = Action(kind, invitations[0])
                assert not connector.apply(other).changed and connector.verify(other).ok, kind
            restored = connector.undo(receipt)
            assert restored.changed and restored.pending
            assert [i["role"] for i in sim.invitations.values() if i["email"] == address] == ["admin"]
            assert not connector.verify(cancel).ok  # pending again, as before the revoke
            assert not connector.undo(receipt).changed  # already pending: not sent twice
        finally:
            for key in [k for k, v in sim.invitations.items() if local in str(v["email"])]:
                del sim.invitations[key]

    def test_a_login_invited_again_is_a_pending_membership_the_read_back_finds(self, connector, sandbox):
        sim = sandbox.sim(SYSTEM)
        ident = _spare(sandbox, 3)
        account = connector.discover(ident.person)[0]
        connector.apply(Action(ActionKind.DISABLE_ACCOUNT, account))
        assert connector.discover(ident.person) == []
        sim.invite(login=ident.github_login)
        again = connector.discover(ident.person)
        assert again and connector.verify(Action(ActionKind.DISABLE_ACCOUNT, again[0])).detail.endswith(
            "(pending, member)"
        )
        assert connector.residual(ident.person, again) == []  # the read-back covers it: not listed twice
        connector.apply(Action(ActionKind.DISABLE_ACCOUNT, again[0]))
        assert sim.account(ident.github_login)["state"] == "removed"

    def test_login_from_mapping_file(self, sandbox, sandbox_settings, sandbox_people, tmp_path):
        sim = sandbox.sim(SYSTEM)  # another test may have removed the first member: take one still there
        ident = next(
            i
            for i in sandbox_people
            if i.github_login and not i.outside_collaborator and sim.account(i.github_login)["state"] == "active"
        )
        mapping = tmp_path / "logins.yaml"
        mapping.write_text(f"someone@elsewhere.example: {ident.github_login}\n")
        connector = GitHubConnector("github", {**sandbox_settings, "logins_file": str(mapping), "saml_lookup": False})
        assert [a.id for a in connector.discover(Person(id="someone@elsewhere.example"))] == [ident.github_login]

    def _listed(self, connector):
        accounts, cursor = [], None
        while True:
            page = connector.list_accounts(cursor)
            accounts += page.accounts
            if page.cursor is None:
                return {a.id.lower(): a for a in accounts}
            cursor = page.cursor

    def test_listed_logins_carry_their_saml_identity_read_in_bulk(self, list_connector, sandbox):
        """The inventory correlates by email: each listed member carries its SAML identity's, read with one GraphQL
        request per 100 identities, never one per login; outside collaborators, whom GitHub exempts from SAML SSO
        (so no external identity names them), carry the person the config's ``accounts:`` maps them to."""
        sim = sandbox.sim(SYSTEM)
        before = len(sim.log.entries(method="POST", contains="/graphql"))
        listed = self._listed(list_connector)
        lookups = len(sim.log.entries(method="POST", contains="/graphql")) - before
        idents = [i for i in sandbox.company.in_system(SYSTEM) if i.github_login.lower() in listed]
        assert len(idents) > 3 and any(i.outside_collaborator for i in idents)
        for ident in idents:
            account = listed[ident.github_login.lower()]
            assert account.email == ident.email, ident.github_login
            expected = "mapping" if ident.outside_collaborator else "organization_saml"
            assert account.attributes["identified_by"] == expected, ident.github_login
        members = [i for i in idents if not i.outside_collaborator]
        assert lookups == -(-len(members) // 100)

    def test_outside_collaborators_have_no_saml_identity(self, connector, sandbox_settings, sandbox):
        """GitHub: outside collaborators are not required to use SAML SSO, so the identity provider's external
        identities never name them; without a mapping, discovery cannot find them by email."""
        still = {r["login"] for r in sandbox.sim(SYSTEM).members.values() if r["state"] == "collaborator"}
        ident = next(i for i in sandbox.company.in_system(SYSTEM) if i.github_login in still)
        assert connector._saml_login(Person(id=ident.email)) is None
        unmapped = GitHubConnector("github", {**sandbox_settings, **self.extra, "accounts": {}})
        try:
            assert unmapped.discover(Person(id=ident.email)) == []
        finally:
            unmapped.close()
        assert [a.id for a in connector.discover(Person(id=ident.email))] == [ident.github_login]

    def test_enterprise_level_saml_identities(self, sandbox_settings, sandbox):
        sim = sandbox.sim(SYSTEM)
        sim.saml_level = "enterprise"
        connector = GitHubConnector("github", {**sandbox_settings, "enterprise": sandbox.company.enterprise})
        try:
            listed = self._listed(connector)
        finally:
            sim.saml_level = "org"
            connector.close()
        ident = next(i for i in sandbox.company.in_system(SYSTEM) if i.github_login.lower() in listed)
        assert listed[ident.github_login.lower()].email == ident.email
        assert listed[ident.github_login.lower()].attributes["identified_by"] == "enterprise_saml"

    def test_identities_the_token_may_not_read_leave_the_listing_whole_and_say_why(self, sandbox_settings, sandbox):
        sim = sandbox.sim(SYSTEM)
        sim.saml_level, granted = "enterprise", sim.granted
        sim.granted = frozenset(granted - {"admin:enterprise"})
        connector = GitHubConnector("github", {**sandbox_settings, "enterprise": sandbox.company.enterprise})
        try:
            listed = self._listed(connector)
        finally:
            sim.saml_level, sim.granted = "org", granted
            connector.close()
        reach = {i.github_login.lower() for i in sandbox.company.in_system(SYSTEM)}
        assert {k for k in reach if sim.account(k)["state"] in ("active", "collaborator")} <= set(listed)
        mapped = {login.lower() for login in sandbox_settings.get("accounts", {}).values()}
        assert mapped  # the sandbox maps its outside collaborators: they stay correlated by the admin's mapping
        for login, account in listed.items():
            if login in mapped:
                assert account.attributes["identified_by"] == "mapping"
                continue
            if account.attributes["kind"] == "invitation":  # an email invitation names its own mailbox
                assert account.email == login and account.attributes["emails"] == [mailbox(login)]
                continue
            assert account.email is None
            assert "cannot read who the logins are" in account.attributes["correlation"]
            assert "admin:enterprise" in account.attributes["correlation"]

    def test_without_saml_members_carry_their_verified_domain_email(self, connector, sandbox_settings, sandbox):
        sim = sandbox.sim(SYSTEM)
        sim.saml_level = "none"
        try:
            listed = self._listed(connector)
        finally:
            sim.saml_level = "org"
        members = [i for i in sandbox.company.in_system(SYSTEM) if sim.account(i.github_login)["state"] == "active"]
        assert members
        for ident in members:
            account = listed[ident.github_login.lower()]
            assert (account.email, account.attributes["identified_by"]) == (ident.email, "verified_domain_email")
        # outside collaborators are not members: GitHub has no verified email for them; only the admin's mapping
        # (the sandbox config's ``accounts:``) names them
        collaborators = [
            i for i in sandbox.company.in_system(SYSTEM) if sim.account(i.github_login)["state"] == "collaborator"
        ]
        assert collaborators
        for ident in collaborators:
            assert listed[ident.github_login.lower()].attributes["identified_by"] == "mapping"
        unmapped = GitHubConnector("github", {**sandbox_settings, "accounts": {}})
        sim.saml_level = "none"
        try:
            bare = self._listed(unmapped)
        finally:
            sim.saml_level = "org"
            unmapped.close()
        for ident in collaborators:
            assert bare[ident.github_login.lower()].email is None

    def test_commit_emails_name_outside_collaborators_both_ways(self, sandbox_settings, sandbox):
        """Without a mapping, ``commit_emails`` finds an outside collaborator from their email (discover) and the
        same person from their login (the listing), through the commits GitHub linked to them; an email GitHub
        linked to no account (an unverified commit email) names nobody."""
        sim = sandbox.sim(SYSTEM)
        collaborators = [
            i for i in sandbox.company.in_system(SYSTEM) if sim.account(i.github_login)["state"] == "collaborator"
        ]
        assert collaborators
        bare = {**sandbox_settings, **self.extra, "accounts": {}}
        off, on = GitHubConnector("github", bare), GitHubConnector("github", {**bare, "commit_emails": True})
        try:
            ident = collaborators[0]
            person = Person(id=ident.email, email=ident.email)
            assert off.discover(person) == []  # nothing else names them
            assert [a.id for a in on.discover(person)] == [ident.github_login]
            listed = self._listed(on)
            for c in collaborators:
                account = listed[c.github_login.lower()]
                assert (account.email, account.attributes["identified_by"]) == (c.email, "commit_email")
            sim.add_commit(None, "stranger@corp.example")  # an author email no account verified
            assert on.discover(Person(id="stranger@corp.example", email="stranger@corp.example")) == []
        finally:
            off.close()
            on.close()
        searches = [e for e in sim.log.entries(method="GET") if e.path == "/search/commits"]
        assert searches and all("org%3A" in e.query for e in searches)  # never a search across all of GitHub

    def test_without_saml_discover_finds_members_as_the_listing_does(self, sandbox_settings, sandbox):
        """An organization without SAML SSO: the listing names members by verified-domain email, and so must
        ``discover`` (one account set, whatever the path), reading them in bulk once for many people."""
        sim = sandbox.sim(SYSTEM)
        members = [i for i in sandbox.company.in_system(SYSTEM) if sim.account(i.github_login)["state"] == "active"]
        connector = GitHubConnector("github", {**sandbox_settings, **self.extra, "accounts": {}})
        sim.saml_level = "none"
        sim.log.clear()
        try:
            found = {i.github_login: connector.discover(Person(id=i.email, email=i.email)) for i in members[:5]}
        finally:
            sim.saml_level = "org"
            connector.close()
        assert {login: [a.id for a in accounts] for login, accounts in found.items()} == {
            login: [login] for login in found
        }
        bulk = [e for e in sim.log.entries(method="POST") if b"organizationVerifiedDomainEmails" in e.body]
        assert len(bulk) == -(-len(sim.members) // 100)  # read once for the five people

    def test_saml_lookup_off_says_why_logins_are_unidentified(self, sandbox_settings):
        connector = GitHubConnector("github", {**sandbox_settings, "saml_lookup": False, "accounts": {}})
        try:
            listed = self._listed(connector)
        finally:
            connector.close()
        logins = [a for a in listed.values() if a.attributes["kind"] != "invitation"]
        assert logins and all(a.email is None and "saml_lookup" in a.attributes["correlation"] for a in logins)

    def test_secondary_rate_limit_without_headers_waits_a_minute(self, connector, person, sandbox):
        from offboard.errors import RateLimited

        connector.check()
        with sandbox.sim(SYSTEM).force(403, retry_after=None):
            try:
                connector.discover(person)
            except RateLimited as exc:
                assert exc.retry_after >= 60
            except PermissionDenied:
                pass  # a plain 403 without a rate-limit message is a permission problem, as on GitHub

    def test_a_members_removal_reads_the_membership_once(self, sandbox, connector):
        """The membership that says the login is a member is the before-state too: it was read a second time, one
        more request per person of GitHub's 5,000 an hour."""
        sim = sandbox.sim(SYSTEM)
        ident = _spare(sandbox, 4)
        account = connector.discover(ident.person)[0]
        sim.log.clear()
        receipt = connector.apply(Action(ActionKind.DISABLE_ACCOUNT, account))
        login = ident.github_login
        assert [(e.method, e.path) for e in sim.log.entries()] == [
            ("GET", f"/orgs/{sandbox_org(sandbox)}/memberships/{login}"),
            ("DELETE", f"/orgs/{sandbox_org(sandbox)}/memberships/{login}"),
        ]
        assert receipt.before["kind"] == "member" and receipt.before["role"] and receipt.changed

    def test_every_request_takes_a_token_of_its_resources_lane(self, sandbox, connector):
        """GitHub meters requests, each resource in its own hourly window: the connector takes a token per request, on
        the lane of the resource the request counts against. At a token per call (a call pages, reads back, looks up
        through GraphQL), a 10,000-person run spent an hour's 5,000 core requests in under five minutes and then waited
        out the window."""
        sim = sandbox.sim(SYSTEM)
        person = _spare(sandbox, 1).person
        lanes: list[str] = []
        connector.throttle = lanes.append  # the engine's hook: one call per request, before it is sent
        sim.log.clear()
        account = connector.discover(person)[0]
        for kind in (ActionKind.REVOKE_TOKENS, ActionKind.DISABLE_ACCOUNT):
            action = Action(kind, account)
            connector.verify(action, connector.apply(action))
        sent = sim.log.entries()
        resources = [
            "graphql" if e.path == "/graphql" else "scim" if e.path.startswith("/scim/") else "core" for e in sent
        ]
        assert len(sent) > 3 and lanes == resources
        assert set(lanes) <= set(GitHubConnector.rate_limits)


class TestGitHubEnterpriseManagedUsers(_GitHubFixtures, ConnectorContract):
    extra = {"enterprise": "ENTERPRISE", "emu": True}
    kinds = (ActionKind.DISABLE_ACCOUNT, ActionKind.REVOKE_TOKENS)

    @pytest.fixture
    def target_state(self, sandbox):
        sim = sandbox.sim(SYSTEM)

        def state(account):
            # Suspension revokes the user's tokens and keys; nothing can bring those back, so undo is judged without them.
            found = sim.account(account.id) or sim.account(account.name) or {}
            return {k: v for k, v in found.items() if k != "credentials"}

        return state

    def test_scim_needs_scim_enterprise_not_admin_enterprise(self, connector, person, sandbox):
        """GitHub's SCIM API needs scim:enterprise, which admin:enterprise does not include."""
        sim = sandbox.sim(SYSTEM)
        granted = sim.granted
        sim.granted = frozenset(granted - {"scim:enterprise"})
        try:
            with pytest.raises(PermissionDenied) as info:
                connector.discover(person)
            result = connector.check()
        finally:
            sim.granted = granted
        assert "scim:enterprise" in info.value.permissions
        assert not result.ok and "scim:enterprise" in result.missing


@pytest.mark.parametrize(
    ("api_url", "graphql_url"),
    [
        ("https://api.github.com", "https://api.github.com/graphql"),
        ("https://github.example.com/api/v3", "https://github.example.com/api/graphql"),
        ("https://github.example.com/api/v3/", "https://github.example.com/api/graphql"),
    ],
)
def test_graphql_url_on_github_enterprise_server(api_url, graphql_url, secret):
    connector = GitHubConnector(
        "github", {"org": "o", "token": secret("ghp_" + secrets.token_hex(18)), "api_url": api_url}
    )
    assert connector.graphql_url == graphql_url


def test_the_invitation_list_is_read_again_once_a_minute_has_passed():
    from offboard_connectors._github_residual import Invitations

    pages = {1: [{"id": n, "email": f"p{n}@corp.example"} for n in range(100)], 2: [{"id": 100, "email": None}]}
    calls = []

    class Answer:
        def __init__(self, body):
            self.body = body

        def json(self):
            return self.body

    def call(method, path, what, params):
        calls.append((method, path, params["page"]))
        return Answer(pages[params["page"]])

    now = [1000.0]
    invitations = Invitations(call, "acme corp", fresh_for=60, clock=lambda: now[0])
    assert len(invitations.read()) == 101 and calls == [("GET", "orgs/acme%20corp/invitations", p) for p in (1, 2)]
    now[0] += 59
    invitations.read()
    assert len(calls) == 2  # within the minute: the list already read
    now[0] += 2
    invitations.read()
    assert len(calls) == 4  # a minute on: read again, every page


def test_a_listing_of_invitations_holds_no_lock_other_readers_wait_on():
    """Readers run inside engine calls that hold the system's concurrency slots, and a listing that backs off
    takes a slot back: a lock held across the listing left the others waiting on it with every slot (a
    200-person run under faults hung that way). Here each listing goes on only once the other is listing too."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from offboard_connectors._github_residual import Invitations

    both = threading.Barrier(2, timeout=5)

    class Answer:
        def json(self):
            return []

    def call(method, path, what, params):
        both.wait()
        return Answer()

    invitations = Invitations(call, "acme")
    with ThreadPoolExecutor(2) as pool:
        reads = [pool.submit(invitations.read, True) for _ in range(2)]
        assert [read.result(timeout=20) for read in reads] == [[], []]
