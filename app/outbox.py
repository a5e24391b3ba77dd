"""The outbox: notification events committed with the change they announce, and their
delivery.

An outbox item (``pk = "OUTBOX#<yyyy-mm-dd>"``, ``sk = "<iso time>#<uuid>"``, status
``pending``) is written in the same ``TransactWriteItems`` as its change (an invitation,
a summons, a break-glass alarm, a room to bring in line with its group, a record card),
so a notification exists exactly when its change committed. :func:`read_outbox` reads
one day's events, every page of them.

:class:`OutboxDispatcher` delivers them, **at least once**:

1. :meth:`OutboxStore.due` lists the items of the last ``DISPATCH_DAYS`` days that are
   pending and due (``next_attempt_at`` passed), or whose delivery lease expired (a
   dispatcher that died mid-delivery), reading every page;
2. each is **claimed** with a conditional update (``pending``/expired lease ->
   ``in_flight``, ``attempts + 1``, a lease): two dispatchers never deliver one item at
   the same time;
3. its kind's handler delivers it; then it is ``delivered`` (conditional on still holding
   the claim). A failure puts it back to ``pending`` with exponential backoff
   (``retry_base_seconds * 2**(attempts - 1)``); after ``max_attempts`` it goes to the
   **dead-letter queue** (SQS, the item's identifiers and error code) and is marked
   ``dead``. An item of a kind nobody handles is dead-lettered at once.

A handler may run twice for one item (a dispatcher dying between delivering and marking
it): handlers are idempotent by the outbox item id (:func:`outbox_id`), which they pass
on (SNS message attributes, the Matrix transaction id of a card) so a duplicate is
harmless. Items hold identifiers and codes only (never patient content); error codes
are exception type names, never messages.

Complexity: one strongly consistent query per day in the window per run (filtered to
due items, every page), one conditional update per claimed item. The dispatcher runs
on a schedule in AWS (a declared function, ``app.lambda_handler.dispatch_handler``) and
as a background loop on the local platform.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from botocore.exceptions import ClientError

from app.dynamo import deserialize, query_partition, serialize

log = logging.getLogger(__name__)

PENDING = "pending"
IN_FLIGHT = "in_flight"
DELIVERED = "delivered"
DEAD = "dead"
DISPATCH_DAYS = 2
DEFAULT_LEASE_SECONDS = 120


def outbox_item(kind: str, at: datetime, payload: Mapping[str, str]) -> dict[str, Any]:
    return {
        "pk": f"OUTBOX#{at.date().isoformat()}",
        "sk": f"{at.isoformat()}#{uuid.uuid4().hex}",
        "kind": kind,
        "status": PENDING,
        "created_at": at.isoformat(),
        "attempts": 0,
        **payload,
    }


def outbox_id(item: Mapping[str, Any]) -> str:
    """The item's stable id (the uuid of its sort key): what deliveries are deduplicated by."""
    return str(item["sk"]).rsplit("#", 1)[-1]


def read_outbox(
    client: Any, table_name: str, day: str, *, page_size: int | None = None
) -> list[dict[str, Any]]:
    """Every outbox event of ``day`` (``yyyy-mm-dd``), oldest first."""
    return query_partition(client, table_name, f"OUTBOX#{day}", page_size=page_size)


def put_outbox_item(client: Any, table_name: str, item: Mapping[str, Any]) -> None:
    """Write one outbox item on its own (for events that have no change to commit with)."""
    client.put_item(
        TableName=table_name, Item=serialize(item), ConditionExpression="attribute_not_exists(pk)"
    )


