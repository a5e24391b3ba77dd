"""Backup and restore of the hub's data stores with the AWS mechanisms underneath.

AWS Backup takes a DynamoDB table's backup through DynamoDB's own backups and an S3
bucket's through its versions; moto's Backup service records vaults and plans but
copies no data, so the restore drill (``tests/app/records/test_restore_drill.py``, the
runbook in ``docs/disaster-recovery.md``) uses those mechanisms directly:

- a table: ``CreateBackup`` (on demand), then ``RestoreTableFromBackup`` into a **new**
  table (a restore never overwrites the live one);
- a bucket: the version inventory at backup time (``ListObjectVersions``: the version
  id of every object then current), then a copy of exactly those versions into a new
  bucket. Deleting an object later only adds a delete marker, so the versions the
  inventory names stay restorable for as long as the bucket keeps noncurrent versions.

Guarantees: a restore writes only new resources; every table restored holds the
items of its backup, every object restored is byte-for-byte the inventoried version
(the copy names the version id); a missing backup or version raises, never restores a
partial copy silently.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


class RestoreError(RuntimeError):
    """A backup or restore could not be completed; nothing partial is reported as done."""


@dataclass(frozen=True)
class BucketInventory:
    """The version of every object current in ``bucket`` at backup time."""

    bucket: str
    versions: Mapping[str, str]  # key -> version id


def backup_tables(dynamodb: Any, tables: Iterable[str], label: str) -> dict[str, str]:
    """An on-demand backup of each table; returns table name -> backup ARN."""
    arns = {}
    for table in tables:
        response = dynamodb.create_backup(TableName=table, BackupName=f"{label}-{table}"[:255])
        details = response["BackupDetails"]
        if details.get("BackupStatus") not in ("AVAILABLE", "CREATING"):
            raise RestoreError(f"backup of {table} is {details.get('BackupStatus')}")
        arns[table] = str(details["BackupArn"])
    return arns


def restore_tables(dynamodb: Any, backups: Mapping[str, str], suffix: str) -> dict[str, str]:
    """Restore each backup into a new table named ``<table>-<suffix>``; returns table
    name -> restored table name, once every restored table is ACTIVE."""
    restored = {}
    for table, arn in backups.items():
        target = f"{table}-{suffix}"
        dynamodb.restore_table_from_backup(TargetTableName=target, BackupArn=arn)
        restored[table] = target
    for target in restored.values():
        dynamodb.get_waiter("table_exists").wait(
            TableName=target, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )
    return restored


def inventory_bucket(s3: Any, bucket: str) -> BucketInventory:
    """The version id of every object current now (delete markers excluded)."""
    versions: dict[str, str] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for version in page.get("Versions", []):
            if version.get("IsLatest"):
                versions[str(version["Key"])] = str(version["VersionId"])
    return BucketInventory(bucket, versions)


def restore_bucket(
    s3: Any, inventory: BucketInventory, target: str, *, region: str, object_lock: bool = False
) -> dict[tuple[str, str], str]:
    """Copy every inventoried version into a new bucket ``target`` (versioned, and
    Object Lock enabled when ``object_lock``).

    Returns:
        (key, version id in the backup) -> version id of the copy. S3 gives a copy a new
        version id; record manifests pin shard versions, so the restored records table
        is re-pointed with :func:`repoint_shard_versions`.

    Raises:
        RestoreError: an inventoried version no longer exists (it was expired or
            permanently deleted), or the copy failed.
    """
    s3.create_bucket(
        Bucket=target,
        CreateBucketConfiguration={"LocationConstraint": region},
        ObjectLockEnabledForBucket=object_lock,
    )
    s3.put_bucket_versioning(Bucket=target, VersioningConfiguration={"Status": "Enabled"})
    from botocore.exceptions import ClientError

    copied: dict[tuple[str, str], str] = {}
    for key, version in inventory.versions.items():
        try:
            response = s3.copy_object(
                Bucket=target,
                Key=key,
                CopySource={"Bucket": inventory.bucket, "Key": key, "VersionId": version},
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "Error")
            raise RestoreError(f"{inventory.bucket}/{key} version {version}: {code}") from None
        copied[(key, version)] = str(response["VersionId"])
    return copied


def repoint_shard_versions(
    dynamodb: Any, records_table: str, copied: Mapping[tuple[str, str], str]
) -> int:
    """Re-point every record version's pinned shard versions in a restored records table
    at the copies :func:`restore_bucket` made; returns the number of versions updated.

    Raises:
        RestoreError: a version's shard was not in the restored bucket (the restore
            would serve a record it cannot open).
    """
    updated = 0
    pages = dynamodb.get_paginator("scan").paginate(
        TableName=records_table,
        FilterExpression="attribute_exists(shard_keys) AND begins_with(sk, :v)",
        ExpressionAttributeValues={":v": {"S": "VERSION#"}},
    )
    for page in pages:
        for item in page.get("Items", []):
            upload_id = item["upload_id"]["S"]
            keys = [k["S"] for k in item["shard_keys"]["L"]]
            pinned = [v["S"] for v in item.get("shard_versions", {}).get("L", [])]
            if item.get("shredded_at") or not pinned:
                continue  # shredded: nothing to open, nothing to restore
            new = []
            for shard, version in zip(keys, pinned, strict=True):
                key = f"shards/{upload_id}/{shard}"
                if (key, version) not in copied:
                    raise RestoreError(f"{key} version {version} is not in the restored bucket")
                new.append({"S": copied[(key, version)]})
            dynamodb.update_item(
                TableName=records_table,
                Key={"pk": item["pk"], "sk": item["sk"]},
                UpdateExpression="SET shard_versions = :v",
                ExpressionAttributeValues={":v": {"L": new}},
            )
            updated += 1
    return updated
