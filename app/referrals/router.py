"""HTTP routes for referrals. Thin: parse, call the service, shape the answer.

The FHIR export and the letter carry the clinical question: they are answered only to
a caller Cedar allowed to view the referral, with ``Cache-Control: no-store``, and
nothing of them is logged.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse

from app.access.auth import ACCESS_DENIED, CurrentPrincipal
from app.access.gate import consent_required
from app.audit.schemas import Receipt
from app.errors import Conflict, HubError, InvalidRequest, NotFound
from app.openapi import dependency_errors, errors
from app.patients.index import UnknownPatient
from app.records.errors import RecordIntegrityError, RecordsNotConfigured
from app.referrals.lifecycle import PatientNotice, ReferralStatus
from app.referrals.schemas import (
    DeclineBody,
    HistoryOut,
    RedirectBody,
    ReferralDetail,
    ReferralList,
    ReferralOut,
    ReferralResult,
    SendReferralBody,
)
from app.referrals.service import ReferralRequest, ReferralService
from app.wiring import NotProvided, provided

router = APIRouter(prefix="/referrals", tags=["referrals"])

ReferralId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
NO_STORE = {"Cache-Control": "no-store"}
NO_STORE_HEADER = {
    "Cache-Control": {
        "description": "Always `no-store`: the answer carries the clinical question.",
        "schema": {"type": "string"},
    }
}


class FhirJSONResponse(JSONResponse):
    media_type = "application/fhir+json"


class ReferralsNotConfigured(HubError):
    status_code = 503
    code = "referrals_not_configured"
    message = "Referrals need the records key (HUB_RECORDS_KEY_ARN) in this deployment."


def _service(request: Request) -> ReferralService:
    try:
        return provided(ReferralService)(request)
    except NotProvided:
        raise ReferralsNotConfigured() from None


Referrals = Annotated[ReferralService, Depends(_service)]
dependency_errors(_service, ReferralsNotConfigured)

# What the referral service refuses (app/referrals/service.py and lifecycle.py).
NO_REFERRAL = NotFound("No such referral.")
CHANGED = Conflict("The referral changed meanwhile; retry.", code="concurrent_change")
READ = errors(NO_REFERRAL, ACCESS_DENIED, RecordIntegrityError)
TRANSITION = (
    NO_REFERRAL,
    ACCESS_DENIED,
    CHANGED,
    *(Conflict(code=f"referral_{s.value}") for s in ReferralStatus),
)
SEND = errors(
    ACCESS_DENIED,
    consent_required("referral-needs-consent-for-the-institution-addressed"),
    UnknownPatient,
    NotFound("No such group."),
    NotFound("No such record."),
    InvalidRequest("The target institution is not admitted.", code="institution_not_admitted"),
    InvalidRequest(
        "The named doctor is not at that institution.", code="practitioner_not_at_institution"
    ),
    InvalidRequest("A referral needs its legal basis.", code="legal_basis_required"),
    Conflict(code="legal_basis_incomplete"),
    Conflict(code="group_closed"),
    CHANGED,
    RecordsNotConfigured,
)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ReferralResult, responses=SEND)
def send_referral(
    body: SendReferralBody, who: CurrentPrincipal, referrals: Referrals
) -> ReferralResult:
    referral, receipt = referrals.send(
        who,
        ReferralRequest(
            patient_id=body.patient_id,
            target=body.target.target(),
            urgency=body.urgency,
            question=body.clinical_question,
            legal_basis=body.legal_basis.basis if body.legal_basis else None,
            patient_notice=body.legal_basis.patient if body.legal_basis else PatientNotice.NONE,
            group_id=body.group_id,
            attachments=tuple(body.attachments),
        ),
    )
    return ReferralResult.with_receipt(referral, receipt)


@router.get("", response_model=ReferralList, responses=errors(ACCESS_DENIED))
def list_referrals(
    who: CurrentPrincipal,
    referrals: Referrals,
    box: Literal["incoming", "outgoing"] = "incoming",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ReferralList:
    found, receipt = referrals.listing(who, box, limit)
    return ReferralList(
        referrals=[ReferralOut.of(r) for r in found], audit_receipt=Receipt.of(receipt)
    )


@router.get(
    "/{referral_id}",
    response_model=ReferralDetail,
    responses={**READ, 200: {"headers": NO_STORE_HEADER}},
)
def get_referral(
    referral_id: ReferralId, who: CurrentPrincipal, referrals: Referrals, response: Response
) -> ReferralDetail:
    view, receipt = referrals.get(who, referral_id)
    response.headers.update(NO_STORE)
    return ReferralDetail(
        **ReferralOut.fields_of(view.referral),
        audit_receipt=Receipt.of(receipt),
        clinical_question=view.question,
        history=[HistoryOut(**h) for h in view.history],
    )


@router.get(
    "/{referral_id}/fhir",
    responses={
        **READ,
        200: {
            "description": "A FHIR R4B Bundle: the ServiceRequest and its Task.",
            "content": {
                "application/fhir+json": {
                    "example": {"resourceType": "Bundle", "type": "collection", "entry": []}
                }
            },
            "headers": NO_STORE_HEADER,
        },
    },
    response_class=FhirJSONResponse,
)
def referral_fhir(
    referral_id: ReferralId, who: CurrentPrincipal, referrals: Referrals
) -> FhirJSONResponse:
    bundle, _ = referrals.fhir(who, referral_id)
    return FhirJSONResponse(bundle, headers=NO_STORE)


@router.get(
    "/{referral_id}/letter",
    responses={
        **READ,
        200: {
            "description": "The referral letter (PDF). Behind API Gateway, ask for it with "
            "`Accept: application/pdf` to receive bytes.",
            "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
            "headers": {
                **NO_STORE_HEADER,
                "Content-Disposition": {
                    "description": 'attachment; filename="referral-<id>.pdf"',
                    "schema": {"type": "string"},
                },
            },
        },
    },
    response_class=Response,
)
def referral_letter(
    referral_id: ReferralId, who: CurrentPrincipal, referrals: Referrals
) -> Response:
    pdf, _ = referrals.letter(who, referral_id)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            **NO_STORE,
            "Content-Disposition": f'attachment; filename="referral-{referral_id}.pdf"',
        },
    )


@router.post("/{referral_id}/accept", response_model=ReferralResult, responses=errors(*TRANSITION))
def accept_referral(
    referral_id: ReferralId, who: CurrentPrincipal, referrals: Referrals
) -> ReferralResult:
    return ReferralResult.with_receipt(*referrals.accept(who, referral_id))


@router.post("/{referral_id}/decline", response_model=ReferralResult, responses=errors(*TRANSITION))
def decline_referral(
    referral_id: ReferralId, body: DeclineBody, who: CurrentPrincipal, referrals: Referrals
) -> ReferralResult:
    return ReferralResult.with_receipt(*referrals.decline(who, referral_id, body.reason, body.note))


@router.post(
    "/{referral_id}/redirect",
    response_model=ReferralResult,
    responses=errors(
        *TRANSITION,
        Conflict(code="redirect_to_same_target"),
        InvalidRequest("The target institution is not admitted.", code="institution_not_admitted"),
        InvalidRequest(
            "The named doctor is not at that institution.",
            code="practitioner_not_at_institution",
        ),
    ),
)
def redirect_referral(
    referral_id: ReferralId, body: RedirectBody, who: CurrentPrincipal, referrals: Referrals
) -> ReferralResult:
    return ReferralResult.with_receipt(*referrals.redirect(who, referral_id, body.target.target()))


@router.post("/{referral_id}/cancel", response_model=ReferralResult, responses=errors(*TRANSITION))
def cancel_referral(
    referral_id: ReferralId, who: CurrentPrincipal, referrals: Referrals
) -> ReferralResult:
    return ReferralResult.with_receipt(*referrals.cancel(who, referral_id))


@router.post(
    "/{referral_id}/complete", response_model=ReferralResult, responses=errors(*TRANSITION)
)
def complete_referral(
    referral_id: ReferralId, who: CurrentPrincipal, referrals: Referrals
) -> ReferralResult:
    return ReferralResult.with_receipt(*referrals.complete(who, referral_id))
