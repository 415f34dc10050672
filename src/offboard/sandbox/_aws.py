"""AWS IAM (and the STS call that names the account): the query-protocol API boto3 speaks, for the demo.

The AWS connector's tests run against moto (docs/connectors/aws.md); this small simulator lets ``offboard
demo`` include AWS without moto installed. It serves ``POST /`` with a form ``Action`` as IAM does:
users with access keys, a console password (login profile), MFA devices and groups; answers are IAM's XML
(``<{Action}Response><{Action}Result>``, lists of ``<member>``), errors IAM's ``<ErrorResponse>`` (404
``NoSuchEntity``; 403 ``InvalidClientTokenId`` for an unknown access key; 400 ``Throttling`` "Rate exceeded",
with no Retry-After). The SigV4 signature is not checked, only the access key id it names; the ``lie_rate``
knob does not apply (every call is one ``POST /``).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Callable
from typing import Any
from xml.sax.saxutils import escape

from ._app import HTTPError, Request, Response, Simulator, route
from ._knobs import Limit

__all__ = ["Aws"]

_NS = "https://iam.amazonaws.com/doc/2010-05-08/"
_STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"


def _xml(value: Any) -> str:
    if isinstance(value, dict):
        return "".join(f"<{k}>{_xml(v)}</{k}>" for k, v in value.items())
    if isinstance(value, list):
        return "".join(f"<member>{_xml(v)}</member>" for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return escape(str(value))


class Aws(Simulator):
    """One AWS account's IAM users."""

    system = "aws"
    default_limits = {"iam": Limit(20, 1, 40)}  # IAM publishes no per-call quota; a throttle for the knobs

    def __init__(self, company: Any, **kw: Any):
        super().__init__(company, **kw)
        self.account_id = str(100000000000 + int(hashlib.sha256(f"aws:{company.seed}".encode()).hexdigest()[:8], 16))
        self.key_id = "AKIA" + hashlib.sha256(f"aws-key:{company.seed}".encode()).hexdigest()[:16].upper()
        self.secret = secrets.token_urlsafe(30)
        self.users: dict[str, dict[str, Any]] = {}
        for ident in company.in_system("aws"):
            name = ident.email
            digest = hashlib.sha256(f"{company.seed}:{ident.key}".encode()).hexdigest().upper()
            self.users[name] = {
                "name": name,
                "id": "AIDA" + digest[:17],
                "keys": {"AKIA" + digest[20 + n : 36 + n]: "Active" for n in range(2)},
                "login": True,
                "mfa": [f"arn:aws:iam::{self.account_id}:mfa/{ident.local}"],
                "groups": {g for g in ident.groups if g in ("engineering", "oncall", "vpn-users", "managers")},
            }

    # ----- framework hooks --------------------------------------------------------------------
    def connector_settings(self, secret: Callable[[str, str], str]) -> dict[str, Any]:
        return {
            "access_key_id": self.key_id,
            "secret_access_key": secret("aws-secret-access-key", self.secret),
            "endpoint_url": self.base_url,
            "region": "us-east-1",
        }

    def authenticate(self, req: Request) -> None:
        credential = req.header("authorization").partition("Credential=")[2].split("/", 1)[0]
        if credential != self.key_id:
            raise HTTPError(
                403, "The security token included in the request is invalid.", reason="InvalidClientTokenId"
            )

    def rate_limit(self, req: Request, limit: str | None) -> float:
        return self.limiter.take("iam", "account")

    def error(self, err: HTTPError) -> Response:
        kind = "Receiver" if err.status >= 500 else "Sender"
        code = err.reason or {404: "NoSuchEntity", 403: "AccessDenied", 503: "ServiceUnavailable"}.get(
            err.status, "InvalidInput"
        )
        body = (
            f'<ErrorResponse xmlns="{_NS}"><Error><Type>{kind}</Type><Code>{code}</Code>'
            f"<Message>{escape(err.message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
        )
        return Response(err.status, body, dict(err.headers), content_type="text/xml")

    def throttle(self, req: Request, retry_after: float, why: str) -> Response:
        return self.error(HTTPError(400, "Rate exceeded", reason="Throttling"))

    def forced(self, req: Request, status: int, retry_after: float | None) -> Response:
        if status == 429:
            return self.throttle(req, retry_after or 1.0, "forced")
        if status == 401:
            return self.error(
                HTTPError(403, "The security token included in the request is invalid.", reason="InvalidClientTokenId")
            )
        if status == 403:
            return self.error(HTTPError(403, "User is not authorized to perform this action", reason="AccessDenied"))
        if status >= 500:
            return self.unavailable(req, status)
        return super().forced(req, status, retry_after)

    def unavailable(self, req: Request, status: int) -> Response:
        return self.error(HTTPError(status, "Service is unavailable.", reason="ServiceUnavailable"))

    # ----- inspection -------------------------------------------------------------------------
    def account(self, key: str) -> dict[str, Any] | None:
        user = self.users.get(key) or next((u for u in self.users.values() if key.lower() == u["name"].lower()), None)
        if user is None:
            return None
        active_keys = sorted(k for k, s in user["keys"].items() if s == "Active")
        return {
            "user": user["name"],
            "active": bool(active_keys or user["login"]),
            "active_keys": active_keys,
            "console_password": user["login"],
            "mfa_devices": list(user["mfa"]),
            "groups": sorted(user["groups"]),
        }

    def accounts(self) -> list[dict[str, Any]]:
        return [a for name in list(self.users) if (a := self.account(name)) is not None]

    # ----- the API ----------------------------------------------------------------------------
    def _user(self, form: dict[str, str]) -> dict[str, Any]:
        name = form.get("UserName", "")
        user = self.users.get(name)
        if user is None:
            raise HTTPError(404, f"The user with name {name} cannot be found.")
        return user

    def _answer(self, action: str, result: dict[str, Any] | None, namespace: str = _NS) -> Response:
        inner = f"<{action}Result>{_xml(result)}</{action}Result>" if result is not None else ""
        body = (
            f'<{action}Response xmlns="{namespace}">{inner}<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId>'
            f"</ResponseMetadata></{action}Response>"
        )
        return Response(200, body, content_type="text/xml")

    def _iam_user(self, user: dict[str, Any]) -> dict[str, Any]:
        return {
            "Path": "/",
            "UserName": user["name"],
            "UserId": user["id"],
            "Arn": f"arn:aws:iam::{self.account_id}:user/{user['name']}",
            "CreateDate": "2024-01-15T09:00:00Z",
        }

    @route("POST", "/", write=False)
    async def call(self, req: Request) -> Response:
        form = req.form()
        action = form.get("Action", "")
        if action == "GetCallerIdentity":
            arn = f"arn:aws:iam::{self.account_id}:user/offboard"
            return self._answer(
                action, {"Arn": arn, "UserId": "AIDAOFFBOARD0000001", "Account": self.account_id}, _STS_NS
            )
        if action == "GetUser":
            return self._answer(action, {"User": self._iam_user(self._user(form))})
        if action == "ListUsers":
            names = sorted(self.users)
            start = int(form.get("Marker", "0") or 0)
            size = self.knobs.page(int(form.get("MaxItems", "100") or 100))
            chunk = names[start : start + size]
            result: dict[str, Any] = {"Users": [self._iam_user(self.users[n]) for n in chunk]}
            result["IsTruncated"] = start + size < len(names)
            if result["IsTruncated"]:
                result["Marker"] = str(start + size)
            return self._answer(action, result)
        if action == "ListAccessKeys":
            user = self._user(form)
            keys = [
                {"UserName": user["name"], "AccessKeyId": k, "Status": s, "CreateDate": "2024-01-15T09:00:00Z"}
                for k, s in sorted(user["keys"].items())
            ]
            return self._answer(action, {"AccessKeyMetadata": keys, "IsTruncated": False})
        if action == "UpdateAccessKey":
            user = self._user(form)
            key, status = form.get("AccessKeyId", ""), form.get("Status", "")
            if key not in user["keys"]:
                raise HTTPError(404, f"The Access Key with id {key} cannot be found.")
            if status not in ("Active", "Inactive"):
                raise HTTPError(
                    400, f"Value '{status}' at 'status' failed to satisfy constraint", reason="ValidationError"
                )
            user["keys"][key] = status
            return self._answer(action, None)
        if action == "GetLoginProfile":
            user = self._user(form)
            if not user["login"]:
                raise HTTPError(404, f"Login Profile for User {user['name']} cannot be found.")
            return self._answer(
                action,
                {
                    "LoginProfile": {
                        "UserName": user["name"],
                        "CreateDate": "2024-01-15T09:00:00Z",
                        "PasswordResetRequired": False,
                    }
                },
            )
        if action == "DeleteLoginProfile":
            user = self._user(form)
            if not user["login"]:
                raise HTTPError(404, f"Login Profile for User {user['name']} cannot be found.")
            user["login"] = False
            return self._answer(action, None)
        if action == "ListMFADevices":
            user = self._user(form)
            devices = [
                {"UserName": user["name"], "SerialNumber": s, "EnableDate": "2024-01-15T09:00:00Z"} for s in user["mfa"]
            ]
            return self._answer(action, {"MFADevices": devices, "IsTruncated": False})
        if action == "DeactivateMFADevice":
            user = self._user(form)
            serial = form.get("SerialNumber", "")
            if serial not in user["mfa"]:
                raise HTTPError(404, f"MFA Device with serial number {serial} does not exist.")
            user["mfa"].remove(serial)
            return self._answer(action, None)
        if action == "ListGroupsForUser":
            user = self._user(form)
            groups = [
                {
                    "Path": "/",
                    "GroupName": g,
                    "GroupId": "AGPA" + hashlib.sha256(g.encode()).hexdigest()[:17].upper(),
                    "Arn": f"arn:aws:iam::{self.account_id}:group/{g}",
                    "CreateDate": "2024-01-01T00:00:00Z",
                }
                for g in sorted(user["groups"])
            ]
            return self._answer(action, {"Groups": groups, "IsTruncated": False})
        if action in ("RemoveUserFromGroup", "AddUserToGroup"):
            user = self._user(form)
            group = form.get("GroupName", "")
            (user["groups"].discard if action == "RemoveUserFromGroup" else user["groups"].add)(group)
            return self._answer(action, None)
        raise HTTPError(
            400, f"Could not find operation {action or '(none)'} for version 2010-05-08", reason="InvalidAction"
        )
