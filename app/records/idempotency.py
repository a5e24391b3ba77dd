"""Idempotency keys: a retried upload returns the original record, never a copy.

A client's ``Idempotency-Key`` is stored only as an HMAC bound to the principal (one
doctor's key never answers another's request), next to a fingerprint of the request:
operation, subject (patient or record), type, length and the body's SHA-256, also an
HMAC under the deployment's key. A retry with the same key and the same request is
answered from the stored outcome; the same key with another request is a 409. The key
is claimed in the upload's commit transaction, so of two concurrent requests with one
key exactly one commits, and the other is answered as its replay.
"""

from __future__ import annotations

import hashlib
import hmac

from app.errors import Conflict, NotFound
from app.identity.principal import Principal
from app.records import errors
from app.records.repository import (
    IdempotencyEntry,
    RecordRepository,
    RecordState,
    TransactionRefused,
)
from app.records.uploads import Upload, drain_sha256


class Idempotency:
    def __init__(self, repository: RecordRepository, hash_key: bytes):
        self._repo = repository
        self._key = hash_key

    def fingerprint(self, operation: str, subject: str, upload: Upload, body_sha256: str) -> str:
        message = "\x1f".join(
            ["hub-records-idempotency/1", operation, subject, upload.content_type,
             str(upload.length), body_sha256]
        )  # fmt: skip
        return hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()

    def key_hash(self, principal: Principal, key: str) -> str:
        """The stored form of ``principal``'s key (an HMAC bound to the principal)."""
        return self._key_hash(principal, key)

    def _key_hash(self, principal: Principal, key: str) -> str:
        message = f"hub-records-idempotency-key/1\x1f{principal.sub}\x1f{key}"
        return hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()

    def earlier(self, principal: Principal, upload: Upload) -> tuple[str, IdempotencyEntry | None]:
        """(key hash, the earlier outcome) for an Idempotency-Key; ("", None) without one."""
        if upload.idempotency_key is None:
            return "", None
        key_hash = self._key_hash(principal, upload.idempotency_key)
        return key_hash, self._repo.idempotency(key_hash)

    def replay(
        self,
        entry: IdempotencyEntry,
        upload: Upload,
        operation: str,
        subject: str,
        body_sha256: str | None = None,
    ) -> RecordState:
        """The state an earlier request with this key produced, if this one is the same
        request (same operation, subject, type, length and body); else 409."""
        digest = body_sha256 if body_sha256 is not None else drain_sha256(upload)
        if not hmac.compare_digest(
            self.fingerprint(operation, subject, upload, digest), entry.fingerprint
        ):
            raise errors.IdempotencyKeyReused()
        state = self._repo.load(entry.record_id)
        if state is None:  # pragma: no cover - the entry commits with the record
            raise NotFound("No such record.")
        return state

    def entry(self, key_hash: str) -> IdempotencyEntry | None:
        return self._repo.idempotency(key_hash)

    def replay_entry(self, entry: IdempotencyEntry, fingerprint: str) -> RecordState:
        """The record an earlier request under this key filed, if ``fingerprint`` is that
        request's; else 409 (community-care intake, whose fingerprint is the source's)."""
        if not hmac.compare_digest(fingerprint, entry.fingerprint):
            raise errors.IdempotencyKeyReused()
        state = self._repo.load(entry.record_id)
        if state is None:  # pragma: no cover - the entry commits with the record
            raise NotFound("No such record.")
        return state

    def after_refusal(self, refused: TransactionRefused, key_hash: str) -> IdempotencyEntry:
        """A refused commit: a concurrent request with the same Idempotency-Key won (its
        entry is returned, to answer as its replay), or the record changed meanwhile."""
        entry = self._repo.idempotency(key_hash) if key_hash else None
        if entry is None:
            raise Conflict(
                "The record changed meanwhile; retry.", code="concurrent_change"
            ) from refused
        return entry
