"""Request and response bodies of the institution, affiliation and registration routes."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from app.audit.schemas import Receipt
from app.identity.affiliations import (
    Account,
    Affiliation,
    Institution,
    InstitutionStatus,
    InstitutionType,
)
from app.institutions.registrations import PendingRegistration, RejectionReason
from app.schemas import Strict

# Same shapes as infra/stage.py's institution ids and app.identity.registration's numbers.
InstitutionId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,39}$")]
RegNo = Annotated[str, Field(pattern=r"^[A-Za-z]{1,2}\d{4,6}$")]
HospitalCode = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,15}$")]
ProviderName = Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{3,32}$")]
DisplayName = Annotated[str, Field(min_length=2, max_length=120)]
Role = Literal["doctor", "specialist", "institution_admin", "auditor", "platform_admin"]


class AdmitBody(Strict):
    id: InstitutionId
    name: DisplayName
    type: InstitutionType
    # The rollout phase whose cohort the institution joins; default: its type's first.
    phase: int | None = Field(default=None, ge=1, le=3)
    # An HA hospital under a provider that covers many hospitals: the code its users carry.
    provider: ProviderName | None = None
    hospital_code: HospitalCode | None = None


class UpdateInstitutionBody(Strict):
    name: DisplayName | None = None
    status: InstitutionStatus | None = None


class InstitutionOut(BaseModel):
    id: str
    name: str
    type: str
    phase: int
    status: str
    provider: str | None = None
    hospital_code: str | None = None
    audit_receipt: Receipt | None = None

    @classmethod
    def of(cls, i: Institution, receipt: Receipt | None = None) -> InstitutionOut:
        return cls(
            id=i.id,
            name=i.name,
            type=i.type.value,
            phase=i.phase,
            status=i.status.value,
            provider=i.provider,
            hospital_code=i.hospital_code,
            audit_receipt=receipt,
        )


class AffiliationBody(Strict):
    roles: list[Role] = Field(min_length=1, max_length=5)


class AffiliationOut(BaseModel):
    institution: str
    member: str
    roles: list[str]
    status: str
    audit_receipt: Receipt | None = None

    @classmethod
    def of(cls, a: Affiliation, receipt: Receipt | None = None) -> AffiliationOut:
        return cls(
            institution=a.institution,
            member=a.member,
            roles=list(a.roles),
            status=a.status.value,
            audit_receipt=receipt,
        )


class RegistrationBody(Strict):
    reg_no: RegNo
    # As on the register (English or Chinese); compared, never stored or audited.
    name: Annotated[str, Field(min_length=2, max_length=120)]
    institution: InstitutionId
    # Set only when claiming a clinic the hub has not admitted yet.
    new_institution_name: DisplayName | None = None


class RejectBody(Strict):
    reason: RejectionReason = RejectionReason.OTHER


class RegistrationOut(BaseModel):
    registration_id: str | None
    status: str
    reg_no: str | None
    institution: str
    new_institution_name: str | None = None
    submitted_at: str | None = None
    decided_at: str | None = None
    audit_receipt: Receipt | None = None

    @classmethod
    def of(cls, a: Account, receipt: Receipt | None = None) -> RegistrationOut:
        return cls(
            registration_id=a.registration_id,
            status=a.status.value,
            reg_no=a.reg_no,
            institution=a.institution,
            new_institution_name=a.new_institution_name,
            submitted_at=a.submitted_at,
            decided_at=a.decided_at,
            audit_receipt=receipt,
        )


class RegisterEntryOut(BaseModel):
    """The public register entry a reviewer compares the applicant with."""

    name_en: str
    name_zh: str
    status: str
    specialties: list[str]


class PendingOut(BaseModel):
    registration_id: str
    reg_no: str
    institution: str
    new_institution_name: str | None
    submitted_at: str
    register_entry: RegisterEntryOut | None

    @classmethod
    def of(cls, p: PendingRegistration, entry: RegisterEntryOut | None) -> PendingOut:
        return cls(
            registration_id=p.registration_id,
            reg_no=p.reg_no,
            institution=p.institution,
            new_institution_name=p.new_institution_name,
            submitted_at=p.submitted_at,
            register_entry=entry,
        )
