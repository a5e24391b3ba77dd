"""Signing in as a real client does: SRP, then Cognito's TOTP challenge.

The session's people all signed in this way (tests/app/conftest.py); these tests pin the
flow itself, and the emulator gaps that the declared client and the service cover
(``infra/emulator/gaps.py``: moto does not enforce a client's auth flows).
"""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from botocore.exceptions import ClientError
from hub_testkit import INST_A, PASSWORD, Hub

from app import local


def claims_of(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def new_doctor(hub: Hub) -> str:
    username = f"dr-signin-{uuid.uuid4().hex[:8]}"
    local.create_user(
        hub.cognito,
        hub.pool_id,
        username,
        PASSWORD,
        groups=["doctor"],
        reg_no="M20001",
        institution=INST_A,
    )
    return username


def test_srp_sign_in_enrols_totp_then_answers_the_challenge(hub: Hub) -> None:
    username = new_doctor(hub)
    authenticator = local.AuthenticatorApp()
    first = local.login(
        hub.cognito, hub.pool_id, hub.client_id, username, PASSWORD, authenticator=authenticator
    )
    assert first["TotpSecret"] and authenticator.secret(username) == first["TotpSecret"]
    # SRP's access token carries Cognito's own scope, not OAuth ones.
    assert claims_of(first["AccessToken"])["scope"] == "aws.cognito.signin.user.admin"
    with pytest.raises(local.LoginFailed, match="authenticator code"):
        local.login(hub.cognito, hub.pool_id, hub.client_id, username, PASSWORD)
    again = local.login(
        hub.cognito, hub.pool_id, hub.client_id, username, PASSWORD, authenticator=authenticator
    )
    assert "TotpSecret" not in again and claims_of(again["AccessToken"])["username"] == username


def test_a_wrong_totp_code_is_refused(hub: Hub) -> None:
    username = new_doctor(hub)
    local.login(hub.cognito, hub.pool_id, hub.client_id, username, PASSWORD)  # enrols
    with pytest.raises(ClientError) as refused:
        local.login(
            hub.cognito,
            hub.pool_id,
            hub.client_id,
            username,
            PASSWORD,
            totp_secret="JBSWY3DPEHPK3PXP",  # not the enrolled secret
        )
    assert refused.value.response["Error"]["Code"] == "CodeMismatchException"


def test_moto_accepts_a_password_flow_the_client_does_not_allow(hub: Hub) -> None:
    """The gap, pinned: Cognito refuses USER_PASSWORD_AUTH for a client that allows only
    SRP and refresh; moto does not. If moto starts refusing it, this test fails and the
    gap can go (covered meanwhile by the policy rule on the declared client)."""
    described = hub.cognito.describe_user_pool_client(
        UserPoolId=hub.pool_id, ClientId=hub.client_id
    )["UserPoolClient"]
    assert set(described["ExplicitAuthFlows"]) == {
        "ALLOW_USER_SRP_AUTH",
        "ALLOW_REFRESH_TOKEN_AUTH",
    }
    answer = hub.cognito.initiate_auth(
        ClientId=hub.client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "dr-lead", "PASSWORD": PASSWORD},
    )
    assert answer["ChallengeName"] == "SOFTWARE_TOKEN_MFA"  # not refused
