"""The record routes end to end: upload, metadata, streamed download, versions, bad input.

Each upload goes through the real path: Cedar, KMS GenerateDataKey on the moto server,
64 KiB shards put to a versioned S3 bucket, the manifest committed last in DynamoDB.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from hub_testkit import PATIENT
from records_testkit import SHARD, RecordsHarness

from app.content import MAX_FHIR_BYTES
from app.main import PUBLIC_PATHS

PATIENT_URL = f"/patients/{PATIENT}/records"

FHIR_OBSERVATION = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
    "subject": {"reference": "Patient/synthetic-42"},
    "valueQuantity": {"value": 13.2, "unit": "g/dL"},
}


def upload(
    records: RecordsHarness,
    body: bytes,
    *,
    who: str = "dr-lead",
    content_type: str = "application/dicom",
    url: str = PATIENT_URL,
    **headers: str,
) -> object:
    return records.client.post(
        url,
        content=body,
        headers=records.headers(who, **{"Content-Type": content_type, **headers}),
    )


def test_every_record_route_requires_a_bearer_token(records: RecordsHarness) -> None:
    """Walk the route table: each record route depends on CurrentPrincipal and a request
    without a token is a 401 before any handler code runs."""
    from app.access.auth import current_principal

    def walk(routes: list[Any]) -> Iterator[Any]:
        for route in routes:
            inner = getattr(route, "original_router", None)
            if inner is not None:  # FastAPI keeps an included router as one entry
                yield from walk(inner.routes)
            else:
                yield route

    found = set()
    for route in walk(records.client.app.routes):  # type: ignore[attr-defined]
        path = getattr(route, "path", "")
        if path in PUBLIC_PATHS or "records" not in getattr(route, "tags", ()):
            continue
        calls = {d.call for d in route.dependant.dependencies}
        assert current_principal in calls, path
        concrete = path.replace("{patient_id}", PATIENT).replace("{record_id}", "0" * 32)
        concrete = concrete.replace("{upload_id}", "0" * 32).replace("{group_id}", "0" * 32)
        concrete = concrete.replace("{version}", "1")
        for method in route.methods:
            found.add((method, path))
            r = records.client.request(method, concrete)
            assert r.status_code == 401, (method, path)
    assert {path for _, path in found} == {
        "/patients/{patient_id}/records",
        "/records/{record_id}",
        "/records/{record_id}/content",
        "/records/{record_id}/share",
        "/records/{record_id}/versions",
        "/records/{record_id}/versions/{version}",
        "/patients/{patient_id}/uploads",
        "/records/{record_id}/uploads",
        "/uploads/{upload_id}",
        "/uploads/{upload_id}/shards",
        "/uploads/{upload_id}/key",
        "/uploads/{upload_id}/commit",
        "/records/{record_id}/downloads",
        "/groups/{group_id}/records",
    }
    assert len(found) == 15  # /patients/{patient_id}/records: POST and GET


def test_upload_then_download_streams_the_same_bytes(records: RecordsHarness) -> None:
    body = os.urandom(5 * SHARD + 123)  # six shards
    r = upload(records, body, **{"X-Record-Category": "imaging", "X-Record-Title": "CT head"})
    assert r.status_code == 201, r.text
    out = r.json()
    rid = out["record_id"]
    assert out["patient_id"] == PATIENT and out["latest_version"] == 1
    assert out["versions"][0]["length"] == len(body)
    assert out["category"] == "imaging" and out["audit_receipt"]["event_id"]

    content = records.client.get(f"/records/{rid}/content", headers=records.headers("dr-lead"))
    assert content.status_code == 200
    assert content.content == body
    assert content.headers["content-type"] == "application/dicom"
    assert content.headers["content-length"] == str(len(body))
    assert content.headers["cache-control"] == "no-store"

    meta = records.client.get(f"/records/{rid}", headers=records.headers("dr-lead"))
    assert meta.status_code == 200 and meta.json()["title"] == "CT head"
    assert "content" not in meta.json()


def test_shard_keys_reveal_nothing_and_hold_only_ciphertext(records: RecordsHarness) -> None:
    marker = b"SYNTHETIC-PLAINTEXT-MARKER-" * 200
    r = upload(records, marker, content_type="text/plain")
    assert r.status_code == 201
    rid = r.json()["record_id"]
    state = records.records._repo.load(rid)
    assert state is not None
    version = state.versions[0]
    assert len(version.shards) == -(-len(marker) // SHARD)
    for shard in version.shards:
        assert rid not in shard.key and PATIENT not in shard.key
        obj = records.s3.get_object(Bucket=records.bucket, Key=shard.key)
        assert obj["ServerSideEncryption"] == "aws:kms"
        assert b"SYNTHETIC-PLAINTEXT" not in obj["Body"].read()


def test_fhir_json_is_validated_and_stored(records: RecordsHarness) -> None:
    body = json.dumps(FHIR_OBSERVATION).encode()
    r = upload(records, body, content_type="application/fhir+json")
    assert r.status_code == 201, r.text
    rid = r.json()["record_id"]
    got = records.client.get(f"/records/{rid}/content", headers=records.headers("dr-lead"))
    assert json.loads(got.content) == FHIR_OBSERVATION


def test_an_empty_record_round_trips(records: RecordsHarness) -> None:
    r = upload(records, b"", content_type="application/pdf")
    assert r.status_code == 201, r.text
    got = records.client.get(
        f"/records/{r.json()['record_id']}/content", headers=records.headers("dr-lead")
    )
    assert got.status_code == 200 and got.content == b""


def test_versions_have_their_own_keys_and_open_separately(records: RecordsHarness) -> None:
    v1, v2 = os.urandom(2 * SHARD), os.urandom(3 * SHARD + 7)
    rid = upload(records, v1).json()["record_id"]
    r = records.client.post(
        f"/records/{rid}/versions",
        content=v2,
        headers=records.headers("dr-lead", **{"Content-Type": "application/dicom"}),
    )
    assert r.status_code == 201, r.text
    assert r.json()["version"]["version"] == 2
    get = records.client.get
    h = records.headers("dr-lead")
    assert get(f"/records/{rid}/content", headers=h).content == v2
    assert get(f"/records/{rid}/content?version=1", headers=h).content == v1
    assert get(f"/records/{rid}/content?version=3", headers=h).status_code == 404
    state = records.records._repo.load(rid)
    assert state is not None and state.meta.latest_version == 2
    from app.crypto.envelope import Manifest

    keys = [Manifest.from_bytes(v.manifest or b"").encrypted_data_key for v in state.versions]
    assert len(set(keys)) == 2
    assert {s.key.split("/")[1] for s in state.versions[0].shards}.isdisjoint(
        {s.key.split("/")[1] for s in state.versions[1].shards}
    )


def test_only_the_author_adds_versions(records: RecordsHarness) -> None:
    rid = upload(records, b"x" * 100).json()["record_id"]
    r = records.client.post(
        f"/records/{rid}/versions",
        content=b"y" * 100,
        headers=records.headers("dr-outsider", **{"Content-Type": "application/dicom"}),
    )
    assert r.status_code == 403


# -- bad input: a 4xx with a clear message, and nothing stored -----------------------------


@pytest.fixture
def nothing_stored(records: RecordsHarness):  # type: ignore[no-untyped-def]
    before_records, before_objects = records.record_ids(), records.shard_objects()
    yield
    assert records.record_ids() == before_records
    assert records.shard_objects() == before_objects


@pytest.mark.usefixtures("nothing_stored")
@pytest.mark.parametrize(
    ("declared", "sent", "code"),
    [
        # truncated after many shards were already put (more than the seal keeps in flight)
        (20 * SHARD, 14 * SHARD + 5, "length_mismatch"),
        (12 * SHARD, 13 * SHARD, "length_mismatch"),  # more bytes than declared
        (10, 0, "length_mismatch"),
    ],
)
def test_length_mismatch_is_refused_and_stores_nothing(
    records: RecordsHarness, declared: int, sent: int, code: str
) -> None:
    r = upload(records, os.urandom(sent), **{"Content-Length": str(declared)})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == code
    assert "Content-Length" in r.json()["error"]["message"]


@pytest.mark.usefixtures("nothing_stored")
def test_over_limit_body_is_413(records: RecordsHarness) -> None:
    r = upload(records, b"\0" * (records.settings.max_record_bytes + 1))
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "record_too_large"
    assert str(records.settings.max_record_bytes) in r.json()["error"]["message"]


@pytest.mark.usefixtures("nothing_stored")
def test_over_limit_fhir_is_413(records: RecordsHarness) -> None:
    r = upload(
        records,
        b" ",
        content_type="application/fhir+json",
        **{"Content-Length": str(MAX_FHIR_BYTES + 1)},
    )
    assert r.status_code == 413


@pytest.mark.usefixtures("nothing_stored")
@pytest.mark.parametrize("content_type", ["application/zip", "application/json", "text/html"])
def test_unknown_content_type_is_415(records: RecordsHarness, content_type: str) -> None:
    r = upload(records, b"PK\x03\x04 synthetic", content_type=content_type)
    assert r.status_code == 415
    assert r.json()["error"]["code"] == "unsupported_content_type"


@pytest.mark.usefixtures("nothing_stored")
def test_invalid_fhir_is_422_without_echoing_content(records: RecordsHarness) -> None:
    secret = "Synthetic-Secret-Diagnosis-Text"
    bad = {**FHIR_OBSERVATION, "status": 17, "note": [{"text": secret}], "bogus": secret}
    r = upload(records, json.dumps(bad).encode(), content_type="application/fhir+json")
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_content"
    assert secret not in r.text and PATIENT not in r.text


@pytest.mark.usefixtures("nothing_stored")
def test_bad_idempotency_key_and_category_are_422(records: RecordsHarness) -> None:
    assert upload(records, b"x", **{"Idempotency-Key": "no"}).status_code == 422
    assert upload(records, b"x", **{"X-Record-Category": "gossip"}).status_code == 422


@pytest.mark.usefixtures("nothing_stored")
def test_a_body_without_content_length_is_411(records: RecordsHarness) -> None:
    chunked = iter([b"synthetic ", b"chunked body"])  # sent with Transfer-Encoding: chunked
    r = records.client.post(
        PATIENT_URL,
        content=chunked,
        headers=records.headers("dr-lead", **{"Content-Type": "text/plain"}),
    )
    assert r.status_code == 411 and r.json()["error"]["code"] == "length_required"


@pytest.mark.usefixtures("nothing_stored")
def test_an_upload_for_a_patient_the_index_does_not_know_is_422(records: RecordsHarness) -> None:
    unknown = "pt-not-in-the-index-0001"
    r = upload(records, os.urandom(100), url=f"/patients/{unknown}/records")
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "unknown_patient"
    assert unknown not in r.text
