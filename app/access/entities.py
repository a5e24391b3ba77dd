"""Cedar entities for one request, built from freshly read state.

Nothing here caches: each function turns the principal, the group and its memberships
as just read (strongly consistent) into Cedar's JSON entity form. A membership that
ended one request ago is simply absent from ``members``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from app.groups.membership import ConsultationGroup, MemberRole, Membership, MembershipState
from app.identity.principal import Principal


def uid(kind: str, ident: str) -> dict[str, str]:
    return {"type": f"Hub::{kind}", "id": ident}


def principal_entity(principal: Principal) -> dict[str, Any]:
    return {
        "uid": uid("User", principal.sub),
        "attrs": {
            "reg_no": principal.reg_no or "",
            "institution": principal.institution,
            "roles": sorted(principal.roles),
            "clinical": principal.clinical and principal.reg_no is not None,
            # Registration was checked at authentication; a clinician without a number
            # never gets here, but the forbid holds even if that check were skipped.
            "registration_ok": principal.reg_no is not None or not principal.clinical,
        },
        "parents": [uid("Institution", principal.institution)],
    }


def institution_entity(institution: str) -> dict[str, Any]:
    return {"uid": uid("Institution", institution), "attrs": {}, "parents": []}


def group_entity(group: ConsultationGroup, memberships: Iterable[Membership]) -> dict[str, Any]:
    members: list[str] = []
    leads: list[str] = []
    invited: list[str] = []
    for m in memberships:
        if m.state is MembershipState.ACTIVE:
            members.append(m.reg_no)
            if m.role is MemberRole.LEAD:
                leads.append(m.reg_no)
        elif m.state is MembershipState.INVITED:
            invited.append(m.reg_no)
    return {
        "uid": uid("Group", group.group_id),
        "attrs": {
            "institution": group.institution,
            "status": group.status.value,
            "patient": group.patient_ref,
            "leads": sorted(leads),
            "members": sorted(members),
            "invited": sorted(invited),
        },
        "parents": [],
    }


def simple_entity(kind: str, ident: str) -> dict[str, Any]:
    return {"uid": uid(kind, ident), "attrs": {}, "parents": []}
