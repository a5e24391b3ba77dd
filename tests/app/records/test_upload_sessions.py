"""Upload sessions: records sealed on the doctor's device, shards put straight to S3.

The service issues a data key (HPKE-wrapped for the client) and presigned PUTs, and at the
commit checks the manifest and every shard before one transaction makes the record
visible. Refusals are audited. Where moto cannot enforce what S3 does (signed headers,
expiry, checksum values: infra/emulator/gaps.py ``presigned_shard_urls``), the URL's
signed parts are checked here instead, and the commit's own checks are shown catching
what a missing header leaves behind.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, parse_qsl, quote, unquote, urlsplit

import pytest
from hub_testkit import PATIENT
from records_testkit import SHARD, RecordsHarness
from sealed_testkit import DICOM, SealedProtocol, b64

from app.crypto.handover import RecipientKey
from app.records.sessions import MAX_SHARDS_PER_REQUEST
from hubclient.transfer import crc64nvme

SIZE = 3 * SHARD + 77  # four shards


# LocalStack, like S3, checks a presigned PUT's signed headers and its supplied CRC64NVME
# checksum, and refuses (400) the altered puts these tests make to reach the service's own
# commit checks behind S3's; moto checks neither (a recorded gap), so they run on moto.
LOCALSTACK_REFUSES_THE_PUT = (
    "LocalStack refuses the altered presigned PUT itself (signed headers, CRC64NVME), "
    "as S3 does; the commit checks behind it are exercised on the moto tier"
)


@pytest.fixture
def s3_checks_no_checksums(aws_backend: Any) -> None:
    if aws_backend.name == "localstack":
        pytest.skip(LOCALSTACK_REFUSES_THE_PUT)


@pytest.fixture(scope="module")
def protocol(records: RecordsHarness) -> SealedProtocol:
    return SealedProtocol(records)


def refusals(records: RecordsHarness, start: int) -> list[tuple[str, str]]:
    """(reason, resource id) of every deny appended since ``start``."""
    return [
        (e["reason"], e["resource"]["id"])
        for e in records.hub.audit_entries(start)
        if e["outcome"] == "denied"
    ]


def error(response: Any) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def visible(records: RecordsHarness, record_id: str) -> bool:
    """Whether a record exists (its META item), read directly rather than by a scan."""
    return "Item" in records.dynamodb.get_item(
        TableName=records.settings.table_records,
        Key={"pk": {"S": f"RECORD#{record_id}"}, "sk": {"S": "META"}},
        ConsistentRead=True,
    )


def patient_record_count(records: RecordsHarness) -> int:
    """Records of PATIENT (its index partition): what a refused start must not change."""
    from app.audit.events import patient_reference

    ref = patient_reference(PATIENT, records.records._key)
    return records.dynamodb.query(
        TableName=records.settings.table_records,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"PATIENT#{ref}"}},
        Select="COUNT",
        ConsistentRead=True,
    )["Count"]


# -- start --------------------------------------------------------------------------------


def test_anonymous_and_wrong_principal_cannot_start_or_continue(
    records: RecordsHarness, protocol: SealedProtocol
) -> None:
    r = records.client.post(f"/patients/{PATIENT}/uploads", json={})
    assert r.status_code == 401
    assert error(protocol.start_response("auditor-1", 10)) == (403, "access_denied")
    started = protocol.start(data=os.urandom(SIZE))
    protocol.seal(started)
    start = records.hub.ledger_size()
    other = protocol.urls_response(started, protocol.declarations(started, [0]), "dr-member")
    assert error(other) == (403, "access_denied")
    assert "uploader-continues-own-upload" not in other.text
    assert refusals(records, start) == [("no-permitting-policy", f"{started.body['record_id']}")]


def test_start_hands_over_a_wrapped_data_key_and_keeps_only_the_kms_form(
    records: RecordsHarness, protocol: SealedProtocol
) -> None:
    started = protocol.start(data=os.urandom(SIZE))
    body = started.body
    assert body["shard_count"] == 4 and body["shard_size"] == SHARD
    assert body["key"]["key_suite"] == "DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-256-GCM"
    assert body["presign_seconds"] == 300
    assert body["key"]["encryption_context"]["record_id"] == body["record_id"]
    item = records.dynamodb.get_item(
        TableName=records.settings.table_records,
        Key={"pk": {"S": f"UPLOAD#{body['upload_id']}"}, "sk": {"S": "UPLOAD"}},
        ConsistentRead=True,
    )["Item"]
    assert item["status"]["S"] == "pending" and item["kind"]["S"] == "client"
    stored = repr(item).encode()
    # The table holds KMS's wrapped key, never the data key or its HPKE form.
    assert base64.b64decode(body["key"]["encrypted_data_key"]) == item["edk"]["B"]
    assert started.data_key not in stored and started.data_key.hex().encode() not in stored
    assert body["key"]["wrapped_data_key"].encode() not in stored
    # Only the client's private key unwraps the handed-over key.
    with pytest.raises(Exception, match="verification"):
        RecipientKey().unwrap(base64.b64decode(body["key"]["wrapped_data_key"]), started.context)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"content_type": "application/fhir+json"}, (415, "sealed_by_service_only")),
        ({"content_type": "text/html"}, (415, "unsupported_content_type")),
        ({"public_key": b64(b"\x04" + b"\x00" * 64)}, (422, "invalid_public_key")),
        ({"public_key": "not base64!"}, (422, "invalid_request")),
        ({"length": 4 * 1024 * 1024 + 1}, (413, "record_too_large")),
    ],
)
def test_bad_session_requests_are_refused_and_store_nothing(
    records: RecordsHarness, overrides: dict[str, Any], expected: tuple[int, str]
) -> None:
    body = {
        "content_type": DICOM,
        "length": 100,
        "public_key": b64(RecipientKey().public_bytes),
        **overrides,
    }
    before = patient_record_count(records)
    r = records.client.post(
        f"/patients/{PATIENT}/uploads", json=body, headers=records.headers("dr-lead")
    )
    assert error(r) == expected
    assert patient_record_count(records) == before


def test_a_session_for_a_patient_the_index_does_not_know_is_refused_and_audited(
    records: RecordsHarness,
) -> None:
    """As the service's own upload path: no data key, no session for an unknown patient."""
    unknown = "pt-not-in-the-index-0002"
    start = records.hub.ledger_size()
    r = records.client.post(
        f"/patients/{unknown}/uploads",
        json={"content_type": DICOM, "length": 100, "public_key": b64(RecipientKey().public_bytes)},
        headers=records.headers("dr-lead"),
    )
    assert error(r) == (422, "unknown_patient") and unknown not in r.text
    assert [why for why, _ in refusals(records, start)] == ["patient-not-indexed"]


