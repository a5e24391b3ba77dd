"""The consultation group and membership model, and the membership state machine.

Pure code: no storage, no clock. Every change is a function from the current state to
the next one, returning a new value and a :class:`MembershipChange` for the history;
an illegal change raises :class:`InvalidTransition`. The service persists the result.

Membership states and the events that move them::

    (none) --invite--> INVITED --accept--> ACTIVE
    (none) --add-----> ACTIVE               (direct add; the group's lead at creation)
    INVITED --leave--> LEFT                 (declining)
    ACTIVE  --leave--> LEFT
    INVITED|ACTIVE --remove--> REMOVED
    LEFT|REMOVED --invite--> INVITED        (a fresh invitation; history keeps the past)

Nothing is ever deleted: a membership that ends keeps its invited/joined times and
gains a left or removed time. A closed group accepts no membership change at all, and
only ACTIVE members of an OPEN group have access (the Cedar policies say the same).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum


class GroupStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class MemberRole(StrEnum):
    LEAD = "lead"
    MEMBER = "member"
    INVITED_EXPERT = "invited_expert"


class MembershipState(StrEnum):
    INVITED = "invited"
    ACTIVE = "active"
    LEFT = "left"
    REMOVED = "removed"


class MembershipEvent(StrEnum):
    INVITE = "invite"
    ADD = "add"
    ACCEPT = "accept"
    LEAVE = "leave"
    REMOVE = "remove"


CURRENT = frozenset({MembershipState.INVITED, MembershipState.ACTIVE})


class InvalidTransition(Exception):
    """The change is not allowed from the current state (a 409 to clients)."""

    def __init__(self, code: str):
        self.code = code
        super().__init__(code)


@dataclass(frozen=True)
class ConsultationGroup:
    group_id: str
    patient_id: str
    patient_ref: str
    institution: str
    title: str
    purpose: str
    status: GroupStatus
    created_by: str
    created_at: datetime
    closed_at: datetime | None = None
    closed_by: str | None = None


@dataclass(frozen=True)
class Membership:
    group_id: str
    reg_no: str
    role: MemberRole
    state: MembershipState
    institution: str
    invited_by: str
    invited_at: datetime
    joined_at: datetime | None = None
    left_at: datetime | None = None
    removed_at: datetime | None = None
    removed_by: str | None = None
    version: int = 1

    @property
    def has_access(self) -> bool:
        return self.state is MembershipState.ACTIVE


@dataclass(frozen=True)
class MembershipChange:
    group_id: str
    reg_no: str
    event: MembershipEvent
    actor: str
    at: datetime
    from_state: MembershipState | None
    to_state: MembershipState
    role: MemberRole


def _change(
    before: Membership | None, after: Membership, event: MembershipEvent, actor: str, at: datetime
) -> tuple[Membership, MembershipChange]:
    return after, MembershipChange(
        after.group_id,
        after.reg_no,
        event,
        actor,
        at,
        before.state if before else None,
        after.state,
        after.role,
    )


def _require_open(group: ConsultationGroup) -> None:
    if group.status is not GroupStatus.OPEN:
        raise InvalidTransition("group_closed")


def invite(
    group: ConsultationGroup,
    current: Membership | None,
    *,
    reg_no: str,
    role: MemberRole,
    institution: str,
    actor: str,
    at: datetime,
    direct: bool = False,
) -> tuple[Membership, MembershipChange]:
    """Invite (or, with ``direct``, add) a doctor; a fresh start after leaving or removal."""
    _require_open(group)
    if current is not None and current.state in CURRENT:
        raise InvalidTransition("already_member_or_invited")
    state = MembershipState.ACTIVE if direct else MembershipState.INVITED
    after = Membership(
        group_id=group.group_id,
        reg_no=reg_no,
        role=role,
        state=state,
        institution=institution,
        invited_by=actor,
        invited_at=at,
        joined_at=at if direct else None,
        version=(current.version + 1) if current else 1,
    )
    event = MembershipEvent.ADD if direct else MembershipEvent.INVITE
    return _change(current, after, event, actor, at)


def accept(
    group: ConsultationGroup, current: Membership | None, *, at: datetime
) -> tuple[Membership, MembershipChange]:
    _require_open(group)
    if current is None or current.state is not MembershipState.INVITED:
        raise InvalidTransition("no_pending_invitation")
    after = replace(
        current, state=MembershipState.ACTIVE, joined_at=at, version=current.version + 1
    )
    return _change(current, after, MembershipEvent.ACCEPT, current.reg_no, at)


def leave(
    group: ConsultationGroup, current: Membership | None, *, at: datetime
) -> tuple[Membership, MembershipChange]:
    _require_open(group)
    if current is None or current.state not in CURRENT:
        raise InvalidTransition("not_a_member")
    after = replace(current, state=MembershipState.LEFT, left_at=at, version=current.version + 1)
    return _change(current, after, MembershipEvent.LEAVE, current.reg_no, at)


def remove(
    group: ConsultationGroup, current: Membership | None, *, actor: str, at: datetime
) -> tuple[Membership, MembershipChange]:
    _require_open(group)
    if current is None or current.state not in CURRENT:
        raise InvalidTransition("not_a_member")
    after = replace(
        current,
        state=MembershipState.REMOVED,
        removed_at=at,
        removed_by=actor,
        version=current.version + 1,
    )
    return _change(current, after, MembershipEvent.REMOVE, actor, at)


def close(group: ConsultationGroup, *, actor: str, at: datetime) -> ConsultationGroup:
    _require_open(group)
    return replace(group, status=GroupStatus.CLOSED, closed_at=at, closed_by=actor)
