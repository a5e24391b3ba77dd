"""A referral as Cedar sees it, built from the state just read.

Nothing here caches: the referral as just read (strongly consistent) becomes Cedar's JSON
entity form. The referral's consultation group travels in the request's context
(``context.group``, the groups domain's entity, sliced to the principal), like a record's
``via`` group, together with the principal's registered specialties and the legal basis
stated for a disclosure.
"""

from __future__ import annotations

from typing import Any

from app.access.entities import uid
from app.referrals.lifecycle import Referral


def referral_entity(r: Referral) -> dict[str, Any]:
    return {
        "uid": uid("Referral", r.referral_id),
        "attrs": {
            "from_institution": r.from_institution,
            "referrer": r.referrer,
            "to_institution": r.target.institution,
            "to_specialty": r.target.specialty,
            "to_practitioner": r.target.practitioner,
            "accepted_by": r.accepted_by,
            "status": r.status.value,
            "urgency": r.urgency.value,
            "patient": r.patient_ref,
        },
        "parents": [],
    }
