"""The messaging restore drill (docs/disaster-recovery.md), on the emulator, in the suite.

A homeserver of the drill's own (Synapse on SQLite, its media in a versioned bucket on
the session's moto through ``synapse-s3-storage-provider``, as deployed) holds a group
room, two doctors, an end-to-end encrypted message and an attachment. The drill backs
up the database while Synapse runs (SQLite's online backup API: the emulator's stand-in
for an RDS snapshot) and takes the media bucket's version inventory; then the
homeserver's state is lost (process stopped, data directory removed, media objects
deleted); then a new homeserver is started on the restored database and a restored copy
of the bucket, and shows the rooms, memberships and still-encrypted events back, the
attachment served again, and the receiving doctor's own device, keys and all, reading
the message sent before the loss.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from messaging_testkit import RecordingTrail, run

from app.messaging.audit import RoomLedger
from app.messaging.client import HomeserverClient
from app.messaging.e2e import EncryptedMessenger, ReceivedMessage, RefusedMessage
from app.messaging.homeserver import EmulatedMediaBucket
from app.messaging.local import LocalMessaging
from app.messaging.runner import LOOPBACK, LocalHomeserver, free_loopback_port
from app.messaging.service import MEGOLM, MatrixSession
from infra.emulator.server import EMULATOR_CREDENTIALS
from infra.messaging_recovery import backup_homeserver_database, restore_homeserver_database
from infra.recovery import RestoreError, inventory_bucket, restore_bucket

pytestmark = [pytest.mark.integration, pytest.mark.messaging]

REGION = "ap-east-1"
RegNos = Callable[[int], list[str]]


@pytest.fixture
def media_bucket(moto_endpoint: str) -> Iterator[EmulatedMediaBucket]:
    """A versioned media bucket on the session's moto, as the messaging component
    declares it (versioning is what AWS Backup's S3 backups and this restore use)."""
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto_endpoint)
    name = f"drill-messaging-media-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    yield EmulatedMediaBucket(
        bucket=name,
        region=REGION,
        endpoint_url=moto_endpoint,
        access_key_id=EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        secret_access_key=EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def _upload(live: LocalMessaging, token: str, body: bytes) -> str:
    """Upload as a doctor (the hub records it first: the policy module asks)."""
    live.attach_ledger(
        RoomLedger(
            RecordingTrail(),  # type: ignore[arg-type]
            live.directory,
            live.authority.names,
            marker_table="unused",
            phase=1,
        )
    )
    try:
        stored = httpx.post(
            f"{live.base_url}/_matrix/media/v3/upload",
            content=body,
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/octet-stream",
            },
            timeout=30,
        )
    finally:
        live.attach_ledger(None)
    assert stored.status_code == 200, stored.text
    return str(stored.json()["content_uri"])


