"""The upload-session protocol by hand, for tests that need to step outside it (a shard
put elsewhere, a header dropped, a manifest altered): start a session, seal shards with
``RecordSealer``, ask for URLs, put to S3 (moto, over HTTP), commit. The doctor's client
(``hubclient``) runs the same protocol for the happy paths."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from typing import Any

import httpx
from hub_testkit import PATIENT
from records_testkit import RecordsHarness

from app.crypto.context import RecordContext
from app.crypto.digest import ContentDigestKey
from app.crypto.envelope import RecordSealer, SealedShardV2
from app.crypto.handover import RecipientKey
from app.crypto.manifest import ManifestV2
from hubclient.transfer import crc64nvme

DICOM = "application/dicom"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass
class Started:
    who: str
    body: dict[str, Any]
    recipient: RecipientKey
    data: bytes
    sealer: RecordSealer
    data_key: bytes
    sealed: dict[int, SealedShardV2] = field(default_factory=dict)
    urls: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def upload_id(self) -> str:
        return str(self.body["upload_id"])

    @property
    def context(self) -> RecordContext:
        return RecordContext.from_encryption_context(self.body["key"]["encryption_context"])

    def manifest(self) -> ManifestV2:
        return self.sealer.manifest([self.sealed[i].seal for i in range(self.sealer.shard_count)])

    def digest_box(self, sha256: bytes | None = None) -> str:
        import hashlib

        key = ContentDigestKey(self.data_key, self.sealer.salt, self.context)
        return b64(key.seal(self.manifest(), sha256 or hashlib.sha256(self.data).digest()))


class SealedProtocol:
    def __init__(self, records: RecordsHarness):
        self.records = records
        self.s3 = httpx.Client(timeout=30)

    def start_response(
        self,
        who: str = "dr-lead",
        data_length: int = 0,
        *,
        patient: str = PATIENT,
        record_id: str | None = None,
        content_type: str = DICOM,
        public_key: str | None = None,
    ) -> Any:
        body: dict[str, Any] = {
            "content_type": content_type,
            "length": data_length,
            "public_key": public_key or b64(RecipientKey().public_bytes),
        }
        path = f"/records/{record_id}/uploads" if record_id else f"/patients/{patient}/uploads"
        if not record_id:
            body.update(category="imaging", title="Synthetic scan")
        return self.records.client.post(path, json=body, headers=self.records.headers(who))

    def start(
        self,
        who: str = "dr-lead",
        data: bytes | None = None,
        *,
        patient: str = PATIENT,
        record_id: str | None = None,
    ) -> Started:
        data = os.urandom(3 * 64 * 1024 + 77) if data is None else data
        recipient = RecipientKey()
        body: dict[str, Any] = {
            "content_type": DICOM,
            "length": len(data),
            "public_key": b64(recipient.public_bytes),
        }
        path = f"/records/{record_id}/uploads" if record_id else f"/patients/{patient}/uploads"
        if not record_id:
            body.update(category="imaging", title="Synthetic scan")
        r = self.records.client.post(path, json=body, headers=self.records.headers(who))
        assert r.status_code == 201, r.text
        session = r.json()
        context = RecordContext.from_encryption_context(session["key"]["encryption_context"])
        data_key = recipient.unwrap(base64.b64decode(session["key"]["wrapped_data_key"]), context)
        sealer = RecordSealer(
            context,
            data_key,
            base64.b64decode(session["key"]["encrypted_data_key"]),
            length=len(data),
            shard_size=session["shard_size"],
        )
        return Started(who, session, recipient, data, sealer, data_key)

    def seal(self, started: Started, indexes: list[int] | None = None) -> None:
        size = started.body["shard_size"]
        for i in indexes if indexes is not None else range(started.sealer.shard_count):
            started.sealed[i] = started.sealer.seal_shard(
                i, started.data[i * size : (i + 1) * size]
            )

    def declarations(self, started: Started, indexes: list[int]) -> list[dict[str, Any]]:
        return [
            {
                "index": i,
                "size": len(started.sealed[i].ciphertext),
                "checksum_crc64nvme": crc64nvme(started.sealed[i].ciphertext),
            }
            for i in indexes
        ]

    def urls_response(
        self, started: Started, shards: list[dict[str, Any]], who: str | None = None
    ) -> Any:
        return self.records.client.post(
            f"/uploads/{started.upload_id}/shards",
            json={"shards": shards},
            headers=self.records.headers(who or started.who),
        )

    def issue(self, started: Started, indexes: list[int] | None = None) -> None:
        indexes = list(range(started.sealer.shard_count)) if indexes is None else indexes
        self.seal(started, [i for i in indexes if i not in started.sealed])
        r = self.urls_response(started, self.declarations(started, indexes))
        assert r.status_code == 200, r.text
        for url in r.json()["urls"]:
            started.urls[url["index"]] = url

    def put(self, started: Started, index: int, body: bytes | None = None, **drop: bool) -> Any:
        url = started.urls[index]
        headers = {k: v for k, v in url["headers"].items() if not drop.get(k.lower(), False)}
        content = started.sealed[index].ciphertext if body is None else body
        if body is not None:
            headers["Content-Length"] = str(len(body))
        return self.s3.put(url["url"], content=content, headers=headers)

    def put_all(self, started: Started) -> None:
        for i in range(started.sealer.shard_count):
            assert self.put(started, i).status_code == 200

    def commit_response(
        self,
        started: Started,
        *,
        manifest: bytes | None = None,
        digest: str | None = "auto",
        who: str | None = None,
    ) -> Any:
        body: dict[str, Any] = {
            "manifest": (manifest or started.manifest().to_bytes()).decode("ascii")
        }
        if digest == "auto":
            body["content_digest"] = started.digest_box()
        elif digest is not None:
            body["content_digest"] = digest
        return self.records.client.post(
            f"/uploads/{started.upload_id}/commit",
            json=body,
            headers=self.records.headers(who or started.who),
        )

    def upload(self, who: str = "dr-lead", data: bytes | None = None, **kwargs: Any) -> Started:
        """A whole upload, committed."""
        started = self.start(who, data, **kwargs)
        self.issue(started)
        self.put_all(started)
        r = self.commit_response(started)
        assert r.status_code == 201, r.text
        return started