# -- shard URLs ---------------------------------------------------------------------------


def test_presigned_puts_sign_size_checksum_sse_kms_and_create_only(
    records: RecordsHarness, protocol: SealedProtocol
) -> None:
    """What S3 enforces through the signature (moto does not check it: the gap); the URL
    must sign each of these, and live the stated bound."""
    started = protocol.start(data=os.urandom(SIZE))
    protocol.issue(started, [0, 3])
    for index in (0, 3):
        url = started.urls[index]
        query = parse_qs(urlsplit(url["url"]).query)
        signed = set(query["X-Amz-SignedHeaders"][0].split(";"))
        assert signed == {
            "host",
            "content-length",
            "if-none-match",
            "x-amz-server-side-encryption",
            "x-amz-server-side-encryption-aws-kms-key-id",
            "x-amz-sdk-checksum-algorithm",
            "x-amz-checksum-crc64nvme",
        }
        assert query["X-Amz-Expires"] == ["300"]
        headers = url["headers"]
        assert headers["x-amz-server-side-encryption"] == "aws:kms"
        assert headers["x-amz-server-side-encryption-aws-kms-key-id"] == records.key_arn
        assert headers["x-amz-sdk-checksum-algorithm"] == "CRC64NVME"
        assert headers["Content-Length"] == str(len(started.sealed[index].ciphertext))
        assert headers["If-None-Match"] == "*"
        # A random key under this upload's prefix: nothing about the record or position.
        path = urlsplit(url["url"]).path
        prefix = f"/{records.bucket}/shards/{started.upload_id}/"
        assert path.startswith(prefix) and len(path.removeprefix(prefix)) == 32
    assert started.urls[0]["url"] != started.urls[3]["url"]
    # The same shard asked for again (a resume) gets a new key: no URL overwrites.
    again = protocol.urls_response(started, protocol.declarations(started, [0]))
    assert urlsplit(again.json()["urls"][0]["url"]).path != urlsplit(started.urls[0]["url"]).path


