"""The audit routes: who may read which entries, signed heads, proofs, export, receipts."""

from __future__ import annotations

import base64
import json

import pytest
from hub_testkit import PATIENT, Hub, build_group

from app.ledger.checkpoint import SignedTreeHead, load_public_key, verify_head
from app.ledger.entries import AuditEntry
from app.ledger.fhir import validate
from app.ledger.merkle import leaf_hash, verify_consistency, verify_inclusion
from app.ledger.receipts import parse_receipt_header

ROUTES = [
    "/audit/entries",
    "/audit/head",
    "/audit/public-key",
    "/audit/proof/inclusion?index=0",
    "/audit/proof/consistency?first=0&second=1",
    "/audit/export",
]


def b64(s: str) -> bytes:
    return base64.b64decode(s)


@pytest.mark.parametrize("path", ROUTES)
def test_audit_routes_need_a_bearer_token(hub: Hub, path: str) -> None:
    assert hub.client.get(path).status_code == 401


def test_a_non_clinical_non_auditor_may_not_read_entries(hub: Hub) -> None:
    r = hub.client.get("/audit/entries", headers=hub.headers("inst-admin"))
    assert r.status_code == 403
    r = hub.client.get("/audit/export", headers=hub.headers("inst-admin"))
    assert r.status_code == 403


def test_doctors_see_only_their_own_actions_auditors_see_all(hub: Hub) -> None:
    gid = build_group(hub)  # dr-lead and dr-member act on the group
    hub.client.get(f"/groups/{gid}", headers=hub.headers("dr-member"))
    hub.services.ledger.integrate()
    lead = hub.principal("dr-lead").sub
    member = hub.principal("dr-member").sub

    own = hub.client.get(f"/audit/entries?resource=group:{gid}", headers=hub.headers("dr-member"))
    assert own.status_code == 200
    actors = {e["entry"]["actor"]["sub"] for e in own.json()["entries"]}
    assert actors == {member}
    refused = hub.client.get(f"/audit/entries?actor={lead}", headers=hub.headers("dr-member"))
    assert refused.status_code == 403

    audited = hub.client.get(
        f"/audit/entries?resource=group:{gid}", headers=hub.headers("auditor-1")
    )
    assert audited.status_code == 200
    rows = audited.json()["entries"]
    assert {lead, member} <= {e["entry"]["actor"]["sub"] for e in rows}
    for row in rows:  # canonical bytes, parsed entry and leaf hash agree
        raw = b64(row["canonical"])
        assert AuditEntry.from_bytes(raw).to_dict() == row["entry"]
        assert b64(row["leaf_hash"]) == leaf_hash(raw)
        assert row["entry"]["sequence"] == row["leaf_index"]
    by_actor = hub.client.get(f"/audit/entries?actor={lead}", headers=hub.headers("auditor-1"))
    assert {e["entry"]["actor"]["sub"] for e in by_actor.json()["entries"]} == {lead}
    patient = rows[0]["entry"]["resource"]["patient_ref"]
    by_patient = hub.client.get(
        f"/audit/entries?patient_ref={patient}", headers=hub.headers("auditor-1")
    )
    assert by_patient.json()["entries"] and PATIENT not in by_patient.text
    # Time filter: only entries from before the epoch's second day (the shared session
    # ledger may hold some: message entries carry the homeserver's event time, and the
    # messaging tests push events stamped in 1970), never today's.
    early = hub.client.get(
        "/audit/entries?until=1970-01-02T00:00:00Z", headers=hub.headers("auditor-1")
    )
    assert early.status_code == 200
    assert all(e["entry"]["timestamp_ms"] < 86_400_000 for e in early.json()["entries"])
    # Without a facet, a time range is bounded (one query per day).
    wide = hub.client.get(
        "/audit/entries?since=2020-01-01T00:00:00Z", headers=hub.headers("auditor-1")
    )
    assert wide.status_code == 422 and wide.json()["error"]["code"] == "range_too_wide"
    recent = hub.client.get(
        f"/audit/entries?actor={lead}&since=2020-01-01T00:00:00Z", headers=hub.headers("auditor-1")
    )
    assert recent.status_code == 200 and recent.json()["entries"]


