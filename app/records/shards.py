"""Encrypted shards in the S3 shard bucket: opaque keys, bounded-parallel puts and gets.

Key layout: ``shards/<upload id>/<shard id>``, both random hex (``uuid4``): a key says
nothing about the record, the patient, the version or the shard's position. One upload
(one sealed record version) owns one ``<upload id>`` prefix, which is what makes the
sweeper cheap: it lists prefixes and asks one item per prefix whether that upload was
committed (``app/records/sweeper.py``).

Every put is SSE-KMS under the records key (the bucket policy refuses anything else) and
carries an S3 checksum that S3 checks before it stores the object: the service's own puts
(records it seals itself, at most ``HUB_MAX_INLINE_RECORD_BYTES``) ask botocore for
``CRC32`` (zlib, no extra dependency); shards a client seals carry ``CRC64NVME``, computed
by the client and signed into the presigned URL the service issues (:meth:`presign_put`).
CRC64NVME on the service itself would need ``awscrt`` in the Lambda bundle, which would
switch every SigV4 signer of the process to the CRT one; the service never computes it,
it compares what ``HeadObject`` reports (:meth:`head`) with what it signed.

Presigned URLs (:meth:`presign_put`, :meth:`presign_get`) live ``presign_seconds``. A PUT
URL names one random key under its upload's prefix and signs, besides the host:
``Content-Length`` (the shard's size in the manifest layout), ``If-None-Match: *`` (it
creates the object once: a replay cannot add a version over a committed shard),
``x-amz-server-side-encryption: aws:kms`` with the records key, and
``x-amz-sdk-checksum-algorithm: CRC64NVME`` with the client's ``x-amz-checksum-crc64nvme``
value. S3 refuses any request that drops or changes one of them (the signature no longer
matches), any unsigned ``x-amz-*`` header, and a body whose CRC64NVME differs. A GET URL
names one key at one S3 version id.

Guarantees: at most ``parallelism`` requests are in flight and at most about
``2 x parallelism`` shards are held in memory by a put; a failed put stops the upload and
raises (the caller cleans up); a missing object reads as ``None`` (an integrity failure
for the opener), any other error propagates so it is never mistaken for tampering.
"""

from __future__ import annotations

import contextlib
import uuid
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from app.crypto.envelope import SealedShard

PREFIX = "shards/"
SERVICE_CHECKSUM = "CRC32"
CLIENT_CHECKSUM = "CRC64NVME"


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


@dataclass(frozen=True)
class PresignedPut:
    """A presigned shard PUT: the URL and the headers the client must send with it."""

    url: str
    headers: dict[str, str]


@dataclass(frozen=True)
class ShardHead:
    """What ``HeadObject`` reports about a shard object."""

    key: str
    size: int
    crc64nvme: str | None
    version_id: str | None
    encryption: str | None
    kms_key_id: str | None


def signed_headers(url: str) -> list[str]:
    """The header names a presigned URL signs (``X-Amz-SignedHeaders``), lowercase."""
    from urllib.parse import parse_qs, urlsplit

    values = parse_qs(urlsplit(url).query).get("X-Amz-SignedHeaders", [""])
    return [h for h in values[0].lower().split(";") if h]


class ShardStore:
    """The shard bucket. ``client`` is a boto3 S3 client made by the caller."""

    def __init__(
        self,
        client: Any,
        bucket: str,
        kms_key_id: str,
        parallelism: int,
        *,
        presign_seconds: int = 300,
    ):
        self._client = client
        self.bucket = bucket
        self._kms_key_id = kms_key_id
        self.parallelism = parallelism
        self.presign_seconds = presign_seconds

    @property
    def kms_key_id(self) -> str:
        return self._kms_key_id

    def put_one(self, key: str, ciphertext: bytes) -> StoredShard:
        response = self._client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=ciphertext,
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=self._kms_key_id,
            ChecksumAlgorithm=SERVICE_CHECKSUM,
        )
        return StoredShard(key, response.get("VersionId"))

    def presign_put(self, key: str, size: int, crc64nvme: str) -> PresignedPut:
        """A URL that puts exactly one shard object: ``size`` bytes whose CRC64NVME is
        ``crc64nvme`` (base64 of 8 bytes), SSE-KMS under the records key, only if ``key``
        does not exist yet. ``headers`` are what the client must send, exactly."""
        url = self._client.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "ContentLength": size,
                "IfNoneMatch": "*",
                "ServerSideEncryption": "aws:kms",
                "SSEKMSKeyId": self._kms_key_id,
                "ChecksumAlgorithm": CLIENT_CHECKSUM,
                "ChecksumCRC64NVME": crc64nvme,
            },
            ExpiresIn=self.presign_seconds,
        )
        headers = {
            "Content-Length": str(size),
            "If-None-Match": "*",
            "x-amz-server-side-encryption": "aws:kms",
            "x-amz-server-side-encryption-aws-kms-key-id": self._kms_key_id,
            "x-amz-sdk-checksum-algorithm": CLIENT_CHECKSUM,
            "x-amz-checksum-crc64nvme": crc64nvme,
        }
        signed = set(signed_headers(url)) - {"host"}
        if signed != {h.lower() for h in headers}:
            # botocore decides which parameters become signed headers; if that ever
            # changes, refuse to hand out a URL that would not enforce what we promise.
            raise RuntimeError("presigned PUT does not sign the expected headers")
        return PresignedPut(url, headers)

    def presign_get(self, shard: StoredShard) -> str:
        """A URL that reads one shard object at its stored S3 version."""
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": shard.key}
        if shard.version_id:
            params["VersionId"] = shard.version_id
        url: str = self._client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=self.presign_seconds
        )
        return url

    def head(self, key: str) -> ShardHead | None:
        """What S3 holds at ``key`` now (``None`` if nothing): size, CRC64NVME, version id
        and server-side encryption, read with ``ChecksumMode=ENABLED``."""
        try:
            head = self._client.head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NotFound"}:
                return None
            raise
        version = head.get("VersionId")
        return ShardHead(
            key=key,
            size=int(head.get("ContentLength", -1)),
            crc64nvme=head.get("ChecksumCRC64NVME"),
            version_id=str(version) if version and version != "null" else None,
            encryption=head.get("ServerSideEncryption"),
            kms_key_id=head.get("SSEKMSKeyId"),
        )

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
