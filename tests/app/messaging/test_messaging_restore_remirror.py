"""The messaging restore's last step: every group re-mirrored onto the restored homeserver.

The homeserver is restored from a backup older than the hub's groups (the groups table
is not restored: it is the authority). A doctor removed from a group after the backup is
back in the room on the restored homeserver, and a room bound after the backup is not
there at all. This test shows both on a real Synapse driven by the hub's own service
(its groups table on the session's moto, its routes called as a doctor's client calls
them), then runs :meth:`app.groups.service.GroupService.remirror_rooms` and shows the
removed doctor out, the lost room created and bound again, and a message sent after the
re-mirror opened by a current member's device and refused by the removed doctor's.
"""

from __future__ import annotations

import dataclasses
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from fastapi.testclient import TestClient
from hub_testkit import PATIENT, Hub
from messaging_testkit import run

from app import local
from app.dependencies import Services, build_services
from app.dynamo import query_partition, serialize
from app.main import create_app
from app.messaging.client import HomeserverClient
from app.messaging.e2e import EncryptedMessenger, ReceivedMessage, RefusedMessage
from app.messaging.local import LocalMessaging
from app.messaging.runner import LocalHomeserver
from app.messaging.service import MatrixSession, RoomAuthority
from app.wiring import provide
from infra.messaging_recovery import backup_homeserver_database, restore_homeserver_database

pytestmark = [pytest.mark.integration, pytest.mark.messaging]

LEAD, STAYS, REMOVED = "dr-lead", "dr-member", "dr-other-inst"


@dataclasses.dataclass
class DrillHub:
    live: LocalMessaging
    services: Services
    client: TestClient


@pytest.fixture
def drill_hub(hub: Hub, tmp_path: Path) -> Iterator[DrillHub]:
    """The hub's service on a groups table of its own, its rooms on a Synapse of the
    drill's own (whose pushes the same room authority judges and records)."""
    session = boto3.session.Session(region_name="ap-east-1")
    groups_table = f"drill-groups-{uuid.uuid4().hex[:8]}"
    dynamodb = session.client("dynamodb")
    local.create_service_tables(dynamodb, {"groups": groups_table})
    # The doctors' directory profiles live in the groups table; their Matrix bindings
    # (DOCTOR#/MATRIX) do not come along: this homeserver has accounts of its own.
    for person in (LEAD, STAYS, REMOVED):
        profile = query_partition(
            dynamodb, hub.settings.table_groups, f"DOCTOR#{hub.people[person].reg_no}"
        )
        for item in profile:
            if item["sk"] != "MATRIX":
                dynamodb.put_item(TableName=groups_table, Item=serialize(item))
    live = LocalMessaging(tmp_path / "live", rate_limits="test")
    settings = hub.settings.model_copy(
        update={
            "table_groups": groups_table,
            "matrix_homeserver_url": live.base_url,
            "matrix_client_url": live.base_url,
            "matrix_registration_file": str(tmp_path / "live" / "appservice.yaml"),
        }
    )
    services = build_services(settings, session=session, clock=hub.clock, monotonic=hub.monotonic)
    assert services.rooms is not None
    provide(live.app, RoomAuthority, services.rooms)
    app = create_app(settings, services=services)
    with live, TestClient(app) as client:
        services.ledger.stop()
        yield DrillHub(live, services, client)


def _session(hub: Hub, drill: DrillHub, person: str) -> MatrixSession:
    r = drill.client.post("/messaging/session", json={}, headers=hub.headers(person))
    assert r.status_code == 200, r.text
    body = r.json()
    return MatrixSession(
        body["homeserver_url"], body["user_id"], body["device_id"], body["access_token"]
    )


def _new_group(hub: Hub, drill: DrillHub) -> str:
    r = drill.client.post(
        "/groups",
        json={"patient_id": PATIENT, "title": "Synthetic restore case"},
        headers=hub.headers(LEAD),
    )
    assert r.status_code == 201, r.text
    return str(r.json()["group_id"])


