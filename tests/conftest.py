"""Session-scoped fixtures shared by the whole suite.

The moto server runs on a free loopback port, once per session; integration tests talk
to it through ``AWS_ENDPOINT_URL`` (boto3 honours it), never to the internet.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "ap-east-1",
}


@pytest.fixture(autouse=True, scope="session")
def _no_real_aws() -> Iterator[None]:
    """Every test runs with fake credentials, so nothing can reach a real account."""
    saved = {k: os.environ.get(k) for k in FAKE_CREDENTIALS}
    os.environ.update(FAKE_CREDENTIALS)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto server on 127.0.0.1 for the whole session; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@dataclass(frozen=True)
class AwsBackend:
    """Where each AWS service is emulated for a test: ``endpoint(service)`` and ``client()``.

    The default backend is the session's moto server for every service. Integration
    tests that exercise S3, KMS, IAM, STS or Lambda take their clients from here (not
    from ``moto_endpoint`` directly), so the LocalStack tier can point those services at
    LocalStack while the services it lacks stay on moto.
    """

    name: str
    default_endpoint: str
    endpoints: Mapping[str, str] = field(default_factory=dict)

    def endpoint(self, service: str) -> str:
        return self.endpoints.get(service, self.default_endpoint)

    def client(self, service: str, **kwargs: Any) -> Any:
        import boto3

        return boto3.client(
            service, region_name="ap-east-1", endpoint_url=self.endpoint(service), **kwargs
        )


@pytest.fixture(scope="session")
def aws_backend(moto_endpoint: str) -> AwsBackend:
    return AwsBackend(name="moto", default_endpoint=moto_endpoint)
