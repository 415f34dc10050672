"""The Google Workspace simulator's Data Transfer API (Drive and Calendar to a successor), shaped as in
``admin.datatransfer_v1``'s discovery document."""

from __future__ import annotations

import secrets
import time
from typing import Any

from ._app import HTTPError, Request, Response, route
from ._google_common import _DRIVE_APP, GoogleParts, T, _etag
from ._google_handover import CALENDAR_APP

__all__ = ["GoogleTransferSim"]


class GoogleTransferSim(GoogleParts):
    """Mixed into the Google Workspace simulator."""

    # ----- data transfer ----------------------------------------------------------------------
    def _transfer_customer(self, req: Request) -> None:
        """The Data Transfer API takes the immutable customer id; it documents no my_customer alias."""
        given = req.query.get("customerId")
        if given is not None and given != self.customer_id:
            raise HTTPError(400, f"Invalid Input: customerId {given}", reason="invalid")

    @route("GET", T + "/applications")
    async def transfer_applications(self, req: Request) -> Response:
        self._scope(req, "transfer_read")
        self._transfer_customer(req)
        apps = [
            {
                "kind": "admin#datatransfer#ApplicationResource",
                "id": _DRIVE_APP,
                "name": "Drive and Docs",
                "transferParams": [{"key": "PRIVACY_LEVEL", "value": ["PRIVATE", "SHARED"]}],
            },
            {
                "kind": "admin#datatransfer#ApplicationResource",
                "id": CALENDAR_APP,
                "name": "Calendar",
                "transferParams": [{"key": "RELEASE_RESOURCES", "value": ["TRUE"]}],
            },
        ]
        return Response(200, {"kind": "admin#datatransfer#applicationsList", "etag": _etag(), "applications": apps})

    @route("POST", T + "/transfers")
    async def transfer_insert(self, req: Request) -> Response:
        self._scope(req, "transfer")
        body = req.json() or {}
        old, new = self.users.get(str(body.get("oldOwnerUserId"))), self.users.get(str(body.get("newOwnerUserId")))
        if old is None or new is None:
            raise HTTPError(400, "Invalid Input: oldOwnerUserId/newOwnerUserId must be user ids", reason="invalid")
        if old is new:
            raise HTTPError(400, "Invalid Input: the old and new owners must differ", reason="invalid")
        apps = body.get("applicationDataTransfers") or []
        if not apps or any(int(a.get("applicationId", 0)) not in (_DRIVE_APP, CALENDAR_APP) for a in apps):
            raise HTTPError(400, "Invalid Input: applicationId", reason="invalid")
        tid = "AKrEtI" + secrets.token_hex(10)
        transfer = {
            "kind": "admin#datatransfer#DataTransfer",
            "etag": _etag(),
            "id": tid,
            "oldOwnerUserId": old["id"],
            "newOwnerUserId": new["id"],
            "applicationDataTransfers": [{**a, "applicationTransferStatus": "pending"} for a in apps],
            "overallTransferStatusCode": "inProgress",
            "requestTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "_done": time.monotonic() + self.transfer_seconds,
            "_apply": not req.lie,
        }
        self.transfers[tid] = transfer
        return Response(200, self._transfer_out(transfer))

    def _transfer_out(self, t: dict[str, Any]) -> dict[str, Any]:
        if t["overallTransferStatusCode"] == "inProgress" and time.monotonic() >= t["_done"]:
            t["overallTransferStatusCode"] = "completed"
            for a in t["applicationDataTransfers"]:
                a["applicationTransferStatus"] = "completed"
            old, new = self.users.get(t["oldOwnerUserId"]), self.users.get(t["newOwnerUserId"])
            if t["_apply"] and old is not None and new is not None:
                apps = {int(a["applicationId"]) for a in t["applicationDataTransfers"]}
                if _DRIVE_APP in apps:
                    new["_drive_files"] += old["_drive_files"]
                    old["_drive_files"] = 0
                if CALENDAR_APP in apps:
                    new["_calendars"] = new.get("_calendars", 0) + old.get("_calendars", 0)
                    old["_calendars"] = 0
        return {k: v for k, v in t.items() if not k.startswith("_")}

    @route("GET", T + "/transfers/{dataTransferId}")
    async def transfer_get(self, req: Request) -> Response:
        self._scope(req, "transfer_read")
        t = self.transfers.get(req.params["dataTransferId"])
        if t is None:
            raise HTTPError(404, "Resource Not Found: dataTransferId", reason="notFound")
        return Response(200, self._transfer_out(t))

    @route("GET", T + "/transfers")
    async def transfer_list(self, req: Request) -> Response:
        self._scope(req, "transfer_read")
        self._transfer_customer(req)
        items = [self._transfer_out(t) for t in self.transfers.values()]
        if req.query.get("oldOwnerUserId"):
            items = [t for t in items if t["oldOwnerUserId"] == req.query["oldOwnerUserId"]]
        if req.query.get("status"):
            items = [t for t in items if t["overallTransferStatusCode"] == req.query["status"]]
        return Response(200, {"kind": "admin#datatransfer#dataTransfersList", "etag": _etag(), "dataTransfers": items})
