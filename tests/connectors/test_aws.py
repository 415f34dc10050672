"""The AWS connector against moto in server mode (started here on a free loopback port), through boto3.

A small gate of ours sits in front of moto for what moto does not do: AWS's answers to bad credentials,
missing rights, throttling and outages (injected), writes acknowledged but never applied (lies), and
``ListUsers`` paging (moto answers every user at once, whatever ``MaxItems`` says).
"""

from __future__ import annotations

import contextlib
import io
import json
import secrets
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest

from offboard import Action, ActionKind, Person, Secret
from offboard.errors import AuthError, PermanentError, PermissionDenied
from offboard.testing import ConnectorContract
from offboard_connectors.aws import AwsConnector

from ._support import serve_wsgi, unique

KEY_ID = "AKIA" + uuid.uuid4().hex[:16].upper()
SECRET = "aws-secret-" + uuid.uuid4().hex + uuid.uuid4().hex[:8]
OTHER_ACCOUNT = "222233334444"
STORE = "d-9067" + uuid.uuid4().hex[:6]
_WRITES = {
    "UpdateAccessKey",
    "DeleteLoginProfile",
    "DeactivateMFADevice",
    "RemoveUserFromGroup",
    "DetachUserPolicy",
    "DeleteUserPolicy",
}
_FAULTS = {  # status injected -> what AWS answers (IAM's query protocol: XML errors)
    401: (403, "Sender", "InvalidClientTokenId", "The security token included in the request is invalid."),
    403: (403, "Sender", "AccessDenied", "User is not authorized to perform: iam:GetUser"),
    429: (400, "Sender", "Throttling", "Rate exceeded"),
    503: (503, "Receiver", "ServiceUnavailable", "Service is unavailable."),
}


class AwsGate:
    """WSGI middleware in front of moto: AWS-shaped injected errors, and lies."""

    def __init__(self, app: Callable[..., Any]):
        self.app = app
        self.status: int | None = None
        self.lying = False

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        action = (parse_qs(body.decode("latin-1")).get("Action") or [""])[0]
        if self.status is not None:
            status, kind, code, message = _FAULTS[self.status]
            xml = (
                f"<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error>"
                f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
            )
            start_response(f"{status} Error", [("Content-Type", "text/xml")])
            return [xml.encode()]
        if self.lying and action in _WRITES:
            xml = (
                f'<{action}Response xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><ResponseMetadata>'
                f"<RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></{action}Response>"
            )
            start_response("200 OK", [("Content-Type", "text/xml")])
            return [xml.encode()]
        if action == "ListUsers":
            return self._paged_users(environ, start_response, parse_qs(body.decode("latin-1")))
        return self.app(environ, start_response)

    def _paged_users(self, environ: dict[str, Any], start_response: Callable[..., Any], query: dict[str, Any]) -> Any:
        """moto answers ListUsers with every user, ignoring MaxItems: page it here as IAM does
        (``IsTruncated`` and an opaque ``Marker``)."""
        import xml.etree.ElementTree as ET

        answered: list[Any] = []
        chunks = self.app(environ, lambda status, headers, *exc: answered.append((status, headers)))
        raw = b"".join(chunks)
        status, headers = answered[0]
        if not status.startswith("200"):
            start_response(status, headers)
            return [raw]
        ns = "{https://iam.amazonaws.com/doc/2010-05-08/}"
        root = ET.fromstring(raw)
        result = root.find(f"{ns}ListUsersResult")
        users = result.find(f"{ns}Users")
        members = list(users)
        start = int((query.get("Marker") or ["0"])[0].removeprefix("m") or 0)
        size = int((query.get("MaxItems") or ["100"])[0])
        for member in members:
            users.remove(member)
        for member in members[start : start + size]:
            users.append(member)
        for old in [c for c in result if c.tag in (f"{ns}IsTruncated", f"{ns}Marker")]:
            result.remove(old)
        truncated = start + size < len(members)
        ET.SubElement(result, f"{ns}IsTruncated").text = "true" if truncated else "false"
        if truncated:
            ET.SubElement(result, f"{ns}Marker").text = f"m{start + size}"
        payload = ET.tostring(root)
        start_response(
            status,
            [(k, v) for k, v in headers if k.lower() != "content-length"] + [("Content-Length", str(len(payload)))],
        )
        return [payload]

    @contextlib.contextmanager
    def fault(self, status: int, retry_after: float | None = None) -> Iterator[None]:
        self.status = status
        try:
            yield
        finally:
            self.status = None

    @contextlib.contextmanager
    def lie(self) -> Iterator[None]:
        self.lying = True
        try:
            yield
        finally:
            self.lying = False


