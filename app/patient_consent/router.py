"""HTTP routes of the patient's sharing consent. Thin: parse, call the service, answer
FHIR ``Consent`` resources."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, status

from app.access.auth import ACCESS_DENIED, CurrentPrincipal
from app.audit.schemas import Receipt
from app.consent.fhir import consent_to_fhir
from app.consent.model import ConsentConflict, InvalidConsent
from app.errors import NotFound
from app.openapi import errors
from app.patient_consent.schemas import (
    ConsentOut,
    ConsentsOut,
    GrantConsentBody,
    SubstituteBody,
    WithdrawConsentBody,
)
from app.patient_consent.service import ConsentService, Substitute
from app.patients.hkid import CHECK_DIGIT, InvalidHkid
from app.patients.index import UnknownPatient
from app.schemas import PatientId
from app.wiring import provided

router = APIRouter(prefix="/patients", tags=["consent"])

Consents = Annotated[ConsentService, Depends(provided(ConsentService))]
ConsentId = Annotated[str, Path(pattern=r"^cs-[0-9a-f]{32}$")]

# What the consent service refuses (app/patient_consent/service.py, app/consent/model.py),
# as raised. The Cedar decisions here (RecordConsent, WithdrawConsent, ViewConsents) are
# not consent-gated: a deny is access_denied, never consent_required.
CHANGED = ConsentConflict("concurrent_change", "The patient's consents changed meanwhile; retry.")
INVALID = InvalidConsent("A consent's end must be after its start.")
# a substitute decision maker's HKID is parsed (app/patients/hkid.py) before anything is kept
SDM_HKID = InvalidHkid(CHECK_DIGIT)
GRANT = errors(ACCESS_DENIED, UnknownPatient, INVALID, SDM_HKID, CHANGED)
WITHDRAW = errors(
    ACCESS_DENIED,
    UnknownPatient,
    INVALID,
    SDM_HKID,
    NotFound("No such consent for this patient.", code="consent_not_found"),
    ConsentConflict("already_withdrawn", "The consent is already withdrawn."),
    CHANGED,
)
READ = errors(ACCESS_DENIED, UnknownPatient)


def _substitute(body: SubstituteBody | None) -> Substitute | None:
    if body is None:
        return None
    return Substitute(hkid=body.hkid, relationship=body.relationship, basis=body.basis)


@router.post(
    "/{patient_id}/consents",
    status_code=status.HTTP_201_CREATED,
    response_model=ConsentsOut,
    responses=GRANT,
)
def grant_consent(
    patient_id: Annotated[PatientId, Path()],
    body: GrantConsentBody,
    who: CurrentPrincipal,
    consents: Consents,
) -> ConsentsOut:
    granted, receipt = consents.grant(
        who,
        patient_id,
        institutions=body.institutions,
        valid_until=body.valid_until,
        substitute=_substitute(body.substitute),
    )
    return ConsentsOut(
        consents=[consent_to_fhir(c) for c in granted], audit_receipt=Receipt.of(receipt)
    )


@router.post(
    "/{patient_id}/consents/{consent_id}/withdraw", response_model=ConsentOut, responses=WITHDRAW
)
def withdraw_consent(
    patient_id: Annotated[PatientId, Path()],
    consent_id: ConsentId,
    body: WithdrawConsentBody,
    who: CurrentPrincipal,
    consents: Consents,
) -> ConsentOut:
    withdrawn, receipt = consents.withdraw(
        who, patient_id, consent_id, substitute=_substitute(body.substitute)
    )
    return ConsentOut(consent=consent_to_fhir(withdrawn), audit_receipt=Receipt.of(receipt))


@router.get("/{patient_id}/consents", response_model=ConsentsOut, responses=READ)
def read_consents(
    patient_id: Annotated[PatientId, Path()], who: CurrentPrincipal, consents: Consents
) -> ConsentsOut:
    found, receipt = consents.consents(who, patient_id)
    return ConsentsOut(
        consents=[consent_to_fhir(c) for c in found], audit_receipt=Receipt.of(receipt)
    )
