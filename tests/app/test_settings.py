"""Settings: one class, HUB_ prefix, insecure defaults refused outside local mode."""

from __future__ import annotations

import pytest
from hub_testkit import Hub
from pydantic import ValidationError

from app.settings import LOCAL_AUDIT_HASH_KEY, Mode, Settings

SECURE = {
    "HUB_MODE": "aws",
    "HUB_PHASE": "2",
    "HUB_TABLE_INSTITUTIONS": "hub-institutions",
    "HUB_TABLE_REGISTER": "hub-register",
    "HUB_TABLE_GROUPS": "hub-groups",
    "HUB_TABLE_RECORDS": "hub-records",
    "HUB_TABLE_LEDGER": "hub-ledger",
    "HUB_TABLE_PATIENTS": "hub-patients",
    "HUB_COGNITO_USER_POOL_ID": "ap-east-1_abc",
    "HUB_COGNITO_CLIENT_ID": "client123",
    "HUB_COGNITO_ISSUER": "https://cognito-idp.ap-east-1.amazonaws.com/ap-east-1_abc",
    "HUB_AUDIT_HASH_KEY": "x" * 40,
    "HUB_SIGNING_KEY_ARN": "arn:aws:kms:ap-east-1:123456789012:key/ledger-signing",
    "HUB_CHECKPOINT_BUCKET": "hub-audit",
    "HUB_SHARD_BUCKET": "hub-shards",
    "HUB_RECORDS_KEY_ARN": "arn:aws:kms:ap-east-1:123456789012:key/records",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for key, value in SECURE.items():
        monkeypatch.setenv(key, value)
    return monkeypatch


def test_reads_hub_variables(env: pytest.MonkeyPatch) -> None:
    s = Settings()
    assert s.mode is Mode.AWS and s.phase == 2
    assert s.table_institutions == "hub-institutions" and not s.self_registration
    assert s.jwks_url() == SECURE["HUB_COGNITO_ISSUER"] + "/.well-known/jwks.json"


@pytest.mark.parametrize("missing", ["HUB_SIGNING_KEY_ARN", "HUB_CHECKPOINT_BUCKET"])
def test_a_deployment_must_sign_and_archive_ledger_heads(
    env: pytest.MonkeyPatch, missing: str
) -> None:
    env.delenv(missing)
    with pytest.raises(ValidationError, match=missing):
        Settings()


@pytest.mark.parametrize(
    "missing", ["HUB_SHARD_BUCKET", "HUB_RECORDS_KEY_ARN", "HUB_TABLE_RECORDS"]
)
def test_a_deployment_refuses_to_start_without_record_storage(
    env: pytest.MonkeyPatch, missing: str
) -> None:
    """It used to start and answer 503 on every record route; now it names the setting."""
    env.delenv(missing)
    with pytest.raises(ValidationError, match=f"{missing} is required outside local mode"):
        Settings()


def test_local_mode_may_run_without_record_storage(env: pytest.MonkeyPatch) -> None:
    for name in ("HUB_SHARD_BUCKET", "HUB_RECORDS_KEY_ARN", "HUB_TABLE_RECORDS"):
        env.delenv(name)
    env.setenv("HUB_MODE", "local")
    assert Settings().shard_bucket == ""


def test_jwks_on_an_emulator_follows_aws_endpoint_url(env: pytest.MonkeyPatch) -> None:
    env.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    assert Settings().jwks_url() == "http://127.0.0.1:5000/ap-east-1_abc/.well-known/jwks.json"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("HUB_AUDIT_HASH_KEY", LOCAL_AUDIT_HASH_KEY, "HUB_AUDIT_HASH_KEY"),
        ("HUB_AUDIT_HASH_KEY", "short", "HUB_AUDIT_HASH_KEY"),
        ("HUB_COGNITO_ISSUER", "http://cognito.example/pool", "https"),
        ("HUB_COGNITO_JWKS_URL", "http://jwks.example", "HUB_COGNITO_JWKS_URL"),
        ("HUB_COGNITO_CLIENT_ID", "", "HUB_COGNITO_CLIENT_ID is required"),
        ("HUB_TABLE_GROUPS", "", "HUB_TABLE_GROUPS is required"),
        ("HUB_TABLE_INSTITUTIONS", "", "HUB_TABLE_INSTITUTIONS is required"),
        ("HUB_REGISTRATION_CACHE_SECONDS", "301", "<= 300"),
        ("HUB_TOKEN_LEEWAY_SECONDS", "600", "<= 60"),
        ("HUB_BREAK_GLASS_MAX_MINUTES", "300", "less than or equal to 240"),
    ],
)
def test_insecure_values_are_refused_outside_local_mode(
    env: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    env.setenv(variable, value)
    with pytest.raises(ValidationError, match=message):
        Settings()


def test_mode_defaults_to_aws_so_a_forgotten_variable_fails_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key in SECURE:
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(ValidationError, match="required outside local mode"):
        Settings()


def test_local_mode_accepts_development_defaults() -> None:
    s = Settings(mode="local")
    assert s.audit_hash_key.get_secret_value() == LOCAL_AUDIT_HASH_KEY


# API Gateway gives a request 29 s; retry n of one AWS call backs off at most 2^(n-1) s
# (botocore's standard mode, throttling, capped at 20 s), so the default leaves room.
GATEWAY_SECONDS = 29


def test_the_default_attempts_back_off_within_a_request() -> None:
    attempts = Settings(mode=Mode.LOCAL).aws_max_attempts
    worst = sum(min(20, 2**n) for n in range(attempts - 1))  # 1 + 2 + 4 + 8 at 5
    assert worst <= GATEWAY_SECONDS - 10


def test_the_ledgers_aws_clients_retry_as_the_record_service_does(hub: Hub) -> None:
    """The ledger's DynamoDB client (shared by the groups and institutions repositories):
    botocore's standard mode with the configured attempts, as the record service's
    clients, not the legacy default (10 DynamoDB attempts, ~25 s of backoff)."""
    bounded = {"mode": "standard", "total_max_attempts": hub.settings.aws_max_attempts}
    assert hub.services.ledger.table.client.meta.config.retries == bounded
    assert hub.settings.aws_config().retries == bounded  # what the record service uses