@pytest.fixture(scope="module")
def moto_server() -> Iterator[tuple[str, AwsGate]]:
    from moto.server import DomainDispatcherApplication, create_backend_app

    gate = AwsGate(DomainDispatcherApplication(create_backend_app))
    with serve_wsgi(gate) as url:
        yield url.rstrip("/"), gate


@pytest.fixture(scope="module")
def aws(moto_server):
    """boto3 clients that are not the connector's: for seeding and independent reads."""
    import boto3

    url, _ = moto_server
    session = boto3.session.Session(aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET, region_name="us-east-1")
    return lambda service: session.client(service, endpoint_url=url)


def _seed(iam: Any, name: str) -> None:
    iam.create_user(UserName=name)
    for _ in range(2):
        iam.create_access_key(UserName=name)
    iam.create_login_profile(UserName=name, Password="Sandbox-Passw0rd-" + uuid.uuid4().hex[:8])
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName=name.split("@")[0])["VirtualMFADevice"]["SerialNumber"]
    iam.enable_mfa_device(
        UserName=name, SerialNumber=serial, AuthenticationCode1="123456", AuthenticationCode2="654321"
    )
    for group in ("developers", "oncall"):
        with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
            iam.create_group(GroupName=group)
        iam.add_user_to_group(GroupName=group, UserName=name)
    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
    managed = iam.create_policy(PolicyName=f"read-{uuid.uuid4().hex[:10]}", PolicyDocument=json.dumps(document))
    iam.attach_user_policy(UserName=name, PolicyArn=managed["Policy"]["Arn"])
    iam.put_user_policy(UserName=name, PolicyName="scratch-bucket", PolicyDocument=json.dumps(document))


def _state(iam: Any, name: str) -> dict[str, Any]:
    try:
        iam.get_login_profile(UserName=name)
        login = True
    except iam.exceptions.NoSuchEntityException:
        login = False
    return {
        "keys": sorted(
            (k["AccessKeyId"], k["Status"]) for k in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]
        ),
        "login": login,
        "mfa": sorted(d["SerialNumber"] for d in iam.list_mfa_devices(UserName=name)["MFADevices"]),
        "groups": sorted(g["GroupName"] for g in iam.list_groups_for_user(UserName=name)["Groups"]),
        "attached": sorted(p["PolicyArn"] for p in iam.list_attached_user_policies(UserName=name)["AttachedPolicies"]),
        "inline": sorted(iam.list_user_policies(UserName=name)["PolicyNames"]),
    }


