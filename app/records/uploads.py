"""A request body on its way in, and the checks it passes before anything is stored.

:class:`Upload` carries the declared type and length and the body as chunks;
:func:`check_upload` refuses a wrong type (415), a missing or too large length (411,
413) and invalid FHIR JSON (422) before anything is stored: opaque bodies keep
streaming, FHIR is buffered (up to ``MAX_FHIR_BYTES``) and validated first.
:class:`HashingChunks` measures what passes through (SHA-256 and byte count) without
holding it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from app.content import MAX_FHIR_BYTES, is_fhir, validate_upload
from app.records import errors


@dataclass(frozen=True)
class Upload:
    """A request body on its way in: declared type and length, and its bytes."""

    content_type: str
    length: int | None
    chunks: Iterable[bytes]
    idempotency_key: str | None = None


class HashingChunks:
    """Wraps a chunk source: SHA-256 of what passed through, and its byte count."""

    def __init__(self, chunks: Iterable[bytes]):
        self._chunks = chunks
        self.digest = hashlib.sha256()
        self.count = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self.digest.update(chunk)
            self.count += len(chunk)
            yield chunk


def check_upload(upload: Upload, max_record_bytes: int) -> Upload:
    """Type, length and (for FHIR) content, before anything is stored; a FHIR upload
    comes back with its body buffered."""
    if upload.length is None:
        raise errors.LengthRequired()
    if upload.length > max_record_bytes:
        raise errors.RecordTooLarge(f"A record version is limited to {max_record_bytes} bytes.")
    if not is_fhir(upload.content_type):
        validate_upload(upload.content_type, b"")  # the type only: opaque bodies stream
        return upload
    if upload.length > MAX_FHIR_BYTES:
        raise errors.RecordTooLarge(
            f"FHIR JSON is validated in memory and is limited to {MAX_FHIR_BYTES} bytes."
        )
    body = bytearray()
    for chunk in upload.chunks:
        body += chunk
        if len(body) > upload.length:
            raise errors.LengthMismatch()
    if len(body) != upload.length:
        raise errors.LengthMismatch()
    validate_upload(upload.content_type, bytes(body))
    return replace(upload, chunks=[bytes(body)])


def drain_sha256(upload: Upload) -> str:
    """SHA-256 of the whole body, read to its end; it must be exactly its declared length."""
    hashing = HashingChunks(upload.chunks)
    for _ in hashing:
        if hashing.count > (upload.length or 0):
            raise errors.LengthMismatch()
    if hashing.count != upload.length:
        raise errors.LengthMismatch()
    return hashing.digest.hexdigest()


def media_essence(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()
