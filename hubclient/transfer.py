"""Moving sealed shards between the doctor's device and S3, through presigned URLs.

Upload (:class:`ShardUploader`): the file is read shard by shard (positional reads, so
workers never share a file offset), each shard sealed with ``app.crypto.RecordSealer``
and checksummed (CRC64NVME, awscrt), then the service is asked for URLs for a batch of
sealed shards (their sizes and checksums are signed into the URLs) and the shards are put
in parallel. Sealing and asking for the next batch overlap the puts of the previous one;
at most ``2 x batch + parallelism`` sealed shards exist at once, so memory does not grow
with the file. Each stored shard's seal (nonce and tag) goes into the upload journal (a
``0600`` JSON file), which is all a resumed upload needs besides the data key, which it
asks the service for again: nothing secret is written to disk.

Download (:class:`RecordDownloader`): the ticket's manifest and wrapped key; shards fetched
in parallel from presigned GETs (a new ticket, decided and audited anew, for each window of
256 shards) and opened by ``ShardedEnvelope`` with the handed data key: every size, the
count, the order and the total come from the authenticated manifest. Plaintext goes to a
temporary file (``0600``) next to the destination, which replaces the destination only
after the last shard verified and the content digest matched; on any failure the
temporary file is removed, so a truncated or tampered record can never be left behind
looking complete.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from app.crypto.context import RecordContext
from app.crypto.digest import ContentDigestKey
from app.crypto.envelope import RecordSealer, SealedShardV2, ShardedEnvelope
from app.crypto.errors import InvalidRecord
from app.crypto.handover import RecipientKey
from app.crypto.kms import HandedDataKey
from app.crypto.manifest import ShardSeal
from hubclient.api import HubApi
from hubclient.errors import RecordIntegrityError, StorageError, UsageError

Progress = Callable[[int], None]
PUT_ATTEMPTS = 3


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def crc64nvme(data: bytes) -> str:
    """S3's CRC64NVME of ``data``, as S3 takes it: base64 of the 8 big-endian bytes."""
    from awscrt import checksums

    return b64(checksums.crc64nvme(data).to_bytes(8, "big"))


# -- the upload journal --------------------------------------------------------------------


