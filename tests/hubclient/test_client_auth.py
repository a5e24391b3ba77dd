"""Signing a doctor in (SRP, then TOTP) and keeping the tokens owner-only, refreshed.

Against the session's moto server: moto answers USER_SRP_AUTH and the TOTP challenges (it
checks TOTP codes with MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP), but it does not verify the
SRP password proof, so a wrong password is not a test here (the gap is recorded by the
local gateway's work in infra/emulator/gaps.py)."""

from __future__ import annotations

import json
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from app import local
from hubclient.auth import CognitoAuth, Tokens, TokenSession, TokenStore, totp_now
from hubclient.errors import SignInError, UsageError

PASSWORD = "Synthetic-Passw0rd-2026!"


@pytest.fixture(scope="module")
def pool(moto_endpoint: str) -> Iterator[dict[str, Any]]:
    saved = os.environ.get("MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP")
    os.environ["MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP"] = "true"
    cognito = boto3.client("cognito-idp", region_name="ap-east-1", endpoint_url=moto_endpoint)
    pool_id, client_id = local.create_user_pool(cognito, f"client-{uuid.uuid4().hex[:6]}")
    for name in ("dr-enrolled", "dr-new"):
        local.create_user(
            cognito, pool_id, name, PASSWORD, groups=["doctor"], reg_no="M20001", institution="i"
        )
    tokens = local.login(cognito, pool_id, client_id, "dr-enrolled", PASSWORD)
    secret = local.enrol_totp(cognito, pool_id, "dr-enrolled", tokens["AccessToken"])
    try:
        yield {"pool_id": pool_id, "client_id": client_id, "endpoint": moto_endpoint,
               "secret": secret}  # fmt: skip
    finally:
        if saved is None:
            os.environ.pop("MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP", None)
        else:
            os.environ["MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP"] = saved


def _auth(pool: dict[str, Any]) -> CognitoAuth:
    return CognitoAuth(
        pool["pool_id"], pool["client_id"], api_url="http://api", endpoint_url=pool["endpoint"]
    )


def test_srp_then_totp_signs_in_without_aws_credentials(
    pool: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    asked: list[str] = []

    def code() -> str:
        asked.append("code")
        return totp_now(pool["secret"])

    tokens = _auth(pool).sign_in("dr-enrolled", PASSWORD, code)
    assert asked == ["code"] and tokens.access_token and tokens.refresh_token
    assert tokens.access_token not in repr(tokens)


def test_a_wrong_authenticator_code_is_refused(pool: dict[str, Any]) -> None:
    wrong = f"{(int(totp_now(pool['secret'])) + 1) % 1_000_000:06d}"
    with pytest.raises(SignInError, match="CodeMismatch"):
        _auth(pool).sign_in("dr-enrolled", PASSWORD, lambda: wrong)


def test_a_code_from_a_window_that_ended_is_asked_again_once(pool: dict[str, Any]) -> None:
    """A code read just before its window ended reaches Cognito in the next one: the client
    signs in again with a fresh code (once), as a doctor types the next code shown."""
    import time

    asked: list[str] = []

    def code() -> str:
        stale = not asked
        asked.append("code")
        return totp_now(pool["secret"], at=time.time() - 60 if stale else None)

    tokens = _auth(pool).sign_in("dr-enrolled", PASSWORD, code)
    assert asked == ["code", "code"] and tokens.access_token

    asked.clear()
    wrong = f"{(int(totp_now(pool['secret'])) + 1) % 1_000_000:06d}"

    def always_wrong() -> str:
        asked.append("code")
        return wrong

    with pytest.raises(SignInError, match="CodeMismatch"):
        _auth(pool).sign_in("dr-enrolled", PASSWORD, always_wrong)
    assert asked == ["code", "code"]


def test_a_first_sign_in_enrols_an_authenticator(pool: dict[str, Any]) -> None:
    enrolled: dict[str, str] = {}

    def enrol(secret: str) -> str:
        enrolled["secret"] = secret
        return totp_now(secret)

    with pytest.raises(SignInError, match="no authenticator"):
        _auth(pool).sign_in("dr-new", PASSWORD, lambda: "000000")
    _auth(pool).sign_in("dr-new", PASSWORD, lambda: "000000", enrol=enrol)
    # The next sign-in is challenged for a code from the enrolled app.
    tokens = _auth(pool).sign_in("dr-new", PASSWORD, lambda: totp_now(enrolled["secret"]))
    assert tokens.access_token


def test_tokens_are_refreshed_before_they_expire_and_saved(
    pool: dict[str, Any], tmp_path: Path
) -> None:
    auth = _auth(pool)
    tokens = auth.sign_in("dr-enrolled", PASSWORD, lambda: totp_now(pool["secret"]))
    store = TokenStore(tmp_path / "home" / "tokens.json")
    store.save(tokens)
    now = {"t": tokens.expires_at - 3600}
    session = TokenSession(tokens, store=store, auth=auth, clock=lambda: now["t"])
    assert session.access_token() == tokens.access_token  # an hour left: no refresh
    now["t"] = tokens.expires_at - 30
    fresh = session.access_token()
    assert fresh != tokens.access_token
    saved = store.load()
    assert saved is not None and saved.access_token == fresh
    assert saved.refresh_token == tokens.refresh_token


def _tokens() -> Tokens:
    return Tokens("dr-x", "pool", "client", "http://api", "a.b.c", "i.d.t", "refresh", 1.0)


def test_the_token_file_is_owner_only_and_a_readable_one_is_refused(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "home" / "tokens.json")
    store.save(_tokens())
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
    assert store.load() == _tokens()
    os.chmod(store.path, 0o640)
    with pytest.raises(UsageError, match="readable by other users"):
        store.load()
    store.path.write_text(json.dumps({"not": "tokens"}))
    os.chmod(store.path, 0o600)
    with pytest.raises(UsageError, match="not a token file"):
        store.load()
    store.clear()
    assert store.load() is None


def _jwt(claims: dict[str, Any]) -> str:
    import base64

    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"e30.{body}.sig"


def test_a_token_is_refreshed_15_minutes_after_it_was_issued_whatever_its_expiry() -> None:
    from hubclient.auth import _expiry

    assert _expiry(_jwt({"iat": 1000, "exp": 1000 + 3600})) == 1000 + 900
    assert _expiry(_jwt({"iat": 1000, "exp": 1000 + 300})) == 1000 + 300


def test_a_refused_token_is_refreshed_once_and_the_request_sent_again() -> None:
    import httpx

    from hubclient.api import HubApi

    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        if request.headers["Authorization"] == "Bearer old":
            return httpx.Response(401, json={"error": {"code": "unauthenticated", "message": "x"}})
        return httpx.Response(200, json={"username": "dr-x"})

    class Tokens:
        token = "old"

        def access_token(self) -> str:
            return self.token

        def refresh(self) -> bool:
            self.token = "new"
            return True

    http = httpx.Client(base_url="http://api", transport=httpx.MockTransport(answer))
    assert HubApi(http, Tokens()).get("/me") == {"username": "dr-x"}
    assert seen == ["Bearer old", "Bearer new"]
