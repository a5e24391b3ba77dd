"""HTTP routes of the patient index. Thin: parse, call the service, shape the answer.

Identifiers travel in bodies only (paths and query strings end up in access logs).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, status

from app.access.auth import CurrentPrincipal
from app.audit.events import AuditReceipt
from app.audit.schemas import Receipt
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
from app.patients.index import IndexEvent
from app.schemas import PatientId
from app.wiring import provided

router = APIRouter(prefix="/patients", tags=["patients"])

Index = Annotated[PatientIndexService, Depends(provided(PatientIndexService))]


def _change(event: IndexEvent, receipt: AuditReceipt) -> IndexChangeOut:
    return IndexChangeOut(
        patient_id=event.patient_id,
        change=event.kind.value,
        seq=event.seq,
        audit_receipt=Receipt.of(receipt),
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=PatientOut)
def register_patient(body: RegisterPatientBody, who: CurrentPrincipal, index: Index) -> PatientOut:
    patient_id, receipt = index.register(who, hkid=body.hkid, mrn=body.mrn)
    return PatientOut(patient_id=patient_id, audit_receipt=Receipt.of(receipt))


@router.post("/lookup", response_model=PatientOut)
def find_patient(body: FindPatientBody, who: CurrentPrincipal, index: Index) -> PatientOut:
    patient_id, receipt = index.find(who, hkid=body.hkid, mrn=body.mrn)
    return PatientOut(patient_id=patient_id, audit_receipt=Receipt.of(receipt))


@router.post(
    "/{patient_id}/mrn-links", status_code=status.HTTP_201_CREATED, response_model=IndexChangeOut
)
def link_mrn(
    patient_id: Annotated[PatientId, Path()], body: LinkMrnBody, who: CurrentPrincipal, index: Index
) -> IndexChangeOut:
    return _change(*index.link(who, patient_id, mrn=body.mrn, reason=body.reason))


@router.post("/mrn-links/unlink", response_model=IndexChangeOut)
def unlink_mrn(body: UnlinkMrnBody, who: CurrentPrincipal, index: Index) -> IndexChangeOut:
    return _change(*index.unlink(who, mrn=body.mrn, reason=body.reason))


@router.post("/mrn-links/correct", response_model=IndexChangeOut)
def correct_mrn_link(
    body: CorrectMrnLinkBody, who: CurrentPrincipal, index: Index
) -> IndexChangeOut:
    return _change(
        *index.correct_link(who, mrn=body.mrn, to_patient_id=body.patient_id, reason=body.reason)
    )


@router.post("/{patient_id}/hkid-corrections", response_model=IndexChangeOut)
def correct_hkid(
    patient_id: Annotated[PatientId, Path()],
    body: CorrectHkidBody,
    who: CurrentPrincipal,
    index: Index,
) -> IndexChangeOut:
    return _change(*index.correct_hkid(who, patient_id, hkid=body.hkid, reason=body.reason))
