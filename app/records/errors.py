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


class RecordsNotConfigured(HubError):
    status_code = 503
    code = "records_not_configured"
    message = "Record storage is not configured in this deployment."


class RecordIntegrityError(HubError):
    """The stored record failed verification or decryption (deliberately opaque)."""

    status_code = 500
    code = "record_integrity_failure"
    message = "The record failed verification; no content was released."
