"""HTTP route of community-care intake. Thin: authenticate the system, read the body,
call the service. Only client-credentials tokens with the intake scope reach the handler
(:data:`app.intake.auth.CurrentSystem`); doctors' tokens are refused here, and the
machines' tokens on every other route."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response, status
from starlette.concurrency import run_in_threadpool

from app.access.auth import ACCESS_DENIED
from app.audit.schemas import Receipt
from app.content import FhirContentTooLarge
from app.errors import InvalidRequest
from app.intake.auth import CurrentSystem
from app.intake.schemas import CDA_EXAMPLE, FHIR_EXAMPLE, HL7V2_EXAMPLE, IntakeResult
from app.intake.service import IntakeService, idempotency_key_required
from app.interop import (
    ACCEPTED_MEDIA_TYPES,
    InvalidSource,
    Reason,
    SourceFormat,
    SourceTooLarge,
    UnsupportedSource,
    UnsupportedSourceContent,
)
from app.interop.hl7v2 import MAX_HL7_BYTES
from app.openapi import dependency_errors, errors
from app.patients.index import IndexConflict, UnknownPatient
from app.patients.repository import concurrent_change
from app.records import errors as records_errors
from app.records.schemas import IDEMPOTENCY_KEY_PATTERN
from app.wiring import NotProvided, provided

router = APIRouter(prefix="/intake", tags=["intake"])


def _intake_service(request: Request) -> IntakeService:
    """The app's intake service; a deployment without record storage answers 503."""
    try:
        return provided(IntakeService)(request)
    except NotProvided:
        raise records_errors.RecordsNotConfigured() from None


Intake = Annotated[IntakeService, Depends(_intake_service)]
dependency_errors(_intake_service, records_errors.RecordsNotConfigured)


def content_type_required() -> InvalidRequest:
    return InvalidRequest(
        "Declare the message's Content-Type (" + ", ".join(ACCEPTED_MEDIA_TYPES) + ").",
        code="content_type_required",
    )


# What a submission can be refused, as raised (app/interop/errors.py, the patient index,
# the records path). The messages of the adapters name a place, never the input.
SUBMIT = errors(
    ACCESS_DENIED,  # a Cedar deny (guardrails.cedar intake-systems-only-file-records)
    content_type_required(),
    UnsupportedSource(", ".join(ACCEPTED_MEDIA_TYPES)),
    SourceTooLarge(SourceFormat.HL7V2, MAX_HL7_BYTES),
    InvalidSource(SourceFormat.HL7V2, "PID-3", Reason.NO_MRN),
    UnsupportedSourceContent(
        SourceFormat.HL7V2, "the MSH-9 message type", "ADT^A01, ADT^A04, ADT^A08, ORU^R01"
    ),
    UnknownPatient(),
    IndexConflict(
        "identity_mismatch",
        "The message's MRN and HKID name different patients in the index; the "
        "institution's administrators correct the link (POST /patients/mrn-links/correct).",
    ),
    # linking the MRN raced with another change of the index: retry
    IndexConflict("already_linked", "The MRN is already linked to this patient."),
    IndexConflict(
        "mrn_linked_to_another_patient",
        "The MRN is linked to another patient; correct the link with a reason instead.",
    ),
    concurrent_change(),
    FhirContentTooLarge(),
    records_errors.RecordTooLarge("A record version is limited to 4194304 bytes."),
    records_errors.StorageUnavailable(),
    # each message is filed once (app/intake/service.py)
    idempotency_key_required(),
    records_errors.IdempotencyKeyReused(),
)

_EXAMPLES: dict[str, Any] = {
    "application/hl7-v2": {"summary": "HL7 v2.5.1 ADT^A04 (synthetic)", "value": HL7V2_EXAMPLE},
    "application/cda+xml": {"summary": "CDA R2 referral letter (synthetic)", "value": CDA_EXAMPLE},
    "application/fhir+json": {
        "summary": "FHIR R4 Bundle (synthetic; Content-Type application/fhir+json; "
        "fhirVersion=4.0)",
        "value": json.dumps(FHIR_EXAMPLE, indent=2),
    },
}
_ALIASES = {
    "x-application/hl7-v2+er7": "application/hl7-v2",
    "application/xml": "application/cda+xml",
    "text/xml": "application/cda+xml",
}
_REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The message exactly as the clinic system produced it (HL7 v2 ADT "
        "A01/A04/A08 or ORU R01, CDA R2, FHIR R4/R4B JSON), its Content-Type naming the "
        "format. Not JSON-wrapped.",
        "content": {
            t: {
                "schema": {"type": "string"},
                "examples": {"synthetic": _EXAMPLES[_ALIASES.get(t, t)]},
            }
            for t in ACCEPTED_MEDIA_TYPES
        },
    }
}

ContentType = Annotated[
    str | None,
    Header(
        description="The message's media type: " + ", ".join(ACCEPTED_MEDIA_TYPES) + " (FHIR "
        "takes `fhirVersion=4.0` for R4, `4.3` or none for R4B). It chooses the adapter; "
        "anything else is 415, none 422 `content_type_required`.",
    ),
]

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="Only for a message that carries no identifier of its own (HL7 v2 "
        "MSH-10, CDA ClinicalDocument/id, FHIR Bundle.identifier or id with "
        "meta.versionId), and then required: the key the submission is filed once under. "
        "A message's own identifier always takes precedence.",
    ),
]
REPLAYED = {
    "Idempotent-Replayed": {
        "description": "`true` when this answers a repeat of a message already filed "
        "(same client, same message identifier, same bytes): the first filing's ids, "
        "nothing filed again.",
        "schema": {"type": "string", "enum": ["true"]},
    }
}


@router.post(
    "/messages",
    status_code=status.HTTP_201_CREATED,
    response_model=IntakeResult,
    openapi_extra=_REQUEST_BODY,
    responses={**SUBMIT, 201: {"headers": REPLAYED}},
)
async def submit_message(
    request: Request,
    response: Response,
    system: CurrentSystem,
    intake: Intake,
    content_type: ContentType = None,
    idempotency_key: IdempotencyKey = None,
) -> IntakeResult:
    """File one HL7 v2 (ADT A01/A04/A08, ORU R01), CDA R2 or FHIR R4/R4B submission
    under the patient it names, for the submitting system's institution.

    Machine to machine: the caller is a clinic management system with an OAuth 2.0
    client-credentials token carrying `hub-intake/records.write` (security scheme
    `IntakeClientCredentials`), never a doctor's token. Answers 201 with the two records
    filed: the canonical FHIR R4B bundle and the source as received (docs/interop.md).

    Each message is filed once per client: a repeat (a retry after a timeout) answers 201
    with the first filing's ids and `Idempotent-Replayed: true` (`mrn_linked` false, no
    receipt: nothing was filed or linked by it); another message under the same
    identifier is 409 `idempotency_key_reused`."""
    if not content_type:
        raise content_type_required()
    body = await request.body()
    filed = await run_in_threadpool(intake.submit, system, body, content_type, idempotency_key)
    if filed.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return IntakeResult(
        patient_id=filed.patient_id,
        record_id=filed.record_id,
        source_record_id=filed.source_record_id,
        source_format=filed.source_format,
        mrn_linked=filed.mrn_linked,
        audit_receipt=Receipt.of(filed.receipt),
    )
