"""HTTP routes for break-glass grants and the caller's own profile."""

from __future__ import annotations

from fastapi import APIRouter, status

from app.access.breakglass import BreakGlassGrant
from app.audit.events import AuditReceipt
from app.dependencies import CurrentPrincipal, ServicesDep
from app.groups.schemas import BreakGlassBody, BreakGlassOut, MeOut, Receipt

router = APIRouter(tags=["access"])


def _out(grant: BreakGlassGrant, now_live: bool, receipt: AuditReceipt | None) -> BreakGlassOut:
    return BreakGlassOut(
        grant_id=grant.grant_id,
        patient_id=grant.patient_id,
        started_at=grant.started_at,
        expires_at=grant.expires_at,
        ended_at=grant.ended_at,
        live=now_live,
        audit_receipt=Receipt.of(receipt) if receipt else None,
    )


@router.get("/me", response_model=MeOut)
def me(who: CurrentPrincipal, svc: ServicesDep) -> MeOut:
    svc.gate.record(svc.gate.check_profile(who))
    return MeOut(
        sub=who.sub,
        username=who.username,
        reg_no=who.reg_no,
        institution=who.institution,
        roles=sorted(who.roles),
        specialties=list(who.specialties),
        phase=svc.settings.phase,
    )


@router.post("/break-glass", status_code=status.HTTP_201_CREATED, response_model=BreakGlassOut)
def start_break_glass(
    body: BreakGlassBody, who: CurrentPrincipal, svc: ServicesDep
) -> BreakGlassOut:
    grant, receipt = svc.break_glass.start(who, body.patient_id, body.justification, body.minutes)
    return _out(grant, True, receipt)


@router.get("/break-glass", response_model=list[BreakGlassOut])
def list_break_glass(who: CurrentPrincipal, svc: ServicesDep) -> list[BreakGlassOut]:
    svc.gate.record(svc.gate.check_break_glass_listing(who))
    now = svc.break_glass.now()
    return [_out(g, g.live(now), None) for g in svc.break_glass.grants(who.reg_no or "")]


@router.post("/break-glass/{grant_id}/end", response_model=BreakGlassOut)
def end_break_glass(grant_id: str, who: CurrentPrincipal, svc: ServicesDep) -> BreakGlassOut:
    grant, receipt = svc.break_glass.end(who, grant_id)
    return _out(grant, False, receipt)
