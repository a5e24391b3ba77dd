"""Encrypted shards in the S3 shard bucket: opaque keys, bounded-parallel puts and gets.

Key layout: ``shards/<upload id>/<shard id>``, both random hex (``uuid4``): a key says
nothing about the record, the patient, the version or the shard's position. One upload
(one sealed record version) owns one ``<upload id>`` prefix, which is what makes the
sweeper cheap: it lists prefixes and asks one item per prefix whether that upload was
committed (``app/records/sweeper.py``).

Every put is SSE-KMS under the records key (the bucket policy refuses anything else) and
carries the shard's SHA-256 (``ChecksumSHA256``), so S3 rejects a shard damaged in
transit and stores a checksum that keyless audits can compare with the manifest.

Guarantees: at most ``parallelism`` requests are in flight and at most about
``2 x parallelism`` shards are held in memory by a put; a failed put stops the upload and
raises (the caller cleans up); a missing object reads as ``None`` (an integrity failure
for the opener), any other error propagates so it is never mistaken for tampering.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import uuid
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from app.crypto.envelope import SealedShard

PREFIX = "shards/"


def new_upload_id() -> str:
    return uuid.uuid4().hex


def shard_key(upload_id: str, shard_id: str) -> str:
    return f"{PREFIX}{upload_id}/{shard_id}"


def upload_id_of(key: str) -> str | None:
    """The upload id of a shard key, or ``None`` for a key outside the layout."""
    if not key.startswith(PREFIX):
        return None
    parts = key[len(PREFIX) :].split("/")
    return parts[0] if len(parts) == 2 and parts[0] and parts[1] else None


@dataclass(frozen=True)
class StoredShard:
    """Where one shard was put: its object key and the S3 version id (versioned bucket)."""

    key: str
    version_id: str | None


class ShardStore:
    """The shard bucket. ``client`` is a boto3 S3 client made by the caller."""

    def __init__(self, client: Any, bucket: str, kms_key_id: str, parallelism: int):
        self._client = client
        self.bucket = bucket
        self._kms_key_id = kms_key_id
        self.parallelism = parallelism

    def put_one(self, key: str, ciphertext: bytes) -> StoredShard:
        digest = base64.b64encode(hashlib.sha256(ciphertext).digest()).decode("ascii")
        response = self._client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=ciphertext,
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=self._kms_key_id,
            ChecksumSHA256=digest,
        )
        return StoredShard(key, response.get("VersionId"))

    def put_all(
        self, upload_id: str, shards: Iterable[SealedShard], on_stored: Any = None
    ) -> list[StoredShard]:
        """Put shards as they are sealed, ``parallelism`` at a time; returns them in order.

        ``on_stored(StoredShard)`` is called for each successful put (from this thread),
        so a caller can track what to delete if a later step fails.
        """
        stored: dict[int, StoredShard] = {}
        executor = ThreadPoolExecutor(max_workers=self.parallelism, thread_name_prefix="shard-put")
        pending: deque[tuple[int, Future[StoredShard]]] = deque()

        def settle(index: int, future: Future[StoredShard]) -> None:
            result = future.result()
            stored[index] = result
            if on_stored is not None:
                on_stored(result)

        try:
            for shard in shards:
                key = shard_key(upload_id, uuid.uuid4().hex)
                pending.append((shard.index, executor.submit(self.put_one, key, shard.ciphertext)))
                while len(pending) >= self.parallelism:
                    settle(*pending.popleft())
            while pending:
                settle(*pending.popleft())
        except BaseException:
            # Let in-flight puts finish so the caller's cleanup sees every object created.
            for index, future in pending:
                if future.cancel():
                    continue
                # The first failure is the one raised; later ones add nothing.
                with contextlib.suppress(Exception):
                    settle(index, future)
            raise
        finally:
            executor.shutdown(wait=True)
        return [stored[i] for i in range(len(stored))]

    def get(self, shard: StoredShard) -> bytes | None:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": shard.key}
        if shard.version_id:
            kwargs["VersionId"] = shard.version_id
        try:
            body: bytes = self._client.get_object(**kwargs)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "NoSuchVersion", "404"}:
                return None
            raise
        return body

    def delete(self, shards: Iterable[StoredShard]) -> None:
        """Delete shards for good: the stored version when known (no delete marker is
        left over a readable version), else the key. Missing objects are not an error."""
        items = list(shards)
        if not items:
            return
        with ThreadPoolExecutor(
            max_workers=self.parallelism, thread_name_prefix="shard-delete"
        ) as executor:
            for future in [executor.submit(self._delete_one, s) for s in items]:
                future.result()

    def _delete_one(self, shard: StoredShard) -> None:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": shard.key}
        if shard.version_id:
            kwargs["VersionId"] = shard.version_id
        self._client.delete_object(**kwargs)

    def current_version(self, key: str) -> str | None:
        """The current version id of ``key`` (``None``: unversioned or missing)."""
        try:
            head = self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError:
            return None
        version = head.get("VersionId")
        return str(version) if version and version != "null" else None

    def list_uploads(self) -> Iterator[tuple[str, list[tuple[str, Any]]]]:
        """Every upload prefix with its objects ``(key, last_modified)``, one prefix at a
        time (keys are listed in order, so a prefix's objects are contiguous)."""
        paginator = self._client.get_paginator("list_objects_v2")
        current: str | None = None
        objects: list[tuple[str, Any]] = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=PREFIX):
            for obj in page.get("Contents", []):
                upload = upload_id_of(obj["Key"])
                if upload is None:
                    continue
                if upload != current:
                    if current is not None:
                        yield current, objects
                    current, objects = upload, []
                objects.append((obj["Key"], obj["LastModified"]))
        if current is not None:
            yield current, objects
