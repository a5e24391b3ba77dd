"""HTTP routes for consultation groups. Thin: parse, call the service, shape the answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status

from app.access.auth import CurrentPrincipal
from app.audit.schemas import Receipt
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
from app.pagination import DEFAULT_LIMIT, MAX_LIMIT
from app.wiring import provided

router = APIRouter(prefix="/groups", tags=["groups"])
# "My invitations" is not under /groups/{group_id}: a second router, same domain.
invitations_router = APIRouter(tags=["groups"])
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=512)]

# Group ids are the service's own (uuid4 hex): anything else, non-ASCII included, is a 422
# before it reaches storage, the policy engine or the ledger.
GroupId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
Groups = Annotated[GroupService, Depends(provided(GroupService))]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=GroupOut)
def create_group(body: CreateGroupBody, who: CurrentPrincipal, groups: Groups) -> GroupOut:
    state, receipt = groups.create(who, body.patient_id, body.title, body.purpose)
    return GroupOut.of(state.group, state.memberships, receipt)


@router.get("", response_model=GroupPageOut)
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


@invitations_router.get("/invitations", response_model=InvitationPageOut)
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


@router.get("/{group_id}", response_model=GroupOut)
def get_group(group_id: GroupId, who: CurrentPrincipal, groups: Groups) -> GroupOut:
    state, receipt = groups.get(who, group_id)
    return GroupOut.of(state.group, state.memberships, receipt)


@router.post(
    "/{group_id}/invitations", status_code=status.HTTP_201_CREATED, response_model=MembershipResult
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


@router.post("/{group_id}/summon", status_code=status.HTTP_201_CREATED, response_model=SummonResult)
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


@router.post("/{group_id}/accept", response_model=MembershipResult)
def accept_invitation(group_id: GroupId, who: CurrentPrincipal, groups: Groups) -> MembershipResult:
    membership, receipt = groups.accept(who, group_id)
    return MembershipResult(
        group_id=group_id,
        membership=MembershipOut.of(membership),
        audit_receipt=Receipt.of(receipt),
    )


@router.post("/{group_id}/leave", response_model=MembershipResult)
def leave_group(group_id: GroupId, who: CurrentPrincipal, groups: Groups) -> MembershipResult:
    membership, receipt = groups.leave(who, group_id)
    return MembershipResult(
        group_id=group_id,
        membership=MembershipOut.of(membership),
        audit_receipt=Receipt.of(receipt),
    )


@router.delete("/{group_id}/members/{reg_no}", response_model=MembershipResult)
def remove_member(
    group_id: GroupId, reg_no: RegNo, who: CurrentPrincipal, groups: Groups
) -> MembershipResult:
    membership, receipt = groups.remove(who, group_id, reg_no.upper())
    return MembershipResult(
        group_id=group_id,
        membership=MembershipOut.of(membership),
        audit_receipt=Receipt.of(receipt),
    )


@router.post("/{group_id}/close", response_model=CloseResult)
def close_group(group_id: GroupId, who: CurrentPrincipal, groups: Groups) -> CloseResult:
    group, receipt = groups.close(who, group_id)
    return CloseResult(
        group_id=group.group_id,
        status=group.status.value,
        closed_at=group.closed_at,
        audit_receipt=Receipt.of(receipt),
    )
