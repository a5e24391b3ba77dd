"""HTTP routes of the patient index. Thin: parse, call the service, shape the answer.

Identifiers travel in bodies only (paths and query strings end up in access logs).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, status

from app.access.auth import ACCESS_DENIED, CurrentPrincipal
from app.audit.events import AuditReceipt
from app.audit.schemas import Receipt
from app.errors import NotFound
from app.openapi import errors
from app.patient_index.schemas import (
    CorrectHkidBody,
    CorrectMrnLinkBody,
    FindPatientBody,
    IndexChangeOut,
    LinkMrnBody,
    PatientOut,
    RegisterPatientBody,
    UnlinkMrnBody,
)
from app.patient_index.service import PatientIndexService
from app.patients.hkid import CHECK_DIGIT, InvalidHkid
from app.patients.index import IndexConflict, IndexEvent
from app.patients.repository import concurrent_change
from app.schemas import PatientId
from app.wiring import provided

router = APIRouter(prefix="/patients", tags=["patients"])

Index = Annotated[PatientIndexService, Depends(provided(PatientIndexService))]

# What the index refuses (app/patients/index.py, app/patient_index/service.py), as raised.
CHANGED = concurrent_change()
INVALID_HKID = InvalidHkid(CHECK_DIGIT)
UNKNOWN = IndexConflict("unknown_patient", "No such patient in the index.")
HKID_TAKEN = IndexConflict(
    "hkid_already_registered", "A patient with this HKID is already registered."
)
MRN_ELSEWHERE = IndexConflict(
    "mrn_linked_to_another_patient",
    "The MRN is linked to another patient; correct the link with a reason instead.",
)
NOT_LINKED = IndexConflict("mrn_not_linked", "The MRN is not linked to a patient.")
REGISTER = errors(ACCESS_DENIED, INVALID_HKID, HKID_TAKEN, MRN_ELSEWHERE, CHANGED)
LOOKUP = errors(
    ACCESS_DENIED,
    INVALID_HKID,
    NotFound("No patient in the index matches.", code="unknown_patient"),
)
LINK = errors(
    ACCESS_DENIED,
    UNKNOWN,
    IndexConflict("already_linked", "The MRN is already linked to this patient."),
    MRN_ELSEWHERE,
    CHANGED,
)
UNLINK = errors(ACCESS_DENIED, NOT_LINKED, CHANGED)
CORRECT_LINK = errors(
    ACCESS_DENIED,
    UNKNOWN,
    NOT_LINKED,
    IndexConflict("same_patient", "The MRN is already linked to this patient."),
    CHANGED,
)
CORRECT_HKID = errors(
    ACCESS_DENIED,
    INVALID_HKID,
    UNKNOWN,
    IndexConflict("same_hkid", "The patient already has this HKID."),
    HKID_TAKEN,
    CHANGED,
)


def _change(event: IndexEvent, receipt: AuditReceipt) -> IndexChangeOut:
    return IndexChangeOut(
        patient_id=event.patient_id,
        change=event.kind.value,
        seq=event.seq,
        audit_receipt=Receipt.of(receipt),
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=PatientOut, responses=REGISTER)
def register_patient(body: RegisterPatientBody, who: CurrentPrincipal, index: Index) -> PatientOut:
    patient_id, receipt = index.register(who, hkid=body.hkid, mrn=body.mrn)
    return PatientOut(patient_id=patient_id, audit_receipt=Receipt.of(receipt))


@router.post("/lookup", response_model=PatientOut, responses=LOOKUP)
def find_patient(body: FindPatientBody, who: CurrentPrincipal, index: Index) -> PatientOut:
    patient_id, receipt = index.find(who, hkid=body.hkid, mrn=body.mrn)
    return PatientOut(patient_id=patient_id, audit_receipt=Receipt.of(receipt))


@router.post(
    "/{patient_id}/mrn-links",
    status_code=status.HTTP_201_CREATED,
    response_model=IndexChangeOut,
    responses=LINK,
)
def link_mrn(
    patient_id: Annotated[PatientId, Path()], body: LinkMrnBody, who: CurrentPrincipal, index: Index
) -> IndexChangeOut:
    return _change(*index.link(who, patient_id, mrn=body.mrn, reason=body.reason))


@router.post("/mrn-links/unlink", response_model=IndexChangeOut, responses=UNLINK)
def unlink_mrn(body: UnlinkMrnBody, who: CurrentPrincipal, index: Index) -> IndexChangeOut:
    return _change(*index.unlink(who, mrn=body.mrn, reason=body.reason))


@router.post("/mrn-links/correct", response_model=IndexChangeOut, responses=CORRECT_LINK)
def correct_mrn_link(
    body: CorrectMrnLinkBody, who: CurrentPrincipal, index: Index
) -> IndexChangeOut:
    return _change(
        *index.correct_link(who, mrn=body.mrn, to_patient_id=body.patient_id, reason=body.reason)
    )


@router.post(
    "/{patient_id}/hkid-corrections", response_model=IndexChangeOut, responses=CORRECT_HKID
)
def correct_hkid(
    patient_id: Annotated[PatientId, Path()],
    body: CorrectHkidBody,
    who: CurrentPrincipal,
    index: Index,
) -> IndexChangeOut:
    return _change(*index.correct_hkid(who, patient_id, hkid=body.hkid, reason=body.reason))
