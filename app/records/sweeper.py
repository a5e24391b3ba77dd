"""The orphan-shard sweeper: reclaims shards that no committed manifest references.

An upload writes its marker (``UPLOAD#<id>``, ``pending``) before it puts any shard under
``shards/<id>/``, and its commit flips the marker to ``committed`` in the same transaction
that makes the manifest visible. So the sweeper needs no index of shards: it lists the
bucket one upload prefix at a time and reads the markers of old prefixes in batches
(``BatchGetItem``, strongly consistent), one item per upload.

A prefix is swept only when every object in it is older than the grace period and its
marker is absent, ``abandoned``, ``swept``, ``shredded``, or ``pending`` since before the
cutoff. The sweeper first moves the marker to ``swept`` with a conditional write and
deletes objects only if that succeeds: the commit requires ``pending``, so once the sweeper
has won, a slow upload can no longer commit (it fails and its client retries), and once
the commit has won, the sweeper's condition fails and it deletes nothing. Committed
shards are never touched; young orphans (an upload still in flight) are left alone.

Run it from a schedule (or by hand) with the service's settings::

    .venv/bin/python -m app.records.sweeper [--dry-run] [--grace-seconds N]
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from app.records.repository import RecordRepository
from app.records.shards import ShardStore, StoredShard

log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    uploads_seen: int = 0
    committed: int = 0
    young: int = 0
    swept_uploads: int = 0
    deleted_objects: int = 0
    dry_run: bool = False


def sweep(
    repository: RecordRepository,
    shards: ShardStore,
    *,
    grace_seconds: int,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    dry_run: bool = False,
) -> SweepReport:
    """Delete orphan shards older than ``grace_seconds``; returns what was seen and done."""
    report = SweepReport(dry_run=dry_run)
    cutoff = now() - timedelta(seconds=grace_seconds)
    batch: list[tuple[str, list[tuple[str, datetime]]]] = []
    for upload_id, objects in shards.list_uploads():
        report.uploads_seen += 1
        if any(_aware(modified) >= cutoff for _, modified in objects):
            report.young += 1
            continue
        batch.append((upload_id, objects))
        if len(batch) == _BATCH:
            _sweep_batch(repository, shards, batch, cutoff, report)
            batch = []
    _sweep_batch(repository, shards, batch, cutoff, report)
    return report


_BATCH = 100


def _sweep_batch(
    repository: RecordRepository,
    shards: ShardStore,
    batch: Sequence[tuple[str, list[tuple[str, datetime]]]],
    cutoff: datetime,
    report: SweepReport,
) -> None:
    """Old uploads: read their markers in one batch, then reclaim the uncommitted ones."""
    if not batch:
        return
    statuses = repository.upload_statuses([upload_id for upload_id, _ in batch])
    for upload_id, objects in batch:
        if statuses.get(upload_id) == "committed":
            report.committed += 1
            continue
        if report.dry_run:
            report.swept_uploads += 1
            report.deleted_objects += len(objects)
            continue
        if not repository.release_upload(upload_id, "swept", older_than=cutoff):
            # Committed meanwhile, or a pending upload that began after the cutoff.
            report.committed += 1
            continue
        victims = [StoredShard(key, shards.current_version(key)) for key, _ in objects]
        shards.delete(victims)
        report.swept_uploads += 1
        report.deleted_objects += len(victims)
        log.info("swept upload %s (%d objects)", upload_id, len(victims))


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def main(argv: Sequence[str] | None = None) -> int:
    import boto3

    from app.settings import REGION, Settings

    parser = argparse.ArgumentParser(description="Delete orphan record shards")
    parser.add_argument("--dry-run", action="store_true", help="report, delete nothing")
    parser.add_argument("--grace-seconds", type=int, default=None)
    args = parser.parse_args(argv)
    settings = Settings()
    if not (settings.shard_bucket and settings.table_records and settings.records_key_arn):
        parser.error("HUB_SHARD_BUCKET, HUB_TABLE_RECORDS and HUB_RECORDS_KEY_ARN are required")
    config = settings.aws_config()
    session = boto3.session.Session(region_name=REGION)
    report = sweep(
        RecordRepository(session.client("dynamodb", config=config), settings.table_records),
        ShardStore(
            session.client("s3", config=config),
            settings.shard_bucket,
            settings.records_key_arn,
            settings.upload_parallelism,
        ),
        grace_seconds=(
            settings.orphan_grace_seconds if args.grace_seconds is None else args.grace_seconds
        ),
        dry_run=args.dry_run,
    )
    print(json.dumps(asdict(report)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
