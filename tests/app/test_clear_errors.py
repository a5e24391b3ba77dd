"""Clear errors where opaque ones were: an unreachable JWKS and non-ASCII path ids.

- The user pool's key set cannot be fetched: every authenticated request is a 503
  ``identity_provider_unavailable`` with ``Retry-After`` (not a 500, and not a 401: the
  token is not at fault), directly and through the local gateway. The endpoint is a
  real closed loopback port, so the real fetch path (httpx) is what fails.
- An id in the path that is not the service's format (non-ASCII, percent-encoded UTF-8)
  is a 4xx with the error body on every route that takes one, not a 500 (the record
  routes, which need record storage, are in ``records/test_record_path_ids.py``).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from fastapi.testclient import TestClient
from hub_testkit import ODD_IDS, Hub, assert_refused_clearly, gateway_record
from joserfc.jwk import RSAKey

from app.dependencies import build_services
from app.identity.tokens import InvalidToken, JwksSource, KeySetUnavailable
from app.main import create_app, lambda_handler_for
from infra.emulator.gateway import LocalGateway

UNAVAILABLE = "identity_provider_unavailable"


def closed_loopback_url() -> str:
    """A loopback URL nothing listens on (the port is bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/.well-known/jwks.json"


# ---- the key source on its own -------------------------------------------------------------


def test_an_unreachable_jwks_is_unavailable_not_an_invalid_token() -> None:
    source = JwksSource(closed_loopback_url())
    with pytest.raises(KeySetUnavailable) as raised:
        source.key_set_for("any-kid")
    assert raised.value.retry_after >= 1
    assert not isinstance(raised.value, InvalidToken)


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        ValueError("not json"),
    ],
    ids=["refused", "timeout", "not-json"],
)
def test_a_failed_fetch_backs_off_then_recovers(failure: Exception) -> None:
    calls: list[str] = []
    now = [0.0]
    good = {"keys": [RSAKey.generate_key(2048, parameters={"kid": "k0"}).as_dict(private=False)]}

    def fetch(url: str) -> dict[str, Any]:
        calls.append(url)
        if len(calls) == 1:
            raise failure
        return good

    source = JwksSource("https://example.invalid/jwks", fetch=fetch, clock=lambda: now[0])
    with pytest.raises(KeySetUnavailable) as first:
        source.key_set_for("k1")
    assert first.value.retry_after == 5
    now[0] = 2.0
    with pytest.raises(KeySetUnavailable) as second:
        source.key_set_for("k1")  # within the backoff: fails fast, no second fetch
    assert second.value.retry_after == 3 and len(calls) == 1
    now[0] = 6.0
    with pytest.raises(InvalidToken):
        source.key_set_for("k1")  # fetched again; the set is readable, the kid is not in it
    assert len(calls) == 2


def test_a_body_that_is_not_a_key_set_is_unavailable() -> None:
    source = JwksSource("https://example.invalid/jwks", fetch=lambda _url: {"keys": "nope"})
    with pytest.raises(KeySetUnavailable):
        source.key_set_for("k1")


# ---- the API, directly and through the gateway ---------------------------------------------


@pytest.fixture(scope="module")
def keyless_app(hub: Hub) -> Iterator[Any]:
    """The session hub's app, except that its pool's JWKS endpoint is unreachable."""
    settings = hub.settings.model_copy(update={"cognito_jwks_url": closed_loopback_url()})
    services = build_services(
        settings,
        session=boto3.session.Session(region_name="ap-east-1"),
        clock=hub.clock,
        monotonic=hub.monotonic,
    )
    # Not entered as a context manager: the lifespan would start a second sequencer.
    yield create_app(settings, services=services)


def assert_unavailable(response: Any) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == UNAVAILABLE
    assert set(response.json()["error"]) == {"code", "message"}
    assert int(response.headers["retry-after"]) >= 1


def test_unreachable_jwks_is_a_503_with_retry_after(hub: Hub, keyless_app: Any) -> None:
    client = TestClient(keyless_app)
    assert_unavailable(client.get("/me", headers=hub.headers("dr-lead")))
    # Still no 500 on the fail-fast path inside the backoff window.
    assert_unavailable(client.get("/break-glass", headers=hub.headers("dr-lead")))
    # Without a token the answer stays 401: no key set is needed to refuse it.
    assert client.get("/me").status_code == 401


def test_unreachable_jwks_is_a_503_through_the_gateway(hub: Hub, keyless_app: Any) -> None:
    record = gateway_record(hub, apiThrottleRateLimit=5_000, apiThrottleBurstLimit=5_000)
    server = LocalGateway(record, lambda_handler_for(keyless_app, sign_inline=False))
    base_url = server.start()
    try:
        with httpx.Client(base_url=base_url, timeout=30) as client:
            # The declared Cognito authorizer passes the genuine token; the app cannot
            # fetch its keys and says so.
            assert_unavailable(client.get("/me", headers=hub.headers("dr-lead")))
    finally:
        server.stop()


# ---- ids in the path -----------------------------------------------------------------------

ID_ROUTES = [
    ("GET", "/groups/{id}"),
    ("POST", "/groups/{id}/invitations"),
    ("POST", "/groups/{id}/summon"),
    ("POST", "/groups/{id}/accept"),
    ("POST", "/groups/{id}/leave"),
    ("DELETE", "/groups/{id}/members/M20001"),
    ("DELETE", "/groups/0123456789abcdef0123456789abcdef/members/{id}"),
    ("POST", "/groups/{id}/close"),
    ("POST", "/break-glass/{id}/end"),
    ("GET", "/referrals/{id}"),
    ("GET", "/referrals/{id}/fhir"),
    ("POST", "/referrals/{id}/accept"),
    ("POST", "/referrals/{id}/cancel"),
    ("PATCH", "/institutions/{id}"),
    ("GET", "/institutions/{id}/affiliations"),
    ("PUT", "/institutions/{id}/affiliations/M20001"),
    ("DELETE", "/institutions/hosp-a/affiliations/{id}"),
    ("POST", "/registrations/{id}/approve"),
    ("POST", "/registrations/{id}/reject"),
    ("GET", "/patients/{id}/consents"),
    ("POST", "/patients/{id}/consents"),
    ("POST", "/patients/pt-synthetic-000099/consents/{id}/withdraw"),
]


@pytest.mark.parametrize("method,template", ID_ROUTES)
def test_odd_path_ids_are_a_4xx(hub: Hub, api: httpx.Client, method: str, template: str) -> None:
    for odd in ODD_IDS:
        path = template.replace("{id}", odd)
        response = api.request(method, path, headers=hub.headers("dr-lead"), json={})
        assert_refused_clearly(response, f"{method} {path}")
