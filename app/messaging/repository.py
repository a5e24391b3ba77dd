"""What the hub remembers about its homeserver: account bindings, governed rooms, and the
transactions it has already handled.

:class:`RoomDirectory` is the storage contract of :class:`app.messaging.service.RoomAuthority`.
A governed room's ``members`` is the set of Matrix users *the hub decided* may be in it
(invited or joined); the room authority updates it before it changes the room, so an
incoming membership event can always be judged against the hub's decision.

:class:`InMemoryRoomDirectory` keeps it in process memory, behind a lock (transactions
from the homeserver and the hub's own requests run concurrently). It is what the local
homeserver, the tests and the benchmark use until the wiring step puts the directory
next to the consultation groups in DynamoDB (same contract; ``docs/messaging.md``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Protocol


@dataclass(frozen=True)
class GovernedRoom:
    group_id: str
    room_id: str
    members: frozenset[str]
    closed: bool = False


class UnknownRoom(KeyError):
    """No room is bound to this consultation group."""


class RoomDirectory(Protocol):
    def account(self, reg_no: str) -> str | None: ...

    def bind_account(self, reg_no: str, user_id: str) -> None: ...

    def room_for_group(self, group_id: str) -> GovernedRoom | None: ...

    def room(self, room_id: str) -> GovernedRoom | None: ...

    def bind_room(self, group_id: str, room_id: str, members: Iterable[str]) -> GovernedRoom: ...

    def set_members(self, group_id: str, members: Iterable[str]) -> GovernedRoom: ...

    def close(self, group_id: str) -> GovernedRoom: ...

    def claim_transaction(self, txn_id: str) -> bool:
        """True the first time a transaction id is claimed, False after."""
        ...

    def release_transaction(self, txn_id: str) -> None:
        """Forget a claim whose handling failed, so the homeserver's retry is handled."""
        ...


class InMemoryRoomDirectory:
    """:class:`RoomDirectory` in process memory (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accounts: dict[str, str] = {}
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

    def room_for_group(self, group_id: str) -> GovernedRoom | None:
        with self._lock:
            return self._by_group.get(group_id)

    def room(self, room_id: str) -> GovernedRoom | None:
        with self._lock:
            group_id = self._group_of_room.get(room_id)
            return self._by_group.get(group_id) if group_id else None

    def bind_room(self, group_id: str, room_id: str, members: Iterable[str]) -> GovernedRoom:
        with self._lock:
            if group_id in self._by_group:
                raise ValueError("group already has a room")
            room = GovernedRoom(group_id, room_id, frozenset(members))
            self._by_group[group_id] = room
            self._group_of_room[room_id] = group_id
            return room

    def set_members(self, group_id: str, members: Iterable[str]) -> GovernedRoom:
        with self._lock:
            room = self._require(group_id)
            updated = replace(room, members=frozenset() if room.closed else frozenset(members))
            self._by_group[group_id] = updated
            return updated

    def close(self, group_id: str) -> GovernedRoom:
        with self._lock:
            closed = replace(self._require(group_id), members=frozenset(), closed=True)
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
