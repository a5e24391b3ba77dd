"""A version item and an upload session's item at the shard cap fit DynamoDB's 400 KB item
limit (moto enforces it)."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError
from records_testkit import RecordsHarness

from app.crypto.envelope import ManifestV1, RecordContext, ShardEntry
from app.dynamo import serialize
from app.records.repository import RecordVersion, version_item
from app.records.shards import StoredShard, shard_key
from app.settings import MAX_SHARDS_PER_VERSION

MIB = 1 << 20


def version_with(shards: int) -> RecordVersion:
    """A version of ``shards`` full 1 MiB shards, with real-sized ids and manifest."""
    rid = uuid.uuid4().hex
    context = RecordContext(rid, "pt1-" + "a" * 64, 1, "harbour-cardiac-alliance")
    manifest = ManifestV1(
        context=context,
        encrypted_data_key=os.urandom(184),  # a KMS CiphertextBlob for a 256-bit key
        key_salt=os.urandom(32),
        shard_size=MIB,
        total_length=shards * MIB,
        shards=tuple(ShardEntry(MIB + 16, os.urandom(32)) for _ in range(shards)),
        commitment=os.urandom(32),
        mac=os.urandom(32),
    )
    upload = uuid.uuid4().hex
    return RecordVersion(
        record_id=rid,
        version=1,
        content_type="application/dicom",
        length=shards * MIB,
        status="active",
        created_at=datetime.now(UTC),
        created_by="M20001",
        upload_id=upload,
        shards=tuple(
            StoredShard(shard_key(upload, uuid.uuid4().hex), str(uuid.uuid4()))
            for _ in range(shards)
        ),
        manifest=manifest.to_bytes(),
        content_digest=os.urandom(60),
    )


def put(records: RecordsHarness, version: RecordVersion) -> None:
    """Store the item, then remove it again (it has no shards behind it)."""
    item = serialize(version_item(version))
    table = records.settings.table_records
    records.dynamodb.put_item(TableName=table, Item=item)
    records.dynamodb.delete_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]})


def test_the_largest_allowed_version_item_fits(records: RecordsHarness) -> None:
    put(records, version_with(MAX_SHARDS_PER_VERSION))


def test_twice_the_cap_would_not_fit(records: RecordsHarness) -> None:
    with pytest.raises(ClientError, match="size"):
        put(records, version_with(2 * MAX_SHARDS_PER_VERSION))


def test_an_upload_session_at_the_shard_cap_fits(records: RecordsHarness) -> None:
    from app.records.repository import UploadSession, session_item

    now = datetime.now(UTC)
    session = UploadSession(
        upload_id=uuid.uuid4().hex,
        status="pending",
        owner_sub=str(uuid.uuid4()),
        owner_reg_no="M20001",
        record_id=uuid.uuid4().hex,
        version=1,
        new_record=True,
        patient_id="pt-synthetic-000042",
        patient_ref="pt1-" + "a" * 64,
        institution="harbour-cardiac-alliance",
        content_type="application/dicom",
        length=MAX_SHARDS_PER_VERSION * MIB,
        shard_size=MIB,
        shard_count=MAX_SHARDS_PER_VERSION,
        category="imaging",
        title="x" * 120,
        encrypted_data_key=os.urandom(184),
        created_at=now,
        expires_at=now,
    )
    item = session_item(session)
    keys = [uuid.uuid4().hex for _ in range(MAX_SHARDS_PER_VERSION)]
    # Every shard issued, and checked, once: what the item holds at its largest.
    item["shards"] = {str(i): {"k": k, "c": "AAAAAAAAAAA="} for i, k in enumerate(keys)}
    item["verified"] = {k: str(uuid.uuid4()) for k in keys}
    table = records.settings.table_records
    records.dynamodb.put_item(TableName=table, Item=serialize(item))
    records.dynamodb.delete_item(
        TableName=table, Key={"pk": {"S": item["pk"]}, "sk": {"S": item["sk"]}}
    )
