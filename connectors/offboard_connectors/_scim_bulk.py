"""SCIM /Bulk (RFC 7644 3.7) for removing one user from many groups in few requests.

Each operation is the PATCH the connector would send alone (remove the member by a value filter);
the service provider runs every operation of a request and answers each with its own status
(3.7.3), so one that failed for a reason that passes (429, 5xx) is sent again alone in the next
request and one answered ``400 noTarget`` (the member was already gone) is done. Operations a
request may hold: ``maxOperations``; its body: at most ``maxPayloadSize`` bytes (3.7.4,
``ServiceProviderConfig``). A service provider that refuses the request itself (404, 405, 413 or
501, although it said it supports Bulk) is not asked again: its groups go one PATCH each.
"""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any

from offboard.errors import AuthError, ConnectorError, NotFound, PermanentError, TransientError

from ._http import error_for, escape_filter, raise_pending, short

if TYPE_CHECKING:
    from .scim import ScimConnector

__all__ = ["remove_in_bulk", "bulk_chunks"]

BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
GROUP_WRITE = "write /Groups"
#: Answers to the /Bulk request itself that mean "not here after all", whatever ServiceProviderConfig said.
_NOT_SUPPORTED = (404, 405, 413, 501)


def remove_in_bulk(
    connector: ScimConnector, user_id: str, group_ids: list[str], limits: tuple[int, int]
) -> tuple[list[str], PermanentError | None]:
    """Remove ``user_id`` from ``group_ids`` through /Bulk: the groups left for one PATCH each, and the lasting
    failure (a 4xx other than ``noTarget``) to raise once those are done too, if an operation met one."""
    member = f"members[value eq {escape_filter(user_id)}]"
    operations = [
        {
            "method": "PATCH",
            "path": f"/Groups/{group_id}",
            "data": {"schemas": [PATCH_OP], "Operations": [{"op": "remove", "path": member}]},
        }
        for group_id in group_ids
    ]
    left: list[str] = []
    failed: list[str] = []
    for chunk in bulk_chunks(operations, *limits):
        if connector._bulk is False:  # refused by an earlier request
            left.extend(group_ids[i] for i in chunk)
            continue
        pending = list(chunk)
        send = functools.partial(_send, connector, operations, group_ids, pending, left, failed)
        connector.request(send, idempotent=True)  # removing a member again is noTarget: done
    if failed:
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        return left, PermanentError(f"{failed[0]}{more}", system=connector.instance)
    return left, None


def bulk_chunks(operations: list[dict[str, Any]], max_operations: int, max_payload: int) -> list[list[int]]:
    """Indexes of ``operations`` cut into requests of at most ``max_operations`` and ``max_payload`` bytes."""
    envelope = len(json.dumps({"schemas": [BULK_REQUEST], "Operations": []}))
    chunks: list[list[int]] = []
    size = envelope
    for index, operation in enumerate(operations):
        cost = len(json.dumps(operation)) + 1  # and its comma
        if chunks and len(chunks[-1]) < max_operations and size + cost <= max_payload:
            chunks[-1].append(index)
            size += cost
        else:
            chunks.append([index])
            size = envelope + cost
    return chunks


def _send(
    connector: ScimConnector,
    operations: list[dict[str, Any]],
    group_ids: list[str],
    pending: list[int],
    left: list[str],
    failed: list[str],
) -> None:
    """One /Bulk request of the ``pending`` operations; those that may pass on a retry stay pending."""
    what = f"remove a member from {len(pending)} group(s) through /Bulk"
    body = {"schemas": [BULK_REQUEST], "Operations": [operations[i] for i in pending]}
    try:
        answer = connector._call("POST", "Bulk", what, GROUP_WRITE, idempotent=False, json=body).json()
    except (PermanentError, NotFound, TransientError) as exc:
        if exc.status not in _NOT_SUPPORTED:
            raise
        connector._bulk = False
        left.extend(group_ids[i] for i in pending)
        pending.clear()
        return
    results = answer.get("Operations") if isinstance(answer, dict) else None
    by_group = {group_ids[i]: i for i in pending}
    answered: dict[int, dict[str, Any]] = {}
    for position, result in enumerate(results if isinstance(results, list) else []):
        if not isinstance(result, dict):
            continue
        location = str(result.get("location") or "").rstrip("/")
        index = by_group.get(location.rsplit("/", 1)[-1]) if location else None
        if index is None and position < len(pending):  # no location: the operations' order (3.7.3)
            index = pending[position]
        if index is not None:
            answered.setdefault(index, result)
    retry: dict[int, ConnectorError] = {}
    for index in pending:
        result = answered.get(index)
        if result is None:  # not answered (the request stopped early): sent alone afterwards
            left.append(group_ids[index])
            continue
        status, response = _status(result.get("status")), result.get("response")
        response = response if isinstance(response, dict) else {}
        if 200 <= status < 300 or (status == 400 and response.get("scimType") == "noTarget"):
            continue
        if status in (405, 501):  # PATCH refused inside Bulk: the connector's PATCH-or-PUT path decides
            left.append(group_ids[index])
            continue
        message = short(str(response.get("detail") or response.get("scimType") or ""), 200)
        error = error_for(
            status,
            {},
            message,
            system=connector.instance,
            what=f"remove the member from group {group_ids[index]} (/Bulk)",
            permissions=(GROUP_WRITE,),
        )
        if error.retryable or isinstance(error, AuthError):
            retry[index] = error
        else:
            failed.append(str(error))
    raise_pending(retry, pending)  # only the operations that failed are sent again


def _status(value: Any) -> int:
    """An operation's ``status``: RFC 7644's examples send the code as a string ("200"), some servers a number."""
    try:
        return int(str(value).strip()[:3])
    except ValueError:
        return 0