def _download(base_url: str, token: str, mxc: str) -> httpx.Response:
    server, media_id = mxc.removeprefix("mxc://").split("/")
    return httpx.get(
        f"{base_url}/_matrix/client/v1/media/download/{server}/{media_id}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def test_messaging_backup_loss_restore_then_a_doctor_reads_an_earlier_message(
    tmp_path: Path, media_bucket: EmulatedMediaBucket, new_reg_nos: RegNos
) -> None:
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=media_bucket.endpoint_url)
    live = LocalMessaging(tmp_path / "live", rate_limits="test", media_bucket=media_bucket)
    reg_nos = new_reg_nos(2)
    group = uuid.uuid4().hex
    secret = f"synthetic finding {uuid.uuid4().hex}"
    attachment = os.urandom(4096)  # a client encrypts attachments before upload
    bob_store = tmp_path / "bob-device"  # Bob's device: keys on his side, not the server's
    bob_pickle_key = uuid.uuid4().hex
    with live:
        room_id = live.authority.create_group_room(group, reg_nos).room_id
        alias = live.authority.names.group_alias(group)
        bob_session = live.authority.open_session(reg_nos[1])
        alice_session = live.authority.open_session(reg_nos[0])
        mxc = _upload(live, alice_session.access_token, attachment)
        body = f"{secret} (attachment {mxc})"

        async def converse() -> str:
            alice = EncryptedMessenger(alice_session)
            bob = EncryptedMessenger(bob_session, store_dir=bob_store, pickle_key=bob_pickle_key)
            for device in (alice, bob):
                await device.start()
                await device.join(room_id)
            sent = await alice.send_text(room_id, body)
            await bob.wait_for(lambda d: any(m.event_id == sent for m in d.messages(room_id)))
            for device in (alice, bob):
                await device.close()
            return sent

        event_id = run(converse())
        live_settings = live.homeserver.settings
        members = live.client.members(room_id)
        assert members[alice_session.user_id] == members[bob_session.user_id] == "join"

        # Back up while Synapse runs: the database (online backup API) and the media
        # bucket's versions. The signing key is a secret (Secrets Manager on AWS): kept
        # aside, like the application service registration, which is the hub's.
        backup = backup_homeserver_database(
            live_settings.database_path, tmp_path / "backup" / "homeserver.db"
        )
        media = inventory_bucket(s3, media_bucket.bucket)
        secrets_kept = tmp_path / "secrets"
        secrets_kept.mkdir()
        shutil.copy2(live_settings.signing_key_path, secrets_kept / "signing.key")
        assert room_id in backup.state.rooms and event_id in backup.state.events
        assert media.versions, "the attachment never reached the media bucket"

        # The loss: the homeserver, its database and its media are gone.
        live.homeserver.stop()
        shutil.rmtree(live_settings.data_dir)
        for key in media.versions:
            s3.delete_object(Bucket=media_bucket.bucket, Key=key)  # a delete marker
        assert s3.list_objects_v2(Bucket=media_bucket.bucket).get("KeyCount") == 0

        # Restore into new resources: a new database file, a new bucket, a new homeserver.
        media_copy = f"{media_bucket.bucket}-restored"
        copied = restore_bucket(s3, media, media_copy, region=REGION)
        assert len(copied) == sum(len(media.held(key)) for key in media.versions)
        restored_dir = tmp_path / "restored"
        port = free_loopback_port()
        restored_settings = dataclasses.replace(
            live_settings,
            data_dir=restored_dir,
            port=port,
            public_baseurl=f"http://{LOOPBACK}:{port}/",
            media_bucket=dataclasses.replace(media_bucket, bucket=media_copy),
        )
        restored_state = restore_homeserver_database(backup, restored_settings.database_path)
        assert restored_state == backup.state
        shutil.copy2(secrets_kept / "signing.key", restored_settings.signing_key_path)
        with LocalHomeserver(restored_settings) as restored:
            _check_restored(restored, live, room_id, alias, members, event_id, secret)
            # The media: the restored homeserver's local store is empty, so what it serves
            # comes from the restored bucket.
            cached = [p for p in restored_settings.media_store_path.rglob("*") if p.is_file()]
            assert cached == []
            served = _download(restored.base_url, bob_session.access_token, mxc)
            assert served.status_code == 200, served.text
            assert served.content == attachment

            # Bob's own device (his keys, from his store) on the restored homeserver.
            async def read_again() -> ReceivedMessage:
                again = MatrixSession(
                    restored.base_url,
                    bob_session.user_id,
                    bob_session.device_id,
                    bob_session.access_token,
                )
                bob = EncryptedMessenger(again, store_dir=bob_store, pickle_key=bob_pickle_key)
                try:
                    await bob.sync(timeout_ms=0)  # the restored server knows his session
                    as_bob = httpx.get(
                        f"{restored.base_url}/_matrix/client/v3/rooms/{room_id}/event/{event_id}",
                        headers={"Authorization": f"Bearer {bob_session.access_token}"},
                        timeout=10,
                    )
                    assert as_bob.status_code == 200, as_bob.text
                    opened = bob.open_event(room_id, as_bob.json())
                finally:
                    await bob.close()
                assert isinstance(opened, ReceivedMessage), opened
                # Whoever holds only the backup (a device without Bob's keys) cannot.
                keyless = EncryptedMessenger(again)
                try:
                    assert isinstance(keyless.open_event(room_id, as_bob.json()), RefusedMessage)
                finally:
                    await keyless.close()
                return opened

            read = run(read_again())
            assert (read.body, read.sender, read.event_id) == (
                body,
                alice_session.user_id,
                event_id,
            )
            assert mxc in read.body


def _check_restored(
    restored: LocalHomeserver,
    live: LocalMessaging,
    room_id: str,
    alias: str,
    members: dict[str, str],
    event_id: str,
    secret: str,
) -> None:
    """The room, its memberships and its encrypted event, as the hub sees them."""
    hub = HomeserverClient(restored.base_url, live.registration.as_token)
    try:
        assert hub.resolve_alias(alias) == room_id
        assert hub.members(room_id) == members
        served = hub.request("GET", f"/_matrix/client/v3/rooms/{room_id}/event/{event_id}")
    finally:
        hub.close()
    assert served["type"] == "m.room.encrypted"
    assert served["content"]["algorithm"] == MEGOLM
    assert secret not in json.dumps(served)
    database = restored.settings.database_path
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        stored = [body for (body,) in db.execute("SELECT json FROM event_json")]
    assert stored and not [body for body in stored if secret in body]


def test_a_restore_never_writes_over_a_database(tmp_path: Path) -> None:
    source = tmp_path / "homeserver.db"
    with sqlite3.connect(source) as db:
        db.executescript(
            "CREATE TABLE rooms(room_id TEXT);"
            "CREATE TABLE local_current_membership(room_id, user_id, event_id, membership);"
            "CREATE TABLE events(event_id TEXT);"
            "INSERT INTO rooms VALUES ('!r:hub.local');"
        )
    backup = backup_homeserver_database(source, tmp_path / "backup.db")
    assert backup.state.rooms == {"!r:hub.local"}
    with pytest.raises(RestoreError, match="never writes over"):
        restore_homeserver_database(backup, source)
    with pytest.raises(RestoreError, match="never written over"):
        backup_homeserver_database(source, tmp_path / "backup.db")
    # A damaged backup is refused, and nothing is left behind as if restored.
    backup.path.write_bytes(b"not a database" * 100)
    target = tmp_path / "restored" / "homeserver.db"
    with pytest.raises(RestoreError):
        restore_homeserver_database(backup, target)
    assert not target.exists()
