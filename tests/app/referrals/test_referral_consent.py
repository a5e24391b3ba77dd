"""Referrals and the patient's sharing consent: a referral discloses the patient to the
institution addressed, so it needs the patient's consent for that institution, except a
referral with a recorded emergency basis, which is sent and flagged in the ledger."""

from __future__ import annotations

import uuid

import pytest
from hub_testkit import INST_A, INST_B, Hub, send_referral

from app.errors import HubError
from app.referrals.lifecycle import LegalBasis, PatientNotice, Urgency


def patient_consenting_to(hub: Hub, *institutions: str) -> tuple[str, str]:
    """(patient, group): a new patient consenting to ``institutions``, with an open
    group of INST_A's dr-lead on them."""
    patient = f"pt-refcons-{uuid.uuid4().hex[:12]}"
    lead = hub.principal("dr-lead")
    hub.services.patients.register(lead, hkid=None, mrn=patient, patient_id=patient)
    hub.services.consents.grant(lead, patient, institutions=list(institutions), valid_until=None)
    state, _ = hub.services.groups.create(lead, patient, "Synthetic referral case", "")
    return patient, state.group.group_id


def test_referral_for_care_needs_consent_for_the_institution_addressed(hub: Hub) -> None:
    patient, gid = patient_consenting_to(hub, INST_A)
    start = hub.ledger_size()
    with pytest.raises(HubError) as raised:
        send_referral(hub, gid, patient_id=patient)
    assert raised.value.status_code == 403 and raised.value.code == "consent_required"
    (refusal,) = hub.audit_entries(start)
    assert refusal["outcome"] == "denied"
    assert "referral-needs-consent-for-the-institution-addressed" in refusal["reason"]
    assert patient not in repr(refusal)
    hub.services.consents.grant(
        hub.principal("dr-lead"), patient, institutions=[INST_B], valid_until=None
    )
    start = hub.ledger_size()
    send_referral(hub, gid, patient_id=patient)
    sent = [e for e in hub.audit_entries(start) if e["facts"].get("op") == "referral.send"]
    assert len(sent) == 1 and "consent_override" not in sent[0]["facts"]


def test_emergency_referral_without_consent_is_sent_and_flagged(hub: Hub) -> None:
    patient, gid = patient_consenting_to(hub, INST_A)
    start = hub.ledger_size()
    send_referral(
        hub,
        gid,
        patient_id=patient,
        urgency=Urgency.EMERGENCY,
        legal_basis=LegalBasis.EMERGENCY,
        patient_notice=PatientNotice.NONE,
    )
    (sent,) = [e for e in hub.audit_entries(start) if e["facts"].get("op") == "referral.send"]
    assert sent["outcome"] == "success"
    assert sent["facts"]["consent_override"] == "emergency_referral"
    assert sent["facts"]["legal_basis"] == "emergency"