class TestAws(ConnectorContract):
    retry_after_reported = False  # AWS throttles with 400 Throttling and no Retry-After

    @pytest.fixture
    def settings(self, moto_server) -> dict[str, Any]:
        url, _ = moto_server
        return {
            "access_key_id": KEY_ID,
            "secret_access_key": Secret(SECRET, source="test"),
            "endpoint_url": url,
            "detach_policies": True,
        }

    @pytest.fixture
    def connector(self, settings):
        connector = AwsConnector("aws", settings)
        yield connector
        connector.close()

    @pytest.fixture
    def person(self, aws):
        email = f"{unique('dev')}@corp.example"
        _seed(aws("iam"), email)
        return Person(id=email, email=email)

    @pytest.fixture
    def target_state(self, aws):
        return lambda account: _state(aws("iam"), account.name)

    @pytest.fixture
    def fault(self, moto_server):
        return moto_server[1].fault

    @pytest.fixture
    def lie(self, moto_server):
        return moto_server[1].lie

    @pytest.fixture
    def list_connector(self, settings):
        return AwsConnector("aws", {**settings, "page_size": 2})

    @pytest.fixture
    def secret_values(self):
        return [SECRET]

    # -- beyond the contract ----------------------------------------------------

    def test_disable_deletes_the_password_and_deactivates_mfa_with_no_undo(self, connector, person, aws):
        account = connector.discover(person)[0]
        receipt = connector.apply(Action(ActionKind.DISABLE_ACCOUNT, account))
        state = _state(aws("iam"), account.name)
        assert receipt.before["console_password"] is True and len(receipt.before["mfa_devices"]) == 1
        assert state["login"] is False and state["mfa"] == []
        assert ActionKind.DISABLE_ACCOUNT not in connector.reversible()

    def test_the_residual_check_finds_a_console_password_until_disabled(self, connector, person, aws):
        account = connector.discover(person)[0]
        found = connector.residual(person, [account])
        assert [(x.account.id, x.kind, x.detail) for x in found] == [
            (account.id, ActionKind.DISABLE_ACCOUNT, "console password (login profile) present")
        ]
        connector.apply(Action(ActionKind.DISABLE_ACCOUNT, account))
        assert connector.residual(person, [account]) == []

    def test_policies_are_left_alone_unless_the_setting_says_so(self, settings, person, aws):
        connector = AwsConnector("aws", {**settings, "detach_policies": False})
        account = connector.discover(person)[0]
        connector.apply(Action(ActionKind.REMOVE_MEMBERSHIPS, account))
        state = _state(aws("iam"), account.name)
        assert state["groups"] == [] and state["attached"] and state["inline"] == ["scratch-bucket"]

    def test_inline_policy_document_comes_back_on_undo(self, connector, person, aws):
        iam = aws("iam")
        account = connector.discover(person)[0]
        original = iam.get_user_policy(UserName=account.name, PolicyName="scratch-bucket")["PolicyDocument"]
        receipt = connector.apply(Action(ActionKind.REMOVE_MEMBERSHIPS, account))
        connector.undo(receipt)
        assert iam.get_user_policy(UserName=account.name, PolicyName="scratch-bucket")["PolicyDocument"] == original

    def test_other_accounts_through_an_assumed_role(self, settings, aws, moto_server):
        import boto3

        sts = aws("sts")
        creds = sts.assume_role(RoleArn=f"arn:aws:iam::{OTHER_ACCOUNT}:role/OffboardRole", RoleSessionName="seed")[
            "Credentials"
        ]
        other = boto3.session.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name="us-east-1",
        ).client("iam", endpoint_url=moto_server[0])
        email = f"{unique('ops')}@corp.example"
        _seed(other, email)
        connector = AwsConnector("aws", {**settings, "account_ids": [OTHER_ACCOUNT]})
        accounts = connector.discover(Person(id=email, email=email))
        assert [a.id for a in accounts] == [f"iam:{OTHER_ACCOUNT}:{email}"]
        connector.apply(Action(ActionKind.REVOKE_TOKENS, accounts[0]))
        assert {k["Status"] for k in other.list_access_keys(UserName=email)["AccessKeyMetadata"]} == {"Inactive"}

    def test_identity_center_memberships_and_destructive_delete(self, settings, aws):
        store = aws("identitystore")
        email = f"{unique('idc')}@corp.example"
        user = store.create_user(
            IdentityStoreId=STORE,
            UserName=email,
            DisplayName="Identity Center person",
            Name={"GivenName": "Idc", "FamilyName": "Person"},
            Emails=[{"Value": email, "Type": "work", "Primary": True}],
        )["UserId"]
        group = store.create_group(IdentityStoreId=STORE, DisplayName=unique("g"))["GroupId"]
        store.create_group_membership(IdentityStoreId=STORE, GroupId=group, MemberId={"UserId": user})
        connector = AwsConnector("aws", {**settings, "identity_store_id": STORE})
        (account,) = [a for a in connector.discover(Person(id=email, email=email)) if a.id.startswith("idc:")]
        receipt = connector.apply(Action(ActionKind.REMOVE_MEMBERSHIPS, account))
        assert receipt.before == {"groups": [group]}
        assert connector.verify(Action(ActionKind.REMOVE_MEMBERSHIPS, account)).ok
        connector.undo(receipt)
        assert not connector.verify(Action(ActionKind.REMOVE_MEMBERSHIPS, account)).ok
        with pytest.raises(PermanentError, match="cannot disable a user"):
            connector.apply(Action(ActionKind.DISABLE_ACCOUNT, account))
        # what the residual check reads on every account: no keys to hold, and a status that is not DISABLED
        assert connector.verify(Action(ActionKind.REVOKE_TOKENS, account)).ok
        assert not connector.verify(Action(ActionKind.DISABLE_ACCOUNT, account)).ok
        delete = Action(ActionKind.DELETE_ACCOUNT, account)
        assert connector.apply(delete).changed and connector.verify(delete).ok
        assert connector.apply(delete).changed is False

    def test_bad_credentials_are_an_auth_error_not_a_missing_right(self, moto_server, person):
        with moto_server[1].fault(401):
            connector = AwsConnector(
                "aws",
                {
                    "access_key_id": KEY_ID,
                    "secret_access_key": Secret(SECRET, source="t"),
                    "endpoint_url": moto_server[0],
                },
            )
            result = connector.check()
        assert not result.ok and "InvalidClientTokenId" in result.detail

    def test_access_denied_names_the_permission(self, connector, person, moto_server):
        connector.check()
        connector.discover(person)  # the caller's account is known before the fault
        with moto_server[1].fault(403):
            with pytest.raises(PermissionDenied) as info:
                connector.discover(person)
        assert info.value.permissions == ("iam:GetUser",)

    def test_an_account_id_of_another_connector_is_refused_in_words(self, connector):
        from offboard import Account

        with pytest.raises(PermanentError, match="not an AWS account id"):
            connector.verify(Action(ActionKind.REVOKE_TOKENS, Account("aws", "someone", "someone")))

    def test_no_credentials_is_an_auth_error(self, moto_server, monkeypatch):
        for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        connector = AwsConnector("aws", {"endpoint_url": moto_server[0]})
        with pytest.raises(AuthError, match="no AWS credentials"):
            connector.discover(Person(id="x@corp.example", email="x@corp.example"))


