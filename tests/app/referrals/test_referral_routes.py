"""Referrals through the API: the workflow, access following the referral, the FHIR
export and the letter, the refusals (each a clear 4xx and a ``denied`` ledger entry),
and the clinical question kept out of the ledger, the logs and the table."""

from __future__ import annotations

import io
import logging
from typing import Any

import pytest
from hub_testkit import INST_A, INST_B, NOT_ADMITTED, PATIENT, Hub, build_group
from pypdf import PdfReader

QUESTION = "Synthetic question: RIF pain 6 h, guarding, WBC 15; appendicitis? 請評估"


def send_body(gid: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "patient_id": PATIENT,
        "group_id": gid,
        "target": {"institution": INST_B, "specialty": "Cardiology"},
        "urgency": "emergency",
        "clinical_question": QUESTION,
        "legal_basis": {"basis": "emergency"},
    }
    body.update(changes)
    return body


def assert_sealed_at_rest(hub: Hub, rid: str) -> None:
    """Every stored item of the referral (and its index rows) holds no plaintext."""
    items = hub.dynamodb.query(
        TableName=hub.settings.table_groups,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"REFERRAL#{rid}"}},
        ConsistentRead=True,
    )["Items"]
    meta = next(i for i in items if i["sk"]["S"] == "META")
    assert "question_manifest" in meta and "question_shard" in meta
    for item in items:
        for value in item.values():
            raw = value.get("B") or str(value.get("S", "")).encode()
            assert b"RIF pain" not in bytes(raw), item["sk"]


def entries_since(hub: Hub, start: int) -> list[dict[str, Any]]:
    return hub.audit_entries(start)


def test_anonymous_and_wrong_principal_first(hub: Hub) -> None:
    gid = build_group(hub)
    assert hub.client.post("/referrals", json=send_body(gid)).status_code == 401
    # dr-outsider is at the group's institution but not in the group.
    wrong = hub.client.post("/referrals", json=send_body(gid), headers=hub.headers("dr-outsider"))
    assert wrong.status_code == 403
    assert wrong.json()["error"]["code"] == "access_denied"


def test_refer_accept_letter_fhir_complete(hub: Hub, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="app")
    gid = build_group(hub)
    start = hub.ledger_size()
    sent = hub.client.post("/referrals", json=send_body(gid), headers=hub.headers("dr-lead"))
    assert sent.status_code == 201, sent.text
    referral = sent.json()
    rid = referral["referral_id"]
    assert referral["status"] == "requested" and referral["target"]["specialty"] == "cardiology"
    assert QUESTION not in sent.text  # the question is returned only in the detail view
    assert_sealed_at_rest(hub, rid)

    # The addressed side (a cardiologist at INST_B) sees it in its inbox, with the question.
    inbox = hub.client.get("/referrals", headers=hub.headers("sp-cardio-b")).json()
    assert rid in [r["referral_id"] for r in inbox["referrals"]]
    detail = hub.client.get(f"/referrals/{rid}", headers=hub.headers("sp-cardio-b"))
    assert detail.status_code == 200 and detail.json()["clinical_question"] == QUESTION
    assert detail.headers["cache-control"] == "no-store"
    # A cardiologist elsewhere, and a non-cardiologist at INST_B, do not.
    assert (
        hub.client.get(f"/referrals/{rid}", headers=hub.headers("sp-cardio-a")).status_code == 403
    )
    assert hub.client.get(f"/referrals/{rid}", headers=hub.headers("sp-neuro")).status_code == 403
    # Not yet a member: the group (and so the patient's shared records) is closed to them.
    assert hub.client.get(f"/groups/{gid}", headers=hub.headers("sp-cardio-b")).status_code == 403

    accepted = hub.client.post(f"/referrals/{rid}/accept", headers=hub.headers("sp-cardio-b"))
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["accepted_by"] == "M30002"
    # Access follows the referral: on the very next request the acceptor reads the group.
    group = hub.client.get(f"/groups/{gid}", headers=hub.headers("sp-cardio-b"))
    assert group.status_code == 200
    assert {"reg_no": "M30002", "state": "active"}.items() <= next(
        m for m in group.json()["members"] if m["reg_no"] == "M30002"
    ).items()

    letter = hub.client.get(f"/referrals/{rid}/letter", headers=hub.headers("sp-cardio-b"))
    assert letter.status_code == 200 and letter.headers["content-type"] == "application/pdf"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(letter.content)).pages)
    for expected in (
        rid,
        "EMERGENCY",
        "M20001",
        INST_A,
        INST_B,
        "cardiology",
        PATIENT,
        "RIF pain 6 h",
    ):
        assert expected in text, expected
    meta = PdfReader(io.BytesIO(letter.content)).metadata
    assert meta is not None and PATIENT not in str(meta.title) and "RIF" not in str(meta.subject)

    fhir = hub.client.get(f"/referrals/{rid}/fhir", headers=hub.headers("dr-lead"))
    assert fhir.status_code == 200 and fhir.headers["content-type"] == "application/fhir+json"
    request, task = (e["resource"] for e in fhir.json()["entry"])
    assert (request["resourceType"], request["priority"], request["status"]) == (
        "ServiceRequest",
        "stat",
        "active",
    )
    assert request["note"] == [{"text": QUESTION}]
    assert (task["resourceType"], task["status"], task["owner"]["identifier"]["value"]) == (
        "Task",
        "accepted",
        "M30002",
    )

    done = hub.client.post(f"/referrals/{rid}/complete", headers=hub.headers("dr-lead"))
    assert done.status_code == 200 and done.json()["status"] == "completed"
    # The access the referral granted ends with it, on the next request.
    assert hub.client.get(f"/groups/{gid}", headers=hub.headers("sp-cardio-b")).status_code == 403

    entries = entries_since(hub, start)
    mine = [
        e for e in entries if e["resource"]["type"] == "referral" and e["resource"]["id"] == rid
    ]
    ops = [e["facts"]["op"] for e in mine if e["outcome"] == "success" and "facts" in e]
    assert ops == ["referral.send", "referral.accept", "referral.complete"]
    send_entry = next(e for e in mine if e.get("facts", {}).get("op") == "referral.send")
    assert send_entry["facts"] == {
        "op": "referral.send",
        "urgency": "emergency",
        "to_institution": INST_B,
        "to_department": "cardiology",
        "department": "general",
        "group": gid,
        # The referrer's institution's phase (a phase 1 specialist alliance), not the
        # service's configured phase (3 in the test hub): institutions carry it as data.
        "phase": "1",
        "legal_basis": "emergency",
    }
    assert send_entry["actor"]["institution_id"] == INST_A
    assert send_entry["resource"]["patient_ref"].startswith("pt1-")
    # Views of the referral are audited reads; the letter and export too.
    assert sum(1 for e in mine if e["action"] == "read" and e["outcome"] == "success") >= 3

    # The question is patient content: not in the ledger, a log line, or the table.
    raw = b"".join(str(e).encode() for e in entries)
    assert b"RIF pain" not in raw and PATIENT.encode() not in raw
    assert "RIF pain" not in caplog.text and PATIENT not in caplog.text
    assert_sealed_at_rest(hub, rid)