def test_after_a_restore_the_remirror_takes_a_removed_doctor_out_of_the_room(
    hub: Hub, drill_hub: DrillHub, tmp_path: Path
) -> None:
    drill, api = drill_hub, drill_hub.client
    lead = hub.headers(LEAD)
    gid = _new_group(hub, drill)
    for person in (STAYS, REMOVED):
        reg_no = hub.people[person].reg_no
        r = api.post(
            f"/groups/{gid}/invitations", json={"reg_no": reg_no, "role": "member"}, headers=lead
        )
        assert r.status_code == 201, r.text
        r = api.post(f"/groups/{gid}/accept", headers=hub.headers(person))
        assert r.status_code == 200, r.text
    rooms = drill.services.rooms
    assert rooms is not None
    names = rooms.names
    room_id = rooms.governed_room(gid).room_id
    removed_user = names.doctor_user_id(hub.people[REMOVED].reg_no)
    assert drill.live.client.members(room_id)[removed_user] == "join"

    live_settings = drill.live.homeserver.settings
    backup = backup_homeserver_database(
        live_settings.database_path, tmp_path / "backup" / "homeserver.db"
    )
    secrets_kept = tmp_path / "secrets"
    secrets_kept.mkdir()
    shutil.copy2(live_settings.signing_key_path, secrets_kept / "signing.key")

    # After the backup: the lead removes a doctor (the hub's route, as a client calls
    # it) and opens another group, whose room the backup will not hold.
    r = api.delete(f"/groups/{gid}/members/{hub.people[REMOVED].reg_no}", headers=lead)
    assert r.status_code == 200, r.text
    assert drill.live.client.members(room_id)[removed_user] == "leave"
    later = _new_group(hub, drill)
    lost_room = rooms.governed_room(later).room_id

    # The loss, and the restore into a new database behind the same homeserver address.
    drill.live.homeserver.stop()
    shutil.rmtree(live_settings.data_dir)
    restored_settings = dataclasses.replace(live_settings, data_dir=tmp_path / "restored")
    restore_homeserver_database(backup, restored_settings.database_path)
    shutil.copy2(secrets_kept / "signing.key", restored_settings.signing_key_path)
    with LocalHomeserver(restored_settings) as restored:
        hs = HomeserverClient(restored.base_url, drill.live.registration.as_token)
        try:
            # The gap: the removed doctor is back in the room; the later room is gone.
            assert hs.members(room_id)[removed_user] == "join"
            assert hs.resolve_alias(names.group_alias(later)) is None

            result = drill.services.groups.remirror_rooms()

            assert result.failed == ()
            assert result.recreated == (later,)
            assert hs.members(room_id)[removed_user] == "leave"
            stays_user = names.doctor_user_id(hub.people[STAYS].reg_no)
            assert hs.members(room_id)[stays_user] == "join"
            rebound = rooms.governed_room(later).room_id
            assert rebound != lost_room
            assert hs.resolve_alias(names.group_alias(later)) == rebound
            assert hs.members(rebound)[names.doctor_user_id(hub.people[LEAD].reg_no)] == "join"
            assert rooms.directory.room(rebound) == rooms.governed_room(later)
            assert rooms.directory.room(lost_room) is None
            # A rerun finds everything in line and changes nothing.
            assert drill.services.groups.remirror_rooms().recreated == ()
        finally:
            hs.close()

        sessions = {p: _session(hub, drill, p) for p in (LEAD, STAYS, REMOVED)}

        async def converse() -> tuple[object, object]:
            devices = {p: EncryptedMessenger(s) for p, s in sessions.items()}
            try:
                for device in devices.values():
                    await device.start()
                sent = await devices[LEAD].send_text(room_id, f"synthetic {uuid.uuid4().hex}")
                await devices[STAYS].wait_for(
                    lambda d: any(m.event_id == sent for m in d.messages(room_id))
                )
                await devices[REMOVED].sync(timeout_ms=0)  # any key sent to it has arrived
                event = HomeserverClient(restored.base_url, sessions[STAYS].access_token).request(
                    "GET", f"/_matrix/client/v3/rooms/{room_id}/event/{sent}"
                )
                return (
                    devices[STAYS].open_event(room_id, event),
                    devices[REMOVED].open_event(room_id, event),
                )
            finally:
                for device in devices.values():
                    await device.close()

        current, removed = run(converse())
        assert isinstance(current, ReceivedMessage), current
        assert isinstance(removed, RefusedMessage), removed
