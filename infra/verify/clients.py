"""A small factory for the boto3 clients verification uses.

Clients are made on demand, never at import time, for one endpoint and region: the
default AWS endpoints, or an emulator's (``endpoint_url``, and per service
``endpoints``: e.g. S3 and KMS on LocalStack, the rest on moto). Nothing here is specific
to an emulator: with ``endpoint_url=None`` boto3 also honours ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3
from botocore.config import Config

DEFAULT_REGION = "ap-east-1"


class ClientFactory:
    """Makes (and caches) one boto3 client per service for an endpoint and region."""

    def __init__(
        self,
        endpoint_url: str | None = None,
        region: str = DEFAULT_REGION,
        session: boto3.session.Session | None = None,
        config: Config | None = None,
        endpoints: Mapping[str, str] | None = None,
    ):
        self.endpoint_url = endpoint_url
        self.endpoints = dict(endpoints or {})
        self.region = region
        self._session = session or boto3.session.Session(region_name=region)
        self._config = config or Config(
            retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30
        )
        self._clients: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._session.client(
                service,  # type: ignore[call-overload]
                region_name=self.region,
                endpoint_url=self.endpoints.get(service, self.endpoint_url),
                config=self._config,
            )
        return self._clients[service]
