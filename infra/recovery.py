"""Backup and restore of the hub's data stores with the AWS mechanisms underneath.

AWS Backup takes a DynamoDB table's backup through DynamoDB's own backups and an S3
bucket's through its versions; moto's Backup service records vaults and plans but
copies no data, so the restore drills (``tests/app/records/test_restore_drill.py``; the
messaging media bucket in ``tests/app/messaging/test_messaging_restore_drill.py``, whose
database steps are :mod:`infra.messaging_recovery`; the runbook in
``docs/disaster-recovery.md``) use those mechanisms directly:

- a table: ``CreateBackup`` (on demand), then ``RestoreTableFromBackup`` into a **new**
  table (a restore never overwrites the live one);
- a bucket: the version inventory at backup time (``ListObjectVersions``: every version
  then held, and which is current), then a copy of exactly those versions, oldest first,
  into a new bucket (so the current one stays current). Record manifests pin shard
  versions, and a pinned version need not be the current one. Deleting an object later
  only adds a delete marker, so the versions the inventory names stay restorable for as
  long as the bucket keeps noncurrent versions.

Guarantees: a restore writes only new resources; every table restored holds the
items of its backup, every object restored is byte-for-byte the inventoried version
(the copy names the version id); a missing backup or version raises, never restores a
partial copy silently. A record whose pinned shard version was already gone at backup
time (it could not be opened in the live deployment either) is restored exactly as it
was, still refused on read, and named in the result: a restore neither repairs nor hides
what the backup did not hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


class RestoreError(RuntimeError):
    """A backup or restore could not be completed; nothing partial is reported as done."""


@dataclass(frozen=True)
class BucketInventory:
    """The version of every object current in ``bucket`` at backup time."""

    bucket: str
    versions: Mapping[str, str]  # key -> version id current at backup time
    # key -> every version held at backup time, oldest first (empty: the current only)
    history: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def held(self, key: str) -> tuple[str, ...]:
        """The versions of ``key`` to restore, oldest first."""
        return self.history.get(key) or (self.versions[key],)


@dataclass(frozen=True)
class Repointed:
    """What :func:`repoint_shard_versions` did to a restored records table."""

    updated: int  # record versions now pinned to the restored copies
    # record ids whose pinned shard versions the backup did not hold: left as they were
    # (refused on read, as in the live deployment before the backup)
    unreadable: tuple[str, ...]


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
    """Every version held now (delete markers excluded), and which is current."""
    versions: dict[str, str] = {}
    history: dict[str, list[tuple[str, str]]] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for version in page.get("Versions", []):
            key, version_id = str(version["Key"]), str(version["VersionId"])
            if version.get("IsLatest"):
                versions[key] = version_id
            history.setdefault(key, []).append((str(version["LastModified"]), version_id))
    return BucketInventory(
        bucket,
        versions,
        {
            # oldest first; the current version last, so it stays current in the copy
            key: tuple(v for _, v in sorted(held, key=lambda h: (h[1] == versions.get(key), h[0])))
            for key, held in history.items()
        },
    )


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
    held = [(key, version) for key in inventory.versions for version in inventory.held(key)]
    for key, version in held:
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
) -> Repointed:
    """Re-point every record version's pinned shard versions in a restored records table
    at the copies :func:`restore_bucket` made.

    A record version whose pinned shard version the backup did not hold (deleted before
    the backup: the live deployment already refused it) is left untouched, so the
    restored copy refuses it too, and is named in the result rather than raised: one
    record lost before the disaster must not stop every other record's restore.
    """
    updated = 0
    unreadable: list[str] = []
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
            wanted = [
                (f"shards/{upload_id}/{shard}", version)
                for shard, version in zip(keys, pinned, strict=True)
            ]
            if any(w not in copied for w in wanted):
                unreadable.append(str(item["pk"]["S"]).removeprefix("RECORD#"))
                continue
            new = [{"S": copied[w]} for w in wanted]
            dynamodb.update_item(
                TableName=records_table,
                Key={"pk": item["pk"], "sk": item["sk"]},
                UpdateExpression="SET shard_versions = :v",
                ExpressionAttributeValues={":v": {"L": new}},
            )
            updated += 1
    return Repointed(updated, tuple(unreadable))
