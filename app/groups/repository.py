"""Consultation groups in the ``groups`` table (single-table design).

Item layout (``pk`` / ``sk``):

- ``GROUP#<id>`` / ``META``: the group (patient id, owning institution, title, purpose,
  status, created and closed by/at);
- ``GROUP#<id>`` / ``MEMBER#<reg no>``: the current membership of one doctor, with a
  ``version`` for optimistic locking;
- ``GROUPHIST#<id>`` / ``<iso time>#<reg no>#<uuid>``: one item per membership change,
  append-only (put only if absent);
- ``OUTBOX#<yyyy-mm-dd>`` / ``<iso time>#<uuid>``: notification events (invitations,
  summons, rooms to bring in line with their group), delivered by the outbox
  dispatcher (:mod:`app.outbox`).
- ``MEMBEROF#<reg no>`` / ``GROUP#<id>``: which groups a doctor has a membership in, and
  its state (an index item, overwritten in the transaction of every membership change),
  so "my groups" and "my invitations" are one paginated query.

Break-glass grants share the table (:mod:`app.breakglass.repository`).

Guarantees: a group and all its memberships come back from one strongly consistent
query, so permissions are decided on the latest committed state; every query reads all
its pages (``page_size`` only sets how many items one page holds). Every change is one
``TransactWriteItems``: the membership, its history item, its audit event and any
outbox events commit together or not at all, and only if the group is still open and
the membership still has the version it was read at (a concurrent change makes the
transaction fail, never interleave). Nothing is deleted. The audit trail runs the
transaction (:meth:`~app.audit.events.TransactionalAuditTrail.transact_append`), because
the entry's ledger position is settled only at commit; a ledger-position collision is
retried inside the trail and is never a :class:`ConcurrentChange`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from app.audit.events import (
    AuditedTransactionConflict,
    AuditEvent,
    AuditReceipt,
    TransactionalAuditTrail,
)
from app.dynamo import query_page, query_partition, serialize
from app.groups.membership import (
    ConsultationGroup,
    GroupStatus,
    MemberRole,
    Membership,
    MembershipChange,
    MembershipState,
)
from app.outbox import OutboxStore, read_outbox


class ConcurrentChange(Exception):
    """The transaction's conditions failed: someone changed the group first."""


def _dt(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _parse_dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value)) if value else None


def group_item(group: ConsultationGroup) -> dict[str, Any]:
    return {
        "pk": f"GROUP#{group.group_id}",
        "sk": "META",
        "group_id": group.group_id,
        "patient_id": group.patient_id,
        "patient_ref": group.patient_ref,
        "institution": group.institution,
        "title": group.title,
        "purpose": group.purpose,
        "status": group.status.value,
        "created_by": group.created_by,
        "created_at": _dt(group.created_at),
        "closed_at": _dt(group.closed_at),
        "closed_by": group.closed_by,
    }


def membership_item(m: Membership) -> dict[str, Any]:
    return {
        "pk": f"GROUP#{m.group_id}",
        "sk": f"MEMBER#{m.reg_no}",
        "group_id": m.group_id,
        "reg_no": m.reg_no,
        "role": m.role.value,
        "state": m.state.value,
        "institution": m.institution,
        "invited_by": m.invited_by,
        "invited_at": _dt(m.invited_at),
        "joined_at": _dt(m.joined_at),
        "left_at": _dt(m.left_at),
        "removed_at": _dt(m.removed_at),
        "removed_by": m.removed_by,
        "version": m.version,
    }


def _group(item: Mapping[str, Any]) -> ConsultationGroup:
    created_at = _parse_dt(item["created_at"])
    assert created_at is not None
    return ConsultationGroup(
        group_id=str(item["group_id"]),
        patient_id=str(item["patient_id"]),
        patient_ref=str(item["patient_ref"]),
        institution=str(item["institution"]),
        title=str(item.get("title", "")),
        purpose=str(item.get("purpose", "")),
        status=GroupStatus(str(item["status"])),
        created_by=str(item["created_by"]),
        created_at=created_at,
        closed_at=_parse_dt(item.get("closed_at")),
        closed_by=str(item["closed_by"]) if item.get("closed_by") else None,
    )


