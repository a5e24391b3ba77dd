"""The hub's ledger of what happens in the rooms it governs: sends, membership, uploads.

The homeserver pushes every event of the rooms the hub's users are in to the application
service (:meth:`app.messaging.service.RoomAuthority.handle_transaction`), and the
homeserver's policy module reports every media upload (:mod:`app.messaging.synapse_policy`).
:class:`RoomLedger` turns each into one ledger entry, never with content (the messages
are end-to-end encrypted; the hub could not read them if it wanted to):

============================  ==========================  =================================
event                          action (ledger action)      facts
============================  ==========================  =================================
a doctor's message             ``SendMessage`` (create)    ``op=message.send``, ``group``,
(``m.room.encrypted``)                                     ``department``, ``phase``
the hub's own message (record  ``SendMessage`` (create)    ``group``, ``phase`` (no ``op``:
card)                                                      not a clinician's turn)
``m.room.member``              ``InviteToRoom``,           ``op=room.membership``,
                               ``JoinRoom``, ``LeaveRoom``,  ``membership``, ``member``,
                               ``RemoveFromRoom``,         ``group``, ``phase``
                               ``BanFromRoom``,
                               ``KnockOnRoom``
a media upload                 ``UploadMedia`` (create)    ``op=media.upload``, ``phase``
============================  ==========================  =================================

A message's entry follows the contract in :mod:`app.audit.facts` exactly
(``Message::<hub message id>``, the group's keyed patient reference, the sender as actor
with their institution, the sender's department), so the response-rate metric reads it.
The hub message id is the Matrix event id without its ``$`` sigil (``m.<rest>``; an id
that does not fit the ledger's identifier shape is hashed, ``h.<sha-256>``): the entry
names the event, sender, room (through the group) and time, and nothing else. The time is
the homeserver's ``origin_server_ts`` when it lies in the hub's own window (no later than
:data:`CLOCK_SKEW` ahead of the hub's clock, no earlier than :data:`PUSH_DELAY` behind it);
otherwise it is the hub's clock when the event reached it, so a homeserver (or anyone able
to push as it) cannot backdate or foredate an entry in the ledger.

Idempotent per event: each entry commits in one transaction with a marker item
(``MXEVENT#<event id>`` or ``MXUPLOAD#<upload id>`` in the groups table) written only if
absent, so a transaction the homeserver retries, or an event pushed twice, is recorded
once. Events of rooms the hub does not govern are not recorded (the drift repair takes
the hub's doctors out of them).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from app.audit.events import (
    AuditedTransactionConflict,
    AuditEvent,
    AuditReceipt,
    Outcome,
    TransactionalAuditTrail,
)
from app.audit.facts import FactKey, Operation, RoomMembership
from app.dynamo import serialize
from app.messaging.identifiers import MatrixNames
from app.messaging.repository import GovernedRoom, RoomDirectory, SenderFacts

HUB_ACTOR = "service:messaging"
MESSAGE_TYPES = frozenset({"m.room.encrypted", "m.room.message"})
# How far a homeserver's timestamp may lead the hub's clock (clock skew between hosts)...
CLOCK_SKEW = timedelta(seconds=30)
# ...and how far behind it an event may arrive (a transaction Synapse retried after the
# application service was unreachable); outside these the hub's own time is recorded.
PUSH_DELAY = timedelta(minutes=15)
MEMBERSHIP_ACTIONS = {
    RoomMembership.INVITE: "InviteToRoom",
    RoomMembership.JOIN: "JoinRoom",
    RoomMembership.BAN: "BanFromRoom",
    RoomMembership.KNOCK: "KnockOnRoom",
}
_LEDGER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
_UPLOAD_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


def hub_message_id(event_id: str) -> str:
    """The ledger's id for a Matrix event (see the module docstring)."""
    candidate = "m." + event_id.removeprefix("$")
    if event_id.startswith("$") and _LEDGER_ID.fullmatch(candidate):
        return candidate
    return "h." + hashlib.sha256(event_id.encode()).hexdigest()


