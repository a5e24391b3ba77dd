"""Request and response bodies of the institution, affiliation and registration routes."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "tsuen-wan-clinic",
                    "name": "Tsuen Wan Clinic (fictional)",
                    "type": "private_clinic",
                }
            ]
        }
    )

    id: InstitutionId
    name: DisplayName
    type: InstitutionType
    # The rollout phase whose cohort the institution joins; default: its type's first.
    phase: int | None = Field(default=None, ge=1, le=3)
    # An HA hospital under a provider that covers many hospitals: the code its users carry.
    provider: ProviderName | None = None
    hospital_code: HospitalCode | None = None


class UpdateInstitutionBody(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "suspended"}]})

    name: DisplayName | None = None
    status: InstitutionStatus | None = None


class InstitutionOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "tsuen-wan-clinic",
                    "name": "Tsuen Wan Clinic (fictional)",
                    "type": "private_clinic",
                    "phase": 3,
                    "status": "admitted",
                    "provider": None,
                    "hospital_code": None,
                    "audit_receipt": {
                        "event_id": "1dd29baa3b5648768f71daff3da1aa1f",
                        "store": "ledger",
                        "position": "5",
                    },
                }
            ]
        }
    )

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
    model_config = ConfigDict(json_schema_extra={"examples": [{"roles": ["doctor"]}]})

    roles: list[Role] = Field(min_length=1, max_length=5)


class AffiliationOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "institution": "tsuen-wan-clinic",
                    "member": "ZZ12345",
                    "roles": ["doctor"],
                    "status": "active",
                    "audit_receipt": {
                        "event_id": "1dd29baa3b5648768f71daff3da1aa1f",
                        "store": "ledger",
                        "position": "5",
                    },
                }
            ]
        }
    )

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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "reg_no": "ZZ12345",
                    "name": "CHAN Tai Man (synthetic)",
                    "institution": "tsuen-wan-clinic",
                }
            ]
        }
    )

    reg_no: RegNo
    # As on the register (English or Chinese); compared, never stored or audited.
    name: Annotated[str, Field(min_length=2, max_length=120)]
    institution: InstitutionId
    # Set only when claiming a clinic the hub has not admitted yet.
    new_institution_name: DisplayName | None = None


class RejectBody(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "not_practising_here"}]})

    reason: RejectionReason = RejectionReason.OTHER


class RegistrationOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "registration_id": "5f0c3a9e8b7d4c2a9e1f0b3c4d5e6f70",
                    "status": "pending",
                    "reg_no": "ZZ12345",
                    "institution": "tsuen-wan-clinic",
                    "new_institution_name": None,
                    "submitted_at": "2026-01-15T09:30:00+00:00",
                    "decided_at": None,
                    "audit_receipt": {
                        "event_id": "1dd29baa3b5648768f71daff3da1aa1f",
                        "store": "ledger",
                        "position": "5",
                    },
                }
            ]
        }
    )

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

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name_en": "CHAN Tai Man (synthetic)",
                    "name_zh": "陳大文",
                    "status": "active",
                    "specialties": ["cardiology"],
                }
            ]
        }
    )

    name_en: str
    name_zh: str
    status: str
    specialties: list[str]


class PendingOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "registration_id": "5f0c3a9e8b7d4c2a9e1f0b3c4d5e6f70",
                    "reg_no": "ZZ12345",
                    "institution": "tsuen-wan-clinic",
                    "new_institution_name": None,
                    "submitted_at": "2026-01-15T09:30:00+00:00",
                    "register_entry": {
                        "name_en": "CHAN Tai Man (synthetic)",
                        "name_zh": "陳大文",
                        "status": "active",
                        "specialties": [],
                    },
                }
            ]
        }
    )

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
