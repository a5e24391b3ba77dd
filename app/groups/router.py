"""HTTP routes for consultation groups. Thin: parse, call the service, shape the answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status

from app.access.auth import ACCESS_DENIED, CurrentPrincipal
from app.access.gate import consent_required
from app.audit.schemas import Receipt
from app.errors import Conflict, InvalidRequest, NotFound
from app.groups.schemas import (
    CloseResult,
    CreateGroupBody,
    GroupOut,
    GroupPageOut,
    GroupSummaryOut,
    InvitationPageOut,
    InviteBody,
    MembershipOut,
    MembershipResult,
    RegNo,
    SummonBody,
    SummonedOut,
    SummonResult,
)
from app.groups.service import GroupService
from app.openapi import errors
from app.pagination import DEFAULT_LIMIT, MAX_LIMIT, InvalidCursor
from app.patients.index import UnknownPatient
from app.wiring import provided

router = APIRouter(prefix="/groups", tags=["groups"])
# "My invitations" is not under /groups/{group_id}: a second router, same domain.
invitations_router = APIRouter(tags=["groups"])
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=512)]

# What the group service refuses (app/groups/service.py, the membership state machine).
NO_GROUP = NotFound("No such group.")
CHANGED = Conflict("The group changed meanwhile; retry.", code="concurrent_change")
CLOSED = Conflict(code="group_closed")
NO_CONSENT = consent_required("sharing-needs-patient-consent")
GROUP_READ = errors(NO_GROUP, ACCESS_DENIED)
INVITE = errors(
    NO_GROUP,
    ACCESS_DENIED,
    CHANGED,
    CLOSED,
    Conflict(code="already_member_or_invited"),
    InvalidRequest("That doctor cannot be invited here.", code="invitee_not_eligible"),
    InvalidRequest("A group has one lead, its creator.", code="role_not_invitable"),
    InvalidRequest("Doctors of other institutions are invited, not added.", code="invite_required"),
)
SUMMON = errors(
    NO_GROUP,
    ACCESS_DENIED,
    CHANGED,
    CLOSED,
    Conflict(code="already_member_or_invited"),
    Conflict("No eligible specialist is available.", code="no_specialist_available"),
)
ACCEPT = errors(NO_GROUP, ACCESS_DENIED, CHANGED, CLOSED, Conflict(code="no_pending_invitation"))
MEMBER_CHANGE = errors(NO_GROUP, ACCESS_DENIED, CHANGED, CLOSED, Conflict(code="not_a_member"))
CLOSE = errors(NO_GROUP, ACCESS_DENIED, CHANGED, CLOSED)
# My groups, my invitations: the Cedar decision (ListOwnGroups), a cursor it did not issue.
LISTING = errors(ACCESS_DENIED, InvalidCursor)


# Group ids are the service's own (uuid4 hex): anything else, non-ASCII included, is a 422
# before it reaches storage, the policy engine or the ledger.
GroupId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
Groups = Annotated[GroupService, Depends(provided(GroupService))]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=GroupOut,
    responses=errors(ACCESS_DENIED, NO_CONSENT, CHANGED, UnknownPatient),
)
def create_group(body: CreateGroupBody, who: CurrentPrincipal, groups: Groups) -> GroupOut:
    state, receipt = groups.create(who, body.patient_id, body.title, body.purpose)
    return GroupOut.of(state.group, state.memberships, receipt)


@router.get("", response_model=GroupPageOut, responses=LISTING)
def my_groups(
    who: CurrentPrincipal, groups: Groups, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> GroupPageOut:
    """The groups you are an active member of (and may view now), a page at a time."""
    page = groups.mine(who, limit=limit, cursor=cursor)
    return GroupPageOut(
        groups=[GroupSummaryOut.of(state.group, mine) for state, mine in page.groups],
        cursor=page.cursor,
        audit_receipt=Receipt.of(page.receipt),
    )


@invitations_router.get("/invitations", response_model=InvitationPageOut, responses=LISTING)
def my_invitations(
    who: CurrentPrincipal, groups: Groups, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> InvitationPageOut:
    """Your pending invitations to open groups, a page at a time."""
    page = groups.invitations(who, limit=limit, cursor=cursor)
    return InvitationPageOut(
        invitations=[GroupSummaryOut.of(state.group, mine) for state, mine in page.groups],
        cursor=page.cursor,
        audit_receipt=Receipt.of(page.receipt),
    )


@router.get("/{group_id}", response_model=GroupOut, responses=GROUP_READ)
def get_group(group_id: GroupId, who: CurrentPrincipal, groups: Groups) -> GroupOut:
    state, receipt = groups.get(who, group_id)
    return GroupOut.of(state.group, state.memberships, receipt)


@router.post(
    "/{group_id}/invitations",
    status_code=status.HTTP_201_CREATED,
    response_model=MembershipResult,
    responses=INVITE,
)
def invite_member(
    group_id: GroupId, body: InviteBody, who: CurrentPrincipal, groups: Groups
) -> MembershipResult:
    membership, receipt = groups.invite(
        who, group_id, body.reg_no.upper(), body.role, direct=body.direct
    )
    return MembershipResult(
        group_id=group_id,
        membership=MembershipOut.of(membership),
        audit_receipt=Receipt.of(receipt),
    )


@router.post(
    "/{group_id}/summon",
    status_code=status.HTTP_201_CREATED,
    response_model=SummonResult,
    responses=SUMMON,
)
def summon_experts(
    group_id: GroupId, body: SummonBody, who: CurrentPrincipal, groups: Groups
) -> SummonResult:
    experts, receipt = groups.summon(who, group_id, body.specialties, body.count)
    return SummonResult(
        group_id=group_id,
        invited=[
            SummonedOut(reg_no=e.reg_no, specialty=e.specialty, institution=e.institution)
            for e in experts
        ],
        audit_receipt=Receipt.of(receipt),
    )


@router.post("/{group_id}/accept", response_model=MembershipResult, responses=ACCEPT)
def accept_invitation(group_id: GroupId, who: CurrentPrincipal, groups: Groups) -> MembershipResult:
    membership, receipt = groups.accept(who, group_id)
    return MembershipResult(
        group_id=group_id,
        membership=MembershipOut.of(membership),
        audit_receipt=Receipt.of(receipt),
    )


@router.post("/{group_id}/leave", response_model=MembershipResult, responses=MEMBER_CHANGE)
def leave_group(group_id: GroupId, who: CurrentPrincipal, groups: Groups) -> MembershipResult:
    membership, receipt = groups.leave(who, group_id)
    return MembershipResult(
        group_id=group_id,
        membership=MembershipOut.of(membership),
        audit_receipt=Receipt.of(receipt),
    )


@router.delete(
    "/{group_id}/members/{reg_no}", response_model=MembershipResult, responses=MEMBER_CHANGE
)
def remove_member(
    group_id: GroupId, reg_no: RegNo, who: CurrentPrincipal, groups: Groups
) -> MembershipResult:
    membership, receipt = groups.remove(who, group_id, reg_no.upper())
    return MembershipResult(
        group_id=group_id,
        membership=MembershipOut.of(membership),
        audit_receipt=Receipt.of(receipt),
    )


@router.post("/{group_id}/close", response_model=CloseResult, responses=CLOSE)
def close_group(group_id: GroupId, who: CurrentPrincipal, groups: Groups) -> CloseResult:
    group, receipt = groups.close(who, group_id)
    return CloseResult(
        group_id=group.group_id,
        status=group.status.value,
        closed_at=group.closed_at,
        audit_receipt=Receipt.of(receipt),
    )