class RoomLedger:
    """Ledger entries for room events and uploads (see the module docstring).

    Args:
        trail: the ledger (entries commit with their idempotency marker).
        directory: governed rooms (group, patient reference) and sender facts.
        marker_table: the table the idempotency markers go to (the groups table).
        phase: the deployment's phase, stated in every entry's facts.
    """

    def __init__(
        self,
        trail: TransactionalAuditTrail,
        directory: RoomDirectory,
        names: MatrixNames,
        *,
        marker_table: str,
        phase: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._trail = trail
        self._directory = directory
        self._names = names
        self._table = marker_table
        self._phase = str(phase)
        self._clock = clock

    def __call__(self, event: Mapping[str, Any]) -> AuditReceipt | None:
        """Record one pushed event; returns the receipt, or None if not recorded."""
        event_id = event.get("event_id")
        room_id = event.get("room_id")
        sender = event.get("sender")
        if not all(isinstance(v, str) and v for v in (event_id, room_id, sender)):
            return None
        assert isinstance(event_id, str) and isinstance(room_id, str)
        assert isinstance(sender, str)
        kind = event.get("type")
        if kind not in MESSAGE_TYPES and kind != "m.room.member":
            return None
        room = self._directory.room(room_id)
        if room is None:
            return None
        at = self._time(event.get("origin_server_ts"))
        if kind == "m.room.member":
            audit = self._membership(event, room, sender, at)
        else:
            audit = self._message(event_id, room, sender, at)
        if audit is None:
            return None
        return self._append(audit, f"MXEVENT#{event_id}")

    def record_upload(self, user_id: str, upload_id: str) -> AuditReceipt | None:
        """Record a media upload the homeserver reports (before it stores it)."""
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise ValueError("not an upload id")
        reg_no = self._names.reg_no_of(user_id)
        if reg_no is None and user_id not in (self._names.hub_user_id, self._names.cards_user_id):
            raise ValueError("not one of the hub's accounts")
        if reg_no is None:
            actor: dict[str, Any] = {"actor": HUB_ACTOR, "actor_roles": ("service",)}
        else:
            actor = self._actor(reg_no)
            actor.pop("department")
        event = AuditEvent(
            **actor,
            action="UploadMedia",
            outcome=Outcome.ALLOW,
            reason="homeserver-upload",
            resource=f"Media::{upload_id}",
            facts={FactKey.OP: Operation.MEDIA_UPLOAD, FactKey.PHASE: self._phase},
            at=self._clock(),
        )
        return self._append(event, f"MXUPLOAD#{upload_id}")

    # -- entries -------------------------------------------------------------------------

    def _message(
        self, event_id: str, room: GovernedRoom, sender: str, at: datetime
    ) -> AuditEvent | None:
        facts: dict[str, str] = {FactKey.GROUP: room.group_id, FactKey.PHASE: self._phase}
        if sender in (self._names.hub_user_id, self._names.cards_user_id):
            actor: dict[str, Any] = {"actor": HUB_ACTOR, "actor_roles": ("service",)}
        else:
            reg_no = self._names.reg_no_of(sender)
            if reg_no is None:
                return None  # nobody else can be in a governed room (drift removes them)
            actor = self._actor(reg_no)
            facts = {
                FactKey.OP: Operation.MESSAGE_SEND,
                FactKey.GROUP: room.group_id,
                FactKey.DEPARTMENT: actor.pop("department"),
                FactKey.PHASE: self._phase,
            }
        return AuditEvent(
            **actor,
            action="SendMessage",
            outcome=Outcome.ALLOW,
            reason="room-member",
            resource=f"Message::{hub_message_id(event_id)}",
            patient_ref=room.patient_ref,
            facts=facts,
            at=at,
        )

    def _membership(
        self, event: Mapping[str, Any], room: GovernedRoom, sender: str, at: datetime
    ) -> AuditEvent | None:
        target = event.get("state_key")
        content = event.get("content")
        membership = content.get("membership") if isinstance(content, Mapping) else None
        try:
            state = RoomMembership(str(membership))
        except ValueError:
            return None
        if not isinstance(target, str):
            return None
        facts: dict[str, str] = {
            FactKey.OP: Operation.ROOM_MEMBERSHIP,
            FactKey.MEMBERSHIP: state.value,
            FactKey.GROUP: room.group_id,
            FactKey.PHASE: self._phase,
        }
        member = self._names.reg_no_of(target)
        if member is not None:
            facts[FactKey.MEMBER] = member
        elif target not in (self._names.hub_user_id, self._names.cards_user_id):
            return None
        if state is RoomMembership.LEAVE:
            action = "LeaveRoom" if sender == target else "RemoveFromRoom"
        else:
            action = MEMBERSHIP_ACTIONS[state]
        if sender in (self._names.hub_user_id, self._names.cards_user_id):
            actor: dict[str, Any] = {"actor": HUB_ACTOR, "actor_roles": ("service",)}
        else:
            actor = self._actor(self._names.reg_no_of(sender))
            actor.pop("department")
        return AuditEvent(
            **actor,
            action=action,
            outcome=Outcome.ALLOW,
            reason="room-membership",
            resource=f"Message::{hub_message_id(str(event['event_id']))}",
            patient_ref=room.patient_ref,
            facts=facts,
            at=at,
        )

    def _actor(self, reg_no: str | None) -> dict[str, Any]:
        """The sender as the ledger names an actor, with their department (a fact)."""
        if reg_no is None:
            return {"actor": "anonymous", "department": "general"}
        facts: SenderFacts | None = self._directory.sender(reg_no)
        if facts is None:
            # Every doctor device comes from a hub session, which records the facts; an
            # account used another way is still named by its registration number.
            return {"actor": "anonymous", "actor_reg_no": reg_no, "department": "general"}
        return {
            "actor": facts.sub,
            "actor_reg_no": reg_no,
            "institution": facts.institution,
            "actor_roles": ("doctor",),
            "department": facts.department,
        }

    def _time(self, origin_server_ts: object) -> datetime:
        now = self._clock()
        if isinstance(origin_server_ts, int) and not isinstance(origin_server_ts, bool):
            try:
                stated = datetime.fromtimestamp(origin_server_ts / 1000, UTC)
            except (OverflowError, OSError, ValueError):
                return now
            if now - PUSH_DELAY <= stated <= now + CLOCK_SKEW:
                return stated
        return now

    def _append(self, event: AuditEvent, marker: str) -> AuditReceipt | None:
        put = {
            "Put": {
                "TableName": self._table,
                "Item": serialize({"pk": marker, "sk": "AUDIT", "event": event.event_id}),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        try:
            return self._trail.transact_append(event, [put])
        except AuditedTransactionConflict:
            return None  # recorded before: a retried transaction or a repeated event
