"""The emulator's stand-in for the pool domain's /oauth2/token (client-credentials grant):
tokens it mints verify against the pool's JWKS as Cognito's do, and it refuses what
Cognito refuses (infra/emulator/cognito_token.py; the gap it covers is
infra.emulator.gaps.cognito_token_endpoint)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import httpx
import pytest

from app.identity.tokens import InvalidToken, JwksSource, MachineTokenVerifier
from app.intake.scopes import INTAKE_RESOURCE_SERVER, INTAKE_WRITE_SCOPE
from infra.emulator.cognito_token import local_token_url
from infra.emulator.server import REGION, use_emulator_credentials


@dataclass(frozen=True)
class Pool:
    endpoint: str
    pool_id: str
    domain: str
    client_id: str
    secret: str
    cognito: Any

    @property
    def token_url(self) -> str:
        return local_token_url(self.endpoint, self.domain)

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.{REGION}.amazonaws.com/{self.pool_id}"

    def verifier(self, scope: str = INTAKE_WRITE_SCOPE) -> MachineTokenVerifier:
        return MachineTokenVerifier(
            issuer=self.issuer,
            required_scope=scope,
            jwks=JwksSource(f"{self.endpoint}/{self.pool_id}/.well-known/jwks.json"),
        )

    def client(self, **config: Any) -> tuple[str, str]:
        made = self.cognito.create_user_pool_client(
            UserPoolId=self.pool_id, ClientName=f"c-{uuid.uuid4().hex[:6]}", **config
        )["UserPoolClient"]
        return made["ClientId"], made.get("ClientSecret", "")


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


@pytest.fixture(scope="module")
def pool(moto_endpoint: str) -> Iterator[Pool]:
    use_emulator_credentials()
    cognito = boto3.client("cognito-idp", region_name=REGION, endpoint_url=moto_endpoint)
    pool_id = cognito.create_user_pool(PoolName=f"token-{uuid.uuid4().hex[:6]}")["UserPool"]["Id"]
    domain = f"token-{uuid.uuid4().hex[:10]}"
    cognito.create_user_pool_domain(Domain=domain, UserPoolId=pool_id)
    cognito.create_resource_server(
        UserPoolId=pool_id,
        Identifier=INTAKE_RESOURCE_SERVER,
        Name="intake",
        Scopes=[{"ScopeName": "records.write", "ScopeDescription": "submit"}],
    )
    made = cognito.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="cms",
        GenerateSecret=True,
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["client_credentials"],
        AllowedOAuthScopes=[INTAKE_WRITE_SCOPE],
        AccessTokenValidity=15,
        TokenValidityUnits={"AccessToken": "minutes"},
    )["UserPoolClient"]
    yield Pool(moto_endpoint, pool_id, domain, made["ClientId"], made["ClientSecret"], cognito)


def grant(pool: Pool, headers: dict[str, str], **form: str) -> httpx.Response:
    data = {"grant_type": "client_credentials", **form}
    return httpx.post(pool.token_url, data=data, headers=headers, timeout=10)


def test_minted_token_verifies_against_the_pools_jwks(pool: Pool) -> None:
    r = grant(pool, basic(pool.client_id, pool.secret), scope=INTAKE_WRITE_SCOPE)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 15 * 60
    assert r.headers["Cache-Control"] == "no-store"
    verified = pool.verifier().verify(body["access_token"])
    assert verified.client_id == pool.client_id
    assert verified.scopes == frozenset({INTAKE_WRITE_SCOPE})
    # Without a scope parameter: every scope the client allows.
    r = grant(pool, basic(pool.client_id, pool.secret))
    assert pool.verifier().verify(r.json()["access_token"]).client_id == pool.client_id


def test_token_endpoint_refuses_what_cognito_refuses(pool: Pool) -> None:
    good = basic(pool.client_id, pool.secret)

    def refused(response: httpx.Response, status: int, code: str) -> None:
        assert response.status_code == status, response.text
        assert response.json() == {"error": code}
        assert "access_token" not in response.text

    refused(grant(pool, basic(pool.client_id, "not-the-secret")), 401, "invalid_client")
    refused(grant(pool, {}), 401, "invalid_client")
    refused(grant(pool, basic("no-such-client", pool.secret)), 401, "invalid_client")
    other_domain = local_token_url(pool.endpoint, "no-such-domain")
    refused(
        httpx.post(other_domain, data={"grant_type": "client_credentials"}, headers=good),
        401,
        "invalid_client",
    )
    refused(grant(pool, good, grant_type="password"), 400, "unsupported_grant_type")
    refused(grant(pool, good, scope="hub-intake/records.delete"), 400, "invalid_scope")
    refused(grant(pool, good, scope=f"{INTAKE_WRITE_SCOPE} openid"), 400, "invalid_scope")
    assert httpx.get(pool.token_url, headers=good).status_code == 405
    refused(
        httpx.post(pool.token_url, json={"grant_type": "client_credentials"}, headers=good),
        400,
        "invalid_request",
    )
    # A client whose flows do not include client_credentials (a user sign-in client).
    code_client = pool.client(
        GenerateSecret=True,
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid"],
        CallbackURLs=["https://app.example/cb"],
    )
    refused(grant(pool, basic(*code_client)), 400, "unauthorized_client")
    # A public client (no secret) cannot authenticate on this grant.
    public_id, _ = pool.client(GenerateSecret=False)
    refused(grant(pool, basic(public_id, "")), 401, "invalid_client")
    # A scope the client allows but no resource server defines.
    undefined = pool.client(
        GenerateSecret=True,
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["client_credentials"],
        AllowedOAuthScopes=["hub-other/records.read"],
    )
    refused(grant(pool, basic(*undefined)), 400, "invalid_scope")


def test_machine_verifier_refuses_user_tokens_and_missing_scopes(pool: Pool) -> None:
    """The service's machine verifier: a user's access token (whatever its client) is
    refused, and so is a machine token without the intake scope."""
    username = f"u-{uuid.uuid4().hex[:6]}"
    pool.cognito.admin_create_user(
        UserPoolId=pool.pool_id, Username=username, TemporaryPassword="Synthetic-Pass-1!"
    )
    pool.cognito.admin_set_user_password(
        UserPoolId=pool.pool_id, Username=username, Password="Synthetic-Pass-1!", Permanent=True
    )
    user_client, _ = pool.client(ExplicitAuthFlows=["ADMIN_NO_SRP_AUTH"])
    user_token = pool.cognito.admin_initiate_auth(
        UserPoolId=pool.pool_id,
        ClientId=user_client,
        AuthFlow="ADMIN_NO_SRP_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": "Synthetic-Pass-1!"},
    )["AuthenticationResult"]["AccessToken"]
    with pytest.raises(InvalidToken):
        pool.verifier(scope="aws.cognito.signin.user.admin").verify(user_token)
    machine = grant(pool, basic(pool.client_id, pool.secret)).json()["access_token"]
    with pytest.raises(InvalidToken) as raised:
        pool.verifier(scope="hub-intake/records.delete").verify(machine)
    assert raised.value.why == "scope_missing"
    other_pool = MachineTokenVerifier(
        issuer=pool.issuer + "x",
        required_scope=INTAKE_WRITE_SCOPE,
        jwks=JwksSource(f"{pool.endpoint}/{pool.pool_id}/.well-known/jwks.json"),
    )
    with pytest.raises(InvalidToken):
        other_pool.verify(machine)
