"""Every decision leaves a ledger entry; ledger entries never hold patient content."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hub_testkit import PATIENT, Hub, build_group

from app.audit.events import AuditEvent, Outcome, patient_reference


def event(hub: Hub, receipt: dict[str, Any]) -> dict[str, Any]:
    return hub.audit_entry(receipt)


def test_allow_decisions_are_audited_with_their_reason_and_receipt(hub: Hub) -> None:
    gid = build_group(hub)
    r = hub.client.get(f"/groups/{gid}", headers=hub.headers("dr-member"))
    assert r.status_code == 200
    stored = event(hub, r.json()["audit_receipt"])
    assert stored["outcome"] == "success"
    assert stored["reason"] == "member-views-open-group"
    assert stored["action"] == "read"
    assert stored["actor"]["mchk_reg_no"] == "M20002"
    assert stored["actor"]["roles"] == ["doctor"]
    assert stored["resource"]["type"] == "group" and stored["resource"]["id"] == gid
    assert stored["resource"]["patient_ref"] == patient_reference(
        PATIENT, hub.settings.audit_hash_key.get_secret_value().encode()
    )
    # The receipt header names the same leaf.
    assert r.headers["audit-receipt"].startswith(f"{stored['leaf_index']};")


def test_deny_decisions_are_audited_with_their_reason(hub: Hub) -> None:
    gid = build_group(hub)
    before = hub.ledger_size()
    r = hub.client.get(f"/groups/{gid}", headers=hub.headers("dr-removed"))
    assert r.status_code == 403
    new = hub.audit_entries(before)
    denials = [
        e for e in new if e["resource"]["id"] == gid and e["actor"].get("mchk_reg_no") == "M20003"
    ]
    assert [(e["outcome"], e["reason"]) for e in denials] == [("denied", "no-permitting-policy")]
    # A refusal records its receipt on the response too.
    assert int(r.headers["audit-receipt"].split(";")[0]) == denials[0]["leaf_index"]


def test_refused_registrations_are_audited(hub: Hub) -> None:
    before = hub.ledger_size()
    r = hub.client.get("/me", headers=hub.headers("dr-suspended"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "registration_suspended"
    assert any(
        e["action"] == "login"
        and e["outcome"] == "denied"
        and e["reason"] == "registration_suspended"
        for e in hub.audit_entries(before)
    )


def test_break_glass_is_audited_alarmed_and_time_boxed(hub: Hub) -> None:
    gid = build_group(hub)
    who = hub.headers("dr-bg-audit")
    assert hub.client.get(f"/groups/{gid}", headers=who).status_code == 403
    justification = "Synthetic: patient arrived unconscious, GCS 6, history needed"
    too_long = {"patient_id": PATIENT, "justification": justification, "minutes": 241}
    assert hub.client.post("/break-glass", json=too_long, headers=who).status_code == 422
    r = hub.client.post(
        "/break-glass",
        json={"patient_id": PATIENT, "justification": justification, "minutes": 240},
        headers=who,
    )
    assert r.status_code == 201, r.text
    grant = r.json()
    view = hub.client.get(f"/groups/{gid}", headers=who)
    assert view.status_code == 200
    assert event(hub, view.json()["audit_receipt"])["reason"] == (
        "break-glass-views-patient-groups"
    )
    started = event(hub, grant["audit_receipt"])
    assert started["action"] == "break_glass" and started["resource"]["type"] == "patient"
    outbox = hub.services.groups._repo.outbox(hub.clock().date().isoformat())
    assert any(
        o["kind"] == "break_glass_alarm" and o["grant_id"] == grant["grant_id"] for o in outbox
    )
    # 4 hours is the ceiling: one minute past it the grant no longer opens anything.
    hub.clock.offset = timedelta(hours=4, minutes=1)
    try:
        assert hub.client.get(f"/groups/{gid}", headers=who).status_code == 403
    finally:
        hub.clock.offset = timedelta(0)
    # Ended early: access stops on the next request; ending twice is a conflict.
    end = hub.client.post(f"/break-glass/{grant['grant_id']}/end", headers=who)
    assert end.status_code == 200 and end.json()["live"] is False
    assert hub.client.get(f"/groups/{gid}", headers=who).status_code == 403
    again = hub.client.post(f"/break-glass/{grant['grant_id']}/end", headers=who)
    assert again.status_code == 409


def test_audit_trail_holds_no_patient_content(hub: Hub) -> None:
    gid = build_group(hub)
    secret_words = "Synthetic-secret-history-of-allergy"
    who = hub.headers("dr-bg-audit")
    grant = hub.client.post(
        "/break-glass",
        json={"patient_id": PATIENT, "justification": secret_words, "minutes": 5},
        headers=who,
    ).json()
    assert hub.client.get(f"/groups/{gid}", headers=who).status_code == 200
    hub.client.post(f"/break-glass/{grant['grant_id']}/end", headers=who)
    raw = hub.dynamodb.scan(TableName=hub.settings.table_ledger)["Items"]
    assert raw, "the audit trail is empty"
    dump = repr(raw)
    assert PATIENT not in dump
    assert secret_words not in dump
    assert "Synthetic case review" not in dump  # group titles are content too


def test_the_ledger_never_overwrites_an_entry(hub: Hub) -> None:
    trail = hub.services.ledger.trail
    e = AuditEvent(
        action="ViewProfile",
        outcome=Outcome.DENY,
        reason="test",
        actor="00000000-0000-4000-8000-000000000001",
    )
    first = trail.append(e)
    second = trail.append(e)
    assert second.leaf_index == (first.leaf_index or 0) + 1
    stored = hub.audit_entries(first.leaf_index or 0)[:2]
    assert [x["sequence"] for x in stored] == [first.leaf_index, second.leaf_index]
    # A direct write to a taken slot is refused by the store's condition.
    with pytest.raises(ClientError) as raised:
        trail.table.client.put_item(**trail.table.entry_put(first.leaf_index or 0, b"{}"))
    assert raised.value.response["Error"]["Code"] == "ConditionalCheckFailedException"


def test_patient_reference_is_keyed() -> None:
    a = patient_reference("pt-1", b"k" * 32)
    assert a == patient_reference("pt-1", b"k" * 32)
    assert a != patient_reference("pt-1", b"j" * 32)
    assert a != patient_reference("pt-2", b"k" * 32)
    assert "pt-1" not in a
