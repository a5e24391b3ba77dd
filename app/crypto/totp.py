"""Authenticator-app codes: RFC 6238 TOTP, as Cognito's software-token MFA expects them.

The one generator of the project: the doctor's client (``hubclient``, for a person whose
secret it holds) and the local platform's demo sign-ins (``app.local``) both call it.
It lives beside the sealed-record format because that is the one package of ``app``
the doctor's client may import (pyproject's ``client-shares-only-the-format``). The
service never verifies a code: Cognito does.
"""

from __future__ import annotations

import base64
import time

from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor.totp import TOTP


def totp_now(secret: str, at: float | None = None) -> str:
    """The 6-digit code of a base32 TOTP secret (RFC 6238: SHA-1, 30 s) at ``at`` (Unix
    seconds; now if None), as an authenticator app computes it.

    Raises:
        binascii.Error: ``secret`` is not base32.
    """
    key = base64.b32decode(secret + "=" * (-len(secret) % 8), casefold=True)
    # RFC 6238 authenticator apps use SHA-1: the protocol, not a choice.
    totp = TOTP(key, 6, SHA1(), 30, enforce_key_length=False)  # noqa: S303
    return totp.generate(int(at if at is not None else time.time())).decode()
