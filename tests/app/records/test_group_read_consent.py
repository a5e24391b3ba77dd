"""Reading a consultation group and the patient's sharing consent.

Reading a group (``GET /groups/{id}``, its records listing, "my groups") needs the
patient's consent for the reader's institution, read fresh on every request, like reading
a shared record; the two recorded exceptions are break-glass and an emergency referral
the reader accepted (still in progress), each flagged ``consent_override`` in the ledger.
The emergency basis also lets the referred doctor read the records shared into that group.

Each test registers its own patient consenting to INST_A only (dr-lead's institution).
"""

from __future__ import annotations

from typing import Any

from hub_testkit import INST_A, INST_B, send_referral
from records_testkit import RecordsHarness
from test_record_consent import (
    consented_patient,
    group_with_member,
    read,
    share,
    upload,
    withdraw_all,
)

from app.groups.membership import MemberRole
from app.referrals.lifecycle import LegalBasis, PatientNotice, Urgency
from app.referrals.service import ReferralService


def view(records: RecordsHarness, gid: str, who: str) -> Any:
    return records.client.get(f"/groups/{gid}", headers=records.headers(who))


def group_records(records: RecordsHarness, gid: str, who: str) -> Any:
    return records.client.get(f"/groups/{gid}/records", headers=records.headers(who))


def my_groups(records: RecordsHarness, who: str) -> set[str]:
    """Every page of ``GET /groups`` (the session's doctors are in many groups by now)."""
    found: set[str] = set()
    params: dict[str, str] = {}
    while True:
        r = records.client.get("/groups", headers=records.headers(who), params=params)
        assert r.status_code == 200, r.text
        found |= {g["group_id"] for g in r.json()["groups"]}
        if not r.json().get("cursor"):
            return found
        params = {"cursor": r.json()["cursor"]}


def entry_of(records: RecordsHarness, response: Any) -> dict[str, Any]:
    """The ledger entry of a response: its header (content) or its body's receipt."""
    position = response.headers.get("X-Audit-Position")
    if position is None:
        position = response.json()["audit_receipt"]["position"]
    return records.hub.audit_entry({"position": position})


def referrals(records: RecordsHarness) -> ReferralService:
    service = records.hub.services.referrals
    assert service is not None
    return service


def test_viewing_a_group_needs_consent_for_the_readers_institution(
    records: RecordsHarness,
) -> None:
    patient = consented_patient(records, INST_A)
    hub = records.hub
    gid = group_with_member(records, patient)  # dr-member is at INST_B: no consent there
    assert view(records, gid, "dr-lead").status_code == 200
    start = hub.ledger_size()
    r = view(records, gid, "dr-member")
    assert r.status_code == 403 and r.json()["error"]["code"] == "consent_required"
    (entry,) = hub.audit_entries(start)
    assert entry["outcome"] == "denied"
    assert entry["reason"] == "viewing-group-needs-patient-consent"
    assert patient not in repr(entry)
    r = group_records(records, gid, "dr-member")
    assert r.status_code == 403 and r.json()["error"]["code"] == "consent_required"
    assert gid not in my_groups(records, "dr-member")

    hub.services.consents.grant(
        hub.principal("dr-member"), patient, institutions=[INST_B], valid_until=None
    )
    r = view(records, gid, "dr-member")
    assert r.status_code == 200
    assert "consent_override" not in entry_of(records, r).get("facts", {})
    assert group_records(records, gid, "dr-member").status_code == 200
    assert gid in my_groups(records, "dr-member")

    # Withdrawal refuses the very next read of the group, its listing and "my groups".
    withdraw_all(records, patient, INST_B)
    assert view(records, gid, "dr-member").json()["error"]["code"] == "consent_required"
    assert group_records(records, gid, "dr-member").status_code == 403
    assert gid not in my_groups(records, "dr-member")


