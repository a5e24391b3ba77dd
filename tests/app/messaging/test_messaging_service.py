"""The messaging routes and the room ledger, in the service (scripted homeserver).

``POST /messaging/session`` (Cedar, audited before the homeserver issues anything, 503
when messaging is off or the homeserver does not answer); the application service's
transactions and upload reports written to the ledger exactly as the metrics contract
says (``app/audit/facts.py``), once per event, never with content. No Synapse here: the
same pushes come from the real homeserver in ``test_messaging_synapse.py`` and the
walk-through.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from api_contract import CONTRACT, checked
from fastapi.testclient import TestClient
from hub_testkit import PATIENT, Hub

from app.audit.events import patient_reference
from app.audit.facts import department_code
from app.dependencies import build_services
from app.ledger.errors import LedgerBusy
from app.main import create_app, create_appservice_app
from app.metrics.engine import RESPONSE_RATE, compute_metrics

TXN = "/_matrix/app/v1/transactions"
UPLOADS = "/_matrix/app/unstable/org.hub/uploads"


def user(reg_no: str) -> str:
    return f"@doc-{reg_no.lower()}:hub.local"


def new_group(hub: Hub) -> tuple[str, str]:
    r = hub.client.post(
        "/groups",
        json={"patient_id": PATIENT, "title": "Synthetic ledger case"},
        headers=hub.headers("dr-lead"),
    )
    assert r.status_code == 201
    gid = r.json()["group_id"]
    room = hub.homeserver.room_of_alias(f"#grp-{gid}:hub.local")
    return gid, room.room_id


def push(hub: Hub, txn: str, events: list[dict[str, Any]]) -> Any:
    return hub.client.put(
        f"{TXN}/{txn}",
        json={"events": events},
        headers={"Authorization": f"Bearer {hub.registration.hs_token}"},
    )


def encrypted(room_id: str, sender: str, event_id: str, ts: int) -> dict[str, Any]:
    return {
        "type": "m.room.encrypted",
        "room_id": room_id,
        "sender": sender,
        "event_id": event_id,
        "origin_server_ts": ts,
        "content": {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AwgAEo...opaque"},
    }


def entries_after(hub: Hub, start: int) -> list[dict[str, Any]]:
    return hub.audit_entries(start)


# --- sessions --------------------------------------------------------------------------------


def test_a_doctor_gets_a_session_after_the_checks_and_it_is_audited(hub: Hub) -> None:
    start = hub.ledger_size()
    r = hub.client.post("/messaging/session", json={}, headers=hub.headers("dr-member"))
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["user_id"] == user("M20002") and body["access_token"]
    assert body["homeserver_url"] == "http://homeserver.test"
    (entry,) = [e for e in entries_after(hub, start) if e["action"] == "login"]
    assert entry["reason"] == "clinician-opens-messaging-session"
    assert body["access_token"] not in str(entry)
    facts = hub.services.rooms.directory.sender("M20002")
    assert facts is not None and facts.institution == hub.people["dr-member"].institution
    assert facts.sub == hub.principal("dr-member").sub


def test_non_clinicians_get_no_session(hub: Hub) -> None:
    r = hub.client.post("/messaging/session", json={}, headers=hub.headers("auditor-1"))
    assert r.status_code == 403


def test_a_homeserver_that_does_not_answer_is_a_503_after_the_decision_is_recorded(
    hub: Hub,
) -> None:
    start = hub.ledger_size()
    hub.homeserver.down = True
    try:
        r = hub.client.post("/messaging/session", json={}, headers=hub.headers("dr-target"))
    finally:
        hub.homeserver.down = False
    assert r.status_code == 503 and r.json()["error"]["code"] == "homeserver_unavailable"
    assert r.headers["retry-after"] == "1"
    assert [e["reason"] for e in entries_after(hub, start)] == ["clinician-opens-messaging-session"]


@pytest.fixture(scope="module")
def messaging_off(hub: Hub) -> Iterator[TestClient]:
    settings = hub.settings.model_copy(
        update={"matrix_homeserver_url": "", "matrix_registration_file": ""}
    )
    app = create_app(settings, services=build_services(settings))
    checked(app, CONTRACT)  # messaging off answers what the document lists too
    with TestClient(app) as client:
        app.state.services.ledger.stop()
        yield client


def test_with_messaging_off_the_routes_answer_503(hub: Hub, messaging_off: TestClient) -> None:
    r = messaging_off.post("/messaging/session", json={}, headers=hub.headers("dr-lead"))
    assert r.status_code == 503 and r.json()["error"]["code"] == "messaging_not_configured"
    r = messaging_off.put(f"{TXN}/t1", json={"events": []}, headers={"Authorization": "Bearer x"})
    assert r.status_code == 503
    # and groups still work, without rooms
    r = messaging_off.post(
        "/groups", json={"patient_id": PATIENT, "title": "No rooms"}, headers=hub.headers("dr-lead")
    )
    assert r.status_code == 201


def test_the_appservice_app_answers_a_busy_ledger_with_a_retryable_503(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The homeserver's private path (create_appservice_app) answers as the service app
    does, and as both document: a ledger that stays busy is 503 ledger_busy, not a 500."""
    app = create_appservice_app(hub.settings, services=hub.services)
    checked(app, CONTRACT)

    def busy(*_args: Any, **_kwargs: Any) -> None:
        raise LedgerBusy()

    assert hub.services.rooms is not None
    monkeypatch.setattr(hub.services.rooms, "handle_transaction", busy)
    client = TestClient(app, raise_server_exceptions=False)  # no lifespan: no sequencer thread
    headers = {"Authorization": f"Bearer {hub.registration.hs_token}"}
    r = client.put(f"{TXN}/busy-1", json={"events": []}, headers=headers)
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert r.json()["error"]["code"] == "ledger_busy"


