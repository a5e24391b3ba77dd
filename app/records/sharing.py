"""Sharing a record into a consultation group.

The sharer must be allowed to read the record and to share it into that group (Cedar,
on both as read now). The share commits with its audit event only if, at commit time,
the group is still open and the sharer's membership is exactly the one read (still
active, unchanged): a concurrent close or removal makes it a 409, never a share into a
group the sharer has left. With messaging on, the share commits a ``record_card``
outbox item with it: the dispatcher posts the card (record id, type, title) into the
group's room (``app/notifications/cards.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from app.access.engine import Action
from app.audit.events import AuditReceipt
from app.dynamo import serialize
from app.errors import Conflict, NotFound
from app.groups.entities import group_entity
from app.groups.membership import GroupStatus
from app.groups.repository import GroupRepository
from app.identity.principal import Principal
from app.outbox import outbox_item
from app.records.authorization import RecordAuthorization, relabel
from app.records.commit import UploadCommit
from app.records.repository import RecordRepository, RecordShare, TransactionRefused


class RecordSharing:
    def __init__(
        self,
        repository: RecordRepository,
        groups: GroupRepository,
        authorization: RecordAuthorization,
        commit: UploadCommit,
        clock: Callable[[], datetime],
        *,
        record_cards: bool = False,
    ):
        self._record_cards = record_cards
        self._repo = repository
        self._groups = groups
        self._authz = authorization
        self._commit = commit
        self._clock = clock

    def share(
        self, principal: Principal, record_id: str, group_id: str
    ) -> tuple[RecordShare, AuditReceipt]:
        state = self._authz.load(principal, record_id, Action.SHARE_RECORD)
        self._authz.decide(principal, Action.READ_RECORD, state)
        loaded = self._groups.load(group_id)
        if loaded is None:
            raise NotFound("No such group.")
        group, memberships = loaded
        target = (
            group.group_id,
            group_entity(group, memberships, slice_for=(principal.reg_no or "",)),
        )
        allowed = self._authz.decide(
            principal,
            Action.SHARE_RECORD,
            state,
            target=target,
            details={"group_id": group_id},
        )
        if any(s.group_id == group_id for s in state.shares):
            raise Conflict("The record is already shared into that group.", code="already_shared")
        share = RecordShare(group_id, principal.reg_no or principal.sub, self._clock())
        mine = next(m for m in memberships if m.reg_no == principal.reg_no)
        conditions = [
            {
                "ConditionCheck": {
                    "TableName": self._groups.table_name,
                    "Key": serialize({"pk": f"GROUP#{group_id}", "sk": "META"}),
                    "ConditionExpression": "#s = :open",
                    "ExpressionAttributeNames": {"#s": "status"},
                    "ExpressionAttributeValues": {":open": {"S": GroupStatus.OPEN.value}},
                }
            },
            {
                # The sharer's membership is exactly as read: still active, unchanged.
                "ConditionCheck": {
                    "TableName": self._groups.table_name,
                    "Key": serialize({"pk": f"GROUP#{group_id}", "sk": f"MEMBER#{mine.reg_no}"}),
                    "ConditionExpression": "version = :v",
                    "ExpressionAttributeValues": {":v": {"N": str(mine.version)}},
                }
            },
        ]
        card = (
            [
                self._groups.put(
                    outbox_item(
                        "record_card",
                        self._clock(),
                        {"group_id": group_id, "record_id": record_id},
                    )
                )
            ]
            if self._record_cards
            else []
        )
        try:
            receipt = self._commit.transact(
                relabel(allowed, f"Share::{record_id}:{group_id}").event,
                [*self._repo.share_items(record_id, share), *conditions, *card],
            )
        except TransactionRefused as exc:
            again = self._repo.load(record_id)
            if again is not None and any(s.group_id == group_id for s in again.shares):
                raise Conflict(
                    "The record is already shared into that group.", code="already_shared"
                ) from exc
            raise Conflict("The group changed meanwhile; retry.", code="concurrent_change") from exc
        return share, receipt
