"""The sweeper deletes orphan shards only: never a committed one, never a young one."""

from __future__ import annotations

import json
import os
import uuid
from datetime import timedelta
from typing import Any

import pytest
from hub_testkit import PATIENT
from records_testkit import SHARD, RecordsHarness

from app.records import sweeper
from app.records.shards import shard_key

URL = f"/patients/{PATIENT}/records"


def later(records: RecordsHarness) -> Any:
    moment = records.hub.clock() + timedelta(seconds=records.settings.orphan_grace_seconds + 60)
    return lambda: moment


def run(records: RecordsHarness, **kwargs: Any) -> sweeper.SweepReport:
    return sweeper.sweep(
        records.records._repo,
        records.records._shards,
        grace_seconds=records.settings.orphan_grace_seconds,
        **kwargs,
    )


def orphan_upload(records: RecordsHarness, *, marker: bool) -> set[str]:
    """Shards put for an upload that never committed (with or without its marker)."""
    upload_id = uuid.uuid4().hex
    if marker:
        records.records._repo.mark_upload_pending(upload_id, records.hub.clock())
    keys = {shard_key(upload_id, uuid.uuid4().hex) for _ in range(3)}
    for key in keys:
        records.s3.put_object(Bucket=records.bucket, Key=key, Body=os.urandom(64))
    return keys


def test_only_old_orphans_are_swept(records: RecordsHarness) -> None:
    body = os.urandom(3 * SHARD)
    r = records.client.post(
        URL,
        content=body,
        headers=records.headers("dr-lead", **{"Content-Type": "application/dicom"}),
    )
    rid = r.json()["record_id"]
    pending = orphan_upload(records, marker=True)
    unmarked = orphan_upload(records, marker=False)

    committed = records.live_committed_keys()
    young = run(records)
    assert young.young >= 2 and pending | unmarked <= records.live_keys()

    dry = run(records, now=later(records), dry_run=True)
    assert dry.deleted_objects >= 6 and pending | unmarked <= records.live_keys()

    report = run(records, now=later(records))
    assert report.swept_uploads >= 2 and report.deleted_objects >= 6
    live = records.live_keys()
    assert not (pending | unmarked) & live
    assert committed <= live
    got = records.client.get(f"/records/{rid}/content", headers=records.headers("dr-lead"))
    assert got.content == body


def test_leftovers_of_a_shredded_version_are_swept(records: RecordsHarness) -> None:
    r = records.client.post(
        URL,
        content=b"s" * 100,
        headers=records.headers("dr-lead", **{"Content-Type": "text/plain"}),
    )
    rid = r.json()["record_id"]
    state = records.records._repo.load(rid)
    assert state is not None
    upload_id = state.versions[0].upload_id
    # The shred's own delete failed: its key was removed, a shard object remains.
    leftover = shard_key(upload_id, uuid.uuid4().hex)
    records.s3.put_object(Bucket=records.bucket, Key=leftover, Body=b"ciphertext")
    assert run(records, now=later(records)).committed >= 1
    assert leftover in records.live_keys()  # committed upload: untouched
    d = records.client.request(
        "DELETE",
        f"/records/{rid}/versions/1",
        json={"reason": "retention_expired"},
        headers=records.headers("dr-lead"),
    )
    assert d.status_code == 200
    run(records, now=later(records))
    assert leftover not in records.live_keys()


def test_command_line_reports_as_json(
    records: RecordsHarness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    s = records.settings
    # Per-service endpoints: S3 may be LocalStack's while DynamoDB stays on moto.
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", records.s3.meta.endpoint_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", records.dynamodb.meta.endpoint_url)
    for name, value in {
        "HUB_MODE": "local",
        "HUB_SHARD_BUCKET": s.shard_bucket,
        "HUB_TABLE_RECORDS": s.table_records,
        "HUB_RECORDS_KEY_ARN": s.records_key_arn,
    }.items():
        monkeypatch.setenv(name, value)
    assert sweeper.main(["--dry-run"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dry_run"] is True and report["uploads_seen"] >= 1
