"""Running the service on the local platform, and the emulator-side helpers it needs.

- :func:`serve` runs the API with uvicorn (``hub local up`` calls it on 127.0.0.1:8000).
- :func:`create_service_tables` and :func:`create_user_pool` build, on an emulator,
  the same tables and pool shape the infrastructure declares (for tests, benchmarks and
  a service started without the full emulator run).
- :func:`login` signs a user in the way a real client would handle Cognito's
  challenges, including TOTP MFA (codes computed from the enrolled secret with
  ``cryptography``'s TOTP). It uses ``ADMIN_USER_PASSWORD_AUTH``, which only a
  test/demo client on the emulator allows; a real client uses SRP or the hosted UI.

Nothing here is used by the deployed service.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor.totp import TOTP

from app.settings import Settings

ROLE_GROUPS = ("doctor", "specialist", "institution_admin", "auditor", "platform_admin")
TABLE_KEYS: dict[str, tuple[str, str | None]] = {
    "register": ("reg_no", None),
    "groups": ("pk", "sk"),
    "records": ("pk", "sk"),
    "ledger": ("pk", "sk"),
}


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the API in the foreground until interrupted."""
    import uvicorn

    from app.main import create_app

    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


def create_service_tables(dynamodb: Any, names: Mapping[str, str]) -> None:
    """Create the four service tables (logical name -> physical name) if absent."""
    existing = set(dynamodb.list_tables()["TableNames"])
    for logical, physical in names.items():
        if physical in existing:
            continue
        hash_key, range_key = TABLE_KEYS[logical]
        keys = [{"AttributeName": hash_key, "KeyType": "HASH"}]
        attributes = [{"AttributeName": hash_key, "AttributeType": "S"}]
        if range_key:
            keys.append({"AttributeName": range_key, "KeyType": "RANGE"})
            attributes.append({"AttributeName": range_key, "AttributeType": "S"})
        dynamodb.create_table(
            TableName=physical,
            KeySchema=keys,
            AttributeDefinitions=attributes,
            BillingMode="PAY_PER_REQUEST",
        )


def create_user_pool(cognito: Any, name: str) -> tuple[str, str]:
    """A pool shaped like the deployed one (custom attributes, role groups, TOTP MFA on)
    plus a test/demo client allowing ADMIN_USER_PASSWORD_AUTH. Returns (pool id, client id)."""
    pool = cognito.create_user_pool(
        PoolName=name,
        MfaConfiguration="ON",
        Schema=[
            {"Name": "mchk_reg_no", "AttributeDataType": "String", "Mutable": False},
            {"Name": "institution_id", "AttributeDataType": "String", "Mutable": True},
            {"Name": "specialty", "AttributeDataType": "String", "Mutable": True},
        ],
    )["UserPool"]
    pool_id = pool["Id"]
    cognito.set_user_pool_mfa_config(
        UserPoolId=pool_id,
        SoftwareTokenMfaConfiguration={"Enabled": True},
        MfaConfiguration="ON",
    )
    for group in ROLE_GROUPS:
        cognito.create_group(GroupName=group, UserPoolId=pool_id)
    client = cognito.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName=f"{name}-test-client",
        ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]
    return pool_id, client["ClientId"]


def create_user(
    cognito: Any,
    pool_id: str,
    username: str,
    password: str,
    *,
    groups: Iterable[str],
    reg_no: str | None = None,
    institution: str | None = None,
    specialty: str | None = None,
) -> None:
    attributes = [{"Name": "email", "Value": f"{username}@hub.example"}]
    for name, value in (
        ("custom:mchk_reg_no", reg_no),
        ("custom:institution_id", institution),
        ("custom:specialty", specialty),
    ):
        if value:
            attributes.append({"Name": name, "Value": value})
    cognito.admin_create_user(
        UserPoolId=pool_id,
        Username=username,
        UserAttributes=attributes,
        MessageAction="SUPPRESS",
    )
    cognito.admin_set_user_password(
        UserPoolId=pool_id, Username=username, Password=password, Permanent=True
    )
    for group in groups:
        cognito.admin_add_user_to_group(UserPoolId=pool_id, Username=username, GroupName=group)


def totp_code(secret: str, at: float | None = None) -> str:
    """The current 6-digit code for a base32 TOTP secret (RFC 6238, SHA-1, 30 s)."""
    padded = secret + "=" * (-len(secret) % 8)
    # Cognito authenticator apps use RFC 6238 with SHA-1; this is the protocol, not a choice.
    key = base64.b32decode(padded, casefold=True)
    totp = TOTP(key, 6, SHA1(), 30, enforce_key_length=False)  # noqa: S303
    return totp.generate(int(at if at is not None else time.time())).decode()


def enrol_totp(cognito: Any, pool_id: str, username: str, access_token: str) -> str:
    """Register an authenticator app for the user, as the web client's MFA setup does."""
    secret = str(cognito.associate_software_token(AccessToken=access_token)["SecretCode"])
    cognito.verify_software_token(
        AccessToken=access_token, UserCode=totp_code(secret), FriendlyDeviceName="hub-demo"
    )
    cognito.admin_set_user_mfa_preference(
        UserPoolId=pool_id,
        Username=username,
        SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True},
    )
    return secret


class LoginFailed(RuntimeError):
    pass


def login(
    cognito: Any,
    pool_id: str,
    client_id: str,
    username: str,
    password: str,
    *,
    totp_secret: str | None = None,
) -> dict[str, str]:
    """Sign in and answer Cognito's challenges; returns the AuthenticationResult.

    Handles ``SOFTWARE_TOKEN_MFA`` (a code from ``totp_secret``) and ``MFA_SETUP``
    (enrols a new authenticator; its secret is returned under ``TotpSecret``).
    """
    answer = cognito.admin_initiate_auth(
        UserPoolId=pool_id,
        ClientId=client_id,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": password},
    )
    new_secret: str | None = None
    for _ in range(3):
        if "AuthenticationResult" in answer:
            result = dict(answer["AuthenticationResult"])
            if new_secret:
                result["TotpSecret"] = new_secret
            return result
        challenge = answer.get("ChallengeName")
        session = answer["Session"]
        if challenge == "SOFTWARE_TOKEN_MFA":
            if totp_secret is None:
                raise LoginFailed("an authenticator code is required")
            responses = {"USERNAME": username, "SOFTWARE_TOKEN_MFA_CODE": totp_code(totp_secret)}
        elif challenge == "MFA_SETUP":
            associated = cognito.associate_software_token(Session=session)
            new_secret = str(associated["SecretCode"])
            session = associated.get("Session", session)
            verified = cognito.verify_software_token(
                Session=session, UserCode=totp_code(new_secret), FriendlyDeviceName="hub-demo"
            )
            session = verified.get("Session", session)
            responses = {"USERNAME": username}
        else:
            raise LoginFailed(f"unexpected challenge {challenge}")
        answer = cognito.admin_respond_to_auth_challenge(
            UserPoolId=pool_id,
            ClientId=client_id,
            ChallengeName=challenge,
            Session=session,
            ChallengeResponses=responses,
        )
    raise LoginFailed("too many challenges")
