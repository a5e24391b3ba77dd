"""The ``records`` fixture: the session hub plus a versioned shard bucket, a records key
and an app whose record service uses 64 KiB shards (see records_testkit.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from api_contract import CONTRACT, checked
from fastapi.testclient import TestClient
from hub_testkit import Hub
from records_testkit import MAX_BYTES, SHARD, RecordsHarness

from app.dependencies import build_services
from app.main import create_app


@pytest.fixture(scope="session")
def records(hub: Hub, aws_backend: Any) -> Iterator[RecordsHarness]:
    s3 = aws_backend.client("s3")
    kms = aws_backend.client("kms")
    bucket = f"hubtest-shards-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "ap-east-1"})
    # Versioned, as deployed: shredding must remove the stored version, not hide it.
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    key_arn = kms.create_key(Description="hubtest records key")["KeyMetadata"]["Arn"]
    settings = hub.settings.model_copy(
        update={
            "shard_bucket": bucket,
            "records_key_arn": key_arn,
            "shard_size": SHARD,
            "client_shard_size": SHARD,
            "max_record_bytes": MAX_BYTES,
            "upload_parallelism": 4,
            "aws_max_attempts": 3,
        }
    )
    session = boto3.session.Session(region_name="ap-east-1")
    dynamodb = session.client("dynamodb", endpoint_url=hub.endpoint)
    services = build_services(
        settings,
        session=session,
        clock=hub.clock,
        monotonic=hub.monotonic,
        audit=hub.services.audit,
        aws_clients={"s3": s3, "kms": kms, "dynamodb": dynamodb},
    )
    # Not entered as a context manager: the hub's app runs the ledger's sequencer already.
    app = create_app(settings, services=services)
    checked(app, CONTRACT)
    client = TestClient(app)
    yield RecordsHarness(
        hub=hub,
        settings=settings,
        services=services,
        client=client,
        s3=s3,
        kms=kms,
        dynamodb=dynamodb,
        bucket=bucket,
        key_arn=key_arn,
    )
