"""A version item at the shard cap fits DynamoDB's 400 KB item limit (moto enforces it)."""

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