# --- the room ledger ---------------------------------------------------------------------------


def test_a_message_send_is_one_entry_of_the_metrics_contract_once(hub: Hub) -> None:
    gid, room_id = new_group(hub)
    hub.client.post("/messaging/session", json={}, headers=hub.headers("dr-lead"))
    start = hub.ledger_size()
    sent_ms = int(time.time() * 1000) - 60_000  # a minute ago: a push that took a while
    event = encrypted(room_id, user("M20001"), "$AbCdEf0123456789-_xyz", sent_ms)
    assert push(hub, "txn-send-1", [event]).status_code == 200
    # The same event again (another transaction: a redelivery) is not recorded twice.
    assert push(hub, "txn-send-2", [event]).status_code == 200
    sends = [e for e in entries_after(hub, start) if e["facts"].get("op") == "message.send"]
    (entry,) = sends
    lead = hub.principal("dr-lead")
    assert entry["action"] == "create"
    assert entry["resource"] == {
        "type": "message",
        "id": "m.AbCdEf0123456789-_xyz",
        "patient_ref": patient_reference(
            PATIENT, hub.services.settings.audit_hash_key.get_secret_value().encode()
        ),
    }
    assert entry["facts"] == {
        "op": "message.send",
        "group": gid,
        "department": department_code(lead.specialties),
        "phase": str(hub.settings.phase),
    }
    assert entry["actor"]["sub"] == lead.sub and entry["actor"]["mchk_reg_no"] == "M20001"
    assert entry["actor"]["institution_id"] == lead.institution
    assert entry["timestamp_ms"] == sent_ms
    assert "ciphertext" not in str(entry) and "AwgAEo" not in str(entry)


