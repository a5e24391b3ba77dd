"""HTTP routes for break-glass grants. Thin: parse, call the service, shape the answer.

They keep the ``access`` tag they were published under, so the OpenAPI document is
unchanged by break-glass becoming its own package.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, status

from app.access.auth import ACCESS_DENIED, CurrentPrincipal, Gate
from app.audit.events import AuditReceipt
from app.audit.schemas import Receipt
from app.breakglass.grants import BreakGlassGrant
from app.breakglass.schemas import BreakGlassBody, BreakGlassOut
from app.breakglass.service import BreakGlassService
from app.errors import Conflict, NotFound
from app.openapi import errors
from app.wiring import provided

router = APIRouter(tags=["access"])

BreakGlass = Annotated[BreakGlassService, Depends(provided(BreakGlassService))]


def _out(grant: BreakGlassGrant, now_live: bool, receipt: AuditReceipt | None) -> BreakGlassOut:
    return BreakGlassOut(
        grant_id=grant.grant_id,
        patient_id=grant.patient_id,
        started_at=grant.started_at,
        expires_at=grant.expires_at,
        ended_at=grant.ended_at,
        live=now_live,
        audit_receipt=Receipt.of(receipt),
    )


# Grant ids are the service's own (uuid4 hex); anything else is a 422.
GrantId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]


@router.post(
    "/break-glass",
    status_code=status.HTTP_201_CREATED,
    response_model=BreakGlassOut,
    responses=errors(ACCESS_DENIED),
)
def start_break_glass(
    body: BreakGlassBody, who: CurrentPrincipal, break_glass: BreakGlass
) -> BreakGlassOut:
    grant, receipt = break_glass.start(who, body.patient_id, body.justification, body.minutes)
    return _out(grant, True, receipt)


@router.get("/break-glass", response_model=list[BreakGlassOut])
def list_break_glass(
    who: CurrentPrincipal, gate: Gate, break_glass: BreakGlass
) -> list[BreakGlassOut]:
    gate.record(gate.check_break_glass_listing(who))
    now = break_glass.now()
    return [_out(g, g.live(now), None) for g in break_glass.grants(who.reg_no or "")]


@router.post(
    "/break-glass/{grant_id}/end",
    response_model=BreakGlassOut,
    responses=errors(
        NotFound, ACCESS_DENIED, Conflict("The grant has already ended.", code="grant_not_live")
    ),
)
def end_break_glass(
    grant_id: GrantId, who: CurrentPrincipal, break_glass: BreakGlass
) -> BreakGlassOut:
    grant, receipt = break_glass.end(who, grant_id)
    return _out(grant, False, receipt)
