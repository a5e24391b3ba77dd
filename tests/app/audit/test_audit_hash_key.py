"""The deployment's audit hashing key: generated once by KMS, stored sealed, shared."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from app.audit.hash_key import ENCRYPTION_CONTEXT, ITEM_KEY, load_or_create_audit_hash_key
from app.settings import Settings
from infra.components.keys import AUDIT_HASH_CONTEXT_KEY, AUDIT_HASH_PURPOSE

# (DynamoDB client, KMS client, key ARN, table name)
Aws = tuple[Any, Any, str, str]


@pytest.fixture
def aws(moto_endpoint: str) -> Iterator[Aws]:
    # The session's moto server, not moto's in-process decorator: leaving that resets
    # moto's in-process backends, which the server shares, under every other test.
    dynamodb = boto3.client("dynamodb", region_name="ap-east-1", endpoint_url=moto_endpoint)
    kms = boto3.client("kms", region_name="ap-east-1", endpoint_url=moto_endpoint)
    table = f"hub-test-ledger-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=table,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    key_arn = kms.create_key()["KeyMetadata"]["Arn"]
    yield dynamodb, kms, key_arn, table
    dynamodb.delete_table(TableName=table)


def test_first_start_creates_a_key_later_starts_read_the_same(
    aws: Aws,
) -> None:
    dynamodb, kms, key_arn, table = aws
    first = load_or_create_audit_hash_key(dynamodb, kms, table, key_arn)
    again = load_or_create_audit_hash_key(dynamodb, kms, table, key_arn)
    assert len(first) == 32 and first == again


def test_only_the_sealed_key_is_stored(aws: Aws) -> None:
    dynamodb, kms, key_arn, table = aws
    plaintext = load_or_create_audit_hash_key(dynamodb, kms, table, key_arn)
    item = dynamodb.get_item(TableName=table, Key=ITEM_KEY)["Item"]
    stored = item["sealed_key"]["B"]
    assert plaintext not in stored
    unwrapped = kms.decrypt(CiphertextBlob=stored, EncryptionContext=ENCRYPTION_CONTEXT)
    assert unwrapped["Plaintext"] == plaintext


def test_concurrent_first_starts_agree_on_one_key(aws: Aws) -> None:
    dynamodb, kms, key_arn, table = aws
    with ThreadPoolExecutor(max_workers=4) as pool:
        keys = list(
            pool.map(
                lambda _: load_or_create_audit_hash_key(dynamodb, kms, table, key_arn), range(8)
            )
        )
    assert len(set(keys)) == 1


def test_context_matches_what_the_key_policy_and_role_allow() -> None:
    assert AUDIT_HASH_CONTEXT_KEY == "kms:EncryptionContext:purpose"
    assert ENCRYPTION_CONTEXT == {"purpose": AUDIT_HASH_PURPOSE}


AWS_ENV = {
    "HUB_MODE": "aws",
    "HUB_table_REGISTER": "r",
    "HUB_table_GROUPS": "g",
    "HUB_table_LEDGER": "l",
    "HUB_COGNITO_USER_POOL_ID": "ap-east-1_x",
    "HUB_COGNITO_CLIENT_ID": "c",
    "HUB_COGNITO_ISSUER": "https://cognito-idp.example/x",
    "HUB_TABLE_INSTITUTIONS": "i",
    "HUB_SIGNING_KEY_ARN": "arn:aws:kms:ap-east-1:1:key/s",
    "HUB_CHECKPOINT_BUCKET": "audit",
    "HUB_TABLE_RECORDS": "rec",
    "HUB_TABLE_PATIENTS": "pat",
    "HUB_SHARD_BUCKET": "shards",
    "HUB_RECORDS_KEY_ARN": "arn:aws:kms:ap-east-1:1:key/r",
}


def test_deployment_settings_need_a_kms_sealed_or_explicit_hash_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("HUB_AUDIT_KEY_ARN", raising=False)
    monkeypatch.delenv("HUB_AUDIT_HASH_KEY", raising=False)
    with pytest.raises(ValueError, match="HUB_AUDIT_KEY_ARN"):
        Settings()
    monkeypatch.setenv("HUB_AUDIT_KEY_ARN", "arn:aws:kms:ap-east-1:1:key/k")
    settings = Settings()
    assert settings.uses_sealed_audit_hash_key()
