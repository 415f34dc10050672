"""One account's chain of actions in a case: apply, read back, record; never apply twice after a crash."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..config._durations import iso as _iso
from ..config._logging import get_logger, redact
from ..connector import Connector
from ..errors import AuthError, ConnectorError
from ..models import Account, Action, ActionKind, ActionStatus, Receipt, Verification
from ..state._store import dumps
from ._ordering import prerequisites

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = ["ActionRunner"]

log = get_logger("offboard.engine")


class ActionRunner:
    """Runs the actions of one account in order; an authentication failure stops the rest of the chain."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def run_chain(
        self,
        case_id: str,
        person_id: str,
        rows: list[dict[str, Any]],
        progress: Callable[[dict[str, Any]], None] | None,
    ) -> None:
        stop: str | None = None
        try:
            if rows:
                self.engine.connector(rows[0]["system"])
        except ConnectorError as exc:  # set-up still failing after its retries: the chain fails, owed
            stop = f"connector set-up failed: {type(exc).__name__}: {exc}"
        for row in rows:
            if ActionStatus(row["status"]) in ActionStatus.FINAL:
                continue
            if stop:
                self._finish(case_id, person_id, row, ActionStatus.FAILED, error=stop, progress=progress)
                continue
            held = self._held(row, rows)
            if held:
                self._finish(case_id, person_id, row, ActionStatus.FAILED, error=held, progress=progress)
                continue
            try:
                self._run_action(case_id, person_id, row, progress)
            except AuthError as exc:
                stop = f"{type(exc).__name__}: {exc}"
                self._finish(
                    case_id,
                    person_id,
                    row,
                    ActionStatus.FAILED,
                    error=stop,
                    attempts=getattr(exc, "attempts", 1),
                    progress=progress,
                )

    def _held(self, row: dict[str, Any], rows: list[dict[str, Any]]) -> str | None:
        """Why ``row`` must wait: a step the connector's ``ordering`` puts first did not verify (``_ordering``)."""
        try:
            ordering = type(self.engine.connector(row["system"])).ordering
        except ConnectorError:
            return None
        needs = prerequisites(ActionKind(row["kind"]), ordering)
        for other in rows:
            if other["kind"] in {k.value for k in needs} and other["status"] != ActionStatus.VERIFIED.value:
                return (
                    f"held: {row['kind']} runs only after {other['kind']} is verified "
                    f"({row['system']}'s ordering), and {other['kind']} is {other['status']}"
                )
        return None

    def _run_action(
        self, case_id: str, person_id: str, row: dict[str, Any], progress: Callable[[dict[str, Any]], None] | None
    ) -> None:
        action = Action(
            ActionKind(row["kind"]), Account.from_dict(json.loads(row["account"])), json.loads(row["params"])
        )
        action = Action(action.kind, action.account, {**action.params, "case": case_id})
        connector = self.engine.connector(row["system"])
        receipt = Receipt.from_dict(json.loads(row["receipt"])) if row["receipt"] else None
        attempts = row["attempts"] or 0
        if ActionStatus(row["status"]) != ActionStatus.PENDING:
            # Interrupted after we asked the system: read back first, never apply twice.
            verification, n = self.engine.call(row["system"], connector.verify, action, receipt)
            attempts += n
            if verification.ok:
                self._finish(
                    case_id,
                    person_id,
                    row,
                    ActionStatus.VERIFIED,
                    receipt=receipt,
                    verification=verification,
                    attempts=attempts,
                    progress=progress,
                    recovered=True,
                )
                return
        try:
            self._keep_original(row, connector, action)
        except AuthError:
            raise
        except ConnectorError as exc:  # nothing was written: fail now rather than write without an undo
            self._finish(
                case_id,
                person_id,
                row,
                ActionStatus.FAILED,
                error=f"could not read the before-state: {type(exc).__name__}: {exc}",
                attempts=attempts + getattr(exc, "attempts", 1),
                progress=progress,
            )
            return
        requested = self.engine.clock()
        self.engine.store.update_action(row["id"], status=ActionStatus.APPLYING.value, requested_at=requested)
        try:
            receipt, n = self.engine.call(row["system"], connector.apply, action)
        except AuthError:
            raise
        except ConnectorError as exc:
            self._finish(
                case_id,
                person_id,
                row,
                ActionStatus.FAILED,
                error=f"{type(exc).__name__}: {exc}",
                attempts=attempts + getattr(exc, "attempts", 1),
                requested=requested,
                progress=progress,
            )
            return
        attempts += n
        responded = self.engine.clock()
        self.engine.store.update_action(
            row["id"],
            status=ActionStatus.APPLIED.value,
            receipt=dumps(receipt.to_dict()),
            responded_at=responded,
            attempts=attempts,
        )
        verification = self._verify(row["system"], connector, action, receipt)
        if verification.ok:
            status = ActionStatus.VERIFIED
        elif verification.pending or receipt.pending:
            status = ActionStatus.WAITING
        else:
            status = ActionStatus.UNVERIFIED
        self._finish(
            case_id,
            person_id,
            row,
            status,
            receipt=receipt,
            verification=verification,
            attempts=attempts,
            requested=requested,
            responded=responded,
            progress=progress,
        )

    def _keep_original(self, row: dict[str, Any], connector: Connector, action: Action) -> None:
        """Read and keep the account's before-state before offboard's first write to it (first one wins)."""
        if getattr(connector, f"before_{action.kind.value}", None) is None:
            return  # the connector reads no before-state for this kind: no call, no token spent
        originals = self.engine.store.originals
        if originals.get(row["system"], row["account_id"], row["kind"]) is not None:
            return  # a re-run, or a later case: the state before offboard's first write is already kept
        before, _ = self.engine.call(row["system"], connector.read_before, action)
        if before is not None:
            originals.keep(row["system"], row["account_id"], row["kind"], row["case_id"], before)

    def _verify(self, system: str, connector: Connector, action: Action, receipt: Receipt) -> Verification:
        """Read back, allowing a little time for eventual consistency."""
        verification = Verification(action, False, detail="not verified")
        for delay in (0.0, 0.25, 1.0):
            if delay:
                self.engine.sleep(delay)
            try:
                verification, _ = self.engine.call(system, connector.verify, action, receipt)
            except ConnectorError as exc:
                verification = Verification(action, False, detail=f"read-back failed: {type(exc).__name__}: {exc}")
                if isinstance(exc, AuthError):
                    break
            if verification.ok:  # a pending one is read again: a short transfer finishes within the delays
                break
        return verification

    def _finish(
        self,
        case_id: str,
        person_id: str,
        row: dict[str, Any],
        status: ActionStatus,
        *,
        receipt: Receipt | None = None,
        verification: Verification | None = None,
        error: str | None = None,
        attempts: int | None = None,
        requested: datetime | None = None,
        responded: datetime | None = None,
        progress: Callable[[dict[str, Any]], None] | None = None,
        recovered: bool = False,
    ) -> None:
        now = self.engine.clock()
        row["status"] = status.value  # the chain's later steps read it (``_held``)
        error = redact(error) if error else error
        values: dict[str, Any] = {"status": status.value, "error": error}
        if recovered and responded is None and row.get("responded_at") is None:
            responded = now  # the answer was lost with the crash: the read-back is the first proof we have
        if responded is not None:
            values["responded_at"] = responded
        if receipt is not None:
            values["receipt"] = dumps(receipt.to_dict())
        if verification is not None:
            values["verification"] = dumps(verification.to_dict())
            if verification.ok:
                values["verified_at"] = now
        if attempts is not None:
            values["attempts"] = attempts
        account = json.loads(row["account"])
        if error:
            log.warning(
                "action failed",
                case=case_id,
                system=row["system"],
                account=account["name"],
                kind=row["kind"],
                error=error,
            )
        self.engine.record(
            "action",
            case_id,
            {
                "case": case_id,
                "person": {"id": person_id},
                "system": row["system"],
                "account": {"id": account["id"], "name": account["name"]},
                "kind": row["kind"],
                "requested_at": _iso(requested or row.get("requested_at")),
                "responded_at": _iso(responded or row.get("responded_at")),
                "result": status.value,
                "reference": receipt.reference if receipt else None,
                "changed": bool(receipt.changed) if receipt else False,
                "verification": verification.to_dict() if verification else None,
                "error": error,
                "attempts": attempts if attempts is not None else row["attempts"],
                "recovered": recovered,
            },
            action=(row["id"], values),
        )
        if progress:
            progress(
                {
                    "case": case_id,
                    "system": row["system"],
                    "account": account["name"],
                    "kind": row["kind"],
                    "status": status.value,
                    "error": error,
                }
            )
