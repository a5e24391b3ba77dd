"""Moving sealed shards between the doctor's device and S3, through presigned URLs.

Upload (:class:`ShardUploader`): the file is read shard by shard (positional reads, so
workers never share a file offset), each shard sealed with ``app.crypto.RecordSealer``
and checksummed (CRC64NVME, awscrt), then the service is asked for URLs for a batch of
shards (their sizes and checksums are signed into the URLs) and the shards are put in
parallel, each sealed again (byte for byte the same) just before its put, so sealed
shards never wait in memory for their URLs: memory does not grow with the file, and the
API's latency overlaps the puts. Each stored shard's seal (nonce and tag) goes into the
upload journal (a ``0600`` JSON file), which is all a resumed upload needs besides the data
key, which it asks the service for again: nothing secret is written to disk.

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
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx

from app.crypto.context import RecordContext
from app.crypto.digest import ContentDigestKey
from app.crypto.envelope import OpeningViews, RecordSealer, ShardedEnvelope
from app.crypto.errors import InvalidRecord
from app.crypto.handover import RecipientKey
from app.crypto.kms import HandedDataKey
from app.crypto.manifest import ShardSeal
from hubclient.api import HubApi
from hubclient.errors import RecordIntegrityError, StorageError, UsageError

Progress = Callable[[int], None]
PUT_ATTEMPTS = 3
PIECE = 256 * 1024  # what a put reads and sends at a time
MAX_REPORTED = 64  # stored shards reported per request (the service checks them then)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


_ALLOCATOR_TUNED = False


def return_shard_buffers_to_the_os() -> None:
    """Fix glibc's mmap threshold at 512 KiB instead of letting it drift, so a shard-sized
    buffer goes back to the operating system when it is freed.

    Shards are megabytes each and pass through a dozen threads; glibc raises its mmap
    threshold after the first large free (up to 32 MiB) and then keeps freed shards in
    per-thread arenas, so the process's resident memory would grow to the high-water mark
    of every thread at once (about 3x what is live, measured). A fixed threshold stops the
    drift: shard-sized allocations are mapped on their own. It sits above the 256 KiB
    pieces a put sends (h11 copies each once), so those are reused from the arenas
    instead of being mapped, faulted in page by page and unmapped 4096 times per GiB.
    Process-wide, once, and only on glibc (elsewhere: nothing).
    """
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED:
        return
    _ALLOCATOR_TUNED = True
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 512 * 1024)  # M_MMAP_THRESHOLD, fixed: no drift
    except (OSError, AttributeError):
        pass


def crc64nvme(data: bytes | bytearray | memoryview) -> str:
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


@dataclass(frozen=True)
class _Declared:
    """A shard sealed once to learn its seal and checksum (its ciphertext is dropped and
    sealed again, identically, when its URL arrives: ``RecordSealer.reseal_shard``)."""

    index: int
    size: int
    crc: str
    seal: ShardSeal


class ShardUploader:
    """Seals and puts the shards of one upload session that are not stored yet.

    Three stages, so that neither memory nor the API's latency grows with the file: shards
    are *declared* (read, sealed, checksummed, only the seal and checksum kept) by one
    thread, a batch of ``batch`` declarations at a time; URLs are *asked for* per batch,
    up to two batches in flight; ``parallelism`` workers each read a shard again, seal it
    again from the file in 256 KiB pieces (identical bytes, released only once its tag
    matches) and *puts* it. In memory: the shard being declared (its plaintext and
    ciphertext) and, per put, its sealed shard: about ``2 + parallelism`` shards, each in
    a buffer its thread allocates once and reuses (fresh memory per shard cost a page
    fault per 4 KiB: as much CPU as the sealing, on busy cores). Each ask also
    reports the shards put since the previous one, which the service checks then, so the
    commit has only the last ones left to check.
    """

    def __init__(
        self,
        api: HubApi,
        s3: httpx.Client,
        *,
        parallelism: int = 6,
        batch: int = 64,
        progress: Progress | None = None,
    ):
        self._api = api
        self._s3 = s3
        self._parallelism = parallelism
        self._batch = batch
        self._progress = progress or (lambda _n: None)
        self.puts = 0  # shard PUTs that succeeded (tests count what a resume re-sends)
        return_shard_buffers_to_the_os()

    def upload(self, journal: UploadJournal, sealer: RecordSealer) -> None:
        """Put every shard missing from ``journal``; each success is journaled.

        Raises:
            StorageError, ApiError, UsageError: the journal keeps what was stored.
        """
        missing = [i for i in range(sealer.shard_count) if i not in journal.stored]
        lock = threading.Lock()
        put_since: list[int] = []
        failures: list[BaseException] = []
        stop = threading.Event()
        ready: queue.Queue[tuple[_Declared, dict[str, Any]] | None] = queue.Queue(2 * self._batch)
        source = open(journal.source, "rb")  # noqa: SIM115 - closed in finally below
        fd = source.fileno()

        # Every shard-sized buffer is allocated once, by the thread that uses it, and
        # reused for each of its shards: fresh memory costs a page fault per 4 KiB, which
        # under CPU contention cost about as much as sealing itself (measured).
        def read_into(view: memoryview, offset: int) -> None:
            """Fill ``view`` from the file at ``offset`` (positional: no shared offset)."""
            done = 0
            while done < len(view):
                n = os.preadv(fd, [view[done:]], offset + done)
                if n == 0:
                    raise UsageError(f"{journal.source} changed while it was uploaded")
                done += n

        def read_pieces(index: int, piece: bytearray) -> Iterator[memoryview]:
            """The shard's plaintext in pieces (each overwrites the last, once sealed): a
            put holds its sealed shard, never its plaintext too."""
            size = sealer.plaintext_size(index)
            start = index * journal.shard_size
            with memoryview(piece) as whole:
                for offset in range(0, size, PIECE):
                    view = whole[: min(PIECE, size - offset)]
                    read_into(view, start + offset)
                    yield view

        declaring: dict[str, bytearray] = {}

        def declare(index: int) -> _Declared:
            size = sealer.plaintext_size(index)
            if not declaring:  # the planner thread's two buffers, made on first use
                declaring["plain"] = bytearray(journal.shard_size)
                declaring["sealed"] = bytearray(journal.shard_size + 16)
            with (
                memoryview(declaring["plain"])[:size] as plain,
                memoryview(declaring["sealed"])[: size + 16] as sealed,
            ):
                read_into(plain, index * journal.shard_size)
                seal = sealer.seal_shard_into(index, plain, sealed)
                return _Declared(index, size + 16, crc64nvme(sealed), seal)

        def plan() -> None:
            try:
                with ThreadPoolExecutor(2, thread_name_prefix="ask-urls") as askers:
                    asked: deque[Future[list[tuple[_Declared, dict[str, Any]]]]] = deque()
                    for start in range(0, len(missing), self._batch):
                        if stop.is_set():
                            return
                        # One thread declares (AES-GCM and CRC64NVME run at GB/s, far ahead
                        # of the puts), so only one shard is sealed here at a time.
                        batch = [declare(i) for i in missing[start : start + self._batch]]
                        asked.append(askers.submit(self._urls, journal.upload_id, batch))
                        while len(asked) > 1 and not stop.is_set():
                            for item in asked.popleft().result():
                                ready.put(item)
                    while asked and not stop.is_set():
                        for item in asked.popleft().result():
                            ready.put(item)
            except BaseException as exc:
                failures.append(exc)
                stop.set()
            finally:
                for _ in range(self._parallelism):
                    ready.put(None)

        def consume() -> None:
            out: bytearray | None = None  # this worker's sealed shard, reused
            piece = bytearray(PIECE)
            while True:
                item = ready.get()
                if item is None:
                    return
                if stop.is_set():
                    continue  # drain, so the planner never blocks
                declared, url = item
                try:
                    if out is None:
                        out = bytearray(journal.shard_size + 16)
                    with sealer.reseal_shard_pieces_into(
                        declared.index, read_pieces(declared.index, piece), declared.seal, out
                    ) as ciphertext:
                        self._put(declared.index, ciphertext, url)
                except InvalidRecord:
                    failures.append(UsageError(f"{journal.source} changed while it was uploaded"))
                    stop.set()
                    continue
                except BaseException as exc:
                    failures.append(exc)
                    stop.set()
                    continue
                with lock:
                    journal.stored[declared.index] = {
                        "nonce": b64(declared.seal.nonce),
                        "tag": b64(declared.seal.tag),
                    }
                    put_since.append(declared.index)
                    self.puts += 1
                    if self.puts % self._batch == 0:
                        journal.save()
                self._progress(declared.size - 16)

        puts_done = threading.Event()

        def report() -> None:
            """Tell the service which shards are stored, a batch at a time, off the path of
            the puts: it checks them then (HeadObject), so the commit checks only the rest."""
            try:
                while True:
                    finished = puts_done.wait(0.05)
                    with lock:
                        due = len(put_since) >= self._batch or (finished and put_since)
                        stored = put_since[:MAX_REPORTED] if due else []
                        del put_since[: len(stored)]
                    if stored and not stop.is_set():
                        self._api.post(f"/uploads/{journal.upload_id}/shards", {"stored": stored})
                    elif finished:
                        return
            except BaseException as exc:
                failures.append(exc)
                stop.set()

        try:
            threads = [threading.Thread(target=plan, name="shard-planner")]
            threads += [
                threading.Thread(target=consume, name=f"shard-put-{n}")
                for n in range(self._parallelism)
            ]
            reporter = threading.Thread(target=report, name="shard-reporter")
            for thread in [*threads, reporter]:
                thread.start()
            for thread in threads:
                thread.join()
            puts_done.set()
            reporter.join()
        finally:
            source.close()
            with lock:
                journal.save()
        if failures:
            raise failures[0]

    def _urls(
        self, upload_id: str, declared: Sequence[_Declared]
    ) -> list[tuple[_Declared, dict[str, Any]]]:
        answer = self._api.post(
            f"/uploads/{upload_id}/shards",
            {
                "shards": [
                    {"index": d.index, "size": d.size, "checksum_crc64nvme": d.crc}
                    for d in declared
                ],
            },
        )
        urls = {int(u["index"]): u for u in answer["urls"]}
        return [(d, urls[d.index]) for d in declared]

    def _put(
        self, index: int, ciphertext: bytes | bytearray | memoryview, url: dict[str, Any]
    ) -> None:
        for attempt in range(1, PUT_ATTEMPTS + 1):
            try:
                # In pieces, with the signed Content-Length: sent as is (not chunked), and
                # never copied whole (h11 joins what it is handed before each send). The
                # pieces are memoryviews: httpx declares Iterable[bytes], but passes them
                # through to h11, which takes any bytes-like object (tested end to end).
                pieces = cast(Iterator[bytes], _pieces_of(ciphertext))
                response = self._s3.put(url["url"], content=pieces, headers=url["headers"])
            except httpx.TransportError:
                if attempt == PUT_ATTEMPTS:
                    raise StorageError(
                        f"shard {index}: storage unreachable; resume the upload"
                    ) from None
                time.sleep(0.2 * attempt)
                continue
            if response.status_code == 200:
                return
            if response.status_code == 412 and attempt > 1:
                return  # an earlier attempt stored it (If-None-Match: the key exists)
            if response.status_code < 500 or attempt == PUT_ATTEMPTS:
                raise StorageError(
                    f"shard {index}: storage answered HTTP {response.status_code}; "
                    "resume the upload"
                )
            time.sleep(0.2 * attempt)


def _pieces_of(data: bytes | bytearray | memoryview, size: int = PIECE) -> Iterator[memoryview]:
    """Views, not copies: h11 copies each piece once (it joins what it sends), and the
    buffer stays unchanged until the put returns."""
    view = memoryview(data)
    for start in range(0, len(view), size):
        yield view[start : start + size]


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
        return_shard_buffers_to_the_os()

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
        stream: OpeningViews | None = None
        try:
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                # Each chunk is written and hashed at once: decrypted into reused buffers.
                stream = envelope.open_views(manifest_bytes, windows.fetch, context)
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
        finally:
            # The envelope's reused shard buffers hold the record's last plaintext shards:
            # the stream gives them back (if it stopped early), then they are wiped, not
            # left to the allocator.
            if stream is not None:
                stream.close()
            envelope.discard_buffers()
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