def s3_would_accept(
    url: str, method: str, headers: dict[str, str], body: bytes, *, now: datetime
) -> bool:
    """What S3 checks of a presigned request and moto does not (the gap), written from the
    SigV4 specification: the signature over the canonical request (method, path, query,
    every signed header's value), the expiry, no unsigned ``x-amz-*`` header, and for a PUT
    the body's length and CRC64NVME against the signed values."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    signature = query.pop("X-Amz-Signature")
    sent = {k.lower(): v.strip() for k, v in headers.items()}
    sent["host"] = parts.netloc
    signed = query["X-Amz-SignedHeaders"].split(";")
    if any(h.startswith("x-amz-") and h not in signed for h in sent):
        return False  # "There were headers present in the request which were not signed"
    if any(h not in sent for h in signed):
        return False
    canonical = "\n".join(
        [
            method,
            quote(unquote(parts.path), safe="/~"),
            "&".join(
                f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(query.items())
            ),
            "".join(f"{h}:{sent[h]}\n" for h in signed),
            ";".join(signed),
            "UNSIGNED-PAYLOAD",
        ]
    )
    date = query["X-Amz-Date"]
    scope = query["X-Amz-Credential"].split("/", 1)[1]
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = ("AWS4" + os.environ["AWS_SECRET_ACCESS_KEY"]).encode()
    for part in scope.split("/"):
        key = hmac.digest(key, part.encode(), "sha256")
    if not hmac.compare_digest(hmac.new(key, to_sign.encode(), "sha256").hexdigest(), signature):
        return False
    issued = datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    if now > issued + timedelta(seconds=int(query["X-Amz-Expires"])):
        return False
    if method == "PUT":
        return int(sent["content-length"]) == len(body) and sent[
            "x-amz-checksum-crc64nvme"
        ] == crc64nvme(body)
    return True


def test_presigned_urls_verify_as_s3_would_and_fail_without_any_signed_part(
    records: RecordsHarness, protocol: SealedProtocol
) -> None:
    """Covers the emulator gap: each signed part of a shard URL is what makes S3 refuse a
    request that drops or changes it, and the URL stops working after its bound."""
    started = protocol.start(data=os.urandom(SIZE))
    protocol.issue(started, [1])
    url, headers = started.urls[1]["url"], started.urls[1]["headers"]
    body = started.sealed[1].ciphertext
    now = datetime.now(UTC)
    assert s3_would_accept(url, "PUT", headers, body, now=now)
    for name in headers:
        assert not s3_would_accept(
            url, "PUT", {k: v for k, v in headers.items() if k != name}, body, now=now
        ), name
    assert not s3_would_accept(url, "PUT", {**headers, "x-amz-acl": "public-read"}, body, now=now)
    assert not s3_would_accept(url, "PUT", headers, body[:-1] + b"x", now=now)
    assert not s3_would_accept(url, "PUT", headers, body + b"x", now=now)
    other_key = {**headers, "x-amz-server-side-encryption-aws-kms-key-id": "arn:aws:kms:x"}
    assert not s3_would_accept(url, "PUT", other_key, body, now=now)
    later = now + timedelta(seconds=records.settings.presign_seconds + 60)
    assert not s3_would_accept(url, "PUT", headers, body, now=later)
    assert not s3_would_accept(url.replace("/shards/", "/shards/x"), "PUT", headers, body, now=now)
    # Download URLs: one key at one S3 version, the same bound.
    done = protocol.upload(data=os.urandom(SIZE))
    ticket = records.client.post(
        f"/records/{done.body['record_id']}/downloads",
        json={"public_key": b64(RecipientKey().public_bytes)},
        headers=records.headers("dr-lead"),
    ).json()
    get = ticket["shard_urls"][0]
    assert "versionId=" in get and s3_would_accept(get, "GET", {}, b"", now=now)
    assert not s3_would_accept(get, "GET", {}, b"", now=later)
    assert not s3_would_accept(get.replace("versionId=", "versionId=x"), "GET", {}, b"", now=now)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: {**d, "size": d["size"] + 1}, "sealed"),
        (lambda d: {**d, "index": 9}, "outside"),
        (lambda d: {**d, "checksum_crc64nvme": "AAAAAAAAAA=="}, "base64 of 8 bytes"),
    ],
)
def test_shard_declarations_must_fit_the_layout(
    records: RecordsHarness, protocol: SealedProtocol, change: Any, reason: str
) -> None:
    started = protocol.start(data=os.urandom(SIZE))
    protocol.seal(started, [0])
    start = records.hub.ledger_size()
    r = protocol.urls_response(started, [change(protocol.declarations(started, [0])[0])])
    assert error(r) == (422, "invalid_shard") and reason in r.json()["error"]["message"]
    assert [why for why, _ in refusals(records, start)] == ["invalid-shard"]


def test_at_most_one_batch_of_urls_per_request(
    records: RecordsHarness, protocol: SealedProtocol
) -> None:
    started = protocol.start(data=b"x" * (SHARD * MAX_SHARDS_PER_REQUEST))
    shards = [
        {"index": i, "size": SHARD + 16, "checksum_crc64nvme": "AAAAAAAAAAA="}
        for i in range(MAX_SHARDS_PER_REQUEST + 1)
    ]
    assert error(protocol.urls_response(started, shards)) == (422, "invalid_request")
    assert protocol.urls_response(started, shards[:-1]).status_code == 200


def test_an_expired_session_issues_nothing_and_does_not_commit(
    records: RecordsHarness, protocol: SealedProtocol
) -> None:
    started = protocol.start(data=os.urandom(SIZE))
    protocol.issue(started)
    protocol.put_all(started)
    start = records.hub.ledger_size()
    records.hub.clock.offset = timedelta(seconds=records.settings.upload_session_seconds + 1)
    try:
        assert error(protocol.urls_response(started, protocol.declarations(started, [0]))) == (
            410,
            "upload_expired",
        )
        assert error(protocol.commit_response(started)) == (410, "upload_expired")
    finally:
        records.hub.clock.offset = timedelta(0)
    assert [why for why, _ in refusals(records, start)] == ["upload-expired"] * 2
    assert not visible(records, started.body["record_id"])


# -- commit ---------------------------------------------------------------------------------


def test_a_committed_upload_opens_through_the_service_and_replays(
    records: RecordsHarness, protocol: SealedProtocol
) -> None:
    data = os.urandom(SIZE)
    started = protocol.upload(data=data)
    rid = started.body["record_id"]
    r = records.client.get(f"/records/{rid}/content", headers=records.headers("dr-lead"))
    assert r.status_code == 200 and r.content == data
    assert r.headers["Repr-Digest"] == f"sha-256=:{b64(hashlib.sha256(data).digest())}:"
    meta = records.client.get(f"/records/{rid}", headers=records.headers("dr-lead")).json()
    assert meta["versions"][0]["length"] == len(data) and meta["category"] == "imaging"
    # Committing again answers the same record (a client that lost the answer).
    again = protocol.commit_response(started)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["record_id"] == rid
    # Each shard is pinned at the S3 version the commit read.
    item = records.dynamodb.get_item(
        TableName=records.settings.table_records,
        Key={"pk": {"S": f"RECORD#{rid}"}, "sk": {"S": "VERSION#0000000001"}},
        ConsistentRead=True,
    )["Item"]
    assert all(v["S"] for v in item["shard_versions"]["L"])
    assert len(item["content_digest"]["B"]) == 60


def test_commit_refuses_missing_shards_and_names_them(
    records: RecordsHarness, protocol: SealedProtocol
) -> None:
    started = protocol.start(data=os.urandom(SIZE))
    protocol.issue(started, [0, 1, 2])  # shard 3: no URL was ever issued
    for i in (0, 2):  # shard 1: issued, never put
        assert protocol.put(started, i).status_code == 200
    protocol.seal(started, [3])
    start = records.hub.ledger_size()
    r = protocol.commit_response(started)
    assert error(r) == (409, "shards_not_stored")
    assert "Missing: 1, 3." in r.json()["error"]["message"]
    assert [why for why, _ in refusals(records, start)] == ["shard-missing"]
    assert not visible(records, started.body["record_id"])
    # Put what is missing, and the same session commits.
    protocol.issue(started, [1, 3])
    for i in (1, 3):
        assert protocol.put(started, i).status_code == 200
    assert protocol.commit_response(started).status_code == 201


@pytest.mark.usefixtures("s3_checks_no_checksums")
def test_commit_refuses_a_resized_shard(records: RecordsHarness, protocol: SealedProtocol) -> None:
    """S3 refuses a body of another size (Content-Length is signed); moto does not, so the
    commit's HeadObject size check is what refuses it here."""
    started = protocol.start(data=os.urandom(SIZE))
    protocol.issue(started)
    protocol.put_all(started)
    shorter = protocol.put(started, 2)  # the URL is create-only: a replay is refused
    assert shorter.status_code == 412
    other = protocol.start(data=os.urandom(SIZE))
    protocol.issue(other)
    for i in (0, 1, 3):
        assert protocol.put(other, i).status_code == 200
    assert protocol.put(other, 2, other.sealed[2].ciphertext[:-1]).status_code == 200
    start = records.hub.ledger_size()
    assert error(protocol.commit_response(other)) == (409, "shards_not_stored")
    assert [why for why, _ in refusals(records, start)] == ["shard-mismatch"]


