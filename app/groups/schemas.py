"""Request and response bodies of the group routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from app.audit.events import AuditReceipt
from app.audit.schemas import Receipt
from app.groups.membership import ConsultationGroup, MemberRole, Membership
from app.schemas import PatientId, Strict

RegNo = Annotated[str, Field(pattern=r"^[A-Za-z]{1,2}\d{4,6}$")]


class CreateGroupBody(Strict):
    patient_id: PatientId
    title: str = Field(min_length=1, max_length=120)
    purpose: str = Field(default="", max_length=500)


class InviteBody(Strict):
    reg_no: RegNo
    role: MemberRole = MemberRole.MEMBER
    direct: bool = False


class SummonBody(Strict):
    specialties: list[Annotated[str, Field(min_length=2, max_length=64)]] = Field(
        min_length=1, max_length=5
    )
    count: int = Field(ge=1, le=10)


class MembershipOut(BaseModel):
    reg_no: str
    role: str
    state: str
    institution: str
    invited_by: str
    invited_at: datetime
    joined_at: datetime | None
    left_at: datetime | None
    removed_at: datetime | None

    @classmethod
    def of(cls, m: Membership) -> MembershipOut:
        return cls(
            reg_no=m.reg_no,
            role=m.role.value,
            state=m.state.value,
            institution=m.institution,
            invited_by=m.invited_by,
            invited_at=m.invited_at,
            joined_at=m.joined_at,
            left_at=m.left_at,
            removed_at=m.removed_at,
        )


class GroupOut(BaseModel):
    group_id: str
    patient_id: str
    institution: str
    title: str
    purpose: str
    status: str
    created_by: str
    created_at: datetime
    closed_at: datetime | None
    members: list[MembershipOut]
    audit_receipt: Receipt

    @classmethod
    def of(
        cls, group: ConsultationGroup, members: list[Membership], receipt: AuditReceipt
    ) -> GroupOut:
        return cls(
            group_id=group.group_id,
            patient_id=group.patient_id,
            institution=group.institution,
            title=group.title,
            purpose=group.purpose,
            status=group.status.value,
            created_by=group.created_by,
            created_at=group.created_at,
            closed_at=group.closed_at,
            members=[MembershipOut.of(m) for m in members],
            audit_receipt=Receipt.of(receipt),
        )


class MembershipResult(BaseModel):
    group_id: str
    membership: MembershipOut
    audit_receipt: Receipt


class SummonedOut(BaseModel):
    reg_no: str
    specialty: str
    institution: str


class SummonResult(BaseModel):
    group_id: str
    invited: list[SummonedOut]
    audit_receipt: Receipt


class CloseResult(BaseModel):
    group_id: str
    status: str
    closed_at: datetime | None
    audit_receipt: Receipt


class GroupSummaryOut(BaseModel):
    """A group in a listing, with the caller's own membership in it."""

    group_id: str
    patient_id: str
    institution: str
    title: str
    status: str
    created_by: str
    created_at: datetime
    role: str
    state: str
    invited_by: str
    invited_at: datetime

    @classmethod
    def of(cls, group: ConsultationGroup, mine: Membership) -> GroupSummaryOut:
        return cls(
            group_id=group.group_id,
            patient_id=group.patient_id,
            institution=group.institution,
            title=group.title,
            status=group.status.value,
            created_by=group.created_by,
            created_at=group.created_at,
            role=mine.role.value,
            state=mine.state.value,
            invited_by=mine.invited_by,
            invited_at=mine.invited_at,
        )


class GroupPageOut(BaseModel):
    groups: list[GroupSummaryOut]
    cursor: str | None
    audit_receipt: Receipt


class InvitationPageOut(BaseModel):
    invitations: list[GroupSummaryOut]
    cursor: str | None
    audit_receipt: Receipt
