"""The Entra simulator's JSON batching (Microsoft Graph ``POST /v1.0/$batch``: up to 20 requests, ids unique,
``dependsOn``), each request served by the simulator's own routes."""

from __future__ import annotations

import json
import uuid
from typing import Any

from ._app import HTTPError, Request, Response, route
from ._entra_parts import EntraParts

__all__ = ["EntraBatch"]


class EntraBatch(EntraParts):
    """Mixed into the Entra simulator."""

    # ----- $batch -----------------------------------------------------------------------------
    @route("POST", "/v1.0/$batch", write=False)
    async def batch(self, req: Request) -> Response:
        body = req.json()
        items = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items:
            raise HTTPError(400, "Invalid batch payload format.", reason="BadRequest")
        if len(items) > 20:
            raise HTTPError(400, "Number of batch requests exceeds the maximum of 20.", reason="BadRequest")
        ids: dict[str, dict[str, Any]] = {}
        for item in items:
            if not isinstance(item, dict) or not item.get("id") or not item.get("method") or not item.get("url"):
                raise HTTPError(
                    400, "Invalid batch payload format: each request needs id, method and url.", reason="BadRequest"
                )
            key = str(item["id"]).lower()
            if key in ids:
                raise HTTPError(400, "Batch request Ids must be unique.", reason="BadRequest")
            ids[key] = item
        for item in items:
            for dep in item.get("dependsOn") or ():
                if str(dep).lower() not in ids:
                    raise HTTPError(400, f"Request with Id '{dep}' was not found in the batch.", reason="BadRequest")
        batch_id = str(uuid.uuid4())
        results: dict[str, dict[str, Any]] = {}
        for item in items:
            iid = str(item["id"])
            failed = [
                d for d in item.get("dependsOn") or () if results.get(str(d).lower(), {}).get("status", 500) >= 400
            ]
            if failed:
                err = self.error(HTTPError(424, "Failed Dependency", reason="FailedDependency"))
                results[iid.lower()] = {
                    "id": iid,
                    "status": 424,
                    "headers": {"Content-Type": "application/json"},
                    "body": err.body,
                }
                continue
            results[iid.lower()] = await self._batch_item(item, req, batch_id)
        order = list(results.values())
        self.faults.rng.shuffle(order)  # Graph answers in any order; clients correlate by id
        return Response(200, {"responses": order})

    async def _batch_item(self, item: dict[str, Any], outer: Request, batch_id: str) -> dict[str, Any]:
        url = str(item["url"])
        if not url.startswith("/"):
            url = "/" + url
        if url.startswith("/v1.0/"):
            url = url[5:]
        path, _, qs = url.partition("?")
        from urllib.parse import unquote

        headers = {k.lower(): str(v) for k, v in (item.get("headers") or {}).items()}
        headers["authorization"] = outer.header("authorization")
        raw = item.get("body")
        if raw is not None and "content-type" not in headers:
            err = self.error(
                HTTPError(
                    400,
                    "Write request id : {} does not contain Content-Type header or body.".format(item["id"]),
                    reason="BadRequest",
                )
            )
            return {
                "id": str(item["id"]),
                "status": 400,
                "headers": {"Content-Type": "application/json"},
                "body": err.body,
            }
        body = b"" if raw is None else (raw.encode() if isinstance(raw, str) else json.dumps(raw).encode())
        inner = Request(str(item["method"]).upper(), "/v1.0" + unquote(path), qs, headers, body)
        inner.batch = batch_id
        resp = await self.dispatch(inner)
        out: dict[str, Any] = {
            "id": str(item["id"]),
            "status": resp.status,
            "headers": {"Content-Type": "application/json", **{k: str(v) for k, v in resp.headers.items()}},
        }
        if resp.body is not None:
            out["body"] = resp.body
        return out