@pytest.mark.usefixtures("s3_checks_no_checksums")
@pytest.mark.parametrize(
    "dropped",
    [
        ("x-amz-server-side-encryption", "x-amz-server-side-encryption-aws-kms-key-id"),
        ("x-amz-sdk-checksum-algorithm", "x-amz-checksum-crc64nvme"),
    ],
)
def test_a_shard_put_without_sse_kms_or_its_checksum_never_commits(
    records: RecordsHarness, protocol: SealedProtocol, dropped: tuple[str, str]
) -> None:
    """S3 refuses such a PUT outright (the headers are signed); moto stores it, so the
    commit's HeadObject check (SSE-KMS under the records key, the issued CRC64NVME) is
    shown refusing what the missing headers leave behind."""
    started = protocol.start(data=os.urandom(SIZE))
    protocol.issue(started)
    for i in (0, 2, 3):
        assert protocol.put(started, i).status_code == 200
    assert protocol.put(started, 1, **dict.fromkeys(dropped, True)).status_code == 200
    start = records.hub.ledger_size()
    r = protocol.commit_response(started)
    assert error(r) == (409, "shards_not_stored")
    assert "Different: 1." in r.json()["error"]["message"]
    assert [why for why, _ in refusals(records, start)] == ["shard-mismatch"]


