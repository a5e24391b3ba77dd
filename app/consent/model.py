"""Sharing consent: which institutions may see a patient's shared records, and until when.

Modelled on eHRSS's sharing consent. A patient, or a substitute decision maker (SDM) on
the patient's behalf with the basis recorded, consents to sharing with one named
institution, either indefinitely or until a time; and can withdraw it. One
:class:`SharingConsent` covers one institution (consenting to several institutions gives
several consents, so each can be withdrawn on its own, as eHRSS does per provider).

Semantics (``at`` is the time of the request being decided)::

    in force at t  <=>  given_at <= t
                        and (valid_until is None or t < valid_until)     # expiry
                        and (withdrawn_at is None or t < withdrawn_at)   # withdrawal

    consent_allows(book, patient_ref, institution, t)
        <=> some consent for (patient_ref, institution) is in force at t

Withdrawal takes effect at its own time: the next request decided at or after it is
refused (like leaving a consultation group), while a question about an earlier time still
gets the answer that held then, so audits can be replayed. Expiry needs no event. Nothing
is deleted: a withdrawn consent keeps its dates and who recorded and withdrew it.

Substitute decision makers: the basis is one of :class:`SubstituteBasis`; the
relationships each basis admits are the hub's rule (:data:`ALLOWED_RELATIONSHIPS`),
written after eHRSS's arrangements for minors and for patients who cannot consent, and to
be confirmed by the privacy officer. The SDM is recorded only as a keyed reference
(``sdm_ref``, e.g. the index's HKID reference of the SDM), never a name or an HKID.

Pure code: no storage and no clock; every time is passed in and must be timezone-aware.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from app.errors import Conflict, InvalidRequest
from app.interop.systems import valid_institution


class SubstituteBasis(StrEnum):
    """Why someone else consents for the patient."""

    MINOR = "minor"  # under 16
    MENTALLY_INCAPACITATED = "mentally_incapacitated"  # Mental Health Ordinance (Cap. 136)
    INCAPABLE_OF_CONSENTING = "incapable_of_consenting"  # otherwise unable to give consent


class SdmRelationship(StrEnum):
    PARENT = "parent"
    GUARDIAN = "guardian"  # a guardian of a minor, or one appointed under Cap. 136
    FAMILY_MEMBER = "family_member"
    DIRECTOR_OF_SOCIAL_WELFARE = "director_of_social_welfare"


ALLOWED_RELATIONSHIPS: dict[SubstituteBasis, frozenset[SdmRelationship]] = {
    SubstituteBasis.MINOR: frozenset(
        {
            SdmRelationship.PARENT,
            SdmRelationship.GUARDIAN,
            SdmRelationship.DIRECTOR_OF_SOCIAL_WELFARE,
        }
    ),
    SubstituteBasis.MENTALLY_INCAPACITATED: frozenset(
        {
            SdmRelationship.GUARDIAN,
            SdmRelationship.FAMILY_MEMBER,
            SdmRelationship.DIRECTOR_OF_SOCIAL_WELFARE,
        }
    ),
    SubstituteBasis.INCAPABLE_OF_CONSENTING: frozenset(
        {SdmRelationship.GUARDIAN, SdmRelationship.FAMILY_MEMBER}
    ),
}


class ConsentState(StrEnum):
    NOT_YET_VALID = "not_yet_valid"
    IN_FORCE = "in_force"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"


class InvalidConsent(InvalidRequest):
    """A consent that cannot be recorded as given (422, fixed message)."""

    code = "invalid_consent"


class ConsentConflict(Conflict):
    """A change the consent's state does not allow (409)."""

    def __init__(self, code: str, message: str):
        super().__init__(message, code=code)


@dataclass(frozen=True)
class SubstituteDecisionMaker:
    """Who consented for the patient: a keyed reference, the relationship and the basis."""

    sdm_ref: str
    relationship: SdmRelationship
    basis: SubstituteBasis


@dataclass(frozen=True)
class SharingConsent:
    """One patient's consent to sharing with one institution."""

    consent_id: str
    patient_ref: str
    institution: str
    given_at: datetime
    valid_until: datetime | None  # None: indefinite
    recorded_by: str
    given_by: SubstituteDecisionMaker | None = None  # None: the patient
    withdrawn_at: datetime | None = None
    withdrawn_by: str | None = None
    withdrawn_via: SubstituteDecisionMaker | None = None  # None: the patient (if withdrawn)

    @property
    def indefinite(self) -> bool:
        return self.valid_until is None

    def state_at(self, at: datetime) -> ConsentState:
        _aware(at)
        if self.withdrawn_at is not None and at >= self.withdrawn_at:
            return ConsentState.WITHDRAWN
        if at < self.given_at:
            return ConsentState.NOT_YET_VALID
        if self.valid_until is not None and at >= self.valid_until:
            return ConsentState.EXPIRED
        return ConsentState.IN_FORCE

    def in_force(self, at: datetime) -> bool:
        return self.state_at(at) is ConsentState.IN_FORCE


