"""An AWS dependency briefly unavailable is a clear, retryable 503, not an opaque 500.

The errors are the ones botocore itself raises: a real client against a closed loopback
port (the emulator's listener gone), and parsed service errors (botocore's Stubber builds
the same ``ClientError`` a throttled or failing call raises). A refused permission or a
malformed call is a defect and stays an opaque 500.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.errors import install_error_handlers, is_transient_aws_error


def closed_loopback_endpoint() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _client(service: str, endpoint: str = "http://127.0.0.1:9") -> Any:
    return boto3.client(
        service,
        region_name="ap-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=1, read_timeout=1),
    )


def _stubbed_error(
    service: str, operation: str, params: dict[str, Any], code: str, status: int
) -> Callable[[], None]:
    """A call of ``operation`` that raises the ClientError AWS answers with ``code``."""

    def call() -> None:
        client = _client(service)
        with Stubber(client) as stub:
            stub.add_client_error(
                _snake(operation), service_error_code=code, http_status_code=status
            )
            getattr(client, _snake(operation))(**params)

    return call


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


GET_ITEM = {"TableName": "t", "Key": {"pk": {"S": "x"}}}
TRANSIENT: dict[str, Callable[[], None]] = {
    "dynamodb-throttled": _stubbed_error(
        "dynamodb", "GetItem", GET_ITEM, "ThrottlingException", 400
    ),
    "dynamodb-capacity": _stubbed_error(
        "dynamodb", "GetItem", GET_ITEM, "ProvisionedThroughputExceededException", 400
    ),
    "dynamodb-unavailable": _stubbed_error(
        "dynamodb", "GetItem", GET_ITEM, "ServiceUnavailable", 503
    ),
    "s3-slow-down": _stubbed_error("s3", "GetObject", {"Bucket": "b", "Key": "k"}, "SlowDown", 503),
    "kms-internal": _stubbed_error(
        "kms", "Decrypt", {"CiphertextBlob": b"x"}, "KMSInternalException", 500
    ),
    "kms-throttled": _stubbed_error(
        "kms", "Decrypt", {"CiphertextBlob": b"x"}, "ThrottlingException", 400
    ),
    "connection-refused": lambda: _client("dynamodb", closed_loopback_endpoint()).get_item(
        **GET_ITEM
    ),
}
DEFECTS: dict[str, Callable[[], None]] = {
    "access-denied": _stubbed_error("dynamodb", "GetItem", GET_ITEM, "AccessDeniedException", 400),
    "validation": _stubbed_error("dynamodb", "GetItem", GET_ITEM, "ValidationException", 400),
    "bad-parameters": lambda: _client("dynamodb").get_item(TableName="t"),  # no Key
}


@pytest.fixture(scope="module")
def api() -> Iterator[TestClient]:
    app = FastAPI()
    install_error_handlers(app)
    for name, call in {**TRANSIENT, **DEFECTS}.items():
        app.add_api_route(f"/{name}", _route(call))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def _route(call: Callable[[], None]) -> Callable[[], dict[str, str]]:
    def route() -> dict[str, str]:
        call()
        return {"unexpectedly": "served"}

    return route


@pytest.mark.parametrize("name", sorted(TRANSIENT))
def test_a_transient_aws_failure_is_a_503_with_retry_after(api: TestClient, name: str) -> None:
    response = api.get(f"/{name}")
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    assert response.json() == {
        "error": {
            "code": "service_unavailable",
            "message": "A storage or key service is unavailable for the moment; retry shortly.",
        }
    }


@pytest.mark.parametrize("name", sorted(DEFECTS))
def test_an_aws_refusal_that_is_a_defect_stays_an_opaque_500(api: TestClient, name: str) -> None:
    response = api.get(f"/{name}")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert "retry-after" not in response.headers


def test_the_classification_matches_what_was_raised() -> None:
    for name, call in TRANSIENT.items():
        with pytest.raises(Exception) as raised:
            call()
        assert is_transient_aws_error(raised.value), name
    for name, call in DEFECTS.items():
        with pytest.raises(Exception) as raised:
            call()
        assert not is_transient_aws_error(raised.value), name