@pytest.mark.usefixtures("s3_checks_no_checksums")
def test_a_url_issued_for_another_upload_cannot_fill_this_one(
    records: RecordsHarness, protocol: SealedProtocol
) -> None:
    mine = protocol.start(data=os.urandom(SIZE))
    other = protocol.start(data=os.urandom(SIZE))
    protocol.issue(mine)
    protocol.issue(other, [0])
    for i in (1, 2, 3):
        assert protocol.put(mine, i).status_code == 200
    # Shard 0 of this upload put through the other upload's URL: it lands under the other
    # upload's prefix, at a key this session never issued.
    url = other.urls[0]
    stray = mine.sealed[0].ciphertext
    headers = {**url["headers"], "Content-Length": str(len(stray))}
    assert protocol.s3.put(url["url"], content=stray, headers=headers).status_code == 200
    start = records.hub.ledger_size()
    assert error(protocol.commit_response(mine)) == (409, "shards_not_stored")
    assert [why for why, _ in refusals(records, start)] == ["shard-missing"]
    # And a session cannot be continued by asking with the other session's id.
    assert (
        error(protocol.urls_response(other, protocol.declarations(mine, [1]), "dr-member"))[0]
        == 403
    )


@pytest.mark.usefixtures("s3_checks_no_checksums")
def test_a_put_replayed_after_commit_changes_nothing_that_opens(
    records: RecordsHarness, protocol: SealedProtocol
) -> None:
    data = os.urandom(SIZE)
    started = protocol.upload(data=data)
    # The URL is create-only (If-None-Match: *, signed): a replay is refused...
    assert protocol.put(started, 0).status_code == 412
    # ...and even a put that skips the condition (moto does not check the signature) only
    # adds an S3 version the committed version does not point at.
    forged = bytes(len(started.sealed[0].ciphertext))
    assert protocol.put(started, 0, forged, **{"if-none-match": True}).status_code == 200
    rid = started.body["record_id"]
    r = records.client.get(f"/records/{rid}/content", headers=records.headers("dr-lead"))
    assert r.status_code == 200 and r.content == data