def _conditional_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class OutboxStore:
    """The outbox items of one table, and their delivery state."""

    def __init__(self, client: Any, table_name: str, *, page_size: int | None = None) -> None:
        self._client = client
        self.table_name = table_name
        self._page_size = page_size

    def _key(self, item: Mapping[str, Any]) -> dict[str, Any]:
        return serialize({"pk": item["pk"], "sk": item["sk"]})

    def due(self, now: datetime, days: int = DISPATCH_DAYS) -> list[dict[str, Any]]:
        """Items that are due, oldest day first (see the module docstring)."""
        at = now.isoformat()
        out: list[dict[str, Any]] = []
        for back in range(days - 1, -1, -1):
            day = (now - timedelta(days=back)).date().isoformat()
            kwargs: dict[str, Any] = {
                "TableName": self.table_name,
                "KeyConditionExpression": "pk = :pk",
                "FilterExpression": "(#s = :pending AND (attribute_not_exists(next_attempt_at) "
                "OR next_attempt_at <= :now)) OR (#s = :flight AND lease_until < :now)",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": serialize(
                    {":pk": f"OUTBOX#{day}", ":pending": PENDING, ":flight": IN_FLIGHT, ":now": at}
                ),
                "ConsistentRead": True,
            }
            if self._page_size is not None:
                kwargs["Limit"] = self._page_size
            while True:
                page = self._client.query(**kwargs)
                out.extend(deserialize(i) for i in page["Items"])
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return out

    def claim(self, item: Mapping[str, Any], now: datetime, lease_s: int) -> dict[str, Any] | None:
        """Take the item for delivery; None if someone else holds it or it is done."""
        try:
            answer = self._client.update_item(
                TableName=self.table_name,
                Key=self._key(item),
                UpdateExpression="SET #s = :flight, lease_until = :lease, "
                "attempts = if_not_exists(attempts, :zero) + :one",
                ConditionExpression="(#s = :pending AND (attribute_not_exists(next_attempt_at) "
                "OR next_attempt_at <= :now)) OR (#s = :flight AND lease_until < :now)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=serialize(
                    {
                        ":flight": IN_FLIGHT,
                        ":pending": PENDING,
                        ":now": now.isoformat(),
                        ":lease": (now + timedelta(seconds=lease_s)).isoformat(),
                        ":zero": 0,
                        ":one": 1,
                    }
                ),
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if _conditional_failure(error):
                return None
            raise
        return deserialize(answer["Attributes"])

    def _settle(self, item: Mapping[str, Any], update: str, values: Mapping[str, Any]) -> bool:
        """Apply ``update`` if this claim (same attempt) still holds the item."""
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=self._key(item),
                UpdateExpression=update,
                ConditionExpression="#s = :flight AND attempts = :attempt",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=serialize(
                    {**values, ":flight": IN_FLIGHT, ":attempt": int(item["attempts"])}
                ),
            )
        except ClientError as error:
            if _conditional_failure(error):
                return False
            raise
        return True

    def delivered(self, item: Mapping[str, Any], now: datetime) -> bool:
        return self._settle(
            item,
            "SET #s = :done, delivered_at = :now REMOVE lease_until",
            {":done": DELIVERED, ":now": now.isoformat()},
        )

    def retry_later(self, item: Mapping[str, Any], error: str, at: datetime) -> bool:
        return self._settle(
            item,
            "SET #s = :pending, next_attempt_at = :at, last_error = :error REMOVE lease_until",
            {":pending": PENDING, ":at": at.isoformat(), ":error": error},
        )

    def dead(self, item: Mapping[str, Any], error: str, now: datetime) -> bool:
        return self._settle(
            item,
            "SET #s = :dead, dead_at = :now, last_error = :error REMOVE lease_until",
            {":dead": DEAD, ":now": now.isoformat(), ":error": error},
        )

    def settle_in_request(self, item: Mapping[str, Any], now: datetime) -> bool:
        """Mark a still-pending item delivered by the request that wrote it (a room
        mirrored in the same request): the dispatcher then has nothing left to do."""
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=self._key(item),
                UpdateExpression="SET #s = :done, delivered_at = :now",
                ConditionExpression="#s = :pending",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=serialize(
                    {":done": DELIVERED, ":pending": PENDING, ":now": now.isoformat()}
                ),
            )
        except ClientError as error:
            if _conditional_failure(error):
                return False
            raise
        return True


