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


def group_entity(
    group: ConsultationGroup,
    memberships: Iterable[Membership],
    *,
    slice_for: Iterable[str] | None = None,
) -> dict[str, Any]:
    """The group as Cedar sees it: status, owner, patient reference, and who holds which
    relationship (``leads``, ``members`` = active, ``invited``).

    ``slice_for`` (registration numbers: the principal and any target) keeps only those
    doctors in the relationship sets. The policies only ever ask whether the principal
    (or the target) is in a set, so a sliced entity decides exactly as the full one does
    (a property test checks this), while the entity stays the same size however large
    the group grows: Cedar's "entity slicing" practice.
    """
    keep = None if slice_for is None else {r for r in slice_for if r}
    members: list[str] = []
    leads: list[str] = []
    invited: list[str] = []
    for m in memberships:
        if keep is not None and m.reg_no not in keep:
            continue
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


# The group a record request names in ``context.via``/``context.target`` when there is
# none: it has no members and no patient, so no policy can match through it.
NO_GROUP_ID = "(none)"


def no_group_entity() -> dict[str, Any]:
    return {
        "uid": uid("Group", NO_GROUP_ID),
        "attrs": {
            "institution": "",
            "status": "none",
            "patient": "",
            "leads": [],
            "members": [],
            "invited": [],
        },
        "parents": [],
    }


def record_entity(
    record_id: str,
    *,
    institution: str,
    patient_ref: str,
    author_reg_no: str,
    shared_groups: Iterable[str],
) -> dict[str, Any]:
    """A record as Cedar sees it: owning institution, patient reference, author, and the
    groups it is shared into (as just read)."""
    return {
        "uid": uid("Record", record_id),
        "attrs": {
            "institution": institution,
            "patient": patient_ref,
            "author": author_reg_no,
            "shared_groups": [{"__entity": uid("Group", g)} for g in sorted(set(shared_groups))],
        },
        "parents": [],
    }
