"""The upload commit protocol: nothing is visible before the commit, everything after.

1. write the upload marker (``pending``);
2. seal the body as it streams in (a fresh KMS data key per version, bound to the
   record's encryption context) and put the shards to S3, ``upload_parallelism`` at a
   time, under random keys;
3. commit last, in one DynamoDB transaction run by the audit trail: the version (its
   manifest), the marker flip ``pending -> committed``, the idempotency key and the
   audit event.

A failure before the commit abandons the marker and deletes the shards already put
(best effort; the sweeper reclaims whatever a crash leaves behind). A commit whose
outcome is unknown (a timeout) is resolved by the marker: if it reads ``committed`` the
upload succeeded and its shards are kept, otherwise it is abandoned first, which makes a
late commit impossible, and only then are the shards deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from app.audit.events import (
    AuditedTransactionConflict,
    AuditEvent,
    AuditReceipt,
    TransactionalAuditTrail,
)
from app.crypto.envelope import RecordContext, ShardedEnvelope
from app.crypto.errors import KeyServiceUnavailable
from app.crypto.errors import LengthMismatch as SealedLengthMismatch
from app.errors import HubError
from app.records import errors
from app.records.repository import RecordRepository, TransactionRefused
from app.records.shards import ShardStore, StoredShard, new_upload_id
from app.records.uploads import HashingChunks, Upload

log = logging.getLogger(__name__)

# Errors of AWS calls that a later retry may fix (after botocore's own bounded retries).
RETRYABLE = (KeyServiceUnavailable, ClientError, BotoCoreError)


@dataclass(frozen=True)
class SealedUpload:
    """What the service stored for one upload it sealed itself, before the commit."""

    upload_id: str
    shards: list[StoredShard]
    manifest: bytes
    body_sha256: str  # hex, for the idempotency fingerprint (kept as an HMAC only)
    content_digest: bytes  # the SHA-256 sealed under the data key


class UploadCommit:
    def __init__(
        self,
        repository: RecordRepository,
        shards: ShardStore,
        envelope: ShardedEnvelope,
        audit: TransactionalAuditTrail,
        clock: Callable[[], datetime],
    ):
        self._repo = repository
        self._shards = shards
        self._envelope = envelope
        self._audit = audit
        self._clock = clock

    def seal_and_store(self, context: RecordContext, upload: Upload) -> SealedUpload:
        """Steps 1 and 2: the upload id, its shards, the manifest, the body's SHA-256 and
        the content digest sealed under the data key (``app.crypto.digest``).

        On any failure, abandons the upload and deletes what was put, then raises.
        """
        upload_id = new_upload_id()
        stored: list[StoredShard] = []
        self._repo.mark_upload_pending(upload_id, self._clock())
        hashing = HashingChunks(upload.chunks)
        try:
            stream = self._envelope.seal(context, hashing, upload.length or 0)
            shards = self._shards.put_all(upload_id, stream, on_stored=stored.append)
            manifest = stream.manifest.to_bytes()
            sealed_digest = stream.seal_content_digest(hashing.digest.digest())
        except Exception as exc:
            self.abandon(upload_id, stored)
            mapped = upload_error(exc)
            if mapped is exc:
                raise
            raise mapped from exc
        return SealedUpload(upload_id, shards, manifest, hashing.digest.hexdigest(), sealed_digest)

    def abandon(self, upload_id: str, stored: Sequence[StoredShard]) -> bool:
        """Give up an upload: abandon its marker, then delete its shards. Returns False
        (and deletes nothing) if the upload turns out to be committed."""
        try:
            if not self._repo.release_upload(upload_id, "abandoned"):
                return False
            self._shards.delete(stored)
        except Exception as exc:  # the sweeper reclaims what is left
            log.warning("upload %s cleanup incomplete: %s", upload_id, type(exc).__name__)
        return True

    def transact(self, event: AuditEvent, items: Sequence[Mapping[str, Any]]) -> AuditReceipt:
        """Commit ``items`` with the audit event's ledger entry in one transaction; a
        failed condition of one of ``items`` raises ``TransactionRefused``."""
        try:
            return self._audit.transact_append(event, items)
        except AuditedTransactionConflict as exc:
            raise TransactionRefused() from exc

    def commit(
        self,
        upload_id: str,
        stored: Sequence[StoredShard],
        event: AuditEvent,
        items: Sequence[Mapping[str, Any]],
    ) -> AuditReceipt | None:
        """Step 3; on failure, make sure it cannot commit later and clean up. A commit
        that in fact succeeded (lost response) returns normally, with no receipt in hand
        (the event is in the trail all the same)."""
        try:
            return self.transact(event, items)
        except TransactionRefused:
            self.abandon(upload_id, stored)
            raise
        except Exception as exc:
            if self.abandon(upload_id, stored) or (
                (self._repo.upload_status(upload_id) or {}).get("status") != "committed"
            ):
                mapped = upload_error(exc)
                if mapped is exc:
                    raise
                raise mapped from exc
            log.info("upload %s commit outcome recovered: committed", upload_id)
            return None


def upload_error(exc: Exception) -> Exception:
    """The client-facing error for a failed upload (nothing was stored)."""
    if isinstance(exc, HubError):
        return exc
    if isinstance(exc, SealedLengthMismatch):
        return errors.LengthMismatch()
    if isinstance(exc, RETRYABLE):
        return errors.StorageUnavailable()
    return exc