def test_reading_the_audit_log_is_itself_audited(hub: Hub) -> None:
    r = hub.client.get("/audit/entries", headers=hub.headers("auditor-1"))
    assert r.status_code == 200
    [(index, _)] = parse_receipt_header(r.headers["audit-receipt"])
    entry = hub.audit_entry({"position": str(index)})
    assert (entry["action"], entry["resource"]["type"]) == ("query", "service")


def test_head_signature_and_proofs_verify_with_the_published_key(hub: Hub) -> None:
    gid = build_group(hub)
    r = hub.client.get(f"/groups/{gid}", headers=hub.headers("dr-member"))
    [(index, _)] = parse_receipt_header(r.headers["audit-receipt"])
    first = hub.services.ledger.integrate()
    assert first is not None
    hub.client.get(f"/groups/{gid}", headers=hub.headers("dr-member"))
    hub.services.ledger.integrate()

    who = hub.headers("dr-member")
    head_doc = hub.client.get("/audit/head", headers=who).json()
    head = SignedTreeHead.from_json(head_doc)
    pem = hub.client.get("/audit/public-key", headers=who)
    assert pem.status_code == 200 and pem.text.startswith("-----BEGIN PUBLIC KEY-----")
    verify_head(head, load_public_key(pem.content))
    assert head_doc["checkpoint"].encode() == head.message()

    inc = hub.client.get(f"/audit/proof/inclusion?index={index}", headers=who).json()
    assert inc["size"] == head.size
    verify_inclusion(
        b64(inc["leaf_hash"]), index, head.size, [b64(p) for p in inc["proof"]], head.root
    )
    assert inc["entry"]["sequence"] == index  # the member's own entry is shown
    other = hub.client.get(f"/audit/proof/inclusion?index={index}", headers=hub.headers("dr-lead"))
    assert other.status_code == 200 and "entry" not in other.json()

    con = hub.client.get(
        f"/audit/proof/consistency?first={first.size}&second={head.size}", headers=who
    ).json()
    verify_consistency(first.size, head.size, [b64(p) for p in con["proof"]], first.root, head.root)
    bad = hub.client.get(f"/audit/proof/inclusion?index={head.size}", headers=who)
    assert bad.status_code == 422


def test_receipts_ride_on_responses_and_name_the_head_once_covered(hub: Hub) -> None:
    r = hub.client.post(
        "/groups",
        json={"patient_id": PATIENT, "title": "Receipt probe", "purpose": ""},
        headers=hub.headers("dr-lead"),
    )
    assert r.status_code == 201
    [(index, event_id)] = parse_receipt_header(r.headers["audit-receipt"])
    assert r.json()["audit_receipt"]["event_id"] == event_id
    assert int(r.json()["audit_receipt"]["position"]) == index
    assert r.headers["x-request-id"]
    entry = hub.audit_entry({"position": str(index)})
    assert entry["request_id"] == r.headers["x-request-id"]
    head = hub.services.ledger.integrate()
    assert head is not None and head.size > index
    again = hub.client.get("/me", headers=hub.headers("dr-lead"))
    [(later, _)] = parse_receipt_header(again.headers["audit-receipt"])
    assert later >= head.size  # /me's own entry is newer than the head
    fields = dict(p.split("=", 1) for p in again.headers["audit-tree-head"].split(";"))
    # The latest signed head rides along: it covers the earlier receipt, and its root is
    # the one GET /audit/head signs.
    assert int(fields["size"]) == head.size > index
    assert b64(fields["root"].strip('"')) == head.root


def test_export_is_fhir_balp_ndjson_for_auditors_only(hub: Hub) -> None:
    build_group(hub)
    head = hub.services.ledger.integrate()
    assert head is not None
    start = max(0, head.size - 40)
    r = hub.client.get(f"/audit/export?start={start}", headers=hub.headers("auditor-1"))
    assert r.status_code == 200
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert [res["id"] for res in lines] == [f"ledger-{i}" for i in range(start, head.size)]
    for resource in lines:
        validate(resource)
        assert resource["resourceType"] == "AuditEvent"
    profiles = {p for res in lines for p in res.get("meta", {}).get("profile", [])}
    assert any(p.endswith("PatientCreate") for p in profiles)
    assert any(p.endswith("PatientUpdate") for p in profiles)
    assert PATIENT not in r.text
    assert hub.client.get("/audit/export", headers=hub.headers("dr-lead")).status_code == 403


