"""Running the service on the local platform, and the emulator-side helpers it needs.

- :func:`serve` runs the API with uvicorn for given settings; :func:`serve_local` and
  :class:`LocalApi` (background thread, for ``hub local up``) derive the settings from
  ``.hub/local.json`` for one phase's stack. Run by hand:
  ``.venv/bin/python -m app.local --stack phase3-private-practice --port 8000``.
- :func:`create_service_tables` and :func:`create_user_pool` build, on an emulator,
  the same tables and pool shape the infrastructure declares (for tests, benchmarks and
  a service started without the full emulator run).
- :class:`LocalInternal` runs what a deployment runs behind the API in two more
  functions: the application service's private path (the homeserver pushes to it) and
  the outbox dispatcher, as a background loop.
- :func:`login` signs a user in the way a real client does: ``USER_SRP_AUTH`` (the SRP
  arithmetic is pycognito's ``AWSSRP``; the password never leaves the client) and then
  Cognito's challenges, including TOTP MFA: ``MFA_SETUP`` enrols an authenticator on first
  sign-in, ``SOFTWARE_TOKEN_MFA`` answers with a code from the enrolled secret (computed
  with ``cryptography``'s TOTP). An :class:`AuthenticatorApp` keeps the secrets, as the
  doctor's authenticator app would. ``flow="admin_password"`` keeps the old
  ``ADMIN_USER_PASSWORD_AUTH`` path, which needs AWS credentials and which the declared
  app client does not allow (moto does not enforce a client's flows: a gap).

Nothing here is used by the deployed service.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from app.crypto.totp import totp_now
from app.identity.triggers import ROLE_GROUPS
from app.settings import Mode, Settings

TABLE_KEYS: dict[str, tuple[str, str | None]] = {
    "register": ("reg_no", None),
    "groups": ("pk", "sk"),
    "records": ("pk", "sk"),
    "ledger": ("pk", "sk"),
    "institutions": ("pk", "sk"),
    "patients": ("pk", "sk"),
}


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the API in the foreground until interrupted."""
    import uvicorn

    from app.main import create_app

    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


DEFAULT_STACK = "phase3-private-practice"
EMULATOR_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "ap-east-1",
}


def settings_from_local_json(document: Mapping[str, Any], stack: str = DEFAULT_STACK) -> Settings:
    """Local-mode settings for one phase of the local platform.

    Which institutions are admitted is the phase's ``institutions`` table (``hub local
    up`` seeds the stage's cohort into it). A layer's service is its core's: the core's
    phase and app clients, self-registration as the core's stage has it (off for phase
    1), exactly as the core's function is configured; what the layers turn on (phase 2's
    federated client, phase 3's self-registration) the service reads from their switches
    in the institutions table, as deployed; its stack (the ledger's origin) is the core's,
    as the core's function's ``HUB_STACK`` is. The audit ledger runs the document's
    ``ledgerTrails``: the trails of the hub's ledger, which ``hub local up`` and the
    standalone platform take from the stages, where the deployed function reads
    ``HUB_LEDGER_TRAILS`` (1 when the document does not say).
    """
    stacks = document.get("stacks", {})
    if stack not in stacks:
        raise KeyError(f"{stack} is not in local.json (have: {', '.join(sorted(stacks))})")
    entry = stacks[stack]
    outputs = entry["outputs"]
    core_stack = outputs.get("coreStack")
    if core_stack and core_stack in stacks:
        entry = stacks[core_stack]
        outputs = entry["outputs"]
    tables = outputs["tableNames"]
    phase = int(entry.get("phase", outputs.get("phase", 1)))
    clients = list(outputs["userPoolClientIds"])
    messaging = document.get("messaging") or {}
    return Settings(
        mode=Mode.LOCAL,
        phase=phase,
        # The ledger's origin: the core's function's HUB_STACK. Every process serving the
        # one hub (the gateway's function, --direct, the messaging path) signs the one
        # ledger under one origin; with several trails the verifier holds each trail's
        # heads to it (a head under another origin is "swapped").
        stack=str(core_stack or stack),
        self_registration=phase >= 3,
        ledger_trails=int(document.get("ledgerTrails") or 1),
        table_register=tables["register"],
        table_groups=tables["groups"],
        table_records=tables["records"],
        table_ledger=tables["ledger"],
        table_institutions=tables.get("institutions", ""),
        table_patients=tables["patients"],
        cognito_user_pool_id=outputs["userPoolId"],
        cognito_client_id=clients[0],
        cognito_federated_client_id=clients[1] if len(clients) > 1 else "",
        cognito_issuer=outputs["issuer"],
        shard_bucket=outputs.get("shardBucketName", ""),
        records_key_arn=outputs.get("recordsKeyArn", ""),
        signing_key_arn=outputs.get("signingKeyArn", ""),
        checkpoint_bucket=outputs.get("auditBucketName", ""),
        matrix_homeserver_url=str(messaging.get("homeserverUrl") or ""),
        matrix_client_url=str(messaging.get("homeserverUrl") or ""),
        matrix_server_name=str(messaging.get("serverName") or "hub.local"),
        matrix_appservice_url=str(messaging.get("appserviceUrl") or ""),
        matrix_registration_file=str(messaging.get("registrationFile") or ""),
        messaging_bot_store=str(messaging.get("deviceStore") or ""),
        notification_topic_arn=outputs.get("notificationTopicArn", ""),
        security_topic_arn=outputs.get("securityTopicArn", ""),
        outbox_dead_letter_queue_url=outputs.get("outboxDeadLetterQueueUrl", ""),
    )


