"""The doctor's client (``hubclient``) against the service: upload sealed on the device
(with resume), download opened on the device (download tickets), the FHIR path through
the service, discovery, and every way an edit of the stored record must end: a refusal the
client cannot mistake for a complete record, on the service's path and the client's.

The service runs in-process (the records harness); shards go to and from the moto server
over HTTP through the presigned URLs, as they would to S3.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from hub_testkit import PATIENT, build_group
from records_testkit import SHARD, RecordsHarness
from sealed_testkit import SealedProtocol

from app.groups.membership import MemberRole
from app.records.repository import version_sk
from hubclient.api import HubApi
from hubclient.auth import StaticToken
from hubclient.errors import ApiError, RecordIntegrityError, StorageError
from hubclient.sdk import HubClient

DICOM = "application/dicom"
SIZE = 5 * SHARD + 321  # six shards


@pytest.fixture
def client_for(records: RecordsHarness, tmp_path: Path) -> Callable[..., HubClient]:
    def make(who: str, *, s3: httpx.Client | None = None, api: Any = None) -> HubClient:
        token = StaticToken(records.hub.people[who].token)
        return HubClient(
            HubApi(api or records.client, token),
            s3=s3 or httpx.Client(timeout=30),
            home=tmp_path / who,
            parallelism=3,
        )

    return make


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "scan.dcm"
    path.write_bytes(b"\0" * 128 + b"DICM" + os.urandom(SIZE - 132))
    return path


@pytest.fixture
def shared(
    records: RecordsHarness, client_for: Callable[..., HubClient], source: Path
) -> tuple[str, str]:
    """A record uploaded by the lead through the client and shared into a fresh group
    where dr-member is active. Returns (record id, group id)."""
    gid = build_group(records.hub)
    lead = client_for("dr-lead")
    record = lead.upload(PATIENT, source, DICOM, category="imaging", title="CT")
    lead.share(record["record_id"], gid)
    return record["record_id"], gid


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.endswith(".part")]


# -- the happy paths ------------------------------------------------------------------------


def test_a_member_opens_what_the_lead_sealed_and_the_digest_matches(
    records: RecordsHarness,
    client_for: Callable[..., HubClient],
    shared: tuple[str, str],
    source: Path,
    tmp_path: Path,
) -> None:
    rid, _ = shared
    out = tmp_path / "opened.dcm"
    done: list[int] = []
    result = client_for("dr-member").download(rid, out, progress=done.append)
    assert out.read_bytes() == source.read_bytes()
    assert result.length == SIZE and result.digest_checked and sum(done) == SIZE
    expected = hashlib.sha256(source.read_bytes()).digest()
    assert result.repr_digest == f"sha-256=:{__import__('base64').b64encode(expected).decode()}:"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert leftovers(tmp_path) == []


def test_a_fhir_document_goes_through_the_service_and_others_never_do(
    records: RecordsHarness, client_for: Callable[..., HubClient], tmp_path: Path, source: Path
) -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": []}
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    seen: list[tuple[str, int]] = []
    api = TestClient(records.client.app)
    api.event_hooks["request"] = [
        lambda request: seen.append((request.url.path, len(request.content)))
    ]
    lead = client_for("dr-lead", api=api)
    record = lead.upload(PATIENT, path, "application/fhir+json", category="report")
    assert lead.get_content(record["record_id"]) == path.read_bytes()
    out = tmp_path / "bundle-copy.json"
    lead.download(record["record_id"], out)
    assert out.read_bytes() == path.read_bytes()
    seen.clear()
    lead.upload(PATIENT, source, DICOM)
    # An imaging upload sends the service keys, checksums and the manifest: no request to
    # the API carries anything near a shard, let alone the content.
    assert max(size for _, size in seen) < 16 * 1024
    assert not any(path.endswith("/records") for path, _ in seen)


def test_an_interrupted_upload_resumes_sending_only_what_is_missing(
    records: RecordsHarness, client_for: Callable[..., HubClient], source: Path, tmp_path: Path
) -> None:
    real = httpx.HTTPTransport()
    puts = {"n": 0}

    def flaky(request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            puts["n"] += 1
            if puts["n"] > 2:
                raise httpx.ConnectError("link down", request=request)
        return real.handle_request(request)

    lead = client_for("dr-lead", s3=httpx.Client(transport=httpx.MockTransport(flaky)))
    with pytest.raises(StorageError):
        lead.upload(PATIENT, source, DICOM)
    [upload_id] = lead.pending_uploads()
    journal = json.loads((lead.home / "uploads" / f"{upload_id}.json").read_text())
    assert stat.S_IMODE((lead.home / "uploads" / f"{upload_id}.json").stat().st_mode) == 0o600
    stored = set(journal["stored"])
    assert len(stored) == 2
    # Public material only: the journal never holds the data key (the resume asks again).
    assert set(journal) == {
        "upload_id", "record_id", "version", "encryption_context", "encrypted_data_key",
        "salt", "shard_size", "length", "content_type", "source", "source_size",
        "source_mtime_ns", "stored",
    }  # fmt: skip
    resumed = client_for("dr-lead")
    resumed.home = lead.home
    record = resumed.resume(upload_id)
    assert resumed.last_upload is not None and resumed.last_upload.puts == 6 - len(stored)
    assert resumed.pending_uploads() == []
    out = tmp_path / "resumed.dcm"
    resumed.download(record["record_id"], out)
    assert out.read_bytes() == source.read_bytes()


def test_a_new_version_and_a_shred_through_the_client(
    records: RecordsHarness,
    client_for: Callable[..., HubClient],
    shared: tuple[str, str],
    tmp_path: Path,
) -> None:
    rid, _ = shared
    lead = client_for("dr-lead")
    second = tmp_path / "second.dcm"
    second.write_bytes(os.urandom(SHARD + 9))
    lead.upload(None, second, DICOM, record_id=rid)
    assert [v["version"] for v in lead.versions(rid)] == [1, 2]
    lead.shred(rid, 1, "entered_in_error")
    with pytest.raises(ApiError) as gone:
        lead.download(rid, tmp_path / "v1", version=1)
    assert gone.value.status == 410
    lead.download(rid, tmp_path / "v2", version=2)
    assert (tmp_path / "v2").read_bytes() == second.read_bytes()


def test_discovery_lists_only_what_the_caller_may_see(
    records: RecordsHarness, client_for: Callable[..., HubClient], shared: tuple[str, str]
) -> None:
    rid, gid = shared
    member = client_for("dr-member")
    assert rid in {r["record_id"] for r in member.group_records(gid)}
    assert rid in {r["record_id"] for r in member.patient_records(PATIENT)}
    assert gid in {g["group_id"] for g in member.groups()}
    outsider = client_for("dr-outsider")
    assert rid not in {r["record_id"] for r in outsider.patient_records(PATIENT, limit=5)}
    with pytest.raises(ApiError) as refused:
        list(outsider.group_records(gid))
    assert refused.value.status == 403
    invitee = client_for("dr-invitee")
    assert gid in {g["group_id"] for g in invitee.invitations()}
    assert gid not in {g["group_id"] for g in invitee.groups()}


def test_a_removed_member_is_refused_the_next_key(
    records: RecordsHarness,
    client_for: Callable[..., HubClient],
    shared: tuple[str, str],
    tmp_path: Path,
) -> None:
    rid, gid = shared
    member = client_for("dr-member")
    member.download(rid, tmp_path / "before")
    records.services.groups.remove(
        records.hub.principal("dr-lead"), gid, records.hub.people["dr-member"].reg_no or ""
    )
    start = records.hub.ledger_size()
    with pytest.raises(ApiError) as refused:
        member.download(rid, tmp_path / "after")
    assert refused.value.status == 403 and not (tmp_path / "after").exists()
    denied = [e for e in records.hub.audit_entries(start) if e["outcome"] == "denied"]
    assert [(e["action"], e["resource"]["id"]) for e in denied] == [("read", rid)]


# -- edits of the stored record: refused on both paths ------------------------------------------


def _item(records: RecordsHarness, rid: str, version: int = 1) -> dict[str, Any]:
    return records.dynamodb.get_item(
        TableName=records.settings.table_records,
        Key={"pk": {"S": f"RECORD#{rid}"}, "sk": {"S": version_sk(version)}},
        ConsistentRead=True,
    )["Item"]


def _set(
    records: RecordsHarness, rid: str, expression: str, values: dict[str, Any], **names: str
) -> None:
    records.dynamodb.update_item(
        TableName=records.settings.table_records,
        Key={"pk": {"S": f"RECORD#{rid}"}, "sk": {"S": version_sk(1)}},
        UpdateExpression=expression,
        ExpressionAttributeValues=values,
        **({"ExpressionAttributeNames": names} if names else {}),
    )


def shorten_length(records: RecordsHarness, rid: str, _: Any) -> None:
    """The attack of the issue: the stored length edited (no key needed)."""
    _set(records, rid, "SET #l = :l", {":l": {"N": str(SIZE - SHARD)}}, **{"#l": "length"})


def truncate_shard_list(records: RecordsHarness, rid: str, _: Any) -> None:
    item = _item(records, rid)
    keys, versions = item["shard_keys"]["L"][:-1], item["shard_versions"]["L"][:-1]
    _set(
        records,
        rid,
        "SET shard_keys = :k, shard_versions = :v",
        {":k": {"L": keys}, ":v": {"L": versions}},
    )


def reorder_shards(records: RecordsHarness, rid: str, _: Any) -> None:
    item = _item(records, rid)
    keys, versions = item["shard_keys"]["L"], item["shard_versions"]["L"]
    keys[1], keys[2] = keys[2], keys[1]
    versions[1], versions[2] = versions[2], versions[1]
    _set(
        records,
        rid,
        "SET shard_keys = :k, shard_versions = :v",
        {":k": {"L": keys}, ":v": {"L": versions}},
    )


def swap_manifest(records: RecordsHarness, rid: str, other: str) -> None:
    """Another record's manifest (its shards' tags, its wrapped key) in this version."""
    _set(records, rid, "SET manifest = :m", {":m": _item(records, other)["manifest"]})


def delete_shard_version(records: RecordsHarness, rid: str, _: Any) -> None:
    item = _item(records, rid)
    key = f"shards/{item['upload_id']['S']}/{item['shard_keys']['L'][4]['S']}"
    records.s3.delete_object(
        Bucket=records.bucket, Key=key, VersionId=item["shard_versions"]["L"][4]["S"]
    )


def flip_shard_byte(records: RecordsHarness, rid: str, _: Any) -> None:
    item = _item(records, rid)
    key = f"shards/{item['upload_id']['S']}/{item['shard_keys']['L'][5]['S']}"
    body = bytearray(records.s3.get_object(Bucket=records.bucket, Key=key)["Body"].read())
    body[3] ^= 1
    version = records.s3.put_object(Bucket=records.bucket, Key=key, Body=bytes(body))["VersionId"]
    versions = item["shard_versions"]["L"]
    versions[5] = {"S": version}
    _set(records, rid, "SET shard_versions = :v", {":v": {"L": versions}})


EDITS = {
    "length": shorten_length,
    "shard_list": truncate_shard_list,
    "order": reorder_shards,
    "manifest_swap": swap_manifest,
    "deleted_shard_version": delete_shard_version,
    "tampered_shard": flip_shard_byte,
}


REFUSED_BY_THE_SERVICE = {"length", "shard_list", "manifest_swap"}


@pytest.fixture
def two_records(
    records: RecordsHarness, client_for: Callable[..., HubClient], source: Path, tmp_path: Path
) -> Iterator[tuple[str, str, bytes]]:
    lead = client_for("dr-lead")
    first = lead.upload(PATIENT, source, DICOM)["record_id"]
    other = tmp_path / "other.dcm"
    other.write_bytes(os.urandom(SIZE))
    second = lead.upload(PATIENT, other, DICOM)["record_id"]
    yield first, second, source.read_bytes()


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_an_edited_record_is_refused_on_the_service_path(
    records: RecordsHarness, two_records: tuple[str, str, bytes], edit: str
) -> None:
    rid, other, data = two_records
    EDITS[edit](records, rid, other)
    start = records.hub.ledger_size()
    r = records.client.get(f"/records/{rid}/content", headers=records.headers("dr-lead"))
    assert r.status_code == 500, r.status_code
    assert r.json()["error"]["code"] == "record_integrity_failure"
    assert data[200:264] not in r.content
    denied = [e["reason"] for e in records.hub.audit_entries(start) if e["outcome"] == "denied"]
    assert denied == ["record-integrity-failure"]


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_an_edited_record_is_refused_on_the_client_path_and_nothing_is_kept(
    records: RecordsHarness,
    client_for: Callable[..., HubClient],
    two_records: tuple[str, str, bytes],
    tmp_path: Path,
    edit: str,
) -> None:
    rid, other, _ = two_records
    EDITS[edit](records, rid, other)
    out = tmp_path / "opened.dcm"
    with pytest.raises((RecordIntegrityError, ApiError)) as refused:
        client_for("dr-lead").download(rid, out)
    if edit in REFUSED_BY_THE_SERVICE:  # the manifest or the table disagree: no key handed
        assert isinstance(refused.value, ApiError)
        assert (refused.value.status, refused.value.code) == (500, "record_integrity_failure")
    else:  # only the shards themselves tell: the client's checks refuse
        assert isinstance(refused.value, RecordIntegrityError)
    assert not out.exists() and leftovers(tmp_path) == []


def test_a_digest_that_does_not_match_the_content_is_refused_on_both_paths(
    records: RecordsHarness, client_for: Callable[..., HubClient], tmp_path: Path
) -> None:
    """An uploader's client that sealed another digest: the service cannot tell (it never
    sees plaintext), every reader refuses."""
    protocol = SealedProtocol(records)
    started = protocol.start(data=os.urandom(SIZE))
    protocol.issue(started)
    protocol.put_all(started)
    wrong = started.digest_box(hashlib.sha256(b"not the content").digest())
    assert protocol.commit_response(started, digest=wrong).status_code == 201
    rid = started.body["record_id"]
    r = records.client.get(f"/records/{rid}/content", headers=records.headers("dr-lead"))
    assert r.status_code == 500
    with pytest.raises(RecordIntegrityError):
        client_for("dr-lead").download(rid, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_the_client_checks_repr_digest_and_length_of_what_the_service_sends(
    records: RecordsHarness, client_for: Callable[..., HubClient], source: Path
) -> None:
    lead = client_for("dr-lead")
    rid = lead.upload(PATIENT, source, DICOM)["record_id"]
    assert lead.get_content(rid) == source.read_bytes()
    for header, value in (("repr-digest", "sha-256=:AAAA:"), ("content-length", "12")):
        api = TestClient(records.client.app)

        def rewrite(response: httpx.Response, h: str = header, v: str = value) -> None:
            if response.request.url.path.endswith("/content"):
                response.headers[h] = v

        api.event_hooks["response"] = [rewrite]
        with pytest.raises(RecordIntegrityError):
            client_for("dr-lead", api=api).get_content(rid)


def test_records_sealed_in_format_1_still_open_on_both_paths(
    records: RecordsHarness, client_for: Callable[..., HubClient], tmp_path: Path
) -> None:
    envelope = records.records._envelope
    data = os.urandom(2 * SHARD + 5)
    envelope._format_version = 1  # as records were sealed before format 2
    try:
        r = records.client.post(
            f"/patients/{PATIENT}/records",
            content=data,
            headers=records.headers("dr-lead", **{"Content-Type": DICOM}),
        )
    finally:
        envelope._format_version = 2
    assert r.status_code == 201
    rid = r.json()["record_id"]
    assert b"hub-sealed-record/1" in _item(records, rid)["manifest"]["B"]
    assert client_for("dr-lead").get_content(rid) == data
    client_for("dr-lead").download(rid, tmp_path / "v1")
    assert (tmp_path / "v1").read_bytes() == data


def test_a_ticket_for_another_record_is_refused_by_the_client(
    records: RecordsHarness,
    client_for: Callable[..., HubClient],
    two_records: tuple[str, str, bytes],
    tmp_path: Path,
) -> None:
    """A service (or anything on the way) answering with another record's ticket: the
    client checks the context it asked for before it unwraps anything."""
    rid, other, _ = two_records
    api = TestClient(records.client.app)

    def redirect(request: httpx.Request) -> None:
        if request.url.path == f"/records/{rid}/downloads":
            request.url = request.url.copy_with(path=f"/records/{other}/downloads")

    api.event_hooks["request"] = [redirect]
    with pytest.raises(RecordIntegrityError):
        client_for("dr-lead", api=api).download(rid, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def _flip_after(text: str, marker: str) -> str:
    at = text.index(marker) + len(marker)
    return text[:at] + ("B" if text[at] == "A" else "A") + text[at + 1 :]


MANIFEST_EDITS_ON_THE_WAY = {
    "tag": lambda m: _flip_after(m, '"tag":"'),
    "length": lambda m: m.replace('"total_length":', '"total_length":1', 1),
    "edk": lambda m: _flip_after(m, '"encrypted_data_key":"'),
    # Caught by the MAC check, and again by the content digest (sealed next to the MAC).
    "mac": lambda m: _flip_after(m, '"mac":"'),
}


@pytest.mark.parametrize("edit", sorted(MANIFEST_EDITS_ON_THE_WAY))
def test_a_manifest_tampered_on_the_way_is_refused_by_the_client_with_one_opaque_error(
    records: RecordsHarness,
    client_for: Callable[..., HubClient],
    source: Path,
    tmp_path: Path,
    edit: str,
) -> None:
    """The service checked the stored manifest; anything between it and the client that
    changes the ticket's manifest is caught by the client itself (the manifest's MAC under
    the data key, the GCM tags, the handed key), with the same message whichever check
    failed, and nothing kept."""
    rid = client_for("dr-lead").upload(PATIENT, source, DICOM)["record_id"]
    api = TestClient(records.client.app)
    changed: list[str] = []

    def tamper(response: httpx.Response) -> None:
        if response.request.url.path == f"/records/{rid}/downloads":
            response.read()
            ticket = response.json()
            ticket["manifest"] = MANIFEST_EDITS_ON_THE_WAY[edit](ticket["manifest"])
            response._content = json.dumps(ticket).encode()
            changed.append(edit)

    api.event_hooks["response"] = [tamper]
    out = tmp_path / "opened.dcm"
    with pytest.raises(RecordIntegrityError) as refused:
        client_for("dr-lead", api=api).download(rid, out)
    assert changed == [edit]
    assert str(refused.value) == "the record failed verification; nothing was kept"
    assert not out.exists() and leftovers(tmp_path) == []


def test_group_membership_changes_are_what_the_member_list_says(
    records: RecordsHarness, client_for: Callable[..., HubClient]
) -> None:
    groups, p = records.services.groups, records.hub.principal
    state, _ = groups.create(p("dr-lead"), PATIENT, "Listing check", "")
    gid = state.group.group_id
    groups.invite(p("dr-lead"), gid, "M20013", MemberRole.MEMBER)  # dr-racer
    racer = client_for("dr-racer")
    assert gid in {g["group_id"] for g in racer.invitations()}
    racer.accept(gid)
    assert gid not in {g["group_id"] for g in racer.invitations()}
    assert gid in {g["group_id"] for g in racer.groups()}
    groups.close(p("dr-lead"), gid)
    assert gid not in {g["group_id"] for g in racer.groups()}
