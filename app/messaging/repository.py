"""What the hub remembers about its homeserver: account bindings, governed rooms, and the
transactions and events it has already handled.

:class:`RoomDirectory` is the storage contract of :class:`app.messaging.service.RoomAuthority`.
A governed room's ``members`` is the set of Matrix users *the hub decided* may be in it;
``pending`` is the part of it that may hold an invitation but may not join yet (invited
in the hub, not accepted: the hub's membership is the permission, so nobody reads the
room before the hub lets them read the group). The room authority updates the decision
before it changes the room, so an incoming membership event can always be judged
against it. A room also keeps the keyed patient reference of its group (what the ledger
entries of its events name; never the patient id).

Two implementations, one contract:

- :class:`InMemoryRoomDirectory`: process memory behind a lock (transactions from the
  homeserver and the hub's own requests run concurrently); the messaging tests and the
  benchmark.
- :class:`DynamoRoomDirectory`: the deployed service's, in the groups table next to the
  consultation groups. Admitting and removing one doctor are single atomic updates of
  string sets (``ADD``/``DELETE``), so two requests admitting two doctors at once cannot
  lose either; a transaction id is claimed with a conditional put. Items::

    MXROOM#<group id>  / ROOM      room id, members, pending, closed, patient_ref
    MXROOMID#<room id> / ROOM      group id (the homeserver names rooms, the hub groups)
    DOCTOR#<reg no>    / MATRIX    the doctor's Matrix user id, and the sender facts the
                                   ledger needs (sub, institution, department), recorded
                                   when the hub opens a session for them
    MXTXN#<txn id>#<events' SHA-256> / TXN   a homeserver transaction being or already handled

Every read is a strongly consistent ``GetItem``; nothing here queries a partition.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from botocore.exceptions import ClientError

from app.dynamo import deserialize, serialize


@dataclass(frozen=True)
class GovernedRoom:
    """A group's room and the hub's decision about it.

    ``members``: the Matrix users who may be in it (invited or joined); ``pending``: those
    of them who may only hold an invitation (invited in the hub, not accepted yet).
    """

    group_id: str
    room_id: str
    members: frozenset[str]
    closed: bool = False
    pending: frozenset[str] = frozenset()
    patient_ref: str | None = None

    def may_join(self, user_id: str) -> bool:
        return user_id in self.members and user_id not in self.pending


@dataclass(frozen=True)
class SenderFacts:
    """Who a hub doctor's Matrix account stands for, as the ledger records a sender."""

    reg_no: str
    sub: str
    institution: str
    department: str


class UnknownRoom(KeyError):
    """No room is bound to this consultation group."""


class RoomDirectory(Protocol):
    def account(self, reg_no: str) -> str | None: ...

    def bind_account(self, reg_no: str, user_id: str) -> None: ...

    def record_sender(self, facts: SenderFacts, at: datetime) -> None:
        """Remember who the doctor's account sends as (sub, institution, department)."""
        ...

    def sender(self, reg_no: str) -> SenderFacts | None: ...

    def room_for_group(self, group_id: str) -> GovernedRoom | None: ...

    def room(self, room_id: str) -> GovernedRoom | None: ...

    def bind_room(
        self,
        group_id: str,
        room_id: str,
        members: Iterable[str],
        *,
        patient_ref: str | None = None,
    ) -> GovernedRoom: ...

    def rebind_room(self, group_id: str, old_room_id: str, room_id: str) -> GovernedRoom:
        """Bind the group to ``room_id`` in place of ``old_room_id``, a room its homeserver
        no longer has (restored from a backup older than the room); the decision and the
        patient reference stay. Raises ValueError if the group is bound to another room."""
        ...

    def set_members(
        self, group_id: str, members: Iterable[str], pending: Iterable[str] = ()
    ) -> GovernedRoom:
        """The decision is exactly ``members`` (``pending`` of them invitation only)."""
        ...

    def admit_member(self, group_id: str, user_id: str, *, pending: bool) -> GovernedRoom:
        """Add one user to the decision (atomically: concurrent admissions all stay)."""
        ...

    def discard_member(self, group_id: str, user_id: str) -> GovernedRoom:
        """Take one user out of the decision (atomically)."""
        ...

    def close(self, group_id: str) -> GovernedRoom: ...

    def claim_transaction(self, txn_id: str) -> bool:
        """True the first time a transaction is claimed, False after (``txn_id``: what
        names it, :func:`app.messaging.service.transaction_claim`: its id and events)."""
        ...

    def release_transaction(self, txn_id: str) -> None:
        """Forget a claim whose handling failed, so the homeserver's retry is handled."""
        ...


