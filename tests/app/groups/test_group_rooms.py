"""Consultation groups mirrored into their Matrix rooms, in the same request.

Against the scripted homeserver (``fake_homeserver.py``): each route's response is
checked against the room *as the request left it* (no dispatcher ran), so "in the same
request" is what is shown. Then the homeserver goes down: the hub's decision still
stands and the request answers; the room lags, with a ``room_sync`` item pending, and
the dispatcher brings the room in line once the homeserver is back.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hub_testkit import PATIENT, Hub

from app.groups.membership import MemberRole
from app.groups.service import ROOM_SYNC
from app.messaging.drift import DriftKind
from app.outbox import DELIVERED, PENDING

NAMES_SERVER = "hub.local"


def user(reg_no: str) -> str:
    return f"@doc-{reg_no.lower()}:{NAMES_SERVER}"


def room_of(hub: Hub, gid: str) -> str:
    room = hub.homeserver.room_of_alias(f"#grp-{gid}:{NAMES_SERVER}")
    assert room is not None, "the group has no room"
    return str(room.room_id)


def sync_items(hub: Hub, gid: str) -> list[dict[str, object]]:
    day = hub.clock().date().isoformat()
    return [
        o
        for o in hub.services.groups._repo.outbox(day)
        if o.get("kind") == ROOM_SYNC and o.get("group_id") == gid
    ]


@pytest.fixture
def homeserver_down(hub: Hub) -> Iterator[None]:
    hub.homeserver.down = True
    try:
        yield
    finally:
        hub.homeserver.down = False


def create(hub: Hub) -> str:
    r = hub.client.post(
        "/groups",
        json={"patient_id": PATIENT, "title": "Synthetic rooms case"},
        headers=hub.headers("dr-lead"),
    )
    assert r.status_code == 201, r.text
    return str(r.json()["group_id"])


def test_a_new_group_has_an_encrypted_room_with_its_lead_joined(hub: Hub) -> None:
    gid = create(hub)
    room = hub.homeserver.rooms[room_of(hub, gid)]
    encryption = room.state[("m.room.encryption", "")]
    assert encryption["algorithm"] == "m.megolm.v1.aes-sha2"
    assert room.state[("m.room.join_rules", "")] == {"join_rule": "invite"}
    assert hub.homeserver.present(room.room_id) == {user("M20001"): "join"}
    governed = hub.services.rooms.directory.room_for_group(gid)
    assert governed is not None and governed.patient_ref is not None
    assert governed.patient_ref.startswith("pt1-")  # keyed reference, never the patient id
    assert [o["status"] for o in sync_items(hub, gid)] == [DELIVERED]


def test_each_change_is_in_the_room_when_its_response_arrives(hub: Hub) -> None:
    gid = create(hub)
    room_id = room_of(hub, gid)
    lead = hub.headers("dr-lead")

    r = hub.client.post(
        f"/groups/{gid}/invitations", json={"reg_no": "M20002", "role": "member"}, headers=lead
    )
    assert r.status_code == 201
    assert hub.homeserver.membership(room_id, user("M20002")) == "invite"

    r = hub.client.post(f"/groups/{gid}/accept", headers=hub.headers("dr-member"))
    assert r.status_code == 200
    assert hub.homeserver.membership(room_id, user("M20002")) == "join"

    r = hub.client.post(
        f"/groups/{gid}/summon", json={"specialties": ["cardiology"], "count": 1}, headers=lead
    )
    assert r.status_code == 201
    expert = r.json()["invited"][0]["reg_no"]
    assert hub.homeserver.membership(room_id, user(expert)) == "invite"

    r = hub.client.delete(f"/groups/{gid}/members/M20002", headers=lead)
    assert r.status_code == 200
    # Kicked in the same request, by the hub.
    assert hub.homeserver.rooms[room_id].members[user("M20002")] == (
        "leave",
        f"@hub:{NAMES_SERVER}",
    )

    r = hub.client.post(f"/groups/{gid}/close", headers=lead)
    assert r.status_code == 200
    assert hub.homeserver.present(room_id) == {}
    assert hub.homeserver.rooms[room_id].state[("m.room.join_rules", "")] == {
        "join_rule": "private"
    }
    assert {o["status"] for o in sync_items(hub, gid)} == {DELIVERED}


def test_an_invitee_may_not_join_before_accepting(hub: Hub) -> None:
    """Invited in the hub is an invitation in the room: a join is reverted and alarmed."""
    gid = create(hub)
    room_id = room_of(hub, gid)
    hub.services.groups.invite(hub.principal("dr-lead"), gid, "M20006", MemberRole.MEMBER)
    # The invitee's client joins on its own (the homeserver allows an invited user to).
    hub.homeserver.rooms[room_id].members[user("M20006")] = ("join", user("M20006"))
    event = {
        "type": "m.room.member",
        "room_id": room_id,
        "state_key": user("M20006"),
        "sender": user("M20006"),
        "event_id": "$joined-early",
        "origin_server_ts": 1,
        "content": {"membership": "join"},
    }
    reports = hub.services.rooms.handle_transaction(f"txn-early-{gid}", [event])
    assert [(r.drift.kind, r.repaired) for r in reports] == [
        (DriftKind.JOINED_BEFORE_ACCEPTING, True)
    ]
    assert hub.homeserver.membership(room_id, user("M20006")) == "invite"
    day = hub.clock().date().isoformat()
    alarms = [
        o
        for o in hub.services.groups._repo.outbox(day)
        if o.get("kind") == "membership_drift" and o.get("room_id") == room_id
    ]
    assert [a["drift"] for a in alarms] == ["joined_before_accepting"]


def test_a_transaction_id_reused_with_new_events_is_judged_a_retry_is_not(hub: Hub) -> None:
    """A homeserver retries a transaction with the same id and events: handled once. A
    homeserver restored from a backup numbers its transactions again from the backup's
    point, so an id the hub has handled can come back with new events: those are judged
    (an early join reverted again), not dropped as a retry."""
    gid = create(hub)
    room_id = room_of(hub, gid)
    hub.services.groups.invite(hub.principal("dr-lead"), gid, "M20006", MemberRole.MEMBER)

    def early_join(event_id: str) -> dict[str, object]:
        hub.homeserver.rooms[room_id].members[user("M20006")] = ("join", user("M20006"))
        return {
            "type": "m.room.member",
            "room_id": room_id,
            "state_key": user("M20006"),
            "sender": user("M20006"),
            "event_id": event_id,
            "origin_server_ts": 1,
            "content": {"membership": "join"},
        }

    txn = f"txn-reused-{gid}"
    first = early_join("$joined-early")
    assert [r.drift.kind for r in hub.services.rooms.handle_transaction(txn, [first])] == [
        DriftKind.JOINED_BEFORE_ACCEPTING
    ]
    assert hub.homeserver.membership(room_id, user("M20006")) == "invite"
    assert hub.services.rooms.handle_transaction(txn, [first]) == []  # the retry
    # After a restore: the same id, another event. The join is judged and reverted.
    again = early_join("$joined-after-the-restore")
    reports = hub.services.rooms.handle_transaction(txn, [again])
    assert [(r.drift.kind, r.repaired) for r in reports] == [
        (DriftKind.JOINED_BEFORE_ACCEPTING, True)
    ]
    assert hub.homeserver.membership(room_id, user("M20006")) == "invite"


def test_with_the_homeserver_down_the_decision_stands_and_the_room_is_repaired_later(
    hub: Hub,
) -> None:
    gid = create(hub)
    room_id = room_of(hub, gid)
    lead = hub.headers("dr-lead")
    assert (
        hub.client.post(
            f"/groups/{gid}/invitations",
            json={"reg_no": "M20002", "role": "member"},
            headers=lead,
        ).status_code
        == 201
    )
    assert (
        hub.client.post(f"/groups/{gid}/accept", headers=hub.headers("dr-member")).status_code
        == 200
    )
    hub.homeserver.down = True
    try:
        r = hub.client.delete(f"/groups/{gid}/members/M20002", headers=lead)
        # The removal stands: answered, committed, and records close to them at once.
        assert r.status_code == 200 and r.json()["membership"]["state"] == "removed"
        assert hub.client.get(f"/groups/{gid}", headers=hub.headers("dr-member")).status_code == 403
    finally:
        hub.homeserver.down = False
    assert hub.homeserver.membership(room_id, user("M20002")) == "join"  # the room lags
    assert PENDING in [o["status"] for o in sync_items(hub, gid)]

    report = hub.services.dispatcher.run_once(lambda item: item.get("group_id") == gid)
    assert hub.homeserver.membership(room_id, user("M20002")) == "leave"
    assert {o["status"] for o in sync_items(hub, gid)} == {DELIVERED}
    assert report.delivered


def test_a_group_created_while_the_homeserver_is_down_gets_its_room_later(
    hub: Hub, homeserver_down: None
) -> None:
    gid = create(hub)  # answered
    assert hub.homeserver.room_of_alias(f"#grp-{gid}:{NAMES_SERVER}") is None
    hub.homeserver.down = False
    hub.services.dispatcher.run_once(lambda item: item.get("group_id") == gid)
    room_id = room_of(hub, gid)
    # The repair mirrors (invites) and never joins anyone: the lead joins from a client.
    assert hub.homeserver.present(room_id) == {user("M20001"): "invite"}
