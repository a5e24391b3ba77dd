"""HTTP routes for consultation groups. Thin: parse, call the service, shape the answer."""

from __future__ import annotations

from fastapi import APIRouter, status

from app.dependencies import CurrentPrincipal, ServicesDep
from app.groups.schemas import (
    CloseResult,
    CreateGroupBody,
    GroupOut,
    InviteBody,
    MembershipOut,
    MembershipResult,
    Receipt,
    RegNo,
    SummonBody,
    SummonedOut,
    SummonResult,
)

router = APIRouter(prefix="/groups", tags=["groups"])

GroupId = str


@router.post("", status_code=status.HTTP_201_CREATED, response_model=GroupOut)
def create_group(body: CreateGroupBody, who: CurrentPrincipal, svc: ServicesDep) -> GroupOut:
    state, receipt = svc.groups.create(who, body.patient_id, body.title, body.purpose)
    return GroupOut.of(state.group, state.memberships, receipt)


@router.get("/{group_id}", response_model=GroupOut)
def get_group(group_id: GroupId, who: CurrentPrincipal, svc: ServicesDep) -> GroupOut:
    state, receipt = svc.groups.get(who, group_id)
    return GroupOut.of(state.group, state.memberships, receipt)


@router.post(
    "/{group_id}/invitations", status_code=status.HTTP_201_CREATED, response_model=MembershipResult
)
def invite_member(
    group_id: GroupId, body: InviteBody, who: CurrentPrincipal, svc: ServicesDep
) -> MembershipResult:
    membership, receipt = svc.groups.invite(
        who, group_id, body.reg_no.upper(), body.role, direct=body.direct
    )
    return MembershipResult(
        group_id=group_id,
        membership=MembershipOut.of(membership),
        audit_receipt=Receipt.of(receipt),
    )


@router.post("/{group_id}/summon", status_code=status.HTTP_201_CREATED, response_model=SummonResult)
def summon_experts(
    group_id: GroupId, body: SummonBody, who: CurrentPrincipal, svc: ServicesDep
) -> SummonResult:
    experts, receipt = svc.groups.summon(who, group_id, body.specialties, body.count)
    return SummonResult(
        group_id=group_id,
        invited=[
            SummonedOut(reg_no=e.reg_no, specialty=e.specialty, institution=e.institution)
            for e in experts
        ],
        audit_receipt=Receipt.of(receipt),
    )


@router.post("/{group_id}/accept", response_model=MembershipResult)
def accept_invitation(
    group_id: GroupId, who: CurrentPrincipal, svc: ServicesDep
) -> MembershipResult:
    membership, receipt = svc.groups.accept(who, group_id)
    return MembershipResult(
        group_id=group_id,
        membership=MembershipOut.of(membership),
        audit_receipt=Receipt.of(receipt),
    )


@router.post("/{group_id}/leave", response_model=MembershipResult)
def leave_group(group_id: GroupId, who: CurrentPrincipal, svc: ServicesDep) -> MembershipResult:
    membership, receipt = svc.groups.leave(who, group_id)
    return MembershipResult(
        group_id=group_id,
        membership=MembershipOut.of(membership),
        audit_receipt=Receipt.of(receipt),
    )


@router.delete("/{group_id}/members/{reg_no}", response_model=MembershipResult)
def remove_member(
    group_id: GroupId, reg_no: RegNo, who: CurrentPrincipal, svc: ServicesDep
) -> MembershipResult:
    membership, receipt = svc.groups.remove(who, group_id, reg_no.upper())
    return MembershipResult(
        group_id=group_id,
        membership=MembershipOut.of(membership),
        audit_receipt=Receipt.of(receipt),
    )


@router.post("/{group_id}/close", response_model=CloseResult)
def close_group(group_id: GroupId, who: CurrentPrincipal, svc: ServicesDep) -> CloseResult:
    group, receipt = svc.groups.close(who, group_id)
    return CloseResult(
        group_id=group.group_id,
        status=group.status.value,
        closed_at=group.closed_at,
        audit_receipt=Receipt.of(receipt),
    )