def test_break_glass_views_a_group_without_consent_and_is_flagged(
    records: RecordsHarness,
) -> None:
    patient = consented_patient(records, INST_A)
    hub = records.hub
    gid = group_with_member(records, patient)
    assert view(records, gid, "dr-bg-audit").status_code == 403  # INST_B: no grant
    grant, _ = hub.services.break_glass.start(
        hub.principal("dr-bg-audit"), patient, "Synthetic: unconscious on arrival", 30
    )
    try:
        r = view(records, gid, "dr-bg-audit")
        assert r.status_code == 200, r.text
        entry = entry_of(records, r)
        assert entry["reason"] == "break-glass-views-patient-groups"
        assert entry["facts"]["consent_override"] == "break_glass"
        r = group_records(records, gid, "dr-bg-audit")
        assert r.status_code == 200
        assert entry_of(records, r)["facts"]["consent_override"] == "break_glass"
    finally:
        hub.services.break_glass.end(hub.principal("dr-bg-audit"), grant.grant_id)
    assert view(records, gid, "dr-bg-audit").status_code == 403


def test_emergency_referral_lets_the_referred_doctor_read_and_is_flagged(
    records: RecordsHarness,
) -> None:
    hub = records.hub
    patient = consented_patient(records, INST_A)
    body = b"emergency" * 40
    rid = upload(records, patient, body)
    gid = group_with_member(records, patient)  # dr-member: INST_B, a plain member
    assert share(records, rid, gid).status_code == 201
    referral_id = send_referral(
        hub,
        gid,
        patient_id=patient,
        urgency=Urgency.EMERGENCY,
        legal_basis=LegalBasis.EMERGENCY,
        patient_notice=PatientNotice.NONE,
    )
    # Before acceptance the referred doctor (dr-other-inst, INST_B) is not in the group.
    assert view(records, gid, "dr-other-inst").status_code == 403
    referrals(records).accept(hub.principal("dr-other-inst"), referral_id)

    r = view(records, gid, "dr-other-inst")
    assert r.status_code == 200, r.text
    assert entry_of(records, r)["facts"]["consent_override"] == "emergency_referral"
    r = group_records(records, gid, "dr-other-inst")
    assert r.status_code == 200 and [x["record_id"] for x in r.json()["records"]] == [rid]
    assert entry_of(records, r)["facts"]["consent_override"] == "emergency_referral"
    r = read(records, rid, "dr-other-inst")
    assert r.status_code == 200 and r.content == body
    entry = entry_of(records, r)
    assert entry["facts"]["consent_override"] == "emergency_referral"
    assert patient not in repr(entry)

    # The basis is the referred doctor's only: a plain member of the same institution
    # is still refused for want of consent.
    assert view(records, gid, "dr-member").json()["error"]["code"] == "consent_required"
    assert read(records, rid, "dr-member").json()["error"]["code"] == "consent_required"

    # Completed: the basis ends with the referral (and so does the membership it gave).
    referrals(records).complete(hub.principal("dr-other-inst"), referral_id)
    assert view(records, gid, "dr-other-inst").status_code == 403
    assert read(records, rid, "dr-other-inst").status_code == 403


def test_emergency_basis_ends_with_the_referral_while_membership_stays(
    records: RecordsHarness,
) -> None:
    """An invited doctor who accepts an emergency referral into a group they already
    belong to keeps the membership after it completes, but not the consent exception."""
    hub = records.hub
    patient = consented_patient(records, INST_A)
    rid = upload(records, patient, b"stay" * 40)
    gid = group_with_member(records, patient)
    assert share(records, rid, gid).status_code == 201
    groups = hub.services.groups
    groups.invite(
        hub.principal("dr-lead"),
        gid,
        hub.principal("dr-other-inst").reg_no or "",
        MemberRole.MEMBER,
    )
    groups.accept(hub.principal("dr-other-inst"), gid)
    assert view(records, gid, "dr-other-inst").status_code == 403  # member, no consent
    referral_id = send_referral(
        hub,
        gid,
        patient_id=patient,
        urgency=Urgency.EMERGENCY,
        legal_basis=LegalBasis.EMERGENCY,
        patient_notice=PatientNotice.NONE,
    )
    referrals(records).accept(hub.principal("dr-other-inst"), referral_id)
    r = view(records, gid, "dr-other-inst")
    assert r.status_code == 200
    assert entry_of(records, r)["facts"]["consent_override"] == "emergency_referral"
    assert read(records, rid, "dr-other-inst").status_code == 200
    referrals(records).complete(hub.principal("dr-other-inst"), referral_id)
    r = view(records, gid, "dr-other-inst")
    assert r.status_code == 403 and r.json()["error"]["code"] == "consent_required"
    assert read(records, rid, "dr-other-inst").json()["error"]["code"] == "consent_required"
