"""HTTP routes for referrals. Thin: parse, call the service, shape the answer.

The FHIR export and the letter carry the clinical question: they are answered only to
a caller Cedar allowed to view the referral, with ``Cache-Control: no-store``, and
nothing of them is logged.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse

from app.access.auth import CurrentPrincipal
from app.audit.schemas import Receipt
from app.errors import HubError
from app.referrals.lifecycle import PatientNotice
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


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ReferralResult)
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


@router.get("", response_model=ReferralList)
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


@router.get("/{referral_id}", response_model=ReferralDetail)
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
    responses={200: {"content": {"application/fhir+json": {}}}},
    response_class=JSONResponse,
)
def referral_fhir(
    referral_id: ReferralId, who: CurrentPrincipal, referrals: Referrals
) -> JSONResponse:
    bundle, _ = referrals.fhir(who, referral_id)
    return JSONResponse(bundle, media_type="application/fhir+json", headers=NO_STORE)


@router.get(
    "/{referral_id}/letter",
    responses={200: {"content": {"application/pdf": {}}}},
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


@router.post("/{referral_id}/accept", response_model=ReferralResult)
def accept_referral(
    referral_id: ReferralId, who: CurrentPrincipal, referrals: Referrals
) -> ReferralResult:
    return ReferralResult.with_receipt(*referrals.accept(who, referral_id))


@router.post("/{referral_id}/decline", response_model=ReferralResult)
def decline_referral(
    referral_id: ReferralId, body: DeclineBody, who: CurrentPrincipal, referrals: Referrals
) -> ReferralResult:
    return ReferralResult.with_receipt(*referrals.decline(who, referral_id, body.reason, body.note))


@router.post("/{referral_id}/redirect", response_model=ReferralResult)
def redirect_referral(
    referral_id: ReferralId, body: RedirectBody, who: CurrentPrincipal, referrals: Referrals
) -> ReferralResult:
    return ReferralResult.with_receipt(*referrals.redirect(who, referral_id, body.target.target()))


@router.post("/{referral_id}/cancel", response_model=ReferralResult)
def cancel_referral(
    referral_id: ReferralId, who: CurrentPrincipal, referrals: Referrals
) -> ReferralResult:
    return ReferralResult.with_receipt(*referrals.cancel(who, referral_id))


@router.post("/{referral_id}/complete", response_model=ReferralResult)
def complete_referral(
    referral_id: ReferralId, who: CurrentPrincipal, referrals: Referrals
) -> ReferralResult:
    return ReferralResult.with_receipt(*referrals.complete(who, referral_id))
