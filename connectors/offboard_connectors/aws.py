"""AWS: IAM users (access keys, console password, MFA devices, groups, policies by setting) and IAM
Identity Center users (group memberships, deletion), in one or many accounts, through boto3.

Accounts: the credentials' own account, plus every account in ``account_ids`` (or, with
``organizations: true``, every ACTIVE account AWS Organizations lists) through ``sts:AssumeRole`` on
``role_name`` in that account. An IAM account's id is ``iam:<account>:<user name>``; an Identity
Center user's is ``idc:<identity store id>:<user id>``.

botocore's own retries are off (``total_max_attempts: 1``): the engine owns retries and rate limits.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from offboard import (
    Account,
    AccountPage,
    Action,
    ActionKind,
    CheckResult,
    Connector,
    ConnectorSettings,
    Leftover,
    Person,
    Receipt,
    Secret,
    Verification,
    hookimpl,
)
from offboard.errors import (
    AuthError,
    ConnectorError,
    NotFound,
    PermanentError,
    PermissionDenied,
    RateLimited,
    TransientError,
)

from ._http import mapped, short

_AUTH_CODES = {
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidAccessKeyId",
    "AuthFailure",
}
_DENIED_CODES = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}
_THROTTLE_CODES = {"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"}
_MISSING_CODES = {"NoSuchEntity", "ResourceNotFoundException"}
_TRANSIENT_CODES = {"ServiceUnavailable", "ServiceFailure", "InternalFailure", "InternalServerException"}


class AwsConnector(Connector):
    """AWS accounts: IAM users and IAM Identity Center users."""

    name = "aws"
    default_concurrency = 4
    # IAM and Identity Store publish no per-call quotas; AWS throttles per account ("Rate exceeded").
    # Conservative lanes keep a bulk run under what an account tolerates.
    rate_limits = {"iam": (10.0, 20), "identitystore": (10.0, 20), "sts": (5.0, 10)}
    permissions = (
        "iam:GetUser",
        "iam:ListUsers",
        "iam:ListAccessKeys",
        "iam:UpdateAccessKey",
        "iam:GetLoginProfile",
        "iam:DeleteLoginProfile",
        "iam:ListMFADevices",
        "iam:DeactivateMFADevice",
        "iam:ListGroupsForUser",
        "iam:RemoveUserFromGroup",
        "iam:AddUserToGroup",
        "iam:ListAttachedUserPolicies",
        "iam:DetachUserPolicy",
        "iam:AttachUserPolicy",
        "iam:ListUserPolicies",
        "iam:GetUserPolicy",
        "iam:DeleteUserPolicy",
        "iam:PutUserPolicy",
        "identitystore:GetUserId",
        "identitystore:DescribeUser",
        "identitystore:ListGroupMembershipsForMember",
        "identitystore:DescribeGroup",
        "identitystore:DeleteGroupMembership",
        "identitystore:CreateGroupMembership",
        "identitystore:DeleteUser",
        "sts:GetCallerIdentity",
        "sts:AssumeRole",
        "organizations:ListAccounts",
    )
    # Requests per action in a bulk run (before-state read, apply, read-back), for the ETA ``offboard plan``
    # prints, measured against the sandbox (IAM users; Identity Center users use the identitystore lane).
    calls = {
        ActionKind.REVOKE_TOKENS: {"iam": 4},
        ActionKind.DISABLE_ACCOUNT: {"iam": 6},
        ActionKind.REMOVE_MEMBERSHIPS: {"iam": 3},
    }
    reads = {
        ActionKind.DISABLE_ACCOUNT: {"iam": 2},
        ActionKind.REVOKE_TOKENS: {"iam": 1},
        ActionKind.REMOVE_MEMBERSHIPS: {"iam": 1},
    }
    residual_kinds = frozenset({ActionKind.REVOKE_TOKENS, ActionKind.REMOVE_MEMBERSHIPS})

    class Settings(ConnectorSettings):
        access_key_id: str | None = Field(None, description="leave out to use the default credential chain")
        secret_access_key: Secret | None = None
        region: str = "us-east-1"
        endpoint_url: str | None = Field(None, description="a local AWS endpoint (tests: moto server)")
        role_name: str = Field("OffboardRole", description="role assumed in each other account")
        account_ids: list[str] = Field(default_factory=list, description="other accounts to search")
        organizations: bool = Field(False, description="search every ACTIVE account AWS Organizations lists")
        identity_store_id: str | None = Field(None, description="IAM Identity Center identity store (d-...)")
        detach_policies: bool = Field(False, description="remove_memberships also detaches and deletes user policies")
        accounts: dict[str, str] = Field(default_factory=dict, description="person -> IAM user name")
        page_size: int = Field(100, ge=1, le=1000)

    settings: Settings

    def __init__(self, instance: str, settings: Any = None):
        super().__init__(instance, settings)
        self._sessions: dict[str, Any] = {}
        self._own_account: str | None = None

    # -- transport --------------------------------------------------------------------------

    def _config(self) -> Any:
        from botocore.config import Config

        return Config(retries={"total_max_attempts": 1}, connect_timeout=10, read_timeout=30)

    def _base(self) -> Any:
        if "" not in self._sessions:
            import boto3

            s = self.settings
            self._sessions[""] = boto3.session.Session(
                aws_access_key_id=s.access_key_id,
                aws_secret_access_key=s.secret_access_key.reveal() if s.secret_access_key else None,
                region_name=s.region,
            )
        return self._sessions[""]

    def _client(self, service: str, account: str | None = None) -> Any:
        key = f"{account or ''}:{service}"
        if key not in self._sessions:
            own = self._own()
            session = self._base() if account in (None, own) else self._assumed(account)
            self._sessions[key] = session.client(
                service, endpoint_url=self.settings.endpoint_url, config=self._config()
            )
        return self._sessions[key]

    def _assumed(self, account: str) -> Any:
        import boto3

        arn = f"arn:aws:iam::{account}:role/{self.settings.role_name}"
        answer = self._aws("sts", None, "assume_role", f"assume {arn}", RoleArn=arn, RoleSessionName="offboard")
        creds = answer["Credentials"]
        return boto3.session.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name=self.settings.region,
        )

    def _own(self) -> str:
        if self._own_account is None:
            client = self._base().client("sts", endpoint_url=self.settings.endpoint_url, config=self._config())
            self.throttle("sts")
            self._own_account = str(self._wrap("get caller identity", "sts", client.get_caller_identity)["Account"])
        return self._own_account

    def _aws(self, service: str, account: str | None, operation: str, what: str, **params: Any) -> dict[str, Any]:
        lane = "iam" if service == "iam" else "identitystore" if service == "identitystore" else "sts"
        self.throttle(lane)
        client = self._client(service, account)
        # Get*/List* only read: the engine may send them again on their own; writes are sent once.
        return self.request(
            lambda: self._wrap(what, lane, getattr(client, operation), **params),
            lane=lane,
            idempotent=operation.startswith(("get_", "list_")),
        )

    def _wrap(self, what: str, lane: str, call: Any, **params: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            return dict(call(**params))
        except ClientError as exc:
            raise self._error(exc, what, lane) from None
        except NoCredentialsError:
            raise AuthError(f"{what}: no AWS credentials configured", system=self.instance) from None
        except BotoCoreError as exc:
            raise TransientError(f"{what}: {type(exc).__name__}: {short(str(exc))}", system=self.instance) from None

    def _error(self, exc: Any, what: str, lane: str) -> ConnectorError:
        error = exc.response.get("Error") or {}
        code = str(error.get("Code") or "")
        message = short(str(error.get("Message") or ""))
        status = int((exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)
        operation = getattr(exc, "operation_name", "") or ""
        text = f"{what}: AWS said {code or 'HTTP ' + str(status)}: {message}"
        if code in _THROTTLE_CODES or status == 429:
            return RateLimited(text, lane=lane, system=self.instance, status=status)
        if code in _AUTH_CODES:
            return AuthError(text, system=self.instance, status=status)
        if code in _DENIED_CODES:
            needed = tuple(p for p in self.permissions if p.split(":", 1)[1] == operation) or ()
            return PermissionDenied(text, permissions=needed, system=self.instance, status=status)
        if code in _MISSING_CODES or status == 404:
            return NotFound(text, system=self.instance, status=status)
        if code in _TRANSIENT_CODES or status >= 500:
            return TransientError(text, system=self.instance, status=status)
        return PermanentError(text, system=self.instance, status=status)

    # -- accounts -----------------------------------------------------------------------------

    def _accounts(self) -> list[str]:
        found = [self._own(), *self.settings.account_ids]
        if self.settings.organizations:
            token: str | None = None
            while True:
                answer = self._aws(
                    "organizations",
                    None,
                    "list_accounts",
                    "list AWS accounts",
                    **({"NextToken": token} if token else {}),
                )
                found += [a["Id"] for a in answer.get("Accounts") or [] if a.get("Status") == "ACTIVE"]
                token = answer.get("NextToken")
                if not token:
                    break
        return list(dict.fromkeys(found))

    @staticmethod
    def _parse(account: Account) -> tuple[str, str, str]:
        kind, _, rest = account.id.partition(":")
        scope, _, key = rest.partition(":")
        if kind not in ("iam", "idc") or not scope or not key:
            raise PermanentError(f"{account.id!r} is not an AWS account id of this connector", system=account.system)
        return kind, scope, key

    # -- read side --------------------------------------------------------------------------

    def check(self) -> CheckResult:
        try:
            identity = self._wrap(
                "get caller identity",
                "sts",
                self._base()
                .client("sts", endpoint_url=self.settings.endpoint_url, config=self._config())
                .get_caller_identity,
            )
        except AuthError as exc:
            return CheckResult(False, detail=str(exc), missing=getattr(exc, "permissions", ()))
        return CheckResult(True, identity=str(identity.get("Arn")), detail="IAM rights are proven on first use")

    def _iam_user(self, account_id: str, name: str) -> dict[str, Any] | None:
        try:
            return self._aws("iam", account_id, "get_user", f"read IAM user {name}", UserName=name)["User"]
        except NotFound:
            return None

    def discover(self, person: Person) -> list[Account]:
        explicit = mapped(person, self.settings.accounts)
        names = [explicit] if explicit else list(dict.fromkeys(n for e in person.emails for n in (e, e.split("@")[0])))
        found: list[Account] = []
        for account_id in self._accounts():
            for name in names:
                if not _valid_iam_name(name):
                    continue
                user = self._iam_user(account_id, name)
                if user is not None:
                    found.append(self._iam_account(account_id, user))
                    break
        store = self.settings.identity_store_id
        if store and not explicit:
            for email in person.emails:
                try:
                    answer = self._aws(
                        "identitystore",
                        None,
                        "get_user_id",
                        f"find Identity Center user {email}",
                        IdentityStoreId=store,
                        AlternateIdentifier={"UniqueAttribute": {"AttributePath": "userName", "AttributeValue": email}},
                    )
                except NotFound:
                    continue
                found.append(
                    Account(
                        self.instance, f"idc:{store}:{answer['UserId']}", email, email=email, attributes={"kind": "idc"}
                    )
                )
                break
        return found

    def residual(self, person: Person, accounts: list[Account]) -> list[Leftover]:
        """An IAM user's console password (``iam:GetLoginProfile``): access ``residual_kinds`` leaves out,
        since ``disable_account`` cannot act on an Identity Center user, whose status the check would
        otherwise report forever. Access keys are ``revoke_tokens``'s read-back."""
        out: list[Leftover] = []
        for account in accounts:
            if account.system != self.instance or not account.id.startswith("iam:"):
                continue
            _, scope, key = self._parse(account)
            if self._login_profile(scope, key):
                out.append(Leftover(account, ActionKind.DISABLE_ACCOUNT, "console password (login profile) present"))
        return out

    def list_accounts(self, cursor: str | None = None) -> AccountPage:
        accounts = self._accounts()
        index, _, marker = (cursor or "0|").partition("|")
        account_id = accounts[int(index)]
        answer = self._aws(
            "iam",
            account_id,
            "list_users",
            f"list IAM users of {account_id}",
            MaxItems=self.settings.page_size,
            **({"Marker": marker} if marker else {}),
        )
        page = tuple(self._iam_account(account_id, u) for u in answer.get("Users") or [])
        if answer.get("IsTruncated"):
            return AccountPage(page, f"{index}|{answer['Marker']}")
        following = int(index) + 1
        return AccountPage(page, f"{following}|" if following < len(accounts) else None)

    def verify(self, action: Action, receipt: Receipt | None = None) -> Verification:
        kind, scope, key = self._parse(action.account)
        who = action.account.name
        if kind == "idc":
            return self._verify_idc(action, scope, key)
        if action.kind is ActionKind.REVOKE_TOKENS:
            active = [k["AccessKeyId"] for k in self._keys(scope, key) if k["Status"] == "Active"]
            return Verification(
                action, not active, {"active_keys": active}, f"{who}: {len(active)} active access key(s)"
            )
        if action.kind is ActionKind.DISABLE_ACCOUNT:
            login = self._login_profile(scope, key)
            mfa = [d["SerialNumber"] for d in self._mfa(scope, key)]
            ok = not login and not mfa
            detail = f"{who}: console password {'present' if login else 'absent'}, {len(mfa)} MFA device(s)"
            return Verification(action, ok, {"console_password": login, "mfa_devices": mfa}, detail)
        if action.kind is ActionKind.REMOVE_MEMBERSHIPS:
            groups = [g["GroupName"] for g in self._groups(scope, key)]
            attached, inline = self._policies(scope, key) if self.settings.detach_policies else ([], [])
            ok = not groups and not attached and not inline
            detail = f"{who}: in {len(groups)} IAM group(s)" + (f" ({', '.join(groups)})" if groups else "")
            if self.settings.detach_policies:
                detail += f", {len(attached)} attached and {len(inline)} inline polic(ies)"
            return Verification(
                action, ok, {"groups": groups, "attached": [p["PolicyArn"] for p in attached], "inline": inline}, detail
            )
        raise PermanentError(f"aws cannot verify {action.kind.value} on IAM users", system=self.instance)

    def _verify_idc(self, action: Action, store: str, user_id: str) -> Verification:
        who = action.account.name
        if action.kind is ActionKind.DELETE_ACCOUNT:
            gone = self._idc_user(store, user_id) is None
            return Verification(action, gone, {"exists": not gone}, f"{who}: {'deleted' if gone else 'still exists'}")
        if action.kind is ActionKind.REMOVE_MEMBERSHIPS:
            groups = [m["GroupId"] for m in self._idc_memberships(store, user_id)]
            return Verification(
                action, not groups, {"groups": groups}, f"{who}: in {len(groups)} Identity Center group(s)"
            )
        if action.kind is ActionKind.REVOKE_TOKENS:  # the residual check reads this on every account
            return Verification(action, True, {"access_keys": 0}, f"{who}: Identity Center users hold no access keys")
        if action.kind is ActionKind.DISABLE_ACCOUNT:
            user = self._idc_user(store, user_id)
            status = str((user or {}).get("UserStatus") or ("DELETED" if user is None else "not reported"))
            return Verification(
                action, status in ("DISABLED", "DELETED"), {"status": status}, f"{who}: status {status}"
            )
        raise PermanentError(_IDC_ONLY.format(kind=action.kind.value), system=self.instance)

    # -- IAM reads ----------------------------------------------------------------------------

    def _keys(self, account_id: str, name: str) -> list[dict[str, Any]]:
        return list(
            self._aws("iam", account_id, "list_access_keys", f"list access keys of {name}", UserName=name).get(
                "AccessKeyMetadata"
            )
            or []
        )

    def _login_profile(self, account_id: str, name: str) -> bool:
        try:
            self._aws("iam", account_id, "get_login_profile", f"read console password of {name}", UserName=name)
        except NotFound:
            return False
        return True

    def _mfa(self, account_id: str, name: str) -> list[dict[str, Any]]:
        return list(
            self._aws("iam", account_id, "list_mfa_devices", f"list MFA devices of {name}", UserName=name).get(
                "MFADevices"
            )
            or []
        )

    def _groups(self, account_id: str, name: str) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = []
        marker: str | None = None
        while True:
            answer = self._aws(
                "iam",
                account_id,
                "list_groups_for_user",
                f"list groups of {name}",
                UserName=name,
                **({"Marker": marker} if marker else {}),
            )
            groups += answer.get("Groups") or []
            marker = answer.get("Marker") if answer.get("IsTruncated") else None
            if not marker:
                return groups

    def _policies(self, account_id: str, name: str) -> tuple[list[dict[str, Any]], list[str]]:
        attached = (
            self._aws("iam", account_id, "list_attached_user_policies", f"list policies of {name}", UserName=name).get(
                "AttachedPolicies"
            )
            or []
        )
        inline = (
            self._aws("iam", account_id, "list_user_policies", f"list inline policies of {name}", UserName=name).get(
                "PolicyNames"
            )
            or []
        )
        return list(attached), list(inline)

    # -- Identity Center reads ------------------------------------------------------------------

    def _idc_user(self, store: str, user_id: str) -> dict[str, Any] | None:
        try:
            return self._aws(
                "identitystore", None, "describe_user", f"read user {user_id}", IdentityStoreId=store, UserId=user_id
            )
        except NotFound:
            return None

    def _idc_memberships(self, store: str, user_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            answer = self._aws(
                "identitystore",
                None,
                "list_group_memberships_for_member",
                f"list groups of {user_id}",
                IdentityStoreId=store,
                MemberId={"UserId": user_id},
                **({"NextToken": token} if token else {}),
            )
            found += answer.get("GroupMemberships") or []
            token = answer.get("NextToken")
            if not token:
                return found

    # -- write side ---------------------------------------------------------------------------

    def revoke_tokens(self, action: Action) -> Receipt:
        """Deactivate every active access key (Inactive keys can be made Active again: reversible)."""
        kind, account_id, name = self._parse(action.account)
        if kind == "idc":
            raise PermanentError(_IDC_ONLY.format(kind=action.kind.value), system=self.instance)
        active = [k["AccessKeyId"] for k in self._keys(account_id, name) if k["Status"] == "Active"]
        for key_id in active:
            self._aws(
                "iam",
                account_id,
                "update_access_key",
                f"deactivate access key of {name}",
                UserName=name,
                AccessKeyId=key_id,
                Status="Inactive",
            )
        return Receipt(action, changed=bool(active), before={"active_keys": active})

    def undo_revoke_tokens(self, receipt: Receipt) -> Receipt:
        _, account_id, name = self._parse(receipt.action.account)
        current = {k["AccessKeyId"]: k["Status"] for k in self._keys(account_id, name)}
        restored = [k for k in receipt.before.get("active_keys") or [] if current.get(k) == "Inactive"]
        for key_id in restored:
            self._aws(
                "iam",
                account_id,
                "update_access_key",
                f"reactivate access key of {name}",
                UserName=name,
                AccessKeyId=key_id,
                Status="Active",
            )
        return Receipt(receipt.action, changed=bool(restored), before={"reactivated": restored})

    def disable_account(self, action: Action) -> Receipt:
        """Delete the console password and deactivate MFA devices. Not reversible by offboard: AWS cannot
        restore a deleted password (a new one would have to be set and handed over), and an MFA device is
        enabled again only with two consecutive codes from the device itself."""
        kind, account_id, name = self._parse(action.account)
        if kind == "idc":
            raise PermanentError(_IDC_ONLY.format(kind=action.kind.value), system=self.instance)
        login = self._login_profile(account_id, name)
        mfa = [d["SerialNumber"] for d in self._mfa(account_id, name)]
        if login:
            self._aws("iam", account_id, "delete_login_profile", f"delete console password of {name}", UserName=name)
        for serial in mfa:
            self._aws(
                "iam",
                account_id,
                "deactivate_mfa_device",
                f"deactivate MFA device of {name}",
                UserName=name,
                SerialNumber=serial,
            )
        return Receipt(action, changed=bool(login or mfa), before={"console_password": login, "mfa_devices": mfa})

    def remove_memberships(self, action: Action) -> Receipt:
        kind, scope, key = self._parse(action.account)
        name = action.account.name
        if kind == "idc":
            memberships = self._idc_memberships(scope, key)
            for membership in memberships:
                self._aws(
                    "identitystore",
                    None,
                    "delete_group_membership",
                    f"remove {name} from {membership['GroupId']}",
                    IdentityStoreId=scope,
                    MembershipId=membership["MembershipId"],
                )
            return Receipt(action, changed=bool(memberships), before={"groups": [m["GroupId"] for m in memberships]})
        groups = [g["GroupName"] for g in self._groups(scope, key)]
        for group in groups:
            self._aws(
                "iam", scope, "remove_user_from_group", f"remove {name} from {group}", GroupName=group, UserName=key
            )
        attached: list[str] = []
        inline: dict[str, str] = {}
        if self.settings.detach_policies:
            policies, names = self._policies(scope, key)
            for policy in policies:
                self._aws(
                    "iam",
                    scope,
                    "detach_user_policy",
                    f"detach {policy['PolicyName']} from {name}",
                    UserName=key,
                    PolicyArn=policy["PolicyArn"],
                )
                attached.append(policy["PolicyArn"])
            for policy_name in names:
                document = self._aws(
                    "iam",
                    scope,
                    "get_user_policy",
                    f"read policy {policy_name} of {name}",
                    UserName=key,
                    PolicyName=policy_name,
                )["PolicyDocument"]
                inline[policy_name] = document if isinstance(document, str) else _json(document)
                self._aws(
                    "iam",
                    scope,
                    "delete_user_policy",
                    f"delete policy {policy_name} of {name}",
                    UserName=key,
                    PolicyName=policy_name,
                )
        changed = bool(groups or attached or inline)
        return Receipt(action, changed=changed, before={"groups": groups, "attached": attached, "inline": inline})

    def undo_remove_memberships(self, receipt: Receipt) -> Receipt:
        kind, scope, key = self._parse(receipt.action.account)
        name = receipt.action.account.name
        before = receipt.before
        if kind == "idc":
            current = {m["GroupId"] for m in self._idc_memberships(scope, key)}
            added = [g for g in before.get("groups") or [] if g not in current]
            for group in added:
                self._aws(
                    "identitystore",
                    None,
                    "create_group_membership",
                    f"re-add {name} to {group}",
                    IdentityStoreId=scope,
                    GroupId=group,
                    MemberId={"UserId": key},
                )
            return Receipt(receipt.action, changed=bool(added), before={"groups": sorted(current)})
        current_groups = {g["GroupName"] for g in self._groups(scope, key)}
        for group in before.get("groups") or []:
            if group not in current_groups:
                self._aws("iam", scope, "add_user_to_group", f"re-add {name} to {group}", GroupName=group, UserName=key)
        for arn in before.get("attached") or []:
            self._aws("iam", scope, "attach_user_policy", f"re-attach {arn} to {name}", UserName=key, PolicyArn=arn)
        for policy_name, document in (before.get("inline") or {}).items():
            self._aws(
                "iam",
                scope,
                "put_user_policy",
                f"restore policy {policy_name} of {name}",
                UserName=key,
                PolicyName=policy_name,
                PolicyDocument=document,
            )
        return Receipt(receipt.action, changed=True, before={"groups": sorted(current_groups)})

    def delete_account(self, action: Action) -> Receipt:
        """Delete an Identity Center user (destructive: the user, its memberships and assignments are gone).
        IAM users are not deleted by offboard: their keys, password and MFA are disabled instead."""
        kind, scope, key = self._parse(action.account)
        if kind != "idc":
            raise PermanentError(
                f"aws does not delete IAM user {action.account.name}: revoke_tokens, disable_account and "
                "remove_memberships leave it without access",
                system=self.instance,
            )
        if self._idc_user(scope, key) is None:
            return Receipt(action, changed=False, detail="already deleted")
        self._aws(
            "identitystore", None, "delete_user", f"delete {action.account.name}", IdentityStoreId=scope, UserId=key
        )
        return Receipt(action, changed=True, before={"user_id": key})

    # -- helpers ------------------------------------------------------------------------------

    def _iam_account(self, account_id: str, user: dict[str, Any]) -> Account:
        return Account(
            system=self.instance,
            id=f"iam:{account_id}:{user['UserName']}",
            name=user["UserName"],
            email=user["UserName"] if "@" in user["UserName"] else None,
            attributes={"kind": "iam", "account": account_id, "arn": user.get("Arn")},
        )

    def close(self) -> None:
        self._sessions.clear()


_IDC_ONLY = (
    "{kind} does not apply to IAM Identity Center users: the Identity Store API cannot disable a user or end "
    "its sessions; use remove_memberships, delete_account (destructive), or the SCIM connector"
)


def _valid_iam_name(name: str) -> bool:
    import re

    return bool(re.fullmatch(r"[\w+=,.@-]{1,64}", name))


def _json(document: Any) -> str:
    import json

    return json.dumps(document, separators=(",", ":"))


@hookimpl
def register_connectors(register):
    register(AwsConnector)
