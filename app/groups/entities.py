"""A consultation group as Cedar sees it, built from the state just read.

Nothing here caches: the group and its memberships as just read (strongly consistent)
become Cedar's JSON entity form, so a membership that ended one request ago is simply
absent from ``members``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from app.access.entities import uid
from app.groups.membership import ConsultationGroup, MemberRole, Membership, MembershipState


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