def test_decline_with_a_reason_and_a_sealed_note(hub: Hub) -> None:
    gid = build_group(hub)
    rid = hub.client.post("/referrals", json=send_body(gid), headers=hub.headers("dr-lead")).json()[
        "referral_id"
    ]
    start = hub.ledger_size()
    declined = hub.client.post(
        f"/referrals/{rid}/decline",
        json={"reason": "no_capacity", "note": "Synthetic: theatre list full, try Kowloon"},
        headers=hub.headers("sp-cardio-b"),
    )
    assert declined.status_code == 200 and declined.json()["decline_reason"] == "no_capacity"
    entry = next(e for e in entries_since(hub, start) if e.get("facts"))
    assert entry["facts"]["op"] == "referral.decline"
    assert entry["facts"]["decline_reason"] == "no_capacity"
    assert "theatre" not in str(entries_since(hub, start))
    again = hub.client.post(f"/referrals/{rid}/accept", headers=hub.headers("sp-cardio-b"))
    assert again.status_code == 403  # final: no policy permits deciding it again


def test_redirect_hands_the_referral_to_the_new_target(hub: Hub) -> None:
    gid = build_group(hub)
    rid = hub.client.post("/referrals", json=send_body(gid), headers=hub.headers("dr-lead")).json()[
        "referral_id"
    ]
    moved = hub.client.post(
        f"/referrals/{rid}/redirect",
        json={"target": {"institution": INST_A, "specialty": "cardiology", "team": "cath-lab"}},
        headers=hub.headers("sp-cardio-b"),
    )
    assert moved.status_code == 200 and moved.json()["redirect_count"] == 1
    # The first receiver no longer sees it; the new target does, and accepts.
    assert (
        hub.client.get(f"/referrals/{rid}", headers=hub.headers("sp-cardio-b")).status_code == 403
    )
    inbox = hub.client.get("/referrals", headers=hub.headers("sp-cardio-a")).json()["referrals"]
    assert rid in [r["referral_id"] for r in inbox]
    accepted = hub.client.post(f"/referrals/{rid}/accept", headers=hub.headers("sp-cardio-a"))
    assert accepted.status_code == 200
    assert accepted.json()["target"] == {
        "institution": INST_A,
        "specialty": "cardiology",
        "team": "cath-lab",
        "practitioner": "",
    }


