"""The drift rules as a table (app/messaging/drift.py's docstring), plus the ungoverned case."""

from __future__ import annotations

import pytest

from app.messaging.drift import DriftKind, MemberState, Repair, membership_drift
from app.messaging.identifiers import MatrixNames
from app.messaging.repository import GovernedRoom

NAMES = MatrixNames("hub.local")
HUB = NAMES.hub_user_id
ALICE = NAMES.doctor_user_id("ZZ0001")
BOB = NAMES.doctor_user_id("ZZ0002")
ROOM = GovernedRoom(group_id="g1", room_id="!r:hub.local", members=frozenset({ALICE}))

# (target, current membership, set by, expected kind or None, expected repair)
TABLE = [
    (BOB, "invite", HUB, DriftKind.UNDECIDED_MEMBER, Repair.KICK),
    (BOB, "join", BOB, DriftKind.UNDECIDED_MEMBER, Repair.KICK),
    (BOB, "knock", BOB, DriftKind.UNDECIDED_MEMBER, Repair.KICK),
    (BOB, "leave", HUB, None, None),
    (BOB, "ban", HUB, None, None),
    (ALICE, "invite", HUB, None, None),
    (ALICE, "join", ALICE, None, None),
    (ALICE, "leave", HUB, DriftKind.MEMBER_REMOVED, Repair.REINVITE),
    (ALICE, "leave", ALICE, DriftKind.MEMBER_LEFT, Repair.NONE),
    (ALICE, "ban", HUB, DriftKind.MEMBER_BANNED, Repair.UNBAN_AND_REINVITE),
    (HUB, "join", HUB, None, None),
    (HUB, "leave", HUB, DriftKind.HUB_REMOVED, Repair.NONE),
]


@pytest.mark.parametrize(("target", "membership", "sender", "kind", "repair"), TABLE)
def test_governed_room(
    target: str, membership: str, sender: str, kind: DriftKind | None, repair: Repair | None
) -> None:
    drift = membership_drift(MemberState(ROOM.room_id, target, membership, sender), ROOM, NAMES)
    if kind is None:
        assert drift is None
    else:
        assert drift is not None
        assert (drift.kind, drift.repair, drift.group_id) == (kind, repair, "g1")


@pytest.mark.parametrize(
    ("membership", "kind"),
    [("invite", None), ("knock", None), ("join", DriftKind.JOINED_BEFORE_ACCEPTING)],
)
def test_invited_in_the_hub_may_hold_an_invitation_but_not_join(
    membership: str, kind: DriftKind | None
) -> None:
    room = GovernedRoom("g1", ROOM.room_id, frozenset({ALICE, BOB}), pending=frozenset({BOB}))
    drift = membership_drift(MemberState(ROOM.room_id, BOB, membership, BOB), room, NAMES)
    if kind is None:
        assert drift is None
    else:
        assert drift is not None and (drift.kind, drift.repair) == (kind, Repair.KICK_AND_REINVITE)
    # An accepted member joins freely.
    assert membership_drift(MemberState(ROOM.room_id, ALICE, "join", ALICE), room, NAMES) is None


def test_a_closed_room_admits_nobody() -> None:
    closed = GovernedRoom("g1", ROOM.room_id, frozenset(), closed=True)
    drift = membership_drift(MemberState(ROOM.room_id, ALICE, "join", ALICE), closed, NAMES)
    assert drift is not None and drift.repair is Repair.KICK


@pytest.mark.parametrize("membership", ["invite", "join", "knock"])
def test_a_hub_doctor_in_an_ungoverned_room_is_taken_out(membership: str) -> None:
    drift = membership_drift(MemberState("!other:hub.local", BOB, membership, ALICE), None, NAMES)
    assert drift is not None
    assert (drift.kind, drift.repair, drift.group_id) == (
        DriftKind.UNGOVERNED_ROOM,
        Repair.LEAVE_AS_MEMBER,
        None,
    )


@pytest.mark.parametrize(
    ("user_id", "membership"), [(BOB, "leave"), (BOB, "ban"), ("@admin:hub.local", "join")]
)
def test_ungoverned_room_nothing_to_undo(user_id: str, membership: str) -> None:
    state = MemberState("!other:hub.local", user_id, membership, ALICE)
    assert membership_drift(state, None, NAMES) is None


def test_state_of_another_room_is_an_error() -> None:
    with pytest.raises(ValueError):
        membership_drift(MemberState("!elsewhere:hub.local", ALICE, "join", ALICE), ROOM, NAMES)
