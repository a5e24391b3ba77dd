"""Errors raised by the sealed-record format.

Guarantees: every integrity or decryption failure surfaces as the one opaque
:class:`InvalidRecord`, whose message is fixed and carries no detail about which check
failed, no identifier and no content (like pyca/cryptography's ``InvalidToken``). It is
raised ``from None`` so no inner exception rides along into logs. The other errors are
caller or availability problems, never integrity verdicts, and never carry record content.
"""

from __future__ import annotations


class SealedRecordError(Exception):
    """Base class of every error raised by ``app.crypto``."""


class InvalidRecord(SealedRecordError):
    """The sealed record could not be verified or decrypted (deliberately opaque)."""

    def __init__(self) -> None:
        super().__init__("sealed record failed verification")


class LengthMismatch(SealedRecordError, ValueError):
    """The source produced a different number of bytes than the declared length."""

    def __init__(self) -> None:
        super().__init__("source length does not match the declared length")


class SealNotFinished(SealedRecordError):
    """The manifest was requested before every shard of the record had been sealed."""

    def __init__(self) -> None:
        super().__init__("manifest is only available after every shard has been sealed")


class KeyServiceUnavailable(SealedRecordError):
    """The key service could not be reached or throttled the call; retrying may succeed.

    Not an integrity verdict: the storage layer retries it with backoff.
    """

    def __init__(self, operation: str) -> None:
        super().__init__(f"key service unavailable during {operation}")
