"""The client's errors. Messages never carry record content or tokens."""

from __future__ import annotations


class HubClientError(Exception):
    """Base of every error the client raises on purpose."""


class UsageError(HubClientError):
    """Bad input from the caller (a missing file, an unknown option value)."""


class SignInError(HubClientError):
    """Cognito refused the sign-in, or a challenge could not be answered."""


class ApiError(HubClientError):
    """The service refused a request: its status and its ``{"error": {code, message}}``."""

    def __init__(self, status: int, code: str, message: str):
        self.status = status
        self.code = code
        self.message = message
        super().__init__(f"{code} (HTTP {status}): {message}")


class RecordIntegrityError(HubClientError):
    """The record failed verification; nothing of it was kept (deliberately opaque, like
    the service's ``record_integrity_failure``: no detail of which check failed)."""

    def __init__(self) -> None:
        super().__init__("the record failed verification; nothing was kept")


class StorageError(HubClientError):
    """S3 refused or failed a shard transfer after retries (the upload can be resumed)."""
