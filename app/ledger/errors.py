"""Typed errors of the audit ledger.

Verification failures all derive from :class:`LedgerVerificationError`, so a verifier can
catch one class and still report precisely what failed. Messages carry sizes, indices and
field names only, never entry content, so they are safe to log.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base class of every error raised by ``app.ledger``."""


class LedgerVerificationError(LedgerError):
    """A proof, root or hash did not verify. Never ignore it: the log may be forged."""


class InvalidHashLength(LedgerVerificationError):
    """A leaf hash, root or proof element is not a 32-byte SHA-256 digest."""


class IndexOutOfRange(LedgerVerificationError):
    """A leaf index is not in [0, tree size)."""


class InvalidTreeSize(LedgerVerificationError):
    """Tree sizes are inconsistent (for example an old size larger than the new size)."""


class InvalidProofLength(LedgerVerificationError):
    """The proof has more or fewer hashes than RFC 9162 prescribes for these sizes."""


class RootMismatch(LedgerVerificationError):
    """The root recomputed from the proof differs from the root it was checked against."""


class NodeNotFound(LedgerError):
    """A node store does not hold a node that the requested proof needs.

    Raised when a proof is asked for a size larger than the store's tree, or when the
    store has lost nodes (which, for a durable store, is itself evidence of tampering).
    """


class InvalidEntry(LedgerError, ValueError):
    """An audit entry is malformed, non-canonical, or carries a field it must not carry."""


class LedgerBusy(LedgerError):
    """Other writers kept taking the tail: nothing was stored; the request may be retried
    (the API answers 503 ``ledger_busy`` with ``Retry-After``)."""

    def __init__(self) -> None:
        super().__init__("the audit ledger is busy: nothing was recorded, retry shortly")
