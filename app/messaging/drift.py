"""Which room memberships the hub did not decide, and how each is reverted (pure).

The homeserver tells the hub about every membership event in rooms where the hub's
users are (application service transactions). The hub judges the *current* membership
of the event's target, not the event itself: events arrive late and out of order with
the hub's own changes, while the current state against the hub's current decision is
always the right question.

For a room the hub governs (bound to a consultation group; ``decided`` = the users the
hub admitted, ``pending`` = those of them invited in the hub but not yet accepted)::

    current membership   decided?   verdict                     repair
    invite/join/knock    no         UNDECIDED_MEMBER            kick
    join                 pending    JOINED_BEFORE_ACCEPTING     kick, re-invite
    leave (by another)   yes        MEMBER_REMOVED              re-invite
    leave (by self)      yes        MEMBER_LEFT                 none: their choice, reported
    ban                  yes        MEMBER_BANNED               unban, re-invite
    not join (hub user)  -          HUB_REMOVED                 none: reported
    present (card user)  closed     UNDECIDED_MEMBER            kick (else: the hub's own)
    anything else        -          no drift

For a room the hub does not govern, a hub doctor invited to or joined in it is taken
out again (``UNGOVERNED_ROOM``, repair: leave as that doctor, which the application
service may do for its own accounts). The hub binds each room it creates before it
invites anyone, so its own rooms are never judged ungoverned.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from app.messaging.identifiers import MatrixNames
from app.messaging.repository import GovernedRoom


class DriftKind(StrEnum):
    UNDECIDED_MEMBER = "undecided_member"
    MEMBER_REMOVED = "member_removed"
    MEMBER_LEFT = "member_left"
    MEMBER_BANNED = "member_banned"
    HUB_REMOVED = "hub_removed"
    UNGOVERNED_ROOM = "ungoverned_room"
    JOINED_BEFORE_ACCEPTING = "joined_before_accepting"


class Repair(StrEnum):
    KICK = "kick"
    KICK_AND_REINVITE = "kick_and_reinvite"
    REINVITE = "reinvite"
    UNBAN_AND_REINVITE = "unban_and_reinvite"
    LEAVE_AS_MEMBER = "leave_as_member"
    NONE = "none"


PRESENT = frozenset({"invite", "join", "knock"})


@dataclass(frozen=True)
class MemberState:
    """A user's current membership in a room and who set it."""

    room_id: str
    user_id: str
    membership: str
    sender: str


@dataclass(frozen=True)
class Drift:
    kind: DriftKind
    repair: Repair
    room_id: str
    user_id: str
    membership: str
    sender: str
    group_id: str | None


def membership_drift(
    state: MemberState,
    room: GovernedRoom | None,
    names: MatrixNames,
) -> Drift | None:
    """The drift ``state`` shows against the hub's decision, or None.

    Args:
        room: the governed room with this ``room_id``, or None if the hub governs none.
    """
    if room is None:
        return _ungoverned(state, names)
    if state.room_id != room.room_id:
        raise ValueError("state and room differ")

    def drift(kind: DriftKind, repair: Repair) -> Drift:
        return Drift(
            kind,
            repair,
            state.room_id,
            state.user_id,
            state.membership,
            state.sender,
            room.group_id,
        )

    decided = state.user_id in room.members
    if state.user_id == names.hub_user_id:
        return None if state.membership == "join" else drift(DriftKind.HUB_REMOVED, Repair.NONE)
    if state.user_id == names.cards_user_id:
        # The hub's own record-card device: in any open room, out of a closed one.
        if room.closed and state.membership in PRESENT:
            return drift(DriftKind.UNDECIDED_MEMBER, Repair.KICK)
        return None
    if state.membership in PRESENT:
        if not decided:
            return drift(DriftKind.UNDECIDED_MEMBER, Repair.KICK)
        if state.membership == "join" and state.user_id in room.pending:
            # Invited in the hub but not accepted: the hub does not let them read the
            # group yet, so the room may not either. Back to an invitation.
            return drift(DriftKind.JOINED_BEFORE_ACCEPTING, Repair.KICK_AND_REINVITE)
        return None
    if not decided:
        return None
    if state.membership == "leave":
        if state.sender == state.user_id:
            return drift(DriftKind.MEMBER_LEFT, Repair.NONE)
        return drift(DriftKind.MEMBER_REMOVED, Repair.REINVITE)
    if state.membership == "ban":
        return drift(DriftKind.MEMBER_BANNED, Repair.UNBAN_AND_REINVITE)
    return None


def _ungoverned(state: MemberState, names: MatrixNames) -> Drift | None:
    if state.membership not in PRESENT or names.reg_no_of(state.user_id) is None:
        return None
    return Drift(
        DriftKind.UNGOVERNED_ROOM,
        Repair.LEAVE_AS_MEMBER,
        state.room_id,
        state.user_id,
        state.membership,
        state.sender,
        None,
    )
