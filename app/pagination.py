"""Opaque, tamper-evident cursors for the service's paginated listings.

A listing returns at most ``limit`` items and, when more may follow, a ``cursor`` that the
client passes back unchanged. The cursor holds the position to continue after (a sort key:
timestamps and ids the caller may see anyway) and an HMAC binding it to the listing and
the caller it was issued to, so a client cannot forge a position in another partition
or reuse another doctor's cursor; anything else is a 422 ``invalid_cursor``.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from app.errors import HubError

DEFAULT_LIMIT = 25
MAX_LIMIT = 100
_TAG_BYTES = 16


class InvalidCursor(HubError):
    status_code = 422
    code = "invalid_cursor"
    message = "The cursor is not one this listing issued; start again without it."


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Cursors:
    """Issues and checks cursors under a key derived from the service's secret."""

    def __init__(self, secret: bytes):
        self._key = hmac.digest(secret, b"hub/pagination-cursor/v1", "sha256")

    def _tag(self, scope: str, position: bytes) -> bytes:
        message = scope.encode("utf-8") + b"\x00" + position
        return hmac.digest(self._key, message, "sha256")[:_TAG_BYTES]

    def encode(self, scope: str, position: str | None) -> str | None:
        """The cursor for ``position`` in the listing ``scope`` (None: nothing follows)."""
        if position is None:
            return None
        raw = position.encode("utf-8")
        return f"{_b64(raw)}.{_b64(self._tag(scope, raw))}"

    def decode(self, scope: str, cursor: str | None) -> str | None:
        """The position a cursor of this listing holds; raises ``InvalidCursor``."""
        if cursor is None:
            return None
        try:
            body, tag = cursor.split(".", 1)
            raw = _unb64(body)
            ok = hmac.compare_digest(_unb64(tag), self._tag(scope, raw))
            position = raw.decode("utf-8")
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise InvalidCursor() from None
        if not ok:
            raise InvalidCursor()
        return position