@pytest.mark.parametrize("edit", ["tag", "edk", "length", "context", "digest"])
def test_commit_refuses_a_manifest_that_is_not_this_sessions(
    records: RecordsHarness, protocol: SealedProtocol, edit: str
) -> None:
    started = protocol.start(data=os.urandom(SIZE))
    protocol.issue(started)
    protocol.put_all(started)
    manifest = started.manifest().to_bytes()
    digest = "auto"
    if edit == "tag":
        # Re-MACing a manifest needs the data key; a changed entry breaks the MAC.
        manifest = _flip_base64_field(manifest, b'"tag":"')
    elif edit == "edk":
        manifest = _flip_base64_field(manifest, b'"encrypted_data_key":"')
    elif edit == "length":
        manifest = manifest.replace(b'"total_length":', b'"total_length":1', 1)
    elif edit == "context":
        other = protocol.start(data=started.data)
        protocol.seal(other)
        manifest = other.manifest().to_bytes()
    else:  # a digest box sealed next to another upload's manifest
        other = protocol.start(data=started.data)
        protocol.seal(other)
        digest = other.digest_box()
    start = records.hub.ledger_size()
    r = protocol.commit_response(started, manifest=manifest, digest=digest)
    assert error(r) == (422, "invalid_manifest")
    assert [why for why, _ in refusals(records, start)] == ["invalid-manifest"]
    assert not visible(records, started.body["record_id"])


def _flip_base64_field(manifest: bytes, marker: bytes) -> bytes:
    at = manifest.index(marker) + len(marker)
    char = manifest[at : at + 1]
    return manifest[:at] + (b"B" if char == b"A" else b"A") + manifest[at + 1 :]


