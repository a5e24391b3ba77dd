"""Errors of the record routes, in the service's one error envelope.

Messages are fixed strings: they never echo a body, a header value or patient data. Every
integrity or decryption failure of a stored record becomes the one opaque
:class:`RecordIntegrityError`, whatever check failed.
"""

from __future__ import annotations

from app.errors import HubError


class LengthRequired(HubError):
    status_code = 411
    code = "length_required"
    message = "Content-Length is required: uploads are sealed against their declared length."


class LengthMismatch(HubError):
    status_code = 400
    code = "length_mismatch"
    message = "The body's length does not match Content-Length; nothing was stored."


class BodyIncomplete(HubError):
    status_code = 400
    code = "body_incomplete"
    message = "The upload ended before the declared length was received; nothing was stored."


class RecordTooLarge(HubError):
    status_code = 413
    code = "record_too_large"


class RecordGone(HubError):
    status_code = 410
    code = "record_version_shredded"
    message = "This record version was crypto-shredded; its content cannot be recovered."


class IdempotencyKeyReused(HubError):
    status_code = 409
    code = "idempotency_key_reused"
    message = "This Idempotency-Key was already used for a different request."


class StorageUnavailable(HubError):
    """Storage or the key service throttled or failed after bounded retries (retryable)."""

    status_code = 503
    code = "storage_unavailable"
    message = "Record storage is busy or unavailable; retry with the same Idempotency-Key."
    retry_after = 1


class RecordsNotConfigured(HubError):
    status_code = 503
    code = "records_not_configured"
    message = "Record storage is not configured in this deployment."


class RecordIntegrityError(HubError):
    """The stored record failed verification or decryption (deliberately opaque)."""

    status_code = 500
    code = "record_integrity_failure"
    message = "The record failed verification; no content was released."


class UploadNotPending(HubError):
    status_code = 409
    code = "upload_not_pending"
    message = "This upload session was committed, abandoned or swept; start a new one."


class UploadExpired(HubError):
    status_code = 410
    code = "upload_expired"
    message = "This upload session has expired; start a new one."


class ShardsNotStored(HubError):
    """Some shard of a committed manifest is missing or differs from what was issued."""

    status_code = 409
    code = "shards_not_stored"


class InvalidManifest(HubError):
    """The committed manifest is not this session's record version (deliberately opaque)."""

    status_code = 422
    code = "invalid_manifest"
    message = "The manifest does not match this upload session; nothing was stored."


class InvalidShardRequest(HubError):
    status_code = 422
    code = "invalid_shard"


class SealedOnService(HubError):
    """FHIR documents are validated, so they are sealed by the service (within the caps)."""

    status_code = 415
    code = "sealed_by_service_only"
    message = (
        "FHIR JSON is validated by the service before it is sealed: send it with "
        "POST /patients/{patient_id}/records (or POST /records/{record_id}/versions)."
    )


class InvalidPublicKey(HubError):
    status_code = 422
    code = "invalid_public_key"
    message = "public_key must be an uncompressed P-256 point (65 bytes, base64)."


class TooLargeForInline(HubError):
    """A record above the inline cap is opened on the client (download tickets)."""

    status_code = 413
    code = "record_too_large_for_inline"
    message = (
        "This record is larger than the service sends in one response: open it with "
        "POST /records/{record_id}/downloads."
    )
