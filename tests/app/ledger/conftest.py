"""Durable-ledger fixtures: a fresh ledger table and Object Lock checkpoint bucket per test
on the session moto server, and one KMS P-256 signing key for the session."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from ledger_testkit import LedgerEnv


@pytest.fixture(scope="session")
def ledger_aws(moto_endpoint: str) -> dict[str, Any]:
    session = boto3.session.Session(region_name="ap-east-1")
    kw = {"endpoint_url": moto_endpoint}
    kms = session.client("kms", **kw)
    s3 = session.client("s3", **kw)
    key_arn = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    return {
        "endpoint": moto_endpoint,
        "dynamodb": session.client("dynamodb", **kw),
        "kms": kms,
        "s3": s3,
        "key_arn": key_arn,
    }


@pytest.fixture
def ledger_env(ledger_aws: dict[str, Any]) -> Iterator[LedgerEnv]:
    name = f"ledger-{uuid.uuid4().hex[:8]}"
    ddb = ledger_aws["dynamodb"]
    ddb.create_table(
        TableName=name,
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
    ledger_aws["s3"].create_bucket(
        Bucket=name,
        CreateBucketConfiguration={"LocationConstraint": "ap-east-1"},
        ObjectLockEnabledForBucket=True,
    )
    yield LedgerEnv(
        endpoint=ledger_aws["endpoint"],
        dynamodb=ddb,
        kms=ledger_aws["kms"],
        s3=ledger_aws["s3"],
        table_name=name,
        key_arn=ledger_aws["key_arn"],
        bucket=name,
    )
    ddb.delete_table(TableName=name)
