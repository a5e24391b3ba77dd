"""Request and response bodies of the referral routes.

The legal basis is optional in the body on purpose: a referral without one is refused
by the service with its own code (``legal_basis_required``) and that refusal is audited,
which a schema error would not be. The clinical question is returned only in a
referral's detail (to parties allowed to view it), never in lists.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.audit.events import AuditReceipt
from app.audit.schemas import Receipt
from app.referrals.lifecycle import (
    DeclineReason,
    LegalBasis,
    PatientNotice,
    Referral,
    Target,
    Urgency,
)
from app.schemas import PatientId, Strict

RegNo = Annotated[str, Field(pattern=r"^[A-Za-z]{1,2}\d{4,6}$")]
InstitutionId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,39}$")]
RecordRef = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
GroupRef = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
MAX_QUESTION_CHARS = 4000


class TargetBody(Strict):
    institution: InstitutionId
    specialty: str = Field(default="", max_length=64, pattern=r"^$|^[A-Za-z][A-Za-z ,&/()-]{1,63}$")
    team: str = Field(default="", max_length=40, pattern=r"^$|^[a-z0-9][a-z0-9-]{0,39}$")
    practitioner: RegNo | None = None

    @model_validator(mode="after")
    def _addressed(self) -> TargetBody:
        if not self.specialty and not self.practitioner:
            raise ValueError("a target names a specialty or a doctor")
        return self

    def target(self) -> Target:
        return Target(
            institution=self.institution,
            specialty=self.specialty.strip().lower(),
            team=self.team,
            practitioner=(self.practitioner or "").upper(),
        )


class LegalBasisBody(Strict):
    basis: LegalBasis
    patient: PatientNotice = PatientNotice.NONE


class SendReferralBody(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "patient_id": "pt-6dde7bc9f14d",
                    "group_id": "6addad601b9440cda5d9323d0823423b",
                    "target": {
                        "institution": "harbour-cardiac-alliance",
                        "specialty": "cardiology",
                        "practitioner": "ZZ63218",
                    },
                    "urgency": "urgent",
                    "clinical_question": "Synthetic question: please assess the echo findings",
                    "legal_basis": {"basis": "referral_for_care", "patient": "informed"},
                    "attachments": [],
                }
            ]
        }
    )

    patient_id: PatientId
    group_id: GroupRef | None = None
    target: TargetBody
    urgency: Urgency
    clinical_question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    legal_basis: LegalBasisBody | None = None
    attachments: list[RecordRef] = Field(default_factory=list, max_length=20)


class DeclineBody(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"reason": "no_capacity", "note": "Please refer to the cluster's clinic"}]
        }
    )

    reason: DeclineReason
    note: str | None = Field(default=None, min_length=1, max_length=2000)


class RedirectBody(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"target": {"institution": "harbour-cardiac-alliance", "specialty": "cardiology"}}
            ]
        }
    )

    target: TargetBody


class TargetOut(BaseModel):
    institution: str
    specialty: str
    team: str
    practitioner: str


class ReferralOut(BaseModel):
    referral_id: str
    status: str
    urgency: str
    patient_id: str
    group_id: str
    referrer: str
    from_institution: str
    from_department: str
    target: TargetOut
    to_department: str
    legal_basis: str
    patient_notice: str
    phase: int
    created_at: datetime
    updated_at: datetime | None
    accepted_by: str
    accepted_at: datetime | None
    declined_at: datetime | None
    decline_reason: str | None
    completed_at: datetime | None
    redirect_count: int
    attachments: list[str]

    @classmethod
    def fields_of(cls, r: Referral) -> dict[str, Any]:
        return {
            "referral_id": r.referral_id,
            "status": r.status.value,
            "urgency": r.urgency.value,
            "patient_id": r.patient_id,
            "group_id": r.group_id,
            "referrer": r.referrer,
            "from_institution": r.from_institution,
            "from_department": r.from_department,
            "target": TargetOut(**r.target.__dict__),
            "to_department": r.to_department,
            "legal_basis": r.legal_basis.value,
            "patient_notice": r.patient_notice.value,
            "phase": r.phase,
            "created_at": r.created_at,
            "updated_at": r.updated_at,
            "accepted_by": r.accepted_by,
            "accepted_at": r.accepted_at,
            "declined_at": r.declined_at,
            "decline_reason": r.decline_reason.value if r.decline_reason else None,
            "completed_at": r.completed_at,
            "redirect_count": r.redirect_count,
            "attachments": list(r.attachments),
        }

    @classmethod
    def of(cls, r: Referral) -> ReferralOut:
        return cls(**cls.fields_of(r))


class ReferralResult(ReferralOut):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "referral_id": "2ec0bcd13749420e931624ee653340fa",
                    "status": "requested",
                    "urgency": "urgent",
                    "patient_id": "pt-6dde7bc9f14d",
                    "group_id": "6addad601b9440cda5d9323d0823423b",
                    "referrer": "ZZ63339",
                    "from_institution": "lion-rock-oncology",
                    "from_department": "emergency",
                    "target": {
                        "institution": "harbour-cardiac-alliance",
                        "specialty": "cardiology",
                        "team": "",
                        "practitioner": "ZZ63218",
                    },
                    "to_department": "cardiology",
                    "legal_basis": "referral_for_care",
                    "patient_notice": "informed",
                    "phase": 1,
                    "created_at": "2026-01-15T09:30:00Z",
                    "updated_at": None,
                    "accepted_by": "",
                    "accepted_at": None,
                    "declined_at": None,
                    "decline_reason": None,
                    "completed_at": None,
                    "redirect_count": 0,
                    "attachments": [],
                    "audit_receipt": {
                        "event_id": "1dd29baa3b5648768f71daff3da1aa1f",
                        "store": "ledger",
                        "position": "5",
                    },
                }
            ]
        }
    )

    audit_receipt: Receipt

    @classmethod
    def with_receipt(cls, r: Referral, receipt: AuditReceipt) -> ReferralResult:
        return cls(**cls.fields_of(r), audit_receipt=Receipt.of(receipt))


class HistoryOut(BaseModel):
    operation: str
    actor: str
    at: str
    to_status: str


class ReferralDetail(ReferralResult):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "referral_id": "2ec0bcd13749420e931624ee653340fa",
                    "status": "requested",
                    "urgency": "urgent",
                    "patient_id": "pt-6dde7bc9f14d",
                    "group_id": "6addad601b9440cda5d9323d0823423b",
                    "referrer": "ZZ63339",
                    "from_institution": "lion-rock-oncology",
                    "from_department": "emergency",
                    "target": {
                        "institution": "harbour-cardiac-alliance",
                        "specialty": "cardiology",
                        "team": "",
                        "practitioner": "ZZ63218",
                    },
                    "to_department": "cardiology",
                    "legal_basis": "referral_for_care",
                    "patient_notice": "informed",
                    "phase": 1,
                    "created_at": "2026-01-15T09:30:00Z",
                    "updated_at": None,
                    "accepted_by": "",
                    "accepted_at": None,
                    "declined_at": None,
                    "decline_reason": None,
                    "completed_at": None,
                    "redirect_count": 0,
                    "attachments": [],
                    "audit_receipt": {
                        "event_id": "1dd29baa3b5648768f71daff3da1aa1f",
                        "store": "ledger",
                        "position": "5",
                    },
                    "clinical_question": "Synthetic question: please assess the echo findings",
                    "history": [
                        {
                            "operation": "send",
                            "actor": "ZZ63339",
                            "at": "2026-01-15T09:30:00Z",
                            "to_status": "requested",
                        }
                    ],
                }
            ]
        }
    )

    clinical_question: str
    history: list[HistoryOut]


class ReferralList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "referrals": [
                        {
                            "referral_id": "2ec0bcd13749420e931624ee653340fa",
                            "status": "requested",
                            "urgency": "urgent",
                            "patient_id": "pt-6dde7bc9f14d",
                            "group_id": "6addad601b9440cda5d9323d0823423b",
                            "referrer": "ZZ63339",
                            "from_institution": "lion-rock-oncology",
                            "from_department": "emergency",
                            "target": {
                                "institution": "harbour-cardiac-alliance",
                                "specialty": "cardiology",
                                "team": "",
                                "practitioner": "ZZ63218",
                            },
                            "to_department": "cardiology",
                            "legal_basis": "referral_for_care",
                            "patient_notice": "informed",
                            "phase": 1,
                            "created_at": "2026-01-15T09:30:00Z",
                            "updated_at": None,
                            "accepted_by": "",
                            "accepted_at": None,
                            "declined_at": None,
                            "decline_reason": None,
                            "completed_at": None,
                            "redirect_count": 0,
                            "attachments": [],
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

    referrals: list[ReferralOut]
    audit_receipt: Receipt
