"""The room directory's contract, held by both implementations (memory; DynamoDB on moto)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import boto3
import pytest

from app import local
from app.messaging.repository import (
    DynamoRoomDirectory,
    InMemoryRoomDirectory,
    RoomDirectory,
    SenderFacts,
    UnknownRoom,
)

A, B, C = "@doc-zz1001:hub.local", "@doc-zz1002:hub.local", "@doc-zz1003:hub.local"


@pytest.fixture(params=["memory", "dynamodb"])
def directory(request: pytest.FixtureRequest) -> Iterator[RoomDirectory]:
    if request.param == "memory":
        yield InMemoryRoomDirectory()
        return
    endpoint = request.getfixturevalue("moto_endpoint")
    client = boto3.session.Session(region_name="ap-east-1").client(
        "dynamodb", endpoint_url=endpoint
    )
    table = f"rooms-{uuid.uuid4().hex[:8]}"
    local.create_service_tables(client, {"groups": table})
    yield DynamoRoomDirectory(client, table)


def test_accounts_bind_once(directory: RoomDirectory) -> None:
    assert directory.account("ZZ1001") is None
    directory.bind_account("ZZ1001", A)
    directory.bind_account("ZZ1001", A)  # idempotent
    assert directory.account("ZZ1001") == A
    with pytest.raises(ValueError):
        directory.bind_account("ZZ1001", B)
    facts = SenderFacts("ZZ1001", str(uuid.uuid4()), "harbour-cardiac-alliance", "cardiology")
    directory.record_sender(facts, datetime.now(UTC))
    assert directory.sender("ZZ1001") == facts and directory.account("ZZ1001") == A


def test_a_room_binds_once_and_is_found_both_ways(directory: RoomDirectory) -> None:
    room = directory.bind_room("g1", "!r1:hub.local", [A], patient_ref="pt1-" + "0" * 64)
    assert room.members == {A} and room.patient_ref == "pt1-" + "0" * 64
    assert directory.room("!r1:hub.local") == directory.room_for_group("g1") == room
    with pytest.raises(ValueError):
        directory.bind_room("g1", "!r2:hub.local", [])
    assert directory.room("!unknown:hub.local") is None


def test_members_pending_and_closing(directory: RoomDirectory) -> None:
    directory.bind_room("g2", "!r2:hub.local", [])
    room = directory.admit_member("g2", A, pending=True)
    assert room.members == {A} and room.pending == {A} and not room.may_join(A)
    room = directory.admit_member("g2", A, pending=False)
    assert room.may_join(A) and room.pending == frozenset()
    room = directory.set_members("g2", [A, B], pending=[B, C])
    assert room.members == {A, B} and room.pending == {B}  # pending only among members
    room = directory.discard_member("g2", B)
    assert room.members == {A} and room.pending == frozenset()
    room = directory.set_members("g2", [])
    assert room.members == frozenset()
    closed = directory.close("g2")
    assert closed.closed and closed.members == frozenset()
    # A closed room's decision stays "nobody".
    assert directory.admit_member("g2", A, pending=False).members == frozenset()
    assert directory.set_members("g2", [A]).members == frozenset()
    with pytest.raises(UnknownRoom):
        directory.admit_member("nope", A, pending=False)


def test_concurrent_admissions_are_all_kept(directory: RoomDirectory) -> None:
    directory.bind_room("g3", "!r3:hub.local", [])
    users = [f"@doc-zz{2000 + n}:hub.local" for n in range(8)]
    threads = [
        threading.Thread(target=directory.admit_member, args=("g3", u), kwargs={"pending": False})
        for u in users
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    room = directory.room_for_group("g3")
    assert room is not None and room.members == set(users)


def test_a_transaction_is_claimed_once_and_released_on_failure(directory: RoomDirectory) -> None:
    assert directory.claim_transaction("t1") is True
    assert directory.claim_transaction("t1") is False
    directory.release_transaction("t1")
    assert directory.claim_transaction("t1") is True


def test_a_room_lost_in_a_restore_is_rebound_with_its_decision(
    directory: RoomDirectory,
) -> None:
    directory.bind_room("g2", "!lost:hub.local", ["@a:hub.local"], patient_ref="pt1-x")
    rebound = directory.rebind_room("g2", "!lost:hub.local", "!new:hub.local")
    assert (rebound.room_id, rebound.members, rebound.patient_ref) == (
        "!new:hub.local",
        frozenset({"@a:hub.local"}),
        "pt1-x",
    )
    assert directory.room("!new:hub.local") == rebound
    assert directory.room("!lost:hub.local") is None
    # Only from the room it is bound to: a stale rebinding changes nothing.
    with pytest.raises(ValueError):
        directory.rebind_room("g2", "!lost:hub.local", "!other:hub.local")
    assert directory.room_for_group("g2") == rebound
