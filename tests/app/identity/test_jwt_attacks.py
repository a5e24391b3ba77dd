"""Attacks on bearer tokens: each must be a 401, with the same opaque error.

Every attack runs twice (the ``api`` fixture): against the app served directly, and
through the local API gateway built from the program's declaration, where either the
Cognito authorizer refuses it (API Gateway's own ``{"message": "Unauthorized"}``) or it
passes the authorizer and the service refuses it (a wrong client id, a token older than
the declared validity: checks API Gateway does not make).

Forged tokens are signed with moto's own Cognito signing key (moto ships it), so a
token that differs from a genuine one in a single claim proves that exactly that
claim is checked; the positive control shows such a forged token is otherwise
accepted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import boto3
import httpx
import pytest
from hub_testkit import PASSWORD, Hub
from joserfc import jwt
from joserfc.jwk import RSAKey
from moto.utilities.utils import load_resource

from app import local
from app.identity.tokens import InvalidToken, JwksSource

MOTO_KEY = RSAKey.import_key(load_resource("cognitoidp/resources/jwks-private.json"))
USER = "dr-outsider"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def forge(
    hub: Hub, key: Any = MOTO_KEY, header: dict[str, Any] | None = None, **changes: Any
) -> str:
    claims = claims_of(hub.people[USER].token)
    claims.update(changes)
    for name, value in changes.items():
        if value is None:
            del claims[name]
    return jwt.encode(header or {"alg": "RS256", "kid": "dummy"}, claims, key)


APP_REFUSAL = {"error": {"code": "unauthenticated", "message": "A valid bearer token is required."}}
GATEWAY_REFUSAL = {"message": "Unauthorized"}


def status(api: httpx.Client, token: str) -> int:
    response = api.get("/me", headers={"Authorization": f"Bearer {token}"})
    if response.status_code == 401:
        if response.json() == GATEWAY_REFUSAL:  # the gateway's Cognito authorizer
            assert response.headers["x-amzn-errortype"] == "UnauthorizedException"
        else:
            assert response.json() == APP_REFUSAL
            assert response.headers["WWW-Authenticate"] == "Bearer"
    return response.status_code


def test_positive_control_a_forged_token_with_genuine_claims_is_accepted(
    hub: Hub, api: httpx.Client
) -> None:
    assert status(api, forge(hub)) == 200
    assert status(api, hub.people[USER].token) == 200


def test_alg_none(hub: Hub, api: httpx.Client) -> None:
    genuine = hub.people[USER].token
    header = b64(json.dumps({"alg": "none", "kid": "dummy", "typ": "JWT"}).encode())
    assert status(api, f"{header}.{genuine.split('.')[1]}.") == 401


def test_hs256_signed_with_the_public_key(hub: Hub, api: httpx.Client) -> None:
    # joserfc refuses to build this key at all, so the attacker's token is made by hand.
    public_pem = MOTO_KEY.as_pem(private=False)
    header = b64(json.dumps({"alg": "HS256", "kid": "dummy", "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims_of(hub.people[USER].token)).encode())
    mac = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    assert status(api, f"{header}.{payload}.{b64(mac)}") == 401


def test_unknown_kid(hub: Hub, api: httpx.Client) -> None:
    attacker = RSAKey.generate_key(2048, parameters={"kid": "attacker"})
    assert status(api, forge(hub, attacker, {"alg": "RS256", "kid": "attacker"})) == 401


def test_right_kid_wrong_key(hub: Hub, api: httpx.Client) -> None:
    attacker = RSAKey.generate_key(2048, parameters={"kid": "dummy"})
    assert status(api, forge(hub, attacker)) == 401


def test_wrong_issuer(hub: Hub, api: httpx.Client) -> None:
    issuer = "https://cognito-idp.ap-east-1.amazonaws.com/ap-east-1_attacker"
    assert status(api, forge(hub, iss=issuer)) == 401


def test_wrong_client(hub: Hub, api: httpx.Client) -> None:
    assert status(api, forge(hub, client_id="another-client")) == 401


def test_missing_client(hub: Hub, api: httpx.Client) -> None:
    assert status(api, forge(hub, client_id=None)) == 401


def test_id_token_where_an_access_token_is_required(hub: Hub, api: httpx.Client) -> None:
    assert claims_of(hub.people[USER].id_token)["token_use"] == "id"
    assert status(api, hub.people[USER].id_token) == 401


def test_access_token_relabelled_as_id_token(hub: Hub, api: httpx.Client) -> None:
    assert status(api, forge(hub, token_use="id")) == 401


def test_expired(hub: Hub, api: httpx.Client) -> None:
    now = int(time.time())
    assert status(api, forge(hub, iat=now - 7200, exp=now - 3600)) == 401


def test_expired_just_beyond_leeway(hub: Hub, api: httpx.Client) -> None:
    now = int(time.time())
    leeway = hub.settings.token_leeway_seconds
    assert status(api, forge(hub, exp=now - leeway - 5)) == 401
    # The service allows clock skew; API Gateway admits no expired token at all.
    within_leeway = 200 if api is hub.client else 401
    assert status(api, forge(hub, exp=now - leeway + 10)) == within_leeway


def test_token_older_than_the_declared_validity_is_refused(hub: Hub, api: httpx.Client) -> None:
    """moto's tokens live an hour; the app client declares 15 minutes. The service refuses
    a token issued longer ago than its max age, even before the token expires."""
    now = int(time.time())
    max_age, leeway = hub.settings.max_token_age_seconds, hub.settings.token_leeway_seconds
    assert status(api, forge(hub, iat=now - max_age - leeway - 5, exp=now + 600)) == 401
    assert status(api, forge(hub, iat=now - max_age + 60, exp=now + 600)) == 200


def test_max_token_age_is_the_declared_client_validity() -> None:
    from app.settings import Settings
    from infra.components.identity import ACCESS_TOKEN_MINUTES
    from infra.mockrun import run_program

    assert Settings(mode="local").max_token_age_seconds == ACCESS_TOKEN_MINUTES * 60
    function = run_program("phase1-specialist").named("service-api-function")
    env = function.inputs["environment"]["variables"]
    assert env["HUB_MAX_TOKEN_AGE_SECONDS"] == str(ACCESS_TOKEN_MINUTES * 60)


def test_verifier_age_check_switched_off_admits_an_old_token(hub: Hub) -> None:
    """The switch-off: without max_age, a token older than the declared validity passes."""
    token = hub.people[USER].token
    iat = claims_of(token)["iat"]
    jwks = JwksSource(hub.settings.jwks_url())

    def verifier(max_age: int | None) -> Any:
        from app.identity.tokens import AccessTokenVerifier

        return AccessTokenVerifier(
            issuer=hub.settings.cognito_issuer,
            client_id=hub.client_id,
            jwks=jwks,
            leeway=0,
            clock=lambda: iat + 901,
            max_age=max_age,
        )

    with pytest.raises(InvalidToken, match="older_than_declared_validity"):
        verifier(900).verify(token)
    assert verifier(None).verify(token).username == USER


def test_not_yet_valid(hub: Hub, api: httpx.Client) -> None:
    now = int(time.time())
    assert status(api, forge(hub, nbf=now + 3600)) == 401


def test_issued_in_the_future(hub: Hub, api: httpx.Client) -> None:
    now = int(time.time())
    assert status(api, forge(hub, iat=now + 3600, exp=now + 7200)) == 401


def test_tampered_payload(hub: Hub, api: httpx.Client) -> None:
    header, _, signature = hub.people[USER].token.split(".")
    claims = claims_of(hub.people[USER].token)
    claims["username"] = "dr-lead"
    claims["cognito:groups"] = ["doctor", "platform_admin"]
    payload = b64(json.dumps(claims).encode())
    assert status(api, f"{header}.{payload}.{signature}") == 401


def test_token_from_another_user_pool(hub: Hub, api: httpx.Client) -> None:
    cognito = boto3.client("cognito-idp", region_name="ap-east-1", endpoint_url=hub.endpoint)
    pool_id, client_id = local.create_user_pool(cognito, "another-pool")
    local.create_user(
        cognito,
        pool_id,
        USER,
        PASSWORD,
        groups=["doctor"],
        reg_no="M20004",
        institution="harbour-cardiac-alliance",
    )
    foreign = local.login(cognito, pool_id, client_id, USER, PASSWORD)["AccessToken"]
    # Same username, same signing key on the emulator: only iss and client_id differ.
    assert claims_of(foreign)["username"] == USER
    assert status(api, foreign) == 401


@pytest.mark.parametrize(
    "value",
    ["", "a.b", "a.b.c", "Bearer", "x" * 5000, "e30.e30.", "%%%.%%%.%%%"],
)
def test_garbage(hub: Hub, api: httpx.Client, value: str) -> None:
    # Over HTTP a header value cannot end in a space: "Bearer " travels as "Bearer".
    response = api.get("/me", headers={"Authorization": f"Bearer {value}".strip()})
    assert response.status_code == 401


def test_other_schemes_are_refused(hub: Hub, api: httpx.Client) -> None:
    token = hub.people[USER].token
    assert api.get("/me", headers={"Authorization": f"Basic {token}"}).status_code == 401
    assert api.get("/me", headers={"Authorization": token}).status_code == 401


class CountingFetch:
    def __init__(self, keys: list[dict[str, Any]]):
        self.keys = keys
        self.calls = 0

    def __call__(self, _url: str) -> dict[str, Any]:
        self.calls += 1
        return {"keys": self.keys}


def test_jwks_is_cached_and_refreshed_once_on_an_unknown_kid() -> None:
    key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    rotated = RSAKey.generate_key(2048, parameters={"kid": "k2"})
    fetch = CountingFetch([key.as_dict(private=False)])
    now = [0.0]
    source = JwksSource("https://example.invalid/jwks", fetch=fetch, clock=lambda: now[0])
    source.key_set_for("k1")
    source.key_set_for("k1")
    assert fetch.calls == 1  # cached
    fetch.keys = [key.as_dict(private=False), rotated.as_dict(private=False)]
    now[0] = 60.0
    source.key_set_for("k2")  # unknown kid: one refresh finds the rotated key
    assert fetch.calls == 2
    with pytest.raises(InvalidToken):
        source.key_set_for("forged")
    with pytest.raises(InvalidToken):
        source.key_set_for("forged-again")
    # Unknown kids within the refresh interval do not hammer the JWKS endpoint.
    assert fetch.calls == 2
    now[0] = 200.0
    with pytest.raises(InvalidToken):
        source.key_set_for("forged")
    assert fetch.calls == 3
