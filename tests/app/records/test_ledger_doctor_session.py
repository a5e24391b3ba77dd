"""A whole doctor session, through the API, lands in the audit ledger in order.

Login, group create / invite / accept / leave / remove, break-glass, a denied access and
the record life cycle (upload, read, share, shred): every response carries its receipt,
the entries at those leaf indices say exactly what happened (who, what, on which
resource, outcome) and nothing else was appended; then the signed head covers them and
the verifier accepts the whole log.
"""

from __future__ import annotations

import os

from hub_testkit import PASSWORD, PATIENT
from records_testkit import RecordsHarness

from app import local
from app.ledger.checkpoint import load_public_key
from app.ledger.receipts import parse_receipt_header
from app.ledger.verify import snapshot_from_deployment, verify_snapshot


def test_a_doctor_session_is_recorded_entry_by_entry(records: RecordsHarness) -> None:
    hub, client = records.hub, records.client
    # Login: a fresh Cognito session for the lead (refused logins are ledger entries too).
    tokens = local.login(
        hub.cognito,
        hub.pool_id,
        hub.client_id,
        "dr-lead",
        PASSWORD,
        authenticator=hub.authenticator,
    )
    lead = {"Authorization": f"Bearer {tokens['AccessToken']}"}
    member, target = hub.headers("dr-member"), hub.headers("dr-target")
    outsider, bg = hub.headers("dr-outsider"), hub.headers("dr-bg-audit")
    sub = {name: hub.principal(name).sub for name in ("dr-lead", "dr-member", "dr-target")}
    sub |= {name: hub.principal(name).sub for name in ("dr-outsider", "dr-bg-audit")}

    start = hub.ledger_size()
    steps: list[tuple[str, object]] = []

    def call(who: str, response: object) -> object:
        steps.append((who, response))
        return response

    call("dr-lead", client.get("/me", headers=lead))
    created = call(
        "dr-lead",
        client.post(
            "/groups",
            json={"patient_id": PATIENT, "title": "Session walk", "purpose": ""},
            headers=lead,
        ),
    )
    gid = created.json()["group_id"]  # type: ignore[attr-defined]
    for reg_no in ("M20002", "M20012"):
        call(
            "dr-lead",
            client.post(
                f"/groups/{gid}/invitations",
                json={"reg_no": reg_no, "role": "member"},
                headers=lead,
            ),
        )
    call("dr-member", client.post(f"/groups/{gid}/accept", headers=member))
    call("dr-target", client.post(f"/groups/{gid}/accept", headers=target))
    call("dr-member", client.post(f"/groups/{gid}/leave", headers=member))
    call("dr-lead", client.delete(f"/groups/{gid}/members/M20012", headers=lead))
    call(
        "dr-bg-audit",
        client.post(
            "/break-glass",
            json={"patient_id": PATIENT, "justification": "Synthetic emergency", "minutes": 5},
            headers=bg,
        ),
    )
    call("dr-outsider", client.get(f"/groups/{gid}", headers=outsider))
    uploaded = call(
        "dr-lead",
        client.post(
            f"/patients/{PATIENT}/records",
            content=os.urandom(1000),
            headers={**lead, "Content-Type": "application/dicom"},
        ),
    )
    rid = uploaded.json()["record_id"]  # type: ignore[attr-defined]
    call("dr-lead", client.get(f"/records/{rid}/content", headers=lead))
    call("dr-lead", client.post(f"/records/{rid}/share", json={"group_id": gid}, headers=lead))
    call(
        "dr-lead",
        client.request(
            "DELETE",
            f"/records/{rid}/versions/1",
            json={"reason": "entered_in_error"},
            headers=lead,
        ),
    )

    expected = [
        ("read", "service", "success"),
        ("create", "group", "success"),
        ("share", "membership", "success"),
        ("share", "membership", "success"),
        ("join", "group", "success"),
        ("join", "group", "success"),
        ("leave", "group", "success"),
        ("revoke", "membership", "success"),
        ("break_glass", "patient", "success"),
        ("read", "group", "denied"),
        ("create", "record", "success"),
        ("read", "record", "success"),
        ("share", "share", "success"),
        ("shred", "record", "success"),
    ]
    statuses = [r.status_code for _, r in steps]  # type: ignore[attr-defined]
    assert statuses == [200, 201, 201, 201, 200, 200, 200, 200, 201, 403, 201, 200, 201, 200]
    indices = []
    for _, response in steps:
        [(index, _)] = parse_receipt_header(response.headers["audit-receipt"])  # type: ignore[attr-defined]
        indices.append(index)
    entries = hub.audit_entries(start)
    # Nothing but these actions was appended, in this order, at the receipts' indices.
    assert [e["leaf_index"] for e in entries] == indices == list(range(start, start + 14))
    got = [(e["action"], e["resource"]["type"], e["outcome"]) for e in entries]
    assert got == expected
    assert [e["actor"]["sub"] for e in entries] == [sub[who] for who, _ in steps]
    assert all(e["resource"]["id"].startswith(gid) for e in entries[1:8])
    # Record entries name the record (with its version or share where that applies).
    assert all(e["resource"]["id"].split(":")[0] == rid for e in entries[10:])
    assert all(e["resource"].get("patient_ref") for e in entries[10:])
    assert PATIENT not in repr(entries)

    head = hub.services.ledger.integrate()
    assert head is not None and head.size >= start + 14
    report = verify_snapshot(
        snapshot_from_deployment(
            hub.dynamodb,
            records.s3,
            hub.settings.table_ledger,
            hub.settings.checkpoint_bucket,
        ),
        load_public_key(hub.services.ledger.public_key_pem()),
        indices=indices,
    )
    assert report.ok, report.findings
    assert report.inclusions_checked == 14