def test_a_new_version_is_sealed_on_the_client_by_the_author_only(
    records: RecordsHarness, protocol: SealedProtocol
) -> None:
    first = protocol.upload(data=os.urandom(SIZE))
    rid = first.body["record_id"]
    assert error(protocol.start_response("dr-member", 10, record_id=rid)) == (
        403,
        "access_denied",
    )
    data = os.urandom(SHARD + 5)
    second = protocol.upload(data=data, record_id=rid)
    assert second.body["version"] == 2
    r = records.client.get(f"/records/{rid}/content?version=2", headers=records.headers("dr-lead"))
    assert r.content == data


def test_the_key_is_handed_over_again_only_to_the_uploader_for_a_live_session(
    records: RecordsHarness, protocol: SealedProtocol
) -> None:
    started = protocol.start(data=os.urandom(SIZE))
    recipient = RecipientKey()
    path = f"/uploads/{started.upload_id}/key"
    body = {"public_key": b64(recipient.public_bytes)}
    r = records.client.post(path, json=body, headers=records.headers("dr-lead"))
    assert r.status_code == 200
    wrapped = base64.b64decode(r.json()["key"]["wrapped_data_key"])
    assert recipient.unwrap(wrapped, started.context) == started.data_key
    assert (
        records.client.post(path, json=body, headers=records.headers("dr-member")).status_code
        == 403
    )
    protocol.issue(started)
    protocol.put_all(started)
    assert protocol.commit_response(started).status_code == 201
    assert error(records.client.post(path, json=body, headers=records.headers("dr-lead"))) == (
        409,
        "upload_not_pending",
    )


def test_a_session_never_committed_is_swept_and_can_no_longer_commit(
    records: RecordsHarness, protocol: SealedProtocol
) -> None:
    from app.records.sweeper import sweep

    started = protocol.start(data=os.urandom(SIZE))
    protocol.issue(started)
    protocol.put_all(started)
    later = records.hub.clock() + timedelta(seconds=records.settings.orphan_grace_seconds + 60)
    sweep(
        records.records._repo,
        records.records._shards,
        grace_seconds=records.settings.orphan_grace_seconds,
        now=lambda: later,
    )
    left = records.s3.list_objects_v2(Bucket=records.bucket, Prefix=f"shards/{started.upload_id}/")
    assert left.get("KeyCount", 0) == 0
    assert error(protocol.commit_response(started)) == (409, "upload_not_pending")


def test_unknown_sessions_are_audited_404s(records: RecordsHarness) -> None:
    start = records.hub.ledger_size()
    r = records.client.get(f"/uploads/{'ab' * 16}", headers=records.headers("dr-lead"))
    assert error(r) == (404, "not_found")
    assert refusals(records, start) == [("upload-not-found", f"upload-{'ab' * 16}")]


def test_shards_reported_stored_are_checked_then_and_a_bad_one_is_refused_early(
    records: RecordsHarness, protocol: SealedProtocol
) -> None:
    started = protocol.start(data=os.urandom(SIZE))
    protocol.issue(started, [0, 1])
    assert protocol.put(started, 0).status_code == 200
    assert protocol.put(started, 1, **{"x-amz-server-side-encryption": True}).status_code == 200
    protocol.seal(started, [2, 3])
    ask = {"shards": protocol.declarations(started, [2]), "stored": [0]}
    path = f"/uploads/{started.upload_id}/shards"
    headers = records.headers("dr-lead")
    assert records.client.post(path, json=ask, headers=headers).status_code == 200
    start = records.hub.ledger_size()
    bad = {"shards": protocol.declarations(started, [3]), "stored": [1]}
    r = records.client.post(path, json=bad, headers=headers)
    assert (
        error(r) == (409, "shards_not_stored") and "Different: 1." in r.json()["error"]["message"]
    )
    assert [why for why, _ in refusals(records, start)] == ["shard-mismatch"]
    never_issued = {"shards": protocol.declarations(started, [3]), "stored": [2, 3]}
    assert error(records.client.post(path, json=never_issued, headers=headers)) == (
        422,
        "invalid_shard",
    )