class InMemoryRoomDirectory:
    """:class:`RoomDirectory` in process memory (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accounts: dict[str, str] = {}
        self._senders: dict[str, SenderFacts] = {}
        self._by_group: dict[str, GovernedRoom] = {}
        self._group_of_room: dict[str, str] = {}
        self._transactions: set[str] = set()

    def account(self, reg_no: str) -> str | None:
        with self._lock:
            return self._accounts.get(reg_no)

    def bind_account(self, reg_no: str, user_id: str) -> None:
        with self._lock:
            bound = self._accounts.setdefault(reg_no, user_id)
            if bound != user_id:
                raise ValueError("registration number already bound to another account")

    def record_sender(self, facts: SenderFacts, at: datetime) -> None:
        with self._lock:
            self._senders[facts.reg_no] = facts

    def sender(self, reg_no: str) -> SenderFacts | None:
        with self._lock:
            return self._senders.get(reg_no)

    def room_for_group(self, group_id: str) -> GovernedRoom | None:
        with self._lock:
            return self._by_group.get(group_id)

    def room(self, room_id: str) -> GovernedRoom | None:
        with self._lock:
            group_id = self._group_of_room.get(room_id)
            return self._by_group.get(group_id) if group_id else None

    def bind_room(
        self,
        group_id: str,
        room_id: str,
        members: Iterable[str],
        *,
        patient_ref: str | None = None,
    ) -> GovernedRoom:
        with self._lock:
            if group_id in self._by_group:
                raise ValueError("group already has a room")
            room = GovernedRoom(group_id, room_id, frozenset(members), patient_ref=patient_ref)
            self._by_group[group_id] = room
            self._group_of_room[room_id] = group_id
            return room

    def rebind_room(self, group_id: str, old_room_id: str, room_id: str) -> GovernedRoom:
        with self._lock:
            room = self._require(group_id)
            if room.room_id != old_room_id:
                raise ValueError("group bound to another room")
            updated = replace(room, room_id=room_id)
            self._by_group[group_id] = updated
            del self._group_of_room[old_room_id]
            self._group_of_room[room_id] = group_id
            return updated

    def set_members(
        self, group_id: str, members: Iterable[str], pending: Iterable[str] = ()
    ) -> GovernedRoom:
        with self._lock:
            room = self._require(group_id)
            if room.closed:
                return room
            decided = frozenset(members)
            updated = replace(room, members=decided, pending=frozenset(pending) & decided)
            self._by_group[group_id] = updated
            return updated

    def admit_member(self, group_id: str, user_id: str, *, pending: bool) -> GovernedRoom:
        with self._lock:
            room = self._require(group_id)
            if room.closed:
                return room
            waiting = room.pending | {user_id} if pending else room.pending - {user_id}
            updated = replace(room, members=room.members | {user_id}, pending=waiting)
            self._by_group[group_id] = updated
            return updated

    def discard_member(self, group_id: str, user_id: str) -> GovernedRoom:
        with self._lock:
            room = self._require(group_id)
            updated = replace(
                room, members=room.members - {user_id}, pending=room.pending - {user_id}
            )
            self._by_group[group_id] = updated
            return updated

    def close(self, group_id: str) -> GovernedRoom:
        with self._lock:
            closed = replace(
                self._require(group_id), members=frozenset(), pending=frozenset(), closed=True
            )
            self._by_group[group_id] = closed
            return closed

    def claim_transaction(self, txn_id: str) -> bool:
        with self._lock:
            if txn_id in self._transactions:
                return False
            self._transactions.add(txn_id)
            return True

    def release_transaction(self, txn_id: str) -> None:
        with self._lock:
            self._transactions.discard(txn_id)

    def _require(self, group_id: str) -> GovernedRoom:
        room = self._by_group.get(group_id)
        if room is None:
            raise UnknownRoom(group_id)
        return room


def _conditional_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _room_of(item: Mapping[str, Any]) -> GovernedRoom:
    return GovernedRoom(
        group_id=str(item["group_id"]),
        room_id=str(item["room_id"]),
        members=frozenset(str(m) for m in item.get("members") or ()),
        closed=bool(item.get("closed", False)),
        pending=frozenset(str(m) for m in item.get("pending") or ()),
        patient_ref=str(item["patient_ref"]) if item.get("patient_ref") else None,
    )


class DynamoRoomDirectory:
    """:class:`RoomDirectory` in the groups table (see the module docstring).

    Args:
        client: a low-level DynamoDB client.
        table_name: the groups table.
    """

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self.table_name = table_name

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        answer = self._client.get_item(
            TableName=self.table_name,
            Key=serialize({"pk": pk, "sk": sk}),
            ConsistentRead=True,
        )
        item = answer.get("Item")
        return deserialize(item) if item else None

    # Accounts -------------------------------------------------------------------------

    def account(self, reg_no: str) -> str | None:
        item = self._get(f"DOCTOR#{reg_no}", "MATRIX")
        return str(item["user_id"]) if item and item.get("user_id") else None

    def bind_account(self, reg_no: str, user_id: str) -> None:
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=serialize({"pk": f"DOCTOR#{reg_no}", "sk": "MATRIX"}),
                UpdateExpression="SET user_id = :u",
                ConditionExpression="attribute_not_exists(user_id) OR user_id = :u",
                ExpressionAttributeValues=serialize({":u": user_id}),
            )
        except ClientError as error:
            if _conditional_failure(error):
                raise ValueError("registration number already bound to another account") from None
            raise

    def record_sender(self, facts: SenderFacts, at: datetime) -> None:
        self._client.update_item(
            TableName=self.table_name,
            Key=serialize({"pk": f"DOCTOR#{facts.reg_no}", "sk": "MATRIX"}),
            UpdateExpression="SET sender_sub = :s, institution = :i, department = :d, "
            "sender_at = :t",
            ExpressionAttributeValues=serialize(
                {
                    ":s": facts.sub,
                    ":i": facts.institution,
                    ":d": facts.department,
                    ":t": at.isoformat(),
                }
            ),
        )

    def sender(self, reg_no: str) -> SenderFacts | None:
        item = self._get(f"DOCTOR#{reg_no}", "MATRIX")
        if not item or not item.get("sender_sub"):
            return None
        return SenderFacts(
            reg_no,
            str(item["sender_sub"]),
            str(item["institution"]),
            str(item["department"]),
        )

    # Rooms ----------------------------------------------------------------------------

    def room_for_group(self, group_id: str) -> GovernedRoom | None:
        item = self._get(f"MXROOM#{group_id}", "ROOM")
        return _room_of(item) if item else None

    def room(self, room_id: str) -> GovernedRoom | None:
        index = self._get(f"MXROOMID#{room_id}", "ROOM")
        return self.room_for_group(str(index["group_id"])) if index else None

    def bind_room(
        self,
        group_id: str,
        room_id: str,
        members: Iterable[str],
        *,
        patient_ref: str | None = None,
    ) -> GovernedRoom:
        decided = sorted(set(members))
        item: dict[str, Any] = {
            "pk": f"MXROOM#{group_id}",
            "sk": "ROOM",
            "group_id": group_id,
            "room_id": room_id,
            "closed": False,
            "patient_ref": patient_ref,
        }
        if decided:
            item["members"] = set(decided)
        index = {"pk": f"MXROOMID#{room_id}", "sk": "ROOM", "group_id": group_id}
        absent = "attribute_not_exists(pk)"
        try:
            # The reverse index commits with the room: an event is never pushed for a
            # room the hub bound but cannot find again.
            self._client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": serialize(item),
                            "ConditionExpression": absent,
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": serialize(index),
                            "ConditionExpression": absent,
                        }
                    },
                ]
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                raise ValueError("group already has a room") from None
            raise
        return GovernedRoom(group_id, room_id, frozenset(decided), patient_ref=patient_ref)

    def rebind_room(self, group_id: str, old_room_id: str, room_id: str) -> GovernedRoom:
        key = {"pk": f"MXROOM#{group_id}", "sk": "ROOM"}
        try:
            # The room and its reverse index change together, as they were bound.
            self._client.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self.table_name,
                            "Key": serialize(key),
                            "UpdateExpression": "SET room_id = :new",
                            "ConditionExpression": "room_id = :old",
                            "ExpressionAttributeValues": serialize(
                                {":new": room_id, ":old": old_room_id}
                            ),
                        }
                    },
                    {
                        "Delete": {
                            "TableName": self.table_name,
                            "Key": serialize({"pk": f"MXROOMID#{old_room_id}", "sk": "ROOM"}),
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": serialize(
                                {"pk": f"MXROOMID#{room_id}", "sk": "ROOM", "group_id": group_id}
                            ),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                raise ValueError("group bound to another room") from None
            raise
        room = self.room_for_group(group_id)
        if room is None:
            raise UnknownRoom(group_id)
        return room

    def _update_room(
        self,
        group_id: str,
        expression: str,
        values: Mapping[str, Any],
        *,
        only_open: bool = True,
    ) -> GovernedRoom:
        condition = "attribute_exists(pk)"
        if only_open:
            condition += " AND closed = :false"
            values = {**values, ":false": False}
        try:
            answer = self._client.update_item(
                TableName=self.table_name,
                Key=serialize({"pk": f"MXROOM#{group_id}", "sk": "ROOM"}),
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeValues=serialize(values),
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if not _conditional_failure(error):
                raise
            room = self.room_for_group(group_id)
            if room is None:
                raise UnknownRoom(group_id) from None
            return room  # closed: the decision stays "nobody"
        return _room_of(deserialize(answer["Attributes"]))

    def set_members(
        self, group_id: str, members: Iterable[str], pending: Iterable[str] = ()
    ) -> GovernedRoom:
        decided = set(members)
        waiting = set(pending) & decided
        sets: list[str] = []
        removes: list[str] = []
        values: dict[str, Any] = {}
        for name, value in (("members", decided), ("pending", waiting)):
            if value:
                sets.append(f"{name} = :{name}")
                values[f":{name}"] = value
            else:
                removes.append(name)  # DynamoDB has no empty sets
        expression = " ".join(
            part
            for part in (
                "SET " + ", ".join(sets) if sets else "",
                "REMOVE " + ", ".join(removes) if removes else "",
            )
            if part
        )
        return self._update_room(group_id, expression, values)

    def admit_member(self, group_id: str, user_id: str, *, pending: bool) -> GovernedRoom:
        if pending:
            return self._update_room(group_id, "ADD members :u, pending :u", {":u": {user_id}})
        return self._update_room(group_id, "ADD members :u DELETE pending :u", {":u": {user_id}})

    def discard_member(self, group_id: str, user_id: str) -> GovernedRoom:
        return self._update_room(
            group_id, "DELETE members :u, pending :u", {":u": {user_id}}, only_open=False
        )

    def close(self, group_id: str) -> GovernedRoom:
        return self._update_room(
            group_id, "SET closed = :true REMOVE members, pending", {":true": True}
        )

    # Transactions ---------------------------------------------------------------------

    def claim_transaction(self, txn_id: str) -> bool:
        try:
            self._client.put_item(
                TableName=self.table_name,
                Item=serialize({"pk": f"MXTXN#{txn_id}", "sk": "TXN"}),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as error:
            if _conditional_failure(error):
                return False
            raise
        return True

    def release_transaction(self, txn_id: str) -> None:
        self._client.delete_item(
            TableName=self.table_name, Key=serialize({"pk": f"MXTXN#{txn_id}", "sk": "TXN"})
        )