def local_app(document: Mapping[str, Any], stack: str) -> Any:
    """The app for one phase of the local platform, with its specialists enrolled."""
    import boto3

    from app.dependencies import build_services
    from app.identity.directory import enrol_user_pool
    from app.main import create_app

    os.environ["AWS_ENDPOINT_URL"] = str(document["emulatorEndpoint"])
    for key, value in EMULATOR_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    settings = settings_from_local_json(document, stack)
    services = build_services(settings)
    cognito = boto3.client("cognito-idp", region_name="ap-east-1")
    # Summon finds specialists through the directory; enrol the seeded pool up front.
    enrol_user_pool(
        cognito,
        settings.cognito_user_pool_id,
        services.directory,
        services.register,
        services.institutions.repository,
    )
    return create_app(settings, services=services)


def read_local_json(state_dir: Path | str = ".hub") -> dict[str, Any]:
    path = Path(state_dir) / "local.json"
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


class LocalApi:
    """The API in a background thread (what ``hub local up`` starts next to the emulator)."""

    def __init__(
        self,
        document: Mapping[str, Any],
        stack: str = DEFAULT_STACK,
        host: str = "127.0.0.1",
        port: int = 8000,
    ):
        import uvicorn

        config = uvicorn.Config(
            local_app(document, stack), host=host, port=port, log_level="warning"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="hub-api", daemon=True)
        self.base_url = f"http://{host}:{port}"

    def start(self, timeout: float = 10.0) -> str:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the API did not start on {self.base_url}")
            time.sleep(0.05)
        return self.base_url

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


class LocalInternal:
    """The application service's private path and the outbox dispatcher, on loopback.

    In a deployment these are two functions besides the API's (an internal load
    balancer's target, and a scheduled one); here one set of services serves both, built
    from ``settings`` like theirs: the application service app on ``port`` (what the
    homeserver's registration names) and :meth:`OutboxDispatcher.run_once` every
    ``interval_s`` in a thread. The ledger signs inline, as in Lambda.
    """

    def __init__(self, settings: Settings, port: int, *, interval_s: float = 2.0) -> None:
        from app.dependencies import build_services
        from app.main import create_appservice_app
        from app.messaging.local import ApplicationServiceEndpoint

        self.services = build_services(settings)
        self.services.ledger.inline = True
        self._endpoint = ApplicationServiceEndpoint(
            create_appservice_app(settings, services=self.services), port
        )
        self._interval = interval_s
        self._stop = threading.Event()
        self._loop = threading.Thread(target=self._dispatch, name="hub-dispatcher", daemon=True)
        self.url = self._endpoint.url

    def start(self) -> None:
        self._endpoint.start()
        self._loop.start()

    def _dispatch(self) -> None:
        import logging

        log = logging.getLogger(__name__)
        while not self._stop.wait(self._interval):
            try:
                self.services.dispatcher.run_once()
            except Exception as exc:  # the next pass retries; say which kind of failure
                log.warning("outbox dispatch pass failed: %s", type(exc).__name__)

    def stop(self) -> None:
        self._stop.set()
        if self._loop.is_alive():
            self._loop.join(timeout=30)
        self._endpoint.stop()
        self.services.close()


def serve_local(
    state_dir: Path | str = ".hub",
    stack: str = DEFAULT_STACK,
    host: str = "127.0.0.1",
    port: int = 8000,
) -> None:
    """Run the API in the foreground against the local platform described in local.json."""
    import uvicorn

    uvicorn.run(local_app(read_local_json(state_dir), stack), host=host, port=port)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the sharing service on the local platform")
    parser.add_argument("--state-dir", default=".hub")
    parser.add_argument("--stack", default=DEFAULT_STACK)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    serve_local(args.state_dir, args.stack, args.host, args.port)