def test_routes_serve_every_trail_of_a_sharded_ledger(hub: Hub) -> None:
    """A ledger of three trails behind the routes: the head names the ledger checkpoint,
    an inclusion proof on trail k chains entry -> trail head -> the signed ledger root,
    the export and the entry listing carry every trail."""
    import uuid

    from app import local
    from app.audit.events import AuditEvent, Outcome
    from app.ledger.checkpoint import (
        LedgerCheckpoint,
        TrailHead,
        verify_ledger_checkpoint,
        verify_trail_head_in,
    )
    from app.ledger.service import Ledger, build_ledger
    from app.wiring import provide

    name = f"trails-{uuid.uuid4().hex[:6]}"
    local.create_service_tables(hub.dynamodb, {"ledger": name})
    import boto3

    session = boto3.session.Session(region_name="ap-east-1")
    sharded = build_ledger(
        hub.dynamodb,
        name,
        kms=session.client("kms"),
        # No checkpoint bucket: the session's bucket archives the shared ledger's heads,
        # which other tests verify (this ledger's checkpoints would not match them).
        signing_key_arn=hub.settings.signing_key_arn,
        origin="test",
        trails=3,
    )
    actors = [f"0b6f7c1e-2d3a-4c5b-8e9f-{n:012d}" for n in range(9)]
    receipts = [
        sharded.trail.append(
            AuditEvent(
                action="ViewGroup",
                outcome=Outcome.ALLOW,
                reason="member-views-open-group",
                actor=a,
                actor_reg_no="M20001",
                institution="harbour-cardiac-alliance",
                resource=f"Group::g{n}",
                actor_roles=("doctor",),
            )
        )
        for n, a in enumerate(actors)
    ]
    sharded.integrate()
    assert {r.trail for r in receipts} == {0, 1, 2}
    original = hub.services.ledger
    provide(hub.app, Ledger, sharded)
    try:
        auditor = hub.headers("auditor-1")
        head = hub.client.get("/audit/head?trail=2", headers=auditor).json()
        assert head["trail"] == 2 and head["trails"] == 3
        checkpoint = LedgerCheckpoint.from_json(head["ledger_checkpoint"])
        key = load_public_key(hub.client.get("/audit/public-key", headers=auditor).content)
        verify_ledger_checkpoint(checkpoint, key)
        for r in receipts:
            proof = hub.client.get(
                f"/audit/proof/inclusion?trail={r.trail}&index={r.leaf_index}", headers=auditor
            ).json()
            listed = TrailHead(r.trail, proof["size"], checkpoint.heads[r.trail].root)
            verify_inclusion(
                b64(proof["leaf_hash"]),
                r.leaf_index or 0,
                proof["size"],
                [b64(p) for p in proof["proof"]],
                listed.root,
            )
            verify_trail_head_in(
                listed,
                [b64(p) for p in proof["trail_head_proof"]],
                checkpoint.trails,
                checkpoint.root,
            )
            assert proof["entry"]["actor"]["sub"] == actors[receipts.index(r)]
        bad = hub.client.get("/audit/proof/inclusion?trail=3&index=0", headers=auditor)
        assert bad.json()["error"]["code"] == "invalid_proof_request", bad.text
        exported = hub.client.get("/audit/export", headers=auditor)
        events = [json.loads(line) for line in exported.text.splitlines()]
        assert len(events) == len(actors)
        listed_rows = hub.client.get(f"/audit/entries?actor={actors[4]}", headers=auditor).json()[
            "entries"
        ]
        assert [(e["trail"], e["leaf_index"]) for e in listed_rows] == [
            (receipts[4].trail, receipts[4].leaf_index)
        ]
    finally:
        provide(hub.app, Ledger, original)