def give_consent(
    *,
    consent_id: str,
    patient_ref: str,
    institution: str,
    given_at: datetime,
    valid_until: datetime | None,
    recorded_by: str,
    given_by: SubstituteDecisionMaker | None = None,
) -> SharingConsent:
    """Record a consent as given by the patient (``given_by=None``) or by an SDM.

    Raises:
        InvalidConsent: an empty id/patient/recorder, an institution id that is not a
            token, a naive time, ``valid_until`` not after ``given_at``, or an SDM whose
            relationship the basis does not admit.
    """
    if not consent_id or not patient_ref or not recorded_by:
        raise InvalidConsent("A consent needs its id, the patient and who recorded it.")
    if not valid_institution(institution):
        raise InvalidConsent("The institution must be named by its id.")
    _aware(given_at)
    if valid_until is not None:
        _aware(valid_until)
        if valid_until <= given_at:
            raise InvalidConsent("A consent's end must be after its start.")
    if given_by is not None:
        _check_sdm(given_by)
    return SharingConsent(
        consent_id, patient_ref, institution, given_at, valid_until, recorded_by, given_by
    )


def withdraw_consent(
    consent: SharingConsent,
    *,
    at: datetime,
    withdrawn_by: str,
    via: SubstituteDecisionMaker | None = None,
) -> SharingConsent:
    """Withdraw a consent from ``at`` on (the patient's own, or through an SDM).

    Raises:
        ConsentConflict: ``already_withdrawn``.
        InvalidConsent: a naive time, no recorder, a withdrawal dated before the consent,
            or an SDM the basis does not admit.
    """
    _aware(at)
    if not withdrawn_by:
        raise InvalidConsent("A withdrawal names who recorded it.")
    if consent.withdrawn_at is not None:
        raise ConsentConflict("already_withdrawn", "The consent is already withdrawn.")
    if at < consent.given_at:
        raise InvalidConsent("A consent cannot be withdrawn before it was given.")
    if via is not None:
        _check_sdm(via)
    return replace(consent, withdrawn_at=at, withdrawn_by=withdrawn_by, withdrawn_via=via)


class DecisionReason(StrEnum):
    CONSENT_IN_FORCE = "consent_in_force"
    NO_CONSENT = "no_consent"
    EXPIRED = "consent_expired"
    WITHDRAWN = "consent_withdrawn"
    NOT_YET_VALID = "consent_not_yet_valid"


@dataclass(frozen=True)
class ConsentDecision:
    """The answer and why (a code for the audit entry), with the consent that decided."""

    allowed: bool
    reason: DecisionReason
    consent_id: str | None = None


def decide(
    consents: Iterable[SharingConsent], patient_ref: str, institution: str, at: datetime
) -> ConsentDecision:
    """Whether sharing with ``institution`` is consented for ``patient_ref`` at ``at``.

    Allowed when any of the patient's consents for the institution is in force; otherwise
    the reason names what the most recent one says (withdrawn, expired, not yet valid) or
    that there is none.
    """
    _aware(at)
    relevant = [
        c for c in consents if c.patient_ref == patient_ref and c.institution == institution
    ]
    for consent in relevant:
        if consent.in_force(at):
            return ConsentDecision(True, DecisionReason.CONSENT_IN_FORCE, consent.consent_id)
    if not relevant:
        return ConsentDecision(False, DecisionReason.NO_CONSENT)
    latest = max(relevant, key=lambda c: c.given_at)
    reason = {
        ConsentState.WITHDRAWN: DecisionReason.WITHDRAWN,
        ConsentState.EXPIRED: DecisionReason.EXPIRED,
        ConsentState.NOT_YET_VALID: DecisionReason.NOT_YET_VALID,
    }[latest.state_at(at)]
    return ConsentDecision(False, reason, latest.consent_id)


class ConsentRegistry(Protocol):
    """What groups and records ask before opening or sharing: the decision now, read
    strongly consistent from storage (a withdrawal refuses the very next request)."""

    def consent_decision(self, patient_id: str, institution: str) -> ConsentDecision: ...


class EmergencyBasis(Protocol):
    """The one other basis on which a consultation group is read without the patient's
    consent (besides break-glass): the reader joined it by accepting a referral sent on
    the ``emergency`` legal basis, and that referral is still in progress (accepted, not
    completed or cancelled). Read strongly consistent now, like the consents."""

    def emergency_basis(self, reg_no: str, group_id: str) -> bool: ...


def consent_allows(
    consents: Iterable[SharingConsent], patient_ref: str, institution: str, at: datetime
) -> bool:
    """True when the patient's consent for the institution is in force at ``at``."""
    return decide(consents, patient_ref, institution, at).allowed


def _check_sdm(sdm: SubstituteDecisionMaker) -> None:
    if not sdm.sdm_ref:
        raise InvalidConsent("A substitute decision maker is recorded by reference.")
    if sdm.relationship not in ALLOWED_RELATIONSHIPS[sdm.basis]:
        raise InvalidConsent(
            "This relationship cannot be a substitute decision maker on this basis."
        )


def _aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidConsent("Consent times must be timezone-aware.")