@pytest.mark.parametrize(
    "stated_ms",
    [1, 1_767_000_000_000, int(time.time() * 1000) + 3_600_000],
    ids=["epoch", "a-year-back", "an-hour-ahead"],
)
def test_a_homeserver_cannot_backdate_or_foredate_an_entry(hub: Hub, stated_ms: int) -> None:
    """A timestamp outside the hub's window (15 min behind, 30 s ahead) is replaced by the
    hub's own clock: the ledger's times are the hub's, not what a pusher claims."""
    _, room_id = new_group(hub)
    hub.client.post("/messaging/session", json={}, headers=hub.headers("dr-lead"))
    start = hub.ledger_size()
    before = int(time.time() * 1000)
    event = encrypted(room_id, user("M20001"), f"$dated-{stated_ms}", stated_ms)
    assert push(hub, f"txn-dated-{stated_ms}", [event]).status_code == 200
    after = int(time.time() * 1000)
    (entry,) = [e for e in entries_after(hub, start) if e["facts"].get("op") == "message.send"]
    assert before <= entry["timestamp_ms"] <= after


def test_membership_changes_and_the_hubs_own_posts_are_entries(hub: Hub) -> None:
    gid, room_id = new_group(hub)
    start = hub.ledger_size()
    events = [
        {
            "type": "m.room.member",
            "room_id": room_id,
            "state_key": user("M20002"),
            "sender": "@hub:hub.local",
            "event_id": f"$invite-{gid}",
            "origin_server_ts": 1,
            "content": {"membership": "invite"},
        },
        {
            "type": "m.room.member",
            "room_id": room_id,
            "state_key": user("M20001"),
            "sender": "@hub:hub.local",
            "event_id": f"$kick-{gid}",
            "origin_server_ts": 2,
            "content": {"membership": "leave"},
        },
        encrypted(room_id, "@hub-cards:hub.local", f"$card-{gid}", 3),
    ]
    assert push(hub, f"txn-members-{gid}", events).status_code == 200
    mine = [e for e in entries_after(hub, start) if e["facts"].get("group") == gid]
    summary = [(e["action"], e["facts"].get("membership"), e["facts"].get("member")) for e in mine]
    assert ("share", "invite", "M20002") in summary
    assert ("revoke", "leave", "M20001") in summary
    (card,) = [e for e in mine if e["resource"]["id"] == f"m.card-{gid}"]
    assert card["actor"]["sub"] == "service:messaging" and "op" not in card["facts"]


def test_an_upload_is_recorded_before_the_homeserver_stores_it(hub: Hub) -> None:
    start = hub.ledger_size()
    headers = {"Authorization": f"Bearer {hub.registration.hs_token}"}
    body = {"upload_id": "upl-0001-abcd", "user_id": user("M20001"), "size": 2048}
    assert hub.client.post(UPLOADS, json=body, headers=headers).status_code == 200
    (entry,) = [e for e in entries_after(hub, start) if e["resource"]["type"] == "media"]
    assert entry["facts"] == {"op": "media.upload", "phase": str(hub.settings.phase)}
    assert entry["actor"]["mchk_reg_no"] == "M20001"
    refused = {**body, "upload_id": "upl-0002-abcd", "user_id": "@someone:elsewhere"}
    assert hub.client.post(UPLOADS, json=refused, headers=headers).status_code == 403


def test_the_response_rate_metric_reads_the_entries(hub: Hub) -> None:
    from app.ledger.entries import AuditEntry

    gid, room_id = new_group(hub)
    for person in ("dr-lead", "sp-cardio-b"):
        hub.client.post("/messaging/session", json={}, headers=hub.headers(person))
    start = hub.ledger_size()
    push(hub, f"txn-q-{gid}", [encrypted(room_id, user("M20001"), f"$q-{gid}", 1_000_000)])
    push(hub, f"txn-a-{gid}", [encrypted(room_id, user("M30002"), f"$a-{gid}", 1_600_000)])
    raw = [raw for _, raw in hub.services.ledger.read_range(start, 2**40)]
    report = compute_metrics(AuditEntry.from_bytes(r) for r in raw)
    (rate,) = report.find(RESPONSE_RATE)
    # Two turns: the lead's question, answered by cardiology ten minutes later, and the
    # answer itself, a turn nobody has answered yet.
    assert (rate.count, rate.mean) == (2, 0.5)
