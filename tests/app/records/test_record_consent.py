"""Records and the patient's sharing consent: sharing a record and reading it from
another institution need the patient's consent for the caller's institution, read fresh
for every request; break-glass reads without it and the ledger entry says so.

Each test registers its own patient, consented for INST_A only (so dr-lead opens the
group and uploads), and decides INST_B's consent itself.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from hub_testkit import INST_A, INST_B
from records_testkit import RecordsHarness

from app.groups.membership import MemberRole


def consented_patient(records: RecordsHarness, *institutions: str) -> str:
    hub = records.hub
    patient_id = f"pt-rcons-{uuid.uuid4().hex[:12]}"
    hub.services.patients.register(
        hub.principal("dr-lead"), hkid=None, mrn=patient_id, patient_id=patient_id
    )
    if institutions:
        hub.services.consents.grant(
            hub.principal("dr-lead"), patient_id, institutions=list(institutions), valid_until=None
        )
    return patient_id


def upload(records: RecordsHarness, patient: str, body: bytes) -> str:
    r = records.client.post(
        f"/patients/{patient}/records",
        content=body,
        headers=records.headers("dr-lead", **{"Content-Type": "application/dicom"}),
    )
    assert r.status_code == 201, r.text
    return str(r.json()["record_id"])


def read(records: RecordsHarness, rid: str, who: str) -> Any:
    return records.client.get(f"/records/{rid}/content", headers=records.headers(who))


def share(records: RecordsHarness, rid: str, gid: str) -> Any:
    return records.client.post(
        f"/records/{rid}/share", json={"group_id": gid}, headers=records.headers("dr-lead")
    )


def group_with_member(records: RecordsHarness, patient: str) -> str:
    """An open group of INST_A's dr-lead on ``patient`` with dr-member (INST_B) active."""
    groups, p = records.services.groups, records.hub.principal
    state, _ = groups.create(p("dr-lead"), patient, "Synthetic consent case", "")
    gid = state.group.group_id
    groups.invite(p("dr-lead"), gid, p("dr-member").reg_no or "", MemberRole.MEMBER)
    groups.accept(p("dr-member"), gid)
    return gid


def withdraw_all(records: RecordsHarness, patient: str, institution: str) -> None:
    consents = records.hub.services.consents
    found, _ = consents.consents(records.hub.principal("dr-lead"), patient)
    for consent in found:
        if consent.institution == institution and consent.withdrawn_at is None:
            consents.withdraw(records.hub.principal("dr-lead"), patient, consent.consent_id)


def test_reading_from_another_institution_needs_its_consent(records: RecordsHarness) -> None:
    patient = consented_patient(records, INST_A)
    body = b"consent" * 50
    rid = upload(records, patient, body)
    gid = group_with_member(records, patient)
    assert share(records, rid, gid).status_code == 201
    hub = records.hub
    start = hub.ledger_size()
    r = read(records, rid, "dr-member")  # INST_B: no consent
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "consent_required"
    assert body[:16] not in r.content
    (entry,) = hub.audit_entries(start)
    assert entry["outcome"] == "denied"
    assert entry["reason"] == "reading-shared-record-needs-patient-consent"
    assert patient not in repr(entry)
    hub.services.consents.grant(
        hub.principal("dr-member"), patient, institutions=[INST_B], valid_until=None
    )
    r = read(records, rid, "dr-member")
    assert r.status_code == 200 and r.content == body
    entry = hub.audit_entry({"position": r.headers["X-Audit-Position"]})
    assert "consent_override" not in entry.get("facts", {})
    # Withdrawal: the very next read is refused; the author's own institution still reads.
    withdraw_all(records, patient, INST_B)
    assert read(records, rid, "dr-member").status_code == 403
    assert read(records, rid, "dr-lead").content == body


def test_read_consent_expires(records: RecordsHarness) -> None:
    patient = consented_patient(records, INST_A)
    hub = records.hub
    hub.services.consents.grant(
        hub.principal("dr-member"),
        patient,
        institutions=[INST_B],
        valid_until=hub.clock() + timedelta(hours=1),
    )
    rid = upload(records, patient, b"e" * 64)
    gid = group_with_member(records, patient)
    assert share(records, rid, gid).status_code == 201
    assert read(records, rid, "dr-member").status_code == 200
    hub.clock.offset = timedelta(hours=2)
    try:
        r = read(records, rid, "dr-member")
        assert r.status_code == 403 and r.json()["error"]["code"] == "consent_required"
    finally:
        hub.clock.offset = timedelta(0)


def test_sharing_needs_consent_for_the_sharers_institution(records: RecordsHarness) -> None:
    patient = consented_patient(records, INST_A)
    rid = upload(records, patient, b"s" * 64)
    gid = group_with_member(records, patient)
    withdraw_all(records, patient, INST_A)
    r = share(records, rid, gid)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "consent_required"
    meta = records.client.get(f"/records/{rid}", headers=records.headers("dr-lead")).json()
    assert meta["shares"] == []


def test_break_glass_reads_without_consent_and_is_flagged(records: RecordsHarness) -> None:
    patient = consented_patient(records, INST_A)
    rid = upload(records, patient, b"bg" * 64)
    hub = records.hub
    assert read(records, rid, "dr-bg-audit").status_code == 403  # INST_B, no grant, no consent
    grant, _ = hub.services.break_glass.start(
        hub.principal("dr-bg-audit"), patient, "Synthetic: unconscious on arrival", 30
    )
    try:
        r = read(records, rid, "dr-bg-audit")
        assert r.status_code == 200 and r.content == b"bg" * 64
        entry = hub.audit_entry({"position": r.headers["X-Audit-Position"]})
        assert entry["reason"] == "break-glass-reads-patient-records"
        assert entry["facts"]["consent_override"] == "break_glass"
    finally:
        hub.services.break_glass.end(hub.principal("dr-bg-audit"), grant.grant_id)
    assert read(records, rid, "dr-bg-audit").status_code == 403
