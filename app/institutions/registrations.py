"""Self-registration with proof (phase 3): what an application is and when it matches.

An applicant signs up natively (no granting attribute can be written), then claims a
registration number and a clinic through ``POST /registrations``. The claim is accepted
as *pending* only when the name given matches the register entry of that number and the
entry is active; the account then has no access at all until an admin of the claimed
clinic (a platform admin, for a clinic the hub has not admitted yet) approves it::

    (none) --submit--> pending --approve--> active
                          |
                          +----reject----> rejected --submit--> pending ...

Matching the public register proves little on its own (anyone can read it); the approval
by someone who knows the clinic's doctors is the proof. See docs/identity.md for the
threat model. Everything here is pure: storage and time stay outside.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum

_SEPARATORS = re.compile(r"[\s,.\-'\u2019()]+")
# The synthetic register marks every English name; an applicant may leave the marker out.
_SYNTHETIC_MARK = "(synthetic)"


class RejectionReason(StrEnum):
    """Why a reviewer rejected an application: codes only (free text could hold names)."""

    IDENTITY_NOT_CONFIRMED = "identity_not_confirmed"
    NOT_PRACTISING_HERE = "not_practising_here"
    DUPLICATE = "duplicate"
    OTHER = "other"


@dataclass(frozen=True)
class PendingRegistration:
    """An application awaiting its reviewer (the ``PENDING`` queue item)."""

    registration_id: str
    sub: str
    reg_no: str
    institution: str
    submitted_at: str
    new_institution_name: str | None = None

    @property
    def new_institution(self) -> bool:
        return self.new_institution_name is not None


def _tokens(name: str) -> Counter[str]:
    text = unicodedata.normalize("NFKC", name).casefold().replace(_SYNTHETIC_MARK, " ")
    if any("\u4e00" <= ch <= "\u9fff" for ch in text):
        # Chinese names are compared character by character, spaces ignored.
        return Counter(ch for ch in text if not ch.isspace())
    return Counter(t for t in _SEPARATORS.split(text) if t)


def name_matches(given: str, *register_names: str) -> bool:
    """Whether ``given`` is the register's English or Chinese name of the practitioner.

    Case, punctuation, hyphens and the order of the name's parts are ignored ("CHAN Tai
    Man", "Tai-man Chan" and "Chan, Tai Man" are the same name); nothing else is.
    """
    wanted = _tokens(given)
    if not wanted:
        return False
    return any(wanted == _tokens(n) for n in register_names if n)