def _membership(item: Mapping[str, Any]) -> Membership:
    invited_at = _parse_dt(item["invited_at"])
    assert invited_at is not None
    return Membership(
        group_id=str(item["group_id"]),
        reg_no=str(item["reg_no"]),
        role=MemberRole(str(item["role"])),
        state=MembershipState(str(item["state"])),
        institution=str(item["institution"]),
        invited_by=str(item["invited_by"]),
        invited_at=invited_at,
        joined_at=_parse_dt(item.get("joined_at")),
        left_at=_parse_dt(item.get("left_at")),
        removed_at=_parse_dt(item.get("removed_at")),
        removed_by=str(item["removed_by"]) if item.get("removed_by") else None,
        version=int(item["version"]),
    )


class GroupRepository:
    def __init__(self, client: Any, table_name: str, *, page_size: int | None = None):
        self._client = client
        self.table_name = table_name
        self._page_size = page_size

    def put(self, item: Mapping[str, Any], *, only_if_absent: bool = True) -> dict[str, Any]:
        """A transaction ``Put`` for ``item`` (append-only when ``only_if_absent``)."""
        put: dict[str, Any] = {"TableName": self.table_name, "Item": serialize(item)}
        if only_if_absent:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        return {"Put": put}

    def _history_put(self, change: MembershipChange) -> dict[str, Any]:
        item = {
            "pk": f"GROUPHIST#{change.group_id}",
            "sk": f"{change.at.isoformat()}#{change.reg_no}#{uuid.uuid4().hex}",
            "reg_no": change.reg_no,
            "event": change.event.value,
            "actor": change.actor,
            "at": change.at.isoformat(),
            "from_state": change.from_state.value if change.from_state else None,
            "to_state": change.to_state.value,
            "role": change.role.value,
        }
        return self.put(item)

    def _group_is_open(self, group_id: str) -> dict[str, Any]:
        return {
            "ConditionCheck": {
                "TableName": self.table_name,
                "Key": serialize({"pk": f"GROUP#{group_id}", "sk": "META"}),
                "ConditionExpression": "#s = :open",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": {":open": {"S": GroupStatus.OPEN.value}},
            }
        }

    def _member_of_put(self, m: Membership) -> dict[str, Any]:
        item = {
            "pk": f"MEMBEROF#{m.reg_no}",
            "sk": f"GROUP#{m.group_id}",
            "group_id": m.group_id,
            "state": m.state.value,
            "role": m.role.value,
        }
        return self.put(item, only_if_absent=False)

    def memberships_of(
        self, reg_no: str, state: MembershipState, *, limit: int, after: str | None
    ) -> tuple[list[str], str | None]:
        """One page of the ids of groups where ``reg_no`` has a membership in ``state``,
        and the position after it (a filtered page may be short and still be followed)."""
        items, last = query_page(
            self._client,
            self.table_name,
            f"MEMBEROF#{reg_no}",
            limit=limit,
            after=after,
            filter_expression="#state = :state",
            filter_names={"#state": "state"},
            filter_values={":state": state.value},
        )
        return [str(i["group_id"]) for i in items], last

    def _membership_put(self, m: Membership) -> dict[str, Any]:
        put: dict[str, Any] = {"TableName": self.table_name, "Item": serialize(membership_item(m))}
        if m.version == 1:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            put["ConditionExpression"] = "version = :expected"
            put["ExpressionAttributeValues"] = {":expected": {"N": str(m.version - 1)}}
        return {"Put": put}

    def transact(
        self,
        items: Sequence[Mapping[str, Any]],
        trail: TransactionalAuditTrail,
        event: AuditEvent,
    ) -> AuditReceipt:
        """Commit ``items`` with ``event``'s ledger entry in one transaction."""
        try:
            return trail.transact_append(event, items)
        except AuditedTransactionConflict as exc:
            raise ConcurrentChange() from exc

    def load(self, group_id: str) -> tuple[ConsultationGroup, list[Membership]] | None:
        """The group and every membership, from one strongly consistent query."""
        items = query_partition(
            self._client, self.table_name, f"GROUP#{group_id}", page_size=self._page_size
        )
        meta = next((i for i in items if i["sk"] == "META"), None)
        if meta is None:
            return None
        members = [_membership(i) for i in items if str(i["sk"]).startswith("MEMBER#")]
        return _group(meta), members

    def create(
        self,
        group: ConsultationGroup,
        lead: tuple[Membership, MembershipChange],
        trail: TransactionalAuditTrail,
        event: AuditEvent,
        extra: Iterable[Mapping[str, Any]] = (),
    ) -> AuditReceipt:
        membership, change = lead
        return self.transact(
            [
                self.put(group_item(group)),
                self._membership_put(membership),
                self._history_put(change),
                self._member_of_put(membership),
                *extra,
            ],
            trail,
            event,
        )

    def record_changes(
        self,
        group_id: str,
        changes: Iterable[tuple[Membership, MembershipChange]],
        extra: Iterable[Mapping[str, Any]],
        trail: TransactionalAuditTrail,
        event: AuditEvent,
    ) -> AuditReceipt:
        items: list[Mapping[str, Any]] = [self._group_is_open(group_id)]
        for membership, change in changes:
            items.append(self._membership_put(membership))
            items.append(self._history_put(change))
            items.append(self._member_of_put(membership))
        items.extend(extra)
        return self.transact(items, trail, event)

    def close(
        self,
        group: ConsultationGroup,
        trail: TransactionalAuditTrail,
        event: AuditEvent,
        extra: Iterable[Mapping[str, Any]] = (),
    ) -> AuditReceipt:
        update = {
            "Update": {
                "TableName": self.table_name,
                "Key": serialize({"pk": f"GROUP#{group.group_id}", "sk": "META"}),
                "UpdateExpression": "SET #s = :closed, closed_at = :at, closed_by = :by",
                "ConditionExpression": "#s = :open",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": serialize(
                    {
                        ":closed": GroupStatus.CLOSED.value,
                        ":open": GroupStatus.OPEN.value,
                        ":at": _dt(group.closed_at),
                        ":by": group.closed_by,
                    }
                ),
            }
        }
        return self.transact([update, *extra], trail, event)

    def group_ids(self) -> list[str]:
        """The id of every consultation group in the table, open or closed.

        A strongly consistent scan of every page (there is no index of all groups: only
        an operator's sweep, such as the re-mirror after a homeserver restore, needs it).
        """
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "FilterExpression": "sk = :meta AND begins_with(pk, :group)",
            "ExpressionAttributeValues": serialize({":meta": "META", ":group": "GROUP#"}),
            "ProjectionExpression": "pk",
            "ConsistentRead": True,
        }
        if self._page_size is not None:
            kwargs["Limit"] = self._page_size
        ids: list[str] = []
        while True:
            page = self._client.scan(**kwargs)
            ids.extend(str(i["pk"]["S"]).removeprefix("GROUP#") for i in page["Items"])
            if "LastEvaluatedKey" not in page:
                return sorted(ids)
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def history(self, group_id: str) -> list[dict[str, Any]]:
        """Every membership change of the group, oldest first (all pages)."""
        return query_partition(
            self._client, self.table_name, f"GROUPHIST#{group_id}", page_size=self._page_size
        )

    def outbox_store(self) -> OutboxStore:
        """The outbox items of this table, with their delivery state."""
        return OutboxStore(self._client, self.table_name, page_size=self._page_size)

    def outbox(self, day: str) -> list[dict[str, Any]]:
        """Every outbox event of ``day`` (``yyyy-mm-dd``), oldest first (all pages)."""
        return read_outbox(self._client, self.table_name, day, page_size=self._page_size)
