"""The service through the local API gateway: routing, the Cognito authorizer with the
declared scopes, and the proxy event the function receives.

The gateway is built from the phase 1 program's declaration (``gateway`` fixture);
switch-off tests rebuild it from the program with one declared property changed and show
the property's test failing.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hub_testkit import Gateway, Hub, gateway_record
from joserfc import jwt
from joserfc.jwk import RSAKey
from moto.utilities.utils import load_resource

from app.main import lambda_handler_for
from infra.components import sharing_service
from infra.emulator.gateway import GatewayRequest, LocalGateway

UNAUTHORIZED = {"message": "Unauthorized"}
MOTO_KEY = RSAKey.import_key(load_resource("cognitoidp/resources/jwks-private.json"))


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def code_flow_token(hub: Hub, username: str) -> str:
    """An access token as the hosted UI's authorization-code flow issues it: the OAuth
    scopes the client allows instead of aws.cognito.signin.user.admin (signed with
    moto's own key, since moto has no hosted UI)."""
    claims = claims_of(hub.people[username].token)
    claims["scope"] = "openid email profile"
    return str(jwt.encode({"alg": "RS256", "kid": "dummy"}, claims, MOTO_KEY))


@pytest.fixture
def rebuilt(hub: Hub) -> Iterator[Any]:
    """``rebuilt()``: a gateway (no HTTP; ``handle``) from the program as declared now."""
    made: list[LocalGateway] = []

    def build() -> LocalGateway:
        record = gateway_record(hub, apiThrottleRateLimit=5000, apiThrottleBurstLimit=5000)
        server = LocalGateway(record, lambda_handler_for(hub.app, sign_inline=False))
        made.append(server)
        return server

    yield build
    for server in made:
        server.stop()


def get(server: LocalGateway, path: str, token: str | None = None) -> Any:
    headers = [("user-agent", "hub-tests")]
    if token:
        headers.append(("authorization", f"Bearer {token}"))
    return server.handle(GatewayRequest("GET", f"/v1{path}", "", headers, b"", "127.0.0.1"))


# ---- routing by the declared resources ----------------------------------------------------


def test_health_is_public_and_everything_else_needs_the_authorizer(gateway: Gateway) -> None:
    client = gateway.client
    assert client.get("/health").json() == {"status": "ok"}
    for path in ("/me", "/groups/x", "/openapi.json", "/"):
        response = client.get(path)
        assert response.status_code == 401 and response.json() == UNAUTHORIZED, path


def test_undeclared_method_and_missing_stage_are_api_gateway_refusals(gateway: Gateway) -> None:
    before = len(gateway.events)
    # /health declares GET only: API Gateway does not fall back to {proxy+}.
    refused = gateway.client.post("/health")
    assert refused.status_code == 403
    assert refused.json() == {"message": "Missing Authentication Token"}
    root = str(gateway.client.base_url).removesuffix("/").removesuffix("/v1")
    outside = gateway.client.get(f"{root}/health")
    assert outside.status_code == 403 and outside.json() == {"message": "Forbidden"}
    assert len(gateway.events) == before  # none of it reached the function


# ---- the Cognito authorizer, with the declared scopes -------------------------------------


def test_srp_and_code_flow_access_tokens_both_pass(hub: Hub, gateway: Gateway) -> None:
    srp = hub.people["dr-lead"].token
    assert claims_of(srp)["scope"] == "aws.cognito.signin.user.admin"
    for token in (srp, code_flow_token(hub, "dr-lead")):
        response = gateway.client.get("/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
        assert response.json()["reg_no"] == "M20001"


def test_id_token_is_refused_where_scopes_are_declared(hub: Hub, gateway: Gateway) -> None:
    before = len(gateway.events)
    id_token = hub.people["dr-lead"].id_token
    response = gateway.client.get("/me", headers={"Authorization": f"Bearer {id_token}"})
    assert response.status_code == 401 and response.json() == UNAUTHORIZED
    assert len(gateway.events) == before


def test_switch_off_openid_only_scope_refuses_an_srp_token(
    hub: Hub, rebuilt: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The program's first scope list (openid only): every SRP sign-in got 401."""
    srp = hub.people["dr-lead"].token
    assert get(rebuilt(), "/me", srp).status == 200
    monkeypatch.setattr(sharing_service, "API_AUTHORIZATION_SCOPES", ("openid",))
    refused = get(rebuilt(), "/me", srp)
    assert refused.status == 401 and json.loads(refused.body) == UNAUTHORIZED
    assert get(rebuilt(), "/me", code_flow_token(hub, "dr-lead")).status == 200


def test_without_scopes_the_authorizer_expects_id_tokens(
    hub: Hub, rebuilt: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sharing_service, "API_AUTHORIZATION_SCOPES", ())
    server = rebuilt()
    person = hub.people["dr-lead"]
    assert get(server, "/me", person.token).status == 401  # an access token: refused
    # The id token passes API Gateway; the service, which takes access tokens only,
    # refuses it with its own error.
    passed = get(server, "/me", person.id_token)
    assert passed.status == 401 and "error" in json.loads(passed.body)


# ---- the event the function receives ------------------------------------------------------


def test_proxy_event_is_filled_as_api_gateway_fills_it(hub: Hub, gateway: Gateway) -> None:
    token = hub.people["dr-lead"].token
    response = gateway.client.get(
        "/audit/entries?limit=2&limit=3&mine=",
        headers={"Authorization": f"Bearer {token}", "X-Demo": "a"},
    )
    event = gateway.events[-1]
    assert event["resource"] == "/{proxy+}"
    assert event["path"] == "/audit/entries"
    assert event["pathParameters"] == {"proxy": "audit/entries"}
    assert event["httpMethod"] == "GET"
    assert event["queryStringParameters"] == {"limit": "3", "mine": ""}
    assert event["multiValueQueryStringParameters"] == {"limit": ["2", "3"], "mine": [""]}
    assert event["headers"]["x-demo"] == "a" and event["multiValueHeaders"]["x-demo"] == ["a"]
    assert event["body"] is None and event["isBase64Encoded"] is False
    assert event["stageVariables"] is None
    context = event["requestContext"]
    api = gateway.server.api
    assert context["requestId"] == response.headers["x-amzn-requestid"]
    assert (context["stage"], context["apiId"], context["resourcePath"]) == (
        "v1",
        api.api_id,
        "/{proxy+}",
    )
    assert context["path"] == "/v1/audit/entries"
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["resourceId"] in api.resources
    claims = context["authorizer"]["claims"]
    assert all(isinstance(v, str) for v in claims.values())
    assert claims["sub"] == hub.principal("dr-lead").sub
    assert claims["token_use"] == "access" and claims["cognito:groups"] == "doctor"
    assert claims["exp"].endswith(" UTC " + claims["exp"][-4:])  # "Fri Jul 29 18:52:53 UTC 2016"
    health = gateway.client.get("/health")
    assert health.status_code == 200
    event = gateway.events[-1]
    assert event["resource"] == "/health" and event["pathParameters"] is None
    assert "authorizer" not in event["requestContext"]
