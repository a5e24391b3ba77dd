"""The one TOTP generator (app/crypto/totp.py): RFC 6238's SHA-1 vectors, and both of its
callers (the doctor's client, the local platform's demo sign-ins) answer with it."""

from __future__ import annotations

import base64

import pytest

from app.crypto.totp import totp_now

# RFC 6238 Appendix B, SHA-1 (the 8-digit values' last six digits)
SECRET = base64.b32encode(b"12345678901234567890").decode()
VECTORS = [(59, "287082"), (1111111109, "081804"), (1234567890, "005924"), (2000000000, "279037")]


@pytest.mark.parametrize(("at", "code"), VECTORS)
def test_rfc_6238_vectors(at: int, code: str) -> None:
    assert totp_now(SECRET, at=at) == code
    # authenticator apps show secrets lower-case and unpadded; Cognito's come unpadded
    assert totp_now(SECRET.lower().rstrip("="), at=at) == code


def test_the_client_and_the_local_platform_use_it() -> None:
    from app.local import totp_code
    from hubclient.auth import totp_now as client_totp

    assert client_totp is totp_now
    for at, code in VECTORS:
        assert totp_code(SECRET, at=at) == code
