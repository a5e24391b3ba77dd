"""HTTP route of community-care intake. Thin: authenticate the system, read the body,
call the service. Only client-credentials tokens with the intake scope reach the handler
(:data:`app.intake.auth.CurrentSystem`); doctors' tokens are refused here, and the
machines' tokens on every other route."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, status
from starlette.concurrency import run_in_threadpool

from app.audit.schemas import Receipt
from app.errors import InvalidRequest
from app.intake.auth import CurrentSystem
from app.intake.schemas import IntakeResult
from app.intake.service import IntakeService
from app.interop import ACCEPTED_MEDIA_TYPES
from app.wiring import provided

router = APIRouter(prefix="/intake", tags=["intake"])

Intake = Annotated[IntakeService, Depends(provided(IntakeService))]


@router.post(
    "/messages",
    status_code=status.HTTP_201_CREATED,
    response_model=IntakeResult,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {t: {"schema": {"type": "string"}} for t in ACCEPTED_MEDIA_TYPES},
        }
    },
)
async def submit_message(
    request: Request,
    system: CurrentSystem,
    intake: Intake,
    content_type: Annotated[str | None, Header()] = None,
) -> IntakeResult:
    """File one HL7 v2 (ADT A01/A04/A08, ORU R01), CDA R2 or FHIR R4/R4B submission
    under the patient it names, for the submitting system's institution."""
    if not content_type:
        raise InvalidRequest(
            "Declare the message's Content-Type (" + ", ".join(ACCEPTED_MEDIA_TYPES) + ").",
            code="content_type_required",
        )
    body = await request.body()
    filed = await run_in_threadpool(intake.submit, system, body, content_type)
    return IntakeResult(
        patient_id=filed.patient_id,
        record_id=filed.record_id,
        source_record_id=filed.source_record_id,
        source_format=filed.source_format,
        mrn_linked=filed.mrn_linked,
        audit_receipt=Receipt.of(filed.receipt),
    )
