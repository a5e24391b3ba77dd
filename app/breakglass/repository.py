"""Break-glass grants in the ``groups`` table.

Item layout: ``pk = "BREAKGLASS#<reg no>"``, ``sk = "GRANT#<id>"``, holding the patient
id, its keyed reference, the justification (it may mention the patient, so it stays in
this encrypted table and never enters the audit trail), and the start, expiry and end
times. Grants are never deleted: ending one sets ``ended_at``, once.

Guarantees: a doctor's grants come back from strongly consistent reads of every page of
their partition, so a grant just started or ended is seen by the next request. Starting
and ending commit with their audit event (and, for a start, the alarm in the outbox) in
one transaction run by the audit trail.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from app.audit.events import (
    AuditedTransactionConflict,
    AuditEvent,
    AuditReceipt,
    TransactionalAuditTrail,
)
from app.breakglass.grants import BreakGlassGrant
from app.dynamo import query_partition, serialize


class GrantAlreadyEnded(Exception):
    """Ending a grant found it already ended (a concurrent end)."""


def _pk(reg_no: str) -> str:
    return f"BREAKGLASS#{reg_no}"


def _grant(item: Mapping[str, Any]) -> BreakGlassGrant:
    return BreakGlassGrant(
        grant_id=str(item["grant_id"]),
        reg_no=str(item["reg_no"]),
        patient_id=str(item["patient_id"]),
        patient_ref=str(item["patient_ref"]),
        started_at=datetime.fromisoformat(str(item["started_at"])),
        expires_at=datetime.fromisoformat(str(item["expires_at"])),
        ended_at=datetime.fromisoformat(str(item["ended_at"])) if item.get("ended_at") else None,
    )


class BreakGlassRepository:
    def __init__(self, client: Any, table_name: str, *, page_size: int | None = None):
        self._client = client
        self.table_name = table_name
        self._page_size = page_size

    def grants(self, reg_no: str) -> list[BreakGlassGrant]:
        """Every grant ``reg_no`` ever held, by grant id (all pages, strongly consistent)."""
        items = query_partition(
            self._client, self.table_name, _pk(reg_no), page_size=self._page_size
        )
        return [_grant(i) for i in items]

    def _put(self, item: Mapping[str, Any]) -> dict[str, Any]:
        # Fresh keys only (a new grant id, a new outbox key): never overwrite.
        return {
            "Put": {
                "TableName": self.table_name,
                "Item": serialize(item),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def start(
        self,
        grant: BreakGlassGrant,
        justification: str,
        alarm: Mapping[str, Any],
        trail: TransactionalAuditTrail,
        event: AuditEvent,
    ) -> AuditReceipt:
        """Commit the grant, its alarm (an outbox item) and its audit event together."""
        item = {
            "pk": _pk(grant.reg_no),
            "sk": f"GRANT#{grant.grant_id}",
            "grant_id": grant.grant_id,
            "reg_no": grant.reg_no,
            "patient_id": grant.patient_id,
            "patient_ref": grant.patient_ref,
            "justification": justification,
            "started_at": grant.started_at.isoformat(),
            "expires_at": grant.expires_at.isoformat(),
        }
        return trail.transact_append(event, [self._put(item), self._put(alarm)])

    def end(
        self,
        grant: BreakGlassGrant,
        at: datetime,
        trail: TransactionalAuditTrail,
        event: AuditEvent,
    ) -> AuditReceipt:
        """Set ``ended_at`` with the audit event, only if the grant has not ended.

        Raises:
            GrantAlreadyEnded: if another request ended it first.
        """
        update = {
            "Update": {
                "TableName": self.table_name,
                "Key": serialize({"pk": _pk(grant.reg_no), "sk": f"GRANT#{grant.grant_id}"}),
                "UpdateExpression": "SET ended_at = :now",
                "ConditionExpression": "attribute_not_exists(ended_at)",
                "ExpressionAttributeValues": serialize({":now": at.isoformat()}),
            }
        }
        try:
            return trail.transact_append(event, [update])
        except AuditedTransactionConflict as exc:
            raise GrantAlreadyEnded() from exc
