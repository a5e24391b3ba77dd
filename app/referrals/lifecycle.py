"""The referral and its lifecycle: a pure state machine.

Pure code: no storage, no clock, no policy. Every transition is a function from the
current referral to the next one, returning a new value and a :class:`Transition` for
the history (and for the ledger entry the service writes with it); an illegal
transition raises :class:`InvalidTransition`. Who may make a transition is Cedar's
decision (``app/access/policies/referrals.cedar``), taken by the service before it
calls into this module.

States (with the FHIR ``Task.status`` each is exported as) and the events that move them::

    (none) --send-----> REQUESTED  (requested)
    REQUESTED --redirect--> REQUESTED   (new target; redirect count + 1)
    REQUESTED --accept----> ACCEPTED   (accepted)   the acceptor joins the patient's group
    REQUESTED --decline---> DECLINED   (rejected)   with a coded reason; final
    REQUESTED --cancel----> CANCELLED  (cancelled)  by the referrer; final
    ACCEPTED  --complete--> COMPLETED  (completed)  final; access granted by the
                                                    referral ends with it

A referral never leaves a final state and nothing is deleted: each transition keeps
the earlier times and adds its own. The decision time the metrics report is the time
from ``send`` to the first ``accept`` or ``decline`` (redirects included).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from app.audit.facts import LegalBasis, Operation, Urgency

__all__ = [
    "DeclineReason",
    "InvalidTransition",
    "LegalBasis",
    "PatientNotice",
    "Referral",
    "ReferralStatus",
    "Target",
    "Transition",
    "Urgency",
]


class ReferralStatus(StrEnum):
    REQUESTED = "requested"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    CANCELLED = "cancelled"
    COMPLETED = "completed"


FINAL = frozenset({ReferralStatus.DECLINED, ReferralStatus.CANCELLED, ReferralStatus.COMPLETED})


class PatientNotice(StrEnum):
    """What the patient knows of a referral for care (an emergency needs neither)."""

    INFORMED = "informed"
    CONSENTED = "consented"
    NONE = "none"


class DeclineReason(StrEnum):
    NO_CAPACITY = "no_capacity"
    NOT_INDICATED = "not_indicated"
    WRONG_SPECIALTY = "wrong_specialty"
    MORE_INFORMATION_NEEDED = "more_information_needed"
    PATIENT_DECLINED = "patient_declined"
    OTHER = "other"


class InvalidTransition(Exception):
    """The transition is not allowed from the current state (a 409 to clients)."""

    def __init__(self, code: str):
        self.code = code
        super().__init__(code)


@dataclass(frozen=True)
class Target:
    """Where a referral is addressed: an institution and a specialty, optionally a team
    (a routing label shown on the letter: teams are not modelled in the hub) or a named
    doctor (then only that doctor may decide)."""

    institution: str
    specialty: str = ""
    team: str = ""
    practitioner: str = ""


@dataclass(frozen=True)
class Referral:
    referral_id: str
    patient_id: str
    patient_ref: str
    group_id: str
    referrer: str  # registration number
    from_institution: str
    from_department: str
    urgency: Urgency
    legal_basis: LegalBasis
    patient_notice: PatientNotice
    target: Target
    to_department: str
    status: ReferralStatus
    created_at: datetime
    phase: int
    attachments: tuple[str, ...] = ()
    updated_at: datetime | None = None
    accepted_by: str = ""
    accepted_at: datetime | None = None
    granted_membership: bool = False
    declined_by: str = ""
    declined_at: datetime | None = None
    decline_reason: DeclineReason | None = None
    cancelled_at: datetime | None = None
    completed_by: str = ""
    completed_at: datetime | None = None
    redirect_count: int = 0
    version: int = 1

    @property
    def final(self) -> bool:
        return self.status in FINAL


@dataclass(frozen=True)
class Transition:
    referral_id: str
    operation: Operation
    actor: str
    at: datetime
    from_status: ReferralStatus | None
    to_status: ReferralStatus


def _moved(
    before: Referral | None, after: Referral, operation: Operation, actor: str, at: datetime
) -> tuple[Referral, Transition]:
    return after, Transition(
        after.referral_id,
        operation,
        actor,
        at,
        before.status if before else None,
        after.status,
    )


def _require(referral: Referral, status: ReferralStatus) -> None:
    if referral.status is not status:
        raise InvalidTransition(f"referral_{referral.status.value}")


def send(referral: Referral) -> tuple[Referral, Transition]:
    """A new referral (status REQUESTED, version 1) and its first transition."""
    if referral.status is not ReferralStatus.REQUESTED or referral.version != 1:
        raise InvalidTransition("referral_not_new")
    if referral.legal_basis is LegalBasis.REFERRAL_FOR_CARE and (
        referral.patient_notice is PatientNotice.NONE
    ):
        # Cedar decides the legal basis; this guards the model against a caller that
        # skipped it (the model never holds a referral for care the patient knows nothing of).
        raise InvalidTransition("legal_basis_incomplete")
    return _moved(None, referral, Operation.REFERRAL_SEND, referral.referrer, referral.created_at)


def accept(
    referral: Referral, *, by: str, at: datetime, granted_membership: bool
) -> tuple[Referral, Transition]:
    _require(referral, ReferralStatus.REQUESTED)
    after = replace(
        referral,
        status=ReferralStatus.ACCEPTED,
        accepted_by=by,
        accepted_at=at,
        granted_membership=granted_membership,
        updated_at=at,
        version=referral.version + 1,
    )
    return _moved(referral, after, Operation.REFERRAL_ACCEPT, by, at)


def decline(
    referral: Referral, *, by: str, at: datetime, reason: DeclineReason
) -> tuple[Referral, Transition]:
    _require(referral, ReferralStatus.REQUESTED)
    after = replace(
        referral,
        status=ReferralStatus.DECLINED,
        declined_by=by,
        declined_at=at,
        decline_reason=reason,
        updated_at=at,
        version=referral.version + 1,
    )
    return _moved(referral, after, Operation.REFERRAL_DECLINE, by, at)


def redirect(
    referral: Referral, *, by: str, at: datetime, target: Target, to_department: str
) -> tuple[Referral, Transition]:
    _require(referral, ReferralStatus.REQUESTED)
    if target == referral.target:
        raise InvalidTransition("redirect_to_same_target")
    after = replace(
        referral,
        target=target,
        to_department=to_department,
        redirect_count=referral.redirect_count + 1,
        updated_at=at,
        version=referral.version + 1,
    )
    return _moved(referral, after, Operation.REFERRAL_REDIRECT, by, at)


def cancel(referral: Referral, *, by: str, at: datetime) -> tuple[Referral, Transition]:
    _require(referral, ReferralStatus.REQUESTED)
    after = replace(
        referral,
        status=ReferralStatus.CANCELLED,
        cancelled_at=at,
        updated_at=at,
        version=referral.version + 1,
    )
    return _moved(referral, after, Operation.REFERRAL_CANCEL, by, at)


def complete(referral: Referral, *, by: str, at: datetime) -> tuple[Referral, Transition]:
    _require(referral, ReferralStatus.ACCEPTED)
    after = replace(
        referral,
        status=ReferralStatus.COMPLETED,
        completed_by=by,
        completed_at=at,
        updated_at=at,
        version=referral.version + 1,
    )
    return _moved(referral, after, Operation.REFERRAL_COMPLETE, by, at)
