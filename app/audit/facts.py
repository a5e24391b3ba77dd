"""Coded facts: the closed vocabulary an audit event may state beyond who, what and which.

A ledger entry says who did what to which resource, when, and why it was allowed. The
pilot metrics (``app/metrics``) need a few more facts, and they must come from the
ledger itself so that they are as verifiable as the log: which referral transition an
entry records, at what urgency, to which institution and department; which consultation
group a message went to and from which department. This module is the one place where
those facts are defined, for the domains that state them (referrals, messaging), the
ledger that records them and the metrics that read them.

Guarantees:

- **Closed vocabulary.** Only the keys of :class:`FactKey` exist, each with its own
  validator; :func:`validate_facts` refuses any other key and any value its validator
  does not accept, naming the key and never the value.
- **Codes only, never content.** Every value is an enum member or an identifier token
  (lower-case letters, digits, ``-``/``_``/``.``/``:``; no spaces, at most 64
  characters), so no free text, name or patient identifier can be stated as a fact.
  Patients never appear in facts at all (the entry's ``patient_ref`` is the only place).

The operations (:class:`Operation`) and the facts each one carries are the contract
between the domains and the metrics. The message contract, for the messaging domain
(issue 13) to emit one entry per message sent into a consultation group's room::

    AuditEvent(action="SendMessage", resource="Message::<hub message id>",
               patient_ref=<the group's patient reference>,
               facts={"op": "message.send", "group": <group id>,
                      "department": department_code(sender.specialties),
                      "phase": str(settings.phase)})

with the sender as actor (``sub``, registration number, institution) and the entry's
time as the send time. Never the message text, never the Matrix event id (``$...``
does not fit an identifier and is not needed): the metrics need only the group, the
sender's institution and department, and the time.

Messaging states two more operations (``app/messaging/audit.py``): ``room.membership``
(a membership change in a group's room: ``membership`` is the new state, ``member`` the
registration number of the doctor it concerns) and ``media.upload`` (a file uploaded to
the homeserver's media repository; it is end-to-end encrypted, so the hub knows only
who uploaded how much, when).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from enum import StrEnum

MAX_FACTS = 10
_CODE = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,63}$")
# Same shape as the ledger's institution ids (infra.stage cohort ids).
_INSTITUTION = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")
# System-generated identifiers (group ids are UUID hex).
_IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_PHASE = re.compile(r"^[1-9]$")
_DEPARTMENT = re.compile(r"^[a-z][a-z0-9-]{1,63}$")
# app.identity.registration.REG_NO_PATTERN (a doctor's Medical Council number).
_REG_NO = re.compile(r"^[A-Z]{1,2}\d{4,6}$")
_SLUG_DROP = re.compile(r"[^a-z0-9]+")


class Operation(StrEnum):
    """What an entry records, finer than the ledger's action verb."""

    REFERRAL_SEND = "referral.send"
    REFERRAL_ACCEPT = "referral.accept"
    REFERRAL_DECLINE = "referral.decline"
    REFERRAL_REDIRECT = "referral.redirect"
    REFERRAL_CANCEL = "referral.cancel"
    REFERRAL_COMPLETE = "referral.complete"
    MESSAGE_SEND = "message.send"
    # The patient index (issue 20): which change an entry records (never whose HKID/MRN).
    PATIENT_REGISTER = "patient_index.register"
    PATIENT_LINK_MRN = "patient_index.link_mrn"
    PATIENT_UNLINK_MRN = "patient_index.unlink_mrn"
    PATIENT_CORRECT_LINK = "patient_index.correct_mrn_link"
    PATIENT_CORRECT_HKID = "patient_index.correct_hkid"
    ROOM_MEMBERSHIP = "room.membership"
    MEDIA_UPLOAD = "media.upload"
    # Sharing consent (issue 20): a consent recorded or withdrawn.
    CONSENT_GRANT = "consent.grant"
    CONSENT_WITHDRAW = "consent.withdraw"


class RoomMembership(StrEnum):
    """A Matrix membership state (client-server API ``m.room.member``)."""

    INVITE = "invite"
    JOIN = "join"
    LEAVE = "leave"
    BAN = "ban"
    KNOCK = "knock"


class ConsentOverride(StrEnum):
    """Why an access the patient's sharing consent did not cover was allowed (flagged)."""

    BREAK_GLASS = "break_glass"
    EMERGENCY_REFERRAL = "emergency_referral"


