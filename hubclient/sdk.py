"""The doctor's client as a Python SDK: :class:`HubClient`.

Which content goes which way (docs/records.md): FHIR JSON documents are validated by the
service, so they are sent to it and sealed there (``POST /patients/{id}/records``, within
the API's caps); every other record is sealed on this device and put straight to S3
(upload sessions), whatever its size. Downloads are opened on this device (download
tickets); :meth:`HubClient.get_content` reads a small record through the service instead,
and checks its ``Repr-Digest`` and length.

Listings follow the service's cursors to the end; each page is one audited decision.

Example::

    client = HubClient.from_home()              # after `hub-doctor login`
    for invitation in client.invitations():
        client.accept(invitation["group_id"])
    record = client.upload("pt-...", Path("ct.dcm"), "application/dicom",
                           category="imaging", title="CT chest")
    client.share(record["record_id"], group_id)
    client.download(record["record_id"], Path("ct-copy.dcm"))
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from app.crypto.context import RecordContext
from app.crypto.digest import ContentDigestKey
from app.crypto.envelope import RecordSealer
from app.crypto.errors import InvalidRecord
from app.crypto.handover import RecipientKey
from hubclient.api import HubApi, TokenSource
from hubclient.auth import CognitoAuth, TokenSession, TokenStore
from hubclient.errors import RecordIntegrityError, UsageError
from hubclient.transfer import (
    DownloadResult,
    Progress,
    RecordDownloader,
    ShardUploader,
    UploadJournal,
    b64,
    file_sha256,
    unb64,
)

DEFAULT_HOME = Path(os.environ.get("HUB_DOCTOR_HOME", Path.home() / ".hub-doctor"))
FHIR_JSON = "application/fhir+json"
# What the service takes in one request (HUB_MAX_INLINE_RECORD_BYTES): FHIR documents only.
MAX_SERVICE_SEALED_BYTES = 4 * 1024 * 1024


def is_fhir(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == FHIR_JSON


class HubClient:
    """One signed-in doctor against one deployment of the hub.

    Args:
        api: the API (base URL and token source).
        s3: the HTTP client for presigned URLs (default: a new ``httpx.Client``).
        home: where upload journals live (``<home>/uploads``, ``0700``).
        parallelism: shard transfers in flight (6: with 4 MiB shards, about 60 MiB of
            memory at most; see ``hubclient.transfer.ShardUploader``).
    """

    def __init__(
        self,
        api: HubApi,
        *,
        s3: httpx.Client | None = None,
        home: Path = DEFAULT_HOME,
        parallelism: int = 6,
    ):
        self.api = api
        self._s3 = s3 or httpx.Client(
            timeout=httpx.Timeout(120.0, connect=10.0),
            limits=httpx.Limits(max_connections=2 * parallelism),
        )
        self.home = Path(home)
        self.parallelism = parallelism
        self.last_upload: ShardUploader | None = None
        # The data key of an upload in progress, in memory only (the content digest is
        # sealed under it at the end); never written anywhere.
        self._data_keys: dict[str, bytes] = {}

    @classmethod
    def from_home(cls, home: Path = DEFAULT_HOME, **kwargs: Any) -> HubClient:
        """The doctor signed in with ``hub-doctor login`` (tokens in ``<home>/tokens.json``)."""
        store = TokenStore(Path(home) / "tokens.json")
        tokens = store.load()
        if tokens is None:
            raise UsageError("not signed in: run `hub-doctor login` first")
        auth = CognitoAuth(
            tokens.pool_id,
            tokens.client_id,
            api_url=tokens.api_url,
            endpoint_url=tokens.cognito_endpoint,
        )
        session = TokenSession(tokens, store=store, auth=auth)
        return cls.connect(tokens.api_url, session, home=Path(home), **kwargs)

    @classmethod
    def connect(cls, api_url: str, tokens: TokenSource, **kwargs: Any) -> HubClient:
        http = httpx.Client(base_url=api_url, timeout=httpx.Timeout(120.0, connect=10.0))
        return cls(HubApi(http, tokens), **kwargs)

    # -- who and what ---------------------------------------------------------------------

    def me(self) -> dict[str, Any]:
        answer: dict[str, Any] = self.api.get("/me")
        return answer

    def _pages(self, path: str, key: str, limit: int | None) -> Iterator[dict[str, Any]]:
        cursor: str | None = None
        while True:
            page = self.api.get(path, cursor=cursor, limit=limit)
            yield from page[key]
            cursor = page.get("cursor")
            if not cursor:
                return

    def groups(self, limit: int | None = None) -> Iterator[dict[str, Any]]:
        """My groups (active membership), every page."""
        return self._pages("/groups", "groups", limit)

    def invitations(self, limit: int | None = None) -> Iterator[dict[str, Any]]:
        """My pending invitations, every page."""
        return self._pages("/invitations", "invitations", limit)

    def patient_records(
        self, patient_id: str, limit: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """The patient's records I may read, every page."""
        return self._pages(f"/patients/{patient_id}/records", "records", limit)

    def group_records(self, group_id: str, limit: int | None = None) -> Iterator[dict[str, Any]]:
        """The records shared into a group that I may read, every page."""
        return self._pages(f"/groups/{group_id}/records", "records", limit)

    # -- groups ---------------------------------------------------------------------------

    def create_group(self, patient_id: str, title: str, purpose: str = "") -> dict[str, Any]:
        answer: dict[str, Any] = self.api.post(
            "/groups", {"patient_id": patient_id, "title": title, "purpose": purpose}
        )
        return answer

    def accept(self, group_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = self.api.post(f"/groups/{group_id}/accept")
        return answer

    def summon(self, group_id: str, specialties: list[str], count: int) -> dict[str, Any]:
        answer: dict[str, Any] = self.api.post(
            f"/groups/{group_id}/summon", {"specialties": specialties, "count": count}
        )
        return answer

    def invite(self, group_id: str, reg_no: str) -> dict[str, Any]:
        answer: dict[str, Any] = self.api.post(
            f"/groups/{group_id}/invitations", {"reg_no": reg_no}
        )
        return answer

    def remove_member(self, group_id: str, reg_no: str) -> dict[str, Any]:
        answer: dict[str, Any] = self.api.delete(f"/groups/{group_id}/members/{reg_no}")
        return answer

    # -- records --------------------------------------------------------------------------

    def record(self, record_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = self.api.get(f"/records/{record_id}")
        return answer

    def versions(self, record_id: str) -> list[dict[str, Any]]:
        return list(self.record(record_id)["versions"])

    def share(self, record_id: str, group_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = self.api.post(
            f"/records/{record_id}/share", {"group_id": group_id}
        )
        return answer

    def shred(self, record_id: str, version: int, reason: str) -> dict[str, Any]:
        answer: dict[str, Any] = self.api.delete(
            f"/records/{record_id}/versions/{version}", {"reason": reason}
        )
        return answer

    def upload(
        self,
        patient_id: str | None,
        path: Path,
        content_type: str,
        *,
        record_id: str | None = None,
        category: str = "other",
        title: str = "",
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Store ``path`` as a new record of ``patient_id`` (or, with ``record_id``, as its
        next version). FHIR JSON is sent to the service (it validates, then seals); any
        other type is sealed here and put straight to S3. Returns the record's metadata.

        Raises:
            UsageError: no such file, or a FHIR document above what the service takes.
            ApiError: the service refused (the message says why).
        """
        path = Path(path)
        if not path.is_file():
            raise UsageError(f"{path}: no such file")
        if (patient_id is None) == (record_id is None):
            raise UsageError("give a patient id for a new record, or a record id for a version")
        if is_fhir(content_type):
            return self._upload_through_service(patient_id, record_id, path, content_type,
                                                category, title)  # fmt: skip
        recipient = RecipientKey()
        request: dict[str, Any] = {
            "content_type": content_type,
            "length": path.stat().st_size,
            "public_key": b64(recipient.public_bytes),
        }
        if record_id is None:
            request.update(category=category, title=title)
            session = self.api.post(f"/patients/{patient_id}/uploads", request)
        else:
            session = self.api.post(f"/records/{record_id}/uploads", request)
        stat = path.stat()
        journal = UploadJournal(
            path=self._journal_path(session["upload_id"]),
            upload_id=session["upload_id"],
            record_id=session["record_id"],
            version=int(session["version"]),
            encryption_context=session["key"]["encryption_context"],
            encrypted_data_key=session["key"]["encrypted_data_key"],
            salt="",
            shard_size=int(session["shard_size"]),
            length=int(session["length"]),
            content_type=content_type,
            source=str(path.resolve()),
            source_size=stat.st_size,
            source_mtime_ns=stat.st_mtime_ns,
        )
        sealer = self._sealer(journal, recipient, session["key"]["wrapped_data_key"], salt=None)
        journal.salt = b64(sealer.salt)
        journal.save()
        return self._send_and_commit(journal, sealer, progress)

    def resume(self, upload_id: str, progress: Progress | None = None) -> dict[str, Any]:
        """Finish an interrupted upload: only the shards not stored yet are sealed and
        sent (under fresh nonces), with the data key asked for again."""
        journal = UploadJournal.load(self._journal_path(upload_id))
        journal.check_source()
        status = self.api.get(f"/uploads/{upload_id}")
        if status["status"] == "committed":
            journal.path.unlink(missing_ok=True)
            return self.record(journal.record_id)
        recipient = RecipientKey()
        key = self.api.post(
            f"/uploads/{upload_id}/key", {"public_key": b64(recipient.public_bytes)}
        )["key"]
        if key["encrypted_data_key"] != journal.encrypted_data_key:
            raise RecordIntegrityError()
        sealer = self._sealer(journal, recipient, key["wrapped_data_key"], unb64(journal.salt))
        return self._send_and_commit(journal, sealer, progress)

    def pending_uploads(self) -> list[str]:
        """Upload ids with a journal here (interrupted uploads that can be resumed)."""
        folder = self.home / "uploads"
        return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []

    def download(
        self,
        record_id: str,
        dest: Path,
        *,
        version: int | None = None,
        progress: Progress | None = None,
    ) -> DownloadResult:
        """Open a record version on this device into ``dest``: written only once every
        shard and the content digest verified (``RecordIntegrityError`` otherwise, and
        nothing is left at ``dest``)."""
        downloader = RecordDownloader(
            self.api, self._s3, parallelism=self.parallelism, progress=progress
        )
        return downloader.download(record_id, version, Path(dest))

    def get_content(self, record_id: str, version: int | None = None) -> bytes:
        """A small record read through the service, checked against its ``Repr-Digest`` and
        ``Content-Length`` (``RecordIntegrityError`` if either disagrees)."""
        response = self.api.get_content(f"/records/{record_id}/content", {"version": version})
        body = response.content
        expected = response.headers.get("repr-digest", "")
        actual = f"sha-256=:{b64(hashlib.sha256(body).digest())}:"
        if expected != actual or int(response.headers.get("content-length", -1)) != len(body):
            raise RecordIntegrityError()
        return body

    # -- internals ------------------------------------------------------------------------

    def _journal_path(self, upload_id: str) -> Path:
        if not upload_id.isalnum():
            raise UsageError("an upload id is 32 hexadecimal characters")
        return self.home / "uploads" / f"{upload_id}.json"

    def _sealer(
        self, journal: UploadJournal, recipient: RecipientKey, wrapped: str, salt: bytes | None
    ) -> RecordSealer:
        context = journal.context()
        if context.record_id != journal.record_id or context.version != journal.version:
            raise RecordIntegrityError()
        try:
            data_key = recipient.unwrap(unb64(wrapped), context)
        except InvalidRecord:
            raise RecordIntegrityError() from None
        self._data_keys[journal.upload_id] = data_key
        return RecordSealer(
            context,
            data_key,
            unb64(journal.encrypted_data_key),
            length=journal.length,
            shard_size=journal.shard_size,
            salt=salt,
        )

    def _send_and_commit(
        self, journal: UploadJournal, sealer: RecordSealer, progress: Progress | None
    ) -> dict[str, Any]:
        data_key = self._data_keys.pop(journal.upload_id)
        with ThreadPoolExecutor(1, thread_name_prefix="sha256") as pool:
            hashing: Future[bytes] = pool.submit(file_sha256, journal.source)
            record = self._put_and_commit(journal, sealer, data_key, hashing, progress)
        journal.path.unlink(missing_ok=True)
        return record

    def _put_and_commit(
        self,
        journal: UploadJournal,
        sealer: RecordSealer,
        data_key: bytes,
        hashing: Future[bytes],
        progress: Progress | None,
    ) -> dict[str, Any]:
        if progress is not None and journal.stored:
            progress(sum(sealer.plaintext_size(i) for i in journal.stored))
        uploader = ShardUploader(
            self.api, self._s3, parallelism=self.parallelism, progress=progress
        )
        self.last_upload = uploader
        uploader.upload(journal, sealer)
        journal.check_source()
        manifest = sealer.manifest(journal.seals())
        context: RecordContext = journal.context()
        sha256 = hashing.result()
        box = ContentDigestKey(data_key, sealer.salt, context).seal(manifest, sha256)
        record: dict[str, Any] = self.api.post(
            f"/uploads/{journal.upload_id}/commit",
            {"manifest": manifest.to_bytes().decode("ascii"), "content_digest": b64(box)},
        )
        return record

    def _upload_through_service(
        self,
        patient_id: str | None,
        record_id: str | None,
        path: Path,
        content_type: str,
        category: str,
        title: str,
    ) -> dict[str, Any]:
        size = path.stat().st_size
        if size > MAX_SERVICE_SEALED_BYTES:
            raise UsageError(
                f"{path}: FHIR documents are validated by the service, which takes at most "
                f"{MAX_SERVICE_SEALED_BYTES} bytes"
            )
        body = path.read_bytes()
        headers = {"Content-Type": content_type}
        if record_id is None:
            headers.update({"X-Record-Category": category, "X-Record-Title": title})
            answer: dict[str, Any] = self.api.put_record(
                f"/patients/{patient_id}/records", body, headers
            )
            return answer
        self.api.put_record(f"/records/{record_id}/versions", body, headers)
        return self.record(record_id)


__all__ = ["DownloadResult", "HubClient", "UsageError"]