@pytest.mark.usefixtures("s3_checks_no_checksums")
def test_a_commit_keeps_the_version_checked_when_a_shard_was_reported(
    records: RecordsHarness, protocol: SealedProtocol
) -> None:
    data = os.urandom(SIZE)
    started = protocol.start(data=data)
    protocol.issue(started, [0, 1, 2])
    for i in (0, 1, 2):
        assert protocol.put(started, i).status_code == 200
    protocol.seal(started, [3])
    ask = {"shards": protocol.declarations(started, [3]), "stored": [0, 1, 2]}
    r = records.client.post(
        f"/uploads/{started.upload_id}/shards", json=ask, headers=records.headers("dr-lead")
    )
    started.urls[3] = r.json()["urls"][0]
    assert protocol.put(started, 3).status_code == 200
    # A later write to a checked key (S3 refuses it: If-None-Match; moto does not) leaves a
    # newer version the commit does not take.
    stray = bytes(len(started.sealed[0].ciphertext))
    assert protocol.put(started, 0, stray, **{"if-none-match": True}).status_code == 200
    assert protocol.commit_response(started).status_code == 201
    got = records.client.get(
        f"/records/{started.body['record_id']}/content", headers=records.headers("dr-lead")
    )
    assert got.status_code == 200 and got.content == data


def test_commit_refuses_a_manifest_for_another_length_even_under_the_sessions_key(
    records: RecordsHarness, protocol: SealedProtocol
) -> None:
    """A client holds the data key, so it can MAC any manifest: the session's own layout
    (length, shard size) is what the commit holds it to."""
    from app.crypto.envelope import RecordSealer

    started = protocol.start(data=os.urandom(SIZE))
    protocol.issue(started)
    protocol.put_all(started)
    shorter = RecordSealer(
        started.context,
        started.data_key,
        base64.b64decode(started.body["key"]["encrypted_data_key"]),
        length=SIZE - 1,
        shard_size=SHARD,
    )
    data = started.data[:-1]
    seals = [shorter.seal_shard(i, data[i * SHARD : (i + 1) * SHARD]).seal for i in range(4)]
    manifest = shorter.manifest(seals).to_bytes()
    start = records.hub.ledger_size()
    assert error(protocol.commit_response(started, manifest=manifest, digest=None)) == (
        422,
        "invalid_manifest",
    )
    assert [why for why, _ in refusals(records, start)] == ["invalid-manifest"]


def test_the_service_path_carries_only_what_an_api_request_may(
    records: RecordsHarness, protocol: SealedProtocol, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above the inline cap (4 MiB deployed: Lambda's 6 MB event, base64) a record is
    neither sent to nor answered by the service: 413 both ways, the read refusal audited."""
    data = os.urandom(2 * SHARD)
    rid = protocol.upload(data=data).body["record_id"]
    monkeypatch.setattr(records.records, "max_inline_record_bytes", SHARD)
    start = records.hub.ledger_size()
    r = records.client.get(f"/records/{rid}/content", headers=records.headers("dr-lead"))
    assert error(r) == (413, "record_too_large_for_inline")
    assert [why for why, _ in refusals(records, start)] == ["record-too-large-for-inline"]
    sent = records.client.post(
        f"/patients/{PATIENT}/records",
        content=data,
        headers=records.headers("dr-lead", **{"Content-Type": DICOM}),
    )
    assert error(sent) == (413, "record_too_large")
    ticket = records.client.post(
        f"/records/{rid}/downloads",
        json={"public_key": b64(RecipientKey().public_bytes)},
        headers=records.headers("dr-lead"),
    )
    assert ticket.status_code == 200 and ticket.json()["total_length"] == len(data)