def create_service_tables(dynamodb: Any, names: Mapping[str, str]) -> None:
    """Create the service tables (logical name -> physical name) if absent."""
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
    with a client allowing the declared flows, SRP and refresh. Returns (pool id, client
    id)."""
    pool = cognito.create_user_pool(
        PoolName=name,
        MfaConfiguration="ON",
        Schema=[
            {"Name": "mchk_reg_no", "AttributeDataType": "String", "Mutable": False},
            {"Name": "institution_id", "AttributeDataType": "String", "Mutable": True},
            {"Name": "specialty", "AttributeDataType": "String", "Mutable": True},
            {"Name": "idp_reg_no", "AttributeDataType": "String", "Mutable": True},
            {"Name": "hospital_code", "AttributeDataType": "String", "Mutable": True},
            {"Name": "idp_groups", "AttributeDataType": "String", "Mutable": True},
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
        ExplicitAuthFlows=["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
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
    """The current 6-digit code for a base32 TOTP secret (``app.crypto.totp``), read
    as a person reads it off an authenticator app."""
    if at is None:
        # Like a person who sees the code about to change: wait for the next one, so the
        # code is still current when Cognito checks it (moto accepts only the current window).
        left = 30 - time.time() % 30
        if left < 1.5:
            time.sleep(left)
    return totp_now(secret, at)


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


class AuthenticatorApp:
    """The TOTP secrets a doctor's authenticator app holds, by username.

    ``path`` (optional) keeps them in a JSON file between runs, so a demo run after the
    first answers the ``SOFTWARE_TOKEN_MFA`` challenge of users it enrolled before.
    Synthetic demo users only.
    """

    def __init__(self, path: Path | str | None = None):
        self._path = Path(path) if path is not None else None
        self._secrets: dict[str, str] = {}
        if self._path is not None and self._path.is_file():
            loaded = json.loads(self._path.read_text(encoding="utf-8"))
            self._secrets = {str(k): str(v) for k, v in loaded.items()}

    def secret(self, username: str) -> str | None:
        return self._secrets.get(username)

    def enrol(self, username: str, secret: str) -> None:
        self._secrets[username] = secret
        if self._path is not None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self._secrets, indent=2, sort_keys=True), encoding="utf-8")
            os.replace(tmp, self._path)


LoginFlow = Literal["srp", "admin_password"]


def login(
    cognito: Any,
    pool_id: str,
    client_id: str,
    username: str,
    password: str,
    *,
    totp_secret: str | None = None,
    authenticator: AuthenticatorApp | None = None,
    flow: LoginFlow = "srp",
) -> dict[str, str]:
    """Sign in and answer Cognito's challenges; returns the AuthenticationResult.

    ``flow="srp"`` (the default) is ``USER_SRP_AUTH`` with ``PASSWORD_VERIFIER``, as
    Cognito's SDKs sign in; ``flow="admin_password"`` is ``ADMIN_USER_PASSWORD_AUTH``.
    Then ``SOFTWARE_TOKEN_MFA`` is answered with a code from ``totp_secret`` (or the
    secret ``authenticator`` holds for the user), and ``MFA_SETUP`` enrols a new
    authenticator: its secret is returned under ``TotpSecret`` and kept by
    ``authenticator``.

    Raises:
        LoginFailed: a challenge this client cannot answer (no authenticator code).
        botocore.exceptions.ClientError: Cognito refused the sign-in.
    """
    if flow == "srp":
        # The SRP arithmetic (A, the password claim signature) is pycognito's.
        from pycognito.aws_srp import AWSSRP

        srp = AWSSRP(username, password, pool_id, client_id, client=cognito)
        auth_parameters = srp.get_auth_params()
        answer = cognito.initiate_auth(
            ClientId=client_id, AuthFlow="USER_SRP_AUTH", AuthParameters=auth_parameters
        )
        if answer.get("ChallengeName") == "PASSWORD_VERIFIER":
            answer = cognito.respond_to_auth_challenge(
                ClientId=client_id,
                ChallengeName="PASSWORD_VERIFIER",
                ChallengeResponses=srp.process_challenge(
                    answer["ChallengeParameters"], auth_parameters
                ),
            )

        def respond(**kwargs: Any) -> Any:
            return cognito.respond_to_auth_challenge(ClientId=client_id, **kwargs)

    else:
        answer = cognito.admin_initiate_auth(
            UserPoolId=pool_id,
            ClientId=client_id,
            AuthFlow="ADMIN_USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": password},
        )

        def respond(**kwargs: Any) -> Any:
            return cognito.admin_respond_to_auth_challenge(
                UserPoolId=pool_id, ClientId=client_id, **kwargs
            )

    secret = totp_secret or (authenticator.secret(username) if authenticator else None)
    new_secret: str | None = None
    for _ in range(3):
        if "AuthenticationResult" in answer:
            result = dict(answer["AuthenticationResult"])
            if new_secret:
                result["TotpSecret"] = new_secret
                if authenticator is not None:
                    authenticator.enrol(username, new_secret)
            return result
        challenge = answer.get("ChallengeName")
        session = answer["Session"]
        if challenge == "SOFTWARE_TOKEN_MFA":
            if secret is None:
                raise LoginFailed("an authenticator code is required")
            responses = {"USERNAME": username, "SOFTWARE_TOKEN_MFA_CODE": totp_code(secret)}
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
        answer = respond(ChallengeName=challenge, Session=session, ChallengeResponses=responses)
    raise LoginFailed("too many challenges")


if __name__ == "__main__":
    main()
