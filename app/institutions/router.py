"""HTTP routes for institutions, affiliations and self-registration. Thin: parse, call
the service, shape the answer."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, status

from app.access.auth import CurrentApplicant, CurrentPrincipal
from app.audit.schemas import Receipt
from app.identity.affiliations import InstitutionStatus
from app.institutions.schemas import (
    AdmitBody,
    AffiliationBody,
    AffiliationOut,
    InstitutionId,
    InstitutionOut,
    PendingOut,
    RegisterEntryOut,
    RegistrationBody,
    RegistrationOut,
    RegNo,
    RejectBody,
    UpdateInstitutionBody,
)
from app.institutions.service import InstitutionService
from app.wiring import provided

router = APIRouter(tags=["institutions"])

Institutions = Annotated[InstitutionService, Depends(provided(InstitutionService))]
RegistrationId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
ListedStatus = Literal["admitted", "suspended", "removed", "all"]


@router.get("/institutions", response_model=list[InstitutionOut])
def list_institutions(
    who: CurrentPrincipal,
    institutions: Institutions,
    status: Annotated[
        ListedStatus, Query(description="anything but admitted: platform admins only")
    ] = "admitted",
) -> list[InstitutionOut]:
    wanted = None if status == "all" else InstitutionStatus(status)
    found, _ = institutions.list_institutions(who, wanted)
    return [InstitutionOut.of(i) for i in found]


@router.post("/institutions", status_code=status.HTTP_201_CREATED, response_model=InstitutionOut)
def admit_institution(
    body: AdmitBody, who: CurrentPrincipal, institutions: Institutions
) -> InstitutionOut:
    admitted, receipt = institutions.admit(
        who, body.id, body.name, body.type, body.phase, body.provider, body.hospital_code
    )
    return InstitutionOut.of(admitted, Receipt.of(receipt))


@router.patch("/institutions/{institution_id}", response_model=InstitutionOut)
def update_institution(
    institution_id: InstitutionId,
    body: UpdateInstitutionBody,
    who: CurrentPrincipal,
    institutions: Institutions,
) -> InstitutionOut:
    changed, receipt = institutions.update_institution(who, institution_id, body.name, body.status)
    return InstitutionOut.of(changed, Receipt.of(receipt))


@router.get("/institutions/{institution_id}/affiliations", response_model=list[AffiliationOut])
def list_affiliations(
    institution_id: InstitutionId, who: CurrentPrincipal, institutions: Institutions
) -> list[AffiliationOut]:
    found, _ = institutions.affiliations(who, institution_id)
    return [AffiliationOut.of(a) for a in found]


@router.put("/institutions/{institution_id}/affiliations/{reg_no}", response_model=AffiliationOut)
def set_affiliation(
    institution_id: InstitutionId,
    reg_no: RegNo,
    body: AffiliationBody,
    who: CurrentPrincipal,
    institutions: Institutions,
) -> AffiliationOut:
    affiliation, receipt = institutions.set_affiliation(
        who, institution_id, reg_no.upper(), body.roles
    )
    return AffiliationOut.of(affiliation, Receipt.of(receipt))


@router.delete(
    "/institutions/{institution_id}/affiliations/{reg_no}", response_model=AffiliationOut
)
def remove_affiliation(
    institution_id: InstitutionId, reg_no: RegNo, who: CurrentPrincipal, institutions: Institutions
) -> AffiliationOut:
    affiliation, receipt = institutions.remove_affiliation(who, institution_id, reg_no.upper())
    return AffiliationOut.of(affiliation, Receipt.of(receipt))


@router.post("/registrations", status_code=status.HTTP_201_CREATED, response_model=RegistrationOut)
def submit_registration(
    body: RegistrationBody, who: CurrentApplicant, institutions: Institutions
) -> RegistrationOut:
    account, receipt = institutions.submit(
        who, body.reg_no, body.name, body.institution, body.new_institution_name
    )
    return RegistrationOut.of(account, Receipt.of(receipt))


@router.get("/registrations/me", response_model=RegistrationOut)
def own_registration(who: CurrentApplicant, institutions: Institutions) -> RegistrationOut:
    account, receipt = institutions.own_registration(who)
    return RegistrationOut.of(account, Receipt.of(receipt))


@router.get("/registrations", response_model=list[PendingOut])
def pending_registrations(
    who: CurrentPrincipal,
    institutions: Institutions,
    institution: Annotated[
        InstitutionId | None, Query(description="omit for every institution (platform admins)")
    ] = None,
) -> list[PendingOut]:
    found, _ = institutions.pending(who, institution)
    return [
        PendingOut.of(
            pending,
            RegisterEntryOut(
                name_en=entry.name_en,
                name_zh=entry.name_zh,
                status=entry.status.value,
                specialties=list(entry.specialties),
            )
            if entry is not None
            else None,
        )
        for pending, entry in found
    ]


@router.post("/registrations/{registration_id}/approve", response_model=RegistrationOut)
def approve_registration(
    registration_id: RegistrationId, who: CurrentPrincipal, institutions: Institutions
) -> RegistrationOut:
    account, receipt = institutions.approve(who, registration_id)
    return RegistrationOut.of(account, Receipt.of(receipt))


@router.post("/registrations/{registration_id}/reject", response_model=RegistrationOut)
def reject_registration(
    registration_id: RegistrationId,
    body: RejectBody,
    who: CurrentPrincipal,
    institutions: Institutions,
) -> RegistrationOut:
    account, receipt = institutions.reject(who, registration_id, body.reason)
    return RegistrationOut.of(account, Receipt.of(receipt))