@dataclass
class UploadJournal:
    """What a resumable upload keeps on disk: the session, the source file's identity, the
    key salt and each stored shard's seal. Public material only (no data key)."""

    path: Path
    upload_id: str
    record_id: str
    version: int
    encryption_context: dict[str, str]
    encrypted_data_key: str
    salt: str
    shard_size: int
    length: int
    content_type: str
    source: str
    source_size: int
    source_mtime_ns: int
    stored: dict[int, dict[str, str]] = field(default_factory=dict)

    def save(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        body = {k: v for k, v in asdict(self).items() if k != "path"}
        body["stored"] = {str(i): seal for i, seal in sorted(self.stored.items())}
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(body, out)
        os.replace(tmp, self.path)

    @classmethod
    def load(cls, path: Path) -> UploadJournal:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            data["stored"] = {int(i): seal for i, seal in data["stored"].items()}
            return cls(path=path, **data)
        except FileNotFoundError:
            raise UsageError(f"no upload journal at {path}") from None
        except (ValueError, TypeError, KeyError):
            raise UsageError(f"{path} is not an upload journal") from None

    def context(self) -> RecordContext:
        return RecordContext.from_encryption_context(self.encryption_context)

    def seals(self) -> list[ShardSeal]:
        return [
            ShardSeal(unb64(self.stored[i]["nonce"]), unb64(self.stored[i]["tag"]))
            for i in range(len(self.stored))
        ]

    def check_source(self) -> None:
        stat = os.stat(self.source)
        if stat.st_size != self.source_size or stat.st_mtime_ns != self.source_mtime_ns:
            raise UsageError(f"{self.source} changed since the upload started; start it again")


# -- upload --------------------------------------------------------------------------------


@dataclass
class _Sealed:
    shard: SealedShardV2
    crc: str


class ShardUploader:
    """Seals and puts the shards of one upload session that are not stored yet."""

    def __init__(
        self,
        api: HubApi,
        s3: httpx.Client,
        *,
        parallelism: int = 8,
        batch: int = 16,
        progress: Progress | None = None,
    ):
        self._api = api
        self._s3 = s3
        self._parallelism = parallelism
        self._batch = batch
        self._progress = progress or (lambda _n: None)
        self.puts = 0  # shard PUTs that succeeded (tests count what a resume re-sends)

    def upload(self, journal: UploadJournal, sealer: RecordSealer) -> None:
        """Put every shard missing from ``journal``; each success is journaled.

        Raises:
            StorageError, ApiError, UsageError: the journal keeps what was stored.
        """
        missing = [i for i in range(sealer.shard_count) if i not in journal.stored]
        lock = threading.Lock()
        failures: list[BaseException] = []
        stop = threading.Event()
        ready: queue.Queue[tuple[_Sealed, dict[str, Any]] | None] = queue.Queue(self._batch)
        source = open(journal.source, "rb")  # noqa: SIM115 - closed in finally below
        fd = source.fileno()

        def seal(index: int) -> _Sealed:
            size = sealer.plaintext_size(index)
            data = os.pread(fd, size, index * journal.shard_size)
            if len(data) != size:
                raise UsageError(f"{journal.source} changed while it was uploaded")
            shard = sealer.seal_shard(index, data)
            return _Sealed(shard, crc64nvme(shard.ciphertext))

        def produce() -> None:
            try:
                with ThreadPoolExecutor(2, thread_name_prefix="seal") as sealers:
                    for start in range(0, len(missing), self._batch):
                        if stop.is_set():
                            return
                        sealed = list(sealers.map(seal, missing[start : start + self._batch]))
                        urls = self._urls(journal.upload_id, sealed)
                        for item in sealed:
                            ready.put((item, urls[item.shard.index]))
            except BaseException as exc:
                failures.append(exc)
                stop.set()
            finally:
                for _ in range(self._parallelism):
                    ready.put(None)

        def consume() -> None:
            while True:
                item = ready.get()
                if item is None:
                    return
                if stop.is_set():
                    continue  # drain, so the producer never blocks
                sealed, url = item
                try:
                    self._put(sealed, url)
                except BaseException as exc:
                    failures.append(exc)
                    stop.set()
                    continue
                seal = sealed.shard.seal
                with lock:
                    journal.stored[sealed.shard.index] = {
                        "nonce": b64(seal.nonce),
                        "tag": b64(seal.tag),
                    }
                    self.puts += 1
                    if self.puts % self._batch == 0:
                        journal.save()
                self._progress(len(sealed.shard.ciphertext) - 16)

        try:
            threads = [threading.Thread(target=produce, name="shard-producer")]
            threads += [
                threading.Thread(target=consume, name=f"shard-put-{n}")
                for n in range(self._parallelism)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            source.close()
            with lock:
                journal.save()
        if failures:
            raise failures[0]

    def _urls(self, upload_id: str, sealed: Sequence[_Sealed]) -> dict[int, dict[str, Any]]:
        answer = self._api.post(
            f"/uploads/{upload_id}/shards",
            {
                "shards": [
                    {
                        "index": s.shard.index,
                        "size": len(s.shard.ciphertext),
                        "checksum_crc64nvme": s.crc,
                    }
                    for s in sealed
                ]
            },
        )
        return {int(u["index"]): u for u in answer["urls"]}

    def _put(self, sealed: _Sealed, url: dict[str, Any]) -> None:
        for attempt in range(1, PUT_ATTEMPTS + 1):
            try:
                response = self._s3.put(
                    url["url"], content=sealed.shard.ciphertext, headers=url["headers"]
                )
            except httpx.TransportError:
                if attempt == PUT_ATTEMPTS:
                    raise StorageError(
                        f"shard {sealed.shard.index}: storage unreachable; resume the upload"
                    ) from None
                time.sleep(0.2 * attempt)
                continue
            if response.status_code == 200:
                return
            if response.status_code == 412 and attempt > 1:
                return  # an earlier attempt stored it (If-None-Match: the key exists)
            if response.status_code < 500 or attempt == PUT_ATTEMPTS:
                raise StorageError(
                    f"shard {sealed.shard.index}: storage answered HTTP "
                    f"{response.status_code}; resume the upload"
                )
            time.sleep(0.2 * attempt)


def file_sha256(path: str) -> bytes:
    with open(path, "rb") as source:
        return hashlib.file_digest(source, "sha256").digest()


# -- download ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DownloadResult:
    path: Path
    record_id: str
    version: int
    content_type: str
    length: int
    repr_digest: str
    digest_checked: bool


class RecordDownloader:
    """Opens one record version on this device from presigned GETs."""

    def __init__(
        self,
        api: HubApi,
        s3: httpx.Client,
        *,
        parallelism: int = 8,
        progress: Progress | None = None,
    ):
        self._api = api
        self._s3 = s3
        self._parallelism = parallelism
        self._progress = progress or (lambda _n: None)

    def download(self, record_id: str, version: int | None, dest: Path) -> DownloadResult:
        recipient = RecipientKey()
        ticket = self._ticket(record_id, version, recipient, 0)
        context = _context(ticket)
        if context.record_id != record_id or (version is not None and context.version != version):
            raise RecordIntegrityError()
        try:
            data_key = recipient.unwrap(unb64(ticket["key"]["wrapped_data_key"]), context)
        except InvalidRecord:
            raise RecordIntegrityError() from None
        manifest_bytes = ticket["manifest"].encode("ascii")
        windows = _Windows(self, record_id, context.version, recipient, ticket)
        envelope = ShardedEnvelope(
            HandedDataKey(data_key, unb64(ticket["key"]["encrypted_data_key"])),
            parallelism=self._parallelism,
        )
        dest = Path(dest)
        part = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
        digest = hashlib.sha256()
        written = 0
        try:
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                stream = envelope.open(manifest_bytes, windows.fetch, context)
                manifest = stream.manifest
                for chunk in stream:
                    out.write(chunk)
                    digest.update(chunk)
                    written += len(chunk)
                    self._progress(len(chunk))
            if written != stream.total_length:
                raise InvalidRecord()
            checked = False
            if ticket.get("content_digest"):
                sealed = ContentDigestKey(data_key, manifest.key_salt, context).open(
                    manifest, unb64(ticket["content_digest"])
                )
                if sealed != digest.digest():
                    raise InvalidRecord()
                checked = True
            os.replace(part, dest)
        except InvalidRecord:
            part.unlink(missing_ok=True)
            raise RecordIntegrityError() from None
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        return DownloadResult(
            path=dest,
            record_id=record_id,
            version=context.version,
            content_type=str(ticket["content_type"]),
            length=written,
            repr_digest=f"sha-256=:{b64(digest.digest())}:",
            digest_checked=checked,
        )

    def _ticket(
        self, record_id: str, version: int | None, recipient: RecipientKey, first: int
    ) -> dict[str, Any]:
        answer: dict[str, Any] = self._api.post(
            f"/records/{record_id}/downloads",
            {
                "public_key": b64(recipient.public_bytes),
                "version": version,
                "first": first,
                "count": 256,
            },
        )
        return answer

    def fetch_url(self, url: str) -> bytes | None:
        for attempt in range(1, PUT_ATTEMPTS + 1):
            try:
                response = self._s3.get(url)
            except httpx.TransportError:
                if attempt == PUT_ATTEMPTS:
                    raise StorageError("storage unreachable; download again") from None
                time.sleep(0.2 * attempt)
                continue
            if response.status_code == 200:
                return response.content
            if response.status_code in (403, 404):
                return None  # gone (or not ours): the record does not open
            if attempt == PUT_ATTEMPTS:
                raise StorageError(f"storage answered HTTP {response.status_code}")
            time.sleep(0.2 * attempt)
        return None  # pragma: no cover


class _Windows:
    """Presigned GETs by shard index, a ticket window (256 shards) at a time; each new
    window is a new ticket (decided and audited anew) that must carry the same manifest."""

    def __init__(
        self,
        downloader: RecordDownloader,
        record_id: str,
        version: int,
        recipient: RecipientKey,
        first_ticket: dict[str, Any],
    ):
        self._downloader = downloader
        self._record_id = record_id
        self._version = version
        self._recipient = recipient
        self._manifest = first_ticket["manifest"]
        self._lock = threading.Lock()
        self._urls: dict[int, str] = {}
        self._add(first_ticket)

    def _add(self, ticket: dict[str, Any]) -> None:
        if ticket["manifest"] != self._manifest:
            raise InvalidRecord()
        first = int(ticket["first"])
        # Keep the previous window: parallel fetches of its last shards may still be due.
        self._urls = {i: u for i, u in self._urls.items() if i >= first - 512}
        self._urls.update({first + n: url for n, url in enumerate(ticket["shard_urls"])})

    def fetch(self, index: int) -> bytes | None:
        with self._lock:
            url = self._urls.get(index)
            if url is None:
                ticket = self._downloader._ticket(
                    self._record_id, self._version, self._recipient, index
                )
                self._add(ticket)
                url = self._urls.get(index)
        if url is None:
            return None
        return self._downloader.fetch_url(url)


def _context(ticket: dict[str, Any]) -> RecordContext:
    try:
        return RecordContext.from_encryption_context(ticket["key"]["encryption_context"])
    except (ValueError, KeyError, TypeError):
        raise RecordIntegrityError() from None