class DeadLetters(Protocol):
    def send(self, item: Mapping[str, Any], error: str) -> None: ...


class SqsDeadLetters:
    """Dead-lettered items go to an SQS queue (identifiers, kind and error code only)."""

    FIELDS = ("pk", "sk", "kind", "created_at", "attempts", "group_id", "grant_id")

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self._queue_url = queue_url

    def send(self, item: Mapping[str, Any], error: str) -> None:
        body = {k: str(item[k]) for k in self.FIELDS if k in item}
        body["outbox_id"] = outbox_id(item)
        body["error"] = error
        self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=json.dumps(body))


class UndeliverableKind(Exception):
    """No handler delivers items of this kind."""


Handler = Callable[[Mapping[str, Any]], None]


@dataclass
class DispatchReport:
    delivered: list[str] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)
    dead: list[str] = field(default_factory=list)
    skipped: int = 0

    def merge(self, other: DispatchReport) -> None:
        self.delivered += other.delivered
        self.retried += other.retried
        self.dead += other.dead
        self.skipped += other.skipped


class OutboxDispatcher:
    """Delivers due outbox items through their kind's handler (see the module docstring).

    Args:
        handlers: kind -> handler; a handler raises to have the item retried.
        on_dead: called after an item is dead-lettered (the security alarm).
    """

    def __init__(
        self,
        store: OutboxStore,
        handlers: Mapping[str, Handler],
        dead_letters: DeadLetters,
        *,
        max_attempts: int = 5,
        retry_base_seconds: int = 30,
        lease_seconds: int = DEFAULT_LEASE_SECONDS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_dead: Callable[[Mapping[str, Any], str], None] | None = None,
    ) -> None:
        self.store = store
        self._handlers = dict(handlers)
        self._dead_letters = dead_letters
        self._max_attempts = max_attempts
        self._retry_base = retry_base_seconds
        self._lease = lease_seconds
        self._clock = clock
        self._on_dead = on_dead

    def run_once(self, select: Callable[[Mapping[str, Any]], bool] | None = None) -> DispatchReport:
        """One pass over the due items (those ``select`` accepts, if given)."""
        report = DispatchReport()
        for due in self.store.due(self._clock()):
            if select is not None and not select(due):
                continue
            item = self.store.claim(due, self._clock(), self._lease)
            if item is None:
                report.skipped += 1
                continue
            self._deliver(item, report)
        return report

    def _deliver(self, item: dict[str, Any], report: DispatchReport) -> None:
        ident = outbox_id(item)
        handler = self._handlers.get(str(item.get("kind")))
        try:
            if handler is None:
                raise UndeliverableKind(str(item.get("kind")))
            handler(item)
        except Exception as exc:
            error = type(exc).__name__
            attempts = int(item["attempts"])
            log.warning(
                "outbox item %s (%s) not delivered, attempt %d: %s",
                ident,
                item.get("kind"),
                attempts,
                error,
            )
            if isinstance(exc, UndeliverableKind) or attempts >= self._max_attempts:
                self._dead_letters.send(item, error)
                self.store.dead(item, error, self._clock())
                report.dead.append(ident)
                self._alarm_dead(item, error)
            else:
                delay = self._retry_base * 2 ** (attempts - 1)
                self.store.retry_later(item, error, self._clock() + timedelta(seconds=delay))
                report.retried.append(ident)
            return
        self.store.delivered(item, self._clock())
        report.delivered.append(ident)

    def _alarm_dead(self, item: Mapping[str, Any], error: str) -> None:
        if self._on_dead is None:
            return
        try:
            self._on_dead(item, error)
        except Exception as exc:  # the item is in the queue and marked dead already
            log.error("dead-letter alarm for %s failed: %s", outbox_id(item), type(exc).__name__)
