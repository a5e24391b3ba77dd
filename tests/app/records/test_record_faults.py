"""Fault injection on the upload path: S3, KMS, the commit, and crashes between steps.

Faults are injected by wrapping the service's clients (or the audit trail that runs the
commit transaction) in a proxy; production code is unchanged. In every case:

- no partial record is visible (no META item, no version, content 404);
- nothing committed before is lost or altered (a record stored at the start still opens
  to the same bytes and its items are unchanged);
- a retry with the same ``Idempotency-Key`` succeeds exactly once, and a second retry
  answers with the same record (``Idempotent-Replayed``), never a copy.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from hub_testkit import PATIENT
from records_testkit import SHARD, FailingCalls, RecordsHarness, SimulatedCrash, client_error

from app.crypto.errors import KeyServiceUnavailable
from app.records.sweeper import sweep

URL = f"/patients/{PATIENT}/records"
BODY = os.urandom(6 * SHARD - 100)  # six shards


def headers(records: RecordsHarness, key: str) -> dict[str, str]:
    return records.headers(
        "dr-lead", **{"Content-Type": "application/dicom", "Idempotency-Key": key}
    )


@pytest.fixture(scope="module")
def committed(records: RecordsHarness) -> tuple[str, bytes, list[dict[str, Any]]]:
    body = os.urandom(3 * SHARD + 1)
    r = records.client.post(URL, content=body, headers=headers(records, uuid.uuid4().hex))
    assert r.status_code == 201
    rid = r.json()["record_id"]
    return rid, body, records.records._repo.raw_items(rid)


@pytest.fixture
def invariant(
    records: RecordsHarness, committed: tuple[str, bytes, list[dict[str, Any]]]
) -> Iterator[dict[str, Any]]:
    """Snapshot before the fault; after the test, what was committed is intact."""
    snapshot = {
        "records": records.record_ids(),
        "objects": records.live_keys(),
        "committed": records.live_committed_keys(),
    }
    yield snapshot
    rid, body, items = committed
    assert records.records._repo.raw_items(rid) == items
    got = records.client.get(f"/records/{rid}/content", headers=records.headers("dr-lead"))
    assert got.status_code == 200 and got.content == body
    assert snapshot["committed"] <= records.live_keys()


def assert_nothing_new(records: RecordsHarness, snapshot: dict[str, Any]) -> None:
    assert records.record_ids() == snapshot["records"]
    assert records.live_keys() == snapshot["objects"]


def retry_succeeds_exactly_once(records: RecordsHarness, snapshot: dict[str, Any], key: str) -> str:
    first = records.client.post(URL, content=BODY, headers=headers(records, key))
    assert first.status_code == 201, first.text
    again = records.client.post(URL, content=BODY, headers=headers(records, key))
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    rid = first.json()["record_id"]
    assert again.json()["record_id"] == rid
    assert records.record_ids() == snapshot["records"] | {rid}
    got = records.client.get(f"/records/{rid}/content", headers=records.headers("dr-lead"))
    assert got.content == BODY
    return rid


@pytest.mark.parametrize("k", [1, 4, 6])
def test_s3_put_failing_at_shard_k_stores_nothing_and_retry_succeeds_once(
    records: RecordsHarness, invariant: dict[str, Any], k: int
) -> None:
    s3 = FailingCalls(
        records.s3, "put_object", lambda: client_error("InternalError", "PutObject"), on={k}
    )
    client = records.app_with(records.service_with(s3=s3))
    key = uuid.uuid4().hex
    r = client.post(URL, content=BODY, headers=headers(records, key))
    assert r.status_code == 503 and r.json()["error"]["code"] == "storage_unavailable"
    assert r.headers["retry-after"] == "1"  # a clear, retryable answer
    assert s3.calls >= k
    assert_nothing_new(records, invariant)
    retry_succeeds_exactly_once(records, invariant, key)


@pytest.mark.parametrize(
    "error",
    [
        lambda: client_error("ThrottlingException", "GenerateDataKey", 400),
        lambda: client_error("KMSInternalException", "GenerateDataKey"),
    ],
)
def test_kms_generate_data_key_failure_stores_nothing(
    records: RecordsHarness, invariant: dict[str, Any], error: Any
) -> None:
    kms = FailingCalls(records.kms, "generate_data_key", error)
    client = records.app_with(records.service_with(kms=kms))
    key = uuid.uuid4().hex
    r = client.post(URL, content=BODY, headers=headers(records, key))
    assert r.status_code == 503 and kms.calls == 1
    assert r.headers["retry-after"] == "1"
    assert_nothing_new(records, invariant)
    retry_succeeds_exactly_once(records, invariant, key)


def test_kms_decrypt_failure_is_a_clean_503_and_the_record_survives(
    records: RecordsHarness,
    invariant: dict[str, Any],
    committed: tuple[str, bytes, list[dict[str, Any]]],
) -> None:
    rid = committed[0]
    kms = FailingCalls(
        records.kms, "decrypt", lambda: client_error("ThrottlingException", "Decrypt", 400)
    )
    client = records.app_with(records.service_with(kms=kms))
    r = client.get(f"/records/{rid}/content", headers=records.headers("dr-lead"))
    assert r.status_code == 503 and r.json()["error"]["code"] == "storage_unavailable"
    assert r.headers["retry-after"] == "1"  # a clear, retryable answer
    assert committed[1][:64] not in r.content


def test_failed_manifest_commit_stores_nothing_and_retry_succeeds_once(
    records: RecordsHarness, invariant: dict[str, Any]
) -> None:
    trail = FailingCalls(
        records.services.audit,
        "transact_append",
        lambda: client_error("InternalServerError", "TransactWriteItems"),
    )
    client = records.app_with(records.service_with(audit=trail))
    key = uuid.uuid4().hex
    r = client.post(URL, content=BODY, headers=headers(records, key))
    assert r.status_code == 503 and trail.calls == 1
    assert_nothing_new(records, invariant)
    retry_succeeds_exactly_once(records, invariant, key)


def test_commit_whose_response_is_lost_is_recognised_as_committed(
    records: RecordsHarness, invariant: dict[str, Any]
) -> None:
    """The transaction committed but the client saw an error (a timeout): the marker says
    committed, so the shards are kept and the answer is the record; a retry replays it."""
    trail = FailingCalls(
        records.services.audit,
        "transact_append",
        lambda: client_error("RequestTimeout", "TransactWriteItems"),
        after=True,
    )
    client = records.app_with(records.service_with(audit=trail))
    key = uuid.uuid4().hex
    r = client.post(URL, content=BODY, headers=headers(records, key))
    assert r.status_code == 201, r.text
    rid = r.json()["record_id"]
    assert records.record_ids() == invariant["records"] | {rid}
    got = records.client.get(f"/records/{rid}/content", headers=records.headers("dr-lead"))
    assert got.content == BODY
    again = records.client.post(URL, content=BODY, headers=headers(records, key))
    assert again.json()["record_id"] == rid and again.headers["Idempotent-Replayed"] == "true"


def test_crash_after_shards_before_commit_leaves_only_orphans_the_sweeper_reclaims(
    records: RecordsHarness, invariant: dict[str, Any]
) -> None:
    trail = FailingCalls(records.services.audit, "transact_append", SimulatedCrash)
    client = records.app_with(records.service_with(audit=trail))
    key = uuid.uuid4().hex
    with pytest.raises(SimulatedCrash):
        client.post(URL, content=BODY, headers=headers(records, key))
    assert records.record_ids() == invariant["records"]
    orphans = records.live_keys() - invariant["objects"]
    assert len(orphans) == 6  # the crash left the shards behind; nothing references them

    rid = retry_succeeds_exactly_once(records, invariant, key)
    repo, shards = records.records._repo, records.records._shards
    young = sweep(repo, shards, grace_seconds=records.settings.orphan_grace_seconds)
    assert orphans <= records.live_keys(), "a young orphan was swept"
    assert young.young >= 1
    later = records.hub.clock() + timedelta(seconds=records.settings.orphan_grace_seconds + 60)
    report = sweep(
        repo, shards, grace_seconds=records.settings.orphan_grace_seconds, now=lambda: later
    )
    assert report.deleted_objects >= 6
    assert not orphans & records.live_keys()
    assert set(records.committed_shards()[f"{rid}/1"]) <= records.live_keys()


def test_an_upload_the_sweeper_reclaimed_can_no_longer_commit(
    records: RecordsHarness, invariant: dict[str, Any]
) -> None:
    """Sweep and commit race: the sweeper wins (the upload outlived the grace period), so
    the commit is refused and no manifest ever points at deleted shards."""
    later = records.hub.clock() + timedelta(seconds=records.settings.orphan_grace_seconds + 60)

    def sweeper_runs_first() -> None:
        sweep(
            records.records._repo,
            records.records._shards,
            grace_seconds=records.settings.orphan_grace_seconds,
            now=lambda: later,
        )

    trail = FailingCalls(
        records.services.audit, "transact_append", RuntimeError, before=sweeper_runs_first
    )
    client = records.app_with(records.service_with(audit=trail))
    r = client.post(URL, content=BODY, headers=headers(records, uuid.uuid4().hex))
    assert r.status_code == 409
    assert_nothing_new(records, invariant)


def test_failed_version_upload_or_commit_leaves_the_record_as_it_was(
    records: RecordsHarness,
    invariant: dict[str, Any],
    committed: tuple[str, bytes, list[dict[str, Any]]],
) -> None:
    """Adding a version fails at a shard put, then at the commit: the committed record's
    items (the invariant fixture compares them) and shards stay exactly as they were."""
    url = f"/records/{committed[0]}/versions"
    s3 = FailingCalls(
        records.s3, "put_object", lambda: client_error("SlowDown", "PutObject", 503), on={2}
    )
    key = uuid.uuid4().hex
    client = records.app_with(records.service_with(s3=s3))
    assert client.post(url, content=BODY, headers=headers(records, key)).status_code == 503
    trail = FailingCalls(
        records.services.audit,
        "transact_append",
        lambda: client_error("InternalServerError", "TransactWriteItems"),
    )
    client = records.app_with(records.service_with(audit=trail))
    assert client.post(url, content=BODY, headers=headers(records, key)).status_code == 503
    assert_nothing_new(records, invariant)


def test_version_retry_adds_exactly_one_version(records: RecordsHarness) -> None:
    body = os.urandom(SHARD)
    rid = records.client.post(URL, content=body, headers=headers(records, uuid.uuid4().hex)).json()[
        "record_id"
    ]
    url = f"/records/{rid}/versions"
    key = uuid.uuid4().hex
    trail = FailingCalls(
        records.services.audit,
        "transact_append",
        lambda: client_error("InternalServerError", "TransactWriteItems"),
    )
    failing = records.app_with(records.service_with(audit=trail))
    assert failing.post(url, content=BODY, headers=headers(records, key)).status_code == 503
    first = records.client.post(url, content=BODY, headers=headers(records, key))
    second = records.client.post(url, content=BODY, headers=headers(records, key))
    assert first.status_code == second.status_code == 201
    assert first.json()["version"]["version"] == second.json()["version"]["version"] == 2
    state = records.records._repo.load(rid)
    assert state is not None and [v.version for v in state.versions] == [1, 2]


def test_same_key_with_different_content_is_409(records: RecordsHarness) -> None:
    key = uuid.uuid4().hex
    assert (
        records.client.post(URL, content=b"a" * 10, headers=headers(records, key)).status_code
        == 201
    )
    before = records.record_ids()
    r = records.client.post(URL, content=b"b" * 10, headers=headers(records, key))
    assert r.status_code == 409 and r.json()["error"]["code"] == "idempotency_key_reused"
    assert records.record_ids() == before


def test_idempotency_keys_are_per_principal(records: RecordsHarness) -> None:
    key = uuid.uuid4().hex
    a = records.client.post(URL, content=b"x" * 10, headers=headers(records, key))
    h = records.headers(
        "dr-member", **{"Content-Type": "application/dicom", "Idempotency-Key": key}
    )
    b = records.client.post(URL, content=b"x" * 10, headers=h)
    assert a.status_code == b.status_code == 201
    assert a.json()["record_id"] != b.json()["record_id"]


def test_key_service_errors_are_not_integrity_verdicts() -> None:
    # The upload path maps KeyServiceUnavailable to 503 (retry), never to the opaque 500.
    from app.records import errors
    from app.records.commit import upload_error

    assert isinstance(
        upload_error(KeyServiceUnavailable("GenerateDataKey")), errors.StorageUnavailable
    )


def test_two_concurrent_requests_with_one_key_store_one_record(
    records: RecordsHarness, invariant: dict[str, Any]
) -> None:
    """Both requests pass the idempotency check and upload; at the commit only one can
    claim the key. The other is answered as its replay and its shards are deleted."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from app.records.uploads import Upload

    barrier = threading.Barrier(2, timeout=30)
    trail = FailingCalls(
        records.services.audit, "transact_append", RuntimeError, on={1, 2}, before=barrier.wait
    )
    service = records.service_with(audit=trail)
    lead = records.hub.principal("dr-lead")
    key = uuid.uuid4().hex

    def attempt() -> tuple[str, bool]:
        upload = Upload("application/dicom", len(BODY), [BODY], idempotency_key=key)
        state, _, replayed = service.create(lead, PATIENT, upload)
        return state.meta.record_id, replayed

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(lambda _: attempt(), range(2)))
    assert {rid for rid, _ in outcomes} == {outcomes[0][0]}
    assert sorted(replayed for _, replayed in outcomes) == [False, True]
    rid = outcomes[0][0]
    assert records.record_ids() == invariant["records"] | {rid}
    new_objects = records.live_keys() - invariant["objects"]
    assert new_objects == set(records.committed_shards()[f"{rid}/1"])  # the loser's are gone
