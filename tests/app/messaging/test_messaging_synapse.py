"""The hub as room authority on a real Synapse, with real end-to-end encrypted devices.

Three kinds of actors: the hub (``messaging.authority``, acting through its application
service), doctors' devices (:class:`EncryptedMessenger`, matrix-nio with vodozemac), and
"someone acting in Synapse directly" (raw client-server calls, with the application
service token or a doctor's own token, bypassing the hub's decisions).
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from canonicaljson import encode_canonical_json
from messaging_testkit import DriftLog, RecordingTrail, joined_devices, run
from nio import AsyncClient, AsyncClientConfig  # type: ignore[import-untyped]
from nio.store import SqliteMemoryStore  # type: ignore[import-untyped]
from vodozemac import Ed25519PublicKey, Ed25519Signature

from app.errors import Conflict
from app.messaging.client import MatrixError
from app.messaging.drift import DriftKind, Repair
from app.messaging.e2e import EncryptedMessenger, ReceivedMessage, RefusalReason, RefusedMessage
from app.messaging.local import LocalMessaging
from app.messaging.service import MEGOLM

pytestmark = pytest.mark.messaging

RegNos = Callable[[int], list[str]]


def group_id() -> str:
    return uuid.uuid4().hex


def as_doctor(messaging: LocalMessaging, token: str) -> httpx.Client:
    """Someone acting in Synapse directly with a doctor's own access token."""
    return httpx.Client(
        base_url=messaging.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


def has_event(event_id: str, room_id: str) -> Callable[[EncryptedMessenger], bool]:
    return lambda device: any(m.event_id == event_id for m in device.messages(room_id))


def membership(messaging: LocalMessaging, room_id: str, user_id: str) -> str | None:
    return messaging.client.members(room_id).get(user_id)


# Accounts ----------------------------------------------------------------------------------


def test_only_the_hub_creates_accounts(messaging: LocalMessaging, new_reg_nos: RegNos) -> None:
    open_registration = httpx.post(
        f"{messaging.base_url}/_matrix/client/v3/register",
        json={"username": "eve", "password": "x" * 16, "auth": {"type": "m.login.dummy"}},
    )
    assert open_registration.status_code == 403
    with pytest.raises(MatrixError) as outside_namespace:
        messaging.client.register("eve")
    assert outside_namespace.value.errcode == "M_EXCLUSIVE"

    (reg_no,) = new_reg_nos(1)
    user_id = messaging.authority.bind_account(reg_no)
    assert messaging.authority.bind_account(reg_no) == user_id == f"@doc-{reg_no.lower()}:hub.local"
    session = messaging.authority.open_session(reg_no)
    with as_doctor(messaging, session.access_token) as doctor:
        whoami = doctor.get("/_matrix/client/v3/account/whoami").json()
    assert (whoami["user_id"], whoami["device_id"]) == (user_id, session.device_id)


# Rooms -------------------------------------------------------------------------------------


def test_a_group_room_is_encrypted_closed_and_governed_by_the_hub_alone(
    messaging: LocalMessaging, new_reg_nos: RegNos
) -> None:
    alice, bob, carol = new_reg_nos(3)
    group = group_id()
    room = messaging.authority.create_group_room(group, [alice, bob])
    assert messaging.authority.create_group_room(group) == room  # idempotent
    assert messaging.client.resolve_alias(f"#grp-{group}:hub.local") == room.room_id

    def state(event_type: str) -> dict[str, Any]:
        event = messaging.client.state_event(room.room_id, event_type)
        assert event is not None, event_type
        return dict(event["content"])

    assert state("m.room.encryption")["algorithm"] == MEGOLM
    assert state("m.room.join_rules") == {"join_rule": "invite"}
    assert state("m.room.history_visibility") == {"history_visibility": "joined"}
    assert state("m.room.guest_access") == {"guest_access": "forbidden"}
    assert state("m.room.server_acl")["allow"] == ["hub.local"]
    assert state("m.room.create")["m.federate"] is False
    power = state("m.room.power_levels")
    assert power["users_default"] == 0 and power["users"] == {}
    assert {power[k] for k in ("invite", "kick", "ban", "state_default")} == {100}
    assert group not in state("m.room.name")["name"]  # room state is not end-to-end encrypted

    session = messaging.authority.open_session(bob)
    carol_id = messaging.authority.bind_account(carol)
    with as_doctor(messaging, session.access_token) as bob_direct:
        assert bob_direct.post(f"/_matrix/client/v3/join/{room.room_id}").status_code == 200
        invite = bob_direct.post(
            f"/_matrix/client/v3/rooms/{room.room_id}/invite", json={"user_id": carol_id}
        )
        assert invite.status_code == 403
        power_grab = bob_direct.put(
            f"/_matrix/client/v3/rooms/{room.room_id}/state/m.room.power_levels/",
            json={**power, "users": {session.user_id: 100}},
        )
        assert power_grab.status_code == 403
        unencrypt = bob_direct.put(
            f"/_matrix/client/v3/rooms/{room.room_id}/state/m.room.encryption/",
            json={"algorithm": "none"},
        )
        assert unencrypt.status_code == 403
    assert membership(messaging, room.room_id, carol_id) is None


# End-to-end encryption -----------------------------------------------------------------------


def test_members_exchange_messages_the_server_holds_only_as_ciphertext(
    messaging: LocalMessaging, new_reg_nos: RegNos
) -> None:
    reg_nos = new_reg_nos(2)
    room_id = messaging.authority.create_group_room(group_id(), reg_nos).room_id
    secret_a = f"synthetic finding {uuid.uuid4().hex}"
    secret_b = f"synthetic reply {uuid.uuid4().hex}"

    async def scenario() -> tuple[str, str]:
        alice, bob = await joined_devices(messaging, room_id, reg_nos)
        first = await alice.send_text(room_id, secret_a)
        await bob.wait_for(has_event(first, room_id))
        second = await bob.send_text(room_id, secret_b)
        await alice.wait_for(has_event(second, room_id))
        (got_a,) = [m for m in bob.messages(room_id) if m.event_id == first]
        (got_b,) = [m for m in alice.messages(room_id) if m.event_id == second]
        assert (got_a.body, got_a.sender, got_a.device_id) == (
            secret_a,
            alice.user_id,
            alice.device_id,
        )
        assert (got_b.body, got_b.sender, got_b.device_id) == (secret_b, bob.user_id, bob.device_id)
        assert bob.refused(room_id) == [] and alice.refused(room_id) == []
        for device in (alice, bob):
            await device.close()
        return first, second

    event_ids = run(scenario())
    for event_id in event_ids:
        served = messaging.client.request(
            "GET", f"/_matrix/client/v3/rooms/{room_id}/event/{event_id}"
        )
        assert served["type"] == "m.room.encrypted"
        assert served["content"]["algorithm"] == MEGOLM
        assert secret_a not in json.dumps(served) and secret_b not in json.dumps(served)

    database = messaging.homeserver.settings.database_path
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        stored = dict(db.execute("SELECT event_id, json FROM event_json").fetchall())
    assert {json.loads(stored[e])["type"] for e in event_ids} == {"m.room.encrypted"}
    assert not [e for e, body in stored.items() if secret_a in body or secret_b in body]


def removal_scenario(
    messaging: LocalMessaging, reg_nos: list[str], *, rotation: bool, lagging_sync: bool = False
) -> dict[str, Any]:
    """Alice, Bob, Carol talk; the hub removes Bob; Alice sends again at once.

    ``lagging_sync``: Alice's device does not see the removal in its sync before sending
    (as behind a sync worker that lags), so only the send-time membership check can.
    """
    group = group_id()
    room_id = messaging.authority.create_group_room(group, reg_nos).room_id

    async def scenario() -> dict[str, Any]:
        alice, bob, carol = await joined_devices(messaging, room_id, reg_nos)
        if not rotation:  # the switch-off: Alice's device never drops a shared session
            alice._client.invalidate_outbound_session = lambda _room_id: None
        before = await alice.send_text(room_id, "before the removal")
        for device in (bob, carol):
            await device.wait_for(has_event(before, room_id))
        messaging.authority.remove(group, reg_nos[1])
        if lagging_sync:

            async def stale_sync(timeout_ms: int = 0) -> list[Any]:
                return []

            alice.sync = stale_sync  # type: ignore[method-assign]
        after = await alice.send_text(room_id, "after the removal")
        await carol.wait_for(has_event(after, room_id))

        def served(event_id: str) -> dict[str, Any]:
            return messaging.client.request(
                "GET", f"/_matrix/client/v3/rooms/{room_id}/event/{event_id}"
            )

        await bob.sync(timeout_ms=0)
        result = {
            "room_id": room_id,
            "bob": bob,
            "sessions": {m.event_id: m.session_id for m in carol.messages(room_id)},
            "before": before,
            "after": after,
            "bob_opens_before": bob.open_event(room_id, served(before)),
            "bob_opens_after": bob.open_event(room_id, served(after)),
        }
        for device in (alice, bob, carol):
            await device.close()
        return result

    return run(scenario())


def test_a_removed_member_cannot_read_what_is_sent_after(
    messaging: LocalMessaging, new_reg_nos: RegNos
) -> None:
    reg_nos = new_reg_nos(3)
    result = removal_scenario(messaging, reg_nos, rotation=True)
    room_id, bob = result["room_id"], result["bob"]

    # Alice's device rotated the Megolm session when Bob left ...
    assert result["sessions"][result["before"]] != result["sessions"][result["after"]]
    # ... so the ciphertext sent after the removal is undecryptable for Bob, although he
    # holds the earlier session (he can still open the message from before).
    assert isinstance(result["bob_opens_before"], ReceivedMessage)
    assert isinstance(result["bob_opens_after"], RefusedMessage)
    assert result["bob_opens_after"].reason is RefusalReason.UNDECRYPTABLE
    # And the server refuses him the room anyway.
    assert room_id in bob.left_rooms
    assert result["after"] not in {m.event_id for m in bob.messages(room_id)}
    bob_session = messaging.authority.open_session(reg_nos[1])
    with as_doctor(messaging, bob_session.access_token) as bob_direct:
        read = bob_direct.get(f"/_matrix/client/v3/rooms/{room_id}/event/{result['after']}")
        assert read.status_code in (403, 404)
        assert bob_direct.post(f"/_matrix/client/v3/join/{room_id}").status_code == 403


def test_the_send_time_membership_check_rotates_even_when_sync_lags(
    messaging: LocalMessaging, new_reg_nos: RegNos
) -> None:
    result = removal_scenario(messaging, new_reg_nos(3), rotation=True, lagging_sync=True)
    assert result["sessions"][result["before"]] != result["sessions"][result["after"]]
    assert isinstance(result["bob_opens_after"], RefusedMessage)


def test_without_rotation_the_removed_member_could_read(
    messaging: LocalMessaging, new_reg_nos: RegNos
) -> None:
    """The switch-off for the test above: the threat it guards against is real."""
    result = removal_scenario(messaging, new_reg_nos(3), rotation=False)
    assert result["sessions"][result["before"]] == result["sessions"][result["after"]]
    opened = result["bob_opens_after"]
    assert isinstance(opened, ReceivedMessage) and opened.body == "after the removal"


def test_a_message_from_an_unpublished_device_is_refused(
    messaging: LocalMessaging, new_reg_nos: RegNos
) -> None:
    reg_nos = new_reg_nos(2)
    room_id = messaging.authority.create_group_room(group_id(), reg_nos).room_id
    rogue_session = messaging.authority.open_session(reg_nos[0], device_name="rogue")

    async def scenario() -> None:
        alice, bob = await joined_devices(messaging, room_id, reg_nos)
        # A second device of Alice's account that never publishes its keys (a stolen
        # token on an attacker's machine): plain matrix-nio, no key upload.
        rogue = AsyncClient(
            rogue_session.homeserver_url,
            rogue_session.user_id,
            device_id=rogue_session.device_id,
            config=AsyncClientConfig(store=SqliteMemoryStore, encryption_enabled=True),
        )
        rogue.restore_login(
            rogue_session.user_id, rogue_session.device_id, rogue_session.access_token
        )
        await rogue.sync(timeout=0, full_state=True)
        await rogue.keys_query()
        forged = await rogue.room_send(
            room_id,
            "m.room.message",
            {"msgtype": "m.text", "body": "forged instruction"},
            ignore_unverified_devices=True,
        )
        genuine = await alice.send_text(room_id, "genuine")
        await bob.wait_for(has_event(genuine, room_id))
        await bob.wait_for(lambda d: any(r.event_id == forged.event_id for r in d.refused()))

        (refusal,) = [r for r in bob.refused(room_id) if r.event_id == forged.event_id]
        assert refusal.reason is RefusalReason.UNKNOWN_DEVICE
        assert refusal.sender == alice.user_id
        assert [m.body for m in bob.messages(room_id)] == ["genuine"]
        for client in (alice, bob):
            await client.close()
        await rogue.close()

    run(scenario())


def test_device_keys_are_published_signed_over_canonical_json(
    messaging: LocalMessaging, new_reg_nos: RegNos
) -> None:
    reg_nos = new_reg_nos(2)
    room_id = messaging.authority.create_group_room(group_id(), reg_nos).room_id

    async def scenario() -> tuple[EncryptedMessenger, EncryptedMessenger]:
        devices = await joined_devices(messaging, room_id, reg_nos)
        for device in devices:
            await device.close()
        return devices[0], devices[1]

    alice, _bob = run(scenario())
    bob_session = messaging.authority.open_session(reg_nos[1])
    with as_doctor(messaging, bob_session.access_token) as bob_direct:
        query = bob_direct.post(
            "/_matrix/client/v3/keys/query", json={"device_keys": {alice.user_id: []}}
        ).json()
        claim = bob_direct.post(
            "/_matrix/client/v3/keys/claim",
            json={"one_time_keys": {alice.user_id: {alice.device_id: "signed_curve25519"}}},
        ).json()
    device_keys = query["device_keys"][alice.user_id][alice.device_id]
    ed25519 = device_keys["keys"][f"ed25519:{alice.device_id}"]
    assert ed25519 == alice.identity_keys["ed25519"]
    assert device_keys["keys"][f"curve25519:{alice.device_id}"] == alice.identity_keys["curve25519"]
    assert set(device_keys["algorithms"]) >= {"m.olm.v1.curve25519-aes-sha2", MEGOLM}
    (one_time_key,) = claim["one_time_keys"][alice.user_id][alice.device_id].values()

    for signed in (device_keys, one_time_key):
        signature = signed["signatures"][alice.user_id][f"ed25519:{alice.device_id}"]
        unsigned = {k: v for k, v in signed.items() if k not in ("signatures", "unsigned")}
        key = Ed25519PublicKey.from_base64(ed25519)
        key.verify_signature(
            encode_canonical_json(unsigned), Ed25519Signature.from_base64(signature)
        )
        tampered = {**unsigned, "tampered": True}
        with pytest.raises(ValueError):
            key.verify_signature(
                encode_canonical_json(tampered), Ed25519Signature.from_base64(signature)
            )


# Drift ----------------------------------------------------------------------------------------


def test_membership_changes_the_hub_did_not_decide_are_reverted(
    messaging: LocalMessaging, new_reg_nos: RegNos, drift_log: DriftLog
) -> None:
    alice, outsider = new_reg_nos(2)
    room_id = messaging.authority.create_group_room(group_id(), [alice]).room_id
    alice_id = messaging.authority.bind_account(alice)
    outsider_id = messaging.authority.bind_account(outsider)

    def reverted(user_id: str, kind: DriftKind) -> Any:
        return drift_log.wait_for(
            lambda r: (r.drift.room_id, r.drift.user_id, r.drift.kind) == (room_id, user_id, kind)
        )

    # Someone holding Synapse credentials invites a doctor the hub never admitted.
    messaging.client.invite(room_id, outsider_id)
    report = reverted(outsider_id, DriftKind.UNDECIDED_MEMBER)
    assert (report.drift.repair, report.repaired) == (Repair.KICK, True)
    assert membership(messaging, room_id, outsider_id) == "leave"

    # ... or throws out a doctor the hub admitted: she is invited back.
    messaging.client.kick(room_id, alice_id)
    report = reverted(alice_id, DriftKind.MEMBER_REMOVED)
    assert (report.drift.repair, report.repaired) == (Repair.REINVITE, True)
    assert membership(messaging, room_id, alice_id) == "invite"

    messaging.client.ban(room_id, alice_id)
    report = reverted(alice_id, DriftKind.MEMBER_BANNED)
    assert (report.drift.repair, report.repaired) == (Repair.UNBAN_AND_REINVITE, True)
    assert membership(messaging, room_id, alice_id) == "invite"

    # Her own choice to leave is reported, not undone.
    messaging.client.leave(room_id, as_user=alice_id)
    report = reverted(alice_id, DriftKind.MEMBER_LEFT)
    assert (report.drift.repair, report.repaired) == (Repair.NONE, False)
    assert membership(messaging, room_id, alice_id) == "leave"


def test_doctors_cannot_open_rooms_or_invite_outside_the_hub(
    messaging: LocalMessaging, new_reg_nos: RegNos
) -> None:
    """The policy module: room creation and invitations are the hub's alone."""
    host, guest = new_reg_nos(2)
    group = group_id()
    room_id = messaging.authority.create_group_room(group, [host]).room_id
    session = messaging.authority.open_session(host)
    guest_id = messaging.authority.bind_account(guest)
    with as_doctor(messaging, session.access_token) as host_direct:
        created = host_direct.post(
            "/_matrix/client/v3/createRoom", json={"preset": "private_chat", "invite": [guest_id]}
        )
        assert created.status_code == 403
        assert created.json()["errcode"] == "M_FORBIDDEN"
        assert host_direct.post(f"/_matrix/client/v3/join/{room_id}").status_code == 200
        third_party = host_direct.post(
            f"/_matrix/client/v3/rooms/{room_id}/invite",
            json={"id_server": "id.example", "medium": "email", "address": "x@example.org"},
        )
        assert third_party.status_code in (400, 403)
    assert guest_id not in messaging.client.members(room_id)


def test_closing_the_group_empties_and_locks_the_room(
    messaging: LocalMessaging, new_reg_nos: RegNos, drift_log: DriftLog
) -> None:
    reg_nos = new_reg_nos(2)
    group = group_id()
    room_id = messaging.authority.create_group_room(group, reg_nos).room_id
    members = [messaging.authority.bind_account(r) for r in reg_nos]
    messaging.client.join(room_id, as_user=members[0])

    messaging.authority.close(group)
    assert {u: m for u, m in messaging.client.members(room_id).items() if m != "leave"} == {
        "@hub:hub.local": "join"
    }
    join_rules = messaging.client.state_event(room_id, "m.room.join_rules")
    assert join_rules is not None and join_rules["content"]["join_rule"] == "private"
    with pytest.raises(Conflict):
        messaging.authority.admit(group, reg_nos[0])

    messaging.client.invite(room_id, members[1])  # behind the hub's back
    report = drift_log.wait_for(
        lambda r: (
            (r.drift.room_id, r.drift.user_id, r.drift.kind)
            == (room_id, members[1], DriftKind.UNDECIDED_MEMBER)
        )
    )
    assert report.repaired and membership(messaging, room_id, members[1]) == "leave"


def test_admit_and_remove_are_mirrored_in_the_same_call(
    messaging: LocalMessaging, new_reg_nos: RegNos
) -> None:
    alice, bob = new_reg_nos(2)
    group = group_id()
    room_id = messaging.authority.create_group_room(group, [alice]).room_id
    bob_id = messaging.authority.admit(group, bob)
    assert membership(messaging, room_id, bob_id) == "invite"
    messaging.client.join(room_id, as_user=bob_id)
    messaging.authority.remove(group, bob)
    assert membership(messaging, room_id, bob_id) == "leave"
    messaging.authority.admit(group, bob)
    messaging.authority.remove(group, bob, ban=True)
    assert membership(messaging, room_id, bob_id) == "ban"
    messaging.authority.mirror(group, [bob])  # bob back (unbanned), alice out
    alice_id = messaging.authority.bind_account(alice)
    current = messaging.client.members(room_id)
    assert (current[bob_id], current[alice_id]) == ("invite", "leave")
    assert messaging.authority.reconcile(group) == []


# Federation ------------------------------------------------------------------------------------


def test_federation_is_refused(messaging: LocalMessaging, new_reg_nos: RegNos) -> None:
    for path in ("/_matrix/federation/v1/version", "/_matrix/key/v2/server"):
        assert httpx.get(f"{messaging.base_url}{path}").status_code == 404
    room_id = messaging.authority.create_group_room(group_id(), new_reg_nos(1)).room_id
    with pytest.raises(MatrixError) as refused:
        messaging.client.invite(room_id, "@doctor:remote.example")
    assert refused.value.status == 403
    with pytest.raises(MatrixError):
        messaging.client.join(
            "#lobby:remote.example", as_user=messaging.authority.names.hub_user_id
        )


def test_rapid_decisions_and_concurrent_repairs_end_in_the_decision(
    messaging: LocalMessaging, new_reg_nos: RegNos
) -> None:
    """The removal race: the hub's changes and the drift repairs of their echoes overlap."""
    alice, bob = new_reg_nos(2)
    group = group_id()
    room_id = messaging.authority.create_group_room(group, [alice]).room_id
    bob_id = messaging.authority.bind_account(bob)
    for _ in range(5):
        messaging.authority.admit(group, bob)
        messaging.authority.remove(group, bob, ban=True)
        messaging.authority.admit(group, bob)
        messaging.authority.remove(group, bob)
    messaging.authority.admit(group, bob)
    messaging.authority.reconcile(group)
    assert membership(messaging, room_id, bob_id) == "invite"
    messaging.authority.remove(group, bob)
    messaging.authority.reconcile(group)
    assert membership(messaging, room_id, bob_id) == "leave"


# Invitations, uploads (the wiring's additions) --------------------------------------------------


def test_an_invited_doctor_cannot_join_before_accepting(
    messaging: LocalMessaging, new_reg_nos: RegNos, drift_log: DriftLog
) -> None:
    alice, bob = new_reg_nos(2)
    group = group_id()
    room_id = messaging.authority.create_group_room(group, [alice]).room_id
    bob_id = messaging.authority.admit(group, bob)
    messaging.client.join(room_id, as_user=bob_id)  # their client accepts the invitation
    report = drift_log.wait_for(
        lambda r: r.drift.user_id == bob_id and r.drift.kind is DriftKind.JOINED_BEFORE_ACCEPTING
    )
    assert report.repaired and report.drift.repair is Repair.KICK_AND_REINVITE
    assert membership(messaging, room_id, bob_id) == "invite"
    messaging.authority.join(group, bob)  # accepted in the hub: joined by the hub
    assert membership(messaging, room_id, bob_id) == "join"
    assert messaging.authority.reconcile(group) == []


def test_an_upload_is_refused_unless_the_hub_recorded_it(
    messaging: LocalMessaging, new_reg_nos: RegNos
) -> None:
    from app.messaging.audit import RoomLedger

    (reg_no,) = new_reg_nos(1)
    session = messaging.authority.open_session(reg_no)
    upload = f"{messaging.base_url}/_matrix/media/v3/upload"
    headers = {
        "Authorization": f"Bearer {session.access_token}",
        "Content-Type": "application/octet-stream",
    }
    # No ledger behind the application service: the hub cannot record it, no upload.
    refused = httpx.post(upload, content=b"\x00" * 64, headers=headers, timeout=30)
    assert refused.status_code == 413 and refused.json()["errcode"] == "M_TOO_LARGE"
    trail = RecordingTrail()
    messaging.attach_ledger(
        RoomLedger(
            trail,  # type: ignore[arg-type]
            messaging.directory,
            messaging.authority.names,
            marker_table="unused",
            phase=1,
        )
    )
    try:
        stored = httpx.post(upload, content=b"\x01" * 64, headers=headers, timeout=30)
        assert stored.status_code == 200 and stored.json()["content_uri"].startswith("mxc://")
    finally:
        messaging.attach_ledger(None)
    # Detached again: refused again.
    again = httpx.post(upload, content=b"\x02" * 64, headers=headers, timeout=30)
    assert again.status_code == 413
    uploads = [e for e in trail.events if e.action == "UploadMedia"]
    assert len(uploads) == 1 and uploads[0].actor_reg_no == reg_no
    assert uploads[0].facts == {"op": "media.upload", "phase": "1"}
