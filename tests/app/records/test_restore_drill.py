"""The restore drill (docs/disaster-recovery.md), on the emulator, in the suite.

Back up the tables and buckets, destroy records in the live deployment, restore into
new resources, then read every record back through an app wired only to the restored
copy and verify the restored ledger with ``hub audit verify --live``. The mechanisms
are the ones AWS Backup uses underneath (DynamoDB backups, S3 versions); moto's Backup
service copies no data (see ``infra/recovery.py``).
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import boto3
import pytest
from fastapi.testclient import TestClient
from hub_testkit import PATIENT
from records_testkit import SHARD, RecordsHarness
from typer.testing import CliRunner

from app.dependencies import build_services
from app.main import create_app
from infra.cli import app as hub_cli
from infra.recovery import (
    RestoreError,
    backup_tables,
    inventory_bucket,
    repoint_shard_versions,
    restore_bucket,
    restore_tables,
)


def _upload(records: RecordsHarness, body: bytes) -> str:
    response = records.client.post(
        f"/patients/{PATIENT}/records",
        content=body,
        headers=records.headers("dr-lead", **{"Content-Type": "application/dicom"}),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["record_id"])


def _destroy(records: RecordsHarness, record_id: str) -> None:
    """Delete the record's items and its shard objects from the live deployment."""
    table = records.settings.table_records
    pages = records.dynamodb.get_paginator("query").paginate(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"RECORD#{record_id}"}},
    )
    for page in pages:
        for item in page["Items"]:
            records.dynamodb.delete_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]})


def test_backup_destroy_restore_then_verify_and_read(
    records: RecordsHarness, aws_backend: Any
) -> None:
    if aws_backend.name == "localstack":
        # A restore copies within one S3; in this tier the shard bucket is on LocalStack
        # and the session hub's checkpoint (audit) bucket on moto.
        pytest.skip("the shard and audit buckets are on two emulators in this tier")
    hub = records.hub
    settings = records.settings
    contents = {
        _upload(records, os.urandom(3 * SHARD + 7)): b"",
        _upload(records, b"x" * 100): b"",
    }
    for rid in contents:
        read = records.client.get(f"/records/{rid}/content", headers=records.headers("dr-lead"))
        contents[rid] = read.content
    bodies = list(contents)
    hub.services.ledger.integrate()

    # Back up: every table, the shard bucket and the checkpoint (audit) bucket.
    label = f"drill-{uuid.uuid4().hex[:6]}"
    tables = [
        settings.table_register,
        settings.table_groups,
        settings.table_records,
        settings.table_ledger,
        settings.table_institutions,
        settings.table_patients,
    ]
    backups = backup_tables(records.dynamodb, tables, label)
    shards = inventory_bucket(records.s3, records.bucket)
    checkpoints = inventory_bucket(records.s3, settings.checkpoint_bucket)
    assert checkpoints.versions, "no signed head was archived before the backup"

    # Destroy: the records' items and shard objects are gone from the live deployment.
    for rid in bodies:
        _destroy(records, rid)
    for key in shards.versions:
        records.s3.delete_object(Bucket=records.bucket, Key=key)  # a delete marker
    for rid in bodies:
        gone = records.client.get(f"/records/{rid}", headers=records.headers("dr-lead"))
        assert gone.status_code == 404, gone.text

    # Restore into new resources only.
    restored = restore_tables(records.dynamodb, backups, label)
    shard_copy = f"{records.bucket}-{label}"
    audit_copy = f"{settings.checkpoint_bucket[:40]}-{label}"
    try:
        copied = restore_bucket(records.s3, shards, shard_copy, region="ap-east-1")
        assert len(copied) == sum(len(shards.held(key)) for key in shards.versions)
        restore_bucket(records.s3, checkpoints, audit_copy, region="ap-east-1", object_lock=True)
        # Manifests pin shard versions; the copies have new ones.
        repointed = repoint_shard_versions(
            records.dynamodb, restored[settings.table_records], copied
        )
        # Other tests' records whose shard versions were deleted on purpose (tamper tests)
        # are named, not restored into readability; the drill's own are all restored.
        assert repointed.updated >= len(contents)
        assert not set(contents) & set(repointed.unreadable)
        restored_settings = settings.model_copy(
            update={
                "table_register": restored[settings.table_register],
                "table_groups": restored[settings.table_groups],
                "table_records": restored[settings.table_records],
                "table_ledger": restored[settings.table_ledger],
                "table_institutions": restored[settings.table_institutions],
                "table_patients": restored[settings.table_patients],
                "shard_bucket": shard_copy,
                "checkpoint_bucket": audit_copy,
            }
        )
        session = boto3.session.Session(region_name="ap-east-1")
        services = build_services(
            restored_settings,
            session=session,
            clock=hub.clock,
            monotonic=hub.monotonic,
            aws_clients={"s3": records.s3, "kms": records.kms, "dynamodb": records.dynamodb},
        )
        # Not entered as a context manager: no second sequencer thread.
        copy = TestClient(create_app(restored_settings, services=services))

        # The records read pass, on the restored copy only.
        for rid, content in contents.items():
            got = copy.get(f"/records/{rid}/content", headers=records.headers("dr-lead"))
            assert got.status_code == 200, got.text
            assert got.content == content
        # The reads were audited in the restored ledger; sign a head over them.
        services.ledger.integrate()

        verified = CliRunner().invoke(
            hub_cli,
            [
                "audit",
                "verify",
                "--live",
                "--table",
                restored_settings.table_ledger,
                "--bucket",
                audit_copy,
                "--key-id",
                settings.signing_key_arn,
                "--endpoint",
                hub.endpoint,
            ],
        )
        assert verified.exit_code == 0, verified.output
    finally:
        for target in restored.values():
            records.dynamodb.delete_table(TableName=target)


