"""Tampering with stored records, and throttling, seen through the routes.

Tampering (someone with write access to the bucket and the table): every case is the one
opaque 500 (``record_integrity_failure``), and no plaintext of a bad shard is released.
Throttling: botocore's standard retry mode retries S3 ``SlowDown`` and KMS
``ThrottlingException`` with backoff, a bounded number of times.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from hub_testkit import PATIENT
from records_testkit import SHARD, RecordsHarness

from app.crypto.envelope import Manifest
from app.records.repository import version_sk

URL = f"/patients/{PATIENT}/records"


def upload(records: RecordsHarness, body: bytes, client: Any = None) -> Any:
    return (client or records.client).post(
        URL,
        content=body,
        headers=records.headers("dr-lead", **{"Content-Type": "application/dicom"}),
    )


def stored(records: RecordsHarness, rid: str, version: int = 1) -> dict[str, Any]:
    return records.dynamodb.get_item(
        TableName=records.settings.table_records,
        Key={"pk": {"S": f"RECORD#{rid}"}, "sk": {"S": version_sk(version)}},
        ConsistentRead=True,
    )["Item"]


def update(
    records: RecordsHarness, rid: str, expression: str, values: dict[str, Any], version: int = 1
) -> None:
    records.dynamodb.update_item(
        TableName=records.settings.table_records,
        Key={"pk": {"S": f"RECORD#{rid}"}, "sk": {"S": version_sk(version)}},
        UpdateExpression=expression,
        ExpressionAttributeValues=values,
    )


def overwrite_shard(
    records: RecordsHarness, rid: str, index: int, change: Callable[[bytes], bytes]
) -> None:
    """Replace shard ``index`` in S3 and point the version item at the new object version."""
    item = stored(records, rid)
    key = f"shards/{item['upload_id']['S']}/{item['shard_keys']['L'][index]['S']}"
    old = records.s3.get_object(Bucket=records.bucket, Key=key)["Body"].read()
    put = records.s3.put_object(Bucket=records.bucket, Key=key, Body=change(old))
    versions = item["shard_versions"]["L"]
    versions[index] = {"S": put["VersionId"]}
    update(records, rid, "SET shard_versions = :v", {":v": {"L": versions}})


def flip(data: bytes) -> bytes:
    return bytes([data[0] ^ 1]) + data[1:]


def get(records: RecordsHarness, rid: str, **kwargs: Any) -> Any:
    return records.client.get(
        f"/records/{rid}/content", headers=records.headers("dr-lead"), **kwargs
    )


def assert_opaque(response: Any, body: bytes) -> None:
    assert response.status_code == 500
    assert response.json() == {
        "error": {
            "code": "record_integrity_failure",
            "message": "The record failed verification; no content was released.",
        }
    }
    assert body[:64] not in response.content


@pytest.fixture
def record(records: RecordsHarness) -> tuple[str, bytes]:
    body = os.urandom(3 * SHARD + 11)
    r = upload(records, body)
    assert r.status_code == 201
    return r.json()["record_id"], body


def test_bit_flip_in_the_first_shard_is_refused_before_any_byte(
    records: RecordsHarness, record: tuple[str, bytes]
) -> None:
    rid, body = record
    overwrite_shard(records, rid, 0, flip)
    assert_opaque(get(records, rid), body)


def test_bit_flip_in_the_last_shard_is_refused_before_any_byte(
    records: RecordsHarness, record: tuple[str, bytes]
) -> None:
    """The service verifies the whole version before its answer starts: a bad last shard
    is the opaque 500, never a 200 cut short (which a client could keep as complete)."""
    rid, body = record
    overwrite_shard(records, rid, 3, flip)
    assert_opaque(get(records, rid), body)


def test_swapped_shards_are_refused(records: RecordsHarness, record: tuple[str, bytes]) -> None:
    rid, body = record
    item = stored(records, rid)
    keys, versions = item["shard_keys"]["L"], item["shard_versions"]["L"]
    keys[0], keys[1] = keys[1], keys[0]
    versions[0], versions[1] = versions[1], versions[0]
    update(
        records,
        rid,
        "SET shard_keys = :k, shard_versions = :v",
        {":k": {"L": keys}, ":v": {"L": versions}},
    )
    assert_opaque(get(records, rid), body)


def test_a_deleted_shard_is_refused(records: RecordsHarness, record: tuple[str, bytes]) -> None:
    rid, body = record
    item = stored(records, rid)
    key = f"shards/{item['upload_id']['S']}/{item['shard_keys']['L'][0]['S']}"
    records.s3.delete_object(
        Bucket=records.bucket, Key=key, VersionId=item["shard_versions"]["L"][0]["S"]
    )
    assert_opaque(get(records, rid), body)


def test_an_edited_manifest_is_refused(records: RecordsHarness, record: tuple[str, bytes]) -> None:
    rid, body = record
    manifest = stored(records, rid)["manifest"]["B"]
    edited = manifest.replace(b'"total_length":', b'"total_length":1', 1)  # any change will do
    assert edited != manifest
    update(records, rid, "SET manifest = :m", {":m": {"B": edited}})
    assert_opaque(get(records, rid), body)


def test_a_manifest_from_another_record_is_refused(
    records: RecordsHarness, record: tuple[str, bytes]
) -> None:
    rid, body = record
    other = upload(records, os.urandom(3 * SHARD + 11)).json()["record_id"]
    theirs = stored(records, other)
    assert Manifest.from_bytes(bytes(theirs["manifest"]["B"])).context.record_id == other
    update(
        records,
        rid,
        "SET manifest = :m, upload_id = :u, shard_keys = :k, shard_versions = :v",
        {
            ":m": theirs["manifest"],
            ":u": theirs["upload_id"],
            ":k": theirs["shard_keys"],
            ":v": theirs["shard_versions"],
        },
    )
    assert_opaque(get(records, rid), body)


# -- throttling ----------------------------------------------------------------------------


class _Raw:
    def __init__(self, body: bytes):
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


def throttle(client: Any, event: str, times: int, status: int, body: bytes) -> dict[str, int]:
    """Answer the first ``times`` attempts of an operation with a throttling error, before
    they are sent (botocore's ``before-send`` hook); count every attempt."""
    state = {"left": times, "attempts": 0}
    lock = threading.Lock()

    def handler(request: Any, **_: Any) -> AWSResponse | None:
        with lock:
            state["attempts"] += 1
            if state["left"] <= 0:
                return None
            state["left"] -= 1
        return AWSResponse(request.url, status, {}, _Raw(body))

    client.meta.events.register(event, handler)
    return state


S3_SLOWDOWN = (
    b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
)
KMS_THROTTLED = b'{"__type": "ThrottlingException", "message": "Rate exceeded"}'


def retrying(records: RecordsHarness, service: str) -> Any:
    """A client of ``service`` on the harness's endpoint, as the service builds its own:
    standard retry mode, at most three attempts."""
    import boto3

    existing = records.s3 if service == "s3" else records.kms
    return boto3.client(
        service,
        region_name="ap-east-1",
        endpoint_url=existing.meta.endpoint_url,
        config=Config(retries={"mode": "standard", "total_max_attempts": 3}),
    )


def test_s3_slowdown_is_retried_with_backoff_then_succeeds(records: RecordsHarness) -> None:
    s3 = retrying(records, "s3")
    state = throttle(s3, "before-send.s3.PutObject", 2, 503, S3_SLOWDOWN)
    client = records.app_with(records.service_with(s3=s3))
    body = os.urandom(SHARD // 2)
    r = upload(records, body, client)
    assert r.status_code == 201, r.text
    assert state["attempts"] == 3
    assert get(records, r.json()["record_id"]).content == body


def test_persistent_throttling_is_a_bounded_503_and_stores_nothing(records: RecordsHarness) -> None:
    kms = retrying(records, "kms")
    state = throttle(kms, "before-send.kms.GenerateDataKey", 100, 400, KMS_THROTTLED)
    client = records.app_with(records.service_with(kms=kms))
    before = records.record_ids()
    r = upload(records, os.urandom(100), client)
    assert r.status_code == 503 and r.json()["error"]["code"] == "storage_unavailable"
    assert state["attempts"] == 3  # max_attempts, then give up
    assert records.record_ids() == before


def test_a_records_items_are_read_across_page_boundaries(
    records: RecordsHarness, record: tuple[str, bytes]
) -> None:
    """Loading a record and listing its stored items read every page of its partition
    (here one item per page), the same as one 1 MB page holds."""
    from app.records.repository import RecordRepository

    rid, _ = record
    default = records.records._repo
    one_per_page = RecordRepository(records.dynamodb, records.settings.table_records, page_size=1)
    items = one_per_page.raw_items(rid)
    assert len(items) >= 2 and items == default.raw_items(rid)
    assert one_per_page.load(rid) == default.load(rid)