class Urgency(StrEnum):
    EMERGENCY = "emergency"
    URGENT = "urgent"
    ROUTINE = "routine"


class LegalBasis(StrEnum):
    """Under which basis patient data is disclosed to the receiving side (Cap. 486)."""

    # Referral for the patient's care, directly related to the purpose of collection
    # (DPP3), with the patient informed or consenting.
    REFERRAL_FOR_CARE = "referral_for_care"
    # Emergency: the patient cannot be asked and delay would harm them (s.59 / s.63C).
    EMERGENCY = "emergency"


class FactKey(StrEnum):
    OP = "op"
    URGENCY = "urgency"
    TO_INSTITUTION = "to_institution"
    TO_DEPARTMENT = "to_department"
    DEPARTMENT = "department"
    GROUP = "group"
    PHASE = "phase"
    LEGAL_BASIS = "legal_basis"
    DECLINE_REASON = "decline_reason"
    MEMBERSHIP = "membership"
    MEMBER = "member"
    # Sharing consent: who gave it ("patient" or "substitute"), an SDM's basis (a code of
    # app.consent.model.SubstituteBasis), and an access allowed without consent.
    CONSENT_GIVEN_BY = "consent_given_by"
    SDM_BASIS = "sdm_basis"
    CONSENT_OVERRIDE = "consent_override"


class InvalidFacts(ValueError):
    """A fact that is not in the vocabulary or not a valid code (the message names the key)."""


def _member(values: Iterable[str]) -> Callable[[str], bool]:
    allowed = frozenset(values)
    return lambda value: value in allowed


def _matches(pattern: re.Pattern[str]) -> Callable[[str], bool]:
    return lambda value: bool(pattern.match(value))


_VALIDATORS: dict[FactKey, Callable[[str], bool]] = {
    FactKey.OP: _member(o.value for o in Operation),
    FactKey.URGENCY: _member(u.value for u in Urgency),
    FactKey.TO_INSTITUTION: _matches(_INSTITUTION),
    FactKey.TO_DEPARTMENT: _matches(_DEPARTMENT),
    FactKey.DEPARTMENT: _matches(_DEPARTMENT),
    FactKey.GROUP: _matches(_IDENTIFIER),
    FactKey.PHASE: _matches(_PHASE),
    FactKey.LEGAL_BASIS: _member(b.value for b in LegalBasis),
    FactKey.DECLINE_REASON: _matches(_CODE),
    FactKey.MEMBERSHIP: _member(m.value for m in RoomMembership),
    FactKey.MEMBER: _matches(_REG_NO),
    FactKey.CONSENT_GIVEN_BY: _member(("patient", "substitute")),
    FactKey.SDM_BASIS: _matches(_CODE),
    FactKey.CONSENT_OVERRIDE: _member(o.value for o in ConsentOverride),
}


def validate_facts(facts: object) -> dict[str, str]:
    """The facts as a plain ``{key: value}`` dict, every key and value checked.

    Raises:
        InvalidFacts: a key outside the vocabulary, a value its key does not accept,
            a non-string, or more than ``MAX_FACTS`` facts.
    """
    if not isinstance(facts, Mapping):
        raise InvalidFacts("facts must be an object of codes")
    if len(facts) > MAX_FACTS:
        raise InvalidFacts(f"at most {MAX_FACTS} facts")
    out: dict[str, str] = {}
    for key, value in facts.items():
        try:
            known = FactKey(key)
        except ValueError:
            raise InvalidFacts("facts has a key outside the vocabulary") from None
        if not isinstance(value, str) or not _VALIDATORS[known](value):
            raise InvalidFacts(f"facts.{known.value} is not a valid code")
        out[known.value] = value
    return out


def department_code(specialties: Iterable[str]) -> str:
    """A clinician's department as a fact: their first registered specialty as a slug
    (``"Clinical Oncology"`` -> ``"clinical-oncology"``), ``"general"`` without one.

    The Medical Council's specialist register is the only authoritative source of a
    doctor's field the hub has; departments inside an institution are not modelled.
    """
    for specialty in specialties:
        slug = _SLUG_DROP.sub("-", specialty.strip().lower()).strip("-")[:64]
        if len(slug) >= 2 and slug[0].isalpha():
            return slug
    return "general"