def test_a_version_no_longer_held_is_a_restore_error(records: RecordsHarness) -> None:
    key = f"drill/{uuid.uuid4().hex}"
    version = records.s3.put_object(Bucket=records.bucket, Key=key, Body=b"x")["VersionId"]
    inventory = inventory_bucket(records.s3, records.bucket)
    assert inventory.versions[key] == version
    # Permanently deleting the version (what lifecycle expiry or a shred does) makes it
    # unrestorable, and the restore says so rather than copying what is left.
    records.s3.delete_object(Bucket=records.bucket, Key=key, VersionId=version)
    only = type(inventory)(records.bucket, {key: version})
    with pytest.raises(RestoreError, match=key):
        restore_bucket(
            records.s3, only, f"{records.bucket}-gone-{uuid.uuid4().hex[:4]}", region="ap-east-1"
        )


def test_a_record_whose_shard_was_gone_before_the_backup_is_named_and_still_refused(
    records: RecordsHarness,
) -> None:
    kept, lost = _upload(records, b"k" * 100), _upload(records, b"l" * 100)
    state = records.records._repo.load(lost)
    assert state is not None
    shard = state.versions[0].shards[0]
    assert shard.version_id is not None
    # Permanently delete the pinned version before the backup: the live service
    # already refuses the record.
    records.s3.delete_object(Bucket=records.bucket, Key=shard.key, VersionId=shard.version_id)
    refused = records.client.get(f"/records/{lost}/content", headers=records.headers("dr-lead"))
    assert refused.status_code >= 400
    label = f"drill-{uuid.uuid4().hex[:6]}"
    backups = backup_tables(records.dynamodb, [records.settings.table_records], label)
    inventory = inventory_bucket(records.s3, records.bucket)
    restored = restore_tables(records.dynamodb, backups, label)
    try:
        copied = restore_bucket(
            records.s3, inventory, f"{records.bucket}-{label}", region="ap-east-1"
        )
        repointed = repoint_shard_versions(
            records.dynamodb, restored[records.settings.table_records], copied
        )
        assert lost in repointed.unreadable
        assert kept not in repointed.unreadable and repointed.updated >= 1
    finally:
        for target in restored.values():
            records.dynamodb.delete_table(TableName=target)