def test_the_referrer_cancels_a_pending_referral(hub: Hub) -> None:
    gid = build_group(hub)
    rid = hub.client.post("/referrals", json=send_body(gid), headers=hub.headers("dr-lead")).json()[
        "referral_id"
    ]
    assert (
        hub.client.post(f"/referrals/{rid}/cancel", headers=hub.headers("dr-member")).status_code
        == 403
    )
    cancelled = hub.client.post(f"/referrals/{rid}/cancel", headers=hub.headers("dr-lead"))
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert (
        hub.client.post(f"/referrals/{rid}/accept", headers=hub.headers("sp-cardio-b")).status_code
        == 403
    )


def test_without_a_group_the_referral_opens_one(hub: Hub) -> None:
    body = send_body("", group_id=None)
    sent = hub.client.post("/referrals", json=body, headers=hub.headers("dr-outsider"))
    assert sent.status_code == 201, sent.text
    gid = sent.json()["group_id"]
    group = hub.client.get(f"/groups/{gid}", headers=hub.headers("dr-outsider")).json()
    assert group["patient_id"] == PATIENT and group["members"][0]["role"] == "lead"
    rid = sent.json()["referral_id"]
    assert (
        hub.client.post(f"/referrals/{rid}/accept", headers=hub.headers("sp-cardio-b")).status_code
        == 200
    )
    assert hub.client.get(f"/groups/{gid}", headers=hub.headers("sp-cardio-b")).status_code == 200


REFUSALS = [
    # (why, changes to the body, who sends, status, error code, ledger reason)
    (
        "no legal basis",
        {"legal_basis": None},
        "dr-lead",
        422,
        "legal_basis_required",
        "legal-basis-required",
    ),
    (
        "target not admitted",
        {"target": {"institution": NOT_ADMITTED, "specialty": "cardiology"}},
        "dr-lead",
        422,
        "institution_not_admitted",
        "institution-not-admitted",
    ),
    (
        "named doctor at another institution",
        {"target": {"institution": INST_B, "practitioner": "M30001"}},
        "dr-lead",
        422,
        "practitioner_not_at_institution",
        "practitioner-not-at-institution",
    ),
    (
        "emergency basis for a routine referral",
        {"urgency": "routine"},
        "dr-lead",
        403,
        "access_denied",
        "emergency-basis-only-for-emergency-referrals",
    ),
    (
        "referral for care, patient not told",
        {"urgency": "routine", "legal_basis": {"basis": "referral_for_care"}},
        "dr-lead",
        403,
        "access_denied",
        "referral-for-care-needs-patient-informed-or-consenting",
    ),
]


@pytest.mark.parametrize(("why", "changes", "who", "status", "code", "reason"), REFUSALS)
def test_refusals_are_clear_audited_and_store_nothing(
    hub: Hub, why: str, changes: dict[str, Any], who: str, status: int, code: str, reason: str
) -> None:
    gid = build_group(hub)
    start = hub.ledger_size()
    before = hub.services.referrals._repo.list_ids("REFERRALS#FROM#M20001", 1000)  # type: ignore[union-attr]
    refused = hub.client.post(
        "/referrals", json=send_body(gid, **changes), headers=hub.headers(who)
    )
    assert refused.status_code == status, refused.text
    error = refused.json()["error"]
    assert error["code"] == code and PATIENT not in refused.text and "RIF" not in refused.text
    entries = entries_since(hub, start)
    denied = [e for e in entries if e["outcome"] == "denied"]
    assert len(denied) == 1 and reason in denied[0]["reason"], (why, entries)
    assert denied[0]["resource"]["type"] == "referral"
    assert not any(e["outcome"] == "success" for e in entries)
    after = hub.services.referrals._repo.list_ids("REFERRALS#FROM#M20001", 1000)  # type: ignore[union-attr]
    assert after == before


def test_a_decision_from_the_wrong_institution_is_refused_and_audited(hub: Hub) -> None:
    gid = build_group(hub)
    rid = hub.client.post("/referrals", json=send_body(gid), headers=hub.headers("dr-lead")).json()[
        "referral_id"
    ]
    start = hub.ledger_size()
    # A cardiologist, but at INST_A, not the addressed INST_B.
    refused = hub.client.post(f"/referrals/{rid}/accept", headers=hub.headers("sp-cardio-a"))
    assert refused.status_code == 403
    denied = entries_since(hub, start)
    assert [(e["action"], e["outcome"], e["resource"]["id"]) for e in denied] == [
        ("join", "denied", rid)
    ]
    stored = hub.services.referrals._repo.load(rid)  # type: ignore[union-attr]
    assert stored is not None and stored.referral.status.value == "requested"


def test_unknown_referrals_are_404_and_audited(hub: Hub) -> None:
    start = hub.ledger_size()
    missing = "0" * 32
    assert (
        hub.client.get(f"/referrals/{missing}", headers=hub.headers("dr-lead")).status_code == 404
    )
    assert [e["reason"] for e in entries_since(hub, start)] == ["referral-not-found"]
