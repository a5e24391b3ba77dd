"""Request and response bodies of the group routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from app.audit.events import AuditReceipt
from app.audit.schemas import Receipt
from app.groups.membership import ConsultationGroup, MemberRole, Membership
from app.schemas import PatientId, Strict

RegNo = Annotated[str, Field(pattern=r"^[A-Za-z]{1,2}\d{4,6}$")]


class CreateGroupBody(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "patient_id": "pt-6dde7bc9f14d",
                    "title": "Case conference",
                    "purpose": "Second opinion on echo findings",
                }
            ]
        }
    )

    patient_id: PatientId
    title: str = Field(min_length=1, max_length=120)
    purpose: str = Field(default="", max_length=500)


class InviteBody(Strict):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reg_no": "ZZ11078", "role": "member", "direct": False}]}
    )

    reg_no: RegNo
    role: MemberRole = MemberRole.MEMBER
    direct: bool = False


class SummonBody(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"specialties": ["cardiology", "clinical oncology"], "count": 2}]
        }
    )

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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "group_id": "6addad601b9440cda5d9323d0823423b",
                    "patient_id": "pt-6dde7bc9f14d",
                    "institution": "harbour-cardiac-alliance",
                    "title": "Case conference",
                    "purpose": "",
                    "status": "open",
                    "created_by": "ZZ82923",
                    "created_at": "2026-01-15T09:30:00Z",
                    "closed_at": None,
                    "members": [
                        {
                            "reg_no": "ZZ82923",
                            "role": "lead",
                            "state": "active",
                            "institution": "new-territories-east-cluster",
                            "invited_by": "ZZ82923",
                            "invited_at": "2026-01-15T09:30:00Z",
                            "joined_at": "2026-01-15T09:30:00Z",
                            "left_at": None,
                            "removed_at": None,
                        }
                    ],
                    "audit_receipt": {
                        "event_id": "1dd29baa3b5648768f71daff3da1aa1f",
                        "store": "ledger",
                        "position": "5",
                    },
                }
            ]
        }
    )

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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "group_id": "6addad601b9440cda5d9323d0823423b",
                    "membership": {
                        "reg_no": "ZZ11078",
                        "role": "member",
                        "state": "active",
                        "institution": "new-territories-east-cluster",
                        "invited_by": "ZZ82923",
                        "invited_at": "2026-01-15T09:30:00Z",
                        "joined_at": "2026-01-15T09:30:00Z",
                        "left_at": None,
                        "removed_at": None,
                    },
                    "audit_receipt": {
                        "event_id": "1dd29baa3b5648768f71daff3da1aa1f",
                        "store": "ledger",
                        "position": "5",
                    },
                }
            ]
        }
    )

    group_id: str
    membership: MembershipOut
    audit_receipt: Receipt


class SummonedOut(BaseModel):
    reg_no: str
    specialty: str
    institution: str


class SummonResult(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "group_id": "6addad601b9440cda5d9323d0823423b",
                    "invited": [
                        {
                            "reg_no": "ZZ11078",
                            "specialty": "cardiology",
                            "institution": "new-territories-east-cluster",
                        }
                    ],
                    "audit_receipt": {
                        "event_id": "1dd29baa3b5648768f71daff3da1aa1f",
                        "store": "ledger",
                        "position": "5",
                    },
                }
            ]
        }
    )

    group_id: str
    invited: list[SummonedOut]
    audit_receipt: Receipt


class CloseResult(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "group_id": "6addad601b9440cda5d9323d0823423b",
                    "status": "closed",
                    "closed_at": "2026-01-15T09:30:00Z",
                    "audit_receipt": {
                        "event_id": "1dd29baa3b5648768f71daff3da1aa1f",
                        "store": "ledger",
                        "position": "5",
                    },
                }
            ]
        }
    )

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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "groups": [
                        {
                            "group_id": "6addad601b9440cda5d9323d0823423b",
                            "patient_id": "pt-6dde7bc9f14d",
                            "institution": "harbour-cardiac-alliance",
                            "title": "Case conference",
                            "status": "open",
                            "created_by": "ZZ82923",
                            "created_at": "2026-01-15T09:30:00Z",
                            "role": "lead",
                            "state": "active",
                            "invited_by": "ZZ82923",
                            "invited_at": "2026-01-15T09:30:00Z",
                        }
                    ],
                    "cursor": None,
                    "audit_receipt": {
                        "event_id": "1dd29baa3b5648768f71daff3da1aa1f",
                        "store": "ledger",
                        "position": "5",
                    },
                }
            ]
        }
    )

    groups: list[GroupSummaryOut]
    cursor: str | None
    audit_receipt: Receipt


class InvitationPageOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "invitations": [
                        {
                            "group_id": "6addad601b9440cda5d9323d0823423b",
                            "patient_id": "pt-6dde7bc9f14d",
                            "institution": "harbour-cardiac-alliance",
                            "title": "Case conference",
                            "status": "open",
                            "created_by": "ZZ82923",
                            "created_at": "2026-01-15T09:30:00Z",
                            "role": "member",
                            "state": "invited",
                            "invited_by": "ZZ82923",
                            "invited_at": "2026-01-15T09:30:00Z",
                        }
                    ],
                    "cursor": None,
                    "audit_receipt": {
                        "event_id": "1dd29baa3b5648768f71daff3da1aa1f",
                        "store": "ledger",
                        "position": "5",
                    },
                }
            ]
        }
    )

    invitations: list[GroupSummaryOut]
    cursor: str | None
    audit_receipt: Receipt
