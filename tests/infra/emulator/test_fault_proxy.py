"""The fault proxy the HTTP fault benchmark puts between the service and moto.

Its refusals are what botocore parses as the services' own throttling and unavailability
errors (so the service's handling is exercised, not the proxy's); it passes everything
else through unchanged (a presigned URL even while refusing); and down/up is a listener
that refuses connections and comes back on the same port, with the emulator's state.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError

from infra.emulator.fault_proxy import FaultProxy


@pytest.fixture
def proxy(moto_endpoint: str) -> Iterator[FaultProxy]:
    p = FaultProxy(moto_endpoint, seed=1)
    p.start()
    yield p
    p.down()


def client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,
        region_name="ap-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}),
    )


def test_calls_pass_through_unchanged(proxy: FaultProxy) -> None:
    s3 = client("s3", proxy.endpoint)
    bucket = f"proxy-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "ap-east-1"})
    s3.put_object(Bucket=bucket, Key="k", Body=b"x" * 1000)
    assert s3.head_object(Bucket=bucket, Key="k")["ContentLength"] == 1000
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x" * 1000
    assert not proxy.injected


@pytest.mark.parametrize(
    "service,call,codes",
    [
        ("dynamodb", lambda c: c.list_tables(), {"ThrottlingException", "ServiceUnavailable"}),
        ("kms", lambda c: c.list_keys(), {"ThrottlingException", "KMSInternalException"}),
        ("s3", lambda c: c.list_buckets(), {"SlowDown", "ServiceUnavailable"}),
    ],
)
def test_refusals_are_the_services_own_errors(
    proxy: FaultProxy, service: str, call: Any, codes: set[str]
) -> None:
    proxy.set_faults(refuse_share=1.0)
    seen = set()
    for _ in range(12):
        with pytest.raises(ClientError) as raised:
            call(client(service, proxy.endpoint))
        seen.add(raised.value.response["Error"]["Code"])
    assert seen == codes
    assert sum(proxy.injected.values()) == 12


def test_a_presigned_url_is_not_refused(proxy: FaultProxy) -> None:
    s3 = client("s3", proxy.endpoint)
    bucket = f"proxy-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "ap-east-1"})
    s3.put_object(Bucket=bucket, Key="k", Body=b"shard")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"})
    proxy.set_faults(refuse_share=1.0)
    assert httpx.get(url).content == b"shard"
    with pytest.raises(ClientError):
        s3.get_object(Bucket=bucket, Key="k")


def test_down_refuses_connections_and_up_comes_back_on_the_same_port(proxy: FaultProxy) -> None:
    ddb = client("dynamodb", proxy.endpoint)
    before = ddb.list_tables()["TableNames"]
    port = proxy.port
    proxy.down()
    with pytest.raises(EndpointConnectionError):
        ddb.list_tables()
    proxy.up()
    assert proxy.port == port
    assert ddb.list_tables()["TableNames"] == before