class TestSandboxAws:
    """The sandbox's own small IAM simulator (for ``offboard demo``) answers boto3 as IAM does."""

    @pytest.fixture(scope="class")
    def sandbox(self):
        from offboard.sandbox import Sandbox

        with Sandbox(people=12, seed=3, systems=("aws",)) as sb:
            yield sb

    def test_the_connector_disables_a_person_there(self, sandbox):
        connector = AwsConnector("aws", sandbox.config()["connectors"]["aws"]["settings"])
        ident = next(i for i in sandbox.company.in_system("aws") if i.person is not None)
        (account,) = connector.discover(ident.person)
        for kind in (ActionKind.REVOKE_TOKENS, ActionKind.DISABLE_ACCOUNT, ActionKind.REMOVE_MEMBERSHIPS):
            action = Action(kind, account)
            assert connector.verify(action, connector.apply(action)).ok
        state = sandbox.account("aws", ident.email)
        assert state["active"] is False and state["groups"] == [] and state["mfa_devices"] == []

    def test_throttling_and_bad_keys_answer_as_iam_does(self, sandbox):
        from offboard.errors import RateLimited

        settings = sandbox.config()["connectors"]["aws"]["settings"]
        connector = AwsConnector("aws", settings)
        person = next(i for i in sandbox.company.in_system("aws") if i.person is not None).person
        with sandbox.sim("aws").force(429, count=1):
            with pytest.raises(RateLimited):
                connector.discover(person)
        stranger = AwsConnector("aws", {**settings, "access_key_id": "AKIA" + secrets.token_hex(8).upper()})
        result = stranger.check()
        assert not result.ok and "InvalidClientTokenId" in result.detail
