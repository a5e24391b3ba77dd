"""HTTP routes for institutions, affiliations and self-registration. Thin: parse, call
the service, shape the answer."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, status

from app.access.auth import ACCESS_DENIED, CurrentApplicant, CurrentPrincipal
from app.audit.schemas import Receipt
from app.errors import Conflict, Forbidden, InvalidRequest, NotFound
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
from app.openapi import errors
from app.wiring import provided

router = APIRouter(tags=["institutions"])

Institutions = Annotated[InstitutionService, Depends(provided(InstitutionService))]
RegistrationId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
ListedStatus = Literal["admitted", "suspended", "removed", "all"]

# What the institution service refuses (app/institutions/service.py), named as it raises.
CHANGED = Conflict(
    "The state changed meanwhile; read it again and retry.", code="concurrent_change"
)
NO_INSTITUTION = NotFound("No such institution.")
NOT_ON_REGISTER = InvalidRequest(
    "That registration number is not on the register.", code="not_on_register"
)
REG_NO_BOUND = Conflict(
    "That registration number is bound to another account.", code="reg_no_already_bound"
)
ADMIT = errors(
    ACCESS_DENIED,
    InvalidRequest(
        "private_clinic institutions are admitted from phase 3; this hub runs phase 2.",
        code="institution_type_not_open",
    ),
    InvalidRequest("phase must be from 1 to 3 for hospital.", code="invalid_phase"),
    InvalidRequest("provider and hospital_code go together.", code="hospital_code_incomplete"),
    InvalidRequest(
        "That identity provider does not place users by hospital code.",
        code="provider_not_multi_hospital",
    ),
    Conflict("An institution with that id exists.", code="institution_exists"),
)
UPDATE = errors(
    ACCESS_DENIED,
    NO_INSTITUTION,
    InvalidRequest("Give a name or a status.", code="nothing_to_change"),
    CHANGED,
)
SET_AFFILIATION = errors(
    ACCESS_DENIED,
    NO_INSTITUTION,
    InvalidRequest("An affiliation holds at least one role.", code="no_role"),
    NOT_ON_REGISTER,
    REG_NO_BOUND,
    CHANGED,
)
REMOVE_AFFILIATION = errors(
    ACCESS_DENIED, NotFound("No active affiliation of that member here."), CHANGED
)
SUBMIT = errors(
    Forbidden("Self-registration is not open in this phase.", code="self_registration_closed"),
    Forbidden(
        "Federated accounts are placed by their identity provider.", code="federated_account"
    ),
    Forbidden("This account is already enrolled.", code="already_enrolled"),
    Conflict("An application of this account awaits review.", code="registration_pending"),
    InvalidRequest(
        "The registration number and name do not match an active entry of the Medical "
        "Council register.",
        code="register_mismatch",
    ),
    InvalidRequest(
        "No such institution; to register a new clinic, give its name as new_institution_name.",
        code="unknown_institution",
    ),
    InvalidRequest(
        "Self-registration is for admitted private clinics, or a new clinic.",
        code="institution_not_open",
    ),
)
NO_PENDING = NotFound("No such pending registration.")
NOT_PENDING = Conflict("That registration is no longer pending.", code="registration_not_pending")
APPROVE = errors(
    ACCESS_DENIED,
    NO_PENDING,
    NOT_PENDING,
    Conflict("The claimed institution is not admitted.", code="institution_not_admitted"),
    Conflict("The registration is no longer active on the register.", code="register_changed"),
    REG_NO_BOUND,
    CHANGED,
)
REJECT = errors(ACCESS_DENIED, NO_PENDING, NOT_PENDING, CHANGED)


@router.get("/institutions", response_model=list[InstitutionOut], responses=errors(ACCESS_DENIED))
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


@router.post(
    "/institutions",
    status_code=status.HTTP_201_CREATED,
    response_model=InstitutionOut,
    responses=ADMIT,
)
def admit_institution(
    body: AdmitBody, who: CurrentPrincipal, institutions: Institutions
) -> InstitutionOut:
    admitted, receipt = institutions.admit(
        who, body.id, body.name, body.type, body.phase, body.provider, body.hospital_code
    )
    return InstitutionOut.of(admitted, Receipt.of(receipt))


@router.patch("/institutions/{institution_id}", response_model=InstitutionOut, responses=UPDATE)
def update_institution(
    institution_id: InstitutionId,
    body: UpdateInstitutionBody,
    who: CurrentPrincipal,
    institutions: Institutions,
) -> InstitutionOut:
    changed, receipt = institutions.update_institution(who, institution_id, body.name, body.status)
    return InstitutionOut.of(changed, Receipt.of(receipt))


@router.get(
    "/institutions/{institution_id}/affiliations",
    response_model=list[AffiliationOut],
    responses=errors(ACCESS_DENIED),
)
def list_affiliations(
    institution_id: InstitutionId, who: CurrentPrincipal, institutions: Institutions
) -> list[AffiliationOut]:
    found, _ = institutions.affiliations(who, institution_id)
    return [AffiliationOut.of(a) for a in found]


@router.put(
    "/institutions/{institution_id}/affiliations/{reg_no}",
    response_model=AffiliationOut,
    responses=SET_AFFILIATION,
)
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
    "/institutions/{institution_id}/affiliations/{reg_no}",
    response_model=AffiliationOut,
    responses=REMOVE_AFFILIATION,
)
def remove_affiliation(
    institution_id: InstitutionId, reg_no: RegNo, who: CurrentPrincipal, institutions: Institutions
) -> AffiliationOut:
    affiliation, receipt = institutions.remove_affiliation(who, institution_id, reg_no.upper())
    return AffiliationOut.of(affiliation, Receipt.of(receipt))


@router.post(
    "/registrations",
    status_code=status.HTTP_201_CREATED,
    response_model=RegistrationOut,
    responses=SUBMIT,
)
def submit_registration(
    body: RegistrationBody, who: CurrentApplicant, institutions: Institutions
) -> RegistrationOut:
    account, receipt = institutions.submit(
        who, body.reg_no, body.name, body.institution, body.new_institution_name
    )
    return RegistrationOut.of(account, Receipt.of(receipt))


@router.get(
    "/registrations/me",
    response_model=RegistrationOut,
    responses=errors(NotFound("This account has no registration.", code="no_registration")),
)
def own_registration(who: CurrentApplicant, institutions: Institutions) -> RegistrationOut:
    account, receipt = institutions.own_registration(who)
    return RegistrationOut.of(account, Receipt.of(receipt))


@router.get("/registrations", response_model=list[PendingOut], responses=errors(ACCESS_DENIED))
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


@router.post(
    "/registrations/{registration_id}/approve", response_model=RegistrationOut, responses=APPROVE
)
def approve_registration(
    registration_id: RegistrationId, who: CurrentPrincipal, institutions: Institutions
) -> RegistrationOut:
    account, receipt = institutions.approve(who, registration_id)
    return RegistrationOut.of(account, Receipt.of(receipt))


@router.post(
    "/registrations/{registration_id}/reject", response_model=RegistrationOut, responses=REJECT
)
def reject_registration(
    registration_id: RegistrationId,
    body: RejectBody,
    who: CurrentPrincipal,
    institutions: Institutions,
) -> RegistrationOut:
    account, receipt = institutions.reject(who, registration_id, body.reason)
    return RegistrationOut.of(account, Receipt.of(receipt))
