"""HTTP route for the caller's own profile."""

from __future__ import annotations

from fastapi import APIRouter

from app.access.auth import CurrentPrincipal, Gate
from app.access.schemas import MeOut

router = APIRouter(tags=["access"])


@router.get("/me", response_model=MeOut)  # 401/403: CurrentPrincipal and Gate declare them
def me(
    who: CurrentPrincipal,
    gate: Gate,
) -> MeOut:
    """The caller as the hub sees them now; ``phase`` is their institution's."""
    gate.record(gate.check_profile(who))
    return MeOut(
        sub=who.sub,
        username=who.username,
        reg_no=who.reg_no,
        institution=who.institution,
        roles=sorted(who.roles),
        specialties=list(who.specialties),
        phase=who.phase,
    )
