"""An append-only audit store on the ledger table, until the Merkle ledger takes over.

Items live under ``pk = "AUDITLOG#<yyyy-mm-dd>"``, ``sk = "<iso time>#<event id>"``
(a prefix the ledger's own items do not use). Every put is conditional on the key not
existing, so an event is never overwritten; the service has no code path that updates
or deletes these items. Receipts name the table key of the stored event.
"""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.types import TypeSerializer

from app.audit.events import AuditEvent, AuditReceipt

_serializer = TypeSerializer()


class DynamoAuditStore:
    """Implements :class:`~app.audit.events.TransactionalAuditTrail` on DynamoDB."""

    name = "dynamodb-auditlog"

    def __init__(self, client: Any, table_name: str):
        self._client = client
        self._table = table_name

    @staticmethod
    def _key(event: AuditEvent) -> tuple[str, str]:
        return f"AUDITLOG#{event.at.date().isoformat()}", f"{event.at.isoformat()}#{event.event_id}"

    def _item(self, event: AuditEvent) -> dict[str, Any]:
        pk, sk = self._key(event)
        item = {"pk": pk, "sk": sk, **event.to_item()}
        return {k: _serializer.serialize(v) for k, v in item.items()}

    def _receipt(self, event: AuditEvent) -> AuditReceipt:
        pk, sk = self._key(event)
        return AuditReceipt(event.event_id, self.name, f"{pk}/{sk}")

    def append(self, event: AuditEvent) -> AuditReceipt:
        self._client.put_item(
            TableName=self._table,
            Item=self._item(event),
            ConditionExpression="attribute_not_exists(pk)",
        )
        return self._receipt(event)

    def transact_put(self, event: AuditEvent) -> tuple[dict[str, Any], AuditReceipt]:
        put = {
            "Put": {
                "TableName": self._table,
                "Item": self._item(event),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        return put, self._receipt(event)

    def events_on(self, day: str) -> list[dict[str, Any]]:
        """Every stored event of one UTC day, oldest first (tests and audit queries)."""
        from boto3.dynamodb.types import TypeDeserializer

        deserializer = TypeDeserializer()
        out: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"AUDITLOG#{day}"}},
            "ConsistentRead": True,
        }
        while True:
            page = self._client.query(**kwargs)
            out.extend(
                {k: deserializer.deserialize(v) for k, v in item.items()} for item in page["Items"]
            )
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class MemoryAuditStore:
    """An in-memory append-only trail (benchmarks and unit tests)."""

    name = "memory"

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    def append(self, event: AuditEvent) -> AuditReceipt:
        self.events.append(event)
        return AuditReceipt(event.event_id, self.name, str(len(self.events) - 1))
