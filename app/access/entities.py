"""Cedar entities for one request, built from freshly read state.

Nothing here caches: each function turns the principal, a record or an institution as
just read (strongly consistent) into Cedar's JSON entity form. A group's entity is the
groups domain's (:func:`app.groups.entities.group_entity`); the empty group that stands
in when a record request names none is here, because no group exists behind it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

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
