"""The referral lifecycle as a pure state machine: every transition from every state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from app.audit.facts import Operation
from app.referrals import lifecycle as lc
from app.referrals.lifecycle import (
    DeclineReason,
    LegalBasis,
    PatientNotice,
    Referral,
    ReferralStatus,
    Target,
    Urgency,
)

T0 = datetime(2026, 11, 5, 9, 0, tzinfo=UTC)
LATER = T0 + timedelta(hours=1)
OTHER = Target("victoria-general", "general surgery")


def new() -> Referral:
    return Referral(
        referral_id="r1",
        patient_id="pt-synthetic-1",
        patient_ref="pt1-" + "0" * 64,
        group_id="g1",
        referrer="M1",
        from_institution="a",
        from_department="emergency-medicine",
        urgency=Urgency.URGENT,
        legal_basis=LegalBasis.REFERRAL_FOR_CARE,
        patient_notice=PatientNotice.INFORMED,
        target=Target("b", "general surgery"),
        to_department="general-surgery",
        status=ReferralStatus.REQUESTED,
        created_at=T0,
        phase=1,
    )


MOVES: dict[str, Callable[[Referral], tuple[Referral, lc.Transition]]] = {
    "accept": lambda r: lc.accept(r, by="M9", at=LATER, granted_membership=True),
    "decline": lambda r: lc.decline(r, by="M9", at=LATER, reason=DeclineReason.NO_CAPACITY),
    "redirect": lambda r: lc.redirect(r, by="M9", at=LATER, target=OTHER, to_department="x-y"),
    "cancel": lambda r: lc.cancel(r, by="M1", at=LATER),
    "complete": lambda r: lc.complete(r, by="M9", at=LATER),
}
ALLOWED = {
    ReferralStatus.REQUESTED: {"accept", "decline", "redirect", "cancel"},
    ReferralStatus.ACCEPTED: {"complete"},
    ReferralStatus.DECLINED: set(),
    ReferralStatus.CANCELLED: set(),
    ReferralStatus.COMPLETED: set(),
}


@pytest.mark.parametrize("status", list(ReferralStatus))
@pytest.mark.parametrize("move", sorted(MOVES))
def test_every_transition_from_every_state(status: ReferralStatus, move: str) -> None:
    before = replace(new(), status=status, version=3)
    if move in ALLOWED[status]:
        after, transition = MOVES[move](before)
        assert after.version == 4 and after.updated_at == LATER
        assert transition.from_status is status and transition.to_status is after.status
        assert transition.operation is Operation(f"referral.{move}")
    else:
        with pytest.raises(lc.InvalidTransition) as caught:
            MOVES[move](before)
        assert caught.value.code == f"referral_{status.value}"


def test_send_starts_requested_and_keeps_the_legal_basis_honest() -> None:
    referral, transition = lc.send(new())
    assert referral.status is ReferralStatus.REQUESTED
    assert transition.operation is Operation.REFERRAL_SEND and transition.from_status is None
    with pytest.raises(lc.InvalidTransition):
        lc.send(replace(new(), patient_notice=PatientNotice.NONE))
    emergency = replace(new(), legal_basis=LegalBasis.EMERGENCY, patient_notice=PatientNotice.NONE)
    assert lc.send(emergency)[0].status is ReferralStatus.REQUESTED
    with pytest.raises(lc.InvalidTransition):
        lc.send(replace(new(), version=2))


def test_a_full_path_keeps_every_time() -> None:
    r, _ = lc.send(new())
    r, _ = lc.redirect(r, by="M9", at=LATER, target=OTHER, to_department="general-surgery")
    r, _ = lc.accept(r, by="M7", at=LATER + timedelta(minutes=5), granted_membership=True)
    r, _ = lc.complete(r, by="M7", at=LATER + timedelta(days=2))
    assert (r.status, r.redirect_count, r.target) == (ReferralStatus.COMPLETED, 1, OTHER)
    assert r.created_at == T0 and r.accepted_at == LATER + timedelta(minutes=5)
    assert r.completed_by == "M7" and r.final
    with pytest.raises(lc.InvalidTransition):
        lc.redirect(new(), by="M9", at=LATER, target=new().target, to_department="x")
