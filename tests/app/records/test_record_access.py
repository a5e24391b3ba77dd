"""Who may read, share, version and shred a record, decided by Cedar on state read fresh for
every request; crypto-shredding; records sealed before a KMS key rotation.

The full principal x route table is test_record_access_matrix.py; these are the scenarios
behind it (revocation on the next request, share rules, break-glass, shredding, rotation).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from hub_testkit import PATIENT, build_group
from records_testkit import SHARD, RecordsHarness

from app.crypto.envelope import Manifest
from app.groups.membership import MemberRole

URL = f"/patients/{PATIENT}/records"


def upload(
    records: RecordsHarness, body: bytes, who: str = "dr-lead", patient: str = PATIENT
) -> str:
    r = records.client.post(
        f"/patients/{patient}/records",
        content=body,
        headers=records.headers(who, **{"Content-Type": "application/dicom"}),
    )
    assert r.status_code == 201, r.text
    return str(r.json()["record_id"])


def read(records: RecordsHarness, rid: str, who: str, version: int | None = None) -> Any:
    query = f"?version={version}" if version else ""
    return records.client.get(f"/records/{rid}/content{query}", headers=records.headers(who))


def share(records: RecordsHarness, rid: str, gid: str, who: str = "dr-lead") -> Any:
    return records.client.post(
        f"/records/{rid}/share", json={"group_id": gid}, headers=records.headers(who)
    )


def shared_record(records: RecordsHarness) -> tuple[str, str, bytes]:
    """A record by dr-lead shared into a new open group for PATIENT (lead and dr-member
    active, dr-removed removed, dr-invitee invited)."""
    body = os.urandom(2 * SHARD + 3)
    rid = upload(records, body)
    gid = build_group(records.hub)
    assert share(records, rid, gid).status_code == 201
    return rid, gid, body


@pytest.fixture(scope="module")
def shared(records: RecordsHarness) -> tuple[str, str, bytes]:
    """One shared record for the tests that change no membership."""
    return shared_record(records)


@pytest.fixture
def fresh(records: RecordsHarness) -> tuple[str, str, bytes]:
    """A shared record and group of its own, for tests that change the membership."""
    return shared_record(records)


def test_non_member_is_refused_with_the_reason(records: RecordsHarness, shared: Any) -> None:
    rid, _, body = shared
    r = read(records, rid, "dr-outsider")
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "access_denied"
    assert body[:32] not in r.content
    assert (
        records.client.get(f"/records/{rid}", headers=records.headers("dr-outsider")).status_code
        == 403
    )


def test_author_and_active_member_read(records: RecordsHarness, shared: Any) -> None:
    rid, _, body = shared
    assert read(records, rid, "dr-lead").content == body
    r = read(records, rid, "dr-member")
    assert r.status_code == 200 and r.content == body
    meta = records.client.get(f"/records/{rid}", headers=records.headers("dr-member")).json()
    assert [s["group_id"] for s in meta["shares"]] == [shared[1]]
    entry = records.hub.audit_entry({"position": r.headers["X-Audit-Position"]})
    assert entry["action"] == "read" and entry["reason"] == "group-member-reads-shared-record"
    assert entry["resource"] == {
        "type": "record",
        "id": f"{rid}:1",
        "patient_ref": entry["resource"]["patient_ref"],
    }
    assert PATIENT not in repr(entry)


def test_removed_member_is_refused_on_the_next_request(records: RecordsHarness, fresh: Any) -> None:
    rid, gid, _body = fresh
    assert read(records, rid, "dr-member").status_code == 200
    lead = records.hub.principal("dr-lead")
    records.services.groups.remove(lead, gid, records.hub.principal("dr-member").reg_no or "")
    assert read(records, rid, "dr-member").status_code == 403


def test_member_who_leaves_or_whose_group_closes_is_refused(
    records: RecordsHarness, fresh: Any
) -> None:
    rid, gid, _ = fresh
    groups, p = records.services.groups, records.hub.principal
    groups.leave(p("dr-member"), gid)
    assert read(records, rid, "dr-member").status_code == 403
    groups.invite(p("dr-lead"), gid, p("dr-member").reg_no or "", MemberRole.MEMBER)
    groups.accept(p("dr-member"), gid)
    assert read(records, rid, "dr-member").status_code == 200
    groups.close(p("dr-lead"), gid)
    assert read(records, rid, "dr-member").status_code == 403
    assert read(records, rid, "dr-lead").status_code == 200  # the author keeps access


def test_auditor_gets_no_clinical_content(records: RecordsHarness, shared: Any) -> None:
    rid = shared[0]
    for r in (
        read(records, rid, "auditor-1"),
        records.client.get(f"/records/{rid}", headers=records.headers("auditor-1")),
        share(records, rid, shared[1], "auditor-1"),
    ):
        assert r.status_code == 403
    r = records.client.post(
        URL, content=b"x", headers=records.headers("auditor-1", **{"Content-Type": "text/plain"})
    )
    assert r.status_code == 403


def test_auditor_guardrail_is_what_refuses(records: RecordsHarness) -> None:
    """The forbid names every record action: an auditor who were also a group member would
    still be refused (checked on the policy directly, since auditors are not clinicians)."""
    from app.access.engine import Action, Authorizer
    from app.access.entities import uid

    auditor = {
        "uid": uid("User", "a"),
        "attrs": {
            "reg_no": "M1",
            "institution": "i",
            "roles": ["doctor", "auditor"],
            "clinical": True,
            "registration_ok": True,
        },
        "parents": [],
    }
    record = {
        "uid": uid("Record", "r"),
        "attrs": {"institution": "i", "patient": "p", "author": "M1", "shared_groups": []},
        "parents": [],
    }
    none = {"__entity": uid("Group", "(none)")}
    # Consent in force, so only the auditor guardrail can refuse.
    ctx = {"break_glass_patients": [], "via": none, "target": none, "consent_active": True}
    group = {
        "uid": uid("Group", "(none)"),
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
    for action in (
        Action.READ_RECORD,
        Action.VIEW_RECORD,
        Action.CREATE_RECORD_VERSION,
        Action.SHRED_RECORD,
    ):
        d = Authorizer().decide(
            auditor["uid"], action, record["uid"], [auditor, record, group], ctx
        )
        assert not d.allowed and "auditors-get-no-clinical-access" in d.reasons, action


def test_share_into_another_patients_group_is_refused(records: RecordsHarness, shared: Any) -> None:
    rid = shared[0]
    lead = records.hub.principal("dr-lead")
    other, _ = records.services.groups.create(lead, "pt-synthetic-000123", "Other case", "")
    r = share(records, rid, other.group.group_id)
    assert r.status_code == 403
    assert "share-only-into-same-patient-group" in r.json()["error"]["message"]
    meta = records.client.get(f"/records/{rid}", headers=records.headers("dr-lead")).json()
    assert other.group.group_id not in [s["group_id"] for s in meta["shares"]]


def test_non_member_of_target_group_cannot_share(records: RecordsHarness) -> None:
    rid = upload(records, b"z" * 100, who="dr-outsider")
    gid = build_group(records.hub)  # dr-outsider is not in it
    r = share(records, rid, gid, who="dr-outsider")
    assert r.status_code == 403
    assert "sharer-must-be-active-member-of-target-group" in r.json()["error"]["message"]


def test_member_who_cannot_read_cannot_share(records: RecordsHarness) -> None:
    rid = upload(records, b"q" * 100, who="dr-outsider")
    gid = build_group(records.hub)
    r = share(records, rid, gid, who="dr-member")  # member of the group, not a reader
    assert r.status_code == 403
    assert share(records, rid, "0" * 32, who="dr-outsider").status_code == 404


def test_member_reader_shares_onward_and_sharing_twice_is_409(
    records: RecordsHarness, shared: Any
) -> None:
    rid, gid, _body = shared
    assert share(records, rid, gid).status_code == 409
    second = build_group(records.hub)
    assert share(records, rid, second, who="dr-member").status_code == 201


def test_break_glass_holder_reads_the_patients_records(records: RecordsHarness) -> None:
    patient = "pt-synthetic-rec-bg1"
    rid = upload(records, b"bg" * 100, patient=patient)
    assert read(records, rid, "dr-bg-audit").status_code == 403
    grant, _ = records.services.break_glass.start(
        records.hub.principal("dr-bg-audit"), patient, "Synthetic: unconscious on arrival", 30
    )
    try:
        assert read(records, rid, "dr-bg-audit").content == b"bg" * 100
    finally:
        records.services.break_glass.end(records.hub.principal("dr-bg-audit"), grant.grant_id)
    assert read(records, rid, "dr-bg-audit").status_code == 403


# -- crypto-shredding -----------------------------------------------------------------------


def shred(
    records: RecordsHarness,
    rid: str,
    version: int,
    who: str = "dr-lead",
    reason: str = "entered_in_error",
) -> Any:
    return records.client.request(
        "DELETE",
        f"/records/{rid}/versions/{version}",
        json={"reason": reason},
        headers=records.headers(who),
    )


def test_shred_destroys_one_version_and_leaves_the_others(records: RecordsHarness) -> None:
    v1, v2 = os.urandom(3 * SHARD), os.urandom(2 * SHARD + 9)
    rid = upload(records, v1)
    r = records.client.post(
        f"/records/{rid}/versions",
        content=v2,
        headers=records.headers("dr-lead", **{"Content-Type": "application/dicom"}),
    )
    assert r.status_code == 201
    before = records.records._repo.load(rid)
    assert before is not None
    v1_shards = before.versions[0].shards
    wrapped = Manifest.from_bytes(before.versions[0].manifest or b"").encrypted_data_key

    assert shred(records, rid, 1, who="dr-outsider").status_code == 403
    assert shred(records, rid, 1, reason="because I said so").status_code == 422
    done = shred(records, rid, 1)
    assert done.status_code == 200, done.text
    assert done.json()["version"]["status"] == "shredded"

    # content gone: 410, for the author too
    gone = read(records, rid, "dr-lead", version=1)
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "record_version_shredded"
    # shards deleted from S3, every stored version of them
    live = records.live_keys()
    assert not {s.key for s in v1_shards} & live
    # the wrapped data key is gone from the table
    raw = records.records._repo.raw_items(rid)
    v1_item = next(i for i in raw if i["sk"] == "VERSION#0000000001")
    assert "manifest" not in v1_item and v1_item["shred_reason"] == "entered_in_error"
    assert wrapped not in repr(raw).encode()
    # the audit entry is there, with the reason code and no content
    entry = records.hub.audit_entry(done.json()["audit_receipt"])
    assert entry["action"] == "shred" and entry["resource"]["id"] == f"{rid}:1"
    assert entry["reason"] == "author-shreds-own-record:entered_in_error"
    assert PATIENT not in repr(entry)
    # version 2 still opens
    assert read(records, rid, "dr-lead").content == v2
    assert read(records, rid, "dr-lead", version=2).content == v2
    # shredding twice is Gone too
    assert shred(records, rid, 1).status_code == 410


def test_institution_admin_shreds_records_of_their_institution_only(
    records: RecordsHarness,
) -> None:
    rid_a = upload(records, b"a" * 50)  # dr-lead: institution A, like inst-admin
    rid_b = upload(records, b"b" * 50, who="dr-member")  # institution B
    assert shred(records, rid_b, 1, who="inst-admin", reason="retention_expired").status_code == 403
    r = shred(records, rid_a, 1, who="inst-admin", reason="retention_expired")
    assert r.status_code == 200
    assert read(records, rid_a, "dr-lead").status_code == 410


# -- key rotation ---------------------------------------------------------------------------


def test_records_sealed_before_a_kms_key_rotation_still_open(records: RecordsHarness) -> None:
    body = os.urandom(2 * SHARD + 77)
    rid = upload(records, body)
    records.kms.enable_key_rotation(KeyId=records.key_arn)
    records.kms.rotate_key_on_demand(KeyId=records.key_arn)
    rotations = records.kms.list_key_rotations(KeyId=records.key_arn)["Rotations"]
    assert rotations, "the emulator did not record a rotation"
    assert read(records, rid, "dr-lead").content == body
    after = os.urandom(SHARD)
    rid2 = upload(records, after)
    assert read(records, rid2, "dr-lead").content == after
